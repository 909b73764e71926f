//! The idempotent producer's state, without I/O: batches ([`batch`]), the per-partition
//! queues ([`accumulator`]), producer id and sequence numbers ([`idempotence`]) and the
//! requests in flight with the rules for their responses ([`sender`]).
//!
//! A batch is *buffered* (in the accumulator), then *in flight* (drained into a request),
//! then either *done* (acknowledged or failed: every record has its outcome) or back to
//! *buffered* for a retry, keeping its sequence — also when the request's outcome is unknown.
//! [`node_latency`] tracks which leaders stopped taking batches
//! (`partitioner.availability.timeout.ms`).

pub mod accumulator;
pub mod batch;
pub mod idempotence;
pub mod node_latency;
pub mod sender;
pub mod transaction;

#[cfg(test)]
mod tests;

pub use accumulator::{Accumulator, AccumulatorConfig, Appended, ReadyCheck};
pub use batch::{
    max_buffered_size, AppendedRecord, BatchWritten, BufferedRecord, Completion, Outcome,
    ProducerBatch, Sequence, TopicPartition,
};
pub use idempotence::{increment_sequence, Idempotence};
pub use node_latency::NodeLatency;
pub use sender::{
    PartitionResponse, ProduceRequestPlan, RequestResult, SenderConfig, SenderState, SenderStats,
    Transmit,
};
pub use transaction::{TransactionPhase, TransactionState};
