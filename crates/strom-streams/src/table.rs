//! [`KTable`]: a changelog stream read as the latest value per key, and its operators.

use std::sync::Arc;

use crate::builder::{Data, FnNode, PassNode, StreamsBuilder};
use crate::record::{Change, Rec, Windowed};
use crate::serdes::SerdeRef;
use crate::store::layout::{split_time_keyed, time_bytes, time_keyed};
use crate::stream::KStream;
use crate::task::{corrupt, TaskContext};
use crate::topology::{Node, NodeId, TopicName};
use crate::{StreamsError, TopologyError};

/// How a windowed table's windows close: once stream time >= end + `close_after_end_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowInfo {
    pub close_after_end_ms: i64,
}

/// A table: updates flow as [`Change`]s (new and old value of a key).
pub struct KTable<K, V> {
    pub(crate) builder: StreamsBuilder,
    pub(crate) node: NodeId,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    /// The store holding the table's current values, if it is materialized.
    pub(crate) store: Option<String>,
    pub(crate) window: Option<WindowInfo>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            builder: self.builder.clone(),
            node: self.node,
            keys: self.keys.clone(),
            values: self.values.clone(),
            store: self.store.clone(),
            window: self.window,
        }
    }
}

/// Table-to-table joiner, given each side's value if present; `None` means no row.
type TableJoiner<VA, VB, VR> = Arc<dyn Fn(Option<&VA>, Option<&VB>) -> Option<VR> + Send + Sync>;

impl<K: Data, V: Data> KTable<K, V> {
    pub(crate) fn new(
        builder: StreamsBuilder,
        node: NodeId,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
        store: Option<String>,
        window: Option<WindowInfo>,
    ) -> Self {
        KTable {
            builder,
            node,
            keys,
            values,
            store,
            window,
        }
    }

    /// The name of the store holding this table (for interactive queries), if materialized.
    pub fn store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// Set the serdes used when this table must be materialized (joins of derived tables).
    pub fn with_serdes(mut self, keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        self.keys = Some(keys);
        self.values = Some(values);
        self
    }

    fn then<VO: Data>(
        &self,
        prefix: &str,
        f: impl Fn(&K, &Change<V>) -> Option<Change<VO>> + Send + Sync + 'static,
        values: Option<SerdeRef<VO>>,
    ) -> KTable<K, VO> {
        let node = self.builder.add_node(
            prefix,
            FnNode(Box::new(move |rec, out| {
                if let Some((key, change)) = rec.parts::<K, Change<V>>() {
                    if let Some(change) = f(key, change) {
                        out.push(Rec {
                            key: rec.key.clone(),
                            value: Arc::new(change),
                            timestamp_ms: rec.timestamp_ms,
                        });
                    }
                }
            })),
            &[self.node],
        );
        KTable::new(
            self.builder.clone(),
            node,
            self.keys.clone(),
            values,
            None,
            self.window,
        )
    }

    /// Rows for which `predicate` holds; a row that stops matching is deleted downstream.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        self.then(
            "KTABLE-FILTER",
            move |key, change| {
                let keep = |value: &Option<V>| value.clone().filter(|value| predicate(key, value));
                let (new, old) = (keep(&change.new), keep(&change.old));
                (new.is_some() || old.is_some()).then_some(Change { new, old })
            },
            self.values.clone(),
        )
    }

    pub fn map_values<VO: Data>(
        &self,
        f: impl Fn(&V) -> VO + Send + Sync + 'static,
    ) -> KTable<K, VO> {
        self.then(
            "KTABLE-MAPVALUES",
            move |_, change| {
                Some(Change {
                    new: change.new.as_ref().map(&f),
                    old: change.old.as_ref().map(&f),
                })
            },
            None,
        )
    }

    /// The table's updates as a stream: the new value, `None` for a deletion.
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        let node = self.builder.add_node(
            "KTABLE-TOSTREAM",
            FnNode(Box::new(move |rec, out| {
                if let Some((_, change)) = rec.parts::<K, Change<V>>() {
                    out.push(Rec {
                        key: rec.key.clone(),
                        value: Arc::new(change.new.clone()),
                        timestamp_ms: rec.timestamp_ms,
                    });
                }
            })),
            &[self.node],
        );
        KStream::new(
            self.builder.clone(),
            node,
            self.keys.clone(),
            self.values.clone().map(crate::Serdes::option),
            false,
        )
    }

    /// Write the table's updates to `topic` (a deletion as a null value).
    pub fn to(&self, topic: &str, keys: SerdeRef<K>, values: SerdeRef<V>) {
        self.builder.add_sink(
            TopicName::User(topic.to_string()),
            Arc::new(move |rec: &Rec| {
                let (key, change) = rec.parts::<K, Change<V>>()?;
                Some((
                    keys.serialize(key),
                    change.new.as_ref().and_then(|v| values.serialize(v)),
                ))
            }),
            self.node,
        );
    }

    /// This table, materialized in a store (adding a store if it is derived).
    pub(crate) fn materialized(
        &self,
        operation: &'static str,
    ) -> Option<(KTable<K, V>, String, SerdeRef<K>, SerdeRef<V>)> {
        let (Some(keys), Some(values)) = (self.keys.clone(), self.values.clone()) else {
            self.builder.error(TopologyError::MissingSerde {
                operation,
                what: "table key or value",
            });
            return None;
        };
        if let Some(store) = &self.store {
            return Some((self.clone(), store.clone(), keys, values));
        }
        let store = format!("{}-store", self.builder.next_name("KTABLE-MATERIALIZED"));
        self.builder.add_store(&store);
        let node = self.builder.add_node(
            "KTABLE-MATERIALIZE",
            MaterializeNode {
                store: store.clone(),
                keys: keys.clone(),
                values: values.clone(),
            },
            &[self.node],
        );
        let table = KTable::new(
            self.builder.clone(),
            node,
            Some(keys.clone()),
            Some(values.clone()),
            Some(store.clone()),
            self.window,
        );
        Some((table, store, keys, values))
    }

    /// Rows whose key is in both tables.
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_with(other, Arc::new(move |a, b| Some(joiner(a?, b?))))
    }

    /// Every row of this table, with the other's value where its key has one.
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_with(other, Arc::new(move |a, b| Some(joiner(a?, b))))
    }

    /// Every key of either table.
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_with(
            other,
            Arc::new(move |a, b| (a.is_some() || b.is_some()).then(|| joiner(a, b))),
        )
    }

    fn join_with<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: TableJoiner<V, VO, VR>,
    ) -> KTable<K, VR> {
        let unbuilt = KTable::new(self.builder.clone(), self.node, None, None, None, None);
        let Some((left, left_store, keys, left_values)) = self.materialized("table join") else {
            return unbuilt;
        };
        let Some((right, right_store, _, right_values)) = other.materialized("table join") else {
            return unbuilt;
        };
        let swapped = joiner.clone();
        let left_node = self.builder.add_node(
            "KTABLE-JOINTHIS",
            TableJoinNode::<K, V, VO, VR> {
                other_store: right_store,
                keys: keys.clone(),
                other_values: right_values,
                joiner,
            },
            &[left.node],
        );
        let right_node = self.builder.add_node(
            "KTABLE-JOINOTHER",
            TableJoinNode::<K, VO, V, VR> {
                other_store: left_store,
                keys: keys.clone(),
                other_values: left_values,
                joiner: Arc::new(move |b, a| swapped(a, b)),
            },
            &[right.node],
        );
        let merged = self
            .builder
            .add_node("KTABLE-MERGE", PassNode, &[left_node, right_node]);
        KTable::new(self.builder.clone(), merged, Some(keys), None, None, None)
    }
}

impl<K: Data, V: Data> KTable<Windowed<K>, V> {
    /// Hold each window's updates back and emit only its final value, once the window has
    /// closed (stream time past its end plus grace). The buffer is a changelogged store, so
    /// a restarted task still emits what it had buffered.
    pub fn suppress_until_window_closes(&self) -> KTable<Windowed<K>, V> {
        let unbuilt = KTable::new(self.builder.clone(), self.node, None, None, None, None);
        let Some(window) = self.window else {
            self.builder.error(TopologyError::NotWindowed {
                operation: "suppress_until_window_closes",
            });
            return unbuilt;
        };
        let (Some(keys), Some(values)) = (self.keys.clone(), self.values.clone()) else {
            self.builder.error(TopologyError::MissingSerde {
                operation: "suppress_until_window_closes",
                what: "windowed key or value",
            });
            return unbuilt;
        };
        let store = format!("{}-store", self.builder.next_name("KTABLE-SUPPRESS"));
        self.builder.add_store(&store);
        let node = self.builder.add_node(
            "KTABLE-SUPPRESS",
            SuppressNode {
                store,
                keys: keys.clone(),
                values: values.clone(),
                close_after_end_ms: window.close_after_end_ms,
            },
            &[self.node],
        );
        KTable::new(
            self.builder.clone(),
            node,
            Some(keys),
            Some(values),
            None,
            self.window,
        )
    }
}

/// Materializes a table source: stores the new value, emits the change with the old one.
pub(crate) struct TableSourceNode<K, V> {
    pub store: String,
    pub keys: SerdeRef<K>,
    pub values: SerdeRef<V>,
}

impl<K: Data, V: Data> Node for TableSourceNode<K, V> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, new)) = rec.parts::<K, Option<V>>() else {
            return Ok(());
        };
        let Some(key_bytes) = self.keys.serialize(key) else {
            return Ok(());
        };
        let old = ctx.get_value(&self.store, &self.values, &key_bytes)?;
        let new_bytes = new.as_ref().and_then(|value| self.values.serialize(value));
        ctx.put(&self.store, &key_bytes, new_bytes.as_deref())?;
        if old.is_none() && new.is_none() {
            return Ok(());
        }
        out.push(Rec::new(
            key.clone(),
            Change {
                new: new.clone(),
                old,
            },
            rec.timestamp_ms,
        ));
        Ok(())
    }
}

/// Stores each change's new value of a derived table and passes the change on.
pub(crate) struct MaterializeNode<K, V> {
    store: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<K: Data, V: Data> Node for MaterializeNode<K, V> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, change)) = rec.parts::<K, Change<V>>() else {
            return Ok(());
        };
        if let Some(key_bytes) = self.keys.serialize(key) {
            let new_bytes = change
                .new
                .as_ref()
                .and_then(|value| self.values.serialize(value));
            ctx.put(&self.store, &key_bytes, new_bytes.as_deref())?;
        }
        out.push(rec);
        Ok(())
    }
}

/// One side of a table-table join: a change of this side looked up in the other's store.
struct TableJoinNode<K, VA, VB, VR> {
    other_store: String,
    keys: SerdeRef<K>,
    other_values: SerdeRef<VB>,
    joiner: TableJoiner<VA, VB, VR>,
}

impl<K: Data, VA: Data, VB: Data, VR: Data> Node for TableJoinNode<K, VA, VB, VR> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, change)) = rec.parts::<K, Change<VA>>() else {
            return Ok(());
        };
        let Some(key_bytes) = self.keys.serialize(key) else {
            return Ok(());
        };
        let other = ctx.get_value(&self.other_store, &self.other_values, &key_bytes)?;
        let new = (self.joiner)(change.new.as_ref(), other.as_ref());
        let old = (self.joiner)(change.old.as_ref(), other.as_ref());
        if new.is_some() || old.is_some() {
            out.push(Rec::new(key.clone(), Change { new, old }, rec.timestamp_ms));
        }
        Ok(())
    }
}

/// The buffer of `suppress_until_window_closes`: entries keyed `close time ++ windowed key`,
/// valued `timestamp ++ value`, emitted in close-time order as stream time passes them.
struct SuppressNode<K, V> {
    store: String,
    keys: SerdeRef<Windowed<K>>,
    values: SerdeRef<V>,
    close_after_end_ms: i64,
}

impl<K: Data, V: Data> Node for SuppressNode<K, V> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        _: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, change)) = rec.parts::<Windowed<K>, Change<V>>() else {
            return Ok(());
        };
        let Some(key_bytes) = self.keys.serialize(key) else {
            return Ok(());
        };
        let close = key.end_ms.saturating_add(self.close_after_end_ms);
        let buffer_key = time_keyed(close, &key_bytes);
        match &change.new {
            // A window merged away (sessions): nothing final to say about it.
            None => ctx.put(&self.store, &buffer_key, None)?,
            Some(value) => {
                let mut bytes = rec.timestamp_ms.to_be_bytes().to_vec();
                bytes.extend_from_slice(&self.values.serialize(value).unwrap_or_default());
                ctx.put(&self.store, &buffer_key, Some(&bytes))?;
            }
        }
        Ok(())
    }

    fn punctuate(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let until = time_bytes(ctx.stream_time_ms().saturating_add(1));
        for (buffer_key, bytes) in ctx.range(&self.store, &[], &until)? {
            ctx.put(&self.store, &buffer_key, None)?;
            let Some((_, key_bytes)) = split_time_keyed(&buffer_key) else {
                continue;
            };
            let key = self
                .keys
                .deserialize(Some(key_bytes))
                .map_err(corrupt(&self.store))?;
            let (Some(timestamp), Some(value)) = (bytes.get(..8), bytes.get(8..)) else {
                continue;
            };
            let mut array = [0u8; 8];
            array.copy_from_slice(timestamp);
            let value = self
                .values
                .deserialize(Some(value))
                .map_err(corrupt(&self.store))?;
            out.push(Rec::new(
                key,
                Change {
                    new: Some(value),
                    old: None,
                },
                i64::from_be_bytes(array),
            ));
        }
        Ok(())
    }

    fn punctuates(&self) -> bool {
        true
    }
}
