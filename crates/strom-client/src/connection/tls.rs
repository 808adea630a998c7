//! TLS for SSL and SASL_SSL, with rustls (ring provider).
//!
//! The rustls configuration is built once, from PEM files, when the security settings are
//! built ([`TlsOptions::build`]), and shared by every connection: a handshake reads no file.
//! Trust anchors come only from `ssl.ca.location` (no system store is consulted, so what
//! is trusted is exactly what the operator wrote down). The broker's chain is always
//! verified; `ssl.endpoint.identification.algorithm=none` skips only the check that the
//! certificate names the host dialled.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{ClientError, Result};

/// The TLS settings of [`super::ClientSecurity`], as librdkafka names them, before they are
/// built into a [`TlsConnector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `ssl.ca.location`: PEM file of the CA certificates that may sign a broker's
    /// certificate. Required.
    pub ca_location: Option<PathBuf>,
    /// `ssl.certificate.location`: PEM client certificate chain, for mutual TLS.
    pub certificate_location: Option<PathBuf>,
    /// `ssl.key.location`: PEM private key of that certificate (unencrypted). When only one
    /// of the two locations is given, that file must hold both, as a broker keystore does.
    pub key_location: Option<PathBuf>,
    /// `ssl.endpoint.identification.algorithm`: `https` (true, the default) checks that the
    /// broker's certificate names the host dialled; `none` (false) does not.
    pub verify_hostname: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_location: None,
            certificate_location: None,
            key_location: None,
            verify_hostname: true,
        }
    }
}

/// A built TLS client configuration, shared by every connection. Cheap to clone.
#[derive(Clone)]
pub struct TlsConnector {
    options: TlsOptions,
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsConnector {
    fn eq(&self, other: &Self) -> bool {
        self.options == other.options
    }
}

fn file_error(key: &'static str, path: &Path, reason: impl Into<String>) -> ClientError {
    ClientError::SecurityFile {
        key,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| file_error(key, path, format!("cannot read it: {error}")))
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(key, path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<std::result::Result<_, _>>()
        .map_err(|error| file_error(key, path, format!("malformed PEM: {error}")))?;
    if certs.is_empty() {
        return Err(file_error(
            key,
            path,
            "holds no certificate (expected `-----BEGIN CERTIFICATE-----`)",
        ));
    }
    Ok(certs)
}

fn private_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read(key, path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|error| file_error(key, path, format!("malformed PEM: {error}")))?
        .ok_or_else(|| {
            file_error(
                key,
                path,
                "holds no unencrypted private key (expected `-----BEGIN PRIVATE KEY-----`, \
                 `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
            )
        })
}

/// Verifies the broker's chain to a trusted CA but not the name in its certificate
/// (`ssl.endpoint.identification.algorithm=none`). Everything else is webpki's.
#[derive(Debug)]
struct ChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last, so a name error means the
        // chain verified.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl TlsOptions {
    /// Reads the PEM files and builds the rustls configuration. An error names the setting
    /// and the file.
    pub fn build(&self) -> Result<TlsConnector> {
        let ca_location =
            self.ca_location
                .as_deref()
                .ok_or_else(|| ClientError::SecurityConfig {
                    key: "ssl.ca.location".into(),
                    reason: "required for SSL and SASL_SSL: a PEM file of the CA certificates \
                         that sign the brokers' certificates"
                        .into(),
                })?;
        let mut roots = RootCertStore::empty();
        for cert in certificates("ssl.ca.location", ca_location)? {
            roots.add(cert).map_err(|error| {
                file_error(
                    "ssl.ca.location",
                    ca_location,
                    format!("not a usable CA certificate: {error}"),
                )
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|error| {
                file_error(
                    "ssl.ca.location",
                    ca_location,
                    format!("cannot verify with these CAs: {error}"),
                )
            })?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.verify_hostname {
            webpki
        } else {
            Arc::new(ChainOnlyVerifier { inner: webpki })
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| ClientError::SecurityConfig {
                key: "security.protocol".into(),
                reason: format!("TLS is unavailable: {error}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match self.client_identity() {
            None => builder.with_no_client_auth(),
            Some(((certs_key, certs_path), (key_key, key_path))) => {
                let chain = certificates(certs_key, certs_path)?;
                let key = private_key(key_key, key_path)?;
                builder.with_client_auth_cert(chain, key).map_err(|error| {
                    file_error(
                        key_key,
                        key_path,
                        format!(
                            "unusable with the certificate in {}: {error}",
                            certs_path.display()
                        ),
                    )
                })?
            }
        };
        Ok(TlsConnector {
            options: self.clone(),
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// True when a client certificate is configured (mutual TLS).
    pub fn has_client_identity(&self) -> bool {
        self.certificate_location.is_some() || self.key_location.is_some()
    }

    /// Where the client certificate chain and its key are, with the setting naming each.
    #[allow(clippy::type_complexity)]
    fn client_identity(&self) -> Option<((&'static str, &Path), (&'static str, &Path))> {
        const CERT: &str = "ssl.certificate.location";
        const KEY: &str = "ssl.key.location";
        match (&self.certificate_location, &self.key_location) {
            (None, None) => None,
            (Some(certs), Some(key)) => Some(((CERT, certs), (KEY, key))),
            (Some(both), None) => Some(((CERT, both), (CERT, both))),
            (None, Some(both)) => Some(((KEY, both), (KEY, both))),
        }
    }
}

/// The name to verify the broker's certificate against: the host of `host:port`.
fn server_name(address: &str) -> Result<ServerName<'static>> {
    let host = address
        .rsplit_once(':')
        .map(|(host, _port)| host)
        .unwrap_or(address);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_string()).map_err(|_| ClientError::InvalidConfig {
        key: "bootstrap_servers",
        reason: format!("'{host}' (from {address}) is not a valid TLS server name"),
    })
}

/// The rustls error inside an I/O error from a TLS stream (tokio-rustls wraps it), for
/// telling an untrusted certificate from a refused client certificate.
pub fn rustls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

impl TlsConnector {
    pub fn options(&self) -> &TlsOptions {
        &self.options
    }

    /// The TLS handshake over an open TCP connection, bounded by `timeout`.
    pub(crate) async fn handshake(
        &self,
        address: &str,
        tcp: TcpStream,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>> {
        let name = server_name(address)?;
        tokio::time::timeout(timeout, self.connector.connect(name, tcp))
            .await
            .map_err(|_| ClientError::ConnectTimeout {
                address: address.to_string(),
                timeout_ms: timeout.as_millis() as u64,
            })?
            .map_err(|source| ClientError::Tls {
                address: address.to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_ca_and_client(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let client_key = rcgen::KeyPair::generate().unwrap();
        let client = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&client_key, &issuer)
            .unwrap();
        let ca_path = dir.join("ca.pem");
        let cert_path = dir.join("client-cert.pem");
        let key_path = dir.join("client-key.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        std::fs::write(&cert_path, client.pem()).unwrap();
        std::fs::write(&key_path, client_key.serialize_pem()).unwrap();
        (ca_path, cert_path, key_path)
    }

    fn options(ca: &Path) -> TlsOptions {
        TlsOptions {
            ca_location: Some(ca.to_path_buf()),
            ..TlsOptions::default()
        }
    }

    fn file_error_of(result: Result<TlsConnector>) -> (&'static str, PathBuf, String) {
        match result {
            Err(ClientError::SecurityFile { key, path, reason }) => (key, path, reason),
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn given_pem_files_should_build_with_and_without_client_identity() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = dev_ca_and_client(dir.path());
        options(&ca).build().expect("CA only");
        let mutual = TlsOptions {
            certificate_location: Some(cert.clone()),
            key_location: Some(key.clone()),
            ..options(&ca)
        };
        mutual.build().expect("separate certificate and key");
        let both = dir.path().join("both.pem");
        let mut text = std::fs::read_to_string(&key).unwrap();
        text.push_str(&std::fs::read_to_string(&cert).unwrap());
        std::fs::write(&both, text).unwrap();
        let single = TlsOptions {
            certificate_location: Some(both),
            ..options(&ca)
        };
        single.build().expect("one PEM with key and chain");
    }

    #[test]
    fn given_bad_files_should_name_the_setting_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = dev_ca_and_client(dir.path());
        let missing = dir.path().join("missing.pem");
        let (name, path, reason) = file_error_of(options(&missing).build());
        assert_eq!(
            (name, path.as_path()),
            ("ssl.ca.location", missing.as_path())
        );
        assert!(reason.contains("cannot read"), "{reason}");

        let (name, _, reason) = file_error_of(options(&key).build());
        assert_eq!(name, "ssl.ca.location");
        assert!(reason.contains("no certificate"), "{reason}");

        let no_key = TlsOptions {
            certificate_location: Some(cert.clone()),
            ..options(&ca)
        };
        let (name, path, reason) = file_error_of(no_key.build());
        assert_eq!(
            (name, path.as_path()),
            ("ssl.certificate.location", cert.as_path())
        );
        assert!(reason.contains("private key"), "{reason}");

        let other_key = dir.path().join("other-key.pem");
        std::fs::write(
            &other_key,
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let mismatched = TlsOptions {
            certificate_location: Some(cert),
            key_location: Some(other_key.clone()),
            ..options(&ca)
        };
        let (name, path, _) = file_error_of(mismatched.build());
        assert_eq!(
            (name, path.as_path()),
            ("ssl.key.location", other_key.as_path())
        );

        let error = TlsOptions::default().build().unwrap_err();
        assert!(
            matches!(&error, ClientError::SecurityConfig { key, .. } if key == "ssl.ca.location"),
            "{error}"
        );
    }

    #[test]
    fn given_addresses_should_take_the_host_as_server_name() {
        assert_eq!(
            server_name("localhost:9093").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert_eq!(
            server_name("127.0.0.1:9093").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("[::1]:9093").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert!(server_name("bad host:1").is_err());
    }
}
