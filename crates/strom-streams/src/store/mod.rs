//! State stores: ordered byte maps a task owns, each backed by a compacted changelog topic.
//!
//! Contract of [`KvStore`]: `put` is visible to the next `get`/`range` of the same store at
//! once; `flush` makes every earlier `put` durable (for a persistent store) before it
//! returns. A store never sees two tasks: there is no locking. Window and session stores are
//! key-value stores over the key layouts in [`layout`].
//!
//! The changelog is the source of truth: a store lost with its disk is rebuilt by replaying
//! `<application id>-<store>-changelog`, partition = the task's partition.

pub mod layout;
mod memory;
mod redb_store;

use std::path::PathBuf;

pub use memory::MemoryStore;
pub use redb_store::RedbStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {store}: {source}")]
    Redb {
        store: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("store directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An ordered map of bytes to bytes.
pub trait KvStore: Send {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// `None` deletes.
    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError>;
    /// Entries with `from <= key < to`, in key order.
    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Make every earlier put durable; record that the changelog was applied up to
    /// `changelog_offset` (the next offset to restore from), if given.
    fn flush(&mut self, changelog_offset: Option<i64>) -> Result<(), StoreError>;
    /// The changelog offset recorded by the last `flush`, if the store kept one.
    fn checkpoint(&self) -> Option<i64>;
}

/// Where a task's stores live.
#[derive(Debug, Clone, Default)]
pub enum StoreBackend {
    /// In memory only; rebuilt from the changelog on every start.
    #[default]
    Memory,
    /// One redb database per task under this directory (`<dir>/<task>.redb`).
    Redb { dir: PathBuf },
}

impl StoreBackend {
    /// Open the named stores of one task.
    pub fn open(
        &self,
        task: &str,
        names: &[String],
    ) -> Result<Vec<(String, Box<dyn KvStore>)>, StoreError> {
        match self {
            StoreBackend::Memory => Ok(names
                .iter()
                .map(|name| {
                    (
                        name.clone(),
                        Box::new(MemoryStore::default()) as Box<dyn KvStore>,
                    )
                })
                .collect()),
            StoreBackend::Redb { dir } => {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let database = redb_store::open_database(&dir.join(format!("{task}.redb")))?;
                names
                    .iter()
                    .map(|name| {
                        let store = RedbStore::open(database.clone(), name)?;
                        Ok((name.clone(), Box::new(store) as Box<dyn KvStore>))
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract every backend must keep.
    fn check_store_contract(store: &mut dyn KvStore) {
        assert_eq!(store.get(b"a").unwrap(), None);
        store.put(b"b", Some(b"2")).unwrap();
        store.put(b"a", Some(b"1")).unwrap();
        store.put(b"c", Some(b"3")).unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        store.flush(Some(7)).unwrap();
        store.put(b"c", None).unwrap();
        store.put(b"bb", Some(b"22")).unwrap();
        let range = store.range(b"a", b"c").unwrap();
        let keys: Vec<&[u8]> = range.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![b"a".as_slice(), b"b", b"bb"]);
        assert_eq!(store.range(b"c", b"z").unwrap(), vec![]);
        assert_eq!(store.checkpoint(), Some(7));
        store.flush(None).unwrap();
        assert_eq!(store.get(b"c").unwrap(), None);
        assert_eq!(store.get(b"bb").unwrap(), Some(b"22".to_vec()));
    }

    #[test]
    fn given_memory_store_should_keep_the_store_contract() {
        check_store_contract(&mut MemoryStore::default());
    }

    #[test]
    fn given_redb_store_should_keep_the_contract_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StoreBackend::Redb {
            dir: dir.path().to_path_buf(),
        };
        {
            let mut stores = backend.open("0_0", &["s".to_string()]).unwrap();
            check_store_contract(stores[0].1.as_mut());
        }
        let stores = backend.open("0_0", &["s".to_string()]).unwrap();
        assert_eq!(stores[0].1.get(b"bb").unwrap(), Some(b"22".to_vec()));
        assert_eq!(stores[0].1.get(b"c").unwrap(), None);
        assert_eq!(stores[0].1.checkpoint(), Some(7));
    }
}
