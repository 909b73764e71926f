//! What goes in ([`ProducerRecord`]) and what comes out ([`RecordMetadata`]; the
//! [`DeliveryFuture`](super::DeliveryFuture) is in `delivery.rs`).

use std::sync::Arc;

use bytes::Bytes;

use super::header::HeaderName;
use super::topic::Topic;
use super::HeaderBlock;

/// One record to produce.
///
/// ```
/// use kafkit::producer::ProducerRecord;
///
/// let record = ProducerRecord::new("orders")
///     .key("customer-7")
///     .value("{\"total\": 12}")
///     .header("trace-id", Some("abc"))
///     .partition(3);
/// assert_eq!(record.partition, Some(3));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic (a [`Topic`]: cheap to clone; build it once and clone it per record).
    pub topic: Topic,
    /// An explicit partition; `None` lets the partitioner choose (key hash or sticky).
    pub partition: Option<i32>,
    /// The key (`None`: a null key).
    pub key: Option<Bytes>,
    /// The value (`None`: a null value, a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order (`None` value: a null header value). A name is a [`HeaderName`]:
    /// a `&'static str` costs no allocation per record (`"trace-id".into()`).
    pub headers: Vec<(HeaderName, Option<Bytes>)>,
    /// Headers encoded once and shared by many records (a [`HeaderBlock`]: cloning it costs
    /// one reference count), written on the wire before `headers`, copied into the batch at
    /// once: for headers that are the same on every record of a kind. `None`: none.
    pub header_block: Option<HeaderBlock>,
    /// Create time in ms since the epoch; `None`: the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` (`&str`, `String`, `Arc<str>` or a [`Topic`]) with no key, no
    /// value, no headers. From a `&str` or `String` this allocates the name; clone one
    /// [`Topic`] per record instead when sending many records.
    pub fn new(topic: impl Into<Topic>) -> Self {
        // Field by field: `..default()` would build (and drop) a default topic's `Arc`.
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            header_block: None,
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sets an explicit partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the create timestamp (ms since the epoch, 0 or more: `send` refuses a negative one
    /// with [`ProduceError::InvalidTimestamp`](super::ProduceError::InvalidTimestamp)).
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Sets the shared header block, written before the record's own headers (a consumer
    /// reads the block's headers first). Build the block once and clone it per record.
    ///
    /// ```
    /// use kafkit::producer::{HeaderBlock, ProducerRecord};
    ///
    /// let app = HeaderBlock::new(&[("app", Some("shop")), ("region", Some("eu"))])?; // once
    /// let record = ProducerRecord::new("orders")
    ///     .with_header_block(app.clone())
    ///     .header("trace-id", Some("abc"));
    /// assert_eq!(record.header_block.as_ref().map(HeaderBlock::count), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_header_block(mut self, block: HeaderBlock) -> Self {
        self.header_block = Some(block);
        self
    }

    /// Appends a header. The name is a [`HeaderName`]: from a `&'static str` without
    /// allocating, from a `String` or an `Arc<str>` otherwise.
    pub fn header(mut self, key: impl Into<HeaderName>, value: Option<impl Into<Bytes>>) -> Self {
        self.headers.push((key.into(), value.map(Into::into)));
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when unknown: with `acks=0`, and when the broker reported the
    /// batch as a duplicate (`DUPLICATE_SEQUENCE_NUMBER`: written by an earlier attempt whose
    /// response was lost).
    pub offset: i64,
    /// The record's timestamp: its create time, or the broker's log append time when the
    /// topic uses `LogAppendTime`.
    pub timestamp: i64,
}
