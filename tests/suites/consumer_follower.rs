//! Follower fetching (KIP-392) on a real 3-node cluster with a rack per node (`r1`, `r2`, `r3`
//! for nodes 1, 2, 3) and the brokers' `RackAwareReplicaSelector` (`start_broker_racks`).
//!
//! A topic with replication factor 3 is written (acks=all) before reading; the consumer reads
//! through the test proxy, which counts the Fetch requests each broker gets:
//! - with `client.rack` = the rack of a follower, the leader gets the first Fetch only (it
//!   names the follower as `preferred_read_replica`) and every later one goes to the follower;
//! - the preferred follower killed mid-read: the consumer goes back to the leader and reads the
//!   rest, every record exactly once, in order (the killed node is restarted afterwards);
//! - without `client.rack`, every Fetch goes to the leader.
//!
//! The tests share one cluster (started once per process, stopped by its watchdog when the
//! process exits) and take turns: one of them kills a node.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Acks, AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::TopicPartition;
use kafkit_tests::placement::leader_of_partition_0;
use kafkit_tests::proxy::ProxyCluster;
use kafkit_tests::{repo_root, start_broker_racks, unique_name, Kafka};

const RECORDS: i64 = 3_000;

fn cluster() -> &'static Kafka {
    static CLUSTER: OnceLock<Kafka> = OnceLock::new();
    CLUSTER.get_or_init(|| start_broker_racks(&["r1", "r2", "r3"]))
}

/// One test at a time on the shared cluster (a failed test does not poison the turn).
async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

fn kafka_sh(what: &str, dir: &std::path::Path, node: i32) -> std::process::ExitStatus {
    Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .arg(what)
        .arg(dir)
        .arg(node.to_string())
        .status()
        .unwrap()
}

/// A one-partition topic with replication factor 3 holding `RECORDS` records (acks=all, so
/// every replica has them); returns its name, its leader and a follower.
async fn written_topic(kafka: &Kafka) -> (String, i32, i32) {
    let admin = Admin::connect(&kafka.bootstrap).await.unwrap();
    let topic = unique_name("consumer-follower");
    admin
        .create_topics(&[NewTopic::new(&topic, 1, 3).config("min.insync.replicas", "2")])
        .await
        .unwrap();
    let leader = leader_of_partition_0(&admin, &[&topic]).await;
    let replicas = admin.cluster().metadata().topic(&topic).unwrap().partitions[0]
        .replicas
        .clone();
    admin.cluster().close();
    assert_eq!(replicas.len(), 3, "replicas {replicas:?}");
    let follower = *replicas.iter().find(|&&r| r != leader).unwrap();

    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers(kafka.bootstrap.split(','))
            .acks(Acks::All)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let record = ProducerRecord::new(&topic)
            .partition(0)
            .value(format!("{i:0>100}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    (topic, leader, follower)
}

/// A consumer through `proxy` with the default settings, except small fetches (so that the
/// topic takes tens of them) and `client.rack` when given.
async fn consumer(proxy: &ProxyCluster, rack: Option<&str>, topic: &str) -> Consumer {
    let mut config = ConsumerConfig::builder()
        .bootstrap_servers(proxy.bootstrap().split(','))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .max_partition_fetch_bytes(8_192)
        .max_poll_records(100);
    if let Some(rack) = rack {
        config = config.client_rack(rack);
    }
    let consumer = Consumer::new(config.build().unwrap()).await.unwrap();
    consumer
        .assign([TopicPartition::new(topic.to_owned(), 0)])
        .unwrap();
    consumer
}

/// Fetch requests each broker got through the proxy.
fn fetches(proxy: &ProxyCluster, node: i32) -> u64 {
    let listener = proxy.listener(node).expect("a listener per broker");
    proxy.stats().requests_to(listener, ApiKey::Fetch)
}

/// Polls until every record came (deadline `within`), calling `each` with the count so far
/// after every poll; returns the offsets read, in order.
async fn read_all(consumer: &Consumer, within: Duration, mut each: impl FnMut(usize)) -> Vec<i64> {
    let deadline = Instant::now() + within;
    let expected = usize::try_from(RECORDS).unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} records within {within:?}",
            offsets.len()
        );
        let batch = consumer.poll(Duration::from_millis(200)).await.unwrap();
        offsets.extend(batch.iter().map(|r| r.offset));
        each(offsets.len());
    }
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_in_a_followers_rack_fetches_from_that_follower() {
    let _turn = turn().await;
    let kafka = cluster();
    let (topic, leader, follower) = written_topic(kafka).await;
    let proxy = ProxyCluster::start(&kafka.bootstrap).await;
    let rack = format!("r{follower}");
    let consumer = consumer(&proxy, Some(&rack), &topic).await;
    let offsets = read_all(&consumer, Duration::from_secs(60), |_| {}).await;
    consumer.close(Duration::from_secs(5)).await.expect("close");
    assert_eq!(offsets, (0..RECORDS).collect::<Vec<i64>>());
    let per_node: BTreeMap<i32, u64> = (1..=3).map(|n| (n, fetches(&proxy, n))).collect();
    eprintln!("leader {leader}, follower {follower} (rack {rack}); fetches per node {per_node:?}");
    assert_eq!(
        per_node[&leader], 1,
        "only the first fetch goes to the leader (it names the follower): {per_node:?}"
    );
    assert!(
        per_node[&follower] >= 10,
        "the follower serves the rest: {per_node:?}"
    );
    let other = 6 - leader - follower;
    assert_eq!(per_node[&other], 0, "{per_node:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_rack_fetches_stay_on_the_leader() {
    let _turn = turn().await;
    let kafka = cluster();
    let (topic, leader, _) = written_topic(kafka).await;
    let proxy = ProxyCluster::start(&kafka.bootstrap).await;
    let consumer = consumer(&proxy, None, &topic).await;
    let offsets = read_all(&consumer, Duration::from_secs(60), |_| {}).await;
    consumer.close(Duration::from_secs(5)).await.expect("close");
    assert_eq!(offsets, (0..RECORDS).collect::<Vec<i64>>());
    let per_node: BTreeMap<i32, u64> = (1..=3).map(|n| (n, fetches(&proxy, n))).collect();
    eprintln!("leader {leader}; fetches per node {per_node:?}");
    assert!(per_node[&leader] >= 10, "{per_node:?}");
    for (node, n) in &per_node {
        if *node != leader {
            assert_eq!(*n, 0, "node {node} is not the leader: {per_node:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preferred_follower_killed_mid_read_the_leader_serves_the_rest() {
    let _turn = turn().await;
    let kafka = cluster();
    let dir = kafka.state_dir.clone().expect("a cluster of this process");
    let (topic, leader, follower) = written_topic(kafka).await;
    let proxy = ProxyCluster::start(&kafka.bootstrap).await;
    let consumer = consumer(&proxy, Some(&format!("r{follower}")), &topic).await;
    let mut killed = None;
    let offsets = read_all(&consumer, Duration::from_secs(90), |n| {
        if killed.is_none() && n >= usize::try_from(RECORDS / 3).unwrap() {
            assert!(fetches(&proxy, follower) > 0, "not reading from the follower");
            assert!(kafka_sh("kill-node", &dir, follower).success(), "kill-node");
            let leader_fetches = fetches(&proxy, leader);
            eprintln!("killed node {follower} (the preferred follower) after {n} records; leader fetches so far {leader_fetches}");
            killed = Some((n, leader_fetches, Instant::now()));
        }
    })
    .await;
    let (at, leader_before, kill_time) = killed.expect("the kill happened");
    eprintln!("the rest read {:?} after the kill", kill_time.elapsed());
    consumer.close(Duration::from_secs(5)).await.expect("close");
    let per_node: BTreeMap<i32, u64> = (1..=3).map(|n| (n, fetches(&proxy, n))).collect();
    eprintln!("leader {leader}, follower {follower}; fetches per node {per_node:?}");
    // Bring the node back for the other tests of this process.
    assert!(
        kafka_sh("restart-node", &dir, follower).success(),
        "restart-node"
    );
    assert!(
        at < usize::try_from(RECORDS).unwrap(),
        "the kill came too late"
    );
    assert_eq!(
        offsets,
        (0..RECORDS).collect::<Vec<i64>>(),
        "every record once, in order"
    );
    assert!(
        per_node[&leader] > leader_before,
        "the leader served the rest: {per_node:?} (leader fetches at the kill: {leader_before})"
    );
}
