//! The one place storage errors become Kafka error codes.

use strom_protocol::ErrorCode;
use strom_storage::AppendError;

pub fn append_error_code(error: &AppendError) -> ErrorCode {
    match error {
        AppendError::CorruptMessage { .. } => ErrorCode::CorruptMessage,
        AppendError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
        AppendError::RecordListTooLarge { .. } => ErrorCode::RecordListTooLarge,
        AppendError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        AppendError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        AppendError::Storage(_) => ErrorCode::KafkaStorageError,
    }
}

/// Index of the batch (within the request's records) that failed, where the error names one.
pub fn append_error_batch_index(_error: &AppendError) -> Option<i32> {
    None
}
