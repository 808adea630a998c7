//! The operator CLI: `topic`, `produce`, `consume`, `group`, `txn`, `bench`, `cluster`. Each
//! command is a thin layer over `strom-client`: parse arguments, call the client, print a table (for
//! people) or JSON (`--json`, for scripts). Errors are one line that names the thing and
//! the fix.
//!
//! Exit codes: 0 success, 1 the operation failed, 2 bad usage (clap), 3 the cluster could
//! not be reached.

pub mod acl;
pub mod bench;
pub mod cluster;
pub mod cluster_decommission;
pub mod command_config;
pub mod config;
pub mod consume;
pub mod group;
pub mod output;
pub mod produce;
pub mod quota;
pub mod schema;
pub mod schema_http;
pub mod timestamp;
pub mod tls;
pub mod topic;
pub mod topic_reassign;
pub mod txn;
pub mod user;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use strom_client::{Client, ClientConfig, ClientError};

/// How to reach the cluster; flattened into every command.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Broker(s) to bootstrap from, comma-separated HOST:PORT.
    #[arg(
        long,
        env = "STROM_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: String,
    /// Timeout of each request to a broker, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub request_timeout_ms: u64,
    /// Kafka client properties for a secured cluster, one key=value a line:
    /// security.protocol, ssl.ca.location, ssl.certificate.location, ssl.key.location,
    /// ssl.endpoint.identification.algorithm, sasl.mechanism, sasl.username, sasl.password.
    #[arg(long, env = "STROM_COMMAND_CONFIG", value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

impl ConnectArgs {
    /// The client settings, with security from the command-config file (read, and its
    /// certificates loaded, once here).
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new(&self.bootstrap_server);
        config.connection.request_timeout = Duration::from_millis(self.request_timeout_ms);
        config.connection.connect_timeout = Duration::from_secs(5);
        if let Some(path) = &self.command_config {
            config.connection.security = command_config::load(path).map_err(fail)?;
        }
        Ok(config)
    }

    pub async fn connect(&self) -> anyhow::Result<Client> {
        let config = self.client_config()?;
        Client::connect(config).await.map_err(|error| {
            let file = self
                .command_config
                .as_ref()
                .map(|p| p.display().to_string());
            match security_problem(&error, file.as_deref()) {
                Some(message) => fail(message),
                None => error.into(),
            }
        })
    }
}

/// Parses `key=value`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

/// An error the CLI reports with a given exit code (already phrased for the user).
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub exit_code: u8,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub fn fail(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError {
        message: message.into(),
        exit_code: 1,
    })
}

fn connection_hint(address: &str) -> String {
    format!(
        "is a broker running at {address}? Start one with `strom broker`, or point at another \
         with --bootstrap-server HOST:PORT (or STROM_BOOTSTRAP_SERVER)"
    )
}

/// A SASL listener drops a client that does not authenticate; a TLS one, a client that
/// does not speak TLS.
const SECURED_LISTENER_HINT: &str = "if the listener uses TLS or SASL, pass --command-config \
     FILE with security.protocol and its ssl.*/sasl.* settings";

/// One line for the user, and the exit code.
pub fn describe_error(error: &anyhow::Error) -> (String, u8) {
    if let Some(cli) = error.downcast_ref::<CliError>() {
        return (cli.message.clone(), cli.exit_code);
    }
    if let Some(client) = error.downcast_ref::<ClientError>() {
        return describe_client_error(client);
    }
    let text = format!("{error:#}").replace('\n', " ");
    (text, 1)
}

/// How a TLS failure reads to an operator, from the rustls error inside it.
fn tls_hint(source: &std::io::Error, file: &str) -> String {
    use strom_client::connection::tls::rustls_error;
    let cause = rustls_error(source);
    match cause {
        // Another CA with the same name as a trusted one shows as a bad signature.
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature,
        )) => {
            format!(
                "the broker's certificate is not signed by a CA in ssl.ca.location: point \
             ssl.ca.location in {file} at the CA that signed it"
            )
        }
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        )) => format!(
            "the broker's certificate does not name the host dialled: use a host name it \
             names, or set ssl.endpoint.identification.algorithm=none in {file}"
        ),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
        )) => "the broker's certificate has expired: renew it on the broker".to_string(),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::HandshakeFailure,
        )) => format!(
            "the broker requires a client certificate: set ssl.certificate.location and \
             ssl.key.location in {file}"
        ),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA
            | rustls::AlertDescription::CertificateExpired
            | rustls::AlertDescription::CertificateUnknown,
        )) => format!(
            "the broker refused the client certificate: check ssl.certificate.location and \
             ssl.key.location in {file} (signed by a CA the broker trusts, not expired)"
        ),
        _ => format!(
            "is this an SSL or SASL_SSL listener? check security.protocol and ssl.* in {file}"
        ),
    }
}

/// The one-line message for an authentication or TLS failure (also inside
/// NoBrokerAvailable), naming the command-config file and the keys to fix.
fn security_problem(error: &ClientError, file: Option<&str>) -> Option<String> {
    let file = file.unwrap_or("your --command-config FILE");
    match error {
        ClientError::NoBrokerAvailable { last_error, .. } => {
            security_problem(last_error, Some(file))
        }
        ClientError::AuthenticationFailed {
            user,
            mechanism,
            address,
            message,
            ..
        } => Some(format!(
            "authentication failed for user {user} with {mechanism} at broker {address}{}: \
             check sasl.username/sasl.password in {file}",
            message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        )),
        ClientError::SaslMechanismNotEnabled { enabled, .. } => Some(format!(
            "{error}: set sasl.mechanism in {file} to one of {}",
            enabled.join(", ")
        )),
        ClientError::Scram { .. } => {
            Some(format!("{error}: is {file} pointing at the right cluster?"))
        }
        ClientError::Tls { source, .. } => Some(format!("{error}: {}", tls_hint(source, file))),
        ClientError::SaslNotExpected { .. } => Some(format!(
            "{error}: set security.protocol in {file} to this listener's (PLAINTEXT or SSL), \
             or use the broker's SASL_PLAINTEXT or SASL_SSL port"
        )),
        ClientError::TlsExpected { .. } => Some(format!(
            "{error}: set security.protocol=SSL (or SASL_SSL) and ssl.ca.location in {file}"
        )),
        ClientError::TlsClosedAfterHandshake {
            client_certificate: false,
            ..
        } => Some(format!(
            "{error}: if the broker requires mutual TLS, set ssl.certificate.location and \
             ssl.key.location in {file}"
        )),
        ClientError::TlsClosedAfterHandshake {
            client_certificate: true,
            ..
        } => Some(format!(
            "{error}: check ssl.certificate.location and ssl.key.location in {file} (signed \
             by a CA the broker trusts, not expired)"
        )),
        _ => None,
    }
}

pub fn describe_client_error(error: &ClientError) -> (String, u8) {
    if let Some(message) = security_problem(error, None) {
        return (message, 1);
    }
    match error {
        // The bootstrap server answered, but not as hoped: say what it said.
        ClientError::NoBrokerAvailable {
            servers,
            last_error,
        } if !matches!(
            last_error.as_ref(),
            ClientError::Connect { .. } | ClientError::ConnectTimeout { .. }
        ) =>
        {
            let (cause, code) = describe_client_error(last_error);
            (format!("cannot connect to {servers}: {cause}"), code)
        }
        ClientError::NoBrokerAvailable {
            servers,
            last_error,
        } => {
            let cause = match last_error.as_ref() {
                ClientError::Connect { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            (
                format!(
                    "cannot connect to {servers} ({cause}): {}",
                    connection_hint(servers)
                ),
                3,
            )
        }
        ClientError::Connect { address, source } => (
            format!(
                "cannot connect to {address} ({source}): {}",
                connection_hint(address)
            ),
            3,
        ),
        ClientError::ConnectTimeout { address, .. } => {
            (format!("{error}: {}", connection_hint(address)), 3)
        }
        // A SASL listener drops a client that does not authenticate; a TLS one, a client
        // that does not speak TLS.
        ClientError::ConnectionClosed { .. } => (format!("{error}: {SECURED_LISTENER_HINT}"), 1),
        ClientError::UnknownTopic { topic } => (
            format!(
                "topic '{topic}' does not exist: create it with `strom topic create {topic}` \
                 (see `strom topic list`)"
            ),
            1,
        ),
        ClientError::UnknownPartition { topic, partition } => (
            format!(
                "topic '{topic}' has no partition {partition}: see `strom topic describe {topic}`"
            ),
            1,
        ),
        ClientError::Broker { code: 36, .. } => (
            format!("{error} (pass --if-not-exists to accept an existing topic)"),
            1,
        ),
        ClientError::UnsupportedApi { .. } => (
            format!("{error}: this broker is too old or not Kafka-compatible for this command"),
            1,
        ),
        other => (other.to_string(), 1),
    }
}

/// Runs a command future and turns its error into a one-line message and exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let (message, code) = describe_error(&error);
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_refused_connection_when_described_should_name_address_and_fix() {
        let error = ClientError::NoBrokerAvailable {
            servers: "127.0.0.1:1".into(),
            last_error: Box::new(ClientError::Connect {
                address: "127.0.0.1:1".into(),
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            }),
        };
        let (message, code) = describe_error(&anyhow::Error::new(error));
        assert_eq!(code, 3);
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(message.contains("--bootstrap-server"), "{message}");
        assert!(!message.contains('\n'));
    }

    #[test]
    fn given_authentication_failure_when_described_should_name_user_mechanism_and_keys() {
        let error = ClientError::NoBrokerAvailable {
            servers: "127.0.0.1:9094".into(),
            last_error: Box::new(ClientError::AuthenticationFailed {
                address: "127.0.0.1:9094".into(),
                mechanism: "SCRAM-SHA-256",
                user: "alice".into(),
                code: 58,
                message: Some("invalid credentials".into()),
            }),
        };
        let (message, code) = describe_client_error(&error);
        assert_eq!(code, 1);
        assert!(
            message.starts_with("authentication failed for user alice with SCRAM-SHA-256")
                && message.contains("(invalid credentials)")
                && message
                    .contains("check sasl.username/sasl.password in your --command-config FILE"),
            "{message}"
        );
        let named = security_problem(&error, Some("client.properties")).expect("a security error");
        assert!(named.ends_with("in client.properties"), "{named}");
        assert!(!named.contains('\n'));
        let ClientError::NoBrokerAvailable { last_error, .. } = &error else {
            unreachable!()
        };
        assert!(!last_error.is_retriable() && last_error.is_authentication_error());
    }

    #[test]
    fn given_key_value_text_when_parsed_should_split_at_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
