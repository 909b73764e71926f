//! The fetcher world's history checker: what the application was handed vs what the logs
//! hold and what the transactions became.
//!
//! Invariants, judged in this order (the first one broken names the violation):
//! - `read-uncommitted` (read_committed): a record handed out at or above its partition's
//!   last stable offset at that moment (its transaction was not yet decided);
//! - `read-of-aborted`: under read_committed, a record of an aborted transaction; under both
//!   levels, a record the writer did not write (a control record) or of another partition;
//! - `duplicated-read` / `reordered-read`: per partition, offsets handed out strictly
//!   increase, except right after an explicit seek (to the offset sought); an offset handed
//!   out before again is a duplicate, a lower new one is reordered;
//! - `stalled` (judged only when the scenario sets a limit: a world without faults): the
//!   application found nothing to take for longer than the limit while some partition, not
//!   paused, had records between its position and its end — e.g. a drained partition left
//!   waiting behind a long-poll that holds only caught-up partitions of its node;
//! - `liveness`: the run ended before the deadline and the step cap, with the position of
//!   every partition at its end (the LSO under read_committed, else the high watermark);
//! - `skipped`: every record the consumer must see (committed or not transactional under
//!   read_committed; every data record under read_uncommitted) of the final log, from the
//!   offset the application started at, was handed out (what retention deleted or a leader
//!   move truncated is not in the final log: a consumer may legitimately never see it).

use std::collections::BTreeSet;

use super::world::{History, Seen};
use crate::sim::harness::Violation;

/// Judges one run.
pub(super) fn check(h: &History) -> Result<(), Violation> {
    for (p, seen) in &h.events {
        for s in seen {
            let Seen::Record { offset, id, lso } = s else {
                continue;
            };
            if h.read_committed && offset >= lso {
                return Err(Violation::new(
                    "read-uncommitted",
                    format!("p{p} offset {offset} (id {id:?}) handed out with the LSO at {lso}"),
                ));
            }
        }
    }
    for (p, seen) in &h.events {
        for s in seen {
            let Seen::Record { offset, id, .. } = s else {
                continue;
            };
            let Some(id) = id else {
                return Err(Violation::new(
                    "read-of-aborted",
                    format!("p{p} offset {offset}: a record the writer did not write (control?)"),
                ));
            };
            match h.written.get(id) {
                Some((wp, _)) if wp != p => {
                    return Err(Violation::new(
                        "read-of-aborted",
                        format!("p{p} offset {offset}: record {id} was written to p{wp}"),
                    ))
                }
                Some((_, Some(txn))) if h.read_committed && h.decided.get(txn) != Some(&true) => {
                    return Err(Violation::new(
                        "read-of-aborted",
                        format!(
                            "p{p} offset {offset}: record {id} of transaction {txn:?} ({})",
                            if h.decided.contains_key(txn) {
                                "aborted"
                            } else {
                                "never decided"
                            }
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    for (p, seen) in &h.events {
        let mut handed: BTreeSet<i64> = BTreeSet::new();
        let mut last: Option<i64> = None;
        for s in seen {
            match s {
                Seen::Seek(o) => last = Some(o - 1),
                Seen::Record { offset, .. } => {
                    if last.is_some_and(|l| *offset <= l) {
                        let (name, what) = if handed.contains(offset) {
                            ("duplicated-read", "again")
                        } else {
                            ("reordered-read", "after a later one")
                        };
                        return Err(Violation::new(
                            name,
                            format!(
                                "p{p} offset {offset} handed out {what} (last {last:?}, no seek)"
                            ),
                        ));
                    }
                    handed.insert(*offset);
                    last = Some(*offset);
                }
            }
        }
    }
    if let Some(limit) = h.stall_limit {
        if let Some((at, length)) = h.stalls.iter().find(|(_, length)| *length > limit) {
            return Err(Violation::new(
                "stalled",
                format!(
                    "from {at:?} the application found nothing to take for {length:?} \
                     (limit {limit:?}) with records waiting below a partition's end"
                ),
            ));
        }
    }
    if let Some(why) = &h.stuck {
        return Err(Violation::new("liveness", why.clone()));
    }
    for (p, (position, end)) in &h.end {
        if position.is_none_or(|pos| pos < *end) {
            return Err(Violation::new(
                "liveness",
                format!("p{p} at {position:?}, its end is {end}"),
            ));
        }
    }
    for (p, must) in &h.final_records {
        let start = h.start.get(p).copied().unwrap_or(0);
        let handed: BTreeSet<u64> = h
            .events
            .get(p)
            .into_iter()
            .flatten()
            .filter_map(|s| match s {
                Seen::Record { id, .. } => *id,
                Seen::Seek(_) => None,
            })
            .collect();
        if let Some((offset, id)) = must
            .iter()
            .find(|(offset, id)| *offset >= start && !handed.contains(id))
        {
            return Err(Violation::new(
                "skipped",
                format!("p{p} offset {offset} (record {id}) was never handed out"),
            ));
        }
    }
    Ok(())
}
