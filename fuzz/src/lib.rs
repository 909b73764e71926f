//! Shared checks of the fuzz targets.

use bytes::BytesMut;
use kafkit_wire::record::{
    BatchBuilder, BatchOptions, BatchReader, DecodeLimits, HeaderRef, Record, RecordBatch,
    RecordRef,
};

pub mod memory;

/// Limits of the throughput targets (`record_batch`, `record_batch_nocrc`, `record_stream`):
/// 256 KiB decompressed, 1 MiB decoded (about 9,000 minimal records, or 16,000 minimal
/// headers). Both refusals stay reachable (256 KiB of 2-byte headers would be 8 MiB of
/// `Header`s), while no input inflates more than 256 KiB: seeded with the bombs at the 16 MiB
/// limits, these targets ran 45-80× fewer executions per CPU second, too few for 10^7. The
/// memory-class check at the large limits is `record_limits`' ([`bomb_limits`]).
pub fn limits() -> DecodeLimits {
    DecodeLimits::with_max_decompressed_size(256 << 10).with_max_decoded_size(1 << 20)
}

/// Limits of `record_limits`, the target seeded with decompression bombs: 16 MiB
/// decompressed, 16 MiB decoded. Small enough that a bomb is cheap, large enough that a
/// decoder materialising ~30× the decompressed bytes (as kafkit's did before
/// `max_decoded_size`: 16 MiB of 2-byte headers are 512 MiB of `Header`s) passes the
/// `-rss_limit_mb=512` scripts/fuzz.sh runs with, while a bounded one stays near 48 MiB; the
/// target's counting allocator checks the bound exactly ([`memory::memory_bound`]).
pub fn bomb_limits() -> DecodeLimits {
    DecodeLimits::with_max_decompressed_size(16 << 20).with_max_decoded_size(16 << 20)
}

/// Fixes up the CRC32C of the first v2 batch in `data`, so the fuzzer reaches the record parser
/// and the codecs instead of stopping at the checksum. Batch length at 8..12, magic at 16, CRC
/// at 17..21 covering 21..end.
pub fn fix_crc(data: &mut [u8]) {
    if data.len() < 21 || data[16] != 2 {
        return;
    }
    let length = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let Ok(length) = usize::try_from(length) else {
        return;
    };
    let end = (12 + length).min(data.len());
    if end <= 21 {
        return;
    }
    let crc = crc32c::crc32c(&data[21..end]);
    data[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Decodes every batch lazily (one record at a time) and whole, and checks they agree: a batch
/// that decodes whole streams the same records; a streamed batch never yields more records than
/// its header declares, and what it yields before an error is what it yields.
pub fn check_streaming(records: bytes::Bytes, limits: DecodeLimits) {
    let mut whole = BatchReader::with_limits(records.clone(), limits);
    let mut lazy = BatchReader::with_limits(records, limits);
    loop {
        let expected = whole.next_batch();
        let streamed = lazy.next_streaming();
        let (expected, mut streamed) = match (expected, streamed) {
            (Ok(Some(e)), Ok(Some(s))) => (Ok(e), s),
            // The batch's records are bad: the whole decode fails where streaming opens it.
            (Err(e), Ok(Some(s))) => (Err(e), s),
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => return,
            (e, s) => panic!(
                "whole {:?} vs streamed {:?}",
                e.map(|b| b.map(|b| b.header)),
                s.map(|b| b.map(|b| b.header))
            ),
        };
        let declared = usize::try_from(streamed.header.record_count).unwrap_or(0);
        // Compared one by one, never collected: the harness must not materialise a batch
        // either (a streamed batch may hold far more minimal records than `limits` lets a
        // whole decode hold).
        let whole = match &expected {
            Ok(batch) if !batch.is_control() => Some(batch.records()),
            _ => None,
        };
        let mut taken = 0usize;
        let mut failed = false;
        loop {
            match streamed.next_record() {
                Ok(Some(r)) => {
                    if let Some(records) = whole {
                        assert_eq!(records.get(taken), Some(&r));
                    }
                    taken += 1;
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(taken <= declared || streamed.header.magic != 2);
        assert!(
            streamed.next_record().unwrap().is_none(),
            "fused after the end or an error"
        );
        if let Some(records) = whole {
            assert!(!failed);
            assert_eq!(records.len(), taken);
        }
        if expected.is_err() {
            // A whole decode fails on a budget streaming never meets, or on a record streaming
            // reached too; either way streaming did not invent records (checked above).
            return;
        }
    }
}

/// Decodes every batch; each v2 data batch with consecutive offsets must survive a re-encode.
pub fn check_batches(mut reader: BatchReader) {
    while let Ok(Some(batch)) = reader.next_batch() {
        if batch.header.magic == 2 && !batch.is_control() && consecutive(&batch) {
            round_trip(&batch);
        }
    }
}

fn consecutive(batch: &RecordBatch) -> bool {
    batch
        .records()
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset == batch.header.base_offset.wrapping_add(i as i64))
}

/// Batches with more records than this are decoded but not re-encoded: a batch of many
/// minimal records would make the round trip, not the decoder under test, dominate the time
/// per input (and, at larger limits, trip libFuzzer's timeout under ASan).
const ROUND_TRIP_MAX_RECORDS: usize = 4096;

fn round_trip(batch: &RecordBatch) {
    let records = batch.records();
    if records.is_empty() || records.len() > ROUND_TRIP_MAX_RECORDS {
        return;
    }
    let headers: Vec<Vec<HeaderRef<'_>>> = records
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|h| HeaderRef::new(&h.key, h.value.as_deref()))
                .collect()
        })
        .collect();
    let mut buf = BytesMut::new();
    let mut builder = BatchBuilder::new(&mut buf, batch.header.base_offset);
    for (r, h) in records.iter().zip(&headers) {
        if builder
            .append(
                &RecordRef::new(r.timestamp, r.key.as_deref(), r.value.as_deref()).with_headers(h),
            )
            .is_err()
        {
            return; // e.g. a timestamp delta the encoder refuses
        }
    }
    let options = BatchOptions {
        compression: batch.header.attributes.compression,
        ..BatchOptions::default()
    };
    if builder.finish(&options, &mut Vec::new()).is_err() {
        return;
    }
    let mut again = BatchReader::new(buf.freeze());
    let decoded = again
        .next_batch()
        .expect("our own batch decodes")
        .expect("one batch");
    let before: Vec<Key<'_>> = records.iter().map(key).collect();
    let after: Vec<Key<'_>> = decoded.records().iter().map(key).collect();
    assert_eq!(before, after);
}

/// What a round trip must keep of a record: offset, timestamp, key and value.
type Key<'a> = (i64, i64, Option<&'a [u8]>, Option<&'a [u8]>);

fn key(r: &Record) -> Key<'_> {
    (r.offset, r.timestamp, r.key.as_deref(), r.value.as_deref())
}

/// Splits `data` into a header list: per header, a name byte (< 0x80: `names[byte % len]`; else
/// that many low bits of raw name bytes follow), a value length byte (0xff: null) and the value
/// (cut short at the end of the data).
pub fn split_headers<'a>(
    mut data: &'a [u8],
    names: &[&'a [u8]],
) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
    let mut list = Vec::new();
    while let Some((&name_byte, rest)) = data.split_first() {
        data = rest;
        let name: &[u8] = if name_byte < 0x80 {
            names[usize::from(name_byte) % names.len()]
        } else {
            let n = usize::from(name_byte & 0x1f).min(data.len());
            let (name, rest) = data.split_at(n);
            data = rest;
            name
        };
        let Some((&len, rest)) = data.split_first() else {
            list.push((name, Some(&b""[..])));
            break;
        };
        data = rest;
        let value = if len == 0xff {
            None
        } else {
            let n = usize::from(len).min(data.len());
            let (value, rest) = data.split_at(n);
            data = rest;
            Some(value)
        };
        list.push((name, value));
    }
    list
}
