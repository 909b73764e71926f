//! The history checker of the producer world: what the client was told against what the
//! final leader logs hold. Invariants are checked in this order; the first broken one is the
//! verdict.
//!
//! - `acknowledged-but-lost`: a record reported `Ok(offset)` is in its partition's final log,
//!   at that offset (or anywhere, when the offset is -1: a duplicate's answer).
//! - `reordered`: in each partition, the first occurrences of the producer's records are in
//!   send order (record ids are handed out in send order).
//! - `duplicated`: no record id appears twice in a partition's log.
//! - `outcome-mismatch`: a record whose failure is definite
//!   ([`ProduceError::is_outcome_unknown`] is false) is in no log (transactional mode: or only
//!   under an ABORT marker or none: `excused`, an aborted record is not delivered).
//! - `liveness`: the run ended by its deadline with the sender idle after close, and every
//!   appended record has exactly one outcome.

use std::collections::{BTreeMap, BTreeSet};

use super::cluster::ReplicaLog;
use super::world::History;
use crate::sim::harness::Violation;

/// Judges `history` against the final leader log of each partition; the records in
/// `excused` may fail for good although they are in a log (aborted transactions).
pub(super) fn check(
    history: &History,
    logs: &[ReplicaLog],
    excused: &BTreeSet<u64>,
) -> Result<(), Violation> {
    // Where each record is, per partition: offsets in log order.
    let mut found: Vec<BTreeMap<u64, Vec<i64>>> = Vec::with_capacity(logs.len());
    for log in logs {
        let mut at: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
        for batch in &log.batches {
            for (i, id) in batch.records.iter().enumerate() {
                at.entry(*id)
                    .or_default()
                    .push(batch.base_offset + i as i64);
            }
        }
        found.push(at);
    }
    let partition_of: BTreeMap<u64, i32> = history.appended.iter().copied().collect();

    for (id, outcomes) in &history.outcomes {
        let Some(&p) = partition_of.get(id) else {
            continue;
        };
        let offsets = found[p as usize].get(id);
        for offset in outcomes.iter().flatten() {
            let present = match offsets {
                None => false,
                Some(o) if *offset < 0 => !o.is_empty(),
                Some(o) => o.contains(offset),
            };
            if !present {
                return Err(Violation::new(
                    "acknowledged-but-lost",
                    format!(
                        "record {id} acknowledged at p{p} offset {offset}, log has it at \
                         {offsets:?}"
                    ),
                ));
            }
        }
    }

    for (p, log) in logs.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let mut last: Option<u64> = None;
        for id in log.records() {
            if !seen.insert(id) {
                continue;
            }
            if last.is_some_and(|l| id < l) {
                return Err(Violation::new(
                    "reordered",
                    format!(
                        "p{p}: record {id} follows record {} in the log",
                        last.unwrap_or(0)
                    ),
                ));
            }
            last = Some(id);
        }
    }

    for (p, at) in found.iter().enumerate() {
        if let Some((id, offsets)) = at.iter().find(|(_, o)| o.len() > 1) {
            return Err(Violation::new(
                "duplicated",
                format!("p{p}: record {id} at offsets {offsets:?}"),
            ));
        }
    }

    for (id, outcomes) in &history.outcomes {
        let Some(&p) = partition_of.get(id) else {
            continue;
        };
        for outcome in outcomes {
            if let Err(e) = outcome {
                if !e.is_outcome_unknown() && !excused.contains(id) {
                    if let Some(offsets) = found[p as usize].get(id) {
                        return Err(Violation::new(
                            "outcome-mismatch",
                            format!(
                                "record {id} failed for good ({e}) but p{p} has it at {offsets:?}"
                            ),
                        ));
                    }
                }
            }
        }
    }

    if let Some(why) = &history.stuck {
        return Err(Violation::new("liveness", why.clone()));
    }
    if !history.idle {
        return Err(Violation::new(
            "liveness",
            "the sender is not idle after close",
        ));
    }
    for (id, _) in &history.appended {
        let n = history.outcomes.get(id).map_or(0, Vec::len);
        if n != 1 {
            return Err(Violation::new(
                "liveness",
                format!("record {id} has {n} outcomes"),
            ));
        }
    }
    if history.outcomes.len() != history.appended.len() {
        return Err(Violation::new(
            "liveness",
            "outcomes for records never appended",
        ));
    }
    Ok(())
}
