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
}

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
        })
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
        Ok(id)
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
}
