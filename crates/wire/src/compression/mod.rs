//! Kafka compression codecs (attribute bits 0-2 of a record batch): gzip, snappy (raw and
//! xerial framing), lz4 (frame format) and zstd, all in pure Rust.
//!
//! Every decompressor is bounded: [`decompress`] takes a byte limit and returns
//! [`CompressionError::LimitExceeded`] as soon as the output would grow past it, so a small
//! malicious input (a "zip bomb") can never make the client allocate more than the limit.
//! Declared sizes inside compressed streams are never trusted to pre-allocate beyond the limit.
//!
//! ```
//! use kafkit_wire::compression::{compress, decompress, Compression};
//!
//! let text = b"kafka kafka kafka kafka kafka".repeat(10);
//! let mut packed = Vec::new();
//! compress(Compression::Zstd, &text, &mut packed)?;
//! let mut unpacked = Vec::new();
//! decompress(Compression::Zstd, &packed, 1 << 20, &mut unpacked)?;
//! assert_eq!(unpacked, text);
//! # Ok::<(), kafkit_wire::compression::CompressionError>(())
//! ```

// Wire input must never make decoding panic: no unchecked indexing or arithmetic.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

pub mod gzip;
pub mod lz4;
pub mod snappy;
pub mod zstd;

use std::fmt;
use std::io::Read;

/// The most frames (zstd or lz4, skippable ones included) one compressed payload may hold.
///
/// Every Kafka producer writes one frame per batch; the bound keeps a payload of many tiny
/// frames (a million empty zstd frames fit in 9 MB) from costing CPU in proportion.
pub const MAX_FRAMES: usize = 1024;

/// A Kafka compression codec, as stored in bits 0-2 of the batch (or legacy message) attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// Snappy (id 2); decoded raw or xerial-framed, encoded xerial-framed.
    Snappy,
    /// LZ4 frame format (id 3).
    Lz4,
    /// Zstandard (id 4, brokers 2.1+).
    Zstd,
}

impl Compression {
    /// All codecs, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec for a Kafka codec id (0-4), or `None` for an unknown id.
    ///
    /// ```
    /// use kafkit_wire::compression::Compression;
    /// assert_eq!(Compression::from_id(3), Some(Compression::Lz4));
    /// assert_eq!(Compression::from_id(5), None);
    /// ```
    pub fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The Kafka codec id (0-4).
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec's name as Kafka's `compression.type` config spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = UnknownCompression;

    /// Reads a `compression.type` value: `none`, `gzip`, `snappy`, `lz4` or `zstd`, surrounding
    /// white space ignored, lower case only (as the Java client reads it).
    ///
    /// ```
    /// use kafkit_wire::compression::Compression;
    /// assert_eq!(" zstd".parse::<Compression>(), Ok(Compression::Zstd));
    /// assert!("GZIP".parse::<Compression>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Compression, UnknownCompression> {
        let trimmed = s.trim();
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == trimmed)
            .ok_or_else(|| UnknownCompression(s.to_owned()))
    }
}

/// A `compression.type` value that names no codec (the value as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression codec `{0}`: must be one of none, gzip, snappy, lz4, zstd")]
pub struct UnknownCompression(pub String);

/// What went wrong compressing or decompressing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// The decompressed output would exceed the caller's limit.
    #[error("{codec} output exceeds the limit of {limit} bytes")]
    LimitExceeded {
        /// The codec being decoded.
        codec: Compression,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The compressed input is malformed.
    #[error("corrupt {codec} data: {message}")]
    Corrupt {
        /// The codec being decoded.
        codec: Compression,
        /// What the decoder reported.
        message: String,
    },
    /// The payload holds more frames (zstd, lz4) than [`MAX_FRAMES`]: real producers write
    /// one frame per batch, and walking a million empty frames costs CPU for nothing.
    #[error("{codec} payload holds more than {limit} frames")]
    TooManyFrames {
        /// The codec being decoded.
        codec: Compression,
        /// The limit, in frames.
        limit: usize,
    },
    /// The level is not one this codec's encoder has (Kafka's `compression.<codec>.level`
    /// ranges: gzip 1-9 or -1, lz4 1-17, zstd -131072-22).
    #[error("{codec} has no compression level {level}")]
    UnsupportedLevel {
        /// The codec being encoded.
        codec: Compression,
        /// The level asked for.
        level: i32,
    },
    /// The encoder failed.
    #[error("{codec} compression failed: {message}")]
    Encode {
        /// The codec being encoded.
        codec: Compression,
        /// What the encoder reported.
        message: String,
    },
}

impl CompressionError {
    pub(crate) fn corrupt(codec: Compression, message: impl fmt::Display) -> Self {
        CompressionError::Corrupt {
            codec,
            message: message.to_string(),
        }
    }

    pub(crate) fn encode(codec: Compression, message: impl fmt::Display) -> Self {
        CompressionError::Encode {
            codec,
            message: message.to_string(),
        }
    }
}

/// Compresses `input` with `codec`, appending the result to `out`.
///
/// Snappy is written in the xerial framing the Java client produces (see [`snappy`]); lz4 as an
/// LZ4 frame with independent 64 KiB blocks; zstd at level 3; gzip at level 6 (the Java
/// client's defaults).
/// [`Compression::None`] copies the input.
///
/// ```
/// use kafkit_wire::compression::{compress, Compression};
/// let mut out = Vec::new();
/// compress(Compression::Gzip, b"hello", &mut out)?;
/// assert_eq!(&out[..2], &[0x1f, 0x8b]);
/// # Ok::<(), kafkit_wire::compression::CompressionError>(())
/// ```
pub fn compress(
    codec: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    compress_with_level(codec, None, input, out)
}

/// Like [`compress`], with a codec-specific level (Kafka's `compression.<codec>.level`).
///
/// The levels are Kafka's (KIP-390), `None` being the codec's default: gzip 1-9 or -1
/// ([`gzip::compress_level`]), lz4 1-17 ([`lz4::compress_level`]: all encoded with LZ4's fast
/// compressor), zstd -131072-22 ([`zstd::compress_level`]). A level outside its codec's range
/// is [`CompressionError::UnsupportedLevel`]. Snappy and none have no levels and ignore it.
///
/// ```
/// use kafkit_wire::compression::{compress_with_level, Compression, CompressionError};
/// let mut fast = Vec::new();
/// compress_with_level(Compression::Gzip, Some(1), &[7u8; 4096], &mut fast)?;
/// assert!(fast.len() < 100);
/// let err = compress_with_level(Compression::Zstd, Some(23), b"x", &mut fast).unwrap_err();
/// assert!(matches!(err, CompressionError::UnsupportedLevel { level: 23, .. }));
/// # Ok::<(), CompressionError>(())
/// ```
pub fn compress_with_level(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => gzip::compress_level(input, level.unwrap_or(gzip::DEFAULT_LEVEL), out),
        Compression::Snappy => snappy::compress_xerial(input, out),
        Compression::Lz4 => lz4::compress_level(input, level.unwrap_or(lz4::DEFAULT_LEVEL), out),
        Compression::Zstd => zstd::compress_level(input, level.unwrap_or(zstd::DEFAULT_LEVEL), out),
    }
}

/// Decompresses `input` with `codec`, appending at most `limit` bytes to `out`.
///
/// Output beyond `limit` is [`CompressionError::LimitExceeded`] (and `out` is restored to its
/// original length). Snappy input may be raw or xerial-framed.
///
/// ```
/// use kafkit_wire::compression::{compress, decompress, Compression, CompressionError};
/// let mut packed = Vec::new();
/// compress(Compression::Lz4, &[0u8; 10_000], &mut packed)?;
/// let mut out = Vec::new();
/// let err = decompress(Compression::Lz4, &packed, 1_000, &mut out).unwrap_err();
/// assert!(matches!(err, CompressionError::LimitExceeded { limit: 1_000, .. }));
/// # Ok::<(), CompressionError>(())
/// ```
pub fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let start = out.len();
    let result = match codec {
        Compression::None => {
            if input.len() > limit {
                Err(CompressionError::LimitExceeded { codec, limit })
            } else {
                out.extend_from_slice(input);
                Ok(())
            }
        }
        Compression::Gzip => gzip::decompress(input, limit, out),
        Compression::Snappy => snappy::decompress(input, limit, out),
        Compression::Lz4 => lz4::decompress(input, limit, out),
        Compression::Zstd => zstd::decompress(input, limit, out),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Decoding a payload of several frames (zstd, lz4): counts them against [`MAX_FRAMES`] and
/// shares the output limit between them.
pub(crate) struct Frames {
    codec: Compression,
    limit: usize,
    produced: usize,
    count: usize,
}

impl Frames {
    pub(crate) fn new(codec: Compression, limit: usize) -> Self {
        Frames {
            codec,
            limit,
            produced: 0,
            count: 0,
        }
    }

    /// Counts one more frame (skippable ones too).
    pub(crate) fn start_frame(&mut self) -> Result<(), CompressionError> {
        self.count = self.count.saturating_add(1);
        if self.count > MAX_FRAMES {
            return Err(CompressionError::TooManyFrames {
                codec: self.codec,
                limit: MAX_FRAMES,
            });
        }
        Ok(())
    }

    /// Reads one frame's output into `out`, within what the limit leaves.
    pub(crate) fn read<R: Read>(
        &mut self,
        reader: R,
        out: &mut Vec<u8>,
    ) -> Result<(), CompressionError> {
        let room = self.limit.saturating_sub(self.produced);
        let n = read_bounded(self.codec, reader, room, out).map_err(|e| match e {
            CompressionError::LimitExceeded { codec, .. } => CompressionError::LimitExceeded {
                codec,
                limit: self.limit,
            },
            other => other,
        })?;
        self.produced = self.produced.saturating_add(n);
        Ok(())
    }
}

/// The first step of [`read_bounded`]'s output window.
const FIRST_WINDOW: usize = 32 << 10;

/// Reads `reader` to its end into `out`, failing once more than `limit` bytes came out.
///
/// Never reads more than `limit + 1` bytes, and grows `out` by exact reservations (doubling
/// what was decoded, never past `limit + 1`), so its capacity stays at most `limit + 1` bytes
/// above where it started (plus what the caller reserved), whatever the stream claims. The
/// freshly reserved window is zeroed before the decoder writes into it.
pub(crate) fn read_bounded<R: Read>(
    codec: Compression,
    mut reader: R,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<usize, CompressionError> {
    let start = out.len();
    let max = limit.saturating_add(1);
    let mut filled = 0usize;
    loop {
        let window = out.len().saturating_sub(start);
        if filled == window {
            if window >= max {
                break;
            }
            let room = out.capacity().saturating_sub(out.len());
            let grow = if room > 0 {
                room.min(max.saturating_sub(window))
            } else {
                let grow = window.max(FIRST_WINDOW).min(max.saturating_sub(window));
                out.reserve_exact(grow);
                grow
            };
            out.resize(out.len().saturating_add(grow), 0);
        }
        let at = start.saturating_add(filled);
        let Some(buf) = out.get_mut(at..) else {
            break;
        };
        match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => filled = filled.saturating_add(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.truncate(start);
                return Err(CompressionError::corrupt(codec, e));
            }
        }
    }
    out.truncate(start.saturating_add(filled));
    if filled > limit {
        out.truncate(start);
        return Err(CompressionError::LimitExceeded { codec, limit });
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..5000u32 {
            v.extend_from_slice(
                format!("{{\"id\":{i},\"v\":{}}}", i.wrapping_mul(2654435761)).as_bytes(),
            );
        }
        v
    }

    #[test]
    fn ids_round_trip() {
        for c in Compression::ALL {
            assert_eq!(Compression::from_id(c.id()), Some(c));
        }
        assert_eq!(Compression::from_id(7), None);
    }

    #[test]
    fn every_codec_round_trips_and_is_bounded() {
        let data = sample();
        for c in Compression::ALL {
            let mut packed = vec![0xAA];
            compress(c, &data, &mut packed).unwrap();
            let mut out = vec![0x55];
            decompress(c, &packed[1..], data.len(), &mut out).unwrap();
            assert_eq!(&out[1..], &data[..], "{c}");
            let mut out = vec![0x55];
            let err = decompress(c, &packed[1..], data.len() - 1, &mut out).unwrap_err();
            assert!(
                matches!(err, CompressionError::LimitExceeded { .. }),
                "{c}: {err}"
            );
            assert_eq!(out, vec![0x55]);
        }
    }

    #[test]
    fn empty_input_round_trips() {
        for c in Compression::ALL {
            let mut packed = Vec::new();
            compress(c, b"", &mut packed).unwrap();
            let mut out = Vec::new();
            decompress(c, &packed, 0, &mut out).unwrap();
            assert!(out.is_empty(), "{c}");
        }
    }

    #[test]
    fn garbage_is_corrupt_not_panic() {
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            for junk in [&b"\x00\x01\x02\x03garbage!"[..], &[0xff; 40][..], &[][..]] {
                let mut out = Vec::new();
                let _ = decompress(c, junk, 1 << 20, &mut out);
            }
        }
    }
}
