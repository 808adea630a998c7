//! The console's message browser: records of one partition from an offset or a timestamp,
//! decoded from the bytes stored in the partition log.
//!
//! Not the hot path, and bounded: at most [`BROWSE_BYTES_MAX`] bytes of batches are read
//! (whole batches, from as few segment reads as it takes), at most [`LIMIT_MAX`] records
//! are returned, and each key, value and header value is cut at [`FIELD_BYTES_MAX`] (the
//! record says how long it really is). The partition lock is held only to locate a file
//! range; the bytes are read after it is released. Control batches (transaction markers)
//! are skipped.

use base64::Engine as _;
use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use strom_protocol::batch::{batch_size_bytes, BatchView};
use strom_protocol::record::decode_batch;
use strom_storage::ReadError;

use super::query::Query;
use super::{json_response, HttpError, HttpResponse};
use crate::state::Broker;

/// Most bytes of batches read for one browse request.
pub const BROWSE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Bytes asked of the log per read.
const READ_BYTES: u32 = 1024 * 1024;
/// Most records returned.
pub const LIMIT_MAX: i64 = 200;
const LIMIT_DEFAULT: i64 = 20;
/// Keys, values and header values longer than this are cut.
pub const FIELD_BYTES_MAX: usize = 64 * 1024;

#[derive(Serialize)]
struct Field {
    /// Base64 of the (possibly cut) bytes.
    base64: String,
    /// The field's full length.
    size: usize,
    truncated: bool,
}

fn field(bytes: &Option<Bytes>) -> Option<Field> {
    bytes.as_ref().map(|bytes| {
        let cut = &bytes[..bytes.len().min(FIELD_BYTES_MAX)];
        Field {
            base64: base64::engine::general_purpose::STANDARD.encode(cut),
            size: bytes.len(),
            truncated: cut.len() < bytes.len(),
        }
    })
}

#[derive(Serialize)]
struct HeaderOut {
    /// Header keys are strings in Kafka; invalid UTF-8 is shown lossily.
    key: String,
    value: Option<Field>,
}

#[derive(Serialize)]
struct MessageOut {
    offset: i64,
    timestamp_ms: i64,
    /// `CreateTime` or `LogAppendTime`.
    timestamp_type: &'static str,
    key: Option<Field>,
    value: Option<Field>,
    headers: Vec<HeaderOut>,
}

#[derive(Serialize)]
struct Browse {
    topic: String,
    partition: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    /// First offset asked for (after resolving a timestamp and clamping to the log).
    start_offset: i64,
    /// Offset to ask for to continue after the returned records.
    next_offset: i64,
    messages: Vec<MessageOut>,
}

/// `GET /api/topics/{name}/messages?partition=0&offset=N|timestamp_ms=T&limit=20`. With
/// neither offset nor timestamp it shows the last `limit` records.
pub fn messages(
    broker: &Broker,
    topic_name: &str,
    query: &Query,
) -> Result<HttpResponse, HttpError> {
    let image = broker.image();
    let topic = image
        .topic(topic_name)
        .ok_or_else(|| HttpError::not_found(format!("no topic named `{topic_name}`")))?;
    let index = query.number("partition", 0, 0, i32::MAX as i64)? as i32;
    let limit = query.number("limit", LIMIT_DEFAULT, 1, LIMIT_MAX)? as usize;
    let offset = query.optional_number("offset", i64::MIN, i64::MAX)?;
    let timestamp_ms = query.optional_number("timestamp_ms", i64::MIN, i64::MAX)?;
    let partition = broker
        .partitions()
        .get(topic.topic_id, index)
        .ok_or_else(|| {
            HttpError::not_found(format!("partition {topic_name}-{index} is not hosted here"))
        })?;

    let (log_start, log_end, start) = {
        let log = partition.log.lock();
        let log_start = log.log_start_offset();
        let log_end = log.log_end_offset();
        let start = match (offset, timestamp_ms) {
            (Some(offset), _) => offset,
            (None, Some(timestamp_ms)) => match log.offset_for_timestamp(timestamp_ms) {
                Ok(Some(found)) => found.offset,
                Ok(None) => log_end,
                Err(error) => {
                    return Err(HttpError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot search {topic_name}-{index} by time: {error}"),
                    ))
                }
            },
            (None, None) => log_end.saturating_sub(limit as i64),
        };
        (log_start, log_end, start.clamp(log_start, log_end))
    };

    let mut messages = Vec::new();
    let mut next = start;
    let mut bytes_read = 0usize;
    while messages.len() < limit && next < log_end && bytes_read < BROWSE_BYTES_MAX {
        let range = {
            let log = partition.log.lock();
            match log.read(next, READ_BYTES, log.log_end_offset(), true) {
                Ok(info) => info.records,
                // Retention moved the start past us: continue from the new start.
                Err(ReadError::OffsetOutOfRange { log_start, .. }) if next < log_start => {
                    next = log_start;
                    continue;
                }
                Err(error) => {
                    return Err(HttpError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot read {topic_name}-{index} at offset {next}: {error}"),
                    ))
                }
            }
        };
        let Some(range) = range else { break };
        if range.length as usize > BROWSE_BYTES_MAX {
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the batch at offset {next} is {} bytes, more than the browser reads ({BROWSE_BYTES_MAX})",
                    range.length
                ),
            ));
        }
        let data = range.read_to_bytes().map_err(|error| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {topic_name}-{index}: {error}"),
            )
        })?;
        bytes_read += data.len();
        let before = next;
        let mut position = 0;
        while let Some(size) = batch_size_bytes(&data[position..]) {
            if position + size > data.len() || messages.len() >= limit {
                break;
            }
            let view = BatchView::parse(&data[position..position + size]).map_err(|error| {
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("stored batch at offset {next} does not parse: {error}"),
                )
            })?;
            position += size;
            if view.is_control() {
                next = next.max(view.next_offset());
                continue;
            }
            let records = decode_batch(&view).map_err(|error| {
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "stored batch at offset {} does not decode: {error}",
                        view.base_offset()
                    ),
                )
            })?;
            for record in records {
                if record.offset < next {
                    continue;
                }
                if messages.len() >= limit {
                    break;
                }
                next = record.offset + 1;
                messages.push(MessageOut {
                    offset: record.offset,
                    timestamp_ms: record.timestamp_ms,
                    timestamp_type: if record.log_append_time {
                        "LogAppendTime"
                    } else {
                        "CreateTime"
                    },
                    key: field(&record.key),
                    value: field(&record.value),
                    headers: record
                        .headers
                        .iter()
                        .map(|header| HeaderOut {
                            key: String::from_utf8_lossy(&header.key).into_owned(),
                            value: field(&header.value),
                        })
                        .collect(),
                });
            }
            if messages.len() < limit {
                next = next.max(view.next_offset());
            }
        }
        if next == before {
            // Nothing decodable moved us forward; stop rather than loop.
            break;
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &Browse {
            topic: topic_name.to_string(),
            partition: index,
            log_start_offset: log_start,
            log_end_offset: log_end,
            start_offset: start,
            next_offset: next,
            messages,
        },
    ))
}
