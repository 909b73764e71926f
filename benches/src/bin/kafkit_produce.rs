//! kafkit producer throughput, the kafkit side of `benches/run-producer.sh`.
//!
//! Same CLI, payload file and JSON as `rdkafka-produce` (benches/peers). Settings: the Java
//! client's defaults, spelled out (acks=all, idempotence, linger 5 ms, 16 KiB batches, 32 MiB
//! buffer, 5 in flight). Timing and CPU (getrusage, all threads) cover the produce phase only:
//! from after a warm-up (producer created, connections open, producer id obtained, metadata
//! known) until the last delivery future resolved. Only acknowledged records count.
//!
//! Built only with `--features producer` (it needs `kafkit_client::producer::Producer`).

#[path = "../produce_common.rs"]
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_client::config::ProducerConfig;
use kafkit_client::producer::{DeliveryFuture, Producer, ProducerRecord};

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    acked: u64,
    failed: u64,
    bytes: u64,
}

/// Sends `count` records and waits for every outcome. The delivery futures are awaited, in
/// send order, by a second task, as an application that wants every outcome would do it.
async fn produce(producer: &Producer, topic: &str, payloads: &[Bytes], count: u64) -> Counts {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(DeliveryFuture, u64)>();
    let collector = tokio::spawn(async move {
        let mut counts = Counts::default();
        while let Some((delivery, len)) = rx.recv().await {
            match delivery.await {
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
        counts
    });
    let mut send_failed = 0;
    for i in 0..count {
        let payload = payloads[(i % payloads.len() as u64) as usize].clone();
        let len = payload.len() as u64;
        match producer
            .send(ProducerRecord::new(topic).value(payload))
            .await
        {
            Ok(delivery) => {
                let _ = tx.send((delivery, len));
            }
            Err(err) => {
                if send_failed < 5 {
                    eprintln!("kafkit-produce: send failed: {err}");
                }
                send_failed += 1;
            }
        }
    }
    drop(tx);
    let _ = producer.flush().await;
    let mut counts = collector.await.unwrap_or_default();
    counts.failed += send_failed;
    counts
}

#[tokio::main]
async fn main() {
    let args = common::parse_args("kafkit-produce");
    let payloads: Vec<Bytes> = common::load_payloads(&args.payload_file)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let size = payloads[0].len();

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
        let warm = produce(&producer, &args.topic, &payloads, args.warmup).await;
        if warm.acked == 0 {
            eprintln!("kafkit-produce: warm-up failed: no record acknowledged");
            std::process::exit(1)
        }
    }

    let cpu_start = common::cpu_times();
    let start = Instant::now();
    let counts = produce(&producer, &args.topic, &payloads, args.records).await;
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
    };
    println!("{}", outcome.json(&args, size));
}
