//! The broker process: open the data directory, bind the listener, serve connections, run
//! retention and flushing in the background, and shut down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::config::BrokerConfig;
use crate::connection::serve_connection;
use crate::producer_ids::{ProducerIdAllocator, ProducerIdError};
use crate::state::{now_ms, Broker};

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
    #[error("cannot open the metadata log: {0}")]
    Metadata(#[from] strom_controller::MetadataError),
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

/// A bound broker, before it serves.
pub struct BoundBroker {
    pub broker: Arc<Broker>,
    pub local_addr: SocketAddr,
    listener: TcpListener,
    _lock: DataDirLock,
}

/// Opens storage and metadata and binds the listener.
pub async fn bind(config: BrokerConfig) -> Result<BoundBroker, ServerError> {
    let lock = lock_data_dir(&config.log_dirs)?;
    let listener =
        TcpListener::bind(config.listener)
            .await
            .map_err(|source| ServerError::Bind {
                address: config.listener,
                source,
            })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        address: config.listener,
        source,
    })?;
    let (host, port) = match &config.advertised {
        Some((host, port)) => (host.clone(), *port),
        None if local_addr.ip().is_unspecified() => ("127.0.0.1".to_string(), local_addr.port()),
        None => (local_addr.ip().to_string(), local_addr.port()),
    };
    let metadata =
        strom_controller::MetadataQuorum::open(&config.log_dirs, config.node_id, &host, port)?;
    let producer_ids = ProducerIdAllocator::open(&config.log_dirs)?;
    let broker = Broker::new(config, host, port, metadata, producer_ids)?;
    Ok(BoundBroker {
        broker,
        local_addr,
        listener,
        _lock: lock,
    })
}

impl BoundBroker {
    /// Serves until `shutdown` completes, then closes every log cleanly.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let broker = self.broker.clone();
        let background = spawn_background(broker.clone());
        let group_timers = broker.groups.spawn_timers(broker.clone());
        if broker.image().topic(crate::group::OFFSETS_TOPIC).is_some() {
            // Replay committed offsets before clients ask; they get
            // COORDINATOR_LOAD_IN_PROGRESS until this is done.
            let loading = broker.clone();
            tokio::spawn(async move {
                let _ = loading.groups.ensure_loaded(&loading).await;
            });
        }
        let connections = Arc::new(Semaphore::new(broker.config.max_connections));
        info!(address = %self.local_addr, advertised = %format!("{}:{}", broker.advertised_host, broker.advertised_port), "strom broker ready");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(error) => {
                            warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = connections.clone().try_acquire_owned() else {
                        warn!(%peer, max = broker.config.max_connections, "max.connections reached; closing new connection");
                        drop(stream);
                        continue;
                    };
                    let broker = broker.clone();
                    tokio::spawn(async move {
                        serve_connection(broker, stream, peer).await;
                        drop(permit);
                    });
                }
            }
        }
        info!("shutting down: closing logs");
        background.abort();
        group_timers.abort();
        let closing = broker.clone();
        let _ = tokio::task::spawn_blocking(move || closing.partitions.close_all()).await;
        info!("stopped");
    }
}

/// Retention and time-based flushing, off the request path.
fn spawn_background(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let retention_every =
            Duration::from_millis(broker.config.retention_check_interval_ms as u64);
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
                        for partition in broker.partitions.all() {
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

fn enforce_retention(broker: &Broker) {
    for partition in broker.partitions.all() {
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
