//! The values that flow between processors.
//!
//! Inside a task a record's key and value are type-erased (`Arc<dyn Any>`): the typed DSL
//! guarantees each processor receives the types it was built for, so the downcasts in
//! [`Rec::parts`] only fail on a bug in this crate, which is logged and the record dropped.

use std::any::Any;
use std::sync::Arc;

/// A type-erased key or value.
pub type Erased = Arc<dyn Any + Send + Sync>;

/// One record inside a task.
#[derive(Clone)]
pub struct Rec {
    pub key: Erased,
    pub value: Erased,
    pub timestamp_ms: i64,
}

impl Rec {
    pub fn new<K: Any + Send + Sync, V: Any + Send + Sync>(
        key: K,
        value: V,
        timestamp_ms: i64,
    ) -> Rec {
        Rec {
            key: Arc::new(key),
            value: Arc::new(value),
            timestamp_ms,
        }
    }

    /// The typed key and value, or `None` (logged) if the topology was wired wrongly.
    pub fn parts<K: Any, V: Any>(&self) -> Option<(&K, &V)> {
        match (self.key.downcast_ref::<K>(), self.value.downcast_ref::<V>()) {
            (Some(key), Some(value)) => Some((key, value)),
            _ => {
                tracing::error!(
                    key_type = std::any::type_name::<K>(),
                    value_type = std::any::type_name::<V>(),
                    "record of an unexpected type dropped (a strom-streams bug)"
                );
                None
            }
        }
    }
}

/// A table update: the value before and after. `new: None` is a deletion (tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<V> {
    pub new: Option<V>,
    pub old: Option<V>,
}

/// A key within a window `[start_ms, end_ms)` (time windows) or `[start_ms, end_ms]`
/// (session and sliding windows, whose bounds are record timestamps).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    pub key: K,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A record written by a task: to an output, repartition or changelog topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub topic: String,
    /// `None`: partitioned by the key's murmur2 hash, as Kafka's default partitioner does.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
}
