//! The key hash of the Java client: `Utils.murmur2` and `Utils.toPositive`.
//!
//! Records with the same key must land on the same partition whichever client produced them,
//! so this is bit-for-bit the Java client's function (including its signed 32-bit results).
//! `crates/client/tests/data/murmur2_vectors.txt`, produced by running the Java client, pins it.

const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// The 32-bit murmur2 hash of `data`, exactly as the Java client's `Utils.murmur2`.
///
/// The result is the signed Java `int`; use [`to_positive`] before taking a modulus.
///
/// ```
/// use kafkit::state::murmur2::murmur2;
///
/// // The value Kafka's own test suite expects for the key "21".
/// assert_eq!(murmur2(b"21"), -973_932_308);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    // Java's `int length` is at most i32::MAX, so the truncation matches it for any real key.
    let mut h = SEED ^ (data.len() as u32);

    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    // The tail: Java's `switch` falls through from case 3 to case 1.
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Clears the sign bit, as the Java client's `Utils.toPositive` (`h & 0x7fffffff`).
///
/// Unlike `abs`, it maps `i32::MIN` to 0 rather than overflowing.
///
/// ```
/// use kafkit::state::murmur2::to_positive;
///
/// assert_eq!(to_positive(-1), i32::MAX);
/// assert_eq!(to_positive(i32::MIN), 0);
/// assert_eq!(to_positive(42), 42);
/// ```
pub fn to_positive(h: i32) -> i32 {
    h & 0x7fff_ffff
}

/// The partition of a keyed record: `toPositive(murmur2(key)) % partition_count`, as the Java
/// client's `BuiltInPartitioner.partitionForKey`.
///
/// Returns `None` when `partition_count` is 0 (a topic with no partitions has no answer).
///
/// ```
/// use kafkit::state::murmur2::partition_for_key;
///
/// assert_eq!(partition_for_key(b"21", 7), Some(3));
/// assert_eq!(partition_for_key(b"21", 0), None);
/// ```
pub fn partition_for_key(key: &[u8], partition_count: u32) -> Option<u32> {
    if partition_count == 0 {
        return None;
    }
    // to_positive is in 0..=i32::MAX, so the cast is lossless.
    Some(to_positive(murmur2(key)) as u32 % partition_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from Kafka's own UtilsTest.testMurmur2 (Java client).
    #[test]
    fn kafka_utils_test_values() {
        let cases: &[(&str, i32)] = &[
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), *expected, "key {key:?}");
        }
    }

    #[test]
    fn high_bytes_are_unsigned_like_javas_and_0xff() {
        // A sign-extending implementation would give a different value for these.
        assert_eq!(murmur2(&[0xff]), -311_467_685);
        assert_eq!(murmur2(&[0xff, 0xfe, 0xfd]), 998_637_092);
    }

    #[test]
    fn partition_is_in_range() {
        for n in 1..50u32 {
            for key in [&b""[..], b"a", b"abcdefg", &[0xff; 9]] {
                let p = partition_for_key(key, n);
                assert!(matches!(p, Some(p) if p < n));
            }
        }
    }
}
