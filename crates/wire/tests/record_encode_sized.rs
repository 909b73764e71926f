//! `BatchBuilder::append` / `append_sized` write the bytes a plain field-by-field v2 record
//! encoder writes (the reference below, written the obvious way with the varint functions),
//! for headers given as `HeaderRef`s or as the caller's own pairs; a headers size that is not
//! the headers' own is refused with nothing written.

use bytes::{BufMut, BytesMut};
use kafkit_wire::record::varint::{encode_varint, encode_varlong};
use kafkit_wire::record::{
    headers_size, max_record_size, record_size, BatchBuilder, BatchOptions, BatchReader,
    DecodeLimits, EncodeError, HeaderBlock, HeaderRef, RecordRef,
};
use proptest::prelude::*;

type Headers = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One record as the v2 format spells it out, byte by byte.
fn reference_record(out: &mut Vec<u8>, offset_delta: i32, ts_delta: i64, r: &Rec) {
    let mut body = Vec::new();
    body.put_i8(0);
    encode_varlong(ts_delta, &mut body);
    encode_varint(offset_delta, &mut body);
    let field = |b: Option<&[u8]>, body: &mut Vec<u8>| match b {
        None => encode_varint(-1, body),
        Some(b) => {
            encode_varint(i32::try_from(b.len()).unwrap(), body);
            body.extend_from_slice(b);
        }
    };
    field(r.key.as_deref(), &mut body);
    field(r.value.as_deref(), &mut body);
    encode_varint(i32::try_from(r.headers.len()).unwrap(), &mut body);
    for (k, v) in &r.headers {
        field(Some(k), &mut body);
        field(v.as_deref(), &mut body);
    }
    encode_varint(i32::try_from(body.len()).unwrap(), out);
    out.extend_from_slice(&body);
}

#[derive(Debug, Clone)]
struct Rec {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Headers,
}

/// Lengths on both sides of the varint steps (63/64 and 8191/8192 after zig-zag).
fn field() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..70),
        proptest::collection::vec(any::<u8>(), 8185..8200),
    ]
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        prop_oneof![Just(0i64), any::<i64>().prop_map(|t| t / 4), -100i64..100],
        proptest::option::of(field()),
        proptest::option::of(field()),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..70),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..140)),
            ),
            0..70,
        ),
    )
        .prop_map(|(ts, key, value, headers)| Rec {
            ts,
            key,
            value,
            headers,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whole batches (header, CRC and all) from `append` and from `append_sized` over the
    /// caller's pairs are the reference's records behind the same header; each append adds
    /// exactly `record_size` bytes (within `max_record_size`) and the batch decodes back.
    #[test]
    fn append_writes_the_reference_bytes(records in proptest::collection::vec(rec(), 1..6)) {
        let base_ts = records[0].ts;
        let mut by_ref = BytesMut::new();
        let mut by_pairs = BytesMut::new();
        let mut reference = Vec::new();
        {
            let mut a = BatchBuilder::new(&mut by_ref, 0);
            let mut b = BatchBuilder::new(&mut by_pairs, 0);
            for r in &records {
                let i = a.record_count();
                let hs: Vec<HeaderRef<'_>> =
                    r.headers.iter().map(|(k, v)| HeaderRef::new(k, v.as_deref())).collect();
                let rr = RecordRef::new(r.ts, r.key.as_deref(), r.value.as_deref())
                    .with_headers(&hs);
                let Some(ts_delta) = r.ts.checked_sub(base_ts) else {
                    let overflow =
                        matches!(a.append(&rr), Err(EncodeError::TimestampOverflow { .. }));
                    prop_assert!(overflow);
                    continue;
                };
                let before = a.size();
                let predicted = a.size_with(&rr);
                a.append(&rr).unwrap();
                prop_assert_eq!(a.size(), predicted);
                prop_assert_eq!(a.size() - before, record_size(i32::try_from(i).unwrap(), ts_delta, &rr));
                prop_assert!(a.size() - before <= max_record_size(&rr));
                prop_assert_eq!(headers_size(&r.headers), headers_size(&hs));
                b.append_sized(r.ts, r.key.as_deref(), r.value.as_deref(), &r.headers,
                    headers_size(&r.headers)).unwrap();
                reference_record(&mut reference, i32::try_from(i).unwrap(), ts_delta, r);
            }
            if a.is_empty() {
                return Ok(());
            }
            a.finish(&BatchOptions::default(), &mut Vec::new()).unwrap();
            b.finish(&BatchOptions::default(), &mut Vec::new()).unwrap();
        }
        prop_assert_eq!(&by_ref[..], &by_pairs[..]);
        prop_assert_eq!(&by_ref[61..], &reference[..]);
        let mut reader = BatchReader::with_limits(by_ref.freeze(), DecodeLimits::default());
        let batch = reader.next_batch().unwrap().unwrap();
        let appended = records.iter().filter(|r| r.ts.checked_sub(base_ts).is_some());
        for (got, want) in batch.records().iter().zip(appended) {
            prop_assert_eq!(got.key.as_deref(), want.key.as_deref());
            prop_assert_eq!(got.value.as_deref(), want.value.as_deref());
            prop_assert_eq!(got.headers.len(), want.headers.len());
        }
    }

    /// A record whose first headers come as a shared [`HeaderBlock`] and the rest as its own
    /// list is the same bytes, batch and all, as the record with the whole list; it decodes
    /// to the same headers in the same order.
    #[test]
    fn a_header_block_writes_the_same_batch_as_the_plain_list(
        records in proptest::collection::vec((rec(), any::<proptest::sample::Index>()), 1..5),
    ) {
        let base_ts = records[0].0.ts;
        let mut plain = BytesMut::new();
        let mut blocked = BytesMut::new();
        {
            let mut a = BatchBuilder::new(&mut plain, 0);
            let mut b = BatchBuilder::new(&mut blocked, 0);
            for (r, at) in &records {
                if r.ts.checked_sub(base_ts).is_none() {
                    continue;
                }
                let split = at.index(r.headers.len() + 1);
                let (shared, own) = r.headers.split_at(split);
                let block = HeaderBlock::new(shared).unwrap();
                prop_assert_eq!(block.count(), shared.len());
                prop_assert_eq!(block.size(), headers_size(shared));
                a.append_sized(r.ts, r.key.as_deref(), r.value.as_deref(), &r.headers,
                    headers_size(&r.headers)).unwrap();
                let block = (!block.is_empty() || split % 2 == 0).then_some(&block);
                b.append_with_block(r.ts, r.key.as_deref(), r.value.as_deref(), block, own,
                    headers_size(own)).unwrap();
                prop_assert_eq!(a.size(), b.size());
            }
            a.finish(&BatchOptions::default(), &mut Vec::new()).unwrap();
            b.finish(&BatchOptions::default(), &mut Vec::new()).unwrap();
        }
        prop_assert_eq!(&plain[..], &blocked[..]);
        let mut reader = BatchReader::with_limits(blocked.freeze(), DecodeLimits::default());
        let batch = reader.next_batch().unwrap().unwrap();
        let appended = records.iter().filter(|(r, _)| r.ts.checked_sub(base_ts).is_some());
        for (got, (want, _)) in batch.records().iter().zip(appended) {
            let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = got
                .headers
                .iter()
                .map(|h| (h.key.to_vec(), h.value.as_ref().map(|v| v.to_vec())))
                .collect();
            prop_assert_eq!(&got, &want.headers);
        }
    }

    /// A headers size off by any amount is refused naming both sizes, and the buffer is left
    /// as it was (the builder still takes the next record).
    #[test]
    fn a_wrong_headers_size_writes_nothing(r in rec(), off in prop_oneof![1usize..200, Just(usize::MAX / 2)], more in any::<bool>()) {
        let actual = headers_size(&r.headers);
        let given = if more { actual.saturating_add(off) } else { actual.wrapping_sub(off) };
        let mut buf = BytesMut::new();
        let mut b = BatchBuilder::new(&mut buf, 0);
        b.append(&RecordRef::new(r.ts, None, None)).unwrap();
        let before = b.size();
        let result = b.append_sized(r.ts, r.key.as_deref(), r.value.as_deref(), &r.headers, given);
        let refused = matches!(
            result,
            Err(EncodeError::HeadersSizeMismatch { given: g, actual: a }) if g == given && a == actual
        );
        prop_assert!(refused, "{:?}", result);
        prop_assert_eq!(b.size(), before);
        prop_assert_eq!(b.record_count(), 1);
        b.append_sized(r.ts, r.key.as_deref(), r.value.as_deref(), &r.headers, actual).unwrap();
        prop_assert_eq!(b.record_count(), 2);
    }
}

#[test]
fn owned_and_borrowed_header_shapes() {
    let owned: Vec<(String, Option<bytes::Bytes>)> = vec![
        ("a".into(), Some(bytes::Bytes::from_static(b"1"))),
        ("b".into(), None),
    ];
    let borrowed = [HeaderRef::new(b"a", Some(b"1")), HeaderRef::new(b"b", None)];
    assert_eq!(headers_size(&owned), 4 + 2 + 1);
    assert_eq!(headers_size(&owned), headers_size(&borrowed));
    let mut x = BytesMut::new();
    let mut y = BytesMut::new();
    BatchBuilder::new(&mut x, 0)
        .append_sized(5, Some(b"k"), None, &owned, headers_size(&owned))
        .unwrap();
    BatchBuilder::new(&mut y, 0)
        .append(&RecordRef::new(5, Some(b"k"), None).with_headers(&borrowed))
        .unwrap();
    assert_eq!(x, y);
}

/// A wrong size under the i32 body limit but far above the headers' own is refused before
/// room for it is reserved: the buffer does not grow to the claimed size.
#[test]
fn a_huge_wrong_headers_size_allocates_nothing() {
    let headers = [HeaderRef::new(b"k", Some(b"v"))];
    let given = 1 << 30;
    let mut buf = BytesMut::new();
    let mut b = BatchBuilder::new(&mut buf, 0);
    let result = b.append_sized(5, None, Some(b"x"), &headers, given);
    assert!(
        matches!(
            result,
            Err(EncodeError::HeadersSizeMismatch { given: g, actual: 4 }) if g == given
        ),
        "{result:?}"
    );
    assert_eq!(b.record_count(), 0);
    assert!(
        buf.capacity() < 1 << 20,
        "reserved {} bytes",
        buf.capacity()
    );
}
