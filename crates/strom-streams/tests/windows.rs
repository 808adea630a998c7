//! Windowed aggregations with out-of-order and late records, and suppression.

use strom_streams::*;

fn s(text: &str) -> String {
    text.to_string()
}

fn input() -> TestTopic<String, String> {
    TestTopic::new("in", Serdes::string(), Serdes::string())
}

/// (key, start, end, count) of a windowed count topic; `None` counts are tombstones.
fn read_windows(
    driver: &mut TopologyTestDriver,
    topic: TestTopic<Windowed<String>, Option<i64>>,
) -> Vec<(String, i64, i64, Option<i64>)> {
    driver
        .read(&topic)
        .unwrap()
        .into_iter()
        .map(|r| (r.key.key, r.key.start_ms, r.key.end_ms, r.value))
        .collect()
}

fn windowed_counts(windows: TimeWindows, suppress: bool) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let counts = builder
        .stream("in", Serdes::string(), Serdes::string())
        .group_by_key()
        .windowed_by(windows)
        .count();
    let counts = if suppress {
        counts.suppress_until_window_closes()
    } else {
        counts
    };
    counts.to(
        "out",
        Serdes::time_windowed(Serdes::string(), windows.size_ms),
        Serdes::i64(),
    );
    TopologyTestDriver::new(builder.build().unwrap()).unwrap()
}

fn out(size_ms: i64) -> TestTopic<Windowed<String>, Option<i64>> {
    TestTopic::new(
        "out",
        Serdes::time_windowed(Serdes::string(), size_ms),
        Serdes::option(Serdes::i64()),
    )
}

#[test]
fn given_tumbling_windows_with_grace_when_records_arrive_out_of_order_should_count_until_the_grace_ends(
) {
    let mut driver = windowed_counts(TimeWindows::tumbling(10).grace(5), false);
    for t in [1, 12, 3, 16, 4, 25] {
        driver.pipe(&input(), &s("k"), &s("v"), t).unwrap();
    }
    assert_eq!(
        read_windows(&mut driver, out(10)),
        vec![
            (s("k"), 0, 10, Some(1)),
            (s("k"), 10, 20, Some(1)),
            (s("k"), 0, 10, Some(2)), // t=3 is out of order but within grace (stream time 12 < 10 + 5)
            (s("k"), 10, 20, Some(2)),
            // t=4 arrives at stream time 16 >= 10 + 5: late, dropped
            (s("k"), 20, 30, Some(1)),
        ]
    );
    assert_eq!(driver.dropped_late_records(), 1);
}

#[test]
fn given_hopping_windows_should_count_a_record_in_every_window_containing_it() {
    let mut driver = windowed_counts(TimeWindows::hopping(10, 5), false);
    driver.pipe(&input(), &s("k"), &s("v"), 7).unwrap();
    driver.pipe(&input(), &s("k"), &s("v"), 12).unwrap();
    let mut got = read_windows(&mut driver, out(10));
    got.sort();
    assert_eq!(
        got,
        vec![
            (s("k"), 0, 10, Some(1)),
            (s("k"), 5, 15, Some(1)),
            (s("k"), 5, 15, Some(2)),
            (s("k"), 10, 20, Some(1))
        ]
    );
}

#[test]
fn given_suppress_until_window_closes_should_emit_each_window_once_with_its_final_count() {
    let mut driver = windowed_counts(TimeWindows::tumbling(10).grace(2), true);
    for (key, t) in [
        ("a", 1),
        ("b", 2),
        ("a", 9),
        ("a", 11),
        ("a", 8),
        ("b", 12),
        ("a", 13),
        ("a", 3),
        ("a", 30),
    ] {
        driver.pipe(&input(), &s(key), &s("v"), t).unwrap();
    }
    assert_eq!(
        read_windows(&mut driver, out(10)),
        vec![
            // [0,10) closes at stream time 12: a counted 1, 9 and the out-of-order 8.
            (s("a"), 0, 10, Some(3)),
            (s("b"), 0, 10, Some(1)),
            // [10,20) closes at 22 (reached by t=30); t=3 came after [0,10) closed.
            (s("a"), 10, 20, Some(2)),
            (s("b"), 10, 20, Some(1)),
        ]
    );
    assert_eq!(driver.dropped_late_records(), 1);
}

#[test]
fn given_sliding_windows_should_aggregate_the_difference_before_each_record_and_respect_grace() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Serdes::string(), Serdes::string())
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::with_difference(10).grace(20))
        .count()
        .to(
            "out",
            Serdes::time_windowed(Serdes::string(), 10),
            Serdes::i64(),
        );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    for t in [5, 12, 30, 8, 45, 2] {
        driver.pipe(&input(), &s("k"), &s("v"), t).unwrap();
    }
    assert_eq!(
        read_windows(&mut driver, out(10)),
        vec![
            (s("k"), -5, 5, Some(1)),
            (s("k"), 2, 12, Some(2)),
            (s("k"), 20, 30, Some(1)),
            // t=8 (out of order) joins the window ending at 12, still within grace
            // (12 + 20 >= 30); its own window ending at 8 had closed (8 + 20 < 30).
            (s("k"), 2, 12, Some(3)),
            (s("k"), 35, 45, Some(1)),
            // t=2 arrives at stream time 45 > 2 + 10 + 20: every window it could be in is closed.
        ]
    );
    assert_eq!(driver.dropped_late_records(), 1);
}

#[test]
fn given_session_windows_should_merge_sessions_a_record_bridges_and_drop_late_records() {
    let builder = StreamsBuilder::new();
    let sessions = builder
        .stream("in", Serdes::string(), Serdes::string())
        .group_by_key()
        .windowed_by_session(SessionWindows::with_inactivity_gap(5).grace(20))
        .count();
    sessions.to(
        "out",
        Serdes::session_windowed(Serdes::string()),
        Serdes::i64(),
    );
    sessions.suppress_until_window_closes().to(
        "final",
        Serdes::session_windowed(Serdes::string()),
        Serdes::i64(),
    );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    for t in [0, 3, 20, 10, 7, 1, 60] {
        driver.pipe(&input(), &s("k"), &s("v"), t).unwrap();
    }
    let topic = |name: &str| {
        TestTopic::new(
            name,
            Serdes::session_windowed(Serdes::string()),
            Serdes::option(Serdes::i64()),
        )
    };
    assert_eq!(
        read_windows(&mut driver, topic("out")),
        vec![
            (s("k"), 0, 0, Some(1)),
            (s("k"), 0, 0, None), // merged into [0,3]
            (s("k"), 0, 3, Some(2)),
            (s("k"), 20, 20, Some(1)),
            (s("k"), 10, 10, Some(1)), // out of order, 10 + 5 + 20 > stream time 20: accepted
            (s("k"), 0, 3, None),      // 7 bridges [0,3] and [10,10]
            (s("k"), 10, 10, None),
            (s("k"), 0, 10, Some(4)),
            (s("k"), 0, 10, Some(5)), // 1 falls inside [0,10]
            (s("k"), 60, 60, Some(1)),
        ]
    );
    assert_eq!(
        read_windows(&mut driver, topic("final")),
        vec![(s("k"), 0, 10, Some(5)), (s("k"), 20, 20, Some(1))],
        "sessions closed by stream time 60 (end + gap + grace <= 60), each once"
    );
    driver.pipe(&input(), &s("k"), &s("v"), 2).unwrap();
    assert_eq!(
        driver.dropped_late_records(),
        1,
        "a record for a closed session is dropped"
    );
}

#[test]
fn given_invalid_windows_should_refuse_to_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Serdes::string(), Serdes::string())
        .group_by_key()
        .windowed_by(TimeWindows::hopping(5, 10))
        .count();
    assert!(matches!(
        builder.build(),
        Err(TopologyError::InvalidWindows { .. })
    ));
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Serdes::string(), Serdes::string())
        .group_by_key()
        .count()
        .to_stream();
    let table = builder.table("t", Serdes::string(), Serdes::string());
    let _ = table;
    assert!(builder.build().is_ok());
}
