//! The one place storage errors become Kafka error codes.

use strom_protocol::ErrorCode;
use strom_storage::AppendError;

/// The error code of success.
pub const NO_ERROR: i16 = 0;

pub fn append_error_code(error: &AppendError) -> ErrorCode {
    match error {
        AppendError::CorruptMessage { .. } => ErrorCode::CorruptMessage,
        AppendError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
        AppendError::RecordListTooLarge { .. } => ErrorCode::RecordListTooLarge,
        AppendError::InvalidRecord { .. } => ErrorCode::InvalidRecord,
        // Kafka: INVALID_TIMESTAMP as soon as one record's timestamp is refused.
        AppendError::RecordErrors { errors, .. }
            if errors.iter().any(|error| error.reason.is_timestamp()) =>
        {
            ErrorCode::InvalidTimestamp
        }
        AppendError::RecordErrors { .. } => ErrorCode::InvalidRecord,
        AppendError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        AppendError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        AppendError::UnexpectedOffset { .. } => ErrorCode::UnknownServerError,
        AppendError::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
        AppendError::TransactionCoordinatorFenced { .. } => ErrorCode::TransactionCoordinatorFenced,
        AppendError::Storage(_) => ErrorCode::KafkaStorageError,
    }
}
