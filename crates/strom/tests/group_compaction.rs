//! `__consumer_offsets` under the log cleaner: after compaction has removed superseded
//! commits (and a restart replays what is left), the latest commit of every group is
//! still there and deleted groups stay deleted.

mod broker_support;
mod group_support;

use std::time::{Duration, Instant};

use broker_support::{create_topic, Conn, TestBroker};
use group_support::s;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;

const SETTINGS: &[&str] = &[
    "offsets.topic.num.partitions=1",
    "offsets.topic.segment.bytes=2048",
    "log.cleaner.backoff.ms=100",
    "log.cleaner.min.cleanable.ratio=0.01",
];

fn commit(conn: &mut Conn, group: &str, offset: i64) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("m")))])]);
    let response: OffsetCommitResponse = conn.call(ApiKey::OffsetCommit, 8, &request);
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
}

fn committed(conn: &mut Conn, group: &str) -> i64 {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0])]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response: OffsetFetchResponse = conn.call(ApiKey::OffsetFetch, 7, &request);
        if response.error_code == 14 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(response.error_code, 0);
        return response.topics[0].partitions[0].committed_offset;
    }
}

fn log_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn given_compacted_offsets_topic_when_broker_restarts_should_keep_latest_commits() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let port = broker_support::ephemeral_port();
    let mut broker = TestBroker::start_in(&data_dir, port, SETTINGS);
    let mut conn = broker.connect();
    create_topic(&mut conn, "t", 1, &[]);
    for offset in 0..400 {
        commit(&mut conn, "busy", offset);
    }
    for group in 0..10 {
        commit(&mut conn, &format!("quiet-{group}"), group);
    }
    commit(&mut conn, "doomed", 5);
    let deleted: DeleteGroupsResponse = conn.call(
        ApiKey::DeleteGroups,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("doomed"))]),
    );
    assert_eq!(deleted.results[0].error_code, 0);
    // More commits so the records above sit in closed segments the cleaner may clean.
    for offset in 400..600 {
        commit(&mut conn, "busy", offset);
    }
    // 611 commit batches of about 100 bytes each were written; compaction keeps about
    // one record per key (12 keys) plus the active segment.
    let partition_dir = data_dir.join("__consumer_offsets-0");
    let written_bytes_min = 611 * 90;
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_bytes(&partition_dir) * 4 > written_bytes_min && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = log_bytes(&partition_dir);
    eprintln!("__consumer_offsets-0: at least {written_bytes_min} bytes written, {after} left");
    assert!(
        after * 4 <= written_bytes_min,
        "the cleaner did not compact ({after} bytes left)"
    );
    drop(conn);

    broker.kill();
    let broker = TestBroker::start_in(&data_dir, port, SETTINGS);
    let mut conn = broker.connect();
    assert_eq!(committed(&mut conn, "busy"), 599);
    for group in 0..10 {
        assert_eq!(committed(&mut conn, &format!("quiet-{group}")), group);
    }
    assert_eq!(committed(&mut conn, "doomed"), -1);
}
