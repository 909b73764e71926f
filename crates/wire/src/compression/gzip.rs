//! gzip (codec 1) through `flate2`'s pure-Rust backend.
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

/// Compresses `input` as one gzip member at `level` (clamped to 1-9), appending to `out`.
pub fn compress_level(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let level = u32::try_from(level.clamp(1, 9)).unwrap_or(6);
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
