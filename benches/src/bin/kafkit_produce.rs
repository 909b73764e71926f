//! kafkit producer throughput, the kafkit side of `benches/run-producer.sh`.
//!
//! Same CLI, payload file and JSON as `rdkafka-produce` (benches/peers). Settings: the Java
//! client's defaults, spelled out (acks=all, idempotence, linger 5 ms, 16 KiB batches, 32 MiB
//! buffer, 5 in flight). Timing and CPU (getrusage, all threads) cover the produce phase only:
//! from after a warm-up (producer created, connections open, producer id obtained, metadata
//! known) until the last delivery future resolved. Only acknowledged records count.

#[path = "../produce_common.rs"]
mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit::config::ProducerConfig;
use kafkit::producer::{
    DeliveryFuture, ProduceError, Producer, ProducerRecord, RecordMetadata, Topic,
};

/// How the delivery futures are awaited (`KAFKIT_BENCH_COLLECT=task|inline`, default inline).
#[derive(Debug, Clone, Copy)]
enum Collect {
    Task,
    Inline,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    acked: u64,
    failed: u64,
    bytes: u64,
}

fn count(counts: &mut Counts, outcome: Result<RecordMetadata, ProduceError>, len: u64) {
    match outcome {
        Ok(_) => {
            counts.acked += 1;
            counts.bytes += len;
        }
        Err(err) => {
            if counts.failed < 5 {
                eprintln!("kafkit-produce: delivery failed: {err}");
            }
            counts.failed += 1;
        }
    }
}

/// Record `i` of a run: the payload, and `keys[i % keys.len()]` when keys are in use.
fn record(topic: &Topic, payload: Bytes, keys: &[Bytes], i: u64) -> ProducerRecord {
    let record = ProducerRecord::new(topic.clone()).value(payload);
    match keys.len() as u64 {
        0 => record,
        n => record.key(keys[(i % n) as usize].clone()),
    }
}

/// Sends `count` records and waits for every outcome.
///
/// `Collect::Task`: the delivery futures go through a channel to a second task that awaits
/// them in send order (what an application that wants every outcome would typically write).
/// `Collect::Inline`: the sending task keeps them in a queue and reaps the finished ones at the
/// front after each send (polled with a no-op waker), then awaits the rest: the least harness
/// work, closest to rdkafka's delivery callback bumping counters.
async fn produce(
    producer: &Producer,
    topic: &str,
    payloads: &[Bytes],
    keys: &[Bytes],
    count_records: u64,
    collect: Collect,
) -> Counts {
    let mut counts = Counts::default();
    // One shared topic name, cloned per record (rdkafka's records borrow a `&str`).
    let topic = Topic::from(topic);
    let mut send_failed = 0u64;
    let mut on_send_error = |err: ProduceError| {
        if send_failed < 5 {
            eprintln!("kafkit-produce: send failed: {err}");
        }
        send_failed += 1;
    };
    match collect {
        Collect::Task => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(DeliveryFuture, u64)>();
            let collector = tokio::spawn(async move {
                let mut counts = Counts::default();
                while let Some((delivery, len)) = rx.recv().await {
                    count(&mut counts, delivery.await, len);
                }
                counts
            });
            for i in 0..count_records {
                let payload = payloads[(i % payloads.len() as u64) as usize].clone();
                let len = payload.len() as u64;
                match producer.send(record(&topic, payload, keys, i)).await {
                    Ok(delivery) => {
                        let _ = tx.send((delivery, len));
                    }
                    Err(err) => on_send_error(err),
                }
            }
            drop(tx);
            let _ = producer.flush().await;
            counts = collector.await.unwrap_or_default();
        }
        Collect::Inline => {
            let mut pending: VecDeque<(DeliveryFuture, u64)> = VecDeque::new();
            let mut cx = Context::from_waker(Waker::noop());
            for i in 0..count_records {
                let payload = payloads[(i % payloads.len() as u64) as usize].clone();
                let len = payload.len() as u64;
                match producer.send(record(&topic, payload, keys, i)).await {
                    Ok(delivery) => pending.push_back((delivery, len)),
                    Err(err) => on_send_error(err),
                }
                while let Some((front, len)) = pending.front_mut() {
                    match Pin::new(front).poll(&mut cx) {
                        Poll::Ready(outcome) => {
                            let len = *len;
                            pending.pop_front();
                            count(&mut counts, outcome, len);
                        }
                        Poll::Pending => break,
                    }
                }
            }
            let _ = producer.flush().await;
            for (delivery, len) in pending {
                count(&mut counts, delivery.await, len);
            }
        }
    }
    counts.failed += send_failed;
    counts
}

#[tokio::main]
async fn main() {
    let args = common::parse_args("kafkit-produce");
    let collect = match std::env::var("KAFKIT_BENCH_COLLECT").as_deref() {
        Ok("task") => Collect::Task,
        Ok("inline") | Err(_) => Collect::Inline,
        Ok(other) => {
            eprintln!("kafkit-produce: KAFKIT_BENCH_COLLECT={other}: want task or inline");
            std::process::exit(2)
        }
    };
    let payloads: Vec<Bytes> = common::load_payloads(&args.payload_file)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let keys: Vec<Bytes> = common::keys(args.keys)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let size = payloads[0].len();
    let rss_base = common::memory_base();

    let max_in_flight = args.max_in_flight.to_string();
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
        ("batch.size", "16384"),
        ("compression.type", args.compression.as_str()),
        ("buffer.memory", "33554432"),
        (
            "max.in.flight.requests.per.connection",
            max_in_flight.as_str(),
        ),
    ])
    .unwrap_or_else(|e| {
        eprintln!("kafkit-produce: bad config: {e}");
        std::process::exit(1)
    });
    let producer = Producer::new(config).await.unwrap_or_else(|e| {
        eprintln!("kafkit-produce: cannot create producer: {e}");
        std::process::exit(1)
    });

    // Warm-up: connections, producer id, topic metadata; not measured.
    if args.warmup > 0 {
        let warm = produce(
            &producer,
            &args.topic,
            &payloads,
            &keys,
            args.warmup,
            collect,
        )
        .await;
        if warm.acked == 0 {
            eprintln!("kafkit-produce: warm-up failed: no record acknowledged");
            std::process::exit(1)
        }
    }

    let cpu_start = common::cpu_times();
    let start = Instant::now();
    let counts = produce(
        &producer,
        &args.topic,
        &payloads,
        &keys,
        args.records,
        collect,
    )
    .await;
    let wall = start.elapsed();
    let cpu_end = common::cpu_times();
    let _ = producer.close(Duration::from_secs(30)).await;

    let outcome = common::Outcome {
        client: "kafkit",
        records: args.records,
        acked: counts.acked,
        failed: counts.failed,
        bytes: counts.bytes,
        wall,
        cpu_start,
        cpu_end,
        rss_base,
    };
    println!("{}", outcome.json(&args, size));
}
