//! Committed offsets against the real binary: kept across kill -9 and restart, a consumer
//! resumes at the commit, and every bad commit gets the Kafka error code clients expect.

mod broker_support;
mod group_support;

use std::time::{Duration, Instant};

use broker_support::{batch, create_topic, fetch, produce, Conn, TestBroker};
use group_support::{s, wait_settled, Member};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_GROUP_ID: i16 = 24;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offsets: &[(i32, i64, &str)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(partition, offset, metadata)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*partition)
                            .with_committed_offset(*offset)
                            .with_committed_metadata(Some(s(metadata)))
                    })
                    .collect(),
            )])
}

fn commit(conn: &mut Conn, request: &OffsetCommitRequest) -> Vec<i16> {
    let response: OffsetCommitResponse = conn.call(ApiKey::OffsetCommit, 8, request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// (offset, metadata) per partition; retries while the coordinator loads after a restart.
fn committed(conn: &mut Conn, group: &str, topic: &str, partitions: &[i32]) -> Vec<(i64, String)> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(partitions.to_vec())]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response: OffsetFetchResponse = conn.call(ApiKey::OffsetFetch, 7, &request);
        if response.error_code == COORDINATOR_LOAD_IN_PROGRESS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(response.error_code, 0);
        return response.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.committed_offset,
                    p.metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                )
            })
            .collect();
    }
}

#[test]
fn given_commits_when_broker_killed_and_restarted_should_resume_at_the_committed_offset() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let port = broker_support::ephemeral_port();
    let settings = [
        "offsets.topic.num.partitions=7",
        "group.initial.rebalance.delay.ms=0",
    ];
    let mut broker = TestBroker::start_in(&data_dir, port, &settings);
    let mut conn = broker.connect();
    create_topic(&mut conn, "events", 2, &[]);
    for round in 0..3 {
        let (error, _) = produce(
            &mut conn,
            "events",
            0,
            batch(&format!("r{round}"), 10, now_ms()),
        );
        assert_eq!(error, 0);
    }
    // A consumer read 17 records and committed, with metadata; many groups commit too.
    assert_eq!(
        commit(
            &mut conn,
            &commit_request("app", -1, "", "events", &[(0, 17, "after-17"), (1, 0, "")])
        ),
        vec![0, 0]
    );
    for group in 0..40 {
        let name = format!("other-{group}");
        assert_eq!(
            commit(
                &mut conn,
                &commit_request(&name, -1, "", "events", &[(0, group, "")])
            ),
            vec![0]
        );
    }
    // Later commits win over earlier ones.
    assert_eq!(
        commit(
            &mut conn,
            &commit_request("other-3", -1, "", "events", &[(0, 99, "latest")])
        ),
        vec![0]
    );
    drop(conn);

    broker.kill();
    let broker = TestBroker::start_in(&data_dir, port, &settings);
    let mut conn = broker.connect();
    assert_eq!(
        committed(&mut conn, "app", "events", &[0, 1]),
        vec![(17, "after-17".to_string()), (0, String::new())]
    );
    assert_eq!(
        committed(&mut conn, "other-3", "events", &[0]),
        vec![(99, "latest".to_string())]
    );
    assert_eq!(
        committed(&mut conn, "other-39", "events", &[0]),
        vec![(39, String::new())]
    );
    assert_eq!(
        committed(&mut conn, "never", "events", &[0]),
        vec![(-1, String::new())]
    );

    // Resuming at the commit: the first record read is the committed one, nothing skipped.
    let (error, _, records) = fetch(&mut conn, "events", 0, 17);
    assert_eq!(error, 0);
    let values = broker_support::decode_values(&records);
    let resumed: Vec<&(i64, String)> = values.iter().filter(|(offset, _)| *offset >= 17).collect();
    assert_eq!(
        resumed.first().map(|(o, v)| (*o, v.as_str())),
        Some((17, "r1-7"))
    );
    assert_eq!(resumed.last().map(|(o, _)| *o), Some(29));
}

#[test]
fn given_bad_commits_should_answer_the_kafka_error_codes() {
    let broker = TestBroker::start(&[
        "offsets.topic.num.partitions=3",
        "group.initial.rebalance.delay.ms=0",
    ]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "t", 1, &[]);
    let member = Member::start(broker.connect(), "live", 1);
    let (generation, _) = wait_settled(&[&member], 1, Duration::from_secs(20));
    let member_id = {
        let described: DescribeGroupsResponse = conn.call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("live"))]),
        );
        assert_eq!(described.groups[0].group_state.as_str(), "Stable");
        described.groups[0].members[0].member_id.to_string()
    };

    // A commit by the member at its generation works; partition 5 does not exist.
    assert_eq!(
        commit(
            &mut conn,
            &commit_request(
                "live",
                generation,
                &member_id,
                "t",
                &[(0, 3, ""), (5, 1, "")]
            )
        ),
        vec![0, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        commit(
            &mut conn,
            &commit_request(
                "live",
                generation,
                &member_id,
                "missing-topic",
                &[(0, 1, "")]
            )
        ),
        vec![UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        commit(
            &mut conn,
            &commit_request("live", generation + 1, &member_id, "t", &[(0, 4, "")])
        ),
        vec![ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit(
            &mut conn,
            &commit_request("live", generation, "stranger", "t", &[(0, 4, "")])
        ),
        vec![UNKNOWN_MEMBER_ID]
    );
    assert_eq!(
        commit(
            &mut conn,
            &commit_request("live", -1, "", "t", &[(0, 4, "")])
        ),
        vec![UNKNOWN_MEMBER_ID],
        "admin commits are refused while the group has members"
    );
    assert_eq!(
        commit(&mut conn, &commit_request("", -1, "", "t", &[(0, 4, "")])),
        vec![INVALID_GROUP_ID]
    );
    let long_id = "g".repeat(2000);
    assert_eq!(
        commit(
            &mut conn,
            &commit_request(&long_id, -1, "", "t", &[(0, 4, "")])
        ),
        vec![INVALID_GROUP_ID]
    );
    let huge = "m".repeat(5000);
    assert_eq!(
        commit(
            &mut conn,
            &commit_request("solo", -1, "", "t", &[(0, 4, &huge)])
        ),
        vec![OFFSET_METADATA_TOO_LARGE]
    );
    assert_eq!(
        committed(&mut conn, "live", "t", &[0]),
        vec![(3, String::new())]
    );

    // The internal topic is not writable by clients.
    let (error, _) = produce(&mut conn, "__consumer_offsets", 0, batch("x", 1, 0));
    assert_eq!(error, INVALID_TOPIC_EXCEPTION);
    drop(member);
}

#[test]
fn given_one_client_committing_in_a_loop_should_report_commit_throughput() {
    let broker = TestBroker::start(&["offsets.topic.num.partitions=3"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "tp", 1, &[]);
    let commits = 2000;
    let started = Instant::now();
    for offset in 0..commits {
        assert_eq!(
            commit(
                &mut conn,
                &commit_request("bench", -1, "", "tp", &[(0, offset, "")])
            ),
            vec![0]
        );
    }
    let elapsed = started.elapsed();
    eprintln!(
        "OffsetCommit: {commits} sequential commits in {elapsed:?} = {:.0} commits/s (one client, one partition, debug build)",
        commits as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        committed(&mut conn, "bench", "tp", &[0]),
        vec![(commits - 1, String::new())]
    );
}
