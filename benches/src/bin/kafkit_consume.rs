//! kafkit consumer throughput, the kafkit side of `benches/run-consumer.sh`.
//!
//! Same CLI and JSON as `rdkafka-consume` (benches/peers); settings in
//! `benches/src/consume_common.rs`. Reads with `Consumer::poll` (up to `max.poll.records`
//! = 500 per call, the Java default) and counts key and value lengths.

#[path = "../produce_common.rs"]
mod common;
#[path = "../consume_common.rs"]
mod consume;

use std::time::{Duration, Instant};

use kafkit::admin::Admin;
use kafkit::config::{AutoOffsetReset, ConsumerConfig};
use kafkit::consumer::Consumer;
use kafkit::TopicPartition;

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("kafkit-consume: {what}: {err}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let args = consume::parse_args("kafkit-consume");
    let rss_base = common::memory_base();
    let config = ConsumerConfig::builder()
        .bootstrap_servers(args.bootstrap.split(','))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .fetch_min_bytes(1)
        .fetch_max_wait(Duration::from_millis(500))
        .fetch_max_bytes(52_428_800)
        .max_partition_fetch_bytes(1_048_576)
        .check_crcs(true)
        .build()
        .unwrap_or_else(|e| fail("config", e));
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
    let consumer = Consumer::with_cluster(config, admin.cluster().clone());

    let mut tally = consume::Tally::default();
    let deadline = Instant::now() + args.timeout;
    let cpu_start = common::cpu_times();
    let start = Instant::now();
    consumer
        .assign(partitions.iter().cloned())
        .unwrap_or_else(|e| fail("assign", e));
    consumer
        .seek_to_beginning(&partitions)
        .unwrap_or_else(|e| fail("seek", e));
    while tally.records < args.records {
        if Instant::now() > deadline {
            eprintln!(
                "kafkit-consume: timed out after {:?} with {} of {} records",
                args.timeout, tally.records, args.records
            );
            break;
        }
        let batch = consumer
            .poll(Duration::from_millis(500))
            .await
            .unwrap_or_else(|e| fail("poll", e));
        for r in &batch {
            tally.add(
                r.partition,
                r.offset,
                r.key.as_ref().map_or(0, |k| k.len()),
                r.value.as_ref().map_or(0, |v| v.len()),
            );
        }
    }
    let wall = start.elapsed();
    let cpu_end = common::cpu_times();
    consumer
        .close(Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| fail("close", e));
    let outcome = consume::Outcome {
        client: "kafkit",
        tally,
        wall,
        cpu_start,
        cpu_end,
        rss_base,
    };
    println!("{}", outcome.json(&args));
}
