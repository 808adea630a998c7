//! The producer against a scripted fake broker: retriable errors make it refresh metadata
//! and resend, non-retriable ones fail the records with the broker's code and message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataResponse, ProduceRequest, ProduceResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_client::{Client, ClientConfig, ClientError, Producer, ProducerConfig, ProducerRecord};
use strom_protocol::batch::BatchIter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake broker answers to Produce, in order; after the script, success.
#[derive(Default)]
struct Script {
    produce_errors: Mutex<Vec<(i16, Option<&'static str>)>>,
    metadata_requests: AtomicUsize,
    produce_requests: AtomicUsize,
    next_offset: Mutex<i64>,
}

fn frame<T: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &T,
    version: i16,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

async fn serve(mut stream: TcpStream, port: u16, script: Arc<Script>) {
    loop {
        let Ok(size) = stream.read_i32().await else {
            return;
        };
        let mut bytes = vec![0u8; size as usize];
        if stream.read_exact(&mut bytes).await.is_err() {
            return;
        }
        let request =
            strom_protocol::frame::decode_request_header(Bytes::from(bytes)).expect("header");
        let version = request.header.request_api_version;
        let correlation_id = request.header.correlation_id;
        let header_version = request.api_key.response_header_version(version);
        let response = match request.api_key {
            ApiKey::ApiVersions => {
                let keys = [
                    (ApiKey::ApiVersions, 0, 3),
                    (ApiKey::Metadata, 0, 12),
                    (ApiKey::Produce, 3, 12),
                ];
                let body = ApiVersionsResponse::default().with_api_keys(
                    keys.iter()
                        .map(|&(key, min, max)| {
                            ApiVersion::default()
                                .with_api_key(key as i16)
                                .with_min_version(min)
                                .with_max_version(max)
                        })
                        .collect(),
                );
                frame(correlation_id, 0, &body, version)
            }
            ApiKey::Metadata => {
                script.metadata_requests.fetch_add(1, Ordering::SeqCst);
                let body = MetadataResponse::default()
                    .with_cluster_id(Some(StrBytes::from_static_str("fake")))
                    .with_controller_id(1.into())
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(1.into())
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(port as i32)])
                    .with_topics(vec![MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                        .with_topic_id(uuid::Uuid::from_u128(7))
                        .with_partitions(vec![MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(1.into())
                            .with_replica_nodes(vec![1.into()])
                            .with_isr_nodes(vec![1.into()])])]);
                frame(correlation_id, header_version, &body, version)
            }
            ApiKey::Produce => {
                script.produce_requests.fetch_add(1, Ordering::SeqCst);
                let mut body = request.body.clone();
                let produce = ProduceRequest::decode(&mut body, version).expect("produce body");
                let records = produce.topic_data[0].partition_data[0]
                    .records
                    .clone()
                    .expect("records");
                let count: i64 = BatchIter::new(&records)
                    .map(|b| b.expect("valid batch").record_count() as i64)
                    .sum();
                let scripted = {
                    let mut errors = script.produce_errors.lock().expect("lock");
                    (!errors.is_empty()).then(|| errors.remove(0))
                };
                let partition = match scripted {
                    Some((code, message)) => PartitionProduceResponse::default()
                        .with_index(0)
                        .with_error_code(code)
                        .with_error_message(message.map(StrBytes::from_static_str)),
                    None => {
                        let mut next = script.next_offset.lock().expect("lock");
                        let base = *next;
                        *next += count;
                        PartitionProduceResponse::default()
                            .with_index(0)
                            .with_base_offset(base)
                    }
                };
                let body =
                    ProduceResponse::default()
                        .with_responses(vec![TopicProduceResponse::default()
                            .with_name(TopicName(StrBytes::from_static_str("t")))
                            .with_partition_responses(vec![partition])]);
                frame(correlation_id, header_version, &body, version)
            }
            other => panic!("fake broker got unexpected {other:?}"),
        };
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

async fn fake_broker(script: Arc<Script>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, port, script.clone()));
        }
    });
    format!("127.0.0.1:{port}")
}

fn quick_retries(address: &str) -> ClientConfig {
    let mut config = ClientConfig::new(address);
    config.retry_backoff = std::time::Duration::from_millis(5);
    config.retry_backoff_max = std::time::Duration::from_millis(20);
    config
}

#[tokio::test]
async fn given_not_leader_then_success_when_producing_should_refresh_metadata_and_deliver() {
    let script = Arc::new(Script::default());
    script
        .produce_errors
        .lock()
        .expect("lock")
        .extend([(6, None), (5, None)]);
    let address = fake_broker(script.clone()).await;
    let client = Client::connect(quick_retries(&address))
        .await
        .expect("connect");
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..3 {
        deliveries.push(
            producer
                .send(ProducerRecord::new("t", format!("v{i}")))
                .await
                .expect("send"),
        );
    }
    producer.flush().await;
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.expect("delivered after retries").offset);
    }
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(
        script.produce_requests.load(Ordering::SeqCst),
        3,
        "two failures, one success"
    );
    assert!(
        script.metadata_requests.load(Ordering::SeqCst) >= 3,
        "metadata refreshed after each NOT_LEADER / LEADER_NOT_AVAILABLE"
    );
}

#[tokio::test]
async fn given_non_retriable_error_when_producing_should_fail_with_code_name_and_message() {
    let script = Arc::new(Script::default());
    script
        .produce_errors
        .lock()
        .expect("lock")
        .push((10, Some("batch of 2000000 bytes exceeds max.message.bytes")));
    let address = fake_broker(script.clone()).await;
    let client = Client::connect(quick_retries(&address))
        .await
        .expect("connect");
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .expect("producer");
    let error = producer
        .send_and_wait(ProducerRecord::new("t", "big"))
        .await
        .expect_err("must fail");
    match &error {
        ClientError::Broker {
            code,
            name,
            message,
            ..
        } => {
            assert_eq!(*code, 10);
            assert_eq!(name, "MESSAGE_TOO_LARGE");
            assert_eq!(
                message.as_deref(),
                Some("batch of 2000000 bytes exceeds max.message.bytes")
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(
        script.produce_requests.load(Ordering::SeqCst),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn given_retriable_error_forever_when_producing_should_give_up_after_retries_max() {
    let script = Arc::new(Script::default());
    script
        .produce_errors
        .lock()
        .expect("lock")
        .extend(std::iter::repeat_n((6, None), 100));
    let address = fake_broker(script.clone()).await;
    let client = Client::connect(quick_retries(&address))
        .await
        .expect("connect");
    let config = ProducerConfig {
        retries_max: 3,
        ..Default::default()
    };
    let producer = Producer::new(client, config).await.expect("producer");
    let error = producer
        .send_and_wait(ProducerRecord::new("t", "x"))
        .await
        .expect_err("must fail");
    assert_eq!(error.code(), Some(6));
    assert_eq!(
        script.produce_requests.load(Ordering::SeqCst),
        4,
        "first send and 3 retries"
    );
}

#[tokio::test]
async fn given_record_larger_than_buffer_when_sending_should_refuse_it_up_front() {
    let script = Arc::new(Script::default());
    let address = fake_broker(script.clone()).await;
    let client = Client::connect(quick_retries(&address))
        .await
        .expect("connect");
    let config = ProducerConfig {
        buffer_bytes_max: 100,
        ..Default::default()
    };
    let producer = Producer::new(client, config).await.expect("producer");
    let refused = producer
        .send(ProducerRecord::new("t", vec![b'x'; 1000]))
        .await;
    assert!(matches!(
        refused,
        Err(ClientError::RecordTooLarge { max_bytes: 100, .. })
    ));
    let delivered = producer
        .send_and_wait(ProducerRecord::new("t", "small"))
        .await
        .expect("a small record still fits");
    assert_eq!(delivered.offset, 0);
    assert_eq!(script.produce_requests.load(Ordering::SeqCst), 1);
}
