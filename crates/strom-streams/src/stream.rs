//! [`KStream`]: a record stream and its stateless operators.

use std::sync::Arc;

use crate::builder::{decoder, Data, FnNode, PassNode, StreamsBuilder};
use crate::grouped::KGroupedStream;
use crate::record::Rec;
use crate::serdes::SerdeRef;
use crate::topology::{NodeId, TopicName};
use crate::TopologyError;

/// A predicate of [`KStream::branch`].
pub type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream of key-value records. Operators return new streams; the original can be used
/// again (each use is another child of the same node).
pub struct KStream<K, V> {
    pub(crate) builder: StreamsBuilder,
    pub(crate) node: NodeId,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    /// A key-changing operator ran since the last repartition: grouping or joining must go
    /// through a repartition topic so that equal keys meet in the same task.
    pub(crate) repartition: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            builder: self.builder.clone(),
            node: self.node,
            keys: self.keys.clone(),
            values: self.values.clone(),
            repartition: self.repartition,
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(
        builder: StreamsBuilder,
        node: NodeId,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
        repartition: bool,
    ) -> Self {
        KStream {
            builder,
            node,
            keys,
            values,
            repartition,
        }
    }

    fn then<KO: Data, VO: Data>(
        &self,
        prefix: &str,
        f: impl Fn(Rec, &mut Vec<Rec>) + Send + Sync + 'static,
        keys: Option<SerdeRef<KO>>,
        values: Option<SerdeRef<VO>>,
        repartition: bool,
    ) -> KStream<KO, VO> {
        let node = self
            .builder
            .add_node(prefix, FnNode(Box::new(f)), &[self.node]);
        KStream::new(self.builder.clone(), node, keys, values, repartition)
    }

    /// Set the serdes the stream's keys and values are written with when it is grouped,
    /// joined or repartitioned (operators that change a type forget the old serde).
    pub fn with_serdes(mut self, keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        self.keys = Some(keys);
        self.values = Some(values);
        self
    }

    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.then(
            "KSTREAM-FILTER",
            move |rec, out| {
                if let Some((key, value)) = rec.parts::<K, V>() {
                    if predicate(key, value) {
                        out.push(rec);
                    }
                }
            },
            self.keys.clone(),
            self.values.clone(),
            self.repartition,
        )
    }

    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.filter(move |key, value| !predicate(key, value))
    }

    /// New key and value; marks the stream for repartitioning.
    pub fn map<KO: Data, VO: Data>(
        &self,
        f: impl Fn(&K, &V) -> (KO, VO) + Send + Sync + 'static,
    ) -> KStream<KO, VO> {
        self.then(
            "KSTREAM-MAP",
            move |rec, out| {
                if let Some((key, value)) = rec.parts::<K, V>() {
                    let (key, value) = f(key, value);
                    out.push(Rec::new(key, value, rec.timestamp_ms));
                }
            },
            None,
            None,
            true,
        )
    }

    /// New value, same key (no repartition).
    pub fn map_values<VO: Data>(
        &self,
        f: impl Fn(&V) -> VO + Send + Sync + 'static,
    ) -> KStream<K, VO> {
        self.then(
            "KSTREAM-MAPVALUES",
            move |rec, out| {
                if let Some((_, value)) = rec.parts::<K, V>() {
                    let value = f(value);
                    out.push(Rec {
                        key: rec.key.clone(),
                        value: Arc::new(value),
                        timestamp_ms: rec.timestamp_ms,
                    });
                }
            },
            self.keys.clone(),
            None,
            self.repartition,
        )
    }

    /// Any number of new records per record; marks the stream for repartitioning.
    pub fn flat_map<KO: Data, VO: Data, I: IntoIterator<Item = (KO, VO)>>(
        &self,
        f: impl Fn(&K, &V) -> I + Send + Sync + 'static,
    ) -> KStream<KO, VO> {
        self.then(
            "KSTREAM-FLATMAP",
            move |rec, out| {
                if let Some((key, value)) = rec.parts::<K, V>() {
                    for (key, value) in f(key, value) {
                        out.push(Rec::new(key, value, rec.timestamp_ms));
                    }
                }
            },
            None,
            None,
            true,
        )
    }

    /// Any number of new values per record, same key.
    pub fn flat_map_values<VO: Data, I: IntoIterator<Item = VO>>(
        &self,
        f: impl Fn(&V) -> I + Send + Sync + 'static,
    ) -> KStream<K, VO> {
        self.then(
            "KSTREAM-FLATMAPVALUES",
            move |rec, out| {
                if let Some((_, value)) = rec.parts::<K, V>() {
                    for value in f(value) {
                        out.push(Rec {
                            key: rec.key.clone(),
                            value: Arc::new(value),
                            timestamp_ms: rec.timestamp_ms,
                        });
                    }
                }
            },
            self.keys.clone(),
            None,
            self.repartition,
        )
    }

    /// A new key, same value; marks the stream for repartitioning.
    pub fn select_key<KO: Data>(
        &self,
        f: impl Fn(&K, &V) -> KO + Send + Sync + 'static,
    ) -> KStream<KO, V> {
        self.then(
            "KSTREAM-KEY-SELECT",
            move |rec, out| {
                if let Some((key, value)) = rec.parts::<K, V>() {
                    let key = f(key, value);
                    out.push(Rec {
                        key: Arc::new(key),
                        value: rec.value.clone(),
                        timestamp_ms: rec.timestamp_ms,
                    });
                }
            },
            None,
            self.values.clone(),
            true,
        )
    }

    /// Call `f` on each record and pass it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        self.then(
            "KSTREAM-PEEK",
            move |rec, out| {
                if let Some((key, value)) = rec.parts::<K, V>() {
                    f(key, value);
                }
                out.push(rec);
            },
            self.keys.clone(),
            self.values.clone(),
            self.repartition,
        )
    }

    /// Call `f` on each record (a terminal operator).
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        self.then::<K, V>(
            "KSTREAM-FOREACH",
            move |rec, _| {
                if let Some((key, value)) = rec.parts::<K, V>() {
                    f(key, value);
                }
            },
            None,
            None,
            false,
        );
    }

    /// One stream per predicate: a record goes to the first branch whose predicate holds,
    /// or nowhere.
    pub fn branch(&self, predicates: Vec<Predicate<K, V>>) -> Vec<KStream<K, V>> {
        let predicates = Arc::new(predicates);
        (0..predicates.len())
            .map(|index| {
                let predicates = predicates.clone();
                self.then(
                    "KSTREAM-BRANCH",
                    move |rec, out| {
                        if let Some((key, value)) = rec.parts::<K, V>() {
                            if predicates.iter().position(|p| p(key, value)) == Some(index) {
                                out.push(rec);
                            }
                        }
                    },
                    self.keys.clone(),
                    self.values.clone(),
                    self.repartition,
                )
            })
            .collect()
    }

    /// The records of both streams, in the order they are processed.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let node = self
            .builder
            .add_node("KSTREAM-MERGE", PassNode, &[self.node, other.node]);
        KStream::new(
            self.builder.clone(),
            node,
            self.keys.clone().or_else(|| other.keys.clone()),
            self.values.clone().or_else(|| other.values.clone()),
            self.repartition || other.repartition,
        )
    }

    /// Write the stream to `topic`.
    pub fn to(&self, topic: &str, keys: SerdeRef<K>, values: SerdeRef<V>) {
        self.builder.add_sink(
            TopicName::User(topic.to_string()),
            Arc::new(move |rec: &Rec| {
                let (key, value) = rec.parts::<K, V>()?;
                Some((keys.serialize(key), values.serialize(value)))
            }),
            self.node,
        );
    }

    /// Group by the current key (through a repartition topic if a key-changing operator
    /// ran before), for aggregation.
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        KGroupedStream::new(self.repartitioned("group_by_key"))
    }

    /// Group by a new key (always through a repartition topic, written with these serdes).
    pub fn group_by<KO: Data>(
        &self,
        f: impl Fn(&K, &V) -> KO + Send + Sync + 'static,
        keys: SerdeRef<KO>,
        values: SerdeRef<V>,
    ) -> KGroupedStream<KO, V> {
        let mut selected = self.select_key(f);
        selected.keys = Some(keys);
        selected.values = Some(values);
        selected.group_by_key()
    }

    pub(crate) fn require_serdes(
        &self,
        operation: &'static str,
    ) -> Option<(SerdeRef<K>, SerdeRef<V>)> {
        match (&self.keys, &self.values) {
            (Some(keys), Some(values)) => Some((keys.clone(), values.clone())),
            (None, _) => {
                self.builder.error(TopologyError::MissingSerde {
                    operation,
                    what: "key",
                });
                None
            }
            (_, None) => {
                self.builder.error(TopologyError::MissingSerde {
                    operation,
                    what: "value",
                });
                None
            }
        }
    }

    /// This stream, through `<application id>-<name>-repartition` if it must be.
    pub(crate) fn repartitioned(&self, operation: &'static str) -> KStream<K, V> {
        if !self.repartition {
            return self.clone();
        }
        let Some((keys, values)) = self.require_serdes(operation) else {
            return self.clone();
        };
        let name = self.builder.next_name("KSTREAM-REPARTITION");
        let topic = TopicName::Internal(format!("{name}-repartition"));
        let (sink_keys, sink_values) = (keys.clone(), values.clone());
        self.builder.add_sink(
            topic.clone(),
            Arc::new(move |rec: &Rec| {
                let (key, value) = rec.parts::<K, V>()?;
                Some((sink_keys.serialize(key), sink_values.serialize(value)))
            }),
            self.node,
        );
        let node = self
            .builder
            .add_node("KSTREAM-REPARTITION-SOURCE", PassNode, &[]);
        self.builder
            .add_source(topic, decoder(keys.clone(), values.clone()), node);
        KStream::new(self.builder.clone(), node, Some(keys), Some(values), false)
    }
}
