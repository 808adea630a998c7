//! Tiered storage (issue 22) against a real S3 server (SeaweedFS), with the real broker:
//! closed segments copied to the bucket, local copies deleted by local retention, old
//! offsets read back through the chunk cache; total retention deleting remote objects; the
//! object store down then back; ListOffsets by timestamp on remote-only segments; a
//! compacted topic, or a broker with tiered storage off, refusing `remote.storage.enable`.

mod broker_support;
mod http_support;
mod tiered_support;

use std::time::{Duration, Instant};

use broker_support::*;
use http_support::HttpBroker;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::*;
use strom_tiered::PartitionManifest;
use tiered_support::{big_batch, expected_values, Seaweed};

const EARLIEST: i64 = -2;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const INVALID_CONFIG: i16 = 40;
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// Records per batch and the batches produced: ~2.4 MiB of values in ~64 KiB segments.
const RECORDS_PER_BATCH: usize = 40;
const BATCHES: usize = 60;

fn tiered_topic_configs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("remote.storage.enable", "true"),
        ("segment.bytes", "65536"),
        ("local.retention.bytes", "65536"),
        ("retention.ms", "-1"),
    ]
}

fn produce_all(conn: &mut Conn, topic: &str) {
    for batch_index in 0..BATCHES {
        let (error, base) = produce(conn, topic, 0, big_batch(batch_index, RECORDS_PER_BATCH));
        assert_eq!(error, 0, "produce batch {batch_index}");
        assert_eq!(base, (batch_index * RECORDS_PER_BATCH) as i64);
    }
}

/// Waits until `check` holds, polling; panics with `what` and the broker log after 60 s.
fn wait_until(broker: &TestBroker, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; broker log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads partition 0 from `from` to `end` with consumer fetches; returns the raw record
/// bytes concatenated.
fn read_all(conn: &mut Conn, topic: &str, from: i64, end: i64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut offset = from;
    let mut fetches = 0;
    while offset < end {
        fetches += 1;
        assert!(fetches < 10_000, "no progress reading {topic} at {offset}");
        let (error, _, records) = fetch(conn, topic, 0, offset);
        assert_eq!(error, 0, "fetch {topic} at {offset}");
        let values = decode_values(&records);
        let Some(&(last, _)) = values.last() else {
            panic!("fetch at {offset} returned no records");
        };
        assert!(
            values[0].0 <= offset && last >= offset,
            "batch holds {offset}"
        );
        bytes.extend_from_slice(&records);
        offset = last + 1;
    }
    bytes
}

fn decoded_from(bytes: &[u8], from: i64) -> Vec<(i64, String)> {
    decode_values(bytes)
        .into_iter()
        .filter(|(offset, _)| *offset >= from)
        .collect()
}

#[test]
fn given_topic_larger_than_local_retention_when_read_from_zero_should_return_every_record_from_the_bucket_until_total_retention_deletes_it(
) {
    let seaweed = Seaweed::start();
    let bucket = "strom-tiered-read";
    let settings = seaweed.broker_settings(bucket);
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let http = HttpBroker::start(&settings);
    let broker = &http.kafka;
    let mut conn = broker.connect();
    let topic = "tiered-read";
    create_topic(&mut conn, topic, 1, &tiered_topic_configs());
    produce_all(&mut conn, topic);
    let end = (BATCHES * RECORDS_PER_BATCH) as i64;

    // Segments are copied and then deleted locally, down to ~local.retention.bytes.
    wait_until(&broker, "local retention after the copies", || {
        let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);
        local_start > end / 2
    });
    let (error, tiered_last, _) = list_offset(&mut conn, topic, 0, LATEST_TIERED);
    assert_eq!(error, 0);
    let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);
    assert!(
        tiered_last + 1 >= local_start,
        "no gap between remote ({tiered_last}) and local ({local_start})"
    );
    let (_, earliest, _) = list_offset(&mut conn, topic, 0, EARLIEST);
    assert_eq!(earliest, 0, "the log still starts at 0, in the bucket");

    // Cold cache, then warm: the same bytes, every record in order.
    let cold = read_all(&mut conn, topic, 0, end);
    assert_eq!(
        decoded_from(&cold, 0),
        expected_values(BATCHES, RECORDS_PER_BATCH)
    );
    let warm = read_all(&mut conn, topic, 0, end);
    assert_eq!(cold, warm, "a second read returns the same bytes");

    // /metrics: what was copied and read back, the chunk cache, and the partition's remote
    // size. A whole pass over 2.4 MB evicts the 1 MiB cache as it goes (LRU), so the cache
    // hit is a second read of the remote segment just read: the one before the local start.
    let (error, _, again) = fetch(&mut conn, topic, 0, local_start - 1);
    assert_eq!(error, 0);
    assert!(!again.is_empty());
    let scraped = http.scrape();
    let partition = [("topic", topic), ("partition", "0")];
    assert!(scraped.value_or_zero("strom_remote_log_segments_copied_total", &[]) >= 2.0);
    assert!(
        scraped.value_or_zero("strom_remote_log_bytes_copied_total", &[])
            >= (end as f64) * 1000.0 / 2.0
    );
    assert!(scraped.value_or_zero("strom_remote_log_reads_total", &[]) >= 2.0);
    assert!(scraped.value_or_zero("strom_remote_log_read_bytes_total", &[]) >= cold.len() as f64);
    assert!(
        scraped.value_or_zero("strom_remote_log_cache_hits_total", &[]) >= 1.0,
        "the second read hit the cache"
    );
    assert!(
        scraped.value_or_zero("strom_remote_log_cache_misses_total", &[]) >= 1.0,
        "the cold read missed it"
    );
    assert!(scraped.value_or_zero("strom_remote_log_read_seconds_total", &[]) > 0.0);
    assert_eq!(
        scraped.value("strom_remote_log_copy_errors_total", &[]),
        Some(0.0)
    );
    let manifest_size = scraped.value_or_zero("strom_remote_log_size_bytes", &partition);
    assert!(
        manifest_size >= (tiered_last as f64) * 1000.0,
        "remote size {manifest_size}"
    );
    assert!(scraped
        .value("strom_remote_log_copy_lag_segments", &partition)
        .is_some());

    // A read starting in the middle of a remote segment starts at the right batch.
    let middle = (7 * RECORDS_PER_BATCH + 5) as i64;
    let partial = read_all(&mut conn, topic, middle, end);
    assert_eq!(
        decoded_from(&partial, middle),
        expected_values(BATCHES, RECORDS_PER_BATCH)[middle as usize..]
    );

    // Total retention: retention.bytes set to 512 KiB deletes the oldest remote segments,
    // their objects with them, and moves the log start; the rest still reads back.
    let prefix = format!("{topic}-{}/0/", topic_id(&mut conn, topic));
    let manifest = || {
        seaweed
            .get(bucket, &format!("{prefix}manifest.json"))
            .map(|bytes| serde_json::from_slice::<PartitionManifest>(&bytes).unwrap())
            .expect("the partition's manifest is in the bucket")
    };
    let before = manifest();
    let oldest = before
        .segments
        .iter()
        .find(|segment| segment.base_offset == 0)
        .expect("the first segment is remote")
        .clone();
    let oldest_log = format!("{prefix}{:020}-{}.log", 0, oldest.segment_id);
    assert!(
        seaweed.get(bucket, &oldest_log).is_some(),
        "{oldest_log} was copied"
    );
    set_topic_config(&mut conn, topic, "retention.bytes", "524288");
    wait_until(&broker, "total retention on the remote tier", || {
        let (_, earliest, _) = list_offset(&mut conn, topic, 0, EARLIEST);
        // ~1 KiB records: at most the limit plus two 64 KiB segments are kept.
        earliest >= end - 640
    });
    let (_, earliest, _) = list_offset(&mut conn, topic, 0, EARLIEST);
    assert!(
        end - earliest >= 400,
        "retention kept {} records, under 512 KiB less a segment",
        end - earliest
    );
    // The deletions are marked first (the log start moves then), the objects go next.
    wait_until(&broker, "the marked remote segments deleted", || {
        manifest()
            .segments
            .iter()
            .all(|segment| segment.state != strom_tiered::SegmentState::DeleteSegmentStarted)
    });
    let after = manifest();
    assert!(
        after
            .segments
            .iter()
            .all(|segment| segment.base_offset >= earliest),
        "the manifest lists no segment below the log start {earliest}: {after:?}"
    );
    assert_eq!(after.deleted_below, earliest, "{after:?}");
    assert!(
        seaweed.get(bucket, &oldest_log).is_none(),
        "{oldest_log} is still in the bucket"
    );
    let (error, _, _) = fetch(&mut conn, topic, 0, 0);
    assert_eq!(error, OFFSET_OUT_OF_RANGE, "a fetch below the log start");
    let rest = read_all(&mut conn, topic, earliest, end);
    assert_eq!(
        decoded_from(&rest, earliest),
        expected_values(BATCHES, RECORDS_PER_BATCH)[earliest as usize..]
    );
}

/// ListOffsets by timestamp finds records whose segments are only in the bucket (Kafka
/// searches the remote tier first): each batch is stamped a second after the previous one,
/// and the lookups land inside a batch, between two batches, before everything, after
/// everything, and in the local part.
#[test]
fn given_segments_only_in_the_bucket_when_offsets_for_times_should_find_records_there() {
    const T0: i64 = 1_700_000_000_000;
    let stamp = |batch_index: usize, record: usize| T0 + batch_index as i64 * 1000 + record as i64;
    let seaweed = Seaweed::start();
    let bucket = "strom-tiered-times";
    let settings = seaweed.broker_settings(bucket);
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let broker = TestBroker::start(&settings);
    let mut conn = broker.connect();
    let topic = "tiered-times";
    create_topic(&mut conn, topic, 1, &tiered_topic_configs());
    for batch_index in 0..BATCHES {
        let prefix = format!("b{batch_index:04}-{}", "x".repeat(1000));
        let records = batch(&prefix, RECORDS_PER_BATCH, stamp(batch_index, 0));
        let (error, _) = produce(&mut conn, topic, 0, records);
        assert_eq!(error, 0, "produce batch {batch_index}");
    }
    let per_batch = RECORDS_PER_BATCH as i64;
    wait_until(&broker, "local retention after the copies", || {
        let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);
        local_start > 10 * per_batch
    });
    let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);

    // (timestamp asked, offset and timestamp expected)
    let cases = [
        (stamp(7, 5), 7 * per_batch + 5, stamp(7, 5)),
        (stamp(7, 50), 8 * per_batch, stamp(8, 0)),
        (T0 - 60_000, 0, T0),
        (
            stamp(2, RECORDS_PER_BATCH - 1),
            3 * per_batch - 1,
            stamp(2, RECORDS_PER_BATCH - 1),
        ),
        (
            stamp(BATCHES - 1, 3),
            (BATCHES as i64 - 1) * per_batch + 3,
            stamp(BATCHES - 1, 3),
        ),
    ];
    for (asked, offset, timestamp) in cases {
        assert_eq!(
            list_offset(&mut conn, topic, 0, asked),
            (0, offset, timestamp),
            "offset for time {asked} (local log starts at {local_start})"
        );
    }
    assert_eq!(
        list_offset(&mut conn, topic, 0, stamp(BATCHES, 0)),
        (0, -1, -1),
        "a time after every record"
    );
}

/// The topic id of `topic`, from Metadata.
fn topic_id(conn: &mut Conn, topic: &str) -> uuid::Uuid {
    let metadata: MetadataResponse = conn.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(topic_name(topic))),
            ]))
            .with_allow_auto_topic_creation(false),
    );
    metadata.topics[0].topic_id
}

/// Sets one config of `topic` with IncrementalAlterConfigs: the answer's error code and
/// message.
fn alter_topic_config(conn: &mut Conn, topic: &str, key: &str, value: &str) -> (i16, String) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::protocol::StrBytes;
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(value.to_string())))]),
    ]);
    let response: IncrementalAlterConfigsResponse =
        conn.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let answer = &response.responses[0];
    let message = answer.error_message.as_ref().map(|m| m.to_string());
    (answer.error_code, message.unwrap_or_default())
}

/// Sets one config of `topic`; panics on an error.
fn set_topic_config(conn: &mut Conn, topic: &str, key: &str, value: &str) {
    let (code, message) = alter_topic_config(conn, topic, key, value);
    assert_eq!(code, 0, "{message}");
}

/// Creates a one-partition topic with `configs`: the answer's error code and message.
fn create_topic_answer(conn: &mut Conn, topic: &str, configs: &[(&str, &str)]) -> (i16, String) {
    use kafka_protocol::protocol::StrBytes;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(key, value)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(key.to_string()))
                            .with_value(Some(StrBytes::from_string(value.to_string())))
                    })
                    .collect(),
            )]);
    let response: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 7, &request);
    let answer = &response.topics[0];
    let message = answer.error_message.as_ref().map(|m| m.to_string());
    (answer.error_code, message.unwrap_or_default())
}

#[test]
fn given_object_store_down_when_segments_close_should_keep_them_locally_and_copy_them_once_it_is_back(
) {
    let mut seaweed = Seaweed::start();
    let settings = seaweed.broker_settings("strom-tiered-outage");
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let broker = TestBroker::start(&settings);
    let mut conn = broker.connect();
    let topic = "tiered-outage";
    create_topic(&mut conn, topic, 1, &tiered_topic_configs());
    seaweed.stop();
    produce_all(&mut conn, topic);
    let end = (BATCHES * RECORDS_PER_BATCH) as i64;

    wait_until(&broker, "a failed copy to be logged", || {
        broker.log().contains("remote storage copy failed")
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);
    assert_eq!(
        local_start, 0,
        "nothing is deleted locally before it is copied"
    );
    let (_, tiered_last, _) = list_offset(&mut conn, topic, 0, LATEST_TIERED);
    assert_eq!(tiered_last, -1, "nothing is in the bucket yet");
    assert_eq!(
        decoded_from(&read_all(&mut conn, topic, 0, end), 0),
        expected_values(BATCHES, RECORDS_PER_BATCH)
    );

    seaweed.restart();
    wait_until(
        &broker,
        "copies to resume and local retention to run",
        || {
            let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);
            local_start > end / 2
        },
    );
    let (_, earliest, _) = list_offset(&mut conn, topic, 0, EARLIEST);
    assert_eq!(earliest, 0);
    assert_eq!(
        decoded_from(&read_all(&mut conn, topic, 0, end), 0),
        expected_values(BATCHES, RECORDS_PER_BATCH)
    );
}

#[test]
fn given_compacted_topic_when_remote_storage_enabled_should_refuse_with_invalid_config() {
    let seaweed = Seaweed::start();
    let settings = seaweed.broker_settings("strom-tiered-compacted");
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let broker = TestBroker::start(&settings);
    let mut conn = broker.connect();
    let (code, message) = create_topic_answer(
        &mut conn,
        "tiered-compacted",
        &[
            ("cleanup.policy", "compact"),
            ("remote.storage.enable", "true"),
        ],
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    assert!(
        message.contains("remote.storage.enable") && message.contains("cleanup.policy=compact"),
        "the message names the rule: {message}"
    );

    // An existing compacted topic cannot be switched to tiered storage either.
    create_topic(
        &mut conn,
        "tiered-compacted-later",
        1,
        &[("cleanup.policy", "compact")],
    );
    let (code, message) = alter_topic_config(
        &mut conn,
        "tiered-compacted-later",
        "remote.storage.enable",
        "true",
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
}

#[test]
fn given_tiering_off_when_a_topic_enables_remote_storage_should_refuse_with_invalid_config() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    let (code, message) = create_topic_answer(
        &mut conn,
        "tiering-off",
        &[("remote.storage.enable", "true")],
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    assert!(
        message.contains("remote.log.storage.system.enable=true"),
        "the message names the fix: {message}"
    );
    let metadata: MetadataResponse = conn.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false),
    );
    let names: Vec<String> = metadata
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert!(
        !names.contains(&"tiering-off".to_string()),
        "the refused topic was created: {names:?}"
    );

    // An existing topic cannot be switched to tiered storage either.
    create_topic(&mut conn, "tiering-off-later", 1, &[]);
    let (code, message) = alter_topic_config(
        &mut conn,
        "tiering-off-later",
        "remote.storage.enable",
        "true",
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    assert!(
        message.contains("remote.log.storage.system.enable=true"),
        "{message}"
    );
}

/// Transactions in the test below: every third one is aborted.
const TRANSACTIONS: usize = 30;
const RECORDS_PER_TRANSACTION: usize = 40;

fn transaction_value(transaction: usize, record: usize) -> String {
    format!("t{transaction:02}-{record:02}-{}", "y".repeat(1000))
}

/// Reads partition 0 of `topic` from offset 0 until `end` with strom-client's consumer;
/// the values in order.
async fn consume_all(
    client: &strom_client::Client,
    topic: &str,
    isolation_level: i8,
) -> Vec<String> {
    use strom_client::{Consumer, ConsumerConfig, SeekTo};
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            isolation_level,
            auto_offset_reset: Some(SeekTo::Earliest),
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(&[(topic.to_string(), 0)]).await.unwrap();
    consumer.seek(topic, 0, SeekTo::Earliest).await.unwrap();
    let end = consumer.end_offsets().await.unwrap()[&(topic.to_string(), 0)];
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumer.position(topic, 0).unwrap_or(0) < end {
        assert!(Instant::now() < deadline, "could not read {topic} to {end}");
        for record in consumer.poll().await.unwrap() {
            let value = record.value.expect("a value");
            values.push(String::from_utf8(value.to_vec()).unwrap());
        }
    }
    values
}

#[test]
fn given_aborted_transactions_in_remote_segments_when_read_committed_should_skip_them() {
    use strom_client::{Client, ClientConfig, ProducerRecord, TransactionalProducer};
    let seaweed = Seaweed::start();
    let settings = seaweed.broker_settings("strom-tiered-txn");
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let broker = TestBroker::start(&settings);
    let mut conn = broker.connect();
    let topic = "tiered-txn";
    create_topic(&mut conn, topic, 1, &tiered_topic_configs());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = runtime
        .block_on(Client::connect(ClientConfig::new(&broker.addr.to_string())))
        .unwrap();
    runtime.block_on(async {
        let mut producer = TransactionalProducer::new(
            client.clone(),
            "tiered-txn-producer",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        for transaction in 0..TRANSACTIONS {
            for record in 0..RECORDS_PER_TRANSACTION {
                producer
                    .send(
                        ProducerRecord::new(topic, transaction_value(transaction, record))
                            .with_partition(0),
                    )
                    .await
                    .unwrap();
            }
            if transaction % 3 == 1 {
                // Sent first, so the aborted records are in the log.
                producer.flush().await.unwrap();
                producer.abort().await.unwrap();
            } else {
                producer.commit(None).await.unwrap();
            }
        }
    });
    // Most of the partition, aborted transactions included, is then only in the bucket.
    let (_, end, _) = list_offset(&mut conn, topic, 0, -1);
    wait_until(&broker, "local retention after the copies", || {
        let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);
        local_start > end / 2
    });
    let (_, earliest, _) = list_offset(&mut conn, topic, 0, EARLIEST);
    assert_eq!(earliest, 0, "the log still starts at 0, in the bucket");

    let committed: Vec<String> = (0..TRANSACTIONS)
        .filter(|transaction| transaction % 3 != 1)
        .flat_map(|transaction| {
            (0..RECORDS_PER_TRANSACTION).map(move |record| transaction_value(transaction, record))
        })
        .collect();
    let every: Vec<String> = (0..TRANSACTIONS)
        .flat_map(|transaction| {
            (0..RECORDS_PER_TRANSACTION).map(move |record| transaction_value(transaction, record))
        })
        .collect();
    // read_uncommitted sees the aborted records too (they are in the remote segments);
    // read_committed sees exactly the committed ones, in order.
    let uncommitted = runtime.block_on(consume_all(&client, topic, 0));
    assert_eq!(uncommitted.len(), every.len());
    assert!(
        uncommitted == every,
        "read_uncommitted returns every record in order"
    );
    let read_committed = runtime.block_on(consume_all(&client, topic, 1));
    assert_eq!(
        read_committed.len(),
        committed.len(),
        "read_committed returned aborted records"
    );
    assert!(
        read_committed == committed,
        "read_committed returns the committed records in order"
    );
}
