//! The consume-transform-produce loop's decisions (`TransactionalPipeline`,
//! `pipeline.rs`): which transaction is open, which input it consumed, the offsets it commits,
//! when it is due, whether a rebalance must abort it, and where the consumer goes back to
//! after an abort. No sockets, no clock: the caller passes `now`.
//!
//! Call order, per polled batch:
//! 1. records came and no transaction is open: [`PipelineState::begin`] (after the producer's
//!    `begin_transaction` succeeded);
//! 2. [`PipelineState::note_consumed`] for every record handed to the transform;
//! 3. [`PipelineState::commit_due`]: if so, [`PipelineState::offsets`] go to
//!    `send_offsets_to_transaction`, then `commit_transaction`, then
//!    [`PipelineState::committed`];
//! 4. on any abort (a transform error, an abortable producer error, a rebalance for which
//!    [`PipelineState::must_abort_on_revoke`] says so): `abort_transaction`, then
//!    [`PipelineState::aborted`], then [`rewind_targets`] for the partitions still owned.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::state::group::{OffsetAndMetadata, TopicPartition};

/// What the open transaction consumed of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The first offset handed to the transform in this transaction (where the partition
    /// restarts if the transaction aborts and nothing is committed).
    pub first: i64,
    /// The offset to commit: last offset + 1, with the last record's leader epoch.
    pub next: OffsetAndMetadata,
}

/// Counters of what the pipeline did.
///
/// ```
/// use kafkit::pipeline::PipelineStats;
///
/// let stats = PipelineStats::default();
/// assert_eq!(stats.transactions_committed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Transactions committed.
    pub transactions_committed: u64,
    /// Transactions aborted (for any reason, rebalances included).
    pub transactions_aborted: u64,
    /// Of these, the ones aborted because a rebalance revoked or lost partitions while they
    /// were open.
    pub aborted_by_rebalance: u64,
    /// Input records whose transaction committed.
    pub records_committed: u64,
    /// Input records whose transaction aborted (they are read again).
    pub records_aborted: u64,
}

/// A committed or aborted transaction, as [`PipelineState`] saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndedTransaction {
    /// Input records handed to the transform inside it.
    pub records: u64,
    /// What it consumed, per partition.
    pub partitions: BTreeMap<TopicPartition, Consumed>,
}

#[derive(Debug, Clone)]
struct Open {
    started: Instant,
    records: u64,
    partitions: BTreeMap<TopicPartition, Consumed>,
}

/// The pipeline's transaction bookkeeping; see the module docs for the call order.
///
/// ```
/// use std::time::{Duration, Instant};
/// use kafkit::state::group::TopicPartition;
/// use kafkit::state::pipeline::PipelineState;
///
/// let mut state = PipelineState::new();
/// let now = Instant::now();
/// state.begin(now);
/// let tp = TopicPartition::new("in", 0);
/// state.note_consumed(&tp, 7, Some(2));
/// state.note_consumed(&tp, 8, Some(2));
/// assert!(state.commit_due(now, Duration::ZERO));
/// assert_eq!(state.offsets()[&tp].offset, 9);
/// assert_eq!(state.committed().records, 2);
/// assert!(!state.is_open());
/// ```
#[derive(Debug, Clone, Default)]
pub struct PipelineState {
    open: Option<Open>,
    /// How many transactions were begun: a sink belongs to one and refuses sends after it.
    generation: u64,
    stats: PipelineStats,
}

impl PipelineState {
    /// No transaction open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a transaction is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The number of the current (or last) transaction.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether sends tagged with `generation` still belong to an open transaction.
    pub fn accepts(&self, generation: u64) -> bool {
        self.is_open() && self.generation == generation
    }

    /// The counters.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// A transaction was begun at `now`; returns its generation. A transaction already open
    /// stays open (and keeps its generation).
    pub fn begin(&mut self, now: Instant) -> u64 {
        if self.open.is_none() {
            self.generation += 1;
            self.open = Some(Open {
                started: now,
                records: 0,
                partitions: BTreeMap::new(),
            });
        }
        self.generation
    }

    /// A record of `tp` at `offset` was handed to the transform inside the open transaction
    /// (ignored when none is open). The offset to commit becomes the highest offset seen + 1.
    pub fn note_consumed(&mut self, tp: &TopicPartition, offset: i64, leader_epoch: Option<i32>) {
        let Some(open) = &mut self.open else {
            return;
        };
        open.records += 1;
        let next = OffsetAndMetadata {
            offset: offset.saturating_add(1),
            leader_epoch,
            metadata: None,
        };
        match open.partitions.get_mut(tp) {
            Some(c) => {
                c.first = c.first.min(offset);
                if next.offset > c.next.offset {
                    c.next = next;
                }
            }
            None => {
                open.partitions.insert(
                    tp.clone(),
                    Consumed {
                        first: offset,
                        next,
                    },
                );
            }
        }
    }

    /// Whether the open transaction should commit now: `interval` zero commits after every
    /// polled batch; otherwise once `interval` has passed since it began.
    pub fn commit_due(&self, now: Instant, interval: Duration) -> bool {
        match &self.open {
            Some(open) => {
                interval.is_zero() || now.saturating_duration_since(open.started) >= interval
            }
            None => false,
        }
    }

    /// The offsets the open transaction commits (per partition: last offset + 1); empty when
    /// none is open.
    pub fn offsets(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.open
            .iter()
            .flat_map(|o| o.partitions.iter())
            .map(|(tp, c)| (tp.clone(), c.next.clone()))
            .collect()
    }

    /// How many input records the open transaction holds.
    pub fn open_records(&self) -> u64 {
        self.open.as_ref().map_or(0, |o| o.records)
    }

    /// Whether revoking or losing `partitions` must abort the open transaction: it consumed
    /// one of them (its offsets could then be committed by the partition's next owner too).
    pub fn must_abort_on_revoke(&self, partitions: &[TopicPartition]) -> bool {
        self.open
            .as_ref()
            .is_some_and(|o| partitions.iter().any(|tp| o.partitions.contains_key(tp)))
    }

    /// The open transaction committed.
    pub fn committed(&mut self) -> EndedTransaction {
        let ended = self.close();
        self.stats.transactions_committed += 1;
        self.stats.records_committed += ended.records;
        ended
    }

    /// The open transaction aborted (`rebalance`: because partitions were revoked or lost).
    /// Returns what it had consumed: those partitions go back (see [`rewind_targets`]).
    pub fn aborted(&mut self, rebalance: bool) -> EndedTransaction {
        let ended = self.close();
        self.stats.transactions_aborted += 1;
        self.stats.records_aborted += ended.records;
        if rebalance {
            self.stats.aborted_by_rebalance += 1;
        }
        ended
    }

    fn close(&mut self) -> EndedTransaction {
        match self.open.take() {
            Some(open) => EndedTransaction {
                records: open.records,
                partitions: open.partitions,
            },
            None => EndedTransaction::default(),
        }
    }
}

/// Where each partition of an aborted transaction restarts: only the ones still `owned`
/// (a revoked partition's next owner starts from the group's committed offset), at the
/// group's `committed` offset when there is one, else at the first offset the transaction
/// consumed (nothing committed yet: the transaction began there). Never past the aborted
/// input, so nothing of it is skipped.
///
/// ```
/// use std::collections::BTreeMap;
/// use kafkit::state::group::{OffsetAndMetadata, TopicPartition};
/// use kafkit::state::pipeline::{rewind_targets, Consumed};
///
/// let tp = TopicPartition::new("in", 0);
/// let aborted = BTreeMap::from([(tp.clone(), Consumed { first: 10, next: OffsetAndMetadata::new(15) })]);
/// let committed = BTreeMap::from([(tp.clone(), Some(OffsetAndMetadata::new(10)))]);
/// assert_eq!(rewind_targets(&aborted, &[tp.clone()], &committed), vec![(tp, 10)]);
/// ```
pub fn rewind_targets(
    aborted: &BTreeMap<TopicPartition, Consumed>,
    owned: &[TopicPartition],
    committed: &BTreeMap<TopicPartition, Option<OffsetAndMetadata>>,
) -> Vec<(TopicPartition, i64)> {
    aborted
        .iter()
        .filter(|(tp, _)| owned.contains(tp))
        .map(|(tp, c)| {
            let offset = match committed.get(tp) {
                // A committed offset past the aborted input's start would skip input: it
                // cannot be (the aborted offsets never committed), so trust the local start.
                Some(Some(o)) if o.offset <= c.first => o.offset,
                _ => c.first,
            };
            (tp.clone(), offset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("in", p)
    }

    #[test]
    fn offsets_are_last_plus_one_per_partition_with_the_last_epoch() {
        let mut s = PipelineState::new();
        let now = Instant::now();
        s.begin(now);
        s.note_consumed(&tp(0), 5, Some(1));
        s.note_consumed(&tp(1), 100, None);
        s.note_consumed(&tp(0), 6, Some(2));
        let offsets = s.offsets();
        assert_eq!(
            offsets[&tp(0)],
            OffsetAndMetadata::new(7).with_leader_epoch(2)
        );
        assert_eq!(offsets[&tp(1)], OffsetAndMetadata::new(101));
        assert_eq!(s.open_records(), 3);
    }

    #[test]
    fn a_lower_offset_never_moves_the_commit_back_but_moves_the_start() {
        let mut s = PipelineState::new();
        s.begin(Instant::now());
        s.note_consumed(&tp(0), 9, None);
        s.note_consumed(&tp(0), 4, None);
        assert_eq!(s.offsets()[&tp(0)].offset, 10);
        let ended = s.aborted(false);
        assert_eq!(ended.partitions[&tp(0)].first, 4);
    }

    #[test]
    fn records_outside_a_transaction_are_ignored() {
        let mut s = PipelineState::new();
        s.note_consumed(&tp(0), 1, None);
        assert!(!s.is_open());
        assert!(s.offsets().is_empty());
        assert!(!s.commit_due(Instant::now(), Duration::ZERO));
        assert_eq!(s.committed(), EndedTransaction::default());
    }

    #[test]
    fn commit_is_due_at_once_or_after_the_interval() {
        let mut s = PipelineState::new();
        let t0 = Instant::now();
        s.begin(t0);
        assert!(s.commit_due(t0, Duration::ZERO));
        let interval = Duration::from_millis(100);
        assert!(!s.commit_due(t0 + Duration::from_millis(99), interval));
        assert!(s.commit_due(t0 + interval, interval));
    }

    #[test]
    fn begin_while_open_keeps_the_transaction_and_its_generation() {
        let mut s = PipelineState::new();
        let t0 = Instant::now();
        let g = s.begin(t0);
        s.note_consumed(&tp(0), 1, None);
        assert_eq!(s.begin(t0 + Duration::from_secs(1)), g);
        assert_eq!(s.open_records(), 1);
        assert!(s.accepts(g));
        s.committed();
        assert!(!s.accepts(g), "a sink of an ended transaction is refused");
        let g2 = s.begin(t0);
        assert_ne!(g, g2);
        assert!(!s.accepts(g));
    }

    #[test]
    fn revocation_aborts_only_a_transaction_that_consumed_a_revoked_partition() {
        let mut s = PipelineState::new();
        assert!(!s.must_abort_on_revoke(&[tp(0)]), "nothing open");
        s.begin(Instant::now());
        s.note_consumed(&tp(0), 1, None);
        assert!(!s.must_abort_on_revoke(&[tp(1)]));
        assert!(!s.must_abort_on_revoke(&[]));
        assert!(s.must_abort_on_revoke(&[tp(1), tp(0)]));
    }

    #[test]
    fn stats_count_commits_and_aborts() {
        let mut s = PipelineState::new();
        let now = Instant::now();
        s.begin(now);
        s.note_consumed(&tp(0), 1, None);
        s.note_consumed(&tp(0), 2, None);
        s.committed();
        s.begin(now);
        s.note_consumed(&tp(0), 3, None);
        s.aborted(true);
        s.begin(now);
        s.note_consumed(&tp(0), 3, None);
        s.aborted(false);
        assert_eq!(
            s.stats(),
            PipelineStats {
                transactions_committed: 1,
                transactions_aborted: 2,
                aborted_by_rebalance: 1,
                records_committed: 2,
                records_aborted: 2,
            }
        );
    }

    #[test]
    fn rewind_goes_to_the_committed_offset_of_still_owned_partitions() {
        let mut s = PipelineState::new();
        s.begin(Instant::now());
        for (p, o) in [(0, 10), (0, 11), (1, 20), (2, 30)] {
            s.note_consumed(&tp(p), o, None);
        }
        let ended = s.aborted(false);
        let committed = BTreeMap::from([
            (tp(0), Some(OffsetAndMetadata::new(10))),
            (tp(1), None), // nothing committed yet
        ]);
        // Partition 2 was revoked: its next owner starts from the committed offset.
        let targets = rewind_targets(&ended.partitions, &[tp(0), tp(1), tp(3)], &committed);
        assert_eq!(targets, vec![(tp(0), 10), (tp(1), 20)]);
    }

    #[test]
    fn rewind_never_skips_aborted_input() {
        let aborted = BTreeMap::from([(
            tp(0),
            Consumed {
                first: 10,
                next: OffsetAndMetadata::new(13),
            },
        )]);
        let ahead = BTreeMap::from([(tp(0), Some(OffsetAndMetadata::new(13)))]);
        assert_eq!(
            rewind_targets(&aborted, &[tp(0)], &ahead),
            vec![(tp(0), 10)]
        );
        let behind = BTreeMap::from([(tp(0), Some(OffsetAndMetadata::new(4)))]);
        assert_eq!(
            rewind_targets(&aborted, &[tp(0)], &behind),
            vec![(tp(0), 4)]
        );
    }
}
