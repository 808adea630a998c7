//! The controller-to-controller wire format: length-prefixed, versioned frames of JSON.
//!
//! ```text
//! length   u32 BE   bytes that follow: 2..=RAFT_FRAME_BYTES_MAX
//! version  u8       RAFT_WIRE_VERSION
//! kind     u8       FrameKind (a response has the request's kind | 0x80)
//! payload  [u8]     JSON: an openraft request, or `Result<response, RaftError>`;
//!                   for kind 4 (Forward) a controller operation, or its
//!                   `Result<reply, error>` (see `super::forward`)
//! ```
//!
//! The length is checked before anything is buffered; a frame outside the bounds, of
//! another version or of an unknown kind closes the connection. One request is in flight
//! per connection: the answer to the last request is the next frame. The codec knows
//! nothing of Raft beyond the kind byte.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::raft::error::RaftQuorumError;
use crate::raft::log_store::RAFT_LOG_FRAME_BYTES_MAX;

/// The wire version this node speaks; a peer's frame with another version is refused.
pub const RAFT_WIRE_VERSION: u8 = 1;
/// Largest frame (after the length field): one AppendEntries carrying the largest entry,
/// or one snapshot chunk ([`super::RAFT_SNAPSHOT_CHUNK_BYTES`]), plus envelope. A larger
/// AppendEntries is split by openraft (PayloadTooLarge), down to one entry per request.
pub const RAFT_FRAME_BYTES_MAX: usize = RAFT_LOG_FRAME_BYTES_MAX + 64 * 1024;
const LENGTH_BYTES: usize = 4;
const HEADER_AFTER_LENGTH_BYTES: usize = 2;
const RESPONSE_FLAG: u8 = 0x80;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
    /// A controller operation a follower forwards to the leader (see `super::forward`).
    Forward,
}

impl FrameKind {
    fn request_byte(self) -> u8 {
        match self {
            FrameKind::AppendEntries => 1,
            FrameKind::Vote => 2,
            FrameKind::InstallSnapshot => 3,
            FrameKind::Forward => 4,
        }
    }

    fn from_request_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(FrameKind::AppendEntries),
            2 => Some(FrameKind::Vote),
            3 => Some(FrameKind::InstallSnapshot),
            4 => Some(FrameKind::Forward),
            _ => None,
        }
    }
}

/// Encodes `value` as a request (`response == false`) or response frame of `kind`.
pub(crate) fn encode_frame(
    kind: FrameKind,
    response: bool,
    value: &impl Serialize,
) -> Result<Vec<u8>, RaftQuorumError> {
    let mut frame = vec![0; LENGTH_BYTES];
    frame.push(RAFT_WIRE_VERSION);
    frame.push(kind.request_byte() | if response { RESPONSE_FLAG } else { 0 });
    serde_json::to_writer(&mut frame, value).map_err(RaftQuorumError::Encode)?;
    let length = frame.len() - LENGTH_BYTES;
    if length > RAFT_FRAME_BYTES_MAX {
        return Err(RaftQuorumError::FrameSize {
            declared_bytes: length as u64,
            limit_bytes: RAFT_FRAME_BYTES_MAX,
        });
    }
    let length = u32::try_from(length).expect("bounded by RAFT_FRAME_BYTES_MAX");
    frame[..LENGTH_BYTES].copy_from_slice(&length.to_be_bytes());
    Ok(frame)
}

/// Reads one frame: `Ok(None)` on a clean end of stream before a frame starts.
/// `Ok(Some((kind, response, payload)))` otherwise.
pub(crate) async fn read_frame<R: AsyncReadExt + Unpin>(
    reader: &mut R,
    peer: &str,
) -> Result<Option<(FrameKind, bool, Vec<u8>)>, RaftQuorumError> {
    let peer_io = |source| RaftQuorumError::PeerIo {
        peer: peer.to_string(),
        source,
    };
    let mut length = [0; LENGTH_BYTES];
    let mut filled = 0;
    while filled < LENGTH_BYTES {
        let read = reader.read(&mut length[filled..]).await.map_err(peer_io)?;
        if read == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(peer_io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        filled += read;
    }
    let length = u32::from_be_bytes(length) as usize;
    if !(HEADER_AFTER_LENGTH_BYTES..=RAFT_FRAME_BYTES_MAX).contains(&length) {
        return Err(RaftQuorumError::FrameSize {
            declared_bytes: length as u64,
            limit_bytes: RAFT_FRAME_BYTES_MAX,
        });
    }
    let mut header = [0; HEADER_AFTER_LENGTH_BYTES];
    reader.read_exact(&mut header).await.map_err(peer_io)?;
    let [version, kind_byte] = header;
    if version != RAFT_WIRE_VERSION {
        return Err(RaftQuorumError::WireVersion {
            found: version,
            expected: RAFT_WIRE_VERSION,
        });
    }
    let kind = FrameKind::from_request_byte(kind_byte & !RESPONSE_FLAG)
        .ok_or(RaftQuorumError::UnknownFrameKind { kind: kind_byte })?;
    let mut payload = vec![0; length - HEADER_AFTER_LENGTH_BYTES];
    reader.read_exact(&mut payload).await.map_err(peer_io)?;
    Ok(Some((kind, kind_byte & RESPONSE_FLAG != 0, payload)))
}

pub(crate) fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, RaftQuorumError> {
    serde_json::from_slice(payload).map_err(RaftQuorumError::Decode)
}

pub(crate) async fn write_frame<W: AsyncWriteExt + Unpin>(
    writer: &mut W,
    frame: &[u8],
    peer: &str,
) -> Result<(), RaftQuorumError> {
    writer
        .write_all(frame)
        .await
        .map_err(|source| RaftQuorumError::PeerIo {
            peer: peer.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_encoded_frame_when_read_back_should_round_trip() {
        let frame = encode_frame(FrameKind::Vote, true, &vec![1u32, 2, 3]).unwrap();
        let mut reader = &frame[..];
        let (kind, response, payload) = read_frame(&mut reader, "test").await.unwrap().unwrap();
        assert_eq!((kind, response), (FrameKind::Vote, true));
        assert_eq!(decode_payload::<Vec<u32>>(&payload).unwrap(), vec![1, 2, 3]);
        assert!(read_frame(&mut reader, "test").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn given_hostile_headers_when_read_should_refuse_before_buffering() {
        let huge = [0xff, 0xff, 0xff, 0xff, RAFT_WIRE_VERSION, 1];
        assert!(matches!(
            read_frame(&mut &huge[..], "test").await,
            Err(RaftQuorumError::FrameSize { .. })
        ));
        let version = [0, 0, 0, 2, 9, 1];
        assert!(matches!(
            read_frame(&mut &version[..], "test").await,
            Err(RaftQuorumError::WireVersion { found: 9, .. })
        ));
        let kind = [0, 0, 0, 2, RAFT_WIRE_VERSION, 0x7f];
        assert!(matches!(
            read_frame(&mut &kind[..], "test").await,
            Err(RaftQuorumError::UnknownFrameKind { kind: 0x7f })
        ));
        let torn = [0, 0, 0, 9, RAFT_WIRE_VERSION, 1, b'{'];
        assert!(matches!(
            read_frame(&mut &torn[..], "test").await,
            Err(RaftQuorumError::PeerIo { .. })
        ));
    }
}
