//! Helpers shared by the record tests: hand-built v2 batches and legacy messages.
#![allow(dead_code, missing_docs, unreachable_pub)]

use bytes::{Bytes, BytesMut};
use kafkit_wire::compression::Compression;
use kafkit_wire::record::{BatchBuilder, BatchOptions, RecordRef};

/// A v2 batch around a hand-written records section (CRC computed, other fields fixed).
pub fn v2_batch(base_offset: i64, attributes: i16, count: i32, records: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2);
    b.extend_from_slice(&[0; 4]); // crc
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(records);
    recrc(&mut b);
    b
}

/// Recomputes the CRC32C of a v2 batch after a test edited it.
pub fn recrc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A legacy message (magic 0 or 1) with a correct IEEE CRC.
pub fn legacy_message(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = vec![magic as u8, attributes as u8];
    if magic == 1 {
        body.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
        }
    }
    let mut m = Vec::new();
    m.extend_from_slice(&offset.to_be_bytes());
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    m.extend_from_slice(&body);
    m
}

/// A fetch-like buffer of `n` v2 batches of 3 records each, cycling through the codecs.
pub fn fetch_buffer(n: usize) -> (Bytes, Vec<usize>) {
    let mut buf = BytesMut::new();
    let mut scratch = Vec::new();
    let mut ends = Vec::new();
    for i in 0..n {
        let mut b = BatchBuilder::new(&mut buf, (i * 3) as i64);
        for j in 0..3u8 {
            let value = format!("value-{i}-{j}-{}", "x".repeat(j as usize * 10));
            b.append(&RecordRef::new(
                1_000 + j as i64,
                Some(&[j]),
                Some(value.as_bytes()),
            ))
            .unwrap();
        }
        let options = BatchOptions {
            compression: Compression::ALL[i % 5],
            ..BatchOptions::default()
        };
        b.finish(&options, &mut scratch).unwrap();
        ends.push(buf.len());
    }
    (buf.freeze(), ends)
}
