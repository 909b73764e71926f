//! Zstandard (codec 4) through `ruzstd`.
//!
//! Decoding is streamed frame by frame (Java's `zstd-jni` streams usually omit the content
//! size), bounded by the caller's limit; the frame's window is capped too, so a frame declaring a
//! huge window is rejected before its buffer is reserved. Encoding uses ruzstd's only
//! implemented level, "fastest" (about zstd level 1).

use ruzstd::decoding::StreamingDecoder;
use ruzstd::encoding::{CompressionLevel, FrameCompressor};

use super::{read_bounded, Compression, CompressionError};

/// The largest window a frame may declare: 8 MiB (zstd level 19 uses 8 MiB), or the output
/// limit when that is larger, never more than ruzstd's own default cap.
fn max_window(limit: usize) -> u64 {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    limit.clamp(8 << 20, ruzstd::decoding::DEFAULT_MAX_WINDOW_SIZE)
}

/// Compresses `input` as one zstd frame, appending to `out`.
pub fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let mut compressor = FrameCompressor::new(CompressionLevel::Fastest);
    compressor.set_source(input);
    compressor.set_drain(out);
    compressor.compress();
    Ok(())
}

/// Decompresses zstd `input` (one or more concatenated frames), appending at most `limit` bytes
/// to `out`.
pub fn decompress(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let mut source = input;
    let mut produced = 0usize;
    while !source.is_empty() {
        let before = source.len();
        let decoder = StreamingDecoder::new_with_max_window_size(&mut source, max_window(limit))
            .map_err(|e| CompressionError::corrupt(Compression::Zstd, e))?;
        let room = limit.saturating_sub(produced);
        let n = read_bounded(Compression::Zstd, decoder, room, out).map_err(|e| match e {
            CompressionError::LimitExceeded { .. } => CompressionError::LimitExceeded {
                codec: Compression::Zstd,
                limit,
            },
            other => other,
        })?;
        produced = produced.saturating_add(n);
        if source.len() >= before {
            return Err(CompressionError::corrupt(
                Compression::Zstd,
                "frame made no progress",
            ));
        }
    }
    Ok(())
}
