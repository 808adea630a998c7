use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::*;
use crate::ids::SeededIds;
use crate::log::{MemoryMetadataLog, MetadataEntry, METADATA_LOG_DIR_NAME, METADATA_LOG_FILE_NAME};

fn open(dir: &Path) -> MetadataQuorum {
    MetadataQuorum::open_with_ids(dir, 1, "localhost", 9092, Box::new(SeededIds::new(3))).unwrap()
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join(METADATA_LOG_DIR_NAME).join(METADATA_LOG_FILE_NAME)
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::metadata(log_path(dir)).unwrap().len()
}

fn topic(name: &str, num_partitions: i32) -> CreateTopic {
    CreateTopic {
        name: name.to_string(),
        num_partitions: Some(num_partitions),
        ..CreateTopic::default()
    }
}

fn create(quorum: &mut MetadataQuorum, name: &str, num_partitions: i32) {
    let results = quorum
        .create_topics(
            &[topic(name, num_partitions)],
            false,
            &TopicDefaults::default(),
        )
        .unwrap();
    assert_eq!(results[0].error, None);
}

#[test]
fn given_empty_data_dir_when_opened_should_create_cluster_id_and_register_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = open(dir.path());
    let image = quorum.image();
    let cluster_id = image.cluster_id().unwrap();
    assert_eq!(cluster_id.len(), 22);
    assert!(cluster_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(quorum.cluster_id(), cluster_id);
    let broker = image.broker(1).unwrap();
    assert_eq!((broker.host.as_str(), broker.port), ("localhost", 9092));
    assert_eq!(image.last_offset(), Some(1));
}

#[test]
fn given_random_ids_when_opened_twice_in_different_dirs_should_get_different_cluster_ids() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = MetadataQuorum::open(a.path(), 1, "localhost", 9092).unwrap();
    let second = MetadataQuorum::open(b.path(), 1, "localhost", 9092).unwrap();
    assert_ne!(first.cluster_id(), second.cluster_id());
}

#[test]
fn given_changes_when_reopened_should_replay_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let mut quorum = open(dir.path());
        create(&mut quorum, "orders", 3);
        create(&mut quorum, "payments", 1);
        create(&mut quorum, "gone", 1);
        quorum
            .delete_topics(&[TopicRef::Name("gone".to_string())])
            .unwrap();
        let grown = quorum
            .create_partitions(
                &[CreatePartitions {
                    name: "payments".to_string(),
                    count: 4,
                    assignments: None,
                }],
                false,
            )
            .unwrap();
        assert_eq!(grown[0].error, None);
        let altered = quorum
            .alter_topic_configs(
                "orders",
                &[("retention.ms".to_string(), Some("5000".to_string()))],
                false,
            )
            .unwrap();
        assert_eq!(altered, Ok(()));
        quorum.image()
    };
    let bytes_before = log_bytes(dir.path());

    // Random ids on reopen: anything replayed must come from the log, not the generator.
    let reopened = MetadataQuorum::open(dir.path(), 1, "localhost", 9092).unwrap();
    let after = reopened.image();
    assert_eq!(*after, *before);
    assert_eq!(after.topic("payments").unwrap().partition_count(), 4);
    assert_eq!(
        after.topic("orders").unwrap().configs["retention.ms"],
        "5000"
    );
    assert!(after.topic("gone").is_none());
    assert_eq!(
        log_bytes(dir.path()),
        bytes_before,
        "a known broker re-registers nothing"
    );
}

#[test]
fn given_new_address_when_reopened_should_re_register_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_id = open(dir.path()).cluster_id().to_string();
    let quorum = MetadataQuorum::open(dir.path(), 1, "10.0.0.5", 19092).unwrap();
    let image = quorum.image();
    assert_eq!(image.cluster_id(), Some(cluster_id.as_str()));
    assert_eq!(image.broker(1).unwrap().host, "10.0.0.5");
    assert_eq!(image.broker(1).unwrap().port, 19092);
}

#[test]
fn given_validate_only_when_creating_should_write_nothing_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut quorum = open(dir.path());
    let bytes_before = log_bytes(dir.path());
    let image_before = quorum.image();
    let results = quorum
        .create_topics(&[topic("dry", 2)], true, &TopicDefaults::default())
        .unwrap();
    assert_eq!(results[0].error, None);
    let grown = quorum
        .alter_topic_configs(
            "dry",
            &[("retention.ms".to_string(), Some("1".to_string()))],
            true,
        )
        .unwrap();
    assert_eq!(
        grown.unwrap_err().code(),
        3,
        "the dry-run topic was never created"
    );
    assert_eq!(log_bytes(dir.path()), bytes_before);
    assert!(
        Arc::ptr_eq(&image_before, &quorum.image()),
        "no new image published"
    );
    drop(quorum);
    assert!(open(dir.path()).image().topic("dry").is_none());
}

#[test]
fn given_failed_requests_when_submitted_should_write_nothing_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut quorum = open(dir.path());
    create(&mut quorum, "t", 1);
    let bytes_before = log_bytes(dir.path());
    let results = quorum
        .create_topics(
            &[topic("t", 1), topic("bad name", 1)],
            false,
            &TopicDefaults::default(),
        )
        .unwrap();
    assert!(results.iter().all(|r| r.error.is_some()));
    let deleted = quorum
        .delete_topics(&[TopicRef::Name("missing".to_string())])
        .unwrap();
    assert_eq!(deleted[0].error.as_ref().unwrap().code(), 3);
    assert_eq!(log_bytes(dir.path()), bytes_before);
}

#[test]
fn given_held_snapshot_when_a_topic_is_created_should_leave_the_snapshot_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut quorum = open(dir.path());
    let snapshot = quorum.image();
    create(&mut quorum, "later", 1);
    assert!(snapshot.topic("later").is_none());
    assert!(quorum.image().topic("later").is_some());
}

#[test]
fn given_torn_last_entry_when_reopened_should_keep_earlier_topics_and_drop_the_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let (kept_id, bytes_after_first) = {
        let mut quorum = open(dir.path());
        create(&mut quorum, "kept", 2);
        let bytes = log_bytes(dir.path());
        create(&mut quorum, "torn", 2);
        (quorum.image().topic("kept").unwrap().topic_id, bytes)
    };
    let full = log_bytes(dir.path());
    OpenOptions::new()
        .write(true)
        .open(log_path(dir.path()))
        .unwrap()
        .set_len((bytes_after_first + full) / 2)
        .unwrap();

    let mut quorum = open(dir.path());
    let image = quorum.image();
    assert_eq!(image.topic("kept").unwrap().topic_id, kept_id);
    assert_eq!(image.topic("kept").unwrap().partition_count(), 2);
    assert!(image.topic("torn").is_none());
    assert_eq!(log_bytes(dir.path()), bytes_after_first);
    // The name is free again and the log continues without a hole.
    create(&mut quorum, "torn", 1);
    drop(quorum);
    assert_eq!(
        open(dir.path())
            .image()
            .topic("torn")
            .unwrap()
            .partition_count(),
        1
    );
}

#[test]
fn given_flipped_byte_in_last_entry_when_reopened_should_drop_that_entry_only() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut quorum = open(dir.path());
        create(&mut quorum, "kept", 1);
        create(&mut quorum, "flipped", 1);
    }
    let path = log_path(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    let image = open(dir.path()).image();
    assert!(image.topic("kept").is_some());
    assert!(image.topic("flipped").is_none());
}

/// A store whose appends fail on demand, like a disk that returns EIO.
struct FailingStore {
    inner: MemoryMetadataLog,
    fail: bool,
}

impl MetadataLogStore for FailingStore {
    fn append(&mut self, records: &[MetadataRecord]) -> Result<u64, MetadataError> {
        if self.fail {
            return Err(MetadataError::Fenced);
        }
        self.inner.append(records)
    }
    fn read_all(&self) -> Result<Vec<MetadataEntry>, MetadataError> {
        self.inner.read_all()
    }
    fn next_offset(&self) -> u64 {
        self.inner.next_offset()
    }
}

#[test]
fn given_failing_store_when_creating_should_return_error_and_keep_the_image() {
    let store = FailingStore {
        inner: MemoryMetadataLog::new(),
        fail: false,
    };
    let controller = Controller::new(1, Box::new(SeededIds::new(9)));
    let mut quorum = MetadataQuorum::with_store(store, controller, "localhost", 9092).unwrap();
    let before = quorum.image();
    quorum.store.fail = true;
    let error = quorum
        .create_topics(&[topic("t", 1)], false, &TopicDefaults::default())
        .unwrap_err();
    assert!(matches!(error, MetadataError::Fenced));
    assert!(Arc::ptr_eq(&before, &quorum.image()));
    assert!(quorum.image().topic("t").is_none());
}

#[test]
fn given_log_without_cluster_id_when_opened_should_refuse() {
    let mut store = MemoryMetadataLog::new();
    store
        .append(&[MetadataRecord::RegisterBroker {
            broker_id: 1,
            host: "h".to_string(),
            port: 1,
            rack: None,
            listeners: Vec::new(),
        }])
        .unwrap();
    let controller = Controller::new(1, Box::new(SeededIds::new(9)));
    let error = MetadataQuorum::with_store(store, controller, "h", 1).unwrap_err();
    assert!(matches!(error, MetadataError::MissingClusterId), "{error}");
}

#[test]
fn given_log_with_contradicting_record_when_opened_should_refuse_with_its_offset() {
    let mut store = MemoryMetadataLog::new();
    store
        .append(&[MetadataRecord::ClusterId {
            cluster_id: "abcdefghijklmnopqrstuv".to_string(),
        }])
        .unwrap();
    store
        .append(&[MetadataRecord::RemoveTopic {
            topic_id: uuid::Uuid::from_u128(77),
        }])
        .unwrap();
    let controller = Controller::new(1, Box::new(SeededIds::new(9)));
    let error = MetadataQuorum::with_store(store, controller, "h", 1).unwrap_err();
    assert!(
        matches!(error, MetadataError::Replay { offset: 1, .. }),
        "{error}"
    );
}

#[test]
fn given_data_dir_of_another_node_when_opened_should_refuse_naming_both_ids() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let error = MetadataQuorum::open(dir.path(), 2, "localhost", 9092).unwrap_err();
    assert!(
        matches!(
            &error,
            MetadataError::NodeIdMismatch {
                configured: 2,
                registered
            } if registered == &vec![1]
        ),
        "{error}"
    );
}
