//! The registry's errors, each with Confluent's HTTP status and `error_code`.

use crate::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{subject}' not found.")]
    SubjectNotFound { subject: String },
    #[error("Version {version} not found.")]
    VersionNotFound { version: String },
    #[error("Schema {id} not found")]
    SchemaNotFound { id: String },
    #[error("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted { subject: String },
    #[error("Subject '{subject}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted { subject: String },
    #[error("Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{subject}' Version {version} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{subject}' does not have subject-level compatibility configured")]
    CompatibilityNotConfigured { subject: String },
    #[error("Subject '{subject}' does not have subject-level mode configured")]
    ModeNotConfigured { subject: String },
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", messages.join(", "))]
    Incompatible {
        subject: String,
        messages: Vec<String>,
    },
    #[error("Invalid schema: {message}")]
    InvalidSchema { message: String },
    #[error("The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion { version: String },
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive (got '{level}')")]
    InvalidCompatibility { level: String },
    #[error("Invalid mode. Valid values are READWRITE, READONLY, IMPORT (got '{mode}')")]
    InvalidMode { mode: String },
    #[error("{message}")]
    NotPermitted { message: String },
    #[error("One or more references exist to the schema {{subject={subject},version={version}}}")]
    ReferenceExists { subject: String, version: i32 },
    #[error("Schema id {id} already registered with a different schema")]
    IdDoesNotMatch { id: i32 },
    #[error("Invalid subject: {message}")]
    InvalidSubject { message: String },
    #[error("Error in the backend data store: {source}")]
    Store { source: LogError },
    #[error("Unknown leader: {source}")]
    UnknownLeader { source: LogError },
    /// Another broker is the writer: the request is forwarded to its registry listener
    /// (`host:port`). Never answered as such unless forwarding is impossible.
    #[error("the registry's writer is at {writer}")]
    Forward { writer: String },
    #[error("Error while forwarding the request to the leader: {message}")]
    Forwarding { message: String },
    /// No valid HTTP Basic credentials where the listener asks for them.
    #[error("Unauthorized")]
    Unauthenticated,
    /// Authenticated, but the broker's ACLs do not allow this.
    #[error("User {user} is denied operation {operation} on {resource}")]
    Forbidden {
        user: String,
        operation: &'static str,
        resource: String,
    },
    /// The request itself: body not JSON, wrong field types, too large, wrong media type.
    #[error("{message}")]
    Request { status: u16, message: String },
}

impl RegistryError {
    /// The HTTP status and Confluent `error_code`.
    pub fn codes(&self) -> (u16, u32) {
        use RegistryError::*;
        match self {
            SubjectNotFound { .. } => (404, 40401),
            VersionNotFound { .. } => (404, 40402),
            SchemaNotFound { .. } => (404, 40403),
            SubjectSoftDeleted { .. } => (404, 40404),
            SubjectNotSoftDeleted { .. } => (404, 40405),
            VersionSoftDeleted { .. } => (404, 40406),
            VersionNotSoftDeleted { .. } => (404, 40407),
            CompatibilityNotConfigured { .. } => (404, 40408),
            ModeNotConfigured { .. } => (404, 40409),
            Incompatible { .. } => (409, 409),
            InvalidSchema { .. } => (422, 42201),
            InvalidVersion { .. } => (422, 42202),
            InvalidCompatibility { .. } => (422, 42203),
            InvalidMode { .. } => (422, 42204),
            NotPermitted { .. } => (422, 42205),
            ReferenceExists { .. } => (422, 42206),
            IdDoesNotMatch { .. } => (422, 42207),
            InvalidSubject { .. } => (422, 42208),
            Store { .. } => (500, 50001),
            UnknownLeader { .. } => (500, 50004),
            Forward { .. } | Forwarding { .. } => (500, 50003),
            Unauthenticated => (401, 401),
            Forbidden { .. } => (403, 40301),
            Request { status, .. } => (*status, u32::from(*status)),
        }
    }

    pub fn request(status: u16, message: impl Into<String>) -> RegistryError {
        RegistryError::Request {
            status,
            message: message.into(),
        }
    }
}

impl From<LogError> for RegistryError {
    fn from(source: LogError) -> RegistryError {
        match source {
            LogError::NotWriter { .. } => RegistryError::UnknownLeader { source },
            _ => RegistryError::Store { source },
        }
    }
}
