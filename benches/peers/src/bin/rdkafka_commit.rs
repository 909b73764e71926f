//! rust-rdkafka (bundled librdkafka) peer of `kafkit-commit` for `benches/run-commit.sh`:
//! poll → process → commit throughput with a synchronous commit per poll batch.
//!
//! Same CLI and JSON as `kafkit-commit`; what is measured: `benches/src/commit_common.rs`.
//! rust-rdkafka hands out one message per `poll`, so a "poll" here is a batch like the Java
//! client's and kafkit's: messages taken until 500 (`max.poll.records`) or until the queue is
//! empty (the first `poll` waits up to 500 ms, the next ones not at all), then
//! `commit_consumer_state(Sync)`. Only `--mode throughput`: librdkafka does not send a commit
//! whose offsets have not changed since the last one, so the latency mode (a caught-up
//! consumer committing the same positions) measures nothing there.

#[path = "../../../src/commit_common.rs"]
mod commit;
#[path = "../../../src/produce_common.rs"]
mod common;

use std::time::{Duration, Instant};

use commit::{Mode, Outcome};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("rdkafka-commit: {what}: {err}");
    std::process::exit(1)
}

fn main() {
    let args = commit::parse_args("rdkafka-commit");
    if args.mode != Mode::Throughput {
        fail("mode", "only --mode throughput (see the module docs)");
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("group.protocol", &args.protocol)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.min.bytes", "1")
        .set("fetch.wait.max.ms", "500")
        .create()
        .unwrap_or_else(|e| fail("cannot create consumer", e));

    let mut outcome = Outcome::default();
    let deadline = Instant::now() + args.timeout;
    let mut start = None;
    consumer
        .subscribe(&[args.topic.as_str()])
        .unwrap_or_else(|e| fail("subscribe", e));
    while outcome.records < args.records {
        if Instant::now() > deadline {
            eprintln!(
                "rdkafka-commit: timed out with {} of {} records",
                outcome.records, args.records
            );
            break;
        }
        let mut taken = 0;
        let mut wait = Duration::from_millis(500);
        while taken < commit::MAX_POLL_RECORDS {
            match consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => {
                    taken += 1;
                    outcome.records += 1;
                    outcome.bytes += (m.key().map_or(0, <[u8]>::len)
                        + m.payload().map_or(0, <[u8]>::len))
                        as u64;
                }
                Some(Err(e)) => fail("poll", e),
            }
            wait = Duration::ZERO;
        }
        if taken == 0 {
            continue;
        }
        if start.is_none() {
            start = Some(Instant::now());
            outcome.untimed_records = outcome.records;
            outcome.cpu_start = common::cpu_times();
        }
        let t = Instant::now();
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .unwrap_or_else(|e| fail("commit", e));
        outcome.commits.push(t.elapsed());
    }
    outcome.wall = start.map_or(Duration::ZERO, |s| s.elapsed());
    outcome.cpu_end = common::cpu_times();
    drop(consumer);
    println!("{}", outcome.json("rdkafka", &args));
}
