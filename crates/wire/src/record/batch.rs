//! The decoded shapes of a record batch: [`BatchHeader`], [`BatchAttributes`], [`Record`],
//! [`Header`] and [`RecordBatch`], plus the v2 layout constants.
//!
//! Layout of a v2 batch (all big-endian):
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | base offset (i64) |
//! | 8 | batch length (i32, bytes after this field) |
//! | 12 | partition leader epoch (i32) |
//! | 16 | magic (i8, 2) |
//! | 17 | CRC32C (u32) of bytes 21.. |
//! | 21 | attributes (i16) |
//! | 23 | last offset delta (i32) |
//! | 27 | base timestamp (i64) |
//! | 35 | max timestamp (i64) |
//! | 43 | producer id (i64) |
//! | 51 | producer epoch (i16) |
//! | 53 | base sequence (i32) |
//! | 57 | record count (i32) |
//! | 61 | records (possibly compressed) |

use bytes::Bytes;

use super::control::ControlRecord;
use crate::compression::Compression;

/// Bytes of a v2 batch before its records.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before the batch length field ends (base offset + batch length): a batch's total size
/// is this plus its batch length.
pub const LOG_OVERHEAD: usize = 12;
/// Offset of the magic byte, in v2 batches and legacy messages alike.
pub const MAGIC_OFFSET: usize = 16;
/// Offset of the first byte the v2 CRC32C covers (the attributes).
pub const CRC_START: usize = 21;
/// The record batch magic this crate encodes.
pub const MAGIC_V2: i8 = 2;
/// The timestamp Kafka uses for "none" (magic 0 messages, empty batches).
pub const NO_TIMESTAMP: i64 = -1;

/// Which clock a batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when appending.
    LogAppendTime,
}

/// The i16 attributes of a v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BatchAttributes {
    /// Bits 0-2: the codec of the records section.
    pub compression: Compression,
    /// Bit 3: the timestamp type.
    pub timestamp_type: TimestampType,
    /// Bit 4: the batch belongs to a transaction.
    pub transactional: bool,
    /// Bit 5: the batch holds control records (transaction markers).
    pub control: bool,
    /// Bit 6: the base timestamp is a delete horizon (set by log compaction).
    pub delete_horizon: bool,
}

impl BatchAttributes {
    /// Parses attribute bits; an unknown codec id is returned as `Err(id)`.
    pub fn from_bits(bits: i16) -> Result<Self, u8> {
        let id = (bits & 0x07) as u8;
        Ok(BatchAttributes {
            compression: Compression::from_id(id).ok_or(id)?,
            timestamp_type: if bits & 0x08 != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            transactional: bits & 0x10 != 0,
            control: bits & 0x20 != 0,
            delete_horizon: bits & 0x40 != 0,
        })
    }

    /// The attribute bits.
    pub fn to_bits(self) -> i16 {
        let mut bits = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            bits |= 0x08;
        }
        if self.transactional {
            bits |= 0x10;
        }
        if self.control {
            bits |= 0x20;
        }
        if self.delete_horizon {
            bits |= 0x40;
        }
        bits
    }
}

/// Every header field of a batch, as read from the wire.
///
/// Legacy message sets (magic 0/1) are surfaced with a synthesized header: producer fields
/// `-1`, partition leader epoch `-1`, base offset and timestamps from their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the batch length field.
    pub batch_length: i32,
    /// Leader epoch of the partition when the batch was appended.
    pub partition_leader_epoch: i32,
    /// Format version: 2 (or 0/1 for legacy messages).
    pub magic: i8,
    /// The stored CRC (CRC32C for v2, IEEE CRC32 of the wrapper for legacy).
    pub crc: u32,
    /// The attributes.
    pub attributes: BatchAttributes,
    /// Offset of the last record minus the base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see [`BatchAttributes`]).
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Offset of the last record the batch covers (compaction may have removed it).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset to fetch from after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
}

/// A record header: a string key (kept as bytes; see [`Header::key_str`]) and a nullable value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The key bytes (UTF-8 by convention).
    pub key: Bytes,
    /// The value, or `None` for null.
    pub value: Option<Bytes>,
}

impl Header {
    /// The key as `&str`, if it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// One decoded data record. Keys, values and headers are zero-copy slices of the fetched (or
/// decompressed) buffer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// Absolute offset (base offset + offset delta).
    pub offset: i64,
    /// Absolute timestamp: base timestamp + timestamp delta, or, in a LogAppendTime batch,
    /// the batch's max timestamp (the broker's append time), as Kafka's Java reader does.
    pub timestamp: i64,
    /// The record's own attribute byte (unused by Kafka today, kept as read).
    pub attributes: i8,
    /// The key, or `None` for null.
    pub key: Option<Bytes>,
    /// The value, or `None` for null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in wire order.
    pub headers: Vec<Header>,
}

/// The records of a batch: data records, or control records for control batches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BatchRecords {
    /// Ordinary records.
    Data(Vec<Record>),
    /// Transaction markers and other control records.
    Control(Vec<ControlRecord>),
}

/// A decoded batch: its header and its records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordBatch {
    /// Every header field.
    pub header: BatchHeader,
    /// The records.
    pub records: BatchRecords,
}

impl RecordBatch {
    /// The data records (empty for a control batch).
    pub fn records(&self) -> &[Record] {
        match &self.records {
            BatchRecords::Data(records) => records,
            BatchRecords::Control(_) => &[],
        }
    }

    /// The control records (empty for a data batch).
    pub fn control_records(&self) -> &[ControlRecord] {
        match &self.records {
            BatchRecords::Data(_) => &[],
            BatchRecords::Control(records) => records,
        }
    }

    /// Whether this is a control batch.
    pub fn is_control(&self) -> bool {
        matches!(self.records, BatchRecords::Control(_))
    }

    /// Number of records (data or control) decoded.
    pub fn len(&self) -> usize {
        match &self.records {
            BatchRecords::Data(r) => r.len(),
            BatchRecords::Control(r) => r.len(),
        }
    }

    /// Whether the batch holds no records (compaction can leave empty v2 batches).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
