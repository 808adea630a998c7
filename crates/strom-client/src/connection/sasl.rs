//! SASL authentication of a fresh connection, as Kafka clients do it (KIP-152): after the
//! ApiVersions handshake, SaslHandshake v1 names the mechanism, then SaslAuthenticate
//! (v1+ when the broker offers it, v0 otherwise) carries the mechanism's messages.
//!
//! PLAIN is one message. SCRAM is two round trips, and the server's final message must
//! carry a signature that proves it holds the credential ([`super::scram`]).
//!
//! KIP-368: a SaslAuthenticate v1+ answer may give the session a lifetime; the broker
//! closes the connection at the first request after it. The lifetime is counted from
//! before the request that completed authentication, so the client's clock runs out first.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::scram::{random_nonce, ScramClient, ScramError};
use super::security::{SaslCredentials, SaslMechanism};
use super::Connection;
use crate::error::{ClientError, Result};

/// Kafka's code when SaslHandshake names a mechanism the broker does not enable.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Kafka's code when the listener expects no SASL (or not now).
const ILLEGAL_SASL_STATE: i16 = 34;

/// An authenticated SASL session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Session {
    pub expires_at: Instant,
    /// When owners should stop reusing the connection: ahead of expiry by a tenth of
    /// the lifetime, and at least [`SESSION_MARGIN_MIN`] (but at most half the lifetime).
    pub replace_at: Instant,
}

/// The least time before a session expires at which it is replaced: room for one request
/// round trip and a reconnect.
pub const SESSION_MARGIN_MIN: Duration = Duration::from_secs(2);

impl Session {
    /// `None` when the lifetime is too long to represent (a broker's nonsense): no expiry.
    pub(super) fn new(started_at: Instant, lifetime: Duration) -> Option<Self> {
        let margin = (lifetime / 10).max(SESSION_MARGIN_MIN.min(lifetime / 2));
        let expires_at = started_at.checked_add(lifetime)?;
        Some(Session {
            expires_at,
            replace_at: expires_at - margin,
        })
    }
}

struct Exchange<'a> {
    connection: &'a Connection,
    credentials: &'a SaslCredentials,
}

impl Exchange<'_> {
    fn failed(&self, code: i16, message: Option<String>) -> ClientError {
        ClientError::AuthenticationFailed {
            address: self.connection.address().to_string(),
            mechanism: self.credentials.mechanism.name(),
            user: self.credentials.username.clone(),
            code,
            message,
        }
    }

    fn scram_failed(&self, reason: ScramError) -> ClientError {
        ClientError::Scram {
            address: self.connection.address().to_string(),
            mechanism: self.credentials.mechanism.name(),
            user: self.credentials.username.clone(),
            reason,
        }
    }

    async fn handshake(&self) -> Result<()> {
        let mechanism = self.credentials.mechanism.name();
        let response = self
            .connection
            .send(
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
            )
            .await?;
        match response.error_code {
            0 => Ok(()),
            UNSUPPORTED_SASL_MECHANISM => Err(ClientError::SaslMechanismNotEnabled {
                address: self.connection.address().to_string(),
                mechanism,
                enabled: response.mechanisms.iter().map(|m| m.to_string()).collect(),
            }),
            ILLEGAL_SASL_STATE => Err(ClientError::SaslNotExpected {
                address: self.connection.address().to_string(),
            }),
            code => Err(ClientError::from_code(
                code,
                None,
                format!("SASL handshake with broker {}", self.connection.address()),
            )
            .expect("non-zero code")),
        }
    }

    /// One SaslAuthenticate round trip; a non-zero error code fails the authentication.
    async fn step(&self, message: Vec<u8>) -> Result<SaslAuthenticateResponse> {
        let response = self
            .connection
            .send(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)))
            .await?;
        if response.error_code != 0 {
            return Err(self.failed(
                response.error_code,
                response
                    .error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .filter(|m| !m.is_empty()),
            ));
        }
        Ok(response)
    }

    async fn authenticate(&self) -> Result<Option<Session>> {
        self.handshake().await?;
        let credentials = self.credentials;
        let (started_at, last) = match credentials.mechanism {
            SaslMechanism::Plain => {
                let mut message =
                    Vec::with_capacity(2 + credentials.username.len() + credentials.password.len());
                message.push(0);
                message.extend_from_slice(credentials.username.as_bytes());
                message.push(0);
                message.extend_from_slice(credentials.password.as_bytes());
                let started_at = Instant::now();
                (started_at, self.step(message).await?)
            }
            SaslMechanism::Scram(mechanism) => {
                let client = ScramClient::new(
                    mechanism,
                    &credentials.username,
                    &credentials.password,
                    random_nonce(),
                );
                let server_first = self.step(client.client_first().into_bytes()).await?;
                let (client_final, proof_sent) = client
                    .server_first(&server_first.auth_bytes)
                    .map_err(|reason| self.scram_failed(reason))?;
                let started_at = Instant::now();
                let server_final = self.step(client_final.into_bytes()).await?;
                proof_sent
                    .server_final(&server_final.auth_bytes)
                    .map_err(|reason| self.scram_failed(reason))?;
                (started_at, server_final)
            }
        };
        // v0 has no lifetime field (decoded as 0); a negative one is nonsense: no expiry.
        if last.session_lifetime_ms <= 0 {
            return Ok(None);
        }
        Ok(Session::new(
            started_at,
            Duration::from_millis(last.session_lifetime_ms as u64),
        ))
    }
}

/// Authenticates `connection` (ApiVersions already done) with `credentials`.
pub(super) async fn authenticate(
    connection: &Connection,
    credentials: &SaslCredentials,
) -> Result<Option<Session>> {
    let exchange = Exchange {
        connection,
        credentials,
    };
    let session = exchange.authenticate().await?;
    tracing::debug!(
        broker = connection.address(),
        mechanism = credentials.mechanism.name(),
        user = %credentials.username,
        session_lifetime = ?session.map(|s| s.expires_at.saturating_duration_since(Instant::now())),
        "SASL authentication succeeded"
    );
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_session_lifetimes_should_replace_ahead_of_expiry() {
        let now = Instant::now();
        let hour = Session::new(now, Duration::from_secs(3600)).unwrap();
        assert_eq!(hour.expires_at, now + Duration::from_secs(3600));
        assert_eq!(
            hour.replace_at,
            now + Duration::from_secs(3240),
            "10% early"
        );
        let short = Session::new(now, Duration::from_secs(10)).unwrap();
        assert_eq!(
            short.replace_at,
            now + Duration::from_secs(8),
            "at least 2 s early"
        );
        let tiny = Session::new(now, Duration::from_millis(1000)).unwrap();
        assert_eq!(
            tiny.replace_at,
            now + Duration::from_millis(500),
            "at most half"
        );
        assert_eq!(
            Session::new(now, Duration::from_millis(i64::MAX as u64)).map(|s| s.expires_at),
            now.checked_add(Duration::from_millis(i64::MAX as u64)),
            "a huge lifetime does not overflow"
        );
    }
}
