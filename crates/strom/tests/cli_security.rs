//! The CLI against secured listeners of the real binary, with `--command-config` (Kafka
//! tools' client properties): SSL, SASL_PLAINTEXT and SASL_SSL with SCRAM and PLAIN, mutual
//! TLS, hostname verification, and the one-line errors for wrong passwords, untrusted CAs
//! and missing client certificates. Also the client's KIP-368 session expiry.

mod broker_support;
mod cli_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use broker_support::{ephemeral_port, gen_dev_certs, TestBroker};
use cli_support::{finish, run_strom, stderr, STROM};
use strom_client::connection::{Connection, ConnectionConfig};
use strom_client::{Client, ClientConfig, ClientSecurity};

const PASSWORD: &str = "correct horse battery";

/// A broker with PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners on loopback, with
/// dev certificates, and user alice (SCRAM-SHA-256 and SCRAM-SHA-512) created with the CLI.
struct Secured {
    _broker: TestBroker,
    plain: String,
    ssl: String,
    sasl_plaintext: String,
    sasl_ssl: String,
    certs: PathBuf,
    /// Holds the data dir, the certificates and the command-config files.
    dir: tempfile::TempDir,
}

fn start(extra: &[&str], cert_args: &[&str]) -> Secured {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gen_dev_certs(&certs, cert_args);
    // The secured listeners take port 0 (the broker picks and logs a free one), so only the
    // PLAINTEXT port, which the harness waits on, can race with another test.
    let plain_port = ephemeral_port();
    let plain = format!("127.0.0.1:{plain_port}");
    let listeners = format!(
        "listeners=PLAINTEXT://{plain},SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
    );
    let keystore = format!(
        "ssl.keystore.location={}",
        certs.join("broker.pem").display()
    );
    let truststore = format!("ssl.truststore.location={}", certs.join("ca.pem").display());
    let mut settings = vec![listeners.as_str(), keystore.as_str(), truststore.as_str()];
    settings.extend_from_slice(extra);
    let broker = TestBroker::start_in(&dir.path().join("data"), plain_port, &settings);
    let [ssl, sasl_plaintext, sasl_ssl] =
        ["SSL", "SASL_PLAINTEXT", "SASL_SSL"].map(|name| bound_address(&broker, name));
    let secured = Secured {
        _broker: broker,
        plain,
        ssl,
        sasl_plaintext,
        sasl_ssl,
        certs,
        dir,
    };
    let created = run_strom(
        &[
            "user",
            "create",
            "alice",
            "--password",
            PASSWORD,
            "--mechanism",
            "SCRAM-SHA-256",
            "--mechanism",
            "SCRAM-SHA-512",
        ],
        b"",
        &secured.plain,
    );
    assert!(created.status.success(), "{}", stderr(&created));
    secured
}

/// The address listener `name` bound, from the broker's `listening` log line.
fn bound_address(broker: &TestBroker, name: &str) -> String {
    let wanted = format!("listening listener={name} address=");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The log is coloured: drop the escape sequences first.
        let log = broker.log();
        let mut plain = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| c.is_ascii_alphabetic());
            } else {
                plain.push(c);
            }
        }
        if let Some(line) = plain.lines().find(|line| line.contains(&wanted)) {
            let rest = &line[line.find(&wanted).unwrap() + wanted.len()..];
            return rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no {name} listener in the log:\n{plain}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Secured {
    /// Writes a command-config file of `lines` and returns its path.
    fn config(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut text = format!("# {name}: written by the test\n\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn ca(&self) -> String {
        format!("ssl.ca.location={}", self.certs.join("ca.pem").display())
    }

    fn sasl(&self, protocol: &str, mechanism: &str, password: &str) -> Vec<String> {
        let mut lines = vec![
            format!("security.protocol={protocol}"),
            format!("sasl.mechanism={mechanism}"),
            "sasl.username=alice".to_string(),
            format!("sasl.password={password}"),
        ];
        if protocol == "SASL_SSL" {
            lines.push(self.ca());
        }
        lines
    }
}

/// `strom ARGS --bootstrap-server BOOTSTRAP --command-config CONFIG`, with `stdin`.
fn strom(bootstrap: &str, config: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut full: Vec<&str> = args.to_vec();
    let config = config.to_str().unwrap();
    full.extend_from_slice(&["--bootstrap-server", bootstrap, "--command-config", config]);
    run_strom(&full, stdin, bootstrap)
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed with {}: {}",
        output.status,
        stderr(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Creates `topic`, produces 40 values through the CLI and consumes them back.
fn round_trip(bootstrap: &str, config: &Path, topic: &str) {
    ok(
        strom(
            bootstrap,
            config,
            &["topic", "create", topic, "--partitions", "2"],
            b"",
        ),
        "topic create",
    );
    let mut written: Vec<String> = (0..40).map(|i| format!("{topic} value {i}")).collect();
    let stdin: String = written.iter().map(|v| format!("{v}\n")).collect();
    ok(
        strom(bootstrap, config, &["produce", topic], stdin.as_bytes()),
        "produce",
    );
    let consumed = ok(
        strom(
            bootstrap,
            config,
            &["consume", topic, "--from-beginning", "--json"],
            b"",
        ),
        "consume",
    );
    let mut read: Vec<String> = consumed
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("JSON record");
            record["value"].as_str().expect("value").to_string()
        })
        .collect();
    written.sort();
    read.sort();
    assert_eq!(read, written, "values read back over {bootstrap}");
}

/// The one line of an error, after checking the command failed (not hung, not crashed).
fn failure(output: &Output, started: Instant) -> String {
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failed only after {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    text
}

#[test]
fn given_each_secured_listener_when_cli_produces_and_consumes_should_read_back_what_it_wrote() {
    let secured = start(&[], &[]);
    let ssl = secured.config(
        "ssl.properties",
        &["security.protocol=SSL".into(), secured.ca()],
    );
    round_trip(&secured.ssl, &ssl, "over-ssl");

    let scram256 = secured.config(
        "scram256.properties",
        &secured.sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", PASSWORD),
    );
    round_trip(&secured.sasl_plaintext, &scram256, "over-sasl-plaintext");

    let scram512 = secured.config(
        "scram512.properties",
        &secured.sasl("SASL_SSL", "SCRAM-SHA-512", PASSWORD),
    );
    round_trip(&secured.sasl_ssl, &scram512, "over-sasl-ssl");

    // PLAIN over TLS, with the file named by STROM_COMMAND_CONFIG instead of the flag.
    let plain = secured.config(
        "plain.properties",
        &secured.sasl("SASL_SSL", "PLAIN", PASSWORD),
    );
    let child = Command::new(STROM)
        .args([
            "topic",
            "list",
            "--json",
            "--bootstrap-server",
            &secured.sasl_ssl,
        ])
        .env("STROM_COMMAND_CONFIG", &plain)
        .env_remove("STROM_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let listed = ok(
        finish(child, Duration::from_secs(60), "topic list"),
        "topic list",
    );
    let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap_or_default().to_string())
        .collect();
    for topic in ["over-ssl", "over-sasl-plaintext", "over-sasl-ssl"] {
        assert!(names.iter().any(|n| n == topic), "{topic} in {listed}");
    }
}

#[test]
fn given_wrong_password_or_mechanism_should_fail_fast_with_one_line_naming_the_fix() {
    let secured = start(&["sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256"], &[]);
    for (protocol, bootstrap) in [
        ("SASL_PLAINTEXT", &secured.sasl_plaintext),
        ("SASL_SSL", &secured.sasl_ssl),
    ] {
        let config = secured.config(
            &format!("wrong-{protocol}.properties"),
            &secured.sasl(protocol, "SCRAM-SHA-256", "not the password"),
        );
        let started = Instant::now();
        let output = strom(bootstrap, &config, &["topic", "list"], b"");
        let message = failure(&output, started);
        assert!(
            message.starts_with("error: authentication failed for user alice with SCRAM-SHA-256")
                && message.contains("check sasl.username/sasl.password in")
                && message.contains(config.to_str().unwrap()),
            "{message}"
        );
        assert!(!message.contains(PASSWORD) && !message.contains("not the password"));
    }

    let plain = secured.config(
        "wrong-plain.properties",
        &secured.sasl("SASL_PLAINTEXT", "PLAIN", "nope"),
    );
    let started = Instant::now();
    let message = failure(
        &strom(&secured.sasl_plaintext, &plain, &["topic", "list"], b""),
        started,
    );
    assert!(
        message.contains("authentication failed for user alice with PLAIN"),
        "{message}"
    );

    let disabled = secured.config(
        "sha512.properties",
        &secured.sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", PASSWORD),
    );
    let started = Instant::now();
    let message = failure(
        &strom(&secured.sasl_plaintext, &disabled, &["topic", "list"], b""),
        started,
    );
    assert!(
        message.contains("does not enable SASL mechanism SCRAM-SHA-512")
            && message.contains("set sasl.mechanism in"),
        "{message}"
    );
}

#[test]
fn given_untrusted_ca_or_mismatched_protocol_should_say_which_setting_to_fix() {
    let secured = start(&[], &[]);
    let other = secured.dir.path().join("other-ca");
    gen_dev_certs(&other, &[]);
    let untrusted = secured.config(
        "untrusted.properties",
        &[
            "security.protocol=SSL".into(),
            format!("ssl.ca.location={}", other.join("ca.pem").display()),
        ],
    );
    let started = Instant::now();
    let message = failure(
        &strom(&secured.ssl, &untrusted, &["topic", "list"], b""),
        started,
    );
    assert!(
        message.contains("not signed by a CA in ssl.ca.location")
            && message.contains(untrusted.to_str().unwrap()),
        "{message}"
    );

    // A bad file is reported before any connection, naming the key and the file.
    let missing = secured.config(
        "missing-ca.properties",
        &[
            "security.protocol=SSL".into(),
            "ssl.ca.location=/nonexistent/ca.pem".into(),
        ],
    );
    let message = failure(
        &strom(&secured.ssl, &missing, &["topic", "list"], b""),
        Instant::now(),
    );
    assert!(
        message.contains("ssl.ca.location=/nonexistent/ca.pem") && message.contains("cannot read"),
        "{message}"
    );
    let unknown = secured.config(
        "unknown.properties",
        &[
            "security.protocol=SSL".into(),
            "ssl.truststore.location=x".into(),
        ],
    );
    let message = failure(
        &strom(&secured.ssl, &unknown, &["topic", "list"], b""),
        Instant::now(),
    );
    assert!(
        message.contains("unknown setting ssl.truststore.location"),
        "{message}"
    );

    // No --command-config against a SASL listener: the broker drops the client.
    let started = Instant::now();
    let output = run_strom(&["topic", "list"], b"", &secured.sasl_plaintext);
    let message = failure(&output, started);
    assert!(message.contains("--command-config"), "{message}");
    // ... and against a TLS listener: the broker's TLS alert is recognised as such.
    let started = Instant::now();
    let output = run_strom(&["topic", "list"], b"", &secured.ssl);
    let message = failure(&output, started);
    assert!(
        message.contains("answered in TLS") && message.contains("security.protocol=SSL"),
        "{message}"
    );
    // SASL settings against the PLAINTEXT listener.
    let sasl = secured.config(
        "sasl.properties",
        &secured.sasl("SASL_PLAINTEXT", "PLAIN", PASSWORD),
    );
    let message = failure(
        &strom(&secured.plain, &sasl, &["topic", "list"], b""),
        Instant::now(),
    );
    assert!(
        message.contains("does not expect SASL") && message.contains("sasl.properties"),
        "{message}"
    );
}

#[test]
fn given_required_client_certificate_should_work_with_one_and_say_what_is_missing_without() {
    let secured = start(&["ssl.client.auth=required"], &["--client", "alice"]);
    // The client's key and chain in one PEM, as gen-dev-certs writes it.
    let mutual = secured.config(
        "mutual.properties",
        &[
            "security.protocol=SSL".into(),
            secured.ca(),
            format!(
                "ssl.certificate.location={}",
                secured.certs.join("client-alice.pem").display()
            ),
        ],
    );
    round_trip(&secured.ssl, &mutual, "mutual");
    // SASL_SSL under required client auth: certificate and password both.
    let mut both = secured.sasl("SASL_SSL", "SCRAM-SHA-512", PASSWORD);
    both.push(format!(
        "ssl.key.location={}",
        secured.certs.join("client-alice.pem").display()
    ));
    let both = secured.config("both.properties", &both);
    round_trip(&secured.sasl_ssl, &both, "mutual-sasl");

    let without = secured.config(
        "without-cert.properties",
        &["security.protocol=SSL".into(), secured.ca()],
    );
    let started = Instant::now();
    let message = failure(
        &strom(&secured.ssl, &without, &["topic", "list"], b""),
        started,
    );
    assert!(
        message.contains("client certificate")
            && message.contains("ssl.certificate.location")
            && message.contains(without.to_str().unwrap()),
        "{message}"
    );
}

#[test]
fn given_certificate_for_another_host_should_refuse_unless_identification_is_none() {
    let secured = start(&[], &["--host", "broker.invalid"]);
    let strict = secured.config(
        "strict.properties",
        &["security.protocol=SSL".into(), secured.ca()],
    );
    let started = Instant::now();
    let message = failure(
        &strom(&secured.ssl, &strict, &["topic", "list"], b""),
        started,
    );
    assert!(
        message.contains("does not name the host")
            && message.contains("ssl.endpoint.identification.algorithm=none"),
        "{message}"
    );
    let relaxed = secured.config(
        "relaxed.properties",
        &[
            "security.protocol=SSL".into(),
            secured.ca(),
            "ssl.endpoint.identification.algorithm=none".into(),
        ],
    );
    round_trip(&secured.ssl, &relaxed, "relaxed");
    // The chain is still verified: another CA's certificate is refused even so.
    let other = secured.dir.path().join("other-ca");
    gen_dev_certs(&other, &[]);
    let untrusted = secured.config(
        "relaxed-untrusted.properties",
        &[
            "security.protocol=SSL".into(),
            format!("ssl.ca.location={}", other.join("ca.pem").display()),
            "ssl.endpoint.identification.algorithm=none".into(),
        ],
    );
    let message = failure(
        &strom(&secured.ssl, &untrusted, &["topic", "list"], b""),
        Instant::now(),
    );
    assert!(message.contains("not signed by a CA"), "{message}");
}

#[test]
fn given_session_lifetime_should_expose_expiry_and_replace_the_connection_before_it() {
    let lifetime = Duration::from_millis(4000);
    let secured = start(&["connections.max.reauth.ms=4000"], &[]);
    let properties: BTreeMap<String, String> = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "alice"),
        ("sasl.password", PASSWORD),
        (
            "ssl.ca.location",
            secured.certs.join("ca.pem").to_str().unwrap(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = ConnectionConfig {
        security: ClientSecurity::from_properties(&properties).unwrap(),
        ..ConnectionConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let before = Instant::now();
        let connection = Connection::connect(&secured.sasl_ssl, config.clone())
            .await
            .expect("SASL_SSL connection");
        let after = Instant::now();
        let expires_at = connection.session_expires_at().expect("a session lifetime");
        assert!(
            expires_at >= before + lifetime && expires_at <= after + lifetime,
            "expiry counted from authentication"
        );
        assert!(!connection.is_closed());
        connection
            .send(&kafka_protocol::messages::MetadataRequest::default())
            .await
            .expect("authenticated request");

        // 2 s before expiry (the margin for a 4 s lifetime) the owner is told to replace it,
        // while the socket still serves what is in flight.
        tokio::time::sleep_until((expires_at - Duration::from_millis(1500)).into()).await;
        assert!(connection.is_closed(), "due for replacement before expiry");
        connection
            .send(&kafka_protocol::messages::MetadataRequest::default())
            .await
            .expect("still served until the session ends");

        // Past expiry the broker cuts it: that is what replacing early avoids.
        tokio::time::sleep_until((expires_at + Duration::from_millis(300)).into()).await;
        assert!(connection
            .send(&kafka_protocol::messages::MetadataRequest::default())
            .await
            .is_err());

        // The cluster view's connection cache replaces a connection due for it.
        let client = Client::connect(ClientConfig {
            connection: config,
            ..ClientConfig::new(&secured.sasl_ssl)
        })
        .await
        .expect("client");
        let first = client.any_connection().await.unwrap();
        let first_expiry = first.session_expires_at().unwrap();
        tokio::time::sleep_until((first_expiry - Duration::from_millis(1500)).into()).await;
        let second = client.any_connection().await.unwrap();
        assert!(
            second.session_expires_at().unwrap() > first_expiry,
            "a fresh, re-authenticated connection"
        );
        assert!(!second.is_closed());
        client
            .refresh_metadata(None, false)
            .await
            .expect("metadata over the new connection");
    });
}
