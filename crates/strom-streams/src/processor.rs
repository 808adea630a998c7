//! The lower-level processor API: a user type that sees each record, may read and write
//! named stores, forwards any records it likes, and is called back as stream time and
//! wall-clock time pass (punctuation).

use std::marker::PhantomData;
use std::sync::Arc;

use crate::builder::Data;
use crate::record::Rec;
use crate::stream::KStream;
use crate::task::TaskContext;
use crate::topology::{Node, NodeId};
use crate::StreamsError;

/// A processor of `K, V` records that forwards `KO, VO` records. One instance per task,
/// made by the factory given to [`KStream::process`].
pub trait Processor<K, V, KO, VO>: Send {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
        key: &K,
        value: &V,
    ) -> Result<(), StreamsError>;

    /// Called each time the task's stream time advances.
    fn on_stream_time(
        &mut self,
        _ctx: &mut ProcessorContext<'_, KO, VO>,
    ) -> Result<(), StreamsError> {
        Ok(())
    }

    /// Called as wall-clock time passes (each runtime poll; the test driver's
    /// `advance_wall_clock`).
    fn on_wall_clock(
        &mut self,
        _ctx: &mut ProcessorContext<'_, KO, VO>,
        _now_ms: i64,
    ) -> Result<(), StreamsError> {
        Ok(())
    }
}

/// What a [`Processor`] can do: read the task (stores, stream time) and forward records.
pub struct ProcessorContext<'a, KO, VO> {
    task: &'a mut TaskContext,
    out: &'a mut Vec<Rec>,
    _types: PhantomData<fn(KO, VO)>,
}

impl<KO: Data, VO: Data> ProcessorContext<'_, KO, VO> {
    /// Forward a record with the current record's timestamp (or stream time in a
    /// punctuation).
    pub fn forward(&mut self, key: KO, value: VO) {
        let timestamp_ms = self.task.timestamp_ms();
        self.out.push(Rec::new(key, value, timestamp_ms));
    }

    pub fn forward_at(&mut self, key: KO, value: VO, timestamp_ms: i64) {
        self.out.push(Rec::new(key, value, timestamp_ms));
    }

    /// The task: stores (`get`, `put`, `range`, declared with
    /// [`StreamsBuilder::add_state_store`](crate::StreamsBuilder::add_state_store)),
    /// stream time, partition.
    pub fn task(&mut self) -> &mut TaskContext {
        self.task
    }
}

type Factory<K, V, KO, VO> = Arc<dyn Fn() -> Box<dyn Processor<K, V, KO, VO>> + Send + Sync>;

struct Slot<K, V, KO, VO>(Option<Box<dyn Processor<K, V, KO, VO>>>);

impl<K, V, KO, VO> Default for Slot<K, V, KO, VO> {
    fn default() -> Self {
        Slot(None)
    }
}

struct ProcessorNode<K, V, KO, VO> {
    factory: Factory<K, V, KO, VO>,
}

impl<K: Data, V: Data, KO: Data, VO: Data> ProcessorNode<K, V, KO, VO> {
    fn with_instance(
        &self,
        ctx: &mut TaskContext,
        id: NodeId,
        out: &mut Vec<Rec>,
        call: impl FnOnce(
            &mut dyn Processor<K, V, KO, VO>,
            &mut ProcessorContext<'_, KO, VO>,
        ) -> Result<(), StreamsError>,
    ) -> Result<(), StreamsError> {
        let mut instance = ctx
            .state::<Slot<K, V, KO, VO>>(id)
            .0
            .take()
            .unwrap_or_else(|| (self.factory)());
        let mut pctx = ProcessorContext {
            task: ctx,
            out,
            _types: PhantomData,
        };
        let result = call(instance.as_mut(), &mut pctx);
        ctx.state::<Slot<K, V, KO, VO>>(id).0 = Some(instance);
        result
    }
}

impl<K: Data, V: Data, KO: Data, VO: Data> Node for ProcessorNode<K, V, KO, VO> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        id: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, value)) = rec.parts::<K, V>() else {
            return Ok(());
        };
        self.with_instance(ctx, id, out, |p, pctx| p.process(pctx, key, value))
    }

    fn punctuate(
        &self,
        ctx: &mut TaskContext,
        id: NodeId,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        self.with_instance(ctx, id, out, |p, pctx| p.on_stream_time(pctx))
    }

    fn wall_clock(
        &self,
        ctx: &mut TaskContext,
        id: NodeId,
        now_ms: i64,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        self.with_instance(ctx, id, out, |p, pctx| p.on_wall_clock(pctx, now_ms))
    }

    fn punctuates(&self) -> bool {
        true
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Run a [`Processor`] on each record; `factory` makes one instance per task. Forwarded
    /// records may carry new keys, so the result is marked for repartitioning.
    pub fn process<KO: Data, VO: Data>(
        &self,
        factory: impl Fn() -> Box<dyn Processor<K, V, KO, VO>> + Send + Sync + 'static,
    ) -> KStream<KO, VO> {
        let node = self.builder.add_node(
            "KSTREAM-PROCESSOR",
            ProcessorNode {
                factory: Arc::new(factory),
            },
            &[self.node],
        );
        KStream::new(self.builder.clone(), node, None, None, true)
    }
}
