//! kafkit-events' consuming overhead and latency: typed Avro events through `EventConsumer`
//! handlers vs the raw `kafkit::consumer::Consumer`, in the same process, against the same
//! broker, interleaved rounds. The driver is `benches/run-events-consume.sh`.
//!
//! Usage: `kafkit-events-consume BOOTSTRAP [RECORDS] [ROUNDS] [RATE] [SECONDS]`
//!
//! 1. **Throughput**: RECORDS typed Avro `SensorReading`s (200 bytes of Avro, CloudEvents
//!    headers, Confluent framing; an in-memory registry shared by producer and consumer) are
//!    published once to a 6-partition topic. Each round then reads all of them once per mode,
//!    each in a fresh group, the order rotating:
//!    - `raw`: `Consumer::subscribe` + `poll`, counting records (nothing decoded);
//!    - `handlers`: `EventConsumer` with one `on::<SensorReading>` handler counting events
//!      (routing on `ce_type`, envelope from the headers, Avro decode against the registry,
//!      per-partition order, commits batched; default settings).
//!
//!    The timed span runs from the first record handed to the application to the last (group
//!    join not counted); CPU is getrusage (all threads) over the same span.
//! 2. **Latency**: per round and mode, a fresh topic; the consumer joins (a warm-up event
//!    handled), then events are published at RATE/s for SECONDS (a batch every 10 ms, each
//!    batch in a task of its own so a slow ack does not hold the schedule back). `handlers`:
//!    publish → handle from a µs timestamp in the event, set right before it is published;
//!    `raw`: from the record's CreateTime (ms, set by the producer) to the poll returning it.
//!
//! Prints one JSON line per run and a summary.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::ConsumerConfig;
use kafkit::consumer::Consumer;
use kafkit_events::config::EventsConfig;
use kafkit_events::consumer::{EventConsumer, RecordContext};
use kafkit_events::producer::EventProducer;
use kafkit_events::registry::SchemaRegistry;
use kafkit_events::typed::{AvroSchemaSource, EventPayload};
use kafkit_events::Event;
use serde::{Deserialize, Serialize};

#[path = "../produce_common.rs"]
mod produce_common;

const CHUNK: usize = 1_000;
const PARTITIONS: i32 = 6;
const DEADLINE: Duration = Duration::from_secs(300);

const SCHEMA: &str = r#"{"type":"record","name":"SensorReading","namespace":"bench",
"fields":[{"name":"device_id","type":"string"},{"name":"site","type":"string"},
{"name":"metric","type":"string"},{"name":"value","type":"double"},
{"name":"unit","type":"string"},{"name":"sequence","type":"long"},
{"name":"sent_at_us","type":"long"},{"name":"note","type":"string"}]}"#;

/// The payload: 200 bytes as Avro; `sent_at_us` is the publish time (µs since the epoch).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SensorReading {
    device_id: String,
    site: String,
    metric: String,
    value: f64,
    unit: String,
    sequence: i64,
    sent_at_us: i64,
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

fn reading(i: usize) -> SensorReading {
    SensorReading {
        device_id: format!("device-{:06}", i % 1000),
        site: "eu-west-fab-07".to_owned(),
        metric: "chamber.temperature".to_owned(),
        value: 21.5 + (i % 100) as f64 / 10.0,
        unit: "celsius".to_owned(),
        sequence: i as i64,
        sent_at_us: now_us(),
        note: "x".repeat(112),
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Raw,
    Handlers,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Handlers => "handlers",
        }
    }
}

/// CPU seconds of the process (user + system, all threads).
fn cpu_seconds() -> f64 {
    let (user, sys) = produce_common::cpu_times();
    user + sys
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a run is: records seen, and (time, CPU) at the first and at the last.
#[derive(Default)]
struct Progress {
    seen: AtomicUsize,
    first: OnceLock<(Instant, f64)>,
    last: OnceLock<(Instant, f64)>,
    /// Latencies in µs (latency runs only).
    latencies: Mutex<Vec<u64>>,
}

impl Progress {
    /// Counts `n` records; `target` is the number that ends the run.
    fn saw(&self, n: usize, target: usize) {
        if n == 0 {
            return;
        }
        let before = self.seen.fetch_add(n, Ordering::Relaxed);
        if before == 0 {
            let _ = self.first.set((Instant::now(), cpu_seconds()));
        }
        if before < target && before + n >= target {
            let _ = self.last.set((Instant::now(), cpu_seconds()));
        }
    }

    async fn wait(&self, target: usize, what: &str) -> Result<(), BoxError> {
        let deadline = Instant::now() + DEADLINE;
        while self.seen.load(Ordering::Relaxed) < target {
            if Instant::now() > deadline {
                return Err(format!(
                    "{what}: {} of {target} within {DEADLINE:?}",
                    self.seen.load(Ordering::Relaxed)
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

struct Bench {
    bootstrap: String,
    admin: Admin,
    producer: EventProducer,
    config: EventsConfig,
    registry: SchemaRegistry,
    groups: AtomicU64,
}

/// A consumer running in the background until `stop`.
enum Running {
    Raw {
        consumer: Arc<Consumer>,
        task: tokio::task::JoinHandle<Result<(), BoxError>>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    },
    Handlers {
        consumer: Arc<EventConsumer>,
        task: tokio::task::JoinHandle<Result<(), kafkit_events::EventsError>>,
    },
}

impl Running {
    async fn stop(self) -> Result<(), BoxError> {
        match self {
            Running::Raw {
                consumer,
                task,
                stop,
            } => {
                stop.store(true, Ordering::Relaxed);
                task.await??;
                consumer.close(Duration::from_secs(10)).await?;
            }
            Running::Handlers { consumer, task } => {
                consumer.shutdown_handle().shutdown();
                tokio::time::timeout(Duration::from_secs(60), task).await???;
            }
        }
        Ok(())
    }
}

impl Bench {
    fn group(&self, mode: Mode) -> String {
        let n = self.groups.fetch_add(1, Ordering::Relaxed);
        format!("bench-evcons-{}-{}-{n}", mode.name(), std::process::id())
    }

    async fn topic(&self, what: &str) -> Result<String, BoxError> {
        let n = self.groups.fetch_add(1, Ordering::Relaxed);
        let topic = format!("bench-evcons-{what}-{}-{n}", std::process::id());
        self.admin
            .create_topics(&[NewTopic::new(&topic, PARTITIONS, 1)])
            .await?;
        Ok(topic)
    }

    async fn publish(&self, topic: &str, from: usize, n: usize) -> Result<(), BoxError> {
        let mut i = from;
        while i < from + n {
            let end = (i + CHUNK).min(from + n);
            let events = (i..end).map(|j| Event::new(reading(j)));
            for outcome in self
                .producer
                .publish_batch_to(topic, events, |_| None)
                .await
            {
                outcome?;
            }
            i = end;
        }
        Ok(())
    }

    /// Starts a consumer of `mode` on `topic`, counting into `progress` up to `target`;
    /// `latency` records publish → handle times.
    async fn start(
        &self,
        mode: Mode,
        topic: &str,
        progress: Arc<Progress>,
        target: usize,
        latency: bool,
    ) -> Result<Running, BoxError> {
        let group = self.group(mode);
        match mode {
            Mode::Raw => {
                let config = ConsumerConfig::builder()
                    .bootstrap_servers(self.bootstrap.split(','))
                    .set("group.id", &group)?
                    .set("auto.offset.reset", "earliest")?
                    .build()?;
                let consumer = Arc::new(Consumer::new(config).await?);
                consumer.subscribe([topic]).await?;
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let (c, s) = (consumer.clone(), stop.clone());
                let task = tokio::spawn(async move {
                    while !s.load(Ordering::Relaxed) {
                        let records = c.poll(Duration::from_millis(100)).await?;
                        if latency && !records.is_empty() {
                            let now_ms = now_us() / 1000;
                            let mut l =
                                progress.latencies.lock().unwrap_or_else(|p| p.into_inner());
                            l.extend(
                                records
                                    .iter()
                                    .map(|r| (now_ms - r.timestamp).max(0) as u64 * 1000),
                            );
                        }
                        progress.saw(records.len(), target);
                    }
                    Ok::<(), BoxError>(())
                });
                Ok(Running::Raw {
                    consumer,
                    task,
                    stop,
                })
            }
            Mode::Handlers => {
                let consumer = EventConsumer::builder(&self.config, &group)
                    .registry(self.registry.clone())
                    .topics([topic])
                    .on::<SensorReading, _, _>(
                        move |event: Event<SensorReading>, _: RecordContext| {
                            if latency {
                                let l = (now_us() - event.data.sent_at_us).max(0) as u64;
                                progress
                                    .latencies
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(l);
                            }
                            progress.saw(1, target);
                            async { Ok(()) }
                        },
                    )
                    .build()
                    .await?;
                let consumer = Arc::new(consumer);
                let c = consumer.clone();
                let task = tokio::spawn(async move { c.run().await });
                Ok(Running::Handlers { consumer, task })
            }
        }
    }

    /// Reads the `records` events of `topic` once with `mode`.
    async fn throughput(
        &self,
        mode: Mode,
        topic: &str,
        records: usize,
        round: usize,
    ) -> Result<(f64, f64), BoxError> {
        let progress = Arc::new(Progress::default());
        let running = self
            .start(mode, topic, progress.clone(), records, false)
            .await?;
        progress.wait(records, mode.name()).await?;
        running.stop().await?;
        let (&(t0, c0), &(t1, c1)) = (
            progress.first.get().ok_or("no first record")?,
            progress.last.get().ok_or("no last record")?,
        );
        let wall = (t1 - t0).as_secs_f64();
        let per_s = records as f64 / wall;
        let cpu_us = (c1 - c0) * 1e6 / records as f64;
        println!(
            "{{\"phase\":\"throughput\",\"mode\":\"{}\",\"round\":{round},\"records\":{records},\"events_per_s\":{per_s:.0},\"cpu_us_per_event\":{cpu_us:.3}}}",
            mode.name()
        );
        Ok((per_s, cpu_us))
    }

    /// Publishes at `rate`/s for `seconds` to a fresh topic a consumer of `mode` reads.
    async fn latency(
        &self,
        mode: Mode,
        rate: usize,
        seconds: u64,
        round: usize,
    ) -> Result<Vec<u64>, BoxError> {
        let topic = self.topic("lat").await?;
        let warmup = 100;
        let per_tick = (rate / 100).max(1);
        let ticks = seconds as usize * 100;
        let total = warmup + per_tick * ticks;
        let progress = Arc::new(Progress::default());
        let running = self
            .start(mode, &topic, progress.clone(), total, true)
            .await?;
        // Joined and reading: the warm-up is handled.
        self.publish(&topic, 0, warmup).await?;
        progress.wait(warmup, "latency warm-up").await?;
        progress
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let mut interval = tokio::time::interval(Duration::from_millis(10));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let started = Instant::now();
        let mut batches = Vec::with_capacity(ticks);
        for t in 0..ticks {
            interval.tick().await;
            let producer = self.producer.clone();
            let topic = topic.clone();
            let from = warmup + t * per_tick;
            batches.push(tokio::spawn(async move {
                let events = (from..from + per_tick).map(|j| Event::new(reading(j)));
                for outcome in producer.publish_batch_to(&topic, events, |_| None).await {
                    outcome?;
                }
                Ok::<(), kafkit_events::EventsError>(())
            }));
        }
        let published_in = started.elapsed();
        for b in batches {
            b.await??;
        }
        progress.wait(total, "latency run").await?;
        let handled_in = started.elapsed();
        running.stop().await?;
        self.admin.delete_topics(&[&topic]).await?;
        let mut l =
            std::mem::take(&mut *progress.latencies.lock().unwrap_or_else(|p| p.into_inner()));
        l.sort_unstable();
        let n = per_tick * ticks;
        println!(
            "{{\"phase\":\"latency\",\"mode\":\"{}\",\"round\":{round},\"events\":{n},\"published_per_s\":{:.0},\"handled_per_s\":{:.0},\"p50_ms\":{:.2},\"p95_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
            mode.name(),
            n as f64 / published_in.as_secs_f64(),
            n as f64 / handled_in.as_secs_f64(),
            pct(&l, 50.0),
            pct(&l, 95.0),
            pct(&l, 99.0),
            pct(&l, 100.0),
        );
        Ok(l)
    }
}

/// The `p`-th percentile of sorted µs values, in ms (nearest rank).
fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: kafkit-events-consume BOOTSTRAP [RECORDS] [ROUNDS] [RATE] [SECONDS]";
    let bootstrap = args.next().ok_or(usage)?;
    let records: usize = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let rate: usize = args.next().map_or(Ok(10_000), |s| s.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |s| s.parse())?;

    // The Java client's defaults, as the producer benchmarks use them.
    let mut builder = EventsConfig::builder()
        .service_name("bench")
        .bootstrap_servers(&bootstrap)
        .set("linger.ms", "5")?
        .set("auto.offset.reset", "earliest")?;
    // Metrics, tracing and logging stay on (no recorder or subscriber is installed), unless
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
    let registry = SchemaRegistry::in_memory();
    let producer = EventProducer::with_registry(&config, registry.clone()).await?;
    let bench = Bench {
        admin: Admin::connect(&bootstrap).await?,
        bootstrap,
        producer,
        config,
        registry,
        groups: AtomicU64::new(0),
    };

    let topic = bench.topic("tput").await?;
    bench.publish(&topic, 0, records).await?;
    let modes = [Mode::Raw, Mode::Handlers];
    let mut runs: Vec<(Mode, f64, f64)> = Vec::new();
    let mut lat: Vec<(Mode, Vec<u64>)> = Vec::new();
    for round in 0..rounds {
        for k in 0..modes.len() {
            let mode = modes[(k + round) % modes.len()];
            let (per_s, cpu) = bench.throughput(mode, &topic, records, round).await?;
            runs.push((mode, per_s, cpu));
        }
    }
    for round in 0..rounds {
        for k in 0..modes.len() {
            let mode = modes[(k + round) % modes.len()];
            lat.push((mode, bench.latency(mode, rate, seconds, round).await?));
        }
    }
    bench.admin.delete_topics(&[&topic]).await?;

    let of = |m: Mode, f: fn(&(Mode, f64, f64)) -> f64| {
        median(runs.iter().filter(|r| r.0 == m).map(f).collect())
    };
    let (raw_rate, ev_rate) = (of(Mode::Raw, |r| r.1), of(Mode::Handlers, |r| r.1));
    let (raw_cpu, ev_cpu) = (of(Mode::Raw, |r| r.2), of(Mode::Handlers, |r| r.2));
    println!(
        "summary throughput ({records} events × {rounds} rounds, medians): raw {raw_rate:.0} events/s, {raw_cpu:.2} CPU µs/event; handlers {ev_rate:.0} events/s, {ev_cpu:.2} CPU µs/event ({:.2}× raw CPU, {:.2}× raw rate)",
        ev_cpu / raw_cpu,
        ev_rate / raw_rate
    );
    for m in modes {
        let mut all: Vec<u64> = lat
            .iter()
            .filter(|(mode, _)| *mode == m)
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        all.sort_unstable();
        println!(
            "summary latency {} (publish → {}, {rate}/s × {seconds} s × {rounds} rounds, {} events): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            m.name(),
            if m == Mode::Raw { "poll, CreateTime ms" } else { "handler, µs in the event" },
            all.len(),
            pct(&all, 50.0),
            pct(&all, 95.0),
            pct(&all, 99.0),
            pct(&all, 100.0)
        );
    }
    bench.producer.close().await?;
    bench.admin.cluster().close();
    Ok(())
}
