//! Record batches written by real clients (the Java producer and librdkafka through kcat), for
//! every codec, as the broker stored them (`tests/vectors/`, see its README): kafkit-wire must
//! decode each to exactly the records that were sent, and re-encode them to batches that decode
//! the same (byte for byte where no compressor is involved).

use std::path::PathBuf;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use kafkit_wire::compression::Compression;
use kafkit_wire::record::{
    BatchBuilder, BatchOptions, BatchReader, HeaderRef, Record, RecordBatch, RecordRef,
    TimestampType,
};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(vectors_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn b64(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
    })
}

fn decode_all(bytes: Bytes) -> (Vec<RecordBatch>, bool) {
    let mut reader = BatchReader::new(bytes);
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch().unwrap() {
        batches.push(batch);
    }
    (batches, reader.is_truncated())
}

fn check_records(file: &str, expected: &[Value], actual: &[&Record]) {
    assert_eq!(actual.len(), expected.len(), "{file}: record count");
    for (want, got) in expected.iter().zip(actual) {
        let at = format!("{file} offset {}", got.offset);
        assert_eq!(Some(got.offset), want["offset"].as_i64(), "{at}: offset");
        assert_eq!(
            Some(got.timestamp),
            want["timestamp"].as_i64(),
            "{at}: timestamp"
        );
        assert_eq!(
            got.key.as_deref(),
            b64(&want["key"]).as_deref(),
            "{at}: key"
        );
        assert_eq!(
            got.value.as_deref(),
            b64(&want["value"]).as_deref(),
            "{at}: value"
        );
        let want_headers: Vec<(String, Option<Vec<u8>>)> = want["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().to_owned(), b64(&h[1])))
            .collect();
        let got_headers: Vec<(String, Option<Vec<u8>>)> = got
            .headers
            .iter()
            .map(|h| {
                (
                    h.key_str().unwrap().to_owned(),
                    h.value.as_ref().map(|v| v.to_vec()),
                )
            })
            .collect();
        assert_eq!(got_headers, want_headers, "{at}: headers");
    }
}

/// Every file, every batch header field and every record.
#[test]
fn every_vector_decodes_to_the_records_sent() {
    let manifest = manifest();
    let files = manifest["files"].as_array().unwrap();
    let mut peers_and_codecs = std::collections::BTreeSet::new();
    for entry in files {
        let file = entry["file"].as_str().unwrap();
        let bytes = Bytes::from(std::fs::read(vectors_dir().join(file)).unwrap());
        let (batches, truncated) = decode_all(bytes);
        assert!(!truncated, "{file}: whole segment file");
        let want_batches = entry["batches"].as_array().unwrap();
        assert_eq!(batches.len(), want_batches.len(), "{file}: batch count");
        for (batch, want) in batches.iter().zip(want_batches) {
            let h = &batch.header;
            let at = format!("{file} batch @{}", h.base_offset);
            assert_eq!(Some(h.base_offset), want["base_offset"].as_i64(), "{at}");
            assert_eq!(Some(h.last_offset()), want["last_offset"].as_i64(), "{at}");
            assert_eq!(
                Some(i64::from(h.record_count)),
                want["record_count"].as_i64(),
                "{at}"
            );
            assert_eq!(Some(u64::from(h.crc)), want["crc"].as_u64(), "{at}: crc");
            assert_eq!(
                Some(h.attributes.compression as u64),
                want["codec_id"].as_u64(),
                "{at}: codec"
            );
            assert_eq!(
                Some(h.base_timestamp),
                want["first_timestamp"].as_i64(),
                "{at}"
            );
            assert_eq!(
                Some(h.max_timestamp),
                want["max_timestamp"].as_i64(),
                "{at}"
            );
            assert_eq!(Some(h.producer_id), want["producer_id"].as_i64(), "{at}");
            assert_eq!(
                Some(i64::from(h.producer_epoch)),
                want["producer_epoch"].as_i64(),
                "{at}"
            );
            assert_eq!(
                Some(i64::from(h.base_sequence)),
                want["base_sequence"].as_i64(),
                "{at}"
            );
            assert_eq!(
                h.attributes.timestamp_type,
                TimestampType::CreateTime,
                "{at}"
            );
            assert!(!h.attributes.transactional && !batch.is_control(), "{at}");
        }
        let records: Vec<&Record> = batches.iter().flat_map(|b| b.records()).collect();
        check_records(file, entry["records"].as_array().unwrap(), &records);
        peers_and_codecs.insert((
            entry["peer"].as_str().unwrap().to_owned(),
            entry["codec"].as_str().unwrap().to_owned(),
        ));
    }
    // 2 peers × (none + 4 codecs): a vector missing from the manifest must fail this test.
    assert_eq!(peers_and_codecs.len(), 10, "{peers_and_codecs:?}");
}

/// A Fetch response usually ends in a partial batch: every cut of a vector yields the whole
/// batches before the cut, then a clean end, never an error.
#[test]
fn every_cut_of_a_vector_ends_cleanly() {
    for name in [
        "java-zstd.bin",
        "kcat-snappy.bin",
        "java-snappy.bin",
        "kcat-lz4.bin",
    ] {
        let bytes = Bytes::from(std::fs::read(vectors_dir().join(name)).unwrap());
        let (whole, _) = decode_all(bytes.clone());
        // Where each batch ends in the file.
        let ends: Vec<usize> = whole
            .iter()
            .scan(0usize, |end, b| {
                *end += 12 + b.header.batch_length as usize;
                Some(*end)
            })
            .collect();
        assert_eq!(ends.last(), Some(&bytes.len()));
        for cut in 0..bytes.len() {
            let (batches, truncated) = decode_all(bytes.slice(..cut));
            let complete = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(batches.len(), complete, "{name} cut {cut}");
            assert_eq!(batches[..], whole[..complete], "{name} cut {cut}");
            let at_boundary = cut == 0 || ends.contains(&cut);
            assert_eq!(truncated, !at_boundary, "{name} cut {cut}");
        }
    }
}

/// Our encoder, fed the decoded records, writes batches that decode to the same records; for
/// uncompressed batches the bytes are identical to what the peer wrote, CRC included.
#[test]
fn re_encoding_reproduces_the_peers_batches() {
    let manifest = manifest();
    for entry in manifest["files"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let bytes = Bytes::from(std::fs::read(vectors_dir().join(file)).unwrap());
        let (batches, _) = decode_all(bytes.clone());
        let mut out = BytesMut::new();
        let mut scratch = Vec::new();
        for batch in &batches {
            let h = &batch.header;
            let header_sets: Vec<Vec<HeaderRef<'_>>> = batch
                .records()
                .iter()
                .map(|r| {
                    r.headers
                        .iter()
                        .map(|x| HeaderRef::new(&x.key, x.value.as_deref()))
                        .collect()
                })
                .collect();
            let mut builder = BatchBuilder::new(&mut out, h.base_offset);
            for (record, headers) in batch.records().iter().zip(&header_sets) {
                builder
                    .append(
                        &RecordRef::new(
                            record.timestamp,
                            record.key.as_deref(),
                            record.value.as_deref(),
                        )
                        .with_headers(headers),
                    )
                    .unwrap();
            }
            let options = BatchOptions {
                compression: h.attributes.compression,
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                partition_leader_epoch: h.partition_leader_epoch,
                ..BatchOptions::default()
            };
            builder.finish(&options, &mut scratch).unwrap();
        }
        let out = out.freeze();
        let (again, truncated) = decode_all(out.clone());
        assert!(!truncated);
        let before: Vec<&Record> = batches.iter().flat_map(|b| b.records()).collect();
        let after: Vec<&Record> = again.iter().flat_map(|b| b.records()).collect();
        assert_eq!(before, after, "{file}: records survive re-encoding");
        if batches
            .iter()
            .all(|b| b.header.attributes.compression == Compression::None)
        {
            assert_eq!(out, bytes, "{file}: byte-identical re-encoding");
        }
    }
}
