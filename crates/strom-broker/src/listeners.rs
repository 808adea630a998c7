//! Named listeners: `listeners`, `advertised.listeners` and
//! `listener.security.protocol.map`, as Kafka spells them.
//!
//! `listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093` binds two sockets. A name is
//! either a security protocol itself (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or mapped to
//! one (`listener.security.protocol.map=INTERNAL:PLAINTEXT,...`). A client is told the
//! advertised address of the listener it connected to.

use std::net::SocketAddr;

use crate::config::ConfigError;

/// Kafka's security protocols; the client's type, so a listener and a connection to it
/// speak of the same thing (the inter-broker client uses the listener's protocol as is).
pub use strom_client::connection::SecurityProtocol;

/// One listener: where it binds, what it speaks, what clients are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub name: String,
    pub security: SecurityProtocol,
    pub bind: SocketAddr,
    /// `None`: advertise the bound address.
    pub advertised: Option<(String, u16)>,
}

fn bad(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// Splits `NAME://host:port` into name, host and port.
fn split_endpoint<'a>(key: &str, entry: &'a str) -> Result<(&'a str, &'a str, u16), ConfigError> {
    let (name, address) = entry.split_once("://").ok_or_else(|| {
        bad(
            key,
            entry,
            "NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092",
        )
    })?;
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad(key, entry, "NAME://host:port with a port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(key, entry, "a port in 0..=65535"))?;
    Ok((
        name,
        host.trim_start_matches('[').trim_end_matches(']'),
        port,
    ))
}

/// Parses the three listener keys into listener configs, in the order given.
pub fn parse_listeners(
    listeners: &str,
    advertised: &str,
    protocol_map: &str,
) -> Result<Vec<ListenerConfig>, ConfigError> {
    let mut map: Vec<(String, SecurityProtocol)> = Vec::new();
    for pair in protocol_map
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (name, protocol) = pair.split_once(':').ok_or_else(|| {
            bad(
                "listener.security.protocol.map",
                pair,
                "NAME:PROTOCOL pairs, e.g. INTERNAL:PLAINTEXT",
            )
        })?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            bad(
                "listener.security.protocol.map",
                pair,
                "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL as the protocol",
            )
        })?;
        map.push((name.to_string(), protocol));
    }
    let mut out: Vec<ListenerConfig> = Vec::new();
    for entry in listeners
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, host, port) = split_endpoint("listeners", entry)?;
        let security = map
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .or_else(|| SecurityProtocol::parse(name))
            .ok_or_else(|| {
                bad(
                    "listeners",
                    entry,
                    "a listener name that is a security protocol or is mapped in listener.security.protocol.map",
                )
            })?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        let bind: SocketAddr = format!("{host}:{port}")
            .parse()
            .or_else(|_| format!("[{host}]:{port}").parse())
            .map_err(|_| {
                bad(
                    "listeners",
                    entry,
                    "a numeric IP address (or localhost), e.g. PLAINTEXT://127.0.0.1:9092",
                )
            })?;
        if out.iter().any(|l| l.name == name) {
            return Err(bad("listeners", entry, "each listener name once"));
        }
        out.push(ListenerConfig {
            name: name.to_string(),
            security,
            bind,
            advertised: None,
        });
    }
    if out.is_empty() {
        return Err(bad("listeners", listeners, "at least one NAME://host:port"));
    }
    for entry in advertised
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, host, port) = split_endpoint("advertised.listeners", entry)?;
        let listener = out.iter_mut().find(|l| l.name == name).ok_or_else(|| {
            bad(
                "advertised.listeners",
                entry,
                "a name that is also in listeners",
            )
        })?;
        listener.advertised = Some((host.to_string(), port));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_several_listeners_when_parsed_should_map_names_and_advertise() {
        let listeners = parse_listeners(
            "PLAINTEXT://127.0.0.1:9092,INTERNAL://0.0.0.0:9094,SSL://:9093",
            "INTERNAL://broker-1.example:9094",
            "INTERNAL:SASL_PLAINTEXT",
        )
        .unwrap();
        assert_eq!(listeners.len(), 3);
        assert_eq!(listeners[0].security, SecurityProtocol::Plaintext);
        assert_eq!(listeners[1].security, SecurityProtocol::SaslPlaintext);
        assert_eq!(
            listeners[1].advertised,
            Some(("broker-1.example".to_string(), 9094))
        );
        assert_eq!(listeners[2].bind, "0.0.0.0:9093".parse().unwrap());
        assert!(listeners[2].security.uses_tls());
    }

    #[test]
    fn given_bad_listeners_when_parsed_should_name_the_key() {
        for (listeners, advertised, map) in [
            ("FOO://127.0.0.1:1", "", ""),
            ("PLAINTEXT://127.0.0.1", "", ""),
            ("PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2", "", ""),
            ("PLAINTEXT://127.0.0.1:1", "SSL://x:1", ""),
            ("PLAINTEXT://127.0.0.1:1", "", "X:TLS"),
            ("", "", ""),
        ] {
            let error = parse_listeners(listeners, advertised, map)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("listeners") || error.contains("protocol.map"),
                "{error}"
            );
        }
    }
}

/// A bound listener as connections see it.
pub struct ListenerInfo {
    pub name: String,
    pub security: SecurityProtocol,
    /// What clients connected here are told to connect to.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Present on SSL and SASL_SSL listeners.
    pub tls: Option<std::sync::Arc<crate::tls::ReloadingAcceptor>>,
}
