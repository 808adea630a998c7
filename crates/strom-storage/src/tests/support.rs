use bytes::{Bytes, BytesMut};
use strom_protocol::batch::BatchView;
use strom_protocol::record::{decode_batch, encode_batch, BatchBuilderOptions, RecordToEncode};

pub(crate) fn batch(record_count: usize, first_timestamp_ms: i64) -> Vec<u8> {
    batch_with(
        record_count,
        first_timestamp_ms,
        &BatchBuilderOptions::default(),
    )
}

pub(crate) fn batch_with(
    record_count: usize,
    first_timestamp_ms: i64,
    options: &BatchBuilderOptions,
) -> Vec<u8> {
    let records: Vec<RecordToEncode> = (0..record_count)
        .map(|i| RecordToEncode {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}-{first_timestamp_ms}"))),
            headers: vec![],
            timestamp_ms: first_timestamp_ms + i as i64,
        })
        .collect();
    encode_batch(&records, options).expect("encode").to_vec()
}

pub(crate) fn idempotent(
    record_count: usize,
    producer_id: i64,
    epoch: i16,
    sequence: i32,
) -> Vec<u8> {
    batch_with(
        record_count,
        1_000,
        &BatchBuilderOptions {
            producer_id,
            producer_epoch: epoch,
            base_sequence: sequence,
            ..Default::default()
        },
    )
}

pub(crate) fn blob(batches: &[Vec<u8>]) -> BytesMut {
    let mut out = BytesMut::new();
    for batch in batches {
        out.extend_from_slice(batch);
    }
    out
}

/// (base offset, last offset, bytes) of each batch in `bytes`, checking CRCs.
pub(crate) fn batches_of(bytes: &[u8]) -> Vec<(i64, i64, Vec<u8>)> {
    strom_protocol::batch::BatchIter::new(bytes)
        .map(|b| {
            let view = b.expect("whole batch");
            view.verify_crc().expect("crc");
            (
                view.base_offset(),
                view.last_offset(),
                view.as_bytes().to_vec(),
            )
        })
        .collect()
}

/// (offset, timestamp) of every record in `bytes`.
pub(crate) fn records_of(bytes: &[u8]) -> Vec<(i64, i64)> {
    strom_protocol::batch::BatchIter::new(bytes)
        .flat_map(|b| {
            let view: BatchView<'_> = b.expect("whole batch");
            decode_batch(&view)
                .expect("decode")
                .into_iter()
                .map(|r| (r.offset, r.timestamp_ms))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub(crate) const NOW_MS: i64 = 1_700_000_000_000;

/// Small segments and a dense index so a few batches exercise rolls and index lookups.
pub(crate) fn small_config() -> crate::LogConfig {
    crate::LogConfig {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 256,
        retention_ms: -1,
        ..Default::default()
    }
}

/// Appends `count` batches of `records_each` records; returns the stored bytes of each
/// batch as read back afterwards (offsets assigned).
pub(crate) fn append_batches(
    log: &mut crate::PartitionLog,
    count: usize,
    records_each: usize,
    first_timestamp_ms: i64,
) -> Vec<crate::AppendInfo> {
    (0..count)
        .map(|i| {
            let bytes = batch(records_each, first_timestamp_ms + i as i64 * 10);
            log.append_as_leader(blob(&[bytes]), 1, NOW_MS)
                .expect("append")
        })
        .collect()
}

/// Reads the whole log from `from` with no limits, segment after segment.
pub(crate) fn read_all(log: &crate::PartitionLog, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    for _ in 0..100_000 {
        let info = log.read(offset, u32::MAX, i64::MAX, true).expect("read");
        let Some(range) = info.records else {
            break;
        };
        let bytes = range.read_to_bytes().expect("pread");
        let batches = batches_of(&bytes);
        offset = batches.last().expect("non-empty range").1 + 1;
        out.extend_from_slice(&bytes);
    }
    out
}
