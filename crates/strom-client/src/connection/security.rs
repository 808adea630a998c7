//! How a connection secures itself: Kafka's `security.protocol` (PLAINTEXT, SSL,
//! SASL_PLAINTEXT, SASL_SSL), the TLS settings and the SASL credentials.
//!
//! [`ClientSecurity`] is validated and its TLS configuration built once, when it is made
//! (from code with [`ClientSecurity::new`] or from Kafka/librdkafka-style properties with
//! [`ClientSecurity::from_properties`]); every connection then shares it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::tls::{TlsConnector, TlsOptions};
use crate::error::{ClientError, Result};
use crate::security::ScramMechanism;

/// Kafka's `security.protocol`: whether a connection uses TLS and whether it authenticates
/// with SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses Kafka's names, case-insensitively (`SASL_SSL`, `sasl_ssl`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// Kafka's `sasl.mechanism`, of those this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("PLAIN") {
            return Some(SaslMechanism::Plain);
        }
        ScramMechanism::from_name(name).map(SaslMechanism::Scram)
    }

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(scram) => scram.name(),
        }
    }
}

/// Who to authenticate as, and how. `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The security of every connection a client opens: plaintext by default. Cheap to clone
/// (the TLS configuration is shared).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSecurity {
    protocol: SecurityProtocol,
    tls: Option<TlsConnector>,
    sasl: Option<SaslCredentials>,
}

/// The keys [`ClientSecurity::from_properties`] accepts.
pub const SECURITY_PROPERTY_KEYS: &[&str] = &[
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
];

fn invalid(key: &str, reason: impl Into<String>) -> ClientError {
    ClientError::SecurityConfig {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl ClientSecurity {
    /// No TLS, no SASL.
    pub fn plaintext() -> Self {
        ClientSecurity::default()
    }

    /// Checks that the parts fit the protocol (TLS options exactly when it uses TLS,
    /// credentials exactly when it uses SASL) and builds the TLS configuration.
    pub fn new(
        protocol: SecurityProtocol,
        tls: Option<&TlsOptions>,
        sasl: Option<SaslCredentials>,
    ) -> Result<Self> {
        let tls = match (protocol.uses_tls(), tls) {
            (true, Some(options)) => Some(options.build()?),
            (true, None) => return Err(invalid("ssl.ca.location", format!(
                "security.protocol={} needs TLS settings (at least ssl.ca.location)",
                protocol.name()
            ))),
            (false, Some(_)) => return Err(invalid("security.protocol", format!(
                "TLS settings are given but security.protocol={} does not use TLS: use SSL or SASL_SSL",
                protocol.name()
            ))),
            (false, None) => None,
        };
        let sasl = match (protocol.uses_sasl(), sasl) {
            (true, Some(credentials)) => {
                if credentials.username.is_empty() {
                    return Err(invalid("sasl.username", "must not be empty"));
                }
                Some(credentials)
            }
            (true, None) => return Err(invalid("sasl.mechanism", format!(
                "security.protocol={} needs sasl.mechanism, sasl.username and sasl.password",
                protocol.name()
            ))),
            (false, Some(_)) => return Err(invalid("security.protocol", format!(
                "SASL credentials are given but security.protocol={} does not use SASL: use SASL_PLAINTEXT or SASL_SSL",
                protocol.name()
            ))),
            (false, None) => None,
        };
        Ok(ClientSecurity {
            protocol,
            tls,
            sasl,
        })
    }

    /// Builds the settings from Kafka client properties, with librdkafka's names:
    ///
    /// | key | value |
    /// |---|---|
    /// | `security.protocol` | `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` |
    /// | `ssl.ca.location` | PEM file of CA certificates to trust (required with TLS) |
    /// | `ssl.certificate.location` | PEM client certificate chain, for mutual TLS |
    /// | `ssl.key.location` | PEM private key of that certificate; either file alone may hold both |
    /// | `ssl.endpoint.identification.algorithm` | `https` (default: the certificate must name the host) or `none` (empty, as Java writes it, means `none`) |
    /// | `sasl.mechanism` (or `sasl.mechanisms`) | `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` |
    /// | `sasl.username`, `sasl.password` | the credentials |
    /// | `sasl.jaas.config` | instead of the two above, Java's `... required username="..." password="...";` |
    ///
    /// Unknown keys, settings the protocol does not use (`ssl.*` with PLAINTEXT, `sasl.*`
    /// with SSL) and unreadable files are errors that name the key.
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<Self> {
        if let Some(unknown) = properties
            .keys()
            .find(|key| !SECURITY_PROPERTY_KEYS.contains(&key.as_str()))
        {
            return Err(ClientError::UnknownSecurityKey {
                key: unknown.clone(),
                accepted: SECURITY_PROPERTY_KEYS.join(", "),
            });
        }
        let get = |key: &str| properties.get(key).map(|value| value.trim());
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(name) => SecurityProtocol::parse(name).ok_or_else(|| {
                invalid(
                    "security.protocol",
                    format!("'{name}' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                )
            })?,
        };

        let path = |key: &str| -> Result<Option<PathBuf>> {
            match get(key) {
                None => Ok(None),
                Some("") => Err(invalid(key, "is empty: give a file path or leave it out")),
                Some(value) => Ok(Some(PathBuf::from(value))),
            }
        };
        let tls = if protocol.uses_tls() {
            let verify_hostname = match get("ssl.endpoint.identification.algorithm") {
                None => true,
                Some(value) if value.eq_ignore_ascii_case("https") => true,
                Some(value) if value.is_empty() || value.eq_ignore_ascii_case("none") => false,
                Some(value) => {
                    return Err(invalid(
                        "ssl.endpoint.identification.algorithm",
                        format!("'{value}' is not https or none"),
                    ))
                }
            };
            Some(TlsOptions {
                ca_location: path("ssl.ca.location")?,
                certificate_location: path("ssl.certificate.location")?,
                key_location: path("ssl.key.location")?,
                verify_hostname,
            })
        } else if let Some(key) = properties.keys().find(|key| key.starts_with("ssl.")) {
            return Err(invalid(
                key,
                format!(
                    "is set but security.protocol={} does not use TLS: set security.protocol=SSL or SASL_SSL, or remove it",
                    protocol.name()
                ),
            ));
        } else {
            None
        };

        let sasl = if protocol.uses_sasl() {
            Some(sasl_credentials(properties)?)
        } else if let Some(key) = properties.keys().find(|key| key.starts_with("sasl.")) {
            return Err(invalid(
                key,
                format!(
                    "is set but security.protocol={} does not use SASL: set security.protocol=SASL_PLAINTEXT or SASL_SSL, or remove it",
                    protocol.name()
                ),
            ));
        } else {
            None
        };
        ClientSecurity::new(protocol, tls.as_ref(), sasl)
    }

    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }

    /// The built TLS configuration, when the protocol uses TLS.
    pub fn tls(&self) -> Option<&TlsConnector> {
        self.tls.as_ref()
    }

    /// The SASL credentials, when the protocol uses SASL.
    pub fn sasl(&self) -> Option<&SaslCredentials> {
        self.sasl.as_ref()
    }
}

fn sasl_credentials(properties: &BTreeMap<String, String>) -> Result<SaslCredentials> {
    let get = |key: &str| properties.get(key).map(|value| value.trim());
    let mechanism_name = match (get("sasl.mechanism"), get("sasl.mechanisms")) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Err(invalid(
                "sasl.mechanisms",
                format!("'{b}' differs from sasl.mechanism '{a}': give one of them"),
            ))
        }
        (Some(name), _) | (None, Some(name)) => name,
        (None, None) => {
            return Err(invalid(
                "sasl.mechanism",
                "required with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            ))
        }
    };
    let mechanism = SaslMechanism::parse(mechanism_name).ok_or_else(|| {
        invalid(
            "sasl.mechanism",
            format!(
                "'{mechanism_name}' is not supported: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            ),
        )
    })?;
    // Passwords are taken as written: spaces may be part of them.
    let password = properties.get("sasl.password").cloned();
    let jaas = get("sasl.jaas.config");
    if jaas.is_some() && (properties.contains_key("sasl.username") || password.is_some()) {
        return Err(invalid(
            "sasl.jaas.config",
            "give either sasl.jaas.config or sasl.username/sasl.password, not both",
        ));
    }
    let (username, password) = match jaas {
        Some(jaas) => jaas_credentials(jaas)?,
        None => (
            get("sasl.username")
                .ok_or_else(|| invalid("sasl.username", "required with SASL"))?
                .to_string(),
            password.ok_or_else(|| invalid("sasl.password", "required with SASL"))?,
        ),
    };
    if username.is_empty() {
        return Err(invalid("sasl.username", "must not be empty"));
    }
    Ok(SaslCredentials {
        mechanism,
        username,
        password,
    })
}

/// The `username` and `password` options of a one-module JAAS entry
/// (`org.apache.kafka.common.security.scram.ScramLoginModule required username="alice"
/// password="secret";`), as Kafka's Java tools take them.
fn jaas_credentials(jaas: &str) -> Result<(String, String)> {
    let error = |reason: &str| invalid("sasl.jaas.config", reason.to_string());
    let body = jaas.trim().strip_suffix(';').unwrap_or(jaas).trim();
    let mut rest = body;
    // Login module class, then control flag.
    for _ in 0..2 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            return Err(error("expected `LoginModule required key=\"value\" ...;`"));
        }
        rest = rest[end..].trim_start();
    }
    let mut options = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| error("expected key=\"value\" options"))?;
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| error("option values must be in double quotes"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let close = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => return Err(error("unterminated quoted value")),
                },
                Some((index, '"')) => break index,
                Some((_, c)) => value.push(c),
                None => return Err(error("unterminated quoted value")),
            }
        };
        options.insert(key.trim().to_string(), value);
        rest = after[close + 1..].trim_start();
    }
    match (options.remove("username"), options.remove("password")) {
        (Some(username), Some(password)) => Ok((username, password)),
        _ => Err(error("needs username=\"...\" and password=\"...\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error_key(pairs: &[(&str, &str)]) -> String {
        match ClientSecurity::from_properties(&properties(pairs)) {
            Err(ClientError::SecurityConfig { key, .. }) => key,
            Err(ClientError::UnknownSecurityKey { key, .. }) => key,
            Err(ClientError::SecurityFile { key, .. }) => key.to_string(),
            other => panic!("{pairs:?}: expected a settings error, got {other:?}"),
        }
    }

    #[test]
    fn given_no_properties_should_be_plaintext() {
        let security = ClientSecurity::from_properties(&BTreeMap::new()).unwrap();
        assert_eq!(security, ClientSecurity::plaintext());
        assert_eq!(security.protocol(), SecurityProtocol::Plaintext);
        assert!(security.tls().is_none() && security.sasl().is_none());
    }

    #[test]
    fn given_sasl_plaintext_properties_should_carry_credentials() {
        let security = ClientSecurity::from_properties(&properties(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "scram-sha-512"),
            ("sasl.username", "alice"),
            ("sasl.password", " pass word "),
        ]))
        .unwrap();
        assert_eq!(security.protocol(), SecurityProtocol::SaslPlaintext);
        let sasl = security.sasl().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::Scram(ScramMechanism::Sha512));
        assert_eq!(
            (sasl.username.as_str(), sasl.password.as_str()),
            ("alice", " pass word ")
        );
        assert!(
            !format!("{security:?}").contains("pass word"),
            "Debug redacts"
        );
    }

    #[test]
    fn given_jaas_config_should_take_username_and_password_from_it() {
        let security = ClientSecurity::from_properties(&properties(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="bob" password="a \"quoted\" pw";"#,
            ),
        ]))
        .unwrap();
        let sasl = security.sasl().unwrap();
        assert_eq!(
            (sasl.username.as_str(), sasl.password.as_str()),
            ("bob", "a \"quoted\" pw")
        );
        for bad in [
            "",
            "Module required username=bob password=\"x\";",
            "Module required username=\"bob\";",
            "Module required username=\"bob",
        ] {
            assert_eq!(
                error_key(&[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "PLAIN"),
                    ("sasl.jaas.config", bad),
                ]),
                "sasl.jaas.config",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn given_bad_properties_should_name_the_key() {
        let sasl = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "pw"),
        ];
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("bootstrap.servers", "x:1")], "bootstrap.servers"),
            (vec![("security.protocol", "TLS")], "security.protocol"),
            (vec![("ssl.ca.location", "ca.pem")], "ssl.ca.location"),
            (vec![("sasl.username", "alice")], "sasl.username"),
            (vec![("security.protocol", "SSL")], "ssl.ca.location"),
            (
                vec![("security.protocol", "SSL"), ("ssl.ca.location", "")],
                "ssl.ca.location",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.ca.location", "/nonexistent/ca.pem"),
                ],
                "ssl.ca.location",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.ca.location", "/nonexistent/ca.pem"),
                    ("ssl.endpoint.identification.algorithm", "dns"),
                ],
                "ssl.endpoint.identification.algorithm",
            ),
            (
                vec![("security.protocol", "SSL"), ("sasl.mechanism", "PLAIN")],
                "sasl.mechanism",
            ),
            (vec![sasl[0], sasl[2], sasl[3]], "sasl.mechanism"),
            (
                vec![sasl[0], ("sasl.mechanism", "GSSAPI"), sasl[2], sasl[3]],
                "sasl.mechanism",
            ),
            (
                vec![
                    sasl[0],
                    sasl[1],
                    ("sasl.mechanisms", "SCRAM-SHA-256"),
                    sasl[2],
                    sasl[3],
                ],
                "sasl.mechanisms",
            ),
            (vec![sasl[0], sasl[1], sasl[3]], "sasl.username"),
            (vec![sasl[0], sasl[1], sasl[2]], "sasl.password"),
            (
                vec![sasl[0], sasl[1], ("sasl.username", ""), sasl[3]],
                "sasl.username",
            ),
            (
                vec![
                    sasl[0],
                    sasl[1],
                    sasl[2],
                    sasl[3],
                    ("sasl.jaas.config", "x"),
                ],
                "sasl.jaas.config",
            ),
        ];
        for (pairs, key) in cases {
            assert_eq!(error_key(&pairs), key, "{pairs:?}");
        }
        let error = ClientSecurity::from_properties(&properties(&[("ssl.keystore.location", "x")]))
            .unwrap_err();
        assert!(
            error.to_string().contains("ssl.keystore.location")
                && error.to_string().contains("ssl.ca.location"),
            "names the key and what is accepted: {error}"
        );
    }

    #[test]
    fn given_parts_that_do_not_fit_the_protocol_should_refuse() {
        let credentials = SaslCredentials {
            mechanism: SaslMechanism::Plain,
            username: "alice".into(),
            password: "pw".into(),
        };
        assert!(
            ClientSecurity::new(SecurityProtocol::Plaintext, None, Some(credentials.clone()))
                .is_err()
        );
        assert!(ClientSecurity::new(SecurityProtocol::SaslPlaintext, None, None).is_err());
        assert!(ClientSecurity::new(SecurityProtocol::Ssl, None, None).is_err());
        assert!(ClientSecurity::new(
            SecurityProtocol::Plaintext,
            Some(&TlsOptions::default()),
            None
        )
        .is_err());
        let security =
            ClientSecurity::new(SecurityProtocol::SaslPlaintext, None, Some(credentials)).unwrap();
        assert_eq!(security.sasl().unwrap().username, "alice");
    }
}
