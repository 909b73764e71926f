//! Bookkeeping checks for tests.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::SenderState;
use crate::state::producer::batch::TopicPartition;

impl<D> SenderState<D> {
    /// Checks the bookkeeping (tests): every batch is in exactly one place (a queue or one
    /// request), per-partition in-flight counts match the requests, every live batch is
    /// outstanding, and a node's request list holds exactly its requests in flight.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        let mut counts: HashMap<TopicPartition, usize> = HashMap::new();
        for (id, request) in &self.in_flight {
            let listed = self
                .node_requests
                .get(&request.node)
                .is_some_and(|q| q.contains(id));
            if !listed {
                return Err(format!("request {id} missing from its node's list"));
            }
            for (batch, _) in &request.batches {
                if !seen.insert(batch.id) {
                    return Err(format!("batch {} in two places", batch.id));
                }
                *counts.entry(batch.tp.clone()).or_default() += 1;
            }
        }
        let listed: usize = self.node_requests.values().map(VecDeque::len).sum();
        if listed != self.in_flight.len() {
            return Err("node request lists and requests in flight differ".to_owned());
        }
        for tp in &self.splitting {
            if counts.get(tp) != Some(&1) {
                return Err(format!(
                    "splitting {tp:?} with {:?} in flight",
                    counts.get(tp)
                ));
            }
        }
        if counts != self.partition_in_flight {
            return Err(format!(
                "in-flight counts {:?} != {:?}",
                self.partition_in_flight, counts
            ));
        }
        for id in self.accumulator.batch_ids() {
            if !seen.insert(id) {
                return Err(format!("batch {id} in two places"));
            }
        }
        if seen != self.outstanding {
            return Err(format!(
                "live {seen:?} != outstanding {:?}",
                self.outstanding
            ));
        }
        Ok(())
    }
}
