//! [`ProcessingState`]: what the event consumer does next, decided without I/O.
//!
//! One per consumer. The driver pushes fetched records, carries out the [`Action`]s that
//! [`ProcessingState::poll_action`] returns (until `None`), reports handler and dead-letter
//! outcomes and commit acknowledgements, and wakes at [`ProcessingState::next_deadline`]. Time is
//! passed in; there is no clock inside.
//!
//! Rules:
//! - Each assigned partition has a FIFO queue; its head is the only record of the partition that
//!   may be in a handler, in a retry wait or in a dead-letter write. At most
//!   `max_concurrent_partitions` records are in handlers at once (a handler of a revoked
//!   partition still counts until it reports).
//! - A failed record is retried in place after [`RetryPolicy::delay`] while the partition is
//!   paused (the consumer keeps polling, so `max.poll.interval.ms` is not exceeded); when retries
//!   are exhausted, or at once for [`FailureKind::NotRetriable`](crate::consume::FailureKind::NotRetriable), it becomes an
//!   [`Action::DeadLetter`] (or [`Action::Discard`] when dead letters are disabled). A failed
//!   dead-letter write is retried with the same backoff, forever: the record is acknowledged
//!   only when the dead letter is.
//! - The commit position of a partition is the offset after its last acknowledged (handled,
//!   dead-lettered or discarded) record: never past a record not yet acknowledged. Commits are
//!   batched: every `commit_every_n` acknowledgements or `commit_interval` after the first
//!   uncommitted one.
//! - A partition whose buffered bytes reach `max_buffered_bytes_per_partition` is paused and
//!   resumed when they drop below half. The bytes can pass the limit by the records of one
//!   poll (pushed before the pause takes effect).
//! - Revocation drops the partition's queue (in-flight results are ignored) and returns its
//!   position if not yet committed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use kafkit::consumer::ConsumerRecord;
use kafkit::rng::XorShift64Star;
use kafkit::TopicPartition;

use crate::consume::dead_letter::{DeadLetterPolicy, Failure};
use crate::consume::retry::{HandlerFailure, RetryPolicy};
use crate::error::EventsError;

/// The consumer's processing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessingSettings {
    /// Partitions whose handlers may run at once (default 16). At least 1.
    pub max_concurrent_partitions: usize,
    /// Buffered record bytes (key + value + headers) per partition at which it is paused
    /// (default 1 MiB); resumed below half. At least 1.
    pub max_buffered_bytes_per_partition: usize,
    /// Commit at the latest this long after the first uncommitted acknowledgement (default 5 s).
    pub commit_interval: Duration,
    /// Commit after this many acknowledgements (default 500). At least 1.
    pub commit_every_n: usize,
    /// Retries of failed handlers.
    pub retry: RetryPolicy,
    /// Dead letters.
    pub dead_letter: DeadLetterPolicy,
}

impl Default for ProcessingSettings {
    fn default() -> Self {
        ProcessingSettings {
            max_concurrent_partitions: 16,
            max_buffered_bytes_per_partition: 1024 * 1024,
            commit_interval: Duration::from_secs(5),
            commit_every_n: 500,
            retry: RetryPolicy::default(),
            dead_letter: DeadLetterPolicy::default(),
        }
    }
}

impl ProcessingSettings {
    /// Refuses a zero limit with [`EventsError::Configuration`] naming the field.
    pub fn validate(&self) -> Result<(), EventsError> {
        let checks = [
            ("max_concurrent_partitions", self.max_concurrent_partitions),
            (
                "max_buffered_bytes_per_partition",
                self.max_buffered_bytes_per_partition,
            ),
            ("commit_every_n", self.commit_every_n),
        ];
        for (name, value) in checks {
            if value == 0 {
                return Err(EventsError::configuration(name, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The bytes a record holds in memory, as counted for backpressure: key, value, header keys and
/// values.
pub(crate) fn record_bytes(record: &ConsumerRecord) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
        .sum();
    record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + headers
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Call the handler with `record` (attempt 1-based). At most one per partition at a time.
    Dispatch {
        tp: TopicPartition,
        record: ConsumerRecord,
        attempt: u32,
    },
    /// Write the dead letter of `record`; report with [`ProcessingState::dead_lettered`].
    DeadLetter {
        tp: TopicPartition,
        record: ConsumerRecord,
        failure: Failure,
    },
    /// Dead letters are disabled: `record` is given up (log it); already acknowledged.
    Discard {
        tp: TopicPartition,
        record: ConsumerRecord,
        failure: Failure,
    },
    /// Commit these positions (next offset to read); report with
    /// [`ProcessingState::committed`] or [`ProcessingState::commit_failed`].
    Commit(Vec<(TopicPartition, i64)>),
    /// Stop fetching these partitions.
    Pause(Vec<TopicPartition>),
    /// Fetch these partitions again.
    Resume(Vec<TopicPartition>),
}

/// What the head of a partition's queue is doing.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// The head (if any) waits for a handler slot; `attempt` is its next handler call.
    Ready { attempt: u32 },
    /// The head is in a handler.
    InHandler { attempt: u32 },
    /// The head failed `attempt` times and waits until `due` for its next call.
    RetryWait { due: Instant, attempt: u32 },
    /// The head's dead letter is to be written (`writes` failed writes so far).
    DeadLetterDue { failure: Failure, writes: u32 },
    /// The head's dead letter is being written.
    DeadLetterWriting { failure: Failure, writes: u32 },
    /// A dead-letter write failed; the next one is due at `due`.
    DeadLetterWait {
        due: Instant,
        failure: Failure,
        writes: u32,
    },
}

#[derive(Debug)]
struct Partition {
    queue: VecDeque<ConsumerRecord>,
    bytes: usize,
    phase: Phase,
    /// The offset after the last record pushed (records at or below are dropped as duplicates).
    next_push: Option<i64>,
    /// The offset after the last acknowledged record.
    acked: Option<i64>,
    /// The last position sent in a Commit.
    sent: Option<i64>,
    /// The last position the broker acknowledged.
    confirmed: Option<i64>,
    /// Over the byte limit (cleared below half).
    full: bool,
    /// Paused, as last told to the driver.
    paused: bool,
}

impl Partition {
    fn new() -> Self {
        Partition {
            queue: VecDeque::new(),
            bytes: 0,
            phase: Phase::Ready { attempt: 1 },
            next_push: None,
            acked: None,
            sent: None,
            confirmed: None,
            full: false,
            paused: false,
        }
    }

    fn waiting(&self) -> bool {
        matches!(
            self.phase,
            Phase::RetryWait { .. } | Phase::DeadLetterWait { .. }
        )
    }

    fn wants_pause(&self) -> bool {
        self.full || self.waiting()
    }

    fn head_offset(&self) -> Option<i64> {
        self.queue.front().map(|r| r.offset)
    }

    /// Acknowledges the head: pops it, moves the position past it.
    fn ack_head(&mut self) -> Option<ConsumerRecord> {
        let record = self.queue.pop_front()?;
        self.bytes = self.bytes.saturating_sub(record_bytes(&record));
        self.acked = Some(record.offset.saturating_add(1));
        self.phase = Phase::Ready { attempt: 1 };
        Some(record)
    }
}

/// The sans-IO processing core of one event consumer (see the module docs).
#[derive(Debug)]
pub(crate) struct ProcessingState {
    settings: ProcessingSettings,
    partitions: BTreeMap<TopicPartition, Partition>,
    /// Handlers and dead-letter writes still running for revoked partitions: their results are
    /// ignored, and a reassigned partition dispatches nothing until they report.
    orphans: BTreeSet<(TopicPartition, i64)>,
    /// Records in handlers (assigned partitions and orphans).
    in_handlers: usize,
    /// Orphans that are handler calls (the rest are dead-letter writes).
    orphan_handlers: BTreeSet<(TopicPartition, i64)>,
    /// Acknowledgements since the last Commit.
    acks_since_commit: usize,
    /// When the first uncommitted acknowledgement was seen by `poll_action`.
    commit_clock: Option<Instant>,
    /// The partition dispatched last (round robin).
    cursor: Option<TopicPartition>,
    rng: XorShift64Star,
}

impl ProcessingState {
    /// A state with `settings` (refused when [`ProcessingSettings::validate`] fails), jitter from
    /// process entropy.
    pub(crate) fn new(settings: ProcessingSettings) -> Result<Self, EventsError> {
        Self::with_seed(settings, XorShift64Star::from_entropy())
    }

    /// A state whose jitter follows `rng` (tests).
    pub(crate) fn with_seed(
        settings: ProcessingSettings,
        rng: XorShift64Star,
    ) -> Result<Self, EventsError> {
        settings.validate()?;
        Ok(ProcessingState {
            settings,
            partitions: BTreeMap::new(),
            orphans: BTreeSet::new(),
            in_handlers: 0,
            orphan_handlers: BTreeSet::new(),
            acks_since_commit: 0,
            commit_clock: None,
            cursor: None,
            rng,
        })
    }

    /// The settings.
    pub(crate) fn settings(&self) -> &ProcessingSettings {
        &self.settings
    }

    /// Partitions assigned to this member (fresh queues; already assigned ones are kept).
    pub(crate) fn assign(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.partitions
                .entry(tp.clone())
                .or_insert_with(Partition::new);
        }
    }

    /// Partitions taken away: their queues are dropped (a record in a handler or a dead-letter
    /// write finishes, but its result is ignored). Returns the positions of these partitions
    /// that are acknowledged but not yet confirmed committed: commit them now.
    pub(crate) fn revoke(&mut self, tps: &[TopicPartition]) -> Vec<(TopicPartition, i64)> {
        let mut out = Vec::new();
        for tp in tps {
            let Some(p) = self.partitions.remove(tp) else {
                continue;
            };
            if let Some(offset) = p.head_offset() {
                match p.phase {
                    Phase::InHandler { .. } => {
                        self.orphans.insert((tp.clone(), offset));
                        self.orphan_handlers.insert((tp.clone(), offset));
                    }
                    Phase::DeadLetterWriting { .. } => {
                        self.orphans.insert((tp.clone(), offset));
                    }
                    _ => {}
                }
            }
            if let Some(acked) = p.acked {
                if p.confirmed.is_none_or(|c| acked > c) {
                    out.push((tp.clone(), acked));
                }
            }
            if self.cursor.as_ref() == Some(tp) {
                self.cursor = None;
            }
        }
        out
    }

    /// A fetched record. Records of partitions not assigned, and records at or below an offset
    /// already pushed, are dropped.
    pub(crate) fn push(&mut self, record: ConsumerRecord, _now: Instant) {
        let tp = TopicPartition::new(record.topic.as_ref(), record.partition);
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        if p.next_push.is_some_and(|next| record.offset < next) {
            return;
        }
        p.next_push = Some(record.offset.saturating_add(1));
        p.bytes = p.bytes.saturating_add(record_bytes(&record));
        if p.bytes >= self.settings.max_buffered_bytes_per_partition {
            p.full = true;
        }
        p.queue.push_back(record);
    }

    /// The next thing to do; call until `None` after every push, report and wake-up.
    pub(crate) fn poll_action(&mut self, now: Instant) -> Option<Action> {
        // Due waits end.
        for p in self.partitions.values_mut() {
            match &p.phase {
                Phase::RetryWait { due, attempt } if *due <= now => {
                    p.phase = Phase::Ready {
                        attempt: attempt.saturating_add(1),
                    };
                }
                Phase::DeadLetterWait {
                    due,
                    failure,
                    writes,
                } if *due <= now => {
                    p.phase = Phase::DeadLetterDue {
                        failure: failure.clone(),
                        writes: *writes,
                    };
                }
                _ => {}
            }
            if p.full && p.bytes < self.settings.max_buffered_bytes_per_partition / 2 {
                p.full = false;
            }
        }
        if let Some(action) = self.pause_or_resume() {
            return Some(action);
        }
        if let Some(action) = self.next_dead_letter() {
            return Some(action);
        }
        if let Some(action) = self.next_dispatch() {
            return Some(action);
        }
        self.next_commit(now)
    }

    fn pause_or_resume(&mut self) -> Option<Action> {
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for (tp, p) in &self.partitions {
            match (p.paused, p.wants_pause()) {
                (false, true) => pause.push(tp.clone()),
                (true, false) => resume.push(tp.clone()),
                _ => {}
            }
        }
        if !pause.is_empty() {
            for tp in &pause {
                if let Some(p) = self.partitions.get_mut(tp) {
                    p.paused = true;
                }
            }
            return Some(Action::Pause(pause));
        }
        if !resume.is_empty() {
            for tp in &resume {
                if let Some(p) = self.partitions.get_mut(tp) {
                    p.paused = false;
                }
            }
            return Some(Action::Resume(resume));
        }
        None
    }

    fn next_dead_letter(&mut self) -> Option<Action> {
        let enabled = self.settings.dead_letter.enabled;
        for (tp, p) in self.partitions.iter_mut() {
            let Phase::DeadLetterDue { failure, writes } = &p.phase else {
                continue;
            };
            let (failure, writes) = (failure.clone(), *writes);
            if enabled {
                let record = p.queue.front()?.clone();
                p.phase = Phase::DeadLetterWriting {
                    failure: failure.clone(),
                    writes,
                };
                return Some(Action::DeadLetter {
                    tp: tp.clone(),
                    record,
                    failure,
                });
            }
            let record = p.ack_head()?;
            self.acks_since_commit += 1;
            return Some(Action::Discard {
                tp: tp.clone(),
                record,
                failure,
            });
        }
        None
    }

    fn next_dispatch(&mut self) -> Option<Action> {
        if self.in_handlers >= self.settings.max_concurrent_partitions {
            return None;
        }
        let ready =
            |tp: &TopicPartition, p: &Partition, orphans: &BTreeSet<(TopicPartition, i64)>| {
                matches!(p.phase, Phase::Ready { .. })
                    && !p.queue.is_empty()
                    && !orphans
                        .range((tp.clone(), i64::MIN)..=(tp.clone(), i64::MAX))
                        .any(|_| true)
            };
        let after = match &self.cursor {
            Some(cursor) => self
                .partitions
                .range::<TopicPartition, _>((
                    std::ops::Bound::Excluded(cursor),
                    std::ops::Bound::Unbounded,
                ))
                .find(|(tp, p)| ready(tp, p, &self.orphans))
                .map(|(tp, _)| tp.clone()),
            None => None,
        };
        let tp = after.or_else(|| {
            self.partitions
                .iter()
                .find(|(tp, p)| ready(tp, p, &self.orphans))
                .map(|(tp, _)| tp.clone())
        })?;
        let p = self.partitions.get_mut(&tp)?;
        let Phase::Ready { attempt } = p.phase else {
            return None;
        };
        let record = p.queue.front()?.clone();
        p.phase = Phase::InHandler { attempt };
        self.in_handlers += 1;
        self.cursor = Some(tp.clone());
        Some(Action::Dispatch {
            tp,
            record,
            attempt,
        })
    }

    fn next_commit(&mut self, now: Instant) -> Option<Action> {
        let pending = self
            .partitions
            .values()
            .any(|p| p.acked.is_some_and(|a| p.sent.is_none_or(|s| a > s)));
        if !pending {
            self.commit_clock = None;
            return None;
        }
        let since = *self.commit_clock.get_or_insert(now);
        let due = self.acks_since_commit >= self.settings.commit_every_n
            || now.saturating_duration_since(since) >= self.settings.commit_interval;
        if !due {
            return None;
        }
        Some(Action::Commit(self.take_commit()))
    }

    /// Every acknowledged position not yet sent in a commit, marked sent (for the final commit
    /// on close; `poll_action` batches the others).
    pub(crate) fn take_commit(&mut self) -> Vec<(TopicPartition, i64)> {
        let mut out = Vec::new();
        for (tp, p) in self.partitions.iter_mut() {
            if let Some(acked) = p.acked {
                if p.sent.is_none_or(|s| acked > s) {
                    p.sent = Some(acked);
                    out.push((tp.clone(), acked));
                }
            }
        }
        self.acks_since_commit = 0;
        self.commit_clock = None;
        out
    }

    /// A handler call for `offset` of `tp` finished. Results that do not match the record in a
    /// handler (a revoked partition's, a duplicate report) are ignored.
    pub(crate) fn handled(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        outcome: Result<(), HandlerFailure>,
        now: Instant,
    ) {
        let key = (tp.clone(), offset);
        if self.orphan_handlers.remove(&key) {
            self.orphans.remove(&key);
            self.in_handlers = self.in_handlers.saturating_sub(1);
            return;
        }
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Phase::InHandler { attempt } = p.phase else {
            return;
        };
        if p.head_offset() != Some(offset) {
            return;
        }
        self.in_handlers = self.in_handlers.saturating_sub(1);
        match outcome {
            Ok(()) => {
                p.ack_head();
                self.acks_since_commit += 1;
            }
            Err(HandlerFailure { kind, mut failure }) => {
                if self.settings.retry.should_retry(kind, attempt) {
                    let delay = self.settings.retry.delay(attempt, &mut self.rng);
                    p.phase = Phase::RetryWait {
                        due: now + delay,
                        attempt,
                    };
                } else {
                    failure.attempts = attempt;
                    p.phase = Phase::DeadLetterDue { failure, writes: 0 };
                }
            }
        }
    }

    /// The dead letter of `offset` of `tp` was acknowledged (`Ok`) or failed (`Err`: written
    /// again after a backoff; the record stays unacknowledged meanwhile).
    pub(crate) fn dead_lettered(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        outcome: Result<(), String>,
        now: Instant,
    ) {
        let key = (tp.clone(), offset);
        if !self.orphan_handlers.contains(&key) && self.orphans.remove(&key) {
            return;
        }
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Phase::DeadLetterWriting { failure, writes } = &p.phase else {
            return;
        };
        if p.head_offset() != Some(offset) {
            return;
        }
        match outcome {
            Ok(()) => {
                p.ack_head();
                self.acks_since_commit += 1;
            }
            Err(_) => {
                let writes = writes.saturating_add(1);
                let delay = self.settings.retry.delay(writes, &mut self.rng);
                p.phase = Phase::DeadLetterWait {
                    due: now + delay,
                    failure: failure.clone(),
                    writes,
                };
            }
        }
    }

    /// The broker acknowledged a commit of these positions.
    pub(crate) fn committed(&mut self, offsets: &[(TopicPartition, i64)]) {
        for (tp, offset) in offsets {
            if let Some(p) = self.partitions.get_mut(tp) {
                if p.confirmed.is_none_or(|c| *offset > c) {
                    p.confirmed = Some(*offset);
                }
            }
        }
    }

    /// A commit of these positions failed: they are sent again with the next batch.
    pub(crate) fn commit_failed(&mut self, offsets: &[(TopicPartition, i64)]) {
        for (tp, offset) in offsets {
            if let Some(p) = self.partitions.get_mut(tp) {
                if p.sent == Some(*offset) {
                    p.sent = p.confirmed;
                }
            }
        }
    }

    /// Stops processing for a graceful close: queued records not yet started (and those waiting
    /// for a retry) are dropped, unacknowledged; handlers and dead letters under way finish.
    pub(crate) fn drain(&mut self) {
        for p in self.partitions.values_mut() {
            let keep_head = matches!(
                p.phase,
                Phase::InHandler { .. }
                    | Phase::DeadLetterDue { .. }
                    | Phase::DeadLetterWriting { .. }
                    | Phase::DeadLetterWait { .. }
            );
            let keep = usize::from(keep_head);
            while p.queue.len() > keep {
                if let Some(r) = p.queue.pop_back() {
                    p.bytes = p.bytes.saturating_sub(record_bytes(&r));
                }
            }
            if !keep_head {
                p.phase = Phase::Ready { attempt: 1 };
            }
            // Dropped records must be fetched again if processing went on.
            p.next_push = p
                .queue
                .back()
                .map(|r| r.offset.saturating_add(1))
                .or(p.acked);
        }
    }

    /// When `poll_action` has something to do without another event: the earliest retry or
    /// dead-letter wait, or the commit interval's end.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let waits = self.partitions.values().filter_map(|p| match &p.phase {
            Phase::RetryWait { due, .. } | Phase::DeadLetterWait { due, .. } => Some(*due),
            _ => None,
        });
        let commit = self
            .commit_clock
            .map(|since| since + self.settings.commit_interval);
        waits.chain(commit).min()
    }

    /// Record bytes buffered in all partitions (including records in handlers).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.partitions.values().map(|p| p.bytes).sum()
    }

    /// Record bytes buffered for `tp`.
    pub(crate) fn buffered_bytes_of(&self, tp: &TopicPartition) -> usize {
        self.partitions.get(tp).map_or(0, |p| p.bytes)
    }

    /// Whether a record of `tp` is in a handler (a driver may wait for it before revoking).
    pub(crate) fn is_in_flight(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(|p| {
            matches!(
                p.phase,
                Phase::InHandler { .. } | Phase::DeadLetterWriting { .. }
            )
        }) || self.orphans.iter().any(|(t, _)| t == tp)
    }

    /// Nothing queued, in a handler or in a dead-letter write (a graceful close may finish).
    pub(crate) fn is_idle(&self) -> bool {
        self.in_handlers == 0
            && self.orphans.is_empty()
            && self.partitions.values().all(|p| p.queue.is_empty())
    }

    /// Whether `tp` should be paused now (backpressure or a wait): what the driver was last told
    /// once `poll_action` returned `None`.
    #[cfg(test)]
    pub(crate) fn wants_pause(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(Partition::wants_pause)
    }

    /// The assigned partitions.
    pub(crate) fn assigned(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions.keys()
    }
}

#[cfg(test)]
mod tests;
