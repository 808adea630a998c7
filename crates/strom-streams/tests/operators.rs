//! Every stateless and aggregating operator through the broker-free test driver.

use strom_streams::*;

fn strings(name: &str) -> TestTopic<String, String> {
    TestTopic::new(name, Serdes::string(), Serdes::string())
}

fn s(text: &str) -> String {
    text.to_string()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (s(k), s(v))).collect()
}

#[test]
fn given_filter_map_values_and_filter_not_should_keep_and_transform_the_right_records() {
    let builder = StreamsBuilder::new();
    let input = builder.stream("in", Serdes::string(), Serdes::string());
    input
        .filter(|_, v| v.len() > 1)
        .map_values(|v| v.to_uppercase())
        .to("long", Serdes::string(), Serdes::string());
    input
        .filter_not(|_, v| v.len() > 1)
        .to("short", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    for (k, v) in [("a", "xy"), ("b", "z"), ("c", "abc")] {
        driver.pipe(&strings("in"), &s(k), &s(v), 1).unwrap();
    }
    assert_eq!(
        driver.read_key_values(&strings("long")).unwrap(),
        pairs(&[("a", "XY"), ("c", "ABC")])
    );
    assert_eq!(
        driver.read_key_values(&strings("short")).unwrap(),
        pairs(&[("b", "z")])
    );
}

#[test]
fn given_map_flat_map_and_select_key_should_rekey_records() {
    let builder = StreamsBuilder::new();
    let input = builder.stream("in", Serdes::string(), Serdes::string());
    input
        .map(|k, v| (v.clone(), k.clone()))
        .to("swapped", Serdes::string(), Serdes::string());
    input
        .flat_map(|k, v| {
            v.chars()
                .map(|c| (c.to_string(), k.clone()))
                .collect::<Vec<_>>()
        })
        .to("chars", Serdes::string(), Serdes::string());
    input
        .flat_map_values(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .to("split", Serdes::string(), Serdes::string());
    input
        .select_key(|_, v| format!("k-{v}"))
        .to("selected", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver
        .pipe(&strings("in"), &s("key"), &s("a,b"), 5)
        .unwrap();
    assert_eq!(
        driver.read_key_values(&strings("swapped")).unwrap(),
        pairs(&[("a,b", "key")])
    );
    assert_eq!(
        driver.read_key_values(&strings("chars")).unwrap(),
        pairs(&[("a", "key"), (",", "key"), ("b", "key")])
    );
    assert_eq!(
        driver.read_key_values(&strings("split")).unwrap(),
        pairs(&[("key", "a"), ("key", "b")])
    );
    let selected = driver.read(&strings("selected")).unwrap();
    assert_eq!(selected[0].key, "k-a,b");
    assert_eq!(
        selected[0].timestamp_ms, 5,
        "operators keep the record's timestamp"
    );
}

#[test]
fn given_branch_should_route_each_record_to_the_first_matching_branch_only() {
    let builder = StreamsBuilder::new();
    let branches = builder
        .stream("in", Serdes::string(), Serdes::i64())
        .branch(vec![
            Box::new(|_, v: &i64| *v < 0),
            Box::new(|_, v: &i64| *v < 10),
            Box::new(|_, v: &i64| *v < 100),
        ]);
    for (index, branch) in branches.iter().enumerate() {
        branch.to(&format!("out-{index}"), Serdes::string(), Serdes::i64());
    }
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    let input = TestTopic::new("in", Serdes::string(), Serdes::i64());
    for v in [-1, 5, 50, 500] {
        driver.pipe(&input, &s("k"), &v, 0).unwrap();
    }
    let read = |driver: &mut TopologyTestDriver, i: usize| -> Vec<i64> {
        let topic = TestTopic::new(&format!("out-{i}"), Serdes::string(), Serdes::i64());
        driver
            .read(&topic)
            .unwrap()
            .into_iter()
            .map(|r| r.value)
            .collect()
    };
    assert_eq!(read(&mut driver, 0), vec![-1]);
    assert_eq!(read(&mut driver, 1), vec![5]);
    assert_eq!(
        read(&mut driver, 2),
        vec![50],
        "500 matches no branch and is dropped"
    );
}

#[test]
fn given_merge_and_peek_should_pass_both_streams_through_in_processing_order() {
    let builder = StreamsBuilder::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_peek = seen.clone();
    let a = builder.stream("a", Serdes::string(), Serdes::string());
    let b = builder.stream("b", Serdes::string(), Serdes::string());
    a.merge(&b)
        .peek(move |k, _| seen_by_peek.lock().unwrap().push(k.clone()))
        .to("out", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver.pipe(&strings("a"), &s("1"), &s("x"), 0).unwrap();
    driver.pipe(&strings("b"), &s("2"), &s("y"), 0).unwrap();
    driver.pipe(&strings("a"), &s("3"), &s("z"), 0).unwrap();
    assert_eq!(
        driver.read_key_values(&strings("out")).unwrap(),
        pairs(&[("1", "x"), ("2", "y"), ("3", "z")])
    );
    assert_eq!(*seen.lock().unwrap(), vec![s("1"), s("2"), s("3")]);
}

fn word_count() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Serdes::option(Serdes::string()), Serdes::string())
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone(), Serdes::string(), Serdes::string())
        .named("counts")
        .count()
        .to("counts-out", Serdes::string(), Serdes::i64());
    builder.build().unwrap()
}

#[test]
fn given_word_count_should_repartition_and_count_each_word() {
    let topology = word_count();
    assert_eq!(topology.repartition_topics("app").len(), 1);
    assert_eq!(
        topology.stores()[0].changelog_topic("app"),
        "app-counts-changelog"
    );
    let mut driver = TopologyTestDriver::with_application_id(topology, "app").unwrap();
    let lines = TestTopic::new("lines", Serdes::option(Serdes::string()), Serdes::string());
    driver
        .pipe(&lines, &None, &s("the cat The dog"), 1)
        .unwrap();
    driver.pipe(&lines, &None, &s("a cat"), 2).unwrap();
    let out = TestTopic::new("counts-out", Serdes::string(), Serdes::i64());
    let counts = driver.read_key_values(&out).unwrap();
    assert_eq!(
        counts,
        vec![
            (s("the"), 1),
            (s("cat"), 1),
            (s("the"), 2),
            (s("dog"), 1),
            (s("a"), 1),
            (s("cat"), 2)
        ]
    );
    // The repartition topic carried every word; the changelog every update.
    assert_eq!(driver.read_raw(&topology_repartition("app")).len(), 6);
    assert_eq!(driver.read_raw("app-counts-changelog").len(), 6);
    assert_eq!(
        driver
            .store_get("counts", &Serdes::string(), &Serdes::i64(), &s("cat"))
            .unwrap(),
        Some(2)
    );
}

fn topology_repartition(application_id: &str) -> String {
    word_count().repartition_topics(application_id)[0].clone()
}

#[test]
fn given_reduce_and_aggregate_should_fold_values_per_key() {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream("in", Serdes::string(), Serdes::i64())
        .group_by_key();
    grouped
        .reduce(|a, b| *a.max(b))
        .to("max", Serdes::string(), Serdes::i64());
    grouped
        .aggregate(
            Vec::<i64>::new,
            |_, v, acc| [acc.clone(), vec![*v]].concat(),
            Serdes::json(),
        )
        .to("all", Serdes::string(), Serdes::json());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    let input = TestTopic::new("in", Serdes::string(), Serdes::i64());
    for (k, v) in [("a", 3), ("b", 1), ("a", 2), ("a", 7)] {
        driver.pipe(&input, &s(k), &v, 0).unwrap();
    }
    let max = TestTopic::new("max", Serdes::string(), Serdes::i64());
    assert_eq!(
        driver.read_key_values(&max).unwrap(),
        vec![(s("a"), 3), (s("b"), 1), (s("a"), 3), (s("a"), 7)]
    );
    let all = TestTopic::new("all", Serdes::string(), Serdes::json::<Vec<i64>>());
    assert_eq!(
        driver.read_key_values(&all).unwrap().last().unwrap(),
        &(s("a"), vec![3, 2, 7])
    );
    assert!(
        driver.read_raw("test-KSTREAM-REPARTITION").is_empty(),
        "group_by_key without a key change does not repartition"
    );
}

#[test]
fn given_a_table_should_keep_the_latest_value_and_apply_tombstones() {
    let builder = StreamsBuilder::new();
    let table = builder.table("users", Serdes::string(), Serdes::string());
    table
        .filter(|_, v| v != "hidden")
        .to("visible", Serdes::string(), Serdes::string());
    table
        .map_values(|v| v.len() as i64)
        .to("lengths", Serdes::string(), Serdes::i64());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver
        .pipe_raw("users", Some(b"u1"), Some(b"ann"), 0)
        .unwrap();
    driver
        .pipe_raw("users", Some(b"u1"), Some(b"hidden"), 1)
        .unwrap();
    driver
        .pipe_raw("users", Some(b"u2"), Some(b"bo"), 2)
        .unwrap();
    driver.pipe_raw("users", Some(b"u2"), None, 3).unwrap();
    driver.pipe_raw("users", Some(b"u3"), None, 4).unwrap();
    let visible: Vec<(Option<Vec<u8>>, Option<Vec<u8>>)> = driver
        .read_raw("visible")
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    assert_eq!(
        visible,
        vec![
            (Some(b"u1".to_vec()), Some(b"ann".to_vec())),
            (Some(b"u1".to_vec()), None), // no longer matches: deleted downstream
            (Some(b"u2".to_vec()), Some(b"bo".to_vec())),
            (Some(b"u2".to_vec()), None),
        ]
    );
    let lengths = driver.read_raw("lengths");
    assert_eq!(
        lengths.len(),
        4,
        "a tombstone for an absent key changes nothing"
    );
    assert_eq!(
        driver
            .store_get(
                "users-source-store",
                &Serdes::string(),
                &Serdes::string(),
                &s("u1")
            )
            .unwrap(),
        Some(s("hidden"))
    );
    assert_eq!(
        driver
            .store_get(
                "users-source-store",
                &Serdes::string(),
                &Serdes::string(),
                &s("u2")
            )
            .unwrap(),
        None
    );
}

#[test]
fn given_undeserializable_input_should_skip_it_and_go_on() {
    let builder = StreamsBuilder::new();
    builder.stream("in", Serdes::string(), Serdes::i64()).to(
        "out",
        Serdes::string(),
        Serdes::i64(),
    );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver
        .pipe_raw("in", Some(b"k"), Some(b"short"), 0)
        .unwrap();
    driver
        .pipe_raw("in", None, Some(&7i64.to_be_bytes()), 0)
        .unwrap();
    driver
        .pipe_raw("in", Some(b"k"), Some(&7i64.to_be_bytes()), 0)
        .unwrap();
    assert_eq!(driver.skipped_records(), 2);
    assert_eq!(driver.read_raw("out").len(), 1);
}

#[test]
fn given_on_undeserializable_fail_should_stop_at_the_bad_record() {
    let builder = StreamsBuilder::new();
    builder.stream("in", Serdes::string(), Serdes::i64()).to(
        "out",
        Serdes::string(),
        Serdes::i64(),
    );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver.on_undeserializable(OnError::Fail);
    let error = driver
        .pipe_raw("in", Some(b"k"), Some(b"short"), 0)
        .unwrap_err();
    assert!(
        matches!(error, StreamsError::Undeserializable { ref topic, .. } if topic == "in"),
        "{error}"
    );
    assert!(driver.read_raw("out").is_empty());
}

#[test]
fn given_a_type_changing_operator_without_serdes_when_grouped_should_refuse_to_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Serdes::string(), Serdes::string())
        .map(|k, v| (v.clone(), k.len()))
        .group_by_key()
        .count();
    assert_eq!(
        builder.build().err(),
        Some(TopologyError::MissingSerde {
            operation: "group_by_key",
            what: "key"
        })
    );
}

struct Dedup;
impl Processor<String, String, String, String> for Dedup {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        key: &String,
        value: &String,
    ) -> Result<(), StreamsError> {
        let seen = ctx.task().get("seen", key.as_bytes())?;
        if seen.is_none() {
            ctx.task().put("seen", key.as_bytes(), Some(b"1"))?;
            ctx.forward(key.clone(), value.clone());
        }
        Ok(())
    }
    fn on_wall_clock(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        now_ms: i64,
    ) -> Result<(), StreamsError> {
        ctx.forward_at(s("tick"), now_ms.to_string(), now_ms);
        Ok(())
    }
}

#[test]
fn given_a_processor_with_a_store_should_dedup_and_punctuate_on_wall_clock() {
    let builder = StreamsBuilder::new();
    builder.add_state_store("seen");
    builder
        .stream("in", Serdes::string(), Serdes::string())
        .process(|| Box::new(Dedup) as Box<dyn Processor<String, String, String, String>>)
        .to("out", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    for (k, v) in [("a", "1"), ("a", "2"), ("b", "3")] {
        driver.pipe(&strings("in"), &s(k), &s(v), 0).unwrap();
    }
    driver.advance_wall_clock(1000).unwrap();
    assert_eq!(
        driver.read_key_values(&strings("out")).unwrap(),
        pairs(&[("a", "1"), ("b", "3"), ("tick", "1000")])
    );
    assert_eq!(driver.read_raw("test-seen-changelog").len(), 2);
}

#[test]
fn given_a_regrouped_table_should_move_rows_between_groups_with_the_subtractor() {
    let builder = StreamsBuilder::new();
    // users: user -> city; count users per city, and the sum of name lengths per city.
    let users = builder.table("users", Serdes::string(), Serdes::string());
    let by_city = users.group_by(
        |user, city| (city.clone(), user.len() as i64),
        Serdes::string(),
        Serdes::i64(),
    );
    by_city
        .count()
        .to("per-city", Serdes::string(), Serdes::i64());
    by_city
        .reduce(|a, b| a + b, |a, b| a - b)
        .to("lengths", Serdes::string(), Serdes::i64());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    let users_topic = strings("users");
    driver.pipe(&users_topic, &s("ann"), &s("oslo"), 0).unwrap();
    driver.pipe(&users_topic, &s("bob"), &s("oslo"), 1).unwrap();
    driver.pipe(&users_topic, &s("ann"), &s("rome"), 2).unwrap();
    driver.pipe_raw("users", Some(b"bob"), None, 3).unwrap();
    let per_city = TestTopic::new("per-city", Serdes::string(), Serdes::i64());
    assert_eq!(
        driver.read_key_values(&per_city).unwrap(),
        vec![
            (s("oslo"), 1),
            (s("oslo"), 2),
            (s("oslo"), 1),
            (s("rome"), 1),
            (s("oslo"), 0)
        ]
    );
    let lengths = TestTopic::new("lengths", Serdes::string(), Serdes::i64());
    assert_eq!(
        driver.read_key_values(&lengths).unwrap().last(),
        Some(&(s("oslo"), 0))
    );
}
