//! Encode and decode speed of every codec and level on the bench payload, in 16 KiB batches
//! (the producer's `batch.size`), and the compression ratio of each (printed once per codec).
//!
//! ```sh
//! cargo run --release -p kafkit-benches --bin kafkit-bench-tool -- payload \
//!     --out /tmp/payload-1000.txt --count 20000 --size 1000
//! KAFKIT_CODEC_PAYLOAD=/tmp/payload-1000.txt cargo bench -p kafkit-wire --bench codecs
//! ```
//!
//! Without `KAFKIT_CODEC_PAYLOAD` a built-in JSON-like sample is used (figures then differ
//! from the ones in `benches/README.md`, which use the payload file). Throughput is bytes of
//! uncompressed payload per second, encode and decode alike.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafkit_wire::compression::{compress_with_level, decompress, Compression};

const BATCH: usize = 16 * 1024;
const MAX_BATCHES: usize = 256;

fn payload() -> Vec<u8> {
    if let Ok(path) = std::env::var("KAFKIT_CODEC_PAYLOAD") {
        return std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    }
    let words = [
        "click",
        "view",
        "add_to_cart",
        "harbor",
        "saddle",
        "guitar",
        "ladder",
    ];
    let mut out = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..40_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = words[(x % words.len() as u64) as usize];
        out.extend_from_slice(
            format!(
                "{{\"event\":\"{word}\",\"id\":{},\"user\":\"u-{}\",\"price\":{}.{:02}}}\n",
                x % 1_000_000_000_000,
                i % 9973,
                x % 1000,
                x % 100
            )
            .as_bytes(),
        );
    }
    out
}

/// The payload cut at line ends into batches of at most 16 KiB.
fn batches() -> Vec<Vec<u8>> {
    let data = payload();
    let mut out = Vec::new();
    let mut current = Vec::new();
    for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if current.len() + line.len() > BATCH && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            if out.len() == MAX_BATCHES {
                break;
            }
        }
        current.extend_from_slice(line);
    }
    if out.len() < MAX_BATCHES && !current.is_empty() {
        out.push(current);
    }
    out
}

fn cases() -> Vec<(Compression, Option<i32>)> {
    let mut cases = vec![(Compression::Snappy, None), (Compression::Lz4, None)];
    cases.extend([1, 6, 9].map(|l| (Compression::Gzip, Some(l))));
    cases.extend([-5, -1, 1, 3, 6, 9].map(|l| (Compression::Zstd, Some(l))));
    cases
}

fn codecs(c: &mut Criterion) {
    let input = batches();
    let raw: usize = input.iter().map(Vec::len).sum();
    for (codec, level) in cases() {
        let name = match level {
            Some(l) => format!("{codec}-{l}"),
            None => codec.to_string(),
        };
        let packed: Vec<Vec<u8>> = input
            .iter()
            .map(|b| {
                let mut out = Vec::new();
                compress_with_level(codec, level, b, &mut out).expect("encode");
                out
            })
            .collect();
        let compressed: usize = packed.iter().map(Vec::len).sum();
        println!(
            "{name}: ratio {:.3} ({raw} bytes in {} batches)",
            raw as f64 / compressed as f64,
            input.len()
        );
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(raw as u64));
        group.bench_function("encode", |b| {
            let mut out = Vec::with_capacity(BATCH * 2);
            b.iter(|| {
                for batch in &input {
                    out.clear();
                    compress_with_level(codec, level, batch, &mut out).expect("encode");
                    black_box(&out);
                }
            })
        });
        group.bench_function("decode", |b| {
            let mut out = Vec::with_capacity(BATCH * 2);
            b.iter(|| {
                for p in &packed {
                    out.clear();
                    decompress(codec, p, 1 << 20, &mut out).expect("decode");
                    black_box(&out);
                }
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = codecs
}
criterion_main!(benches);
