//! `strom user`, `strom acl` and `strom quota` against the real binary: a user created with
//! the CLI (salted client-side) logs in with SASL/PLAIN, ACLs created with the CLI decide
//! what it may do, and quotas round-trip, in tables and JSON.

mod broker_support;
mod cli_support;

use std::net::{SocketAddr, TcpListener};

use broker_support::{batch, produce, Conn, TestBroker};
use bytes::Bytes;
use cli_support::{run_strom, stderr};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Conn, i16> {
    let mut conn = Conn::plain(addr);
    let handshake: SaslHandshakeResponse = conn.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
    );
    assert_eq!(handshake.error_code, 0);
    let response: SaslAuthenticateResponse = conn.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(format!("\0{user}\0{password}"))),
    );
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    Ok(conn)
}

struct Setup {
    broker: TestBroker,
    sasl: SocketAddr,
    bootstrap: String,
    _temp: tempfile::TempDir,
}

fn start() -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let (plain, sasl) = (free_port(), free_port());
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
    let broker = TestBroker::start_in(
        &temp.path().join("data"),
        plain,
        &[
            listeners.as_str(),
            "authorizer.class.name=strom",
            "super.users=User:ANONYMOUS",
        ],
    );
    Setup {
        broker,
        sasl: format!("127.0.0.1:{sasl}").parse().unwrap(),
        bootstrap: format!("127.0.0.1:{plain}"),
        _temp: temp,
    }
}

fn ok(setup: &Setup, args: &[&str]) -> String {
    let output = run_strom(args, b"", &setup.bootstrap);
    assert!(
        output.status.success(),
        "strom {args:?} failed: {}\n{}",
        stderr(&output),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json(setup: &Setup, args: &[&str]) -> serde_json::Value {
    let stdout = ok(setup, args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

#[test]
fn given_cli_user_and_acls_when_the_user_logs_in_should_be_authorised_by_them() {
    let setup = start();
    ok(&setup, &["topic", "create", "orders", "--partitions", "1"]);
    ok(&setup, &["user", "create", "alice", "--password", "s3cret"]);
    let password_file = setup._temp.path().join("bob.txt");
    std::fs::write(&password_file, "bob-pw\n").unwrap();
    ok(
        &setup,
        &[
            "user",
            "create",
            "bob",
            "--password-file",
            password_file.to_str().unwrap(),
            "--mechanism",
            "SCRAM-SHA-512",
            "--mechanism",
            "SCRAM-SHA-256",
        ],
    );
    let users = json(&setup, &["user", "list", "--json"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(users[1]["credentials"].as_array().unwrap().len(), 2);
    let table = ok(&setup, &["user", "list"]);
    assert!(table.starts_with("USER"), "{table}");

    // The salted password made by the CLI verifies on the broker; a wrong one does not.
    assert!(login(setup.sasl, "alice", "wrong").is_err());
    let mut alice = login(setup.sasl, "alice", "s3cret").expect("alice logs in");
    assert_eq!(produce(&mut alice, "orders", 0, batch("a", 1, 1_000)).0, 29);

    let created = json(
        &setup,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "write,describe",
            "--topic",
            "orders",
            "--json",
        ],
    );
    assert_eq!(created.as_array().unwrap().len(), 2);
    assert_eq!(produce(&mut alice, "orders", 0, batch("a", 1, 1_000)).0, 0);
    ok(
        &setup,
        &[
            "acl",
            "create",
            "--deny-principal",
            "User:alice",
            "--operation",
            "All",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    assert_eq!(
        produce(&mut alice, "orders", 0, batch("a", 1, 1_000)).0,
        29,
        "deny wins"
    );

    let listed = json(&setup, &["acl", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let matching = json(
        &setup,
        &[
            "acl",
            "list",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "match",
            "--json",
        ],
    );
    assert_eq!(
        matching.as_array().unwrap().len(),
        3,
        "literal and prefix both apply"
    );
    let table = ok(&setup, &["acl", "list", "--principal", "User:alice"]);
    assert!(
        table.contains("Prefixed") && table.contains("Deny"),
        "{table}"
    );

    // Deleting needs a filter (or --all).
    let refused = run_strom(&["acl", "delete"], b"", &setup.bootstrap);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("--all"), "{}", stderr(&refused));
    let removed = json(
        &setup,
        &[
            "acl",
            "delete",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
            "--json",
        ],
    );
    assert_eq!(removed.as_array().unwrap().len(), 1);
    assert_eq!(produce(&mut alice, "orders", 0, batch("a", 1, 1_000)).0, 0);

    // Bad input says what to do.
    let bad = run_strom(
        &[
            "acl",
            "create",
            "--allow-principal",
            "alice",
            "--operation",
            "read",
            "--topic",
            "t",
        ],
        b"",
        &setup.bootstrap,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("User:alice"), "{}", stderr(&bad));
    let bad = run_strom(
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:a",
            "--operation",
            "fly",
            "--topic",
            "t",
        ],
        b"",
        &setup.bootstrap,
    );
    assert!(stderr(&bad).contains("IdempotentWrite"), "{}", stderr(&bad));

    ok(&setup, &["user", "delete", "alice"]);
    assert!(login(setup.sasl, "alice", "s3cret").is_err());
    drop(setup.broker);
}

#[test]
fn given_cli_quotas_when_altered_should_describe_them_and_refuse_bad_keys() {
    let setup = start();
    ok(
        &setup,
        &[
            "quota",
            "alter",
            "--user",
            "alice",
            "--add-config",
            "producer_byte_rate=1048576,consumer_byte_rate=2097152",
        ],
    );
    ok(
        &setup,
        &[
            "quota",
            "alter",
            "--client-default",
            "--add-config",
            "request_percentage=25",
        ],
    );
    let all = json(&setup, &["quota", "describe", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let alice = json(&setup, &["quota", "describe", "--user", "alice", "--json"]);
    assert_eq!(alice[0]["quotas"]["producer_byte_rate"], 1048576.0);
    let table = ok(&setup, &["quota", "describe"]);
    assert!(
        table.contains("<default>") && table.contains("request_percentage"),
        "{table}"
    );

    ok(
        &setup,
        &[
            "quota",
            "alter",
            "--user",
            "alice",
            "--delete-config",
            "consumer_byte_rate",
        ],
    );
    let alice = json(&setup, &["quota", "describe", "--user", "alice", "--json"]);
    assert!(alice[0]["quotas"].get("consumer_byte_rate").is_none());

    let bad = run_strom(
        &[
            "quota",
            "alter",
            "--user",
            "alice",
            "--add-config",
            "bogus=1",
        ],
        b"",
        &setup.bootstrap,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("bogus"), "{}", stderr(&bad));
}
