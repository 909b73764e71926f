//! The Confluent wire format: how a schema id travels with a serialized value.
//!
//! - Prefix, id form: `0x00`, the schema id as a big-endian `u32`, then the payload.
//! - Prefix, GUID form (newer registries): `0x01`, a 16-byte schema GUID, then the payload.
//! - Header form: the id (in either form above, without payload) in the record header
//!   `__value_schema_id` (or `__key_schema_id` for keys), and the value is the bare payload.
//!
//! A reader looks at the header first, then at the prefix, as Confluent's deserializers do. Pure
//! and bounded: nothing is allocated from a length read off the wire.
//!
//! ```
//! use kafkit_events::wire_format::{frame, parse_frame, SchemaId};
//!
//! let bytes = frame(42, b"payload");
//! assert_eq!(&bytes[..5], &[0, 0, 0, 0, 42]);
//! let (id, payload) = parse_frame(&bytes).unwrap();
//! assert_eq!((id, payload), (SchemaId::Id(42), &b"payload"[..]));
//! ```

use uuid::Uuid;

/// The magic byte of the id form.
pub const MAGIC_ID: u8 = 0;
/// The magic byte of the GUID form.
pub const MAGIC_GUID: u8 = 1;
/// The length of the id-form prefix (magic byte + 4-byte id).
pub const ID_PREFIX_LEN: usize = 5;
/// The length of the GUID-form prefix (magic byte + 16-byte GUID).
pub const GUID_PREFIX_LEN: usize = 17;
/// The header carrying a value's schema id.
pub const VALUE_SCHEMA_ID_HEADER: &str = "__value_schema_id";
/// The header carrying a key's schema id.
pub const KEY_SCHEMA_ID_HEADER: &str = "__key_schema_id";

/// A schema's identity as carried with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaId {
    /// A registry's integer id.
    Id(u32),
    /// A registry's schema GUID.
    Guid(Uuid),
}

/// Why a frame or a schema-id header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The value is empty.
    #[error("empty value: no magic byte")]
    Empty,
    /// The first byte is neither 0 nor 1.
    #[error("unknown magic byte {0:#04x} (expected 0x00 or 0x01)")]
    WrongMagicByte(u8),
    /// The value ends inside the prefix.
    #[error("truncated frame: {len} bytes, the prefix needs {needed}")]
    Truncated {
        /// Bytes the prefix needs.
        needed: usize,
        /// Bytes there are.
        len: usize,
    },
    /// A schema-id header is malformed (null, or not 5 or 17 bytes with the right magic byte).
    #[error("header {header}: {reason}")]
    BadHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A schema-id header appears more than once.
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// The schema is named by GUID, which this reader does not resolve.
    #[error("schema GUID {0} is not supported (only integer schema ids are resolved)")]
    GuidNotSupported(Uuid),
}

/// The id-form prefix of `id`.
pub fn prefix(id: u32) -> [u8; ID_PREFIX_LEN] {
    let b = id.to_be_bytes();
    [MAGIC_ID, b[0], b[1], b[2], b[3]]
}

/// `payload` framed with the id-form prefix of `id`.
pub fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ID_PREFIX_LEN + payload.len());
    out.extend_from_slice(&prefix(id));
    out.extend_from_slice(payload);
    out
}

/// The schema id in a prefix-framed value, and the payload after it.
pub fn parse_frame(value: &[u8]) -> Result<(SchemaId, &[u8]), FrameError> {
    let (&magic, rest) = value.split_first().ok_or(FrameError::Empty)?;
    match magic {
        MAGIC_ID => {
            let (id, payload) = rest.split_first_chunk::<4>().ok_or(FrameError::Truncated {
                needed: ID_PREFIX_LEN,
                len: value.len(),
            })?;
            Ok((SchemaId::Id(u32::from_be_bytes(*id)), payload))
        }
        MAGIC_GUID => {
            let (guid, payload) = rest
                .split_first_chunk::<16>()
                .ok_or(FrameError::Truncated {
                    needed: GUID_PREFIX_LEN,
                    len: value.len(),
                })?;
            Ok((SchemaId::Guid(Uuid::from_bytes(*guid)), payload))
        }
        other => Err(FrameError::WrongMagicByte(other)),
    }
}

/// The schema id in a `__value_schema_id` / `__key_schema_id` header value: exactly a prefix
/// (5 bytes, id form, or 17 bytes, GUID form) with nothing after it.
pub fn parse_header_id(header: &'static str, value: Option<&[u8]>) -> Result<SchemaId, FrameError> {
    let value = value.ok_or(FrameError::BadHeader {
        header,
        reason: "null value".to_owned(),
    })?;
    let bad = |reason: String| FrameError::BadHeader { header, reason };
    match parse_frame(value) {
        Ok((id, [])) => Ok(id),
        Ok((_, rest)) => Err(bad(format!("{} bytes after the id", rest.len()))),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Where a value's schema id is: the header (`__value_schema_id`, or `__key_schema_id` when
/// `is_key`) when present — the whole value is then the payload — else the value's prefix.
pub fn locate<'a, 'h, I>(
    headers: I,
    value: &'a [u8],
    is_key: bool,
) -> Result<(SchemaId, &'a [u8]), FrameError>
where
    I: IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
{
    let name = if is_key {
        KEY_SCHEMA_ID_HEADER
    } else {
        VALUE_SCHEMA_ID_HEADER
    };
    let mut found = None;
    for (key, v) in headers {
        if key == name.as_bytes() {
            if found.is_some() {
                return Err(FrameError::DuplicateHeader(name));
            }
            found = Some(parse_header_id(name, v)?);
        }
    }
    match found {
        Some(id) => Ok((id, value)),
        None => parse_frame(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefix_is_magic_then_big_endian_id() {
        assert_eq!(prefix(0x0102_0304), [0, 1, 2, 3, 4]);
        assert_eq!(
            parse_frame(&[0, 0, 0, 1, 0]),
            Ok((SchemaId::Id(256), &[][..]))
        );
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(parse_frame(&[]), Err(FrameError::Empty));
        assert_eq!(
            parse_frame(&[7, 0, 0, 0, 1]),
            Err(FrameError::WrongMagicByte(7))
        );
        assert_eq!(
            parse_frame(&[0, 0, 1]),
            Err(FrameError::Truncated { needed: 5, len: 3 })
        );
        assert_eq!(
            parse_frame(&[1; 10]),
            Err(FrameError::Truncated {
                needed: 17,
                len: 10
            })
        );
        // A JSON text is not a frame.
        assert_eq!(parse_frame(b"{}"), Err(FrameError::WrongMagicByte(b'{')));
    }

    #[test]
    fn guid_form_parses_to_a_guid() {
        let guid = Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        let mut v = vec![1];
        v.extend_from_slice(guid.as_bytes());
        v.extend_from_slice(b"x");
        assert_eq!(parse_frame(&v), Ok((SchemaId::Guid(guid), &b"x"[..])));
    }

    #[test]
    fn header_id_comes_first_and_the_value_is_then_bare() {
        let header = prefix(9);
        let headers = [(VALUE_SCHEMA_ID_HEADER.as_bytes(), Some(&header[..]))];
        // The value starts with a valid-looking prefix of id 5, but the header wins.
        let value = frame(5, b"p");
        assert_eq!(
            locate(headers.iter().copied(), &value, false),
            Ok((SchemaId::Id(9), &value[..]))
        );
        // For a key, the value header is not looked at.
        assert_eq!(
            locate(headers.iter().copied(), &value, true),
            Ok((SchemaId::Id(5), &b"p"[..]))
        );
        let two = [headers[0], headers[0]];
        assert_eq!(
            locate(two.iter().copied(), &value, false),
            Err(FrameError::DuplicateHeader(VALUE_SCHEMA_ID_HEADER))
        );
        let null = [(VALUE_SCHEMA_ID_HEADER.as_bytes(), None)];
        assert!(matches!(
            locate(null.iter().copied(), &value, false),
            Err(FrameError::BadHeader { .. })
        ));
        let long = [(VALUE_SCHEMA_ID_HEADER.as_bytes(), Some(&value[..]))];
        assert!(matches!(
            locate(long.iter().copied(), &value, false),
            Err(FrameError::BadHeader { .. })
        ));
    }

    proptest! {
        #[test]
        fn frame_round_trips(id in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let framed = frame(id, &payload);
            prop_assert_eq!(parse_frame(&framed), Ok((SchemaId::Id(id), &payload[..])));
        }

        #[test]
        fn any_bytes_parse_or_fail_typed(value in proptest::collection::vec(any::<u8>(), 0..40)) {
            match parse_frame(&value) {
                Ok((SchemaId::Id(_), rest)) => prop_assert_eq!(rest.len(), value.len() - 5),
                Ok((SchemaId::Guid(_), rest)) => prop_assert_eq!(rest.len(), value.len() - 17),
                Err(_) => {}
            }
        }
    }
}
