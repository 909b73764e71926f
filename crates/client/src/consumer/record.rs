//! [`ConsumerRecord`]: one record as the consumer returns it.

use std::sync::Arc;

use bytes::Bytes;

pub use kafkit_wire::record::batch::TimestampType;
pub use kafkit_wire::record::Header;

/// One fetched record.
///
/// `key`, `value` and header values are [`Bytes`] slices of the fetched (or, for compressed
/// batches, the decompressed) buffer: cloning a record copies no payload. The topic is an
/// `Arc<str>` shared by every record of the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp in milliseconds since the epoch (-1 when the batch has none).
    pub timestamp: i64,
    /// Whether the timestamp was set by the producer or by the broker.
    pub timestamp_type: TimestampType,
    /// The key, if any.
    pub key: Option<Bytes>,
    /// The value, if any (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in the order they were written.
    pub headers: Vec<Header>,
    /// The leader epoch of the batch the record was written in (KIP-320), when known.
    pub leader_epoch: Option<i32>,
}

impl ConsumerRecord {
    /// The value of the first header named `key`, if any.
    pub fn header(&self, key: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|h| h.key.as_ref() == key.as_bytes())
            .and_then(|h| h.value.as_ref())
    }
}
