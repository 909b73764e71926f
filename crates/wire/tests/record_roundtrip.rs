//! decode(encode(x)) == x for arbitrary records, every codec and every batch option.

use bytes::BytesMut;
use kafkit_wire::compression::{compress, decompress, Compression};
use kafkit_wire::record::{
    max_record_size, record_size, BatchBuilder, BatchOptions, BatchReader, DecodeLimits, HeaderRef,
    RecordRef, TimestampType,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Rec {
    ts_offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 100..300),
    ]
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        prop_oneof![-1_000_000i64..1_000_000, Just(0i64), Just(1i64 << 40)],
        proptest::option::of(bytes()),
        proptest::option::of(bytes()),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..12),
                proptest::option::of(bytes()),
            ),
            0..4,
        ),
    )
        .prop_map(|(ts_offset, key, value, headers)| Rec {
            ts_offset,
            key,
            value,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

fn options() -> impl Strategy<Value = BatchOptions> {
    (
        codec(),
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        any::<i32>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                compression,
                producer_id,
                producer_epoch,
                base_sequence,
                ple,
                transactional,
                log_append,
            )| {
                BatchOptions {
                    compression,
                    compression_level: (producer_epoch % 2 == 0).then_some(1),
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    partition_leader_epoch: ple,
                    transactional,
                    control: false,
                    timestamp_type: if log_append {
                        TimestampType::LogAppendTime
                    } else {
                        TimestampType::CreateTime
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn batches_round_trip(
        batches in proptest::collection::vec(
            (prop_oneof![any::<i64>(), Just(0i64), Just(i64::MAX)], prop_oneof![any::<i64>().prop_map(|t| t / 2), Just(-1i64)],
             proptest::collection::vec(rec(), 1..8), options()),
            1..4),
    ) {
        let mut buf = BytesMut::from(&b"junk-before"[..]);
        let start = buf.len();
        let mut scratch = Vec::new();
        for (base_offset, base_ts, recs, opts) in &batches {
            let headers: Vec<Vec<HeaderRef<'_>>> = recs
                .iter()
                .map(|r| r.headers.iter().map(|(k, v)| HeaderRef::new(k, v.as_deref())).collect())
                .collect();
            let batch_start = buf.len();
            let mut b = BatchBuilder::new(&mut buf, *base_offset);
            let mut predicted = 61;
            for (i, (r, h)) in recs.iter().zip(&headers).enumerate() {
                let rr = RecordRef::new(base_ts.wrapping_add(r.ts_offset), r.key.as_deref(), r.value.as_deref())
                    .with_headers(h);
                let ts_delta = if i == 0 { 0 } else { r.ts_offset - recs[0].ts_offset };
                let size = record_size(i as i32, ts_delta, &rr);
                prop_assert!(size <= max_record_size(&rr));
                prop_assert_eq!(b.size_with(&rr), b.size() + size);
                predicted += size;
                let off = b.append(&rr).unwrap();
                prop_assert_eq!(off, base_offset.wrapping_add(i as i64));
            }
            prop_assert_eq!(b.size(), predicted);
            let n = b.finish(opts, &mut scratch).unwrap();
            prop_assert_eq!(n, buf.len() - batch_start);
            if opts.compression == Compression::None {
                prop_assert_eq!(n, predicted);
            }
        }
        let frozen = buf.freeze().slice(start..);
        let mut reader = BatchReader::with_limits(frozen, DecodeLimits::default());
        for (base_offset, base_ts, recs, opts) in &batches {
            let batch = reader.next_batch().unwrap().unwrap();
            let h = batch.header;
            prop_assert_eq!(h.base_offset, *base_offset);
            prop_assert_eq!(h.magic, 2);
            prop_assert_eq!(h.attributes.compression, opts.compression);
            prop_assert_eq!(h.attributes.transactional, opts.transactional);
            prop_assert_eq!(h.attributes.timestamp_type, opts.timestamp_type);
            prop_assert!(!h.attributes.control);
            prop_assert_eq!(h.producer_id, opts.producer_id);
            prop_assert_eq!(h.producer_epoch, opts.producer_epoch);
            prop_assert_eq!(h.base_sequence, opts.base_sequence);
            prop_assert_eq!(h.partition_leader_epoch, opts.partition_leader_epoch);
            prop_assert_eq!(h.record_count as usize, recs.len());
            prop_assert_eq!(h.last_offset_delta as usize, recs.len() - 1);
            let timestamps: Vec<i64> = recs.iter().map(|r| base_ts.wrapping_add(r.ts_offset)).collect();
            prop_assert_eq!(h.base_timestamp, timestamps[0]);
            prop_assert_eq!(h.max_timestamp, *timestamps.iter().max().unwrap());
            let got = batch.records();
            prop_assert_eq!(got.len(), recs.len());
            for (i, (g, r)) in got.iter().zip(recs).enumerate() {
                prop_assert_eq!(g.offset, base_offset.wrapping_add(i as i64));
                let expected_ts = if opts.timestamp_type == TimestampType::LogAppendTime {
                    h.max_timestamp
                } else {
                    timestamps[i]
                };
                prop_assert_eq!(g.timestamp, expected_ts);
                prop_assert_eq!(g.key.as_deref(), r.key.as_deref());
                prop_assert_eq!(g.value.as_deref(), r.value.as_deref());
                prop_assert_eq!(g.headers.len(), r.headers.len());
                for (gh, (k, v)) in g.headers.iter().zip(&r.headers) {
                    prop_assert_eq!(&gh.key[..], &k[..]);
                    prop_assert_eq!(gh.value.as_deref(), v.as_deref());
                }
            }
        }
        prop_assert!(reader.next_batch().unwrap().is_none());
        prop_assert!(!reader.is_truncated());
    }

    #[test]
    fn codecs_round_trip(data in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..5000),
        proptest::collection::vec(0u8..4, 0..100_000),
    ], codec in codec()) {
        let mut packed = Vec::new();
        compress(codec, &data, &mut packed).unwrap();
        let mut out = Vec::new();
        decompress(codec, &packed, data.len(), &mut out).unwrap();
        prop_assert_eq!(&out, &data);
    }

    #[test]
    fn snappy_raw_decodes_like_xerial(data in proptest::collection::vec(0u8..8, 0..100_000)) {
        let mut raw = Vec::new();
        kafkit_wire::compression::snappy::compress_raw(&data, &mut raw).unwrap();
        let mut out = Vec::new();
        decompress(Compression::Snappy, &raw, data.len(), &mut out).unwrap();
        prop_assert_eq!(&out, &data);
    }
}
