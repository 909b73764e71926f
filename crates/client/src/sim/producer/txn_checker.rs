//! The transactional history checker: what the application was told about each transaction
//! against the markers that follow its records in the final leader logs. A record's fate is
//! the first COMMIT or ABORT marker of its producer after it in its partition's log (none:
//! still open). Checked in this order, then the producer world's own invariants
//! ([`super::checker`]), then the application's liveness:
//!
//! - `torn-transaction`: the records of one transaction are under different markers (some
//!   COMMIT, some ABORT).
//! - `committed-lost`: `commit_transaction` returned Ok, but a record of the transaction is in
//!   no log, or is not followed by a COMMIT marker.
//! - `aborted-visible`: a record of a transaction the application aborted (Ok) is followed by
//!   a COMMIT marker. A transaction that ended in a fatal error is not judged (here, nor by
//!   `outcome-mismatch` for its committed records): its fate is the
//!   coordinator's, and transactions v1 let a delayed EndTxn(commit) of the previous
//!   transaction (same epoch) commit it — KIP-890's "delayed EndTxn" hazard, which the
//!   simulation reproduces (a broker paused with the request read; the client retried it
//!   elsewhere, then began the next transaction), answered by transactions v2's epoch bump per
//!   transaction, not by the client. The client then reports the fatal INVALID_TXN_STATE of
//!   its own EndTxn — or, when a later AddPartitionsToTxn opened a new transaction at the
//!   coordinator, aborts that one and is told Ok: a transaction the world saw a delayed EndTxn
//!   decide while it was open (`delayed_end_txn`) is not judged either.
//! - `phantom-transaction`: the coordinator timed out a transaction while the application held
//!   none open for longer than `transaction.timeout.ms` (it ended one locally, or was idle,
//!   while the coordinator still held partitions in an open transaction): the timeout's epoch
//!   bump fences the producer at its next call, though nothing it did was slow.
//! - `liveness`: every transactional call (init, commit, abort) ended in an outcome, the
//!   application closed the producer, and the coordinator finished writing markers, by the
//!   deadline (a run stopped by its deadline or step cap is reported by the producer checker);
//!   and a transaction begun after the fault phase to commit did commit (no fault is left to
//!   stop it: a commit refused then is the client failing to recover).

use std::collections::{BTreeMap, BTreeSet};

use super::cluster::ReplicaLog;
use super::world::History;
use crate::sim::harness::Violation;

/// What the application was told about one transaction.
#[derive(Debug, Clone, Default)]
pub(super) struct TxnOutcome {
    /// `commit_transaction` returned Ok.
    pub committed: bool,
    /// `abort_transaction` returned Ok.
    pub aborted: bool,
    /// The call that ended the application's use of the producer failed with this.
    pub failed: Option<String>,
    /// Begun after the fault phase, meant to commit: nothing may stop it from committing.
    pub quiet_commit: bool,
    /// When the application began it.
    pub begun: std::time::Duration,
    /// `failed` is a [`TransactionError::Fenced`](crate::producer::TransactionError::Fenced).
    pub fenced: bool,
    /// A delayed EndTxn of an earlier call decided it while it was open (the KIP-890
    /// hazard): its fate is not what the application was told.
    pub delayed_end_txn: bool,
}

/// Judges the transactional `history` against the final leader logs.
pub(super) fn check(history: &History, logs: &[ReplicaLog]) -> Result<(), Violation> {
    // The fate of each record id (first occurrence): Some(commit) under a marker, None open.
    let mut fate: BTreeMap<u64, (usize, Option<bool>)> = BTreeMap::new();
    for (p, log) in logs.iter().enumerate() {
        let mut open: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        for batch in &log.batches {
            match batch.marker {
                Some(commit) => {
                    for id in open.remove(&batch.producer_id).unwrap_or_default() {
                        fate.entry(id).or_insert((p, Some(commit)));
                    }
                }
                None => open
                    .entry(batch.producer_id)
                    .or_default()
                    .extend(batch.records.iter().copied()),
            }
        }
        for id in open.into_values().flatten() {
            fate.entry(id).or_insert((p, None));
        }
    }
    let mut records: Vec<Vec<u64>> = vec![Vec::new(); history.txns.len()];
    for (id, txn) in &history.txn_of {
        if let Some(r) = records.get_mut(*txn) {
            r.push(*id);
        }
    }

    for (t, ids) in records.iter().enumerate() {
        let marked: Vec<(u64, usize, bool)> = ids
            .iter()
            .filter_map(|id| match fate.get(id) {
                Some((p, Some(c))) => Some((*id, *p, *c)),
                _ => None,
            })
            .collect();
        let commit = marked.iter().find(|m| m.2);
        let abort = marked.iter().find(|m| !m.2);
        if let (Some(c), Some(a)) = (commit, abort) {
            return Err(Violation::new(
                "torn-transaction",
                format!(
                    "transaction {t}: record {} (p{}) committed, record {} (p{}) aborted",
                    c.0, c.1, a.0, a.1
                ),
            ));
        }
    }

    for (t, (outcome, ids)) in history.txns.iter().zip(&records).enumerate() {
        if !outcome.committed {
            continue;
        }
        for id in ids {
            match fate.get(id) {
                Some((_, Some(true))) => {}
                other => {
                    return Err(Violation::new(
                        "committed-lost",
                        format!(
                            "transaction {t} committed, its record {id} is {}",
                            match other {
                                None => "in no log".to_owned(),
                                Some((p, None)) => format!("open at p{p} (no marker)"),
                                Some((p, _)) => format!("aborted at p{p}"),
                            }
                        ),
                    ))
                }
            }
        }
    }

    for (t, (outcome, ids)) in history.txns.iter().zip(&records).enumerate() {
        if !outcome.aborted || outcome.delayed_end_txn {
            continue;
        }
        if let Some((id, (p, _))) = ids
            .iter()
            .filter_map(|id| fate.get(id).map(|f| (id, f)))
            .find(|(_, f)| f.1 == Some(true))
        {
            return Err(Violation::new(
                "aborted-visible",
                format!("transaction {t} aborted, its record {id} is committed at p{p}"),
            ));
        }
    }

    // A record of an aborted (or never ended) transaction may fail for good while in a log;
    // so may one of a transaction ended by a fatal error, whose fate is the coordinator's (a
    // delayed EndTxn, above, commits it after its retried batch was refused
    // INVALID_TXN_STATE: it was written before).
    let fatal: BTreeSet<usize> = (0..history.txns.len())
        .filter(|t| history.txns[*t].failed.is_some() || history.txns[*t].delayed_end_txn)
        .collect();
    let excused: BTreeSet<u64> = fate
        .iter()
        .filter(|(id, (_, f))| {
            *f != Some(true) || history.txn_of.get(id).is_some_and(|t| fatal.contains(t))
        })
        .map(|(id, _)| *id)
        .collect();
    super::checker::check(history, logs, &excused)?;

    if let Some(phantom) = &history.phantom {
        return Err(Violation::new("phantom-transaction", phantom.clone()));
    }
    if !history.app_done {
        return Err(Violation::new(
            "liveness",
            "the application did not get an outcome for every call",
        ));
    }
    for (t, outcome) in history.txns.iter().enumerate() {
        if outcome.quiet_commit && !outcome.committed {
            return Err(Violation::new(
                "liveness",
                format!(
                    "transaction {t}, begun after the faults to commit, did not commit ({})",
                    outcome.failed.as_deref().unwrap_or("aborted")
                ),
            ));
        }
    }
    Ok(())
}
