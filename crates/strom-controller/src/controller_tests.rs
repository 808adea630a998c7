use super::*;
use crate::ids::SeededIds;

const NODE_ID: i32 = 1;

fn controller() -> Controller {
    Controller::new(NODE_ID, Box::new(SeededIds::new(1)))
}

/// An image with a cluster id and this node registered, as after the first start.
fn bootstrapped(controller: &mut Controller) -> MetadataImage {
    let mut image = MetadataImage::empty();
    let records = controller.bootstrap(&image, "localhost", 9092, None);
    image.apply_entry(0, &records).unwrap();
    image
}

fn apply<T>(image: &mut MetadataImage, decision: &Decision<T>) {
    let base = image.last_offset().map_or(0, |o| o + 1);
    image.apply_entry(base, &decision.records).unwrap();
}

fn topic(name: &str) -> CreateTopic {
    CreateTopic {
        name: name.to_string(),
        ..CreateTopic::default()
    }
}

fn with_partitions(name: &str, num_partitions: i32) -> CreateTopic {
    CreateTopic {
        num_partitions: Some(num_partitions),
        ..topic(name)
    }
}

fn defaults() -> TopicDefaults {
    TopicDefaults {
        num_partitions: 3,
        default_replication_factor: 1,
    }
}

/// Creates topics that must all succeed and applies them.
fn create_ok(controller: &mut Controller, image: &mut MetadataImage, requests: &[CreateTopic]) {
    let decision = controller.create_topics(image, requests, false, &defaults());
    for result in &decision.response {
        assert_eq!(result.error, None, "{}", result.name);
    }
    apply(image, &decision);
}

fn single_error(decision: &Decision<Vec<CreateTopicResult>>) -> &ControllerError {
    assert_eq!(decision.response.len(), 1);
    decision.response[0].error.as_ref().expect("an error")
}

#[test]
fn given_defaults_when_creating_topic_should_place_every_partition_on_this_node() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    let decision = controller.create_topics(&image, &[topic("orders")], false, &defaults());

    let result = &decision.response[0];
    assert_eq!(result.error, None);
    assert_eq!(result.num_partitions, 3);
    assert_eq!(result.replication_factor, 1);
    assert!(!result.topic_id.is_nil());
    apply(&mut image, &decision);

    let created = image.topic("orders").unwrap();
    assert_eq!(created.topic_id, result.topic_id);
    assert_eq!(image.topic_by_id(result.topic_id).unwrap().name, "orders");
    type Row = (i32, Vec<i32>, i32, i32, Vec<i32>);
    let partitions: Vec<Row> = created
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition,
                p.replicas.clone(),
                p.leader,
                p.leader_epoch,
                p.isr.clone(),
            )
        })
        .collect();
    assert_eq!(
        partitions,
        (0..3)
            .map(|p| (p, vec![NODE_ID], NODE_ID, 0, vec![NODE_ID]))
            .collect::<Vec<_>>()
    );
}

#[test]
fn given_same_seed_when_creating_topics_should_produce_the_same_ids() {
    let run = || {
        let mut controller = controller();
        let image = bootstrapped(&mut controller);
        let decision =
            controller.create_topics(&image, &[topic("a"), topic("b")], false, &defaults());
        (
            image.cluster_id().unwrap().to_string(),
            decision
                .response
                .iter()
                .map(|r| r.topic_id)
                .collect::<Vec<_>>(),
        )
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second);
    assert_ne!(first.1[0], first.1[1]);
}

#[test]
fn given_explicit_partitions_and_configs_when_creating_should_store_them_trimmed() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    let request = CreateTopic {
        configs: vec![
            ("cleanup.policy".to_string(), Some("compact".to_string())),
            ("retention.ms".to_string(), Some(" 60000 ".to_string())),
        ],
        ..with_partitions("compacted", 5)
    };
    create_ok(&mut controller, &mut image, &[request]);
    let created = image.topic("compacted").unwrap();
    assert_eq!(created.partition_count(), 5);
    assert_eq!(created.configs["cleanup.policy"], "compact");
    assert_eq!(created.configs["retention.ms"], "60000");
}

#[test]
fn given_existing_topic_when_creating_again_should_fail_with_topic_already_exists() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[topic("orders")]);
    let before = image.topic("orders").unwrap().topic_id;

    let decision = controller.create_topics(&image, &[topic("orders")], false, &defaults());
    let error = single_error(&decision);
    assert_eq!(error.code(), 36);
    assert_eq!(error.message(), "Topic 'orders' already exists.");
    assert!(decision.records.is_empty());
    assert_eq!(decision.response[0].topic_id, Uuid::nil());
    assert_eq!(image.topic("orders").unwrap().topic_id, before);
}

#[test]
fn given_dot_and_underscore_variants_when_creating_should_refuse_the_collision() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[topic("metrics_cpu")]);

    let decision = controller.create_topics(&image, &[topic("metrics.cpu")], false, &defaults());
    let error = single_error(&decision);
    assert_eq!(error.code(), 17);
    assert!(
        error
            .message()
            .contains("collides with existing topic: metrics_cpu"),
        "{}",
        error.message()
    );

    // Two new names that collide with each other in one request: the first wins.
    let decision =
        controller.create_topics(&image, &[topic("a.b"), topic("a_b")], false, &defaults());
    assert_eq!(decision.response[0].error, None);
    assert_eq!(decision.response[1].error.as_ref().unwrap().code(), 17);
    apply(&mut image, &decision);
    assert!(image.topic("a.b").is_some());
    assert!(image.topic("a_b").is_none());
}

#[test]
fn given_duplicate_names_in_one_request_when_creating_should_fail_only_those() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    let decision = controller.create_topics(
        &image,
        &[topic("dup"), topic("fine"), with_partitions("dup", 2)],
        false,
        &defaults(),
    );
    let outcome: Vec<(&str, Option<i16>)> = decision
        .response
        .iter()
        .map(|r| (r.name.as_str(), r.error.as_ref().map(ControllerError::code)))
        .collect();
    assert_eq!(outcome, vec![("dup", Some(42)), ("fine", None)]);
    apply(&mut image, &decision);
    assert!(image.topic("dup").is_none());
    assert!(image.topic("fine").is_some());
}

#[test]
fn given_invalid_names_when_creating_should_fail_with_invalid_topic() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    for name in ["", ".", "..", "bad name", &"x".repeat(250)] {
        let decision = controller.create_topics(&image, &[topic(name)], false, &defaults());
        assert_eq!(single_error(&decision).code(), 17, "{name:?}");
        assert!(decision.records.is_empty());
    }
    let decision = controller.create_topics(&image, &[topic(&"x".repeat(249))], false, &defaults());
    assert_eq!(decision.response[0].error, None);
}

#[test]
fn given_cluster_metadata_name_when_creating_should_refuse_it() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    let decision =
        controller.create_topics(&image, &[topic("__cluster_metadata")], false, &defaults());
    assert_eq!(single_error(&decision).code(), 42);
}

#[test]
fn given_bad_partition_counts_when_creating_should_fail_with_invalid_partitions() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    for count in [0, -2, PARTITIONS_PER_TOPIC_MAX + 1] {
        let decision =
            controller.create_topics(&image, &[with_partitions("t", count)], false, &defaults());
        assert_eq!(single_error(&decision).code(), 37, "{count}");
    }
    let decision = controller.create_topics(
        &image,
        &[with_partitions("t", PARTITIONS_PER_TOPIC_MAX)],
        true,
        &defaults(),
    );
    assert_eq!(decision.response[0].error, None);
    assert_eq!(
        decision.response[0].num_partitions,
        PARTITIONS_PER_TOPIC_MAX
    );
}

#[test]
fn given_replication_factor_above_broker_count_when_creating_should_name_available_brokers() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    let request = CreateTopic {
        replication_factor: Some(3),
        ..topic("replicated")
    };
    let decision = controller.create_topics(&image, &[request], false, &defaults());
    let error = single_error(&decision);
    assert_eq!(error.code(), 38);
    assert!(
        error
            .message()
            .contains("only 1 broker(s) are registered: [1]"),
        "{}",
        error.message()
    );

    for rf in [0, -2] {
        let request = CreateTopic {
            replication_factor: Some(rf),
            ..topic("replicated")
        };
        let decision = controller.create_topics(&image, &[request], false, &defaults());
        assert_eq!(single_error(&decision).code(), 38, "{rf}");
    }
    let request = CreateTopic {
        replication_factor: Some(-1),
        ..topic("replicated")
    };
    let decision = controller.create_topics(&image, &[request], false, &defaults());
    assert_eq!(decision.response[0].error, None);
}

#[test]
fn given_bad_configs_when_creating_should_fail_with_invalid_config_naming_the_key() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    for (key, value, code) in [
        ("retention.ms", Some("soon"), 40),
        ("cleanup.policy", Some("archive"), 40),
        ("no.such.config", Some("1"), 40),
        ("segment.bytes", None, 40),
    ] {
        let request = CreateTopic {
            configs: vec![(key.to_string(), value.map(str::to_string))],
            ..topic("configured")
        };
        let decision = controller.create_topics(&image, &[request], false, &defaults());
        let error = single_error(&decision);
        assert_eq!(error.code(), code, "{key}");
        assert!(error.message().contains(key), "{}", error.message());
        assert!(decision.records.is_empty());
    }
    let request = CreateTopic {
        configs: vec![
            ("retention.ms".to_string(), Some("1".to_string())),
            ("retention.ms".to_string(), Some("2".to_string())),
        ],
        ..topic("configured")
    };
    let decision = controller.create_topics(&image, &[request], false, &defaults());
    assert_eq!(single_error(&decision).code(), 42);
}

#[test]
fn given_manual_assignments_when_creating_should_check_them_like_kafka() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    let assign = |partition, broker_ids: Vec<i32>| PartitionAssignment {
        partition,
        broker_ids,
    };
    let cases = [
        (
            CreateTopic {
                num_partitions: Some(2),
                assignments: vec![assign(0, vec![1])],
                ..topic("m")
            },
            42,
        ),
        (
            CreateTopic {
                assignments: vec![assign(0, vec![7])],
                ..topic("m")
            },
            39,
        ),
        (
            CreateTopic {
                assignments: vec![assign(0, vec![1]), assign(2, vec![1])],
                ..topic("m")
            },
            39,
        ),
        (
            CreateTopic {
                assignments: vec![assign(0, vec![1, 1])],
                ..topic("m")
            },
            39,
        ),
        (
            CreateTopic {
                assignments: vec![assign(0, vec![])],
                ..topic("m")
            },
            39,
        ),
    ];
    for (request, code) in cases {
        let decision =
            controller.create_topics(&image, std::slice::from_ref(&request), false, &defaults());
        assert_eq!(single_error(&decision).code(), code, "{request:?}");
    }
    let request = CreateTopic {
        assignments: vec![assign(1, vec![1]), assign(0, vec![1])],
        ..topic("m")
    };
    create_ok(&mut controller, &mut image, &[request]);
    assert_eq!(image.topic("m").unwrap().partition_count(), 2);
}

#[test]
fn given_validate_only_when_creating_should_report_success_without_records() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    let decision = controller.create_topics(
        &image,
        &[with_partitions("dry", 4), topic("bad name")],
        true,
        &defaults(),
    );
    assert!(decision.records.is_empty());
    assert_eq!(decision.response[0].error, None);
    assert_eq!(decision.response[0].num_partitions, 4);
    assert_eq!(decision.response[0].topic_id, Uuid::nil());
    assert_eq!(decision.response[1].error.as_ref().unwrap().code(), 17);
}

#[test]
fn given_too_many_partitions_in_one_request_when_creating_should_refuse_the_excess_topics() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    let topics_that_fit =
        (NEW_PARTITIONS_PER_REQUEST_MAX / i64::from(PARTITIONS_PER_TOPIC_MAX)) as usize;
    let requests: Vec<CreateTopic> = (0..=topics_that_fit)
        .map(|i| with_partitions(&format!("big-{i}"), PARTITIONS_PER_TOPIC_MAX))
        .collect();
    let decision = controller.create_topics(&image, &requests, true, &defaults());
    let failed: Vec<i16> = decision
        .response
        .iter()
        .filter_map(|r| r.error.as_ref().map(ControllerError::code))
        .collect();
    assert_eq!(failed, vec![44]);
}

#[test]
fn given_topics_when_deleting_by_name_and_id_should_remove_them_and_report_unknowns() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(
        &mut controller,
        &mut image,
        &[topic("a"), topic("b"), topic("c")],
    );
    let b_id = image.topic("b").unwrap().topic_id;
    let unknown_id = Uuid::from_u128(0xdead_beef);

    let decision = controller.delete_topics(
        &image,
        &[
            TopicRef::Name("a".to_string()),
            TopicRef::Id(b_id),
            TopicRef::Name("missing".to_string()),
            TopicRef::Id(unknown_id),
            TopicRef::Name("c".to_string()),
            TopicRef::Name("c".to_string()),
        ],
    );
    let outcome: Vec<(Option<&str>, Option<i16>)> = decision
        .response
        .iter()
        .map(|r| {
            (
                r.name.as_deref(),
                r.error.as_ref().map(ControllerError::code),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        vec![
            (Some("a"), None),
            (Some("b"), None),
            (Some("missing"), Some(3)),
            (None, Some(100)),
            (Some("c"), Some(42)),
        ]
    );
    assert_eq!(decision.response[1].topic_id, b_id);
    assert_eq!(decision.response[3].topic_id, unknown_id);
    apply(&mut image, &decision);
    assert_eq!(
        image.topics().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec!["c"]
    );
    assert!(image.topic_by_id(b_id).is_none());
}

#[test]
fn given_name_and_id_of_same_topic_when_deleting_should_remove_it_once() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[topic("a")]);
    let id = image.topic("a").unwrap().topic_id;
    let decision =
        controller.delete_topics(&image, &[TopicRef::Name("a".to_string()), TopicRef::Id(id)]);
    assert_eq!(
        decision.records,
        vec![MetadataRecord::RemoveTopic { topic_id: id }]
    );
    assert!(decision.response.iter().all(|r| r.error.is_none()));
    apply(&mut image, &decision);
    assert_eq!(image.topic_count(), 0);
}

#[test]
fn given_deleted_topic_when_recreated_should_get_a_new_id() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[topic("a")]);
    let old_id = image.topic("a").unwrap().topic_id;
    let decision = controller.delete_topics(&image, &[TopicRef::Name("a".to_string())]);
    apply(&mut image, &decision);
    create_ok(&mut controller, &mut image, &[topic("a")]);
    assert_ne!(image.topic("a").unwrap().topic_id, old_id);
}

fn grow(name: &str, count: i32) -> CreatePartitions {
    CreatePartitions {
        name: name.to_string(),
        count,
        assignments: None,
    }
}

#[test]
fn given_topic_when_growing_partitions_should_add_only_the_new_ones() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[with_partitions("t", 3)]);
    let decision = controller.create_partitions(&image, &[grow("t", 5)], false);
    assert_eq!(decision.response[0].error, None);
    let new: Vec<i32> = decision
        .records
        .iter()
        .map(|r| match r {
            MetadataRecord::Partition { partition, .. } => *partition,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(new, vec![3, 4]);
    apply(&mut image, &decision);
    let topic = image.topic("t").unwrap();
    assert_eq!(topic.partition_count(), 5);
    assert_eq!(topic.partitions[4].replicas, vec![NODE_ID]);
    assert_eq!(topic.partitions[4].leader, NODE_ID);
}

#[test]
fn given_bad_partition_growth_when_growing_should_fail_with_kafka_codes() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[with_partitions("t", 3)]);
    let cases = [
        (grow("t", 3), 37, "already has 3"),
        (grow("t", 2), 37, "would not be an increase"),
        (grow("t", PARTITIONS_PER_TOPIC_MAX + 1), 37, "limit"),
        (grow("missing", 4), 3, "missing"),
        (
            CreatePartitions {
                assignments: Some(vec![vec![1]]),
                ..grow("t", 5)
            },
            39,
            "2 additional",
        ),
        (
            CreatePartitions {
                assignments: Some(vec![vec![9]]),
                ..grow("t", 4)
            },
            39,
            "broker 9",
        ),
    ];
    for (request, code, text) in cases {
        let decision = controller.create_partitions(&image, std::slice::from_ref(&request), false);
        let error = decision.response[0].error.as_ref().expect("an error");
        assert_eq!(error.code(), code, "{request:?}");
        assert!(error.message().contains(text), "{}", error.message());
        assert!(decision.records.is_empty());
    }
    let decision = controller.create_partitions(&image, &[grow("t", 4), grow("t", 6)], false);
    assert_eq!(decision.response.len(), 1);
    assert_eq!(decision.response[0].error.as_ref().unwrap().code(), 42);
}

#[test]
fn given_validate_only_when_growing_partitions_should_write_nothing() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[with_partitions("t", 1)]);
    let decision = controller.create_partitions(&image, &[grow("t", 8)], true);
    assert_eq!(decision.response[0].error, None);
    assert!(decision.records.is_empty());
}

fn change(key: &str, value: Option<&str>) -> (String, Option<String>) {
    (key.to_string(), value.map(str::to_string))
}

#[test]
fn given_topic_when_altering_configs_should_set_and_remove_keys() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    let request = CreateTopic {
        configs: vec![change("retention.ms", Some("1000"))],
        ..topic("t")
    };
    create_ok(&mut controller, &mut image, &[request]);

    let decision = controller.alter_topic_configs(
        &image,
        "t",
        &[
            change("retention.ms", None),
            change("cleanup.policy", Some("compact,delete")),
        ],
        false,
    );
    assert_eq!(decision.response, Ok(()));
    apply(&mut image, &decision);
    let configs = &image.topic("t").unwrap().configs;
    assert_eq!(configs.len(), 1);
    assert_eq!(configs["cleanup.policy"], "compact,delete");
}

#[test]
fn given_bad_config_change_when_altering_should_fail_whole_call_naming_the_key() {
    let mut controller = controller();
    let mut image = bootstrapped(&mut controller);
    create_ok(&mut controller, &mut image, &[topic("t")]);

    let decision = controller.alter_topic_configs(
        &image,
        "t",
        &[
            change("retention.ms", Some("100")),
            change("min.insync.replicas", Some("0")),
        ],
        false,
    );
    let error = decision.response.unwrap_err();
    assert_eq!(error.code(), 40);
    assert!(
        error.message().contains("min.insync.replicas"),
        "{}",
        error.message()
    );
    assert!(
        error.message().contains("at least 1"),
        "{}",
        error.message()
    );
    assert!(
        decision.records.is_empty(),
        "no change applies when one is bad"
    );

    let decision = controller.alter_topic_configs(&image, "t", &[change("bogus.key", None)], false);
    assert_eq!(decision.response.unwrap_err().code(), 40);

    let decision =
        controller.alter_topic_configs(&image, "nope", &[change("retention.ms", Some("1"))], false);
    assert_eq!(decision.response.unwrap_err().code(), 3);

    let decision =
        controller.alter_topic_configs(&image, "t", &[change("retention.ms", Some("1"))], true);
    assert_eq!(decision.response, Ok(()));
    assert!(decision.records.is_empty());
}

#[test]
fn given_registered_node_when_bootstrapping_again_should_write_nothing_unless_address_changed() {
    let mut controller = controller();
    let image = bootstrapped(&mut controller);
    assert_eq!(image.cluster_id().unwrap().len(), 22);
    assert!(controller
        .bootstrap(&image, "localhost", 9092, None)
        .is_empty());
    let moved = controller.bootstrap(&image, "localhost", 9093, None);
    assert_eq!(
        moved,
        vec![MetadataRecord::RegisterBroker {
            broker_id: NODE_ID,
            host: "localhost".to_string(),
            port: 9093,
            rack: None,
            listeners: Vec::new(),
        }]
    );
}
