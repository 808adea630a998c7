use super::support::*;
use crate::{LogConfig, PartitionLog};

#[test]
fn given_placeholder_when_opened_should_be_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).expect("open");
    assert_eq!(log.log_end_offset(), 0);
    let _ = (
        batch(1, 0),
        blob(&[]),
        batches_of(&[]),
        records_of(&[]),
        idempotent(1, 1, 0, 0),
    );
}
