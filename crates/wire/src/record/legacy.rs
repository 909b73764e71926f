//! Legacy message sets, magic 0 and 1 (decode only).
//!
//! Each message is `offset: i64, message size: i32, crc: u32 (IEEE CRC32 of magic..end),
//! magic: i8, attributes: i8 (codec bits 0-2; bit 3 = LogAppendTime in v1), timestamp: i64
//! (v1 only), key: i32-length bytes, value: i32-length bytes` (-1 = null).
//!
//! A compressed message is a *wrapper*: its value is a compressed message set. In v1 the inner
//! offsets are relative: absolute = wrapper offset - last inner offset + inner offset. In v0
//! they are absolute. The wrapper's magic decides, whatever the inner messages' own magic. A v1 wrapper with LogAppendTime gives its timestamp to every inner
//! message.
//!
//! Each top-level message surfaces as one batch ([`StreamingBatch`], or
//! [`RecordBatch`](super::RecordBatch) when decoded whole) whose header is synthesized
//! (producer fields -1, base offset = first record, timestamps from the records). A wrapper's
//! inner messages are never all materialised at once: they are walked once to build that
//! header, then decoded one at a time from the decompressed buffer.

use bytes::Bytes;

use super::batch::{
    BatchAttributes, BatchHeader, Record, TimestampType, LOG_OVERHEAD, NO_TIMESTAMP,
};
use super::decode::DecodeLimits;
use super::error::RecordError;
use super::reader::Reader;
use super::streaming::StreamingBatch;
use crate::compression::{self, Compression};

/// Smallest magic 0 message, log overhead included (crc, magic, attributes, two null lengths).
pub const MIN_MESSAGE_V0_LEN: usize = LOG_OVERHEAD + 4 + 1 + 1 + 4 + 4;
/// Smallest magic 1 message, log overhead included (v0 plus the timestamp).
pub const MIN_MESSAGE_V1_LEN: usize = MIN_MESSAGE_V0_LEN + 8;

struct Message {
    offset: i64,
    crc: u32,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

/// Reads one whole message from `r` (which may hold more after it), comparing its CRC32 with
/// its bytes when `check_crc`.
fn read_message(r: &mut Reader, check_crc: bool) -> Result<Message, RecordError> {
    let offset = r.i64()?;
    r.base_offset = offset;
    let size = r.i32()?;
    let size = r
        .length(i64::from(size), false, "message size")?
        .unwrap_or_default();
    if size < MIN_MESSAGE_V0_LEN - LOG_OVERHEAD {
        return Err(r.invalid("message size", size as i64));
    }
    let mut m = Reader::new(r.bytes(size)?, offset);
    let crc = m.u32()?;
    let covered = m.bytes(m.remaining())?;
    if check_crc {
        let actual = crc32fast::hash(&covered);
        if actual != crc {
            return Err(RecordError::BadCrc {
                base_offset: offset,
                expected: crc,
                actual,
            });
        }
    }
    let mut m = Reader::new(covered, offset);
    let magic = m.i8()?;
    if magic != 0 && magic != 1 {
        return Err(RecordError::BadMagic {
            base_offset: offset,
            magic,
        });
    }
    let attributes = m.i8()?;
    let timestamp = if magic == 1 { m.i64()? } else { NO_TIMESTAMP };
    let key = m.i32_bytes("key length")?;
    let value = m.i32_bytes("value length")?;
    if m.remaining() != 0 {
        return Err(RecordError::TrailingBytes {
            base_offset: offset,
            count: m.remaining(),
        });
    }
    Ok(Message {
        offset,
        crc,
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

fn codec(m: &Message) -> Result<Compression, RecordError> {
    let id = (m.attributes & 0x07) as u8;
    Compression::from_id(id).ok_or(RecordError::UnknownCodec {
        base_offset: m.offset,
        id,
    })
}

fn timestamp_type(m: &Message) -> TimestampType {
    if m.magic == 1 && m.attributes & 0x08 != 0 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    }
}

fn to_record(m: Message) -> Record {
    Record {
        offset: m.offset,
        timestamp: m.timestamp,
        attributes: m.attributes,
        key: m.key,
        value: m.value,
        headers: Vec::new(),
    }
}

/// The records of one top-level legacy message, decoded as they are asked for: the message
/// itself, or a compressed wrapper's inner messages read one at a time from the one
/// decompressed buffer (checked whole first, see [`open_message`]).
#[derive(Debug)]
pub(crate) struct LegacyRecords {
    single: Option<Record>,
    inner: Option<Reader>,
    left: usize,
    /// Added to inner offsets (v1 wrappers' offsets are relative).
    shift: i64,
    /// A LogAppendTime wrapper's timestamp, every inner message's.
    log_append_time: Option<i64>,
}

impl LegacyRecords {
    pub(crate) fn remaining(&self) -> usize {
        self.left
    }

    pub(crate) fn next(&mut self, budget: usize) -> Result<Option<Record>, RecordError> {
        if self.left == 0 {
            return Ok(None);
        }
        let size = std::mem::size_of::<Record>();
        if size > budget {
            let base_offset = self.inner.as_ref().map_or(-1, |r| r.base_offset);
            return Err(RecordError::DecodedTooLarge {
                base_offset,
                size,
                limit: budget,
            });
        }
        self.left = self.left.saturating_sub(1);
        if let Some(record) = self.single.take() {
            return Ok(Some(record));
        }
        let Some(r) = self.inner.as_mut() else {
            return Ok(None);
        };
        // The first pass (`open_wrapper`) checked these bytes' CRCs when asked to.
        let mut m = read_message(r, false)?;
        m.offset = m.offset.wrapping_add(self.shift);
        if let Some(ts) = self.log_append_time {
            m.timestamp = ts;
        }
        Ok(Some(to_record(m)))
    }
}

/// What the first pass over a wrapper's inner messages learns (nothing is kept of them).
struct InnerSummary {
    count: usize,
    first: Option<(i64, i64)>,
    last_offset: i64,
    max_timestamp: i64,
}

/// Opens one top-level legacy message (exactly `bytes`). A compressed wrapper is decompressed
/// once and its inner messages walked once (CRCs, nesting, count, offsets, timestamps) to
/// synthesize the header; they are decoded again one at a time as the records are taken.
pub(crate) fn open_message(
    bytes: Bytes,
    limits: &DecodeLimits,
) -> Result<StreamingBatch, RecordError> {
    let batch_length = i32::try_from(bytes.len().saturating_sub(LOG_OVERHEAD)).unwrap_or(i32::MAX);
    let mut r = Reader::new(bytes, -1);
    let wrapper = read_message(&mut r, limits.check_crc)?;
    if r.remaining() != 0 {
        return Err(RecordError::TrailingBytes {
            base_offset: wrapper.offset,
            count: r.remaining(),
        });
    }
    let compression = codec(&wrapper)?;
    let ts_type = timestamp_type(&wrapper);
    let (magic, crc, wrapper_offset) = (wrapper.magic, wrapper.crc, wrapper.offset);
    let (records, summary) = if compression == Compression::None {
        let summary = InnerSummary {
            count: 1,
            first: Some((wrapper.offset, wrapper.timestamp)),
            last_offset: wrapper.offset,
            max_timestamp: wrapper.timestamp,
        };
        let records = LegacyRecords {
            single: Some(to_record(wrapper)),
            inner: None,
            left: 1,
            shift: 0,
            log_append_time: None,
        };
        (records, summary)
    } else {
        open_wrapper(wrapper, compression, ts_type, limits)?
    };
    let base_offset = summary.first.map_or(wrapper_offset, |(offset, _)| offset);
    let header = BatchHeader {
        base_offset,
        batch_length,
        partition_leader_epoch: -1,
        magic,
        crc,
        attributes: BatchAttributes {
            compression,
            timestamp_type: ts_type,
            ..BatchAttributes::default()
        },
        last_offset_delta: i32::try_from(summary.last_offset.wrapping_sub(base_offset))
            .unwrap_or(i32::MAX),
        base_timestamp: summary.first.map_or(NO_TIMESTAMP, |(_, ts)| ts),
        max_timestamp: summary.max_timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: i32::try_from(summary.count).unwrap_or(i32::MAX),
    };
    Ok(StreamingBatch::legacy(header, records, limits))
}

fn open_wrapper(
    wrapper: Message,
    compression: Compression,
    ts_type: TimestampType,
    limits: &DecodeLimits,
) -> Result<(LegacyRecords, InnerSummary), RecordError> {
    let base_offset = wrapper.offset;
    let value = wrapper.value.as_deref().ok_or(RecordError::InvalidLength {
        base_offset,
        field: "wrapper value length",
        value: -1,
    })?;
    let mut inner = Vec::with_capacity(super::decode::initial_capacity(value.len(), limits));
    compression::decompress(compression, value, limits.max_decompressed_size, &mut inner)
        .map_err(|e| RecordError::from_compression(base_offset, e))?;
    let inner = Bytes::from(inner);
    let log_append_time = (ts_type == TimestampType::LogAppendTime).then_some(wrapper.timestamp);
    // First pass: check every inner message, keep nothing of them.
    let mut r = Reader::new(inner.clone(), base_offset);
    let mut count = 0usize;
    let mut first = None;
    let mut last_offset = base_offset;
    let mut max_timestamp = NO_TIMESTAMP;
    while r.remaining() != 0 {
        // Inner magic may differ from the wrapper's (some clients wrap v0 messages in v1
        // wrappers); as in Java's consumer, the wrapper's magic decides how offsets are read.
        let m = read_message(&mut r, limits.check_crc)?;
        if codec(&m)? != Compression::None {
            return Err(RecordError::NestedCompression { base_offset });
        }
        let timestamp = log_append_time.unwrap_or(m.timestamp);
        first.get_or_insert((m.offset, timestamp));
        last_offset = m.offset;
        max_timestamp = max_timestamp.max(timestamp);
        count = count.saturating_add(1);
    }
    let shift = if wrapper.magic == 1 && count > 0 {
        base_offset.wrapping_sub(last_offset)
    } else {
        0
    };
    let summary = InnerSummary {
        count,
        first: first.map(|(offset, ts): (i64, i64)| (offset.wrapping_add(shift), ts)),
        last_offset: last_offset.wrapping_add(shift),
        max_timestamp,
    };
    let records = LegacyRecords {
        single: None,
        inner: Some(Reader::new(inner, base_offset)),
        left: count,
        shift,
        log_append_time,
    };
    Ok((records, summary))
}
