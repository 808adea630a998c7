//! The in-memory store: a `BTreeMap`.

use std::collections::BTreeMap;

use super::{KvStore, StoreError};

#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    checkpoint: Option<i64>,
}

impl KvStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
        match value {
            Some(value) => {
                self.entries.insert(key.to_vec(), value.to_vec());
            }
            None => {
                self.entries.remove(key);
            }
        }
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(self
            .entries
            .range(from.to_vec()..to.to_vec())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&mut self, changelog_offset: Option<i64>) -> Result<(), StoreError> {
        if changelog_offset.is_some() {
            self.checkpoint = changelog_offset;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Option<i64> {
        self.checkpoint
    }
}
