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
        AppendError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        AppendError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        AppendError::UnexpectedOffset { .. } => ErrorCode::UnknownServerError,
        AppendError::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
        AppendError::TransactionCoordinatorFenced { .. } => ErrorCode::TransactionCoordinatorFenced,
        AppendError::Storage(_) => ErrorCode::KafkaStorageError,
    }
}

/// Index of the batch (within the request's records) that failed, where the error names one
/// (Produce v8+ `record_errors`).
pub fn append_error_batch_index(error: &AppendError) -> Option<i32> {
    match error {
        AppendError::CorruptMessage { batch_index, .. }
        | AppendError::InvalidRecord { batch_index, .. } => Some(*batch_index as i32),
        _ => None,
    }
}
