//! [`StreamsBuilder`]: where a topology is declared, and the generic nodes the DSL is made
//! of (sources, sinks, stateless functions).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use crate::global::{GlobalKTable, GlobalSpec};
use crate::record::{Erased, OutputRecord, Rec};
use crate::serdes::SerdeRef;
use crate::stream::KStream;
use crate::table::{KTable, TableSourceNode};
use crate::task::TaskContext;
use crate::topology::{Decoder, Node, NodeDef, NodeId, SourceDef, StoreSpec, TopicName, Topology};
use crate::{StreamsError, TopologyError};

/// What flows in a stream: owned, cloneable, shareable between threads.
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

#[derive(Default)]
pub(crate) struct Graph {
    nodes: Vec<NodeDef>,
    sources: Vec<SourceDef>,
    stores: Vec<StoreSpec>,
    sink_topics: BTreeSet<TopicName>,
    globals: Vec<GlobalSpec>,
    counter: usize,
    errors: Vec<TopologyError>,
}

/// Declares a topology: sources, operators, sinks. Cheap to clone; every stream and table
/// made from it refers back to it.
#[derive(Clone, Default)]
pub struct StreamsBuilder {
    graph: Rc<RefCell<Graph>>,
}

impl StreamsBuilder {
    pub fn new() -> StreamsBuilder {
        StreamsBuilder::default()
    }

    /// A record stream read from `topic`.
    pub fn stream<K: Data, V: Data>(
        &self,
        topic: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> KStream<K, V> {
        let node = self.add_node("KSTREAM-SOURCE", PassNode, &[]);
        self.add_source(
            TopicName::User(topic.to_string()),
            decoder(keys.clone(), values.clone()),
            node,
        );
        KStream::new(self.clone(), node, Some(keys), Some(values), false)
    }

    /// A changelog stream read from `topic` as a table: the latest value per key, a null
    /// value deletes the key. Materialized in a store named `<topic>-source-store`.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> KTable<K, V> {
        let store = format!("{topic}-source-store");
        let source = self.add_node("KTABLE-SOURCE", PassNode, &[]);
        let nullable = crate::Serdes::option(values.clone());
        self.add_source(
            TopicName::User(topic.to_string()),
            decoder(keys.clone(), nullable),
            source,
        );
        self.add_store(&store);
        let node = self.add_node(
            "KTABLE-MATERIALIZE",
            TableSourceNode {
                store: store.clone(),
                keys: keys.clone(),
                values: values.clone(),
            },
            &[source],
        );
        KTable::new(
            self.clone(),
            node,
            Some(keys),
            Some(values),
            Some(store),
            None,
        )
    }

    /// A global table of `topic`: every instance reads all of its partitions into a store
    /// named `<topic>-global-store`, shared by all tasks, before processing starts (see
    /// [`crate::global`]). Join it with [`KStream::join_global`].
    pub fn global_table<K: Data, V: Data>(
        &self,
        topic: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> GlobalKTable<K, V> {
        let store = format!("{topic}-global-store");
        let mut graph = self.graph.borrow_mut();
        if graph.globals.iter().all(|spec| spec.topic != topic) {
            graph.globals.push(GlobalSpec {
                topic: topic.to_string(),
                store: store.clone(),
            });
        }
        GlobalKTable {
            store,
            keys,
            values,
        }
    }

    /// Declare a store for the processor API ([`KStream::process`]).
    pub fn add_state_store(&self, name: &str) {
        self.add_store(name);
    }

    /// The topology, or the first declaration error (a missing serde, a suppress of an
    /// unwindowed table, ...).
    pub fn build(self) -> Result<Topology, TopologyError> {
        let graph = self.graph.replace(Graph::default());
        if let Some(error) = graph.errors.into_iter().next() {
            return Err(error);
        }
        Ok(Topology {
            nodes: graph.nodes,
            sources: graph.sources,
            stores: graph.stores,
            sink_topics: graph.sink_topics,
            globals: graph.globals,
        })
    }

    pub(crate) fn next_name(&self, prefix: &str) -> String {
        let mut graph = self.graph.borrow_mut();
        graph.counter += 1;
        format!("{prefix}-{:010}", graph.counter)
    }

    pub(crate) fn add_node(
        &self,
        prefix: &str,
        node: impl Node + 'static,
        parents: &[NodeId],
    ) -> NodeId {
        let name = self.next_name(prefix);
        let mut graph = self.graph.borrow_mut();
        let id = graph.nodes.len();
        graph.nodes.push(NodeDef {
            name,
            node: Arc::new(node),
            children: Vec::new(),
        });
        for parent in parents {
            graph.nodes[*parent].children.push(id);
        }
        id
    }

    pub(crate) fn add_source(&self, topic: TopicName, decode: Decoder, node: NodeId) {
        self.graph.borrow_mut().sources.push(SourceDef {
            topic,
            node,
            decode,
        });
    }

    pub(crate) fn add_store(&self, name: &str) {
        let mut graph = self.graph.borrow_mut();
        if graph.stores.iter().all(|spec| spec.name != name) {
            graph.stores.push(StoreSpec {
                name: name.to_string(),
            });
        }
    }

    pub(crate) fn add_sink(&self, topic: TopicName, encode: Encoder, parent: NodeId) {
        self.graph.borrow_mut().sink_topics.insert(topic.clone());
        self.add_node("KSTREAM-SINK", SinkNode { topic, encode }, &[parent]);
    }

    pub(crate) fn error(&self, error: TopologyError) {
        self.graph.borrow_mut().errors.push(error);
    }
}

pub(crate) fn decoder<K: Data, V: Data>(keys: SerdeRef<K>, values: SerdeRef<V>) -> Decoder {
    Arc::new(move |key, value| {
        let key: Erased = Arc::new(keys.deserialize(key)?);
        let value: Erased = Arc::new(values.deserialize(value)?);
        Ok((key, value))
    })
}

/// A record's key and value as bytes, or `None` to write nothing.
pub(crate) type Encoder =
    Arc<dyn Fn(&Rec) -> Option<(Option<Vec<u8>>, Option<Vec<u8>>)> + Send + Sync>;

/// Forwards what it gets: sources, merges.
pub(crate) struct PassNode;

impl Node for PassNode {
    fn process(
        &self,
        _: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        out.push(rec);
        Ok(())
    }
}

/// A stateless operator: a function of one record to any number of records.
pub(crate) struct FnNode(pub Box<dyn Fn(Rec, &mut Vec<Rec>) + Send + Sync>);

impl Node for FnNode {
    fn process(
        &self,
        _: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        (self.0)(rec, out);
        Ok(())
    }
}

pub(crate) struct SinkNode {
    topic: TopicName,
    encode: Encoder,
}

impl Node for SinkNode {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        _: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        if let Some((key, value)) = (self.encode)(&rec) {
            let topic = self.topic.resolve(ctx.application_id());
            ctx.send(OutputRecord {
                topic,
                partition: None,
                key,
                value,
                timestamp_ms: rec.timestamp_ms,
            });
        }
        Ok(())
    }
}
