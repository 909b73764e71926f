//! rust-rdkafka (bundled librdkafka) producer throughput peer for `benches/run-producer.sh`.
//!
//! Same CLI, payload file and JSON as `kafkit-produce`. Settings are the Java client's
//! defaults that kafkit uses (acks=all, idempotence, linger 5 ms, 16 KiB batches, 32 MiB
//! buffer, murmur2 partitioner, 5 in flight); librdkafka's own defaults differ.
//! Timing and CPU (getrusage, all threads) cover the produce phase only: from after a
//! warm-up (producer created, connections open, producer id obtained, metadata known) until
//! the last delivery report. Only acknowledged records count.

#[path = "../../../src/produce_common.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

impl ClientContext for Counters {}

impl ProducerContext for Counters {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(message) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let len = message.payload().map_or(0, <[u8]>::len) as u64;
                self.bytes.fetch_add(len, Ordering::Relaxed);
            }
            Err((err, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("rdkafka-produce: delivery failed: {err}");
                }
            }
        }
    }
}

/// Sends `count` records and waits until each has its delivery report (counted by the context
/// on the producer's polling thread).
///
/// Why a `ThreadedProducer` and sleeps rather than `BaseProducer::poll`: in rust-rdkafka 0.39
/// `poll(t)` always runs until `t` has passed and turns the last sub-millisecond into
/// `rd_kafka_queue_poll(0)` calls, i.e. it busy-spins; polling on `QueueFull` with a short
/// timeout would burn a core and inflate librdkafka's CPU figure. The polling thread (100 ms
/// polls) serves the delivery reports as they come; this thread backs off 0.5 ms when the
/// 32 MiB buffer is full and watches the counters at the end (a `flush` could add up to
/// 100 ms of idle `poll` to the wall time).
fn produce(
    producer: &ThreadedProducer<Counters>,
    topic: &str,
    payloads: &[Vec<u8>],
    keys: &[Vec<u8>],
    count: u64,
) -> Result<(), KafkaError> {
    let ctx = producer.context();
    let done = || ctx.acked.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed);
    let target = done() + count;
    for i in 0..count {
        let payload = &payloads[(i % payloads.len() as u64) as usize];
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(payload.as_slice());
        if !keys.is_empty() {
            record = record.key(keys[(i % keys.len() as u64) as usize].as_slice());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_micros(500));
                }
                Err((err, _)) => return Err(err),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while done() < target {
        if Instant::now() > deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn main() {
    let args = common::parse_args("rdkafka-produce");
    let payloads = common::load_payloads(&args.payload_file);
    let keys = common::keys(args.keys);
    let size = payloads[0].len();
    let rss_base = common::memory_base();

    let producer: ThreadedProducer<Counters> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", "16384")
        .set("compression.type", &args.compression)
        // Java's buffer.memory (32 MiB) bounds the buffered bytes; let bytes be the bound here too.
        .set("queue.buffering.max.kbytes", "32768")
        .set("queue.buffering.max.messages", "2147483647")
        .set("partitioner", "murmur2_random")
        .set(
            "max.in.flight.requests.per.connection",
            args.max_in_flight.to_string(),
        )
        .create_with_context(Counters::default())
        .unwrap_or_else(|e| {
            eprintln!("rdkafka-produce: cannot create producer: {e}");
            std::process::exit(1)
        });

    // Warm-up: connections, producer id, topic metadata; not measured.
    if args.warmup > 0 {
        if let Err(e) = produce(&producer, &args.topic, &payloads, &keys, args.warmup) {
            eprintln!("rdkafka-produce: warm-up failed: {e}");
            std::process::exit(1)
        }
    }
    let warm_acked = producer.context().acked.load(Ordering::Relaxed);
    let warm_failed = producer.context().failed.load(Ordering::Relaxed);
    let warm_bytes = producer.context().bytes.load(Ordering::Relaxed);

    let cpu_start = common::cpu_times();
    let start = Instant::now();
    let result = produce(&producer, &args.topic, &payloads, &keys, args.records);
    let wall = start.elapsed();
    let cpu_end = common::cpu_times();
    if let Err(e) = result {
        eprintln!("rdkafka-produce: produce/flush failed: {e}");
    }

    let ctx = producer.context();
    let outcome = common::Outcome {
        client: "rdkafka",
        records: args.records,
        acked: ctx.acked.load(Ordering::Relaxed) - warm_acked,
        failed: ctx.failed.load(Ordering::Relaxed) - warm_failed,
        bytes: ctx.bytes.load(Ordering::Relaxed) - warm_bytes,
        wall,
        cpu_start,
        cpu_end,
        rss_base,
    };
    println!("{}", outcome.json(&args, size));
}
