//! Control records: the transaction markers (and other broker-written records) that fill
//! control batches (attribute bit 5).
//!
//! The key is `version: i16, type: i16` (type 0 = ABORT, 1 = COMMIT); an end-transaction
//! marker's value is `version: i16, coordinator_epoch: i32`.
//!
//! ```
//! use kafkit_wire::record::control::{end_txn_marker_key, end_txn_marker_value, ControlRecordType};
//! assert_eq!(end_txn_marker_key(ControlRecordType::Commit), [0, 0, 0, 1]);
//! assert_eq!(end_txn_marker_value(7), [0, 0, 0, 0, 0, 7]);
//! ```

use bytes::Bytes;

use super::batch::Record;
use super::error::RecordError;

/// The type of a control record (the key's second i16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// Type 0: the transaction was aborted.
    Abort,
    /// Type 1: the transaction was committed.
    Commit,
    /// Any other type (KRaft leader change, snapshot markers, …), kept as read.
    Other(i16),
}

impl ControlRecordType {
    /// The type for its wire id.
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        }
    }

    /// The wire id.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(id) => id,
        }
    }
}

/// A decoded control record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// Absolute offset.
    pub offset: i64,
    /// Absolute timestamp.
    pub timestamp: i64,
    /// The key's version field.
    pub version: i16,
    /// The key's type field.
    pub kind: ControlRecordType,
    /// For ABORT/COMMIT markers: the transaction coordinator's epoch.
    pub coordinator_epoch: Option<i32>,
    /// The raw value (for types this crate does not interpret).
    pub value: Option<Bytes>,
}

/// The key of an end-transaction marker (version 0).
pub fn end_txn_marker_key(kind: ControlRecordType) -> [u8; 4] {
    let [a, b] = 0i16.to_be_bytes();
    let [c, d] = kind.id().to_be_bytes();
    [a, b, c, d]
}

/// The value of an end-transaction marker (version 0) with `coordinator_epoch`.
pub fn end_txn_marker_value(coordinator_epoch: i32) -> [u8; 6] {
    let [a, b] = 0i16.to_be_bytes();
    let [c, d, e, f] = coordinator_epoch.to_be_bytes();
    [a, b, c, d, e, f]
}

fn be_i16(bytes: &[u8], at: usize) -> Option<i16> {
    let end = at.checked_add(2)?;
    let slice: [u8; 2] = bytes.get(at..end)?.try_into().ok()?;
    Some(i16::from_be_bytes(slice))
}

fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let end = at.checked_add(4)?;
    let slice: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(i32::from_be_bytes(slice))
}

/// Interprets a record of a control batch.
pub(crate) fn from_record(record: Record, base_offset: i64) -> Result<ControlRecord, RecordError> {
    let invalid = |reason| RecordError::InvalidControlRecord {
        base_offset,
        reason,
    };
    let key = record.key.ok_or_else(|| invalid("null key"))?;
    let version = be_i16(&key, 0).ok_or_else(|| invalid("key shorter than 4 bytes"))?;
    let kind = be_i16(&key, 2)
        .map(ControlRecordType::from_id)
        .ok_or_else(|| invalid("key shorter than 4 bytes"))?;
    let coordinator_epoch = match kind {
        ControlRecordType::Abort | ControlRecordType::Commit => {
            let value = record
                .value
                .as_deref()
                .ok_or_else(|| invalid("null marker value"))?;
            Some(be_i32(value, 2).ok_or_else(|| invalid("marker value shorter than 6 bytes"))?)
        }
        ControlRecordType::Other(_) => None,
    };
    Ok(ControlRecord {
        offset: record.offset,
        timestamp: record.timestamp,
        version,
        kind,
        coordinator_epoch,
        value: record.value,
    })
}
