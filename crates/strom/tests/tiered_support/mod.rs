//! A real SeaweedFS S3 server for the tiered storage tests: `weed server -s3` on loopback
//! ports with a temporary directory, stopped by PID. `scripts/test` installs `weed`
//! (`STROM_WEED`, else `~/.cache/strom/bin/weed`, else `weed` on the PATH).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "strom-test";
pub const SECRET_KEY: &str = "strom-test-secret";

pub fn weed_binary() -> PathBuf {
    if let Ok(path) = std::env::var("STROM_WEED") {
        return PathBuf::from(path);
    }
    if let Ok(home) = std::env::var("HOME") {
        let cached = Path::new(&home).join(".cache/strom/bin/weed");
        if cached.exists() {
            return cached;
        }
    }
    PathBuf::from("weed")
}

/// A port `p` such that `p` and `p + 10000` (SeaweedFS's gRPC port) are both free.
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + (rand_u16() % 25_000);
        let first = TcpListener::bind(("127.0.0.1", port));
        let second = TcpListener::bind(("127.0.0.1", port + 10_000));
        if first.is_ok() && second.is_ok() {
            return port;
        }
    }
    panic!("no free port pair for SeaweedFS");
}

fn rand_u16() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish() as u16
}

pub struct Seaweed {
    dir: tempfile::TempDir,
    ports: [u16; 4],
    child: Option<Child>,
}

impl Seaweed {
    pub fn start() -> Seaweed {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ports = [0u16; 4];
        for index in 0..ports.len() {
            loop {
                let port = free_port_pair();
                if !ports[..index].contains(&port) {
                    ports[index] = port;
                    break;
                }
            }
        }
        let mut seaweed = Seaweed {
            dir,
            ports,
            child: None,
        };
        seaweed.restart();
        seaweed
    }

    /// `http://127.0.0.1:<s3 port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[3])
    }

    /// The broker settings that point tiered storage at this server.
    pub fn broker_settings(&self, bucket: &str) -> Vec<String> {
        vec![
            "remote.log.storage.system.enable=true".to_string(),
            format!("remote.log.storage.s3.endpoint={}", self.endpoint()),
            format!("remote.log.storage.s3.bucket={bucket}"),
            format!("remote.log.storage.s3.access.key.id={ACCESS_KEY}"),
            format!("remote.log.storage.s3.secret.access.key={SECRET_KEY}"),
            "remote.log.manager.task.interval.ms=200".to_string(),
            "remote.log.chunk.bytes=65536".to_string(),
            "remote.log.chunk.cache.bytes=1048576".to_string(),
        ]
    }

    /// Starts (again, on the same ports and directory) and waits until S3 answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let [master, volume, filer, s3] = self.ports;
        let log = std::fs::File::create(self.dir.path().join("weed.log")).expect("log file");
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let child = Command::new(weed_binary())
            .arg("server")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-filer", "-s3"])
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-s3.port={s3}"))
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-volume.max=0",
                "-master.volumeSizeLimitMB=64",
            ])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {} ({error}); scripts/test deps installs SeaweedFS",
                    weed_binary().display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", s3)).is_err() {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS S3 did not listen in 90 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// Stops the server (SIGTERM to its PID, then waits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Seaweed {
    /// Reads object `key` of `bucket` as the broker would; `None` when it does not exist.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let client = strom_tiered::s3::S3Client::new(
            &self.endpoint(),
            bucket,
            strom_tiered::sigv4::Credentials {
                access_key_id: ACCESS_KEY.to_string(),
                secret_access_key: SECRET_KEY.to_string(),
                region: "us-east-1".to_string(),
            },
        )
        .expect("valid S3 settings");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        match runtime.block_on(client.get(key, None)) {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(strom_tiered::TieredError::Status { status: 404, .. }) => None,
            Err(error) => panic!("GET {key}: {error}"),
        }
    }
}

/// Batch `batch_index` of a tiered test topic: `records` values of ~1 KiB each, distinct
/// per batch, so a few batches fill a small segment.
pub fn big_batch(batch_index: usize, records: usize) -> bytes::Bytes {
    let prefix = format!("b{batch_index:04}-{}", "x".repeat(1000));
    crate::broker_support::batch(&prefix, records, 1_700_000_000_000)
}

/// (offset, value) of every record of `batches` [`big_batch`]es produced in order from
/// offset 0.
pub fn expected_values(batches: usize, records: usize) -> Vec<(i64, String)> {
    let mut expected = Vec::new();
    for batch_index in 0..batches {
        let prefix = format!("b{batch_index:04}-{}", "x".repeat(1000));
        for i in 0..records {
            expected.push((expected.len() as i64, format!("{prefix}-{i}")));
        }
    }
    expected
}
