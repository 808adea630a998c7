//! `strom schema`'s transport: one HTTP/1.1 exchange per request with the registry, over
//! TLS for an `https://` URL (`--ca`), with Basic credentials (`--user`); answers parsed
//! (plain or chunked bodies) into status and JSON.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::fail;
use super::schema::{usage, RegistryArgs};

/// Largest answer read from the registry.
const ANSWER_BYTES_MAX: usize = 64 * 1024 * 1024;
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A registry URL split up: `http://host:port[/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    https: bool,
    host: String,
    port: u16,
    base: String,
}

fn parse_url(url: &str) -> Result<Endpoint, String> {
    let (https, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (None, Some(rest)) => (true, rest),
        (None, None) => return Err(format!("--registry {url}: expected http(s)://HOST:PORT")),
    };
    let (authority, base) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("--registry {url}: '{port}' is not a port"))?;
            (host, port)
        }
        None => (authority, if https { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(format!("--registry {url}: no host"));
    }
    Ok(Endpoint {
        https,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        base: base.to_string(),
    })
}

/// Percent-encodes one path segment (a subject may hold any character).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The TLS client settings for an https registry: its CA from `--ca`.
fn tls_config(args: &RegistryArgs) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let ca = args.ca.as_ref().ok_or_else(|| {
        fail(format!(
            "--registry {} is https: give the CA that signs its certificate with --ca FILE \
             (or STROM_SCHEMA_REGISTRY_CA)",
            args.registry
        ))
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|error| fail(format!("--ca {}: {error}", ca.display())))?;
    if certificates.is_empty() {
        return Err(fail(format!("--ca {}: holds no certificate", ca.display())));
    }
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| fail(format!("--ca {}: {error}", ca.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| fail(format!("TLS setup: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Writes `request` and reads the answer to its end (the connection is closed after it).
fn exchange(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    request: &[u8],
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let address = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the host has no address"))?;
    let tcp = std::net::TcpStream::connect_timeout(&address, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let mut raw = Vec::new();
    match tls {
        None => {
            let mut tcp = tcp;
            tcp.write_all(request)?;
            tcp.take(ANSWER_BYTES_MAX as u64).read_to_end(&mut raw)?;
        }
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                .map_err(std::io::Error::other)?;
            let connection =
                rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            stream.write_all(request)?;
            stream.flush()?;
            match stream.take(ANSWER_BYTES_MAX as u64).read_to_end(&mut raw) {
                Ok(_) => {}
                // A server that closes without close_notify after a complete answer.
                Err(error)
                    if error.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(raw)
}

/// One HTTP/1.1 exchange with the registry (a connection per request), on the blocking
/// pool.
pub async fn call(
    args: &RegistryArgs,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Answer> {
    use base64::Engine;
    let endpoint = parse_url(&args.registry).map_err(fail)?;
    let tls = if endpoint.https {
        Some(tls_config(args)?)
    } else {
        None
    };
    let timeout = Duration::from_millis(args.request_timeout_ms);
    let body = body.map(Value::to_string).unwrap_or_default();
    let authorization = match &args.user {
        Some(user_info) if user_info.contains(':') => format!(
            "authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(user_info)
        ),
        Some(_) => return Err(usage("--user: expected USER:PASSWORD".into())),
        None => String::new(),
    };
    let request = format!(
        "{method} {}{path} HTTP/1.1\r\nhost: {}:{}\r\naccept: {CONTENT_TYPE}, application/json\r\n\
         content-type: {CONTENT_TYPE}\r\n{authorization}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        endpoint.base,
        endpoint.host,
        endpoint.port,
        body.len()
    );
    let job =
        tokio::task::spawn_blocking(move || exchange(&endpoint, tls, request.as_bytes(), timeout));
    let raw = match job.await {
        Ok(Ok(raw)) => raw,
        Ok(Err(error))
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(fail(format!(
                "the schema registry at {} did not answer within {} ms",
                args.registry, args.request_timeout_ms
            )))
        }
        Ok(Err(error)) => {
            return Err(fail(format!(
                "cannot reach the schema registry at {}: {error}; is a broker with \
                 schema.registry.listener running there? Point at another with --registry URL \
                 (or STROM_SCHEMA_REGISTRY_URL){}",
                args.registry,
                if args.registry.starts_with("https://") {
                    "; for https, check --ca"
                } else {
                    ""
                }
            )))
        }
        Err(error) => return Err(fail(format!("request task failed: {error}"))),
    };
    parse_answer(&raw).map_err(|message| {
        fail(format!(
            "the schema registry at {} answered something that is not HTTP: {message}",
            args.registry
        ))
    })
}

fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line '{status_line}'"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or("bad chunked body")?;
    }
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"message": String::from_utf8_lossy(&body)}))
    };
    Ok(Answer { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_urls_when_parsed_should_split_host_port_and_base_or_name_the_problem() {
        assert_eq!(
            parse_url("http://127.0.0.1:8081"),
            Ok(Endpoint {
                https: false,
                host: "127.0.0.1".into(),
                port: 8081,
                base: String::new()
            })
        );
        assert_eq!(parse_url("http://reg/api/").unwrap().base, "/api");
        assert_eq!(parse_url("http://reg").unwrap().port, 80);
        assert!(parse_url("127.0.0.1:8081")
            .unwrap_err()
            .contains("http(s)://"));
        let secure = parse_url("https://reg:8443").unwrap();
        assert!(secure.https && secure.port == 8443);
        assert_eq!(parse_url("https://reg").unwrap().port, 443);
        assert!(parse_url("http://h:99999").unwrap_err().contains("port"));
        assert!(parse_url("http://:1").unwrap_err().contains("no host"));
    }

    #[test]
    fn given_answers_plain_or_chunked_when_parsed_should_give_status_and_json() {
        let plain = b"HTTP/1.1 404 Not Found\r\ncontent-length: 38\r\n\r\n{\"error_code\":40401,\"message\":\"gone\"}";
        let answer = parse_answer(plain).unwrap();
        assert_eq!(answer.status, 404);
        assert_eq!(answer.body["error_code"], 40401);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        assert_eq!(parse_answer(chunked).unwrap().body, json!([1, 2]));
        assert!(parse_answer(b"garbage").is_err());
        assert!(parse_answer(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[test]
    fn given_odd_subjects_when_encoded_should_escape_reserved_characters() {
        assert_eq!(segment("orders-value"), "orders-value");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }
}
