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

    /// Runs `read` on the state from memory alone, without blocking: `None` when the state
    /// is behind the log (or being caught up, or this node hosts no replica of `_schemas`),
    /// when the caller must go through [`Registry::read_async`]. The produce path's check
    /// (server-side schema validation): one log-end check and a shared lock.
    pub fn read_now<T>(&self, read: impl FnOnce(&State) -> T) -> Option<T> {
        let end = self.log.end_offset().ok()?;
        let state = self.state.try_read()?;
        match end {
            Some(end) if end == state.applied => Some(read(&state)),
            // No `_schemas` anywhere yet: nothing is registered.
            None if state.applied == 0 && self.log.reader_elsewhere().is_none() => {
                Some(read(&state))
            }
            _ => None,
        }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use parking_lot::Mutex;
    use serde_json::json;

    use super::*;
    use crate::log::{BoxFuture, LogRecord};
    use crate::ops::{self, SchemaRequest};

    /// `_schemas` in memory: one writer or none, commits that may fail.
    #[derive(Default)]
    struct MemoryLog {
        records: Mutex<Vec<LogRecord>>,
        not_writer: AtomicBool,
        writer_elsewhere: Mutex<Option<String>>,
        commit_fails: AtomicBool,
    }

    impl SchemaLog for MemoryLog {
        fn ensure_topic(&self) -> BoxFuture<'_, Result<(), LogError>> {
            Box::pin(async { Ok(()) })
        }

        fn end_offset(&self) -> Result<Option<i64>, LogError> {
            Ok(Some(self.records.lock().len() as i64))
        }

        fn reader_elsewhere(&self) -> Option<String> {
            None
        }

        fn read(&self, from: i64, _max_bytes: u32) -> Result<Vec<LogRecord>, LogError> {
            let records = self.records.lock();
            Ok(records
                .iter()
                .filter(|r| r.offset >= from)
                .take(3)
                .cloned()
                .collect())
        }

        fn append(&self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<Appended, LogError> {
            if self.not_writer.load(Ordering::SeqCst) {
                return Err(LogError::NotWriter {
                    reason: "follower".into(),
                    writer: self.writer_elsewhere.lock().clone(),
                });
            }
            let mut records = self.records.lock();
            for (key, value) in batch {
                let offset = records.len() as i64;
                records.push(LogRecord { offset, key, value });
            }
            let fails = self.commit_fails.load(Ordering::SeqCst);
            Ok(Appended {
                committed: Box::pin(async move {
                    if fails {
                        Err(LogError::NotCommitted {
                            reason: "leadership moved".into(),
                        })
                    } else {
                        Ok(())
                    }
                }),
            })
        }
    }

    fn avro(name: &str) -> ops::NewSchema {
        let text = json!({"type": "record", "name": name, "fields": []}).to_string();
        SchemaRequest {
            schema: Some(text),
            ..SchemaRequest::default()
        }
        .check(false)
        .unwrap()
    }

    async fn register(registry: &Arc<Registry>, subject: &str, name: &str) -> serde_json::Value {
        let (subject, new) = (subject.to_string(), avro(name));
        registry
            .write(false, move |s| ops::register(s, &subject, &new))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn given_writes_when_another_registry_replays_the_log_should_see_the_same_state() {
        let log = Arc::new(MemoryLog::default());
        let writer = Registry::new(log.clone());
        assert_eq!(register(&writer, "a", "A").await["id"], 1);
        assert_eq!(register(&writer, "b", "B").await["id"], 2);
        assert_eq!(register(&writer, "c", "A").await["id"], 1);
        // Read in steps of three records, as a replica catching up would.
        let reader = Registry::new(log.clone());
        let subjects = reader
            .read(false, |s| Ok(ops::list_subjects(s, false, "")))
            .unwrap();
        assert_eq!(subjects, json!(["a", "b", "c"]));
        let versions = reader
            .read(false, |s| ops::id_versions(s, 1, false))
            .unwrap();
        assert_eq!(
            versions,
            json!([{"subject": "a", "version": 1}, {"subject": "c", "version": 1}])
        );
    }

    #[tokio::test]
    async fn given_log_truncated_or_garbled_when_read_should_replay_what_is_there() {
        let log = Arc::new(MemoryLog::default());
        let registry = Registry::new(log.clone());
        register(&registry, "a", "A").await;
        register(&registry, "b", "B").await;
        log.records.lock().truncate(1);
        let subjects = registry
            .read(false, |s| Ok(ops::list_subjects(s, false, "")))
            .unwrap();
        assert_eq!(
            subjects,
            json!(["a"]),
            "a truncated log is replayed from scratch"
        );
        log.records.lock().push(LogRecord {
            offset: 1,
            key: b"not json".to_vec(),
            value: None,
        });
        assert_eq!(register(&registry, "c", "C").await["id"], 2);
        let subjects = registry
            .read(false, |s| Ok(ops::list_subjects(s, false, "")))
            .unwrap();
        assert_eq!(subjects, json!(["a", "c"]), "a garbled record is skipped");
    }

    #[tokio::test]
    async fn given_another_writer_when_writing_should_forward_and_a_failed_commit_is_a_store_error()
    {
        let log = Arc::new(MemoryLog::default());
        let registry = Registry::new(log.clone());
        log.not_writer.store(true, Ordering::SeqCst);
        *log.writer_elsewhere.lock() = Some("127.0.0.1:1".into());
        let new = avro("A");
        let error = registry
            .write(false, move |s| ops::register(s, "a", &new))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, RegistryError::Forward { writer } if writer == "127.0.0.1:1"),
            "{error:?}"
        );

        log.not_writer.store(false, Ordering::SeqCst);
        log.commit_fails.store(true, Ordering::SeqCst);
        let new = avro("A");
        let error = registry
            .write(false, move |s| ops::register(s, "a", &new))
            .await
            .unwrap_err();
        assert_eq!(error.codes(), (500, 50001));
    }
}
