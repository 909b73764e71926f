//! [`ProduceError`]: how a record can fail to be produced.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use crate::error::Error;

/// Why a record was not produced, or why its outcome is not known.
///
/// Every record accepted by `Producer::send` ends with exactly one outcome: its
/// [`RecordMetadata`](super::RecordMetadata) or one of these. Most of these say the record
/// was not written; [`ProduceError::is_outcome_unknown`] says when it may have been (a delivery
/// timeout after the batch was sent, a lost response, a close that cut requests short).
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
    /// The record's timestamp is negative. Kafka's create times are milliseconds since the
    /// epoch, from 0 on (a negative one reads as "no timestamp"); the record was never queued,
    /// as the Java client's `ProducerRecord` refuses it.
    #[error("invalid timestamp {timestamp}: a record's timestamp must be 0 or more (ms since the epoch)")]
    InvalidTimestamp {
        /// The timestamp the record carried.
        timestamp: i64,
    },
    /// `delivery.timeout.ms` passed before the record's batch was acknowledged.
    ///
    /// Whether the record may nevertheless be in the log depends on `sent`:
    ///
    /// - `sent: false` — the batch never reached a broker (it waited in the queue: no leader,
    ///   a leader that could not be connected to, retries that never got a request onto a
    ///   connection). The record was **not written**.
    /// - `sent: true` — a request carrying the batch reached (or may have reached) a broker:
    ///   a response was lost, a request timed out, the broker answered with a retriable error
    ///   and the retry expired in the queue. The outcome is **unknown**: the record may be in
    ///   the log ([`ProduceError::is_outcome_unknown`] says `true`). The Java client has the
    ///   same window; read the topic back, or rely on idempotent consumers, when that matters.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kafkit::producer::ProduceError;
    ///
    /// let never_sent = ProduceError::DeliveryTimeout {
    ///     topic: "orders".into(),
    ///     partition: 0,
    ///     after: Duration::from_secs(120),
    ///     sent: false,
    /// };
    /// assert!(!never_sent.is_outcome_unknown());
    /// assert!(never_sent.to_string().contains("never sent"));
    /// let in_flight = ProduceError::DeliveryTimeout {
    ///     topic: "orders".into(),
    ///     partition: 0,
    ///     after: Duration::from_secs(120),
    ///     sent: true,
    /// };
    /// assert!(in_flight.is_outcome_unknown());
    /// assert!(in_flight.to_string().contains("may have been written"));
    /// ```
    #[error("{topic}-{partition}: {}", delivery_timeout_text(*sent, *after))]
    DeliveryTimeout {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The delivery timeout.
        after: Duration,
        /// Whether a request carrying the record reached (or may have reached) a broker:
        /// `false` means the record was not written, `true` that it may have been.
        sent: bool,
    },
    /// No `buffer.memory` became free within `max.block.ms` (or at once, for `try_send`).
    #[error("no producer buffer memory free within {waited:?}")]
    BufferExhausted {
        /// How long `send` waited.
        waited: Duration,
    },
    /// The producer was closed (or dropped) before the record's outcome was known. A record
    /// whose request was already written may nevertheless be in the log (so
    /// [`ProduceError::is_outcome_unknown`] says `true`).
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
    /// The record could not be encoded into its batch (returned by `send`; the records
    /// appended before it are not affected), or its batch could not be encoded for a send
    /// (its records fail together).
    #[error("cannot encode the batch: {0}")]
    Encode(String),
    /// A client error (connection, protocol) with retries exhausted or not retriable.
    #[error(transparent)]
    Client(#[from] Error),
    /// The transactional producer refused the record or failed it: a send outside a
    /// transaction, into a transaction that must abort, or by a fenced producer. A record
    /// failed this way is not part of any committed transaction.
    #[error("transaction: {0}")]
    Transaction(Box<super::TransactionError>),
    /// The record's transaction was aborted before the record was sent.
    #[error("the transaction was aborted")]
    Aborted,
}

fn delivery_timeout_text(sent: bool, after: Duration) -> String {
    if sent {
        format!(
            "not acknowledged within delivery.timeout.ms ({after:?}); it was sent, so it may \
             have been written (outcome unknown)"
        )
    } else {
        format!("never sent within delivery.timeout.ms ({after:?}); not written")
    }
}

impl ProduceError {
    /// Whether the record may have been written although this error is its outcome: a
    /// [`DeliveryTimeout`](ProduceError::DeliveryTimeout) after the batch was sent, a
    /// [`Closed`](ProduceError::Closed) producer (its requests may have been written), or a
    /// client error whose request's response was lost ([`Error::is_outcome_unknown`]).
    ///
    /// `false`: the failure itself says the record was not written. For
    /// [`Broker`](ProduceError::Broker) and [`Client`](ProduceError::Client) errors that holds
    /// for the attempt that failed; an earlier attempt of the same batch whose response was
    /// lost may still have written it when the producer is not idempotent (an idempotent one
    /// resends it with the same sequence, which the broker answers as a duplicate: success).
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            ProduceError::DeliveryTimeout { sent, .. } => *sent,
            ProduceError::Closed => true,
            ProduceError::Client(error) => error.is_outcome_unknown(),
            _ => false,
        }
    }
}
