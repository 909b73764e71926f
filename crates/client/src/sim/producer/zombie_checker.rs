//! The zombie checker: once a second instance (B) of the transactional id has fenced the
//! first (A), nothing of A's may become committed, and A must learn it is fenced. Checked
//! before [`super::txn_checker`] (which then judges A's and B's transactions alike):
//!
//! - `zombie-committed`: a record of A is followed in its log by a COMMIT marker of a
//!   coordinator decision taken after B's InitProducerId took effect (A's commit was accepted
//!   after it was fenced), or A's application was told a transaction it began after the fence
//!   committed. A commit the coordinator accepted before the fence may complete (and be
//!   acknowledged to A) afterwards: that is Kafka's contract, not a zombie write.
//! - `zombie-unfenced`: A was still running when fenced, and its application stopped on an
//!   error other than the fenced one (`TransactionError::Fenced`), or without any error
//!   although a transaction it began after the fence ended other than by an abort. (That
//!   every call of A ended at all is `liveness`: B takes over only once A has stopped.)

use std::collections::BTreeMap;
use std::time::Duration;

use super::cluster::ReplicaLog;
use super::world::History;
use crate::sim::harness::Violation;

/// What the zombie mode records.
#[derive(Debug, Clone, Default)]
pub(super) struct ZombieHistory {
    /// The coordinator's decision count when B's InitProducerId first took effect (bumped
    /// the epoch or was granted): markers of a higher decision were decided after the fence.
    pub fenced_after: Option<u64>,
    /// When that was.
    pub fenced_at: Option<Duration>,
    /// A's application had already stopped then.
    pub a_stopped_first: bool,
    /// A's first transaction not ended then (its outcome, and every later one's, is the
    /// fence's: none of them is required to commit).
    pub a_unsettled_from: usize,
    /// B's first record id: A's ids are below it.
    pub b_first_record: Option<u64>,
    /// B's first transaction index: A's are below it.
    pub b_first_txn: Option<usize>,
}

/// Judges the zombie mode's `history` against the final leader logs (`Ok` outside it).
pub(super) fn check(history: &History, logs: &[ReplicaLog]) -> Result<(), Violation> {
    let Some(z) = &history.zombie else {
        return Ok(());
    };
    let (Some(fence), Some(fenced_at)) = (z.fenced_after, z.fenced_at) else {
        return Ok(()); // B never got in: the run's liveness judges that
    };
    let b_record = z.b_first_record.unwrap_or(u64::MAX);
    let a_txns = z.b_first_txn.unwrap_or(history.txns.len());

    for (p, log) in logs.iter().enumerate() {
        let mut open: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        for batch in &log.batches {
            match batch.marker {
                Some(commit) => {
                    let ids = open.remove(&batch.producer_id).unwrap_or_default();
                    if !commit {
                        continue;
                    }
                    let decision = history.marker_decisions.get(&batch.write);
                    if decision.is_some_and(|d| *d <= fence) {
                        continue;
                    }
                    if let Some(id) = ids.iter().find(|id| **id < b_record) {
                        return Err(Violation::new(
                            "zombie-committed",
                            format!(
                                "record {id} of the fenced instance is committed at p{p} by \
                                 decision {decision:?}, taken after the fence (decisions up to \
                                 {fence} came before)"
                            ),
                        ));
                    }
                }
                None => open
                    .entry(batch.producer_id)
                    .or_default()
                    .extend(batch.records.iter().copied()),
            }
        }
    }
    let a = history.txns.iter().take(a_txns).enumerate();
    let after: Vec<_> = a.filter(|(_, o)| o.begun >= fenced_at).collect();
    if let Some((t, _)) = after.iter().find(|(_, o)| o.committed) {
        return Err(Violation::new(
            "zombie-committed",
            format!(
                "the fenced instance was told transaction {t}, begun after the fence, committed"
            ),
        ));
    }

    if z.a_stopped_first {
        return Ok(());
    }
    let last = a_txns.checked_sub(1).and_then(|t| history.txns.get(t));
    match last.and_then(|o| o.failed.as_ref().map(|f| (o.fenced, f))) {
        Some((true, _)) => Ok(()),
        Some((false, failed)) => Err(Violation::new(
            "zombie-unfenced",
            format!("the fenced instance stopped on another error: {failed}"),
        )),
        None => match after.iter().find(|(_, o)| !o.aborted) {
            Some((t, _)) => Err(Violation::new(
                "zombie-unfenced",
                format!(
                    "the fenced instance stopped without an error; its transaction {t}, begun \
                     after the fence, was not aborted"
                ),
            )),
            None => Ok(()),
        },
    }
}
