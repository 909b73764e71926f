//! kafkit-events' publishing overhead: typed Avro and JSON events through `EventProducer` vs
//! the raw `kafkit::producer::Producer`, in the same process, against the same broker,
//! interleaved rounds. The driver is `benches/run-events.sh`.
//!
//! Usage: `kafkit-events-produce BOOTSTRAP [RECORDS] [ROUNDS]`
//!
//! Each run sends RECORDS records (after a 2,000-record warm-up of the same mode, not
//! counted) to a fresh 6-partition topic, in chunks of 1,000: every record of a chunk is
//! queued before any outcome is awaited (`publish_batch_to` for events, `send` then await for
//! raw). Modes:
//! - `raw`: `ProducerRecord`s carrying a pre-serialized 200-byte value and a key (what the
//!   application would hand to the raw client if it did its own serialization once);
//! - `avro`: a typed `SensorReading` (Avro 200 bytes encoded, Confluent framing, schema id
//!   cached after the first event: an in-memory registry, so no HTTP after the warm-up),
//!   CloudEvents headers, key from the payload;
//! - `json`: the same type as JSON (no JSON Schema);
//! - `raw_headers`: `raw` plus seven headers shaped like the Avro event's CloudEvents headers
//!   (same names and value lengths, made once and cloned per record): what the raw producer
//!   pays to carry them, so `avro` − `raw_headers` is the layer's own CPU;
//! - `raw_block`: the same seven headers, the five that are the same on every event
//!   (`ce_specversion`, `ce_source`, `ce_type`, `ce_sourceversion`, `content-type`) as one
//!   shared `HeaderBlock` and `ce_id`, `ce_time` as the record's own: what the layer's
//!   producer sends since it encodes the constant headers once.
//!
//! `KAFKIT_BENCH_MODES=avro` (comma-separated names) runs only those modes (to profile one).
//!
//! Prints one JSON line per run (records/s, CPU µs per record from getrusage, all threads)
//! and a summary: median CPU per record of each mode and the ratios to raw.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::ProducerConfig;
use kafkit::producer::{HeaderBlock, HeaderName, Producer, ProducerRecord, Topic};
use kafkit_events::config::EventsConfig;
use kafkit_events::producer::EventProducer;
use kafkit_events::registry::SchemaRegistry;
use kafkit_events::typed::{AvroSchemaSource, EventPayload};
use kafkit_events::Event;
use serde::{Deserialize, Serialize};

const CHUNK: usize = 1_000;
const WARMUP: usize = 2_000;

const SCHEMA: &str = r#"{"type":"record","name":"SensorReading","namespace":"bench",
"fields":[{"name":"device_id","type":"string"},{"name":"site","type":"string"},
{"name":"metric","type":"string"},{"name":"value","type":"double"},
{"name":"unit","type":"string"},{"name":"sequence","type":"long"},
{"name":"note","type":"string"}]}"#;

/// The payload: 200 bytes as Avro.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SensorReading {
    device_id: String,
    site: String,
    metric: String,
    value: f64,
    unit: String,
    sequence: i64,
    note: String,
}

impl EventPayload for SensorReading {
    const EVENT_TYPE: &'static str = "bench.sensor.reading";
    fn key(&self) -> Option<String> {
        Some(self.device_id.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(SCHEMA))
    }
}

/// Same fields, no Avro schema: published as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SensorReadingJson(SensorReading);

impl EventPayload for SensorReadingJson {
    const EVENT_TYPE: &'static str = "bench.sensor.reading.json";
    fn key(&self) -> Option<String> {
        Some(self.0.device_id.clone())
    }
}

fn reading(i: usize) -> SensorReading {
    // Avro: 7 fields; strings sized so the encoded record is 200 bytes.
    SensorReading {
        device_id: format!("device-{:06}", i % 1000),
        site: "eu-west-fab-07".to_owned(),
        metric: "chamber.temperature".to_owned(),
        value: 21.5 + (i % 100) as f64 / 10.0,
        unit: "celsius".to_owned(),
        sequence: i as i64,
        note: "x".repeat(120),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Raw,
    RawHeaders,
    RawBlock,
    Avro,
    Json,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::RawHeaders => "raw_headers",
            Mode::RawBlock => "raw_block",
            Mode::Avro => "avro",
            Mode::Json => "json",
        }
    }
}

#[allow(unsafe_code)]
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return f64::NAN;
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Run {
    mode: Mode,
    records: usize,
    wall: Duration,
    cpu: f64,
}

/// Seven headers shaped like an Avro event's CloudEvents headers (same names, same value
/// lengths), made once: what the raw producer pays for carrying them, without the layer.
fn cloudevents_like_headers() -> Vec<(HeaderName, Option<Bytes>)> {
    [
        ("ce_specversion", "1.0"),
        ("ce_id", "01a24383-efc1-7001-b967-59a5883ebdbd"),
        ("ce_source", "bench"),
        ("ce_type", "bench.sensor.reading"),
        ("ce_time", "2026-12-05T00:04:09.793Z"),
        ("ce_sourceversion", "0.0.0"),
        ("content-type", "application/avro"),
    ]
    .into_iter()
    .map(|(k, v)| (HeaderName::from(k), Some(Bytes::from_static(v.as_bytes()))))
    .collect()
}

/// How a raw run carries the CloudEvents-like headers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Headers {
    None,
    /// All seven in the record's list.
    List,
    /// The five constant ones as a shared block, `ce_id` and `ce_time` in the list.
    Block,
}

async fn run_raw(
    producer: &Producer,
    topic: &str,
    from: usize,
    n: usize,
    carried: Headers,
) -> Result<(), BoxError> {
    let topic = Topic::from(topic);
    let all = cloudevents_like_headers();
    let (headers, block) = match carried {
        Headers::None => (Vec::new(), None),
        Headers::List => (all, None),
        Headers::Block => {
            let varying = |(k, _): &(HeaderName, Option<Bytes>)| k == "ce_id" || k == "ce_time";
            let (own, constant): (Vec<_>, Vec<_>) = all.into_iter().partition(varying);
            (own, Some(HeaderBlock::new(&constant)?))
        }
    };
    let avro_len = 200;
    let mut i = from;
    while i < from + n {
        let end = (i + CHUNK).min(from + n);
        let mut pending = Vec::with_capacity(end - i);
        for j in i..end {
            let r = reading(j);
            // The value an application serialized once (same size as the Avro payload).
            let mut value = Vec::with_capacity(avro_len);
            value.extend_from_slice(r.device_id.as_bytes());
            value.resize(avro_len, b'.');
            let record = ProducerRecord {
                topic: topic.clone(),
                key: Some(Bytes::from(r.device_id)),
                value: Some(Bytes::from(value)),
                headers: headers.clone(),
                header_block: block.clone(),
                ..ProducerRecord::new(topic.clone())
            };
            pending.push(producer.send(record).await?);
        }
        for delivery in pending {
            delivery.await?;
        }
        i = end;
    }
    Ok(())
}

async fn run_events(
    producer: &EventProducer,
    mode: Mode,
    topic: &str,
    from: usize,
    n: usize,
) -> Result<(), BoxError> {
    let mut i = from;
    while i < from + n {
        let end = (i + CHUNK).min(from + n);
        let outcomes = if mode == Mode::Avro {
            let events = (i..end).map(|j| Event::new(reading(j)));
            producer.publish_batch_to(topic, events, |_| None).await
        } else {
            let events = (i..end).map(|j| Event::new(SensorReadingJson(reading(j))));
            producer.publish_batch_to(topic, events, |_| None).await
        };
        for outcome in outcomes {
            outcome?;
        }
        i = end;
    }
    Ok(())
}

async fn one_run(
    admin: &Admin,
    raw: &Producer,
    events: &EventProducer,
    mode: Mode,
    records: usize,
    round: usize,
) -> Result<Run, BoxError> {
    let topic = topic_name(mode, round);
    admin.create_topics(&[NewTopic::new(&topic, 6, 1)]).await?;
    let go = |from, n| {
        let topic = topic.clone();
        async move {
            match mode {
                Mode::Raw => run_raw(raw, &topic, from, n, Headers::None).await,
                Mode::RawHeaders => run_raw(raw, &topic, from, n, Headers::List).await,
                Mode::RawBlock => run_raw(raw, &topic, from, n, Headers::Block).await,
                _ => run_events(events, mode, &topic, from, n).await,
            }
        }
    };
    go(0, WARMUP).await?;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    go(WARMUP, records).await?;
    let wall = t0.elapsed();
    let cpu = cpu_seconds() - cpu0;
    admin.delete_topics(&[&topic]).await?;
    Ok(Run {
        mode,
        records,
        wall,
        cpu,
    })
}

fn topic_name(mode: Mode, round: usize) -> String {
    format!(
        "bench-events-{}-{round}-{}",
        mode.name(),
        std::process::id()
    )
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .ok_or("usage: kafkit-events-produce BOOTSTRAP [RECORDS] [ROUNDS]")?;
    let records: usize = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |s| s.parse())?;

    // The Java client's defaults, as the producer benchmark uses them.
    let props = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("linger.ms", "5"),
        ("batch.size", "16384"),
        ("buffer.memory", "33554432"),
    ];
    let raw = Producer::new(ProducerConfig::from_properties(props)?).await?;
    let mut builder = EventsConfig::builder().service_name("bench");
    for (k, v) in props {
        builder = builder.set(k, v)?;
    }
    // Metrics, tracing and logging stay on (the facade is a no-op without a recorder), unless
    // KAFKIT_BENCH_OBSERVABILITY=off (to see what they cost).
    if std::env::var("KAFKIT_BENCH_OBSERVABILITY").as_deref() == Ok("off") {
        for key in [
            "events.metrics.enabled",
            "events.tracing.enabled",
            "events.logging.enabled",
        ] {
            builder = builder.set(key, "false")?;
        }
    }
    let config = builder.build()?;
    let events = EventProducer::with_registry(&config, SchemaRegistry::in_memory()).await?;
    let admin = Admin::connect(&bootstrap).await?;

    // KAFKIT_BENCH_MODES=avro (comma-separated) runs only those modes: for profiling one.
    let only = std::env::var("KAFKIT_BENCH_MODES").unwrap_or_default();
    let modes: Vec<Mode> = [
        Mode::Raw,
        Mode::RawHeaders,
        Mode::RawBlock,
        Mode::Avro,
        Mode::Json,
    ]
    .into_iter()
    .filter(|m| only.is_empty() || only.split(',').any(|o| o.trim() == m.name()))
    .collect();
    let mut runs = Vec::new();
    for round in 0..rounds {
        for k in 0..modes.len() {
            let mode = modes[(k + round) % modes.len()];
            let run = one_run(&admin, &raw, &events, mode, records, round).await?;
            println!(
                "{{\"mode\":\"{}\",\"round\":{round},\"records\":{},\"records_per_s\":{:.0},\"cpu_us_per_record\":{:.3}}}",
                run.mode.name(),
                run.records,
                run.records as f64 / run.wall.as_secs_f64(),
                run.cpu * 1e6 / run.records as f64
            );
            runs.push(run);
        }
    }
    let cpu = |m: Mode| {
        median(
            runs.iter()
                .filter(|r| r.mode == m)
                .map(|r| r.cpu * 1e6 / r.records as f64)
                .collect(),
        )
    };
    let rate = |m: Mode| {
        median(
            runs.iter()
                .filter(|r| r.mode == m)
                .map(|r| r.records as f64 / r.wall.as_secs_f64())
                .collect(),
        )
    };
    let raw_cpu = cpu(Mode::Raw);
    let mut summary = format!("summary: median CPU µs/record raw {raw_cpu:.2}");
    for &m in modes.iter().filter(|m| **m != Mode::Raw) {
        let c = cpu(m);
        summary += &format!(
            ", {} {c:.2} ({:+.0} %)",
            m.name(),
            (c / raw_cpu - 1.0) * 100.0
        );
    }
    summary += "; records/s";
    for &m in &modes {
        summary += &format!(" {} {:.0}", m.name(), rate(m));
    }
    println!("{summary}");
    events.close().await?;
    raw.close(Duration::from_secs(30)).await?;
    admin.close(Duration::from_secs(5)).await;
    Ok(())
}
