//! The facade the broker calls: decide, append durably, then publish the new image.
//!
//! Today the quorum has one voter, this node, so "committed" means "fsynced to the local
//! metadata log". When Raft arrives the store becomes the replicated log and `commit`
//! waits for a majority; the broker-facing API stays the same.

use std::path::Path;
use std::sync::Arc;

use crate::controller::{
    Controller, CreatePartitions, CreatePartitionsResult, CreateTopic, CreateTopicResult,
    DeleteTopicResult, TopicDefaults, TopicRef,
};
use crate::error::{ControllerError, MetadataError};
use crate::ids::{IdGenerator, RandomIds};
use crate::image::MetadataImage;
use crate::log::{FileMetadataLog, MetadataLogStore};
use crate::reassignment::{ReassignmentRequest, ReassignmentResult};
use crate::record::MetadataRecord;

/// The metadata quorum as seen by the broker: owns the log, the controller's decisions and
/// the current image. Synchronous (each change is one small fsync); call it from a
/// blocking section, behind a `Mutex` if shared.
#[derive(Debug)]
pub struct MetadataQuorum<S: MetadataLogStore = FileMetadataLog> {
    store: S,
    controller: Controller,
    image: Arc<MetadataImage>,
}

impl MetadataQuorum<FileMetadataLog> {
    /// Opens the metadata log under `data_dir` (creating it on first start), replays it,
    /// and on first start writes the cluster id; registers this broker when it is new or
    /// its address changed. Topic ids are random.
    pub fn open(
        data_dir: &Path,
        node_id: i32,
        host: &str,
        port: u16,
    ) -> Result<Self, MetadataError> {
        Self::open_with_ids(data_dir, node_id, host, port, Box::new(RandomIds))
    }

    /// [`MetadataQuorum::open`] with an injected id generator (deterministic tests).
    pub fn open_with_ids(
        data_dir: &Path,
        node_id: i32,
        host: &str,
        port: u16,
        ids: Box<dyn IdGenerator>,
    ) -> Result<Self, MetadataError> {
        let store = FileMetadataLog::open(data_dir)?;
        Self::with_store(store, Controller::new(node_id, ids), host, port)
    }
}

impl<S: MetadataLogStore> MetadataQuorum<S> {
    /// Replays `store` into an image and bootstraps it (cluster id, broker registration).
    pub fn with_store(
        store: S,
        controller: Controller,
        host: &str,
        port: u16,
    ) -> Result<Self, MetadataError> {
        let mut image = MetadataImage::empty();
        let entries = store.read_all()?;
        if let Some(first) = entries.first() {
            if !matches!(
                first.records.first(),
                Some(MetadataRecord::ClusterId { .. })
            ) {
                return Err(MetadataError::MissingClusterId);
            }
        }
        for entry in &entries {
            image
                .apply_entry(entry.base_offset, &entry.records)
                .map_err(|(offset, source)| MetadataError::Replay { offset, source })?;
        }
        // One voter: the log can only be this node's. A different node id on the same data
        // directory would leave a registered broker that never runs, and replicas would be
        // placed on it. (Multi-node replaces this with broker heartbeats and fencing.)
        let registered = image.broker_ids();
        if !registered.is_empty() && !registered.contains(&controller.node_id()) {
            return Err(MetadataError::NodeIdMismatch {
                configured: controller.node_id(),
                registered,
            });
        }
        let mut quorum = Self {
            store,
            controller,
            image: Arc::new(image),
        };
        let records = quorum.controller.bootstrap(&quorum.image, host, port, None);
        quorum.commit(records)?;
        Ok(quorum)
    }

    /// The current image. Cheap (an `Arc` clone); the snapshot never changes, a later
    /// change publishes a new one.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image)
    }

    pub fn cluster_id(&self) -> &str {
        self.image
            .cluster_id()
            .expect("bootstrap writes the cluster id before open returns")
    }

    pub fn node_id(&self) -> i32 {
        self.controller.node_id()
    }

    /// CreateTopics. See [`Controller::create_topics`] for the per-topic rules. `Err` only
    /// when the log could not be written; then nothing was created.
    pub fn create_topics(
        &mut self,
        requests: &[CreateTopic],
        validate_only: bool,
        defaults: &TopicDefaults,
    ) -> Result<Vec<CreateTopicResult>, MetadataError> {
        let decision =
            self.controller
                .create_topics(&self.image, requests, validate_only, defaults);
        self.commit(decision.records)?;
        Ok(decision.response)
    }

    /// DeleteTopics. The topic leaves the image at once; deleting its partition data is
    /// the broker's job when it sees the topic gone.
    pub fn delete_topics(
        &mut self,
        topics: &[TopicRef],
    ) -> Result<Vec<DeleteTopicResult>, MetadataError> {
        let decision = self.controller.delete_topics(&self.image, topics);
        self.commit(decision.records)?;
        Ok(decision.response)
    }

    /// CreatePartitions.
    pub fn create_partitions(
        &mut self,
        requests: &[CreatePartitions],
        validate_only: bool,
    ) -> Result<Vec<CreatePartitionsResult>, MetadataError> {
        let decision = self
            .controller
            .create_partitions(&self.image, requests, validate_only);
        self.commit(decision.records)?;
        Ok(decision.response)
    }

    /// Incremental config change on one topic (`None` removes a key).
    pub fn alter_topic_configs(
        &mut self,
        topic: &str,
        changes: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<Result<(), ControllerError>, MetadataError> {
        let decision =
            self.controller
                .alter_topic_configs(&self.image, topic, changes, validate_only);
        self.commit(decision.records)?;
        Ok(decision.response)
    }

    /// Writes SCRAM credential changes (upserts and removals) as one entry. The broker has
    /// validated them; the controller only records them.
    pub fn alter_scram_credentials(
        &mut self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), MetadataError> {
        let decision = self.controller.alter_scram_credentials(records);
        self.commit(decision.records)
    }

    /// Writes ACL creations and deletions as one entry. The broker has validated them and
    /// left out no-ops.
    pub fn alter_acls(&mut self, records: Vec<MetadataRecord>) -> Result<(), MetadataError> {
        let decision = self.controller.alter_acls(records);
        self.commit(decision.records)
    }

    /// Writes client quota changes as one entry. The broker has validated them.
    pub fn alter_client_quotas(
        &mut self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), MetadataError> {
        let decision = self.controller.alter_client_quotas(records);
        self.commit(decision.records)
    }

    /// Writes dynamic broker config changes as one entry. The broker has validated them.
    pub fn alter_broker_configs(
        &mut self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), MetadataError> {
        let decision = self.controller.alter_broker_configs(records);
        self.commit(decision.records)
    }

    /// AlterPartitionReassignments. With one broker the only valid target is the current
    /// replica list (a no-op); any other is INVALID_REPLICA_ASSIGNMENT (its brokers are not
    /// registered), and a cancel finds nothing in progress.
    pub fn alter_partition_reassignments(
        &mut self,
        requests: &[ReassignmentRequest],
    ) -> Result<Vec<ReassignmentResult>, MetadataError> {
        let decision = self
            .controller
            .alter_partition_reassignments(&self.image, requests);
        self.commit(decision.records)?;
        Ok(decision.response)
    }

    /// Applies `records` to a copy of the image first (so a record the image would refuse
    /// is never written), appends them as one durable entry, then publishes the copy.
    fn commit(&mut self, records: Vec<MetadataRecord>) -> Result<(), MetadataError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut next = (*self.image).clone();
        next.apply_entry(self.store.next_offset(), &records)
            .map_err(|(_, source)| MetadataError::Inconsistent(source))?;
        let last_offset = self.store.append(&records)?;
        assert_eq!(
            Some(last_offset),
            next.last_offset(),
            "store and image offsets diverged"
        );
        self.image = Arc::new(next);
        Ok(())
    }
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;
