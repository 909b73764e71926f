//! Producer id, epoch and per-partition sequence numbers of an idempotent producer.
//!
//! Sequence numbers belong to the partition: a batch drained for partition P gets P's
//! `next_sequence` as its base sequence, and `next_sequence` advances by the batch's record
//! count, wrapping from `i32::MAX` to 0 as the broker expects. A batch keeps its sequence
//! across retries (the broker deduplicates it).
//!
//! An epoch bump (KIP-360) restarts at 0, under the new epoch, only the partitions whose
//! sequence state is unresolved (a batch with a sequence failed there, or the broker refused
//! the sequence): their unacknowledged batches get new sequences. Every other partition keeps
//! its epoch and sequences, so a batch of it that may already be in the log (its response was
//! lost) is resent as it was and deduplicated; it moves to the new epoch once nothing of it is
//! in flight (as the Java client does). Re-sequencing every partition on a bump wrote such a
//! batch twice (found by the deterministic simulation, `sim::producer`). A new producer id, or
//! [`Idempotence::request_epoch_bump`] (a transaction's abort), restarts every partition.

use std::collections::{BTreeSet, HashMap};

use super::batch::{Sequence, TopicPartition};

/// The next sequence of one partition.
#[derive(Debug, Clone, Copy)]
struct PartitionSequence {
    next_sequence: i32,
    next_order: u64,
    /// The highest `order` acknowledged (any epoch).
    acked_order: Option<u64>,
    /// Whether a batch was acknowledged under the partition's epoch.
    confirmed: bool,
    /// The producer id and epoch the partition's sequences run under ((-1, -1): none yet).
    producer: (i64, i16),
}

impl Default for PartitionSequence {
    fn default() -> Self {
        PartitionSequence {
            next_sequence: 0,
            next_order: 0,
            acked_order: None,
            confirmed: false,
            producer: (-1, -1),
        }
    }
}

/// Sequence bookkeeping; inert (every batch unsequenced) when idempotence is off.
#[derive(Debug)]
pub struct Idempotence {
    enabled: bool,
    producer_id: i64,
    producer_epoch: i16,
    bump_requested: bool,
    /// Whether the next producer id restarts every partition.
    restart_all: bool,
    /// The partitions the next producer id restarts.
    restart: BTreeSet<TopicPartition>,
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
            restart_all: false,
            restart: BTreeSet::new(),
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

    /// Asks for an epoch bump (KIP-360) that restarts every partition's sequences: sending
    /// stops until [`Idempotence::set_producer_id`].
    pub fn request_epoch_bump(&mut self) {
        if self.enabled {
            self.bump_requested = true;
            self.restart_all = true;
        }
    }

    /// Asks for an epoch bump because the sequence state of `tp` is unresolved: sending stops
    /// until [`Idempotence::set_producer_id`], which restarts `tp` (and only the partitions
    /// asked for) at sequence 0 under the new epoch.
    ///
    /// ```
    /// use kafkit::state::producer::{Idempotence, TopicPartition};
    ///
    /// let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    /// let mut idem = Idempotence::new(true);
    /// idem.set_producer_id(7, 0);
    /// idem.assign(&a, 3);
    /// idem.assign(&b, 3);
    /// idem.request_epoch_bump_for(&a);
    /// assert!(!idem.can_send());
    /// idem.set_producer_id(7, 1);
    /// assert_eq!(idem.next_sequence(&a), 0);
    /// assert_eq!(idem.next_sequence(&b), 3); // b keeps epoch 0 and its sequences
    /// assert_eq!(idem.partition_producer(&b), Some((7, 0)));
    /// idem.adopt_current_epoch(&b); // once nothing of b is in flight
    /// assert_eq!((idem.partition_producer(&b), idem.next_sequence(&b)), (Some((7, 1)), 0));
    /// ```
    pub fn request_epoch_bump_for(&mut self, tp: &TopicPartition) {
        if self.enabled {
            self.bump_requested = true;
            self.restart.insert(tp.clone());
        }
    }

    /// The producer id and epoch `tp`'s sequences run under (`None` before its first batch).
    pub fn partition_producer(&self, tp: &TopicPartition) -> Option<(i64, i16)> {
        self.partitions
            .get(tp)
            .map(|p| p.producer)
            .filter(|p| p.0 >= 0)
    }

    /// Moves `tp` to the current producer id and epoch, at sequence 0, if it still runs under
    /// an older one. Call only when nothing of `tp` is in flight or queued with a sequence.
    pub fn adopt_current_epoch(&mut self, tp: &TopicPartition) {
        let current = (self.producer_id, self.producer_epoch);
        if let Some(p) = self.partitions.get_mut(tp) {
            if p.producer.0 >= 0 && p.producer != current {
                p.producer = current;
                p.next_sequence = 0;
                p.confirmed = false;
            }
        }
    }

    /// Forgets the producer id (a bump was refused for good): the next InitProducerId asks
    /// for a new one.
    pub fn forget_producer_id(&mut self) {
        self.producer_id = -1;
        self.producer_epoch = -1;
        self.bump_requested = false;
    }

    /// Installs a producer id and epoch (from InitProducerId). A new producer id, or a bump
    /// asked for with [`Idempotence::request_epoch_bump`], restarts every partition at
    /// sequence 0; a bump asked for with [`Idempotence::request_epoch_bump_for`] restarts the
    /// partitions named, and the others keep their epoch and sequences.
    pub fn set_producer_id(&mut self, producer_id: i64, producer_epoch: i16) {
        let all = self.restart_all || producer_id != self.producer_id;
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.bump_requested = false;
        self.restart_all = false;
        let restart = std::mem::take(&mut self.restart);
        for (tp, p) in &mut self.partitions {
            if all || restart.contains(tp) {
                p.next_sequence = 0;
                p.confirmed = false;
                p.producer = (producer_id, producer_epoch);
            }
        }
    }

    /// The sequence for a batch of `record_count` records of `tp` drained now, advancing the
    /// partition's next sequence; `None` without idempotence or before a producer id is known
    /// (the sender drains nothing then: [`Idempotence::can_send`]).
    pub fn assign(&mut self, tp: &TopicPartition, record_count: usize) -> Option<Sequence> {
        if !self.enabled || self.producer_id < 0 {
            return None;
        }
        let p = self.partitions.entry(tp.clone()).or_default();
        if p.producer.0 < 0 {
            p.producer = (self.producer_id, self.producer_epoch);
        }
        let sequence = Sequence {
            producer_id: p.producer.0,
            producer_epoch: p.producer.1,
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
        if (sequence.producer_id, sequence.producer_epoch) == p.producer {
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

    /// Whether `tp` has an acknowledged batch under its epoch (the broker knows this
    /// producer there, so it checks sequences; until then one batch at a time is sent).
    pub fn confirmed(&self, tp: &TopicPartition) -> bool {
        !self.enabled || self.partitions.get(tp).is_some_and(|p| p.confirmed)
    }

    /// The send-order position (`Sequence::order`) the next batch of `tp` gets.
    pub fn next_order(&self, tp: &TopicPartition) -> u64 {
        self.partitions.get(tp).map_or(0, |p| p.next_order)
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
