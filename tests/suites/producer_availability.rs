//! `partitioner.availability.timeout.ms` end to end (KIP-794, issue #14): on a 3-node cluster
//! of its own, one node is frozen (SIGSTOP) while two producers stream keyless records, each
//! to a topic of its own whose partitions (replication factor 1) are spread over the nodes.
//!
//! * The producer with `partitioner.availability.timeout.ms` = 500 ms stops choosing the
//!   frozen node's partitions: every record sent from 1.5 s after the freeze until the thaw is
//!   acknowledged on a partition of another node.
//! * The control, with the default (0 = off), keeps choosing them (its records pile up there).
//! * After the thaw, every record sent by either producer ends in a delivery result (a success,
//!   or a typed delivery timeout), and the first producer's new records reach the frozen node's
//!   partitions again within seconds.
//!
//! The two producers differ only in that setting. The window ends at the thaw, well before the
//! default 30 s `request.timeout.ms` could make either producer refresh its metadata (which
//! would show the fenced node's partitions leaderless and skip them for both).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::ProducerConfig;
use kafkit::producer::{ProduceError, Producer, ProducerRecord};
use kafkit_tests::placement::{leader_of_partition_0, led_by};
use kafkit_tests::{repo_root, start_broker, unique_name};
use tokio::sync::mpsc;

const PARTITIONS: i32 = 6;
const AVAILABILITY_TIMEOUT: Duration = Duration::from_millis(500);
/// From the freeze to the start of the window: the timeout plus room for the batches chosen
/// before it passed.
const WINDOW_START: Duration = Duration::from_millis(1_500);
/// From the freeze to the thaw (the end of the window).
const FROZEN_FOR: Duration = Duration::from_secs(6);

fn kafka_sh(what: &str, dir: &std::path::Path, node: i32) -> bool {
    Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .arg(what)
        .arg(dir)
        .arg(node.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Thaws the frozen node and stops the cluster when dropped, so that a failing assertion
/// leaves no stopped JVM behind.
struct Cluster {
    kafka: kafkit_tests::Kafka,
    frozen: Option<i32>,
}

impl Cluster {
    fn dir(&self) -> &std::path::Path {
        self.kafka
            .state_dir
            .as_deref()
            .expect("a cluster of its own")
    }

    fn freeze(&mut self, node: i32) {
        assert!(
            kafka_sh("freeze", self.dir(), node),
            "kafka.sh freeze {node}"
        );
        self.frozen = Some(node);
    }

    fn thaw(&mut self) {
        if let Some(node) = self.frozen.take() {
            assert!(kafka_sh("thaw", self.dir(), node), "kafka.sh thaw {node}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(node) = self.frozen.take() {
            kafka_sh("thaw", self.dir(), node);
        }
        self.kafka.stop();
    }
}

/// One record's fate: when `send` returned and when its result came (since the test's clock
/// started), and the result.
struct Outcome {
    sent_at: Duration,
    done_at: Duration,
    result: Result<i32, ProduceError>,
}

/// A producer streaming keyless records to its topic; each delivery result comes back on a
/// channel with the time the record was sent.
struct Stream {
    producer: Producer,
    topic: String,
    sent: u64,
    tx: mpsc::UnboundedSender<Outcome>,
    rx: mpsc::UnboundedReceiver<Outcome>,
    outcomes: Vec<Outcome>,
}

impl Stream {
    async fn new(bootstrap: &str, topic: String, availability_timeout: Option<Duration>) -> Stream {
        let mut config = ProducerConfig::builder()
            .bootstrap_servers(bootstrap.split(','))
            // Small batches: the sticky partition changes every ~20 records, so the window
            // holds hundreds of choices.
            .batch_size(1_000);
        if let Some(timeout) = availability_timeout {
            config = config.partitioner_availability_timeout(timeout);
        }
        let producer = Producer::new(config.build().unwrap()).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        Stream {
            producer,
            topic,
            sent: 0,
            tx,
            rx,
            outcomes: Vec::new(),
        }
    }

    async fn send(&mut self, n: u64, clock: Instant) {
        for _ in 0..n {
            let record = ProducerRecord::new(&self.topic)
                .value(format!("record-{:08}-padding-padding", self.sent));
            let delivery = self.producer.send(record).await.unwrap();
            let sent_at = clock.elapsed();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let result = delivery.await.map(|md| md.partition);
                let done_at = clock.elapsed();
                let _ = tx.send(Outcome {
                    sent_at,
                    done_at,
                    result,
                });
            });
            self.sent += 1;
        }
    }

    /// Takes the results that arrived so far.
    fn collect(&mut self) {
        while let Ok(outcome) = self.rx.try_recv() {
            self.outcomes.push(outcome);
        }
    }

    /// Waits (up to `within`) until every record sent has a result.
    async fn collect_all(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while (self.outcomes.len() as u64) < self.sent {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(outcome)) => self.outcomes.push(outcome),
                _ => panic!(
                    "{}: {} of {} records without a delivery result after {within:?}",
                    self.topic,
                    self.sent - self.outcomes.len() as u64,
                    self.sent
                ),
            }
        }
    }

    /// Records sent in `[from, to)` per partition: acknowledged there or timed out there.
    fn per_partition(&self, from: Duration, to: Duration) -> BTreeMap<i32, u64> {
        let mut counts = BTreeMap::new();
        for o in &self.outcomes {
            let partition = match &o.result {
                Ok(p) => *p,
                Err(ProduceError::DeliveryTimeout { partition, .. }) => *partition,
                Err(_) => continue,
            };
            if o.sent_at >= from && o.sent_at < to {
                *counts.entry(partition).or_default() += 1;
            }
        }
        counts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_leader_skipped_after_availability_timeout() {
    let started = Instant::now();
    let mut cluster = Cluster {
        kafka: start_broker(3),
        frozen: None,
    };
    let bootstrap = cluster.kafka.bootstrap.clone();
    let cluster_up = started.elapsed();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    let (topic_on, topic_off) = (unique_name("avail-on"), unique_name("avail-off"));
    admin
        .create_topics(&[
            NewTopic::new(&topic_on, PARTITIONS, 1),
            NewTopic::new(&topic_off, PARTITIONS, 1),
        ])
        .await
        .unwrap();
    let victim = leader_of_partition_0(&admin, &[&topic_on, &topic_off]).await;
    let frozen_on = led_by(&admin, &topic_on, PARTITIONS, victim);
    let frozen_off = led_by(&admin, &topic_off, PARTITIONS, victim);
    admin.cluster().close();
    assert!(
        !frozen_off.is_empty() && frozen_on.len() < PARTITIONS as usize,
        "node {victim} leads {frozen_on:?} of {topic_on} and {frozen_off:?} of {topic_off}: \
         the placement leaves nothing to compare"
    );

    let mut on = Stream::new(&bootstrap, topic_on.clone(), Some(AVAILABILITY_TIMEOUT)).await;
    let mut off = Stream::new(&bootstrap, topic_off.clone(), None).await;
    let clock = Instant::now();
    // Warm up: connections, producer ids, metadata; every partition reachable.
    on.send(200, clock).await;
    off.send(200, clock).await;
    on.producer.flush().await.unwrap();
    off.producer.flush().await.unwrap();
    // A steady stream of 10 records per producer every 5 ms, around the freeze.
    let tick = || tokio::time::sleep(Duration::from_millis(5));
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        on.send(10, clock).await;
        off.send(10, clock).await;
        tick().await;
    }
    cluster.freeze(victim);
    let frozen_at = clock.elapsed();
    while clock.elapsed() < frozen_at + FROZEN_FOR {
        on.send(10, clock).await;
        off.send(10, clock).await;
        tick().await;
    }
    cluster.thaw();
    let thawed_at = clock.elapsed();
    let sent_frozen = (on.sent, off.sent);
    // After the thaw: until a record of the first producer is acknowledged on a partition of
    // the thawed node (at most 30 s).
    let mut back_after = None;
    while back_after.is_none() && clock.elapsed() < thawed_at + Duration::from_secs(30) {
        on.send(10, clock).await;
        off.send(10, clock).await;
        tick().await;
        on.collect();
        back_after = on
            .outcomes
            .iter()
            .filter(|o| o.sent_at >= thawed_at)
            .filter(|o| matches!(o.result, Ok(p) if frozen_on.contains(&p)))
            .map(|o| o.sent_at - thawed_at)
            .min();
    }
    let stream_done = clock.elapsed();
    // Every record ends: delivered (after the thaw for those stuck on the frozen node) or a
    // typed delivery timeout (none expected with the default 120 s).
    on.collect_all(Duration::from_secs(60)).await;
    off.collect_all(Duration::from_secs(60)).await;
    let all_done = clock.elapsed();
    let mut expired = 0;
    for (name, s) in [("on", &on), ("off", &off)] {
        for o in &s.outcomes {
            match &o.result {
                Ok(_) => {}
                Err(ProduceError::DeliveryTimeout { .. }) => expired += 1,
                Err(e) => panic!("{name}: a record sent at {:?}: {e}", o.sent_at),
            }
        }
    }
    let window = (frozen_at + WINDOW_START, thawed_at);
    let on_window = on.per_partition(window.0, window.1);
    let off_window = off.per_partition(window.0, window.1);
    let metrics = (on.producer.metrics(), off.producer.metrics());
    on.producer.close(Duration::from_secs(10)).await.unwrap();
    off.producer.close(Duration::from_secs(10)).await.unwrap();
    eprintln!(
        "availability: cluster up in {cluster_up:?}; node {victim} frozen at {frozen_at:?} \
         (leads {frozen_on:?} / {frozen_off:?}), thawed at {thawed_at:?}; sent until the thaw \
         {sent_frozen:?}, in all ({}, {}); window {window:?} per partition: on {on_window:?}, \
         off {off_window:?}; back on the thawed node {back_after:?} after the thaw; stream \
         done at {stream_done:?}, every result by {all_done:?}; {expired} delivery timeouts; \
         total {:?}; {metrics:?}",
        on.sent,
        off.sent,
        started.elapsed()
    );
    drop(cluster);

    let on_total: u64 = on_window.values().sum();
    assert!(
        on_total > 500,
        "too few records in the window: {on_window:?}"
    );
    let on_frozen: u64 = frozen_on
        .iter()
        .map(|p| on_window.get(p).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        on_frozen, 0,
        "records sent after the availability timeout went to the frozen node's partitions \
         {frozen_on:?}: {on_window:?}"
    );
    let off_frozen: u64 = frozen_off
        .iter()
        .map(|p| off_window.get(p).copied().unwrap_or(0))
        .sum();
    // They were held by the freeze: none of them acknowledged before the thaw.
    let early = off
        .outcomes
        .iter()
        .filter(|o| o.sent_at >= window.0 && o.sent_at < window.1 && o.done_at < thawed_at)
        .filter(|o| matches!(o.result, Ok(p) if frozen_off.contains(&p)))
        .count();
    assert_eq!(early, 0, "control: records acknowledged by the frozen node");
    assert!(
        off_frozen > 0,
        "control: with the default the frozen node's partitions {frozen_off:?} should still \
         be chosen: {off_window:?}"
    );
    assert!(
        back_after.is_some(),
        "no record reached the thawed node's partitions within 30 s of the thaw"
    );
}
