//! Cross-checks against an independent implementation, the `kafka-protocol` crate: batches it
//! encodes decode here, and batches encoded here decode there, for every codec (its
//! compression hooks are given this crate's codecs, so the batch framing is what is compared).

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use kafkit_wire::compression::{compress, decompress, Compression};
use kafkit_wire::record::{BatchBuilder, BatchOptions, BatchReader, HeaderRef, RecordRef};

fn to_kp(c: Compression) -> KpCompression {
    match c {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

fn from_kp(c: KpCompression) -> Compression {
    Compression::ALL[c as usize]
}

fn kp_records(n: i64) -> Vec<KpRecord> {
    (0..n)
        .map(|i| {
            let mut record = KpRecord {
                transactional: true,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 4,
                producer_id: 1234,
                producer_epoch: 2,
                timestamp_type: KpTimestampType::Creation,
                offset: 100 + i,
                sequence: 50 + i as i32,
                timestamp: 1_700_000_000_000 + i * 3,
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 5 != 4)
                    .then(|| Bytes::from(format!("value-{i}-{}", "z".repeat(i as usize)))),
                headers: Default::default(),
            };
            if i % 2 == 0 {
                let h = &mut record.headers;
                h.insert(
                    StrBytes::from_static_str("h1"),
                    Some(Bytes::from(format!("hv{i}"))),
                );
                h.insert(StrBytes::from_static_str("h2"), None);
            }
            record
        })
        .collect()
}

#[test]
fn kafka_protocol_batches_decode_here() {
    for codec in Compression::ALL {
        let records = kp_records(20);
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: to_kp(codec),
        };
        let compressor = |raw: &mut BytesMut, out: &mut BytesMut, c: KpCompression| {
            let mut packed = Vec::new();
            compress(from_kp(c), raw, &mut packed)?;
            out.extend_from_slice(&packed);
            Ok(())
        };
        RecordBatchEncoder::encode_with_custom_compression(
            &mut buf,
            &records,
            &options,
            Some(compressor),
        )
        .unwrap();
        let batches: Vec<_> = BatchReader::new(buf.freeze())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), 1, "{codec}");
        let batch = &batches[0];
        let h = batch.header;
        assert_eq!(h.attributes.compression, codec);
        assert!(h.attributes.transactional);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (1234, 2, 50)
        );
        assert_eq!(h.partition_leader_epoch, 4);
        assert_eq!(
            (h.base_offset, h.last_offset_delta, h.record_count),
            (100, 19, 20)
        );
        for (got, want) in batch.records().iter().zip(&records) {
            assert_eq!(got.offset, want.offset);
            assert_eq!(got.timestamp, want.timestamp);
            assert_eq!(got.key, want.key);
            assert_eq!(got.value, want.value);
            let headers: Vec<(&[u8], Option<&[u8]>)> = got
                .headers
                .iter()
                .map(|h| (&h.key[..], h.value.as_deref()))
                .collect();
            let expected: Vec<(&[u8], Option<&[u8]>)> = want
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()))
                .collect();
            assert_eq!(headers, expected);
        }
    }
}

#[test]
fn batches_encoded_here_decode_in_kafka_protocol() {
    for codec in Compression::ALL {
        let mut buf = BytesMut::new();
        let mut scratch = Vec::new();
        let headers = [
            HeaderRef::new(b"trace", Some(b"t-1")),
            HeaderRef::new(b"empty", None),
        ];
        let mut b = BatchBuilder::new(&mut buf, 500);
        for i in 0..30i64 {
            let value = format!("payload-{i}");
            let key = format!("k{i}");
            let record = RecordRef::new(
                1_000 + (i * 7) % 11,
                (i % 4 != 0).then_some(key.as_bytes()),
                Some(value.as_bytes()),
            )
            .with_headers(if i % 2 == 0 { &headers } else { &[] });
            b.append(&record).unwrap();
        }
        let options = BatchOptions {
            compression: codec,
            producer_id: 9,
            producer_epoch: 1,
            base_sequence: 17,
            transactional: true,
            ..BatchOptions::default()
        };
        b.finish(&options, &mut scratch).unwrap();
        let mut bytes = buf.freeze();
        let decompressor = |packed: &mut Bytes, c: KpCompression| {
            let mut out = Vec::new();
            decompress(from_kp(c), packed, 1 << 20, &mut out)?;
            Ok(Bytes::from(out))
        };
        let set =
            RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(decompressor))
                .unwrap();
        assert_eq!(set.version, 2);
        assert_eq!(from_kp(set.compression), codec);
        assert_eq!(set.records.len(), 30);
        for (i, r) in set.records.iter().enumerate() {
            let i = i as i64;
            assert_eq!(r.offset, 500 + i);
            assert_eq!(r.sequence, 17 + i as i32);
            assert_eq!(r.timestamp, 1_000 + (i * 7) % 11);
            assert_eq!(r.producer_id, 9);
            assert!(r.transactional);
            assert_eq!(r.key.is_some(), i % 4 != 0);
            assert_eq!(r.value.as_deref(), Some(format!("payload-{i}").as_bytes()));
            assert_eq!(r.headers.len(), if i % 2 == 0 { 2 } else { 0 });
        }
    }
}
