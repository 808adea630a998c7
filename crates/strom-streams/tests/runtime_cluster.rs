//! The exactly-once runtime on a three-node `strom` cluster (combined controller+broker
//! nodes) with one node killed mid-stream: the word counts stay exact.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strom_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, NewTopic, Producer, ProducerConfig,
    ProducerRecord, SeekTo,
};
use strom_streams::*;

fn strom_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("strom");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p strom)",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_cluster(dir: &std::path::Path) -> (Vec<Option<Node>>, Vec<String>) {
    let kafka: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let raft: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let voters = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, raft[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = Vec::new();
    for i in 0..3 {
        let log = std::fs::File::create(dir.join(format!("node-{}.log", i + 1))).unwrap();
        let settings = [
            format!("node.id={}", i + 1),
            format!("controller.quorum.voters={voters}"),
            format!("log.dirs={}", dir.join(format!("node-{}", i + 1)).display()),
            format!("listeners=PLAINTEXT://127.0.0.1:{}", kafka[i]),
            "http.listener=127.0.0.1:0".to_string(),
            "broker.session.timeout.ms=3000".to_string(),
            "broker.heartbeat.interval.ms=500".to_string(),
            "offsets.topic.num.partitions=3".to_string(),
            "transaction.state.log.num.partitions=3".to_string(),
            "default.replication.factor=3".to_string(),
            "min.insync.replicas=2".to_string(),
        ];
        let mut command = Command::new(strom_binary());
        command.arg("broker");
        for setting in &settings {
            command.arg("--set").arg(setting);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn strom broker");
        nodes.push(Some(Node { child }));
    }
    let addresses: Vec<String> = kafka.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    for address in &addresses {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(address).is_err() {
            assert!(
                Instant::now() < deadline,
                "{address} did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (nodes, addresses)
}

fn line(i: usize) -> String {
    format!("w{} w{} w{}", i % 7, i % 5, i % 3)
}

fn expected(lines: usize) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for i in 0..lines {
        for word in line(i).split_whitespace() {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

async fn produce_lines(client: &Client, range: std::ops::Range<usize>) {
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for i in range {
        producer
            .send(ProducerRecord::new("lines", line(i)).with_key(i.to_string()))
            .await
            .unwrap();
    }
    producer.flush().await;
}

async fn read_counts(client: &Client) -> BTreeMap<String, Vec<i64>> {
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            isolation_level: 1,
            max_wait: Duration::from_millis(100),
            auto_offset_reset: Some(SeekTo::Earliest),
            ..ConsumerConfig::default()
        },
    );
    let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    if consumer.assign_topic("counts").await.is_err()
        || consumer.seek_all(SeekTo::Earliest).await.is_err()
    {
        return counts;
    }
    let mut empty = 0;
    while empty < 3 {
        let Ok(records) = consumer.poll().await else {
            return BTreeMap::new();
        };
        if records.is_empty() {
            empty += 1;
        }
        for record in records {
            let word = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
            let count = i64::from_be_bytes(record.value.unwrap().as_ref().try_into().unwrap());
            counts.entry(word).or_default().push(count);
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_three_node_cluster_when_a_node_is_killed_should_keep_the_counts_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, addresses) = start_cluster(dir.path());
    let client = Client::connect(ClientConfig::new(&addresses[0]))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    for name in ["lines", "counts"] {
        let mut topic = NewTopic::new(name);
        topic.partitions = 2;
        topic.replication_factor = 3;
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(error) = admin.create_topic(topic.clone(), false).await {
            assert!(Instant::now() < deadline, "create {name}: {error}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let mut config = StreamsConfig::new("wc3", &addresses[0]);
    config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
    config.replication_factor = 3;
    config.session_timeout = Duration::from_secs(6);
    let app = StreamsApp::start(
        {
            let builder = StreamsBuilder::new();
            builder
                .stream("lines", Serdes::option(Serdes::string()), Serdes::string())
                .flat_map_values(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .group_by(|_, w| w.clone(), Serdes::string(), Serdes::string())
                .count()
                .to("counts", Serdes::string(), Serdes::i64());
            builder.build().unwrap()
        },
        config,
    );
    produce_lines(&client, 0..150).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_counts(&client)
        .await
        .values()
        .map(Vec::len)
        .sum::<usize>()
        < 150
    {
        assert!(Instant::now() < deadline, "no output within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Kill node 3 (not the bootstrap node): leaders and coordinators on it move.
    nodes[2] = None;
    produce_lines(&client, 150..300).await;
    let want = expected(300);
    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let counts = read_counts(&client).await;
        let last: BTreeMap<String, i64> = counts
            .iter()
            .map(|(w, c)| (w.clone(), *c.last().unwrap()))
            .collect();
        if last == want {
            break counts;
        }
        if app.is_finished() {
            panic!("the app stopped: {:?}", app.close().await);
        }
        assert!(
            Instant::now() < deadline,
            "final counts not reached within 120 s: got {last:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for (word, seen) in &counts {
        assert_eq!(
            seen,
            &(1..=want[word]).collect::<Vec<_>>(),
            "updates of {word}"
        );
    }
    app.close().await.unwrap();
}
