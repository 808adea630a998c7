//! The console's JSON API against the real binary: the message browser returns exactly the
//! bytes produced, topic pages stay bounded with 1,000 topics, create/delete go through the
//! controller, and reset-offsets follows the coordinator's rules (visible to Kafka clients).

mod broker_support;
mod http_support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use broker_support::*;
use http_support::*;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

fn decode(field: &serde_json::Value) -> Option<Vec<u8>> {
    field["base64"].as_str().map(|text| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64")
    })
}

fn commit_offset(conn: &mut Conn, group: &str, topic: &str, partition: i32, offset: i64) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response: OffsetCommitResponse = conn.call(ApiKey::OffsetCommit, 8, &request);
        if response.topics[0].partitions[0].error_code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "offset commit kept failing");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn committed_offset(conn: &mut Conn, group: &str, topic: &str, partition: i32) -> i64 {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![partition])]));
    let response: OffsetFetchResponse = conn.call(ApiKey::OffsetFetch, 7, &request);
    response.topics[0].partitions[0].committed_offset
}

#[test]
fn given_produced_batch_when_browsed_should_return_the_same_keys_values_headers_and_times() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "browse", 2, &[]);
    // batch() makes keys k0.., values "<prefix>-i", two headers h=1, h=2, timestamps t0+i.
    assert_eq!(
        produce(&mut conn, "browse", 1, batch("first", 5, 1_700_000_000_000)).0,
        0
    );
    assert_eq!(
        produce(
            &mut conn,
            "browse",
            1,
            batch("second", 5, 1_700_000_100_000)
        )
        .0,
        0
    );

    let page = broker.get_json("/api/topics/browse/messages?partition=1&offset=3&limit=4");
    assert_eq!(page["log_start_offset"], 0);
    assert_eq!(page["log_end_offset"], 10);
    assert_eq!(page["start_offset"], 3);
    assert_eq!(
        page["next_offset"], 7,
        "continues after the last record returned"
    );
    let messages = page["messages"].as_array().unwrap();
    let offsets: Vec<i64> = messages
        .iter()
        .map(|m| m["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![3, 4, 5, 6], "crosses the batch boundary at 5");
    assert_eq!(decode(&messages[0]["key"]).unwrap(), b"k3");
    assert_eq!(decode(&messages[0]["value"]).unwrap(), b"first-3");
    assert_eq!(decode(&messages[2]["value"]).unwrap(), b"second-0");
    assert_eq!(messages[2]["timestamp_ms"], 1_700_000_100_000i64);
    assert_eq!(messages[2]["timestamp_type"], "CreateTime");
    let headers = messages[2]["headers"].as_array().unwrap();
    assert_eq!(headers.len(), 2, "repeated header keys are kept");
    assert_eq!(headers[0]["key"], "h");
    assert_eq!(decode(&headers[1]["value"]).unwrap(), b"2");

    // By timestamp: the first record at or after the time.
    let by_time = broker
        .get_json("/api/topics/browse/messages?partition=1&timestamp_ms=1700000100002&limit=1");
    assert_eq!(by_time["messages"][0]["offset"], 7);
    // No position: the last `limit` records.
    let latest = broker.get_json("/api/topics/browse/messages?partition=1&limit=2");
    let latest: Vec<i64> = latest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(latest, vec![8, 9]);
    // Past the end: nothing, and an empty partition is fine too.
    let end = broker.get_json("/api/topics/browse/messages?partition=1&offset=99");
    assert_eq!(end["messages"].as_array().unwrap().len(), 0);
    let empty = broker.get_json("/api/topics/browse/messages?partition=0");
    assert_eq!(empty["messages"].as_array().unwrap().len(), 0);
    // Bad input is a 4xx, never a crash.
    assert_eq!(
        broker.get("/api/topics/browse/messages?partition=7").status,
        404
    );
    assert_eq!(broker.get("/api/topics/nope/messages").status, 404);
    assert_eq!(
        broker
            .get("/api/topics/browse/messages?limit=100000")
            .status,
        400
    );
    assert_eq!(
        broker.get("/api/topics/browse/messages?offset=abc").status,
        400
    );
}

#[test]
fn given_1000_topics_when_listed_should_page_and_filter_with_bounded_answers() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    // One CreateTopics request per 100 names.
    for chunk in 0..10 {
        let topics = (0..100)
            .map(|i| {
                kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                    .with_name(topic_name(&format!("t-{:04}", chunk * 100 + i)))
                    .with_num_partitions(1)
                    .with_replication_factor(-1)
            })
            .collect();
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(topics);
        let response: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 7, &request);
        assert!(response.topics.iter().all(|t| t.error_code == 0));
    }
    let started = Instant::now();
    let first = broker.get_json("/api/topics?page_size=50");
    eprintln!(
        "FIGURE console_topics_first_page_of_1000_ms={}",
        started.elapsed().as_millis()
    );
    assert_eq!(first["total"], 1000);
    assert_eq!(first["pages"], 20);
    assert_eq!(first["topics"].as_array().unwrap().len(), 50);
    assert_eq!(first["topics"][0]["name"], "t-0000");
    let last = broker.get_json("/api/topics?page_size=50&page=20");
    assert_eq!(last["topics"][49]["name"], "t-0999");
    let beyond = broker.get_json("/api/topics?page_size=50&page=21");
    assert_eq!(beyond["topics"].as_array().unwrap().len(), 0);
    let filtered = broker.get_json("/api/topics?filter=T-09&page_size=200");
    assert_eq!(filtered["total"], 100, "the filter is case-insensitive");
    assert!(filtered["topics"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["name"].as_str().unwrap().starts_with("t-09")));
    // The whole exposition with 1,000 topics still renders quickly and parses.
    let started = Instant::now();
    let metrics = broker.scrape();
    eprintln!(
        "FIGURE metrics_scrape_1000_topics_ms={}",
        started.elapsed().as_millis()
    );
    assert_eq!(metrics.value("strom_partitions", &[]), Some(1000.0));
    assert_eq!(
        metrics
            .family("strom_partition_log_end_offset")
            .unwrap()
            .samples
            .len(),
        1000
    );
}

#[test]
fn given_console_create_and_delete_when_done_should_be_seen_by_kafka_clients() {
    let broker = HttpBroker::start(&[]);
    let created = broker.post_json(
        "/api/topics",
        &json!({"name": "from-http", "partitions": 3, "configs": {"retention.ms": "3600000"}}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["partitions"], 3);
    let again = broker.post_json("/api/topics", &json!({"name": "from-http"}));
    assert_eq!(again.status, 409);
    let bad = broker.post_json("/api/topics", &json!({"name": "bad name!"}));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad_config = broker.post_json(
        "/api/topics",
        &json!({"name": "x", "configs": {"retention.ms": "soon"}}),
    );
    assert_eq!(bad_config.status, 400, "{}", bad_config.text());

    let detail = broker.get_json("/api/topics/from-http");
    assert_eq!(detail["partitions"].as_array().unwrap().len(), 3);
    let retention = detail["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap();
    assert_eq!(retention["value"], "3600000");
    assert_eq!(retention["source"], "topic");
    let partition = &detail["partitions"][2];
    assert_eq!(partition["leader"], 1);
    assert_eq!(partition["isr"], json!([1]));
    assert_eq!(partition["log_end_offset"], 0);

    // A Kafka client sees it and can write to it.
    let mut conn = broker.kafka.connect();
    assert_eq!(
        produce(&mut conn, "from-http", 2, batch("x", 2, 1_700_000_000_000)).0,
        0
    );
    assert_eq!(
        broker.get_json("/api/topics/from-http")["partitions"][2]["log_end_offset"],
        2
    );

    assert_eq!(broker.delete("/api/topics/from-http").status, 200);
    assert_eq!(broker.get("/api/topics/from-http").status, 404);
    let metadata: MetadataResponse = conn.call(
        ApiKey::Metadata,
        9,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(topic_name("from-http"))),
            ]))
            .with_allow_auto_topic_creation(false),
    );
    assert_ne!(
        metadata.topics[0].error_code, 0,
        "deleted topic still in metadata"
    );
    assert_eq!(broker.delete("/api/topics/from-http").status, 404);
    assert_eq!(broker.delete("/api/topics/__consumer_offsets").status, 403);
}

#[test]
fn given_delete_disabled_when_console_deletes_should_refuse() {
    let broker = HttpBroker::start(&["delete.topic.enable=false"]);
    assert_eq!(
        broker
            .post_json("/api/topics", &json!({"name": "kept"}))
            .status,
        201
    );
    assert_eq!(broker.delete("/api/topics/kept").status, 403);
    assert_eq!(broker.get("/api/topics/kept").status, 200);
}

#[test]
fn given_empty_group_when_offsets_reset_should_commit_through_the_coordinator() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "replay", 2, &[]);
    assert_eq!(
        produce(&mut conn, "replay", 0, batch("a", 6, 1_700_000_000_000)).0,
        0
    );
    assert_eq!(
        produce(&mut conn, "replay", 1, batch("b", 4, 1_700_000_500_000)).0,
        0
    );
    commit_offset(&mut conn, "app", "replay", 0, 6);
    commit_offset(&mut conn, "app", "replay", 1, 4);

    let groups = broker.get_json("/api/groups");
    let app = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == "app")
        .expect("group listed");
    assert_eq!(app["state"], "Empty");
    assert_eq!(app["total_lag"], 0);

    // A dry run says what would happen and changes nothing.
    let dry = broker.post_json(
        "/api/groups/app/reset-offsets",
        &json!({"topic": "replay", "to": "earliest", "dry_run": true}),
    );
    assert_eq!(dry.status, 200, "{}", dry.text());
    assert_eq!(dry.json()["partitions"][0]["previous_offset"], 6);
    assert_eq!(dry.json()["partitions"][0]["new_offset"], 0);
    assert_eq!(committed_offset(&mut conn, "app", "replay", 0), 6);

    let reset = broker.post_json(
        "/api/groups/app/reset-offsets",
        &json!({"topic": "replay", "to": "earliest"}),
    );
    assert_eq!(reset.status, 200, "{}", reset.text());
    assert_eq!(committed_offset(&mut conn, "app", "replay", 0), 0);
    assert_eq!(committed_offset(&mut conn, "app", "replay", 1), 0);
    let described = broker.get_json("/api/groups/app");
    assert_eq!(described["total_lag"], 10);

    // To a time, to an offset (clamped to the log), to the end, one partition only.
    let by_time = broker.post_json(
        "/api/groups/app/reset-offsets",
        &json!({"topic": "replay", "partitions": [1], "to": "timestamp", "timestamp_ms": 1_700_000_500_002i64}),
    );
    assert_eq!(by_time.status, 200, "{}", by_time.text());
    assert_eq!(committed_offset(&mut conn, "app", "replay", 1), 2);
    broker.post_json(
        "/api/groups/app/reset-offsets",
        &json!({"topic": "replay", "partitions": [0], "to": "offset", "offset": 1000}),
    );
    assert_eq!(committed_offset(&mut conn, "app", "replay", 0), 6);
    broker.post_json(
        "/api/groups/app/reset-offsets",
        &json!({"topic": "replay", "to": "latest"}),
    );
    assert_eq!(committed_offset(&mut conn, "app", "replay", 1), 4);

    // Lag follows the reset.
    let metrics = broker.scrape();
    assert_eq!(
        metrics.value(
            "strom_consumer_group_lag",
            &[("group", "app"), ("topic", "replay"), ("partition", "1")]
        ),
        Some(0.0)
    );

    // Bad requests.
    assert_eq!(
        broker
            .post_json(
                "/api/groups/app/reset-offsets",
                &json!({"topic": "replay", "to": "yesterday"})
            )
            .status,
        400
    );
    assert_eq!(
        broker
            .post_json(
                "/api/groups/app/reset-offsets",
                &json!({"topic": "nope", "to": "earliest"})
            )
            .status,
        404
    );
    assert_eq!(broker.get("/api/groups/nobody").status, 404);
}

#[test]
fn given_group_with_live_member_when_offsets_reset_should_refuse_with_conflict() {
    let broker = HttpBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "busy", 1, &[]);
    // A classic member joins (JoinGroup v5 with a member id after MEMBER_ID_REQUIRED is not
    // needed below v4).
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("live")))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_static_str(""))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(bytes::Bytes::from_static(&[
                    0, 0, 0, 0, 0, 1, 0, 4, b'b', b'u', b's', b'y', 0xff, 0xff, 0xff, 0xff,
                ])),
        ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let joined: JoinGroupResponse = loop {
        let response: JoinGroupResponse = conn.call(ApiKey::JoinGroup, 3, &join);
        if response.error_code == 0 {
            break response;
        }
        assert!(
            Instant::now() < deadline,
            "join failed with {}",
            response.error_code
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let described = broker.get_json("/api/groups/live");
    assert_eq!(described["members"].as_array().unwrap().len(), 1);
    assert_eq!(
        described["members"][0]["member_id"],
        joined.member_id.to_string()
    );
    let refused = broker.post_json(
        "/api/groups/live/reset-offsets",
        &json!({"topic": "busy", "to": "earliest"}),
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("active members"));
}
