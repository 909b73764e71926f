//! Lazy decoding: a [`StreamingBatch`] yields the records of one batch one at a time from its
//! (one) decompressed buffer, so nothing but the record being handed out is materialised.
//!
//! What is materialised is charged by its in-memory cost ([`Record::memory_size`]): a record
//! whose headers would take more than [`DecodeLimits::max_decoded_size`] is refused with
//! [`RecordError::DecodedTooLarge`] before its header vector is reserved. The materialising
//! paths ([`super::BatchReader::next_batch`], [`super::decode_batch`]) collect a streaming batch
//! under the same budget for the whole batch.
//!
//! Malformed records are found as they are reached: the records before one are yielded first
//! (as in Java's `DefaultRecordBatch` iterator). The batch CRC was verified before, so this
//! only happens with a producer or broker that wrote nonsense, not with bytes damaged in
//! transit.

use std::mem::size_of;

use bytes::Bytes;

use super::batch::{
    BatchAttributes, BatchHeader, BatchRecords, Header, Record, RecordBatch, TimestampType,
    CRC_START,
};
use super::control::{self, ControlRecord};
use super::decode::{initial_capacity, DecodeLimits, MIN_HEADER_LEN, MIN_RECORD_LEN};
use super::error::RecordError;
use super::legacy::LegacyRecords;
use super::reader::Reader;
use crate::compression::{self, Compression};

impl Record {
    /// What this record takes in memory, its payload excepted: the struct and its header
    /// vector's slots. Keys and values are shared slices of the fetched or decompressed buffer
    /// (counted once, as that buffer) and cost nothing here.
    ///
    /// ```
    /// use kafkit_wire::record::Record;
    /// let record = Record {
    ///     offset: 0, timestamp: 0, attributes: 0, key: None, value: None, headers: Vec::new(),
    /// };
    /// assert_eq!(record.memory_size(), std::mem::size_of::<Record>());
    /// ```
    pub fn memory_size(&self) -> usize {
        record_memory(self.headers.capacity())
    }
}

/// The in-memory cost of a record with `headers` headers.
pub(crate) fn record_memory(headers: usize) -> usize {
    headers
        .saturating_mul(size_of::<Header>())
        .saturating_add(size_of::<Record>())
}

/// The records of one batch, decoded as they are asked for.
///
/// Obtained from [`super::BatchReader::next_streaming`]. Iterating yields each record once;
/// after an error (or the end) it yields nothing more.
///
/// ```
/// use bytes::BytesMut;
/// use kafkit_wire::compression::Compression;
/// use kafkit_wire::record::{BatchBuilder, BatchOptions, BatchReader, RecordRef};
///
/// let mut buf = BytesMut::new();
/// let mut b = BatchBuilder::new(&mut buf, 7);
/// b.append(&RecordRef::new(1, None, Some(b"a")))?;
/// b.append(&RecordRef::new(2, None, Some(b"b")))?;
/// let options = BatchOptions { compression: Compression::Lz4, ..BatchOptions::default() };
/// b.finish(&options, &mut Vec::new())?;
///
/// let mut reader = BatchReader::new(buf.freeze());
/// let mut batch = reader.next_streaming()?.expect("one batch");
/// assert_eq!(batch.header.record_count, 2);
/// let first = batch.next_record()?.expect("a record");
/// assert_eq!((first.offset, first.value.as_deref()), (7, Some(&b"a"[..])));
/// assert_eq!(batch.remaining(), 1);
/// assert_eq!(batch.next_record()?.map(|r| r.offset), Some(8));
/// assert!(batch.next_record()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StreamingBatch {
    /// Every header field (synthesized for legacy messages, see [`super::legacy`]).
    pub header: BatchHeader,
    source: Source,
    /// Largest in-memory cost of one record.
    max_record_memory: usize,
    failed: bool,
}

#[derive(Debug)]
enum Source {
    V2(V2Records),
    Legacy(LegacyRecords),
}

/// The records section of a v2 batch, after decompression.
#[derive(Debug)]
struct V2Records {
    r: Reader,
    /// Records still to come by the header's count.
    left: usize,
    decoded: usize,
}

impl StreamingBatch {
    pub(crate) fn legacy(
        header: BatchHeader,
        records: LegacyRecords,
        limits: &DecodeLimits,
    ) -> Self {
        StreamingBatch {
            header,
            source: Source::Legacy(records),
            max_record_memory: limits.max_decoded_size,
            failed: false,
        }
    }

    /// Whether this is a control batch (its records are transaction markers; see
    /// [`StreamingBatch::next_control_record`]).
    pub fn is_control(&self) -> bool {
        self.header.attributes.control
    }

    /// Records still to come by the batch's record count.
    pub fn remaining(&self) -> usize {
        if self.failed {
            return 0;
        }
        match &self.source {
            Source::V2(v2) => v2.left,
            Source::Legacy(legacy) => legacy.remaining(),
        }
    }

    /// Whether every record was taken and nothing is left to check: the next call would
    /// return `Ok(None)` without decoding anything.
    pub fn is_used_up(&self) -> bool {
        self.failed
            || match &self.source {
                Source::V2(v2) => v2.left == 0 && v2.r.remaining() == 0,
                Source::Legacy(legacy) => legacy.remaining() == 0,
            }
    }

    /// The next record, `Ok(None)` after the last. An error ends the batch.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecordError> {
        self.next_within(self.max_record_memory)
    }

    /// The next record of a control batch, interpreted ([`ControlRecord`]).
    pub fn next_control_record(&mut self) -> Result<Option<ControlRecord>, RecordError> {
        let base_offset = self.header.base_offset;
        match self.next_record()? {
            Some(record) => control::from_record(record, base_offset)
                .map(Some)
                .inspect_err(|_| self.failed = true),
            None => Ok(None),
        }
    }

    /// The next record if its in-memory cost is at most `budget`.
    fn next_within(&mut self, budget: usize) -> Result<Option<Record>, RecordError> {
        if self.failed {
            return Ok(None);
        }
        let header = &self.header;
        let result = match &mut self.source {
            Source::V2(v2) => v2.next(header, budget),
            Source::Legacy(legacy) => legacy.next(budget),
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Decodes every record into a [`RecordBatch`], all of it costing at most
    /// [`DecodeLimits::max_decoded_size`] in memory.
    pub(crate) fn collect(mut self, limits: &DecodeLimits) -> Result<RecordBatch, RecordError> {
        let base_offset = self.header.base_offset;
        let limit = limits.max_decoded_size;
        let slot = if self.is_control() {
            size_of::<ControlRecord>()
        } else {
            size_of::<Record>()
        };
        let count = self.remaining();
        let mut used = count.saturating_mul(slot);
        let too_large = |size| RecordError::DecodedTooLarge {
            base_offset,
            size,
            limit,
        };
        if used > limit {
            return Err(too_large(used));
        }
        let records = if self.is_control() {
            let mut controls = Vec::with_capacity(count);
            while let Some(c) = self.next_control_record()? {
                controls.push(c);
            }
            BatchRecords::Control(controls)
        } else {
            let mut records = Vec::with_capacity(count);
            loop {
                // Each record's slot is paid for above; its headers must fit what is left.
                let left = limit
                    .saturating_sub(used)
                    .saturating_add(size_of::<Record>());
                let Some(record) = self.next_within(left).map_err(|e| match e {
                    RecordError::DecodedTooLarge { size, .. } => too_large(
                        used.saturating_add(size)
                            .saturating_sub(size_of::<Record>()),
                    ),
                    other => other,
                })?
                else {
                    break;
                };
                used = used
                    .saturating_add(record.memory_size())
                    .saturating_sub(size_of::<Record>());
                records.push(record);
            }
            BatchRecords::Data(records)
        };
        Ok(RecordBatch {
            header: self.header,
            records,
        })
    }
}

impl Iterator for StreamingBatch {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

impl std::iter::FusedIterator for StreamingBatch {}

/// Opens a v2 batch (exactly `bytes`): checks the CRC (unless `limits.check_crc` is off), reads the header, decompresses the
/// records section once.
pub(crate) fn open_v2(bytes: Bytes, limits: &DecodeLimits) -> Result<StreamingBatch, RecordError> {
    let mut r = Reader::new(bytes.clone(), -1);
    let base_offset = r.i64()?;
    r.base_offset = base_offset;
    let batch_length = r.i32()?;
    let partition_leader_epoch = r.i32()?;
    let magic = r.i8()?;
    let crc = r.u32()?;
    if limits.check_crc {
        let covered = bytes.get(CRC_START..).unwrap_or_default();
        let actual = crc32c::crc32c(covered);
        if actual != crc {
            return Err(RecordError::BadCrc {
                base_offset,
                expected: crc,
                actual,
            });
        }
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
    let r = Reader::new(body, base_offset);
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
    Ok(StreamingBatch {
        header,
        source: Source::V2(V2Records {
            r,
            left: count,
            decoded: 0,
        }),
        max_record_memory: limits.max_decoded_size,
        failed: false,
    })
}

impl V2Records {
    fn next(&mut self, header: &BatchHeader, budget: usize) -> Result<Option<Record>, RecordError> {
        if self.left == 0 {
            return match self.r.remaining() {
                0 => Ok(None),
                count => Err(RecordError::TrailingBytes {
                    base_offset: header.base_offset,
                    count,
                }),
            };
        }
        if self.r.remaining() == 0 {
            return Err(RecordError::CountMismatch {
                base_offset: header.base_offset,
                declared: header.record_count,
                decoded: self.decoded,
            });
        }
        let record = decode_record(&mut self.r, header, budget)?;
        self.left = self.left.saturating_sub(1);
        self.decoded = self.decoded.saturating_add(1);
        Ok(Some(record))
    }
}

fn decode_record(
    r: &mut Reader,
    header: &BatchHeader,
    budget: usize,
) -> Result<Record, RecordError> {
    let declared = r.varint("record length")?;
    let len = r
        .length(i64::from(declared), false, "record length")?
        .unwrap_or_default();
    let start = r.position();
    // A record running past the batch is `Truncated` (from `within`); fields running past
    // the record's declared length mean that length is wrong.
    r.within(len, |body| {
        decode_record_body(body, start, declared, header, budget).map_err(|e| match e {
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
    })
}

/// One record's fields from `body`, a view of exactly the record's declared length that
/// starts at `start`.
fn decode_record_body(
    body: &mut Reader,
    start: usize,
    declared: i32,
    header: &BatchHeader,
    budget: usize,
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
    let size = record_memory(header_count);
    if size > budget {
        return Err(RecordError::DecodedTooLarge {
            base_offset: body.base_offset,
            size,
            limit: budget,
        });
    }
    // `with_capacity(0)` is a call into the allocator's slow path; most records have none.
    let mut headers = if header_count == 0 {
        Vec::new()
    } else {
        Vec::with_capacity(header_count)
    };
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
            actual: body.position().saturating_sub(start),
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
