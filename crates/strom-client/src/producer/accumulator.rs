//! Per-partition batching: records collect in an open batch per partition until it is
//! full (`batch_size_bytes`) or old (`linger`), then wait in a ready queue for the sender.
//!
//! Pure state: no I/O, time comes in as an argument, so batching is tested without
//! sockets or sleeps.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_protocol::record::RecordToEncode;
use tokio::sync::oneshot;

use super::RecordMetadata;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

/// Bytes a record adds to a batch beyond key, value and headers (length, attributes,
/// varint deltas), at most.
pub const RECORD_OVERHEAD_BYTES_MAX: usize = 21;

pub fn record_size_bytes(record: &RecordToEncode) -> usize {
    RECORD_OVERHEAD_BYTES_MAX
        + record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + record
            .headers
            .iter()
            .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()
}

pub type Waiter = oneshot::Sender<Result<RecordMetadata>>;

#[derive(Debug)]
pub struct ProducerBatch {
    pub topic_partition: TopicPartition,
    /// The records until the batch is encoded; emptied then (the encoded bytes are what
    /// a retry resends), so a batch in flight holds its data once, not twice.
    pub records: Vec<RecordToEncode>,
    /// Each record's timestamp, kept after encoding for the acknowledgements.
    pub timestamps_ms: Vec<i64>,
    pub waiters: Vec<Waiter>,
    pub size_bytes: usize,
    pub created: Instant,
    /// Sends so far (0 before the first).
    pub attempts: u32,
    /// Set when first sent; a retry resends the same bytes (same sequence numbers).
    pub encoded: Option<Bytes>,
    pub retry_at: Option<Instant>,
}

impl ProducerBatch {
    fn new(topic_partition: TopicPartition, now: Instant) -> Self {
        ProducerBatch {
            topic_partition,
            records: Vec::new(),
            timestamps_ms: Vec::new(),
            waiters: Vec::new(),
            size_bytes: 0,
            created: now,
            attempts: 0,
            encoded: None,
            retry_at: None,
        }
    }

    pub fn record_count(&self) -> usize {
        self.waiters.len()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// An open batch of this partition was closed by this append (full).
    pub batch_closed: bool,
    /// This append opened a new batch (so there is a new linger deadline).
    pub batch_created: bool,
}

#[derive(Debug)]
pub struct Accumulator {
    batch_size_bytes: usize,
    linger: Duration,
    open: HashMap<TopicPartition, ProducerBatch>,
    /// Closed batches in the order they must be sent (per partition), retries first.
    ready: VecDeque<ProducerBatch>,
}

impl Accumulator {
    pub fn new(batch_size_bytes: usize, linger: Duration) -> Self {
        Accumulator {
            batch_size_bytes: batch_size_bytes.max(1),
            linger,
            open: HashMap::new(),
            ready: VecDeque::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty() && self.ready.is_empty()
    }

    pub fn append(
        &mut self,
        topic_partition: TopicPartition,
        record: RecordToEncode,
        waiter: Waiter,
        now: Instant,
    ) -> AppendOutcome {
        let size = record_size_bytes(&record);
        let mut outcome = AppendOutcome::default();
        if let Some(batch) = self.open.get(&topic_partition) {
            if !batch.records.is_empty() && batch.size_bytes + size > self.batch_size_bytes {
                let full = self.open.remove(&topic_partition).expect("present");
                self.ready.push_back(full);
                outcome.batch_closed = true;
            }
        }
        let batch = self.open.entry(topic_partition.clone()).or_insert_with(|| {
            outcome.batch_created = true;
            ProducerBatch::new(topic_partition.clone(), now)
        });
        batch.timestamps_ms.push(record.timestamp_ms);
        batch.records.push(record);
        batch.waiters.push(waiter);
        batch.size_bytes += size;
        if batch.size_bytes >= self.batch_size_bytes {
            let full = self.open.remove(&topic_partition).expect("present");
            self.ready.push_back(full);
            outcome.batch_closed = true;
        }
        outcome
    }

    /// Takes the batches that may be sent now: ready ones whose retry time has come,
    /// plus open ones older than `linger` (all open ones when `flush`). At most one batch
    /// per partition (a Produce request carries one per partition), and none for a
    /// partition `can_send` refuses. Per-partition order is kept: a partition whose first
    /// ready batch must wait blocks its later ones.
    pub fn drain(
        &mut self,
        now: Instant,
        flush: bool,
        mut can_send: impl FnMut(&TopicPartition) -> bool,
    ) -> (Vec<ProducerBatch>, Vec<TopicPartition>) {
        let expired: Vec<TopicPartition> = self
            .open
            .iter()
            .filter(|(_, batch)| flush || now.duration_since(batch.created) >= self.linger)
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut closed = Vec::with_capacity(expired.len());
        for topic_partition in expired {
            let batch = self.open.remove(&topic_partition).expect("present");
            self.ready.push_back(batch);
            closed.push(topic_partition);
        }
        let mut taken = Vec::new();
        let mut blocked: HashSet<TopicPartition> = HashSet::new();
        let mut remaining = VecDeque::with_capacity(self.ready.len());
        while let Some(batch) = self.ready.pop_front() {
            let topic_partition = &batch.topic_partition;
            let waiting = batch.retry_at.is_some_and(|at| at > now);
            if blocked.contains(topic_partition) || waiting || !can_send(topic_partition) {
                blocked.insert(topic_partition.clone());
                remaining.push_back(batch);
                continue;
            }
            blocked.insert(topic_partition.clone());
            taken.push(batch);
        }
        self.ready = remaining;
        (taken, closed)
    }

    /// Puts a batch back at the head of its partition's queue, for a retry.
    pub fn requeue(&mut self, batch: ProducerBatch) {
        self.ready.push_front(batch);
    }

    /// When the sender must look again even if nothing new arrives: the next linger
    /// expiry or retry time after `now`. Ready batches held back by in-flight limits are
    /// not deadlines; a completing request wakes the sender for them.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let lingering = self.open.values().map(|b| b.created + self.linger);
        let retrying = self.ready.iter().filter_map(|b| b.retry_at);
        lingering.chain(retrying).filter(|at| *at > now).min()
    }

    /// Removes every batch (when the producer gives up), for their waiters to be failed.
    pub fn take_all(&mut self) -> Vec<ProducerBatch> {
        let mut all: Vec<ProducerBatch> = self.ready.drain(..).collect();
        all.extend(self.open.drain().map(|(_, batch)| batch));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from("t"),
            partition,
        }
    }

    fn record(value_bytes: usize) -> RecordToEncode {
        RecordToEncode {
            key: None,
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            headers: vec![],
            timestamp_ms: 0,
        }
    }

    fn waiter() -> Waiter {
        oneshot::channel().0
    }

    #[test]
    fn given_records_below_batch_size_when_linger_not_elapsed_should_hold_them() {
        let start = Instant::now();
        let mut accumulator = Accumulator::new(1000, Duration::from_millis(5));
        accumulator.append(tp(0), record(10), waiter(), start);
        accumulator.append(tp(0), record(10), waiter(), start);
        let (taken, _) = accumulator.drain(start + Duration::from_millis(1), false, |_| true);
        assert!(taken.is_empty());
        assert_eq!(
            accumulator.next_deadline(start),
            Some(start + Duration::from_millis(5))
        );
        let (taken, closed) = accumulator.drain(start + Duration::from_millis(5), false, |_| true);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].record_count(), 2);
        assert_eq!(closed, vec![tp(0)]);
        assert!(accumulator.is_empty());
    }

    #[test]
    fn given_batch_size_reached_when_appending_should_close_batch_and_start_new_one() {
        let start = Instant::now();
        let size = record_size_bytes(&record(100));
        let mut accumulator = Accumulator::new(size * 3, Duration::from_secs(60));
        let outcomes: Vec<bool> = (0..7)
            .map(|_| {
                accumulator
                    .append(tp(0), record(100), waiter(), start)
                    .batch_closed
            })
            .collect();
        assert_eq!(
            outcomes,
            vec![false, false, true, false, false, true, false]
        );
        // Full batches go without waiting for linger, one per partition per drain.
        let (first, _) = accumulator.drain(start, false, |_| true);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].record_count(), 3);
        let (second, _) = accumulator.drain(start, false, |_| true);
        assert_eq!(second[0].record_count(), 3);
        let (flushed, _) = accumulator.drain(start, true, |_| true);
        assert_eq!(flushed[0].record_count(), 1);
        assert!(accumulator.is_empty());
    }

    #[test]
    fn given_oversized_record_when_appended_should_form_its_own_batch() {
        let start = Instant::now();
        let mut accumulator = Accumulator::new(50, Duration::from_secs(60));
        accumulator.append(tp(0), record(10), waiter(), start);
        let outcome = accumulator.append(tp(0), record(500), waiter(), start);
        assert!(outcome.batch_closed);
        let (taken, _) = accumulator.drain(start, false, |_| true);
        assert_eq!(
            taken[0].record_count(),
            1,
            "the small record went first, alone"
        );
        let (taken, _) = accumulator.drain(start, false, |_| true);
        assert_eq!(taken[0].record_count(), 1);
        assert_eq!(
            taken[0].records[0].value.as_ref().map(|v| v.len()),
            Some(500)
        );
    }

    #[test]
    fn given_partition_blocked_or_retrying_when_draining_should_keep_order_and_skip_it() {
        let start = Instant::now();
        let mut accumulator = Accumulator::new(1, Duration::ZERO);
        for partition in [0, 0, 1] {
            accumulator.append(tp(partition), record(1), waiter(), start);
        }
        let (taken, _) = accumulator.drain(start, false, |t| t.partition != 0);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].topic_partition, tp(1));
        let (mut taken, _) = accumulator.drain(start, false, |_| true);
        assert_eq!(taken.len(), 1, "one batch per partition per request");
        let mut retry = taken.pop().expect("batch");
        retry.retry_at = Some(start + Duration::from_millis(100));
        retry.attempts = 1;
        accumulator.requeue(retry);
        let (taken, _) = accumulator.drain(start, false, |_| true);
        assert!(
            taken.is_empty(),
            "the retry waits and blocks the later batch"
        );
        let (taken, _) = accumulator.drain(start + Duration::from_millis(100), false, |_| true);
        assert_eq!(
            taken[0].attempts, 1,
            "the retried batch goes before the next one"
        );
    }
}
