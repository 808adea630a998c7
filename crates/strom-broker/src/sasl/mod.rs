//! SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners: PLAIN and
//! SCRAM-SHA-256/512 (KIP-84), over SaslHandshake v1 + SaslAuthenticate.
//!
//! Credentials are SCRAM credentials in the metadata log (salted, never plain; managed with
//! AlterUserScramCredentials). SASL/PLAIN checks the password against the user's SCRAM
//! credential (SHA-512 if present, else SHA-256), so there is one credential store.
//! Until a connection on a SASL listener authenticates, only ApiVersions, SaslHandshake and
//! SaslAuthenticate are answered; anything else closes it, as Kafka does.

pub mod scram;

use strom_controller::MetadataImage;

use scram::{ScramCredential, ScramMechanism, ScramServer};

/// A mechanism a client can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            other => ScramMechanism::from_name(other).map(Mechanism::Scram),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }
}

/// Where a connection is in its SASL exchange.
#[derive(Default)]
pub enum SaslSession {
    /// Nothing asked yet (or the listener needs no SASL).
    #[default]
    Idle,
    /// SaslHandshake chose a mechanism; SaslAuthenticate comes next.
    Chosen(Mechanism),
    /// A SCRAM exchange between its first and final messages.
    Scram(Box<ScramServer>),
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored credential of `user` for `mechanism`.
pub fn credential(
    image: &MetadataImage,
    user: &str,
    mechanism: ScramMechanism,
) -> Option<ScramCredential> {
    let record = image.scram_credential(user, mechanism.code())?;
    Some(ScramCredential {
        salt: unhex(&record.salt)?,
        iterations: u32::try_from(record.iterations).ok()?,
        stored_key: unhex(&record.stored_key)?,
        server_key: unhex(&record.server_key)?,
    })
}

/// SASL/PLAIN: `[authzid] NUL authcid NUL passwd`. Returns the user on success.
pub fn authenticate_plain(image: &MetadataImage, message: &[u8]) -> Option<String> {
    let mut parts = message.split(|b| *b == 0);
    let authzid = parts.next()?;
    let user = std::str::from_utf8(parts.next()?).ok()?;
    let password = parts.next()?;
    if parts.next().is_some() || user.is_empty() {
        return None;
    }
    // An authorisation id, if given, must be the user itself (no impersonation).
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return None;
    }
    [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|mechanism| {
            credential(image, user, mechanism)
                .filter(|c| c.verify_password(mechanism, password))
                .map(|_| user.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(),
            vec![0, 1, 0xab, 0xff]
        );
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn given_malformed_plain_messages_should_refuse() {
        let image = MetadataImage::empty();
        for message in [
            &b""[..],
            b"\0",
            b"\0user",
            b"\0\0pw",
            b"\0user\0pw\0x",
            b"other\0user\0pw",
        ] {
            assert_eq!(authenticate_plain(&image, message), None, "{message:?}");
        }
    }
}
