//! Kafka's zig-zag variable-length integers: `varint` (i32, at most 5 bytes) and `varlong`
//! (i64, at most 10 bytes), as used inside v2 records.
//!
//! Decoding is strict: more than 5/10 bytes, or bits that do not fit the type in the last
//! byte, is an error; a buffer that ends mid-integer is [`VarintError::Truncated`].
//!
//! ```
//! use kafkit_wire::record::varint::{decode_varint, encode_varint, varint_len};
//! let mut buf = Vec::new();
//! encode_varint(-1, &mut buf);
//! assert_eq!(buf, [0x01]);
//! assert_eq!(decode_varint(&[0x96, 0x01]), Ok((75, 2)));
//! assert_eq!(varint_len(75), 2);
//! ```

use bytes::BufMut;

/// The most bytes a varint (i32) takes.
pub const MAX_VARINT_LEN: usize = 5;
/// The most bytes a varlong (i64) takes.
pub const MAX_VARLONG_LEN: usize = 10;

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The buffer ended before the last byte (the one without the continuation bit).
    #[error("buffer ends inside a varint")]
    Truncated,
    /// More than 5 (varint) or 10 (varlong) bytes.
    #[error("varint longer than its type allows")]
    TooLong,
    /// The last byte carries bits beyond the type's width.
    #[error("varint overflows its type")]
    Overflow,
}

#[inline]
fn decode_unsigned(
    buf: &[u8],
    max_len: usize,
    last_byte_max: u8,
) -> Result<(u64, usize), VarintError> {
    // One and two bytes (values below 2^14: deltas, most lengths) first, without the loop;
    // both lengths are below either type's limit, so nothing else is checked for them.
    match *buf {
        [b0, ..] if b0 < 0x80 => return Ok((u64::from(b0), 1)),
        [b0, b1, ..] if b1 < 0x80 => {
            return Ok((u64::from(b0 & 0x7f) | (u64::from(b1) << 7), 2));
        }
        _ => {}
    }
    decode_unsigned_long(buf, max_len, last_byte_max)
}

/// [`decode_unsigned`] of three bytes or more (or a truncated or invalid one).
fn decode_unsigned_long(
    buf: &[u8],
    max_len: usize,
    last_byte_max: u8,
) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    for (i, len) in (1..=max_len).enumerate() {
        let Some(&byte) = buf.get(i) else {
            return Err(VarintError::Truncated);
        };
        if len == max_len {
            if byte & 0x80 != 0 {
                return Err(VarintError::TooLong);
            }
            if byte > last_byte_max {
                return Err(VarintError::Overflow);
            }
        }
        value |= u64::from(byte & 0x7f).wrapping_shl(shift);
        if byte & 0x80 == 0 {
            return Ok((value, len));
        }
        shift = shift.wrapping_add(7);
    }
    Err(VarintError::TooLong)
}

/// Decodes a zig-zag varint (i32) from the start of `buf`: the value and the bytes it took.
#[inline]
pub fn decode_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, len) = decode_unsigned(buf, MAX_VARINT_LEN, 0x0f)?;
    let raw = u32::try_from(raw).map_err(|_| VarintError::Overflow)?;
    Ok((((raw >> 1) as i32) ^ ((raw & 1) as i32).wrapping_neg(), len))
}

/// Decodes a zig-zag varlong (i64) from the start of `buf`: the value and the bytes it took.
#[inline]
pub fn decode_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, len) = decode_unsigned(buf, MAX_VARLONG_LEN, 0x01)?;
    Ok((((raw >> 1) as i64) ^ ((raw & 1) as i64).wrapping_neg(), len))
}

#[inline]
fn put_unsigned(mut raw: u64, out: &mut impl BufMut) {
    while raw >= 0x80 {
        out.put_u8((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}

#[inline]
fn unsigned_len(raw: u64) -> usize {
    let bits = ((raw | 1).ilog2() as usize).saturating_add(1);
    bits.div_ceil(7)
}

#[inline]
pub(crate) fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

#[inline]
pub(crate) fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends `value` as a zig-zag varint.
#[inline]
pub fn encode_varint(value: i32, out: &mut impl BufMut) {
    put_unsigned(zigzag32(value), out);
}

/// Appends `value` as a zig-zag varlong.
#[inline]
pub fn encode_varlong(value: i64, out: &mut impl BufMut) {
    put_unsigned(zigzag64(value), out);
}

/// How many bytes [`encode_varint`] writes for `value` (1-5).
#[inline]
pub fn varint_len(value: i32) -> usize {
    unsigned_len(zigzag32(value))
}

/// How many bytes [`encode_varlong`] writes for `value` (1-10).
#[inline]
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_values() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            encode_varint(*v, &mut out);
            assert_eq!(&out[..], *bytes, "{v}");
            assert_eq!(decode_varint(bytes), Ok((*v, bytes.len())));
            assert_eq!(varint_len(*v), bytes.len());
        }
        let mut out = Vec::new();
        encode_varlong(i64::MIN, &mut out);
        assert_eq!(
            out,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(decode_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(decode_varint(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(
            decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintError::TooLong)
        );
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overflow)
        );
        assert_eq!(decode_varlong(&[0xff; 10]), Err(VarintError::TooLong));
        let mut over = [0xff; 10];
        over[9] = 0x02;
        assert_eq!(decode_varlong(&over), Err(VarintError::Overflow));
        // Non-minimal but in range is accepted, as Java does.
        assert_eq!(decode_varint(&[0x82, 0x00]), Ok((1, 2)));
    }

    proptest! {
        /// The one- and two-byte shortcut answers exactly as the full loop does, for any
        /// bytes (values, lengths and errors alike).
        #[test]
        fn the_short_path_agrees_with_the_loop(
            buf in proptest::collection::vec(
                prop_oneof![any::<u8>(), 0x7e..=0x81u8, Just(0xff), Just(0x00)], 0..12),
        ) {
            for (max_len, last) in [(MAX_VARINT_LEN, 0x0f), (MAX_VARLONG_LEN, 0x01)] {
                prop_assert_eq!(
                    decode_unsigned(&buf, max_len, last),
                    decode_unsigned_long(&buf, max_len, last)
                );
            }
        }

        #[test]
        fn varint_round_trip(v in any::<i32>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = Vec::new();
            encode_varint(v, &mut out);
            prop_assert_eq!(out.len(), varint_len(v));
            out.extend_from_slice(&tail);
            prop_assert_eq!(decode_varint(&out), Ok((v, varint_len(v))));
        }

        #[test]
        fn varlong_round_trip(v in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(0i64)]) {
            let mut out = Vec::new();
            encode_varlong(v, &mut out);
            prop_assert_eq!(out.len(), varlong_len(v));
            prop_assert_eq!(decode_varlong(&out), Ok((v, out.len())));
            if !out.is_empty() {
                prop_assert_eq!(decode_varlong(&out[..out.len() - 1]), Err(VarintError::Truncated));
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = decode_varint(&bytes);
            let _ = decode_varlong(&bytes);
        }
    }
}
