//! kafkit soak: a steady produce and group consume for a long time, one member joining and
//! leaving the group on a schedule (two rebalances per cycle), while this process's resident
//! memory, open file descriptors, sockets and threads are sampled. Issue #15 item 3: memory
//! growth in long-running consumers is what rust-rdkafka users report most; this run shows
//! whether kafkit's stays flat. The driver is `benches/run-soak.sh`.
//!
//! CLI (all required, in this order):
//!   kafkit-soak BOOTSTRAP TOPIC SECONDS RATE SIZE CHURN_EVERY_S SAMPLE_EVERY_S PROTOCOL
//! PROTOCOL is `classic` or `consumer` (KIP-848).
//!
//! Output, one JSON object per line on stdout: `{"kind":"sample",…}` every SAMPLE_EVERY_S
//! seconds, one `{"kind":"closed",…}` sample after the producer and every member closed (what
//! is open then was leaked), then one `{"kind":"end",…}` with what was produced, acknowledged, consumed (each
//! record's index is in its value, so duplicates and gaps are counted exactly) and what is
//! missing: records acknowledged but never consumed. Exit status 1 when a record is missing
//! or a delivery failed.
//!
//! The process: a producer sending RATE records/s (keyed, spread over the topic's
//! partitions; `acks=all`, idempotent, default batching); two steady group members polling and
//! committing their positions after each poll (`commit_sync`); a third member that joins for
//! half of every CHURN_EVERY_S seconds and then closes (leaves). After SECONDS the producer
//! stops, the members read what is left (deadline 120 s) and close.

#[path = "../produce_common.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use kafkit::config::{AutoOffsetReset, ConsumerConfig, GroupProtocol, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{DeliveryFuture, Producer, ProducerRecord, Topic};

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("kafkit-soak: {what}: {err}");
    std::process::exit(2)
}

struct Args {
    bootstrap: String,
    topic: String,
    seconds: u64,
    rate: u64,
    size: usize,
    churn_every: Duration,
    sample_every: Duration,
    protocol: GroupProtocol,
}

fn parse_args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() != 8 {
        fail(
            "usage",
            "kafkit-soak BOOTSTRAP TOPIC SECONDS RATE SIZE CHURN_EVERY_S SAMPLE_EVERY_S classic|consumer",
        );
    }
    let num = |i: usize, name: &str| -> u64 {
        argv[i]
            .parse()
            .unwrap_or_else(|_| fail(name, format!("not a whole number: {}", argv[i])))
    };
    let protocol = match argv[7].as_str() {
        "classic" => GroupProtocol::Classic,
        "consumer" => GroupProtocol::Consumer,
        other => fail("protocol", format!("classic or consumer, not {other}")),
    };
    let args = Args {
        bootstrap: argv[0].clone(),
        topic: argv[1].clone(),
        seconds: num(2, "seconds"),
        rate: num(3, "rate"),
        size: usize::try_from(num(4, "size")).unwrap_or(usize::MAX),
        churn_every: Duration::from_secs(num(5, "churn every")),
        sample_every: Duration::from_secs(num(6, "sample every")),
        protocol,
    };
    if args.seconds == 0 || args.rate == 0 || args.size < 8 || args.sample_every.is_zero() {
        fail(
            "usage",
            "seconds, rate and sample time must be positive, size at least 8",
        );
    }
    if args.churn_every < Duration::from_secs(2) {
        fail("usage", "churn every must be at least 2 s");
    }
    args
}

/// One bit per record index: set when a member first sees it.
struct Seen {
    bits: Vec<AtomicU64>,
    unique: AtomicU64,
    duplicates: AtomicU64,
}

impl Seen {
    fn new(total: u64) -> Seen {
        let words = usize::try_from(total / 64 + 1).unwrap_or_else(|e| fail("size", e));
        // Written through once now (as the acknowledged set in `collect`), so that its pages
        // are resident before the first sample.
        let bits: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(1)).collect();
        for word in std::hint::black_box(&bits) {
            word.store(0, Ordering::Relaxed);
        }
        Seen {
            bits,
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        }
    }

    fn mark(&self, index: u64) {
        let Some(word) = usize::try_from(index / 64)
            .ok()
            .and_then(|w| self.bits.get(w))
        else {
            return;
        };
        let bit = 1u64 << (index % 64);
        if word.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            self.unique.fetch_add(1, Ordering::Relaxed);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn has(&self, index: u64) -> bool {
        let word = usize::try_from(index / 64)
            .ok()
            .and_then(|w| self.bits.get(w));
        word.is_some_and(|w| w.load(Ordering::Relaxed) & (1u64 << (index % 64)) != 0)
    }
}

/// What the process counts while it runs (read by the sampler).
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    poll_errors: AtomicU64,
    commit_errors: AtomicU64,
    joins: AtomicU64,
    leaves: AtomicU64,
}

fn consumer_config(args: &Args, group: &str) -> ConsumerConfig {
    ConsumerConfig::builder()
        .bootstrap_servers(args.bootstrap.split(','))
        .group_id(group)
        .group_protocol(args.protocol)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .build()
        .unwrap_or_else(|e| fail("consumer config", e))
}

/// One group member: polls and commits until `stop`, then closes (leaves the group).
async fn member(
    config: ConsumerConfig,
    topic: String,
    seen: Arc<Seen>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let consumer = Consumer::new(config)
        .await
        .unwrap_or_else(|e| fail("consumer", e));
    consumer
        .subscribe([topic])
        .await
        .unwrap_or_else(|e| fail("subscribe", e));
    counters.joins.fetch_add(1, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => {
                for r in &records {
                    if let Some(index) = r.value.as_deref().and_then(index_of) {
                        seen.mark(index);
                    }
                }
                if !records.is_empty() && consumer.commit_sync().await.is_err() {
                    counters.commit_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(err) => {
                if counters.poll_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("kafkit-soak: poll: {err}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if let Err(err) = consumer.close(Duration::from_secs(30)).await {
        eprintln!("kafkit-soak: close: {err}");
    }
    counters.leaves.fetch_add(1, Ordering::Relaxed);
}

fn index_of(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

/// This process's open file descriptors, the sockets among them, and its threads.
fn descriptors() -> (u64, u64, u64) {
    let (mut fds, mut sockets) = (0, 0);
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            fds += 1;
            if std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
            {
                sockets += 1;
            }
        }
    }
    let threads = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (fds, sockets, threads)
}

fn sample(started: Instant, counters: &Counters, seen: &Seen) -> String {
    let (rss, _) = common::memory();
    let (fds, sockets, threads) = descriptors();
    let (user, sys) = common::cpu_times();
    format!(
        "{{\"kind\":\"sample\",\"t_s\":{:.1},\"rss_mb\":{:.2},\"fds\":{fds},\"sockets\":{sockets},\
         \"threads\":{threads},\"cpu_s\":{:.2},\"sent\":{},\"acked\":{},\"failed\":{},\
         \"consumed\":{},\"duplicates\":{},\"joins\":{},\"leaves\":{},\"poll_errors\":{},\
         \"commit_errors\":{}}}",
        started.elapsed().as_secs_f64(),
        rss as f64 / (1024.0 * 1024.0),
        user + sys,
        counters.sent.load(Ordering::Relaxed),
        counters.acked.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        seen.unique.load(Ordering::Relaxed),
        seen.duplicates.load(Ordering::Relaxed),
        counters.joins.load(Ordering::Relaxed),
        counters.leaves.load(Ordering::Relaxed),
        counters.poll_errors.load(Ordering::Relaxed),
        counters.commit_errors.load(Ordering::Relaxed),
    )
}

/// Awaits every delivery; returns the indices acknowledged (one bit each).
async fn collect(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(u64, DeliveryFuture)>,
    counters: Arc<Counters>,
    total: u64,
) -> Vec<u64> {
    let words = usize::try_from(total / 64 + 1).unwrap_or_else(|e| fail("size", e));
    // Written through once now: a zeroed allocation's pages become resident only as records
    // are acknowledged, which would show as growth of the client.
    let mut acked = vec![1u64; words];
    std::hint::black_box(&mut acked);
    acked.fill(0);
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            Some((index, outcome)) = pending.next(), if !pending.is_empty() => match outcome {
                Ok(_) => {
                    counters.acked.fetch_add(1, Ordering::Relaxed);
                    if let Some(w) = usize::try_from(index / 64).ok().and_then(|w| acked.get_mut(w)) {
                        *w |= 1u64 << (index % 64);
                    }
                }
                Err(err) => {
                    if counters.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("kafkit-soak: delivery failed: {err}");
                    }
                }
            },
            next = rx.recv(), if open => match next {
                Some((index, delivery)) => pending.push(async move { (index, delivery.await) }),
                None => open = false,
            },
            else => break,
        }
    }
    acked
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let total = args.seconds.saturating_mul(args.rate);
    let seen = Arc::new(Seen::new(total));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let group = format!("{}-group", args.topic);

    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("acks", "all"),
        ("enable.idempotence", "true"),
    ])
    .unwrap_or_else(|e| fail("producer config", e));
    let producer = Producer::new(config)
        .await
        .unwrap_or_else(|e| fail("producer", e));

    let stop_members = Arc::new(AtomicBool::new(false));
    let mut members = Vec::new();
    for _ in 0..2 {
        members.push(tokio::spawn(member(
            consumer_config(&args, &group),
            args.topic.clone(),
            seen.clone(),
            counters.clone(),
            stop_members.clone(),
        )));
    }

    // The churning member: joins for half of each cycle, then leaves.
    let producing = Arc::new(AtomicBool::new(true));
    let churn = {
        let (config, topic) = (consumer_config(&args, &group), args.topic.clone());
        let (seen, counters, producing) = (seen.clone(), counters.clone(), producing.clone());
        let every = args.churn_every;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every / 2).await;
                if !producing.load(Ordering::Relaxed) {
                    break;
                }
                let stop = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(member(
                    config.clone(),
                    topic.clone(),
                    seen.clone(),
                    counters.clone(),
                    stop.clone(),
                ));
                tokio::time::sleep(every / 2).await;
                stop.store(true, Ordering::Relaxed);
                let _ = task.await;
            }
        })
    };

    let sampler = {
        let (counters, seen, every) = (counters.clone(), seen.clone(), args.sample_every);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                println!("{}", sample(started, &counters, &seen));
            }
        })
    };

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx, counters.clone(), total));
    let topic = Topic::from(args.topic.as_str());
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let produce_start = Instant::now();
    let mut sent = 0u64;
    let mut value = vec![b'x'; args.size];
    while sent < total {
        tick.tick().await;
        let due = (produce_start.elapsed().as_secs_f64() * args.rate as f64) as u64;
        while sent < due.min(total) {
            value[..8].copy_from_slice(&sent.to_be_bytes());
            let record = ProducerRecord::new(topic.clone())
                .key(format!("k{}", sent % 1_000))
                .value(value.clone());
            match producer.send(record).await {
                Ok(delivery) => {
                    let _ = tx.send((sent, delivery));
                }
                Err(err) => fail("send", err),
            }
            sent += 1;
            counters.sent.store(sent, Ordering::Relaxed);
        }
    }
    drop(tx);
    producing.store(false, Ordering::Relaxed);
    let acked = collector.await.unwrap_or_else(|e| fail("collector", e));
    let acked_count = counters.acked.load(Ordering::Relaxed);

    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.unique.load(Ordering::Relaxed) < acked_count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = churn.await;
    stop_members.store(true, Ordering::Relaxed);
    for m in members {
        let _ = m.await;
    }
    let _ = producer.close(Duration::from_secs(30)).await;
    sampler.abort();
    // Everything closed: what is still open now was leaked.
    println!(
        "{}",
        sample(started, &counters, &seen).replacen("\"sample\"", "\"closed\"", 1)
    );

    let missing = (0..total)
        .filter(|&i| {
            let acked_bit = usize::try_from(i / 64)
                .ok()
                .and_then(|w| acked.get(w))
                .is_some_and(|w| w & (1u64 << (i % 64)) != 0);
            acked_bit && !seen.has(i)
        })
        .count();
    let failed = counters.failed.load(Ordering::Relaxed);
    println!(
        "{{\"kind\":\"end\",\"t_s\":{:.1},\"sent\":{sent},\"acked\":{acked_count},\"failed\":{failed},\
         \"consumed\":{},\"duplicates\":{},\"missing\":{missing},\"joins\":{},\"leaves\":{}}}",
        started.elapsed().as_secs_f64(),
        seen.unique.load(Ordering::Relaxed),
        seen.duplicates.load(Ordering::Relaxed),
        counters.joins.load(Ordering::Relaxed),
        counters.leaves.load(Ordering::Relaxed),
    );
    if missing > 0 || failed > 0 {
        std::process::exit(1);
    }
}
