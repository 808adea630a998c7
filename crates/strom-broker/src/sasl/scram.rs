//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side, as a plain state
//! machine: messages in, messages out, no I/O.
//!
//! The broker stores only what RFC 5802 asks a server to keep: salt, iteration count,
//! StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
//! HMAC(SaltedPassword, "Server Key"). A client proves it knows the password without
//! sending it; the server proves it knows the credential in its final message.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Kafka's bounds on SCRAM iteration counts.
pub const ITERATIONS_MIN: i32 = 4096;
pub const ITERATIONS_MAX: i32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// The mechanism code of Describe/AlterUserScramCredentials.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn output_bytes(self) -> usize {
        self.digest_algorithm().output_len()
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_algorithm(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data)
            .as_ref()
            .to_vec()
    }

    /// Hi(password, salt, iterations) of RFC 5802.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_bytes()];
        let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("at least 1");
        pbkdf2::derive(
            self.pbkdf2_algorithm(),
            iterations,
            salt,
            password,
            &mut out,
        );
        out
    }
}

/// Compares without an early exit, so timing does not tell how many leading bytes match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the server keeps for one user and mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// Derives the stored keys from a salted password (what AlterUserScramCredentials
    /// carries: Kafka clients salt the password themselves).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        salted_password: &[u8],
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        }
    }

    /// True when `password` is this credential's password (used by SASL/PLAIN).
    pub fn verify_password(&self, mechanism: ScramMechanism, password: &[u8]) -> bool {
        let salted = mechanism.salted_password(password, &self.salt, self.iterations);
        let candidate =
            Self::from_salted_password(mechanism, self.salt.clone(), self.iterations, &salted);
        constant_time_eq(&candidate.stored_key, &self.stored_key)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("authentication failed: invalid credentials")]
    Failed,
    #[error("SCRAM exchange is already complete")]
    Complete,
}

enum State {
    Initial,
    SentFirst {
        user: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        credential: Option<ScramCredential>,
    },
    Done,
}

/// One SCRAM exchange on one connection.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

fn attribute<'a>(message: &'a str, key: char) -> Option<&'a str> {
    message.split(',').find_map(|part| {
        part.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// RFC 5802 saslname: "=2C" is ',' and "=3D" is '='.
fn decode_saslname(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(index) = rest.find('=') {
        out.push_str(&rest[..index]);
        let escape = rest
            .get(index..index + 3)
            .ok_or(ScramError::Malformed("bad saslname escape"))?;
        match escape {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return Err(ScramError::Malformed("bad saslname escape")),
        }
        rest = &rest[index + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> Self {
        ScramServer {
            mechanism,
            state: State::Initial,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Handles client-first-message; returns server-first-message. An unknown user gets a
    /// made-up salt and fails only at the end, so the exchange does not reveal who exists.
    pub fn client_first(
        &mut self,
        message: &[u8],
        server_nonce: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::Initial) {
            return Err(ScramError::Complete);
        }
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header: cbind flag, authzid, then the bare message.
        let mut parts = message.splitn(3, ',');
        let cbind = parts
            .next()
            .ok_or(ScramError::Malformed("missing gs2 header"))?;
        if !matches!(cbind, "n" | "y") {
            return Err(ScramError::Malformed("channel binding is not supported"));
        }
        let _authzid = parts
            .next()
            .ok_or(ScramError::Malformed("missing gs2 header"))?;
        let bare = parts
            .next()
            .ok_or(ScramError::Malformed("missing client-first-bare"))?;
        let user = decode_saslname(
            attribute(bare, 'n').ok_or(ScramError::Malformed("missing user name"))?,
        )?;
        let client_nonce = attribute(bare, 'r').ok_or(ScramError::Malformed("missing nonce"))?;
        if client_nonce.is_empty() {
            return Err(ScramError::Malformed("empty nonce"));
        }
        let credential = lookup(&user);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                self.mechanism.hash(user.as_bytes())[..16].to_vec(),
                ITERATIONS_MIN as u32,
            ),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(salt));
        self.state = State::SentFirst {
            user,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
            credential,
        };
        Ok(server_first.into_bytes())
    }

    /// Handles client-final-message; returns server-final-message and the authenticated user.
    pub fn client_final(&mut self, message: &[u8]) -> Result<(Vec<u8>, String), ScramError> {
        let State::SentFirst {
            user,
            client_first_bare,
            server_first,
            nonce,
            credential,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::Complete);
        };
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing proof"))?;
        if attribute(without_proof, 'r') != Some(nonce.as_str()) {
            return Err(ScramError::Failed);
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let credential = credential.ok_or(ScramError::Failed)?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = self
            .mechanism
            .hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::Failed);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let stored_key = self.mechanism.hash(&client_key);
        if !constant_time_eq(&stored_key, &credential.stored_key) {
            return Err(ScramError::Failed);
        }
        let server_signature = self
            .mechanism
            .hmac(&credential.server_key, auth_message.as_bytes());
        Ok((
            format!("v={}", BASE64.encode(server_signature)).into_bytes(),
            user,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3: user "user", password "pencil".
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn pencil() -> ScramCredential {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        ScramCredential::from_salted_password(ScramMechanism::Sha256, salt, 4096, &salted)
    }

    #[test]
    fn given_rfc7677_exchange_should_produce_the_rfc_messages() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let first = server
            .client_first(CLIENT_FIRST.as_bytes(), SERVER_NONCE, |user| {
                (user == "user").then(pencil)
            })
            .unwrap();
        assert_eq!(String::from_utf8(first).unwrap(), SERVER_FIRST);
        let (last, user) = server.client_final(CLIENT_FINAL.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(last).unwrap(), SERVER_FINAL);
        assert_eq!(user, "user");
        assert_eq!(
            server.client_final(CLIENT_FINAL.as_bytes()),
            Err(ScramError::Complete)
        );
    }

    #[test]
    fn given_wrong_password_or_unknown_user_should_fail_at_the_end() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        server
            .client_first(CLIENT_FIRST.as_bytes(), SERVER_NONCE, |_| None)
            .expect("unknown users still get a challenge");
        assert_eq!(
            server.client_final(CLIENT_FINAL.as_bytes()),
            Err(ScramError::Failed)
        );

        let salt = b"0123456789abcdef".to_vec();
        let salted = ScramMechanism::Sha256.salted_password(b"other", &salt, 4096);
        let other =
            ScramCredential::from_salted_password(ScramMechanism::Sha256, salt, 4096, &salted);
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        server
            .client_first(CLIENT_FIRST.as_bytes(), SERVER_NONCE, |_| Some(other))
            .unwrap();
        assert_eq!(
            server.client_final(CLIENT_FINAL.as_bytes()),
            Err(ScramError::Failed)
        );
    }

    #[test]
    fn given_plain_password_should_verify_against_the_scram_credential() {
        assert!(pencil().verify_password(ScramMechanism::Sha256, b"pencil"));
        assert!(!pencil().verify_password(ScramMechanism::Sha256, b"pencil2"));
    }

    #[test]
    fn given_malformed_messages_should_error_not_panic() {
        for message in [
            "",
            "x",
            "n,",
            "n,,",
            "p=tls,,n=a,r=b",
            "n,,n=a",
            "n,,r=b",
            "n,,n=a=ZZ,r=b",
        ] {
            let mut server = ScramServer::new(ScramMechanism::Sha512);
            assert!(
                server
                    .client_first(message.as_bytes(), "s", |_| None)
                    .is_err(),
                "{message:?}"
            );
        }
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        server
            .client_first(CLIENT_FIRST.as_bytes(), SERVER_NONCE, |_| Some(pencil()))
            .unwrap();
        assert!(server.client_final(b"c=biws,r=wrong,p=AAAA").is_err());
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
    }
}
