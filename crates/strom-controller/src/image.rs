//! The in-memory metadata image: the result of applying every record of the log in order.
//!
//! Sharing: the broker holds an `Arc<MetadataImage>` and swaps in a new one after each
//! change, so readers never lock. To keep building the next image cheap, each topic sits
//! behind its own `Arc`: cloning the image copies the maps' pointers, not the partitions or
//! configs, and applying a record to a topic copies only that topic (`Arc::make_mut`).

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::acl::{AclIndex, QuotaTable};
use crate::error::ImageError;
use crate::record::MetadataRecord;

/// A registered broker and where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Every listener, by name; empty for a registration from before listeners were
    /// registered (see [`BrokerRegistration::endpoint`]).
    pub listeners: Vec<crate::record::BrokerListener>,
    /// A fenced broker may not lead a partition or be in an ISR, and gets no new replicas.
    /// A `RegisterBroker` record alone leaves a broker unfenced (the single-voter
    /// [`crate::MetadataQuorum`] has no heartbeats); the replicated quorum writes a
    /// `FenceBroker` with every new registration, so there a broker is fenced until its
    /// first heartbeat, as in KRaft.
    pub fenced: bool,
}

impl BrokerRegistration {
    /// Where to reach the broker on listener `name`: that listener's advertised address;
    /// for a registration without listeners (an older log), its one address. `None` when
    /// the broker has no such listener (a client on it is not told about that broker, as
    /// in Kafka).
    pub fn endpoint(&self, name: &str) -> Option<(&str, u16)> {
        if self.listeners.is_empty() {
            return Some((&self.host, self.port));
        }
        self.listeners
            .iter()
            .find(|listener| listener.name == name)
            .map(|listener| (listener.host.as_str(), listener.port))
    }
}

/// One partition's assignment and leadership.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionState {
    pub partition: i32,
    pub replicas: Vec<i32>,
    /// -1 when no replica can lead (the partition is offline).
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// Goes up by one on every leader or ISR change (`PartitionChange` record); 0 at
    /// creation. AlterPartition must name the current one.
    pub partition_epoch: i32,
    /// Replicas a reassignment in progress is adding (empty: none in progress).
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// Replicas a reassignment in progress will remove once the added ones are in sync.
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

/// A topic: its identity, its partitions (index `i` holds partition `i`; no holes) and the
/// configs set on it explicitly (absent keys fall back to the broker defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionState>,
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).expect("partition count is bounded by the controller")
    }

    /// The number of replicas of partition 0 (all partitions share it), 0 when the topic
    /// has no partitions yet.
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map(|p| i16::try_from(p.replicas.len()).expect("replica lists are short"))
            .unwrap_or(0)
    }
}

/// The cluster metadata at one point of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    cluster_id: Option<String>,
    brokers: BTreeMap<i32, BrokerRegistration>,
    topics_by_id: BTreeMap<Uuid, Arc<TopicImage>>,
    topic_ids_by_name: BTreeMap<String, Uuid>,
    /// SCRAM credentials by (user, mechanism).
    scram_credentials: BTreeMap<(String, i8), ScramCredentialRecord>,
    /// ACL bindings, indexed for the authoriser; shared between images until one changes.
    acls: Arc<AclIndex>,
    /// Client quotas by entity.
    client_quotas: Arc<QuotaTable>,
    /// Dynamic broker configs: `None` = the cluster-wide default, `Some(id)` = one broker.
    broker_configs: Arc<BTreeMap<Option<i32>, BTreeMap<String, String>>>,
    last_offset: Option<u64>,
}

/// A stored SCRAM credential (hex-encoded salt and keys, as in the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialRecord {
    pub salt: String,
    pub iterations: i32,
    pub stored_key: String,
    pub server_key: String,
}

impl MetadataImage {
    /// An image with nothing applied.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The cluster id, `None` only before the log's first entry is applied.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Offset of the last record applied through [`MetadataImage::apply_entry`]: the
    /// image's version. `None` for an empty image.
    pub fn last_offset(&self) -> Option<u64> {
        self.last_offset
    }

    pub fn brokers(&self) -> &BTreeMap<i32, BrokerRegistration> {
        &self.brokers
    }

    pub fn broker(&self, broker_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&broker_id)
    }

    /// Registered broker ids, ascending.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    /// Registered brokers that are not fenced, ascending: those that may lead, be in an
    /// ISR and receive new replicas.
    pub fn unfenced_broker_ids(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|broker| !broker.fenced)
            .map(|broker| broker.broker_id)
            .collect()
    }

    /// Registered brokers that are fenced, ascending.
    pub fn fenced_broker_ids(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|broker| broker.fenced)
            .map(|broker| broker.broker_id)
            .collect()
    }

    /// Whether `broker_id` is registered and not fenced.
    pub fn is_broker_unfenced(&self, broker_id: i32) -> bool {
        self.brokers.get(&broker_id).is_some_and(|b| !b.fenced)
    }

    /// Partition `partition` of topic `topic_id`.
    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.topics_by_id.get(&topic_id)?.partitions.get(index)
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|id| self.topics_by_id.get(id))
    }

    pub fn topic_by_id(&self, topic_id: Uuid) -> Option<&Arc<TopicImage>> {
        self.topics_by_id.get(&topic_id)
    }

    /// All topics, ordered by name.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> + '_ {
        self.topic_ids_by_name
            .values()
            .map(|id| &self.topics_by_id[id])
    }

    pub fn topic_count(&self) -> usize {
        self.topics_by_id.len()
    }

    /// Applies one log entry (records from `base_offset` on) and advances
    /// [`MetadataImage::last_offset`]. Stops at the first record that does not fit; the
    /// caller must then discard this image (it may be half-applied).
    pub fn apply_entry(
        &mut self,
        base_offset: u64,
        records: &[MetadataRecord],
    ) -> Result<(), (u64, ImageError)> {
        for (offset, record) in (base_offset..).zip(records) {
            self.apply(record).map_err(|error| (offset, error))?;
            self.last_offset = Some(offset);
        }
        Ok(())
    }

    /// Applies one record. A record that contradicts the image (a partition of an unknown
    /// topic, a second cluster id, ...) is refused; the controller never writes one, so
    /// this means a corrupt log or a bug.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), ImageError> {
        match record {
            MetadataRecord::ClusterId { cluster_id } => match &self.cluster_id {
                Some(existing) if existing != cluster_id => {
                    return Err(ImageError::ClusterIdChanged {
                        existing: existing.clone(),
                        new: cluster_id.clone(),
                    })
                }
                _ => self.cluster_id = Some(cluster_id.clone()),
            },
            MetadataRecord::RegisterBroker {
                broker_id,
                host,
                port,
                rack,
                listeners,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        listeners: listeners.clone(),
                        fenced: false,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker_id } => {
                self.broker_mut(*broker_id)?.fenced = true;
            }
            MetadataRecord::UnfenceBroker { broker_id } => {
                self.broker_mut(*broker_id)?.fenced = false;
            }
            MetadataRecord::UnregisterBroker { broker_id } => {
                self.brokers
                    .remove(broker_id)
                    .ok_or(ImageError::UnknownBroker {
                        broker_id: *broker_id,
                    })?;
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                leader,
                leader_epoch,
                isr,
                partition_epoch,
            } => {
                let topic = Arc::make_mut(self.topic_mut(*topic_id)?);
                let state = usize::try_from(*partition)
                    .ok()
                    .and_then(|index| topic.partitions.get_mut(index))
                    .ok_or(ImageError::UnknownPartition {
                        topic_id: *topic_id,
                        partition: *partition,
                    })?;
                state.leader = *leader;
                state.leader_epoch = *leader_epoch;
                state.isr = isr.clone();
                state.partition_epoch = *partition_epoch;
            }
            MetadataRecord::PartitionReassignment {
                topic_id,
                partition,
                replicas,
                adding,
                removing,
                leader,
                leader_epoch,
                isr,
                partition_epoch,
            } => {
                let topic = Arc::make_mut(self.topic_mut(*topic_id)?);
                let state = usize::try_from(*partition)
                    .ok()
                    .and_then(|index| topic.partitions.get_mut(index))
                    .ok_or(ImageError::UnknownPartition {
                        topic_id: *topic_id,
                        partition: *partition,
                    })?;
                state.replicas = replicas.clone();
                state.adding_replicas = adding.clone();
                state.removing_replicas = removing.clone();
                state.leader = *leader;
                state.leader_epoch = *leader_epoch;
                state.isr = isr.clone();
                state.partition_epoch = *partition_epoch;
            }
            MetadataRecord::Topic { name, topic_id } => {
                if let Some(existing) = self.topic_ids_by_name.get(name) {
                    return Err(ImageError::DuplicateTopicName {
                        name: name.clone(),
                        existing: *existing,
                    });
                }
                if self.topics_by_id.contains_key(topic_id) {
                    return Err(ImageError::DuplicateTopicId {
                        topic_id: *topic_id,
                    });
                }
                self.topic_ids_by_name.insert(name.clone(), *topic_id);
                self.topics_by_id.insert(
                    *topic_id,
                    Arc::new(TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    }),
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                leader,
                leader_epoch,
                isr,
            } => {
                let topic = Arc::make_mut(self.topic_mut(*topic_id)?);
                let state = PartitionState {
                    partition: *partition,
                    replicas: replicas.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    isr: isr.clone(),
                    partition_epoch: 0,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                };
                let count = topic.partitions.len();
                match usize::try_from(*partition) {
                    Ok(index) if index < count => topic.partitions[index] = state,
                    Ok(index) if index == count => topic.partitions.push(state),
                    _ => {
                        return Err(ImageError::PartitionHole {
                            topic_id: *topic_id,
                            partition: *partition,
                            count,
                        })
                    }
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let topic =
                    self.topics_by_id
                        .remove(topic_id)
                        .ok_or(ImageError::UnknownTopicId {
                            topic_id: *topic_id,
                        })?;
                self.topic_ids_by_name.remove(&topic.name);
            }
            MetadataRecord::TopicConfig {
                topic_id,
                key,
                value,
            } => {
                let topic = Arc::make_mut(self.topic_mut(*topic_id)?);
                match value {
                    Some(value) => topic.configs.insert(key.clone(), value.clone()),
                    None => topic.configs.remove(key),
                };
            }
            MetadataRecord::UserScramCredential {
                user,
                mechanism,
                salt,
                iterations,
                stored_key,
                server_key,
            } => {
                self.scram_credentials.insert(
                    (user.clone(), *mechanism),
                    ScramCredentialRecord {
                        salt: salt.clone(),
                        iterations: *iterations,
                        stored_key: stored_key.clone(),
                        server_key: server_key.clone(),
                    },
                );
            }
            MetadataRecord::RemoveUserScramCredential { user, mechanism } => {
                self.scram_credentials.remove(&(user.clone(), *mechanism));
            }
            MetadataRecord::Acl { acl } => {
                Arc::make_mut(&mut self.acls).insert(acl.clone());
            }
            MetadataRecord::RemoveAcl { acl } => {
                Arc::make_mut(&mut self.acls).remove(acl);
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                Arc::make_mut(&mut self.client_quotas).set(entity, key, *value);
            }
            MetadataRecord::BrokerConfig { broker, key, value } => {
                let configs = Arc::make_mut(&mut self.broker_configs);
                match value {
                    Some(value) => {
                        configs
                            .entry(*broker)
                            .or_default()
                            .insert(key.clone(), value.clone());
                    }
                    None => {
                        if let Some(keys) = configs.get_mut(broker) {
                            keys.remove(key);
                            if keys.is_empty() {
                                configs.remove(broker);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The credential of `user` for SCRAM `mechanism` (1 = SHA-256, 2 = SHA-512).
    pub fn scram_credential(&self, user: &str, mechanism: i8) -> Option<&ScramCredentialRecord> {
        self.scram_credentials.get(&(user.to_string(), mechanism))
    }

    /// Every ACL binding, indexed by resource.
    pub fn acls(&self) -> &AclIndex {
        &self.acls
    }

    /// Client quotas by entity.
    pub fn client_quotas(&self) -> &QuotaTable {
        &self.client_quotas
    }

    /// The dynamic broker configs of one level: `None` = the cluster-wide default,
    /// `Some(id)` = broker `id`'s own. Empty when none is set.
    pub fn broker_configs(&self, broker: Option<i32>) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.broker_configs.get(&broker).unwrap_or(&EMPTY)
    }

    /// Every user with a SCRAM credential, with its mechanisms and iteration counts.
    pub fn scram_users(&self) -> BTreeMap<String, Vec<(i8, i32)>> {
        let mut users: BTreeMap<String, Vec<(i8, i32)>> = BTreeMap::new();
        for ((user, mechanism), credential) in &self.scram_credentials {
            users
                .entry(user.clone())
                .or_default()
                .push((*mechanism, credential.iterations));
        }
        users
    }

    /// Records that rebuild this image when applied in order to an empty one: what a Raft
    /// snapshot stores instead of the history. Order: cluster id, brokers, each topic with
    /// its partitions and configs, SCRAM credentials, ACLs (sorted), dynamic broker configs,
    /// client quotas.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            records.push(MetadataRecord::ClusterId {
                cluster_id: cluster_id.clone(),
            });
        }
        for b in self.brokers.values() {
            records.push(MetadataRecord::RegisterBroker {
                broker_id: b.broker_id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
                listeners: b.listeners.clone(),
            });
            if b.fenced {
                records.push(MetadataRecord::FenceBroker {
                    broker_id: b.broker_id,
                });
            }
        }
        for topic in self.topics_by_id.values() {
            let topic_id = topic.topic_id;
            records.push(MetadataRecord::Topic {
                name: topic.name.clone(),
                topic_id,
            });
            for p in &topic.partitions {
                records.push(MetadataRecord::Partition {
                    topic_id,
                    partition: p.partition,
                    replicas: p.replicas.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    isr: p.isr.clone(),
                });
                // The creation record has no partition epoch (nor a reassignment in
                // progress): carry them in a change.
                if !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty() {
                    records.push(MetadataRecord::PartitionReassignment {
                        topic_id,
                        partition: p.partition,
                        replicas: p.replicas.clone(),
                        adding: p.adding_replicas.clone(),
                        removing: p.removing_replicas.clone(),
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        isr: p.isr.clone(),
                        partition_epoch: p.partition_epoch,
                    });
                } else if p.partition_epoch != 0 {
                    records.push(MetadataRecord::PartitionChange {
                        topic_id,
                        partition: p.partition,
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        isr: p.isr.clone(),
                        partition_epoch: p.partition_epoch,
                    });
                }
            }
            records.extend(
                topic
                    .configs
                    .iter()
                    .map(|(key, value)| MetadataRecord::TopicConfig {
                        topic_id,
                        key: key.clone(),
                        value: Some(value.clone()),
                    }),
            );
        }
        records.extend(self.scram_credentials.iter().map(|((user, mechanism), c)| {
            MetadataRecord::UserScramCredential {
                user: user.clone(),
                mechanism: *mechanism,
                salt: c.salt.clone(),
                iterations: c.iterations,
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
            }
        }));
        records.extend(
            self.acls
                .all()
                .into_iter()
                .map(|acl| MetadataRecord::Acl { acl: acl.clone() }),
        );
        for (broker, values) in self.broker_configs.iter() {
            records.extend(
                values
                    .iter()
                    .map(|(key, value)| MetadataRecord::BrokerConfig {
                        broker: *broker,
                        key: key.clone(),
                        value: Some(value.clone()),
                    }),
            );
        }
        for (entity, values) in self.client_quotas.iter() {
            records.extend(
                values
                    .iter()
                    .map(|(key, value)| MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key: key.clone(),
                        value: Some(*value),
                    }),
            );
        }
        records
    }

    /// Rebuilds an image from [`MetadataImage::to_records`] output, at version
    /// `last_offset` (the offset of the last record the snapshotted image had applied).
    pub fn from_snapshot(
        records: &[MetadataRecord],
        last_offset: Option<u64>,
    ) -> Result<Self, ImageError> {
        let mut image = Self::empty();
        for record in records {
            image.apply(record)?;
        }
        image.last_offset = last_offset;
        Ok(image)
    }

    fn broker_mut(&mut self, broker_id: i32) -> Result<&mut BrokerRegistration, ImageError> {
        self.brokers
            .get_mut(&broker_id)
            .ok_or(ImageError::UnknownBroker { broker_id })
    }

    fn topic_mut(&mut self, topic_id: Uuid) -> Result<&mut Arc<TopicImage>, ImageError> {
        self.topics_by_id
            .get_mut(&topic_id)
            .ok_or(ImageError::UnknownTopicId { topic_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_records(name: &str, topic_id: Uuid, partitions: i32) -> Vec<MetadataRecord> {
        let mut records = vec![MetadataRecord::Topic {
            name: name.to_string(),
            topic_id,
        }];
        records.extend((0..partitions).map(|partition| MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: vec![1],
            leader: 1,
            leader_epoch: 0,
            isr: vec![1],
        }));
        records
    }

    #[test]
    fn given_topic_records_when_applied_should_be_found_by_name_and_id() {
        let id = Uuid::from_u128(42);
        let mut image = MetadataImage::empty();
        image
            .apply_entry(0, &topic_records("orders", id, 3))
            .unwrap();
        assert_eq!(image.last_offset(), Some(3));
        let topic = image.topic("orders").unwrap();
        assert_eq!(topic.topic_id, id);
        assert_eq!(topic.partition_count(), 3);
        assert_eq!(image.topic_by_id(id).unwrap().name, "orders");
    }

    #[test]
    fn given_shared_snapshot_when_next_image_changes_a_topic_should_leave_snapshot_untouched() {
        let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let mut image = MetadataImage::empty();
        image.apply_entry(0, &topic_records("a", a, 1)).unwrap();
        image.apply_entry(2, &topic_records("b", b, 1)).unwrap();
        let snapshot = Arc::new(image);

        let mut next = (*snapshot).clone();
        next.apply(&MetadataRecord::TopicConfig {
            topic_id: a,
            key: "retention.ms".to_string(),
            value: Some("1000".to_string()),
        })
        .unwrap();

        assert!(snapshot.topic("a").unwrap().configs.is_empty());
        assert_eq!(next.topic("a").unwrap().configs["retention.ms"], "1000");
        // The untouched topic is still shared, not copied.
        assert!(Arc::ptr_eq(
            snapshot.topic("b").unwrap(),
            next.topic("b").unwrap()
        ));
    }

    #[test]
    fn given_contradicting_records_when_applied_should_refuse() {
        let id = Uuid::from_u128(5);
        let mut image = MetadataImage::empty();
        image.apply_entry(0, &topic_records("t", id, 1)).unwrap();
        assert!(matches!(
            image.apply(&MetadataRecord::Partition {
                topic_id: id,
                partition: 5,
                replicas: vec![1],
                leader: 1,
                leader_epoch: 0,
                isr: vec![1],
            }),
            Err(ImageError::PartitionHole { count: 1, .. })
        ));
        assert!(matches!(
            image.apply(&MetadataRecord::Topic {
                name: "t".to_string(),
                topic_id: Uuid::from_u128(6)
            }),
            Err(ImageError::DuplicateTopicName { .. })
        ));
        image
            .apply(&MetadataRecord::ClusterId {
                cluster_id: "one".to_string(),
            })
            .unwrap();
        assert!(matches!(
            image.apply(&MetadataRecord::ClusterId {
                cluster_id: "two".to_string()
            }),
            Err(ImageError::ClusterIdChanged { .. })
        ));
        image
            .apply(&MetadataRecord::RemoveTopic { topic_id: id })
            .unwrap();
        assert!(image.topic("t").is_none());
        assert!(matches!(
            image.apply(&MetadataRecord::RemoveTopic { topic_id: id }),
            Err(ImageError::UnknownTopicId { .. })
        ));
    }

    #[test]
    fn given_fenced_broker_and_changed_partition_when_snapshotted_should_rebuild_equal_image() {
        let id = Uuid::from_u128(8);
        let mut image = MetadataImage::empty();
        let mut records = vec![MetadataRecord::RegisterBroker {
            broker_id: 1,
            host: "h".to_string(),
            port: 1,
            rack: None,
            listeners: Vec::new(),
        }];
        records.extend(topic_records("t", id, 2));
        records.push(MetadataRecord::FenceBroker { broker_id: 1 });
        records.push(MetadataRecord::PartitionChange {
            topic_id: id,
            partition: 1,
            leader: -1,
            leader_epoch: 3,
            isr: vec![1],
            partition_epoch: 5,
        });
        image.apply_entry(0, &records).unwrap();
        assert_eq!(image.fenced_broker_ids(), vec![1]);
        assert!(image.unfenced_broker_ids().is_empty());
        let changed = image.partition(id, 1).unwrap();
        assert_eq!((changed.leader, changed.partition_epoch), (-1, 5));
        assert_eq!(image.partition(id, 0).unwrap().partition_epoch, 0);
        let rebuilt =
            MetadataImage::from_snapshot(&image.to_records(), image.last_offset()).unwrap();
        assert_eq!(rebuilt, image);
        assert!(matches!(
            image.apply(&MetadataRecord::UnfenceBroker { broker_id: 9 }),
            Err(ImageError::UnknownBroker { broker_id: 9 })
        ));
        assert!(matches!(
            image.apply(&MetadataRecord::PartitionChange {
                topic_id: id,
                partition: 2,
                leader: 1,
                leader_epoch: 0,
                isr: vec![1],
                partition_epoch: 1,
            }),
            Err(ImageError::UnknownPartition { partition: 2, .. })
        ));
    }
}
