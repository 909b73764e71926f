//! A small, seedable random source for the pure decision code.
//!
//! Partition switching and backoff jitter need randomness; they take it as a
//! [`RandomSource`] argument so tests can fix the seed and the IO layer can pick its own.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A source of uniformly distributed random numbers.
///
/// Implement it to plug in another generator; [`XorShift64Star`] is the built-in one.
pub trait RandomSource {
    /// The next 64 uniformly distributed random bits.
    fn next_u64(&mut self) -> u64;

    /// The next 32 uniformly distributed random bits (the high half of [`next_u64`]).
    ///
    /// [`next_u64`]: RandomSource::next_u64
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniformly distributed float in `[0, 1)`, from 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A non-negative random `i32`, as the Java client's `Utils.toPositive(random.nextInt())`.
    fn next_positive_i32(&mut self) -> u32 {
        self.next_u32() & 0x7fff_ffff
    }
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// Marsaglia's xorshift64* generator: tiny, fast, and good enough for load spreading and
/// jitter (it is **not** cryptographically secure).
///
/// ```
/// use kafkit::state::rng::{RandomSource, XorShift64Star};
///
/// let mut a = XorShift64Star::new(42);
/// let mut b = XorShift64Star::new(42);
/// assert_eq!(a.next_u64(), b.next_u64()); // same seed, same sequence
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorShift64Star {
    state: u64,
}

impl XorShift64Star {
    /// A generator with the given seed. The seed 0 (a fixed point of xorshift) is replaced by
    /// a fixed non-zero constant, so every seed gives a usable generator.
    pub fn new(seed: u64) -> Self {
        let state = if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        };
        Self { state }
    }

    /// A generator seeded from the process's hash randomness (std's `RandomState`), so two
    /// producers in one process do not follow the same sequence.
    pub fn from_entropy() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x6b61_666b_6974); // any input: the keys are what is random
        Self::new(hasher.finish())
    }
}

impl RandomSource for XorShift64Star {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_different_seeds_differ() {
        let mut a = XorShift64Star::new(7);
        let mut b = XorShift64Star::new(7);
        let mut c = XorShift64Star::new(8);
        let sa: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let sb: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let sc: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
    }

    #[test]
    fn zero_seed_is_usable() {
        let mut r = XorShift64Star::new(0);
        let first = r.next_u64();
        assert_ne!(first, 0);
        assert_ne!(first, r.next_u64());
    }

    #[test]
    fn floats_stay_in_unit_interval_and_spread() {
        let mut r = XorShift64Star::new(1);
        let mut below_half = 0;
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f), "{f}");
            if f < 0.5 {
                below_half += 1;
            }
        }
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }

    #[test]
    fn positive_i32_never_sets_the_sign_bit() {
        let mut r = XorShift64Star::new(3);
        for _ in 0..1_000 {
            assert!(r.next_positive_i32() <= i32::MAX as u32);
        }
    }
}
