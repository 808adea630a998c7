//! FileStream-like connectors: the source turns each complete line of a file into a record
//! (null key, the line as value) and stores its byte position as the source offset
//! (`{"filename": ...}` → `{"position": ...}`, Kafka's FileStream keys); the sink appends
//! each record's value as a line. Both are at-least-once: the source commits a position
//! only after every record before it is acknowledged; the sink commits consumer offsets
//! (group `connect-<name>`) only after the lines are flushed and synced to disk.
//!
//! The source applies the connector's transforms ([`crate::transforms`]) to each line (a
//! string value for `topic`); a failing one fails the task unless `errors.tolerance=all`
//! (then the line is skipped). The sink runs on the sink driver ([`crate::sink`]).

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use strom_client::ProducerRecord;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tracing::warn;

use crate::error::{ConnectError, Result};
use crate::errors::ErrorHandler;
use crate::plugins::Config;
use crate::sink::{self, SinkWriter};
use crate::transforms::{ConnectRecord, Transforms};
use crate::worker::{Control, TaskContext};

/// Wait between looks at a file that has no new complete line.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Longest line kept; a longer one fails the task (a FileStream source reading a binary
/// file by mistake must not buffer it whole).
const LINE_BYTES_MAX: usize = 1024 * 1024;

pub fn required<'a>(config: &'a Config, key: &str) -> Result<&'a str> {
    config
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ConnectError::bad_request(format!(
                "Missing required configuration \"{key}\" which has no default value."
            ))
        })
}

/// Waits while paused; false when told to stop.
pub async fn keep_running(control: &mut watch::Receiver<Control>) -> bool {
    loop {
        let state = *control.borrow_and_update();
        match state {
            Control::Run => return true,
            Control::Stop => return false,
            Control::Pause => {
                if control.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Sleeps `wait` unless the control changes first.
pub async fn idle(control: &mut watch::Receiver<Control>, wait: Duration) {
    let _ = tokio::time::timeout(wait, control.changed()).await;
}

pub fn source_offset_key(connector: &str, file: &str) -> String {
    json!([connector, {"filename": file}]).to_string()
}

pub async fn run_source(
    context: TaskContext,
    config: Config,
    mut control: watch::Receiver<Control>,
) -> Result<()> {
    let path = required(&config, "file")?.to_string();
    let topic = required(&config, "topic")?.to_string();
    let batch_max: usize = config
        .get("batch.size")
        .and_then(|b| b.parse().ok())
        .unwrap_or(2000);
    let transforms = Transforms::from_config(&config)?;
    let tolerate_all = config.get("errors.tolerance").map(|v| v.trim()) == Some("all");
    let offset_key = source_offset_key(&context.connector, &path);
    let mut position = context
        .offsets
        .get(&offset_key)
        .and_then(|v| v["position"].as_u64())
        .unwrap_or(0);
    let io = |source| ConnectError::Io {
        context: format!("read {path}"),
        source,
    };
    let mut reader = loop {
        if !keep_running(&mut control).await {
            return Ok(());
        }
        match tokio::fs::File::open(&path).await {
            Ok(mut file) => {
                file.seek(std::io::SeekFrom::Start(position))
                    .await
                    .map_err(io)?;
                break BufReader::new(file);
            }
            // As FileStream: a file that is not there yet is waited for.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                idle(&mut control, IDLE_WAIT * 5).await
            }
            Err(e) => return Err(io(e)),
        }
    };
    // Bytes of a line not yet ended by '\n'; they are read again later.
    let mut partial: Vec<u8> = Vec::new();
    while keep_running(&mut control).await {
        let mut lines: Vec<Bytes> = Vec::new();
        let mut consumed: u64 = 0;
        while lines.len() < batch_max {
            let read = reader.read_until(b'\n', &mut partial).await.map_err(io)?;
            if read == 0 || partial.last() != Some(&b'\n') {
                if partial.len() > LINE_BYTES_MAX {
                    return Err(ConnectError::bad_request(format!(
                        "a line of {path} is longer than {LINE_BYTES_MAX} bytes"
                    )));
                }
                break;
            }
            consumed += partial.len() as u64;
            let mut line = &partial[..partial.len() - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            lines.push(Bytes::copy_from_slice(line));
            partial.clear();
        }
        if lines.is_empty() {
            idle(&mut control, IDLE_WAIT).await;
            continue;
        }
        let mut deliveries = Vec::with_capacity(lines.len());
        for line in lines {
            let record = if transforms.is_empty() {
                ProducerRecord::new(topic.clone(), line)
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                match transforms.apply(ConnectRecord::source(&topic, line, now)) {
                    Ok(Some(out)) => {
                        let mut record = ProducerRecord::new(out.topic, Bytes::new());
                        record.key = out.key;
                        record.value = out.value;
                        record.headers = out.headers;
                        record.timestamp_ms = out.timestamp_ms;
                        record
                    }
                    Ok(None) => continue,
                    Err(error) if tolerate_all => {
                        warn!(connector = %context.connector, %error, "source record skipped (errors.tolerance=all)");
                        continue;
                    }
                    Err(error) => {
                        return Err(ConnectError::bad_request(format!(
                            "Tolerance exceeded in error handler: TRANSFORMATION failed: {error}"
                        )))
                    }
                }
            };
            deliveries.push(context.producer.send(record).await?);
        }
        for delivery in deliveries {
            delivery.await?;
        }
        position += consumed;
        context
            .offsets
            .put(&offset_key, Some(json!({"position": position})))
            .await?;
    }
    Ok(())
}

/// The sink's consumer group (Kafka Connect's naming), where its offsets are committed.
pub fn sink_group(connector: &str) -> String {
    format!("connect-{connector}")
}

/// This task's share of `topics`' partitions: every task-count'th of the sorted list.
pub async fn sink_partitions(
    context: &TaskContext,
    topics: &[String],
    task_count: u32,
) -> Result<Vec<(String, i32)>> {
    let mut all: Vec<(String, i32)> = Vec::new();
    for topic in topics {
        let metadata = context.client.topic_metadata(topic, true).await?;
        all.extend(
            metadata
                .partitions
                .iter()
                .map(|p| (topic.clone(), p.partition)),
        );
    }
    all.sort();
    Ok(all
        .into_iter()
        .enumerate()
        .filter(|(index, _)| (*index as u32) % task_count == context.task)
        .map(|(_, partition)| partition)
        .collect())
}

/// Appends each record's value as a line; a batch is flushed and synced to disk before the
/// driver commits its offsets.
struct FileSink {
    path: String,
    file: tokio::fs::File,
}

impl SinkWriter for FileSink {
    async fn put(
        &mut self,
        records: &[ConnectRecord],
        _errors: &ErrorHandler,
        _control: &mut watch::Receiver<Control>,
    ) -> Result<()> {
        let io = |source| ConnectError::Io {
            context: format!("write {}", self.path),
            source,
        };
        let mut buffer = Vec::new();
        for record in records {
            if let Some(value) = &record.value {
                buffer.extend_from_slice(value);
            }
            buffer.push(b'\n');
        }
        self.file.write_all(&buffer).await.map_err(io)?;
        self.file.flush().await.map_err(io)?;
        self.file.sync_data().await.map_err(io)?;
        Ok(())
    }
}

pub async fn run_sink(
    context: TaskContext,
    config: Config,
    task_count: u32,
    control: watch::Receiver<Control>,
) -> Result<()> {
    let path = required(&config, "file")?.to_string();
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
        .map_err(|source| ConnectError::Io {
            context: format!("write {path}"),
            source,
        })?;
    sink::run(
        context,
        config,
        task_count,
        control,
        FileSink { path, file },
    )
    .await
}
