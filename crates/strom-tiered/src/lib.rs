//! `strom-tiered`: tiered storage (KIP-405's remote log) on an S3-compatible object store.
//!
//! **Owns**: copying sealed segments of a partition (log, offset index, time index,
//! transaction index, producer snapshot, leader-epoch checkpoint) to a bucket, the remote
//! log metadata of each partition (which segments are remote, their offsets, leader
//! epochs and copy state), deleting remote segments by total retention
//! ([`Tiered::enforce_retention`]), reading records back from the bucket through a bounded
//! on-disk chunk cache, finding a record by timestamp there
//! ([`Tiered::offset_for_timestamp`]), and the counters that describe it.
//!
//! **Must not**: know about requests, the broker or replication. The broker decides which
//! partitions it leads and which topics have `remote.storage.enable=true`, calls
//! [`Tiered::copy_segment`] for the segments [`strom_storage::PartitionLog::sealed_segments`]
//! lists below the high watermark, then lets
//! [`strom_storage::PartitionLog::enforce_local_retention`] delete local copies below
//! [`PartitionManifest::copied_below`], and serves fetches below the local log start with
//! [`Tiered::read`].
//!
//! # Object layout (documented; tools may rely on it)
//!
//! Under the bucket, with the optional `remote.log.storage.s3.prefix`:
//!
//! | key | contents |
//! |---|---|
//! | `<topic>-<topic-id>/<partition>/<base-offset>-<segment-id>.log` | the segment's record batches, byte for byte |
//! | `….index`, `….timeindex`, `….txnindex` | its offset, time and transaction indexes as on local disk |
//! | `….snapshot` | the producer snapshot taken when it rolled, when still kept locally |
//! | `….leader-epoch-checkpoint` | the partition's leader-epoch checkpoint when it was copied |
//! | `<topic>-<topic-id>/<partition>/manifest.json` | the partition's remote log metadata ([`PartitionManifest`]) |
//!
//! `<base-offset>` is 20 digits, zero-padded, as local segment names; `<segment-id>` is a
//! fresh UUID per copy, so a copy retried by another leader never overwrites an object.
//!
//! # Design choices, and why
//!
//! - **S3 client**: SigV4 signing (`sigv4`) with `ring` and hyper's HTTP/1.1 client, both
//!   already in the workspace, instead of `object_store` (its `aws` feature pulls reqwest,
//!   quick-xml, chrono and more; a clean build costs minutes on CI's two cores) or
//!   `rusty-s3` (signing only, still needs an HTTP client and brings url/quick-xml/time).
//!   Five operations are needed (PUT, ranged GET, DELETE, bucket PUT); the client is
//!   ~200 lines. Plain `http://` endpoints only for now.
//! - **Remote log metadata** lives in one manifest object per partition in the bucket
//!   itself, rewritten at every state change (COPY_SEGMENT_STARTED before the upload,
//!   COPY_SEGMENT_FINISHED after the last object of a segment is written). It is as
//!   durable and as replicated as the data it describes, and any replica that becomes
//!   leader reads it with one GET; that is why it is not (yet) an internal
//!   `__remote_log_metadata` topic, which needs a consumer per broker and a produce path
//!   from below the Kafka API layer. Fencing: the manifest carries the highest leader
//!   epoch that wrote it; a copier with an older epoch stops ([`TieredError::Fenced`]).
//!   Two leaders of different epochs racing on the same manifest are not excluded by a
//!   conditional PUT yet (the newer one rewrites the manifest on its next copy).
//! - **Copies are whole files in memory** (at most `segment.bytes` each, payload signed
//!   with its SHA-256): no multipart upload yet.
//! - **Reads** find the batch through the remote offset index (fetched once per segment,
//!   kept in memory, at most [`INDEXES_CACHED`]), then read whole batches from fixed-size
//!   chunks of the remote `.log` kept in the on-disk [`cache::ChunkCache`]; a miss on chunk
//!   `k` also prefetches chunk `k + 1` in the background for sequential readers. No lock is
//!   held across an object-store request.

pub mod cache;
pub mod manifest;
pub mod s3;
pub mod sigv4;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use strom_storage::SealedSegment;
use uuid::Uuid;

pub use manifest::{PartitionManifest, RemoteSegment, SegmentState};

/// Remote offset indexes kept in memory at once.
pub const INDEXES_CACHED: usize = 1024;
/// Bytes of a record batch header that tell its offsets and length.
const BATCH_HEADER_BYTES: u64 = 61;

#[derive(Debug, thiserror::Error)]
pub enum TieredError {
    #[error("invalid tiered storage config {key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("object store {operation} {path} failed: {reason}")]
    Transport {
        operation: String,
        path: String,
        reason: String,
    },
    #[error("object store {operation} {path} answered HTTP {status}: {body}")]
    Status {
        operation: String,
        path: String,
        status: u16,
        body: String,
    },
    #[error(
        "leader epoch {ours} is fenced: the remote log metadata was written by epoch {theirs}"
    )]
    Fenced { ours: i32, theirs: i32 },
    #[error("reading local file {path} for upload: {source}")]
    LocalFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("chunk cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("remote log metadata of {key} is unreadable: {reason}")]
    CorruptManifest { key: String, reason: String },
    #[error("remote segment {segment_id} is damaged at byte {position}: {reason}")]
    CorruptSegment {
        segment_id: String,
        position: u64,
        reason: &'static str,
    },
}

/// Where the remote tier is and how it is reached (broker configs
/// `remote.log.storage.s3.*`, credentials falling back to `AWS_*` variables).
#[derive(Debug, Clone)]
pub struct TieredConfig {
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub cache_dir: PathBuf,
    pub cache_bytes: u64,
    pub chunk_bytes: u64,
}

/// Names one partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionId {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct TieredMetrics {
    pub segments_copied: AtomicU64,
    pub bytes_copied: AtomicU64,
    pub copy_errors: AtomicU64,
    pub remote_reads: AtomicU64,
    pub remote_read_bytes: AtomicU64,
    pub remote_read_micros: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

pub struct Tiered {
    s3: s3::S3Client,
    prefix: String,
    chunk_bytes: u64,
    cache: cache::ChunkCache,
    manifests: Mutex<HashMap<(Uuid, i32), Arc<PartitionManifest>>>,
    indexes: Mutex<HashMap<String, Bytes>>,
    pub metrics: TieredMetrics,
}

impl Tiered {
    pub fn new(config: TieredConfig) -> Result<Arc<Self>, TieredError> {
        let credentials = sigv4::Credentials {
            access_key_id: config.access_key_id,
            secret_access_key: config.secret_access_key,
            region: config.region,
        };
        if config.chunk_bytes < 4096 {
            return Err(TieredError::Config {
                key: "remote.log.reader.chunk.bytes",
                reason: "must be at least 4096".into(),
            });
        }
        let prefix = if config.prefix.is_empty() || config.prefix.ends_with('/') {
            config.prefix.clone()
        } else {
            format!("{}/", config.prefix)
        };
        Ok(Arc::new(Tiered {
            s3: s3::S3Client::new(&config.endpoint, &config.bucket, credentials)?,
            prefix,
            chunk_bytes: config.chunk_bytes,
            cache: cache::ChunkCache::open(&config.cache_dir, config.cache_bytes)?,
            manifests: Mutex::new(HashMap::new()),
            indexes: Mutex::new(HashMap::new()),
            metrics: TieredMetrics::default(),
        }))
    }

    pub fn s3(&self) -> &s3::S3Client {
        &self.s3
    }

    /// The key prefix of a partition's objects.
    pub fn partition_prefix(&self, id: &PartitionId) -> String {
        format!(
            "{}{}-{}/{}/",
            self.prefix, id.topic, id.topic_id, id.partition
        )
    }

    fn manifest_key(&self, id: &PartitionId) -> String {
        format!("{}manifest.json", self.partition_prefix(id))
    }

    fn object_key(
        &self,
        id: &PartitionId,
        base_offset: i64,
        segment_id: &str,
        suffix: &str,
    ) -> String {
        format!(
            "{}{base_offset:020}-{segment_id}.{suffix}",
            self.partition_prefix(id)
        )
    }

    /// The partition's metadata as last loaded, without I/O.
    pub fn cached_manifest(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Option<Arc<PartitionManifest>> {
        self.manifests.lock().get(&(topic_id, partition)).cloned()
    }

    /// The partition's metadata: cached, else read from the bucket (none there: empty).
    pub async fn manifest(&self, id: &PartitionId) -> Result<Arc<PartitionManifest>, TieredError> {
        if let Some(found) = self.cached_manifest(id.topic_id, id.partition) {
            return Ok(found);
        }
        self.reload_manifest(id).await
    }

    /// Reads the partition's metadata from the bucket (a new leader does, once).
    pub async fn reload_manifest(
        &self,
        id: &PartitionId,
    ) -> Result<Arc<PartitionManifest>, TieredError> {
        let key = self.manifest_key(id);
        let manifest = match self.s3.get(&key, None).await {
            Ok(bytes) => serde_json::from_slice::<PartitionManifest>(&bytes).map_err(|error| {
                TieredError::CorruptManifest {
                    key: key.clone(),
                    reason: error.to_string(),
                }
            })?,
            Err(TieredError::Status { status: 404, .. }) => PartitionManifest::default(),
            Err(error) => return Err(error),
        };
        let manifest = Arc::new(manifest);
        self.manifests
            .lock()
            .insert((id.topic_id, id.partition), manifest.clone());
        Ok(manifest)
    }

    /// Forgets a partition's metadata (leadership lost, topic deleted); the next use reads it.
    pub fn forget(&self, topic_id: Uuid, partition: i32) {
        self.manifests.lock().remove(&(topic_id, partition));
    }

    async fn write_manifest(
        &self,
        id: &PartitionId,
        manifest: PartitionManifest,
    ) -> Result<(), TieredError> {
        let body =
            serde_json::to_vec_pretty(&manifest).map_err(|error| TieredError::CorruptManifest {
                key: self.manifest_key(id),
                reason: error.to_string(),
            })?;
        self.s3
            .put(&self.manifest_key(id), Bytes::from(body))
            .await?;
        self.manifests
            .lock()
            .insert((id.topic_id, id.partition), Arc::new(manifest));
        Ok(())
    }

    /// Copies one sealed segment and its companion files, as the leader of `leader_epoch`.
    /// A segment already copied is skipped; a copy left STARTED by an earlier attempt is
    /// replaced (its objects are deleted, best effort). On error nothing is marked
    /// finished, so the local segment is kept and the next call retries.
    pub async fn copy_segment(
        &self,
        id: &PartitionId,
        leader_epoch: i32,
        segment: &SealedSegment,
    ) -> Result<bool, TieredError> {
        let current = self.manifest(id).await?;
        if current.leader_epoch > leader_epoch {
            return Err(TieredError::Fenced {
                ours: leader_epoch,
                theirs: current.leader_epoch,
            });
        }
        if segment.base_offset < current.copied_below() {
            return Ok(false);
        }
        let mut manifest = (*current).clone();
        for stale in manifest
            .segments
            .iter()
            .filter(|s| s.state == SegmentState::CopySegmentStarted)
        {
            self.delete_objects(id, stale).await;
        }
        manifest
            .segments
            .retain(|s| s.state != SegmentState::CopySegmentStarted);
        manifest.leader_epoch = leader_epoch;
        let segment_id = Uuid::new_v4().to_string();
        manifest.segments.push(RemoteSegment {
            segment_id: segment_id.clone(),
            base_offset: segment.base_offset,
            end_offset: segment.next_offset - 1,
            size_bytes: segment.size_bytes,
            max_timestamp_ms: segment.max_timestamp_ms,
            leader_epoch,
            state: SegmentState::CopySegmentStarted,
            has_producer_snapshot: segment.producer_snapshot.is_some(),
        });
        self.write_manifest(id, manifest.clone()).await?;
        let mut files: Vec<(&Path, &str)> = vec![
            (segment.offset_index.as_path(), "index"),
            (segment.time_index.as_path(), "timeindex"),
            (segment.txn_index.as_path(), "txnindex"),
            (
                segment.leader_epoch_checkpoint.as_path(),
                "leader-epoch-checkpoint",
            ),
        ];
        if let Some(snapshot) = &segment.producer_snapshot {
            files.push((snapshot.as_path(), "snapshot"));
        }
        // The log last: its presence with a FINISHED entry means every file is there.
        files.push((segment.log.as_path(), "log"));
        let mut bytes_copied = 0u64;
        for (path, suffix) in files {
            let body = tokio::fs::read(path)
                .await
                .map_err(|source| TieredError::LocalFile {
                    path: path.to_path_buf(),
                    source,
                })?;
            let body = if suffix == "log" {
                // Only what the segment held when listed (an idle sealed segment never grows).
                let mut body = body;
                body.truncate(segment.size_bytes as usize);
                body
            } else {
                body
            };
            bytes_copied += body.len() as u64;
            let key = self.object_key(id, segment.base_offset, &segment_id, suffix);
            self.s3.put(&key, Bytes::from(body)).await?;
        }
        if let Some(entry) = manifest
            .segments
            .iter_mut()
            .find(|s| s.segment_id == segment_id)
        {
            entry.state = SegmentState::CopySegmentFinished;
        }
        self.write_manifest(id, manifest).await?;
        self.metrics.segments_copied.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .bytes_copied
            .fetch_add(bytes_copied, Ordering::Relaxed);
        tracing::info!(
            topic = %id.topic,
            partition = id.partition,
            base_offset = segment.base_offset,
            end_offset = segment.next_offset - 1,
            %segment_id,
            "copied segment to the remote tier"
        );
        Ok(true)
    }

    /// Total retention (`retention.ms`, `retention.bytes`; -1: none) on the remote tier, as
    /// the leader of `leader_epoch`: the segments
    /// [`PartitionManifest::retention_breaches`] names are marked DELETE_SEGMENT_STARTED in
    /// one manifest write (from then on no read or log start counts them), their objects
    /// are deleted, and a second write drops them. Deletions left STARTED by an earlier
    /// attempt are finished first. Returns the segments and bytes deleted.
    pub async fn enforce_retention(
        &self,
        id: &PartitionId,
        leader_epoch: i32,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
        local_only_bytes: u64,
    ) -> Result<(usize, u64), TieredError> {
        let current = self.manifest(id).await?;
        if current.leader_epoch > leader_epoch {
            return Err(TieredError::Fenced {
                ours: leader_epoch,
                theirs: current.leader_epoch,
            });
        }
        let doomed: Vec<String> = current
            .retention_breaches(now_ms, retention_ms, retention_bytes, local_only_bytes)
            .iter()
            .map(|segment| segment.segment_id.clone())
            .collect();
        let leftover = current
            .segments
            .iter()
            .any(|segment| segment.state == SegmentState::DeleteSegmentStarted);
        if doomed.is_empty() && !leftover {
            return Ok((0, 0));
        }
        let mut manifest = (*current).clone();
        for segment in &mut manifest.segments {
            if doomed.contains(&segment.segment_id) {
                segment.state = SegmentState::DeleteSegmentStarted;
                // Counted as copied from this write on, so nothing copies it again even
                // if this process stops before the deletion finishes.
                manifest.deleted_below = manifest.deleted_below.max(segment.end_offset + 1);
            }
        }
        if !doomed.is_empty() {
            self.write_manifest(id, manifest.clone()).await?;
        }
        let (deleting, kept): (Vec<RemoteSegment>, Vec<RemoteSegment>) = manifest
            .segments
            .into_iter()
            .partition(|segment| segment.state == SegmentState::DeleteSegmentStarted);
        let mut bytes = 0u64;
        for segment in &deleting {
            self.delete_objects(id, segment).await;
            bytes += segment.size_bytes;
        }
        manifest.segments = kept;
        let deleted_below = manifest.deleted_below;
        self.write_manifest(id, manifest).await?;
        tracing::info!(
            topic = %id.topic,
            partition = id.partition,
            segments = deleting.len(),
            bytes,
            deleted_below,
            "retention deleted remote segments"
        );
        Ok((deleting.len(), bytes))
    }

    async fn delete_objects(&self, id: &PartitionId, segment: &RemoteSegment) {
        for suffix in [
            "log",
            "index",
            "timeindex",
            "txnindex",
            "snapshot",
            "leader-epoch-checkpoint",
        ] {
            let key = self.object_key(id, segment.base_offset, &segment.segment_id, suffix);
            if let Err(error) = self.s3.delete(&key).await {
                tracing::warn!(%key, %error, "could not delete a stale remote object");
            }
        }
    }

    /// Whole record batches from the remote tier starting with the one holding `offset`,
    /// at most `max_bytes` (at least one batch when `min_one_batch`), never past the end
    /// of the segment holding it. `None` when no remote segment holds `offset` or later.
    pub async fn read(
        self: &Arc<Self>,
        id: &PartitionId,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<Option<Bytes>, TieredError> {
        let started = Instant::now();
        let manifest = self.manifest(id).await?;
        let Some(segment) = manifest.segment_for(offset).cloned() else {
            return Ok(None);
        };
        let mut position = self.index_position(id, &segment, offset).await?;
        let mut reader = ChunkReader {
            tiered: self,
            id,
            segment: &segment,
            chunks: HashMap::new(),
        };
        let mut out = BytesMut::new();
        while let Some(batch) = reader.header_at(position).await? {
            if batch.last_offset < offset {
                position += batch.size_bytes;
                continue;
            }
            let fits = out.len() as u64 + batch.size_bytes <= max_bytes as u64;
            if !fits && !(out.is_empty() && min_one_batch) {
                break;
            }
            out.extend_from_slice(&reader.read(position, batch.size_bytes).await?);
            position += batch.size_bytes;
        }
        let elapsed = started.elapsed().as_micros() as u64;
        self.metrics.remote_reads.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .remote_read_bytes
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        self.metrics
            .remote_read_micros
            .fetch_add(elapsed, Ordering::Relaxed);
        Ok(Some(out.freeze()))
    }

    /// The aborted transactions a read_committed read of the remote tier from
    /// `fetch_offset` up to `upper_bound_offset` must list, from the `.txnindex` copies of
    /// the remote segments holding `fetch_offset` and after (a transaction is indexed where
    /// its ABORT marker is, possibly a later segment), and whether the search is complete;
    /// when not, the local log's segments after the remote ones may add more.
    pub async fn aborted_transactions(
        &self,
        id: &PartitionId,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<(Vec<strom_storage::AbortedTransaction>, bool), TieredError> {
        let manifest = self.manifest(id).await?;
        let mut found = Vec::new();
        for segment in manifest.finished_from(fetch_offset) {
            let index = self.index_object(id, segment, "txnindex").await?;
            let (aborted, complete) =
                strom_storage::aborted_in_txn_index(&index, fetch_offset, upper_bound_offset);
            found.extend(aborted);
            if complete {
                return Ok((found, true));
            }
        }
        Ok((found, false))
    }

    /// One of a remote segment's index objects (`index`, `timeindex`, `txnindex`), from
    /// memory or the bucket. An empty file may not be stored as an object by every server,
    /// so a missing one reads as empty.
    async fn index_object(
        &self,
        id: &PartitionId,
        segment: &RemoteSegment,
        suffix: &str,
    ) -> Result<Bytes, TieredError> {
        let cache_key = format!("{}.{suffix}", segment.segment_id);
        if let Some(index) = self.indexes.lock().get(&cache_key).cloned() {
            return Ok(index);
        }
        let key = self.object_key(id, segment.base_offset, &segment.segment_id, suffix);
        let index = match self.s3.get(&key, None).await {
            Ok(index) => index,
            Err(TieredError::Status { status: 404, .. }) => Bytes::new(),
            Err(error) => return Err(error),
        };
        let mut indexes = self.indexes.lock();
        if indexes.len() >= INDEXES_CACHED {
            indexes.clear();
        }
        indexes.insert(cache_key, index.clone());
        Ok(index)
    }

    /// ListOffsets by timestamp on the remote tier: the first record at or after
    /// `from_offset` whose timestamp is at least `timestamp_ms`, searched in the finished
    /// segments oldest first, skipping those whose newest record is older. Each segment's
    /// time index gives where to start scanning, then batch headers are read (through the
    /// chunk cache) until one reaches the timestamp, and only that batch is decoded.
    /// `None` when no remote record qualifies (the local log may hold one).
    pub async fn offset_for_timestamp(
        self: &Arc<Self>,
        id: &PartitionId,
        timestamp_ms: i64,
        from_offset: i64,
    ) -> Result<Option<strom_storage::TimestampOffset>, TieredError> {
        let manifest = self.manifest(id).await?;
        let newer = manifest
            .finished_from(from_offset)
            .into_iter()
            .filter(|segment| segment.max_timestamp_ms >= timestamp_ms);
        for segment in newer {
            let time_index = self.index_object(id, segment, "timeindex").await?;
            // The last entry at or below the timestamp: every record before its batch is
            // older (the local time index's rule); none such, the segment's start.
            let mut start = segment.base_offset;
            for entry in time_index.chunks_exact(12) {
                let mut timestamp = [0u8; 8];
                timestamp.copy_from_slice(&entry[..8]);
                if i64::from_be_bytes(timestamp) > timestamp_ms {
                    break;
                }
                let relative = u32::from_be_bytes([entry[8], entry[9], entry[10], entry[11]]);
                start = segment.base_offset + i64::from(relative);
            }
            let start = start.max(from_offset);
            let mut position = self.index_position(id, segment, start).await?;
            let mut reader = ChunkReader {
                tiered: self,
                id,
                segment,
                chunks: HashMap::new(),
            };
            while let Some(batch) = reader.header_at(position).await? {
                if batch.last_offset >= start && batch.max_timestamp_ms >= timestamp_ms {
                    let bytes = reader.read(position, batch.size_bytes).await?;
                    let found = strom_storage::first_record_in_batch(&bytes, |offset, at| {
                        offset >= start && at >= timestamp_ms
                    })
                    .map_err(|_| reader.corrupt(position, "batch does not decode"))?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                position += batch.size_bytes;
            }
        }
        Ok(None)
    }

    /// File position to scan from for `offset`: that of the last indexed batch ending
    /// before it (the batch holding it starts at or after), else the segment start.
    async fn index_position(
        &self,
        id: &PartitionId,
        segment: &RemoteSegment,
        offset: i64,
    ) -> Result<u64, TieredError> {
        let index = self.index_object(id, segment, "index").await?;
        let mut position = 0u64;
        for entry in index.chunks_exact(8) {
            let relative = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let at = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
            if segment.base_offset + i64::from(relative) >= offset {
                break;
            }
            position = u64::from(at);
        }
        Ok(position)
    }

    /// One chunk of a remote segment's `.log`, from the cache or the bucket; a miss also
    /// prefetches the next chunk in the background.
    async fn chunk(
        self: &Arc<Self>,
        id: &PartitionId,
        segment: &RemoteSegment,
        chunk: u64,
    ) -> Result<Bytes, TieredError> {
        if let Some(bytes) = self.cache.get(&segment.segment_id, chunk).await {
            self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
        let bytes = self.download_chunk(id, segment, chunk).await?;
        let next = chunk + 1;
        if next * self.chunk_bytes < segment.size_bytes
            && !self.cache.contains(&segment.segment_id, next)
        {
            let tiered = self.clone();
            let id = id.clone();
            let segment = segment.clone();
            tokio::spawn(async move {
                if let Err(error) = tiered.download_chunk(&id, &segment, next).await {
                    tracing::debug!(%error, "prefetch of a remote chunk failed");
                }
            });
        }
        Ok(bytes)
    }

    async fn download_chunk(
        &self,
        id: &PartitionId,
        segment: &RemoteSegment,
        chunk: u64,
    ) -> Result<Bytes, TieredError> {
        let position = chunk * self.chunk_bytes;
        let length = self
            .chunk_bytes
            .min(segment.size_bytes.saturating_sub(position));
        let key = self.object_key(id, segment.base_offset, &segment.segment_id, "log");
        let bytes = self.s3.get(&key, Some((position, length))).await?;
        if bytes.len() as u64 != length {
            return Err(TieredError::CorruptSegment {
                segment_id: segment.segment_id.clone(),
                position,
                reason: "the object store answered a chunk of the wrong length",
            });
        }
        if let Err(error) = self.cache.put(&segment.segment_id, chunk, &bytes).await {
            // The bytes are good; only the next read of this chunk goes to the store again.
            tracing::warn!(%error, "could not cache a remote chunk");
        }
        Ok(bytes)
    }

    pub fn cache_bytes(&self) -> u64 {
        self.cache.total_bytes()
    }
}

/// Reads byte ranges of one remote segment through its chunks, each fetched once per read.
/// The fields of a v2 batch header a remote scan needs.
struct HeaderFields {
    /// The whole batch: the 12 bytes of offset and length, then its length field's worth.
    size_bytes: u64,
    last_offset: i64,
    max_timestamp_ms: i64,
}

struct ChunkReader<'a> {
    tiered: &'a Arc<Tiered>,
    id: &'a PartitionId,
    segment: &'a RemoteSegment,
    chunks: HashMap<u64, Bytes>,
}

impl ChunkReader<'_> {
    /// The header of the batch at `position`, checked to be a whole v2 batch inside the
    /// segment; `None` at the segment's end.
    async fn header_at(&mut self, position: u64) -> Result<Option<HeaderFields>, TieredError> {
        let segment_bytes = self.segment.size_bytes;
        if position + 12 > segment_bytes {
            return Ok(None);
        }
        let header = self
            .read(position, BATCH_HEADER_BYTES.min(segment_bytes - position))
            .await?;
        let long = |at: usize| Some(i64::from_be_bytes(header.get(at..at + 8)?.try_into().ok()?));
        let int = |at: usize| Some(i32::from_be_bytes(header.get(at..at + 4)?.try_into().ok()?));
        let (Some(base_offset), Some(length), Some(last_delta), Some(max_timestamp_ms)) =
            (long(0), int(8), int(23), long(35))
        else {
            return Err(self.corrupt(position, "batch header cut short"));
        };
        if length < 49 {
            return Err(self.corrupt(position, "batch length below the v2 header"));
        }
        let size_bytes = 12 + length as u64;
        if position + size_bytes > segment_bytes {
            return Err(self.corrupt(position, "batch runs past the segment end"));
        }
        Ok(Some(HeaderFields {
            size_bytes,
            last_offset: base_offset + i64::from(last_delta),
            max_timestamp_ms,
        }))
    }

    fn corrupt(&self, position: u64, reason: &'static str) -> TieredError {
        TieredError::CorruptSegment {
            segment_id: self.segment.segment_id.clone(),
            position,
            reason,
        }
    }

    async fn read(&mut self, position: u64, length: u64) -> Result<Bytes, TieredError> {
        let chunk_bytes = self.tiered.chunk_bytes;
        let mut out = BytesMut::with_capacity(length as usize);
        let mut at = position;
        let end = position + length;
        while at < end {
            let chunk = at / chunk_bytes;
            if !self.chunks.contains_key(&chunk) {
                // Keep only the chunk in use and the one before it.
                self.chunks.retain(|&k, _| k + 1 >= chunk);
                let bytes = self.tiered.chunk(self.id, self.segment, chunk).await?;
                self.chunks.insert(chunk, bytes);
            }
            let bytes = &self.chunks[&chunk];
            let from = (at - chunk * chunk_bytes) as usize;
            let to = ((end - chunk * chunk_bytes) as usize).min(bytes.len());
            if from >= to {
                return Err(TieredError::CorruptSegment {
                    segment_id: self.segment.segment_id.clone(),
                    position: at,
                    reason: "read past the end of a chunk",
                });
            }
            out.extend_from_slice(&bytes[from..to]);
            at += (to - from) as u64;
        }
        Ok(out.freeze())
    }
}
