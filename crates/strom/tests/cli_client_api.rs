//! `strom-client` used as a library against a real `strom broker`: the paths the CLI tests
//! do not reach (fetch by topic name, mid-batch seeks, idempotence, timestamps, ordering
//! under pipelining, partition growth).

mod cli_support;

use std::time::Duration;

use bytes::Bytes;
use cli_support::Broker;
use kafka_protocol::messages::ApiKey;
use strom_client::admin::NewTopic;
use strom_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, Producer,
    ProducerConfig, ProducerRecord, SeekTo,
};

async fn client(broker: &Broker) -> Client {
    Client::connect(ClientConfig::new(&broker.address))
        .await
        .expect("connect")
}

async fn create_topic(client: &Client, name: &str, partitions: i32) {
    let topic = NewTopic {
        partitions,
        ..NewTopic::new(name)
    };
    Admin::new(client.clone())
        .create_topic(topic, false)
        .await
        .expect("create topic");
}

/// Polls until `count` records arrived (bounded).
async fn consume_n(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    for _ in 0..200 {
        if records.len() >= count {
            break;
        }
        records.extend(consumer.poll().await.expect("poll"));
    }
    assert_eq!(records.len(), count, "records arrived");
    records
}

fn value(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.clone().expect("value").to_vec()).expect("utf-8")
}

#[tokio::test]
async fn given_fetch_capped_below_v13_when_consuming_should_address_topic_by_name() {
    let broker = Broker::start();
    let client = client(&broker).await;
    create_topic(&client, "by-name", 2).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .expect("producer");
    for i in 0..20 {
        producer
            .send(ProducerRecord::new("by-name", format!("v{i}")).with_key(format!("k{i}")))
            .await
            .expect("send");
    }
    producer.flush().await;

    let mut config = ClientConfig::new(&broker.address);
    config.connection.version_caps = vec![(ApiKey::Fetch, 12)];
    let old_client = Client::connect(config).await.expect("connect");
    let mut consumer = Consumer::new(old_client, ConsumerConfig::default());
    consumer.assign_topic("by-name").await.expect("assign");
    consumer.seek_all(SeekTo::Earliest).await.expect("seek");
    let mut values: Vec<String> = consume_n(&mut consumer, 20)
        .await
        .iter()
        .map(value)
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(values, want);
}

#[tokio::test]
async fn given_seek_inside_a_batch_when_polled_should_start_at_that_offset() {
    let broker = Broker::start();
    let client = client(&broker).await;
    create_topic(&client, "mid", 1).await;
    let config = ProducerConfig {
        linger: Duration::from_secs(5),
        ..Default::default()
    };
    let producer = Producer::new(client.clone(), config)
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..10 {
        deliveries.push(
            producer
                .send(ProducerRecord::new("mid", format!("r{i}")).with_partition(0))
                .await
                .expect("send"),
        );
    }
    producer.flush().await;
    for (i, delivery) in deliveries.into_iter().enumerate() {
        assert_eq!(delivery.await.expect("delivered").offset, i as i64);
    }
    let mut consumer = Consumer::new(client, ConsumerConfig::default());
    consumer
        .assign(&[("mid".to_string(), 0)])
        .await
        .expect("assign");
    assert_eq!(
        consumer
            .seek("mid", 0, SeekTo::Offset(6))
            .await
            .expect("seek"),
        6
    );
    let records = consume_n(&mut consumer, 4).await;
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![6, 7, 8, 9]);
    assert_eq!(value(&records[0]), "r6");
    assert_eq!(consumer.position("mid", 0), Some(10));
}

#[tokio::test]
async fn given_idempotent_producer_when_sending_should_have_producer_id_and_contiguous_offsets() {
    let broker = Broker::start();
    let client = client(&broker).await;
    create_topic(&client, "idem", 1).await;
    let config = ProducerConfig {
        enable_idempotence: true,
        batch_size_bytes: 512,
        ..Default::default()
    };
    let producer = Producer::new(client.clone(), config)
        .await
        .expect("producer");
    let (producer_id, epoch) = producer.producer_id_and_epoch();
    assert!(producer_id >= 0, "InitProducerId gave an id");
    assert!(epoch >= 0);
    let mut deliveries = Vec::new();
    for i in 0..300 {
        deliveries.push(
            producer
                .send(ProducerRecord::new("idem", format!("i{i}")))
                .await
                .expect("send"),
        );
    }
    producer.flush().await;
    for (i, delivery) in deliveries.into_iter().enumerate() {
        assert_eq!(delivery.await.expect("delivered").offset, i as i64);
    }
}

#[tokio::test]
async fn given_records_with_timestamps_when_seeking_by_time_should_find_first_at_or_after() {
    let broker = Broker::start();
    let client = client(&broker).await;
    create_topic(&client, "times", 1).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .expect("producer");
    let base = 1_700_000_000_000;
    for i in 0..5 {
        producer
            .send_and_wait(
                ProducerRecord::new("times", format!("t{i}")).with_timestamp_ms(base + i * 1000),
            )
            .await
            .expect("send");
    }
    let mut consumer = Consumer::new(client, ConsumerConfig::default());
    consumer
        .assign(&[("times".to_string(), 0)])
        .await
        .expect("assign");
    let offset = consumer
        .seek("times", 0, SeekTo::Timestamp(base + 2500))
        .await
        .expect("seek");
    assert_eq!(offset, 3);
    let records = consume_n(&mut consumer, 2).await;
    assert_eq!(records[0].timestamp_ms, base + 3000);
    let after_all = consumer
        .seek("times", 0, SeekTo::Timestamp(base + 60_000))
        .await
        .expect("seek");
    assert_eq!(after_all, 5, "no record that late: the log end");
}

#[tokio::test]
async fn given_many_pipelined_batches_when_producing_should_keep_partition_order() {
    let broker = Broker::start();
    let client = client(&broker).await;
    create_topic(&client, "ordered", 1).await;
    let config = ProducerConfig {
        linger: Duration::ZERO,
        batch_size_bytes: 256,
        in_flight_batches_per_partition_max: 5,
        ..Default::default()
    };
    let producer = Producer::new(client.clone(), config)
        .await
        .expect("producer");
    let count = 5_000;
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        deliveries.push(
            producer
                .send(ProducerRecord::new(
                    "ordered",
                    Bytes::from(format!("{i:08}")),
                ))
                .await
                .expect("send"),
        );
    }
    producer.flush().await;
    let mut last = -1;
    for delivery in deliveries {
        let offset = delivery.await.expect("delivered").offset;
        assert!(offset > last, "offsets follow send order");
        last = offset;
    }
    let mut consumer = Consumer::new(client, ConsumerConfig::default());
    consumer.assign_topic("ordered").await.expect("assign");
    consumer.seek_all(SeekTo::Earliest).await.expect("seek");
    let records = consume_n(&mut consumer, count).await;
    for (i, record) in records.iter().enumerate() {
        assert_eq!(value(record), format!("{i:08}"));
    }
}

#[tokio::test]
async fn given_topic_when_partitions_added_should_describe_new_count() {
    let broker = Broker::start();
    let client = client(&broker).await;
    create_topic(&client, "grow", 1).await;
    let admin = Admin::new(client);
    match admin.create_partitions("grow", 3, false).await {
        Ok(()) => {
            let mut partitions = 0;
            for _ in 0..50 {
                partitions = admin
                    .describe_topic("grow")
                    .await
                    .expect("describe")
                    .partitions
                    .len();
                if partitions == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(partitions, 3);
        }
        // A broker without CreatePartitions says so by name.
        Err(error) => assert!(error.to_string().contains("CreatePartitions"), "{error}"),
    }
}

#[tokio::test]
async fn given_broker_restarted_when_producing_and_consuming_should_reconnect_and_lose_nothing() {
    let mut broker = Broker::start();
    let client = client(&broker).await;
    create_topic(&client, "restart", 1).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .expect("producer");
    for i in 0..10 {
        producer
            .send_and_wait(ProducerRecord::new("restart", format!("before-{i}")))
            .await
            .expect("acknowledged before restart");
    }
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer.assign_topic("restart").await.expect("assign");
    consumer.seek_all(SeekTo::Earliest).await.expect("seek");
    assert_eq!(consume_n(&mut consumer, 10).await.len(), 10);

    broker.restart();

    // Same client, producer and consumer: their connections died and must come back.
    for i in 0..10 {
        producer
            .send_and_wait(ProducerRecord::new("restart", format!("after-{i}")))
            .await
            .expect("acknowledged after restart");
    }
    let after: Vec<String> = consume_n(&mut consumer, 10)
        .await
        .iter()
        .map(value)
        .collect();
    assert_eq!(
        after,
        (0..10).map(|i| format!("after-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(consumer.position("restart", 0), Some(20));
}
