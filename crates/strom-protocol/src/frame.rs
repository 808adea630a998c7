//! Request framing: a 4-byte big-endian size, then the request header, then the body.
//!
//! The size is checked against a maximum before a byte of the frame is buffered, so a
//! peer cannot make the broker allocate more than that per frame.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

/// Kafka's `socket.request.max.bytes` default.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
/// A frame must hold at least api key, api version and correlation id.
pub const FRAME_BYTES_MIN: usize = 8;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame size {size_bytes} is outside 8..={max_bytes}")]
    BadSize { size_bytes: i64, max_bytes: usize },
    #[error("unknown api key {api_key}")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("request header for api key {api_key} v{api_version} is malformed: {reason}")]
    BadHeader {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
        reason: String,
    },
}

/// Checks a frame's declared size before anything is read. Returns it as a length.
pub fn check_frame_size(size: i32, max_bytes: usize) -> Result<usize, FrameError> {
    if size < FRAME_BYTES_MIN as i32 || size as i64 > max_bytes as i64 {
        return Err(FrameError::BadSize {
            size_bytes: size as i64,
            max_bytes,
        });
    }
    Ok(size as usize)
}

/// The fixed start of every request header, readable from any frame of 8+ bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn peek_header_prefix(frame: &[u8]) -> Option<HeaderPrefix> {
    if frame.len() < FRAME_BYTES_MIN {
        return None;
    }
    Some(HeaderPrefix {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes(frame[4..8].try_into().expect("4 bytes")),
    })
}

/// A request split into its decoded header and the raw body.
#[derive(Debug)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// Decodes the header of a frame (without its size prefix). The version is not checked
/// against what we serve: that is the router's job, so it can answer UNSUPPORTED_VERSION.
/// Versions outside what the codec knows decode with the nearest header version.
pub fn decode_request_header(mut frame: Bytes) -> Result<RequestFrame, FrameError> {
    let prefix = peek_header_prefix(&frame).ok_or(FrameError::BadSize {
        size_bytes: frame.len() as i64,
        max_bytes: FRAME_BYTES_MAX_DEFAULT,
    })?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|_| FrameError::UnknownApiKey {
        api_key: prefix.api_key,
        correlation_id: prefix.correlation_id,
    })?;
    let range = api_key.valid_versions();
    let codec_version = prefix.api_version.clamp(range.min, range.max);
    let header_version = api_key.request_header_version(codec_version);
    let bad = |reason: String| FrameError::BadHeader {
        api_key: prefix.api_key,
        api_version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        reason,
    };
    // Header v1/v2 carry a nullable INT16-length client id; check it fits before decoding.
    if header_version >= 1 {
        if frame.len() < 10 {
            return Err(bad("missing client id".into()));
        }
        let length = i16::from_be_bytes([frame[8], frame[9]]);
        if length > 0 && 10 + length as usize > frame.len() {
            return Err(bad(format!("client id length {length} exceeds frame")));
        }
    }
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|error| bad(error.to_string()))?;
    Ok(RequestFrame {
        api_key,
        header,
        body: frame.copy_to_bytes(frame.remaining()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    #[test]
    fn given_sizes_outside_bounds_when_checked_should_reject() {
        assert!(check_frame_size(-1, 1000).is_err());
        assert!(check_frame_size(3, 1000).is_err());
        assert!(check_frame_size(1001, 1000).is_err());
        assert_eq!(check_frame_size(1000, 1000).expect("ok"), 1000);
    }

    #[test]
    fn given_v1_header_when_decoded_should_split_body() {
        let mut frame = BytesMut::new();
        frame.put_i16(3); // Metadata
        frame.put_i16(1);
        frame.put_i32(77);
        frame.put_i16(3);
        frame.put_slice(b"cli");
        frame.put_slice(b"BODY");
        let request = decode_request_header(frame.freeze()).expect("decode");
        assert_eq!(request.api_key, ApiKey::Metadata);
        assert_eq!(request.header.correlation_id, 77);
        assert_eq!(request.header.client_id.as_deref(), Some("cli"));
        assert_eq!(&request.body[..], b"BODY");
    }

    #[test]
    fn given_client_id_longer_than_frame_when_decoded_should_error() {
        let mut frame = BytesMut::new();
        frame.put_i16(3);
        frame.put_i16(1);
        frame.put_i32(1);
        frame.put_i16(i16::MAX);
        frame.put_slice(b"x");
        assert!(matches!(
            decode_request_header(frame.freeze()),
            Err(FrameError::BadHeader {
                correlation_id: 1,
                ..
            })
        ));
    }

    #[test]
    fn given_unknown_api_key_when_decoded_should_name_it() {
        let mut frame = BytesMut::new();
        frame.put_i16(999);
        frame.put_i16(0);
        frame.put_i32(5);
        assert!(matches!(
            decode_request_header(frame.freeze()),
            Err(FrameError::UnknownApiKey {
                api_key: 999,
                correlation_id: 5
            })
        ));
    }
}
