//! kafkit latency at a fixed rate, the kafkit side of `benches/run-latency.sh`.
//!
//! Same CLI and JSON as `rdkafka-latency` (benches/peers); what is measured:
//! `benches/src/latency_common.rs`. The sender is a plain thread that sleeps until each
//! record's due time (`std::thread::sleep`, as the rdkafka peer's, so both are paced alike;
//! tokio's timer has a 1 ms resolution) and calls `Producer::send` through the runtime's
//! handle. Delivery futures go to one collector task, which notes the time each completes; the
//! consumer is a second task calling `Consumer::poll`.

#[path = "../produce_common.rs"]
mod common;
#[path = "../latency_common.rs"]
mod lat;

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use kafkit::admin::Admin;
use kafkit::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{DeliveryFuture, Producer, ProducerRecord, Topic};
use kafkit::TopicPartition;

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("kafkit-latency: {what}: {err}");
    std::process::exit(1)
}

/// What the collector saw: acknowledged, failed, and the ack latencies of recorded records.
struct Acks {
    acked: u64,
    failed: u64,
    samples: lat::Samples,
    last_us: u64,
}

async fn collect(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(u64, u64, DeliveryFuture)>,
    warmup: u64,
    expected: u64,
) -> Acks {
    let mut acks = Acks {
        acked: 0,
        failed: 0,
        samples: lat::Samples::with_capacity(expected),
        last_us: 0,
    };
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            Some((index, due, outcome, at)) = pending.next(), if !pending.is_empty() => {
                match outcome {
                    Ok(_) => {
                        acks.acked += 1;
                        if index >= warmup {
                            acks.samples.push(u64::saturating_sub(at, due));
                        }
                    }
                    Err(err) => {
                        if acks.failed < 5 {
                            eprintln!("kafkit-latency: delivery failed: {err}");
                        }
                        acks.failed += 1;
                    }
                }
                acks.last_us = acks.last_us.max(at);
            }
            next = rx.recv(), if open => match next {
                Some((index, due, delivery)) => pending.push(async move {
                    let outcome = delivery.await;
                    (index, due, outcome, lat::now_us())
                }),
                None => open = false,
            },
            else => break,
        }
    }
    acks
}

#[tokio::main]
async fn main() {
    let args = lat::parse_args("kafkit-latency");
    let linger = args.linger_ms.to_string();
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", linger.as_str()),
        ("batch.size", "16384"),
        ("compression.type", "none"),
        ("buffer.memory", "33554432"),
    ])
    .unwrap_or_else(|e| fail("bad config", e));
    let producer = Producer::new(config)
        .await
        .unwrap_or_else(|e| fail("cannot create producer", e));

    let admin = Admin::connect(&args.bootstrap)
        .await
        .unwrap_or_else(|e| fail("connect", e));
    let info = admin
        .describe_topics(&[args.topic.as_str()])
        .await
        .unwrap_or_else(|e| fail("describe topic", e));
    let partitions: Vec<TopicPartition> = info[0]
        .partitions
        .iter()
        .map(|p| TopicPartition::new(args.topic.clone(), p.partition))
        .collect();
    let consumer_config = ConsumerConfig::builder()
        .bootstrap_servers(args.bootstrap.split(','))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .fetch_min_bytes(1)
        .fetch_max_wait(Duration::from_millis(500))
        .build()
        .unwrap_or_else(|e| fail("consumer config", e));
    let consumer = Consumer::with_cluster(consumer_config, admin.cluster().clone());
    consumer
        .assign(partitions.iter().cloned())
        .unwrap_or_else(|e| fail("assign", e));
    consumer
        .seek_to_beginning(&partitions)
        .unwrap_or_else(|e| fail("seek", e));

    let total = args.total();
    let warmup = args.warmup_records();
    let recorded = total - warmup;
    let deadline =
        Instant::now() + args.timeout + Duration::from_secs_f64(args.seconds + args.warmup);
    let consuming = tokio::spawn(async move {
        let mut samples = lat::Samples::with_capacity(recorded);
        let mut consumed = 0u64;
        while consumed < total && Instant::now() < deadline {
            let batch = consumer
                .poll(Duration::from_millis(100))
                .await
                .unwrap_or_else(|e| fail("poll", e));
            let now = lat::now_us();
            for r in &batch {
                if let Some((index, due)) = r.value.as_deref().and_then(lat::parse) {
                    consumed += 1;
                    if index >= warmup {
                        samples.push(now.saturating_sub(due));
                    }
                }
            }
        }
        let _ = consumer.close(Duration::from_secs(5)).await;
        (consumed, samples)
    });

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx, warmup, recorded));
    let mut outcome = lat::Outcome::new(&args);
    outcome.cpu_start = common::cpu_times();
    let handle = tokio::runtime::Handle::current();
    let sender = {
        let producer = producer.clone();
        let args = args.clone();
        std::thread::spawn(move || {
            let topic = Topic::from(args.topic.as_str());
            let start = Instant::now() + Duration::from_millis(10);
            let start_us = lat::now_us() + 10_000;
            let mut sent = 0u64;
            for i in 0..total {
                let due = args.due(i);
                if let Some(wait) = (start + due).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let due_us = start_us + due.as_micros() as u64;
                let value = lat::payload(i, due_us, args.size);
                match handle
                    .block_on(producer.send(ProducerRecord::new(topic.clone()).value(value)))
                {
                    Ok(delivery) => {
                        sent += 1;
                        let _ = tx.send((i, due_us, delivery));
                    }
                    Err(err) => fail("send", err),
                }
            }
            (sent, start_us)
        })
    };
    let (sent, start_us) = tokio::task::spawn_blocking(move || sender.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| fail("sender", "thread panicked"));
    let acks = collector.await.unwrap_or_else(|e| fail("collector", e));
    let (consumed, e2e) = consuming.await.unwrap_or_else(|e| fail("consumer", e));
    outcome.cpu_end = common::cpu_times();
    outcome.sent = sent;
    outcome.acked = acks.acked;
    outcome.failed = acks.failed;
    outcome.ack = acks.samples;
    outcome.consumed = consumed;
    outcome.e2e = e2e;
    outcome.wall = Duration::from_micros(acks.last_us.saturating_sub(start_us));
    let _ = producer.close(Duration::from_secs(30)).await;
    println!("{}", outcome.json("kafkit", &args));
}
