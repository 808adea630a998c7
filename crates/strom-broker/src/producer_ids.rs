//! Producer ids for idempotent producers, unique across restarts.
//!
//! Ids are handed out from blocks; the start of the next block is written durably before an
//! id of the current block is used, so a restart never hands out an id twice (at worst it
//! skips the rest of a block).

use std::path::{Path, PathBuf};

/// Ids reserved per durable write.
const BLOCK_SIZE: i64 = 1000;
const FILE_NAME: &str = "producer-id-block";

#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("node.id {node_id} is too large for a cluster: producer ids are split between node ids 0-1023")]
    NodeIdTooLarge { node_id: i32 },
    #[error("cannot persist producer id block in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct ProducerIdAllocator {
    path: PathBuf,
    next_id: i64,
    block_end: i64,
    /// In a cluster every broker allocates: broker `n` hands out `counter * NODES_MAX + n`,
    /// so no two brokers ever hand out the same id.
    node_slot: Option<i64>,
}

/// Node ids a cluster's producer-id space is split between.
pub const NODES_MAX: i64 = 1024;

impl ProducerIdAllocator {
    pub fn open(dir: &Path) -> Result<Self, ProducerIdError> {
        let path = dir.join(FILE_NAME);
        let start = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(0)
            .max(0);
        Ok(ProducerIdAllocator {
            path,
            next_id: start,
            block_end: start,
            node_slot: None,
        })
    }

    /// The allocator of broker `node_id` in a cluster (ids unique across brokers).
    pub fn open_strided(dir: &Path, node_id: i32) -> Result<Self, ProducerIdError> {
        if !(0..NODES_MAX).contains(&(node_id as i64)) {
            return Err(ProducerIdError::NodeIdTooLarge { node_id });
        }
        let mut allocator = ProducerIdAllocator::open(dir)?;
        allocator.node_slot = Some(node_id as i64);
        Ok(allocator)
    }

    pub fn next(&mut self) -> Result<i64, ProducerIdError> {
        if self.next_id >= self.block_end {
            let end = self.next_id + BLOCK_SIZE;
            let tmp = self.path.with_extension("tmp");
            let io = |source| ProducerIdError::Io {
                path: self.path.clone(),
                source,
            };
            std::fs::write(&tmp, format!("{end}\n")).map_err(io)?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            std::fs::rename(&tmp, &self.path).map_err(io)?;
            self.block_end = end;
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok(match self.node_slot {
            Some(slot) => id * NODES_MAX + slot,
            None => id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_restart_when_allocating_should_never_repeat_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = ProducerIdAllocator::open(dir.path()).unwrap();
        let a: Vec<i64> = (0..3).map(|_| first.next().unwrap()).collect();
        drop(first);
        let mut second = ProducerIdAllocator::open(dir.path()).unwrap();
        let b = second.next().unwrap();
        assert_eq!(a, vec![0, 1, 2]);
        assert!(b > 2, "restart skips to the next block, got {b}");
    }

    #[test]
    fn given_two_brokers_when_allocating_should_never_share_an_id() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let mut first = ProducerIdAllocator::open_strided(one.path(), 1).unwrap();
        let mut second = ProducerIdAllocator::open_strided(two.path(), 2).unwrap();
        let a: Vec<i64> = (0..100).map(|_| first.next().unwrap()).collect();
        let b: Vec<i64> = (0..100).map(|_| second.next().unwrap()).collect();
        assert!(a.iter().all(|id| id % NODES_MAX == 1));
        assert!(b.iter().all(|id| id % NODES_MAX == 2));
        assert!(ProducerIdAllocator::open_strided(one.path(), 1024).is_err());
    }
}
