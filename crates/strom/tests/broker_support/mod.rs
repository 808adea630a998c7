//! Shared by the broker integration tests: start the real `strom` binary on a free loopback
//! port with a temp data dir, and talk raw Kafka protocol to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub struct TestBroker {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    log_path: PathBuf,
}

/// Sends ApiVersions v0 and reads an answer carrying its correlation id.
fn answers_api_versions(mut stream: TcpStream) -> bool {
    let correlation_id: i32 = 0x5354_524d;
    let mut request = Vec::with_capacity(14);
    request.extend_from_slice(&10i32.to_be_bytes());
    request.extend_from_slice(&(ApiKey::ApiVersions as i16).to_be_bytes());
    request.extend_from_slice(&0i16.to_be_bytes());
    request.extend_from_slice(&correlation_id.to_be_bytes());
    request.extend_from_slice(&(-1i16).to_be_bytes());
    let mut answer = [0u8; 8];
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .is_ok()
        && stream.write_all(&request).is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && answer[4..8] == correlation_id.to_be_bytes()
}

/// A free loopback port below the kernel's ephemeral range (32768-60999 by default), never
/// handed out twice in this process: a port the OS picked with bind(0) is released before
/// the broker binds it, and meanwhile another test's outgoing connection or bind(0) could
/// take it (seen: a raft listener refused with "Address already in use"). Ports here are
/// ones the OS never assigns on its own.
fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
        ^ (u64::from(std::process::id()) << 20);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    let mut state = seed | 1;
    for _ in 0..2_000 {
        // xorshift64: spread over 20000..32000.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = 20_000 + (state % 12_000) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    // Everything tried is taken: fall back to one the OS picks.
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A free loopback port, for a listener of a broker about to start.
pub fn ephemeral_port() -> u16 {
    free_port()
}

/// `strom tls gen-dev-certs --dir DIR EXTRA...`: ca.pem, ca-key.pem, broker.pem (key +
/// chain) and one client-NAME.pem per `--client NAME`.
pub fn gen_dev_certs(dir: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["tls", "gen-dev-certs", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .status()
        .expect("run strom tls gen-dev-certs");
    assert!(status.success(), "strom tls gen-dev-certs failed");
}

impl TestBroker {
    pub fn start(extra: &[&str]) -> TestBroker {
        let temp = tempfile::tempdir().expect("tempdir");
        let data_dir = temp.path().join("data");
        // A port found free can be taken before the broker binds it (tests start brokers
        // side by side, each binding its HTTP endpoint to port 0): a broker that could not
        // bind is started again on another port.
        let mut attempt = 0;
        let mut broker = loop {
            attempt += 1;
            let port = free_port();
            let settings = TestBroker::settings(port, extra);
            let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
            match TestBroker::spawn_checked(&data_dir, port, &settings, true) {
                Ok(broker) => break broker,
                Err(log) if attempt < 3 && log.contains("in use") => {
                    let _ = std::fs::remove_dir_all(&data_dir);
                }
                Err(log) => panic!("broker on 127.0.0.1:{port} did not start; log:\n{log}"),
            }
        };
        broker._temp = Some(temp);
        broker
    }

    fn settings(port: u16, extra: &[&str]) -> Vec<String> {
        let mut settings = vec![
            format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
            // Tests run side by side: the HTTP endpoint takes any free port.
            "http.listener=127.0.0.1:0".to_string(),
        ];
        settings.extend(extra.iter().map(|setting| setting.to_string()));
        settings
    }

    /// Starts on `data_dir` and `port` (restart after a kill uses the same ones).
    pub fn start_in(data_dir: &Path, port: u16, extra: &[&str]) -> TestBroker {
        let settings = TestBroker::settings(port, extra);
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        TestBroker::spawn_checked(data_dir, port, &settings, true)
            .unwrap_or_else(|log| panic!("broker on 127.0.0.1:{port} did not start; log:\n{log}"))
    }

    /// Starts a controller-only node (`process.roles=controller` among `extra`) on
    /// `data_dir`; it has no Kafka listener, so `addr` is its Raft address, which is what
    /// this waits for.
    pub fn start_controller_in(data_dir: &Path, raft_port: u16, extra: &[&str]) -> TestBroker {
        TestBroker::spawn_checked(data_dir, raft_port, extra, false).unwrap_or_else(|log| {
            panic!("controller on 127.0.0.1:{raft_port} did not start; log:\n{log}")
        })
    }

    /// `strom broker` on `data_dir` with `settings`, once it accepts on `port` (and, with
    /// `kafka`, answers ApiVersions there); `Err` holds the log of a broker that exited.
    fn spawn_checked(
        data_dir: &Path,
        port: u16,
        settings: &[&str],
        kafka: bool,
    ) -> Result<TestBroker, String> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log_path = data_dir.with_extension(format!("{port}.log"));
        std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_strom"));
        command
            .arg("broker")
            .arg("--set")
            .arg(format!("log.dirs={}", data_dir.display()));
        for setting in settings {
            command.arg("--set").arg(setting);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn strom broker");
        let broker = TestBroker {
            child: Some(child),
            addr,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
            log_path,
        };
        let mut broker = broker;
        broker.wait_ready(kafka)?;
        Ok(broker)
    }

    /// Until the broker accepts on its address (and answers ApiVersions there, so that a
    /// listener of another process on the same port is not taken for it); `Err` with the
    /// log once the broker has exited.
    fn wait_ready(&mut self, kafka: bool) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("(exited: {status})\n{}", self.log()));
                }
            }
            if let Ok(stream) = TcpStream::connect(self.addr) {
                if !kafka || answers_api_versions(stream) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "broker did not listen on {} within 30 s; log:\n{}",
            self.addr,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn connect(&self) -> Conn {
        Conn::plain(self.addr)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends `signal` (a `kill` name such as STOP or CONT) to the running process.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the broker runs");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY-free: use the `kill` command to send SIGTERM to our own child by PID.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Anything a Kafka connection can run over (TCP, or TLS over TCP).
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A raw connection speaking Kafka frames.
pub struct Conn {
    pub stream: Box<dyn ReadWrite>,
    /// The TCP socket under `stream`, for timeouts.
    pub tcp: TcpStream,
    correlation_id: i32,
}

impl Conn {
    pub fn plain(addr: SocketAddr) -> Conn {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Conn {
            stream: Box::new(tcp.try_clone().unwrap()),
            tcp,
            correlation_id: 0,
        }
    }

    /// Wraps an established stream (e.g. TLS) whose TCP socket is `tcp`.
    pub fn over(stream: Box<dyn ReadWrite>, tcp: TcpStream) -> Conn {
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Conn {
            stream,
            tcp,
            correlation_id: 0,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Whether the connection still answers an ApiVersions request (false once the broker
    /// has closed it, whether the write or the read notices).
    #[allow(dead_code)]
    pub fn answers(&mut self) -> bool {
        let frame = self.frame(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
        self.stream.write_all(&frame).is_ok() && self.read_frame().is_some()
    }

    /// Writes one request frame without reading the answer.
    pub fn send<T: Encodable>(&mut self, api_key: ApiKey, version: i16, body: &T) -> i32 {
        let frame = self.frame(api_key, version, body);
        self.stream.write_all(&frame).expect("write request");
        self.correlation_id
    }

    /// One size-prefixed request frame with the next correlation id.
    fn frame<T: Encodable>(&mut self, api_key: ApiKey, version: i16, body: &T) -> BytesMut {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strom-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("header");
        body.encode(&mut buf, version).expect("body");
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());
        buf
    }

    /// Reads one response frame; `None` when the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        if self.stream.read_exact(&mut size).is_err() {
            return None;
        }
        let size = i32::from_be_bytes(size) as usize;
        let mut frame = vec![0u8; size];
        self.stream.read_exact(&mut frame).ok()?;
        Some(Bytes::from(frame))
    }

    /// Sends a request and decodes the response at the same version.
    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let correlation_id = self.send(api_key, version, body);
        let mut frame = self.read_frame().expect("broker answered");
        let header_version = if api_key == ApiKey::ApiVersions {
            0
        } else {
            api_key.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut frame, header_version).expect("header");
        assert_eq!(header.correlation_id, correlation_id);
        let response = Resp::decode(&mut frame, version).expect("response body");
        assert_eq!(
            frame.remaining(),
            0,
            "trailing bytes in {api_key:?} v{version} response"
        );
        response
    }

    /// True when the broker has closed this connection (read returns EOF or reset).
    pub fn is_closed_by_broker(&mut self) -> bool {
        self.tcp
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Bytes before the end (a TLS alert, say) are read past; only EOF or a reset within
        // the timeout counts as closed.
        let mut chunk = [0u8; 512];
        loop {
            match self.tcp.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(error) => {
                    return !matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        }
    }
}

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordHeader, RecordToEncode};

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn create_topic(conn: &mut Conn, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            )]);
    let response: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 7, &request);
    assert_eq!(
        response.topics[0].error_code, 0,
        "create {name}: {:?}",
        response.topics[0].error_message
    );
}

/// A batch of `count` records `"{prefix}-{i}"` with key `"k{i}"` and a repeated header.
pub fn batch(prefix: &str, count: usize, timestamp_ms: i64) -> Bytes {
    let records: Vec<RecordToEncode> = (0..count)
        .map(|i| RecordToEncode {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{prefix}-{i}"))),
            headers: vec![
                RecordHeader {
                    key: Bytes::from_static(b"h"),
                    value: Some(Bytes::from_static(b"1")),
                },
                RecordHeader {
                    key: Bytes::from_static(b"h"),
                    value: Some(Bytes::from_static(b"2")),
                },
            ],
            timestamp_ms: timestamp_ms + i as i64,
        })
        .collect();
    encode_batch(&records, &BatchBuilderOptions::default()).expect("encode batch")
}

pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// Produces one blob at acks=1 and returns (error code, base offset).
pub fn produce(conn: &mut Conn, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let response: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request(topic, partition, records, 1),
    );
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1024 * 1024)])])
}

/// Fetch v11 (by name); returns (error code, high watermark, records bytes).
pub fn fetch(conn: &mut Conn, topic: &str, partition: i32, offset: i64) -> (i16, i64, Bytes) {
    let response: FetchResponse = conn.call(
        ApiKey::Fetch,
        11,
        &fetch_request(topic, partition, offset, 0, 0),
    );
    let p = &response.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.records.clone().unwrap_or_default(),
    )
}

/// Decodes every record of a fetched blob as (offset, value).
pub fn decode_values(records: &[u8]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for batch in strom_protocol::batch::BatchIter::new(records) {
        let batch = batch.expect("valid batch from broker");
        batch.verify_crc().expect("crc");
        for record in strom_protocol::record::decode_batch(&batch).expect("decode") {
            out.push((
                record.offset,
                String::from_utf8(record.value.unwrap_or_default().to_vec()).unwrap(),
            ));
        }
    }
    out
}

pub fn list_offset(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i64) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, 7, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

/// A request frame whose body is cut `cut_bytes` short, with the size prefix matching the
/// cut: what the malformed-input tests send to check that only that connection closes.
pub fn truncated_frame<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    body: &T,
    cut_bytes: usize,
) -> Vec<u8> {
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("bad")))
        .encode(&mut frame, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut frame, version).unwrap();
    frame.truncate(frame.len() - cut_bytes);
    let mut out = BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.extend_from_slice(&frame);
    out.to_vec()
}
