//! The registry's runtime: the in-memory [`State`] kept up with `_schemas`.
//!
//! Every request first applies the records it has not seen (cheap when there are none: one
//! log-end check), so any broker hosting a replica of `_schemas` answers reads. Writes are
//! decided and appended under the state's write lock by the one writer (the leader of
//! `_schemas` partition 0), so ids and versions are given out once; the answer then waits
//! for the records to be committed with no lock held. Blocking work (locks, disk reads)
//! runs on tokio's blocking pool, never on the async workers.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{RwLock, RwLockWriteGuard};
use tracing::warn;

use crate::error::RegistryError;
use crate::log::{Appended, LogError, SchemaLog};
use crate::records::Entry;
use crate::state::State;

/// Bytes read from `_schemas` per step while catching up.
const READ_BYTES: u32 = 1024 * 1024;
/// How long a write waits for this broker to become the writer (a topic just created, a
/// leader being elected) before answering 50004.
const WRITER_WAIT: Duration = Duration::from_secs(10);
const WRITER_RETRY: Duration = Duration::from_millis(50);

/// A write's decision: the records to append and the answer once they are committed.
pub type Decision<T> = Result<(Vec<Entry>, T), RegistryError>;

pub struct Registry {
    log: Arc<dyn SchemaLog>,
    state: RwLock<State>,
}

impl Registry {
    pub fn new(log: Arc<dyn SchemaLog>) -> Arc<Registry> {
        Arc::new(Registry {
            log,
            state: RwLock::new(State::default()),
        })
    }

    /// Runs `read` on the state once it has caught up with the log. Blocking. Where this
    /// node hosts no replica of `_schemas` this answers [`RegistryError::Forward`] to the
    /// writer (unless the request was `forwarded` here already).
    pub fn read<T>(
        &self,
        forwarded: bool,
        read: impl FnOnce(&State) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let end = self.log.end_offset()?;
        if end.is_none() && !forwarded {
            if let Some(writer) = self.log.reader_elsewhere() {
                return Err(RegistryError::Forward { writer });
            }
        }
        {
            // Readers share the state while nothing new is in the log.
            let state = self.state.read();
            if end.unwrap_or(0) == state.applied {
                return read(&state);
            }
        }
        let mut state = self.state.write();
        self.catch_up(&mut state)?;
        read(&RwLockWriteGuard::downgrade(state))
    }

    /// [`Registry::read`] on the blocking pool.
    pub async fn read_async<T, F>(
        self: &Arc<Self>,
        forwarded: bool,
        read: F,
    ) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> Result<T, RegistryError> + Send + 'static,
    {
        let registry = self.clone();
        tokio::task::spawn_blocking(move || registry.read(forwarded, read))
            .await
            .map_err(|e| RegistryError::request(500, format!("request task failed: {e}")))?
    }

    /// Applies the records of `_schemas` not applied yet. Starts over from an empty state
    /// when the log went backwards (truncated after a leader change, or recreated).
    fn catch_up(&self, state: &mut State) -> Result<(), RegistryError> {
        let Some(end) = self.log.end_offset()? else {
            if state.applied != 0 {
                *state = State::default();
            }
            return Ok(());
        };
        if end < state.applied {
            warn!(
                end,
                applied = state.applied,
                "_schemas went backwards; replaying it"
            );
            *state = State::default();
        }
        while state.applied < end {
            let records = self.log.read(state.applied, READ_BYTES)?;
            let Some(last) = records.last().map(|r| r.offset) else {
                // Compaction removed the rest of the range.
                state.applied = end;
                break;
            };
            for record in records {
                if record.offset < state.applied {
                    continue;
                }
                match Entry::decode(&record.key, record.value.as_deref()) {
                    Ok(entry) => state.apply(entry),
                    Err(error) => {
                        warn!(offset = record.offset, %error, "skipping a _schemas record")
                    }
                }
            }
            state.applied = state.applied.max(last + 1);
        }
        Ok(())
    }

    /// Decides a write on the caught-up state, appends its records as the writer, and
    /// answers once they are committed. `decide` may run more than once (while this broker
    /// waits to become the writer). Where another broker is the writer this answers
    /// [`RegistryError::Forward`] (unless the request was `forwarded` here already: then it
    /// waits for this broker to become the writer, as when there is none).
    pub async fn write<T, F>(
        self: &Arc<Self>,
        forwarded: bool,
        decide: F,
    ) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: Fn(&State) -> Decision<T> + Send + Sync + 'static,
    {
        self.log.ensure_topic().await?;
        let decide = Arc::new(decide);
        let deadline = tokio::time::Instant::now() + WRITER_WAIT;
        let (appended, answer) = loop {
            let registry = self.clone();
            let decide = decide.clone();
            let attempt = tokio::task::spawn_blocking(move || registry.write_blocking(&*decide))
                .await
                .map_err(|e| RegistryError::request(500, format!("request task failed: {e}")))?;
            match attempt {
                Err(RegistryError::UnknownLeader {
                    source:
                        LogError::NotWriter {
                            writer: Some(writer),
                            ..
                        },
                }) if !forwarded => return Err(RegistryError::Forward { writer }),
                Err(RegistryError::UnknownLeader { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(WRITER_RETRY).await;
                }
                other => break other?,
            }
        };
        if let Some(appended) = appended {
            if let Err(error) = appended.committed.await {
                // What memory shows may be lost: replay the log on the next request.
                *self.state.write() = State::default();
                return Err(error.into());
            }
        }
        Ok(answer)
    }

    fn write_blocking<T>(
        &self,
        decide: &dyn Fn(&State) -> Decision<T>,
    ) -> Result<(Option<Appended>, T), RegistryError> {
        let mut state = self.state.write();
        self.catch_up(&mut state)?;
        let (entries, answer) = decide(&state)?;
        if entries.is_empty() {
            return Ok((None, answer));
        }
        let records = entries.iter().map(Entry::encode).collect();
        let appended = self.log.append(records)?;
        // Apply what was appended by reading it back: one path for every change.
        self.catch_up(&mut state)?;
        Ok((Some(appended), answer))
    }
}
