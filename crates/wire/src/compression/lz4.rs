//! LZ4 (codec 3) in the LZ4 *frame* format, through `lz4_flex::frame`.
//!
//! Kafka's Java client (`KafkaLZ4BlockOutputStream`) writes frames with independent 64 KiB
//! blocks and no content size; its reader rejects dependent blocks, so this encoder uses
//! independent blocks too. No content checksum is written (the batch CRC covers the bytes).
//!
//! Frames are decoded here, block by block, each block straight into the caller's output with
//! `lz4_flex`'s block decoder (no intermediate buffer, nothing allocated per frame): the payload
//! must be one or more whole frames (magic, descriptor with its checksum, blocks, end mark,
//! optional content checksum) and nothing else, at most [`MAX_FRAMES`](super::MAX_FRAMES) of
//! them. Independent and linked blocks, stored (uncompressed) blocks, block and content
//! checksums (xxHash32) and a declared content size are checked as the LZ4 frame format says; a
//! dictionary id is refused.
//!
//! Not supported: the broken header checksum that pre-0.10 Java clients wrote for magic 0
//! messages (KAFKA-3160); such frames are reported as corrupt.

use std::io::Write;

use lz4_flex::block::DecompressError;
use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
use twox_hash::XxHash32;

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
    let output = Output {
        start: out.len(),
        limit,
    };
    let mut c = Cursor(input);
    let mut frames = Frames::new(Compression::Lz4, limit);
    while !c.0.is_empty() {
        frames.start_frame()?;
        if let Err(e) = decode_frame(&mut c, output, out) {
            out.truncate(output.start);
            return Err(e);
        }
    }
    Ok(())
}

/// Where this payload's output starts in the caller's vector, and how much of it may come.
#[derive(Clone, Copy)]
struct Output {
    start: usize,
    limit: usize,
}

impl Output {
    /// The bytes the limit still allows after what `out` holds.
    fn room(self, out: &[u8]) -> usize {
        self.limit
            .saturating_sub(out.len().saturating_sub(self.start))
    }

    /// Makes `out` able to take `need` more bytes (`need` within [`room`](Self::room)): the
    /// spare capacity if it is enough, else a reservation of `need` or of what this payload has
    /// decoded so far, whichever is larger, never past the limit. So the vector grows by
    /// doubling (not a reallocation per block) and at most to `limit` bytes past its start.
    fn make_room(self, out: &mut Vec<u8>, need: usize) {
        if need > out.capacity().saturating_sub(out.len()) {
            let decoded = out.len().saturating_sub(self.start).min(self.room(out));
            out.reserve_exact(need.max(decoded));
        }
    }

    fn exceeded(self) -> CompressionError {
        CompressionError::LimitExceeded {
            codec: Compression::Lz4,
            limit: self.limit,
        }
    }
}

/// The lookback window of linked blocks: 64 KiB.
const WINDOW: usize = 64 << 10;

/// Decodes the frame at the start of `c`, appending its content to `out`.
fn decode_frame(
    c: &mut Cursor<'_>,
    output: Output,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    if c.u32_le("truncated frame magic")? != FRAME_MAGIC {
        return Err(corrupt("not an LZ4 frame (bad magic)"));
    }
    let descriptor = c.0;
    let flags = c.u8("truncated frame descriptor")?;
    let block_descriptor = c.u8("truncated frame descriptor")?;
    if flags >> 6 != 0b01 {
        return Err(corrupt("unsupported LZ4 frame version"));
    }
    if flags & 0x02 != 0 || block_descriptor & 0x8F != 0 {
        return Err(corrupt("reserved bits set in the frame descriptor"));
    }
    let linked = flags & 0x20 == 0;
    let block_checksums = flags & 0x10 != 0;
    let content_checksum = flags & 0x04 != 0;
    let content_size = if flags & 0x08 != 0 {
        let bytes = c.take(8, "truncated frame descriptor")?;
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| corrupt("truncated frame descriptor"))?;
        Some(u64::from_le_bytes(array))
    } else {
        None
    };
    if flags & 0x01 != 0 {
        return Err(corrupt("frame with a dictionary id (not supported)"));
    }
    let max_block = match block_descriptor >> 4 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return Err(corrupt("unknown block maximum size")),
    };
    let described = descriptor.get(..descriptor.len().saturating_sub(c.0.len()));
    let checksum = c.u8("truncated frame descriptor")?;
    let expected = described.map(|d| (XxHash32::oneshot(0, d) >> 8) as u8);
    if expected != Some(checksum) {
        return Err(corrupt("frame descriptor checksum mismatch"));
    }
    let frame_start = out.len();
    loop {
        let word = c.u32_le("frame cut before its end mark")?;
        if word == 0 {
            break;
        }
        let stored = word & 0x8000_0000 != 0;
        let len = usize::try_from(word & 0x7FFF_FFFF).map_err(|_| corrupt("block size"))?;
        if len > max_block {
            return Err(corrupt("block larger than the frame's block maximum size"));
        }
        let data = c.take(len, "truncated block")?;
        if block_checksums && c.u32_le("truncated block checksum")? != XxHash32::oneshot(0, data) {
            return Err(corrupt("block checksum mismatch"));
        }
        if stored {
            if len > output.room(out) {
                return Err(output.exceeded());
            }
            output.make_room(out, len);
            out.extend_from_slice(data);
        } else {
            let dict_from = if linked {
                out.len().saturating_sub(WINDOW).max(frame_start)
            } else {
                out.len()
            };
            decode_block(data, dict_from, max_block, output, out)?;
        }
    }
    let content = out.get(frame_start..).unwrap_or_default();
    if content_size.is_some_and(|size| u64::try_from(content.len()).ok() != Some(size)) {
        return Err(corrupt("content size mismatch"));
    }
    if content_checksum && c.u32_le("truncated content checksum")? != XxHash32::oneshot(0, content)
    {
        return Err(corrupt("content checksum mismatch"));
    }
    Ok(())
}

/// Decodes one compressed block onto the end of `out`; `out[dict_from..]` is the lookback of a
/// linked block (empty for an independent one).
///
/// The block is first decoded into the vector's spare capacity (its payload's first blocks
/// usually fit in what the caller reserved), and only when it does not fit into a window of the
/// block's maximum size (within the limit; [`Output::make_room`]). Only the window is zeroed.
fn decode_block(
    data: &[u8],
    dict_from: usize,
    max_block: usize,
    output: Output,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let at = out.len();
    let room = output.room(out);
    let full = max_block.min(room);
    let spare = out.capacity().saturating_sub(at).min(full);
    let mut window = if spare == 0 { full } else { spare };
    loop {
        output.make_room(out, window);
        out.resize(at.saturating_add(window), 0);
        let (head, tail) = out.split_at_mut(at);
        let result = match head.get(dict_from..) {
            Some(dict) if !dict.is_empty() => {
                lz4_flex::block::decompress_into_with_dict(data, tail, dict)
            }
            _ => lz4_flex::block::decompress_into(data, tail),
        };
        match result {
            Ok(n) => {
                out.truncate(at.saturating_add(n));
                return Ok(());
            }
            Err(DecompressError::OutputTooSmall { .. }) if window < full => {
                out.truncate(at);
                window = full;
            }
            Err(DecompressError::OutputTooSmall { .. }) if room < max_block => {
                out.truncate(at);
                return Err(output.exceeded());
            }
            Err(e) => {
                out.truncate(at);
                return Err(corrupt(&e.to_string()));
            }
        }
    }
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

    /// A frame written by `lz4_flex`'s own encoder with the given settings.
    fn frame_with(data: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Bytes that compress a little (repeats with varying spans) and, with `noise`, some
    /// that do not (stored blocks).
    fn sample(len: usize, noise: bool) -> Vec<u8> {
        let mut x = 0x9E37_79B9_u32;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if noise || (i / 97) % 3 == 0 {
                    x as u8
                } else {
                    (i % 251) as u8
                }
            })
            .collect()
    }

    #[test]
    fn every_frame_setting_decodes_as_lz4_flex_reads_it() {
        use std::io::Read;
        let sizes = [
            BlockSize::Max64KB,
            BlockSize::Max256KB,
            BlockSize::Max1MB,
            BlockSize::Max4MB,
        ];
        for len in [0, 1, 100, 65_535, 65_536, 65_537, 300_000] {
            for noise in [false, true] {
                let data = sample(len, noise);
                for (i, size) in sizes.iter().enumerate() {
                    for mode in [BlockMode::Independent, BlockMode::Linked] {
                        let info = FrameInfo::new()
                            .block_size(*size)
                            .block_mode(mode)
                            .block_checksums(i % 2 == 0)
                            .content_checksum(i % 2 == 1)
                            .content_size((i >= 2).then_some(len as u64));
                        let packed = frame_with(&data, info);
                        let mut oracle = Vec::new();
                        lz4_flex::frame::FrameDecoder::new(&packed[..])
                            .read_to_end(&mut oracle)
                            .unwrap();
                        // Output appended after what the vector held, with spare capacity or none.
                        for reserve in [0, 7, 1 << 20] {
                            let mut out = Vec::with_capacity(reserve);
                            out.extend_from_slice(b"head");
                            decompress(&packed, len, &mut out).unwrap();
                            assert_eq!(&out[..4], b"head");
                            assert!(
                                out[4..] == oracle[..] && oracle == data,
                                "len {len} {i} {mode:?}"
                            );
                            assert!(
                                out.capacity() <= reserve.max(4) + len + 4,
                                "capacity {}",
                                out.capacity()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_limit_holds_exactly_across_blocks_and_frames() {
        for noise in [false, true] {
            let data = sample(200_000, noise);
            let mut packed = frame(&data);
            packed.extend(frame(&data[..1_000]));
            let mut out = Vec::new();
            decompress(&packed, 201_000, &mut out).unwrap();
            assert_eq!(out.len(), 201_000);
            for limit in [0, 1, 65_536, 199_999, 200_999] {
                let mut out = b"kept".to_vec();
                let err = decompress(&packed, limit, &mut out).unwrap_err();
                assert!(
                    matches!(err, CompressionError::LimitExceeded { limit: l, .. } if l == limit),
                    "{limit}: {err}"
                );
                assert_eq!(out, b"kept");
                assert!(
                    out.capacity() <= 4 + limit.max(4) + 65_536,
                    "{limit}: {}",
                    out.capacity()
                );
            }
        }
    }

    #[test]
    fn damaged_descriptors_blocks_and_checksums_are_corrupt() {
        let data = sample(150_000, false);
        let info = FrameInfo::new()
            .block_mode(BlockMode::Independent)
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(150_000));
        let whole = frame_with(&data, info);
        let mut out = Vec::new();
        decompress(&whole, 1 << 20, &mut out).unwrap();
        assert_eq!(out, data);
        // magic(4) flags(1) bd(1) content size(8) header checksum(1), then the first block.
        let damage = |at: usize, bits: u8| {
            let mut bad = whole.clone();
            bad[at] ^= bits;
            bad
        };
        let cases = [
            (damage(4, 0x02), "reserved"),        // reserved flag bit
            (damage(5, 0x01), "reserved"),        // reserved block descriptor bit
            (damage(5, 0x70), "maximum size"),    // block size code 0
            (damage(4, 0x01), "dictionary"),      // dictionary id claimed
            (damage(6, 0x01), "checksum"),        // content size changed: header checksum
            (damage(14, 0xFF), "checksum"),       // header checksum itself
            (damage(20, 0x10), "block checksum"), // inside the first block's data
            (damage(whole.len() - 1, 0x01), "content checksum"),
        ];
        for (bad, what) in cases {
            let err = decompress(&bad, 1 << 20, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(&err, CompressionError::Corrupt { message, .. } if message.contains(what)),
                "{what}: {err}"
            );
        }
        // A declared content size that does not match (header checksum recomputed).
        let mut wrong_size = whole.clone();
        wrong_size[6] ^= 0x01;
        wrong_size[14] = (XxHash32::oneshot(0, &wrong_size[4..14]) >> 8) as u8;
        let err = decompress(&wrong_size, 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("content size"), "{err}");
        // Without checksums, a damaged block is still refused by the block decoder or the
        // frame's structure, never read as something else.
        let plain = frame(&data);
        for at in [11, 12, 40, plain.len() / 2] {
            let mut bad = plain.clone();
            bad[at] ^= 0xA5;
            let mut out = Vec::new();
            match decompress(&bad, 1 << 20, &mut out) {
                Err(CompressionError::Corrupt { .. }) => assert!(out.is_empty()),
                Err(other) => panic!("{at}: {other}"),
                Ok(()) => assert_ne!(out, data, "{at}: damage not seen"),
            }
        }
    }

    /// A frame built by hand: the descriptor (with its checksum) for independent 64 KiB
    /// blocks and no checksums, then `blocks` (size word, data), then the end mark.
    fn frame_of_blocks(blocks: &[(u32, &[u8])]) -> Vec<u8> {
        let mut f = FRAME_MAGIC.to_le_bytes().to_vec();
        let descriptor = [0x60, 0x40];
        f.extend_from_slice(&descriptor);
        f.push((XxHash32::oneshot(0, &descriptor) >> 8) as u8);
        for (word, data) in blocks {
            f.extend_from_slice(&word.to_le_bytes());
            f.extend_from_slice(data);
        }
        f.extend_from_slice(&[0; 4]);
        f
    }

    /// A compressed block that decodes to nothing is a block like any other: the frame goes
    /// on after it (`lz4_flex`'s own frame reader stops there, reading it as the end of the
    /// stream, and drops the rest: found by the `lz4_frames` fuzz target).
    #[test]
    fn a_block_that_decodes_to_nothing_does_not_end_the_frame() {
        let f = frame_of_blocks(&[
            (2 | 0x8000_0000, b"ab"),
            (1, &[0]),
            (2 | 0x8000_0000, b"cd"),
        ]);
        let mut out = Vec::new();
        decompress(&f, 100, &mut out).unwrap();
        assert_eq!(out, b"abcd");
    }
}
