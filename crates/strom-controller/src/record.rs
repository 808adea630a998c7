//! The metadata log's records: the only facts the image is built from.
//!
//! Records are serialized as JSON inside a CRC-protected frame (see `log.rs`). Field names
//! are part of the on-disk format: renaming one is a format change.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One fact in the cluster metadata log. Applying every record in log order to an empty
/// [`crate::MetadataImage`] rebuilds the cluster's metadata.
/// One named listener of a broker, as it is advertised (`advertised.listeners`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerListener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// The cluster's identity; written once, in the log's first entry.
    ClusterId { cluster_id: String },
    /// A broker joined (or re-joined with a new address). A later record for the same
    /// `broker_id` replaces the earlier one.
    RegisterBroker {
        broker_id: i32,
        host: String,
        port: u16,
        rack: Option<String>,
        /// Every listener of the broker, so a client (or another broker) is told the
        /// address on the listener it uses. Empty in records written before listeners
        /// were registered: `host:port` serves every listener then.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listeners: Vec<BrokerListener>,
    },
    /// A topic was created. Its partitions follow as [`MetadataRecord::Partition`] records.
    Topic {
        name: String,
        #[serde(with = "uuid_text")]
        topic_id: Uuid,
    },
    /// A partition's full state (assignment, leader and ISR); a later record for the same
    /// `(topic_id, partition)` replaces the earlier one.
    Partition {
        #[serde(with = "uuid_text")]
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
    },
    /// A topic and everything under it (partitions, configs) was deleted.
    RemoveTopic {
        #[serde(with = "uuid_text")]
        topic_id: Uuid,
    },
    /// A topic config was set (`Some`) or removed back to the broker default (`None`).
    TopicConfig {
        #[serde(with = "uuid_text")]
        topic_id: Uuid,
        key: String,
        value: Option<String>,
    },
    /// A user's SCRAM credential for one mechanism (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512),
    /// as RFC 5802 stores it: never the password, only the salt, the iteration count and
    /// the keys derived from the salted password (hex).
    UserScramCredential {
        user: String,
        mechanism: i8,
        salt: String,
        iterations: i32,
        stored_key: String,
        server_key: String,
    },
    /// A user's SCRAM credential for one mechanism was removed.
    RemoveUserScramCredential { user: String, mechanism: i8 },
    /// An ACL binding was created (creating an existing binding writes nothing).
    Acl { acl: crate::acl::AclBinding },
    /// An ACL binding was deleted.
    RemoveAcl { acl: crate::acl::AclBinding },
    /// A client quota was set (`Some`) or removed (`None`) on an entity (its parts sorted
    /// by entity type; a part without a name is that type's default).
    ClientQuota {
        entity: crate::acl::QuotaEntity,
        key: String,
        value: Option<crate::acl::QuotaValue>,
    },
    /// A dynamic broker config was set (`Some`) or removed (`None`): Kafka's ConfigRecord on
    /// a BROKER resource. `broker` is the node id, or `None` for the cluster-wide default
    /// (Kafka's empty resource name). Every broker applies it from its image.
    BrokerConfig {
        broker: Option<i32>,
        key: String,
        value: Option<String>,
    },
    /// A broker lost its session (or shut down): it may not lead or be in an ISR until
    /// [`MetadataRecord::UnfenceBroker`]. Written with the [`MetadataRecord::PartitionChange`]s
    /// that move its partitions away, in the same entry.
    FenceBroker { broker_id: i32 },
    /// A fenced broker heartbeated again and may lead and join ISRs.
    UnfenceBroker { broker_id: i32 },
    /// A broker left the cluster for good (Kafka's UnregisterBrokerRecord): its
    /// registration is removed, so it is no longer listed, may not lead or be in an ISR,
    /// and gets no new replicas. Written after the `PartitionChange`s that take it out of
    /// leaderships and ISRs, in the same entry. A later `RegisterBroker` for the same id
    /// brings it back as a new broker.
    UnregisterBroker { broker_id: i32 },
    /// A partition's leadership or ISR changed (fencing, AlterPartition, an election).
    /// Unlike [`MetadataRecord::Partition`] (the full state at creation) it leaves the
    /// replica assignment as it is and carries the partition epoch, which goes up by one on
    /// every change.
    PartitionChange {
        #[serde(with = "uuid_text")]
        topic_id: Uuid,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
        partition_epoch: i32,
    },
    /// A partition's replica set changed by a reassignment (KIP-455): started (`adding`
    /// and `removing` say which replicas are moving), completed or cancelled (both
    /// empty). Carries the whole leadership state, as the leader may change with it.
    PartitionReassignment {
        #[serde(with = "uuid_text")]
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        adding: Vec<i32>,
        removing: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
        partition_epoch: i32,
    },
}

/// Uuids as their hyphenated text form, so the log stays readable with `jq` and does not
/// depend on the `uuid` crate's serde feature.
pub(crate) mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    pub fn serialize<S: Serializer>(id: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&id.hyphenated())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Uuid::parse_str(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_record_kind_when_json_round_tripped_should_be_equal() {
        let topic_id = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        let records = vec![
            MetadataRecord::ClusterId {
                cluster_id: "abcdefghijklmnopqrstuv".to_string(),
            },
            MetadataRecord::RegisterBroker {
                broker_id: 1,
                host: "localhost".to_string(),
                port: 9092,
                rack: Some("r1".to_string()),
                listeners: vec![BrokerListener {
                    name: "PLAINTEXT".to_string(),
                    host: "localhost".to_string(),
                    port: 9092,
                }],
            },
            MetadataRecord::Topic {
                name: "orders".to_string(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: 0,
                replicas: vec![1],
                leader: 1,
                leader_epoch: 0,
                isr: vec![1],
            },
            MetadataRecord::TopicConfig {
                topic_id,
                key: "retention.ms".to_string(),
                value: None,
            },
            MetadataRecord::RemoveTopic { topic_id },
            MetadataRecord::Acl {
                acl: crate::acl::AclBinding {
                    resource_type: 2,
                    resource_name: "orders".to_string(),
                    pattern_type: 4,
                    principal: "User:alice".to_string(),
                    host: "*".to_string(),
                    operation: 3,
                    permission: 3,
                },
            },
            MetadataRecord::ClientQuota {
                entity: vec![crate::acl::QuotaEntityPart {
                    entity_type: "client-id".to_string(),
                    name: None,
                }],
                key: "producer_byte_rate".to_string(),
                value: Some(crate::acl::QuotaValue(1048576.0)),
            },
            MetadataRecord::BrokerConfig {
                broker: None,
                key: "log.retention.ms".to_string(),
                value: Some("3600000".to_string()),
            },
            MetadataRecord::BrokerConfig {
                broker: Some(2),
                key: "message.max.bytes".to_string(),
                value: None,
            },
            MetadataRecord::FenceBroker { broker_id: 2 },
            MetadataRecord::UnfenceBroker { broker_id: 2 },
            MetadataRecord::UnregisterBroker { broker_id: 2 },
            MetadataRecord::PartitionChange {
                topic_id,
                partition: 0,
                leader: 3,
                leader_epoch: 4,
                isr: vec![3, 1],
                partition_epoch: 7,
            },
            MetadataRecord::PartitionReassignment {
                topic_id,
                partition: 0,
                replicas: vec![2, 3, 1],
                adding: vec![3],
                removing: vec![1],
                leader: 1,
                leader_epoch: 5,
                isr: vec![1, 2],
                partition_epoch: 8,
            },
        ];
        let json = serde_json::to_vec(&records).unwrap();
        let back: Vec<MetadataRecord> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, records);
        let text = String::from_utf8(json).unwrap();
        assert!(
            text.contains("12345678-9abc-def0-1234-56789abcdef0"),
            "{text}"
        );
    }
}
