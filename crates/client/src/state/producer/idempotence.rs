//! Producer id, epoch and per-partition sequence numbers of an idempotent producer.
//!
//! Sequence numbers belong to the partition: a batch drained for partition P gets P's
//! `next_sequence` as its base sequence, and `next_sequence` advances by the batch's record
//! count, wrapping from `i32::MAX` to 0 as the broker expects. A batch keeps its sequence
//! across retries (the broker deduplicates it); only an epoch bump (KIP-360) resets every
//! partition to 0, after which unacknowledged batches get new sequences under the new epoch.

use std::collections::HashMap;

use super::batch::{Sequence, TopicPartition};

/// The next sequence of one partition.
#[derive(Debug, Clone, Copy, Default)]
struct PartitionSequence {
    next_sequence: i32,
    next_order: u64,
    /// The highest `order` acknowledged (any epoch).
    acked_order: Option<u64>,
    /// Whether a batch was acknowledged under the current epoch.
    confirmed: bool,
}

/// Sequence bookkeeping; inert (every batch unsequenced) when idempotence is off.
#[derive(Debug)]
pub struct Idempotence {
    enabled: bool,
    producer_id: i64,
    producer_epoch: i16,
    bump_requested: bool,
    partitions: HashMap<TopicPartition, PartitionSequence>,
}

/// `base + count`, wrapping past `i32::MAX` to 0 as Kafka does.
pub fn increment_sequence(base: i32, count: i32) -> i32 {
    let next = i64::from(base) + i64::from(count);
    let max = i64::from(i32::MAX);
    if next > max {
        i32::try_from(next - max - 1).unwrap_or(0)
    } else {
        i32::try_from(next).unwrap_or(0)
    }
}

impl Idempotence {
    /// Bookkeeping for an idempotent producer (`enabled`) or a plain one.
    pub fn new(enabled: bool) -> Self {
        Idempotence {
            enabled,
            producer_id: -1,
            producer_epoch: -1,
            bump_requested: false,
            partitions: HashMap::new(),
        }
    }

    /// Whether sequences are assigned at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The producer id and epoch (-1, -1 until InitProducerId answered).
    pub fn producer_id(&self) -> (i64, i16) {
        (self.producer_id, self.producer_epoch)
    }

    /// Whether batches may be sent: always without idempotence; with it, once a producer id
    /// is known and no epoch bump is pending.
    pub fn can_send(&self) -> bool {
        !self.enabled || (self.producer_id >= 0 && !self.bump_requested)
    }

    /// Whether an InitProducerId (first, or an epoch bump) is wanted.
    pub fn needs_producer_id(&self) -> bool {
        self.enabled && (self.producer_id < 0 || self.bump_requested)
    }

    /// Asks for an epoch bump (KIP-360): sending stops until [`Idempotence::set_producer_id`].
    pub fn request_epoch_bump(&mut self) {
        if self.enabled {
            self.bump_requested = true;
        }
    }

    /// Forgets the producer id (a bump was refused for good): the next InitProducerId asks
    /// for a new one.
    pub fn forget_producer_id(&mut self) {
        self.producer_id = -1;
        self.producer_epoch = -1;
        self.bump_requested = false;
    }

    /// Installs a producer id and epoch (from InitProducerId) and resets every partition's
    /// sequence to 0.
    pub fn set_producer_id(&mut self, producer_id: i64, producer_epoch: i16) {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.bump_requested = false;
        for p in self.partitions.values_mut() {
            p.next_sequence = 0;
            p.confirmed = false;
        }
    }

    /// The sequence for a batch of `record_count` records of `tp` drained now, advancing the
    /// partition's next sequence; `None` without idempotence.
    pub fn assign(&mut self, tp: &TopicPartition, record_count: usize) -> Option<Sequence> {
        if !self.enabled || self.producer_id < 0 {
            return None;
        }
        let p = self.partitions.entry(tp.clone()).or_default();
        let sequence = Sequence {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: p.next_sequence,
            order: p.next_order,
        };
        let count = i32::try_from(record_count).unwrap_or(i32::MAX);
        p.next_sequence = increment_sequence(p.next_sequence, count);
        p.next_order = p.next_order.saturating_add(1);
        Some(sequence)
    }

    /// Records that the batch with `sequence` of `tp` was acknowledged.
    pub fn acked(&mut self, tp: &TopicPartition, sequence: Option<Sequence>) {
        let Some(sequence) = sequence else {
            return;
        };
        let p = self.partitions.entry(tp.clone()).or_default();
        p.acked_order = Some(
            p.acked_order
                .map_or(sequence.order, |o| o.max(sequence.order)),
        );
        if sequence.producer_epoch == self.producer_epoch
            && sequence.producer_id == self.producer_id
        {
            p.confirmed = true;
        }
    }

    /// Whether a batch of `tp` drained after the one with `sequence` was acknowledged.
    pub fn acked_after(&self, tp: &TopicPartition, sequence: Option<Sequence>) -> bool {
        let (Some(sequence), Some(p)) = (sequence, self.partitions.get(tp)) else {
            return false;
        };
        p.acked_order.is_some_and(|o| o > sequence.order)
    }

    /// Whether `tp` has an acknowledged batch under the current epoch (the broker knows this
    /// producer there, so it checks sequences; until then one batch at a time is sent).
    pub fn confirmed(&self, tp: &TopicPartition) -> bool {
        !self.enabled || self.partitions.get(tp).is_some_and(|p| p.confirmed)
    }

    /// The next sequence of `tp` (for tests and metrics).
    pub fn next_sequence(&self, tp: &TopicPartition) -> i32 {
        self.partitions.get(tp).map_or(0, |p| p.next_sequence)
    }

    /// Sets the next sequence of `tp` (tests of the wrap at `i32::MAX`).
    pub fn set_next_sequence(&mut self, tp: &TopicPartition, next_sequence: i32) {
        self.partitions.entry(tp.clone()).or_default().next_sequence = next_sequence;
    }
}
