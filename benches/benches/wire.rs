//! Record batch codec benchmarks: encode and decode of a 1 MiB batch of 1 KiB JSON-like
//! records for every codec, and CRC32C over 1 MiB, reported in bytes per second of
//! uncompressed payload.
//!
//! Run: `cargo bench -p kafkit-benches --bench wire -- --quick`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafkit_wire::compression::Compression;
use kafkit_wire::record::{BatchBuilder, BatchOptions, BatchReader, HeaderRef, RecordRef};

/// A tiny deterministic PRNG (xorshift64*), so payloads are varied but reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "checkout",
    "login",
    "search",
    "view",
    "add_to_cart",
    "logout",
    "purchase",
    "refund",
    "signup",
    "share",
    "comment",
    "rate",
    "subscribe",
    "download",
    "upload",
    "error",
];
const COUNTRIES: &[&str] = &["FR", "DE", "US", "JP", "BR", "IN", "GB", "ES", "IT", "CA"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "okhttp/4.12.0",
];

/// One JSON-like event of about `size` bytes with varying ids, numbers and text.
fn event(rng: &mut Rng, seq: u64, size: usize) -> Vec<u8> {
    let mut s = format!(
        "{{\"event_id\":\"{:016x}-{:08x}\",\"seq\":{seq},\"ts\":{},\"user\":{{\"id\":{},\"country\":\"{}\",\"score\":{}.{:02}}},\"type\":\"{}\",\"agent\":\"{}\",\"items\":[",
        rng.next(),
        rng.next() as u32,
        1_700_000_000_000u64 + seq * 37 + rng.below(1000),
        rng.below(10_000_000),
        COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize],
        rng.below(1000),
        rng.below(100),
        WORDS[rng.below(WORDS.len() as u64) as usize],
        AGENTS[rng.below(AGENTS.len() as u64) as usize],
    );
    while s.len() + 80 < size {
        s.push_str(&format!(
            "{{\"sku\":\"SKU-{:06}\",\"qty\":{},\"price\":{}.{:02},\"tag\":\"{}\"}},",
            rng.below(1_000_000),
            1 + rng.below(9),
            rng.below(500),
            rng.below(100),
            WORDS[rng.below(WORDS.len() as u64) as usize],
        ));
    }
    s.push_str("{}]}");
    let mut bytes = s.into_bytes();
    bytes.resize(size, b' ');
    bytes
}

struct Payload {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    bytes: u64,
}

fn payload() -> Payload {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let mut bytes = 0;
    for seq in 0..1024u64 {
        let key = format!("user-{}", rng.below(50_000)).into_bytes();
        let value = event(&mut rng, seq, 1024);
        bytes += (key.len() + value.len()) as u64;
        keys.push(key);
        values.push(value);
    }
    Payload {
        keys,
        values,
        bytes,
    }
}

fn encode(
    p: &Payload,
    codec: Compression,
    level: Option<i32>,
    buf: &mut BytesMut,
    scratch: &mut Vec<u8>,
) -> usize {
    buf.clear();
    let headers = [HeaderRef::new(b"source", Some(b"bench"))];
    let mut b = BatchBuilder::new(buf, 0);
    for (i, (k, v)) in p.keys.iter().zip(&p.values).enumerate() {
        let record =
            RecordRef::new(1_700_000_000_000 + i as i64, Some(k), Some(v)).with_headers(&headers);
        b.append(&record).expect("append");
    }
    let options = BatchOptions {
        compression: codec,
        compression_level: level,
        ..BatchOptions::default()
    };
    b.finish(&options, scratch).expect("finish")
}

fn decode(bytes: &Bytes) -> usize {
    let mut n = 0;
    for batch in BatchReader::new(bytes.clone()) {
        let batch = batch.expect("decode");
        for r in batch.records() {
            n += r.value.as_ref().map_or(0, |v| v.len());
        }
    }
    n
}

fn bench_codecs(c: &mut Criterion) {
    let p = payload();
    let mut buf = BytesMut::with_capacity(2 << 20);
    let mut scratch = Vec::with_capacity(2 << 20);

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(p.bytes));
    let mut configs: Vec<(String, Compression, Option<i32>)> = Compression::ALL
        .iter()
        .map(|&c| (c.to_string(), c, None))
        .collect();
    configs.insert(2, ("gzip-level1".to_string(), Compression::Gzip, Some(1)));
    for (name, codec, level) in configs {
        let size = encode(&p, codec, level, &mut buf, &mut scratch);
        eprintln!(
            "{name}: {} payload bytes -> {size} batch bytes (ratio {:.2})",
            p.bytes,
            p.bytes as f64 / size as f64
        );
        group.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| encode(&p, codec, level, &mut buf, &mut scratch))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(p.bytes));
    for codec in Compression::ALL {
        encode(&p, codec, None, &mut buf, &mut scratch);
        let bytes = buf.split().freeze();
        group.bench_with_input(BenchmarkId::from_parameter(codec), &bytes, |b, bytes| {
            b.iter(|| decode(black_box(bytes)))
        });
    }
    group.finish();
}

fn bench_crc(c: &mut Criterion) {
    let mut rng = Rng(42);
    let data: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
    let mut group = c.benchmark_group("crc32c");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("1MiB", |b| b.iter(|| crc32c::crc32c(black_box(&data))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = bench_codecs, bench_crc
}
criterion_main!(benches);
