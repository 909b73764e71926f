//! The exactly-once consumer's decisions, without I/O: how long a polled batch may take inside
//! its transaction, whether the retry settings fit in that, what follows a failed handler
//! attempt, and the attempts of records whose transaction aborted (kept, so a record read
//! again goes on where it stopped instead of starting its retries over, and a record whose
//! handler keeps outliving the transaction ends in the dead letter instead of aborting it
//! forever).
//!
//! Call order, per polled batch (one transaction): [`TransactionBudget::deadline`] from the
//! batch's start; per record [`RetryMemory::get`] (carried attempts, due time, dead letter
//! at once when exhausted); after a failed attempt [`after_failure`]; when the batch cannot
//! finish ([`Next::Abort`] or the deadline passed) [`RetryMemory::failed`] for the records
//! concerned; after the commit [`RetryMemory::committed`]; at each batch
//! [`RetryMemory::retain`] with the assignment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafkit::TopicPartition;

use crate::consume::dead_letter::Failure;
use crate::consume::retry::{FailureKind, RetryPolicy};

/// How long one polled batch may take between its poll and its commit: half of the smaller of
/// `transaction.timeout.ms` (the coordinator aborts an older transaction) and
/// `max.poll.interval.ms` (the member leaves the group when it does not poll), leaving the
/// other half for the commit and the poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransactionBudget {
    pub(crate) per_batch: Duration,
}

impl TransactionBudget {
    pub(crate) fn new(transaction_timeout: Duration, max_poll_interval: Duration) -> Self {
        TransactionBudget {
            per_batch: transaction_timeout.min(max_poll_interval) / 2,
        }
    }

    /// When a batch that started at `started` must be done.
    pub(crate) fn deadline(&self, started: Instant) -> Instant {
        started + self.per_batch
    }

    /// Whether one record's retry waits, each at its ceiling, fit in a batch's budget (else
    /// every record failing that often would abort its transaction).
    pub(crate) fn fits(&self, policy: &RetryPolicy) -> bool {
        worst_case_waits(policy) <= self.per_batch
    }
}

/// The sum of a record's retry waits at their ceilings (`max_retries` waits), saturating.
pub(crate) fn worst_case_waits(policy: &RetryPolicy) -> Duration {
    let mut total = Duration::ZERO;
    if policy.initial_backoff().is_zero() {
        return total;
    }
    let mut attempt = 1;
    while attempt <= policy.max_retries() {
        let ceiling = policy.ceiling(attempt);
        if ceiling >= policy.max_backoff() {
            // Every later wait is at the cap.
            let left = policy.max_retries() - attempt + 1;
            return total.saturating_add(policy.max_backoff().saturating_mul(left));
        }
        total = total.saturating_add(ceiling);
        attempt += 1;
    }
    total
}

/// What follows a failed handler attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Wait `delay`, then call the handler again (inside the same transaction).
    Retry { delay: Duration },
    /// Retries exhausted or not retriable: write the dead letter inside the transaction.
    DeadLetter,
    /// The wait would end past the batch's deadline: abort the transaction; the record is
    /// read again (its attempts carried by [`RetryMemory`]).
    Abort,
}

/// After `attempts` handler calls of a record, the last failing with `kind`, and a wait of
/// `delay` drawn for the next one.
pub(crate) fn after_failure(
    policy: &RetryPolicy,
    kind: FailureKind,
    attempts: u32,
    delay: Duration,
    now: Instant,
    deadline: Instant,
) -> Next {
    if !policy.should_retry(kind, attempts) {
        Next::DeadLetter
    } else if now + delay > deadline {
        Next::Abort
    } else {
        Next::Retry { delay }
    }
}

/// What a record's earlier, aborted transactions left.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Carried {
    /// Handler calls made so far (a call cut by the batch deadline counts).
    pub(crate) attempts: u32,
    /// Not before this instant is the handler called again.
    pub(crate) due: Instant,
    /// The last failure (for the dead letter).
    pub(crate) failure: Failure,
    /// Whether that failure may be retried.
    pub(crate) kind: FailureKind,
}

impl Carried {
    /// Whether the record goes to the dead letter without another handler call.
    pub(crate) fn exhausted(&self, policy: &RetryPolicy) -> bool {
        !policy.should_retry(self.kind, self.attempts)
    }
}

/// Attempts of records whose transaction did not commit, by partition and offset. Bounded:
/// entries go when their offsets commit or their partition is no longer assigned, and at most
/// [`RetryMemory::CAP`] are kept (the oldest offsets of a partition go first: they are
/// retried from attempt 1 again, never skipped).
#[derive(Debug, Default)]
pub(crate) struct RetryMemory {
    by_record: HashMap<TopicPartition, Vec<(i64, Carried)>>,
    len: usize,
}

impl RetryMemory {
    /// The most records remembered.
    pub(crate) const CAP: usize = 1_000;

    pub(crate) fn get(&self, tp: &TopicPartition, offset: i64) -> Option<&Carried> {
        self.by_record
            .get(tp)?
            .iter()
            .find(|(o, _)| *o == offset)
            .map(|(_, c)| c)
    }

    /// The record at `tp`/`offset` failed its `carried.attempts`-th call.
    pub(crate) fn failed(&mut self, tp: &TopicPartition, offset: i64, carried: Carried) {
        if let Some(records) = self.by_record.get_mut(tp) {
            if let Some(entry) = records.iter_mut().find(|(o, _)| *o == offset) {
                entry.1 = carried;
                return;
            }
        }
        if self.len >= Self::CAP {
            // This partition's oldest first, else any partition's.
            let victim = match self.by_record.get_mut(tp) {
                Some(records) if !records.is_empty() => Some(records),
                _ => self.by_record.values_mut().find(|r| !r.is_empty()),
            };
            if let Some(records) = victim {
                records.remove(0);
                self.len -= 1;
            }
        }
        self.by_record
            .entry(tp.clone())
            .or_default()
            .push((offset, carried));
        self.len += 1;
    }

    /// The record at `tp`/`offset` succeeded: nothing to carry.
    pub(crate) fn handled(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(records) = self.by_record.get_mut(tp) {
            let before = records.len();
            records.retain(|(o, _)| *o != offset);
            self.len -= before - records.len();
        }
    }

    /// Offsets below `next` of each partition committed: forget them.
    pub(crate) fn committed<'a>(
        &mut self,
        next: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
    ) {
        for (tp, next) in next {
            if let Some(records) = self.by_record.get_mut(tp) {
                let before = records.len();
                records.retain(|(o, _)| *o >= next);
                self.len -= before - records.len();
            }
        }
        self.by_record.retain(|_, r| !r.is_empty());
    }

    /// Forgets partitions not in `assigned` (their next owner starts at the commit).
    pub(crate) fn retain(&mut self, assigned: &[TopicPartition]) {
        self.by_record.retain(|tp, _| assigned.contains(tp));
        self.len = self.by_record.values().map(Vec::len).sum();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retries: u32, initial_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy::new(
            retries,
            Duration::from_millis(initial_ms),
            Duration::from_millis(max_ms),
        )
        .unwrap()
    }

    fn carried(attempts: u32, kind: FailureKind) -> Carried {
        Carried {
            attempts,
            due: Instant::now(),
            failure: Failure::new("c", "m", 0),
            kind,
        }
    }

    #[test]
    fn the_budget_is_half_the_smaller_limit() {
        let b = TransactionBudget::new(Duration::from_secs(60), Duration::from_secs(300));
        assert_eq!(b.per_batch, Duration::from_secs(30));
        let b = TransactionBudget::new(Duration::from_secs(60), Duration::from_secs(10));
        assert_eq!(b.per_batch, Duration::from_secs(5));
    }

    #[test]
    fn worst_case_waits_sum_the_ceilings() {
        // The seeds' defaults: 1 + 2 + 4 s.
        assert_eq!(
            worst_case_waits(&policy(3, 1000, 32_000)),
            Duration::from_secs(7)
        );
        // 1 + 2 + 4 + 8 + 16 + 32 × 5.
        assert_eq!(
            worst_case_waits(&policy(10, 1000, 32_000)),
            Duration::from_secs(191)
        );
        assert_eq!(worst_case_waits(&policy(0, 1000, 32_000)), Duration::ZERO);
        assert_eq!(worst_case_waits(&policy(u32::MAX, 0, 0)), Duration::ZERO);
        // Huge counts saturate instead of looping or overflowing.
        assert!(worst_case_waits(&policy(u32::MAX, 1, 32_000)) > Duration::from_secs(3600));
        let b = TransactionBudget::new(Duration::from_secs(60), Duration::from_secs(300));
        assert!(b.fits(&policy(3, 1000, 32_000)));
        assert!(!b.fits(&policy(10, 1000, 32_000)));
    }

    #[test]
    fn a_failure_retries_inside_the_budget_else_aborts_else_dead_letters() {
        let p = policy(2, 100, 1000);
        let now = Instant::now();
        let deadline = now + Duration::from_secs(1);
        let d = Duration::from_millis(200);
        assert_eq!(
            after_failure(&p, FailureKind::Retriable, 1, d, now, deadline),
            Next::Retry { delay: d }
        );
        assert_eq!(
            after_failure(&p, FailureKind::Retriable, 2, d, now, deadline),
            Next::Retry { delay: d }
        );
        assert_eq!(
            after_failure(&p, FailureKind::Retriable, 3, d, now, deadline),
            Next::DeadLetter
        );
        assert_eq!(
            after_failure(&p, FailureKind::NotRetriable, 1, d, now, deadline),
            Next::DeadLetter
        );
        assert_eq!(
            after_failure(
                &p,
                FailureKind::Retriable,
                1,
                Duration::from_secs(2),
                now,
                deadline
            ),
            Next::Abort
        );
    }

    #[test]
    fn memory_carries_attempts_until_committed_or_revoked() {
        let mut m = RetryMemory::default();
        let p = policy(2, 100, 1000);
        let a = TopicPartition::new("t", 0);
        let b = TopicPartition::new("t", 1);
        m.failed(&a, 5, carried(1, FailureKind::Retriable));
        m.failed(&a, 5, carried(3, FailureKind::Retriable));
        m.failed(&a, 9, carried(1, FailureKind::NotRetriable));
        m.failed(&b, 2, carried(1, FailureKind::Retriable));
        assert_eq!(m.len(), 3);
        assert!(m.get(&a, 5).unwrap().exhausted(&p));
        assert!(m.get(&a, 9).unwrap().exhausted(&p));
        assert!(!m.get(&b, 2).unwrap().exhausted(&p));
        m.committed([(&a, 6)]);
        assert!(m.get(&a, 5).is_none());
        assert!(m.get(&a, 9).is_some());
        m.handled(&a, 9);
        assert!(m.get(&a, 9).is_none());
        m.retain(std::slice::from_ref(&a));
        assert!(m.get(&b, 2).is_none());
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut m = RetryMemory::default();
        let a = TopicPartition::new("t", 0);
        for offset in 0..(RetryMemory::CAP as i64 + 10) {
            m.failed(&a, offset, carried(1, FailureKind::Retriable));
        }
        assert_eq!(m.len(), RetryMemory::CAP);
        assert!(m.get(&a, 0).is_none(), "the oldest went first");
        assert!(m.get(&a, RetryMemory::CAP as i64 + 9).is_some());
    }
}
