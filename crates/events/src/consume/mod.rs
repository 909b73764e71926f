//! The sans-IO core of consuming events with handlers: what to do next, decided without sockets,
//! clocks or tasks.
//!
//! - [`retry`]: [`RetryPolicy`] (exponential backoff with full jitter) and [`FailureKind`] (may
//!   trying again help?).
//! - [`dead_letter`]: the dead-letter record (Spring Kafka's `kafka_dlt-*` headers), reading the
//!   error headers of Spring, Kafka Connect and Kafka Streams, and redrive to the original topic.
//! - `state`: `ProcessingState`, one per consumer: per-partition FIFO queues, at most one record
//!   of a partition in a handler, the concurrency limit, retry waits, dead letters, backpressure
//!   and commits — as `Action`s for the I/O driver to carry out. Its settings are
//!   [`ProcessingSettings`].
//! - `transactional`: the exactly-once consumer's decisions — a batch's time budget inside its
//!   transaction, retry-or-dead-letter-or-abort after a failed attempt, attempts carried over
//!   an aborted transaction.
//! - [`retry_topic`]: non-blocking retry topics (`<topic>-retry-<n>`, a due-time header): names,
//!   stages, the retry record (not used by the consumer's driver yet).

pub mod dead_letter;
pub mod retry;
pub mod retry_topic;
// Driven by the consumer's tokio driver (`crate::consumer`).
#[allow(dead_code)]
pub(crate) mod state;
pub(crate) mod transactional;

pub use dead_letter::{
    dead_letter_record, read_dead_letter, redrive_record, DeadLetterError, DeadLetterFormat,
    DeadLetterInfo, DeadLetterPolicy, Failure,
};
pub use retry::{FailureKind, HandlerFailure, RetryPolicy};
pub use state::ProcessingSettings;
#[allow(unused_imports)]
pub(crate) use state::{record_bytes, Action, ProcessingState};
