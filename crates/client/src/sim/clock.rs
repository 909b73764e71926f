//! Virtual time for the simulation.

use std::time::{Duration, Instant};

/// An `Instant` that moves only when the simulation advances it.
///
/// The state machines take `now: Instant` arguments; the simulation hands them
/// `clock.now()`. Runs do not depend on the real clock: only `start` (fixed when the clock is
/// made) comes from it, and every decision works on differences from it.
#[derive(Debug, Clone)]
pub(crate) struct VirtualClock {
    start: Instant,
    elapsed: Duration,
}

impl VirtualClock {
    /// A clock at virtual time zero.
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    /// The current virtual instant.
    pub(crate) fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    /// Virtual time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Moves time forward by `by`.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.elapsed += by;
    }

    /// Moves time forward to `to` since the start (never backwards).
    pub(crate) fn advance_to(&mut self, to: Duration) {
        if to > self.elapsed {
            self.elapsed = to;
        }
    }

    /// The virtual time (since the start) of an instant this clock handed out.
    pub(crate) fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_forward_and_only_when_told() {
        let mut clock = VirtualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(5));
        assert_eq!(clock.now() - t0, Duration::from_millis(5));
        clock.advance_to(Duration::from_millis(3));
        assert_eq!(clock.elapsed(), Duration::from_millis(5));
        clock.advance_to(Duration::from_millis(9));
        assert_eq!(clock.since_start(clock.now()), Duration::from_millis(9));
    }
}
