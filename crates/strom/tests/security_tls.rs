//! SSL listeners: TLS with certificates from `strom tls gen-dev-certs`, mutual TLS, and
//! certificate reload without a restart, against the real binary.

mod broker_support;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_support::*;
use kafka_protocol::messages::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gen_certs(dir: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["tls", "gen-dev-certs", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run strom tls gen-dev-certs");
    assert!(status.success());
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).unwrap();
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    let pem = std::fs::read(path).unwrap();
    rustls_pemfile::private_key(&mut pem.as_slice())
        .unwrap()
        .unwrap()
}

/// A TLS connection trusting `ca`, optionally presenting `client` (key + chain PEM).
fn connect_tls(addr: SocketAddr, ca: &Path, client: Option<&Path>) -> std::io::Result<Conn> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca) {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(pem) => builder.with_client_auth_cert(certs(pem), key(pem)).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let connection =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp.try_clone()?);
    // Finish the handshake now so a refused certificate shows up here.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Conn::over(Box::new(stream), tcp))
}

struct SecureBroker {
    broker: TestBroker,
    ssl_addr: SocketAddr,
    certs: tempfile::TempDir,
}

fn start(client_auth: &str) -> SecureBroker {
    let certs = tempfile::tempdir().unwrap();
    gen_certs(certs.path(), &["--client", "alice"]);
    let temp = tempfile::tempdir().unwrap();
    let plain_port = free_port();
    let ssl_port = free_port();
    let keystore = format!(
        "ssl.keystore.location={}",
        certs.path().join("broker.pem").display()
    );
    let truststore = format!(
        "ssl.truststore.location={}",
        certs.path().join("ca.pem").display()
    );
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:{plain_port},SSL://127.0.0.1:{ssl_port}");
    let client_auth = format!("ssl.client.auth={client_auth}");
    let broker = TestBroker::start_in(
        &temp.path().join("data"),
        plain_port,
        &[
            &listeners,
            &keystore,
            &truststore,
            &client_auth,
            "ssl.reload.check.interval.ms=200",
        ],
    );
    std::mem::forget(temp); // removed with the machine's tmp; the broker still uses it
    SecureBroker {
        broker,
        ssl_addr: format!("127.0.0.1:{ssl_port}").parse().unwrap(),
        certs,
    }
}

#[test]
fn given_ssl_listener_should_serve_produce_and_fetch_over_tls_and_advertise_itself() {
    let secure = start("none");
    let ca = secure.certs.path().join("ca.pem");
    let mut conn = connect_tls(secure.ssl_addr, &ca, None).expect("TLS handshake");
    create_topic(&mut conn, "secret", 1, &[]);
    for round in 0..3 {
        assert_eq!(
            produce(
                &mut conn,
                "secret",
                0,
                batch(&format!("r{round}"), 50, 1_000)
            )
            .0,
            0
        );
    }
    // Fetch goes through the TLS writer (file ranges read into memory), not sendfile.
    let (error, high_watermark, records) = fetch(&mut conn, "secret", 0, 0);
    assert_eq!((error, high_watermark), (0, 150));
    let values = decode_values(&records);
    assert_eq!(values.len(), 150);
    assert_eq!(values[149].1, "r2-49");
    // Metadata on the SSL listener advertises the SSL port, not the plaintext one.
    let response: MetadataResponse = conn.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(response.brokers[0].port, secure.ssl_addr.port() as i32);
    let mut plain = secure.broker.connect();
    let response: MetadataResponse = plain.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(response.brokers[0].port, secure.broker.addr.port() as i32);
}

#[test]
fn given_untrusted_ca_or_plaintext_on_ssl_port_should_fail_cleanly() {
    let secure = start("none");
    let other = tempfile::tempdir().unwrap();
    gen_certs(other.path(), &[]);
    assert!(
        connect_tls(secure.ssl_addr, &other.path().join("ca.pem"), None).is_err(),
        "a client must not trust a broker certificate from another CA"
    );
    // A plaintext Kafka request on the TLS port: the broker drops it and keeps serving.
    let mut raw = Conn::plain(secure.ssl_addr);
    raw.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    assert!(raw.is_closed_by_broker());
    let mut conn = connect_tls(secure.ssl_addr, &secure.certs.path().join("ca.pem"), None).unwrap();
    let response: ApiVersionsResponse =
        conn.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
}

#[test]
fn given_required_client_auth_should_refuse_clients_without_certificate() {
    let secure = start("required");
    let ca = secure.certs.path().join("ca.pem");
    let refused = connect_tls(secure.ssl_addr, &ca, None).and_then(|mut conn| {
        // TLS 1.3 reports a missing client certificate after the handshake, on first use.
        conn.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
        match conn.read_frame() {
            Some(_) => Ok(()),
            None => Err(std::io::Error::other("closed")),
        }
    });
    assert!(refused.is_err(), "no client certificate: refused");
    let alice = secure.certs.path().join("client-alice.pem");
    let mut conn = connect_tls(secure.ssl_addr, &ca, Some(&alice)).expect("mutual TLS");
    let response: ApiVersionsResponse =
        conn.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
}

#[test]
fn given_new_certificates_on_disk_should_serve_them_without_restart() {
    let mut secure = start("none");
    let fresh = tempfile::tempdir().unwrap();
    gen_certs(fresh.path(), &[]);
    std::fs::copy(
        fresh.path().join("broker.pem"),
        secure.certs.path().join("broker.pem"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut reloaded = false;
    while Instant::now() < deadline {
        if connect_tls(secure.ssl_addr, &fresh.path().join("ca.pem"), None).is_ok() {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(reloaded, "new connections get the new certificate");
    assert!(secure.broker.is_running());
}

/// A client certificate for "mallory" from our CA, valid from `not_before` to `not_after`
/// (year, month, day); everything else is the same whatever the dates.
fn client_cert(
    certs: &Path,
    file: &str,
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> std::path::PathBuf {
    let ca_pem = std::fs::read_to_string(certs.join("ca.pem")).unwrap();
    let ca_key_pem = std::fs::read_to_string(certs.join("ca-key.pem")).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&ca_key_pem).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mallory");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let path = certs.join(file);
    std::fs::write(&path, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
    path
}

/// TLS handshake presenting `client`, then ApiVersions v0 over it: the answer's error code,
/// or the I/O error the client met (a refused certificate shows as the server's TLS alert).
fn api_versions_over_tls(addr: SocketAddr, ca: &Path, client: &Path) -> std::io::Result<i16> {
    use std::io::{Read, Write};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca) {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs(client), key(client))
        .unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let connection =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    // size 10: api key 18, version 0, correlation id 7, null client id; empty body.
    let mut request = 10i32.to_be_bytes().to_vec();
    request.extend_from_slice(&18i16.to_be_bytes());
    request.extend_from_slice(&0i16.to_be_bytes());
    request.extend_from_slice(&7i32.to_be_bytes());
    request.extend_from_slice(&(-1i16).to_be_bytes());
    stream.write_all(&request)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut answer = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut answer)?;
    assert_eq!(&answer[..4], &7i32.to_be_bytes(), "correlation id");
    Ok(i16::from_be_bytes([answer[4], answer[5]]))
}

#[test]
fn given_expired_client_certificate_under_mutual_tls_should_refuse_it_with_a_tls_alert() {
    let secure = start("required");
    let ca = secure.certs.path().join("ca.pem");
    let expired = client_cert(
        secure.certs.path(),
        "client-expired.pem",
        (2020, 1, 1),
        (2021, 1, 1),
    );
    let error = api_versions_over_tls(secure.ssl_addr, &ca, &expired)
        .expect_err("an expired client certificate is refused");
    // The broker's refusal, not a timeout or a dead broker: the client received its alert.
    let alert = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    assert!(
        matches!(
            alert,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateExpired
            ))
        ),
        "expected the broker's certificate_expired alert, got {error:?} ({:?})",
        error.kind()
    );
    // The broker logs the refusal (it may land just after the client sees the alert).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !secure.broker.log().contains("TLS handshake failed") {
        assert!(Instant::now() < deadline, "the refusal is logged");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn given_same_client_certificate_with_valid_dates_under_mutual_tls_should_accept_it() {
    // The twin of the expired-certificate test: same CA, name and usage; only the dates differ.
    let secure = start("required");
    let ca = secure.certs.path().join("ca.pem");
    let valid = client_cert(
        secure.certs.path(),
        "client-valid.pem",
        (2020, 1, 1),
        (2099, 1, 1),
    );
    let answer = api_versions_over_tls(secure.ssl_addr, &ca, &valid);
    assert!(
        matches!(answer, Ok(0)),
        "a client certificate within its dates is accepted: {answer:?}"
    );
}
