//! The sink driver every sink connector runs on: it takes the task's share of the
//! `topics` partitions, seeks each to where the sink last stopped, polls, passes each
//! record through the connector's transforms ([`crate::transforms`]) under its
//! `errors.*` settings ([`crate::errors`]), hands the batch to the connector's
//! [`SinkWriter`], and then commits the next offsets to group `connect-<name>`.
//!
//! A writer either keeps its own positions (the PostgreSQL sink stores them in the
//! target database, in the same transaction as the rows) or lets the group's committed
//! offsets be the positions (file and HTTP sinks: at-least-once).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use strom_client::{groups, Client, Consumer, ConsumerConfig, ConsumerRecord, SeekTo};
use tokio::sync::watch;
use tracing::warn;

use crate::error::Result;
use crate::errors::ErrorHandler;
use crate::file_connectors::{idle, keep_running, required, sink_group, sink_partitions};
use crate::plugins::Config;
use crate::transforms::{ConnectRecord, Transforms};
use crate::worker::{Control, TaskContext};

/// How long one poll waits for records.
const POLL_WAIT: Duration = Duration::from_millis(200);

/// What a sink connector does with its records.
pub(crate) trait SinkWriter: Send {
    /// The positions this writer keeps itself, for `partitions`; `None` when the group's
    /// committed offsets are the positions.
    fn stored_offsets(
        &mut self,
        _partitions: &[(String, i32)],
    ) -> impl Future<Output = Result<Option<BTreeMap<(String, i32), i64>>>> + Send {
        async { Ok(None) }
    }

    /// Delivers one poll's records (after the transforms), in order. An error fails the
    /// task unless the writer handled it (the HTTP sink's dead letter queue).
    fn put(
        &mut self,
        records: &[ConnectRecord],
        errors: &ErrorHandler,
        control: &mut watch::Receiver<Control>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// The `topics` key as a list.
pub fn topics_of(config: &Config) -> Result<Vec<String>> {
    Ok(required(config, "topics")?
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect())
}

/// Runs one sink task with `writer` until told to stop.
pub(crate) async fn run<W: SinkWriter>(
    context: TaskContext,
    config: Config,
    task_count: u32,
    mut control: watch::Receiver<Control>,
    mut writer: W,
) -> Result<()> {
    let topics = topics_of(&config)?;
    let transforms = Transforms::from_config(&config)?;
    let errors = ErrorHandler::from_config(&context, &config)?;
    let group = sink_group(&context.connector);
    let mine = sink_partitions(&context, &topics, task_count).await?;
    let own = writer.stored_offsets(&mine).await?;
    let start: BTreeMap<(String, i32), i64> = match &own {
        Some(offsets) => offsets.clone(),
        None => groups::committed_offsets(&context.client, &group)
            .await?
            .into_iter()
            .map(|c| ((c.topic, c.partition), c.offset))
            .collect(),
    };
    // The consumer long-polls: its own connections, so the worker's producer and offset
    // commits are not queued behind its fetches.
    let mut consumer = Consumer::new(
        Client::connect(context.client.config().clone()).await?,
        ConsumerConfig {
            auto_offset_reset: Some(SeekTo::Earliest),
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(&mine).await?;
    for (topic, partition) in &mine {
        let to = match start.get(&(topic.clone(), *partition)) {
            Some(offset) => SeekTo::Offset(*offset),
            None => SeekTo::Earliest,
        };
        consumer.seek(topic, *partition, to).await?;
    }
    while keep_running(&mut control).await {
        if mine.is_empty() {
            idle(&mut control, Duration::from_secs(1)).await;
            continue;
        }
        let records = tokio::select! {
            records = consumer.poll_with_wait(POLL_WAIT) => records?,
            _ = control.changed() => continue,
        };
        if records.is_empty() {
            continue;
        }
        let mut kept = Vec::with_capacity(records.len());
        for record in &records {
            let original = ConnectRecord::from_consumer(record);
            match transforms.apply(original.clone()) {
                Ok(Some(out)) => kept.push(out),
                Ok(None) => {}
                Err(error) => {
                    errors
                        .failed(&original, crate::errors::Stage::Transformation, &error)
                        .await?
                }
            }
        }
        if !kept.is_empty() {
            writer.put(&kept, &errors, &mut control).await?;
        }
        commit(&context, &group, &records, own.is_some()).await?;
    }
    Ok(())
}

/// Commits the offsets after `records` to `group`; a failure fails the task only when the
/// group's offsets are the sink's positions.
async fn commit(
    context: &TaskContext,
    group: &str,
    records: &[ConsumerRecord],
    advisory: bool,
) -> Result<()> {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for record in records {
        next.insert(
            (record.topic.to_string(), record.partition),
            record.offset + 1,
        );
    }
    let offsets: Vec<(String, i32, i64)> = next.into_iter().map(|((t, p), o)| (t, p, o)).collect();
    let results = match groups::commit_offsets(&context.client, group, &offsets).await {
        Ok(results) => results,
        Err(error) if advisory => {
            warn!(%error, "committing the sink's group offsets failed (the sink keeps its own positions)");
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    for (topic, partition, result) in results {
        if let Err(error) = result {
            warn!(%error, %topic, partition, "sink offset commit failed");
            if !advisory {
                return Err(error.into());
            }
        }
    }
    Ok(())
}
