//! Security of the schema registry's listener (issue 17, item 4): its TLS handshake, and
//! strom-registry's [`Access`] over this broker's SCRAM users and ACLs.
//!
//! - `schema.registry.ssl.keystore.location` (a PEM file with the key and certificate
//!   chain, as `ssl.keystore.location`): the listener speaks HTTPS. Writes forwarded to
//!   another broker's registry then go over TLS too, trusting the certificates of this
//!   broker's keystore file (its chain up to the CA: brokers share one CA).
//! - `schema.registry.authentication.method=BASIC` (Confluent's `authentication.method`):
//!   every request carries HTTP Basic credentials of a SCRAM user (`strom user create`, or
//!   kafka-configs `--alter --add-config SCRAM-SHA-256=...`); the password is checked by
//!   deriving the salted password from the stored SCRAM credential (SHA-512, then SHA-256).
//!   That costs thousands of PBKDF2 rounds, so a verified (user, password digest) pair is
//!   remembered with the stored key it matched, and trusted while that key is unchanged
//!   (a new password or a deleted user is seen at once).
//! - With the authoriser on (`authorizer.class.name`), a subject maps onto the TOPIC ACL
//!   resource its TopicNameStrategy names: `orders-value` and `orders-key` onto topic
//!   `orders`, any other subject onto the topic of the subject's own name. Reads need READ
//!   on it, writes (register, delete, set a config or mode) WRITE. Registry-wide writes
//!   (`PUT /config`, `PUT /mode`) need ALTER on the CLUSTER; registry-wide reads (lists,
//!   `/schemas/ids/{id}`) need only a valid user. Super users may do everything.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use strom_controller::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use strom_registry::http::{Access, Connect, Handshake, Io, Operation, Serving};

use crate::config::BrokerConfig;
use crate::sasl::scram::ScramMechanism;
use crate::state::Broker;
use crate::tls::{ClientAuth, ReloadingAcceptor, TlsError, TlsSettings};

pub const KEYSTORE_KEY: &str = "schema.registry.ssl.keystore.location";
pub const AUTHENTICATION_KEY: &str = "schema.registry.authentication.method";

/// The topic a subject's permissions are those of.
pub fn subject_topic(subject: &str) -> &str {
    subject
        .strip_suffix("-value")
        .or_else(|| subject.strip_suffix("-key"))
        .filter(|topic| !topic.is_empty())
        .unwrap_or(subject)
}

/// Most verified credentials remembered; the memory starts over when full.
const VERIFIED_MAX: usize = 10_000;

struct BrokerAccess {
    broker: Arc<Broker>,
    /// SHA-256 of `user NUL password` -> the stored keys it was verified against.
    verified: Mutex<HashMap<Vec<u8>, Vec<String>>>,
}

/// The user's stored keys (both mechanisms), as the metadata image holds them now.
fn stored_keys(image: &strom_controller::MetadataImage, user: &str) -> Vec<String> {
    [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .filter_map(|mechanism| image.scram_credential(user, mechanism.code()))
        .map(|record| record.stored_key.clone())
        .collect()
}

impl Access for BrokerAccess {
    fn authenticate(&self, user: &str, password: &str) -> bool {
        let mut message = Vec::with_capacity(user.len() + password.len() + 2);
        message.push(0);
        message.extend_from_slice(user.as_bytes());
        message.push(0);
        message.extend_from_slice(password.as_bytes());
        let image = self.broker.image();
        let keys = stored_keys(&image, user);
        if keys.is_empty() {
            return false;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, &message[1..])
            .as_ref()
            .to_vec();
        if self.verified.lock().get(&digest) == Some(&keys) {
            return true;
        }
        if crate::sasl::authenticate_plain(&image, &message).is_none() {
            return false;
        }
        let mut verified = self.verified.lock();
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(digest, keys);
        true
    }

    fn authorize(&self, user: &str, host: &str, wanted: Operation, subject: Option<&str>) -> bool {
        let authorizer = self.broker.authorizer();
        if !authorizer.enabled() {
            return true;
        }
        let principal = format!("User:{user}");
        let image = self.broker.image();
        let (code, kind, name) = match (wanted, subject) {
            (Operation::Read, None) => return true,
            (Operation::Write, None) => (
                operation::ALTER,
                resource_type::CLUSTER,
                CLUSTER_RESOURCE_NAME,
            ),
            (Operation::Read, Some(subject)) => (
                operation::READ,
                resource_type::TOPIC,
                subject_topic(subject),
            ),
            (Operation::Write, Some(subject)) => (
                operation::WRITE,
                resource_type::TOPIC,
                subject_topic(subject),
            ),
        };
        authorizer.authorize(image.acls(), &principal, host, code, kind, name)
    }
}

/// Checks the registry's security configs (the keystore loads, the method is known).
pub fn validate(config: &BrokerConfig) -> Result<(), String> {
    handshake(config)?;
    connect(config)?;
    authentication(config)?;
    Ok(())
}

fn value(config: &BrokerConfig, key: &str) -> String {
    config
        .describe(key)
        .map(|(value, _)| value.trim().to_string())
        .unwrap_or_default()
}

/// Whether `schema.registry.authentication.method` is BASIC.
fn authentication(config: &BrokerConfig) -> Result<bool, String> {
    match value(config, AUTHENTICATION_KEY)
        .to_ascii_uppercase()
        .as_str()
    {
        "" | "NONE" => Ok(false),
        "BASIC" => Ok(true),
        other => Err(format!(
            "{AUTHENTICATION_KEY}={other}: expected NONE or BASIC"
        )),
    }
}

fn handshake(config: &BrokerConfig) -> Result<Option<Handshake>, String> {
    let keystore = value(config, KEYSTORE_KEY);
    if keystore.is_empty() {
        return Ok(None);
    }
    let settings = TlsSettings {
        keystore: keystore.clone().into(),
        truststore: None,
        client_auth: ClientAuth::None,
        protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
        principal_mapping_rules: "DEFAULT".into(),
    };
    let acceptor = ReloadingAcceptor::new(settings)
        .map_err(|error: TlsError| format!("{KEYSTORE_KEY}={keystore}: {error}"))?
        .acceptor();
    let handshake: Handshake = Arc::new(move |stream| {
        let acceptor = acceptor.clone();
        Box::pin(async move {
            let tls = acceptor.accept(stream).await?;
            Ok(Box::new(tls) as Box<dyn Io>)
        })
    });
    Ok(Some(handshake))
}

/// The TLS client for forwarded writes: trusts the certificates in the keystore file.
fn connect(config: &BrokerConfig) -> Result<Option<Connect>, String> {
    let keystore = value(config, KEYSTORE_KEY);
    if keystore.is_empty() {
        return Ok(None);
    }
    let pem = std::fs::read(&keystore).map_err(|e| format!("{KEYSTORE_KEY}={keystore}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
        let certificate = certificate.map_err(|e| format!("{KEYSTORE_KEY}={keystore}: {e}"))?;
        roots
            .add(certificate)
            .map_err(|e| format!("{KEYSTORE_KEY}={keystore}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let connect: Connect = Arc::new(move |stream, host| {
        let connector = connector.clone();
        Box::pin(async move {
            let name =
                rustls::pki_types::ServerName::try_from(host).map_err(std::io::Error::other)?;
            let tls = connector.connect(name, stream).await?;
            Ok(Box::new(tls) as Box<dyn Io>)
        })
    });
    Ok(Some(connect))
}

/// How the registry listener serves, from the broker config.
pub fn serving(config: &BrokerConfig, broker: &Arc<Broker>) -> Result<Serving, String> {
    let access: Option<Arc<dyn Access>> = if authentication(config)? {
        Some(Arc::new(BrokerAccess {
            broker: broker.clone(),
            verified: Mutex::new(HashMap::new()),
        }))
    } else {
        None
    };
    Ok(Serving {
        handshake: handshake(config)?,
        connect: connect(config)?,
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_subjects_when_mapped_should_name_their_topic() {
        assert_eq!(subject_topic("orders-value"), "orders");
        assert_eq!(subject_topic("orders-key"), "orders");
        assert_eq!(subject_topic("com.acme.User"), "com.acme.User");
        assert_eq!(subject_topic("-value"), "-value");
        assert_eq!(subject_topic("a-value-key"), "a-value");
    }
}
