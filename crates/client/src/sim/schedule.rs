//! Timed events in a deterministic order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// A queue of events due at virtual times.
///
/// Events due at the same time come out in the order they were scheduled (a sequence number
/// breaks ties), so a run never depends on heap internals.
#[derive(Debug)]
pub(crate) struct Schedule<E> {
    heap: BinaryHeap<Reverse<(Duration, u64, Slot<E>)>>,
    next_seq: u64,
}

/// Wraps an event so the heap orders by (time, sequence) only.
#[derive(Debug)]
struct Slot<E>(E);

impl<E> PartialEq for Slot<E> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<E> Eq for Slot<E> {}
impl<E> PartialOrd for Slot<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Slot<E> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<E> Default for Schedule<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<E> Schedule<E> {
    /// An empty schedule.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Schedules `event` at virtual time `at` (since the start).
    pub(crate) fn at(&mut self, at: Duration, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((at, seq, Slot(event))));
    }

    /// The time of the next event, if any.
    pub(crate) fn next_time(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the next event if it is due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Duration) -> Option<(Duration, E)> {
        if self.next_time()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((at, _, Slot(e)))| (at, e))
    }

    /// Takes the next event whatever its time.
    pub(crate) fn pop(&mut self) -> Option<(Duration, E)> {
        self.heap.pop().map(|Reverse((at, _, Slot(e)))| (at, e))
    }

    /// Events still scheduled.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is scheduled.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops every scheduled event that `keep` refuses (e.g. the responses of a cut connection).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        let old = std::mem::take(&mut self.heap);
        self.heap = old
            .into_iter()
            .filter(|Reverse((_, _, Slot(e)))| keep(e))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_by_scheduling_order() {
        let mut s = Schedule::new();
        let ms = Duration::from_millis;
        s.at(ms(5), "c");
        s.at(ms(1), "a");
        s.at(ms(5), "d");
        s.at(ms(1), "b");
        assert_eq!(s.pop_due(ms(0)), None);
        assert_eq!(s.pop_due(ms(1)), Some((ms(1), "a")));
        assert_eq!(s.pop_due(ms(1)), Some((ms(1), "b")));
        assert_eq!(s.pop_due(ms(4)), None);
        s.retain(|e| *e != "c");
        assert_eq!(s.len(), 1);
        assert_eq!(s.pop(), Some((ms(5), "d")));
        assert!(s.is_empty());
    }
}
