//! Leaving a classic group, with the **default** `session.timeout.ms` (45 s), so a member that
//! does not really leave shows: a dynamic member's `close` hands its partitions to the others
//! within seconds (eager range and cooperative-sticky); a static member's `close` does not
//! leave (as Java's: its partitions wait for its `group.instance.id`), and a restart with the
//! same instance id gets them back without a rebalance.
//!
//! And KIP-848 against a broker that lacks it: `group.protocol=consumer` on Kafka 3.9.1 (its
//! default settings) fails once, typed, with a message naming the broker settings.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafkit::config::ConsumerConfig;
use kafkit::consumer::{ConsumeError, Consumer};
use kafkit::TopicPartition;
use kafkit_tests::{kafka, unique_name};

const PARTITIONS: i32 = 6;
/// The default session timeout the members run with (not set in their configs).
const SESSION: Duration = Duration::from_secs(45);

async fn consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut props = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
    ];
    props.extend_from_slice(extra);
    Consumer::new(ConsumerConfig::from_properties(props).expect("valid config"))
        .await
        .expect("consumer")
}

fn owned(c: &Consumer) -> BTreeSet<TopicPartition> {
    c.assignment().into_iter().collect()
}

/// Polls every consumer in turn until `done` holds for their assignments, or `within` passes.
async fn poll_until(
    consumers: &[&Consumer],
    within: Duration,
    mut done: impl FnMut(&[BTreeSet<TopicPartition>]) -> bool,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        for c in consumers {
            match c.poll(Duration::from_millis(100)).await {
                Ok(_) | Err(ConsumeError::Timeout { .. }) => {}
                Err(e) => panic!("poll failed: {e}"),
            }
        }
        let assignments: Vec<_> = consumers.iter().map(|c| owned(c)).collect();
        if done(&assignments) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// Every partition owned by exactly one of them, and each owning some.
fn exact_cover(assignments: &[BTreeSet<TopicPartition>]) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<_> = assignments.iter().flatten().collect();
    total == PARTITIONS as usize
        && union.len() == PARTITIONS as usize
        && assignments.iter().all(|a| !a.is_empty())
}

async fn a_closing_member_hands_its_partitions_over(strategy: &str) {
    let bootstrap = kafka().bootstrap.as_str();
    let topic = kafkit_tests::fill::topic(bootstrap, "leave", PARTITIONS).await;
    let group = unique_name("leave-group");
    let extra = [("partition.assignment.strategy", strategy)];
    let a = consumer(bootstrap, &group, &extra).await;
    let b = consumer(bootstrap, &group, &extra).await;
    a.subscribe([topic.as_str()]).await.expect("subscribe");
    b.subscribe([topic.as_str()]).await.expect("subscribe");
    assert!(
        poll_until(&[&a, &b], Duration::from_secs(90), exact_cover).await,
        "two members never shared the topic: {:?} / {:?}",
        owned(&a),
        owned(&b)
    );

    let closed = Instant::now();
    b.close(Duration::from_secs(10)).await.expect("close");
    let moved = poll_until(&[&a], Duration::from_secs(30), |x| {
        x[0].len() == PARTITIONS as usize
    })
    .await;
    let took = closed.elapsed();
    assert!(moved, "the remaining member never got every partition");
    assert!(
        took < Duration::from_secs(15),
        "partitions moved after {took:?}: the closed member did not leave (session {SESSION:?})"
    );
    a.close(Duration::from_secs(10)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_eager_member_hands_its_partitions_over_at_once() {
    a_closing_member_hands_its_partitions_over("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_cooperative_member_hands_its_partitions_over_at_once() {
    a_closing_member_hands_its_partitions_over("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_static_member_keeps_its_partitions_for_its_instance_id() {
    let bootstrap = kafka().bootstrap.as_str();
    let topic = kafkit_tests::fill::topic(bootstrap, "leave-static", PARTITIONS).await;
    let group = unique_name("leave-static-group");
    let instance = unique_name("instance");
    let dynamic = consumer(bootstrap, &group, &[]).await;
    let statik = consumer(
        bootstrap,
        &group,
        &[("group.instance.id", instance.as_str())],
    )
    .await;
    dynamic
        .subscribe([topic.as_str()])
        .await
        .expect("subscribe");
    statik.subscribe([topic.as_str()]).await.expect("subscribe");
    assert!(
        poll_until(&[&dynamic, &statik], Duration::from_secs(90), exact_cover).await,
        "two members never shared the topic"
    );
    let kept = owned(&dynamic);
    let static_owned = owned(&statik);
    let generation = dynamic.group_generation().expect("joined");

    statik.close(Duration::from_secs(10)).await.expect("close");
    // The static member did not leave: the group waits for its instance id (up to the
    // session timeout), so the other member's assignment does not change meanwhile.
    let changed = poll_until(&[&dynamic], Duration::from_secs(8), |x| x[0] != kept).await;
    assert!(
        !changed,
        "the static member's partitions moved to the dynamic member: {:?}",
        owned(&dynamic)
    );

    // Back with the same instance id: the same partitions, without a rebalance.
    let back = consumer(
        bootstrap,
        &group,
        &[("group.instance.id", instance.as_str())],
    )
    .await;
    back.subscribe([topic.as_str()]).await.expect("subscribe");
    let rejoined = Instant::now();
    assert!(
        poll_until(&[&dynamic, &back], Duration::from_secs(30), |x| x[1]
            == static_owned)
        .await,
        "the restarted static member did not get its partitions back: {:?}",
        owned(&back)
    );
    assert!(rejoined.elapsed() < SESSION);
    assert_eq!(
        owned(&dynamic),
        kept,
        "the dynamic member's partitions moved"
    );
    assert_eq!(
        dynamic.group_generation().map(|g| g.generation_id),
        Some(generation.generation_id),
        "a static rejoin must not start a rebalance"
    );
    back.close(Duration::from_secs(10)).await.expect("close");
    dynamic.close(Duration::from_secs(10)).await.expect("close");
}

/// The Kafka 3.9 broker for the KIP-848 test: `KAFKIT_KAFKA39_BOOTSTRAP` when set (one
/// already running), else one of this process's own.
fn kafka_39() -> kafkit_tests::Kafka {
    match std::env::var("KAFKIT_KAFKA39_BOOTSTRAP") {
        Ok(bootstrap) if !bootstrap.trim().is_empty() => kafkit_tests::Kafka {
            bootstrap: bootstrap.trim().to_owned(),
            state_dir: None,
        },
        _ => kafkit_tests::start_broker_version("3.9.1", 1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_protocol_on_a_broker_without_it_fails_once_saying_what_to_do() {
    let broker = kafka_39();
    let topic = kafkit_tests::fill::topic(&broker.bootstrap, "kip848-39", 2).await;
    let group = unique_name("kip848-39-group");
    let c = consumer(&broker.bootstrap, &group, &[("group.protocol", "consumer")]).await;
    let started = Instant::now();
    let first = match c.subscribe([topic.as_str()]).await {
        Err(e) => e,
        Ok(()) => loop {
            match c.poll(Duration::from_millis(200)).await {
                Err(ConsumeError::Timeout { .. }) | Ok(_) => {}
                Err(e) => break e,
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no error within 30 s from a broker without KIP-848"
            );
        },
    };
    assert!(
        matches!(first, ConsumeError::GroupProtocolUnsupported { .. }),
        "{first:?}"
    );
    let message = first.to_string();
    eprintln!("typed error: {message}");
    for needle in [
        "group.coordinator.rebalance.protocols",
        "group.protocol=classic",
    ] {
        assert!(message.contains(needle), "{needle} not in: {message}");
    }
    // Reported: later polls do not loop on the broker again.
    for _ in 0..3 {
        let at = Instant::now();
        match c.poll(Duration::from_secs(5)).await {
            Err(ConsumeError::GroupProtocolUnsupported { .. }) | Err(ConsumeError::Closed) => {}
            other => panic!("after the typed error: {other:?}"),
        }
        assert!(
            at.elapsed() < Duration::from_secs(2),
            "a later poll waited {:?}",
            at.elapsed()
        );
    }
    c.close(Duration::from_secs(5)).await.expect("close");
    broker.stop();
}
