//! The global updater: reads every partition of each global table's topic into the
//! instance's [`GlobalStores`], first to the end (before the instance joins its group),
//! then in the background until shutdown.

use std::sync::Arc;
use std::time::Duration;

use strom_client::{Client, Consumer, ConsumerConfig, SeekTo};
use tokio::sync::watch;

use super::{ProcessingGuarantee, StreamsConfig};
use crate::global::GlobalStores;
use crate::topology::Topology;
use crate::StreamsError;

/// Empty polls in a row after which the first read counts as caught up although the end
/// was not reached (records past an open transaction cannot be read committed yet).
const CATCH_UP_EMPTY_POLLS_MAX: u32 = 20;

/// Read the global topics to their end into `stores`, then keep reading in the
/// background until `shutdown`. Returns how many records the first read applied.
pub(super) async fn start(
    client: &Client,
    topology: &Topology,
    config: &StreamsConfig,
    stores: Arc<GlobalStores>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<u64, StreamsError> {
    if topology.globals().is_empty() {
        return Ok(0);
    }
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            max_wait: Duration::from_millis(100),
            isolation_level: if config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
                1
            } else {
                0
            },
            auto_offset_reset: Some(SeekTo::Earliest),
            ..ConsumerConfig::default()
        },
    );
    let mut assigned = Vec::new();
    for spec in topology.globals() {
        let metadata = client.topic_metadata(&spec.topic, false).await?;
        for partition in 0..metadata.partitions.len() as i32 {
            assigned.push((spec.topic.clone(), partition));
        }
    }
    consumer.assign(&assigned).await?;
    for (topic, partition) in &assigned {
        consumer.seek(topic, *partition, SeekTo::Earliest).await?;
    }
    let ends = consumer.end_offsets().await?;
    let behind = |consumer: &Consumer| {
        assigned.iter().any(|(topic, partition)| {
            let end = ends.get(&(topic.clone(), *partition)).copied().unwrap_or(0);
            consumer.position(topic, *partition).unwrap_or(0) < end
        })
    };
    let mut restored = 0u64;
    let mut empty_polls = 0;
    while behind(&consumer) {
        let records = consumer.poll().await?;
        if records.is_empty() {
            empty_polls += 1;
            if empty_polls >= CATCH_UP_EMPTY_POLLS_MAX {
                break;
            }
            continue;
        }
        empty_polls = 0;
        for record in records {
            stores.apply(
                &record.topic,
                record.key.as_deref(),
                record.value.as_deref(),
            );
            restored += 1;
        }
    }
    tracing::info!(restored, "global stores restored");
    tokio::spawn(async move {
        let mut attempt = 0;
        while !*shutdown.borrow() {
            tokio::select! {
                polled = consumer.poll() => match polled {
                    Ok(records) => {
                        attempt = 0;
                        for record in records {
                            stores.apply(&record.topic, record.key.as_deref(), record.value.as_deref());
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "global table update failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
                        attempt += 1;
                    }
                },
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(restored)
}
