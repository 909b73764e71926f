//! New event ids without a system call per id: UUID v7 built from the clock, a process-wide
//! counter and OS randomness drawn in blocks per thread.
//!
//! `uuid::Uuid::now_v7` locks a shared context and asks the OS for random bytes on every id (a
//! `getrandom` system call each). Here:
//! - the 48-bit millisecond timestamp and the 12-bit `rand_a` field come from one atomic
//!   `(ms << 12) | counter`: a new millisecond restarts the counter at 0, the same millisecond
//!   adds 1, and a counter overflow carries into the timestamp (RFC 9562 §6.2, method 1, with the
//!   clock advanced by the overflow). Ids made in one process therefore sort in creation order,
//!   as `now_v7`'s do, whatever the thread;
//! - the 62 random bits of `rand_b` are OS randomness (`getrandom`, so as good as `now_v7`'s),
//!   read [`BLOCK`] bytes at a time into a per-thread buffer: one system call per 32 ids.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// Bytes of OS randomness fetched at a time per thread (8 per id).
const BLOCK: usize = 256;

/// `(ms << 12) | counter` of the last id made in this process.
static LAST: AtomicU64 = AtomicU64::new(0);

struct Randomness {
    bytes: [u8; BLOCK],
    used: usize,
}

thread_local! {
    static RANDOMNESS: RefCell<Randomness> = const {
        RefCell::new(Randomness { bytes: [0; BLOCK], used: BLOCK })
    };
}

/// 64 bits of OS randomness, from this thread's block (refilled when spent). `None` when the
/// OS refuses randomness.
fn random_u64() -> Option<u64> {
    RANDOMNESS.with(|cell| {
        let mut r = cell.borrow_mut();
        if r.used + 8 > BLOCK {
            getrandom::fill(&mut r.bytes).ok()?;
            r.used = 0;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&r.bytes[r.used..r.used + 8]);
        r.used += 8;
        Some(u64::from_ne_bytes(word))
    })
}

/// The next `(ms << 12) | counter`: later than every one before it in this process.
fn next_timestamp_and_counter(last: &AtomicU64, now_ms: u64) -> u64 {
    let fresh = (now_ms & ((1 << 48) - 1)) << 12;
    let mut prev = last.load(Ordering::Relaxed);
    loop {
        let next = if fresh > prev { fresh } else { prev + 1 };
        match last.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => prev = seen,
        }
    }
}

/// A new UUID v7 made at `now_ms` (see the module docs); falls back to `Uuid::now_v7` if the
/// OS refuses randomness.
pub(crate) fn new_v7(now_ms: i64) -> Uuid {
    let Some(random) = random_u64() else {
        return Uuid::now_v7();
    };
    let now_ms = u64::try_from(now_ms).unwrap_or(0);
    let ts_counter = next_timestamp_and_counter(&LAST, now_ms);
    let ms = u128::from(ts_counter >> 12);
    let counter = u128::from(ts_counter & 0xfff);
    let rand_b = u128::from(random & ((1 << 62) - 1));
    Uuid::from_u128((ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b)
}

/// The hyphenated lowercase text of `id`, in one allocation.
pub(crate) fn to_text(id: Uuid) -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_rfc_variant_and_carry_the_time() {
        let before = u64::try_from(crate::envelope::now_millis()).unwrap_or(0);
        let id = new_v7(crate::envelope::now_millis());
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or((0, 0));
        let ms = secs * 1000 + u64::from(nanos / 1_000_000);
        assert!(ms >= before && ms <= before + 1_000, "{before} <= {ms}");
    }

    #[test]
    fn ids_sort_in_creation_order_across_threads() {
        let ids: Vec<Uuid> = std::thread::scope(|s| {
            let a = s.spawn(|| {
                (0..5_000)
                    .map(|_| new_v7(crate::envelope::now_millis()))
                    .collect::<Vec<_>>()
            });
            let b = s.spawn(|| {
                (0..5_000)
                    .map(|_| new_v7(crate::envelope::now_millis()))
                    .collect::<Vec<_>>()
            });
            let mut all = a.join().unwrap_or_default();
            all.extend(b.join().unwrap_or_default());
            all
        });
        assert_eq!(ids.len(), 10_000);
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10_000, "ids are unique");
        // Within a thread, creation order is sort order.
        for run in ids.chunks(5_000) {
            assert!(run.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn a_counter_overflow_carries_into_the_timestamp() {
        let state = AtomicU64::new(0);
        let ms = 1u64 << 40;
        let first = next_timestamp_and_counter(&state, ms);
        assert_eq!(first, ms << 12, "a new ms restarts the counter");
        let mut last = first;
        for _ in 0..5_000 {
            let next = next_timestamp_and_counter(&state, ms);
            assert!(next > last);
            last = next;
        }
        assert_eq!(
            last >> 12,
            ms + 1,
            "4,096 ids in one ms advance the clock by one"
        );
        assert_eq!(last & 0xfff, 5_000 - 4_096);
        // The clock going back does not make ids go back.
        assert!(next_timestamp_and_counter(&state, ms - 10) > last);
    }

    #[test]
    fn text_is_hyphenated_lowercase() {
        let id = new_v7(crate::envelope::now_millis());
        assert_eq!(to_text(id), id.hyphenated().to_string());
    }
}
