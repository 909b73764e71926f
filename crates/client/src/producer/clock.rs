//! [`WallClock`]: record timestamps (ms since the epoch) derived from the monotonic clock
//! reading `send` takes anyway, so a record costs one clock read instead of two.
//!
//! The wall clock is read only when the sender task re-anchors (at most every
//! [`RESYNC_EVERY`]); between re-anchors a timestamp is the last anchor plus the monotonic
//! time elapsed since. A step of the system clock shows up at the next re-anchor.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the sender task re-reads the wall clock.
pub(crate) const RESYNC_EVERY: Duration = Duration::from_millis(100);

/// Wall-clock milliseconds from an `Instant`.
#[derive(Debug)]
pub(crate) struct WallClock {
    anchor: Instant,
    /// Wall time at `anchor`, in µs since the epoch (as last measured).
    offset_us: AtomicI64,
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl WallClock {
    pub(crate) fn new() -> Self {
        let anchor = Instant::now();
        WallClock {
            anchor,
            offset_us: AtomicI64::new(wall_us()),
        }
    }

    /// The wall time at `now`, ms since the epoch.
    pub(crate) fn millis_at(&self, now: Instant) -> i64 {
        let since = micros(now.saturating_duration_since(self.anchor));
        self.offset_us
            .load(Ordering::Relaxed)
            .saturating_add(since)
            .div_euclid(1000)
    }

    /// Re-reads the wall clock (the sender task, every [`RESYNC_EVERY`]).
    pub(crate) fn resync(&self) {
        let wall = wall_us();
        let since = micros(Instant::now().saturating_duration_since(self.anchor));
        self.offset_us
            .store(wall.saturating_sub(since), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock() {
        let clock = WallClock::new();
        let now = Instant::now();
        let wall = wall_us() / 1000;
        assert!((clock.millis_at(now) - wall).abs() <= 2);
        let later = now + Duration::from_millis(250);
        assert!((clock.millis_at(later) - (wall + 250)).abs() <= 2);
        clock.resync();
        assert!((clock.millis_at(Instant::now()) - wall_us() / 1000).abs() <= 2);
    }
}
