//! gzip (codec 1) through `flate2`'s pure-Rust backend.
//!
//! Decoding accepts concatenated gzip members (as `GZIPInputStream` does).

use std::io::Write;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{read_bounded, Compression, CompressionError};

/// Compresses `input` as one gzip member at level 6 (the Java and librdkafka default), appending
/// to `out`.
pub fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let mut encoder = GzEncoder::new(out, flate2::Compression::new(6));
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
