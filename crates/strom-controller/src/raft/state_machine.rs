//! The replicated state machine: committed entries applied to a [`MetadataImage`] with the
//! image's own apply code, published as `Arc<MetadataImage>` snapshots; and Raft
//! snapshots of that image on disk so a restart or a lagging follower does not replay
//! history.
//!
//! # Applying
//!
//! Each entry's records are applied to a copy of the image; only if every one fits does
//! the copy replace the image (all or none, like an append to the single-voter log).
//! The records get consecutive metadata offsets after the image's last one, so every
//! voter numbers them alike. A rejected entry leaves the image as it was on every voter.
//!
//! # Snapshot file
//!
//! `snapshot`: one CRC32C frame (see [`super::disk`]) holding JSON
//! `{"meta": <openraft SnapshotMeta>, "data": {"last_offset": .., "records": [..]}}`,
//! where `records` are [`MetadataImage::to_records`]. Replaced whole (temp file, fsync,
//! rename, fsync directory), so it is never torn; a defect is corruption and stops the
//! open. Peers receive the `data` part as the snapshot bytes.
//!
//! Building one takes the image (an `Arc`) and the applied log id under the lock and does
//! the rest on the blocking pool: with tens of thousands of partitions the records, their
//! JSON and the fsyncs take long enough that doing them on a runtime worker, lock held,
//! stalled `apply` and the Raft heartbeats with it, and followers elected a new leader.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::image::MetadataImage;
use crate::raft::disk::{encode_frame, io_error, read_single_frame_file, replace_file, temp_path};
use crate::raft::error::RaftQuorumError;
use crate::raft::types::{
    Entry, EntryOutcome, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::record::MetadataRecord;

/// The snapshot file inside the raft directory.
pub const RAFT_SNAPSHOT_FILE_NAME: &str = "snapshot";
/// Largest snapshot file or received snapshot: ~7 million partitions' worth of records.
pub const RAFT_SNAPSHOT_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// The image part of a snapshot (what peers receive as the snapshot's bytes).
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    last_offset: Option<u64>,
    records: Vec<MetadataRecord>,
}

#[derive(Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: SnapshotData,
}

/// The state machine of one node. Clones share it (the snapshot builder is a clone).
#[derive(Clone)]
pub(crate) struct StateMachine {
    inner: Arc<Mutex<MachineState>>,
    images: Arc<watch::Sender<Arc<MetadataImage>>>,
    /// Serialises snapshot file writes, which happen without holding `inner`.
    writing: Arc<Mutex<()>>,
}

struct MachineState {
    snapshot_path: PathBuf,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    image: Arc<MetadataImage>,
    /// The latest snapshot: its meta and the bytes peers get.
    current: Option<(SnapshotMeta, Vec<u8>)>,
    snapshots_built: u64,
}

impl StateMachine {
    /// Opens the state machine under `directory`: the latest snapshot's image when there is
    /// one, else an empty image. Publishes the image on `images`.
    pub(crate) fn open(
        directory: &Path,
        images: Arc<watch::Sender<Arc<MetadataImage>>>,
    ) -> Result<Self, RaftQuorumError> {
        let snapshot_path = directory.join(RAFT_SNAPSHOT_FILE_NAME);
        let temp = temp_path(&snapshot_path);
        if temp.exists() {
            std::fs::remove_file(&temp).map_err(io_error("remove", &temp))?;
        }
        let mut state = MachineState {
            snapshot_path: snapshot_path.clone(),
            last_applied: None,
            last_membership: StoredMembership::default(),
            image: Arc::new(MetadataImage::empty()),
            current: None,
            snapshots_built: 0,
        };
        let file = read_single_frame_file::<SnapshotFile>(&snapshot_path, RAFT_SNAPSHOT_BYTES_MAX)?;
        if let Some(file) = file {
            let image = MetadataImage::from_snapshot(&file.data.records, file.data.last_offset)
                .map_err(|source| RaftQuorumError::BadSnapshot {
                    path: snapshot_path.clone(),
                    source,
                })?;
            let bytes = serde_json::to_vec(&file.data).map_err(RaftQuorumError::Encode)?;
            tracing::info!(
                path = %snapshot_path.display(),
                last_log_id = ?file.meta.last_log_id,
                records = file.data.records.len(),
                "loaded the metadata snapshot"
            );
            state.last_applied = file.meta.last_log_id;
            state.last_membership = file.meta.last_membership.clone();
            state.image = Arc::new(image);
            state.current = Some((file.meta, bytes));
        }
        images.send_replace(Arc::clone(&state.image));
        Ok(Self {
            inner: Arc::new(Mutex::new(state)),
            images,
            writing: Arc::new(Mutex::new(())),
        })
    }

    fn state(&self) -> MutexGuard<'_, MachineState> {
        self.inner
            .lock()
            .expect("a panic while holding the state machine lock")
    }
}

impl StateMachine {
    /// Makes `data` (an image at `meta`) the current snapshot, durably, and returns the
    /// bytes peers get. Serialising and writing happen without the state lock, so `apply`
    /// never waits for them; call it off the runtime's workers where it can be large. A
    /// snapshot older than the current one (a build that raced an install) is not written.
    #[allow(clippy::result_large_err)] // openraft's StorageError, as its traits return it
    fn store_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: &SnapshotData,
    ) -> Result<Vec<u8>, StorageError> {
        let signature = Some(meta.signature());
        let write_error = |error: AnyError| StorageError::IO {
            source: StorageIOError::write_snapshot(signature.clone(), error),
        };
        let bytes = serde_json::to_vec(data).map_err(|e| write_error(AnyError::new(&e)))?;
        // The file is `{"meta": .., "data": ..}`; the data part is serialised once.
        let meta_json = serde_json::to_vec(meta).map_err(|e| write_error(AnyError::new(&e)))?;
        let mut payload = Vec::with_capacity(bytes.len() + meta_json.len() + 32);
        payload.extend_from_slice(br#"{"meta":"#);
        payload.extend_from_slice(&meta_json);
        payload.extend_from_slice(br#","data":"#);
        payload.extend_from_slice(&bytes);
        payload.push(b'}');
        if payload.len() > RAFT_SNAPSHOT_BYTES_MAX {
            let error = std::io::Error::other(format!(
                "snapshot of {} bytes exceeds the limit of {RAFT_SNAPSHOT_BYTES_MAX} bytes",
                payload.len()
            ));
            return Err(write_error(AnyError::new(&error)));
        }
        let _writing = self
            .writing
            .lock()
            .expect("a panic while writing a snapshot");
        let (path, newer_exists) = {
            let state = self.state();
            let newer_exists = state
                .current
                .as_ref()
                .is_some_and(|(current, _)| current.last_log_id > meta.last_log_id);
            (state.snapshot_path.clone(), newer_exists)
        };
        if newer_exists {
            return Ok(bytes);
        }
        replace_file(&path, &encode_frame(&payload, RAFT_SNAPSHOT_BYTES_MAX))
            .map_err(|e| write_error(AnyError::new(&e)))?;
        tracing::info!(
            path = %path.display(),
            last_log_id = ?meta.last_log_id,
            records = data.records.len(),
            bytes = payload.len(),
            "wrote the metadata snapshot"
        );
        self.state().current = Some((meta.clone(), bytes.clone()));
        Ok(bytes)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // Under the lock only what must match: the applied log id and the image (an
        // immutable `Arc`). Turning tens of thousands of partitions into records and JSON,
        // and writing and fsyncing the file, take long enough that holding the lock would
        // block `apply` on a runtime worker, and with it the Raft heartbeats that keep the
        // leader in place (the quorum lost its leader at 18,500 partitions).
        let (meta, image) = {
            let mut state = self.state();
            state.snapshots_built += 1;
            let snapshot_id = match state.last_applied {
                Some(log_id) => format!(
                    "{}-{}-{}",
                    log_id.leader_id, log_id.index, state.snapshots_built
                ),
                None => format!("empty-{}", state.snapshots_built),
            };
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.last_membership.clone(),
                snapshot_id,
            };
            (meta, Arc::clone(&state.image))
        };
        let machine = self.clone();
        let stored_meta = meta.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let data = SnapshotData {
                last_offset: image.last_offset(),
                records: image.to_records(),
            };
            machine.store_snapshot(&stored_meta, &data)
        })
        .await
        .map_err(|join| StorageError::IO {
            source: StorageIOError::write_snapshot(
                Some(meta.signature()),
                AnyError::error(format!("the snapshot build stopped: {join}")),
            ),
        })??;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state();
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<EntryOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut state = self.state();
        let mut image: Option<MetadataImage> = None;
        let mut outcomes = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => EntryOutcome::NoRecords,
                EntryPayload::Membership(membership) => {
                    state.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    EntryOutcome::NoRecords
                }
                EntryPayload::Normal(proposal) if proposal.records.is_empty() => {
                    EntryOutcome::NoRecords
                }
                EntryPayload::Normal(proposal) => {
                    let current = image.get_or_insert_with(|| (*state.image).clone());
                    let base_offset = current.last_offset().map_or(0, |offset| offset + 1);
                    let mut next = current.clone();
                    match next.apply_entry(base_offset, &proposal.records) {
                        Ok(()) => {
                            *current = next;
                            EntryOutcome::Applied {
                                last_offset: current
                                    .last_offset()
                                    .expect("a non-empty entry was applied"),
                            }
                        }
                        Err((offset, reason)) => {
                            tracing::warn!(
                                log_id = %entry.log_id,
                                offset,
                                %reason,
                                "committed metadata entry does not fit the image; skipping it"
                            );
                            EntryOutcome::Rejected { offset, reason }
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        if let Some(image) = image {
            state.image = Arc::new(image);
            self.images.send_replace(Arc::clone(&state.image));
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let read_error = |error: AnyError| StorageError::IO {
            source: StorageIOError::read_snapshot(Some(meta.signature()), error),
        };
        let data: SnapshotData = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| read_error(AnyError::new(&e)))?;
        let image = MetadataImage::from_snapshot(&data.records, data.last_offset)
            .map_err(|e| read_error(AnyError::new(&e)))?;
        self.store_snapshot(meta, &data)?;
        let mut state = self.state();
        state.last_applied = meta.last_log_id;
        state.last_membership = meta.last_membership.clone();
        state.image = Arc::new(image);
        self.images.send_replace(Arc::clone(&state.image));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.state().current.clone().map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
