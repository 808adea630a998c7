//! `strom schema ...` against the real binary's registry (tables, `--json`, exit codes,
//! errors naming the subject and the fix, malformed arguments), and the registry
//! listener's HTTP Basic authentication against SCRAM users with subjects mapped onto
//! TOPIC ACLs (401 and 403 with Confluent's bodies, malformed Authorization headers).

mod broker_support;
mod http_support;
mod registry_support;

use std::process::{Command, Output, Stdio};

use http_support::request;
use registry_support::*;
use serde_json::{json, Value};

const STROM: &str = env!("CARGO_BIN_EXE_strom");

fn strom(args: &[&str], bootstrap: Option<&str>) -> Output {
    let mut command = Command::new(STROM);
    command
        .args(args)
        .env_remove("STROM_LOG")
        .env_remove("STROM_SCHEMA_REGISTRY_URL")
        .stdin(Stdio::null());
    if let Some(bootstrap) = bootstrap {
        command.env("STROM_BOOTSTRAP_SERVER", bootstrap);
    }
    command.output().expect("run strom")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

struct Cli {
    url: String,
    dir: tempfile::TempDir,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--registry", self.url.as_str()]);
        strom(&all, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let (out, err) = text(&output);
        assert!(output.status.success(), "strom {args:?}: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("JSON output")
    }

    /// Fails with exit code `code`; its stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        let (_, err) = text(&output);
        assert_eq!(output.status.code(), Some(code), "strom {args:?}: {err}");
        err
    }

    fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write schema file");
        path.display().to_string()
    }
}

fn user(fields: &[&str]) -> String {
    let fields: Vec<Value> = fields
        .iter()
        .map(|name| json!({"name": name, "type": "string", "default": ""}))
        .collect();
    avro_record("User", &fields)
}

#[test]
fn given_the_schema_cli_when_used_should_register_list_check_and_delete_with_clear_errors() {
    let broker = RegistryBroker::start();
    let cli = Cli {
        url: format!("http://{}", broker.registry),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let v1 = cli.file("v1.avsc", &user(&["name"]));
    let v2 = cli.file("v2.avsc", &user(&["name", "email"]));
    let bad = cli.file(
        "bad.avsc",
        &avro_record("User", &[json!({"name": "name", "type": "int"})]),
    );

    let out = cli.ok(&["schema", "register", "users-value", "--file", &v1]);
    assert_eq!(out.trim(), "registered users-value version 1 (schema id 1)");
    let answer = cli.json(&["schema", "register", "users-value", "-f", &v2]);
    assert_eq!(
        answer,
        json!({"subject": "users-value", "id": 2, "version": 2})
    );
    cli.ok(&["schema", "register", "orders-key", "-f", &v1]);

    let table = cli.ok(&["schema", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "SUBJECT      VERSIONS  LATEST  ID  TYPE");
    assert_eq!(lines[1], "orders-key   1         1       1   AVRO");
    assert_eq!(lines[2], "users-value  2         2       2   AVRO");
    let listed = cli.json(&["schema", "list", "--prefix", "users"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["versions"], json!([1, 2]));

    let got = cli.ok(&["schema", "get", "users-value", "--version", "1"]);
    assert!(
        got.starts_with("SUBJECT      VERSION  ID  TYPE\nusers-value  1        1   AVRO\n"),
        "{got}"
    );
    assert!(got.contains("\"name\": \"User\""), "pretty-printed: {got}");
    let by_id = cli.json(&["schema", "get", "--id", "2"]);
    assert!(by_id["schema"].as_str().unwrap().contains("email"));

    let level = cli.ok(&["schema", "config"]);
    assert_eq!(level, "SUBJECT   COMPATIBILITY\n(global)  BACKWARD\n");
    cli.ok(&["schema", "config", "users-value", "--set", "full"]);
    assert_eq!(
        cli.json(&["schema", "config", "users-value"])["compatibilityLevel"],
        "FULL"
    );

    assert_eq!(
        cli.ok(&["schema", "check", "users-value", "-f", &v2])
            .trim(),
        "compatible with users-value"
    );
    let output = cli.run(&["schema", "check", "users-value", "-f", &bad]);
    let (out, err) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        out.starts_with("incompatible with users-value:\n  "),
        "{out}"
    );
    assert!(err.contains("not compatible with users-value"), "{err}");
    let err = cli.fails(&["schema", "register", "users-value", "-f", &bad], 1);
    assert!(
        err.contains("subject 'users-value': the schema is incompatible"),
        "{err}"
    );
    assert!(
        err.contains("strom schema config SUBJECT --set LEVEL"),
        "{err}"
    );

    let deleted = cli.ok(&["schema", "delete", "orders-key"]);
    assert_eq!(deleted.trim(), "soft-deleted orders-key version(s) 1");
    cli.ok(&["schema", "delete", "orders-key", "--permanent"]);
    let err = cli.fails(&["schema", "get", "orders-key"], 1);
    assert!(err.contains("subject 'orders-key' does not exist"), "{err}");
    assert!(err.contains("strom schema list"), "{err}");

    // Malformed arguments: exit 2 (usage) or 1, each naming what is wrong.
    let err = cli.fails(&["schema", "get", "users-value", "--version", "0"], 2);
    assert!(err.contains("--version 0"), "{err}");
    let err = cli.fails(&["schema", "register", "s", "-f", &v1, "--type", "XML"], 2);
    assert!(err.contains("--type XML"), "{err}");
    let err = cli.fails(
        &[
            "schema",
            "register",
            "s",
            "-f",
            &v1,
            "--reference",
            "nocolon",
        ],
        2,
    );
    assert!(err.contains("NAME=SUBJECT:VERSION"), "{err}");
    let err = cli.fails(&["schema", "config", "--set", "SOMETIMES"], 2);
    assert!(err.contains("--set SOMETIMES"), "{err}");
    let err = cli.fails(&["schema", "register", "s", "-f", "no/such/file.avsc"], 1);
    assert!(
        err.contains("cannot read the schema file no/such/file.avsc"),
        "{err}"
    );
    let garbage = cli.file("garbage.avsc", "{not a schema");
    let err = cli.fails(&["schema", "register", "s", "-f", &garbage], 1);
    assert!(err.contains("subject 's': the schema is invalid"), "{err}");
    let err = cli.fails(&["schema", "get"], 2);
    assert!(err.contains("<SUBJECT>"), "{err}");
    let output = strom(&["schema", "list", "--registry", "127.0.0.1:8081"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("expected http(s)://HOST:PORT"));
    let closed = format!("http://127.0.0.1:{}", broker_support::ephemeral_port());
    let output = strom(&["schema", "list", "--registry", &closed], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("cannot reach the schema registry"));
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[test]
fn given_basic_auth_and_acls_when_calling_should_answer_401_403_or_serve() {
    let broker = RegistryBroker::start_with(&[
        "schema.registry.authentication.method=BASIC",
        "authorizer.class.name=strom",
        "super.users=User:ANONYMOUS;User:admin",
    ]);
    let bootstrap = broker.kafka.addr.to_string();
    for (name, password) in [
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
        ("admin", "admin-pw"),
    ] {
        let output = strom(
            &["user", "create", name, "--password", password],
            Some(&bootstrap),
        );
        assert!(output.status.success(), "{}", text(&output).1);
    }
    let output = strom(
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read,Write",
            "--topic",
            "orders",
        ],
        Some(&bootstrap),
    );
    assert!(output.status.success(), "{}", text(&output).1);

    let call = |method: &str, path: &str, auth: Option<&str>, body: Option<&Value>| {
        let mut headers = vec![("content-type", CONTENT_TYPE)];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        request(broker.registry, method, path, &headers, body.as_bytes())
    };
    let schema = json!({"schema": avro_record("Order", &[])});
    let alice = basic("alice", "alice-pw");
    let bob = basic("bob", "bob-pw");

    // No, wrong or malformed credentials: 401 with Confluent's body and a challenge.
    for auth in [
        None,
        Some(basic("alice", "wrong").as_str()),
        Some(basic("nobody", "x").as_str()),
        Some("Basic not-base64!"),
        Some("Bearer token"),
        Some("Basic"),
    ] {
        let response = call("GET", "/subjects", auth, None);
        assert_error(&response, 401, 401, &format!("{auth:?}"));
        assert!(
            response
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic")),
            "{auth:?}"
        );
    }
    // Credentials are checked before the body is read: a malformed body gets 401, not 400.
    let response = request(
        broker.registry,
        "POST",
        "/subjects/orders-value/versions",
        &[("content-type", CONTENT_TYPE)],
        b"{not json",
    );
    assert_error(&response, 401, 401, "malformed body without credentials");
    // Alice may write and read orders-value (topic orders), not payments-value.
    let response = call(
        "POST",
        "/subjects/orders-value/versions",
        Some(&alice),
        Some(&schema),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let response = call(
        "GET",
        "/subjects/orders-value/versions/1",
        Some(&alice),
        None,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let response = call(
        "POST",
        "/subjects/payments-value/versions",
        Some(&alice),
        Some(&schema),
    );
    assert_error(&response, 403, 40301, "alice on payments-value");
    assert!(response.text().contains("payments-value"));
    // Bob authenticates but has no ACL: reads of a subject and writes are refused; the
    // registry-wide reads are open to any user.
    assert_error(
        &call("GET", "/subjects/orders-value/versions", Some(&bob), None),
        403,
        40301,
        "bob read",
    );
    assert_error(
        &call("DELETE", "/subjects/orders-value", Some(&bob), None),
        403,
        40301,
        "bob delete",
    );
    // The subject list shows each user only what it may read.
    let bob_sees = call("GET", "/subjects", Some(&bob), None);
    assert_eq!(bob_sees.status, 200, "{}", bob_sees.text());
    assert_eq!(bob_sees.json(), json!([]));
    assert_eq!(
        call("GET", "/subjects", Some(&alice), None).json(),
        json!(["orders-value"])
    );
    assert_eq!(call("GET", "/schemas/ids/1", Some(&bob), None).status, 200);
    // Registry-wide writes need ALTER on the cluster: the super user has it, alice not.
    let level = json!({"compatibility": "NONE"});
    assert_error(
        &call("PUT", "/config", Some(&alice), Some(&level)),
        403,
        40301,
        "alice global config",
    );
    let response = call(
        "PUT",
        "/config",
        Some(&basic("admin", "admin-pw")),
        Some(&level),
    );
    assert_eq!(response.status, 200, "{}", response.text());

    // A verified password is remembered only while the user's credential is unchanged.
    let output = strom(
        &["user", "create", "alice", "--password", "alice-new"],
        Some(&bootstrap),
    );
    assert!(output.status.success(), "{}", text(&output).1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while call("GET", "/subjects", Some(&alice), None).status != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old password still works"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let response = call("GET", "/subjects", Some(&basic("alice", "alice-new")), None);
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn given_an_https_registry_with_basic_auth_when_the_cli_calls_should_need_ca_and_user() {
    let temp = tempfile::tempdir().expect("tempdir");
    let certs = temp.path().join("certs");
    broker_support::gen_dev_certs(&certs, &[]);
    let port = broker_support::ephemeral_port();
    let keystore = format!(
        "schema.registry.ssl.keystore.location={}",
        certs.join("broker.pem").display()
    );
    let listener = format!("schema.registry.listener=127.0.0.1:{port}");
    let kafka = broker_support::TestBroker::start_in(
        &temp.path().join("data"),
        broker_support::ephemeral_port(),
        &[
            &listener,
            &keystore,
            "schema.registry.authentication.method=BASIC",
        ],
    );
    let bootstrap = kafka.addr.to_string();
    let output = strom(
        &["user", "create", "carol", "--password", "carol-pw"],
        Some(&bootstrap),
    );
    assert!(output.status.success(), "{}", text(&output).1);
    let url = format!("https://127.0.0.1:{port}");
    let ca = certs.join("ca.pem").display().to_string();
    let schema = temp.path().join("s.avsc");
    std::fs::write(&schema, avro_record("S", &[])).unwrap();
    let schema = schema.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "schema",
            "register",
            "s-value",
            "-f",
            &schema,
            "--registry",
            &url,
        ];
        args.extend_from_slice(extra);
        strom(&args, None)
    };
    // The listener may take a moment to come up: retry the full call until it answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let output = run(&["--ca", &ca, "--user", "carol:carol-pw"]);
        if output.status.success() {
            assert_eq!(
                text(&output).0.trim(),
                "registered s-value version 1 (schema id 1)"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", text(&output).1);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let err = text(&run(&["--ca", &ca])).1;
    assert!(
        err.contains("wants credentials") && err.contains("--user"),
        "{err}"
    );
    let err = text(&run(&["--ca", &ca, "--user", "carol:wrong"])).1;
    assert!(err.contains("wants credentials"), "{err}");
    let err = text(&run(&["--user", "carol:carol-pw"])).1;
    assert!(err.contains("--ca FILE"), "{err}");
    let output = run(&["--ca", &ca, "--user", "no-colon"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output).1);
    // A CA that did not sign the registry's certificate: the handshake fails, named.
    let other = temp.path().join("other");
    broker_support::gen_dev_certs(&other, &[]);
    let other_ca = other.join("ca.pem").display().to_string();
    let output = run(&["--ca", &other_ca, "--user", "carol:carol-pw"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).1.contains("check --ca"),
        "{}",
        text(&output).1
    );
}

mod cluster_support;

#[test]
fn given_three_nodes_with_https_registries_when_writing_anywhere_should_forward_over_tls() {
    use cluster_support::{Cluster, Role, NODES};
    let certs_dir = tempfile::tempdir().expect("tempdir");
    let certs = certs_dir.path().to_path_buf();
    broker_support::gen_dev_certs(&certs, &[]);
    let keystore = format!(
        "schema.registry.ssl.keystore.location={}",
        certs.join("broker.pem").display()
    );
    let cluster = Cluster::start_custom(
        &[Role::Combined; NODES as usize],
        &[&keystore],
        Some(Box::new(|_, ports| {
            vec![format!(
                "schema.registry.listener=127.0.0.1:{}",
                ports.extra
            )]
        })),
    );
    let ca = certs.join("ca.pem").display().to_string();
    let schema_file = certs.join("r.avsc");
    let mut ids = Vec::new();
    for id in 1..=NODES {
        std::fs::write(&schema_file, avro_record(&format!("R{id}"), &[])).unwrap();
        let url = format!("https://127.0.0.1:{}", cluster.ports(id).extra);
        let subject = format!("s{id}-value");
        let file = schema_file.display().to_string();
        let args = [
            "schema",
            "register",
            &subject,
            "-f",
            &file,
            "--registry",
            &url,
            "--ca",
            &ca,
            "--json",
        ];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        let answer: Value = loop {
            let output = strom(&args, None);
            if output.status.success() {
                break serde_json::from_slice(&output.stdout).expect("JSON");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {id}: {}\n{}",
                text(&output).1,
                cluster.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        ids.push(answer["id"].as_i64().unwrap());
    }
    assert_eq!(
        ids,
        vec![1, 2, 3],
        "one writer, reached over TLS from the others"
    );
}
