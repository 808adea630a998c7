//! [`KGroupedTable`]: a table re-grouped by a new key, aggregated with an adder and a
//! subtractor (a row that changes group leaves the old group and joins the new one).
//!
//! Every change goes through `<application id>-…-repartition` as two records, the old row
//! to subtract then the new row to add, keyed by their new keys; the value is a flag byte
//! (0 add, 1 subtract) followed by the value's bytes.

use std::sync::Arc;

use crate::builder::{decoder, Data, PassNode};
use crate::record::{Change, OutputRecord, Rec};
use crate::serdes::{SerdeRef, Serdes};
use crate::table::KTable;
use crate::task::{corrupt, TaskContext};
use crate::topology::{Node, NodeId, TopicName};
use crate::StreamsError;

const ADD: u8 = 0;
const SUBTRACT: u8 = 1;

type Selector<K, V, KO, VO> = Arc<dyn Fn(&K, &V) -> (KO, VO) + Send + Sync>;
type Adder<KO, VO, A> = Arc<dyn Fn(&KO, &VO, Option<A>) -> A + Send + Sync>;
type Subtractor<KO, VO, A> = Arc<dyn Fn(&KO, &VO, A) -> A + Send + Sync>;

/// A table grouped by a new key (see [`KTable::group_by`]).
pub struct KGroupedTable<KO, VO> {
    table_builder: crate::StreamsBuilder,
    /// The repartition source's node: raw (key, flag ++ value) bytes.
    source: NodeId,
    keys: SerdeRef<KO>,
    values: SerdeRef<VO>,
    store_name: Option<String>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Re-group the table's rows by `selector(key, value)`'s new key and value.
    pub fn group_by<KO: Data, VO: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (KO, VO) + Send + Sync + 'static,
        keys: SerdeRef<KO>,
        values: SerdeRef<VO>,
    ) -> KGroupedTable<KO, VO> {
        let name = self.builder.next_name("KTABLE-REPARTITION");
        let topic = TopicName::Internal(format!("{name}-repartition"));
        self.builder.add_node(
            "KTABLE-SELECT",
            SelectNode::<K, V, KO, VO> {
                topic: topic.clone(),
                selector: Arc::new(selector),
                keys: keys.clone(),
                values: values.clone(),
            },
            &[self.node],
        );
        let source = self
            .builder
            .add_node("KTABLE-REPARTITION-SOURCE", PassNode, &[]);
        self.builder.add_source(
            topic,
            decoder(
                Serdes::option(Serdes::bytes()),
                Serdes::option(Serdes::bytes()),
            ),
            source,
        );
        KGroupedTable {
            table_builder: self.builder.clone(),
            source,
            keys,
            values,
            store_name: None,
        }
    }
}

impl<KO: Data, VO: Data> KGroupedTable<KO, VO> {
    /// Name the aggregation's store (its changelog and interactive queries).
    pub fn named(mut self, store: &str) -> Self {
        self.store_name = Some(store.to_string());
        self
    }

    /// Rows per new key.
    pub fn count(&self) -> KTable<KO, i64> {
        self.aggregate_with(
            Arc::new(|_, _, count: Option<i64>| count.unwrap_or(0) + 1),
            Arc::new(|_, _, count: i64| count - 1),
            Serdes::i64(),
        )
    }

    /// Combine with `adder`; a row leaving the group is taken out with `subtractor`.
    pub fn reduce(
        &self,
        adder: impl Fn(&VO, &VO) -> VO + Send + Sync + 'static,
        subtractor: impl Fn(&VO, &VO) -> VO + Send + Sync + 'static,
    ) -> KTable<KO, VO> {
        self.aggregate_with(
            Arc::new(move |_, value: &VO, acc: Option<VO>| match acc {
                None => value.clone(),
                Some(acc) => adder(&acc, value),
            }),
            Arc::new(move |_, value: &VO, acc: VO| subtractor(&acc, value)),
            self.values.clone(),
        )
    }

    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        adder: impl Fn(&KO, &VO, &A) -> A + Send + Sync + 'static,
        subtractor: impl Fn(&KO, &VO, &A) -> A + Send + Sync + 'static,
        aggregates: SerdeRef<A>,
    ) -> KTable<KO, A> {
        self.aggregate_with(
            Arc::new(move |key, value, acc: Option<A>| {
                adder(key, value, &acc.unwrap_or_else(&init))
            }),
            Arc::new(move |key, value, acc: A| subtractor(key, value, &acc)),
            aggregates,
        )
    }

    fn aggregate_with<A: Data>(
        &self,
        adder: Adder<KO, VO, A>,
        subtractor: Subtractor<KO, VO, A>,
        aggregates: SerdeRef<A>,
    ) -> KTable<KO, A> {
        let builder = &self.table_builder;
        let store = self
            .store_name
            .clone()
            .unwrap_or_else(|| format!("{}-store", builder.next_name("KTABLE-AGGREGATE")));
        builder.add_store(&store);
        let node = builder.add_node(
            "KTABLE-AGGREGATE",
            TableAggregateNode {
                store: store.clone(),
                keys: self.keys.clone(),
                values: self.values.clone(),
                aggregates: aggregates.clone(),
                adder,
                subtractor,
            },
            &[self.source],
        );
        KTable::new(
            builder.clone(),
            node,
            Some(self.keys.clone()),
            Some(aggregates),
            Some(store),
            None,
        )
    }
}

struct SelectNode<K, V, KO, VO> {
    topic: TopicName,
    selector: Selector<K, V, KO, VO>,
    keys: SerdeRef<KO>,
    values: SerdeRef<VO>,
}

impl<K: Data, V: Data, KO: Data, VO: Data> SelectNode<K, V, KO, VO> {
    fn send(&self, ctx: &mut TaskContext, key: &K, value: &V, flag: u8) {
        let (new_key, new_value) = (self.selector)(key, value);
        let mut bytes = vec![flag];
        bytes.extend_from_slice(&self.values.serialize(&new_value).unwrap_or_default());
        let topic = self.topic.resolve(ctx.application_id());
        let timestamp_ms = ctx.timestamp_ms();
        ctx.send(OutputRecord {
            topic,
            partition: None,
            key: self.keys.serialize(&new_key),
            value: Some(bytes),
            timestamp_ms,
        });
    }
}

impl<K: Data, V: Data, KO: Data, VO: Data> Node for SelectNode<K, V, KO, VO> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        _: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, change)) = rec.parts::<K, Change<V>>() else {
            return Ok(());
        };
        if let Some(old) = &change.old {
            self.send(ctx, key, old, SUBTRACT);
        }
        if let Some(new) = &change.new {
            self.send(ctx, key, new, ADD);
        }
        Ok(())
    }
}

struct TableAggregateNode<KO, VO, A> {
    store: String,
    keys: SerdeRef<KO>,
    values: SerdeRef<VO>,
    aggregates: SerdeRef<A>,
    adder: Adder<KO, VO, A>,
    subtractor: Subtractor<KO, VO, A>,
}

impl<KO: Data, VO: Data, A: Data> Node for TableAggregateNode<KO, VO, A> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((Some(key_bytes), Some(value))) = rec.parts::<Option<Vec<u8>>, Option<Vec<u8>>>()
        else {
            return Ok(());
        };
        let Some((&flag, value_bytes)) = value.split_first() else {
            return Ok(());
        };
        let key = self
            .keys
            .deserialize(Some(key_bytes))
            .map_err(corrupt(&self.store))?;
        let value = self
            .values
            .deserialize(Some(value_bytes))
            .map_err(corrupt(&self.store))?;
        let old = ctx.get_value(&self.store, &self.aggregates, key_bytes)?;
        let new = match (flag, old.clone()) {
            (ADD, acc) => (self.adder)(&key, &value, acc),
            (_, Some(acc)) => (self.subtractor)(&key, &value, acc),
            // Nothing to take the value out of (its add went to a store since lost).
            (_, None) => return Ok(()),
        };
        ctx.put(
            &self.store,
            key_bytes,
            self.aggregates.serialize(&new).as_deref(),
        )?;
        out.push(Rec::new(
            key,
            Change {
                new: Some(new),
                old,
            },
            rec.timestamp_ms,
        ));
        Ok(())
    }
}
