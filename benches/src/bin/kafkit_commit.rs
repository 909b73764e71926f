//! kafkit commit latency and poll → process → commit throughput, the kafkit side of
//! `benches/run-commit.sh`. Same CLI and JSON as `rdkafka-commit` (benches/peers) and
//! `benches/java/CommitBench.java`; what is measured: `benches/src/commit_common.rs`.

#[path = "../commit_common.rs"]
mod commit;
#[path = "../produce_common.rs"]
mod common;

use std::time::{Duration, Instant};

use commit::{Args, Mode, Outcome};
use kafkit::config::ConsumerConfig;
use kafkit::consumer::Consumer;

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("kafkit-commit: {what}: {err}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let args = commit::parse_args("kafkit-commit");
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("group.id", args.group.as_str()),
        ("group.protocol", args.protocol.as_str()),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("fetch.min.bytes", "1"),
        ("fetch.max.wait.ms", "500"),
        ("max.poll.records", "500"),
    ])
    .unwrap_or_else(|e| fail("config", e));
    let consumer = Consumer::new(config)
        .await
        .unwrap_or_else(|e| fail("connect", e));
    let outcome = match args.mode {
        Mode::Latency => latency(&consumer, &args).await,
        Mode::Throughput => throughput(&consumer, &args).await,
    };
    consumer
        .close(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| fail("close", e));
    println!("{}", outcome.json("kafkit", &args));
}

async fn poll(consumer: &Consumer, timeout: Duration, outcome: &mut Outcome) {
    let batch = consumer
        .poll(timeout)
        .await
        .unwrap_or_else(|e| fail("poll", e));
    for r in &batch {
        outcome.records += 1;
        outcome.bytes += (r.key.as_ref().map_or(0, |k| k.len())
            + r.value.as_ref().map_or(0, |v| v.len())) as u64;
    }
}

/// Subscribes to the topic; a fresh outcome and the run's deadline.
async fn subscribe(consumer: &Consumer, args: &Args) -> (Outcome, Instant) {
    let deadline = Instant::now() + args.timeout;
    consumer
        .subscribe([args.topic.clone()])
        .await
        .unwrap_or_else(|e| fail("subscribe", e));
    (Outcome::default(), deadline)
}

/// One `commit_sync` of the consumed positions, its duration recorded.
async fn timed_commit(consumer: &Consumer, outcome: &mut Outcome) {
    let t = Instant::now();
    consumer
        .commit_sync()
        .await
        .unwrap_or_else(|e| fail("commit", e));
    outcome.commits.push(t.elapsed());
}

async fn latency(consumer: &Consumer, args: &Args) -> Outcome {
    let (mut outcome, deadline) = subscribe(consumer, args).await;
    // Joined, positions known, then the warm-up rounds.
    loop {
        let assigned = consumer.assignment();
        if !assigned.is_empty()
            && assigned
                .iter()
                .all(|tp| consumer.current_position(tp).is_some())
        {
            break;
        }
        if Instant::now() > deadline {
            fail("join", "no assignment before the timeout");
        }
        poll(consumer, commit::LATENCY_POLL, &mut outcome).await;
    }
    for _ in 0..commit::WARMUP_COMMITS {
        poll(consumer, commit::LATENCY_POLL, &mut outcome).await;
        consumer
            .commit_sync()
            .await
            .unwrap_or_else(|e| fail("commit", e));
    }
    outcome.cpu_start = common::cpu_times();
    let start = Instant::now();
    for _ in 0..args.commits {
        if Instant::now() > deadline {
            fail("latency", "timed out");
        }
        poll(consumer, commit::LATENCY_POLL, &mut outcome).await;
        timed_commit(consumer, &mut outcome).await;
    }
    outcome.wall = start.elapsed();
    outcome.cpu_end = common::cpu_times();
    outcome
}

async fn throughput(consumer: &Consumer, args: &Args) -> Outcome {
    let (mut outcome, deadline) = subscribe(consumer, args).await;
    let mut start = None;
    while outcome.records < args.records {
        if Instant::now() > deadline {
            eprintln!(
                "kafkit-commit: timed out with {} of {} records",
                outcome.records, args.records
            );
            break;
        }
        let before = outcome.records;
        poll(consumer, Duration::from_millis(500), &mut outcome).await;
        if outcome.records == before {
            continue;
        }
        if start.is_none() {
            start = Some(Instant::now());
            outcome.untimed_records = outcome.records;
            outcome.cpu_start = common::cpu_times();
        }
        timed_commit(consumer, &mut outcome).await;
    }
    outcome.wall = start.map_or(Duration::ZERO, |s| s.elapsed());
    outcome.cpu_end = common::cpu_times();
    outcome
}
