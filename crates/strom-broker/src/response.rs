//! Responses as a list of parts: encoded bytes and file ranges.
//!
//! A fetch response's records are byte ranges of segment files; the connection writes them
//! with `sendfile(2)` so record bytes never enter user space on the way out. Everything else
//! is encoded into memory with the `kafka-protocol` codecs.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use strom_storage::FileRange;

/// A response that could not be encoded: a bug in a handler (a field set that the
/// version cannot carry), never a client's fault.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{version} response: {source}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub version: i16,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl EncodeError {
    fn new(
        api_key: ApiKey,
        version: i16,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        EncodeError {
            api_key,
            version,
            source: source.into(),
        }
    }
}

/// One piece of a response on the wire.
#[derive(Clone)]
pub enum ResponsePart {
    Bytes(Bytes),
    File(FileRange),
}

impl ResponsePart {
    pub fn len(&self) -> usize {
        match self {
            ResponsePart::Bytes(bytes) => bytes.len(),
            ResponsePart::File(range) => range.length as usize,
        }
    }
}

/// A whole response frame, size prefix included, ready to write.
pub struct ResponseFrame {
    pub parts: Vec<ResponsePart>,
}

impl ResponseFrame {
    pub fn size_bytes(&self) -> usize {
        self.parts.iter().map(ResponsePart::len).sum()
    }

    /// Joins the parts into memory (reading file ranges). For tests and TLS, not the
    /// plaintext hot path.
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        let mut out = BytesMut::with_capacity(self.size_bytes());
        for part in &self.parts {
            match part {
                ResponsePart::Bytes(bytes) => out.put_slice(bytes),
                ResponsePart::File(range) => out.put_slice(&range.read_to_bytes()?),
            }
        }
        Ok(out.freeze())
    }
}

/// The response header version for `api_key` at `version`. ApiVersions always answers with
/// header v0, even at v3+, so clients can parse it before they know what we support.
pub fn response_header_version(api_key: ApiKey, version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    }
}

/// Encodes `body` at `version` into a complete frame: size, header, body.
pub fn encode_frame<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<ResponseFrame, EncodeError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = response_header_version(api_key, version);
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| EncodeError::new(api_key, version, e))?;
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError::new(api_key, version, e))?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(ResponseFrame {
        parts: vec![ResponsePart::Bytes(buf.freeze())],
    })
}
