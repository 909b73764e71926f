//! rust-rdkafka (bundled librdkafka) peer of `kafkit-txn` for `benches/run-transactions.sh`:
//! transactional throughput and per-transaction latency.
//!
//! Same CLI, payload file and JSON as `kafkit-txn`; what is measured:
//! `benches/src/txn_common.rs`. A `ThreadedProducer` (its thread serves the delivery reports,
//! see `rdkafka_produce.rs` for why not `BaseProducer::poll`), `QueueFull` answered with a
//! 0.5 ms sleep; `commit_transaction` flushes before it commits, as Java's and kafkit's do.

#[path = "../../../src/produce_common.rs"]
mod common;
#[path = "../../../src/txn_common.rs"]
mod txn;

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const CALL: Duration = Duration::from_secs(60);

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("rdkafka-txn: {what}: {err}");
    std::process::exit(1)
}

/// One transaction of `size` records from `payloads[next..]`: begin, send, commit. `Ok` with
/// its begin → commit time.
fn transaction(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    payloads: &[Vec<u8>],
    next: &mut usize,
    size: u64,
) -> Result<Duration, KafkaError> {
    let start = Instant::now();
    producer.begin_transaction()?;
    for _ in 0..size {
        let payload = &payloads[*next % payloads.len()];
        *next += 1;
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(payload.as_slice());
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
    producer.commit_transaction(CALL)?;
    Ok(start.elapsed())
}

fn main() {
    let args = txn::parse_args("rdkafka-txn");
    let payloads = common::load_payloads(&args.payload_file);
    let size = payloads[0].len();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("transactional.id", &args.transactional_id)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", "16384")
        .set("compression.type", "none")
        .set("queue.buffering.max.kbytes", "32768")
        .set("queue.buffering.max.messages", "2147483647")
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap_or_else(|e| fail("cannot create producer", e));
    producer
        .init_transactions(CALL)
        .unwrap_or_else(|e| fail("init_transactions", e));
    let mut next = 0usize;
    for _ in 0..args.warmup_txns {
        if let Err(e) = transaction(&producer, &args.topic, &payloads, &mut next, args.txn_size) {
            fail("warm-up transaction", e);
        }
    }

    let mut outcome = txn::Outcome {
        cpu_start: common::cpu_times(),
        ..txn::Outcome::default()
    };
    let start = Instant::now();
    for _ in 0..args.transactions {
        match transaction(&producer, &args.topic, &payloads, &mut next, args.txn_size) {
            Ok(took) => outcome.transactions.push(took),
            Err(e) => {
                if outcome.failed < 5 {
                    eprintln!("rdkafka-txn: transaction failed: {e}");
                }
                outcome.failed += 1;
                let _ = producer.abort_transaction(CALL);
            }
        }
    }
    outcome.wall = start.elapsed();
    outcome.cpu_end = common::cpu_times();
    println!("{}", outcome.json("rdkafka", &args, size));
}
