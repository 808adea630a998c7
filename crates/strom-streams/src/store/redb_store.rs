//! The persistent store on redb (see the crate doc for why redb).
//!
//! Puts go to an in-memory overlay and reach redb in one write transaction per `flush`
//! (the task's commit), together with the changelog checkpoint: a crash between flushes
//! loses only what the changelog still holds, and the checkpoint never runs ahead of the
//! data it describes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::{KvStore, StoreError};

const CHECKPOINTS: TableDefinition<&str, i64> = TableDefinition::new("strom-streams-checkpoints");

fn redb_error<E: std::error::Error + Send + Sync + 'static>(
    store: &str,
) -> impl FnOnce(E) -> StoreError + '_ {
    move |source| StoreError::Redb {
        store: store.to_string(),
        source: Box::new(source),
    }
}

pub(super) fn open_database(path: &Path) -> Result<Arc<Database>, StoreError> {
    let name = path.display().to_string();
    let database = Database::create(path).map_err(redb_error(&name))?;
    Ok(Arc::new(database))
}

pub struct RedbStore {
    database: Arc<Database>,
    name: String,
    /// Puts since the last flush; `None` is a deletion.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    checkpoint: Option<i64>,
}

impl RedbStore {
    pub(super) fn open(database: Arc<Database>, name: &str) -> Result<RedbStore, StoreError> {
        let write = database.begin_write().map_err(redb_error(name))?;
        let checkpoint;
        {
            let definition = TableDefinition::<&[u8], &[u8]>::new(name);
            write.open_table(definition).map_err(redb_error(name))?;
            let checkpoints = write.open_table(CHECKPOINTS).map_err(redb_error(name))?;
            checkpoint = checkpoints
                .get(name)
                .map_err(redb_error(name))?
                .map(|guard| guard.value());
        }
        write.commit().map_err(redb_error(name))?;
        Ok(RedbStore {
            database,
            name: name.to_string(),
            pending: BTreeMap::new(),
            checkpoint,
        })
    }

    fn definition(&self) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
        TableDefinition::new(&self.name)
    }
}

impl KvStore for RedbStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(pending) = self.pending.get(key) {
            return Ok(pending.clone());
        }
        let read = self.database.begin_read().map_err(redb_error(&self.name))?;
        let table = read
            .open_table(self.definition())
            .map_err(redb_error(&self.name))?;
        let value = table
            .get(key)
            .map_err(redb_error(&self.name))?
            .map(|guard| guard.value().to_vec());
        Ok(value)
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
        self.pending.insert(key.to_vec(), value.map(<[u8]>::to_vec));
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        {
            let read = self.database.begin_read().map_err(redb_error(&self.name))?;
            let table = read
                .open_table(self.definition())
                .map_err(redb_error(&self.name))?;
            for entry in table.range(from..to).map_err(redb_error(&self.name))? {
                let (key, value) = entry.map_err(redb_error(&self.name))?;
                merged.insert(key.value().to_vec(), value.value().to_vec());
            }
        }
        for (key, value) in self.pending.range(from.to_vec()..to.to_vec()) {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    fn flush(&mut self, changelog_offset: Option<i64>) -> Result<(), StoreError> {
        if self.pending.is_empty() && changelog_offset.is_none() {
            return Ok(());
        }
        let write = self
            .database
            .begin_write()
            .map_err(redb_error(&self.name))?;
        {
            let mut table = write
                .open_table(self.definition())
                .map_err(redb_error(&self.name))?;
            for (key, value) in &self.pending {
                match value {
                    Some(value) => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(redb_error(&self.name))?;
                    }
                    None => {
                        table
                            .remove(key.as_slice())
                            .map_err(redb_error(&self.name))?;
                    }
                }
            }
            if let Some(offset) = changelog_offset {
                let mut checkpoints = write
                    .open_table(CHECKPOINTS)
                    .map_err(redb_error(&self.name))?;
                checkpoints
                    .insert(self.name.as_str(), offset)
                    .map_err(redb_error(&self.name))?;
            }
        }
        write.commit().map_err(redb_error(&self.name))?;
        self.pending.clear();
        if changelog_offset.is_some() {
            self.checkpoint = changelog_offset;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Option<i64> {
        self.checkpoint
    }
}
