//! rust-rdkafka (bundled librdkafka) peer of `kafkit-latency` for `benches/run-latency.sh`:
//! latency at a fixed rate.
//!
//! Same CLI and JSON as `kafkit-latency`; what is measured: `benches/src/latency_common.rs`.
//! The sender (this thread) sleeps until each record's due time and calls `send`; a
//! `ThreadedProducer`'s thread serves the delivery reports, and its context notes the time of
//! each (the record's index and due time ride as the delivery opaque); a second thread polls a
//! `BaseConsumer`. Settings are spelled out as the kafkit side's (librdkafka's defaults differ).

#[path = "../../../src/produce_common.rs"]
mod common;
#[path = "../../../src/latency_common.rs"]
mod lat;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("rdkafka-latency: {what}: {err}");
    std::process::exit(1)
}

/// The delivery reports: counts and the ack latencies of recorded records.
struct Acks {
    warmup: u64,
    acked: AtomicU64,
    failed: AtomicU64,
    last_us: AtomicU64,
    samples: Mutex<lat::Samples>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    /// The record's index and due time (µs since the epoch).
    type DeliveryOpaque = Box<(u64, u64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Box<(u64, u64)>) {
        let at = lat::now_us();
        let (index, due) = *opaque;
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                if index >= self.warmup {
                    if let Ok(mut samples) = self.samples.lock() {
                        samples.push(at.saturating_sub(due));
                    }
                }
            }
            Err((err, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("rdkafka-latency: delivery failed: {err}");
                }
            }
        }
        self.last_us.fetch_max(at, Ordering::Relaxed);
    }
}

fn main() {
    let args = lat::parse_args("rdkafka-latency");
    let total = args.total();
    let warmup = args.warmup_records();
    let recorded = total - warmup;
    let acks = Acks {
        warmup,
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        last_us: AtomicU64::new(0),
        samples: Mutex::new(lat::Samples::with_capacity(recorded)),
    };
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", "16384")
        .set("compression.type", "none")
        .set("queue.buffering.max.kbytes", "32768")
        .set("queue.buffering.max.messages", "2147483647")
        .set("partitioner", "murmur2_random")
        .create_with_context(acks)
        .unwrap_or_else(|e| fail("cannot create producer", e));

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", format!("{}-latency", args.topic))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.min.bytes", "1")
        .set("fetch.wait.max.ms", "500")
        .create()
        .unwrap_or_else(|e| fail("cannot create consumer", e));
    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(30))
        .unwrap_or_else(|e| fail("metadata", e));
    let mut assignment = TopicPartitionList::new();
    for topic in metadata.topics() {
        for p in topic.partitions() {
            assignment
                .add_partition_offset(&args.topic, p.id(), Offset::Beginning)
                .unwrap_or_else(|e| fail("assignment", e));
        }
    }
    consumer
        .assign(&assignment)
        .unwrap_or_else(|e| fail("assign", e));
    let deadline = Instant::now() + args.timeout + Duration::from_secs_f64(args.seconds + args.warmup);
    let consuming = std::thread::spawn(move || {
        let mut samples = lat::Samples::with_capacity(recorded);
        let mut consumed = 0u64;
        while consumed < total && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let now = lat::now_us();
                    if let Some((index, due)) = message.payload().and_then(lat::parse) {
                        consumed += 1;
                        if index >= warmup {
                            samples.push(now.saturating_sub(due));
                        }
                    }
                }
                Some(Err(err)) => fail("poll", err),
                None => {}
            }
        }
        (consumed, samples)
    });

    let mut outcome = lat::Outcome::new(&args);
    outcome.cpu_start = common::cpu_times();
    let start = Instant::now() + Duration::from_millis(10);
    let start_us = lat::now_us() + 10_000;
    for i in 0..total {
        let due = args.due(i);
        if let Some(wait) = (start + due).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let due_us = start_us + due.as_micros() as u64;
        let value = lat::payload(i, due_us, args.size);
        let mut record = BaseRecord::<(), [u8], Box<(u64, u64)>>::with_opaque_to(
            &args.topic,
            Box::new((i, due_us)),
        )
        .payload(value.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_micros(500));
                }
                Err((err, _)) => fail("send", err),
            }
        }
        outcome.sent += 1;
    }
    let ctx = producer.context();
    let done = || ctx.acked.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed);
    while done() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (consumed, e2e) = consuming
        .join()
        .unwrap_or_else(|_| fail("consumer", "thread panicked"));
    outcome.cpu_end = common::cpu_times();
    outcome.acked = ctx.acked.load(Ordering::Relaxed);
    outcome.failed = ctx.failed.load(Ordering::Relaxed);
    if let Ok(mut samples) = ctx.samples.lock() {
        outcome.ack = std::mem::take(&mut *samples);
    }
    outcome.consumed = consumed;
    outcome.e2e = e2e;
    outcome.wall =
        Duration::from_micros(ctx.last_us.load(Ordering::Relaxed).saturating_sub(start_us));
    let _ = producer.flush(Duration::from_secs(30));
    println!("{}", outcome.json("rdkafka", &args));
}
