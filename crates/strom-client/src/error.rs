//! The client's one error type. Broker error codes keep their Kafka name and the message
//! the broker sent, so a caller (and the CLI) can say exactly what went wrong.

use kafka_protocol::error::ResponseError;
use strom_protocol::record::RecordError;
use thiserror::Error;

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Kafka error codes as `UPPER_SNAKE_CASE`, the way Kafka's docs and tools name them.
pub fn error_code_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_CODE_{code}"),
        Some(error) => {
            let camel = format!("{error:?}");
            let mut name = String::with_capacity(camel.len() + 8);
            for (index, character) in camel.chars().enumerate() {
                if character.is_ascii_uppercase() && index > 0 {
                    name.push('_');
                }
                name.push(character.to_ascii_uppercase());
            }
            name
        }
    }
}

/// True for codes Kafka marks retriable (the request may succeed if sent again).
pub fn is_retriable_code(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|error| error.is_retriable())
}

/// Codes after which the client's metadata is stale and must be refreshed before a retry.
pub fn needs_metadata_refresh(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::NotLeaderOrFollower
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::LeaderNotAvailable
                | ResponseError::FencedLeaderEpoch
                | ResponseError::UnknownLeaderEpoch
                | ResponseError::NotController
                | ResponseError::UnknownTopicId
                | ResponseError::InconsistentTopicId
                | ResponseError::ReplicaNotAvailable
        )
    )
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to broker {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("connecting to broker {address} timed out after {timeout_ms} ms")]
    ConnectTimeout { address: String, timeout_ms: u64 },
    #[error("connection to broker {address} failed: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("connection to broker {address} closed")]
    ConnectionClosed { address: String },
    #[error("{api} request to broker {address} timed out after {timeout_ms} ms")]
    Timeout {
        api: &'static str,
        address: String,
        timeout_ms: u64,
    },
    #[error("broker {address} sent a {size_bytes}-byte response; the limit is {max_bytes}")]
    ResponseTooLarge {
        address: String,
        size_bytes: i64,
        max_bytes: usize,
    },
    #[error("cannot encode {api} v{version}: {reason}")]
    Encode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("cannot decode {api} v{version} response from {address}: {reason}")]
    Decode {
        api: &'static str,
        version: i16,
        address: String,
        reason: String,
    },
    #[error("broker {address} does not support {api} (client needs v{client_min}..=v{client_max}{})",
        broker.map(|(min, max)| format!(", broker has v{min}..=v{max}")).unwrap_or_else(|| ", broker has none".into()))]
    UnsupportedApi {
        api: &'static str,
        address: String,
        client_min: i16,
        client_max: i16,
        broker: Option<(i16, i16)>,
    },
    #[error("{context}: {name} ({code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        code: i16,
        name: String,
        message: Option<String>,
        context: String,
    },
    #[error("topic '{topic}' does not exist")]
    UnknownTopic { topic: String },
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("no leader for {topic}-{partition} after {attempts} attempts")]
    NoLeader {
        topic: String,
        partition: i32,
        attempts: u32,
    },
    #[error("broker {broker_id} is not in the cluster metadata")]
    UnknownBroker { broker_id: i32 },
    #[error("no bootstrap server reachable ({servers}): {last_error}")]
    NoBrokerAvailable {
        servers: String,
        last_error: Box<ClientError>,
    },
    #[error("invalid client setting {key}: {reason}")]
    InvalidConfig { key: &'static str, reason: String },
    #[error("invalid security setting {key}: {reason}")]
    SecurityConfig { key: String, reason: String },
    #[error("unknown security setting {key} (accepted: {accepted})")]
    UnknownSecurityKey { key: String, accepted: String },
    #[error("{key}={}: {reason}", path.display())]
    SecurityFile {
        key: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("TLS with broker {address} failed: {source}")]
    Tls {
        address: String,
        source: std::io::Error,
    },
    #[error("broker {address} closed the connection right after the TLS handshake ({})",
        if *client_certificate { "it may have refused the client certificate" } else { "it may require a client certificate" })]
    TlsClosedAfterHandshake {
        address: String,
        /// Whether the client presented a certificate.
        client_certificate: bool,
    },
    #[error("authentication failed for user {user} with {mechanism} at broker {address}: {}",
        message.as_deref().unwrap_or("the broker gave no reason"))]
    AuthenticationFailed {
        address: String,
        mechanism: &'static str,
        user: String,
        /// The broker's error code (SASL_AUTHENTICATION_FAILED is 58).
        code: i16,
        message: Option<String>,
    },
    #[error("broker {address} does not enable SASL mechanism {mechanism} (it enables {})",
        if enabled.is_empty() { "none".to_string() } else { enabled.join(", ") })]
    SaslMechanismNotEnabled {
        address: String,
        mechanism: &'static str,
        enabled: Vec<String>,
    },
    #[error("broker {address} does not expect SASL on this listener (ILLEGAL_SASL_STATE)")]
    SaslNotExpected { address: String },
    #[error("broker {address} answered in TLS: the listener is SSL or SASL_SSL")]
    TlsExpected { address: String },
    #[error("{mechanism} authentication of user {user} with broker {address} failed: {reason}")]
    Scram {
        address: String,
        mechanism: &'static str,
        user: String,
        #[source]
        reason: crate::connection::ScramError,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("record batch from broker is malformed: {0}")]
    Batch(#[from] strom_protocol::batch::BatchError),
    #[error("record of {size_bytes} bytes is larger than the producer buffer ({max_bytes} bytes)")]
    RecordTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("the producer is closed")]
    ProducerClosed,
    #[error("partition {topic}-{partition} is not assigned to this consumer")]
    NotAssigned { topic: String, partition: i32 },
}

impl ClientError {
    /// A broker error from a response's error code, or `None` for code 0.
    pub fn from_code(code: i16, message: Option<&str>, context: impl Into<String>) -> Option<Self> {
        if code == 0 {
            return None;
        }
        Some(ClientError::Broker {
            code,
            name: error_code_name(code),
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
            context: context.into(),
        })
    }

    /// The Kafka error code, when this is a broker error.
    pub fn code(&self) -> Option<i16> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when sending the request again may succeed: network faults, timeouts, and
    /// broker codes Kafka marks retriable.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } => is_retriable_code(*code),
            ClientError::Connect { .. }
            | ClientError::ConnectTimeout { .. }
            | ClientError::Io { .. }
            | ClientError::ConnectionClosed { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoLeader { .. }
            | ClientError::UnknownBroker { .. } => true,
            // A certificate the client refuses (or that refuses the client) fails the same
            // way next time; a handshake cut short by the network may not.
            ClientError::Tls { source, .. } => source.kind() != std::io::ErrorKind::InvalidData,
            _ => false,
        }
    }

    /// True for errors that say the credentials or the TLS identity are wrong: retrying
    /// them, or trying another broker, cannot help.
    pub fn is_authentication_error(&self) -> bool {
        match self {
            ClientError::AuthenticationFailed { .. }
            | ClientError::SaslMechanismNotEnabled { .. }
            | ClientError::Scram { .. } => true,
            ClientError::Tls { source, .. } => source.kind() == std::io::ErrorKind::InvalidData,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_codes_when_named_should_use_upper_snake_case() {
        assert_eq!(error_code_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_code_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_code_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_code_name(0), "NONE");
        assert_eq!(error_code_name(-1), "UNKNOWN_SERVER_ERROR");
    }

    #[test]
    fn given_broker_error_when_displayed_should_carry_code_name_and_message() {
        let error =
            ClientError::from_code(36, Some("Topic 'a' already exists."), "create topic 'a'")
                .expect("error");
        assert_eq!(
            error.to_string(),
            "create topic 'a': TOPIC_ALREADY_EXISTS (36): Topic 'a' already exists."
        );
        assert!(!error.is_retriable());
        assert!(ClientError::from_code(0, None, "x").is_none());
        assert!(needs_metadata_refresh(6) && is_retriable_code(6));
    }
}
