//! Windows: tumbling and hopping ([`TimeWindows`]), [`SlidingWindows`] and
//! [`SessionWindows`], each with a grace period, and their aggregation nodes.
//!
//! Time is stream time: the highest record timestamp the task has seen. A window is closed
//! once stream time reaches its end plus the grace period; a record that would only update
//! closed windows is late and dropped (counted in `TaskContext::dropped_late_records`).
//! Records with negative timestamps are dropped by windowed operators, as in Kafka.

use std::sync::Arc;

use crate::builder::Data;
use crate::grouped::{reducer, Aggregator, KGroupedStream, Merger};
use crate::record::{Change, Rec, Windowed};
use crate::serdes::{SerdeRef, Serdes};
use crate::store::layout::{
    decode_list, encode_list, key_prefix, keyed_session, keyed_time, prefix_end, time_from,
};
use crate::table::{KTable, WindowInfo};
use crate::task::{corrupt, TaskContext};
use crate::topology::{Node, NodeId};
use crate::{StreamsError, TopologyError};

/// Fixed-size windows `[start, start + size)` starting every `advance_ms` (tumbling when
/// the advance equals the size, hopping when it is smaller), aligned to the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: i64,
}

impl TimeWindows {
    /// Non-overlapping windows of `size_ms`, no grace.
    pub fn tumbling(size_ms: i64) -> TimeWindows {
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: 0,
        }
    }

    /// Windows of `size_ms` starting every `advance_ms`, no grace.
    pub fn hopping(size_ms: i64, advance_ms: i64) -> TimeWindows {
        TimeWindows {
            size_ms,
            advance_ms,
            grace_ms: 0,
        }
    }

    /// Accept out-of-order records this long after a window's end.
    pub fn grace(mut self, grace_ms: i64) -> TimeWindows {
        self.grace_ms = grace_ms;
        self
    }

    fn valid(&self) -> bool {
        self.size_ms > 0
            && self.advance_ms > 0
            && self.advance_ms <= self.size_ms
            && self.grace_ms >= 0
    }

    /// Starts of the windows that contain `timestamp_ms` (>= 0), latest first.
    pub fn starts_for(&self, timestamp_ms: i64) -> Vec<i64> {
        let mut starts = Vec::new();
        let mut start = timestamp_ms - timestamp_ms.rem_euclid(self.advance_ms);
        while start >= 0 && start > timestamp_ms - self.size_ms {
            starts.push(start);
            start -= self.advance_ms;
        }
        starts
    }
}

/// For each record, the window `[t - difference, t]` ending at its timestamp `t`: the
/// aggregate of every record of the key within `difference_ms` before it. A record also
/// updates the windows of later records (within `difference_ms` after it) that it falls in.
/// (Kafka's sliding windows also emit the windows starting just after each record; these
/// do not.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    pub difference_ms: i64,
    pub grace_ms: i64,
}

impl SlidingWindows {
    pub fn with_difference(difference_ms: i64) -> SlidingWindows {
        SlidingWindows {
            difference_ms,
            grace_ms: 0,
        }
    }

    pub fn grace(mut self, grace_ms: i64) -> SlidingWindows {
        self.grace_ms = grace_ms;
        self
    }
}

/// Sessions: records of a key at most `gap_ms` apart belong to one session
/// `[first, last]`; a record that falls between two sessions merges them. A session is
/// closed (final, never merged again) once stream time reaches its end + gap + grace; a
/// record whose own session would already be closed is late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub gap_ms: i64,
    pub grace_ms: i64,
}

impl SessionWindows {
    pub fn with_inactivity_gap(gap_ms: i64) -> SessionWindows {
        SessionWindows {
            gap_ms,
            grace_ms: 0,
        }
    }

    pub fn grace(mut self, grace_ms: i64) -> SessionWindows {
        self.grace_ms = grace_ms;
        self
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum WindowSpec {
    Time(TimeWindows),
    Sliding(SlidingWindows),
}

/// A grouped stream with tumbling, hopping or sliding windows.
pub struct TimeWindowedStream<K, V> {
    pub(crate) grouped: KGroupedStream<K, V>,
    pub(crate) spec: WindowSpec,
}

/// A grouped stream with session windows.
pub struct SessionWindowedStream<K, V> {
    pub(crate) grouped: KGroupedStream<K, V>,
    pub(crate) windows: SessionWindows,
}

impl<K: Data, V: Data> TimeWindowedStream<K, V> {
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.aggregate_with(
            "count",
            Arc::new(|_, _, count: Option<i64>| count.unwrap_or(0) + 1),
            Some(Serdes::i64()),
        )
    }

    pub fn reduce(
        &self,
        f: impl Fn(&V, &V) -> V + Send + Sync + 'static,
    ) -> KTable<Windowed<K>, V> {
        let values = self.grouped.value_serde("reduce");
        self.aggregate_with("reduce", reducer(f), values)
    }

    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, &V, &A) -> A + Send + Sync + 'static,
        aggregates: SerdeRef<A>,
    ) -> KTable<Windowed<K>, A> {
        self.aggregate_with(
            "aggregate",
            Arc::new(move |key, value, acc: Option<A>| f(key, value, &acc.unwrap_or_else(&init))),
            Some(aggregates),
        )
    }

    fn aggregate_with<A: Data>(
        &self,
        operation: &'static str,
        aggregator: Aggregator<K, V, A>,
        aggregates: Option<SerdeRef<A>>,
    ) -> KTable<Windowed<K>, A> {
        let builder = self.grouped.stream.builder.clone();
        let parent = self.grouped.stream.node;
        let keys = self.grouped.key_serde(operation);
        let unbuilt = || KTable::new(builder.clone(), parent, None, None, None, None);
        match self.spec {
            WindowSpec::Time(windows) => {
                if !windows.valid() {
                    builder.error(TopologyError::InvalidWindows { operation });
                    return unbuilt();
                }
                let (Some(keys), Some(aggregates)) = (keys, aggregates) else {
                    return unbuilt();
                };
                let store = self.grouped.store("KSTREAM-WINDOW-AGGREGATE");
                builder.add_store(&store);
                let node = builder.add_node(
                    "KSTREAM-WINDOW-AGGREGATE",
                    TimeWindowAggNode {
                        store: store.clone(),
                        keys: keys.clone(),
                        aggregates: aggregates.clone(),
                        aggregator,
                        windows,
                    },
                    &[parent],
                );
                KTable::new(
                    builder,
                    node,
                    Some(Serdes::time_windowed(keys, windows.size_ms)),
                    Some(aggregates),
                    None,
                    Some(WindowInfo {
                        close_after_end_ms: windows.grace_ms,
                    }),
                )
            }
            WindowSpec::Sliding(windows) => {
                if windows.difference_ms <= 0 || windows.grace_ms < 0 {
                    builder.error(TopologyError::InvalidWindows { operation });
                    return unbuilt();
                }
                let values = self.grouped.value_serde(operation);
                let (Some(keys), Some(values), Some(aggregates)) = (keys, values, aggregates)
                else {
                    return unbuilt();
                };
                let store = self.grouped.store("KSTREAM-SLIDING-AGGREGATE");
                builder.add_store(&store);
                let node = builder.add_node(
                    "KSTREAM-SLIDING-AGGREGATE",
                    SlidingAggNode {
                        store: store.clone(),
                        keys: keys.clone(),
                        values,
                        aggregator,
                        windows,
                    },
                    &[parent],
                );
                KTable::new(
                    builder,
                    node,
                    Some(Serdes::time_windowed(keys, windows.difference_ms)),
                    Some(aggregates),
                    None,
                    // Sliding windows include their end.
                    Some(WindowInfo {
                        close_after_end_ms: windows.grace_ms.saturating_add(1),
                    }),
                )
            }
        }
    }
}

/// Delete a key's windows that start before `retained_from` (closed past their grace).
fn expire_before(
    ctx: &mut TaskContext,
    store: &str,
    key_bytes: &[u8],
    retained_from: i64,
) -> Result<(), StreamsError> {
    let expired = ctx.range(
        store,
        &key_prefix(key_bytes),
        &keyed_time(key_bytes, retained_from),
    )?;
    for (store_key, _) in expired {
        ctx.put(store, &store_key, None)?;
    }
    Ok(())
}

pub(crate) struct TimeWindowAggNode<K, V, A> {
    store: String,
    keys: SerdeRef<K>,
    aggregates: SerdeRef<A>,
    aggregator: Aggregator<K, V, A>,
    windows: TimeWindows,
}

impl<K: Data, V: Data, A: Data> Node for TimeWindowAggNode<K, V, A> {
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
        if rec.timestamp_ms < 0 {
            ctx.skipped_records += 1;
            return Ok(());
        }
        let stream_time = ctx.stream_time_ms();
        let mut updated = false;
        for start in self.windows.starts_for(rec.timestamp_ms) {
            let end = start + self.windows.size_ms;
            if end.saturating_add(self.windows.grace_ms) <= stream_time {
                continue;
            }
            updated = true;
            let store_key = keyed_time(&key_bytes, start);
            let old = ctx.get_value(&self.store, &self.aggregates, &store_key)?;
            let new = (self.aggregator)(key, value, old.clone());
            ctx.put(
                &self.store,
                &store_key,
                self.aggregates.serialize(&new).as_deref(),
            )?;
            out.push(Rec::new(
                Windowed {
                    key: key.clone(),
                    start_ms: start,
                    end_ms: end,
                },
                Change {
                    new: Some(new),
                    old,
                },
                rec.timestamp_ms,
            ));
        }
        if !updated {
            ctx.dropped_late_records += 1;
        }
        // Windows of this key that closed are of no more use: drop them (retention).
        let retained_from = stream_time
            .saturating_sub(self.windows.size_ms)
            .saturating_sub(self.windows.grace_ms)
            .saturating_add(1);
        expire_before(ctx, &self.store, &key_bytes, retained_from)
    }
}

pub(crate) struct SlidingAggNode<K, V, A> {
    store: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
    aggregator: Aggregator<K, V, A>,
    windows: SlidingWindows,
}

impl<K: Data, V: Data, A: Data> Node for SlidingAggNode<K, V, A> {
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
        let t = rec.timestamp_ms;
        let difference = self.windows.difference_ms;
        let grace = self.windows.grace_ms;
        let stream_time = ctx.stream_time_ms();
        if t < 0 {
            ctx.skipped_records += 1;
            return Ok(());
        }
        if t.saturating_add(difference).saturating_add(grace) < stream_time {
            ctx.dropped_late_records += 1;
            return Ok(());
        }
        // Append the value to the key's values at t.
        let own_key = keyed_time(&key_bytes, t);
        let mut at_t = ctx
            .get(&self.store, &own_key)?
            .map(|b| decode_list(&b))
            .unwrap_or_default();
        at_t.push(self.values.serialize(value).unwrap_or_default());
        ctx.put(&self.store, &own_key, Some(&encode_list(&at_t)))?;

        let from = keyed_time(&key_bytes, t.saturating_sub(difference));
        let to = keyed_time(&key_bytes, t.saturating_add(difference).saturating_add(1));
        let mut nearby: Vec<(i64, Vec<V>)> = Vec::new();
        for (store_key, bytes) in ctx.range(&self.store, &from, &to)? {
            let time = store_key
                .get(store_key.len().saturating_sub(8)..)
                .and_then(time_from)
                .unwrap_or(i64::MIN);
            let mut values = Vec::new();
            for item in decode_list(&bytes) {
                values.push(
                    self.values
                        .deserialize(Some(&item))
                        .map_err(corrupt(&self.store))?,
                );
            }
            nearby.push((time, values));
        }
        for (end, _) in nearby.iter().filter(|(time, _)| *time >= t) {
            if end.saturating_add(grace) < stream_time {
                continue;
            }
            let start = end - difference;
            let mut acc: Option<A> = None;
            for (_, values) in nearby
                .iter()
                .filter(|(time, _)| *time >= start && time <= end)
            {
                for item in values {
                    acc = Some((self.aggregator)(key, item, acc));
                }
            }
            if let Some(acc) = acc {
                out.push(Rec::new(
                    Windowed {
                        key: key.clone(),
                        start_ms: start,
                        end_ms: *end,
                    },
                    Change {
                        new: Some(acc),
                        old: None,
                    },
                    *end,
                ));
            }
        }
        let retained_from = stream_time.saturating_sub(difference).saturating_sub(grace);
        expire_before(ctx, &self.store, &key_bytes, retained_from)
    }
}

pub(crate) struct SessionWindowAggNode<K, V, A> {
    pub store: String,
    pub keys: SerdeRef<K>,
    pub aggregates: SerdeRef<A>,
    pub aggregator: Aggregator<K, V, A>,
    pub merger: Merger<K, A>,
    pub windows: SessionWindows,
}

struct Session<A> {
    start_ms: i64,
    end_ms: i64,
    aggregate: A,
}

impl<K: Data, V: Data, A: Data> Node for SessionWindowAggNode<K, V, A> {
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
        let t = rec.timestamp_ms;
        if t < 0 {
            ctx.skipped_records += 1;
            return Ok(());
        }
        let gap = self.windows.gap_ms;
        let stream_time = ctx.stream_time_ms();
        let closed = |end: i64| {
            end.saturating_add(gap)
                .saturating_add(self.windows.grace_ms)
                <= stream_time
        };
        let prefix = key_prefix(&key_bytes);
        let mut overlapping = Vec::new();
        for (store_key, bytes) in ctx.range(&self.store, &prefix, &prefix_end(&prefix))? {
            let tail = store_key.len().saturating_sub(16);
            let end = store_key
                .get(tail..tail + 8)
                .and_then(time_from)
                .unwrap_or(i64::MIN);
            let start = store_key
                .get(tail + 8..)
                .and_then(time_from)
                .unwrap_or(i64::MIN);
            if closed(end) {
                // Retention: a closed session is final; it never merges again.
                ctx.put(&self.store, &store_key, None)?;
                continue;
            }
            if end >= t.saturating_sub(gap) && start <= t.saturating_add(gap) {
                let aggregate = self
                    .aggregates
                    .deserialize(Some(&bytes))
                    .map_err(corrupt(&self.store))?;
                overlapping.push(Session {
                    start_ms: start,
                    end_ms: end,
                    aggregate,
                });
            }
        }
        if closed(t) {
            ctx.dropped_late_records += 1;
            return Ok(());
        }
        let sessions = overlapping;
        let start = sessions.iter().map(|s| s.start_ms).fold(t, i64::min);
        let end = sessions.iter().map(|s| s.end_ms).fold(t, i64::max);
        let mut merged: Option<A> = None;
        let mut old = None;
        for session in &sessions {
            merged = Some(match merged {
                None => session.aggregate.clone(),
                Some(acc) => (self.merger)(key, &acc, &session.aggregate),
            });
            if session.start_ms == start && session.end_ms == end {
                old = Some(session.aggregate.clone());
                continue;
            }
            ctx.put(
                &self.store,
                &keyed_session(&key_bytes, session.start_ms, session.end_ms),
                None,
            )?;
            out.push(Rec::new(
                Windowed {
                    key: key.clone(),
                    start_ms: session.start_ms,
                    end_ms: session.end_ms,
                },
                Change {
                    new: None,
                    old: Some(session.aggregate.clone()),
                },
                t,
            ));
        }
        let new = (self.aggregator)(key, value, merged);
        ctx.put(
            &self.store,
            &keyed_session(&key_bytes, start, end),
            self.aggregates.serialize(&new).as_deref(),
        )?;
        out.push(Rec::new(
            Windowed {
                key: key.clone(),
                start_ms: start,
                end_ms: end,
            },
            Change {
                new: Some(new),
                old,
            },
            t,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_hopping_windows_when_a_time_falls_in_several_should_list_each_start() {
        assert_eq!(TimeWindows::tumbling(10).starts_for(25), vec![20]);
        assert_eq!(TimeWindows::hopping(10, 5).starts_for(25), vec![25, 20]);
        assert_eq!(TimeWindows::hopping(10, 5).starts_for(3), vec![0]);
        assert_eq!(TimeWindows::hopping(10, 3).starts_for(10), vec![9, 6, 3]);
    }
}
