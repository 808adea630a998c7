//! Stream-table, stream-stream (windowed) and table-table joins.

use strom_streams::*;

fn s(text: &str) -> String {
    text.to_string()
}

fn strings(name: &str) -> TestTopic<String, String> {
    TestTopic::new(name, Serdes::string(), Serdes::string())
}

#[test]
fn given_a_stream_table_join_should_enrich_with_the_current_row() {
    let builder = StreamsBuilder::new();
    let users = builder.table("users", Serdes::string(), Serdes::string());
    let clicks = builder.stream("clicks", Serdes::string(), Serdes::string());
    clicks
        .join_table(&users, |page, name| format!("{name}:{page}"))
        .to("inner", Serdes::string(), Serdes::string());
    clicks
        .left_join_table(&users, |page, name| {
            format!("{}:{page}", name.map(String::as_str).unwrap_or("?"))
        })
        .to("left", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver
        .pipe(&strings("clicks"), &s("u1"), &s("home"), 0)
        .unwrap();
    driver
        .pipe(&strings("users"), &s("u1"), &s("ann"), 1)
        .unwrap();
    driver
        .pipe(&strings("clicks"), &s("u1"), &s("cart"), 2)
        .unwrap();
    driver
        .pipe(&strings("users"), &s("u1"), &s("anna"), 3)
        .unwrap();
    driver
        .pipe(&strings("clicks"), &s("u1"), &s("pay"), 4)
        .unwrap();
    assert_eq!(
        driver.read_key_values(&strings("inner")).unwrap(),
        vec![(s("u1"), s("ann:cart")), (s("u1"), s("anna:pay"))]
    );
    assert_eq!(
        driver.read_key_values(&strings("left")).unwrap(),
        vec![
            (s("u1"), s("?:home")),
            (s("u1"), s("ann:cart")),
            (s("u1"), s("anna:pay"))
        ]
    );
}

fn stream_join(kind: &str) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let left = builder.stream("left", Serdes::string(), Serdes::string());
    let right = builder.stream("right", Serdes::string(), Serdes::string());
    let windows = JoinWindows::of(5);
    let joined = match kind {
        "inner" => left.join(&right, |a, b| format!("{a}+{b}"), windows),
        "left" => left.left_join(
            &right,
            |a, b| format!("{a}+{}", b.map(String::as_str).unwrap_or("-")),
            windows,
        ),
        _ => left.outer_join(
            &right,
            |a, b| {
                format!(
                    "{}+{}",
                    a.map(String::as_str).unwrap_or("-"),
                    b.map(String::as_str).unwrap_or("-")
                )
            },
            windows,
        ),
    };
    joined.to("out", Serdes::string(), Serdes::string());
    TopologyTestDriver::new(builder.build().unwrap()).unwrap()
}

#[test]
fn given_a_windowed_stream_join_should_pair_records_within_the_window_only() {
    let mut driver = stream_join("inner");
    driver
        .pipe(&strings("left"), &s("a"), &s("L10"), 10)
        .unwrap();
    driver
        .pipe(&strings("right"), &s("a"), &s("R14"), 14)
        .unwrap();
    driver
        .pipe(&strings("right"), &s("b"), &s("R15"), 15)
        .unwrap();
    driver
        .pipe(&strings("right"), &s("a"), &s("R20"), 20)
        .unwrap();
    driver
        .pipe(&strings("left"), &s("a"), &s("L18"), 18)
        .unwrap();
    let out = driver.read(&strings("out")).unwrap();
    let got: Vec<(String, i64)> = out
        .iter()
        .map(|r| (r.value.clone(), r.timestamp_ms))
        .collect();
    assert_eq!(
        got,
        vec![(s("L10+R14"), 14), (s("L18+R14"), 18), (s("L18+R20"), 20)],
        "L10 and R20 are 10 apart: no pair; keys must match"
    );
}

#[test]
fn given_a_left_stream_join_should_emit_an_unmatched_record_once_its_window_has_closed() {
    let mut driver = stream_join("left");
    driver.pipe(&strings("left"), &s("b"), &s("L0"), 0).unwrap();
    driver.pipe(&strings("left"), &s("c"), &s("L1"), 1).unwrap();
    driver
        .pipe(&strings("right"), &s("c"), &s("R3"), 3)
        .unwrap();
    assert_eq!(
        driver.read_key_values(&strings("out")).unwrap(),
        vec![(s("c"), s("L1+R3"))]
    );
    // Stream time 11 passes L0's window (0 + 5 + 5): it is emitted alone, once.
    driver
        .pipe(&strings("right"), &s("z"), &s("R11"), 11)
        .unwrap();
    driver
        .pipe(&strings("right"), &s("z"), &s("R12"), 12)
        .unwrap();
    assert_eq!(
        driver.read_key_values(&strings("out")).unwrap(),
        vec![(s("b"), s("L0+-"))]
    );
    // A record older than the join's retention is late.
    driver.pipe(&strings("left"), &s("c"), &s("L0"), 0).unwrap();
    assert_eq!(driver.dropped_late_records(), 1);
}

#[test]
fn given_an_outer_stream_join_should_emit_unmatched_records_of_both_sides() {
    let mut driver = stream_join("outer");
    driver
        .pipe(&strings("right"), &s("r"), &s("R0"), 0)
        .unwrap();
    driver.pipe(&strings("left"), &s("l"), &s("L1"), 1).unwrap();
    driver
        .pipe(&strings("left"), &s("x"), &s("L20"), 20)
        .unwrap();
    let mut got = driver.read_key_values(&strings("out")).unwrap();
    got.sort();
    assert_eq!(got, vec![(s("l"), s("L1+-")), (s("r"), s("-+R0"))]);
}

#[test]
fn given_table_table_joins_should_follow_both_sides_changes() {
    let builder = StreamsBuilder::new();
    let a = builder.table("a", Serdes::string(), Serdes::string());
    let b = builder.table("b", Serdes::string(), Serdes::string());
    a.join(&b, |x, y| format!("{x}{y}"))
        .to("inner", Serdes::string(), Serdes::string());
    a.left_join(&b, |x, y| {
        format!("{x}{}", y.map(String::as_str).unwrap_or("-"))
    })
    .to("left", Serdes::string(), Serdes::string());
    a.filter(|_, v| v != "skip")
        .with_serdes(Serdes::string(), Serdes::string())
        .outer_join(&b, |x, y| {
            format!(
                "{}{}",
                x.map(String::as_str).unwrap_or("-"),
                y.map(String::as_str).unwrap_or("-")
            )
        })
        .to("outer", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver.pipe_raw("a", Some(b"k"), Some(b"1"), 0).unwrap();
    driver.pipe_raw("b", Some(b"k"), Some(b"x"), 1).unwrap();
    driver.pipe_raw("a", Some(b"k"), Some(b"2"), 2).unwrap();
    driver.pipe_raw("b", Some(b"k"), None, 3).unwrap();
    let read = |driver: &mut TopologyTestDriver, topic: &str| -> Vec<Option<String>> {
        driver
            .read_raw(topic)
            .into_iter()
            .map(|r| r.value.map(|v| String::from_utf8(v).unwrap()))
            .collect()
    };
    assert_eq!(
        read(&mut driver, "inner"),
        vec![Some(s("1x")), Some(s("2x")), None]
    );
    assert_eq!(
        read(&mut driver, "left"),
        vec![Some(s("1-")), Some(s("1x")), Some(s("2x")), Some(s("2-"))]
    );
    assert_eq!(
        read(&mut driver, "outer"),
        vec![Some(s("1-")), Some(s("1x")), Some(s("2x")), Some(s("2-"))]
    );
}

#[test]
fn given_a_foreign_key_join_should_follow_left_and_right_changes() {
    let builder = StreamsBuilder::new();
    // orders: order id -> customer id; customers: customer id -> name
    let orders = builder.table("orders", Serdes::string(), Serdes::string());
    let customers = builder.table("customers", Serdes::string(), Serdes::string());
    orders
        .join_on_foreign_key(
            &customers,
            |customer: &String| customer.clone(),
            |customer, name| format!("{customer}:{name}"),
        )
        .to("out", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    let read = |driver: &mut TopologyTestDriver| -> Vec<(String, Option<String>)> {
        driver
            .read_raw("out")
            .into_iter()
            .map(|r| {
                (
                    String::from_utf8(r.key.unwrap()).unwrap(),
                    r.value.map(|v| String::from_utf8(v).unwrap()),
                )
            })
            .collect()
    };
    driver
        .pipe(&strings("customers"), &s("c1"), &s("ann"), 0)
        .unwrap();
    driver
        .pipe(&strings("orders"), &s("o1"), &s("c1"), 1)
        .unwrap();
    driver
        .pipe(&strings("orders"), &s("o2"), &s("c2"), 2)
        .unwrap();
    assert_eq!(
        read(&mut driver),
        vec![(s("o1"), Some(s("c1:ann"))), (s("o2"), None)],
        "o2's customer is unknown"
    );
    driver
        .pipe(&strings("customers"), &s("c2"), &s("bo"), 3)
        .unwrap();
    driver
        .pipe(&strings("customers"), &s("c1"), &s("anna"), 4)
        .unwrap();
    assert_eq!(
        read(&mut driver),
        vec![(s("o2"), Some(s("c2:bo"))), (s("o1"), Some(s("c1:anna")))]
    );
    // o1 moves to c2: joined with c2; c1's later changes no longer reach it.
    driver
        .pipe(&strings("orders"), &s("o1"), &s("c2"), 5)
        .unwrap();
    driver
        .pipe(&strings("customers"), &s("c1"), &s("annie"), 6)
        .unwrap();
    assert_eq!(read(&mut driver), vec![(s("o1"), Some(s("c2:bo")))]);
    driver.pipe_raw("orders", Some(b"o2"), None, 7).unwrap();
    driver.pipe_raw("customers", Some(b"c2"), None, 8).unwrap();
    assert_eq!(read(&mut driver), vec![(s("o2"), None), (s("o1"), None)]);
}

#[test]
fn given_a_global_table_should_join_through_the_key_mapper_and_follow_updates_and_deletes() {
    let builder = StreamsBuilder::new();
    let products = builder.global_table("products", Serdes::string(), Serdes::string());
    // Orders keyed by order id; the value names the product.
    let orders = builder.stream("orders", Serdes::string(), Serdes::string());
    orders
        .join_global(
            &products,
            |_, product| product.clone(),
            |product, name| format!("{product}={name}"),
        )
        .to("inner", Serdes::string(), Serdes::string());
    orders
        .left_join_global(
            &products,
            |_, product| product.clone(),
            |product, name| format!("{product}={}", name.map(String::as_str).unwrap_or("?")),
        )
        .to("left", Serdes::string(), Serdes::string());
    let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    driver
        .pipe(&strings("orders"), &s("o1"), &s("p1"), 0)
        .unwrap();
    driver
        .pipe(&strings("products"), &s("p1"), &s("pen"), 1)
        .unwrap();
    let global = builder_free_global();
    assert_eq!(
        driver.global_get(&global, &s("p1")).unwrap(),
        Some(s("pen"))
    );
    driver
        .pipe(&strings("orders"), &s("o2"), &s("p1"), 2)
        .unwrap();
    driver.pipe_raw("products", Some(b"p1"), None, 3).unwrap();
    driver
        .pipe(&strings("orders"), &s("o3"), &s("p1"), 4)
        .unwrap();
    assert_eq!(driver.global_get(&global, &s("p1")).unwrap(), None);
    let inner = driver.read_key_values(&strings("inner")).unwrap();
    assert_eq!(inner, vec![(s("o2"), s("p1=pen"))]);
    let left = driver.read_key_values(&strings("left")).unwrap();
    assert_eq!(
        left,
        vec![
            (s("o1"), s("p1=?")),
            (s("o2"), s("p1=pen")),
            (s("o3"), s("p1=?")),
        ]
    );
    // The global topic is not a task input: nothing of it reaches the stream side.
    assert!(driver.read_raw("products").is_empty());
}

/// A handle on the `products` global table for reads (same store name and serdes).
fn builder_free_global() -> GlobalKTable<String, String> {
    StreamsBuilder::new().global_table("products", Serdes::string(), Serdes::string())
}
