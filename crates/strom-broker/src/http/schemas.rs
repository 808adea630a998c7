//! `/api/schemas`: what the console's Schemas page shows of the schema registry (every
//! subject with its versions and compatibility level; one subject's versions with their
//! schema text), read from this broker's registry state on the blocking pool. A broker
//! holding no replica of `_schemas` answers 503 and names the broker to ask.

use std::sync::Arc;

use hyper::StatusCode;
use strom_registry::RegistryError;

use super::{json_response, HttpError, HttpResponse};
use crate::state::Broker;

fn http_error(error: RegistryError) -> HttpError {
    match error {
        RegistryError::Forward { writer } => HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this broker holds no replica of _schemas; open the console of the broker \
                 whose schema registry is at {writer}"
            ),
        ),
        error => {
            let (status, _) = error.codes();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            HttpError::new(status, error.to_string())
        }
    }
}

/// `GET /api/schemas`.
pub async fn subjects(broker: &Arc<Broker>) -> Result<HttpResponse, HttpError> {
    let registry = crate::schema_validation::registry(broker);
    let value = registry
        .read_async(false, |state| Ok(strom_registry::console::subjects(state)))
        .await
        .map_err(http_error)?;
    Ok(json_response(StatusCode::OK, &value))
}

/// `GET /api/schemas/{subject}`.
pub async fn subject(broker: &Arc<Broker>, subject: String) -> Result<HttpResponse, HttpError> {
    let registry = crate::schema_validation::registry(broker);
    let value = registry
        .read_async(false, move |state| {
            strom_registry::console::subject(state, &subject)
        })
        .await
        .map_err(http_error)?;
    Ok(json_response(StatusCode::OK, &value))
}
