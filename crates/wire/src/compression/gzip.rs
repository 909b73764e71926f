//! gzip (codec 1) through `flate2` with its `zlib-rs` backend (zlib in pure Rust; about twice
//! `miniz_oxide`'s encode speed at level 6 on the bench payload: `benches/README.md`, "Codecs").
//!
//! Decoding accepts concatenated gzip members (as `GZIPInputStream` does).

use std::io::Write;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{read_bounded, Compression, CompressionError};

/// The default level: 6, as Java's `GZIPOutputStream` and librdkafka use.
pub const DEFAULT_LEVEL: i32 = 6;

/// Compresses `input` as one gzip member at [`DEFAULT_LEVEL`], appending to `out`.
pub fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    compress_level(input, DEFAULT_LEVEL, out)
}

/// Compresses `input` as one gzip member at `level`, appending to `out`.
///
/// The levels are Kafka's `compression.gzip.level`: 1 (fastest) to 9 (smallest), or -1 for
/// [`DEFAULT_LEVEL`]; any other level is [`CompressionError::UnsupportedLevel`].
///
/// ```
/// use kafkit_wire::compression::gzip;
/// let mut out = Vec::new();
/// gzip::compress_level(b"kafka", 9, &mut out)?;
/// assert!(gzip::compress_level(b"kafka", 0, &mut out).is_err());
/// # Ok::<(), kafkit_wire::compression::CompressionError>(())
/// ```
pub fn compress_level(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let level = match level {
        -1 => DEFAULT_LEVEL.unsigned_abs(),
        1..=9 => level.unsigned_abs(),
        _ => {
            return Err(CompressionError::UnsupportedLevel {
                codec: Compression::Gzip,
                level,
            })
        }
    };
    let mut encoder = GzEncoder::new(out, flate2::Compression::new(level));
    encoder
        .write_all(input)
        .map_err(|e| CompressionError::encode(Compression::Gzip, e))?;
    encoder
        .finish()
        .map_err(|e| CompressionError::encode(Compression::Gzip, e))?;
    Ok(())
}

/// Decompresses gzip `input`, appending at most `limit` bytes to `out`.
pub fn decompress(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    read_bounded(Compression::Gzip, MultiGzDecoder::new(input), limit, out).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_round_trips_and_others_are_refused() {
        let data = b"{\"event\":\"view\",\"path\":\"/a/b\"} ".repeat(300);
        for level in [-1, 1, 5, 6, 9] {
            let mut packed = Vec::new();
            compress_level(&data, level, &mut packed).unwrap();
            let mut out = Vec::new();
            decompress(&packed, data.len(), &mut out).unwrap();
            assert_eq!(out, data, "level {level}");
        }
        for level in [0, -2, 10, i32::MIN] {
            let err = compress_level(b"x", level, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, CompressionError::UnsupportedLevel { level: l, .. } if l == level),
                "{err}"
            );
        }
    }
}
