//! The simulation's internal-topic partitions: an in-memory log with a high watermark, and
//! the replay a new leader does (the same decoding and the same state-machine calls as the
//! broker's loaders), so a leadership move rebuilds state from the records alone.

use bytes::Bytes;

use strom_coordinator::group::coordinator::{Coordinator, PendingTxnOffset};
use strom_coordinator::group::records::{self, RecordKey};
use strom_coordinator::group::{consumer_records, Action, GroupConfig};
use strom_coordinator::txn::records as txn_records;
use strom_coordinator::txn::state::{TxnLimits, TxnMetadata, TxnStateMachine};

/// One entry of a partition log.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A key/value record; `writer` is the transactional producer (id, epoch) of a
    /// TxnOffsetCommit's records.
    Record {
        key: Bytes,
        value: Option<Bytes>,
        writer: Option<(i64, i16)>,
    },
    /// A COMMIT or ABORT control marker.
    Marker { producer_id: i64, commit: bool },
}

/// A partition as its leader sees it: entries up to `committed` are on the in-sync
/// replicas; the rest is lost if leadership moves before they get there.
#[derive(Debug, Default)]
pub struct Log {
    pub entries: Vec<Entry>,
    pub committed: usize,
    /// Bumped on every leadership move, so waits started under an older leader fail.
    pub leader_epoch: u32,
}

impl Log {
    pub fn end(&self) -> usize {
        self.entries.len()
    }

    pub fn append(&mut self, entry: Entry) -> usize {
        self.entries.push(entry);
        self.entries.len()
    }

    /// The replicas catch up to somewhere between the high watermark and the log end.
    pub fn replicate_to(&mut self, offset: usize) {
        self.committed = self.committed.max(offset.min(self.entries.len()));
    }

    /// A new leader: the uncommitted tail is gone.
    pub fn move_leader(&mut self) {
        self.entries.truncate(self.committed);
        self.leader_epoch += 1;
    }
}

/// The records a group coordinator's actions ask for (what the broker's runtime appends);
/// the other actions (parked answers) are returned.
pub fn write_group_actions(log: &mut Log, actions: Vec<Action>) -> Vec<Action> {
    let mut answers = Vec::new();
    for action in actions {
        match action {
            Action::WriteGroup { group_id, value } => {
                let deleted = value.is_none();
                log.append(Entry::Record {
                    key: records::encode_group_key(&group_id),
                    value: value.as_ref().map(records::encode_group_value),
                    writer: None,
                });
                if deleted {
                    log.append(Entry::Record {
                        key: consumer_records::encode_key(&group_id),
                        value: None,
                        writer: None,
                    });
                }
            }
            Action::WriteConsumerGroup { group_id, value } => {
                log.append(Entry::Record {
                    key: consumer_records::encode_key(&group_id),
                    value,
                    writer: None,
                });
            }
            Action::DeleteOffsets {
                group_id,
                partitions,
            } => {
                for (topic, partition) in partitions {
                    log.append(Entry::Record {
                        key: records::encode_offset_key(&group_id, &topic, partition),
                        value: None,
                        writer: None,
                    });
                }
            }
            other => answers.push(other),
        }
    }
    answers
}

/// A new group coordinator's state: `entries` replayed in order, as the broker's
/// `__consumer_offsets` loader does.
pub fn replay_groups(
    entries: &[Entry],
    config: GroupConfig,
    seed: u64,
    now_ms: i64,
) -> Coordinator {
    let mut state = Coordinator::new(config, seed);
    for entry in entries {
        let (key, value, writer) = match entry {
            Entry::Marker {
                producer_id,
                commit,
            } => {
                state.complete_txn_offsets(now_ms, *producer_id, *commit, |_| true);
                continue;
            }
            Entry::Record { key, value, writer } => (key, value, writer),
        };
        let key = records::decode_key(key).expect("the simulation writes decodable keys");
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let value = value.as_deref().map(|v| {
                    records::decode_offset_value(v)
                        .expect("the simulation writes decodable offsets")
                });
                match (writer, value) {
                    (Some((producer_id, _)), Some(value)) => state.add_pending_txn_offsets(
                        *producer_id,
                        vec![PendingTxnOffset {
                            group_id: group,
                            topic,
                            partition,
                            value,
                        }],
                    ),
                    (_, value) => state.replay_offset(now_ms, &group, &topic, partition, value),
                }
            }
            RecordKey::Group { group } => {
                let value = value.as_deref().map(|v| {
                    records::decode_group_value(v).expect("the simulation writes decodable groups")
                });
                state.replay_group(now_ms, &group, value);
            }
            RecordKey::ConsumerGroup { group } => {
                state.replay_consumer_group(now_ms, &group, value.as_deref());
            }
            RecordKey::Other(_) => {}
        }
    }
    state
}

/// The record of a transaction state change.
pub fn txn_entry(metadata: &TxnMetadata) -> Entry {
    Entry::Record {
        key: txn_records::encode_key(&metadata.transactional_id),
        value: Some(txn_records::encode_value(metadata)),
        writer: None,
    }
}

/// A new transaction coordinator's state: `entries` replayed in order.
pub fn replay_txns(entries: &[Entry], limits: TxnLimits) -> TxnStateMachine {
    let mut state = TxnStateMachine::new(limits);
    for entry in entries {
        let Entry::Record { key, value, .. } = entry else {
            continue;
        };
        let Some(id) = txn_records::decode_key(key).expect("decodable transaction key") else {
            continue;
        };
        match value {
            None => state.remove(&id),
            Some(value) => state.install(
                txn_records::decode_value(&id, value).expect("decodable transaction value"),
            ),
        }
    }
    state
}
