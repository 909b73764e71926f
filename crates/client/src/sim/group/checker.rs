//! The group world's history checker: what each member processed, held and committed,
//! judged against the invariants `commit-beyond-processed`, `exclusive-ownership`,
//! `lost-progress` (and, with the world's end state, `liveness`).

use std::collections::{BTreeMap, BTreeSet};

use crate::sim::harness::Violation;
use crate::state::group::TopicPartition;

/// The history of one run, checked as it is written (the first violation stops the run).
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// Per partition, the simulated members holding it now (assigned and not given up).
    holders: BTreeMap<TopicPartition, BTreeSet<usize>>,
    /// Per (member, partition) in the current holding: the offset after the last record it
    /// processed (the start offset before it processed any).
    processed_upto: BTreeMap<(usize, TopicPartition), i64>,
    /// Per partition, which offsets some member processed.
    processed: BTreeMap<TopicPartition, Vec<bool>>,
    /// Records processed by members the coordinator had already removed (zombies; Kafka
    /// fences their commits but cannot stop them processing until they learn).
    pub zombie_records: u64,
    pub violation: Option<Violation>,
}

impl Checker {
    fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation::new(invariant, detail));
        }
    }

    /// `member` was given `tp`.
    pub(crate) fn hold(&mut self, member: usize, tp: &TopicPartition) {
        self.holders.entry(tp.clone()).or_default().insert(member);
    }

    /// `member` starts processing `tp` at `offset` (its committed offset).
    pub(crate) fn start(&mut self, member: usize, tp: &TopicPartition, offset: i64) {
        self.processed_upto.insert((member, tp.clone()), offset);
    }

    /// `member` gave `tp` up (revoked, lost, crashed).
    pub(crate) fn release(&mut self, member: usize, tp: &TopicPartition) {
        if let Some(h) = self.holders.get_mut(tp) {
            h.remove(&member);
        }
        self.processed_upto.remove(&(member, tp.clone()));
    }

    /// `member` processed `from..to` of `tp`. `known(m)` says whether the coordinator has
    /// simulated member `m` as a member now.
    pub(crate) fn process(
        &mut self,
        member: usize,
        tp: &TopicPartition,
        from: i64,
        to: i64,
        known: impl Fn(usize) -> bool,
    ) {
        let seen = self.processed.entry(tp.clone()).or_default();
        if seen.len() < to as usize {
            seen.resize(to as usize, false);
        }
        for o in from..to {
            seen[o as usize] = true;
        }
        self.processed_upto.insert((member, tp.clone()), to);
        if !known(member) {
            self.zombie_records += (to - from) as u64;
            return;
        }
        let others: Vec<usize> = self
            .holders
            .get(tp)
            .map(|h| {
                h.iter()
                    .copied()
                    .filter(|m| *m != member && known(*m))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(other) = others.first() {
            self.fail(
                "exclusive-ownership",
                format!(
                    "member {member} processed {tp:?} {from}..{to} while member {other} (also in \
                     the group) still held it"
                ),
            );
        }
    }

    /// `member` sends a commit of `offset` for `tp`.
    pub(crate) fn commit(&mut self, member: usize, tp: &TopicPartition, offset: i64) {
        let upto = self.processed_upto.get(&(member, tp.clone())).copied();
        match upto {
            Some(upto) if offset <= upto => {}
            _ => self.fail(
                "commit-beyond-processed",
                format!(
                    "member {member} commits {tp:?} at {offset}, but processed only up to \
                     {upto:?}"
                ),
            ),
        }
    }

    /// At the end: every partition's committed offset is its log end, and no record below it
    /// was skipped by every member.
    pub(crate) fn final_progress(
        &mut self,
        ends: &BTreeMap<TopicPartition, i64>,
        committed: &BTreeMap<TopicPartition, i64>,
    ) {
        for (tp, end) in ends {
            let c = committed.get(tp).copied().unwrap_or(0);
            if c != *end {
                self.fail(
                    "lost-progress",
                    format!("{tp:?}: committed {c}, log end {end}"),
                );
                return;
            }
            let seen = self.processed.get(tp).cloned().unwrap_or_default();
            if let Some(skipped) =
                (0..*end).find(|o| !seen.get(*o as usize).copied().unwrap_or(false))
            {
                self.fail(
                    "lost-progress",
                    format!("{tp:?}: offset {skipped} below the committed {c} was never processed"),
                );
                return;
            }
        }
    }
}
