//! Kafka's definition of a hanging transaction, as pure functions over what the brokers
//! reported, so it is tested without a cluster.
//!
//! A partition holds an open transaction of a producer (DescribeProducers'
//! `current_txn_start_offset`). If the producer's last write there is older than the
//! largest transaction timeout, its coordinator should long have ended it. It *hangs* when
//! the coordinator never will: no coordinator lists the producer (ListTransactions), the
//! coordinator no longer knows its transactional id, or the transaction the coordinator
//! describes does not include that partition. Such a partition's last stable offset stays
//! stuck, and read_committed consumers with it, until an operator aborts it.

use std::collections::BTreeMap;

use super::{PartitionProducer, TransactionDescription, TransactionListing};

/// An open transaction on a partition that no coordinator will end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HangingTransaction {
    pub producer: PartitionProducer,
    /// The transactional id a coordinator still maps the producer id to, if any.
    pub transactional_id: Option<String>,
    /// Now minus the producer's last write to the partition.
    pub open_for_ms: i64,
}

/// The producers with an open transaction whose last write is older than
/// `max_transaction_timeout_ms`.
pub fn hanging_candidates(
    producers: Vec<PartitionProducer>,
    max_transaction_timeout_ms: i64,
    now_ms: i64,
) -> Vec<PartitionProducer> {
    producers
        .into_iter()
        .filter(|p| {
            p.current_txn_start_offset.is_some()
                && now_ms.saturating_sub(p.last_timestamp_ms) > max_transaction_timeout_ms
        })
        .collect()
}

/// The candidates whose coordinator does not list their partition in a transaction of
/// theirs. `listings` come from ListTransactions filtered by the candidates' producer ids;
/// `descriptions` hold every listed id its coordinator still describes.
pub fn filter_hanging(
    candidates: Vec<PartitionProducer>,
    listings: &[TransactionListing],
    descriptions: &BTreeMap<String, TransactionDescription>,
    now_ms: i64,
) -> Vec<HangingTransaction> {
    let id_of_producer: BTreeMap<i64, &str> = listings
        .iter()
        .map(|l| (l.producer_id, l.transactional_id.as_str()))
        .collect();
    candidates
        .into_iter()
        .filter_map(|producer| {
            let transactional_id = id_of_producer.get(&producer.producer_id).copied();
            let coordinator_ends_it = transactional_id
                .and_then(|id| descriptions.get(id))
                .is_some_and(|d| {
                    d.partitions
                        .contains(&(producer.topic.clone(), producer.partition))
                });
            if coordinator_ends_it {
                return None;
            }
            Some(HangingTransaction {
                open_for_ms: now_ms.saturating_sub(producer.last_timestamp_ms),
                transactional_id: transactional_id.map(str::to_string),
                producer,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 10_000_000;
    const TIMEOUT_MS: i64 = 900_000;

    fn producer(partition: i32, producer_id: i64, open: bool, idle_ms: i64) -> PartitionProducer {
        PartitionProducer {
            topic: "t".into(),
            partition,
            producer_id,
            producer_epoch: 3,
            last_sequence: 9,
            last_timestamp_ms: NOW_MS - idle_ms,
            coordinator_epoch: Some(0),
            current_txn_start_offset: open.then_some(40),
        }
    }

    fn description(id: &str, producer_id: i64, partitions: &[i32]) -> TransactionDescription {
        TransactionDescription {
            transactional_id: id.into(),
            coordinator_id: 1,
            state: "Ongoing".into(),
            producer_id,
            producer_epoch: 3,
            transaction_timeout_ms: 60_000,
            transaction_start_time_ms: Some(NOW_MS - 1_000_000),
            partitions: partitions.iter().map(|&p| ("t".to_string(), p)).collect(),
        }
    }

    fn listing(id: &str, producer_id: i64) -> TransactionListing {
        TransactionListing {
            transactional_id: id.into(),
            coordinator_id: 1,
            producer_id,
            state: "Ongoing".into(),
        }
    }

    #[test]
    fn given_producers_when_filtered_should_keep_only_open_transactions_older_than_the_timeout() {
        let candidates = hanging_candidates(
            vec![
                producer(0, 1, true, TIMEOUT_MS + 1),
                producer(1, 2, true, TIMEOUT_MS),
                producer(2, 3, false, TIMEOUT_MS * 10),
                producer(3, 4, true, 5),
            ],
            TIMEOUT_MS,
            NOW_MS,
        );
        assert_eq!(
            candidates.iter().map(|c| c.producer_id).collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn given_producer_no_coordinator_lists_when_filtered_should_hang() {
        let hanging = filter_hanging(
            vec![producer(0, 7, true, TIMEOUT_MS * 2)],
            &[],
            &BTreeMap::new(),
            NOW_MS,
        );
        assert_eq!(hanging.len(), 1);
        assert_eq!(hanging[0].transactional_id, None);
        assert_eq!(hanging[0].open_for_ms, TIMEOUT_MS * 2);
    }

    #[test]
    fn given_coordinator_still_holding_the_partition_when_filtered_should_not_hang() {
        let mut descriptions = BTreeMap::new();
        descriptions.insert("app".to_string(), description("app", 7, &[0, 2]));
        let hanging = filter_hanging(
            vec![
                producer(0, 7, true, TIMEOUT_MS * 2),
                producer(1, 7, true, TIMEOUT_MS * 2),
            ],
            &[listing("app", 7)],
            &descriptions,
            NOW_MS,
        );
        // Partition 0 is in the coordinator's transaction; partition 1 was left behind.
        assert_eq!(hanging.len(), 1);
        assert_eq!(hanging[0].producer.partition, 1);
        assert_eq!(hanging[0].transactional_id.as_deref(), Some("app"));
    }

    #[test]
    fn given_listed_id_the_coordinator_forgot_when_filtered_should_hang() {
        let hanging = filter_hanging(
            vec![producer(0, 7, true, TIMEOUT_MS * 2)],
            &[listing("app", 7)],
            &BTreeMap::new(),
            NOW_MS,
        );
        assert_eq!(hanging.len(), 1);
    }
}
