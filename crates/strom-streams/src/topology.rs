//! A built topology: processor nodes, their sources and sinks, the stores they use and the
//! internal topics they need. A [`Topology`] is immutable and shared by all tasks; each task
//! keeps its own state in its [`TaskContext`].

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::global::GlobalSpec;
use crate::record::{Erased, Rec};
use crate::serdes::SerdeError;
use crate::task::TaskContext;
use crate::StreamsError;

pub(crate) type NodeId = usize;

/// A processor node. `process` and `punctuate` push what they emit to `out`; the task
/// forwards each emitted record to every child of the node.
pub(crate) trait Node: Send + Sync {
    fn process(
        &self,
        ctx: &mut TaskContext,
        id: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError>;

    /// Called after stream time advanced (`ctx.stream_time_ms()`).
    fn punctuate(
        &self,
        _ctx: &mut TaskContext,
        _id: NodeId,
        _out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        Ok(())
    }

    /// Called when wall-clock time passes (the runtime's poll loop, or the test driver's
    /// `advance_wall_clock`).
    fn wall_clock(
        &self,
        _ctx: &mut TaskContext,
        _id: NodeId,
        _now_ms: i64,
        _out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        Ok(())
    }

    /// Whether `punctuate`/`wall_clock` do anything (saves calls on every record).
    fn punctuates(&self) -> bool {
        false
    }
}

/// A topic as the topology names it: a user topic, or an internal one whose full name is
/// `<application id>-<suffix>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TopicName {
    User(String),
    Internal(String),
}

impl TopicName {
    pub fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicName::User(name) => name.clone(),
            TopicName::Internal(suffix) => format!("{application_id}-{suffix}"),
        }
    }
}

/// Turns a topic's key and value bytes into a record's erased key and value.
pub(crate) type Decoder =
    Arc<dyn Fn(Option<&[u8]>, Option<&[u8]>) -> Result<(Erased, Erased), SerdeError> + Send + Sync>;

pub(crate) struct SourceDef {
    pub topic: TopicName,
    pub node: NodeId,
    pub decode: Decoder,
}

pub(crate) struct NodeDef {
    pub name: String,
    pub node: Arc<dyn Node>,
    pub children: Vec<NodeId>,
}

/// The stores of a topology. Every store is changelogged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub name: String,
}

impl StoreSpec {
    pub fn changelog_topic(&self, application_id: &str) -> String {
        format!("{application_id}-{}-changelog", self.name)
    }
}

/// A built topology, ready for the [`TopologyTestDriver`](crate::TopologyTestDriver) or
/// the [`StreamsApp`](crate::runtime::StreamsApp) runtime.
pub struct Topology {
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) sources: Vec<SourceDef>,
    pub(crate) stores: Vec<StoreSpec>,
    pub(crate) sink_topics: BTreeSet<TopicName>,
    pub(crate) globals: Vec<GlobalSpec>,
}

impl Topology {
    /// Every topic the topology reads, with internal names resolved.
    pub fn source_topics(&self, application_id: &str) -> Vec<String> {
        let topics: BTreeSet<String> = self
            .sources
            .iter()
            .map(|source| source.topic.resolve(application_id))
            .collect();
        topics.into_iter().collect()
    }

    /// Repartition topics the runtime must create (`<application id>-<name>-repartition`).
    pub fn repartition_topics(&self, application_id: &str) -> Vec<String> {
        let topics: BTreeSet<String> = self
            .sources
            .iter()
            .filter(|source| matches!(source.topic, TopicName::Internal(_)))
            .map(|source| source.topic.resolve(application_id))
            .collect();
        topics.into_iter().collect()
    }

    /// User topics the topology writes.
    pub fn sink_topics(&self, application_id: &str) -> Vec<String> {
        self.sink_topics
            .iter()
            .filter(|topic| matches!(topic, TopicName::User(_)))
            .map(|topic| topic.resolve(application_id))
            .collect()
    }

    pub fn stores(&self) -> &[StoreSpec] {
        &self.stores
    }

    /// The global tables (topic and store), read whole by every instance.
    pub fn globals(&self) -> &[GlobalSpec] {
        &self.globals
    }

    /// A one-node-per-line description: name and children, for logs and debugging.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for source in &self.sources {
            text.push_str(&format!(
                "source {:?} -> {}\n",
                source.topic, self.nodes[source.node].name
            ));
        }
        for node in &self.nodes {
            let children: Vec<&str> = node
                .children
                .iter()
                .map(|c| self.nodes[*c].name.as_str())
                .collect();
            text.push_str(&format!("{} -> [{}]\n", node.name, children.join(", ")));
        }
        text
    }
}
