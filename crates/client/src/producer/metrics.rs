//! [`ProducerMetrics`]: a snapshot of the producer's counters.

/// Counters of one producer since it was created (a snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records acknowledged.
    pub records_sent: u64,
    /// Encoded batch bytes acknowledged.
    pub bytes_sent: u64,
    /// Records that ended with an error (the two expiry counters below included).
    pub records_failed: u64,
    /// Records that failed with `DeliveryTimeout { sent: false }`: expired before any
    /// request carried them, so not written.
    pub records_expired_unsent: u64,
    /// Records that failed with `DeliveryTimeout { sent: true }`: expired after a request
    /// carried them, so they may have been written (outcome unknown).
    pub records_expired_unknown: u64,
    /// Batches sent (each attempt counts).
    pub batches_sent: u64,
    /// Batches put back for a retry.
    pub retries: u64,
    /// Epoch bumps asked for (KIP-360).
    pub epoch_bumps: u64,
    /// Batches a broker refused as too large (`MESSAGE_TOO_LARGE`, `RECORD_LIST_TOO_LARGE`)
    /// and that were split to be sent in smaller pieces (Java's `batch-split-total`).
    pub batch_splits: u64,
    /// Produce requests waiting for their response.
    pub requests_in_flight: u64,
    /// `buffer.memory` bytes held by records not yet done.
    pub buffer_used: u64,
}
