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
    let before: Vec<(i64, i64, Option<&[u8]>, Option<&[u8]>)> = records.iter().map(key).collect();
    let after: Vec<(i64, i64, Option<&[u8]>, Option<&[u8]>)> =
        decoded.records().iter().map(key).collect();
    assert_eq!(before, after);
}

fn key(r: &Record) -> (i64, i64, Option<&[u8]>, Option<&[u8]>) {
    (r.offset, r.timestamp, r.key.as_deref(), r.value.as_deref())
}
