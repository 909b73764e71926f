//! Decompressors never panic on corrupt input and always respect the limit.

use kafkit_wire::compression::{compress, decompress, Compression, CompressionError};
use proptest::prelude::*;

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_streams_never_panic(
        codec in codec(),
        data in proptest::collection::vec(0u8..6, 0..3000),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        limit in 0usize..5000,
    ) {
        let mut packed = Vec::new();
        compress(codec, &data, &mut packed).unwrap();
        for &(at, v) in &edits {
            if !packed.is_empty() {
                let i = at % packed.len();
                packed[i] = v;
            }
        }
        let cut = if packed.is_empty() { 0 } else { cut % (packed.len() + 1) };
        let mut out = Vec::new();
        match decompress(codec, &packed[..cut], limit, &mut out) {
            Ok(()) => prop_assert!(out.len() <= limit),
            Err(_) => prop_assert!(out.is_empty()),
        }
    }

    #[test]
    fn random_bytes_never_panic(codec in codec(), junk in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        let _ = decompress(codec, &junk, 1 << 16, &mut out);
        prop_assert!(out.len() <= 1 << 16);
    }
}

#[test]
fn zstd_concatenated_frames() {
    let mut packed = Vec::new();
    compress(Compression::Zstd, b"first frame ", &mut packed).unwrap();
    compress(Compression::Zstd, b"second frame", &mut packed).unwrap();
    let mut out = Vec::new();
    decompress(Compression::Zstd, &packed, 100, &mut out).unwrap();
    assert_eq!(out, b"first frame second frame");
    let err = decompress(Compression::Zstd, &packed, 20, &mut Vec::new()).unwrap_err();
    assert!(matches!(
        err,
        CompressionError::LimitExceeded { limit: 20, .. }
    ));
}

#[test]
fn gzip_concatenated_members() {
    let mut packed = Vec::new();
    compress(Compression::Gzip, b"one ", &mut packed).unwrap();
    compress(Compression::Gzip, b"two", &mut packed).unwrap();
    let mut out = Vec::new();
    decompress(Compression::Gzip, &packed, 100, &mut out).unwrap();
    assert_eq!(out, b"one two");
}
