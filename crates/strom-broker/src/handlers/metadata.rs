//! Metadata: brokers, topics, partitions, leaders; auto-creates requested topics.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{validate_topic_name, MetadataImage, TopicImage};
use strom_protocol::ErrorCode;

use crate::admin;
use crate::state::Broker;

/// `topic_authorized_operations` when not requested (Kafka's INT32_MIN sentinel).
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Every topic operation allowed (no authoriser yet): READ, WRITE, CREATE, DELETE, ALTER,
/// DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS as bit positions of Kafka's AclOperation codes.
const TOPIC_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
const CLUSTER_OPERATIONS_ALL: i32 =
    (1 << 4) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13);

/// Replicas whose broker is fenced or not registered: clients cannot fetch from them and
/// they may not lead (Kafka's `offline_replicas`).
fn offline_replicas(image: &MetadataImage, replicas: &[i32]) -> Vec<BrokerId> {
    replicas
        .iter()
        .filter(|r| !image.is_broker_unfenced(**r))
        .map(|r| BrokerId(*r))
        .collect()
}

fn topic_response(
    image: &MetadataImage,
    topic: &TopicImage,
    include_ops: bool,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(0)
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(topic.name.starts_with("__"))
        .with_topic_authorized_operations(if include_ops {
            TOPIC_OPERATIONS_ALL
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        })
        .with_partitions(
            topic
                .partitions
                .iter()
                .map(|p| {
                    // An offline partition answers LEADER_NOT_AVAILABLE, as in Kafka, so
                    // clients wait and retry instead of using leader -1.
                    let error = if p.leader < 0 {
                        ErrorCode::LeaderNotAvailable.code()
                    } else {
                        0
                    };
                    MetadataResponsePartition::default()
                        .with_error_code(error)
                        .with_partition_index(p.partition)
                        .with_leader_id(BrokerId(p.leader))
                        .with_leader_epoch(p.leader_epoch)
                        .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                        .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect())
                        .with_offline_replicas(offline_replicas(image, &p.replicas))
                })
                .collect(),
        )
}

fn error_topic(
    name: Option<String>,
    topic_id: uuid::Uuid,
    error: ErrorCode,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(topic_id)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: MetadataRequest,
    version: i16,
    advertised: super::Advertised,
) -> MetadataResponse {
    let include_ops = request.include_topic_authorized_operations;
    // v0 sends an empty list for "all topics"; v1+ sends null.
    let requested = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(topics),
    };
    let auto_create =
        broker.config().auto_create_topics && (version < 4 || request.allow_auto_topic_creation);

    let mut image: Arc<MetadataImage> = broker.image();
    let topics = match requested {
        None => image
            .topics()
            .map(|t| topic_response(&image, t, include_ops))
            .collect(),
        Some(requested) => {
            // Create the missing ones first, in one metadata change.
            let missing: Vec<String> = requested
                .iter()
                .filter(|t| t.topic_id.is_nil())
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .filter(|name| image.topic(name).is_none() && validate_topic_name(name).is_ok())
                .collect();
            if auto_create && !missing.is_empty() {
                admin::auto_create_topics(broker, missing).await;
                image = broker.image();
            }
            requested
                .iter()
                .map(|wanted| match &wanted.name {
                    // A topic asked for by id is looked up by id whatever its name says: the
                    // Java client sends the name's default, "", beside the id (as when a
                    // KIP-848 regex subscription is assigned topics it knows only by id).
                    _ if !wanted.topic_id.is_nil() => match image.topic_by_id(wanted.topic_id) {
                        Some(topic) => topic_response(&image, topic, include_ops),
                        None => error_topic(None, wanted.topic_id, ErrorCode::UnknownTopicId),
                    },
                    Some(name) => {
                        let name = name.0.to_string();
                        match image.topic(&name) {
                            Some(topic) => topic_response(&image, topic, include_ops),
                            None if validate_topic_name(&name).is_err() => error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ErrorCode::InvalidTopicException,
                            ),
                            None if auto_create => error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ErrorCode::LeaderNotAvailable,
                            ),
                            None => error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ErrorCode::UnknownTopicOrPartition,
                            ),
                        }
                    }
                    None => match image.topic_by_id(wanted.topic_id) {
                        Some(topic) => topic_response(&image, topic, include_ops),
                        None => error_topic(None, wanted.topic_id, ErrorCode::UnknownTopicId),
                    },
                })
                .collect()
        }
    };

    // Fenced brokers are left out, as Kafka lists only live ones: they lead nothing and
    // a client has no reason to connect to them.
    let brokers: Vec<MetadataResponseBroker> = super::broker_endpoints(broker, &image, &advertised)
        .into_iter()
        .filter(|b| image.is_broker_unfenced(b.broker_id))
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.broker_id))
                .with_host(b.host)
                .with_port(b.port)
                .with_rack(b.rack)
        })
        .collect();

    let controller_id = controller_id(broker, &brokers);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(
            image
                .cluster_id()
                .map(|id| StrBytes::from_string(id.to_string())),
        )
        .with_controller_id(BrokerId(controller_id))
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS_ALL
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        })
        .with_topics(topics)
}

/// The active controller when clients can reach it (it is a listed broker), else this
/// node: every broker forwards controller requests, so either is a right place to send
/// CreateTopics and friends. -1 only while nothing is known.
fn controller_id(broker: &Broker, brokers: &[MetadataResponseBroker]) -> i32 {
    let node_id = broker.config().node_id;
    match broker.metadata().active_controller(node_id) {
        Some(active) if brokers.iter().any(|b| b.node_id.0 == active) => active,
        Some(_) => node_id,
        None => -1,
    }
}
