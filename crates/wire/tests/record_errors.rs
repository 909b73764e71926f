//! Every decoding error is reachable, truncation is clean at every cut, nothing panics.

mod common;

use bytes::{Bytes, BytesMut};
use common::{fetch_buffer, legacy_message, recrc, v2_batch};
use kafkit_wire::compression::{compress, Compression};
use kafkit_wire::record::varint::VarintError;
use kafkit_wire::record::{
    decode_batch, BatchBuilder, BatchOptions, BatchReader, DecodeLimits, EncodeError, RecordError,
    RecordRef,
};
use proptest::prelude::*;

fn decode(bytes: Vec<u8>) -> Result<kafkit_wire::record::RecordBatch, RecordError> {
    decode_batch(Bytes::from(bytes), &DecodeLimits::default())
}

fn one_record() -> Vec<u8> {
    vec![0x10, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x00]
}

#[test]
fn bad_crc_on_every_covered_byte() {
    let good = v2_batch(7, 0, 1, &one_record());
    for i in 17..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        match decode(bad) {
            Err(RecordError::BadCrc {
                base_offset: 7,
                expected,
                actual,
            }) => assert_ne!(expected, actual),
            other => panic!("byte {i}: {other:?}"),
        }
    }
}

#[test]
fn bad_magic() {
    let mut b = v2_batch(7, 0, 1, &one_record());
    b[16] = 3;
    assert!(matches!(
        decode(b),
        Err(RecordError::BadMagic {
            magic: 3,
            base_offset: 7
        })
    ));
    let mut reader = BatchReader::new(Bytes::from(
        vec![0u8; 16]
            .into_iter()
            .chain([0, 0, 0, 0, 0x7f])
            .collect::<Vec<_>>(),
    ));
    // length 0 with magic 0 is too short before the magic matters
    assert!(reader.next_batch().is_err());
}

#[test]
fn bad_varints() {
    let mut rec = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    rec.extend_from_slice(&[0; 6]);
    match decode(v2_batch(1, 0, 1, &rec)) {
        Err(RecordError::BadVarint { source, field, .. }) => {
            assert_eq!(source, VarintError::TooLong);
            assert_eq!(field, "record length");
        }
        other => panic!("{other:?}"),
    }
    // Timestamp delta: 10 bytes whose last carries overflow bits.
    let mut body = vec![0x00];
    body.extend_from_slice(&[0xff; 9]);
    body.push(0x7f);
    body.extend_from_slice(&[0x00, 0x01, 0x01, 0x00]);
    let mut rec = vec![(body.len() as u8) << 1];
    rec.extend_from_slice(&body);
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::BadVarint {
            source: VarintError::Overflow,
            field: "timestamp delta",
            ..
        })
    ));
}

#[test]
fn invalid_lengths() {
    // Record length -2.
    let rec = [0x03, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::InvalidLength {
            field: "record length",
            value: -2,
            ..
        })
    ));
    // Key length -2.
    let rec = [0x0c, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::InvalidLength {
            field: "key length",
            value: -2,
            ..
        })
    ));
    // Header count -1 and header count larger than the bytes could hold.
    let rec = [0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::InvalidLength {
            field: "header count",
            ..
        })
    ));
    let rec = [0x0e, 0x00, 0x00, 0x00, 0x01, 0x01, 0xfe, 0x01];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::InvalidLength {
            field: "header count",
            value: 127,
            ..
        })
    ));
    // Null header key.
    let rec = [0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x01, 0x01];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::InvalidLength {
            field: "header key length",
            value: -1,
            ..
        })
    ));
    // Negative record count.
    assert!(matches!(
        decode(v2_batch(1, 0, -1, &one_record())),
        Err(RecordError::InvalidLength {
            field: "record count",
            ..
        })
    ));
    // Negative and too-small batch lengths.
    let mut b = v2_batch(1, 0, 1, &one_record());
    b[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        decode(b),
        Err(RecordError::InvalidLength {
            field: "batch length",
            ..
        })
    ));
    let mut b = v2_batch(1, 0, 1, &one_record());
    b[8..12].copy_from_slice(&20i32.to_be_bytes());
    let mut reader = BatchReader::new(Bytes::from(b));
    assert!(matches!(
        reader.next(),
        Some(Err(RecordError::InvalidLength { .. }))
    ));
    assert!(reader.next().is_none(), "fused after an error");
}

#[test]
fn truncated_inside_a_batch() {
    // Key length 100 in a record of 8 bytes: the key runs past the record.
    let rec = [0x10, 0x00, 0x00, 0x00, 0xc8, 0x01, b'k', 0x02, b'v'];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::RecordLengthMismatch { declared: 8, .. })
    ));
    // Record length past the records section.
    let rec = [0x40, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::Truncated {
            needed: 32,
            available: 6,
            ..
        })
    ));
    // decode_batch on a short buffer.
    let b = v2_batch(1, 0, 1, &one_record());
    assert!(matches!(
        decode(b[..b.len() - 1].to_vec()),
        Err(RecordError::Truncated { .. })
    ));
}

#[test]
fn record_length_disagreeing_with_fields() {
    // Declared 9 bytes, fields take 8, one spare byte.
    let rec = [0x12, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x00, 0x00];
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &rec)),
        Err(RecordError::RecordLengthMismatch {
            declared: 9,
            actual: 8,
            ..
        })
    ));
}

#[test]
fn count_mismatch_and_trailing_bytes() {
    assert!(matches!(
        decode(v2_batch(1, 0, 2, &one_record())),
        Err(RecordError::CountMismatch { declared: 2, .. })
    ));
    assert!(matches!(
        decode(v2_batch(1, 0, 1_000_000_000, &one_record())),
        Err(RecordError::CountMismatch {
            declared: 1_000_000_000,
            ..
        })
    ));
    let mut two = one_record();
    two.extend_from_slice(&one_record());
    assert!(matches!(
        decode(v2_batch(1, 0, 1, &two)),
        Err(RecordError::TrailingBytes { count: 9, .. })
    ));
    let b = v2_batch(1, 0, 1, &one_record());
    let mut extra = b.clone();
    extra.push(0);
    assert!(matches!(
        decode(extra),
        Err(RecordError::TrailingBytes { count: 1, .. })
    ));
}

#[test]
fn unknown_codec_and_corrupt_data() {
    for id in 5..8 {
        assert!(matches!(
            decode(v2_batch(4, id, 1, &one_record())),
            Err(RecordError::UnknownCodec { base_offset: 4, .. })
        ));
    }
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let r = decode(v2_batch(
            4,
            codec.id() as i16,
            1,
            b"definitely not compressed",
        ));
        assert!(
            matches!(r, Err(RecordError::Decompression { base_offset: 4, .. })),
            "{codec}: {r:?}"
        );
    }
}

#[test]
fn compression_bombs_hit_the_limit() {
    let zeros = vec![0u8; 8 << 20];
    let limits = DecodeLimits::with_max_decompressed_size(1 << 20);
    for codec in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
    ] {
        let mut packed = Vec::new();
        compress(codec, &zeros, &mut packed).unwrap();
        assert!(packed.len() < 1 << 20, "{codec} should compress zeros well");
        let batch = v2_batch(9, codec.id() as i16, 1, &packed);
        let r = decode_batch(Bytes::from(batch), &limits);
        assert!(
            matches!(
                r,
                Err(RecordError::DecompressionLimit {
                    base_offset: 9,
                    limit: 1_048_576
                })
            ),
            "{codec}: {r:?}"
        );
    }
    // A real batch over the limit, and the same under a larger limit.
    let mut buf = BytesMut::new();
    let mut b = BatchBuilder::new(&mut buf, 0);
    b.append(&RecordRef::new(0, None, Some(&zeros[..2 << 20])))
        .unwrap();
    let options = BatchOptions {
        compression: Compression::Gzip,
        ..BatchOptions::default()
    };
    b.finish(&options, &mut Vec::new()).unwrap();
    let bytes = buf.freeze();
    assert!(matches!(
        decode_batch(bytes.clone(), &limits),
        Err(RecordError::DecompressionLimit { .. })
    ));
    let big = DecodeLimits::with_max_decompressed_size(4 << 20);
    assert_eq!(
        decode_batch(bytes, &big).unwrap().records()[0]
            .value
            .as_ref()
            .unwrap()
            .len(),
        2 << 20
    );
}

#[test]
fn invalid_control_records() {
    let control_attr = 0x20;
    // Null key.
    let rec = [0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00];
    assert!(matches!(
        decode(v2_batch(1, control_attr, 1, &rec)),
        Err(RecordError::InvalidControlRecord {
            reason: "null key",
            ..
        })
    ));
    // Commit marker with a 2-byte value.
    let rec = [0x18, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 1, 0x04, 0, 0, 0x00];
    assert!(matches!(
        decode(v2_batch(1, control_attr, 1, &rec)),
        Err(RecordError::InvalidControlRecord { .. })
    ));
}

#[test]
fn nested_compression_in_legacy_wrapper() {
    let inner = legacy_message(0, 1, 1, 5, None, Some(b"x"));
    let mut packed = Vec::new();
    compress(Compression::Gzip, &inner, &mut packed).unwrap();
    let wrapper = legacy_message(10, 1, 1, 5, None, Some(&packed));
    assert!(matches!(
        decode(wrapper),
        Err(RecordError::NestedCompression { base_offset: 10 })
    ));
}

#[test]
fn encode_errors() {
    let mut buf = BytesMut::from(&b"keep"[..]);
    let b = BatchBuilder::new(&mut buf, 0);
    assert!(matches!(
        b.finish(&BatchOptions::default(), &mut Vec::new()),
        Err(EncodeError::EmptyBatch)
    ));
    assert_eq!(&buf[..], b"keep");
    let mut b = BatchBuilder::new(&mut buf, 0);
    b.append(&RecordRef::new(i64::MIN, None, None)).unwrap();
    let before = b.size();
    assert!(matches!(
        b.append(&RecordRef::new(i64::MAX, None, None)),
        Err(EncodeError::TimestampOverflow { .. })
    ));
    assert_eq!(b.size(), before, "a failed append writes nothing");
}

#[test]
fn truncation_at_every_cut_is_clean() {
    let (buf, ends) = fetch_buffer(6);
    let all: Vec<_> = BatchReader::new(buf.clone())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 6);
    for cut in 0..=buf.len() {
        let mut reader = BatchReader::new(buf.slice(..cut));
        let mut got = Vec::new();
        while let Some(batch) = reader
            .next_batch()
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"))
        {
            got.push(batch);
        }
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(got, all[..whole], "cut {cut}");
        let at_boundary = cut == 0 || ends.contains(&cut);
        assert_eq!(reader.is_truncated(), !at_boundary, "cut {cut}");
        let consumed = if whole == 0 { 0 } else { ends[whole - 1] };
        assert_eq!(reader.position(), consumed);
        assert_eq!(reader.truncated_bytes(), cut - consumed);
    }
}

#[test]
fn legacy_truncation_is_clean_too() {
    let mut buf = legacy_message(0, 0, 0, -1, None, Some(b"first"));
    let end = buf.len();
    buf.extend_from_slice(&legacy_message(1, 1, 0, 7, Some(b"k"), Some(b"second")));
    for cut in end + 1..buf.len() {
        let mut reader = BatchReader::new(Bytes::copy_from_slice(&buf[..cut]));
        assert!(reader.next_batch().unwrap().is_some());
        assert!(reader.next_batch().unwrap().is_none());
        assert!(reader.is_truncated());
    }
}

fn mutate_and_decode(buf: &Bytes, edits: &[(usize, u8)], fix_crc: bool) {
    mutate_and_decode_with(buf, edits, fix_crc, DecodeLimits::default());
}

fn mutate_and_decode_with(buf: &Bytes, edits: &[(usize, u8)], fix_crc: bool, limits: DecodeLimits) {
    let mut bytes = buf.to_vec();
    for &(at, v) in edits {
        let i = at % bytes.len();
        bytes[i] = v;
    }
    if fix_crc && bytes.len() > 21 && bytes[16] == 2 {
        // Re-CRC the first batch so the mutation reaches the record parser.
        let len = i32::from_be_bytes(bytes[8..12].try_into().unwrap());
        if let Ok(len) = usize::try_from(len) {
            if len >= 9 && 12 + len <= bytes.len() {
                recrc(&mut bytes[..12 + len]);
            }
        }
    }
    for batch in BatchReader::with_limits(Bytes::from(bytes), limits) {
        let _ = batch;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut reader = BatchReader::new(Bytes::from(bytes));
        while let Ok(Some(_)) = reader.next_batch() {}
    }

    #[test]
    fn mutated_batches_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        fix_crc in any::<bool>(),
    ) {
        let (buf, _) = fetch_buffer(3);
        mutate_and_decode(&buf, &edits, fix_crc);
    }

    #[test]
    fn mutated_batches_never_panic_with_the_crc_check_off(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let (buf, _) = fetch_buffer(3);
        let limits = DecodeLimits::default().with_crc_check(false);
        mutate_and_decode_with(&buf, &edits, false, limits);
    }
}
