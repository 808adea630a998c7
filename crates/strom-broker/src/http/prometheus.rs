//! `/metrics`: the broker's instruments ([`crate::metrics::Metrics`]) plus gauges computed
//! at scrape time from the metadata image, the partition logs and the group coordinator,
//! in Prometheus text format 0.0.4.
//!
//! Work per scrape: one short lock per hosted partition, one copy of the committed offsets,
//! and a pass over the image; no segment is read.

use bytes::Bytes;
use hyper::StatusCode;

use super::view::{all_logs, committed_lag};
use super::{response, HttpError, HttpResponse};
use crate::metrics::{MetricType, TextWriter, TEXT_CONTENT_TYPE};
use crate::state::Broker;

pub fn metrics_response(broker: &Broker) -> Result<HttpResponse, HttpError> {
    Ok(response(
        StatusCode::OK,
        TEXT_CONTENT_TYPE,
        Bytes::from(render(broker)),
    ))
}

/// The whole exposition.
pub fn render(broker: &Broker) -> String {
    let metrics = broker.metrics();
    let image = broker.image();
    // Counters of deleted topics go, so label cardinality follows the topic count.
    metrics.retain_topics(|name| image.topic(name).is_some());
    let mut out = TextWriter::new();

    out.family(
        "strom_build_info",
        MetricType::Gauge,
        "Always 1; the version label says which Strom build this is.",
    );
    out.sample(
        "strom_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.family(
        "strom_process_start_time_seconds",
        MetricType::Gauge,
        "Start time of the broker process since the Unix epoch, in seconds.",
    );
    out.sample(
        "strom_process_start_time_seconds",
        &[],
        metrics.started_at_ms as f64 / 1000.0,
    );

    // Requests.
    let apis = metrics.api_snapshot();
    out.family(
        "strom_requests_total",
        MetricType::Counter,
        "Kafka requests answered (or dropped for acks=0), by API.",
    );
    for (api, counters) in &apis {
        out.sample(
            "strom_requests_total",
            &[("api", api)],
            counters.requests.get() as f64,
        );
    }
    out.family(
        "strom_request_duration_seconds",
        MetricType::Histogram,
        "Time from a request's arrival to its response being ready, by API. Fetch includes its long-poll wait, JoinGroup and SyncGroup their rebalance wait.",
    );
    for (api, counters) in &apis {
        out.histogram(
            "strom_request_duration_seconds",
            &[("api", api)],
            &counters.duration.snapshot(),
        );
    }
    out.family(
        "strom_slow_requests_total",
        MetricType::Counter,
        "Requests slower than log.slow.request.ms (each also logged).",
    );
    out.sample(
        "strom_slow_requests_total",
        &[],
        metrics.slow_requests.get() as f64,
    );

    // Connections and purgatory.
    out.family(
        "strom_connections",
        MetricType::Gauge,
        "Open Kafka client connections.",
    );
    out.sample("strom_connections", &[], metrics.connections.get() as f64);
    out.family(
        "strom_connections_rejected_total",
        MetricType::Counter,
        "Connections closed at accept because max.connections was reached.",
    );
    out.sample(
        "strom_connections_rejected_total",
        &[],
        metrics.connections_rejected.get() as f64,
    );
    out.family(
        "strom_fetch_purgatory_size",
        MetricType::Gauge,
        "Fetch requests waiting for data (long poll) right now.",
    );
    out.sample(
        "strom_fetch_purgatory_size",
        &[],
        metrics.fetch_purgatory.get() as f64,
    );

    let (sessions, session_partitions) = {
        let cache = broker.fetch_sessions().lock();
        (cache.len(), cache.partitions_cached())
    };
    out.family(
        "strom_fetch_sessions",
        MetricType::Gauge,
        "Incremental fetch sessions (KIP-227) held, of max.incremental.fetch.session.cache.slots.",
    );
    out.sample("strom_fetch_sessions", &[], sessions as f64);
    out.family(
        "strom_fetch_session_partitions",
        MetricType::Gauge,
        "Partitions held by all incremental fetch sessions.",
    );
    out.sample(
        "strom_fetch_session_partitions",
        &[],
        session_partitions as f64,
    );

    // Per-topic traffic: every topic in the image, zero until it sees traffic.
    let topics: Vec<_> = image
        .topics()
        .map(|topic| (topic.name.clone(), metrics.topic_if_seen(&topic.name)))
        .collect();
    type Pick = fn(&crate::metrics::TopicCounters) -> u64;
    let families: [(&str, &str, Pick); 3] = [
        (
            "strom_topic_bytes_in_total",
            "Bytes of record batches appended to the topic by producers.",
            |c| c.bytes_in.get(),
        ),
        (
            "strom_topic_messages_in_total",
            "Records appended to the topic by producers.",
            |c| c.messages_in.get(),
        ),
        (
            "strom_topic_bytes_out_total",
            "Bytes of record batches sent to fetchers of the topic.",
            |c| c.bytes_out.get(),
        ),
    ];
    for (name, help, pick) in families {
        out.family(name, MetricType::Counter, help);
        for (topic, counters) in &topics {
            let value = counters.as_deref().map_or(0, pick);
            out.sample(name, &[("topic", topic)], value as f64);
        }
    }

    // Partition logs.
    let logs = all_logs(broker);
    type LogPick = fn(&super::view::LogView) -> f64;
    let log_families: [(&str, &str, LogPick); 3] = [
        (
            "strom_partition_log_size_bytes",
            "Bytes of the partition's log segments on disk.",
            |l| l.size_bytes as f64,
        ),
        (
            "strom_partition_log_end_offset",
            "Offset the next record appended to the partition gets.",
            |l| l.log_end_offset as f64,
        ),
        (
            "strom_partition_log_start_offset",
            "First offset still in the partition's log (retention moves it).",
            |l| l.log_start_offset as f64,
        ),
    ];
    for (name, help, pick) in log_families {
        out.family(name, MetricType::Gauge, help);
        for ((topic, partition), log) in &logs {
            let partition = partition.to_string();
            out.sample(
                name,
                &[("topic", topic), ("partition", &partition)],
                pick(log),
            );
        }
    }

    // Partition health, from the image.
    let live_brokers = image.broker_ids();
    let mut partitions = 0usize;
    let mut under_replicated = 0usize;
    let mut offline = 0usize;
    for topic in image.topics() {
        for partition in &topic.partitions {
            partitions += 1;
            if partition.isr.len() < partition.replicas.len() {
                under_replicated += 1;
            }
            if partition.leader < 0 || !live_brokers.contains(&partition.leader) {
                offline += 1;
            }
        }
    }
    out.family(
        "strom_topics",
        MetricType::Gauge,
        "Topics in the cluster, internal ones included.",
    );
    out.sample("strom_topics", &[], image.topic_count() as f64);
    out.family(
        "strom_partitions",
        MetricType::Gauge,
        "Partitions in the cluster.",
    );
    out.sample("strom_partitions", &[], partitions as f64);
    out.family(
        "strom_under_replicated_partitions",
        MetricType::Gauge,
        "Partitions whose in-sync replica set is smaller than their replica set.",
    );
    out.sample(
        "strom_under_replicated_partitions",
        &[],
        under_replicated as f64,
    );
    out.family(
        "strom_offline_partitions",
        MetricType::Gauge,
        "Partitions without a live leader.",
    );
    out.sample("strom_offline_partitions", &[], offline as f64);
    out.family(
        "strom_active_controller",
        MetricType::Gauge,
        "1 if this node is the active controller. A single-node cluster is its own controller.",
    );
    let is_controller = broker.metadata().active_controller(broker.config().node_id)
        == Some(broker.config().node_id);
    out.sample(
        "strom_active_controller",
        &[],
        if is_controller { 1.0 } else { 0.0 },
    );

    // The remote tier, when tiered storage is on.
    crate::tiering::write_metrics(broker, &mut out);

    // Consumer group lag.
    out.family(
        "strom_consumer_group_lag",
        MetricType::Gauge,
        "Records between a group's committed offset and the partition's log end offset.",
    );
    for entry in committed_lag(broker, None, &logs) {
        let Some(lag) = entry.lag else { continue };
        let partition = entry.partition.to_string();
        out.sample(
            "strom_consumer_group_lag",
            &[
                ("group", &entry.group),
                ("topic", &entry.topic),
                ("partition", &partition),
            ],
            lag as f64,
        );
    }
    out.finish()
}
