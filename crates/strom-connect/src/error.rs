//! The runtime's errors, each with the HTTP status Kafka Connect answers for it; the REST
//! body is `{"error_code": <status>, "message": ...}` as Kafka Connect's.

use strom_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Connector {name} not found")]
    ConnectorNotFound { name: String },
    #[error("Task {connector}-{task} not found")]
    TaskNotFound { connector: String, task: u32 },
    #[error("Connector {name} already exists")]
    ConnectorExists { name: String },
    #[error("{message}")]
    BadRequest { message: String },
    #[error("Connector configuration is invalid and contains the following {count} error(s):\n{errors}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`")]
    InvalidConfig { count: usize, errors: String },
    #[error("Failed to find any class that implements Connector and which name matches {class}")]
    UnknownPlugin { class: String },
    #[error("{what} is only possible for a connector in the STOPPED state; {name} is {state}")]
    NotStopped {
        what: &'static str,
        name: String,
        state: String,
    },
    #[error("Kafka: {0}")]
    Client(#[from] ClientError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("PostgreSQL: {context}: {detail}")]
    Postgres {
        context: String,
        /// The server's message when there is one (the client's own text is "db error").
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the worker is shutting down")]
    ShuttingDown,
    #[error("timed out {what}")]
    Timeout { what: String },
}

impl ConnectError {
    /// The HTTP status (and Kafka Connect's `error_code`).
    pub fn status(&self) -> u16 {
        match self {
            ConnectError::ConnectorNotFound { .. } | ConnectError::TaskNotFound { .. } => 404,
            ConnectError::ConnectorExists { .. } => 409,
            ConnectError::BadRequest { .. }
            | ConnectError::InvalidConfig { .. }
            | ConnectError::UnknownPlugin { .. }
            | ConnectError::NotStopped { .. } => 400,
            ConnectError::ShuttingDown | ConnectError::Timeout { .. } => 503,
            ConnectError::Client(_) | ConnectError::Io { .. } | ConnectError::Postgres { .. } => {
                500
            }
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ConnectError {
        ConnectError::BadRequest {
            message: message.into(),
        }
    }
}

pub type Result<T, E = ConnectError> = std::result::Result<T, E>;
