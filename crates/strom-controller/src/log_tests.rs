use super::*;
use uuid::Uuid;

fn broker(broker_id: i32) -> MetadataRecord {
    MetadataRecord::RegisterBroker {
        broker_id,
        host: "localhost".to_string(),
        port: 9092,
        rack: None,
        listeners: Vec::new(),
    }
}

fn topic(name: &str, id: u128) -> MetadataRecord {
    MetadataRecord::Topic {
        name: name.to_string(),
        topic_id: Uuid::from_u128(id),
    }
}

/// The contract of [`MetadataLogStore`], run against every implementation.
fn check_store_contract<S: MetadataLogStore>(store: &mut S) {
    assert_eq!(store.next_offset(), 0);
    assert!(store.read_all().unwrap().is_empty());

    assert!(matches!(store.append(&[]), Err(MetadataError::EmptyEntry)));
    assert_eq!(store.next_offset(), 0, "a refused append writes nothing");

    assert_eq!(store.append(&[broker(1)]).unwrap(), 0);
    assert_eq!(store.append(&[topic("a", 2), topic("b", 3)]).unwrap(), 2);
    assert_eq!(store.append(&[broker(2)]).unwrap(), 3);
    assert_eq!(store.next_offset(), 4);

    let entries = store.read_all().unwrap();
    let offsets: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| (e.base_offset, e.last_offset()))
        .collect();
    assert_eq!(
        offsets,
        vec![(0, 0), (1, 2), (3, 3)],
        "no holes, entries kept whole"
    );
    assert_eq!(entries[1].records, vec![topic("a", 2), topic("b", 3)]);
}

#[test]
fn given_memory_store_when_driven_should_keep_the_store_contract() {
    check_store_contract(&mut MemoryMetadataLog::new());
}

#[test]
fn given_file_store_when_driven_should_keep_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    check_store_contract(&mut FileMetadataLog::open(dir.path()).unwrap());
}

#[test]
fn given_appended_entries_when_reopened_should_read_them_back_and_continue_offsets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = FileMetadataLog::open(dir.path()).unwrap();
        log.append(&[broker(1), topic("a", 7)]).unwrap();
        assert!(log.path().ends_with("__cluster_metadata-0/metadata.log"));
    }
    let mut log = FileMetadataLog::open(dir.path()).unwrap();
    assert_eq!(log.next_offset(), 2);
    assert_eq!(log.append(&[topic("b", 8)]).unwrap(), 2);
    let entries = log.read_all().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].records, vec![broker(1), topic("a", 7)]);
    assert_eq!(entries[1].base_offset, 2);
}

/// Writes three entries and returns the log path and the byte length after each entry.
fn three_entries(dir: &Path) -> (PathBuf, Vec<u64>) {
    let mut log = FileMetadataLog::open(dir).unwrap();
    let mut ends = Vec::new();
    for (index, records) in [
        vec![broker(1)],
        vec![topic("a", 10), topic("b", 11)],
        vec![topic("c", 12)],
    ]
    .iter()
    .enumerate()
    {
        log.append(records).unwrap();
        ends.push(std::fs::metadata(log.path()).unwrap().len());
        assert_eq!(ends.len(), index + 1);
    }
    (log.path().to_path_buf(), ends)
}

#[test]
fn given_torn_last_entry_when_opened_should_truncate_it_and_keep_earlier_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = three_entries(dir.path());
    // Cut inside the header, right after it, and inside the payload of the last entry.
    for cut in [ends[1] + 3, ends[1] + 16, ends[2] - 1] {
        let copy = tempfile::tempdir().unwrap();
        let copy_dir = copy.path().join(METADATA_LOG_DIR_NAME);
        std::fs::create_dir_all(&copy_dir).unwrap();
        let copy_path = copy_dir.join(METADATA_LOG_FILE_NAME);
        std::fs::copy(&path, &copy_path).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&copy_path)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let mut log = FileMetadataLog::open(copy.path()).unwrap();
        let entries = log.read_all().unwrap();
        assert_eq!(entries.len(), 2, "cut at {cut}");
        assert_eq!(entries[1].records, vec![topic("a", 10), topic("b", 11)]);
        assert_eq!(std::fs::metadata(&copy_path).unwrap().len(), ends[1]);
        // The next append reuses the dropped offset: no holes.
        assert_eq!(log.append(&[topic("d", 13)]).unwrap(), 3);
        drop(log);
        let reopened = FileMetadataLog::open(copy.path()).unwrap();
        assert_eq!(
            reopened.read_all().unwrap()[2].records,
            vec![topic("d", 13)]
        );
    }
}

#[test]
fn given_flipped_byte_in_last_entry_when_opened_should_drop_only_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = three_entries(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let inside_last_payload = (ends[2] - 3) as usize;
    bytes[inside_last_payload] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let log = FileMetadataLog::open(dir.path()).unwrap();
    let entries = log.read_all().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(log.next_offset(), 3);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[1]);
}

#[test]
fn given_zero_filled_tail_when_opened_should_truncate_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = three_entries(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0; 4096]);
    std::fs::write(&path, &bytes).unwrap();

    let log = FileMetadataLog::open(dir.path()).unwrap();
    assert_eq!(log.read_all().unwrap().len(), 3);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[2]);
}

#[test]
fn given_flipped_byte_in_middle_entry_when_opened_should_refuse_and_keep_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = three_entries(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let inside_second_payload = (ends[1] - 3) as usize;
    bytes[inside_second_payload] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let error = FileMetadataLog::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            error,
            MetadataError::CorruptMiddle {
                reason: FrameDefect::CrcMismatch,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        ends[2],
        "acknowledged entries must not be truncated away"
    );
}
