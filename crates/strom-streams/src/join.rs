//! Stream joins: stream-table (a lookup of the table's current value) and stream-stream
//! within a [`JoinWindows`] (both sides buffered in window stores).

use std::sync::Arc;

use crate::builder::{Data, PassNode};
use crate::record::Rec;
use crate::serdes::SerdeRef;
use crate::store::layout::{decode_list, encode_list, split_time_keyed, time_bytes, time_keyed};
use crate::stream::KStream;
use crate::table::KTable;
use crate::task::{corrupt, TaskContext};
use crate::topology::{Node, NodeId};
use crate::{StreamsError, TopologyError};

/// Records of two streams join when their keys are equal and the other's timestamp is
/// within `[t - before_ms, t + after_ms]` of this one's `t`. Records are buffered until
/// stream time passes `t + before + after + grace`; a record later than that is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: i64,
}

impl JoinWindows {
    /// Symmetric: within `difference_ms` either way, no grace.
    pub fn of(difference_ms: i64) -> JoinWindows {
        JoinWindows {
            before_ms: difference_ms,
            after_ms: difference_ms,
            grace_ms: 0,
        }
    }

    pub fn grace(mut self, grace_ms: i64) -> JoinWindows {
        self.grace_ms = grace_ms;
        self
    }

    fn retention_ms(&self) -> i64 {
        self.before_ms
            .saturating_add(self.after_ms)
            .saturating_add(self.grace_ms)
    }

    /// The same windows seen from the other stream.
    fn reversed(&self) -> JoinWindows {
        JoinWindows {
            before_ms: self.after_ms,
            after_ms: self.before_ms,
            grace_ms: self.grace_ms,
        }
    }
}

type StreamJoiner<VA, VB, VR> = Arc<dyn Fn(Option<&VA>, Option<&VB>) -> VR + Send + Sync>;

impl<K: Data, V: Data> KStream<K, V> {
    /// Each record joined with the table's current value for its key; records without one
    /// are dropped.
    pub fn join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.table_join_with(table, Arc::new(move |v, t| Some(joiner(v, t?))))
    }

    /// Each record joined with the table's current value for its key, if any.
    pub fn left_join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.table_join_with(table, Arc::new(move |v, t| Some(joiner(v, t))))
    }

    fn table_join_with<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>,
    ) -> KStream<K, VR> {
        let stream = self.repartitioned("stream-table join");
        let unbuilt = KStream::new(self.builder.clone(), self.node, None, None, false);
        let Some((_, store, keys, values)) = table.materialized("stream-table join") else {
            return unbuilt;
        };
        let node = self.builder.add_node(
            "KSTREAM-JOIN-TABLE",
            StreamTableJoinNode {
                store,
                keys: keys.clone(),
                values,
                joiner,
            },
            &[stream.node],
        );
        KStream::new(self.builder.clone(), node, Some(keys), None, false)
    }

    /// Pairs of records with equal keys within `windows`.
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        self.stream_join_with(
            other,
            Arc::new(move |a, b| match (a, b) {
                (Some(a), Some(b)) => Some(joiner(a, b)),
                _ => None,
            }),
            windows,
            (false, false),
        )
    }

    /// Like `join`, and each record of this stream that found no partner by the time its
    /// window closed is emitted once with `None`.
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        self.stream_join_with(
            other,
            Arc::new(move |a, b| a.map(|a| joiner(a, b))),
            windows,
            (true, false),
        )
    }

    /// Like `join`, and each record of either stream that found no partner by the time
    /// its window closed is emitted once with `None` for the other side.
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        self.stream_join_with(
            other,
            Arc::new(move |a, b| Some(joiner(a, b))),
            windows,
            (true, true),
        )
    }

    fn stream_join_with<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: StreamJoiner<V, VO, Option<VR>>,
        windows: JoinWindows,
        (left_outer, right_outer): (bool, bool),
    ) -> KStream<K, VR> {
        let unbuilt = KStream::new(self.builder.clone(), self.node, None, None, false);
        if windows.before_ms < 0 || windows.after_ms < 0 || windows.grace_ms < 0 {
            self.builder.error(TopologyError::InvalidWindows {
                operation: "stream-stream join",
            });
            return unbuilt;
        }
        let left = self.repartitioned("stream-stream join");
        let right = other.repartitioned("stream-stream join");
        let (Some((keys, left_values)), Some((_, right_values))) = (
            left.require_serdes("stream-stream join"),
            right.require_serdes("stream-stream join"),
        ) else {
            return unbuilt;
        };
        let name = self.builder.next_name("KSTREAM-JOIN");
        let store = |suffix: &str| {
            let store = format!("{name}-{suffix}-store");
            self.builder.add_store(&store);
            store
        };
        let (left_store, right_store) = (store("this"), store("other"));
        let left_pending = left_outer.then(|| store("this-unmatched"));
        let right_pending = right_outer.then(|| store("other-unmatched"));
        let swapped = joiner.clone();
        let left_node = self.builder.add_node(
            "KSTREAM-JOINTHIS",
            StreamJoinSideNode::<K, V, VO, VR> {
                own_store: left_store.clone(),
                other_store: right_store.clone(),
                own_pending: left_pending.clone(),
                other_pending: right_pending.clone(),
                keys: keys.clone(),
                own_values: left_values.clone(),
                other_values: right_values.clone(),
                windows,
                joiner,
            },
            &[left.node],
        );
        let right_node = self.builder.add_node(
            "KSTREAM-JOINOTHER",
            StreamJoinSideNode::<K, VO, V, VR> {
                own_store: right_store,
                other_store: left_store,
                own_pending: right_pending,
                other_pending: left_pending,
                keys: keys.clone(),
                own_values: right_values,
                other_values: left_values,
                windows: windows.reversed(),
                joiner: Arc::new(move |b, a| swapped(a, b)),
            },
            &[right.node],
        );
        let merged =
            self.builder
                .add_node("KSTREAM-JOIN-MERGE", PassNode, &[left_node, right_node]);
        KStream::new(self.builder.clone(), merged, Some(keys), None, false)
    }
}

struct StreamTableJoinNode<K, V, VT, VR> {
    store: String,
    keys: SerdeRef<K>,
    values: SerdeRef<VT>,
    joiner: Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>,
}

impl<K: Data, V: Data, VT: Data, VR: Data> Node for StreamTableJoinNode<K, V, VT, VR> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, value)) = rec.parts::<K, V>() else {
            return Ok(());
        };
        let Some(key_bytes) = self.keys.serialize(key) else {
            return Ok(());
        };
        let row = ctx.get_value(&self.store, &self.values, &key_bytes)?;
        if let Some(joined) = (self.joiner)(value, row.as_ref()) {
            out.push(Rec {
                key: rec.key.clone(),
                value: Arc::new(joined),
                timestamp_ms: rec.timestamp_ms,
            });
        }
        Ok(())
    }
}

/// One side of a stream-stream join. Stores are keyed `time ++ key` so that expiry is a
/// prefix range; a lookup scans the window's time range and keeps the equal keys.
struct StreamJoinSideNode<K, VA, VB, VR> {
    own_store: String,
    other_store: String,
    /// Own records not yet joined (outer side only).
    own_pending: Option<String>,
    other_pending: Option<String>,
    keys: SerdeRef<K>,
    own_values: SerdeRef<VA>,
    other_values: SerdeRef<VB>,
    windows: JoinWindows,
    joiner: StreamJoiner<VA, VB, Option<VR>>,
}

fn append(
    ctx: &mut TaskContext,
    store: &str,
    key: &[u8],
    value: Vec<u8>,
) -> Result<(), StreamsError> {
    let mut values = ctx
        .get(store, key)?
        .map(|b| decode_list(&b))
        .unwrap_or_default();
    values.push(value);
    ctx.put(store, key, Some(&encode_list(&values)))
}

impl<K: Data, VA: Data, VB: Data, VR: Data> Node for StreamJoinSideNode<K, VA, VB, VR> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, value)) = rec.parts::<K, VA>() else {
            return Ok(());
        };
        let Some(key_bytes) = self.keys.serialize(key) else {
            return Ok(());
        };
        let t = rec.timestamp_ms;
        if t.saturating_add(self.windows.retention_ms()) < ctx.stream_time_ms() {
            ctx.dropped_late_records += 1;
            return Ok(());
        }
        let own_key = time_keyed(t, &key_bytes);
        append(
            ctx,
            &self.own_store,
            &own_key,
            self.own_values.serialize(value).unwrap_or_default(),
        )?;
        let from = time_bytes(t.saturating_sub(self.windows.before_ms));
        let to = time_bytes(t.saturating_add(self.windows.after_ms).saturating_add(1));
        let mut matched = false;
        for (other_key, bytes) in ctx.range(&self.other_store, &from, &to)? {
            let Some((other_time, other_key_bytes)) = split_time_keyed(&other_key) else {
                continue;
            };
            if other_key_bytes != key_bytes.as_slice() {
                continue;
            }
            matched = true;
            if let Some(pending) = &self.other_pending {
                ctx.put(pending, &other_key, None)?;
            }
            for item in decode_list(&bytes) {
                let other = self
                    .other_values
                    .deserialize(Some(&item))
                    .map_err(corrupt(&self.other_store))?;
                if let Some(joined) = (self.joiner)(Some(value), Some(&other)) {
                    out.push(Rec::new(key.clone(), joined, t.max(other_time)));
                }
            }
        }
        if !matched {
            if let Some(pending) = &self.own_pending {
                append(
                    ctx,
                    pending,
                    &own_key,
                    self.own_values.serialize(value).unwrap_or_default(),
                )?;
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
        // Records whose every possible partner is past: expire; unmatched ones (outer
        // side) are emitted alone.
        let expired_before = time_bytes(
            ctx.stream_time_ms()
                .saturating_sub(self.windows.retention_ms()),
        );
        if let Some(pending) = &self.own_pending {
            for (pending_key, bytes) in ctx.range(pending, &[], &expired_before)? {
                ctx.put(pending, &pending_key, None)?;
                let Some((time, key_bytes)) = split_time_keyed(&pending_key) else {
                    continue;
                };
                let key = self
                    .keys
                    .deserialize(Some(key_bytes))
                    .map_err(corrupt(pending))?;
                for item in decode_list(&bytes) {
                    let value = self
                        .own_values
                        .deserialize(Some(&item))
                        .map_err(corrupt(pending))?;
                    if let Some(joined) = (self.joiner)(Some(&value), None) {
                        out.push(Rec::new(key.clone(), joined, time));
                    }
                }
            }
        }
        for (own_key, _) in ctx.range(&self.own_store, &[], &expired_before)? {
            ctx.put(&self.own_store, &own_key, None)?;
        }
        Ok(())
    }

    fn punctuates(&self) -> bool {
        true
    }
}
