//! DescribeClientQuotas: the quotas of every entity matching the filter components
//! (exact name, the default entity, or any), strictly (no other entity kinds) or not.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::QuotaEntity;
use strom_protocol::ErrorCode;

use crate::quota::{CLIENT_ID, IP, USER};
use crate::state::Broker;

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

struct Component {
    entity_type: String,
    match_type: i8,
    name: Option<String>,
}

fn invalid(message: String) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(ErrorCode::InvalidRequest.code())
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_entries(None)
}

fn matches(entity: &QuotaEntity, components: &[Component], strict: bool) -> bool {
    if strict && entity.len() != components.len() {
        return false;
    }
    components.iter().all(|component| {
        let found = entity
            .iter()
            .find(|part| part.entity_type == component.entity_type);
        match (component.match_type, found) {
            (_, None) => false,
            (MATCH_EXACT, Some(part)) => part.name == component.name,
            (MATCH_DEFAULT, Some(part)) => part.name.is_none(),
            (_, Some(_)) => true,
        }
    })
}

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let mut components = Vec::with_capacity(request.components.len());
    let mut seen = HashSet::new();
    for wire in &request.components {
        let entity_type = wire.entity_type.to_string();
        if ![USER, CLIENT_ID, IP].contains(&entity_type.as_str()) {
            return invalid(format!(
                "Unknown entity type `{entity_type}` (expected user, client-id or ip)"
            ));
        }
        if !seen.insert(entity_type.clone()) {
            return invalid(format!(
                "Duplicate filter component for entity type `{entity_type}`"
            ));
        }
        let name = wire._match.as_ref().map(|m| m.to_string());
        match wire.match_type {
            MATCH_EXACT if name.is_none() => {
                return invalid(format!("Exact match on `{entity_type}` needs a name"))
            }
            MATCH_EXACT | MATCH_ANY => {}
            MATCH_DEFAULT if name.is_some() => {
                return invalid(format!("Default match on `{entity_type}` takes no name"))
            }
            MATCH_DEFAULT => {}
            other => return invalid(format!("Unknown match type {other}")),
        }
        components.push(Component {
            entity_type,
            match_type: wire.match_type,
            name,
        });
    }
    let image = broker.image();
    let entries = image
        .client_quotas()
        .iter()
        .filter(|(entity, _)| matches(entity, &components, request.strict))
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|part| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_string(part.entity_type.clone()))
                                .with_entity_name(part.name.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(key.clone()))
                                .with_value(value.0)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}
