//! Kafka Connect's `errors.*` settings for sink connectors: what happens to a record whose
//! transformation, or conversion (the PostgreSQL sink reading its key or value as JSON),
//! fails, or, for the HTTP sink, whose delivery fails.
//!
//! - `errors.tolerance`: `none` (default) fails the task on the first bad record; `all`
//!   skips it and goes on.
//! - `errors.deadletterqueue.topic.name`: with `all`, the skipped record is produced there as
//!   it was consumed (key, value, headers).
//! - `errors.deadletterqueue.context.headers.enable` (false): add Kafka Connect's
//!   `__connect.errors.*` headers (topic, partition, offset, connector, task, stage, exception
//!   class and message).
//! - `errors.log.enable` (false): log each skipped record's error;
//!   `errors.log.include.messages` (false) adds its topic, partition and offset.

use std::sync::Arc;

use bytes::Bytes;
use strom_client::{Producer, ProducerRecord};
use tracing::warn;

use crate::error::{ConnectError, Result};
use crate::plugins::Config;
use crate::transforms::ConnectRecord;
use crate::worker::TaskContext;

/// Where in the pipeline a record failed (Kafka Connect's `Stage` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    Transformation,
    TaskPut,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::TaskPut => "TASK_PUT",
        }
    }
}

/// The `errors.*` keys this module reads, for validation.
pub const KEYS: &[&str] = &[
    "errors.tolerance",
    "errors.deadletterqueue.topic.name",
    "errors.deadletterqueue.context.headers.enable",
    "errors.log.enable",
    "errors.log.include.messages",
];

pub struct ErrorHandler {
    tolerate_all: bool,
    dead_letter_topic: Option<String>,
    context_headers: bool,
    log: bool,
    log_messages: bool,
    producer: Arc<Producer>,
    connector: String,
    task: u32,
}

fn boolean(config: &Config, key: &str) -> Result<bool> {
    match config.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" || v.is_empty() => Ok(false),
        Some(v) => Err(ConnectError::bad_request(format!(
            "Invalid value {v} for configuration {key}: Expected value to be either true or false"
        ))),
    }
}

/// The errors of the `errors.*` keys, by key (for validation).
pub fn check(config: &Config) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if let Some(v) = config.get("errors.tolerance") {
        if !matches!(v.trim(), "none" | "all" | "") {
            problems.push((
                "errors.tolerance",
                format!("Invalid value {v} for configuration errors.tolerance: String must be one of: none, all"),
            ));
        }
    }
    for key in &KEYS[2..] {
        if let Err(error) = boolean(config, key) {
            problems.push((*key, error.to_string()));
        }
    }
    problems
}

impl ErrorHandler {
    pub fn from_config(context: &TaskContext, config: &Config) -> Result<ErrorHandler> {
        if let Some((_, message)) = check(config).into_iter().next() {
            return Err(ConnectError::bad_request(message));
        }
        Ok(ErrorHandler {
            tolerate_all: config.get("errors.tolerance").map(|v| v.trim()) == Some("all"),
            dead_letter_topic: config
                .get("errors.deadletterqueue.topic.name")
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
            context_headers: boolean(config, "errors.deadletterqueue.context.headers.enable")?,
            log: boolean(config, "errors.log.enable")?,
            log_messages: boolean(config, "errors.log.include.messages")?,
            producer: context.producer.clone(),
            connector: context.connector.clone(),
            task: context.task,
        })
    }

    pub fn dead_letter_topic(&self) -> Option<&str> {
        self.dead_letter_topic.as_deref()
    }

    /// One record failed at `stage`: an error that fails the task under
    /// `errors.tolerance=none`; under `all`, logged and dead-lettered as configured.
    pub async fn failed(
        &self,
        record: &ConnectRecord,
        stage: Stage,
        error: &ConnectError,
    ) -> Result<()> {
        if !self.tolerate_all {
            return Err(ConnectError::bad_request(format!(
                "Tolerance exceeded in error handler: {} failed: {error}",
                stage.name()
            )));
        }
        if self.log {
            if self.log_messages {
                warn!(connector = %self.connector, task = self.task, stage = stage.name(), topic = %record.topic, partition = ?record.partition, offset = ?record.offset, %error, "record skipped (errors.tolerance=all)");
            } else {
                warn!(connector = %self.connector, task = self.task, stage = stage.name(), %error, "record skipped (errors.tolerance=all)");
            }
        }
        if let Some(topic) = &self.dead_letter_topic {
            self.dead_letter(
                topic,
                std::slice::from_ref(record),
                stage,
                &error.to_string(),
                self.context_headers,
            )
            .await?;
        }
        Ok(())
    }

    /// Produces `records` to `topic` as they were consumed, with the context headers when
    /// `context_headers`; returns once every one is acknowledged.
    pub async fn dead_letter(
        &self,
        topic: &str,
        records: &[ConnectRecord],
        stage: Stage,
        message: &str,
        context_headers: bool,
    ) -> Result<()> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let mut out = ProducerRecord::new(topic.to_string(), Bytes::new());
            out.value = record.value.clone();
            out.key = record.key.clone();
            out.headers = record.headers.clone();
            if context_headers {
                let text = |s: String| Some(Bytes::from(s));
                out = out
                    .with_header("__connect.errors.topic", text(record.topic.clone()))
                    .with_header(
                        "__connect.errors.partition",
                        text(record.partition.unwrap_or(-1).to_string()),
                    )
                    .with_header(
                        "__connect.errors.offset",
                        text(record.offset.unwrap_or(-1).to_string()),
                    )
                    .with_header(
                        "__connect.errors.connector.name",
                        text(self.connector.clone()),
                    )
                    .with_header("__connect.errors.task.id", text(self.task.to_string()))
                    .with_header("__connect.errors.stage", text(stage.name().to_string()))
                    .with_header(
                        "__connect.errors.exception.class.name",
                        Some(Bytes::from_static(
                            b"org.apache.kafka.connect.errors.ConnectException",
                        )),
                    )
                    .with_header(
                        "__connect.errors.exception.message",
                        text(message.to_string()),
                    );
            }
            deliveries.push(self.producer.send(out).await?);
        }
        for delivery in deliveries {
            delivery.await?;
        }
        Ok(())
    }
}
