//! [`KGroupedStream`]: a stream grouped by key, and its aggregations into tables.

use std::sync::Arc;

use crate::builder::Data;
use crate::record::{Change, Rec};
use crate::serdes::{SerdeRef, Serdes};
use crate::stream::KStream;
use crate::table::KTable;
use crate::task::TaskContext;
use crate::topology::{Node, NodeId};
use crate::windows::{
    SessionWindowAggNode, SessionWindowedStream, SessionWindows, SlidingWindows,
    TimeWindowedStream, TimeWindows, WindowSpec,
};
use crate::{StreamsError, TopologyError};

/// Folds one value into the aggregate so far (`None` before the key's first value).
pub(crate) type Aggregator<K, V, A> = Arc<dyn Fn(&K, &V, Option<A>) -> A + Send + Sync>;
/// The aggregator of a `reduce`: the first value as it is, then `f(aggregate, value)`.
pub(crate) fn reducer<K, V: Clone + 'static>(
    f: impl Fn(&V, &V) -> V + Send + Sync + 'static,
) -> Aggregator<K, V, V> {
    Arc::new(move |_, value: &V, acc: Option<V>| match acc {
        None => value.clone(),
        Some(acc) => f(&acc, value),
    })
}

/// Combines the aggregates of two session windows that a record joins together.
pub(crate) type Merger<K, A> = Arc<dyn Fn(&K, &A, &A) -> A + Send + Sync>;

/// A stream grouped by key (see [`KStream::group_by_key`]).
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) store_name: Option<String>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>) -> Self {
        KGroupedStream {
            stream,
            store_name: None,
        }
    }

    /// Name the aggregation's store (and so its changelog topic and interactive queries);
    /// by default a generated name.
    pub fn named(mut self, store: &str) -> Self {
        self.store_name = Some(store.to_string());
        self
    }

    pub(crate) fn store(&self, prefix: &str) -> String {
        self.store_name
            .clone()
            .unwrap_or_else(|| format!("{}-store", self.stream.builder.next_name(prefix)))
    }

    pub(crate) fn key_serde(&self, operation: &'static str) -> Option<SerdeRef<K>> {
        if self.stream.keys.is_none() {
            self.stream.builder.error(TopologyError::MissingSerde {
                operation,
                what: "key",
            });
        }
        self.stream.keys.clone()
    }

    pub(crate) fn value_serde(&self, operation: &'static str) -> Option<SerdeRef<V>> {
        if self.stream.values.is_none() {
            self.stream.builder.error(TopologyError::MissingSerde {
                operation,
                what: "value",
            });
        }
        self.stream.values.clone()
    }

    /// Records per key.
    pub fn count(&self) -> KTable<K, i64> {
        self.aggregate_with(
            "count",
            Arc::new(|_, _, count: Option<i64>| count.unwrap_or(0) + 1),
            Some(Serdes::i64()),
        )
    }

    /// Combine the values of a key with `f` (the first value as it is).
    pub fn reduce(&self, f: impl Fn(&V, &V) -> V + Send + Sync + 'static) -> KTable<K, V> {
        let values = self.value_serde("reduce");
        self.aggregate_with("reduce", reducer(f), values)
    }

    /// Fold the values of a key into an `A`, starting from `init()`.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, &V, &A) -> A + Send + Sync + 'static,
        aggregates: SerdeRef<A>,
    ) -> KTable<K, A> {
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
    ) -> KTable<K, A> {
        let builder = self.stream.builder.clone();
        let store = self.store("KSTREAM-AGGREGATE");
        let keys = self.key_serde(operation);
        let (Some(keys), Some(aggregates)) = (keys, aggregates) else {
            return KTable::new(builder, self.stream.node, None, None, None, None);
        };
        builder.add_store(&store);
        let node = builder.add_node(
            "KSTREAM-AGGREGATE",
            AggregateNode {
                store: store.clone(),
                keys: keys.clone(),
                aggregates: aggregates.clone(),
                aggregator,
            },
            &[self.stream.node],
        );
        KTable::new(
            builder,
            node,
            Some(keys),
            Some(aggregates),
            Some(store),
            None,
        )
    }

    /// Aggregate per tumbling or hopping window.
    pub fn windowed_by(self, windows: TimeWindows) -> TimeWindowedStream<K, V> {
        TimeWindowedStream {
            grouped: self,
            spec: WindowSpec::Time(windows),
        }
    }

    /// Aggregate per sliding window.
    pub fn windowed_by_sliding(self, windows: SlidingWindows) -> TimeWindowedStream<K, V> {
        TimeWindowedStream {
            grouped: self,
            spec: WindowSpec::Sliding(windows),
        }
    }

    /// Aggregate per session.
    pub fn windowed_by_session(self, windows: SessionWindows) -> SessionWindowedStream<K, V> {
        SessionWindowedStream {
            grouped: self,
            windows,
        }
    }
}

impl<K: Data, V: Data> SessionWindowedStream<K, V> {
    pub fn count(&self) -> KTable<crate::Windowed<K>, i64> {
        self.aggregate_with(
            "count",
            Arc::new(|_, _, count: Option<i64>| count.unwrap_or(0) + 1),
            Arc::new(|_, a: &i64, b: &i64| a + b),
            Some(Serdes::i64()),
        )
    }

    pub fn reduce(
        &self,
        f: impl Fn(&V, &V) -> V + Send + Sync + 'static,
    ) -> KTable<crate::Windowed<K>, V> {
        let f = Arc::new(f);
        let merge = f.clone();
        let values = self.grouped.value_serde("reduce");
        self.aggregate_with(
            "reduce",
            reducer(move |acc: &V, value: &V| f(acc, value)),
            Arc::new(move |_, a: &V, b: &V| merge(a, b)),
            values,
        )
    }

    /// Fold into an `A`; `merger` combines two sessions' aggregates when a record bridges
    /// the gap between them.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, &V, &A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, &A, &A) -> A + Send + Sync + 'static,
        aggregates: SerdeRef<A>,
    ) -> KTable<crate::Windowed<K>, A> {
        self.aggregate_with(
            "aggregate",
            Arc::new(move |key, value, acc: Option<A>| f(key, value, &acc.unwrap_or_else(&init))),
            Arc::new(merger),
            Some(aggregates),
        )
    }

    fn aggregate_with<A: Data>(
        &self,
        operation: &'static str,
        aggregator: Aggregator<K, V, A>,
        merger: Merger<K, A>,
        aggregates: Option<SerdeRef<A>>,
    ) -> KTable<crate::Windowed<K>, A> {
        let builder = self.grouped.stream.builder.clone();
        let store = self.grouped.store("KSTREAM-SESSION-AGGREGATE");
        let keys = self.grouped.key_serde(operation);
        let (Some(keys), Some(aggregates)) = (keys, aggregates) else {
            return KTable::new(builder, self.grouped.stream.node, None, None, None, None);
        };
        builder.add_store(&store);
        let windows = self.windows;
        let node = builder.add_node(
            "KSTREAM-SESSION-AGGREGATE",
            SessionWindowAggNode {
                store: store.clone(),
                keys: keys.clone(),
                aggregates: aggregates.clone(),
                aggregator,
                merger,
                windows,
            },
            &[self.grouped.stream.node],
        );
        KTable::new(
            builder,
            node,
            Some(Serdes::session_windowed(keys.clone())),
            Some(aggregates),
            None,
            Some(crate::table::WindowInfo {
                close_after_end_ms: windows.gap_ms.saturating_add(windows.grace_ms),
            }),
        )
    }
}

pub(crate) struct AggregateNode<K, V, A> {
    pub store: String,
    pub keys: SerdeRef<K>,
    pub aggregates: SerdeRef<A>,
    pub aggregator: Aggregator<K, V, A>,
}

impl<K: Data, V: Data, A: Data> Node for AggregateNode<K, V, A> {
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
        // Aggregations skip null keys, as Kafka Streams does.
        let Some(key_bytes) = self.keys.serialize(key) else {
            return Ok(());
        };
        let old =
            match ctx.get(&self.store, &key_bytes)? {
                Some(bytes) => Some(self.aggregates.deserialize(Some(&bytes)).map_err(
                    |source| StreamsError::CorruptStore {
                        store: self.store.clone(),
                        source,
                    },
                )?),
                None => None,
            };
        let new = (self.aggregator)(key, value, old.clone());
        ctx.put(
            &self.store,
            &key_bytes,
            self.aggregates.serialize(&new).as_deref(),
        )?;
        out.push(Rec::new(
            key.clone(),
            Change {
                new: Some(new),
                old,
            },
            rec.timestamp_ms,
        ));
        Ok(())
    }
}
