//! Hand-computed bytes for small v2 batches, checked field by field both ways.

mod common;

use bytes::{Bytes, BytesMut};
use kafkit_wire::compression::Compression;
use kafkit_wire::record::{
    decode_batch, BatchAttributes, BatchBuilder, BatchOptions, BatchReader, ControlRecordType,
    DecodeLimits, HeaderRef, RecordRef, TimestampType,
};

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

/// The expected bytes of a batch at base offset 5 with two records:
/// (ts 1000, key "k", value "v") and (ts 1003, key null, value "ab", header "h" = null).
fn golden() -> Vec<u8> {
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]); // base offset 5
    b.extend_from_slice(&[0, 0, 0, 70]); // batch length: 82 total - 12 (checked below)
    b.extend_from_slice(&[0, 0, 0, 9]); // partition leader epoch 9
    b.push(2); // magic
    b.extend_from_slice(&[0, 0, 0, 0]); // crc, filled below
    b.extend_from_slice(&[0x00, 0x10]); // attributes: transactional
    b.extend_from_slice(&[0, 0, 0, 1]); // last offset delta
    b.extend_from_slice(&1000i64.to_be_bytes()); // base timestamp
    b.extend_from_slice(&1003i64.to_be_bytes()); // max timestamp
    b.extend_from_slice(&77i64.to_be_bytes()); // producer id
    b.extend_from_slice(&[0, 3]); // producer epoch
    b.extend_from_slice(&[0, 0, 0, 11]); // base sequence
    b.extend_from_slice(&[0, 0, 0, 2]); // record count
                                        // record 0: length 8; attrs 0, ts delta 0, offset delta 0, key len 1 "k", value len 1 "v", 0 headers
    b.extend_from_slice(&[0x10, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x00]);
    // record 1: length 11; attrs 0, ts delta 3 (0x06), offset delta 1 (0x02), key null (0x01),
    // value len 2 "ab", 1 header (0x02): key len 1 "h", value null (0x01)
    b.extend_from_slice(&[
        0x16, 0x00, 0x06, 0x02, 0x01, 0x04, b'a', b'b', 0x02, 0x02, b'h', 0x01,
    ]);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    assert_eq!(b.len(), 61 + 9 + 12);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn builder_writes_golden_bytes() {
    let mut buf = BytesMut::from(&b"prefix"[..]);
    let headers = [HeaderRef::new(b"h", None)];
    let mut builder = BatchBuilder::new(&mut buf, 5);
    assert_eq!(
        builder
            .append(&RecordRef::new(1000, Some(b"k"), Some(b"v")))
            .unwrap(),
        5
    );
    let second = RecordRef::new(1003, None, Some(b"ab")).with_headers(&headers);
    assert_eq!(builder.size_with(&second), 61 + 9 + 12);
    assert_eq!(builder.append(&second).unwrap(), 6);
    let options = BatchOptions {
        producer_id: 77,
        producer_epoch: 3,
        base_sequence: 11,
        partition_leader_epoch: 9,
        transactional: true,
        ..BatchOptions::default()
    };
    let n = builder.finish(&options, &mut Vec::new()).unwrap();
    assert_eq!(n, 82);
    assert_eq!(&buf[..6], b"prefix");
    assert_eq!(&buf[6..], &golden()[..]);
}

#[test]
fn decoder_reads_golden_fields() {
    let batch = decode_batch(Bytes::from(golden()), &DecodeLimits::default()).unwrap();
    let h = batch.header;
    assert_eq!(h.base_offset, 5);
    assert_eq!(h.batch_length, 70);
    assert_eq!(h.partition_leader_epoch, 9);
    assert_eq!(h.magic, 2);
    assert_eq!(h.crc, crc32c::crc32c(&golden()[21..]));
    assert_eq!(
        h.attributes,
        BatchAttributes {
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            transactional: true,
            control: false,
            delete_horizon: false,
        }
    );
    assert_eq!(h.last_offset_delta, 1);
    assert_eq!((h.base_timestamp, h.max_timestamp), (1000, 1003));
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (77, 3, 11)
    );
    assert_eq!(h.record_count, 2);
    assert_eq!(h.next_offset(), 7);
    let r = batch.records();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].offset, r[0].timestamp), (5, 1000));
    assert_eq!(r[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(r[0].value.as_deref(), Some(&b"v"[..]));
    assert!(r[0].headers.is_empty());
    assert_eq!((r[1].offset, r[1].timestamp), (6, 1003));
    assert_eq!(r[1].key, None);
    assert_eq!(r[1].value.as_deref(), Some(&b"ab"[..]));
    assert_eq!(r[1].headers.len(), 1);
    assert_eq!(r[1].headers[0].key_str(), Some("h"));
    assert_eq!(r[1].headers[0].value, None);
}

#[test]
fn values_are_zero_copy_slices_of_the_input() {
    let input = Bytes::from(golden());
    let batch = decode_batch(input.clone(), &DecodeLimits::default()).unwrap();
    let v = batch.records()[0].value.clone().unwrap();
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    assert!(range.contains(&(v.as_ptr() as usize)));
}

#[test]
fn attribute_bits_every_combination() {
    for bits in 0i16..128 {
        match BatchAttributes::from_bits(bits) {
            Ok(a) => assert_eq!(a.to_bits(), bits),
            Err(id) => assert!((5..8).contains(&id) && id as i16 == bits & 7),
        }
    }
    // High bits beyond 6 are ignored, as Kafka does.
    assert!(BatchAttributes::from_bits(0x0180u16 as i16).is_ok());
}

#[test]
fn control_batch_surfaces_typed_markers() {
    use kafkit_wire::record::control::{end_txn_marker_key, end_txn_marker_value};
    let mut buf = BytesMut::new();
    let mut b = BatchBuilder::new(&mut buf, 40);
    let key = end_txn_marker_key(ControlRecordType::Commit);
    let value = end_txn_marker_value(12);
    b.append(&RecordRef::new(9, Some(&key), Some(&value)))
        .unwrap();
    let abort_key = end_txn_marker_key(ControlRecordType::Abort);
    b.append(&RecordRef::new(9, Some(&abort_key), Some(&value)))
        .unwrap();
    let other_key = [0, 0, 0, 2];
    b.append(&RecordRef::new(9, Some(&other_key), Some(b"leader")))
        .unwrap();
    let options = BatchOptions {
        control: true,
        transactional: true,
        producer_id: 5,
        ..BatchOptions::default()
    };
    b.finish(&options, &mut Vec::new()).unwrap();
    let mut reader = BatchReader::new(buf.freeze());
    let batch = reader.next_batch().unwrap().unwrap();
    assert!(batch.is_control());
    assert!(batch.records().is_empty());
    let c = batch.control_records();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].kind, ControlRecordType::Commit);
    assert_eq!(c[0].coordinator_epoch, Some(12));
    assert_eq!(c[0].offset, 40);
    assert_eq!(c[1].kind, ControlRecordType::Abort);
    assert_eq!(c[2].kind, ControlRecordType::Other(2));
    assert_eq!(c[2].coordinator_epoch, None);
    assert_eq!(c[2].value.as_deref(), Some(&b"leader"[..]));
    assert!(reader.next_batch().unwrap().is_none());
    assert!(!reader.is_truncated());
}

#[test]
fn lz4_frame_header_is_what_java_reads() {
    let mut out = Vec::new();
    kafkit_wire::compression::compress(Compression::Lz4, b"hello hello hello", &mut out).unwrap();
    // Magic, FLG = version 01 + block independence (no checksums, no content size), BD = 64 KiB.
    assert_eq!(&out[..6], &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x40]);
}

#[test]
fn empty_buffer_is_a_clean_end() {
    let mut reader = BatchReader::new(Bytes::new());
    assert!(reader.next_batch().unwrap().is_none());
    assert!(!reader.is_truncated());
}

#[test]
fn hand_built_batch_with_common_helper_decodes() {
    let rec = [0x10, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x00];
    let batch = common::v2_batch(3, 0, 1, &rec);
    let decoded = decode_batch(Bytes::from(batch), &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.records()[0].offset, 3);
}
