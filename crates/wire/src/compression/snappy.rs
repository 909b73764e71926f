//! Snappy (codec 2) through `snap::raw`, in both framings Kafka clients use.
//!
//! - **raw**: one plain snappy block (librdkafka writes this).
//! - **xerial**: what the Java client writes through snappy-java's `SnappyOutputStream`: the
//!   magic `82 53 4E 41 50 50 59 00`, an i32 version and an i32 compatible version (both 1), then
//!   blocks of `[i32 big-endian length][raw snappy block]`.
//!
//! Decoding detects the xerial magic and otherwise treats the input as raw. Encoding defaults to
//! xerial ([`compress_xerial`]) for maximum compatibility: Java's reader (`SnappyInputStream`)
//! accepts both framings, but some older non-Java consumers only understand xerial.
//! [`compress_raw`] is there for peers that want raw blocks.

use snap::raw::{decompress_len, max_compress_len, Decoder, Encoder};

use super::{Compression, CompressionError};

/// The 8-byte xerial snappy stream magic.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// Uncompressed bytes per xerial block (snappy-java's default block size, 32 KiB).
pub const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

const XERIAL_HEADER_LEN: usize = 16;

fn corrupt(message: impl std::fmt::Display) -> CompressionError {
    CompressionError::corrupt(Compression::Snappy, message)
}

/// Compresses `input` as a single raw snappy block, appending to `out`.
pub fn compress_raw(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    raw_block(&mut Encoder::new(), input, out).map(drop)
}

fn raw_block(
    encoder: &mut Encoder,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, CompressionError> {
    let start = out.len();
    out.resize(start.saturating_add(max_compress_len(input.len())), 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    match encoder.compress(input, dst) {
        Ok(n) => {
            out.truncate(start.saturating_add(n));
            Ok(n)
        }
        Err(e) => {
            out.truncate(start);
            Err(CompressionError::encode(Compression::Snappy, e))
        }
    }
}

/// Compresses `input` in the xerial framing (32 KiB blocks), appending to `out`.
pub fn compress_xerial(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let mut encoder = Encoder::new();
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let n = raw_block(&mut encoder, chunk, out)?;
        let n = i32::try_from(n)
            .map_err(|_| CompressionError::encode(Compression::Snappy, "block too large"))?;
        if let Some(slot) = out.get_mut(len_at..len_at.saturating_add(4)) {
            slot.copy_from_slice(&n.to_be_bytes());
        }
    }
    Ok(())
}

/// Decompresses snappy `input`, raw or xerial-framed, appending at most `limit` bytes to `out`.
pub fn decompress(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let mut decoder = Decoder::new();
    let mut budget = limit;
    match input.strip_prefix(&XERIAL_MAGIC[..]) {
        Some(_) if input.len() >= XERIAL_HEADER_LEN => {
            let mut rest = input.get(XERIAL_HEADER_LEN..).unwrap_or_default();
            while !rest.is_empty() {
                let (len, tail) = rest
                    .split_first_chunk::<4>()
                    .ok_or_else(|| corrupt("truncated xerial block length"))?;
                let len = usize::try_from(i32::from_be_bytes(*len))
                    .map_err(|_| corrupt("negative xerial block length"))?;
                if len > tail.len() {
                    return Err(corrupt("truncated xerial block"));
                }
                let (block, tail) = tail.split_at(len);
                budget = raw_decompress(&mut decoder, block, limit, budget, out)?;
                rest = tail;
            }
            Ok(())
        }
        _ => raw_decompress(&mut decoder, input, limit, budget, out).map(drop),
    }
}

/// Decodes one raw block into `out` if its declared length fits `budget`; returns the budget left.
fn raw_decompress(
    decoder: &mut Decoder,
    block: &[u8],
    limit: usize,
    budget: usize,
    out: &mut Vec<u8>,
) -> Result<usize, CompressionError> {
    let len = decompress_len(block).map_err(corrupt)?;
    if len > budget {
        return Err(CompressionError::LimitExceeded {
            codec: Compression::Snappy,
            limit,
        });
    }
    let start = out.len();
    out.resize(start.saturating_add(len), 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    match decoder.decompress(block, dst) {
        Ok(n) if n == len => Ok(budget.saturating_sub(len)),
        Ok(_) => Err(corrupt("short snappy block")),
        Err(e) => Err(corrupt(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xerial_layout_and_raw_interop() {
        let data = b"abcabcabcabcabcabcabcabcabcabc".repeat(3000);
        let mut x = Vec::new();
        compress_xerial(&data, &mut x).unwrap();
        assert_eq!(&x[..8], &XERIAL_MAGIC);
        assert_eq!(&x[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        let first = i32::from_be_bytes(x[16..20].try_into().unwrap()) as usize;
        let mut one = Vec::new();
        decompress(&x[20..20 + first], usize::MAX, &mut one).unwrap();
        assert_eq!(one.len(), XERIAL_BLOCK_SIZE);
        let mut out = Vec::new();
        decompress(&x, data.len(), &mut out).unwrap();
        assert_eq!(out, data);

        let mut r = Vec::new();
        compress_raw(&data, &mut r).unwrap();
        let mut out = Vec::new();
        decompress(&r, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn xerial_bad_lengths_are_errors() {
        let mut x = XERIAL_MAGIC.to_vec();
        x.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        x.extend_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            decompress(&x, 100, &mut Vec::new()),
            Err(CompressionError::Corrupt { .. })
        ));
        let mut y = x[..16].to_vec();
        y.extend_from_slice(&100i32.to_be_bytes());
        y.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            decompress(&y, 100, &mut Vec::new()),
            Err(CompressionError::Corrupt { .. })
        ));
    }

    #[test]
    fn declared_length_past_limit_is_rejected_before_allocating() {
        // varint 0xFFFFFFFF-ish declared length, no payload.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = decompress(&bomb, 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CompressionError::LimitExceeded { .. }));
    }
}
