//! The one walker: reads a body the way kafka-protocol's generated decoders read it,
//! allocating nothing, and stops at the first count or length the body cannot hold.

use super::schema::{Kind, Message, Struct};
use super::BoundsError;

/// A read position in the body. Every read is checked; nothing here can panic.
struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining_bytes(&self) -> usize {
        self.body.len() - self.at
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], BoundsError> {
        if count > self.remaining_bytes() {
            return Err(BoundsError::Truncated { at: self.at });
        }
        let taken = &self.body[self.at..self.at + count];
        self.at += count;
        Ok(taken)
    }

    fn int16(&mut self) -> Result<i16, BoundsError> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn int32(&mut self) -> Result<i32, BoundsError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Mirrors `types::UnsignedVarInt`: at most five bytes, stop after the fifth even if
    /// its continuation bit is set, bits beyond 32 are dropped.
    fn unsigned_varint(&mut self) -> Result<u32, BoundsError> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let byte = self.take(1)?[0] as u32;
            value |= (byte & 0x7f) << (index * 7);
            if byte < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A classic length prefix (INT16 or INT32): -1 is null, other negatives are refused
    /// by the generated decoder and here.
    fn classic_length(&mut self, length: i32, at: usize) -> Result<Option<usize>, BoundsError> {
        match length {
            -1 => Ok(None),
            length if length >= 0 => Ok(Some(length as usize)),
            length => Err(BoundsError::NegativeLength { length, at }),
        }
    }
}

/// The state of one walk: the body, the version and whether that version is flexible.
struct Walk<'a> {
    reader: Reader<'a>,
    version: i16,
    flexible: bool,
    /// Where each array count starts, for the tests that patch counts.
    #[cfg(test)]
    array_count_offsets: Vec<usize>,
}

impl<'a> Walk<'a> {
    fn new(message: &Message, version: i16, body: &'a [u8]) -> Self {
        Walk {
            reader: Reader { body, at: 0 },
            version,
            flexible: message.is_flexible(version),
            #[cfg(test)]
            array_count_offsets: Vec::new(),
        }
    }
}

pub(super) fn check(message: &Message, version: i16, body: &[u8]) -> Result<(), BoundsError> {
    Walk::new(message, version, body).walk_struct(message.body)
}

/// The offsets of every array count in a body the walker accepts.
#[cfg(test)]
pub(super) fn array_count_offsets(
    message: &Message,
    version: i16,
    body: &[u8],
) -> Result<Vec<usize>, BoundsError> {
    let mut walk = Walk::new(message, version, body);
    walk.walk_struct(message.body)?;
    Ok(walk.array_count_offsets)
}

impl Walk<'_> {
    fn walk_struct(&mut self, schema: &Struct) -> Result<(), BoundsError> {
        for field in schema.fields {
            if field.versions.contains(self.version) {
                self.walk_kind(&field.kind)?;
            }
        }
        if self.flexible {
            self.walk_tagged_fields(schema)?;
        }
        Ok(())
    }

    fn walk_kind(&mut self, kind: &Kind) -> Result<(), BoundsError> {
        match *kind {
            Kind::Fixed(width_bytes) => {
                self.reader.take(width_bytes)?;
            }
            Kind::String | Kind::Bytes => {
                if let Some(length) = self.length_prefix(kind)? {
                    self.reader.take(length)?;
                }
            }
            Kind::Array(element) => {
                let at = self.reader.at;
                #[cfg(test)]
                self.array_count_offsets.push(at);
                if let Some(count) = self.length_prefix(kind)? {
                    // Every element takes at least one byte (a test checks this for every
                    // schema), so a longer count cannot be honest. This bound is what the
                    // generated decoder's `Vec::with_capacity(count)` relies on.
                    let remaining_bytes = self.reader.remaining_bytes();
                    if count > remaining_bytes {
                        return Err(BoundsError::CountTooLarge {
                            count: count as i64,
                            at,
                            remaining_bytes,
                        });
                    }
                    for _ in 0..count {
                        self.walk_kind(element)?;
                    }
                }
            }
            Kind::Struct(schema) => self.walk_struct(schema)?,
        }
        Ok(())
    }

    /// Reads the length or count prefix of a string, bytes or array; `None` is null.
    fn length_prefix(&mut self, kind: &Kind) -> Result<Option<usize>, BoundsError> {
        let at = self.reader.at;
        if self.flexible {
            // Compact: varint N+1, 0 meaning null.
            return Ok(match self.reader.unsigned_varint()? {
                0 => None,
                length_plus_one => Some((length_plus_one - 1) as usize),
            });
        }
        let length = match kind {
            Kind::String => i32::from(self.reader.int16()?),
            _ => self.reader.int32()?,
        };
        self.reader.classic_length(length, at)
    }

    /// The tagged-field section of a flexible struct: a count, then (tag, size, value).
    /// Unknown tags are skipped by their size; known tags are read as their kind, exactly
    /// as the generated decoder does (it ignores `size` for them).
    fn walk_tagged_fields(&mut self, schema: &Struct) -> Result<(), BoundsError> {
        let at = self.reader.at;
        let count = self.reader.unsigned_varint()? as usize;
        let remaining_bytes = self.reader.remaining_bytes();
        // Each tagged field takes at least two bytes (tag and size); the bound keeps the
        // loop short for a hostile count.
        if count > remaining_bytes {
            return Err(BoundsError::CountTooLarge {
                count: count as i64,
                at,
                remaining_bytes,
            });
        }
        for _ in 0..count {
            let tag_at = self.reader.at;
            let tag = self.reader.unsigned_varint()?;
            let size_bytes = self.reader.unsigned_varint()? as usize;
            match schema.tagged.iter().find(|known| known.tag == tag) {
                Some(known) if known.versions.contains(self.version) => {
                    self.walk_kind(&known.kind)?;
                }
                Some(_) => {
                    return Err(BoundsError::TagNotValidForVersion {
                        tag,
                        version: self.version,
                        at: tag_at,
                    });
                }
                None => {
                    self.reader.take(size_bytes)?;
                }
            }
        }
        Ok(())
    }
}
