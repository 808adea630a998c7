//! SaslHandshake (v1): the client names a mechanism; SaslAuthenticate carries the exchange.
//! A new handshake on an authenticated connection starts a re-authentication (KIP-368).

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use super::ConnectionContext;
use crate::sasl::{Mechanism, SaslSession};
use crate::state::Broker;

pub fn handle(
    broker: &Broker,
    request: SaslHandshakeRequest,
    context: &mut ConnectionContext,
) -> SaslHandshakeResponse {
    let enabled: Vec<StrBytes> = broker
        .config()
        .sasl_mechanisms
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
    if !context.listener.security.uses_sasl() {
        return response.with_error_code(ErrorCode::IllegalSaslState.code());
    }
    match Mechanism::from_name(request.mechanism.as_str()) {
        Some(mechanism) if broker.config().sasl_mechanisms.contains(&mechanism) => {
            context.sasl = SaslSession::Chosen(mechanism);
            response.with_error_code(0)
        }
        _ => response.with_error_code(ErrorCode::UnsupportedSaslMechanism.code()),
    }
}
