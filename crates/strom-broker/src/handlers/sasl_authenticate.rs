//! SaslAuthenticate: one step of the mechanism chosen by SaslHandshake. A failed
//! authentication is answered with SASL_AUTHENTICATION_FAILED and the connection closes.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use rand::Rng;
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use super::ConnectionContext;
use crate::sasl::scram::{ScramError, ScramServer};
use crate::sasl::{authenticate_plain, credential, Mechanism, SaslSession};
use crate::state::Broker;

/// The answer, and whether the connection must close after it.
pub struct AuthenticateOutcome {
    pub response: SaslAuthenticateResponse,
    pub close: bool,
}

fn failed(code: ErrorCode, message: &str) -> AuthenticateOutcome {
    AuthenticateOutcome {
        response: SaslAuthenticateResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message.to_string()))),
        close: true,
    }
}

fn succeeded(
    broker: &Broker,
    version: i16,
    context: &mut ConnectionContext,
    user: String,
    auth_bytes: Bytes,
) -> AuthenticateOutcome {
    let principal = format!("User:{user}");
    if context.authenticated && context.principal != principal {
        // KIP-368: re-authentication must not change who the connection is.
        return failed(
            ErrorCode::SaslAuthenticationFailed,
            "Cannot change principals during re-authentication",
        );
    }
    let lifetime_ms = broker.config().connections_max_reauth_ms;
    context.session_expires_at = (lifetime_ms > 0)
        .then(|| std::time::Instant::now() + std::time::Duration::from_millis(lifetime_ms as u64));
    info!(peer = %context.peer, listener = %context.listener.name, %user, "SASL authentication succeeded");
    context.principal = principal;
    context.authenticated = true;
    context.sasl = SaslSession::Idle;
    AuthenticateOutcome {
        response: SaslAuthenticateResponse::default()
            .with_auth_bytes(auth_bytes)
            .with_session_lifetime_ms(if version >= 1 { lifetime_ms.max(0) } else { 0 }),
        close: false,
    }
}

fn nonce() -> String {
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| {
            const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            CHARS[rng.gen_range(0..CHARS.len())] as char
        })
        .collect()
}

pub fn handle(
    broker: &Broker,
    request: SaslAuthenticateRequest,
    version: i16,
    context: &mut ConnectionContext,
) -> AuthenticateOutcome {
    let session = std::mem::take(&mut context.sasl);
    let image = broker.image();
    match session {
        SaslSession::Idle => failed(
            ErrorCode::IllegalSaslState,
            "SaslAuthenticate before SaslHandshake",
        ),
        SaslSession::Chosen(Mechanism::Plain) => {
            match authenticate_plain(&image, &request.auth_bytes) {
                Some(user) => succeeded(broker, version, context, user, Bytes::new()),
                None => {
                    warn!(peer = %context.peer, "SASL/PLAIN authentication failed");
                    failed(
                        ErrorCode::SaslAuthenticationFailed,
                        "Authentication failed: invalid username or password",
                    )
                }
            }
        }
        SaslSession::Chosen(Mechanism::Scram(mechanism)) => {
            let mut server = ScramServer::new(mechanism);
            match server.client_first(&request.auth_bytes, &nonce(), |user| {
                credential(&image, user, mechanism)
            }) {
                Ok(server_first) => {
                    context.sasl = SaslSession::Scram(Box::new(server));
                    AuthenticateOutcome {
                        response: SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(server_first)),
                        close: false,
                    }
                }
                Err(error) => failed(
                    ErrorCode::SaslAuthenticationFailed,
                    &format!("Authentication failed: {error}"),
                ),
            }
        }
        SaslSession::Scram(mut server) => match server.client_final(&request.auth_bytes) {
            Ok((server_final, user)) => {
                succeeded(broker, version, context, user, Bytes::from(server_final))
            }
            Err(ScramError::Failed) => {
                warn!(peer = %context.peer, mechanism = server.mechanism().name(), "SCRAM authentication failed");
                failed(
                    ErrorCode::SaslAuthenticationFailed,
                    &format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}", server.mechanism().name()),
                )
            }
            Err(error) => failed(
                ErrorCode::SaslAuthenticationFailed,
                &format!("Authentication failed: {error}"),
            ),
        },
    }
}
