//! TLS for SSL and SASL_SSL listeners, with rustls.
//!
//! The server certificate chain and private key come from one PEM file
//! (`ssl.keystore.location`, Kafka's PEM keystore); client certificates, when
//! `ssl.client.auth` asks for them, are verified against the PEM CA bundle in
//! `ssl.truststore.location`. The files are re-read when they change (checked every
//! `ssl.keystore.reload.interval.ms`), so certificates rotate without a restart: new
//! connections use the new ones, open connections keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(ClientAuth::None),
            "requested" => Some(ClientAuth::Requested),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }
}

/// The TLS settings of the broker (shared by its SSL and SASL_SSL listeners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub keystore: PathBuf,
    pub truststore: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// "TLSv1.2", "TLSv1.3".
    pub protocols: Vec<String>,
    /// `ssl.principal.mapping.rules`, validated by [`PrincipalMapper::parse`].
    pub principal_mapping_rules: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no {what} in PEM form (expected `-----BEGIN {what}-----`)")]
    Missing { path: PathBuf, what: &'static str },
    #[error("ssl.client.auth={client_auth:?} needs ssl.truststore.location (PEM CA certificates)")]
    NoTruststore { client_auth: ClientAuth },
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("ssl.enabled.protocols lists none of TLSv1.2, TLSv1.3")]
    NoProtocols,
    #[error(transparent)]
    Mapping(#[from] MappingRuleError),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_path_buf(),
            what: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::Missing {
            path: path.to_path_buf(),
            what: "PRIVATE KEY",
        })
}

fn build(settings: &TlsSettings) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if settings.protocols.iter().any(|p| p == "TLSv1.2") {
        versions.push(&rustls::version::TLS12);
    }
    if settings.protocols.iter().any(|p| p == "TLSv1.3") {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err(TlsError::NoProtocols);
    }
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let path = settings
                .truststore
                .as_ref()
                .ok_or(TlsError::NoTruststore { client_auth: auth })?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(path)? {
                roots.add(cert)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            )
        }
    };
    let config = builder.with_single_cert(
        certificates(&settings.keystore)?,
        private_key(&settings.keystore)?,
    )?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A TLS acceptor that follows its certificate files.
pub struct ReloadingAcceptor {
    settings: TlsSettings,
    current: RwLock<(TlsAcceptor, Vec<Option<SystemTime>>)>,
    mapper: PrincipalMapper,
}

impl ReloadingAcceptor {
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        let acceptor = build(&settings)?;
        let stamps = Self::stamps(&settings);
        let mapper = PrincipalMapper::parse(&settings.principal_mapping_rules)?;
        Ok(ReloadingAcceptor {
            settings,
            current: RwLock::new((acceptor, stamps)),
            mapper,
        })
    }

    fn stamps(settings: &TlsSettings) -> Vec<Option<SystemTime>> {
        std::iter::once(&settings.keystore)
            .chain(settings.truststore.iter())
            .map(|p| modified(p))
            .collect()
    }

    /// The principal name for a client certificate's subject.
    pub fn map_principal(&self, subject: &str) -> String {
        self.mapper.map(subject)
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().0.clone()
    }

    /// Rebuilds the acceptor if a file changed. A broken new file keeps the old
    /// certificates in service and is reported.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamps = Self::stamps(&self.settings);
        if stamps == self.current.read().1 {
            return Ok(false);
        }
        let acceptor = build(&self.settings)?;
        *self.current.write() = (acceptor, stamps);
        Ok(true)
    }
}

/// Kafka's DEFAULT principal mapping for a client certificate: the subject's distinguished
/// name, RFC 2253 style (`CN=alice,OU=eng,O=acme`).
pub fn principal_from_certificate(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut parts = Vec::new();
    for rdn in cert
        .subject()
        .iter_rdn()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        for attribute in rdn.iter() {
            let key = x509_parser::objects::oid2abbrev(
                attribute.attr_type(),
                x509_parser::objects::oid_registry(),
            )
            .map(str::to_string)
            .unwrap_or_else(|_| attribute.attr_type().to_id_string());
            let value = attribute.as_str().ok()?;
            parts.push(format!("{key}={value}"));
        }
    }
    Some(parts.join(","))
}

/// `ssl.principal.mapping.rules`: Kafka's rules turning a certificate subject into a user
/// name, tried in order: `RULE:pattern/replacement/[L|U]` (the pattern must match the whole
/// subject; `$1`... refer to its groups; L/U change the case) or `DEFAULT` (the subject as is).
/// A subject no rule matches keeps its full name.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<MappingRule>,
}

#[derive(Debug, Clone)]
enum MappingRule {
    Default,
    Pattern {
        regex: regex::Regex,
        replacement: String,
        case: Option<char>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("ssl.principal.mapping.rules: {reason} at `{rest}`")]
pub struct MappingRuleError {
    pub reason: &'static str,
    pub rest: String,
}

/// Reads up to the next unescaped '/', unescaping `\/`.
fn until_slash(input: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = input.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' if input[index + 1..].starts_with('/') => {
                out.push('/');
                chars.next();
            }
            '/' => return Some((out, &input[index + 1..])),
            other => out.push(other),
        }
    }
    None
}

impl PrincipalMapper {
    pub fn parse(rules: &str) -> Result<Self, MappingRuleError> {
        let error = |reason, rest: &str| MappingRuleError {
            reason,
            rest: rest.to_string(),
        };
        let mut parsed = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                parsed.push(MappingRule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| error("missing '/' after the pattern", rest))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| error("missing '/' after the replacement", rest))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|_| error("invalid regular expression", rest))?;
                parsed.push(MappingRule::Pattern {
                    regex,
                    replacement,
                    case,
                });
                rest = after;
            } else {
                return Err(error("expected DEFAULT or RULE:", rest));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(error("expected ',' between rules", rest)),
            }
        }
        if parsed.is_empty() {
            parsed.push(MappingRule::Default);
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The user name for certificate subject `subject` (RFC 2253 form).
    pub fn map(&self, subject: &str) -> String {
        for rule in &self.rules {
            match rule {
                MappingRule::Default => return subject.to_string(),
                MappingRule::Pattern {
                    regex,
                    replacement,
                    case,
                } => {
                    if let Some(captures) = regex.captures(subject) {
                        let mut out = String::new();
                        captures.expand(replacement, &mut out);
                        return match case {
                            Some('L') => out.to_lowercase(),
                            Some('U') => out.to_uppercase(),
                            _ => out,
                        };
                    }
                }
            }
        }
        subject.to_string()
    }
}

#[cfg(test)]
mod mapping_tests {
    use super::*;

    #[test]
    fn given_kafka_style_rules_should_map_subjects_in_order() {
        let mapper = PrincipalMapper::parse(
            r"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            mapper.map("CN=kafka-client,OU=ServiceUsers,O=Acme"),
            "kafka-client"
        );
        assert_eq!(mapper.map("CN=Alice,OU=Eng,O=Acme"), "alice@eng");
        assert_eq!(mapper.map("CN=bob"), "CN=bob", "DEFAULT keeps the subject");
        let upper = PrincipalMapper::parse(r"RULE:^CN=([a-z]+)\/x$/$1/U").unwrap();
        assert_eq!(upper.map("CN=abc/x"), "ABC");
        assert_eq!(PrincipalMapper::parse("").unwrap().map("CN=z"), "CN=z");
    }

    #[test]
    fn given_malformed_rules_should_say_where() {
        for bad in [
            "RULE:^CN=(.*)$",
            "RULE:^CN=(.*)$/$1",
            "NOPE",
            "DEFAULT DEFAULT",
            "RULE:([/x/",
        ] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
    }
}
