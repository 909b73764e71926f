//! [`ProduceError`]: how a record can fail to be produced.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use crate::error::Error;

/// Why a record was not produced (or, for [`ProduceError::Closed`], may not have been).
///
/// Every record accepted by `Producer::send` ends with exactly one outcome: its
/// [`RecordMetadata`](super::RecordMetadata) or one of these.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The record (with batch overhead) is larger than `max.request.size` or
    /// `buffer.memory`; it was never queued.
    #[error("record of {size} bytes is larger than the limit of {max} bytes")]
    RecordTooLarge {
        /// The record's encoded size, batch overhead included.
        size: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// `delivery.timeout.ms` passed before the record's batch was acknowledged.
    #[error("{topic}-{partition}: not delivered within delivery.timeout.ms ({after:?})")]
    DeliveryTimeout {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The delivery timeout.
        after: Duration,
    },
    /// No `buffer.memory` became free within `max.block.ms` (or at once, for `try_send`).
    #[error("no producer buffer memory free within {waited:?}")]
    BufferExhausted {
        /// How long `send` waited.
        waited: Duration,
    },
    /// The producer was closed (or dropped) before the record's outcome was known. A record
    /// whose request was already written may nevertheless be in the log.
    #[error("the producer is closed")]
    Closed,
    /// The topic's metadata (it does not exist, or has no partitions) was not found within
    /// `max.block.ms`.
    #[error("topic {topic} not found within {waited:?}")]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// How long `send` waited.
        waited: Duration,
    },
    /// The record's explicit partition is not one of the topic's partitions.
    #[error("{topic} has {partition_count} partitions, not partition {partition}")]
    InvalidPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partition_count: u32,
    },
    /// The partition leader refused the batch with a non-retriable error (or retries ran out).
    #[error("{topic}-{partition}: {code} (error code {}){}", code.code(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// Kafka's error.
        code: ResponseError,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// The batch could not be encoded.
    #[error("cannot encode the batch: {0}")]
    Encode(String),
    /// A client error (connection, protocol) with retries exhausted or not retriable.
    #[error(transparent)]
    Client(#[from] Error),
}
