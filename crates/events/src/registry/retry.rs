//! The retry policy (sans-IO): which failures are retried and how long to wait before each
//! retry, as Confluent's clients do it (full jitter).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with full jitter: retry `n` (0-based) waits `unit · min(base·2ⁿ, max)`,
/// where `unit` is uniform in `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    /// The ceiling of retry `n`'s wait: `min(base·2ⁿ, max)`.
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Retry `n`'s wait for a random `unit` in `[0, 1)`.
    pub(crate) fn delay(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A uniform random number in `[0, 1)` from std's randomly keyed hasher (jitter needs no
/// cryptographic quality and this avoids a dependency).
pub(crate) fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_then_cap() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(20),
        };
        assert_eq!(b.ceiling(0), Duration::from_secs(1));
        assert_eq!(b.ceiling(3), Duration::from_secs(8));
        assert_eq!(b.ceiling(5), Duration::from_secs(20));
        assert_eq!(b.ceiling(200), Duration::from_secs(20));
        assert_eq!(b.delay(2, 0.5), Duration::from_secs(2));
        assert!(b.delay(2, 7.0) <= Duration::from_secs(4));
    }

    #[test]
    fn random_units_vary_and_stay_in_range() {
        let units: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(units.windows(2).any(|w| w[0] != w[1]));
    }
}
