//! LZ4 (codec 3) in the LZ4 *frame* format, through `lz4_flex::frame`.
//!
//! Kafka's Java client (`KafkaLZ4BlockOutputStream`) writes frames with independent 64 KiB
//! blocks and no content size; its reader rejects dependent blocks, so this encoder uses
//! independent blocks too. No content checksum is written (the batch CRC covers the bytes).
//!
//! Not supported: the broken header checksum that pre-0.10 Java clients wrote for magic 0
//! messages (KAFKA-3160); such frames are reported as corrupt.

use std::io::Write;

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{read_bounded, Compression, CompressionError};

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

/// Decompresses LZ4 frame `input`, appending at most `limit` bytes to `out`.
pub fn decompress(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    read_bounded(Compression::Lz4, FrameDecoder::new(input), limit, out).map(drop)
}
