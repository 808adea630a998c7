//! `strom group` against the real binary: list, describe with lag, reset-offsets (dry run,
//! then --execute), delete, and the errors an operator sees.

mod broker_support;
mod group_support;

use std::process::Command;

use broker_support::{batch, create_topic, produce, Conn, TestBroker};
use group_support::s;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;

fn strom(broker: &TestBroker, args: &[&str]) -> (i32, serde_json::Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .arg("--bootstrap-server")
        .arg(broker.addr.to_string())
        .output()
        .expect("run strom");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        output.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

fn admin_commit(conn: &mut Conn, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                    })
                    .collect(),
            )]);
    let response: OffsetCommitResponse = conn.call(ApiKey::OffsetCommit, 8, &request);
    assert!(response.topics[0]
        .partitions
        .iter()
        .all(|p| p.error_code == 0));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn given_group_with_commits_when_operator_inspects_resets_and_deletes_should_see_each_step() {
    let broker = TestBroker::start(&["offsets.topic.num.partitions=3"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "orders", 2, &[]);
    assert_eq!(
        produce(&mut conn, "orders", 0, batch("a", 10, now_ms())).0,
        0
    );
    assert_eq!(
        produce(&mut conn, "orders", 1, batch("b", 4, now_ms())).0,
        0
    );
    admin_commit(&mut conn, "billing", "orders", &[(0, 7), (1, 4)]);

    let (code, listed, _) = strom(&broker, &["group", "list", "--json"]);
    assert_eq!(code, 0);
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == "billing" && g["state"] == "Empty"));

    let (code, described, _) = strom(&broker, &["group", "describe", "billing", "--json"]);
    assert_eq!(code, 0);
    let offsets = described["offsets"].as_array().unwrap();
    assert_eq!(offsets[0]["committed_offset"], 7);
    assert_eq!(offsets[0]["log_end_offset"], 10);
    assert_eq!(offsets[0]["lag"], 3);
    assert_eq!(offsets[1]["lag"], 0);

    // Dry run: shows the plan, changes nothing.
    let (code, plan, stderr) = strom(
        &broker,
        &[
            "group",
            "reset-offsets",
            "billing",
            "--all-topics",
            "--shift-by",
            "-5",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["offsets"][0]["new_offset"], 2);
    assert_eq!(plan["offsets"][1]["new_offset"], 0);
    let (_, described, _) = strom(&broker, &["group", "describe", "billing", "--json"]);
    assert_eq!(described["offsets"][0]["committed_offset"], 7);

    let (code, _, stderr) = strom(
        &broker,
        &[
            "group",
            "reset-offsets",
            "billing",
            "--topic",
            "orders:0",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = strom(
        &broker,
        &[
            "group",
            "reset-offsets",
            "billing",
            "--topic",
            "orders:1",
            "--to-offset",
            "99",
            "--execute",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let (_, described, _) = strom(&broker, &["group", "describe", "billing", "--json"]);
    assert_eq!(described["offsets"][0]["committed_offset"], 0);
    assert_eq!(
        described["offsets"][1]["committed_offset"], 4,
        "clamped to the log end"
    );

    let (code, _, _) = strom(&broker, &["group", "delete", "billing"]);
    assert_eq!(code, 0);
    let (code, _, stderr) = strom(&broker, &["group", "delete", "billing"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("GROUP_ID_NOT_FOUND"), "{stderr}");
    let (code, _, stderr) = strom(&broker, &["group", "describe", "billing"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("does not exist"), "{stderr}");
    let (code, _, _) = strom(&broker, &["group", "reset-offsets", "x", "--all-topics"]);
    assert_eq!(code, 2, "a reset needs a target");
}
