//! Who may call the registry (issue 17, item 4): the listener's TLS handshake and HTTP
//! Basic authentication, checked through [`Access`], which the broker implements over its
//! SCRAM users and ACLs (this crate knows neither).
//!
//! Each request is one [`Operation`] on one subject or on the registry as a whole:
//! - reads (GET, HEAD; `POST /subjects/{s}` lookups and `POST /compatibility/...` checks)
//!   are [`Operation::Read`];
//! - registering, deleting, and setting a config or mode are [`Operation::Write`];
//! - `GET /subjects` lists only the subjects the user may read;
//! - the subject is the `{s}` of `/subjects/{s}...`, `/config/{s}`, `/mode/{s}` and
//!   `/compatibility/subjects/{s}...`; every other route is registry-wide (`None`).
//!
//! Answers: no or wrong credentials 401 (`error_code` 401, with `WWW-Authenticate: Basic`),
//! an operation the ACLs refuse 403 (`error_code` 40301), as Confluent's registry does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::Method;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{percent_decode, Call};
use crate::error::RegistryError;

/// A connection after the listener's handshake (TLS, or the TCP stream itself).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The listener's TLS handshake: a TCP connection in, the stream to speak HTTP over out.
pub type Handshake = Arc<
    dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Io>>> + Send>>
        + Send
        + Sync,
>;

/// The client side of the listeners' TLS, for writes forwarded to another broker's
/// registry: a TCP connection to `host` in, the stream to speak HTTP over out.
pub type Connect = Arc<
    dyn Fn(TcpStream, String) -> Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Io>>> + Send>>
        + Send
        + Sync,
>;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Write,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "Read",
            Operation::Write => "Write",
        }
    }
}

/// The broker's users and permissions, as the registry needs them.
pub trait Access: Send + Sync {
    /// Whether `password` is `user`'s.
    fn authenticate(&self, user: &str, password: &str) -> bool;
    /// Whether `user`, calling from `host`, may perform `operation` on `subject` (`None`:
    /// the registry as a whole).
    fn authorize(
        &self,
        user: &str,
        host: &str,
        operation: Operation,
        subject: Option<&str>,
    ) -> bool;
}

/// How the listener serves: TLS or not, who may call. The default is plain HTTP, open.
#[derive(Clone, Default)]
pub struct Serving {
    pub handshake: Option<Handshake>,
    /// How to reach the other brokers' registries when they speak HTTPS.
    pub connect: Option<Connect>,
    /// `None`: no authentication (anyone may call, as without `authentication.method`).
    pub access: Option<Arc<dyn Access>>,
}

/// The operation and subject of a call.
pub(crate) fn classify(call: &Call) -> (Operation, Option<String>) {
    let segments: Vec<String> = call
        .path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let subject = match segments.as_slice() {
        ["subjects", subject, ..] | ["config", subject] | ["mode", subject] => {
            Some(subject.to_string())
        }
        ["compatibility", "subjects", subject, ..] => Some(subject.to_string()),
        _ => None,
    };
    let operation = match (&call.method, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, _) => Operation::Read,
        (&Method::POST, ["subjects", _]) | (&Method::POST, ["compatibility", ..]) => {
            Operation::Read
        }
        _ => Operation::Write,
    };
    (operation, subject)
}

/// `user:password` of an `Authorization: Basic ...` header.
fn basic_credentials(header: Option<&HeaderValue>) -> Option<(String, String)> {
    let value = header?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Standard base64 with padding (RFC 4648), as HTTP Basic uses it.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut group = 0u32;
        for &c in &chunk[..4 - padding] {
            group = (group << 6) | value(c)?;
        }
        group <<= 6 * padding as u32;
        let decoded = [(group >> 16) as u8, (group >> 8) as u8, group as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

/// `GET /subjects` lists only the subjects the user may read (as Confluent's registry does
/// with its authorizer); every other answer is left as is.
pub(crate) fn filter_subjects(
    serving: &Serving,
    user: Option<&str>,
    peer: std::net::IpAddr,
    call: &Call,
    value: serde_json::Value,
) -> serde_json::Value {
    let (Some(access), Some(user)) = (&serving.access, user) else {
        return value;
    };
    if call.path.trim_end_matches('/') != "/subjects" {
        return value;
    }
    let serde_json::Value::Array(subjects) = value else {
        return value;
    };
    let host = peer.to_string();
    serde_json::Value::Array(
        subjects
            .into_iter()
            .filter(|subject| {
                subject.as_str().is_some_and(|subject| {
                    access.authorize(user, &host, Operation::Read, Some(subject))
                })
            })
            .collect(),
    )
}

/// Authenticates and authorises a call; `Ok` (with the user, when authentication is on)
/// when it may go on.
pub(crate) fn check(
    serving: &Serving,
    peer: std::net::IpAddr,
    call: &Call,
) -> Result<Option<String>, RegistryError> {
    let Some(access) = &serving.access else {
        return Ok(None);
    };
    let (user, password) =
        basic_credentials(call.authorization.as_ref()).ok_or(RegistryError::Unauthenticated)?;
    if !access.authenticate(&user, &password) {
        return Err(RegistryError::Unauthenticated);
    }
    let (operation, subject) = classify(call);
    if access.authorize(&user, &peer.to_string(), operation, subject.as_deref()) {
        return Ok(Some(user));
    }
    Err(RegistryError::Forbidden {
        user,
        operation: operation.as_str(),
        resource: match subject {
            Some(subject) => format!("Subject: {subject}"),
            None => "the registry".to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use hyper::Method;

    use super::super::Query;
    use super::*;

    fn call(method: Method, path: &str, authorization: Option<&str>) -> Call {
        Call {
            method,
            path: path.to_string(),
            query: Query::parse(""),
            path_and_query: path.to_string(),
            content_type: None,
            body: Bytes::new(),
            forwarded: false,
            authorization: authorization.map(|a| HeaderValue::from_str(a).unwrap()),
        }
    }

    #[test]
    fn given_routes_when_classified_should_name_operation_and_subject() {
        let cases = [
            (Method::GET, "/subjects", Operation::Read, None),
            (
                Method::GET,
                "/subjects/a%2Fb/versions/1",
                Operation::Read,
                Some("a/b"),
            ),
            (Method::POST, "/subjects/s", Operation::Read, Some("s")),
            (
                Method::POST,
                "/subjects/s/versions",
                Operation::Write,
                Some("s"),
            ),
            (Method::DELETE, "/subjects/s", Operation::Write, Some("s")),
            (Method::PUT, "/config/s", Operation::Write, Some("s")),
            (Method::PUT, "/config", Operation::Write, None),
            (Method::PUT, "/mode", Operation::Write, None),
            (Method::GET, "/schemas/ids/1", Operation::Read, None),
            (
                Method::POST,
                "/compatibility/subjects/s/versions/latest",
                Operation::Read,
                Some("s"),
            ),
        ];
        for (method, path, operation, subject) in cases {
            let got = classify(&call(method.clone(), path, None));
            assert_eq!(
                got,
                (operation, subject.map(str::to_string)),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn given_authorization_headers_when_parsed_should_take_only_valid_basic_ones() {
        let parse = |text: &str| basic_credentials(Some(&HeaderValue::from_str(text).unwrap()));
        // "alice:s3cr:et" and "bob:" in base64.
        assert_eq!(
            parse("Basic YWxpY2U6czNjcjpldA=="),
            Some(("alice".into(), "s3cr:et".into()))
        );
        assert_eq!(parse("basic Ym9iOg=="), Some(("bob".into(), String::new())));
        assert_eq!(parse("Bearer abc"), None);
        assert_eq!(parse("Basic"), None);
        assert_eq!(parse("Basic !!!!"), None);
        assert_eq!(parse("Basic YWxpY2U"), None, "not padded");
        assert_eq!(parse("Basic YQ==YQ=="), None, "padding inside");
        assert_eq!(parse("Basic bm9jb2xvbg=="), None, "no colon");
        assert_eq!(basic_credentials(None), None);
    }

    struct OnlyAlice;

    impl Access for OnlyAlice {
        fn authenticate(&self, user: &str, password: &str) -> bool {
            user == "alice" && password == "pw"
        }
        fn authorize(&self, _: &str, _: &str, operation: Operation, subject: Option<&str>) -> bool {
            operation == Operation::Read || subject == Some("mine")
        }
    }

    #[test]
    fn given_access_when_checked_should_answer_401_or_403_as_confluent() {
        let serving = Serving {
            handshake: None,
            connect: None,
            access: Some(Arc::new(OnlyAlice)),
        };
        let alice = Some("Basic YWxpY2U6cHc=");
        let wrong = Some("Basic YWxpY2U6bm8=");
        let local = std::net::IpAddr::from([127, 0, 0, 1]);
        let check_codes = |c: &Call| check(&serving, local, c).map_err(|e| e.codes());
        assert_eq!(
            check_codes(&call(Method::GET, "/subjects", None)),
            Err((401, 401))
        );
        assert_eq!(
            check_codes(&call(Method::GET, "/subjects", wrong)),
            Err((401, 401))
        );
        assert!(check_codes(&call(Method::GET, "/subjects", alice)).is_ok());
        assert_eq!(
            check_codes(&call(Method::POST, "/subjects/mine/versions", alice)),
            Ok(Some("alice".to_string()))
        );
        assert_eq!(
            check_codes(&call(Method::POST, "/subjects/other/versions", alice)),
            Err((403, 40301))
        );
        assert!(check(
            &Serving::default(),
            local,
            &call(Method::PUT, "/config", None)
        )
        .is_ok());
    }
}
