//! Foreign-key table-table join: each row of the left table joined with the right table's
//! row whose key the left value names (`KTable::join_on_foreign_key`).
//!
//! Left and right rows live in different partitions, so the join goes through two internal
//! topics, as in Kafka: the left side sends *subscriptions* keyed by the foreign key
//! (`…-subscription-registration`), stored beside the right table; a right row's change,
//! or a new subscription, sends *responses* keyed by the left key
//! (`…-subscription-response`) back to the left side, which joins them with its current
//! value. A response whose foreign key no longer matches the left value is stale and
//! dropped.
//!
//! Wire layouts (internal): subscription value = op (0 subscribe, 1 unsubscribe) ++ left
//! key bytes; response value = u32 length ++ foreign key bytes ++ present (0/1) ++ right
//! value bytes.

use std::sync::Arc;

use crate::builder::{decoder, Data, PassNode};
use crate::record::{Change, OutputRecord, Rec};
use crate::serdes::{SerdeRef, Serdes};
use crate::store::layout::{key_prefix, prefix_end};
use crate::table::KTable;
use crate::task::{corrupt, TaskContext};
use crate::topology::{Node, NodeId, TopicName};
use crate::StreamsError;

const SUBSCRIBE: u8 = 0;
const UNSUBSCRIBE: u8 = 1;

type Extractor<V, KO> = Arc<dyn Fn(&V) -> KO + Send + Sync>;

impl<K: Data, V: Data> KTable<K, V> {
    /// Inner join on a foreign key: for each left row, `extractor(value)` names the key of
    /// the right row to join with; the result is keyed like the left table. A left row
    /// whose right row is missing (or deleted) has no result (a deletion downstream).
    pub fn join_on_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        extractor: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let unbuilt = KTable::new(self.builder.clone(), self.node, None, None, None, None);
        let Some((left, left_store, keys, left_values)) = self.materialized("foreign-key join")
        else {
            return unbuilt;
        };
        let Some((right, right_store, foreign_keys, right_values)) =
            other.materialized("foreign-key join")
        else {
            return unbuilt;
        };
        let builder = &self.builder;
        let name = builder.next_name("KTABLE-FK-JOIN");
        let registration = TopicName::Internal(format!("{name}-subscription-registration"));
        let response = TopicName::Internal(format!("{name}-subscription-response"));
        let subscriptions = format!("{name}-subscription-store");
        builder.add_store(&subscriptions);
        let extractor: Extractor<V, KO> = Arc::new(extractor);

        let left_node = builder.add_node(
            "KTABLE-FK-JOIN-SUBSCRIBE",
            SubscribeNode::<K, V, KO, VR> {
                _result: std::marker::PhantomData,
                topic: registration.clone(),
                keys: keys.clone(),
                foreign_keys: foreign_keys.clone(),
                extractor: extractor.clone(),
            },
            &[left.node],
        );
        let registration_source =
            builder.add_node("KTABLE-FK-JOIN-REGISTRATION-SOURCE", PassNode, &[]);
        builder.add_source(
            registration,
            decoder(
                Serdes::option(Serdes::bytes()),
                Serdes::option(Serdes::bytes()),
            ),
            registration_source,
        );
        builder.add_node(
            "KTABLE-FK-JOIN-SUBSCRIPTIONS",
            RegistrationNode {
                subscriptions: subscriptions.clone(),
                right_store,
                response: response.clone(),
            },
            &[registration_source],
        );
        builder.add_node(
            "KTABLE-FK-JOIN-RIGHT-CHANGE",
            RightChangeNode::<KO, VO> {
                subscriptions,
                foreign_keys: foreign_keys.clone(),
                right_values: right_values.clone(),
                response: response.clone(),
            },
            &[right.node],
        );
        let response_source = builder.add_node("KTABLE-FK-JOIN-RESPONSE-SOURCE", PassNode, &[]);
        builder.add_source(
            response,
            decoder(
                Serdes::option(Serdes::bytes()),
                Serdes::option(Serdes::bytes()),
            ),
            response_source,
        );
        let response_node = builder.add_node(
            "KTABLE-FK-JOIN-RESOLVE",
            ResponseNode {
                left_store,
                keys: keys.clone(),
                left_values,
                foreign_keys,
                right_values,
                extractor,
                joiner: Arc::new(joiner),
            },
            &[response_source],
        );
        let merged = builder.add_node(
            "KTABLE-FK-JOIN-OUTPUT",
            PassNode,
            &[left_node, response_node],
        );
        KTable::new(builder.clone(), merged, Some(keys), None, None, None)
    }
}

fn send(ctx: &mut TaskContext, topic: &TopicName, key: Vec<u8>, value: Vec<u8>) {
    let topic = topic.resolve(ctx.application_id());
    let timestamp_ms = ctx.timestamp_ms();
    ctx.send(OutputRecord {
        topic,
        partition: None,
        key: Some(key),
        value: Some(value),
        timestamp_ms,
    });
}

fn response_value(foreign_key: &[u8], right_value: Option<&[u8]>) -> Vec<u8> {
    let mut value = (foreign_key.len() as u32).to_be_bytes().to_vec();
    value.extend_from_slice(foreign_key);
    match right_value {
        Some(bytes) => {
            value.push(1);
            value.extend_from_slice(bytes);
        }
        None => value.push(0),
    }
    value
}

/// Left side: a left change subscribes to its (new) foreign key and unsubscribes from the
/// old one; a deleted left row deletes its result at once.
struct SubscribeNode<K, V, KO, VR> {
    _result: std::marker::PhantomData<fn() -> VR>,
    topic: TopicName,
    keys: SerdeRef<K>,
    foreign_keys: SerdeRef<KO>,
    extractor: Extractor<V, KO>,
}

impl<K: Data, V: Data, KO: Data, VR: Data> Node for SubscribeNode<K, V, KO, VR> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        out: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((key, change)) = rec.parts::<K, Change<V>>() else {
            return Ok(());
        };
        let Some(key_bytes) = self.keys.serialize(key) else {
            return Ok(());
        };
        let foreign = |value: &Option<V>| {
            value
                .as_ref()
                .and_then(|v| self.foreign_keys.serialize(&(self.extractor)(v)))
        };
        let (old, new) = (foreign(&change.old), foreign(&change.new));
        if let Some(old) = &old {
            if Some(old) != new.as_ref() {
                let mut value = vec![UNSUBSCRIBE];
                value.extend_from_slice(&key_bytes);
                send(ctx, &self.topic, old.clone(), value);
            }
        }
        match new {
            Some(new) => {
                let mut value = vec![SUBSCRIBE];
                value.extend_from_slice(&key_bytes);
                send(ctx, &self.topic, new, value);
            }
            None => out.push(Rec::new(
                key.clone(),
                Change::<VR> {
                    new: None,
                    old: None,
                },
                rec.timestamp_ms,
            )),
        }
        Ok(())
    }
}

/// Right side, subscriptions: store them (`len(fk) ++ fk ++ left key`) and answer a
/// subscription with the right row as it is now.
struct RegistrationNode {
    subscriptions: String,
    right_store: String,
    response: TopicName,
}

impl Node for RegistrationNode {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        _: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((Some(foreign_key), Some(value))) =
            rec.parts::<Option<Vec<u8>>, Option<Vec<u8>>>()
        else {
            return Ok(());
        };
        let Some((&op, left_key)) = value.split_first() else {
            return Ok(());
        };
        let mut entry = key_prefix(foreign_key);
        entry.extend_from_slice(left_key);
        if op == UNSUBSCRIBE {
            return ctx.put(&self.subscriptions, &entry, None);
        }
        ctx.put(&self.subscriptions, &entry, Some(&[]))?;
        let right = ctx.get(&self.right_store, foreign_key)?;
        send(
            ctx,
            &self.response,
            left_key.to_vec(),
            response_value(foreign_key, right.as_deref()),
        );
        Ok(())
    }
}

/// Right side, row changes: answer every subscriber of the row.
struct RightChangeNode<KO, VO> {
    subscriptions: String,
    foreign_keys: SerdeRef<KO>,
    right_values: SerdeRef<VO>,
    response: TopicName,
}

impl<KO: Data, VO: Data> Node for RightChangeNode<KO, VO> {
    fn process(
        &self,
        ctx: &mut TaskContext,
        _: NodeId,
        rec: Rec,
        _: &mut Vec<Rec>,
    ) -> Result<(), StreamsError> {
        let Some((foreign_key, change)) = rec.parts::<KO, Change<VO>>() else {
            return Ok(());
        };
        let Some(foreign_bytes) = self.foreign_keys.serialize(foreign_key) else {
            return Ok(());
        };
        let right = change
            .new
            .as_ref()
            .and_then(|v| self.right_values.serialize(v));
        let prefix = key_prefix(&foreign_bytes);
        for (entry, _) in ctx.range(&self.subscriptions, &prefix, &prefix_end(&prefix))? {
            let left_key = entry[prefix.len()..].to_vec();
            send(
                ctx,
                &self.response,
                left_key,
                response_value(&foreign_bytes, right.as_deref()),
            );
        }
        Ok(())
    }
}

/// Left side, responses: join with the current left value if it still names this key.
struct ResponseNode<K, V, KO, VO, VR> {
    left_store: String,
    keys: SerdeRef<K>,
    left_values: SerdeRef<V>,
    foreign_keys: SerdeRef<KO>,
    right_values: SerdeRef<VO>,
    extractor: Extractor<V, KO>,
    joiner: Arc<dyn Fn(&V, &VO) -> VR + Send + Sync>,
}

impl<K: Data, V: Data, KO: Data, VO: Data, VR: Data> Node for ResponseNode<K, V, KO, VO, VR> {
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
        let Some(length) = value
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return Ok(());
        };
        let (Some(foreign_key), Some(&present)) = (value.get(4..4 + length), value.get(4 + length))
        else {
            return Ok(());
        };
        let Some(left_bytes) = ctx.get(&self.left_store, key_bytes)? else {
            return Ok(()); // the left row is gone: its deletion was emitted already
        };
        let left = self
            .left_values
            .deserialize(Some(&left_bytes))
            .map_err(corrupt(&self.left_store))?;
        if self
            .foreign_keys
            .serialize(&(self.extractor)(&left))
            .as_deref()
            != Some(foreign_key)
        {
            return Ok(()); // stale: the left row names another key now
        }
        let key = self
            .keys
            .deserialize(Some(key_bytes))
            .map_err(corrupt(&self.left_store))?;
        let new = if present == 1 {
            let right = self
                .right_values
                .deserialize(value.get(5 + length..))
                .map_err(corrupt(&self.left_store))?;
            Some((self.joiner)(&left, &right))
        } else {
            None
        };
        out.push(Rec::new(key, Change { new, old: None }, rec.timestamp_ms));
        Ok(())
    }
}
