//! Exponential backoff with jitter, as the Java client's `ExponentialBackoff` (KIP-580).
//!
//! The Java client waits `initial × 2^attempts`, multiplied by a random factor in
//! `[0.8, 1.2)`, and never more than the maximum. It uses this for
//!
//! - retries of failed requests: `retry.backoff.ms` (100 ms) up to `retry.backoff.max.ms` (1 s);
//! - reconnects to a broker: `reconnect.backoff.ms` (50 ms) up to `reconnect.backoff.max.ms`
//!   (1 s);
//! - the connection setup timeout: `socket.connection.setup.timeout.ms` (10 s) up to
//!   `socket.connection.setup.timeout.max.ms` (30 s).
//!
//! When the initial value is not below the maximum, the backoff is static: always the maximum,
//! without jitter.

use std::time::Duration;

use super::rng::RandomSource;

/// An exponential backoff policy. Pure: the caller counts attempts and passes the random source.
///
/// ```
/// use std::time::Duration;
/// use kafkit::state::backoff::ExponentialBackoff;
/// use kafkit::state::rng::XorShift64Star;
///
/// // retry.backoff.ms = 100, retry.backoff.max.ms = 1000 (the Java client's defaults)
/// let backoff = ExponentialBackoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
/// let mut rng = XorShift64Star::new(1);
///
/// let first = backoff.backoff(0, &mut rng); // 100 ms ± 20%
/// assert!(first >= Duration::from_millis(80) && first < Duration::from_millis(120));
/// let third = backoff.backoff(2, &mut rng); // 400 ms ± 20%
/// assert!(third >= Duration::from_millis(320) && third < Duration::from_millis(480));
/// assert!(backoff.backoff(30, &mut rng) <= Duration::from_millis(1_000)); // capped
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialBackoff {
    initial_ms: u64,
    multiplier: u32,
    max_ms: u64,
    jitter: f64,
    /// The exponent at which `initial × multiplier^exp` reaches the maximum (0 = static).
    exp_max: f64,
}

impl ExponentialBackoff {
    /// The multiplier the Java client uses for all its backoffs.
    pub const MULTIPLIER: u32 = 2;
    /// The relative jitter the Java client uses for all its backoffs (±20%).
    pub const JITTER: f64 = 0.2;

    /// A backoff from `initial` to `max`, doubling per attempt, with ±20% jitter: the Java
    /// client's policy for `retry.backoff.ms`/`retry.backoff.max.ms` and
    /// `reconnect.backoff.ms`/`reconnect.backoff.max.ms`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self::with_parameters(initial, Self::MULTIPLIER, max, Self::JITTER)
    }

    /// A backoff with another `multiplier` and relative `jitter` (clamped to `[0, 1]`;
    /// 0 disables it). Durations are taken in whole milliseconds, as the Java client does.
    pub fn with_parameters(initial: Duration, multiplier: u32, max: Duration, jitter: f64) -> Self {
        let initial_ms = millis(initial);
        let max_ms = millis(max);
        let exp_max = if max_ms > initial_ms {
            (max_ms as f64 / initial_ms.max(1) as f64).ln() / f64::from(multiplier).ln()
        } else {
            0.0
        };
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        Self {
            initial_ms: initial_ms.min(max_ms),
            multiplier,
            max_ms,
            jitter,
            exp_max,
        }
    }

    /// The first backoff before jitter (the smaller of the initial value and the maximum).
    pub fn initial(&self) -> Duration {
        Duration::from_millis(self.initial_ms)
    }

    /// The cap.
    pub fn max(&self) -> Duration {
        Duration::from_millis(self.max_ms)
    }

    /// Whether the backoff is static (initial ≥ maximum): always [`max`](Self::max), no jitter.
    pub fn is_static(&self) -> bool {
        self.exp_max == 0.0
    }

    /// The wait after `attempts` earlier failures (0 before the first retry or reconnect):
    /// `initial × multiplier^attempts × jitter factor`, truncated to milliseconds and capped.
    ///
    /// Draws one random number unless the backoff is static or has no jitter.
    pub fn backoff<R: RandomSource + ?Sized>(&self, attempts: u32, rng: &mut R) -> Duration {
        // exp_max can be -0.0 or infinite for degenerate multipliers (0 or 1), as in Java.
        if self.exp_max == 0.0 || self.exp_max.is_nan() {
            return Duration::from_millis(self.initial_ms);
        }
        let exp = f64::from(attempts).min(self.exp_max);
        let term = self.initial_ms as f64 * f64::from(self.multiplier).powf(exp);
        let factor = if self.jitter < f64::MIN_POSITIVE {
            1.0
        } else {
            // Java's `nextDouble(origin, bound)`: uniform in [origin, bound), kept below bound.
            let (low, high) = (1.0 - self.jitter, 1.0 + self.jitter);
            let r = rng.next_f64() * (high - low) + low;
            if r >= high {
                // The largest double below `high` (positive, so one ulp down is bits - 1).
                f64::from_bits(high.to_bits() - 1)
            } else {
                r
            }
        };
        // `as` saturates, like Java's (long) cast of a large double.
        let ms = (factor * term) as u64;
        Duration::from_millis(ms.min(self.max_ms))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::rng::XorShift64Star;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// A random source that always returns the same float.
    struct Fixed(u64);
    impl RandomSource for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    #[test]
    fn doubles_within_jitter_and_caps() {
        let b = ExponentialBackoff::new(ms(100), ms(1_000));
        let mut rng = XorShift64Star::new(5);
        for _ in 0..1_000 {
            for (attempt, base) in [(0u32, 100.0_f64), (1, 200.0), (2, 400.0), (3, 800.0)] {
                let got = b.backoff(attempt, &mut rng).as_millis() as f64;
                assert!(
                    got >= (base * 0.8).floor() && got < base * 1.2,
                    "attempt {attempt}: {got}"
                );
                assert!(got <= 1_000.0);
            }
            // From attempt 4 on the exponent is capped at log2(10): 1000 ms ± 20%, capped.
            let got = b.backoff(4, &mut rng).as_millis();
            assert!((800..=1_000).contains(&got), "{got}");
            assert!(b.backoff(u32::MAX, &mut rng) <= ms(1_000));
        }
    }

    #[test]
    fn jitter_spans_both_sides() {
        let b = ExponentialBackoff::new(ms(1_000), ms(100_000));
        let mut rng = XorShift64Star::new(11);
        let samples: Vec<u128> = (0..2_000)
            .map(|_| b.backoff(0, &mut rng).as_millis())
            .collect();
        let min = samples.iter().min().copied().unwrap_or(0);
        let max = samples.iter().max().copied().unwrap_or(0);
        assert!((800..830).contains(&min), "min {min}");
        assert!((1_170..1_200).contains(&max), "max {max}");
    }

    #[test]
    fn extreme_random_values_stay_in_range() {
        let b = ExponentialBackoff::new(ms(100), ms(10_000));
        assert_eq!(b.backoff(0, &mut Fixed(0)), ms(80));
        assert_eq!(b.backoff(0, &mut Fixed(u64::MAX)).as_millis(), 119);
        assert_eq!(b.backoff(3, &mut Fixed(0)), ms(640));
    }

    #[test]
    fn static_when_initial_not_below_max() {
        let b = ExponentialBackoff::new(ms(2_000), ms(1_000));
        assert!(b.is_static());
        assert_eq!(b.initial(), ms(1_000));
        let mut rng = XorShift64Star::new(1);
        for attempt in 0..10 {
            assert_eq!(b.backoff(attempt, &mut rng), ms(1_000));
        }
        let equal = ExponentialBackoff::new(ms(50), ms(50));
        assert_eq!(equal.backoff(7, &mut rng), ms(50));
    }

    #[test]
    fn zero_jitter_is_exact() {
        let b = ExponentialBackoff::with_parameters(ms(50), 2, ms(1_000), 0.0);
        let mut rng = XorShift64Star::new(1);
        let got: Vec<u64> = (0..7)
            .map(|a| b.backoff(a, &mut rng).as_millis() as u64)
            .collect();
        assert_eq!(got, vec![50, 100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn zero_initial_stays_zero() {
        let b = ExponentialBackoff::new(ms(0), ms(1_000));
        let mut rng = XorShift64Star::new(1);
        assert_eq!(b.backoff(0, &mut rng), ms(0));
        assert_eq!(b.backoff(20, &mut rng), ms(0));
    }

    #[test]
    fn degenerate_multipliers_do_not_panic() {
        let mut rng = XorShift64Star::new(1);
        let one = ExponentialBackoff::with_parameters(ms(100), 1, ms(1_000), 0.0);
        assert_eq!(one.backoff(10, &mut rng), ms(100));
        let zero = ExponentialBackoff::with_parameters(ms(100), 0, ms(1_000), 0.2);
        assert_eq!(zero.backoff(10, &mut rng), ms(100));
        let nan_jitter = ExponentialBackoff::with_parameters(ms(100), 2, ms(1_000), f64::NAN);
        assert_eq!(nan_jitter.backoff(1, &mut rng), ms(200));
    }
}
