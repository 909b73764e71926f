//! Encoding v2 record batches: [`BatchBuilder`] appends records straight into a caller's
//! reusable `BytesMut` (no per-record allocation), then [`BatchBuilder::finish`] compresses
//! (through a reusable scratch buffer) and fills in the header and CRC32C.
//!
//! [`record_size`] and [`BatchBuilder::size_with`] tell a producer accumulator what a record
//! will cost before appending it, so `batch.size` can be respected.
//!
//! ```
//! use bytes::BytesMut;
//! use kafkit_wire::compression::Compression;
//! use kafkit_wire::record::{BatchBuilder, BatchOptions, HeaderRef, RecordRef};
//!
//! let mut buf = BytesMut::with_capacity(16 * 1024);
//! let mut scratch = Vec::new();
//! let headers = [HeaderRef::new(b"trace-id", Some(b"abc"))];
//! let mut builder = BatchBuilder::new(&mut buf, 0);
//! for i in 0..3u8 {
//!     let value = [b'v', i];
//!     let record = RecordRef::new(1_700_000_000_000 + i64::from(i), Some(b"key"), Some(&value))
//!         .with_headers(&headers);
//!     if builder.size_with(&record) > 16 * 1024 {
//!         break; // the accumulator would start a new batch here
//!     }
//!     builder.append(&record)?;
//! }
//! let options = BatchOptions {
//!     compression: Compression::Lz4,
//!     producer_id: 7,
//!     producer_epoch: 0,
//!     base_sequence: 0,
//!     ..BatchOptions::default()
//! };
//! let written = builder.finish(&options, &mut scratch)?;
//! assert_eq!(written, buf.len());
//! # Ok::<(), kafkit_wire::record::EncodeError>(())
//! ```

use bytes::{BufMut, BytesMut};

use super::batch::{
    BatchAttributes, TimestampType, BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD, MAGIC_V2,
};
use super::error::EncodeError;
use super::varint::{
    encode_varint, encode_varlong, varint_len, varlong_len, MAX_VARINT_LEN, MAX_VARLONG_LEN,
};
use crate::compression::{self, Compression};

/// A header to encode, borrowed from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The key (UTF-8 by convention).
    pub key: &'a [u8],
    /// The value, or `None` for null.
    pub value: Option<&'a [u8]>,
}

impl<'a> HeaderRef<'a> {
    /// A header from a key and a nullable value.
    pub fn new(key: &'a [u8], value: Option<&'a [u8]>) -> Self {
        HeaderRef { key, value }
    }
}

/// A record to encode, borrowed from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: i64,
    /// The key, or `None` for null.
    pub key: Option<&'a [u8]>,
    /// The value, or `None` for null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: &'a [HeaderRef<'a>],
}

impl<'a> RecordRef<'a> {
    /// A record with no headers.
    pub fn new(timestamp: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Self {
        RecordRef {
            timestamp,
            key,
            value,
            headers: &[],
        }
    }

    /// The same record with `headers`.
    pub fn with_headers(self, headers: &'a [HeaderRef<'a>]) -> Self {
        RecordRef { headers, ..self }
    }
}

/// Batch-level fields given when finishing a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Codec for the records section.
    pub compression: Compression,
    /// Codec level, where the codec has levels (see
    /// [`compress_with_level`](crate::compression::compress_with_level)); `None` = default.
    pub compression_level: Option<i32>,
    /// Producer id, or -1 (not idempotent).
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Partition leader epoch (-1 from producers; the broker sets it).
    pub partition_leader_epoch: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether this is a control batch (transaction markers; normally broker-written).
    pub control: bool,
    /// The timestamp type bit.
    pub timestamp_type: TimestampType,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            compression_level: None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            partition_leader_epoch: -1,
            transactional: false,
            control: false,
            timestamp_type: TimestampType::CreateTime,
        }
    }
}

#[inline]
fn bytes_len(field: Option<&[u8]>) -> usize {
    match field {
        None => 1,
        Some(b) => varint_len(i32::try_from(b.len()).unwrap_or(i32::MAX)).saturating_add(b.len()),
    }
}

/// Bytes of a record's body (everything after its length varint).
#[inline]
fn body_len(offset_delta: i32, timestamp_delta: i64, record: &RecordRef<'_>) -> usize {
    let mut n = varlong_len(timestamp_delta)
        .saturating_add(varint_len(offset_delta))
        .saturating_add(1);
    n = n
        .saturating_add(bytes_len(record.key))
        .saturating_add(bytes_len(record.value))
        .saturating_add(varint_len(
            i32::try_from(record.headers.len()).unwrap_or(i32::MAX),
        ));
    for h in record.headers {
        n = n
            .saturating_add(bytes_len(Some(h.key)))
            .saturating_add(bytes_len(h.value));
    }
    n
}

/// The exact encoded size of a record (length prefix included) at `offset_delta` and
/// `timestamp_delta` from its batch's base.
///
/// ```
/// use kafkit_wire::record::{record_size, RecordRef};
/// // length, attributes, ts delta, offset delta, key -1, value len 1 + 'v', header count.
/// assert_eq!(record_size(0, 0, &RecordRef::new(0, None, Some(b"v"))), 8);
/// ```
#[inline]
pub fn record_size(offset_delta: i32, timestamp_delta: i64, record: &RecordRef<'_>) -> usize {
    let body = body_len(offset_delta, timestamp_delta, record);
    varint_len(i32::try_from(body).unwrap_or(i32::MAX)).saturating_add(body)
}

/// An upper bound on a record's encoded size whatever its deltas: what a producer can reserve
/// before it knows which batch the record lands in.
#[inline]
pub fn max_record_size(record: &RecordRef<'_>) -> usize {
    let body = body_len(0, 0, record).saturating_add(MAX_VARINT_LEN - 1 + MAX_VARLONG_LEN - 1);
    body.saturating_add(MAX_VARINT_LEN)
}

/// Writes one v2 batch into a caller's buffer, record by record.
///
/// The header is reserved at [`BatchBuilder::new`] and filled in by [`BatchBuilder::finish`];
/// the records are written uncompressed as they are appended and compressed at the end. If the
/// builder is dropped without `finish`, the buffer is left with a partial batch: truncate it
/// back to its previous length.
#[derive(Debug)]
pub struct BatchBuilder<'a> {
    buf: &'a mut BytesMut,
    start: usize,
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
}

impl<'a> BatchBuilder<'a> {
    /// Starts a batch at the end of `buf`, whose first record will have `base_offset`
    /// (0 for produce requests; the broker assigns offsets).
    pub fn new(buf: &'a mut BytesMut, base_offset: i64) -> Self {
        let start = buf.len();
        buf.put_bytes(0, BATCH_HEADER_LEN);
        BatchBuilder {
            buf,
            start,
            base_offset,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
            count: 0,
        }
    }

    /// Records appended so far.
    pub fn record_count(&self) -> usize {
        usize::try_from(self.count).unwrap_or_default()
    }

    /// Whether no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The uncompressed size of the batch so far, header included.
    pub fn size(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    fn deltas(&self, record: &RecordRef<'_>) -> Result<(i32, i64), EncodeError> {
        let timestamp_delta = if self.count == 0 {
            0
        } else {
            record.timestamp.checked_sub(self.base_timestamp).ok_or(
                EncodeError::TimestampOverflow {
                    timestamp: record.timestamp,
                    base_timestamp: self.base_timestamp,
                },
            )?
        };
        Ok((self.count, timestamp_delta))
    }

    /// The uncompressed batch size if `record` were appended next (saturating on overflow).
    pub fn size_with(&self, record: &RecordRef<'_>) -> usize {
        let (offset_delta, ts_delta) = self.deltas(record).unwrap_or((self.count, i64::MAX));
        self.size()
            .saturating_add(record_size(offset_delta, ts_delta, record))
    }

    /// Appends `record`; returns its offset. On error nothing is written.
    pub fn append(&mut self, record: &RecordRef<'_>) -> Result<i64, EncodeError> {
        if self.count == i32::MAX {
            return Err(EncodeError::TooManyRecords);
        }
        let (offset_delta, timestamp_delta) = self.deltas(record)?;
        check_len(record.key, "key")?;
        check_len(record.value, "value")?;
        i32::try_from(record.headers.len()).map_err(|_| EncodeError::TooLarge {
            what: "header count",
        })?;
        for h in record.headers {
            check_len(Some(h.key), "header key")?;
            check_len(h.value, "header value")?;
        }
        let body = i32::try_from(body_len(offset_delta, timestamp_delta, record))
            .map_err(|_| EncodeError::TooLarge { what: "record" })?;
        let buf = &mut *self.buf;
        buf.reserve(varint_len(body).saturating_add(body as usize));
        encode_varint(body, buf);
        buf.put_i8(0);
        encode_varlong(timestamp_delta, buf);
        encode_varint(offset_delta, buf);
        put_bytes(record.key, buf);
        put_bytes(record.value, buf);
        encode_varint(record.headers.len() as i32, buf);
        for h in record.headers {
            put_bytes(Some(h.key), buf);
            put_bytes(h.value, buf);
        }
        if self.count == 0 {
            self.base_timestamp = record.timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        self.count = self.count.saturating_add(1);
        Ok(self.base_offset.wrapping_add(i64::from(offset_delta)))
    }

    /// Compresses the records (through `scratch`, cleared first), writes the header and CRC32C,
    /// and returns the batch's total size in `buf`.
    pub fn finish(
        self,
        options: &BatchOptions,
        scratch: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        if self.count == 0 {
            self.buf.truncate(self.start);
            return Err(EncodeError::EmptyBatch);
        }
        let records_at = self.start.saturating_add(BATCH_HEADER_LEN);
        if options.compression != Compression::None {
            scratch.clear();
            let raw = self.buf.get(records_at..).unwrap_or_default();
            if let Err(e) = compression::compress_with_level(
                options.compression,
                options.compression_level,
                raw,
                scratch,
            ) {
                self.buf.truncate(self.start);
                return Err(e.into());
            }
            self.buf.truncate(records_at);
            self.buf.extend_from_slice(scratch);
        }
        let total = self.buf.len().saturating_sub(self.start);
        let Ok(batch_length) = i32::try_from(total.saturating_sub(LOG_OVERHEAD)) else {
            self.buf.truncate(self.start);
            return Err(EncodeError::TooLarge { what: "batch" });
        };
        let attributes = BatchAttributes {
            compression: options.compression,
            timestamp_type: options.timestamp_type,
            transactional: options.transactional,
            control: options.control,
            delete_horizon: false,
        };
        let mut header = [0u8; BATCH_HEADER_LEN];
        {
            let mut h = &mut header[..];
            h.put_i64(self.base_offset);
            h.put_i32(batch_length);
            h.put_i32(options.partition_leader_epoch);
            h.put_i8(MAGIC_V2);
            h.put_u32(0); // CRC, below
            h.put_i16(attributes.to_bits());
            h.put_i32(self.count.saturating_sub(1));
            h.put_i64(self.base_timestamp);
            h.put_i64(self.max_timestamp);
            h.put_i64(options.producer_id);
            h.put_i16(options.producer_epoch);
            h.put_i32(options.base_sequence);
            h.put_i32(self.count);
        }
        if let Some(slot) = self.buf.get_mut(self.start..records_at) {
            slot.copy_from_slice(&header);
        }
        let crc = crc32c::crc32c(
            self.buf
                .get(self.start.saturating_add(CRC_START)..)
                .unwrap_or_default(),
        );
        let crc_at = self.start.saturating_add(CRC_START - 4);
        if let Some(slot) = self.buf.get_mut(crc_at..crc_at.saturating_add(4)) {
            slot.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(total)
    }
}

fn check_len(field: Option<&[u8]>, what: &'static str) -> Result<(), EncodeError> {
    match field {
        Some(b) if i32::try_from(b.len()).is_err() => Err(EncodeError::TooLarge { what }),
        _ => Ok(()),
    }
}

#[inline]
fn put_bytes(field: Option<&[u8]>, buf: &mut BytesMut) {
    match field {
        None => encode_varint(-1, buf),
        Some(b) => {
            encode_varint(b.len() as i32, buf);
            buf.put_slice(b);
        }
    }
}
