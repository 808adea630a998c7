//! Global tables: a topic read whole (every partition) by every instance into a store that
//! all tasks and threads of the instance share, with no group assignment and no changelog
//! (the topic is its own changelog). The runtime restores global stores before it joins the
//! group and then keeps them up to date in the background; the test driver applies records
//! piped into a global topic at once.
//!
//! A stream joins a global table through a key mapper (`(key, value) -> global key`), so
//! the stream needs no repartition: every task sees the whole table.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::builder::Data;
use crate::record::Rec;
use crate::serdes::SerdeRef;
use crate::stream::KStream;
use crate::task::{corrupt, TaskContext};
use crate::topology::{Node, NodeId};
use crate::StreamsError;

/// A table of a whole topic, replicated to every instance (see the module doc). Made by
/// [`StreamsBuilder::global_table`](crate::StreamsBuilder::global_table).
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
}

impl<K, V> GlobalKTable<K, V> {
    /// The global store's name (for [`GlobalStores::get`]).
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

/// A global table's topic and store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSpec {
    pub topic: String,
    pub store: String,
}

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The global stores of one instance (or test driver), shared by every task and thread.
/// Only the global updater writes; tasks read. Locks are held for one map operation.
#[derive(Default)]
pub struct GlobalStores {
    stores: HashMap<String, RwLock<Map>>,
    store_of_topic: HashMap<String, String>,
}

impl GlobalStores {
    pub fn new(specs: &[GlobalSpec]) -> GlobalStores {
        GlobalStores {
            stores: specs
                .iter()
                .map(|spec| (spec.store.clone(), RwLock::new(Map::new())))
                .collect(),
            store_of_topic: specs
                .iter()
                .map(|spec| (spec.topic.clone(), spec.store.clone()))
                .collect(),
        }
    }

    /// Whether `topic` is a global table's topic.
    pub fn reads(&self, topic: &str) -> bool {
        self.store_of_topic.contains_key(topic)
    }

    /// Apply one record of a global topic (a null value deletes the key; a null key is
    /// ignored). Returns whether `topic` is global.
    pub fn apply(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) -> bool {
        let Some(store) = self
            .store_of_topic
            .get(topic)
            .and_then(|name| self.stores.get(name))
        else {
            return false;
        };
        let Some(key) = key else {
            return true;
        };
        let mut map = store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match value {
            Some(value) => map.insert(key.to_vec(), value.to_vec()),
            None => map.remove(key),
        };
        true
    }

    /// A key of global store `store`, as bytes.
    pub fn get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StreamsError> {
        let map = self
            .stores
            .get(store)
            .ok_or_else(|| StreamsError::UnknownStore {
                name: store.to_string(),
            })?;
        let map = map.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(map.get(key).cloned())
    }

    /// How many keys global store `store` holds (0 for an unknown store).
    pub fn len(&self, store: &str) -> usize {
        self.stores
            .get(store)
            .map(|map| map.read().unwrap_or_else(|p| p.into_inner()).len())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.stores.keys().all(|store| self.len(store) == 0)
    }
}

type GlobalJoiner<V, VG, VR> = Arc<dyn Fn(&V, Option<&VG>) -> Option<VR> + Send + Sync>;

impl<K: Data, V: Data> KStream<K, V> {
    /// Each record joined with the global table's value for `mapper(key, value)`; records
    /// without one are dropped.
    pub fn join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        mapper: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, &VG) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.global_join_with(table, mapper, Arc::new(move |v, g| Some(joiner(v, g?))))
    }

    /// Each record joined with the global table's value for `mapper(key, value)`, if any.
    pub fn left_join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        mapper: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VG>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.global_join_with(table, mapper, Arc::new(move |v, g| Some(joiner(v, g))))
    }

    fn global_join_with<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        mapper: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: GlobalJoiner<V, VG, VR>,
    ) -> KStream<K, VR> {
        let node = self.builder.add_node(
            "KSTREAM-JOIN-GLOBAL",
            GlobalJoinNode {
                store: table.store.clone(),
                global_keys: table.keys.clone(),
                global_values: table.values.clone(),
                mapper: Arc::new(mapper),
                joiner,
            },
            &[self.node],
        );
        KStream::new(
            self.builder.clone(),
            node,
            self.keys.clone(),
            None,
            self.repartition,
        )
    }
}

type KeyMapper<K, V, KG> = Arc<dyn Fn(&K, &V) -> KG + Send + Sync>;

struct GlobalJoinNode<K, V, KG, VG, VR> {
    store: String,
    global_keys: SerdeRef<KG>,
    global_values: SerdeRef<VG>,
    mapper: KeyMapper<K, V, KG>,
    joiner: GlobalJoiner<V, VG, VR>,
}

impl<K: Data, V: Data, KG: Data, VG: Data, VR: Data> Node for GlobalJoinNode<K, V, KG, VG, VR> {
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
        let global_key = (self.mapper)(key, value);
        let row = match self.global_keys.serialize(&global_key) {
            Some(key_bytes) => match ctx.globals().get(&self.store, &key_bytes)? {
                Some(bytes) => Some(
                    self.global_values
                        .deserialize(Some(&bytes))
                        .map_err(corrupt(&self.store))?,
                ),
                None => None,
            },
            None => None,
        };
        if let Some(joined) = (self.joiner)(value, row.as_ref()) {
            out.push(Rec::new(key.clone(), joined, rec.timestamp_ms));
        }
        Ok(())
    }
}
