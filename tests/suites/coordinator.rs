//! Group coordinator traffic never waits behind a Fetch long-poll, against the shared broker.
//!
//! The broker answers the requests of one connection one at a time: a Fetch that long-polls
//! an idle topic for `fetch.max.wait.ms` holds up whatever is queued behind it on its socket.
//! With a 30 s long-poll, commits, offset fetches, heartbeats and rebalances must still take
//! seconds at most, and closing a consumer must not wait for the long-poll to end. Run for
//! both `group.protocol`s where a group is involved ([`both!`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafkit::config::ConsumerConfig;
use kafkit::consumer::Consumer;
use kafkit::TopicPartition;
use kafkit_tests::{kafka, unique_name};

const PARTITIONS: i32 = 2;
const RECORDS_PER_PARTITION: usize = 5;
/// The Fetch long-poll of the slow tests.
const LONG_POLL: &str = "30000";
/// What "does not wait behind the long-poll" is bounded by (the long-poll is 30 s).
const BOUND: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Classic,
    Consumer,
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod classic {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Protocol::Classic).await;
                }
            )*
        }
        mod consumer {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Protocol::Consumer).await;
                }
            )*
        }
    };
}

both!(
    a_commit_does_not_wait_for_the_fetch_long_poll,
    a_rebalance_completes_during_the_fetch_long_poll,
    commits_after_polls_with_default_settings_do_not_wait_for_fetches,
    a_subscribed_consumer_closes_without_waiting_for_the_long_poll,
);

/// A fresh topic with [`RECORDS_PER_PARTITION`] records on each partition.
async fn filled_topic(prefix: &str) -> String {
    let bootstrap = &kafka().bootstrap;
    let topic = kafkit_tests::fill::topic(bootstrap, prefix, PARTITIONS).await;
    kafkit_tests::fill::produce_tagged(bootstrap, &topic, PARTITIONS, "r", RECORDS_PER_PARTITION)
        .await;
    topic
}

async fn consumer(protocol: Protocol, group: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut props = vec![
        ("bootstrap.servers", kafka().bootstrap.as_str()),
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
    ];
    if protocol == Protocol::Consumer {
        props.push(("group.protocol", "consumer"));
    }
    props.extend_from_slice(extra);
    Consumer::new(ConsumerConfig::from_properties(props).unwrap())
        .await
        .unwrap()
}

/// Polls until every record of the topic was read, then a little longer so that the next
/// Fetch is in flight on the (now idle) topic: a long-poll of `fetch.max.wait.ms`.
async fn read_all_then_idle(consumer: &Consumer) {
    let want = PARTITIONS as usize * RECORDS_PER_PARTITION;
    let mut seen = BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(90);
    while seen.len() < want {
        assert!(
            Instant::now() < until,
            "read {} of {want} records",
            seen.len()
        );
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            seen.insert((r.partition, r.offset));
        }
    }
    // The fetcher sends the next Fetch as soon as the records are taken; give it time.
    let records = consumer.poll(Duration::from_secs(1)).await.unwrap();
    assert!(records.is_empty(), "nothing more was written");
}

fn long_poll_settings() -> Vec<(&'static str, &'static str)> {
    vec![("fetch.max.wait.ms", LONG_POLL)]
}

async fn a_commit_does_not_wait_for_the_fetch_long_poll(protocol: Protocol) {
    let topic = filled_topic("coord-commit").await;
    let group = unique_name("g-coord-commit");
    let c = consumer(protocol, &group, &long_poll_settings()).await;
    c.subscribe([topic.clone()]).await.unwrap();
    read_all_then_idle(&c).await;
    for round in 0..3 {
        let started = Instant::now();
        c.commit_sync().await.unwrap();
        let took = started.elapsed();
        assert!(
            took < BOUND,
            "commit {round} took {took:?} with a 30 s Fetch long-poll in flight"
        );
    }
    let started = Instant::now();
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let committed = c.committed(&partitions).await.unwrap();
    let took = started.elapsed();
    assert!(took < BOUND, "offset fetch took {took:?}");
    for tp in &partitions {
        assert_eq!(
            committed[tp].as_ref().map(|o| o.offset),
            Some(RECORDS_PER_PARTITION as i64),
            "{tp:?}"
        );
    }
    let _ = c.close(Duration::from_secs(10)).await;
}

/// A second member joins while the first long-polls: the rebalance needs the first member's
/// heartbeat (it learns of the rebalance there) and its rejoin (classic) or acknowledgement
/// (KIP-848), so it completes only if heartbeats do not wait behind the Fetch.
async fn a_rebalance_completes_during_the_fetch_long_poll(protocol: Protocol) {
    let topic = filled_topic("coord-rebalance").await;
    let group = unique_name("g-coord-rebalance");
    let mut settings = long_poll_settings();
    if protocol == Protocol::Classic {
        settings.push(("heartbeat.interval.ms", "1000"));
        // Shorter than the long-poll: a member whose heartbeats wait behind the Fetch is
        // expired by the coordinator before its Fetch returns.
        settings.push(("session.timeout.ms", "10000"));
    }
    let first = consumer(protocol, &group, &settings).await;
    first.subscribe([topic.clone()]).await.unwrap();
    read_all_then_idle(&first).await;
    let generation = first.group_generation().expect("joined");
    // Longer than the classic session timeout, with the Fetch long-polling all along: the
    // member stays in the same generation (its heartbeats reach the coordinator).
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        assert!(first
            .poll(Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        first.group_generation().map(|g| g.generation_id),
        Some(generation.generation_id),
        "the member was expired or fenced while its Fetch long-polled"
    );
    assert_eq!(first.assignment().len(), PARTITIONS as usize);

    let second = consumer(protocol, &group, &settings).await;
    second.subscribe([topic.clone()]).await.unwrap();
    let started = Instant::now();
    // Both well under the 30 s long-poll; KIP-848 moves partitions at heartbeats (5 s
    // apart): a few of them.
    let bound = match protocol {
        Protocol::Classic => Duration::from_secs(15),
        Protocol::Consumer => Duration::from_secs(25),
    };
    loop {
        let (a, b) = tokio::join!(
            first.poll(Duration::from_millis(200)),
            second.poll(Duration::from_millis(200))
        );
        a.unwrap();
        b.unwrap();
        if first.assignment().len() == 1 && second.assignment().len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < bound,
            "no split {} + {} after {:?} (Fetch long-poll 30 s)",
            first.assignment().len(),
            second.assignment().len(),
            started.elapsed()
        );
    }
    let _ = first.close(Duration::from_secs(10)).await;
    let _ = second.close(Duration::from_secs(10)).await;
}

/// The default `fetch.max.wait.ms` (500 ms): 20 commits after polls of an idle topic take
/// far less than 20 × 500 ms (each waited for the Fetch in flight before the fix).
async fn commits_after_polls_with_default_settings_do_not_wait_for_fetches(protocol: Protocol) {
    let topic = filled_topic("coord-default").await;
    let group = unique_name("g-coord-default");
    let c = consumer(protocol, &group, &[]).await;
    c.subscribe([topic.clone()]).await.unwrap();
    read_all_then_idle(&c).await;
    let mut total = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        c.poll(Duration::from_millis(50)).await.unwrap();
        let started = Instant::now();
        c.commit_sync().await.unwrap();
        let took = started.elapsed();
        total += took;
        slowest = slowest.max(took);
    }
    assert!(
        total < BOUND,
        "20 commits took {total:?} (slowest {slowest:?}) with fetch.max.wait.ms=500"
    );
    let _ = c.close(Duration::from_secs(10)).await;
}

async fn a_subscribed_consumer_closes_without_waiting_for_the_long_poll(protocol: Protocol) {
    let topic = filled_topic("coord-close-sub").await;
    let group = unique_name("g-coord-close-sub");
    let c = consumer(protocol, &group, &long_poll_settings()).await;
    c.subscribe([topic.clone()]).await.unwrap();
    read_all_then_idle(&c).await;
    let started = Instant::now();
    let _ = c.close(Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert!(took < BOUND, "close took {took:?} with a 30 s long-poll");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_consumer_closes_without_waiting_for_the_long_poll() {
    let topic = filled_topic("coord-close").await;
    let props = vec![
        ("bootstrap.servers", kafka().bootstrap.as_str()),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", LONG_POLL),
    ];
    let c = Consumer::new(ConsumerConfig::from_properties(props).unwrap())
        .await
        .unwrap();
    c.assign((0..PARTITIONS).map(|p| TopicPartition::new(topic.as_str(), p)))
        .unwrap();
    read_all_then_idle(&c).await;
    let started = Instant::now();
    let _ = c.close(Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert!(took < BOUND, "close took {took:?} with a 30 s long-poll");
    assert!(c.poll(Duration::from_millis(10)).await.is_err(), "closed");
}
