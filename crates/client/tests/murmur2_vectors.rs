//! Checks the key partitioner against vectors produced by the Java client itself
//! (see `tests/data/README.md` for how `murmur2_vectors.txt` was made).

use kafkit::rng::XorShift64Star;
use kafkit::state::murmur2::{murmur2, partition_for_key, to_positive};
use kafkit::state::partitioner::{DefaultPartitioner, Partitioner, RecordInfo, TopicPartitions};

const VECTORS: &str = include_str!("data/murmur2_vectors.txt");
const PARTITION_COUNTS: [u32; 5] = [1, 3, 6, 7, 100];

struct Vector {
    key: Vec<u8>,
    hash: i32,
    positive: i32,
    partitions: [u32; 5],
}

fn decode_hex(hex: &str) -> Vec<u8> {
    if hex == "-" {
        return Vec::new();
    }
    assert!(hex.len().is_multiple_of(2), "odd hex length: {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 8, "bad line: {line}");
            let mut partitions = [0u32; 5];
            for (slot, field) in partitions.iter_mut().zip(&fields[3..]) {
                *slot = field.parse().unwrap();
            }
            Vector {
                key: decode_hex(fields[0]),
                hash: fields[1].parse().unwrap(),
                positive: fields[2].parse().unwrap(),
                partitions,
            }
        })
        .collect()
}

#[test]
fn vectors_cover_every_tail_length_and_high_bytes() {
    let v = vectors();
    assert!(v.len() >= 30, "only {} vectors", v.len());
    for tail in 0..4 {
        assert!(v
            .iter()
            .any(|x| !x.key.is_empty() && x.key.len() % 4 == tail));
    }
    assert!(v.iter().any(|x| x.key.is_empty()));
    assert!(v.iter().any(|x| x.key.iter().any(|&b| b >= 0x80)));
    assert!(v.iter().any(|x| x.key.len() >= 1_000));
}

#[test]
fn murmur2_matches_the_java_client() {
    for v in vectors() {
        assert_eq!(murmur2(&v.key), v.hash, "murmur2 of {:02x?}", v.key);
        assert_eq!(to_positive(v.hash), v.positive, "toPositive of {}", v.hash);
    }
}

#[test]
fn key_partitions_match_the_java_client() {
    for v in vectors() {
        for (count, expected) in PARTITION_COUNTS.iter().zip(v.partitions) {
            assert_eq!(
                partition_for_key(&v.key, *count),
                Some(expected),
                "key {:02x?} over {count} partitions",
                v.key
            );
        }
    }
}

#[test]
fn default_partitioner_routes_keys_like_the_java_client() {
    let mut p = DefaultPartitioner::new(16_384, false, XorShift64Star::new(1));
    for v in vectors() {
        for (count, expected) in PARTITION_COUNTS.iter().zip(v.partitions) {
            let record = RecordInfo::new("t").with_key(&v.key);
            let got = p.partition(&record, &TopicPartitions::all_available(*count));
            assert_eq!(got, Ok(expected));
        }
    }
}
