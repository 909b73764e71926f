//! Peak decoded memory, measured by a counting global allocator: decoding hostile batches (tiny
//! compressed inputs of minimal records, minimal headers, big legacy wrappers) must stay within
//! `k × input + 2 × max_decompressed_size + max_decoded_size` (plus the codecs' own state),
//! whatever the batch holds. Before `DecodeLimits::max_decoded_size` and lazy decoding, a
//! 1 MiB decompressed section of 2-byte headers decoded into ~32 MiB of `Header`s.
//!
//! A test binary of its own, so no other test's allocations are counted; the counters are per
//! thread, so the tests in it may run in parallel.

// The allocator is the one place this package allows unsafe code (see crates/wire/Cargo.toml).
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{BufMut, Bytes};
use common::{legacy_message, v2_batch};
use kafkit_wire::compression::{compress, Compression};
use kafkit_wire::record::varint::encode_varint;
use kafkit_wire::record::{decode_batch, BatchReader, DecodeLimits, RecordError};
use proptest::prelude::*;

struct Counting;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = CURRENT.try_with(|current| {
        let now = current.get().wrapping_add(delta);
        current.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are plain thread-local
// cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it had allocated at once on this thread
/// (above what was allocated when it started).
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, usize::try_from(peak - start).unwrap_or(0))
}

/// Decodes `input` whole (`decode_batch`) and streamed (every record taken one at a time and
/// dropped); the peak of each and the first error of each.
struct Measured {
    whole_peak: usize,
    whole: Result<usize, RecordError>,
    streamed_peak: usize,
    streamed: Result<usize, RecordError>,
}

fn measure(input: &Bytes, limits: DecodeLimits) -> Measured {
    let (whole, whole_peak) = peak_of(|| decode_batch(input.clone(), &limits).map(|b| b.len()));
    let (streamed, streamed_peak) = peak_of(|| {
        let mut reader = BatchReader::with_limits(input.clone(), limits);
        let mut n = 0usize;
        while let Some(mut batch) = reader.next_streaming()? {
            while let Some(record) = batch.next_record()? {
                drop(record);
                n += 1;
            }
        }
        Ok(n)
    });
    Measured {
        whole_peak,
        whole,
        streamed_peak,
        streamed,
    }
}

/// Input bytes may be copied a few times (the decompressor's own buffers); anything beyond
/// that must come from the configured limits.
const K: usize = 4;
/// Codecs' own state (gzip window, zstd tables and window, lz4 block buffers).
const CODEC_STATE: usize = 1 << 20;

fn bound(input: usize, limits: &DecodeLimits) -> usize {
    K * input + 2 * limits.max_decompressed_size + limits.max_decoded_size + CODEC_STATE
}

// ---- adversarial generators ----

/// `n` smallest records (7 bytes each: length, attributes, deltas 0, null key and value, no
/// headers).
fn min_records(n: usize) -> Vec<u8> {
    [0x0c, 0, 0, 0, 1, 1, 0].repeat(n)
}

/// `k` records of `h` smallest headers each (2 bytes: empty key, null value).
fn header_records(k: usize, h: usize) -> Vec<u8> {
    let mut body = vec![0u8, 0, 0, 1, 1];
    encode_varint(h as i32, &mut body);
    body.extend_from_slice(&[0, 1].repeat(h));
    let mut record = Vec::new();
    encode_varint(body.len() as i32, &mut record);
    record.put_slice(&body);
    record.repeat(k)
}

fn v2(codec: Compression, count: usize, section: &[u8]) -> Bytes {
    let mut packed = Vec::new();
    compress(codec, section, &mut packed).unwrap();
    Bytes::from(v2_batch(500, codec.id() as i16, count as i32, &packed))
}

/// A v1 wrapper (offset `n`) holding `n` smallest v0 messages, relative offsets 0..n.
fn legacy_wrapper(codec: Compression, n: usize) -> Bytes {
    let set: Vec<u8> = (0..n as i64)
        .flat_map(|i| legacy_message(i, 0, 0, -1, None, None))
        .collect();
    let mut packed = Vec::new();
    compress(codec, &set, &mut packed).unwrap();
    Bytes::from(legacy_message(
        n as i64,
        1,
        codec.id() as i8,
        7,
        None,
        Some(&packed),
    ))
}

/// A v1 wrapper whose inner messages are wrappers of `n` messages each (refused: nesting).
fn nested_wrapper(codec: Compression, inner: usize, n: usize) -> Bytes {
    let one = legacy_wrapper(codec, n);
    let set = one.repeat(inner);
    let mut packed = Vec::new();
    compress(codec, &set, &mut packed).unwrap();
    Bytes::from(legacy_message(
        0,
        1,
        codec.id() as i8,
        7,
        None,
        Some(&packed),
    ))
}

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

#[derive(Debug, Clone)]
enum Shape {
    MinRecords(usize),
    Headers { records: usize, headers: usize },
    Legacy(usize),
    Nested { inner: usize, n: usize },
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (1usize..160_000).prop_map(Shape::MinRecords),
        (1usize..8, 1usize..600_000).prop_map(|(records, headers)| Shape::Headers {
            records,
            headers: headers / records,
        }),
        (1usize..45_000).prop_map(Shape::Legacy),
        (1usize..50, 1usize..2_000).prop_map(|(inner, n)| Shape::Nested { inner, n }),
    ]
}

fn build(shape: &Shape, codec: Compression) -> Bytes {
    match *shape {
        Shape::MinRecords(n) => v2(codec, n, &min_records(n)),
        Shape::Headers { records, headers } => {
            v2(codec, records, &header_records(records, headers))
        }
        Shape::Legacy(n) => legacy_wrapper(codec, n),
        Shape::Nested { inner, n } => nested_wrapper(codec, inner, n),
    }
}

const MIB: usize = 1 << 20;

fn small_limits() -> DecodeLimits {
    DecodeLimits::with_max_decompressed_size(MIB).with_max_decoded_size(MIB)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn peak_decoded_memory_is_bounded(shape in shape(), codec in codec()) {
        let input = build(&shape, codec);
        let limits = small_limits();
        let m = measure(&input, limits);
        let bound = bound(input.len(), &limits);
        prop_assert!(
            m.whole_peak <= bound,
            "{shape:?} {codec}: whole decode peaked at {} bytes for {} input bytes (bound {bound}); {:?}",
            m.whole_peak, input.len(), m.whole.map_err(|e| e.to_string())
        );
        prop_assert!(
            m.streamed_peak <= bound,
            "{shape:?} {codec}: streamed decode peaked at {} bytes for {} input bytes (bound {bound}); {:?}",
            m.streamed_peak, input.len(), m.streamed.map_err(|e| e.to_string())
        );
    }
}

#[test]
fn one_record_with_a_million_headers_is_refused_typed() {
    // 600,000 headers: 1.2 MB decompressed, 38 MB as `Header`s.
    let input = v2(Compression::Gzip, 1, &header_records(1, 600_000));
    let limits = DecodeLimits::with_max_decompressed_size(2 * MIB).with_max_decoded_size(MIB);
    let m = measure(&input, limits);
    for (path, result) in [("whole", &m.whole), ("streamed", &m.streamed)] {
        match result {
            Err(RecordError::DecodedTooLarge {
                base_offset: 500,
                limit,
                size,
            }) => assert!(size > limit, "{path}"),
            other => panic!("{path}: expected DecodedTooLarge, got {other:?}"),
        }
    }
    assert!(
        m.whole_peak <= bound(input.len(), &limits),
        "{}",
        m.whole_peak
    );
    assert!(
        m.streamed_peak <= bound(input.len(), &limits),
        "{}",
        m.streamed_peak
    );
}

#[test]
fn minimal_records_stream_in_little_memory_and_refuse_whole() {
    let n = 140_000; // 980 KB decompressed, 15.7 MB as `Record`s
    let input = v2(Compression::Zstd, n, &min_records(n));
    let limits = small_limits();
    let m = measure(&input, limits);
    assert_eq!(m.streamed.unwrap(), n);
    assert!(
        matches!(
            m.whole,
            Err(RecordError::DecodedTooLarge {
                base_offset: 500,
                ..
            })
        ),
        "{:?}",
        m.whole
    );
    // The decompressed section and a record at a time.
    assert!(
        m.streamed_peak <= 2 * MIB + CODEC_STATE,
        "{}",
        m.streamed_peak
    );
    assert!(
        m.whole_peak <= bound(input.len(), &limits),
        "{}",
        m.whole_peak
    );
}

#[test]
fn big_legacy_wrapper_streams_without_materialising_its_messages() {
    let n = 40_000; // 1 MB of 26-byte messages, 4.5 MB as `Record`s
    let input = legacy_wrapper(Compression::Gzip, n);
    let limits = small_limits();
    let m = measure(&input, limits);
    assert_eq!(m.streamed.unwrap(), n);
    assert!(
        matches!(m.whole, Err(RecordError::DecodedTooLarge { .. })),
        "{:?}",
        m.whole
    );
    assert!(
        m.streamed_peak <= 2 * MIB + CODEC_STATE,
        "{}",
        m.streamed_peak
    );
    // The header was synthesized from the first pass: offsets and count are right.
    let mut reader = BatchReader::with_limits(input, limits);
    let mut batch = reader.next_streaming().unwrap().unwrap();
    assert_eq!(batch.header.record_count, n as i32);
    assert_eq!(batch.header.base_offset, 1);
    assert_eq!(batch.header.last_offset(), n as i64);
    assert_eq!(batch.next_record().unwrap().unwrap().offset, 1);
}

#[test]
fn streaming_yields_records_before_a_malformed_one() {
    // Three good records, then one whose header count runs past its length.
    let mut section = min_records(3);
    section.extend_from_slice(&[0x0e, 0, 0, 0, 1, 1, 0x7e, 0]);
    let input = Bytes::from(v2_batch(9, 0, 4, &section));
    let mut reader = BatchReader::new(input.clone());
    let mut batch = reader.next_streaming().unwrap().unwrap();
    for _ in 0..3 {
        assert_eq!(batch.next_record().unwrap().unwrap().offset, 9);
    }
    assert!(batch.next_record().is_err());
    assert!(batch.next_record().unwrap().is_none());
    assert!(decode_batch(input, &DecodeLimits::default()).is_err());
}

/// The figures of issue #10 at the default limits (release build, by hand):
/// `cargo test --release -p kafkit-wire --test decode_memory -- --ignored --nocapture`.
#[test]
#[ignore = "large inputs: run by hand in release for the figures"]
fn issue_figures_at_default_limits() {
    let limits = DecodeLimits::default();
    let cases = [
        (
            "33M minimal headers, gzip",
            v2(Compression::Gzip, 1, &header_records(1, 33_000_000)),
        ),
        (
            "9.6M minimal records, gzip",
            v2(Compression::Gzip, 9_580_000, &min_records(9_580_000)),
        ),
        (
            "legacy v1 gzip wrapper, 1.85M messages",
            legacy_wrapper(Compression::Gzip, 1_850_000),
        ),
    ];
    for (name, input) in cases {
        let m = measure(&input, limits);
        println!(
            "{name}: input {} KB; whole: peak {} MB, {:?}; streamed: peak {} MB, {:?}",
            input.len() / 1000,
            m.whole_peak / 1_000_000,
            m.whole.map_err(|e| e.to_string()),
            m.streamed_peak / 1_000_000,
            m.streamed.map_err(|e| e.to_string()),
        );
        assert!(m.whole_peak <= bound(input.len(), &limits));
        assert!(m.streamed_peak <= bound(input.len(), &limits));
    }
}

// ---- responses: the guard's estimate of decoded memory ----

mod responses {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use kafkit_wire::guard::{self, decode_response, GuardError, Kind};

    fn metadata(topics: usize, partitions: usize, replicas: usize, name: &str) -> Bytes {
        let brokers = (0..3)
            .map(|i| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(i))
                    .with_host(StrBytes::from_string(format!("broker-{i}.example")))
                    .with_port(9092)
            })
            .collect();
        let topics = (0..topics)
            .map(|t| {
                let partitions = (0..partitions)
                    .map(|p| {
                        let nodes: Vec<BrokerId> =
                            (0..replicas).map(|r| BrokerId(r as i32)).collect();
                        MetadataResponsePartition::default()
                            .with_partition_index(p as i32)
                            .with_replica_nodes(nodes.clone())
                            .with_isr_nodes(nodes)
                    })
                    .collect();
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(format!("{name}{t}")))))
                    .with_partitions(partitions)
            })
            .collect();
        let response = MetadataResponse::default()
            .with_brokers(brokers)
            .with_topics(topics);
        let mut out = BytesMut::new();
        response.encode(&mut out, 12).unwrap();
        out.freeze()
    }

    /// The estimate is an upper bound of what decoding really allocates, and not a loose one.
    #[test]
    fn estimate_bounds_a_big_metadata_response() {
        for (topics, partitions, replicas, name) in [
            (2_000, 50, 3, "orders-"),
            (100_000, 1, 0, ""),
            (50, 2_000, 1, "t"),
        ] {
            let body = metadata(topics, partitions, replicas, name);
            let estimate =
                guard::check_within(ApiKey::Metadata, 12, Kind::Response, &body, usize::MAX)
                    .unwrap();
            let (decoded, peak) =
                peak_of(|| decode_response::<MetadataResponse>(12, body.clone()).unwrap());
            assert_eq!(decoded.topics.len(), topics);
            println!(
                "metadata {topics}x{partitions}x{replicas}: {} bytes, decoded peak {peak}, estimate {estimate}",
                body.len()
            );
            assert!(peak <= estimate, "peak {peak} > estimate {estimate}");
            assert!(estimate <= 3 * peak, "estimate {estimate} ≫ peak {peak}");
        }
    }

    /// A response of minimal elements decodes to many times its size; over the budget it is
    /// refused before kafka-protocol allocates anything.
    #[test]
    fn dense_response_over_the_budget_is_refused() {
        let body = metadata(100_000, 1, 0, "");
        let estimate =
            guard::check_within(ApiKey::Metadata, 12, Kind::Response, &body, usize::MAX).unwrap();
        assert!(estimate > 5 * body.len(), "{estimate} for {}", body.len());
        let (refused, peak) = peak_of(|| {
            guard::check_within(ApiKey::Metadata, 12, Kind::Response, &body, body.len() * 2)
        });
        assert!(
            matches!(refused, Err(GuardError::DecodedTooLarge { limit, .. }) if limit == body.len() * 2),
            "{refused:?}"
        );
        assert!(peak < 4096, "the walk allocated {peak} bytes");
        // The default budget is far above a real cluster's metadata.
        assert!(guard::MAX_DECODED_RESPONSE_SIZE > 10 * estimate);
    }
}
