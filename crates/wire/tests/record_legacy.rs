//! Legacy message sets (magic 0 and 1), built by hand, decoded through the same reader.

mod common;

use bytes::Bytes;
use common::legacy_message;
use kafkit_wire::compression::{compress, Compression};
use kafkit_wire::record::{BatchReader, DecodeLimits, RecordError, TimestampType};

#[test]
fn uncompressed_v0_and_v1_messages() {
    let mut buf = legacy_message(10, 0, 0, -1, Some(b"k0"), Some(b"v0"));
    buf.extend_from_slice(&legacy_message(11, 1, 0, 1_234, None, Some(b"v1")));
    buf.extend_from_slice(&legacy_message(12, 1, 0x08, 5_678, Some(b""), None));
    // Hand check of the v0 layout: offset, size 4+1+1+4+2+4+2 = 18, crc, magic, attrs.
    assert_eq!(&buf[8..12], &18i32.to_be_bytes());
    assert_eq!(buf[16], 0);
    let batches: Vec<_> = BatchReader::new(Bytes::from(buf))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.len(), 3);
    let r0 = &batches[0].records()[0];
    assert_eq!((r0.offset, r0.timestamp), (10, -1));
    assert_eq!(r0.key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(r0.value.as_deref(), Some(&b"v0"[..]));
    assert_eq!(batches[0].header.magic, 0);
    let r1 = &batches[1].records()[0];
    assert_eq!((r1.offset, r1.timestamp, r1.key.clone()), (11, 1_234, None));
    assert_eq!(batches[1].header.magic, 1);
    assert_eq!(batches[1].header.producer_id, -1);
    let b2 = &batches[2];
    assert_eq!(
        b2.header.attributes.timestamp_type,
        TimestampType::LogAppendTime
    );
    assert_eq!(b2.records()[0].key.as_deref(), Some(&b""[..]));
    assert_eq!(b2.records()[0].value, None);
}

fn wrapper(
    magic: i8,
    codec: Compression,
    attrs_extra: i8,
    offset: i64,
    ts: i64,
    inner: &[Vec<u8>],
) -> Vec<u8> {
    let set: Vec<u8> = inner.concat();
    let mut packed = Vec::new();
    compress(codec, &set, &mut packed).unwrap();
    legacy_message(
        offset,
        magic,
        codec.id() as i8 | attrs_extra,
        ts,
        None,
        Some(&packed),
    )
}

#[test]
fn gzip_wrapper_v1_relative_offsets() {
    let inner = vec![
        legacy_message(0, 1, 0, 100, Some(b"a"), Some(b"1")),
        legacy_message(1, 1, 0, 101, Some(b"b"), Some(b"2")),
        legacy_message(2, 1, 0, 102, Some(b"c"), Some(b"3")),
    ];
    let buf = wrapper(1, Compression::Gzip, 0, 52, 102, &inner);
    let mut reader = BatchReader::new(Bytes::from(buf));
    let batch = reader.next_batch().unwrap().unwrap();
    assert!(reader.next_batch().unwrap().is_none());
    assert_eq!(batch.header.attributes.compression, Compression::Gzip);
    assert_eq!(batch.header.base_offset, 50);
    assert_eq!(batch.header.last_offset_delta, 2);
    assert_eq!(batch.header.record_count, 3);
    assert_eq!(batch.header.max_timestamp, 102);
    let offsets: Vec<i64> = batch.records().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [50, 51, 52]);
    let ts: Vec<i64> = batch.records().iter().map(|r| r.timestamp).collect();
    assert_eq!(ts, [100, 101, 102]);
    assert_eq!(batch.records()[2].value.as_deref(), Some(&b"3"[..]));
}

#[test]
fn log_append_time_wrapper_overrides_inner_timestamps() {
    let inner = vec![
        legacy_message(0, 1, 0, 1, None, Some(b"x")),
        legacy_message(1, 1, 0, 2, None, Some(b"y")),
    ];
    let buf = wrapper(1, Compression::Snappy, 0x08, 7, 999, &inner);
    let batch = BatchReader::new(Bytes::from(buf)).next().unwrap().unwrap();
    let got: Vec<(i64, i64)> = batch
        .records()
        .iter()
        .map(|r| (r.offset, r.timestamp))
        .collect();
    assert_eq!(got, [(6, 999), (7, 999)]);
}

#[test]
fn gzip_wrapper_v0_absolute_offsets_and_other_codecs() {
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
        let inner = vec![
            legacy_message(30, 0, 0, -1, None, Some(b"p")),
            legacy_message(31, 0, 0, -1, None, Some(b"q")),
        ];
        let buf = wrapper(0, codec, 0, 31, -1, &inner);
        let batch = BatchReader::new(Bytes::from(buf)).next().unwrap().unwrap();
        let offsets: Vec<i64> = batch.records().iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [30, 31], "{codec}");
        assert_eq!(batch.records()[0].timestamp, -1);
    }
}

#[test]
fn legacy_errors() {
    let mut bad = legacy_message(3, 1, 0, 1, None, Some(b"v"));
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        BatchReader::new(Bytes::from(bad)).next(),
        Some(Err(RecordError::BadCrc { base_offset: 3, .. }))
    ));
    let unknown = legacy_message(3, 1, 6, 1, None, Some(b"v"));
    assert!(matches!(
        BatchReader::new(Bytes::from(unknown)).next(),
        Some(Err(RecordError::UnknownCodec { id: 6, .. }))
    ));
    let negative = legacy_message(3, 0, 0, 0, None, None);
    let mut negative = negative.clone();
    // key length -2
    negative[18..22].copy_from_slice(&(-2i32).to_be_bytes());
    let crc = crc32fast::hash(&negative[16..]);
    negative[12..16].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        BatchReader::new(Bytes::from(negative)).next(),
        Some(Err(RecordError::InvalidLength {
            field: "key length",
            ..
        }))
    ));
    // An inner magic other than 0 or 1.
    let mut inner = legacy_message(0, 0, 0, -1, None, Some(b"p"));
    inner[16] = 2;
    let crc = crc32fast::hash(&inner[16..]);
    inner[12..16].copy_from_slice(&crc.to_be_bytes());
    let buf = wrapper(1, Compression::Gzip, 0, 5, 1, &[inner]);
    assert!(matches!(
        BatchReader::new(Bytes::from(buf)).next(),
        Some(Err(RecordError::BadMagic { magic: 2, .. }))
    ));
    // A wrapper with a null value.
    let null = legacy_message(5, 1, 1, 1, None, None);
    assert!(matches!(
        BatchReader::new(Bytes::from(null)).next(),
        Some(Err(RecordError::InvalidLength {
            field: "wrapper value length",
            ..
        }))
    ));
}

#[test]
fn legacy_crcs_are_skipped_with_the_check_off() {
    let unchecked = DecodeLimits::default().with_crc_check(false);
    // A plain message with its value's byte flipped.
    let mut bad = legacy_message(3, 1, 0, 1, None, Some(b"v"));
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let batch = BatchReader::with_limits(Bytes::from(bad), unchecked)
        .next_batch()
        .unwrap()
        .unwrap();
    assert_eq!(batch.records()[0].offset, 3);
    assert_eq!(batch.records()[0].value.as_deref(), Some(&[b'v' ^ 1][..]));
    // A wrapper whose inner message has a wrong CRC: refused with the check, decoded without.
    let mut second = legacy_message(1, 1, 0, 101, None, Some(b"2"));
    second[12] ^= 0xff;
    let inner = vec![legacy_message(0, 1, 0, 100, None, Some(b"1")), second];
    let buf = Bytes::from(wrapper(1, Compression::Gzip, 0, 21, 101, &inner));
    assert!(matches!(
        BatchReader::new(buf.clone()).next_batch(),
        Err(RecordError::BadCrc { .. })
    ));
    let batch = BatchReader::with_limits(buf, unchecked)
        .next_batch()
        .unwrap()
        .unwrap();
    let offsets: Vec<i64> = batch.records().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [20, 21]);
}
