//! The broker side of tiered storage (`strom-tiered`): which topics are tiered, the
//! remote log manager task (copy closed segments of led partitions, then local
//! retention), and fetch/ListOffsets answers below the local log start.
//!
//! A topic is tiered when the broker has `remote.log.storage.system.enable=true` and the
//! topic `remote.storage.enable=true`. For such a topic `retention.ms`/`retention.bytes`
//! apply to the whole partition: the leader deletes remote segments by them (the size
//! counting remote segments plus local data not copied yet), and the local log's own
//! retention deletes local ones. `local.retention.ms` / `local.retention.bytes` (-2: the
//! same as retention.*) delete local segments once, and only once, they are copied.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_controller::MetadataImage;
use strom_tiered::{PartitionId, Tiered, TieredConfig, TieredError};
use tracing::{info, warn};
use uuid::Uuid;

use crate::partition::Partition;
use crate::state::Broker;

/// Directory under `log.dirs` holding the chunk cache.
pub const CACHE_DIR: &str = "remote-log-cache";
/// A failing partition waits at most this many task intervals before its next try.
const BACKOFF_INTERVALS_MAX: u32 = 10;

/// The remote tier of this process's broker, set once by [`start`]. (A process static
/// rather than a `Broker` field only to keep this change off `state.rs` while another
/// change rewrote it; one broker per process is what the binary runs.)
static TIERED: OnceLock<Arc<Tiered>> = OnceLock::new();

/// The remote tier, when this broker has tiered storage on and it started.
pub fn active(broker: &Broker) -> Option<&'static Arc<Tiered>> {
    if broker.config().remote_log.system_enable {
        TIERED.get()
    } else {
        None
    }
}

/// Starts tiered storage when `remote.log.storage.system.enable=true`: the remote tier
/// and its manager task (needs a tokio runtime).
pub fn start(broker: &Arc<Broker>) -> Result<(), TieredError> {
    let Some(tiered) = build(broker.config())? else {
        return Ok(());
    };
    if TIERED.set(tiered.clone()).is_err() {
        return Err(TieredError::Config {
            key: "remote.log.storage.system.enable",
            reason: "tiered storage already started in this process".into(),
        });
    }
    spawn(broker.clone(), tiered);
    Ok(())
}

/// Builds the remote tier from the broker config; `None` when tiered storage is off.
/// Credentials left empty come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_REGION`.
pub fn build(config: &crate::config::BrokerConfig) -> Result<Option<Arc<Tiered>>, TieredError> {
    let settings = &config.remote_log;
    if !settings.system_enable {
        return Ok(None);
    }
    let or_env = |value: &str, variable: &str, default: &str| {
        if value.is_empty() {
            std::env::var(variable).unwrap_or_else(|_| default.to_string())
        } else {
            value.to_string()
        }
    };
    Tiered::new(TieredConfig {
        endpoint: settings.endpoint.clone(),
        bucket: settings.bucket.clone(),
        prefix: settings.prefix.clone(),
        region: or_env(&settings.region, "AWS_REGION", "us-east-1"),
        access_key_id: or_env(&settings.access_key_id, "AWS_ACCESS_KEY_ID", ""),
        secret_access_key: or_env(&settings.secret_access_key, "AWS_SECRET_ACCESS_KEY", ""),
        cache_dir: config.log_dirs.join(CACHE_DIR),
        cache_bytes: settings.chunk_cache_bytes,
        chunk_bytes: settings.chunk_bytes,
    })
    .map(Some)
}

/// Whether `topic`'s closed segments go to the remote tier.
pub fn is_tiered(broker: &Broker, image: &MetadataImage, topic: &str) -> bool {
    broker.config().remote_log.system_enable
        && image
            .topic(topic)
            .and_then(|found| found.configs.get("remote.storage.enable"))
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

fn partition_id(partition: &Partition) -> PartitionId {
    PartitionId {
        topic: partition.topic.clone(),
        topic_id: partition.topic_id,
        partition: partition.index,
    }
}

/// `local.retention.{ms,bytes}` of a topic, -2 meaning `retention.{ms,bytes}` (Kafka).
fn local_retention(image: &MetadataImage, partition: &Partition) -> (i64, i64) {
    let log = partition.log.lock();
    let (retention_ms, retention_bytes) = (log.config().retention_ms, log.config().retention_bytes);
    drop(log);
    let configs = image.topic(&partition.topic).map(|topic| &topic.configs);
    let number = |key: &str| {
        configs
            .and_then(|configs| configs.get(key))
            .and_then(|value| value.trim().parse::<i64>().ok())
            .unwrap_or(-2)
    };
    let pick = |local: i64, total: i64| if local == -2 { total } else { local };
    (
        pick(number("local.retention.ms"), retention_ms),
        pick(number("local.retention.bytes"), retention_bytes),
    )
}

/// Per partition: the leader epoch last seen leading, failures in a row, next try.
#[derive(Default)]
struct PartitionTask {
    leader_epoch: Option<i32>,
    failures: u32,
    not_before: Option<Instant>,
}

/// The remote log manager: every `remote.log.manager.task.interval.ms`, each led tiered
/// partition copies its closed segments below the high watermark, oldest first, deletes
/// remote segments by total retention, then drops local copies by local retention. A follower applies local retention too, below
/// what its leader has copied (re-read from the bucket each round). A failed copy keeps
/// the local data and is retried with exponential backoff.
fn spawn(broker: Arc<Broker>, tiered: Arc<Tiered>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = tiered.s3().create_bucket().await {
            warn!(%error, bucket = tiered.s3().bucket(), "cannot create the remote storage bucket; copies retry");
        }
        let interval = Duration::from_millis(broker.config().remote_log.task_interval_ms as u64);
        let mut tasks: HashMap<(Uuid, i32), PartitionTask> = HashMap::new();
        let mut every = tokio::time::interval(interval);
        loop {
            every.tick().await;
            let image = broker.image();
            let partitions: Vec<Arc<Partition>> = broker
                .partitions()
                .all()
                .into_iter()
                .filter(|partition| is_tiered(&broker, &image, &partition.topic))
                .collect();
            tasks.retain(|key, _| partitions.iter().any(|p| (p.topic_id, p.index) == *key));
            for partition in partitions {
                let task = tasks
                    .entry((partition.topic_id, partition.index))
                    .or_default();
                if task.not_before.is_some_and(|at| Instant::now() < at) {
                    continue;
                }
                match run_partition(&tiered, &image, &partition, task).await {
                    Ok(()) => {
                        task.failures = 0;
                        task.not_before = None;
                    }
                    Err(error) => {
                        task.failures = task.failures.saturating_add(1);
                        let intervals = 1u32 << task.failures.min(4).saturating_sub(1);
                        let wait = interval * intervals.min(BACKOFF_INTERVALS_MAX);
                        task.not_before = Some(Instant::now() + wait);
                        warn!(
                            topic = %partition.topic,
                            partition = partition.index,
                            failures = task.failures,
                            retry_in_ms = wait.as_millis() as u64,
                            %error,
                            "remote storage copy failed; local segments are kept and the copy is retried"
                        );
                    }
                }
            }
        }
    })
}

async fn run_partition(
    tiered: &Arc<Tiered>,
    image: &MetadataImage,
    partition: &Arc<Partition>,
    task: &mut PartitionTask,
) -> Result<(), TieredError> {
    let id = partition_id(partition);
    let leading = partition.is_leader();
    let epoch = partition.leader_epoch();
    let manifest = if leading && task.leader_epoch == Some(epoch) {
        tiered.manifest(&id).await?
    } else {
        // A new leader learns what earlier leaders copied; a follower follows its leader.
        tiered.reload_manifest(&id).await?
    };
    task.leader_epoch = leading.then_some(epoch);
    let mut copied_below = manifest.copied_below();
    if leading {
        for segment in copyable_segments(&partition, copied_below) {
            if !partition.is_leader() || partition.leader_epoch() != epoch {
                break;
            }
            if let Err(error) = tiered.copy_segment(&id, epoch, &segment).await {
                tiered.metrics.copy_errors.fetch_add(1, Ordering::Relaxed);
                return Err(error);
            }
            copied_below = segment.next_offset;
        }
        if partition.is_leader() && partition.leader_epoch() == epoch {
            // Total retention: remote segments too, counting the local data not copied yet.
            let (retention_ms, retention_bytes, local_only_bytes) = {
                let log = partition.log.lock();
                let config = log.config();
                (
                    config.retention_ms,
                    config.retention_bytes,
                    log.bytes_from(copied_below),
                )
            };
            tiered
                .enforce_retention(
                    &id,
                    epoch,
                    crate::state::now_ms(),
                    retention_ms,
                    retention_bytes,
                    local_only_bytes,
                )
                .await?;
        }
    }
    if copied_below > 0 {
        let (local_ms, local_bytes) = local_retention(image, partition);
        let outcome = partition.log.lock().enforce_local_retention(
            crate::state::now_ms(),
            copied_below,
            local_ms,
            local_bytes,
        );
        match outcome {
            Ok(outcome) if outcome.segments_deleted > 0 => info!(
                topic = %partition.topic,
                partition = partition.index,
                segments = outcome.segments_deleted,
                bytes = outcome.bytes_deleted,
                local_log_start_offset = outcome.log_start_offset,
                "local retention deleted segments copied to the remote tier"
            ),
            Ok(_) => {}
            Err(error) => {
                warn!(topic = %partition.topic, partition = partition.index, %error, "local retention failed")
            }
        }
    }
    Ok(())
}

/// First offset of the partition counting the remote tier, when it holds any.
pub fn remote_log_start(broker: &Broker, topic_id: Uuid, partition: i32) -> Option<i64> {
    active(broker)?
        .cached_manifest(topic_id, partition)?
        .log_start_offset()
}

/// Last offset in the remote tier, when it holds any (ListOffsets LATEST_TIERED).
pub fn remote_last_offset(broker: &Broker, topic_id: Uuid, partition: i32) -> Option<i64> {
    let manifest = active(broker)?.cached_manifest(topic_id, partition)?;
    (manifest.finished_count() > 0).then(|| manifest.copied_below() - 1)
}

/// What one partition's fetch read from the remote tier.
#[derive(Debug, Clone)]
pub struct RemoteRead {
    /// Whole record batches from the fetch offset.
    pub records: Bytes,
    /// read_committed: the aborted transactions those batches may hold (from the remote
    /// `.txnindex` copies, then the local log's when the remote ones do not settle it).
    pub aborted: Option<Vec<strom_storage::AbortedTransaction>>,
}

/// Records read from the remote tier for one fetch, by (topic id, partition, offset).
pub type RemoteReads = HashMap<(Uuid, i32, i64), RemoteRead>;

/// One past the last offset of the whole batches in `records`.
fn next_offset_after(mut records: &[u8]) -> Option<i64> {
    let mut next = None;
    while let Ok(batch) = strom_protocol::batch::BatchView::parse(records) {
        next = Some(batch.next_offset());
        records = &records[batch.size_bytes()..];
    }
    next
}

/// For a consumer fetch: reads from the remote tier every requested partition of a tiered
/// topic whose fetch offset lies below the local log start, with its aborted transactions
/// when `read_committed`. Runs before the fetch's reads, holding no partition lock while
/// the object store answers.
pub async fn read_remote(
    broker: &Broker,
    image: &MetadataImage,
    wanted: Vec<(Uuid, i32, i64, usize)>,
    read_committed: bool,
) -> RemoteReads {
    let mut reads = RemoteReads::new();
    let Some(tiered) = active(broker) else {
        return reads;
    };
    for (topic_id, index, offset, max_bytes) in wanted {
        let Some(partition) = broker.partitions().get(topic_id, index) else {
            continue;
        };
        if !is_tiered(broker, image, &partition.topic)
            || offset >= partition.log.lock().log_start_offset()
        {
            continue;
        }
        let id = partition_id(&partition);
        // Below the first remote offset (total retention deleted it) the fetch is out of
        // range, as below the local log start; the read would find a later segment.
        match tiered.manifest(&id).await {
            Ok(manifest)
                if manifest
                    .log_start_offset()
                    .is_some_and(|start| offset >= start) => {}
            Ok(_) => continue,
            Err(error) => {
                warn!(topic = %partition.topic, partition = index, offset, %error, "remote log metadata unreadable");
                continue;
            }
        }
        match tiered.read(&id, offset, max_bytes, true).await {
            Ok(Some(bytes)) if !bytes.is_empty() => {
                let aborted = if read_committed {
                    // Remote data lies below the last stable offset (only such segments
                    // are copied), so the read ends where its last batch does.
                    let upper = next_offset_after(&bytes).unwrap_or(offset);
                    match remote_aborted(tiered, &partition, &id, offset, upper).await {
                        Ok(aborted) => Some(aborted),
                        Err(error) => {
                            // Without the list a read_committed consumer would see aborted
                            // records: answer nothing for this partition this time.
                            warn!(topic = %partition.topic, partition = index, offset, %error, "remote transaction index unreadable");
                            continue;
                        }
                    }
                } else {
                    None
                };
                reads.insert(
                    (topic_id, index, offset),
                    RemoteRead {
                        records: bytes,
                        aborted,
                    },
                );
            }
            Ok(_) => {}
            Err(error) => {
                warn!(topic = %partition.topic, partition = index, offset, %error, "remote read failed")
            }
        }
    }
    reads
}

/// The aborted transactions of a read_committed remote read from `offset` to `upper`: the
/// remote segments' transaction indexes, then the local log's when those are not complete,
/// without duplicates (a segment may be both remote and still local), by first offset.
async fn remote_aborted(
    tiered: &Tiered,
    partition: &Partition,
    id: &PartitionId,
    offset: i64,
    upper: i64,
) -> Result<Vec<strom_storage::AbortedTransaction>, String> {
    let (mut aborted, complete) = tiered
        .aborted_transactions(id, offset, upper)
        .await
        .map_err(|error| error.to_string())?;
    if !complete {
        let local = partition
            .log
            .lock()
            .aborted_transactions(offset, upper)
            .map_err(|error| error.to_string())?;
        aborted.extend(local);
    }
    aborted.sort_by_key(|txn| (txn.first_offset, txn.producer_id));
    aborted.dedup();
    Ok(aborted)
}

/// Remote answers to ListOffsets by timestamp, by (topic id, partition, timestamp): the
/// first remote record at or after the timestamp (`Ok(None)`: none remote, the local log
/// answers), or why the remote tier could not say.
pub type RemoteTimestampLookups =
    HashMap<(Uuid, i32, i64), Result<Option<strom_storage::TimestampOffset>, String>>;

/// For ListOffsets: looks each wanted (topic id, partition, timestamp >= 0) of a tiered
/// topic up in the remote tier first, as Kafka does, since a tiered partition's oldest
/// records may be remote only. Runs before the answers are built, holding no partition lock
/// while the object store answers.
pub async fn remote_offsets_for_times(
    broker: &Broker,
    image: &MetadataImage,
    wanted: Vec<(Uuid, i32, i64)>,
) -> RemoteTimestampLookups {
    let mut found = RemoteTimestampLookups::new();
    let Some(tiered) = active(broker) else {
        return found;
    };
    for (topic_id, index, timestamp) in wanted {
        let Some(partition) = broker.partitions().get(topic_id, index) else {
            continue;
        };
        if !is_tiered(broker, image, &partition.topic) || !partition.is_leader() {
            continue;
        }
        let id = partition_id(&partition);
        let answer = match tiered.manifest(&id).await {
            Ok(manifest) => match manifest.log_start_offset() {
                Some(start) => tiered
                    .offset_for_timestamp(&id, timestamp, start)
                    .await
                    .map_err(|error| error.to_string()),
                None => continue,
            },
            Err(error) => Err(error.to_string()),
        };
        found.insert((topic_id, index, timestamp), answer);
    }
    found
}

/// The sealed local segments from `copied_below` that the leader may copy: replicated and
/// settled data only, below the high watermark and the last stable offset (as Kafka), so a
/// remote read never holds an open transaction. What is left is the copy lag.
fn copyable_segments(
    partition: &Partition,
    copied_below: i64,
) -> Vec<strom_storage::SealedSegment> {
    let high_watermark = partition.high_watermark();
    let log = partition.log.lock();
    let below = high_watermark.min(log.last_stable_offset());
    log.sealed_segments(copied_below, below)
}

/// The remote tier's part of `/metrics` (nothing when tiering is off): what was copied and
/// read back, the chunk cache, and per tiered partition this broker hosts its remote size
/// and, where it leads, the copy lag (sealed local segments not copied yet, Kafka's
/// RemoteCopyLagSegments/Bytes).
pub fn write_metrics(broker: &Broker, out: &mut crate::metrics::TextWriter) {
    use crate::metrics::MetricType::{Counter, Gauge};
    let Some(tiered) = active(broker) else {
        return;
    };
    let metrics = &tiered.metrics;
    let counters: [(&str, &str, u64); 7] = [
        (
            "strom_remote_log_segments_copied_total",
            "Segments copied to the remote tier.",
            metrics.segments_copied.load(Ordering::Relaxed),
        ),
        (
            "strom_remote_log_bytes_copied_total",
            "Bytes copied to the remote tier (segments, indexes, snapshots).",
            metrics.bytes_copied.load(Ordering::Relaxed),
        ),
        (
            "strom_remote_log_copy_errors_total",
            "Segment copies that failed (retried with backoff).",
            metrics.copy_errors.load(Ordering::Relaxed),
        ),
        (
            "strom_remote_log_reads_total",
            "Fetch reads served from the remote tier.",
            metrics.remote_reads.load(Ordering::Relaxed),
        ),
        (
            "strom_remote_log_read_bytes_total",
            "Record bytes read from the remote tier.",
            metrics.remote_read_bytes.load(Ordering::Relaxed),
        ),
        (
            "strom_remote_log_cache_hits_total",
            "Remote chunk reads answered by the on-disk chunk cache.",
            metrics.cache_hits.load(Ordering::Relaxed),
        ),
        (
            "strom_remote_log_cache_misses_total",
            "Remote chunk reads that went to the object store.",
            metrics.cache_misses.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, Counter, help);
        out.sample(name, &[], value as f64);
    }
    out.family(
        "strom_remote_log_read_seconds_total",
        Counter,
        "Time spent reading from the remote tier; divided by strom_remote_log_reads_total, the mean remote read latency.",
    );
    out.sample(
        "strom_remote_log_read_seconds_total",
        &[],
        metrics.remote_read_micros.load(Ordering::Relaxed) as f64 / 1e6,
    );
    out.family(
        "strom_remote_log_cache_bytes",
        Gauge,
        "Bytes held by the remote chunk cache on disk.",
    );
    out.sample(
        "strom_remote_log_cache_bytes",
        &[],
        tiered.cache_bytes() as f64,
    );

    let image = broker.image();
    let mut partitions: Vec<Arc<Partition>> = broker
        .partitions()
        .all()
        .into_iter()
        .filter(|partition| is_tiered(broker, &image, &partition.topic))
        .collect();
    partitions.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
    // (topic, partition, value) per family; copy lag only where this broker leads.
    let mut sizes = Vec::new();
    let mut lag_segments = Vec::new();
    let mut lag_bytes = Vec::new();
    for partition in &partitions {
        let Some(manifest) = tiered.cached_manifest(partition.topic_id, partition.index) else {
            continue;
        };
        let index = partition.index.to_string();
        sizes.push((
            &partition.topic,
            index.clone(),
            manifest.size_bytes() as f64,
        ));
        if partition.is_leader() {
            let pending = copyable_segments(partition, manifest.copied_below());
            let bytes: u64 = pending.iter().map(|segment| segment.size_bytes).sum();
            lag_segments.push((&partition.topic, index.clone(), pending.len() as f64));
            lag_bytes.push((&partition.topic, index, bytes as f64));
        }
    }
    let families = [
        (
            "strom_remote_log_size_bytes",
            "Bytes of a partition's segments in the remote tier.",
            sizes,
        ),
        (
            "strom_remote_log_copy_lag_segments",
            "Sealed local segments of a led tiered partition not copied to the remote tier yet.",
            lag_segments,
        ),
        (
            "strom_remote_log_copy_lag_bytes",
            "Bytes of those sealed local segments not copied yet.",
            lag_bytes,
        ),
    ];
    for (name, help, samples) in families {
        out.family(name, Gauge, help);
        for (topic, index, value) in samples {
            out.sample(name, &[("topic", topic), ("partition", &index)], value);
        }
    }
}
