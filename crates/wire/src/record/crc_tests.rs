//! A v2 batch is only decoded when its CRC32C matches: every single-bit flip in the bytes the
//! CRC covers, or in the CRC itself, is refused as [`RecordError::BadCrc`] by both the whole and
//! the streaming decoder (a corrupt batch must never reach the application). With the check
//! off (`DecodeLimits::with_crc_check(false)`, the consumer's `check.crcs=false`) the bytes are
//! parsed as they are, and a flip anywhere is a batch or a typed error, never a panic.

use bytes::{Bytes, BytesMut};

use super::{BatchBuilder, BatchOptions, BatchReader, RecordError, RecordRef};
use crate::compression::Compression;

/// Byte offsets of the CRC field in a v2 batch header.
const CRC: std::ops::Range<usize> = 17..21;

fn batch(compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    let mut builder = BatchBuilder::new(&mut buf, 40);
    for i in 0..3u8 {
        let value = [i; 9];
        builder
            .append(&RecordRef::new(
                1_000 + i64::from(i),
                Some(b"key"),
                Some(&value),
            ))
            .expect("append");
    }
    let options = BatchOptions {
        compression,
        ..BatchOptions::default()
    };
    builder.finish(&options, &mut Vec::new()).expect("finish");
    buf.freeze()
}

fn assert_bad_crc(bytes: Bytes, what: &str) {
    match BatchReader::new(bytes.clone()).next_batch() {
        Err(RecordError::BadCrc { base_offset, .. }) => assert_eq!(base_offset, 40, "{what}"),
        other => panic!("{what}: whole decode gave {other:?}"),
    }
    match BatchReader::new(bytes).next_streaming() {
        Err(RecordError::BadCrc { .. }) => {}
        Err(other) => panic!("{what}: streaming gave {other}"),
        Ok(other) => panic!("{what}: streaming opened {:?}", other.map(|b| b.header)),
    }
}

#[test]
fn every_bit_flip_under_the_crc_is_refused() {
    for compression in [Compression::None, Compression::Gzip] {
        let good = batch(compression);
        assert_eq!(
            BatchReader::new(good.clone())
                .next_batch()
                .expect("intact")
                .expect("a batch")
                .records()
                .len(),
            3
        );
        for at in CRC.start..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.to_vec();
                bad[at] ^= bit;
                assert_bad_crc(
                    Bytes::from(bad),
                    &format!("{compression:?} byte {at} ^ {bit:#x}"),
                );
            }
        }
    }
}

#[test]
fn a_zeroed_crc_is_refused_too() {
    let mut bad = batch(Compression::None).to_vec();
    bad[CRC].fill(0);
    assert_bad_crc(Bytes::from(bad), "zero CRC");
}

fn unchecked() -> super::DecodeLimits {
    super::DecodeLimits::default().with_crc_check(false)
}

#[test]
fn with_the_check_off_a_wrong_crc_decodes_as_the_bytes_are() {
    let good = batch(Compression::None);
    // The last record ends with its 9 value bytes and a 1-byte header count: flip the
    // value's last byte.
    let mut bad = good.to_vec();
    let at = bad.len() - 2;
    bad[at] ^= 0x55;
    let bad = Bytes::from(bad);
    assert_bad_crc(bad.clone(), "flipped value byte, check on");
    let decoded = BatchReader::with_limits(bad.clone(), unchecked())
        .next_batch()
        .expect("decodes with the check off")
        .expect("a batch");
    let offsets: Vec<i64> = decoded.records().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [40, 41, 42]);
    assert_eq!(decoded.records()[1].value.as_deref(), Some(&[1u8; 9][..]));
    let mut changed = [2u8; 9];
    changed[8] ^= 0x55;
    assert_eq!(decoded.records()[2].value.as_deref(), Some(&changed[..]));
    // The streaming decoder agrees.
    let streamed = BatchReader::with_limits(bad, unchecked())
        .next_streaming()
        .expect("opens")
        .expect("a batch")
        .count();
    assert_eq!(streamed, 3);
}

#[test]
fn with_the_check_off_a_zeroed_crc_changes_nothing() {
    let good = batch(Compression::Gzip);
    let mut bad = good.to_vec();
    bad[CRC].fill(0);
    let want = BatchReader::new(good).next_batch().unwrap().unwrap();
    let got = BatchReader::with_limits(Bytes::from(bad), unchecked())
        .next_batch()
        .unwrap()
        .unwrap();
    assert_eq!(got.records(), want.records());
}

#[test]
fn with_the_check_off_every_bit_flip_is_a_batch_or_a_typed_error() {
    for compression in [Compression::None, Compression::Gzip] {
        let good = batch(compression);
        for at in 0..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.to_vec();
                bad[at] ^= bit;
                let mut reader = BatchReader::with_limits(Bytes::from(bad), unchecked());
                // Whatever it is, it ends: a batch or a typed error, then nothing.
                for _ in 0..4 {
                    match reader.next_batch() {
                        Ok(Some(b)) => assert!(b.records().len() <= 3),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }
}
