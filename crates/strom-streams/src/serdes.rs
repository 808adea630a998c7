//! Serdes: how keys and values become bytes on topics and in state stores.
//!
//! A [`Serde`] maps a typed value to optional bytes (`None` is a Kafka null) and back.
//! Non-optional types refuse a null on the way in; wrap them with [`Serdes::option`] to read
//! topics whose keys or values may be null.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::record::Windowed;

/// Why bytes could not become a value.
#[derive(Debug, thiserror::Error)]
pub enum SerdeError {
    #[error("a null where a {type_name} was expected")]
    UnexpectedNull { type_name: &'static str },
    #[error("not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error("expected {expected_bytes} bytes for a {type_name}, got {got_bytes}")]
    Length {
        type_name: &'static str,
        expected_bytes: usize,
        got_bytes: usize,
    },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Turns a `T` into optional bytes and back. Implementations must round-trip:
/// `deserialize(serialize(v)) == v`.
pub trait Serde<T>: Send + Sync {
    fn serialize(&self, value: &T) -> Option<Vec<u8>>;
    fn deserialize(&self, data: Option<&[u8]>) -> Result<T, SerdeError>;
}

/// A shared serde, as the DSL carries it along a stream.
pub type SerdeRef<T> = Arc<dyn Serde<T>>;

fn present<'a>(data: Option<&'a [u8]>, type_name: &'static str) -> Result<&'a [u8], SerdeError> {
    data.ok_or(SerdeError::UnexpectedNull { type_name })
}

struct StringSerde;
impl Serde<String> for StringSerde {
    fn serialize(&self, value: &String) -> Option<Vec<u8>> {
        Some(value.as_bytes().to_vec())
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<String, SerdeError> {
        Ok(String::from_utf8(present(data, "string")?.to_vec())?)
    }
}

struct BytesSerde;
impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, value: &Vec<u8>) -> Option<Vec<u8>> {
        Some(value.clone())
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Vec<u8>, SerdeError> {
        Ok(present(data, "bytes")?.to_vec())
    }
}

/// Big-endian fixed-width integers, as Kafka's LongSerde and IntegerSerde write them.
struct I64Serde;
impl Serde<i64> for I64Serde {
    fn serialize(&self, value: &i64) -> Option<Vec<u8>> {
        Some(value.to_be_bytes().to_vec())
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<i64, SerdeError> {
        let bytes = present(data, "i64")?;
        let array: [u8; 8] = bytes.try_into().map_err(|_| SerdeError::Length {
            type_name: "i64",
            expected_bytes: 8,
            got_bytes: bytes.len(),
        })?;
        Ok(i64::from_be_bytes(array))
    }
}

struct I32Serde;
impl Serde<i32> for I32Serde {
    fn serialize(&self, value: &i32) -> Option<Vec<u8>> {
        Some(value.to_be_bytes().to_vec())
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<i32, SerdeError> {
        let bytes = present(data, "i32")?;
        let array: [u8; 4] = bytes.try_into().map_err(|_| SerdeError::Length {
            type_name: "i32",
            expected_bytes: 4,
            got_bytes: bytes.len(),
        })?;
        Ok(i32::from_be_bytes(array))
    }
}

struct JsonSerde<T>(PhantomData<fn() -> T>);
impl<T: Serialize + DeserializeOwned> Serde<T> for JsonSerde<T> {
    fn serialize(&self, value: &T) -> Option<Vec<u8>> {
        // Serializing a plain serde data type to a Vec cannot fail except for maps with
        // non-string keys; such a value is written as a null rather than aborting the task.
        match serde_json::to_vec(value) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::error!(%error, "JSON serialization failed; writing a null");
                None
            }
        }
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<T, SerdeError> {
        Ok(serde_json::from_slice(present(data, "JSON value")?)?)
    }
}

struct OptionSerde<T>(SerdeRef<T>);
impl<T> Serde<Option<T>> for OptionSerde<T> {
    fn serialize(&self, value: &Option<T>) -> Option<Vec<u8>> {
        value.as_ref().and_then(|inner| self.0.serialize(inner))
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Option<T>, SerdeError> {
        match data {
            None => Ok(None),
            Some(bytes) => Ok(Some(self.0.deserialize(Some(bytes))?)),
        }
    }
}

/// Kafka's time-windowed key layout: the inner key's bytes, then the window start as an
/// 8-byte big-endian millisecond timestamp. The end is start + `size_ms`.
struct TimeWindowedSerde<K> {
    inner: SerdeRef<K>,
    size_ms: i64,
}
impl<K> Serde<Windowed<K>> for TimeWindowedSerde<K> {
    fn serialize(&self, value: &Windowed<K>) -> Option<Vec<u8>> {
        let mut bytes = self.inner.serialize(&value.key).unwrap_or_default();
        bytes.extend_from_slice(&value.start_ms.to_be_bytes());
        Some(bytes)
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let bytes = present(data, "windowed key")?;
        let split = bytes.len().checked_sub(8).ok_or(SerdeError::Length {
            type_name: "windowed key",
            expected_bytes: 8,
            got_bytes: bytes.len(),
        })?;
        let mut start = [0u8; 8];
        start.copy_from_slice(&bytes[split..]);
        let start_ms = i64::from_be_bytes(start);
        Ok(Windowed {
            key: self.inner.deserialize(Some(&bytes[..split]))?,
            start_ms,
            end_ms: start_ms.saturating_add(self.size_ms),
        })
    }
}

/// Kafka's session-windowed key layout: the inner key's bytes, then the session's end and
/// start, each an 8-byte big-endian millisecond timestamp.
struct SessionWindowedSerde<K> {
    inner: SerdeRef<K>,
}
impl<K> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, value: &Windowed<K>) -> Option<Vec<u8>> {
        let mut bytes = self.inner.serialize(&value.key).unwrap_or_default();
        bytes.extend_from_slice(&value.end_ms.to_be_bytes());
        bytes.extend_from_slice(&value.start_ms.to_be_bytes());
        Some(bytes)
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let bytes = present(data, "session key")?;
        let split = bytes.len().checked_sub(16).ok_or(SerdeError::Length {
            type_name: "session key",
            expected_bytes: 16,
            got_bytes: bytes.len(),
        })?;
        let mut end = [0u8; 8];
        end.copy_from_slice(&bytes[split..split + 8]);
        let mut start = [0u8; 8];
        start.copy_from_slice(&bytes[split + 8..]);
        Ok(Windowed {
            key: self.inner.deserialize(Some(&bytes[..split]))?,
            start_ms: i64::from_be_bytes(start),
            end_ms: i64::from_be_bytes(end),
        })
    }
}

/// Constructors of the built-in serdes.
pub struct Serdes;

impl Serdes {
    /// UTF-8 strings.
    pub fn string() -> SerdeRef<String> {
        Arc::new(StringSerde)
    }
    /// Raw bytes, as they are.
    pub fn bytes() -> SerdeRef<Vec<u8>> {
        Arc::new(BytesSerde)
    }
    /// 8-byte big-endian, Kafka's `LongSerde` (what Kafka Streams' `count()` writes).
    pub fn i64() -> SerdeRef<i64> {
        Arc::new(I64Serde)
    }
    /// 4-byte big-endian, Kafka's `IntegerSerde`.
    pub fn i32() -> SerdeRef<i32> {
        Arc::new(I32Serde)
    }
    /// Any serde (the crate) type as JSON text.
    pub fn json<T: Serialize + DeserializeOwned + 'static>() -> SerdeRef<T> {
        Arc::new(JsonSerde::<T>(PhantomData))
    }
    /// Nullable: `None` is a Kafka null.
    pub fn option<T: 'static>(inner: SerdeRef<T>) -> SerdeRef<Option<T>> {
        Arc::new(OptionSerde(inner))
    }
    /// Keys of tumbling or hopping windows of `size_ms`, in Kafka's layout.
    pub fn time_windowed<K: 'static>(inner: SerdeRef<K>, size_ms: i64) -> SerdeRef<Windowed<K>> {
        Arc::new(TimeWindowedSerde { inner, size_ms })
    }
    /// Keys of session windows, in Kafka's layout.
    pub fn session_windowed<K: 'static>(inner: SerdeRef<K>) -> SerdeRef<Windowed<K>> {
        Arc::new(SessionWindowedSerde { inner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_builtin_serde_when_round_tripped_should_return_the_value() {
        let s = Serdes::string();
        assert_eq!(
            s.deserialize(s.serialize(&"héllo".to_string()).as_deref())
                .unwrap(),
            "héllo"
        );
        let n = Serdes::i64();
        assert_eq!(n.serialize(&1).unwrap(), vec![0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(n.deserialize(Some(&(-5i64).to_be_bytes())).unwrap(), -5);
        let o = Serdes::option(Serdes::string());
        assert_eq!(o.serialize(&None), None);
        assert_eq!(o.deserialize(None).unwrap(), None);
        let j = Serdes::json::<Vec<u32>>();
        assert_eq!(j.serialize(&vec![1, 2]).unwrap(), b"[1,2]".to_vec());
        let w = Serdes::time_windowed(Serdes::string(), 10);
        let key = Windowed {
            key: "k".to_string(),
            start_ms: 20,
            end_ms: 30,
        };
        assert_eq!(w.deserialize(w.serialize(&key).as_deref()).unwrap(), key);
        let sw = Serdes::session_windowed(Serdes::string());
        let session = Windowed {
            key: "k".to_string(),
            start_ms: 3,
            end_ms: 9,
        };
        assert_eq!(
            sw.deserialize(sw.serialize(&session).as_deref()).unwrap(),
            session
        );
    }

    #[test]
    fn given_malformed_bytes_when_deserialized_should_fail_not_panic() {
        assert!(Serdes::string().deserialize(None).is_err());
        assert!(Serdes::string().deserialize(Some(&[0xff, 0xfe])).is_err());
        assert!(Serdes::i64().deserialize(Some(&[1, 2, 3])).is_err());
        assert!(Serdes::i32().deserialize(Some(&[1, 2, 3, 4, 5])).is_err());
        assert!(Serdes::json::<u32>().deserialize(Some(b"{")).is_err());
        assert!(Serdes::time_windowed(Serdes::string(), 5)
            .deserialize(Some(&[1]))
            .is_err());
        assert!(Serdes::session_windowed(Serdes::string())
            .deserialize(Some(&[1; 15]))
            .is_err());
    }
}
