//! rust-rdkafka (bundled librdkafka) consumer throughput peer for `benches/run-consumer.sh`.
//!
//! Same CLI and JSON as `kafkit-consume`; the same settings (see
//! `benches/src/consume_common.rs`), spelled out because librdkafka's defaults differ
//! (check.crcs is off by default there). No group membership: the partitions are assigned by
//! hand from `Offset::Beginning` (a group id is set because librdkafka's consumer wants one;
//! nothing joins or commits). librdkafka prefetches into its own queues
//! (`queued.max.messages.kbytes`, default 64 MiB) as it always does.

#[path = "../../../src/produce_common.rs"]
mod common;
#[path = "../../../src/consume_common.rs"]
mod consume;

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("rdkafka-consume: {what}: {err}");
    std::process::exit(1)
}

fn main() {
    let args = consume::parse_args("rdkafka-consume");
    let rss_base = common::memory_base();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set(
            "group.id",
            format!("rdkafka-consume-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.min.bytes", "1")
        .set("fetch.wait.max.ms", "500")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "1048576")
        .set("check.crcs", "true");
    // For experiments only: KAFKIT_BENCH_RDKAFKA_CONFIG="key=value,key=value" overrides.
    if let Ok(extra) = std::env::var("KAFKIT_BENCH_RDKAFKA_CONFIG") {
        for kv in extra.split(',').filter(|s| !s.is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                config.set(k.trim(), v.trim());
            }
        }
    }
    let consumer: BaseConsumer = config
        .create()
        .unwrap_or_else(|e| fail("cannot create consumer", e));

    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(30))
        .unwrap_or_else(|e| fail("metadata", e));
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == args.topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        fail(
            "metadata",
            format!("topic {} has no partitions", args.topic),
        );
    }
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(&args.topic, p, Offset::Beginning)
            .unwrap_or_else(|e| fail("partition list", e));
    }

    let mut tally = consume::Tally::default();
    let deadline = Instant::now() + args.timeout;
    let cpu_start = common::cpu_times();
    let start = Instant::now();
    consumer.assign(&tpl).unwrap_or_else(|e| fail("assign", e));
    while tally.records < args.records {
        if Instant::now() > deadline {
            eprintln!(
                "rdkafka-consume: timed out after {:?} with {} of {} records",
                args.timeout, tally.records, args.records
            );
            break;
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(m)) => tally.add(
                m.partition(),
                m.offset(),
                m.key().map_or(0, <[u8]>::len),
                m.payload().map_or(0, <[u8]>::len),
            ),
            Some(Err(e)) => fail("poll", e),
        }
    }
    let wall = start.elapsed();
    let cpu_end = common::cpu_times();
    let outcome = consume::Outcome {
        client: "rdkafka",
        tally,
        wall,
        cpu_start,
        cpu_end,
        rss_base,
    };
    println!("{}", outcome.json(&args));
}
