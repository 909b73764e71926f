//! Shared checks of the fuzz targets.

use bytes::BytesMut;
use kafkit_wire::record::{
    BatchBuilder, BatchOptions, BatchReader, DecodeLimits, HeaderRef, Record, RecordBatch,
    RecordRef,
};

/// Decompression limit for fuzzing: small, so a bomb is caught quickly.
pub fn limits() -> DecodeLimits {
    DecodeLimits::with_max_decompressed_size(1 << 20)
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

fn round_trip(batch: &RecordBatch) {
    let records = batch.records();
    if records.is_empty() {
        return;
    }
    let headers: Vec<Vec<HeaderRef<'_>>> = records
        .iter()
        .map(|r| r.headers.iter().map(|h| HeaderRef::new(&h.key, h.value.as_deref())).collect())
        .collect();
    let mut buf = BytesMut::new();
    let mut builder = BatchBuilder::new(&mut buf, batch.header.base_offset);
    for (r, h) in records.iter().zip(&headers) {
        if builder
            .append(&RecordRef::new(r.timestamp, r.key.as_deref(), r.value.as_deref()).with_headers(h))
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
    let decoded = again.next_batch().expect("our own batch decodes").expect("one batch");
    let before: Vec<(i64, i64, Option<&[u8]>, Option<&[u8]>)> = records.iter().map(key).collect();
    let after: Vec<(i64, i64, Option<&[u8]>, Option<&[u8]>)> =
        decoded.records().iter().map(key).collect();
    assert_eq!(before, after);
}

fn key(r: &Record) -> (i64, i64, Option<&[u8]>, Option<&[u8]>) {
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
