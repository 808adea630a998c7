//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the client side, as a plain state
//! machine: messages in, messages out, no I/O. [`super::sasl`] carries the messages in
//! SaslAuthenticate requests.
//!
//! The server is not trusted: its messages are bounded in size, every attribute is checked
//! (the nonce must extend ours, the salt must decode, the iteration count must be within
//! Kafka's bounds so a hostile server cannot make us spin), and its final signature must
//! prove it knows the credential before the connection is used.
//!
//! Passwords are used as their UTF-8 bytes, without SASLprep, as Kafka's own clients do.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac};

use crate::security::ScramMechanism;

/// Largest server message accepted. Real ones are ~100 bytes (nonce, salt, count).
pub const SERVER_MESSAGE_BYTES_MAX: usize = 4096;
/// Largest salt accepted, decoded. Kafka uses 32 bytes.
pub const SALT_BYTES_MAX: usize = 1024;
/// Kafka's bounds on SCRAM iteration counts: fewer weakens the credential, more lets a
/// hostile server burn our CPU.
pub const ITERATIONS_MIN: u32 = 4096;
pub const ITERATIONS_MAX: u32 = 16384;

/// What is wrong with a server's SCRAM message, or with the exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("server message of {size_bytes} bytes exceeds the {max_bytes}-byte limit")]
    TooLong { size_bytes: usize, max_bytes: usize },
    #[error("server message is not UTF-8")]
    NotUtf8,
    #[error("server message is malformed: {0}")]
    Malformed(&'static str),
    #[error("server nonce does not extend the client nonce")]
    NonceMismatch,
    #[error("server asks for {iterations} iterations; accepted are {min}..={max}")]
    Iterations { iterations: u32, min: u32, max: u32 },
    #[error("server reported error: {0}")]
    ServerError(String),
    #[error("server signature does not verify: the server does not know the credential")]
    ServerSignature,
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    let algorithm = match mechanism {
        ScramMechanism::Sha256 => hmac::HMAC_SHA256,
        ScramMechanism::Sha512 => hmac::HMAC_SHA512,
    };
    hmac::sign(&hmac::Key::new(algorithm, key), data)
        .as_ref()
        .to_vec()
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    let algorithm = match mechanism {
        ScramMechanism::Sha256 => &digest::SHA256,
        ScramMechanism::Sha512 => &digest::SHA512,
    };
    digest::digest(algorithm, data).as_ref().to_vec()
}

/// Compares without an early exit, so timing does not tell how many leading bytes match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 5802 saslname: ',' and '=' are escaped as "=2C" and "=3D".
fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The value of attribute `key` in a SCRAM message (`k=value,...`), which must be unique.
fn attribute(message: &str, key: char) -> Result<Option<&str>, ScramError> {
    let mut found = None;
    for part in message.split(',') {
        let mut chars = part.chars();
        if chars.next() == Some(key) && chars.next() == Some('=') {
            if found.is_some() {
                return Err(ScramError::Malformed("an attribute appears twice"));
            }
            found = Some(&part[2..]);
        }
    }
    Ok(found)
}

fn bounded_text(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > SERVER_MESSAGE_BYTES_MAX {
        return Err(ScramError::TooLong {
            size_bytes: message.len(),
            max_bytes: SERVER_MESSAGE_BYTES_MAX,
        });
    }
    std::str::from_utf8(message).map_err(|_| ScramError::NotUtf8)
}

/// A SCRAM client between its first message and the server's first answer.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    client_nonce: String,
    client_first_bare: String,
}

/// A SCRAM client that has sent its proof and waits for the server's signature.
#[derive(Debug)]
pub struct ScramProofSent {
    expected_server_signature: Vec<u8>,
}

impl ScramClient {
    /// `client_nonce` must be printable ASCII without ','; [`random_nonce`] makes one.
    pub fn new(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        client_nonce: String,
    ) -> Self {
        assert!(
            !client_nonce.is_empty()
                && client_nonce
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b','),
            "a SCRAM nonce is printable ASCII without ','"
        );
        let client_first_bare = format!("n={},r={client_nonce}", encode_saslname(username));
        ScramClient {
            mechanism,
            password: password.as_bytes().to_vec(),
            client_nonce,
            client_first_bare,
        }
    }

    /// client-first-message: no channel binding, no authorisation id.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Handles server-first-message; returns client-final-message (with the proof).
    pub fn server_first(self, message: &[u8]) -> Result<(String, ScramProofSent), ScramError> {
        let message = bounded_text(message)?;
        if attribute(message, 'm')?.is_some() {
            return Err(ScramError::Malformed(
                "mandatory extension (m=) is not supported",
            ));
        }
        if let Some(error) = attribute(message, 'e')? {
            return Err(ScramError::ServerError(error.to_string()));
        }
        let nonce = attribute(message, 'r')?.ok_or(ScramError::Malformed("missing nonce (r=)"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt_text =
            attribute(message, 's')?.ok_or(ScramError::Malformed("missing salt (s=)"))?;
        if salt_text.len() > SALT_BYTES_MAX.div_ceil(3) * 4 {
            return Err(ScramError::Malformed("salt is too long"));
        }
        let salt = BASE64
            .decode(salt_text)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        if salt.is_empty() {
            return Err(ScramError::Malformed("salt is empty"));
        }
        let iterations: u32 = attribute(message, 'i')?
            .ok_or(ScramError::Malformed("missing iteration count (i=)"))?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
            return Err(ScramError::Iterations {
                iterations,
                min: ITERATIONS_MIN,
                max: ITERATIONS_MAX,
            });
        }

        let mechanism = self.mechanism;
        let salted_password = mechanism.salted_password(&self.password, &salt, iterations);
        let client_key = hmac(mechanism, &salted_password, b"Client Key");
        let stored_key = hash(mechanism, &client_key);
        // "biws" is base64 of the gs2 header "n,," sent in client-first-message.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{message},{without_proof}", self.client_first_bare);
        let client_signature = hmac(mechanism, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(key, signature)| key ^ signature)
            .collect();
        let server_key = hmac(mechanism, &salted_password, b"Server Key");
        let expected_server_signature = hmac(mechanism, &server_key, auth_message.as_bytes());
        Ok((
            format!("{without_proof},p={}", BASE64.encode(proof)),
            ScramProofSent {
                expected_server_signature,
            },
        ))
    }
}

impl ScramProofSent {
    /// Checks server-final-message: the server's signature proves it holds the credential.
    pub fn server_final(self, message: &[u8]) -> Result<(), ScramError> {
        let message = bounded_text(message)?;
        if let Some(error) = attribute(message, 'e')? {
            return Err(ScramError::ServerError(error.to_string()));
        }
        let signature = attribute(message, 'v')?
            .ok_or(ScramError::Malformed("missing server signature (v=)"))?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| ScramError::Malformed("server signature is not base64"))?;
        if constant_time_eq(&signature, &self.expected_server_signature) {
            Ok(())
        } else {
            Err(ScramError::ServerSignature)
        }
    }
}

/// A fresh client nonce: 32 random alphanumerics.
pub fn random_nonce() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3.
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn client() -> ScramClient {
        ScramClient::new(ScramMechanism::Sha256, "user", "pencil", NONCE.to_string())
    }

    #[test]
    fn given_rfc7677_vector_should_produce_its_messages_and_accept_its_signature() {
        let client = client();
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (client_final, proof_sent) = client.server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(client_final, CLIENT_FINAL);
        proof_sent.server_final(SERVER_FINAL.as_bytes()).unwrap();
    }

    #[test]
    fn given_wrong_server_signature_or_server_error_should_refuse() {
        let (_, proof_sent) = client().server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            proof_sent.server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramError::ServerSignature)
        );
        let (_, proof_sent) = client().server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            proof_sent.server_final(b"e=invalid-proof"),
            Err(ScramError::ServerError("invalid-proof".into()))
        );
        let (_, proof_sent) = client().server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert!(matches!(
            proof_sent.server_final(b"x=1"),
            Err(ScramError::Malformed(_))
        ));
    }

    #[test]
    fn given_sha512_should_make_a_64_byte_proof() {
        let client = ScramClient::new(ScramMechanism::Sha512, "user", "pencil", NONCE.to_string());
        let (client_final, _) = client.server_first(SERVER_FIRST.as_bytes()).unwrap();
        let proof = client_final.rsplit_once(",p=").unwrap().1;
        assert_eq!(BASE64.decode(proof).unwrap().len(), 64);
    }

    #[test]
    fn given_user_name_with_separators_should_escape_it() {
        let client = ScramClient::new(ScramMechanism::Sha256, "a,b=c", "p", "n0nce".into());
        assert_eq!(client.client_first(), "n,,n=a=2Cb=3Dc,r=n0nce");
    }

    #[test]
    fn given_hostile_server_first_messages_should_refuse_without_panicking() {
        let huge = format!(
            "r={NONCE}x,s=QUJD,i=4096,{}",
            "z".repeat(SERVER_MESSAGE_BYTES_MAX)
        );
        let long_salt = format!("r={NONCE}x,s={},i=4096", "QUJD".repeat(SALT_BYTES_MAX));
        let cases: Vec<(&[u8], &str)> = vec![
            (b"", "empty"),
            (b"\xff\xfe", "not UTF-8"),
            (b"r=,s=,i=", "empty attributes"),
            (b"s=QUJD,i=4096", "no nonce"),
            (b"r=someoneelse123,s=QUJD,i=4096", "foreign nonce"),
            (
                b"r=rOprNGfwEbeRWgbNEkqO,s=QUJD,i=4096",
                "nonce not extended",
            ),
            (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096", "no salt"),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096", "empty salt"),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096", "salt not base64"),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=QUJD", "no iterations"),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=QUJD,i=-1",
                "negative iterations",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=QUJD,i=99999999999",
                "overflowing iterations",
            ),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=QUJD,i=1", "too few iterations"),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=QUJD,i=4000000000",
                "too many iterations",
            ),
            (b"r=rOprNGfwEbeRWgbNEkqOx,r=y,s=QUJD,i=4096", "nonce twice"),
            (
                b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=QUJD,i=4096",
                "mandatory extension",
            ),
            (b"e=unknown-user", "server error"),
            (huge.as_bytes(), "too long"),
            (long_salt.as_bytes(), "salt too long"),
        ];
        for (message, what) in cases {
            assert!(client().server_first(message).is_err(), "{what}");
        }
        assert_eq!(
            client()
                .server_first(b"r=rOprNGfwEbeRWgbNEkqOx,s=QUJD,i=4000000000")
                .err(),
            Some(ScramError::Iterations {
                iterations: 4_000_000_000,
                min: ITERATIONS_MIN,
                max: ITERATIONS_MAX
            })
        );
    }

    #[test]
    fn given_random_nonces_should_be_distinct_and_valid() {
        let (a, b) = (random_nonce(), random_nonce());
        assert_ne!(a, b);
        // The constructor's assertion accepts them.
        ScramClient::new(ScramMechanism::Sha256, "u", "p", a);
    }
}
