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

use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::batch::{
    BatchAttributes, TimestampType, BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD, MAGIC_V2,
};
use super::error::EncodeError;
use super::varint::{
    decode_varint, varint_len, varlong_len, zigzag32, zigzag64, MAX_VARINT_LEN, MAX_VARLONG_LEN,
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

/// A header as the encoder reads it: [`HeaderRef`], or any `(key, Option<value>)` pair of
/// byte-like types (so a caller's own header list is encoded as it is, with no list of
/// [`HeaderRef`]s built per record).
///
/// ```
/// use kafkit_wire::record::{headers_size, EncodeHeader, HeaderRef};
/// let owned: Vec<(String, Option<Vec<u8>>)> = vec![("trace-id".into(), Some(b"abc".to_vec()))];
/// assert_eq!(owned[0].key(), b"trace-id");
/// assert_eq!(headers_size(&owned), headers_size(&[HeaderRef::new(b"trace-id", Some(b"abc"))]));
/// ```
pub trait EncodeHeader {
    /// The key's bytes.
    fn key(&self) -> &[u8];
    /// The value's bytes, or `None` for null.
    fn value(&self) -> Option<&[u8]>;
}

impl EncodeHeader for HeaderRef<'_> {
    #[inline]
    fn key(&self) -> &[u8] {
        self.key
    }

    #[inline]
    fn value(&self) -> Option<&[u8]> {
        self.value
    }
}

impl EncodeHeader for super::Header {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.key
    }

    #[inline]
    fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> EncodeHeader for (K, Option<V>) {
    #[inline]
    fn key(&self) -> &[u8] {
        self.0.as_ref()
    }

    #[inline]
    fn value(&self) -> Option<&[u8]> {
        self.1.as_ref().map(AsRef::as_ref)
    }
}

/// The encoded size of `headers` inside a record: each key and value with its length prefix
/// (the header count before them not included). What [`BatchBuilder::append_sized`] takes, so
/// that a caller who sizes a record's headers once (to reserve memory, to fill a batch) does
/// not have them walked again when the record is written.
///
/// ```
/// use kafkit_wire::record::{headers_size, HeaderRef};
/// // key length 1 + "k", value length 1 + "v"; a null value is one byte (-1).
/// assert_eq!(headers_size(&[HeaderRef::new(b"k", Some(b"v"))]), 4);
/// assert_eq!(headers_size(&[HeaderRef::new(b"k", None)]), 3);
/// ```
#[inline]
pub fn headers_size<H: EncodeHeader>(headers: &[H]) -> usize {
    headers.iter().fold(0usize, |n, h| {
        n.saturating_add(bytes_len(Some(h.key())))
            .saturating_add(bytes_len(h.value()))
    })
}

/// Headers encoded once, to be written into many records as they are: the wire encoding of
/// each header in order (key length, key, value length, value), their number and byte size.
/// Cheap to clone (one reference count); for headers that are the same on every record of a
/// kind (a producer's name, an event type), so that each record copies their bytes at once
/// instead of encoding them again. [`BatchBuilder::append_with_block`] writes a block before
/// the record's own headers; a reader sees the block's headers first, then the record's.
///
/// ```
/// use kafkit_wire::record::{headers_size, HeaderBlock, HeaderRef};
/// let headers = [HeaderRef::new(b"ce_specversion", Some(b"1.0")), HeaderRef::new(b"k", None)];
/// let block = HeaderBlock::new(&headers)?;
/// assert_eq!(block.count(), 2);
/// assert_eq!(block.size(), headers_size(&headers));
/// assert_eq!(&block.as_bytes()[..4], &[28, b'c', b'e', b'_']); // zig-zagged length 14
/// # Ok::<(), kafkit_wire::record::EncodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HeaderBlock {
    /// One pointer: a record carrying an `Option<HeaderBlock>` grows by 8 bytes.
    inner: Arc<BlockInner>,
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct BlockInner {
    bytes: Box<[u8]>,
    count: usize,
    /// The keys' and values' bytes, without the varints around them.
    data_len: usize,
}

impl HeaderBlock {
    /// Encodes `headers` (in order). Fails with [`EncodeError::TooLarge`] when a key or value
    /// is longer than an `i32`, or there are more headers than an `i32` counts.
    pub fn new<H: EncodeHeader>(headers: &[H]) -> Result<Self, EncodeError> {
        let size = headers_size(headers);
        let mut out = vec![0u8; size];
        let mut w = SliceWriter { out: &mut out[..] };
        let written = headers.iter().try_for_each(|h| {
            w.field(Some(h.key()))?;
            w.field(h.value())
        });
        if written.is_none() || !w.out.is_empty() || i32::try_from(headers.len()).is_err() {
            return Err(match refusal(None, None, headers, size) {
                EncodeError::TooLarge { what: "record" } => EncodeError::TooLarge {
                    what: "header block",
                },
                other => other,
            });
        }
        // No overflow: the block just held every one of these bytes.
        let data_len = headers.iter().fold(0usize, |n, h| {
            n.saturating_add(h.key().len())
                .saturating_add(h.value().map_or(0, <[u8]>::len))
        });
        Ok(HeaderBlock {
            inner: Arc::new(BlockInner {
                bytes: out.into_boxed_slice(),
                count: headers.len(),
                data_len,
            }),
        })
    }

    /// The number of headers.
    pub fn count(&self) -> usize {
        self.inner.count
    }

    /// Their encoded size in bytes (what [`headers_size`] gives for them).
    pub fn size(&self) -> usize {
        self.inner.bytes.len()
    }

    /// The bytes of the headers' keys and values together, without their length varints
    /// (what a producer's byte counts add up for headers), kept from [`HeaderBlock::new`].
    ///
    /// ```
    /// use kafkit_wire::record::HeaderBlock;
    /// let block = HeaderBlock::new(&[("ce_type", Some("order.placed")), ("trace", None)])?;
    /// assert_eq!(block.data_len(), "ce_type".len() + "order.placed".len() + "trace".len());
    /// # Ok::<(), kafkit_wire::record::EncodeError>(())
    /// ```
    pub fn data_len(&self) -> usize {
        self.inner.data_len
    }

    /// Whether the block holds no header.
    pub fn is_empty(&self) -> bool {
        self.inner.count == 0
    }

    /// The encoded headers, as written into a record.
    pub fn as_bytes(&self) -> &[u8] {
        &self.inner.bytes
    }

    /// The headers, in order, as `(key, value)` read back from the encoding.
    ///
    /// ```
    /// use kafkit_wire::record::HeaderBlock;
    /// let block = HeaderBlock::new(&[("a", Some("1")), ("b", None)])?;
    /// let read: Vec<_> = block.iter().collect();
    /// assert_eq!(read, [(&b"a"[..], Some(&b"1"[..])), (&b"b"[..], None)]);
    /// # Ok::<(), kafkit_wire::record::EncodeError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> + '_ {
        let mut rest = &self.inner.bytes[..];
        // The block was written by `new`: every field reads back; a field that did not would
        // end the iteration.
        let mut field = move || -> Option<Option<&[u8]>> {
            let (len, n) = decode_varint(rest).ok()?;
            let tail = rest.get(n..)?;
            let Ok(len) = usize::try_from(len) else {
                rest = tail;
                return Some(None);
            };
            let (value, after) = tail.split_at_checked(len)?;
            rest = after;
            Some(Some(value))
        };
        (0..self.inner.count).map_while(move |_| {
            let key = field()??;
            let value = field()?;
            Some((key, value))
        })
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
        // Under 64 bytes the zig-zagged length takes one byte: most header keys and values.
        Some(b) if b.len() < 64 => b.len().wrapping_add(1),
        Some(b) => varint_len(i32::try_from(b.len()).unwrap_or(i32::MAX)).saturating_add(b.len()),
    }
}

/// Bytes of a record's body (everything after its length varint), its `header_count` headers
/// taking `headers_size` bytes.
#[inline]
fn body_len_sized(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    header_count: usize,
    headers_size: usize,
) -> usize {
    varlong_len(timestamp_delta)
        .saturating_add(varint_len(offset_delta))
        .saturating_add(1)
        .saturating_add(bytes_len(key))
        .saturating_add(bytes_len(value))
        .saturating_add(varint_len(i32::try_from(header_count).unwrap_or(i32::MAX)))
        .saturating_add(headers_size)
}

/// Bytes of a record's body (everything after its length varint).
#[inline]
fn body_len(offset_delta: i32, timestamp_delta: i64, record: &RecordRef<'_>) -> usize {
    body_len_sized(
        offset_delta,
        timestamp_delta,
        record.key,
        record.value,
        record.headers.len(),
        headers_size(record.headers),
    )
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
    cursor: Cursor,
}

/// Where a batch starts in its buffer and what its records have set so far: the state that
/// [`BatchBuilder`] (borrowing a buffer) and [`OpenBatch`](super::OpenBatch) (owning one)
/// share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
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
        let cursor = Cursor::begin(buf, base_offset);
        BatchBuilder { buf, cursor }
    }

    /// Records appended so far.
    pub fn record_count(&self) -> usize {
        self.cursor.record_count()
    }

    /// Whether no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.cursor.count == 0
    }

    /// The uncompressed size of the batch so far, header included.
    pub fn size(&self) -> usize {
        self.cursor.size(self.buf)
    }

    /// The uncompressed batch size if `record` were appended next (saturating on overflow).
    pub fn size_with(&self, record: &RecordRef<'_>) -> usize {
        let (offset_delta, ts_delta) = self
            .cursor
            .deltas(record.timestamp)
            .unwrap_or((self.cursor.count, i64::MAX));
        self.size()
            .saturating_add(record_size(offset_delta, ts_delta, record))
    }

    /// Appends `record`; returns its offset. On error nothing is written.
    pub fn append(&mut self, record: &RecordRef<'_>) -> Result<i64, EncodeError> {
        let size = headers_size(record.headers);
        self.append_sized(
            record.timestamp,
            record.key,
            record.value,
            record.headers,
            size,
        )
    }

    /// Appends a record given by its fields, its headers' encoded size already known
    /// ([`headers_size`] of `headers`, computed once by the caller); returns its offset. The
    /// bytes are those [`append`](BatchBuilder::append) writes for the same record. The record
    /// is written into a slice of exactly the size computed from `headers_size`; a size that
    /// is not the headers' own is found when the writing does not fill that slice exactly, and
    /// refused with [`EncodeError::HeadersSizeMismatch`]. On error nothing is written.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use kafkit_wire::record::{headers_size, BatchBuilder, HeaderRef, RecordRef};
    ///
    /// let headers = vec![("trace-id", Some(&b"abc"[..]))];
    /// let size = headers_size(&headers); // once, kept with the record
    /// let mut buf = BytesMut::new();
    /// let mut builder = BatchBuilder::new(&mut buf, 0);
    /// builder.append_sized(1_000, None, Some(b"v"), &headers, size)?;
    /// let same = [HeaderRef::new(b"trace-id", Some(b"abc"))];
    /// let mut other = BytesMut::new();
    /// BatchBuilder::new(&mut other, 0)
    ///     .append(&RecordRef::new(1_000, None, Some(b"v")).with_headers(&same))?;
    /// assert_eq!(buf, other);
    /// # Ok::<(), kafkit_wire::record::EncodeError>(())
    /// ```
    pub fn append_sized<H: EncodeHeader>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[H],
        headers_size: usize,
    ) -> Result<i64, EncodeError> {
        self.append_with_block(timestamp, key, value, None, headers, headers_size)
    }

    /// Like [`append_sized`](BatchBuilder::append_sized), with `block`'s headers written
    /// (one copy) before `headers`; `headers_size` is that of `headers` alone. The bytes are
    /// those of the same record appended with the block's headers followed by `headers` as
    /// one list.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use kafkit_wire::record::{headers_size, BatchBuilder, HeaderBlock, HeaderRef, RecordRef};
    ///
    /// let block = HeaderBlock::new(&[HeaderRef::new(b"app", Some(b"shop"))])?; // once
    /// let own = [HeaderRef::new(b"trace-id", Some(b"abc"))];
    /// let mut buf = BytesMut::new();
    /// BatchBuilder::new(&mut buf, 0)
    ///     .append_with_block(1_000, None, Some(b"v"), Some(&block), &own, headers_size(&own))?;
    /// let all = [HeaderRef::new(b"app", Some(b"shop")), HeaderRef::new(b"trace-id", Some(b"abc"))];
    /// let mut other = BytesMut::new();
    /// BatchBuilder::new(&mut other, 0)
    ///     .append(&RecordRef::new(1_000, None, Some(b"v")).with_headers(&all))?;
    /// assert_eq!(buf, other);
    /// # Ok::<(), kafkit_wire::record::EncodeError>(())
    /// ```
    pub fn append_with_block<H: EncodeHeader>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        block: Option<&HeaderBlock>,
        headers: &[H],
        headers_size: usize,
    ) -> Result<i64, EncodeError> {
        let record = Fields {
            timestamp,
            key,
            value,
            block,
            headers,
            headers_size,
        };
        self.cursor
            .append(self.buf, &record, None)
            .map(|written| written.offset)
    }

    /// Compresses the records (through `scratch`, cleared first), writes the header and CRC32C,
    /// and returns the batch's total size in `buf`.
    pub fn finish(
        self,
        options: &BatchOptions,
        scratch: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        self.cursor.finish(self.buf, options, scratch)
    }
}

/// One record's fields, borrowed for the time of its writing; `headers_size` is that of
/// `headers` alone (`block`'s not included).
pub(crate) struct Fields<'r, H> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'r [u8]>,
    pub(crate) value: Option<&'r [u8]>,
    pub(crate) block: Option<&'r HeaderBlock>,
    pub(crate) headers: &'r [H],
    pub(crate) headers_size: usize,
}

/// What [`Cursor::append`] wrote: the record's offset and its encoded size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// The record's offset.
    pub(crate) offset: i64,
    /// Its encoded size, length prefix included.
    pub(crate) size: usize,
}

/// What [`Cursor::append`] returns when a batch limit is given: `None` if the record would
/// take a non-empty batch past it.
pub(crate) type Appended = Option<Written>;

impl Cursor {
    /// Reserves a batch header at the end of `buf`.
    pub(crate) fn begin(buf: &mut BytesMut, base_offset: i64) -> Cursor {
        let start = buf.len();
        buf.put_bytes(0, BATCH_HEADER_LEN);
        Cursor {
            start,
            base_offset,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
            count: 0,
        }
    }

    pub(crate) fn record_count(&self) -> usize {
        usize::try_from(self.count).unwrap_or_default()
    }

    pub(crate) fn size(&self, buf: &BytesMut) -> usize {
        buf.len().saturating_sub(self.start)
    }

    fn deltas(&self, timestamp: i64) -> Result<(i32, i64), EncodeError> {
        let timestamp_delta = if self.count == 0 {
            0
        } else {
            timestamp
                .checked_sub(self.base_timestamp)
                .ok_or(EncodeError::TimestampOverflow {
                    timestamp,
                    base_timestamp: self.base_timestamp,
                })?
        };
        Ok((self.count, timestamp_delta))
    }

    /// Writes `record` at the end of `buf`. With a `limit`, a record that would take a
    /// non-empty batch past `limit` bytes (header included) is not written (`Ok(None)`). On
    /// error nothing is written.
    #[inline]
    pub(crate) fn append<H: EncodeHeader>(
        &mut self,
        buf: &mut BytesMut,
        record: &Fields<'_, H>,
        limit: Option<usize>,
    ) -> Result<Written, EncodeError> {
        self.append_within(buf, record, limit)?
            .ok_or(EncodeError::TooLarge { what: "batch" })
    }

    /// [`append`](Cursor::append), telling a record over the limit apart.
    #[inline]
    pub(crate) fn append_within<H: EncodeHeader>(
        &mut self,
        buf: &mut BytesMut,
        record: &Fields<'_, H>,
        limit: Option<usize>,
    ) -> Result<Appended, EncodeError> {
        let Fields {
            timestamp,
            key,
            value,
            block,
            headers,
            headers_size,
        } = *record;
        if self.count == i32::MAX {
            return Err(EncodeError::TooManyRecords);
        }
        let (offset_delta, timestamp_delta) = self.deltas(timestamp)?;
        // A large claimed size is checked before that much is reserved, so a wrong one cannot
        // allocate up to the i32 body limit first (walking headers this large costs little
        // next to writing them).
        if headers_size > SIZE_CHECKED_ABOVE {
            let actual = self::headers_size(headers);
            if actual != headers_size {
                return Err(EncodeError::HeadersSizeMismatch {
                    given: headers_size,
                    actual,
                });
            }
        }
        let (block_bytes, block_count) = block.map_or((&[][..], 0), |b| (b.as_bytes(), b.count()));
        let header_count = headers.len().saturating_add(block_count);
        let body = body_len_sized(
            offset_delta,
            timestamp_delta,
            key,
            value,
            header_count,
            headers_size.saturating_add(block_bytes.len()),
        );
        // A body that fits an i32 has every field's length fit one too (each is part of it);
        // the writer checks each length again as it goes, at the cost of a comparison.
        let Ok(body) = i32::try_from(body) else {
            return Err(refusal(key, value, headers, headers_size));
        };
        let start = buf.len();
        let total = varint_len(body).saturating_add(body.unsigned_abs() as usize);
        if let Some(limit) = limit {
            if self.count > 0 && self.size(buf).saturating_add(total) > limit {
                return Ok(None);
            }
        }
        buf.resize(start.saturating_add(total), 0);
        let out = buf.get_mut(start..).unwrap_or_default();
        let mut w = SliceWriter { out };
        let written = w.varint(body).and_then(|()| {
            w.byte(0)?; // record attributes: unused
            w.varlong(timestamp_delta)?;
            w.varint(offset_delta)?;
            w.field(key)?;
            w.field(value)?;
            w.varint(i32::try_from(header_count).ok()?)?;
            w.raw(block_bytes)?;
            for h in headers {
                w.field(Some(h.key()))?;
                w.field(h.value())?;
            }
            Some(())
        });
        if written.is_none() || !w.out.is_empty() {
            buf.truncate(start);
            return Err(refusal(key, value, headers, headers_size));
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count = self.count.saturating_add(1);
        Ok(Some(Written {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            size: total,
        }))
    }

    /// Compresses the records (through `scratch`, cleared first), writes the header and CRC32C,
    /// and returns the batch's total size in `buf`. On error the batch is removed from `buf`.
    pub(crate) fn finish(
        &self,
        buf: &mut BytesMut,
        options: &BatchOptions,
        scratch: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        if self.count == 0 {
            buf.truncate(self.start);
            return Err(EncodeError::EmptyBatch);
        }
        let records_at = self.start.saturating_add(BATCH_HEADER_LEN);
        if options.compression != Compression::None {
            scratch.clear();
            let raw = buf.get(records_at..).unwrap_or_default();
            if let Err(e) = compression::compress_with_level(
                options.compression,
                options.compression_level,
                raw,
                scratch,
            ) {
                buf.truncate(self.start);
                return Err(e.into());
            }
            buf.truncate(records_at);
            buf.extend_from_slice(scratch);
        }
        let total = buf.len().saturating_sub(self.start);
        let Ok(batch_length) = i32::try_from(total.saturating_sub(LOG_OVERHEAD)) else {
            buf.truncate(self.start);
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
        if let Some(slot) = buf.get_mut(self.start..records_at) {
            slot.copy_from_slice(&header);
        }
        let crc = crc32c::crc32c(
            buf.get(self.start.saturating_add(CRC_START)..)
                .unwrap_or_default(),
        );
        let crc_at = self.start.saturating_add(CRC_START - 4);
        if let Some(slot) = buf.get_mut(crc_at..crc_at.saturating_add(4)) {
            slot.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(total)
    }
}

/// Above this many bytes of headers, [`BatchBuilder::append_sized`] checks the given size
/// before it reserves room for the record.
const SIZE_CHECKED_ABOVE: usize = 64 << 10;

/// Why a record could not be written: the first field whose length does not fit an i32, the
/// header count, a `headers_size` that is not the headers' own, or else the record itself.
/// Only on the error path: it walks the headers.
#[cold]
fn refusal<H: EncodeHeader>(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[H],
    given: usize,
) -> EncodeError {
    let too_large = |field: Option<&[u8]>| field.is_some_and(|b| i32::try_from(b.len()).is_err());
    if too_large(key) {
        return EncodeError::TooLarge { what: "key" };
    }
    if too_large(value) {
        return EncodeError::TooLarge { what: "value" };
    }
    if i32::try_from(headers.len()).is_err() {
        return EncodeError::TooLarge {
            what: "header count",
        };
    }
    for h in headers {
        if too_large(Some(h.key())) {
            return EncodeError::TooLarge { what: "header key" };
        }
        if too_large(h.value()) {
            return EncodeError::TooLarge {
                what: "header value",
            };
        }
    }
    let actual = headers_size(headers);
    if actual != given {
        return EncodeError::HeadersSizeMismatch { given, actual };
    }
    EncodeError::TooLarge { what: "record" }
}

/// Writes into a slice sized for exactly one record: each write takes its bytes off the front
/// of what is left, `None` when they do not fit (no capacity check or length update per byte,
/// as writing through `BytesMut` costs).
struct SliceWriter<'a> {
    out: &'a mut [u8],
}

impl SliceWriter<'_> {
    #[inline]
    fn byte(&mut self, b: u8) -> Option<()> {
        let (first, rest) = std::mem::take(&mut self.out).split_first_mut()?;
        *first = b;
        self.out = rest;
        Some(())
    }

    #[inline]
    fn unsigned(&mut self, mut raw: u64) -> Option<()> {
        let out = std::mem::take(&mut self.out);
        let mut n = 0usize;
        while raw >= 0x80 {
            *out.get_mut(n)? = (raw as u8) | 0x80;
            raw >>= 7;
            n = n.wrapping_add(1);
        }
        *out.get_mut(n)? = raw as u8;
        self.out = out.get_mut(n.wrapping_add(1)..)?;
        Some(())
    }

    #[inline]
    fn varint(&mut self, value: i32) -> Option<()> {
        self.unsigned(zigzag32(value))
    }

    #[inline]
    fn varlong(&mut self, value: i64) -> Option<()> {
        self.unsigned(zigzag64(value))
    }

    /// `bytes` as they are.
    #[inline]
    fn raw(&mut self, bytes: &[u8]) -> Option<()> {
        let (head, rest) = std::mem::take(&mut self.out).split_at_mut_checked(bytes.len())?;
        head.copy_from_slice(bytes);
        self.out = rest;
        Some(())
    }

    /// A nullable bytes field: its length (-1 for null), then its bytes.
    #[inline]
    fn field(&mut self, field: Option<&[u8]>) -> Option<()> {
        match field {
            None => self.byte(1), // -1 zig-zagged
            Some(b) => {
                self.varint(i32::try_from(b.len()).ok()?)?;
                let (head, rest) = std::mem::take(&mut self.out).split_at_mut_checked(b.len())?;
                head.copy_from_slice(b);
                self.out = rest;
                Some(())
            }
        }
    }
}
