//! How this broker connects to the other brokers of its cluster: follower fetches from
//! leaders ([`crate::replica_fetcher`]) and transaction markers for partitions led
//! elsewhere ([`crate::txn`]). They go to each broker's address on the inter-broker
//! listener (`inter.broker.listener.name`), with that listener's security protocol: TLS
//! trusting `ssl.truststore.location` and presenting this broker's keystore to brokers that
//! ask for a client certificate; SASL as `inter.broker.sasl.username` with
//! `sasl.mechanism.inter.broker.protocol`.
//!
//! The client side ([`ClientSecurity`]) is built once at start-up (its TLS configuration
//! reads the PEM files then) and shared by every connection.

use std::time::Duration;

use strom_client::connection::{
    ClientSecurity, ConnectionConfig, SaslCredentials, SaslMechanism, TlsOptions,
};
use strom_client::ClientError;

use crate::config::BrokerConfig;

/// Builds the inter-broker client security from the validated config.
pub fn client_security(config: &BrokerConfig) -> Result<ClientSecurity, ClientError> {
    let settings = &config.inter_broker;
    let protocol = settings.security;
    let tls = protocol.uses_tls().then(|| TlsOptions {
        ca_location: settings.truststore.clone(),
        // The keystore is one PEM with the key and the chain; the client reads both from it.
        certificate_location: settings.keystore.clone(),
        key_location: settings.keystore.clone(),
        verify_hostname: settings.verify_hostname,
    });
    let sasl = match &settings.sasl {
        Some((mechanism, username, password)) => Some(SaslCredentials {
            mechanism: SaslMechanism::parse(mechanism).ok_or_else(|| {
                ClientError::SecurityConfig {
                    key: "sasl.mechanism.inter.broker.protocol".to_string(),
                    reason: format!("{mechanism} is not a mechanism this broker speaks"),
                }
            })?,
            username: username.clone(),
            password: password.clone(),
        }),
        None => None,
    };
    ClientSecurity::new(protocol, tls.as_ref(), sasl)
}

/// A connection config to another broker, as `client_id`, with the inter-broker security.
pub fn connection_config(
    security: &ClientSecurity,
    client_id: String,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> ConnectionConfig {
    ConnectionConfig {
        client_id,
        connect_timeout,
        request_timeout,
        security: security.clone(),
        ..ConnectionConfig::default()
    }
}
