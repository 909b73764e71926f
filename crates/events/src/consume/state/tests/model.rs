//! A property test: a model driver plays random interleavings of fetches, handler and
//! dead-letter outcomes, commit acknowledgements, rebalances and time against
//! [`ProcessingState`], carrying out every action as the real driver does, and checks the
//! invariants after every step and at the end.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;

const PARTITIONS: i32 = 4;

#[derive(Debug, Clone)]
enum Op {
    Push { p: i32, size: usize },
    Handled { pick: usize, outcome: u8 },
    DeadLettered { pick: usize, ok: bool },
    CommitReply { pick: usize, ok: bool },
    Revoke { p: i32 },
    Assign { p: i32 },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PARTITIONS, 1usize..60).prop_map(|(p, size)| Op::Push { p, size }),
        6 => (any::<usize>(), 0u8..4).prop_map(|(pick, outcome)| Op::Handled { pick, outcome }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, ok)| Op::DeadLettered { pick, ok }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, ok)| Op::CommitReply { pick, ok }),
        1 => (0..PARTITIONS).prop_map(|p| Op::Revoke { p }),
        1 => (0..PARTITIONS).prop_map(|p| Op::Assign { p }),
        3 => (0u64..1_500).prop_map(|ms| Op::Advance { ms }),
    ]
}

prop_compose! {
    fn settings_strategy()(
        max_concurrent_partitions in 1usize..4,
        max_buffered in 40usize..300,
        interval_ms in 0u64..2_000,
        commit_every_n in 1usize..6,
        max_retries in 0u32..4,
        dlq in any::<bool>(),
    ) -> ProcessingSettings {
        ProcessingSettings {
            max_concurrent_partitions,
            max_buffered_bytes_per_partition: max_buffered,
            commit_interval: Duration::from_millis(interval_ms),
            commit_every_n,
            retry: RetryPolicy::new(max_retries, Duration::from_millis(50), Duration::from_millis(400))
                .unwrap(),
            dead_letter: DeadLetterPolicy::default().with_enabled(dlq),
        }
    }
}

/// One assignment of one partition, as the driver sees it.
#[derive(Debug, Default)]
struct Epoch {
    id: u64,
    /// The next offset to fetch.
    next_fetch: i64,
    /// The first offset fetched in this epoch (the committed position at assignment).
    start: i64,
    /// Pushed, not yet acknowledged, in order (offset, size).
    pending: VecDeque<(i64, usize)>,
    /// Acknowledged offsets (each once).
    acked: BTreeSet<i64>,
    paused: bool,
    /// The attempt of the last dispatch of the head.
    last_attempt: u32,
}

struct Driver {
    s: ProcessingState,
    settings: ProcessingSettings,
    now: Instant,
    epochs: BTreeMap<i32, Epoch>,
    next_epoch: u64,
    /// Confirmed commits.
    committed: BTreeMap<i32, i64>,
    /// Handler calls under way: (partition, epoch, offset).
    handlers: Vec<(i32, u64, i64)>,
    dead_letters: Vec<(i32, u64, i64)>,
    commits: Vec<Vec<(TopicPartition, i64)>>,
    max_record: usize,
}

impl Driver {
    fn new(settings: ProcessingSettings, seed: u64) -> Self {
        let s = ProcessingState::with_seed(settings.clone(), XorShift64Star::new(seed)).unwrap();
        let mut d = Driver {
            s,
            settings,
            now: Instant::now(),
            epochs: BTreeMap::new(),
            next_epoch: 0,
            committed: BTreeMap::new(),
            handlers: Vec::new(),
            dead_letters: Vec::new(),
            commits: Vec::new(),
            max_record: 0,
        };
        for p in 0..PARTITIONS {
            d.assign(p);
        }
        d
    }

    fn assign(&mut self, p: i32) {
        if self.epochs.contains_key(&p) {
            return;
        }
        self.next_epoch += 1;
        let start = self.committed.get(&p).copied().unwrap_or(0);
        self.epochs.insert(
            p,
            Epoch {
                id: self.next_epoch,
                next_fetch: start,
                start,
                ..Epoch::default()
            },
        );
        self.s.assign(&[tp(p)]);
    }

    fn ack(&mut self, p: i32, epoch: u64, offset: i64) -> Result<(), TestCaseError> {
        let Some(e) = self.epochs.get_mut(&p).filter(|e| e.id == epoch) else {
            return Ok(()); // a revoked partition's result: the state ignores it
        };
        let head = e.pending.pop_front();
        prop_assert_eq!(head.map(|h| h.0), Some(offset), "acknowledged out of order");
        prop_assert!(
            e.acked.insert(offset),
            "acknowledged twice: {} {}",
            p,
            offset
        );
        e.last_attempt = 0;
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Push { p, size } => {
                if let Some(e) = self.epochs.get_mut(&p) {
                    if !e.paused {
                        let offset = e.next_fetch;
                        e.next_fetch += 1;
                        e.pending.push_back((offset, size));
                        self.max_record = self.max_record.max(size);
                        self.s.push(rec(p, offset, size), self.now);
                    }
                }
            }
            Op::Handled { pick, outcome } => {
                if !self.handlers.is_empty() {
                    let (p, epoch, offset) = self.handlers.swap_remove(pick % self.handlers.len());
                    let result = match outcome {
                        0 | 1 => Ok(()),
                        2 => Err(retriable()),
                        _ => Err(HandlerFailure::not_retriable(Failure::new(
                            "P", "poison", 0,
                        ))),
                    };
                    let ok = result.is_ok();
                    let retry = outcome == 2;
                    self.s.handled(&tp(p), offset, result, self.now);
                    if ok {
                        self.ack(p, epoch, offset)?;
                    }
                    let current = self.epochs.get(&p).filter(|e| e.id == epoch);
                    if let Some(e) = current
                        .filter(|e| retry && e.last_attempt <= self.settings.retry.max_retries())
                    {
                        // A retry wait: due within the policy's ceiling for this retry.
                        let bound = self.now + self.settings.retry.ceiling(e.last_attempt);
                        let due = self.s.next_deadline();
                        prop_assert!(
                            due.is_some_and(|d| d <= bound),
                            "retry due {:?} > {:?}",
                            due,
                            bound
                        );
                    }
                }
            }
            Op::DeadLettered { pick, ok } => {
                if !self.dead_letters.is_empty() {
                    let (p, epoch, offset) = self
                        .dead_letters
                        .swap_remove(pick % self.dead_letters.len());
                    let result = if ok { Ok(()) } else { Err("down".to_owned()) };
                    self.s.dead_lettered(&tp(p), offset, result, self.now);
                    if ok {
                        self.ack(p, epoch, offset)?;
                    }
                }
            }
            Op::CommitReply { pick, ok } => {
                if !self.commits.is_empty() {
                    let c = self.commits.swap_remove(pick % self.commits.len());
                    if ok {
                        self.confirm(&c);
                        self.s.committed(&c);
                    } else {
                        self.s.commit_failed(&c);
                    }
                }
            }
            Op::Revoke { p } => {
                if self.epochs.contains_key(&p) {
                    let offsets = self.s.revoke(&[tp(p)]);
                    for (t, o) in &offsets {
                        prop_assert_eq!(t, &tp(p));
                        self.check_commit(p, *o)?;
                    }
                    self.epochs.remove(&p);
                    // The driver commits them synchronously in the rebalance listener.
                    self.confirm(&offsets);
                }
            }
            Op::Assign { p } => self.assign(p),
            Op::Advance { ms } => self.now += Duration::from_millis(ms),
        }
        self.run_actions()
    }

    fn confirm(&mut self, offsets: &[(TopicPartition, i64)]) {
        for (t, o) in offsets {
            let c = self.committed.entry(t.partition).or_insert(0);
            *c = (*c).max(*o);
        }
    }

    /// Every record before `offset` is acknowledged in the current epoch.
    fn check_commit(&self, p: i32, offset: i64) -> Result<(), TestCaseError> {
        let e = self.epochs.get(&p);
        prop_assert!(e.is_some(), "commit for a partition not assigned");
        let Some(e) = e else { return Ok(()) };
        prop_assert!(
            offset > e.start && offset <= e.next_fetch,
            "commit {} outside the epoch",
            offset
        );
        for o in e.start..offset {
            prop_assert!(
                e.acked.contains(&o),
                "commit {} past unacknowledged {}",
                offset,
                o
            );
        }
        Ok(())
    }

    fn run_actions(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10_000 {
            let Some(action) = self.s.poll_action(self.now) else {
                return self.check_invariants();
            };
            match action {
                Action::Dispatch {
                    tp: t,
                    record,
                    attempt,
                } => {
                    let p = t.partition;
                    prop_assert!(
                        !self
                            .handlers
                            .iter()
                            .chain(&self.dead_letters)
                            .any(|h| h.0 == p),
                        "two records of partition {} under way",
                        p
                    );
                    prop_assert!(self.handlers.len() < self.settings.max_concurrent_partitions);
                    let e = self.epochs.get_mut(&p);
                    prop_assert!(e.is_some(), "dispatch for a revoked partition");
                    let Some(e) = e else { unreachable!() };
                    prop_assert_eq!(e.pending.front().map(|h| h.0), Some(record.offset), "order");
                    prop_assert!(attempt >= 1 && attempt <= self.settings.retry.max_retries() + 1);
                    prop_assert!(
                        attempt == e.last_attempt + 1 || (attempt == 1 && e.last_attempt == 0)
                    );
                    e.last_attempt = attempt;
                    self.handlers.push((p, e.id, record.offset));
                }
                Action::DeadLetter {
                    tp: t,
                    record,
                    failure,
                } => {
                    let p = t.partition;
                    prop_assert!(self.settings.dead_letter.enabled);
                    let e = self.epochs.get(&p);
                    prop_assert!(e.is_some());
                    let Some(e) = e else { unreachable!() };
                    prop_assert_eq!(e.pending.front().map(|h| h.0), Some(record.offset));
                    prop_assert!(failure.attempts >= 1 && failure.attempts <= e.last_attempt);
                    self.dead_letters.push((p, e.id, record.offset));
                }
                Action::Discard { tp: t, record, .. } => {
                    prop_assert!(!self.settings.dead_letter.enabled);
                    let id = self.epochs.get(&t.partition).map(|e| e.id).unwrap_or(0);
                    self.ack(t.partition, id, record.offset)?;
                }
                Action::Commit(offsets) => {
                    prop_assert!(!offsets.is_empty());
                    for (t, o) in &offsets {
                        self.check_commit(t.partition, *o)?;
                    }
                    self.commits.push(offsets);
                }
                Action::Pause(tps) => {
                    for t in tps {
                        let e = self.epochs.get_mut(&t.partition);
                        prop_assert!(e.as_ref().is_some_and(|e| !e.paused), "pause twice");
                        if let Some(e) = e {
                            e.paused = true;
                        }
                    }
                }
                Action::Resume(tps) => {
                    for t in tps {
                        let e = self.epochs.get_mut(&t.partition);
                        prop_assert!(e.as_ref().is_some_and(|e| e.paused), "resume unpaused");
                        if let Some(e) = e {
                            e.paused = false;
                        }
                    }
                }
            }
        }
        Err(TestCaseError::fail("poll_action does not settle"))
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let limit = self.settings.max_buffered_bytes_per_partition;
        let mut total = 0;
        for (p, e) in &self.epochs {
            let bytes: usize = e.pending.iter().map(|(_, s)| s).sum();
            prop_assert_eq!(self.s.buffered_bytes_of(&tp(*p)), bytes);
            // One push at a time: the limit is passed by at most one record.
            prop_assert!(bytes < limit + self.max_record, "{} bytes buffered", bytes);
            if bytes >= limit {
                prop_assert!(e.paused, "over the limit and not paused");
            }
            // Settled: paused exactly while over the limit (until below half) or waiting.
            prop_assert_eq!(e.paused, self.s.wants_pause(&tp(*p)));
            total += bytes;
        }
        prop_assert_eq!(self.s.buffered_bytes(), total);
        let running = self.handlers.len();
        prop_assert!(running <= self.settings.max_concurrent_partitions);
        Ok(())
    }

    /// Lets everything under way finish successfully until the state is idle.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..1_000 {
            if self.s.is_idle() && self.handlers.is_empty() && self.dead_letters.is_empty() {
                break;
            }
            while !self.handlers.is_empty() {
                self.step(&Op::Handled {
                    pick: 0,
                    outcome: 0,
                })?;
            }
            while !self.dead_letters.is_empty() {
                self.step(&Op::DeadLettered { pick: 0, ok: true })?;
            }
            self.step(&Op::Advance { ms: 1_000 })?;
        }
        prop_assert!(self.s.is_idle(), "not idle at the end");
        for (p, e) in &self.epochs {
            prop_assert!(e.pending.is_empty(), "partition {} left records behind", p);
            let expected: BTreeSet<i64> = (e.start..e.next_fetch).collect();
            prop_assert_eq!(
                &e.acked,
                &expected,
                "partition {}: every record exactly once",
                p
            );
        }
        let final_commit = self.s.take_commit();
        for (t, o) in &final_commit {
            self.check_commit(t.partition, *o)?;
            let e = &self.epochs[&t.partition];
            prop_assert_eq!(*o, e.next_fetch);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_the_invariants(
        settings in settings_strategy(),
        seed: u64,
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let mut d = Driver::new(settings, seed);
        for op in &ops {
            d.step(op)?;
        }
        d.finish()?;
    }
}
