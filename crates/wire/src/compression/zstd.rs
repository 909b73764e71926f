//! Zstandard (codec 4) through `ruzstd`.
//!
//! Decoding is streamed frame by frame (Java's `zstd-jni` streams usually omit the content
//! size), bounded by the caller's limit; the frame's window is capped too, so a frame declaring a
//! huge window is rejected before its buffer is reserved. Skippable frames (magic
//! `0x184D2A50..=0x184D2A5F`, which the format allows anywhere) are skipped; a payload may hold
//! at most [`MAX_FRAMES`](super::MAX_FRAMES) frames.
//!
//! Encoding goes through `structured-zstd` (pure Rust), at zstd's own level numbering: every
//! level of Kafka's `compression.zstd.level` range, [`MIN_LEVEL`]..=[`MAX_LEVEL`], default
//! [`DEFAULT_LEVEL`]; level 0 means the default, as in zstd. It was picked over ruzstd's encoder
//! (one level, about zstd's 1) by measurement: see `benches/README.md`, "Codecs".

use ruzstd::decoding::StreamingDecoder;
use structured_zstd::encoding::{CompressionLevel, FrameCompressor};

use super::{Compression, CompressionError, Frames};

/// The magic of a skippable frame, low four bits free.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;

/// The largest window a frame may declare: 8 MiB (zstd level 19 uses 8 MiB), or the output
/// limit when that is larger, never more than ruzstd's own default cap.
fn max_window(limit: usize) -> u64 {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    limit.clamp(8 << 20, ruzstd::decoding::DEFAULT_MAX_WINDOW_SIZE)
}

/// The default level: 3, as zstd, the Java client (`compression.zstd.level`) and librdkafka use.
pub const DEFAULT_LEVEL: i32 = 3;
/// The lowest level (the fastest, least compression): -131072, as in Kafka and zstd.
pub const MIN_LEVEL: i32 = -131_072;
/// The highest level: 22, as in Kafka and zstd.
pub const MAX_LEVEL: i32 = 22;

/// Compresses `input` as one zstd frame at [`DEFAULT_LEVEL`], appending to `out`.
pub fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    compress_level(input, DEFAULT_LEVEL, out)
}

/// Compresses `input` as one zstd frame at `level` ([`MIN_LEVEL`]..=[`MAX_LEVEL`]; 0 is
/// [`DEFAULT_LEVEL`]), appending to `out`; any other level is
/// [`CompressionError::UnsupportedLevel`].
///
/// ```
/// use kafkit_wire::compression::zstd;
/// let mut out = Vec::new();
/// zstd::compress_level(&b"kafka ".repeat(100), 19, &mut out)?;
/// assert!(zstd::compress_level(b"x", 23, &mut out).is_err());
/// # Ok::<(), kafkit_wire::compression::CompressionError>(())
/// ```
pub fn compress_level(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    if !(MIN_LEVEL..=MAX_LEVEL).contains(&level) {
        return Err(CompressionError::UnsupportedLevel {
            codec: Compression::Zstd,
            level,
        });
    }
    let level = if level == 0 { DEFAULT_LEVEL } else { level };
    let mut compressor: FrameCompressor = FrameCompressor::new(CompressionLevel::from_level(level));
    // The encoder replaces what its output holds: append through a second buffer only when
    // `out` has contents to keep (the batch builder always passes an empty one).
    let kept = out.len();
    let mut frame = Vec::new();
    let target = if kept == 0 { &mut *out } else { &mut frame };
    // structured-zstd documents a panic on an internal encoder error: a library must not take
    // the application down for it, so it becomes a typed error for this batch.
    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compressor.compress_independent_frame_into(input, target)
    }));
    if encoded.is_err() {
        out.truncate(kept);
        return Err(CompressionError::encode(
            Compression::Zstd,
            "the zstd encoder failed (panicked); the batch was not compressed",
        ));
    }
    if kept != 0 {
        out.extend_from_slice(&frame);
    }
    Ok(())
}

fn corrupt(message: &str) -> CompressionError {
    CompressionError::corrupt(Compression::Zstd, message)
}

/// If `source` starts with a skippable frame, the bytes after it (`Ok(None)` otherwise).
fn skip_skippable(source: &[u8]) -> Result<Option<&[u8]>, CompressionError> {
    let Some(magic) = source.first_chunk::<4>() else {
        return Ok(None);
    };
    if u32::from_le_bytes(*magic) & SKIPPABLE_MASK != SKIPPABLE_MAGIC {
        return Ok(None);
    }
    let size = source
        .get(4..8)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| corrupt("truncated skippable frame header"))?;
    let end = usize::try_from(size)
        .ok()
        .and_then(|size| size.checked_add(8))
        .ok_or_else(|| corrupt("truncated skippable frame"))?;
    source
        .get(end..)
        .map(Some)
        .ok_or_else(|| corrupt("truncated skippable frame"))
}

/// Decompresses zstd `input` (one or more concatenated frames, skippable ones skipped),
/// appending at most `limit` bytes to `out`.
pub fn decompress(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let mut source = input;
    let mut frames = Frames::new(Compression::Zstd, limit);
    while !source.is_empty() {
        frames.start_frame()?;
        if let Some(rest) = skip_skippable(source)? {
            source = rest;
            continue;
        }
        let before = source.len();
        let decoder = StreamingDecoder::new_with_max_window_size(&mut source, max_window(limit))
            .map_err(|e| CompressionError::corrupt(Compression::Zstd, e))?;
        frames.read(decoder, out)?;
        if source.len() >= before {
            return Err(corrupt("frame made no progress"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::MAX_FRAMES;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(data, &mut out).unwrap();
        out
    }

    fn skippable(nibble: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = (SKIPPABLE_MAGIC | u32::from(nibble)).to_le_bytes().to_vec();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn every_level_round_trips_and_out_of_range_is_refused() {
        let data = b"{\"event\":\"click\",\"user\":\"u-1\"} ".repeat(500);
        let mut sizes = Vec::new();
        for level in [MIN_LEVEL, -5, -1, 0, 1, 3, 9, 19, MAX_LEVEL] {
            let mut packed = Vec::new();
            compress_level(&data, level, &mut packed).unwrap();
            let mut out = Vec::new();
            decompress(&packed, data.len(), &mut out).unwrap();
            assert_eq!(out, data, "level {level}");
            sizes.push(packed.len());
        }
        // Higher levels compress at least as well as the fastest one on repetitive text.
        assert!(sizes.last() <= sizes.first(), "{sizes:?}");
        for level in [MIN_LEVEL - 1, MAX_LEVEL + 1, i32::MIN, i32::MAX] {
            let err = compress_level(b"x", level, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, CompressionError::UnsupportedLevel { level: l, .. } if l == level),
                "{err}"
            );
        }
    }

    #[test]
    fn skippable_frames_are_skipped_anywhere() {
        let mut input = skippable(0, b"before");
        input.extend(frame(b"hello "));
        input.extend(skippable(0xf, b""));
        input.extend(frame(b"world"));
        input.extend(skippable(7, &[0xAB; 300]));
        let mut out = Vec::new();
        decompress(&input, 1 << 20, &mut out).unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn truncated_skippable_frame_is_corrupt() {
        let mut input = frame(b"x");
        let mut skip = skippable(1, b"12345678");
        skip.truncate(12);
        input.extend(skip);
        let err = decompress(&input, 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt { .. }), "{err}");
        let err = decompress(&[0x50, 0x2a, 0x4d, 0x18, 1], 10, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn frame_count_is_bounded() {
        let empty = frame(b"");
        let ok = empty.repeat(MAX_FRAMES);
        decompress(&ok, 1 << 20, &mut Vec::new()).unwrap();
        let many = empty.repeat(MAX_FRAMES + 1);
        let err = decompress(&many, 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(
                err,
                CompressionError::TooManyFrames {
                    limit: MAX_FRAMES,
                    ..
                }
            ),
            "{err}"
        );
        // Skippable frames count too.
        let skips = skippable(0, b"").repeat(MAX_FRAMES + 1);
        let err = decompress(&skips, 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, CompressionError::TooManyFrames { .. }),
            "{err}"
        );
    }
}
