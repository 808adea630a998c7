//! The PostgreSQL sink against a real PostgreSQL (Debian's package, a private cluster made
//! with initdb in a temp dir on a loopback port): upsert by key with the table created from
//! the JsonConverter schema, deletes by tombstone, exactly-once inserts across a kill -9 of
//! the worker, and an unreachable database failing the task (not the worker).
//!
//! Skipped, saying so, only when PostgreSQL's binaries are not installed (`scripts/test`'s
//! deps layer installs them).

mod broker_support;
mod connect_support;
mod http_support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use connect_support::*;
use serde_json::json;

struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    candidates.sort();
    candidates.reverse();
    candidates
        .into_iter()
        .find(|bin| bin.join("initdb").exists())
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn start() -> Option<Postgres> {
        let Some(bin) = postgres_bin() else {
            eprintln!("SKIPPED: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); `scripts/test deps` installs it");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = unsafe_is_root();
        let data = dir.path().join("data");
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = http_support::free_port();
        let postgres = Postgres {
            bin,
            data,
            port,
            as_postgres,
            _dir: dir,
        };
        let output = postgres
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&postgres.data)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            postgres._dir.path().display()
        );
        let output = postgres
            .command("pg_ctl")
            .args(["-w", "-o", &options, "-l"])
            .arg(postgres._dir.path().join("pg.log"))
            .arg("-D")
            .arg(&postgres.data)
            .arg("start")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(postgres)
    }

    fn url(&self) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/postgres", self.port)
    }

    /// One query's rows, `|`-separated columns.
    fn query(&self, sql: &str) -> Vec<String> {
        self.try_query(sql)
            .unwrap_or_else(|error| panic!("psql {sql}: {error}"))
    }

    fn try_query(&self, sql: &str) -> Result<Vec<String>, String> {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-At",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `strom produce` of `key|value` lines.
fn produce(broker: &broker_support::TestBroker, topic: &str, lines: &[String]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "produce",
            topic,
            "--key-separator",
            "|",
            "--bootstrap-server",
            &broker.addr.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

fn envelope(id: i64, name: &str, score: f64) -> String {
    json!({
        "schema": {"type": "struct", "name": "user", "optional": false, "fields": [
            {"field": "id", "type": "int64", "optional": false},
            {"field": "name", "type": "string", "optional": true},
            {"field": "score", "type": "float64", "optional": true}]},
        "payload": {"id": id, "name": name, "score": score}
    })
    .to_string()
}

fn wait_rows(db: &Postgres, sql: &str, want: &str) {
    wait_for(&format!("{sql} = {want}"), Duration::from_secs(90), || {
        let got = db.try_query(sql).unwrap_or_default();
        (got.first().map(String::as_str) == Some(want)).then_some(())
    });
}

#[test]
fn given_keyed_json_records_when_upserted_should_leave_the_latest_row_per_key() {
    let Some(db) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let worker = Worker::distributed(dir.path(), &broker, "pg-upsert");
    let mut lines = Vec::new();
    for round in 0..3 {
        for id in 0..500 {
            lines.push(format!(
                "{{\"id\":{id}}}|{}",
                envelope(id, &format!("user-{id}-{round}"), round as f64)
            ));
        }
        if round == 1 {
            // Two records the converters cannot read: a key that is no struct (and no
            // pk.fields to name it), and a value that is not JSON. Dead-lettered, skipped.
            lines.push(format!("not json|{}", envelope(9998, "bad-key", 0.0)));
            lines.push("{\"id\":9999}|not json".to_string());
        }
    }
    produce(&broker, "users", &lines);
    let created = worker.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "pg", "config": {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "topics": "users", "connection.url": db.url(), "insert.mode": "upsert",
            "pk.mode": "record_key", "auto.create": "true", "tasks.max": "2",
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "users-dlq",
            "errors.deadletterqueue.context.headers.enable": "true"}})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while db.try_query("SELECT 1 FROM users").is_err() {
        let status = worker.ok("GET", "/connectors/pg/status", None);
        assert!(
            std::time::Instant::now() < deadline && status["tasks"][0]["state"] != "FAILED",
            "no table users: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_rows(
        &db,
        "SELECT count(*) FROM users WHERE name LIKE '%-2'",
        "500",
    );
    assert_eq!(
        db.query("SELECT count(*), sum(score) FROM users"),
        ["500|1000"]
    );
    assert_eq!(
        db.query("SELECT name FROM users WHERE id = 7"),
        ["user-7-2"]
    );
    // The table came from the schema: typed columns, the key as primary key.
    let columns = db.query("SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_name = 'users' ORDER BY 1");
    assert_eq!(
        columns,
        ["id:bigint", "name:text", "score:double precision"]
    );
    assert_eq!(
        db.query("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'users'::regclass AND i.indisprimary"),
        ["id"]
    );
    let response = worker.ok("GET", "/connectors/pg/status", None);
    assert_eq!(response["tasks"].as_array().unwrap().len(), 2);
    // errors.tolerance=all: the unreadable records went to the dead-letter topic, each with
    // the converter stage that failed, and the tasks kept running.
    let dead = consume(&broker, "users-dlq", 2);
    let mut stages: Vec<(String, Option<String>)> = dead
        .iter()
        .map(|record| {
            (
                header(record, "__connect.errors.stage").unwrap_or_default(),
                record
                    .value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect();
    stages.sort();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert_eq!(stages[0].0, "KEY_CONVERTER");
    assert!(stages[0].1.as_deref().unwrap_or("").contains("bad-key"));
    assert_eq!(
        stages[1],
        ("VALUE_CONVERTER".to_string(), Some("not json".to_string()))
    );
    assert_eq!(
        db.query("SELECT count(*) FROM users WHERE id >= 9998"),
        ["0"]
    );
    for task in response["tasks"].as_array().unwrap() {
        assert_eq!(task["state"], "RUNNING", "{response}");
    }
}

#[test]
fn given_a_worker_killed_mid_stream_when_inserting_should_write_every_row_exactly_once() {
    let Some(db) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    {
        let mut conn = broker.connect();
        broker_support::create_topic(&mut conn, "orders", 3, &[]);
    }
    db.query("CREATE TABLE orders (id bigint, item text)");
    let mut a = Worker::distributed(dir.path(), &broker, "pg-eos");
    let config = json!({
        "connector.class": "PostgresSink", "topics": "orders", "connection.url": db.url(),
        "insert.mode": "insert", "batch.size": "200", "tasks.max": "3"});
    a.ok("PUT", "/connectors/orders-db/config", Some(&config));
    let total = 30_000;
    let first: Vec<String> = (0..total / 2)
        .map(|i| format!("k{i}|{{\"id\":{i},\"item\":\"i{i}\"}}"))
        .collect();
    produce(&broker, "orders", &first);
    wait_for("rows arriving", Duration::from_secs(60), || {
        let n: i64 = db.query("SELECT count(*) FROM orders")[0].parse().unwrap();
        (n > 1000).then_some(())
    });
    a.kill();
    let rest: Vec<String> = (total / 2..total)
        .map(|i| format!("k{i}|{{\"id\":{i},\"item\":\"i{i}\"}}"))
        .collect();
    produce(&broker, "orders", &rest);
    let _b = Worker::distributed(dir.path(), &broker, "pg-eos");
    wait_rows(
        &db,
        "SELECT count(DISTINCT id) FROM orders",
        &total.to_string(),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        db.query("SELECT count(*), count(DISTINCT id) FROM orders"),
        [format!("{total}|{total}")],
        "no row missing, none twice"
    );
}

#[test]
fn given_bad_database_settings_when_created_should_fail_the_task_or_refuse_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let worker = Worker::distributed(dir.path(), &broker, "pg-bad");
    let refused = worker.call(
        "POST",
        "/connectors",
        Some(
            &json!({"name": "x", "config": {"connector.class": "PostgresSink", "topics": "t",
            "connection.url": "jdbc:mysql://h/db", "insert.mode": "upsert"}}),
        ),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    let message = refused.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("connection.url") && message.contains("upsert"),
        "{message}"
    );
    // Reachable nowhere: the task fails with the reason, the worker keeps serving.
    let port = http_support::free_port();
    worker.ok(
        "POST",
        "/connectors",
        Some(
            &json!({"name": "down", "config": {"connector.class": "PostgresSink", "topics": "t",
            "connection.url": format!("jdbc:postgresql://127.0.0.1:{port}/db")}}),
        ),
    );
    let trace = wait_for("the task FAILED", Duration::from_secs(60), || {
        let status = worker.ok("GET", "/connectors/down/status", None);
        (status["tasks"][0]["state"] == "FAILED").then(|| {
            status["tasks"][0]["trace"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
    });
    assert!(trace.contains("connect to PostgreSQL"), "{trace}");
    assert_eq!(worker.ok("GET", "/connectors", None), json!(["down"]));
}
