//! AlterClientQuotas: set or remove quota values per entity (user, client-id, their
//! defaults, or ip), validated with Kafka's rules, written as one metadata-log entry.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{MetadataRecord, QuotaEntity, QuotaEntityPart, QuotaValue};
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use crate::quota::{CLIENT_ID, IP, QUOTA_KEYS, USER};
use crate::state::Broker;

fn entity_of(
    wire: &[kafka_protocol::messages::alter_client_quotas_request::EntityData],
) -> Result<QuotaEntity, String> {
    if wire.is_empty() {
        return Err("The entity must name at least one entity type".into());
    }
    let mut entity: QuotaEntity = Vec::with_capacity(wire.len());
    for part in wire {
        let entity_type = part.entity_type.to_string();
        if ![USER, CLIENT_ID, IP].contains(&entity_type.as_str()) {
            return Err(format!(
                "Unknown entity type `{entity_type}` (expected user, client-id or ip)"
            ));
        }
        if entity.iter().any(|p| p.entity_type == entity_type) {
            return Err(format!("Duplicate entity type `{entity_type}`"));
        }
        let name = part.entity_name.as_ref().map(|n| n.to_string());
        if name.as_deref() == Some("") {
            return Err(format!("Empty name for entity type `{entity_type}`"));
        }
        if entity_type == IP {
            if let Some(ip) = &name {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("`{ip}` is not an IP address"));
                }
            }
        }
        entity.push(QuotaEntityPart { entity_type, name });
    }
    if entity.len() > 1 && entity.iter().any(|p| p.entity_type == IP) {
        return Err("An ip entity cannot be combined with user or client-id".into());
    }
    entity.sort();
    Ok(entity)
}

fn validate_op(entity: &QuotaEntity, key: &str, value: f64, remove: bool) -> Result<(), String> {
    let is_ip = entity.iter().any(|p| p.entity_type == IP);
    let Some((_, for_clients, whole)) = QUOTA_KEYS.iter().find(|(name, _, _)| *name == key) else {
        return Err(format!("Unknown quota key `{key}`"));
    };
    if *for_clients == is_ip {
        return Err(format!(
            "Quota key `{key}` does not apply to this entity type"
        ));
    }
    if remove {
        return Ok(());
    }
    if !value.is_finite() || value <= 0.0 {
        return Err(format!(
            "Quota `{key}` must be a positive number, not {value}"
        ));
    }
    if *whole && value.fract() != 0.0 {
        return Err(format!("Quota `{key}` must be a whole number, not {value}"));
    }
    Ok(())
}

fn wire_entity(
    entity: &[kafka_protocol::messages::alter_client_quotas_request::EntityData],
) -> Vec<EntityData> {
    entity
        .iter()
        .map(|part| {
            EntityData::default()
                .with_entity_type(part.entity_type.clone())
                .with_entity_name(part.entity_name.clone())
        })
        .collect()
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: AlterClientQuotasRequest,
    principal: &str,
) -> AlterClientQuotasResponse {
    let mut results = Vec::with_capacity(request.entries.len());
    let mut records = Vec::new();
    let mut written = Vec::new();
    let mut seen_entities = HashSet::new();
    for entry in &request.entries {
        let checked = entity_of(&entry.entity).and_then(|entity| {
            if !seen_entities.insert(entity.clone()) {
                return Err("The same entity appears twice in the request".to_string());
            }
            let mut keys = HashSet::new();
            for op in &entry.ops {
                if !keys.insert(op.key.to_string()) {
                    return Err(format!("Duplicate quota key `{}`", op.key.as_str()));
                }
                validate_op(&entity, &op.key, op.value, op.remove)?;
            }
            Ok(entity)
        });
        let result = EntryData::default().with_entity(wire_entity(&entry.entity));
        match checked {
            Err(message) => results.push(
                result
                    .with_error_code(ErrorCode::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            ),
            Ok(entity) => {
                if !request.validate_only {
                    written.push(results.len());
                    for op in &entry.ops {
                        info!(by = %principal, ?entity, key = %op.key.as_str(), value = op.value, remove = op.remove, "client quota altered");
                        records.push(MetadataRecord::ClientQuota {
                            entity: entity.clone(),
                            key: op.key.to_string(),
                            value: (!op.remove).then_some(QuotaValue(op.value)),
                        });
                    }
                }
                results.push(result);
            }
        }
    }
    if !records.is_empty() {
        let outcome = crate::admin::write_records(broker, records, |quorum, records| {
            quorum.alter_client_quotas(records)
        })
        .await;
        if let Err(message) = outcome {
            warn!(%message, "cannot store client quotas");
            for index in written {
                let result = std::mem::take(&mut results[index]);
                results[index] = result
                    .with_error_code(ErrorCode::KafkaStorageError.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone())));
            }
        }
    }
    AlterClientQuotasResponse::default().with_entries(results)
}
