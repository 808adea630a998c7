//! The console's JSON API for the cluster and its topics: overview, paged topic list,
//! topic detail, create and delete.

use std::collections::HashSet;
use std::sync::Arc;

use hyper::StatusCode;
use serde::Serialize;
use strom_controller::{ControllerError, CreateTopic, TopicRef};
use uuid::Uuid;

use super::health::{readiness, Readiness};
use super::query::Query;
use super::view::{log_view, LogView};
use super::{json_response, HttpError, HttpResponse, PAGE_SIZE_MAX};
use crate::config::{topic_config_keys, topic_default, ConfigSource};
use crate::state::{now_ms, Broker};

/// Default number of topics per page.
const PAGE_SIZE_DEFAULT: i64 = 50;
/// Most configs accepted with a create-topic request.
const CREATE_CONFIGS_MAX: usize = 64;

fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

#[derive(Serialize)]
struct BrokerView {
    id: i32,
    host: String,
    port: u16,
    rack: Option<String>,
    is_controller: bool,
}

#[derive(Serialize)]
struct Overview {
    cluster_id: Option<String>,
    node_id: i32,
    controller_id: i32,
    version: &'static str,
    brokers: Vec<BrokerView>,
    topics: usize,
    partitions: usize,
    under_replicated_partitions: usize,
    offline_partitions: usize,
    log_size_bytes: u64,
    groups: usize,
    connections: i64,
    fetch_purgatory_size: i64,
    messages_in_total: u64,
    bytes_in_total: u64,
    bytes_out_total: u64,
    requests_total: u64,
    started_at_ms: i64,
    now_ms: i64,
    readiness: Readiness,
}

pub fn overview(broker: &Broker) -> Result<HttpResponse, HttpError> {
    let image = broker.image();
    let node_id = broker.config().node_id;
    let live = image.broker_ids();
    let mut partitions = 0;
    let mut under_replicated = 0;
    let mut offline = 0;
    for topic in image.topics() {
        for partition in &topic.partitions {
            partitions += 1;
            under_replicated += usize::from(partition.isr.len() < partition.replicas.len());
            offline += usize::from(partition.leader < 0 || !live.contains(&partition.leader));
        }
    }
    let hosted = broker.partitions().all();
    let open: HashSet<(Uuid, i32)> = hosted.iter().map(|p| (p.topic_id, p.index)).collect();
    let log_size_bytes = hosted.iter().map(|p| log_view(p).size_bytes).sum();
    let groups_loading =
        image.topic(crate::group::OFFSETS_TOPIC).is_some() && !broker.groups().is_loaded();
    let groups = {
        let mut ids = HashSet::new();
        broker
            .groups()
            .read_all(|state| ids.extend(state.groups.keys().chain(state.offsets.keys()).cloned()));
        ids.len()
    };
    let (mut messages_in, mut bytes_in, mut bytes_out) = (0, 0, 0);
    for (_, counters) in broker.metrics().topic_snapshot() {
        messages_in += counters.messages_in.get();
        bytes_in += counters.bytes_in.get();
        bytes_out += counters.bytes_out.get();
    }
    let requests_total = broker
        .metrics()
        .api_snapshot()
        .iter()
        .map(|(_, api)| api.requests.get())
        .sum();
    let overview = Overview {
        cluster_id: image.cluster_id().map(str::to_string),
        node_id,
        // One voter: the controller is this node.
        controller_id: node_id,
        version: env!("CARGO_PKG_VERSION"),
        brokers: image
            .brokers()
            .values()
            .map(|b| BrokerView {
                id: b.broker_id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
                is_controller: b.broker_id == node_id,
            })
            .collect(),
        topics: image.topic_count(),
        partitions,
        under_replicated_partitions: under_replicated,
        offline_partitions: offline,
        log_size_bytes,
        groups,
        connections: broker.metrics().connections.get(),
        fetch_purgatory_size: broker.metrics().fetch_purgatory.get(),
        messages_in_total: messages_in,
        bytes_in_total: bytes_in,
        bytes_out_total: bytes_out,
        requests_total,
        started_at_ms: broker.metrics().started_at_ms,
        now_ms: now_ms(),
        readiness: readiness(node_id, &image, &open, groups_loading),
    };
    Ok(json_response(StatusCode::OK, &overview))
}

#[derive(Serialize)]
struct TopicRow {
    name: String,
    topic_id: String,
    internal: bool,
    partitions: i32,
    replication_factor: i16,
    size_bytes: u64,
    /// Sum over partitions of log end - log start.
    messages: i64,
    messages_in_total: u64,
    bytes_in_total: u64,
    bytes_out_total: u64,
}

#[derive(Serialize)]
struct TopicPage {
    /// Topics matching the filter.
    total: usize,
    page: i64,
    page_size: i64,
    pages: i64,
    topics: Vec<TopicRow>,
}

/// `GET /api/topics?filter=&page=1&page_size=50&internal=false`: topics whose name
/// contains `filter` (case-insensitive), sorted by name, one page at a time. Only the
/// page's partitions are looked at, so the cost is bounded by `page_size`.
pub fn topics(broker: &Broker, query: &Query) -> Result<HttpResponse, HttpError> {
    let page_size = query.number("page_size", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX as i64)?;
    let page = query.number("page", 1, 1, i32::MAX as i64)?;
    let filter = query.get("filter").map(str::to_lowercase);
    let include_internal = query.get("internal") != Some("false");
    let image = broker.image();
    let matching: Vec<_> = image
        .topics()
        .filter(|t| include_internal || !is_internal(&t.name))
        .filter(|t| {
            filter
                .as_deref()
                .is_none_or(|f| t.name.to_lowercase().contains(f))
        })
        .collect();
    let total = matching.len();
    let pages = (total as i64 + page_size - 1) / page_size;
    let skip = ((page - 1) * page_size) as usize;
    let rows = matching
        .iter()
        .skip(skip)
        .take(page_size as usize)
        .map(|topic| {
            let mut size_bytes = 0;
            let mut messages = 0;
            for partition in &topic.partitions {
                if let Some(hosted) = broker.partitions().get(topic.topic_id, partition.partition) {
                    let log = log_view(&hosted);
                    size_bytes += log.size_bytes;
                    messages += log.log_end_offset - log.log_start_offset;
                }
            }
            let counters = broker.metrics().topic_if_seen(&topic.name);
            let count = |pick: fn(&crate::metrics::TopicCounters) -> u64| {
                counters.as_deref().map_or(0, pick)
            };
            TopicRow {
                name: topic.name.clone(),
                topic_id: topic.topic_id.to_string(),
                internal: is_internal(&topic.name),
                partitions: topic.partition_count(),
                replication_factor: topic.replication_factor(),
                size_bytes,
                messages,
                messages_in_total: count(|c| c.messages_in.get()),
                bytes_in_total: count(|c| c.bytes_in.get()),
                bytes_out_total: count(|c| c.bytes_out.get()),
            }
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &TopicPage {
            total,
            page,
            page_size,
            pages,
            topics: rows,
        },
    ))
}

#[derive(Serialize)]
struct PartitionRow {
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Offsets and size when this broker hosts the partition.
    log_start_offset: Option<i64>,
    log_end_offset: Option<i64>,
    size_bytes: Option<u64>,
}

#[derive(Serialize)]
struct ConfigRow {
    name: &'static str,
    value: String,
    /// `topic` (set on the topic), `broker` (from the broker config) or `default`.
    source: &'static str,
}

#[derive(Serialize)]
struct TopicDetail {
    name: String,
    topic_id: String,
    internal: bool,
    replication_factor: i16,
    partitions: Vec<PartitionRow>,
    configs: Vec<ConfigRow>,
    messages_in_total: u64,
    bytes_in_total: u64,
    bytes_out_total: u64,
}

/// `GET /api/topics/{name}`: partitions with leader, replicas, ISR and offsets; configs
/// with where each value comes from.
pub fn topic(broker: &Broker, name: &str) -> Result<HttpResponse, HttpError> {
    let image = broker.image();
    let topic = image
        .topic(name)
        .ok_or_else(|| HttpError::not_found(format!("no topic named `{name}`")))?;
    let partitions = topic
        .partitions
        .iter()
        .map(|state| {
            let log: Option<LogView> = broker
                .partitions()
                .get(topic.topic_id, state.partition)
                .map(|p| log_view(&p));
            PartitionRow {
                partition: state.partition,
                leader: state.leader,
                leader_epoch: state.leader_epoch,
                replicas: state.replicas.clone(),
                isr: state.isr.clone(),
                log_start_offset: log.map(|l| l.log_start_offset),
                log_end_offset: log.map(|l| l.log_end_offset),
                size_bytes: log.map(|l| l.size_bytes),
            }
        })
        .collect();
    let configs = topic_config_keys()
        .map(|key| match topic.configs.get(key) {
            Some(value) => ConfigRow {
                name: key,
                value: value.clone(),
                source: "topic",
            },
            None => {
                let (value, source) = topic_default(broker.config(), key)
                    .map(|(value, source, _)| (value, source))
                    .unwrap_or((String::new(), ConfigSource::Default));
                ConfigRow {
                    name: key,
                    value,
                    source: match source {
                        ConfigSource::StaticBroker => "broker",
                        ConfigSource::Default => "default",
                    },
                }
            }
        })
        .collect();
    let counters = broker.metrics().topic_if_seen(&topic.name);
    let count =
        |pick: fn(&crate::metrics::TopicCounters) -> u64| counters.as_deref().map_or(0, pick);
    Ok(json_response(
        StatusCode::OK,
        &TopicDetail {
            name: topic.name.clone(),
            topic_id: topic.topic_id.to_string(),
            internal: is_internal(&topic.name),
            replication_factor: topic.replication_factor(),
            partitions,
            configs,
            messages_in_total: count(|c| c.messages_in.get()),
            bytes_in_total: count(|c| c.bytes_in.get()),
            bytes_out_total: count(|c| c.bytes_out.get()),
        },
    ))
}

#[derive(Serialize)]
struct Created {
    name: String,
    topic_id: String,
    partitions: i32,
    replication_factor: i16,
}

fn controller_status(error: &ControllerError) -> StatusCode {
    match error {
        ControllerError::TopicAlreadyExists { .. } => StatusCode::CONFLICT,
        ControllerError::UnknownTopicOrPartition { .. }
        | ControllerError::UnknownTopicId { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `POST /api/topics` with `{"name": "...", "partitions": 3, "replication_factor": 1,
/// "configs": {"retention.ms": "3600000"}}`; omitted numbers take the broker defaults.
pub async fn create_topic(
    broker: &Arc<Broker>,
    body: serde_json::Value,
) -> Result<HttpResponse, HttpError> {
    let name = body
        .get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| HttpError::bad_request("`name` (a string) is required"))?
        .to_string();
    let number = |key: &str| -> Result<Option<i64>, HttpError> {
        match body.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| HttpError::bad_request(format!("`{key}` must be a whole number"))),
        }
    };
    let partitions = number("partitions")?
        .map(|n| {
            i32::try_from(n).map_err(|_| HttpError::bad_request("`partitions` is out of range"))
        })
        .transpose()?;
    let replication_factor = number("replication_factor")?
        .map(|n| {
            i16::try_from(n)
                .map_err(|_| HttpError::bad_request("`replication_factor` is out of range"))
        })
        .transpose()?;
    let mut configs = Vec::new();
    if let Some(given) = body.get("configs").filter(|v| !v.is_null()) {
        let map = given
            .as_object()
            .ok_or_else(|| HttpError::bad_request("`configs` must be an object of strings"))?;
        if map.len() > CREATE_CONFIGS_MAX {
            return Err(HttpError::bad_request(format!(
                "at most {CREATE_CONFIGS_MAX} configs"
            )));
        }
        for (key, value) in map {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Number(number) => number.to_string(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                _ => {
                    return Err(HttpError::bad_request(format!(
                        "config `{key}` must be a string, number or boolean"
                    )))
                }
            };
            configs.push((key.clone(), Some(value)));
        }
    }
    let request = CreateTopic {
        name: name.clone(),
        num_partitions: partitions,
        replication_factor,
        assignments: Vec::new(),
        configs,
    };
    let results = crate::admin::create_topics(broker, vec![request], false)
        .await
        .map_err(|error| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot create topic: {error}"),
            )
        })?;
    let result = results
        .into_iter()
        .next()
        .ok_or_else(|| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "no result"))?;
    if let Some(error) = result.error {
        return Err(HttpError::new(controller_status(&error), error.to_string()));
    }
    Ok(json_response(
        StatusCode::CREATED,
        &Created {
            name: result.name,
            topic_id: result.topic_id.to_string(),
            partitions: result.num_partitions,
            replication_factor: result.replication_factor,
        },
    ))
}

/// `DELETE /api/topics/{name}`. Internal topics (`__consumer_offsets`) cannot be deleted
/// here.
pub async fn delete_topic(broker: &Arc<Broker>, name: &str) -> Result<HttpResponse, HttpError> {
    if !broker.config().delete_topic_enable {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "delete.topic.enable is false on this broker",
        ));
    }
    if is_internal(name) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            format!("`{name}` is an internal topic and cannot be deleted from the console"),
        ));
    }
    let results = crate::admin::delete_topics(broker, vec![TopicRef::Name(name.to_string())])
        .await
        .map_err(|error| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot delete topic: {error}"),
            )
        })?;
    if let Some(error) = results.into_iter().next().and_then(|r| r.error) {
        return Err(HttpError::new(controller_status(&error), error.to_string()));
    }
    #[derive(Serialize)]
    struct Deleted<'a> {
        deleted: &'a str,
    }
    Ok(json_response(StatusCode::OK, &Deleted { deleted: name }))
}
