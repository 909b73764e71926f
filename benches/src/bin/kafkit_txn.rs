//! kafkit transactional producer throughput and per-transaction latency, the kafkit side of
//! `benches/run-transactions.sh`.
//!
//! Same CLI, payload file and JSON as `rdkafka-txn` (benches/peers) and
//! `benches/java/TxnBench.java`; what is measured: `benches/src/txn_common.rs`. Each record's
//! topic is a clone of one `Topic`; the delivery futures are dropped (the commit reports any
//! failed send of its transaction).

#[path = "../produce_common.rs"]
mod common;
#[path = "../txn_common.rs"]
mod txn;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit::config::ProducerConfig;
use kafkit::producer::{Producer, ProducerRecord, Topic};

const CALL: Duration = Duration::from_secs(60);

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("kafkit-txn: {what}: {err}");
    std::process::exit(1)
}

/// One transaction of `size` records from `payloads[next..]`: begin, send, commit. `Ok` with
/// its begin → commit time.
async fn transaction(
    producer: &Producer,
    topic: &Topic,
    payloads: &[Bytes],
    next: &mut usize,
    size: u64,
) -> Result<Duration, String> {
    let start = Instant::now();
    producer
        .begin_transaction()
        .map_err(|e| format!("begin: {e}"))?;
    for _ in 0..size {
        let payload = payloads[*next % payloads.len()].clone();
        *next += 1;
        // Dropped: the commit fails if any send of the transaction failed.
        let _delivery = producer
            .send(ProducerRecord::new(topic.clone()).value(payload))
            .await
            .map_err(|e| format!("send: {e}"))?;
    }
    producer
        .commit_transaction(CALL)
        .await
        .map_err(|e| format!("commit: {e}"))?;
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() {
    let args = txn::parse_args("kafkit-txn");
    let payloads: Vec<Bytes> = common::load_payloads(&args.payload_file)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let size = payloads[0].len();
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("transactional.id", args.transactional_id.as_str()),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
        ("batch.size", "16384"),
        ("compression.type", "none"),
        ("buffer.memory", "33554432"),
    ])
    .unwrap_or_else(|e| fail("bad config", e));
    let producer = Producer::new(config)
        .await
        .unwrap_or_else(|e| fail("cannot create producer", e));
    producer
        .init_transactions(CALL)
        .await
        .unwrap_or_else(|e| fail("init_transactions", e));
    let topic = Topic::from(args.topic.as_str());
    let mut next = 0usize;
    for _ in 0..args.warmup_txns {
        if let Err(e) = transaction(&producer, &topic, &payloads, &mut next, args.txn_size).await {
            fail("warm-up transaction", e);
        }
    }

    let mut outcome = txn::Outcome {
        cpu_start: common::cpu_times(),
        ..txn::Outcome::default()
    };
    let start = Instant::now();
    for _ in 0..args.transactions {
        match transaction(&producer, &topic, &payloads, &mut next, args.txn_size).await {
            Ok(took) => outcome.transactions.push(took),
            Err(e) => {
                if outcome.failed < 5 {
                    eprintln!("kafkit-txn: transaction failed: {e}");
                }
                outcome.failed += 1;
                let _ = producer.abort_transaction(CALL).await;
            }
        }
    }
    outcome.wall = start.elapsed();
    outcome.cpu_end = common::cpu_times();
    let _ = producer.close(Duration::from_secs(30)).await;
    println!("{}", outcome.json("kafkit", &args, size));
}
