//! Shared by the `cli_*` integration tests: a real `strom broker` on a free loopback
//! port in a temporary directory, killed when the guard drops, and a way to run the CLI
//! against it.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const STROM: &str = env!("CARGO_BIN_EXE_strom");

/// How long a broker may take to accept connections.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Broker {
    child: Child,
    pub address: String,
    log_path: PathBuf,
    overrides: Vec<String>,
    _dir: tempfile::TempDir,
}

fn spawn_broker(
    dir: &std::path::Path,
    address: &str,
    log_path: &std::path::Path,
    overrides: &[String],
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("log file");
    let mut command = Command::new(STROM);
    command
        .arg("broker")
        .arg("--set")
        .arg(format!("log.dirs={}", dir.join("data").display()))
        .arg("--set")
        .arg(format!("listeners=PLAINTEXT://{address}"))
        // The HTTP endpoint has a fixed default port; brokers of parallel tests would
        // collide on it.
        .arg("--set")
        .arg("http.listener=");
    for setting in overrides {
        command.arg("--set").arg(setting);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("spawn strom broker")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// Starts a broker with extra `--set KEY=VALUE` overrides.
    pub fn start_with(overrides: &[&str]) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let log_path = dir.path().join("broker.log");
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let child = spawn_broker(dir.path(), &address, &log_path, &overrides);
        let mut broker = Broker {
            child,
            address,
            log_path,
            overrides,
            _dir: dir,
        };
        broker.wait_until_ready();
        broker
    }

    /// Kills the broker (SIGKILL, by pid) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_broker(
            self._dir.path(),
            &self.address,
            &self.log_path,
            &self.overrides,
        );
        self.wait_until_ready();
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            if TcpStream::connect(&self.address).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "strom broker exited with {status} before listening on {}:\n{}",
                    self.address,
                    self.log()
                );
            }
            if started.elapsed() > BROKER_START_TIMEOUT {
                panic!(
                    "strom broker did not listen on {} within {BROKER_START_TIMEOUT:?}:\n{}",
                    self.address,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs `strom ARGS` against this broker.
    pub fn strom(&self, args: &[&str]) -> Output {
        self.strom_with_stdin(args, b"")
    }

    pub fn strom_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_strom(args, stdin, &self.address)
    }

    /// Runs `strom ARGS`, asserting success, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stdin(args, b"")
    }

    pub fn ok_with_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        let output = self.strom_with_stdin(args, stdin);
        assert!(
            output.status.success(),
            "strom {args:?} failed with {}:\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let stdout = self.ok(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("strom {args:?} printed invalid JSON ({e}): {stdout}"))
    }

    /// Runs a `--json` command that prints one object per line.
    pub fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        self.ok(args)
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("invalid JSON line ({e}): {line}"))
            })
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_strom(args: &[&str], stdin: &[u8], bootstrap: &str) -> Output {
    let mut child = Command::new(STROM)
        .args(args)
        .env("STROM_BOOTSTRAP_SERVER", bootstrap)
        .env_remove("STROM_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strom");
    {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin).expect("write stdin");
    }
    wait_with_timeout(child, Duration::from_secs(120), args)
}

fn wait_with_timeout(child: Child, timeout: Duration, args: &[&str]) -> Output {
    let id = child.id();
    let (done, receiver) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done.send(());
        output
    });
    if receiver.recv_timeout(timeout).is_err() {
        // Kill by pid: the child was moved into the waiter thread.
        let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
        panic!("strom {args:?} did not finish within {timeout:?}");
    }
    waiter.join().expect("waiter").expect("strom output")
}

/// Runs `strom ARGS` against `bootstrap`, expects success and parses its `--json` output.
pub fn run_strom_json(bootstrap: &str, args: &[&str]) -> serde_json::Value {
    let output = run_strom(args, b"", bootstrap);
    assert!(
        output.status.success(),
        "strom {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

impl Broker {
    /// Starts `strom ARGS` without waiting (stdout piped), for commands that follow.
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new(STROM)
            .args(args)
            .env("STROM_BOOTSTRAP_SERVER", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn strom")
    }
}

/// Waits for a spawned command, killing it (by pid) after `timeout`.
pub fn finish(child: Child, timeout: Duration, what: &str) -> Output {
    wait_with_timeout(child, timeout, &[what])
}
