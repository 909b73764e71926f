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
//! Each top-level message surfaces as one [`RecordBatch`] whose header is synthesized
//! (producer fields -1, base offset = first record, timestamps from the records).

use bytes::Bytes;

use super::batch::{
    BatchAttributes, BatchHeader, BatchRecords, Record, RecordBatch, TimestampType, LOG_OVERHEAD,
    NO_TIMESTAMP,
};
use super::decode::DecodeLimits;
use super::error::RecordError;
use super::reader::Reader;
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

/// Reads one whole message from `r` (which may hold more after it).
fn read_message(r: &mut Reader) -> Result<Message, RecordError> {
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
    let actual = crc32fast::hash(&covered);
    if actual != crc {
        return Err(RecordError::BadCrc {
            base_offset: offset,
            expected: crc,
            actual,
        });
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

/// Decodes one top-level legacy message (exactly `bytes`), expanding a compressed wrapper.
pub(crate) fn decode_message(
    bytes: Bytes,
    limits: &DecodeLimits,
) -> Result<RecordBatch, RecordError> {
    let batch_length = i32::try_from(bytes.len().saturating_sub(LOG_OVERHEAD)).unwrap_or(i32::MAX);
    let mut r = Reader::new(bytes, -1);
    let wrapper = read_message(&mut r)?;
    if r.remaining() != 0 {
        return Err(RecordError::TrailingBytes {
            base_offset: wrapper.offset,
            count: r.remaining(),
        });
    }
    let compression = codec(&wrapper)?;
    let ts_type = timestamp_type(&wrapper);
    let (magic, crc, wrapper_offset) = (wrapper.magic, wrapper.crc, wrapper.offset);
    let records = if compression == Compression::None {
        vec![to_record(wrapper)]
    } else {
        expand_wrapper(wrapper, compression, ts_type, limits)?
    };
    let first = records.first();
    let base_offset = first.map_or(wrapper_offset, |r| r.offset);
    let last_offset = records.last().map_or(wrapper_offset, |r| r.offset);
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
        last_offset_delta: i32::try_from(last_offset.wrapping_sub(base_offset)).unwrap_or(i32::MAX),
        base_timestamp: first.map_or(NO_TIMESTAMP, |r| r.timestamp),
        max_timestamp: records
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(NO_TIMESTAMP),
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: i32::try_from(records.len()).unwrap_or(i32::MAX),
    };
    Ok(RecordBatch {
        header,
        records: BatchRecords::Data(records),
    })
}

fn expand_wrapper(
    wrapper: Message,
    compression: Compression,
    ts_type: TimestampType,
    limits: &DecodeLimits,
) -> Result<Vec<Record>, RecordError> {
    let base_offset = wrapper.offset;
    let value = wrapper.value.as_deref().ok_or(RecordError::InvalidLength {
        base_offset,
        field: "wrapper value length",
        value: -1,
    })?;
    let mut inner = Vec::with_capacity(super::decode::initial_capacity(value.len(), limits));
    compression::decompress(compression, value, limits.max_decompressed_size, &mut inner)
        .map_err(|e| RecordError::from_compression(base_offset, e))?;
    let min_len = if wrapper.magic == 0 {
        MIN_MESSAGE_V0_LEN
    } else {
        MIN_MESSAGE_V1_LEN
    };
    let mut r = Reader::new(Bytes::from(inner), base_offset);
    let mut messages = Vec::with_capacity(r.remaining().checked_div(min_len).unwrap_or_default());
    while r.remaining() != 0 {
        // Inner magic may differ from the wrapper's (some clients wrap v0 messages in v1 wrappers);
        // as in Java's consumer, the wrapper's magic decides how offsets are read.
        let m = read_message(&mut r)?;
        if codec(&m)? != Compression::None {
            return Err(RecordError::NestedCompression { base_offset });
        }
        messages.push(m);
    }
    let shift = match (wrapper.magic, messages.last()) {
        (1, Some(last)) => base_offset.wrapping_sub(last.offset),
        _ => 0,
    };
    Ok(messages
        .into_iter()
        .map(|mut m| {
            m.offset = m.offset.wrapping_add(shift);
            if ts_type == TimestampType::LogAppendTime {
                m.timestamp = wrapper.timestamp;
            }
            to_record(m)
        })
        .collect())
}
