//! ACL bindings and client quotas as the metadata log stores them, and the indexes the
//! image keeps so the broker's authoriser and quota manager answer without scanning.
//!
//! Codes are Kafka's wire numbers (`AclOperation`, `ResourceType`, `PatternType`,
//! `AclPermissionType`), so a binding goes from a CreateAcls request to the log and back to a
//! DescribeAcls response without translation. Validation is the broker's job; the index only
//! stores what it is given.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// Kafka's `ResourceType` codes.
pub mod resource_type {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
}

/// Kafka's `PatternType` codes. ANY and MATCH appear only in filters.
pub mod pattern_type {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's `AclOperation` codes. ANY appears only in filters.
pub mod operation {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
}

/// Kafka's `AclPermissionType` codes. ANY appears only in filters.
pub mod permission {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The name Kafka gives the single cluster resource.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// The literal resource name and the principal/host value that match everything.
pub const WILDCARD: &str = "*";

/// One ACL: who (`principal`, `host`) may or may not (`permission`) do what (`operation`)
/// to which resources (`resource_type`, `resource_name`, `pattern_type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// The resource types an ACL can name; index into [`AclIndex`]'s per-type tables.
const RESOURCE_TYPES: [i8; 4] = [
    resource_type::TOPIC,
    resource_type::GROUP,
    resource_type::CLUSTER,
    resource_type::TRANSACTIONAL_ID,
];

fn type_slot(resource_type: i8) -> Option<usize> {
    RESOURCE_TYPES.iter().position(|t| *t == resource_type)
}

/// Bindings of one resource type: literal names (including `*`) and prefixes, each by name,
/// plus the set of prefix lengths in use so a lookup probes only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TypeTable {
    literal: HashMap<String, Vec<AclBinding>>,
    prefixed: HashMap<String, Vec<AclBinding>>,
    /// Byte lengths of the prefixes in `prefixed`, with how many prefixes have each length.
    prefix_lengths: BTreeMap<usize, usize>,
}

/// Every ACL binding, indexed by resource type and name for the authoriser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclIndex {
    tables: [TypeTable; 4],
    count: usize,
}

impl AclIndex {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.bucket(binding)
            .is_some_and(|bindings| bindings.contains(binding))
    }

    fn bucket(&self, binding: &AclBinding) -> Option<&Vec<AclBinding>> {
        let table = &self.tables[type_slot(binding.resource_type)?];
        match binding.pattern_type {
            pattern_type::LITERAL => table.literal.get(&binding.resource_name),
            pattern_type::PREFIXED => table.prefixed.get(&binding.resource_name),
            _ => None,
        }
    }

    /// Adds `binding`; `false` when it was already there (or names no indexable type, which
    /// the broker's validation rules out).
    pub fn insert(&mut self, binding: AclBinding) -> bool {
        let Some(slot) = type_slot(binding.resource_type) else {
            return false;
        };
        let table = &mut self.tables[slot];
        let map = match binding.pattern_type {
            pattern_type::LITERAL => &mut table.literal,
            pattern_type::PREFIXED => &mut table.prefixed,
            _ => return false,
        };
        let bindings = map.entry(binding.resource_name.clone()).or_default();
        if bindings.contains(&binding) {
            return false;
        }
        if binding.pattern_type == pattern_type::PREFIXED && bindings.is_empty() {
            *table
                .prefix_lengths
                .entry(binding.resource_name.len())
                .or_default() += 1;
        }
        bindings.push(binding);
        self.count += 1;
        true
    }

    /// Removes `binding`; `false` when it was not there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        let Some(slot) = type_slot(binding.resource_type) else {
            return false;
        };
        let table = &mut self.tables[slot];
        let map = match binding.pattern_type {
            pattern_type::LITERAL => &mut table.literal,
            pattern_type::PREFIXED => &mut table.prefixed,
            _ => return false,
        };
        let Some(bindings) = map.get_mut(&binding.resource_name) else {
            return false;
        };
        let Some(position) = bindings.iter().position(|b| b == binding) else {
            return false;
        };
        bindings.swap_remove(position);
        if bindings.is_empty() {
            map.remove(&binding.resource_name);
            if binding.pattern_type == pattern_type::PREFIXED {
                let length = binding.resource_name.len();
                let remaining = table
                    .prefix_lengths
                    .get_mut(&length)
                    .expect("a stored prefix has its length counted");
                *remaining -= 1;
                if *remaining == 0 {
                    table.prefix_lengths.remove(&length);
                }
            }
        }
        self.count -= 1;
        true
    }

    /// Calls `visit` with every binding that applies to the resource `(resource_type, name)`:
    /// literal on `name`, literal on `*`, and prefixes of `name`. Costs one hash probe per
    /// distinct prefix length in use, not per binding.
    pub fn for_each_matching(
        &self,
        resource_type: i8,
        name: &str,
        mut visit: impl FnMut(&AclBinding),
    ) {
        let Some(slot) = type_slot(resource_type) else {
            return;
        };
        let table = &self.tables[slot];
        if let Some(bindings) = table.literal.get(name) {
            bindings.iter().for_each(&mut visit);
        }
        if name != WILDCARD {
            if let Some(bindings) = table.literal.get(WILDCARD) {
                bindings.iter().for_each(&mut visit);
            }
        }
        for length in table.prefix_lengths.keys() {
            if *length > name.len() {
                break;
            }
            let Some(prefix) = name.get(..*length) else {
                continue;
            };
            if let Some(bindings) = table.prefixed.get(prefix) {
                bindings.iter().for_each(&mut visit);
            }
        }
    }

    /// Every binding of `resource_type` (all patterns); for checks over a resource type
    /// ("may this principal write to some topic?").
    pub fn for_each_of_type(&self, resource_type: i8, mut visit: impl FnMut(&AclBinding)) {
        let Some(slot) = type_slot(resource_type) else {
            return;
        };
        let table = &self.tables[slot];
        table
            .literal
            .values()
            .chain(table.prefixed.values())
            .flatten()
            .for_each(&mut visit);
    }

    /// Every binding, sorted (for DescribeAcls and tests).
    pub fn all(&self) -> Vec<&AclBinding> {
        let mut all: Vec<&AclBinding> = self
            .tables
            .iter()
            .flat_map(|table| table.literal.values().chain(table.prefixed.values()))
            .flatten()
            .collect();
        all.sort();
        all
    }
}

/// One component of a client-quota entity: `entity_type` is `user`, `client-id` or `ip`;
/// `name` `None` is the default entity of that type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuotaEntityPart {
    pub entity_type: String,
    pub name: Option<String>,
}

/// A quota entity: its parts sorted by entity type, at most one per type.
pub type QuotaEntity = Vec<QuotaEntityPart>;

/// A quota value (bytes per second, or percent of a thread for `request_percentage`).
/// Compared by bit pattern so records stay `Eq`; the broker refuses NaN.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

/// Client quotas by entity, then by key (`producer_byte_rate`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaTable {
    entries: BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>,
}

impl QuotaTable {
    pub fn set(&mut self, entity: &QuotaEntity, key: &str, value: Option<QuotaValue>) {
        match value {
            Some(value) => {
                self.entries
                    .entry(entity.clone())
                    .or_default()
                    .insert(key.to_string(), value);
            }
            None => {
                if let Some(values) = self.entries.get_mut(entity) {
                    values.remove(key);
                    if values.is_empty() {
                        self.entries.remove(entity);
                    }
                }
            }
        }
    }

    pub fn get(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, QuotaValue>> {
        self.entries.get(entity)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, QuotaValue>)> {
        self.entries.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entity types in use (`user`, `client-id`), so the broker skips lookups of types no
    /// quota names.
    pub fn entity_types(&self) -> BTreeSet<&str> {
        self.entries
            .keys()
            .flat_map(|entity| entity.iter().map(|part| part.entity_type.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(resource_type: i8, name: &str, pattern: i8) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.to_string(),
            pattern_type: pattern,
            principal: "User:alice".to_string(),
            host: "*".to_string(),
            operation: operation::READ,
            permission: permission::ALLOW,
        }
    }

    fn matching(index: &AclIndex, resource_type: i8, name: &str) -> Vec<String> {
        let mut names = Vec::new();
        index.for_each_matching(resource_type, name, |b| {
            names.push(format!("{}:{}", b.pattern_type, b.resource_name))
        });
        names.sort();
        names
    }

    #[test]
    fn given_literal_wildcard_and_prefixed_bindings_when_matched_should_find_each_that_applies() {
        let mut index = AclIndex::default();
        assert!(index.insert(binding(
            resource_type::TOPIC,
            "orders",
            pattern_type::LITERAL
        )));
        assert!(index.insert(binding(resource_type::TOPIC, "*", pattern_type::LITERAL)));
        assert!(index.insert(binding(resource_type::TOPIC, "ord", pattern_type::PREFIXED)));
        assert!(index.insert(binding(resource_type::TOPIC, "pay", pattern_type::PREFIXED)));
        assert!(index.insert(binding(
            resource_type::GROUP,
            "orders",
            pattern_type::LITERAL
        )));
        assert!(!index.insert(binding(resource_type::TOPIC, "ord", pattern_type::PREFIXED)));
        assert_eq!(index.len(), 5);

        assert_eq!(
            matching(&index, resource_type::TOPIC, "orders"),
            ["3:*", "3:orders", "4:ord"]
        );
        assert_eq!(matching(&index, resource_type::TOPIC, "or"), ["3:*"]);
        assert_eq!(
            matching(&index, resource_type::TOPIC, "payments"),
            ["3:*", "4:pay"]
        );
        assert_eq!(
            matching(&index, resource_type::GROUP, "ord"),
            Vec::<String>::new()
        );
        // A multi-byte name: prefix probes never split a character.
        assert_eq!(matching(&index, resource_type::TOPIC, "é"), ["3:*"]);
    }

    #[test]
    fn given_removed_bindings_when_matched_should_be_gone_and_prefix_lengths_released() {
        let mut index = AclIndex::default();
        let prefixed = binding(resource_type::TOPIC, "ord", pattern_type::PREFIXED);
        index.insert(prefixed.clone());
        assert!(index.remove(&prefixed));
        assert!(!index.remove(&prefixed));
        assert!(index.is_empty());
        assert_eq!(index, AclIndex::default());
    }

    #[test]
    fn given_quota_values_when_set_and_removed_should_leave_no_empty_entity() {
        let mut table = QuotaTable::default();
        let entity = vec![QuotaEntityPart {
            entity_type: "user".into(),
            name: Some("alice".into()),
        }];
        table.set(&entity, "producer_byte_rate", Some(QuotaValue(1024.0)));
        assert_eq!(
            table.get(&entity).unwrap()["producer_byte_rate"],
            QuotaValue(1024.0)
        );
        table.set(&entity, "producer_byte_rate", None);
        assert!(table.is_empty());
    }
}
