//! Decoding the `records` field of a Fetch partition: [`BatchReader`] iterates its batches
//! (v2 and legacy), lazily ([`BatchReader::next_streaming`]: records decoded one at a time) or
//! whole ([`BatchReader::next_batch`]); [`decode_batch`] decodes exactly one; [`DecodeLimits`]
//! bounds the memory any of them may use.
//!
//! Brokers fill a fetch response up to a byte limit and commonly cut its **last** batch short;
//! such a partial batch ends iteration cleanly ([`BatchReader::next_batch`] returns `Ok(None)`
//! and [`BatchReader::truncated_bytes`] says how many bytes were skipped). A batch length that
//! runs past the end of the buffer looks exactly like such a cut, so it is treated as one.
//! Anything else malformed is a [`RecordError`], after which the reader yields nothing more.
//!
//! The CRC of a batch is verified before any field past it is parsed (unless
//! [`DecodeLimits::check_crc`] is off), counts are bounded by the
//! bytes that remain before anything is reserved, decompression stops at
//! [`DecodeLimits::max_decompressed_size`], and what is materialised is charged by its
//! in-memory cost against [`DecodeLimits::max_decoded_size`] (a 2-byte header on the wire is a
//! 64-byte [`Header`](super::Header) in memory).

use bytes::Bytes;

use super::batch::{RecordBatch, BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2};
use super::error::RecordError;
use super::legacy;
use super::streaming::{self, StreamingBatch};

/// The smallest encoded v2 record: a length and six one-byte fields.
pub const MIN_RECORD_LEN: usize = 7;
/// The smallest encoded header: two one-byte lengths.
pub const MIN_HEADER_LEN: usize = 2;

/// Bounds on what decoding may allocate, and whether batch CRCs are verified.
///
/// ```
/// use kafkit_wire::record::DecodeLimits;
/// let limits = DecodeLimits::with_max_decompressed_size(1 << 20).with_max_decoded_size(4 << 20);
/// assert_eq!(limits.max_decoded_size, 4 << 20);
/// assert!(limits.check_crc);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// Largest decompressed records section accepted per batch (or legacy wrapper), in bytes.
    /// Default: 64 MiB.
    pub max_decompressed_size: usize,
    /// Largest in-memory cost of what is materialised at once, in bytes: one record (its
    /// struct and header slots, [`Record::memory_size`](super::Record::memory_size)) when
    /// streaming, a whole batch's records with [`BatchReader::next_batch`] and
    /// [`decode_batch`]. Keys and values are slices of the input or of the one decompressed
    /// buffer and are not counted again. Over it: [`RecordError::DecodedTooLarge`].
    /// Default: 64 MiB.
    pub max_decoded_size: usize,
    /// Whether each batch's stored CRC (CRC32C for v2 batches, CRC32 for magic 0/1 messages)
    /// is compared with its bytes before they are parsed ([`RecordError::BadCrc`] when they
    /// differ). Off (the consumer's `check.crcs=false`), corrupted bytes are parsed as they
    /// are: they may decode as different records or fail later with another typed error; the
    /// other limits still bound what is allocated. Default: `true`.
    pub check_crc: bool,
}

impl DecodeLimits {
    /// The default decompression limit: 64 MiB per batch.
    pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 << 20;
    /// The default decoded-memory budget: 64 MiB (about 580,000 minimal records in one
    /// materialised batch; Kafka's producers write batches of `batch.size`, 16 KiB by default).
    pub const DEFAULT_MAX_DECODED_SIZE: usize = 64 << 20;

    /// Limits with the given per-batch decompressed size (and the default decoded budget).
    pub fn with_max_decompressed_size(max_decompressed_size: usize) -> Self {
        DecodeLimits {
            max_decompressed_size,
            max_decoded_size: Self::DEFAULT_MAX_DECODED_SIZE,
            check_crc: true,
        }
    }

    /// The same limits with the given decoded-memory budget.
    pub fn with_max_decoded_size(mut self, max_decoded_size: usize) -> Self {
        self.max_decoded_size = max_decoded_size;
        self
    }

    /// The same limits with the CRC check on (`true`, the default) or off (`false`: skips
    /// computing the checksum of every batch, as Java's consumer with `check.crcs=false`).
    ///
    /// ```
    /// use kafkit_wire::record::DecodeLimits;
    /// let limits = DecodeLimits::default().with_crc_check(false);
    /// assert!(!limits.check_crc);
    /// ```
    pub fn with_crc_check(mut self, check_crc: bool) -> Self {
        self.check_crc = check_crc;
        self
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::with_max_decompressed_size(Self::DEFAULT_MAX_DECOMPRESSED_SIZE)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Truncated(usize),
    Failed,
}

/// An iterator over the batches of a fetched `records` buffer.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use kafkit_wire::compression::Compression;
/// use kafkit_wire::record::{BatchBuilder, BatchOptions, BatchReader, RecordRef};
///
/// // Two batches, the second cut short as a broker would.
/// let mut buf = BytesMut::new();
/// let mut scratch = Vec::new();
/// for base in [0, 1] {
///     let mut b = BatchBuilder::new(&mut buf, base);
///     b.append(&RecordRef::new(1_700_000_000_000, Some(b"k"), Some(b"hello")))?;
///     b.finish(&BatchOptions::default(), &mut scratch)?;
/// }
/// let cut = buf.len() - 5;
/// let fetched = buf.freeze().slice(..cut);
///
/// let mut reader = BatchReader::new(fetched);
/// let batch = reader.next_batch()?.expect("one whole batch");
/// assert_eq!(batch.records()[0].value.as_deref(), Some(&b"hello"[..]));
/// assert!(reader.next_batch()?.is_none());
/// assert!(reader.is_truncated());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchReader {
    buf: Bytes,
    pos: usize,
    limits: DecodeLimits,
    state: State,
}

impl BatchReader {
    /// A reader over `records` with the default [`DecodeLimits`].
    pub fn new(records: Bytes) -> Self {
        Self::with_limits(records, DecodeLimits::default())
    }

    /// A reader over `records` with the given limits.
    pub fn with_limits(records: Bytes, limits: DecodeLimits) -> Self {
        BatchReader {
            buf: records,
            pos: 0,
            limits,
            state: State::Reading,
        }
    }

    /// The next batch, decoded whole (its records' memory bounded by
    /// [`DecodeLimits::max_decoded_size`]), `Ok(None)` at the end (clean or truncated), or the
    /// error that stops iteration. After an error every call returns `Ok(None)`.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, RecordError> {
        let Some(batch) = self.next_streaming()? else {
            return Ok(None);
        };
        match batch.collect(&self.limits) {
            Ok(batch) => Ok(Some(batch)),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// The next batch with its records still to decode, one at a time ([`StreamingBatch`]):
    /// only the decompressed records section (at most
    /// [`DecodeLimits::max_decompressed_size`]) and the record being handed out are in
    /// memory. `Ok(None)` at the end (clean or truncated); an error in the batch's framing,
    /// CRC or compression stops iteration. An error met while iterating a batch's records ends
    /// that batch only: the next call goes on with the following batch.
    pub fn next_streaming(&mut self) -> Result<Option<StreamingBatch>, RecordError> {
        if self.state != State::Reading {
            return Ok(None);
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        let size = match batch_extent(rest) {
            Extent::Partial => {
                self.state = State::Truncated(rest.len());
                return Ok(None);
            }
            Extent::Invalid(e) => {
                self.state = State::Failed;
                return Err(e);
            }
            Extent::Whole(size) => size,
        };
        let end = self.pos.saturating_add(size);
        let bytes = self.buf.slice(self.pos..end);
        self.pos = end;
        match open_complete(bytes, &self.limits) {
            Ok(batch) => Ok(Some(batch)),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// Whether iteration ended on a partial final batch.
    pub fn is_truncated(&self) -> bool {
        matches!(self.state, State::Truncated(_))
    }

    /// How many bytes the partial final batch had (0 if there was none).
    pub fn truncated_bytes(&self) -> usize {
        match self.state {
            State::Truncated(n) => n,
            _ => 0,
        }
    }

    /// Bytes of the buffer consumed by whole batches so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for BatchReader {
    type Item = Result<RecordBatch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

impl std::iter::FusedIterator for BatchReader {}

enum Extent {
    Whole(usize),
    Partial,
    Invalid(RecordError),
}

fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    let slice: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(i64::from_be_bytes(slice))
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let slice: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i32::from_be_bytes(slice))
}

/// The size of the batch (or legacy message) at the start of `rest`, if all of it is there.
fn batch_extent(rest: &[u8]) -> Extent {
    let (Some(base_offset), Some(length)) = (read_i64(rest, 0), read_i32(rest, 8)) else {
        return Extent::Partial;
    };
    let Ok(len) = usize::try_from(length) else {
        return Extent::Invalid(RecordError::InvalidLength {
            base_offset,
            field: "batch length",
            value: i64::from(length),
        });
    };
    let total = len.saturating_add(LOG_OVERHEAD);
    // The magic (byte 16) decides the smallest valid size; if it is not here yet, any length
    // above the smallest legacy message is plausible.
    if let Some(&magic) = rest.get(MAGIC_OFFSET) {
        let min = match magic as i8 {
            0 => legacy::MIN_MESSAGE_V0_LEN,
            1 => legacy::MIN_MESSAGE_V1_LEN,
            MAGIC_V2 => BATCH_HEADER_LEN,
            other => {
                return Extent::Invalid(RecordError::BadMagic {
                    base_offset,
                    magic: other,
                })
            }
        };
        if total < min {
            return Extent::Invalid(RecordError::InvalidLength {
                base_offset,
                field: "batch length",
                value: i64::from(length),
            });
        }
    } else if total < legacy::MIN_MESSAGE_V0_LEN {
        return Extent::Invalid(RecordError::InvalidLength {
            base_offset,
            field: "batch length",
            value: i64::from(length),
        });
    }
    if total > rest.len() {
        Extent::Partial
    } else {
        Extent::Whole(total)
    }
}

/// Decodes exactly one batch (v2, or one legacy message with its inner messages).
///
/// Unlike [`BatchReader`], a short buffer is an error here ([`RecordError::Truncated`]), and so
/// are bytes after the batch ([`RecordError::TrailingBytes`]).
///
/// ```
/// use bytes::BytesMut;
/// use kafkit_wire::record::{decode_batch, BatchBuilder, BatchOptions, DecodeLimits, RecordRef};
///
/// let mut buf = BytesMut::new();
/// let mut b = BatchBuilder::new(&mut buf, 42);
/// b.append(&RecordRef::new(1, None, Some(b"v")))?;
/// b.finish(&BatchOptions::default(), &mut Vec::new())?;
/// let batch = decode_batch(buf.freeze(), &DecodeLimits::default())?;
/// assert_eq!(batch.records()[0].offset, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_batch(bytes: Bytes, limits: &DecodeLimits) -> Result<RecordBatch, RecordError> {
    let base_offset = read_i64(&bytes, 0).unwrap_or(-1);
    match batch_extent(&bytes) {
        Extent::Whole(size) if size == bytes.len() => open_complete(bytes, limits)?.collect(limits),
        Extent::Whole(size) => Err(RecordError::TrailingBytes {
            base_offset,
            count: bytes.len().saturating_sub(size),
        }),
        Extent::Partial => Err(RecordError::Truncated {
            base_offset,
            needed: read_i32(&bytes, 8)
                .and_then(|l| usize::try_from(l).ok())
                .map_or(LOG_OVERHEAD, |l| l.saturating_add(LOG_OVERHEAD)),
            available: bytes.len(),
        }),
        Extent::Invalid(e) => Err(e),
    }
}

/// Opens a batch whose extent has been checked: `bytes` is exactly one batch.
fn open_complete(bytes: Bytes, limits: &DecodeLimits) -> Result<StreamingBatch, RecordError> {
    match bytes.get(MAGIC_OFFSET).map(|&m| m as i8) {
        Some(MAGIC_V2) => streaming::open_v2(bytes, limits),
        _ => legacy::open_message(bytes, limits),
    }
}

/// A first guess at a decompressed size (4x, Kafka payloads' typical ratio), never above the
/// limit: saves reallocations without trusting anything read from the wire.
pub(crate) fn initial_capacity(compressed: usize, limits: &DecodeLimits) -> usize {
    compressed
        .saturating_mul(4)
        .min(limits.max_decompressed_size)
}
