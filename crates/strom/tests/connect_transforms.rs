//! Single message transforms and `errors.*` with the real binary: a file sink whose records
//! are filtered by predicates, have fields inserted, renamed, dropped and masked, with a
//! record no transform can read dead-lettered (`errors.tolerance=all`) or failing the task
//! (`none`); a file source routed by RegexRouter and TimestampRouter; bad transform configs
//! refused with Kafka Connect's messages.

mod broker_support;
mod connect_support;
mod http_support;

use std::time::Duration;

use bytes::Bytes;
use connect_support::*;
use serde_json::{json, Value};
use strom_client::{Client, ClientConfig, Producer, ProducerConfig, ProducerRecord};

const T: &str = "org.apache.kafka.connect.transforms.";
const P: &str = "org.apache.kafka.connect.transforms.predicates.";

/// Produces (value, with a `skip` header) records to `topic`, in order.
fn produce(broker: &broker_support::TestBroker, topic: &str, records: &[(Option<&str>, bool)]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Client::connect(ClientConfig::new(&broker.addr.to_string()))
            .await
            .unwrap();
        let producer = Producer::new(client, ProducerConfig::default())
            .await
            .unwrap();
        for (value, skip) in records {
            let mut record = ProducerRecord::new(topic.to_string(), Bytes::new());
            record.value = value.map(|v| Bytes::from(v.to_string()));
            if *skip {
                record = record.with_header("skip", Some(Bytes::from_static(b"yes")));
            }
            producer.send_and_wait(record).await.unwrap();
        }
    });
}

fn task_state(worker: &Worker, name: &str) -> (String, String) {
    let status = worker.ok("GET", &format!("/connectors/{name}/status"), None);
    (
        status["tasks"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        status["tasks"][0]["trace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

#[test]
fn given_a_transform_chain_and_tolerance_all_when_sinking_should_transform_filter_and_dead_letter()
{
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    produce(
        &broker,
        "orders",
        &[
            (Some(r#"{"id":1,"card":"4111","secret":"s"}"#), false),
            (Some(r#"{"id":2,"card":"4222","secret":"s"}"#), true),
            (None, false),
            (Some("not json"), false),
            (Some(r#"{"id":5,"card":"4555","secret":"s"}"#), false),
        ],
    );
    let worker = Worker::distributed(dir.path(), &broker, "smt");
    let out = dir.path().join("orders.out");
    worker.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "orders-out", "config": {
            "connector.class": "FileStreamSink", "topics": "orders",
            "file": out.to_str().unwrap(),
            "transforms": "skipped,tombstones,stamp,shape,hide",
            "transforms.skipped.type": format!("{T}Filter"),
            "transforms.skipped.predicate": "has-skip",
            "transforms.tombstones.type": format!("{T}Filter"),
            "transforms.tombstones.predicate": "tombstone",
            "transforms.stamp.type": format!("{T}InsertField$Value"),
            "transforms.stamp.topic.field": "src",
            "transforms.stamp.offset.field": "at",
            "transforms.stamp.static.field": "via",
            "transforms.stamp.static.value": "strom",
            "transforms.shape.type": format!("{T}ReplaceField$Value"),
            "transforms.shape.exclude": "secret",
            "transforms.shape.renames": "id:order_id",
            "transforms.hide.type": format!("{T}MaskField$Value"),
            "transforms.hide.fields": "card",
            "transforms.hide.replacement": "****",
            "predicates": "has-skip,tombstone",
            "predicates.has-skip.type": format!("{P}HasHeaderKey"),
            "predicates.has-skip.name": "skip",
            "predicates.tombstone.type": format!("{P}RecordIsTombstone"),
            "errors.tolerance": "all",
            "errors.log.enable": "true",
            "errors.deadletterqueue.topic.name": "orders-dlq",
            "errors.deadletterqueue.context.headers.enable": "true"}})),
    );
    let written = wait_for("two lines written", Duration::from_secs(60), || {
        let lines = lines(&out);
        (lines.len() >= 2).then_some(lines)
    });
    let values: Vec<Value> = written
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        values,
        vec![
            json!({"order_id": 1, "card": "****", "src": "orders", "at": 0, "via": "strom"}),
            json!({"order_id": 5, "card": "****", "src": "orders", "at": 4, "via": "strom"}),
        ]
    );
    let dead = consume(&broker, "orders-dlq", 1);
    assert_eq!(dead.len(), 1, "the unreadable record dead-lettered");
    assert_eq!(dead[0].value.as_deref(), Some(&b"not json"[..]));
    assert_eq!(
        header(&dead[0], "__connect.errors.offset").as_deref(),
        Some("3")
    );
    assert_eq!(
        header(&dead[0], "__connect.errors.stage").as_deref(),
        Some("TRANSFORMATION")
    );
    assert!(header(&dead[0], "__connect.errors.exception.message")
        .unwrap()
        .contains("Only Map objects supported"));
    assert!(all_running(&worker, "orders-out"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&out).len(), 2, "filtered records never written");
}

#[test]
fn given_tolerance_none_when_a_transform_fails_should_fail_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    produce(&broker, "plain", &[(Some("text, not an object"), false)]);
    let worker = Worker::distributed(dir.path(), &broker, "smt-none");
    worker.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "strict", "config": {
            "connector.class": "FileStreamSink", "topics": "plain",
            "file": dir.path().join("never.out").to_str().unwrap(),
            "transforms": "pick",
            "transforms.pick.type": format!("{T}ExtractField$Value"),
            "transforms.pick.field": "id"}})),
    );
    let trace = wait_for("the task failed", Duration::from_secs(60), || {
        let (state, trace) = task_state(&worker, "strict");
        (state == "FAILED").then_some(trace)
    });
    assert!(trace.contains("Tolerance exceeded"), "{trace}");
    assert!(lines(&dir.path().join("never.out")).is_empty());
}

#[test]
fn given_routers_on_a_file_source_should_produce_to_the_routed_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let worker = Worker::distributed(dir.path(), &broker, "smt-route");
    let input = dir.path().join("in.txt");
    write_lines(&input, 0, 20);
    worker.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "routed", "config": {
            "connector.class": "FileStreamSource", "topic": "events-raw",
            "file": input.to_str().unwrap(),
            "transforms": "clean,byyear",
            "transforms.clean.type": format!("{T}RegexRouter"),
            "transforms.clean.regex": "(.*)-raw",
            "transforms.clean.replacement": "$1-clean",
            "transforms.byyear.type": format!("{T}TimestampRouter"),
            "transforms.byyear.topic.format": "${topic}.${timestamp}",
            "transforms.byyear.timestamp.format": "'y'yyyy"}})),
    );
    // The year of the records' timestamps: now, in UTC (a run across New Year's Eve may
    // see the next one).
    let year = 1970
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as f64
            / 31_556_952.0) as i64;
    let records = consume(&broker, &format!("events-clean.y{year}"), 20);
    assert_eq!(records.len(), 20);
    assert_eq!(records[0].value.as_deref(), Some(&b"line-0000000"[..]));
    assert_eq!(records[19].value.as_deref(), Some(&b"line-0000019"[..]));
}

#[test]
fn given_bad_transform_configs_should_refuse_them_with_kafka_connect_messages() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let worker = Worker::distributed(dir.path(), &broker, "smt-bad");
    let base = json!({"connector.class": "FileStreamSink", "topics": "t", "file": "x.out"});
    let with = |extra: Value| {
        let mut config = base.clone();
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        config
    };
    for (extra, needle) in [
        (
            json!({"transforms": "a", "transforms.a.type": "com.example.Nope"}),
            "Class com.example.Nope could not be found",
        ),
        (
            json!({"transforms": "a"}),
            "Missing required configuration \\\"transforms.a.type\\\"",
        ),
        (
            json!({"transforms": "a", "transforms.a.type": format!("{T}RegexRouter"),
                   "transforms.a.regex": "(", "transforms.a.replacement": "x"}),
            "transforms.a.regex",
        ),
        (
            json!({"transforms": "a", "transforms.a.type": format!("{T}Filter"),
                   "transforms.a.predicate": "undeclared"}),
            "undeclared",
        ),
        (json!({"errors.tolerance": "some"}), "errors.tolerance"),
        (json!({"errors.log.enable": "maybe"}), "errors.log.enable"),
    ] {
        let refused = worker.call(
            "POST",
            "/connectors",
            Some(&json!({"name": "bad", "config": with(extra.clone())})),
        );
        assert_eq!(refused.status, 400, "{extra}: {}", refused.text());
        assert!(
            refused.text().contains(needle),
            "{extra}: {}",
            refused.text()
        );
        let validated = worker.ok(
            "PUT",
            "/connector-plugins/FileStreamSink/config/validate",
            Some(&with(extra.clone())),
        );
        assert!(validated["error_count"].as_u64().unwrap() >= 1, "{extra}");
    }
    assert_eq!(worker.ok("GET", "/connectors", None), json!([]));
}
