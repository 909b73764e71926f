//! Decoding the `records` field of a Fetch partition: [`BatchReader`] iterates its batches
//! (v2 and legacy), [`decode_batch`] decodes exactly one, [`DecodeLimits`] bounds the memory
//! either may use.
//!
//! Brokers fill a fetch response up to a byte limit and commonly cut its **last** batch short;
//! such a partial batch ends iteration cleanly ([`BatchReader::next_batch`] returns `Ok(None)`
//! and [`BatchReader::truncated_bytes`] says how many bytes were skipped). A batch length that
//! runs past the end of the buffer looks exactly like such a cut, so it is treated as one.
//! Anything else malformed is a [`RecordError`], after which the reader yields nothing more.
//!
//! The CRC of a batch is verified before any field past it is parsed, counts are bounded by the
//! bytes that remain before anything is reserved, and decompression stops at
//! [`DecodeLimits::max_decompressed_size`].

use bytes::Bytes;

use super::batch::{
    BatchAttributes, BatchHeader, BatchRecords, Header, Record, RecordBatch, TimestampType,
    BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2,
};
use super::control;
use super::error::RecordError;
use super::legacy;
use super::reader::Reader;
use crate::compression::{self, Compression};

/// The smallest encoded v2 record: a length and six one-byte fields.
pub const MIN_RECORD_LEN: usize = 7;
/// The smallest encoded header: two one-byte lengths.
pub const MIN_HEADER_LEN: usize = 2;

/// Bounds on what decoding may allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// Largest decompressed records section accepted per batch (or legacy wrapper), in bytes.
    /// Default: 64 MiB.
    pub max_decompressed_size: usize,
}

impl DecodeLimits {
    /// The default limit: 64 MiB per batch.
    pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 << 20;

    /// Limits with the given per-batch decompressed size.
    pub fn with_max_decompressed_size(max_decompressed_size: usize) -> Self {
        DecodeLimits {
            max_decompressed_size,
        }
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

    /// The next batch, `Ok(None)` at the end (clean or truncated), or the error that stops
    /// iteration. After an error every call returns `Ok(None)`.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, RecordError> {
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
        match decode_complete(bytes, &self.limits) {
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
        Extent::Whole(size) if size == bytes.len() => decode_complete(bytes, limits),
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

/// Decodes a batch whose extent has been checked: `bytes` is exactly one batch.
fn decode_complete(bytes: Bytes, limits: &DecodeLimits) -> Result<RecordBatch, RecordError> {
    match bytes.get(MAGIC_OFFSET).map(|&m| m as i8) {
        Some(MAGIC_V2) => decode_v2(bytes, limits),
        _ => legacy::decode_message(bytes, limits),
    }
}

fn decode_v2(bytes: Bytes, limits: &DecodeLimits) -> Result<RecordBatch, RecordError> {
    let mut r = Reader::new(bytes.clone(), read_i64(&bytes, 0).unwrap_or(-1));
    let base_offset = r.i64()?;
    let batch_length = r.i32()?;
    let partition_leader_epoch = r.i32()?;
    let magic = r.i8()?;
    let crc = r.u32()?;
    let covered = bytes.get(CRC_START..).unwrap_or_default();
    let actual = crc32c::crc32c(covered);
    if actual != crc {
        return Err(RecordError::BadCrc {
            base_offset,
            expected: crc,
            actual,
        });
    }
    let bits = r.i16()?;
    let attributes = BatchAttributes::from_bits(bits)
        .map_err(|id| RecordError::UnknownCodec { base_offset, id })?;
    let header = BatchHeader {
        base_offset,
        batch_length,
        partition_leader_epoch,
        magic,
        crc,
        attributes,
        last_offset_delta: r.i32()?,
        base_timestamp: r.i64()?,
        max_timestamp: r.i64()?,
        producer_id: r.i64()?,
        producer_epoch: r.i16()?,
        base_sequence: r.i32()?,
        record_count: r.i32()?,
    };
    let body = r.bytes(r.remaining())?;
    let body = match attributes.compression {
        Compression::None => body,
        codec => {
            let mut out = Vec::with_capacity(initial_capacity(body.len(), limits));
            compression::decompress(codec, &body, limits.max_decompressed_size, &mut out)
                .map_err(|e| RecordError::from_compression(base_offset, e))?;
            Bytes::from(out)
        }
    };
    let records = decode_records(&header, body)?;
    let records = if attributes.control {
        let controls = records
            .into_iter()
            .map(|rec| control::from_record(rec, base_offset))
            .collect::<Result<Vec<_>, _>>()?;
        BatchRecords::Control(controls)
    } else {
        BatchRecords::Data(records)
    };
    Ok(RecordBatch { header, records })
}

/// A first guess at a decompressed size (4x, Kafka payloads' typical ratio), never above the
/// limit: saves reallocations without trusting anything read from the wire.
pub(crate) fn initial_capacity(compressed: usize, limits: &DecodeLimits) -> usize {
    compressed
        .saturating_mul(4)
        .min(limits.max_decompressed_size)
}

/// Decodes the `record_count` records of `body`, which must hold exactly them.
fn decode_records(header: &BatchHeader, body: Bytes) -> Result<Vec<Record>, RecordError> {
    let base_offset = header.base_offset;
    let mut r = Reader::new(body, base_offset);
    let declared = header.record_count;
    let count =
        usize::try_from(declared).map_err(|_| r.invalid("record count", i64::from(declared)))?;
    if count > r.remaining() / MIN_RECORD_LEN {
        return Err(RecordError::CountMismatch {
            base_offset,
            declared,
            decoded: r.remaining() / MIN_RECORD_LEN,
        });
    }
    let mut records = Vec::with_capacity(count);
    for decoded in 0..count {
        if r.remaining() == 0 {
            return Err(RecordError::CountMismatch {
                base_offset,
                declared,
                decoded,
            });
        }
        records.push(decode_record(&mut r, header)?);
    }
    if r.remaining() != 0 {
        return Err(RecordError::TrailingBytes {
            base_offset,
            count: r.remaining(),
        });
    }
    Ok(records)
}

fn decode_record(r: &mut Reader, header: &BatchHeader) -> Result<Record, RecordError> {
    let declared = r.varint("record length")?;
    let len = r
        .length(i64::from(declared), false, "record length")?
        .unwrap_or_default();
    let body = Reader::new(r.bytes(len)?, r.base_offset);
    decode_record_body(body, declared, header).map_err(|e| match e {
        // Fields that run past the record's declared length: the length is wrong.
        RecordError::Truncated {
            base_offset,
            needed,
            available,
        } => RecordError::RecordLengthMismatch {
            base_offset,
            declared,
            actual: len.saturating_add(needed.saturating_sub(available)),
        },
        other => other,
    })
}

fn decode_record_body(
    mut body: Reader,
    declared: i32,
    header: &BatchHeader,
) -> Result<Record, RecordError> {
    let attributes = body.i8()?;
    let timestamp_delta = body.varlong("timestamp delta")?;
    let offset_delta = body.varint("offset delta")?;
    let key = body.varint_bytes(true, "key length")?;
    let value = body.varint_bytes(true, "value length")?;
    let header_count = body.varint("header count")?;
    let header_count = body
        .length(i64::from(header_count), false, "header count")?
        .unwrap_or_default();
    if header_count > body.remaining() / MIN_HEADER_LEN {
        return Err(body.invalid("header count", header_count as i64));
    }
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let key = body
            .varint_bytes(false, "header key length")?
            .unwrap_or_default();
        let value = body.varint_bytes(true, "header value length")?;
        headers.push(Header { key, value });
    }
    if body.remaining() != 0 {
        return Err(RecordError::RecordLengthMismatch {
            base_offset: body.base_offset,
            declared,
            actual: body.position(),
        });
    }
    Ok(Record {
        offset: header.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp: match header.attributes.timestamp_type {
            // The broker stamped the whole batch: its max timestamp is every record's.
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
        },
        attributes,
        key,
        value,
        headers,
    })
}
