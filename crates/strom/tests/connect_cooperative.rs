//! KIP-415 incremental cooperative rebalancing with real workers: a third worker joining
//! two takes its share of the tasks, and only the tasks that move are stopped; every task
//! that stays put keeps running, its status untouched, through both rebalances.

mod broker_support;
mod connect_support;
mod http_support;

use std::collections::BTreeMap;
use std::time::Duration;

use connect_support::*;
use serde_json::{json, Value};

/// (task id -> worker id) when every task of `name` runs.
fn placement(worker: &Worker, name: &str, tasks: usize) -> Option<BTreeMap<u64, String>> {
    let response = worker.call("GET", &format!("/connectors/{name}/status"), None);
    if response.status != 200 {
        return None;
    }
    let status: Value = response.json();
    let list = status["tasks"].as_array()?;
    if list.len() != tasks || list.iter().any(|t| t["state"] != "RUNNING") {
        return None;
    }
    Some(
        list.iter()
            .map(|t| {
                (
                    t["id"].as_u64().unwrap_or(0),
                    t["worker_id"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
    )
}

/// The tasks of `name` that `worker`'s log says it stopped (or started: `what`).
fn logged(worker: &Worker, what: &str, name: &str) -> Vec<u64> {
    let mut plain = String::new();
    let mut escape = false;
    for ch in worker.log().chars() {
        match (escape, ch) {
            (false, '\u{1b}') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, ch) => plain.push(ch),
        }
    }
    plain
        .lines()
        .filter(|l| l.contains(what) && l.contains(name))
        .filter_map(|l| {
            let at = l.find("task=")? + 5;
            l[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn given_two_workers_when_a_third_joins_should_move_only_its_share_and_never_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let a = Worker::distributed(dir.path(), &broker, "coop");
    let b = Worker::distributed(dir.path(), &broker, "coop");
    a.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "spread", "config": {
            "connector.class": "FileStreamSink", "topics": "coop-in", "tasks.max": "6",
            "file": dir.path().join("out.txt").to_str().unwrap()}})),
    );
    let before = wait_for("6 tasks on 2 workers", Duration::from_secs(60), || {
        placement(&a, "spread", 6).filter(|p| {
            let on_a = p.values().filter(|w| **w == a.rest.to_string()).count();
            on_a == 3
        })
    });
    let c = Worker::distributed(dir.path(), &broker, "coop");
    let after = wait_for(
        "2 tasks on each of 3 workers",
        Duration::from_secs(60),
        || {
            placement(&a, "spread", 6).filter(|p| {
                [&a, &b, &c]
                    .iter()
                    .all(|w| p.values().filter(|id| **id == w.rest.to_string()).count() == 2)
            })
        },
    );
    // Let any late stop show up in the logs.
    std::thread::sleep(Duration::from_secs(2));
    let moved: Vec<u64> = after
        .iter()
        .filter(|(task, w)| before[*task] != **w)
        .map(|(task, _)| *task)
        .collect();
    assert_eq!(
        moved.len(),
        2,
        "only c's share moved: {before:?} -> {after:?}"
    );
    let mut stops = logged(&a, "task stopping", "spread");
    stops.extend(logged(&b, "task stopping", "spread"));
    stops.sort();
    assert_eq!(
        stops,
        moved,
        "only the moving tasks were stopped\nlog a:\n{}\nlog b:\n{}",
        a.log(),
        b.log()
    );
    let mut starts = logged(&a, "task starting", "spread");
    starts.extend(logged(&b, "task starting", "spread"));
    starts.extend(logged(&c, "task starting", "spread"));
    for task in after.keys() {
        let count = starts.iter().filter(|t| *t == task).count();
        let expected = if moved.contains(task) { 2 } else { 1 };
        assert_eq!(count, expected, "task {task} started {count} times");
    }
    assert!(logged(&c, "task stopping", "spread").is_empty());
}
