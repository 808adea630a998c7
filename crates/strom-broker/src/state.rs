//! The broker's shared state: config, metadata image, hosted partitions, producer ids, and
//! the signal that wakes long-polling fetches.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strom_controller::MetadataImage;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::partition::{PartitionError, PartitionRegistry};
use crate::producer_ids::ProducerIdAllocator;

/// The broker's clock: epoch milliseconds advanced by the monotonic clock, so a step of the
/// wall clock does not expire sessions, transactions or ISR members
/// ([`strom_coordinator::clock::now_ms`]).
pub fn now_ms() -> i64 {
    strom_coordinator::clock::now_ms()
}

pub struct Broker {
    config: BrokerConfig,
    /// Host and port of the inter-broker listener (`inter.broker.listener.name`): what
    /// this broker registers as its address.
    advertised_host: String,
    advertised_port: u16,
    /// Every listener's advertised address, in config order; registered so that a client
    /// on one listener is told the other brokers' addresses on the same listener.
    advertised_listeners: Vec<strom_controller::BrokerListener>,
    /// How connections to other brokers are secured ([`crate::inter_broker`]).
    inter_broker_security: strom_client::connection::ClientSecurity,
    /// The metadata log and the controller's decisions (local, or a Raft quorum); readers
    /// use [`Broker::image`].
    metadata: crate::metadata::Metadata,
    image: RwLock<Arc<MetadataImage>>,
    /// Serialises [`Broker::apply_image`].
    applying: Mutex<()>,
    partitions: PartitionRegistry,
    producer_ids: Mutex<ProducerIdAllocator>,
    /// Consumer groups and committed offsets.
    groups: Arc<GroupCoordinator>,
    /// Transactional producers (exactly-once).
    txns: Arc<crate::txn::TransactionCoordinator>,
    /// Bumped after every append; long-polling fetches wait for it to change.
    appended: watch::Sender<u64>,
    /// Request, traffic and connection instruments (rendered by the HTTP endpoint).
    metrics: Metrics,
    /// ACL checks (`authorizer.class.name`); see [`crate::authz`].
    authorizer: crate::authz::Authorizer,
    /// Client quota measurement and throttling; see [`crate::quota`].
    quotas: crate::quota::QuotaManager,
    /// Fetch sessions (KIP-227); locked briefly, never across a long poll.
    fetch_sessions: Mutex<crate::fetch_session::FetchSessionCache>,
    /// The schema registry's state, shared by its REST listener and the produce path's
    /// schema validation; see [`crate::schema_validation::registry`].
    schema_registry: std::sync::OnceLock<Arc<strom_registry::Registry>>,
    /// ISR changes waiting for the next AlterPartition request ([`crate::cluster::isr_sender`]).
    isr_sender: crate::cluster::isr_sender::IsrSender,
}

/// Read access to the broker's services; the fields themselves are private, so only
/// [`Broker::new`] decides what a broker is made of.
impl Broker {
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn advertised_host(&self) -> &String {
        &self.advertised_host
    }

    pub fn advertised_port(&self) -> u16 {
        self.advertised_port
    }

    pub fn advertised_listeners(&self) -> &Vec<strom_controller::BrokerListener> {
        &self.advertised_listeners
    }

    pub fn inter_broker_security(&self) -> &strom_client::connection::ClientSecurity {
        &self.inter_broker_security
    }

    pub fn metadata(&self) -> &crate::metadata::Metadata {
        &self.metadata
    }

    pub fn partitions(&self) -> &PartitionRegistry {
        &self.partitions
    }

    pub fn producer_ids(&self) -> &Mutex<ProducerIdAllocator> {
        &self.producer_ids
    }

    pub fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.groups
    }

    pub fn txns(&self) -> &Arc<crate::txn::TransactionCoordinator> {
        &self.txns
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn authorizer(&self) -> &crate::authz::Authorizer {
        &self.authorizer
    }

    pub fn quotas(&self) -> &crate::quota::QuotaManager {
        &self.quotas
    }

    pub fn fetch_sessions(&self) -> &Mutex<crate::fetch_session::FetchSessionCache> {
        &self.fetch_sessions
    }

    pub fn schema_registry(&self) -> &std::sync::OnceLock<Arc<strom_registry::Registry>> {
        &self.schema_registry
    }

    pub fn isr_sender(&self) -> &crate::cluster::isr_sender::IsrSender {
        &self.isr_sender
    }
}

impl Broker {
    /// `advertised_listeners` must include the inter-broker listener.
    pub fn new(
        config: BrokerConfig,
        advertised_listeners: Vec<strom_controller::BrokerListener>,
        inter_broker_security: strom_client::connection::ClientSecurity,
        metadata: crate::metadata::Metadata,
        producer_ids: ProducerIdAllocator,
    ) -> Result<Arc<Self>, PartitionError> {
        let inter_broker = advertised_listeners
            .iter()
            .find(|listener| listener.name == config.inter_broker_listener)
            .expect("the config validated the inter-broker listener name")
            .clone();
        let image = metadata.image();
        let broker = Arc::new_cyclic(|weak| {
            let groups = Arc::new(GroupCoordinator::new(
                crate::group::runtime_config(&config),
                Arc::new(crate::internal_topics::BrokerLog::new(weak.clone())),
                Arc::new(strom_coordinator::clock::SystemClock),
            ));
            let txns = crate::txn::TransactionCoordinator::new(
                crate::txn::runtime_config(&config),
                Arc::new(crate::internal_topics::BrokerLog::new(weak.clone())),
                Arc::new(strom_coordinator::clock::SystemClock),
                Arc::new(crate::txn::BrokerProducerIds(weak.clone())),
                groups.clone(),
            );
            Broker {
                advertised_host: inter_broker.host,
                advertised_port: inter_broker.port,
                advertised_listeners,
                inter_broker_security,
                metadata,
                image: RwLock::new(image.clone()),
                applying: Mutex::new(()),
                partitions: PartitionRegistry::default(),
                producer_ids: Mutex::new(producer_ids),
                groups,
                txns,
                appended: watch::channel(0).0,
                metrics: Metrics::new(now_ms()),
                authorizer: crate::authz::Authorizer::new(&config.security),
                quotas: crate::quota::QuotaManager::new(&config.security),
                fetch_sessions: Mutex::new(crate::fetch_session::FetchSessionCache::new(
                    config.fetch_session_slots,
                    rand::random(),
                )),
                schema_registry: std::sync::OnceLock::new(),
                isr_sender: Default::default(),
                config,
            }
        });
        broker
            .partitions
            .sync_with_image(&broker.config, &image, now_ms())?;
        Ok(broker)
    }

    /// The current metadata image; cheap (an `Arc` clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// Installs the image after a metadata change and opens/deletes partitions to match.
    /// One at a time (two appliers racing would open a partition twice), and never an
    /// image older than the installed one (a change may come back through two paths).
    pub fn apply_image(&self, image: Arc<MetadataImage>) -> Result<(), PartitionError> {
        let _one_at_a_time = self.applying.lock();
        let current = self.image();
        if let (Some(new), Some(old)) = (image.last_offset(), current.last_offset()) {
            if new < old {
                return Ok(());
            }
        }
        *self.image.write() = image.clone();
        self.partitions
            .sync_with_image(&self.config, &image, now_ms())
    }

    /// [`Broker::apply_image`] on the blocking pool: opening or deleting thousands of
    /// partitions creates files and fsyncs directories, which must not stall the runtime's
    /// workers (heartbeats to the controller, requests) for seconds. Every caller on the
    /// runtime uses this, so none waits there for `applying` either.
    pub async fn apply_image_off_runtime(
        self: &Arc<Self>,
        image: Arc<MetadataImage>,
    ) -> Result<(), PartitionError> {
        let broker = Arc::clone(self);
        match tokio::task::spawn_blocking(move || broker.apply_image(image)).await {
            Ok(result) => result,
            // A panic while applying stays a panic, as it was when applied inline.
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    pub fn notify_appended(&self) {
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
