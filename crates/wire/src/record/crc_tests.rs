//! A v2 batch is only decoded when its CRC32C matches: every single-bit flip in the bytes the
//! CRC covers, or in the CRC itself, is refused as [`RecordError::BadCrc`] by both the whole and
//! the streaming decoder (a corrupt batch must never reach the application).

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
