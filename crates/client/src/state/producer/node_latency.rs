//! Per-broker progress of the producer, for `partitioner.availability.timeout.ms` (KIP-794).
//!
//! For each leader the sender remembers when it last had work for that broker (a batch ready
//! to send, or a request in flight) and when the broker last made progress (the sender took a
//! batch for it, or a response came back). A broker whose work has waited longer than the
//! timeout since its last progress is *unavailable*: the sticky partitioner makes no new
//! choice of its partitions until it makes progress again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    /// The last time the broker had work waiting (ready batches or requests in flight).
    ready_at: Instant,
    /// The last time the broker made progress (a batch drained, a response received).
    progress_at: Instant,
}

/// Ready and progress times per broker (the Java client's "node latency stats").
///
/// ```
/// use std::time::{Duration, Instant};
/// use kafkit::state::producer::NodeLatency;
///
/// let t0 = Instant::now();
/// let mut nodes = NodeLatency::default();
/// nodes.record_ready(1, t0);
/// nodes.record_progress(1, t0);
/// nodes.record_ready(1, t0 + Duration::from_millis(500)); // work waits, nothing taken
/// assert!(nodes.is_unavailable(1, Duration::from_millis(100)));
/// assert!(!nodes.is_unavailable(1, Duration::from_secs(1)));
/// nodes.record_progress(1, t0 + Duration::from_millis(600));
/// assert!(!nodes.is_unavailable(1, Duration::from_millis(100)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLatency {
    nodes: HashMap<i32, Node>,
}

impl NodeLatency {
    /// `node` has work waiting at `now`: a batch ready to send or a request in flight.
    pub fn record_ready(&mut self, node: i32, now: Instant) {
        let entry = self.nodes.entry(node).or_insert(Node {
            ready_at: now,
            progress_at: now,
        });
        entry.ready_at = entry.ready_at.max(now);
    }

    /// `node` made progress at `now`: the sender took a batch for it or it answered.
    pub fn record_progress(&mut self, node: i32, now: Instant) {
        let entry = self.nodes.entry(node).or_insert(Node {
            ready_at: now,
            progress_at: now,
        });
        entry.ready_at = entry.ready_at.max(now);
        entry.progress_at = entry.progress_at.max(now);
    }

    /// How long `node`'s work has waited without progress (zero for an unknown node).
    pub fn stalled_for(&self, node: i32) -> Duration {
        self.nodes.get(&node).map_or(Duration::ZERO, |n| {
            n.ready_at.saturating_duration_since(n.progress_at)
        })
    }

    /// Whether `node`'s work has waited longer than `timeout` without progress. A zero
    /// `timeout` (the feature off) never makes a node unavailable.
    pub fn is_unavailable(&self, node: i32, timeout: Duration) -> bool {
        !timeout.is_zero() && self.stalled_for(node) > timeout
    }

    /// Forgets `node` (it left the cluster).
    pub fn forget(&mut self, node: i32) {
        self.nodes.remove(&node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_node_is_unavailable_only_while_its_work_waits_past_the_timeout() {
        let t0 = Instant::now();
        let mut n = NodeLatency::default();
        assert!(!n.is_unavailable(3, ms(1)));
        n.record_ready(3, t0);
        n.record_progress(3, t0 + ms(10));
        n.record_ready(3, t0 + ms(100));
        assert_eq!(n.stalled_for(3), ms(90));
        assert!(n.is_unavailable(3, ms(89)));
        assert!(!n.is_unavailable(3, ms(90)));
        assert!(!n.is_unavailable(3, Duration::ZERO));
        // Other nodes are unaffected.
        assert!(!n.is_unavailable(4, ms(1)));
        // Progress makes it available again; an older clock value never goes back.
        n.record_progress(3, t0 + ms(200));
        n.record_ready(3, t0 + ms(150));
        assert_eq!(n.stalled_for(3), Duration::ZERO);
        n.forget(3);
        assert_eq!(n.stalled_for(3), Duration::ZERO);
    }
}
