//! LZ4 (codec 3) in the LZ4 *frame* format, through `lz4_flex::frame`.
//!
//! Kafka's Java client (`KafkaLZ4BlockOutputStream`) writes frames with independent 64 KiB
//! blocks and no content size; its reader rejects dependent blocks, so this encoder uses
//! independent blocks too. No content checksum is written (the batch CRC covers the bytes).
//!
//! Before a frame is decoded its structure is walked: the payload must be one or more whole
//! frames (magic, header, blocks, end mark) and nothing else, at most
//! [`MAX_FRAMES`](super::MAX_FRAMES) of them. `lz4_flex` alone reads input too short for a frame header, or a
//! frame cut before its end mark, as a clean end of stream.
//!
//! Not supported: the broken header checksum that pre-0.10 Java clients wrote for magic 0
//! messages (KAFKA-3160); such frames are reported as corrupt.

use std::io::Write;

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{Compression, CompressionError, Frames};

/// The LZ4 frame magic number (little-endian on the wire).
const FRAME_MAGIC: u32 = 0x184D_2204;

/// The default level of Kafka's `compression.lz4.level`: 9.
pub const DEFAULT_LEVEL: i32 = 9;
/// The lowest `compression.lz4.level`: 1.
pub const MIN_LEVEL: i32 = 1;
/// The highest `compression.lz4.level`: 17.
pub const MAX_LEVEL: i32 = 17;

/// Compresses `input` as one LZ4 frame at `level`, appending to `out`.
///
/// `lz4_flex` has one compressor, LZ4's fast one: **every level of Kafka's range
/// ([`MIN_LEVEL`]..=[`MAX_LEVEL`]) is encoded with it**, the nearest (and only) level this pure-Rust
/// encoder has, as librdkafka documents for its own lz4 levels. The frames are valid at any
/// level; higher levels would only make them smaller. A level outside the range is
/// [`CompressionError::UnsupportedLevel`].
pub fn compress_level(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    if !(MIN_LEVEL..=MAX_LEVEL).contains(&level) {
        return Err(CompressionError::UnsupportedLevel {
            codec: Compression::Lz4,
            level,
        });
    }
    compress(input, out)
}

/// Compresses `input` as one LZ4 frame (independent 64 KiB blocks), appending to `out`.
pub fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let info = FrameInfo::new()
        .block_mode(BlockMode::Independent)
        .block_size(BlockSize::Max64KB);
    let mut encoder = FrameEncoder::with_frame_info(info, out);
    encoder
        .write_all(input)
        .map_err(|e| CompressionError::encode(Compression::Lz4, e))?;
    encoder
        .finish()
        .map_err(|e| CompressionError::encode(Compression::Lz4, e))?;
    Ok(())
}

/// Decompresses LZ4 `input` (one or more whole frames), appending at most `limit` bytes to
/// `out`.
pub fn decompress(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    if input.is_empty() {
        return Err(corrupt("empty payload (no frame)"));
    }
    let mut rest = input;
    let mut frames = Frames::new(Compression::Lz4, limit);
    while !rest.is_empty() {
        frames.start_frame()?;
        let len = frame_len(rest)?;
        let (frame, tail) = rest.split_at(len);
        frames.read(FrameDecoder::new(frame), out)?;
        rest = tail;
    }
    Ok(())
}

fn corrupt(message: &str) -> CompressionError {
    CompressionError::corrupt(Compression::Lz4, message)
}

/// A cursor over the payload for the structure walk.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CompressionError> {
        if n > self.0.len() {
            return Err(corrupt(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32_le(&mut self, what: &str) -> Result<u32, CompressionError> {
        let bytes = self.take(4, what)?;
        let array: [u8; 4] = bytes.try_into().map_err(|_| corrupt(what))?;
        Ok(u32::from_le_bytes(array))
    }

    fn u8(&mut self, what: &str) -> Result<u8, CompressionError> {
        self.take(1, what)?
            .first()
            .copied()
            .ok_or_else(|| corrupt(what))
    }
}

/// The length of the whole LZ4 frame at the start of `input` (magic, descriptor, blocks, end
/// mark, optional content checksum); block contents and checksums are left to the decoder.
fn frame_len(input: &[u8]) -> Result<usize, CompressionError> {
    let mut c = Cursor(input);
    if c.u32_le("truncated frame magic")? != FRAME_MAGIC {
        return Err(corrupt("not an LZ4 frame (bad magic)"));
    }
    let flags = c.u8("truncated frame descriptor")?;
    let _block_descriptor = c.u8("truncated frame descriptor")?;
    if flags >> 6 != 0b01 {
        return Err(corrupt("unsupported LZ4 frame version"));
    }
    let block_checksum = flags & 0x10 != 0;
    let content_checksum = flags & 0x04 != 0;
    let content_size = if flags & 0x08 != 0 { 8 } else { 0 };
    let dict_id = if flags & 0x01 != 0 { 4 } else { 0 };
    c.take(content_size, "truncated frame descriptor")?;
    c.take(dict_id, "truncated frame descriptor")?;
    c.u8("truncated frame descriptor")?; // header checksum, verified by the decoder
    loop {
        let block = c.u32_le("frame cut before its end mark")?;
        if block == 0 {
            break;
        }
        let size = usize::try_from(block & 0x7FFF_FFFF).map_err(|_| corrupt("block size"))?;
        let checksum = if block_checksum { 4 } else { 0 };
        c.take(size.saturating_add(checksum), "truncated block")?;
    }
    if content_checksum {
        c.take(4, "truncated content checksum")?;
    }
    Ok(input.len().saturating_sub(c.0.len()))
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

    fn is_corrupt(input: &[u8]) -> bool {
        matches!(
            decompress(input, 1 << 20, &mut Vec::new()),
            Err(CompressionError::Corrupt { .. })
        )
    }

    #[test]
    fn levels_in_range_encode_and_others_are_refused() {
        for level in [MIN_LEVEL, DEFAULT_LEVEL, MAX_LEVEL] {
            let mut packed = Vec::new();
            compress_level(b"kafka kafka kafka", level, &mut packed).unwrap();
            let mut out = Vec::new();
            decompress(&packed, 100, &mut out).unwrap();
            assert_eq!(out, b"kafka kafka kafka");
        }
        for level in [0, -1, 18] {
            let err = compress_level(b"x", level, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, CompressionError::UnsupportedLevel { level: l, .. } if l == level),
                "{err}"
            );
        }
    }

    #[test]
    fn garbage_and_short_input_are_corrupt() {
        assert!(is_corrupt(b"\x01\x02\x03\x04"));
        assert!(is_corrupt(b"abcd"));
        assert!(is_corrupt(b""));
        assert!(is_corrupt(&FRAME_MAGIC.to_le_bytes()));
        assert!(is_corrupt(&[0xff; 40]));
    }

    #[test]
    fn cut_frames_and_trailing_bytes_are_corrupt() {
        let whole = frame(&b"kafka ".repeat(1000));
        let mut out = Vec::new();
        decompress(&whole, 1 << 20, &mut out).unwrap();
        assert_eq!(out.len(), 6000);
        for cut in [1, 4, 5, whole.len() / 2] {
            assert!(is_corrupt(&whole[..whole.len() - cut]), "cut {cut}");
        }
        let mut trailing = whole.clone();
        trailing.extend_from_slice(b"xyz");
        assert!(is_corrupt(&trailing));
    }

    #[test]
    fn concatenated_frames_decode_and_are_bounded() {
        let mut two = frame(b"ab");
        two.extend(frame(b"cd"));
        let mut out = Vec::new();
        decompress(&two, 100, &mut out).unwrap();
        assert_eq!(out, b"abcd");
        let many = frame(b"").repeat(MAX_FRAMES + 1);
        let err = decompress(&many, 100, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, CompressionError::TooManyFrames { .. }),
            "{err}"
        );
    }
}
