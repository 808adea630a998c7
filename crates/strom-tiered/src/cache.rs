//! The bounded on-disk cache of remote chunks: fixed-size byte ranges of remote segment
//! files, one file each, evicted least recently used once their total passes the budget.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::TieredError;

#[derive(Default)]
struct State {
    /// (segment id, chunk index) -> (bytes, last use tick).
    entries: HashMap<(String, u64), (u64, u64)>,
    total_bytes: u64,
    tick: u64,
}

pub struct ChunkCache {
    dir: PathBuf,
    budget_bytes: u64,
    state: Mutex<State>,
}

impl ChunkCache {
    /// Starts empty: whatever an earlier process left in `dir` is removed.
    pub fn open(dir: &Path, budget_bytes: u64) -> Result<Self, TieredError> {
        let io = |error: std::io::Error| TieredError::Cache {
            path: dir.to_path_buf(),
            source: error,
        };
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io)?;
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        Ok(ChunkCache {
            dir: dir.to_path_buf(),
            budget_bytes,
            state: Mutex::new(State::default()),
        })
    }

    fn path(&self, segment_id: &str, chunk: u64) -> PathBuf {
        self.dir.join(format!("{segment_id}-{chunk}.chunk"))
    }

    pub fn contains(&self, segment_id: &str, chunk: u64) -> bool {
        self.state
            .lock()
            .entries
            .contains_key(&(segment_id.to_string(), chunk))
    }

    /// The chunk if cached (a hit refreshes it).
    pub async fn get(&self, segment_id: &str, chunk: u64) -> Option<Bytes> {
        {
            let mut state = self.state.lock();
            state.tick += 1;
            let tick = state.tick;
            let entry = state.entries.get_mut(&(segment_id.to_string(), chunk))?;
            entry.1 = tick;
        }
        // Evicted between the lookup and the read: a miss.
        tokio::fs::read(self.path(segment_id, chunk))
            .await
            .ok()
            .map(Bytes::from)
    }

    /// Stores a chunk, then evicts the least recently used ones over the budget.
    pub async fn put(
        &self,
        segment_id: &str,
        chunk: u64,
        bytes: &Bytes,
    ) -> Result<(), TieredError> {
        let path = self.path(segment_id, chunk);
        // A name of its own: a prefetch and a reader may store the same chunk at once.
        let temporary = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4()));
        let io = |error: std::io::Error| TieredError::Cache {
            path: path.clone(),
            source: error,
        };
        tokio::fs::write(&temporary, bytes).await.map_err(io)?;
        tokio::fs::rename(&temporary, &path).await.map_err(io)?;
        let evicted = {
            let mut state = self.state.lock();
            state.tick += 1;
            let tick = state.tick;
            let key = (segment_id.to_string(), chunk);
            if let Some((old, _)) = state.entries.insert(key, (bytes.len() as u64, tick)) {
                state.total_bytes -= old;
            }
            state.total_bytes += bytes.len() as u64;
            let mut evicted = Vec::new();
            while state.total_bytes > self.budget_bytes && state.entries.len() > 1 {
                let Some(oldest) = state
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                if let Some((size, _)) = state.entries.remove(&oldest) {
                    state.total_bytes -= size;
                }
                evicted.push(self.path(&oldest.0, oldest.1));
            }
            evicted
        };
        for path in evicted {
            let _ = tokio::fs::remove_file(path).await;
        }
        Ok(())
    }

    pub fn total_bytes(&self) -> u64 {
        self.state.lock().total_bytes
    }
}
