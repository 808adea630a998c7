//! The broker process: open the data directory, bind the listener, serve connections, run
//! retention and flushing in the background, and shut down cleanly.

mod schema_access;
pub(crate) mod schema_log;

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::config::BrokerConfig;
use crate::connection::serve_connection;
use crate::handlers::ConnectionContext;
use crate::listeners::ListenerInfo;
use crate::producer_ids::{ProducerIdAllocator, ProducerIdError};
use crate::state::{now_ms, Broker};
use crate::tls::{ReloadingAcceptor, TlsError};

/// How long start-up waits for the controller quorum to have a leader and for this node to
/// apply its local metadata log.
const QUORUM_CATCH_UP_WAIT: Duration = Duration::from_secs(15);

/// How often partitions are checked against `flush.ms`.
const FLUSH_CHECK_INTERVAL_MS: u64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another strom process (stop it, or choose another log.dirs)")]
    DataDirLocked { path: PathBuf },
    #[error("cannot listen on {address}: {source} (is another broker running? choose another port with --set listeners=PLAINTEXT://127.0.0.1:PORT)")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for HTTP on {address}: {source} (choose another port with --set http.listener=127.0.0.1:PORT, or turn it off with --set http.listener=)")]
    HttpBind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for the schema registry on {address}: {source} (choose another port with --set schema.registry.listener=127.0.0.1:PORT, or turn it off with --set schema.registry.listener=)")]
    RegistryBind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("schema.registry.listener={value}: expected ip:port, e.g. 127.0.0.1:8081, or empty to turn the schema registry off")]
    RegistryListener { value: String },
    #[error("schema registry security: {0}")]
    RegistrySecurity(String),
    #[error("TLS setup: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot open the metadata log: {0}")]
    Metadata(#[from] strom_controller::MetadataError),
    #[error("controller quorum ({voters}): {source} (check controller.quorum.voters: id@host:port entries, one of them this node.id)")]
    Quorum {
        voters: String,
        source: strom_controller::RaftQuorumError,
    },
    #[error("inter-broker connections: {0} (check inter.broker.listener.name and its ssl.* / sasl.* settings)")]
    InterBroker(#[from] strom_client::ClientError),
    #[error(transparent)]
    ProducerIds(#[from] ProducerIdError),
    #[error(transparent)]
    Partition(#[from] crate::partition::PartitionError),
}

/// Holds an exclusive `flock` on the data directory for the life of the process.
struct DataDirLock {
    _file: std::fs::File,
}

fn lock_data_dir(dir: &std::path::Path) -> Result<DataDirLock, ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServerError::DataDir {
            path: path.clone(),
            source,
        })?;
    // SAFETY: flock on an fd we own.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        return Err(ServerError::DataDirLocked {
            path: dir.to_path_buf(),
        });
    }
    Ok(DataDirLock { _file: file })
}

/// A bound Kafka listener.
struct BoundListener {
    info: Arc<ListenerInfo>,
    socket: TcpListener,
    local_addr: SocketAddr,
}

/// A bound broker, before it serves.
pub struct BoundBroker {
    pub broker: Arc<Broker>,
    /// Address of the first listener.
    pub local_addr: SocketAddr,
    /// Every listener's name and bound address, in config order.
    pub listener_addrs: Vec<(String, SocketAddr)>,
    listeners: Vec<BoundListener>,
    /// Shared by the SSL and SASL_SSL listeners; reloaded when its files change.
    tls_acceptor: Option<Arc<ReloadingAcceptor>>,
    /// The HTTP endpoint (health, metrics, console), when `http.listener` is set.
    pub http_addr: Option<SocketAddr>,
    http_listener: Option<TcpListener>,
    /// The schema registry's REST listener, when `schema.registry.listener` is set.
    pub registry_addr: Option<SocketAddr>,
    registry_listener: Option<TcpListener>,
    _lock: DataDirLock,
}

/// Opens storage and metadata and binds the listener.
pub async fn bind(config: BrokerConfig) -> Result<BoundBroker, ServerError> {
    let lock = lock_data_dir(&config.log_dirs)?;
    let tls = match &config.tls {
        Some(settings) => Some(Arc::new(ReloadingAcceptor::new(settings.clone())?)),
        None => None,
    };
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        let bind_error = |source| ServerError::Bind {
            address: listener.bind,
            source,
        };
        let socket = TcpListener::bind(listener.bind).await.map_err(bind_error)?;
        let local_addr = socket.local_addr().map_err(bind_error)?;
        let (advertised_host, advertised_port) = match &listener.advertised {
            Some((host, port)) => (host.clone(), *port),
            None if local_addr.ip().is_unspecified() => {
                ("127.0.0.1".to_string(), local_addr.port())
            }
            None => (local_addr.ip().to_string(), local_addr.port()),
        };
        listeners.push(BoundListener {
            info: Arc::new(ListenerInfo {
                name: listener.name.clone(),
                security: listener.security,
                advertised_host,
                advertised_port,
                tls: listener.security.uses_tls().then(|| tls.clone()).flatten(),
            }),
            socket,
            local_addr,
        });
    }
    let local_addr = listeners[0].local_addr;
    let advertised: Vec<strom_controller::BrokerListener> = listeners
        .iter()
        .map(|l| strom_controller::BrokerListener {
            name: l.info.name.clone(),
            host: l.info.advertised_host.clone(),
            port: l.info.advertised_port,
        })
        .collect();
    let inter_broker = advertised
        .iter()
        .find(|l| l.name == config.inter_broker_listener)
        .expect("the config validated the inter-broker listener name");
    let (host, port) = (inter_broker.host.clone(), inter_broker.port);
    let registry_listener = bind_registry(&config).await?;
    let registry_addr = registry_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());
    let mut advertised = advertised;
    if let Some(address) = registry_addr {
        // Registered with the other listeners, so the other brokers know where to forward
        // registry writes when this one leads `_schemas`. No client connects to a listener
        // of that name, so no Kafka answer ever points at it.
        advertised.push(strom_controller::BrokerListener {
            name: schema_log::REGISTRY_LISTENER_NAME.to_string(),
            host: if address.ip().is_unspecified() {
                host.clone()
            } else {
                address.ip().to_string()
            },
            port: address.port(),
        });
    }
    let http_listener = match config.http_listener {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|source| ServerError::HttpBind { address, source })?,
        ),
        None => None,
    };
    let http_addr = match &http_listener {
        Some(listener) => Some(
            listener
                .local_addr()
                .map_err(|source| ServerError::HttpBind {
                    address: config.http_listener.expect("set when bound"),
                    source,
                })?,
        ),
        None => None,
    };
    let metadata = if config.cluster.voters.is_empty() {
        crate::metadata::Metadata::Local(parking_lot::Mutex::new(
            strom_controller::MetadataQuorum::open(&config.log_dirs, config.node_id, &host, port)?,
        ))
    } else {
        let raft = start_quorum(&config).await?;
        if config.cluster.roles.is_broker_only() {
            // Announce where the metadata log goes first: after a restart the address may
            // be new, and without it the leader never reaches this node. Retried in the
            // background by the registration task when the controllers are away.
            if let Err(error) =
                tokio::time::timeout(QUORUM_CATCH_UP_WAIT, join_until_accepted(&raft)).await
            {
                warn!(%error, "could not join the controller quorum as an observer yet");
            }
        }
        // Open partitions from an image at least as new as before a restart: wait (bounded)
        // for a leader and for the local log to be applied. A lone node of a cluster whose
        // peers are down goes on with what it has; the image follower catches up later.
        // A restarted node must not act on its pre-crash image (it might still think it
        // leads partitions that moved): a read barrier through the leader brings it up to
        // date. A fresh node of a fresh cluster has nothing to catch up with.
        let caught_up = raft.wait_caught_up(QUORUM_CATCH_UP_WAIT).await
            && (raft.image().last_offset().is_none() || raft.catch_up(QUORUM_CATCH_UP_WAIT).await);
        if !caught_up {
            warn!(
                waited_ms = QUORUM_CATCH_UP_WAIT.as_millis() as u64,
                "controller quorum not caught up yet; starting with the local image"
            );
        }
        crate::metadata::Metadata::Raft(raft)
    };
    let producer_ids = if config.cluster.voters.is_empty() {
        ProducerIdAllocator::open(&config.log_dirs)?
    } else {
        // Every broker hands out ids: each takes the ids congruent to its node id.
        ProducerIdAllocator::open_strided(&config.log_dirs, config.node_id)?
    };
    let inter_broker_security = crate::inter_broker::client_security(&config)?;
    let broker = Broker::new(
        config,
        advertised,
        inter_broker_security,
        metadata,
        producer_ids,
    )?;
    Ok(BoundBroker {
        broker,
        local_addr,
        listener_addrs: listeners
            .iter()
            .map(|l| (l.info.name.clone(), l.local_addr))
            .collect(),
        listeners,
        tls_acceptor: tls,
        http_addr,
        http_listener,
        registry_addr,
        registry_listener,
        _lock: lock,
    })
}

/// Binds `schema.registry.listener` (empty = off). Its default port (8081) being taken is
/// not fatal: several brokers on one machine (tests, a local cluster) would all want it,
/// so the registry is left off with a warning. A port chosen explicitly must bind.
async fn bind_registry(config: &BrokerConfig) -> Result<Option<TcpListener>, ServerError> {
    let Some((value, source)) = config.describe("schema.registry.listener") else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    schema_access::validate(config).map_err(ServerError::RegistrySecurity)?;
    let address: SocketAddr = value
        .replace("localhost", "127.0.0.1")
        .parse()
        .map_err(|_| ServerError::RegistryListener {
            value: value.to_string(),
        })?;
    match TcpListener::bind(address).await {
        Ok(listener) => Ok(Some(listener)),
        Err(error) if source == crate::config::ConfigSource::Default => {
            warn!(%address, %error, "schema registry not started: its default address is taken (set schema.registry.listener to choose another)");
            Ok(None)
        }
        Err(source) => Err(ServerError::RegistryBind { address, source }),
    }
}

/// Starts this node's part of the controller quorum: a voter (combined or controller-only
/// node) or an observer (broker-only node, at `metadata.listener`).
async fn start_quorum(config: &BrokerConfig) -> Result<strom_controller::RaftQuorum, ServerError> {
    let quorum_error = |source| ServerError::Quorum {
        voters: config.cluster.voters.clone(),
        source,
    };
    let voters =
        strom_controller::raft::parse_voters(&config.cluster.voters).map_err(quorum_error)?;
    let mut raft_config = match &config.cluster.metadata_listener {
        Some(address) if config.cluster.roles.is_broker_only() => {
            strom_controller::RaftQuorumConfig::observer(
                config.node_id,
                voters,
                &config.log_dirs,
                address,
            )
        }
        _ => strom_controller::RaftQuorumConfig::new(config.node_id, voters, &config.log_dirs),
    };
    raft_config.broker_session_timeout_ms = config.cluster.session_timeout_ms as u64;
    raft_config.leader_rebalance_interval_ms = config.cluster.leader_rebalance_interval_ms;
    strom_controller::RaftQuorum::start(raft_config)
        .await
        .map_err(quorum_error)
}

/// Asks the controllers to send this observer the metadata log until one accepts.
async fn join_until_accepted(raft: &strom_controller::RaftQuorum) {
    loop {
        match raft.join_as_observer().await {
            Ok(()) => {
                info!("joined the controller quorum as an observer");
                return;
            }
            Err(error) => {
                debug!(%error, "observer join not accepted yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Runs a controller-only node (`process.roles=controller`) until `shutdown` completes: a
/// voter of the controller quorum and nothing else. It serves no Kafka listener, holds no
/// partitions and never registers as a broker, so no replica is ever placed on it; its
/// decisions reach clients through the brokers, which forward to the active controller.
pub async fn run_controller(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let _lock = lock_data_dir(&config.log_dirs)?;
    let raft = start_quorum(&config).await?;
    info!(
        node_id = config.node_id,
        address = %raft.local_address(),
        "strom controller ready (process.roles=controller: no Kafka listener, no HTTP endpoint)"
    );
    shutdown.await;
    info!("shutting down the controller");
    raft.shutdown().await;
    info!("stopped");
    Ok(())
}

impl BoundBroker {
    /// Serves until `shutdown` completes, then closes every log cleanly.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let broker = self.broker.clone();
        let background = spawn_background(broker.clone());
        let cleaner = crate::cleaner::spawn(broker.clone());
        let images = broker.clone();
        let group_timers = broker.groups().spawn_timers(Arc::new(move |topic: &str| {
            images.image().topic(topic).is_some()
        }));
        let txn_timers = broker.txns().spawn_timers();
        let cluster_tasks = crate::cluster::spawn_tasks(&broker);
        if broker.image().topic(crate::group::OFFSETS_TOPIC).is_some() {
            // Replay committed offsets before clients ask; they get
            // COORDINATOR_LOAD_IN_PROGRESS until this is done.
            let loading = broker.clone();
            tokio::spawn(async move {
                // A replay can fail or find a partition busy while the partitions are
                // still opening after a restart; retry (bounded) until every led offsets
                // partition is loaded, so /ready does not wait for a client's request.
                for _ in 0..600 {
                    if loading.groups().ensure_loaded().await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                // Transactions left open or half-ended by the last run are found (and
                // timed out or finished) without waiting for their producer to return.
                if loading
                    .image()
                    .topic(crate::txn::TRANSACTION_STATE_TOPIC)
                    .is_some()
                {
                    let _ = loading.txns().ensure_loaded().await;
                }
            });
        }
        let http = self
            .http_listener
            .map(|listener| crate::http::spawn(listener, broker.clone()));
        if let Some(address) = self.http_addr {
            info!(%address, "http endpoint ready (/health, /ready, /metrics, console at /)");
        }
        let registry = self.registry_listener.and_then(|listener| {
            match schema_access::serving(broker.config(), &broker) {
                Ok(serving) => Some(strom_registry::http::spawn_with(
                    listener,
                    crate::schema_validation::registry(&broker),
                    serving,
                )),
                Err(message) => {
                    warn!(%message, "schema registry not started");
                    None
                }
            }
        });
        if let Some(address) = self.registry_addr {
            info!(%address, "schema registry ready (Confluent Schema Registry REST API)");
        }
        let connections = Arc::new(Semaphore::new(broker.config().max_connections));
        let per_ip = Arc::new(PerIpConnections::default());
        let mut accepting = Vec::new();
        for listener in self.listeners {
            info!(
                listener = %listener.info.name,
                address = %listener.local_addr,
                advertised = %format!("{}:{}", listener.info.advertised_host, listener.info.advertised_port),
                "listening"
            );
            accepting.push(tokio::spawn(accept_loop(
                listener,
                broker.clone(),
                connections.clone(),
                per_ip.clone(),
            )));
        }
        if let Some(acceptor) = self.tls_acceptor.clone() {
            accepting.push(spawn_tls_reload(
                acceptor,
                broker.config().tls_reload_check_interval_ms,
            ));
        }
        info!("strom broker ready");
        shutdown.await;
        for task in accepting {
            task.abort();
        }
        crate::cluster::controlled_shutdown(&broker).await;
        for task in cluster_tasks {
            task.abort();
        }
        info!("shutting down: closing logs");
        background.abort();
        let _ = tokio::task::spawn_blocking(move || cleaner.stop()).await;
        group_timers.abort();
        txn_timers.abort();
        if let Some(http) = http {
            http.abort();
        }
        if let Some(registry) = registry {
            registry.abort();
        }
        let closing = broker.clone();
        let _ = tokio::task::spawn_blocking(move || closing.partitions().close_all()).await;
        info!("stopped");
    }
}

/// Accepts connections on one listener until aborted.
/// Open connections per client IP, for `max.connections.per.ip`.
#[derive(Default)]
struct PerIpConnections {
    counts: parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One counted connection; uncounts itself when dropped.
struct IpSlot {
    table: Arc<PerIpConnections>,
    ip: std::net::IpAddr,
}

impl PerIpConnections {
    fn acquire(self: &Arc<Self>, ip: std::net::IpAddr, max: usize) -> Option<IpSlot> {
        let mut counts = self.counts.lock();
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

async fn accept_loop(
    listener: BoundListener,
    broker: Arc<Broker>,
    connections: Arc<Semaphore>,
    per_ip: Arc<PerIpConnections>,
) {
    loop {
        let (stream, peer) = match listener.socket.accept().await {
            Ok(pair) => pair,
            Err(error) => {
                warn!(%error, listener = %listener.info.name, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            warn!(%peer, max = broker.config().max_connections, "max.connections reached; closing new connection");
            broker.metrics().connections_rejected.add(1);
            drop(stream);
            continue;
        };
        // A dynamic max.connections.per.ip applies to the next connection.
        let per_ip_max = crate::config::dynamic::dynamic_value(
            broker.config(),
            &broker.image(),
            "max.connections.per.ip",
        )
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(broker.config().max_connections_per_ip);
        let Some(ip_slot) = per_ip.acquire(peer.ip(), per_ip_max) else {
            warn!(%peer, max = per_ip_max, "max.connections.per.ip reached; closing new connection");
            broker.metrics().connections_rejected.add(1);
            drop(stream);
            continue;
        };
        let broker = broker.clone();
        let open = broker.metrics().connections.track();
        let context = ConnectionContext::new(listener.info.clone(), peer);
        tokio::spawn(async move {
            serve_connection(broker, stream, peer, context).await;
            drop(open);
            drop(ip_slot);
            drop(permit);
        });
    }
}

/// Re-reads changed certificate files so new connections get new certificates.
fn spawn_tls_reload(
    acceptor: Arc<ReloadingAcceptor>,
    interval_ms: i64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(interval_ms.max(100) as u64));
        loop {
            every.tick().await;
            let acceptor = acceptor.clone();
            match tokio::task::spawn_blocking(move || acceptor.reload_if_changed()).await {
                Ok(Ok(true)) => info!("TLS certificates reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(error)) => {
                    warn!(%error, "TLS certificates changed but cannot be loaded; keeping the previous ones")
                }
                Err(_) => {}
            }
        }
    })
}

/// Retention, time-based flushing and the fsync of rolled segments, off the request path.
fn spawn_background(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let retention_every =
            Duration::from_millis(broker.config().retention_check_interval_ms as u64);
        let mut retention = tokio::time::interval(retention_every);
        let mut flush = tokio::time::interval(Duration::from_millis(FLUSH_CHECK_INTERVAL_MS));
        loop {
            tokio::select! {
                _ = retention.tick() => {
                    let broker = broker.clone();
                    let _ = tokio::task::spawn_blocking(move || enforce_retention(&broker)).await;
                }
                _ = flush.tick() => {
                    let broker = broker.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        sync_rolled_segments(&broker);
                        for partition in broker.partitions().all() {
                            if let Err(error) = partition.log.lock().maybe_flush(now_ms()) {
                                warn!(topic = %partition.topic, partition = partition.index, %error, "flush failed");
                            }
                        }
                    }).await;
                }
            }
        }
    })
}

/// fsyncs segments that rolled since the last tick, without the partition's lock (a roll
/// leaves that to us so the append path never waits for a segment-sized flush); only
/// then does the recovery point move past them.
fn sync_rolled_segments(broker: &Broker) {
    for partition in broker.partitions().all() {
        let Some(pending) = partition.log.lock().pending_sync() else {
            continue;
        };
        match pending.sync() {
            Ok(()) => {
                if let Err(error) = partition.log.lock().complete_sync(pending) {
                    warn!(topic = %partition.topic, partition = partition.index, %error, "recovery-point checkpoint failed");
                }
            }
            Err(error) => partition.log.lock().fail_sync(&error),
        }
    }
}

fn enforce_retention(broker: &Broker) {
    for partition in broker.partitions().all() {
        let outcome = partition.log.lock().enforce_retention(now_ms());
        match outcome {
            Ok(outcome) if outcome.segments_deleted > 0 => info!(
                topic = %partition.topic,
                partition = partition.index,
                segments = outcome.segments_deleted,
                bytes = outcome.bytes_deleted,
                log_start_offset = outcome.log_start_offset,
                "retention deleted segments"
            ),
            Ok(_) => {}
            Err(error) => {
                warn!(topic = %partition.topic, partition = partition.index, %error, "retention failed")
            }
        }
    }
}
