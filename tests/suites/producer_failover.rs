//! The idempotent producer through the crash of a partition leader: a dedicated 3-node
//! cluster, a topic with replication factor 3 and `min.insync.replicas=2`; the leader of
//! partition 0 is killed (`kill -9`) mid-stream and the stream goes on against the new leaders
//! (the node is not started again: the stream would be over before it is back, and the
//! restart would only add ~12 s). Every record must be written exactly once, in send order
//! per partition. Starts a cluster of its own (about 15-20 s), hence a target of its own.

use std::process::Command;
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Acks, ProducerConfig};
use kafkit::producer::{Producer, ProducerRecord};
use kafkit_tests::placement::{leader_of_partition_0, led_by};
use kafkit_tests::{repo_root, start_broker, unique_name, verify};

const PARTITIONS: i32 = 6;

fn kafka_sh(what: &str, dir: &std::path::Path, node: i32) -> std::process::ExitStatus {
    Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .arg(what)
        .arg(dir)
        .arg(node.to_string())
        .status()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_stream_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let kafka = start_broker(3);
    let dir = kafka.state_dir.clone().unwrap();
    let cluster_up = started.elapsed();
    let admin = Admin::connect(&kafka.bootstrap).await.unwrap();
    let topic = unique_name("producer-failover");
    admin
        .create_topics(&[NewTopic::new(&topic, PARTITIONS, 3).config("min.insync.replicas", "2")])
        .await
        .unwrap();
    let victim = leader_of_partition_0(&admin, &[&topic]).await;
    let led = led_by(&admin, &topic, PARTITIONS, victim);
    admin.cluster().close();

    let config = ProducerConfig::builder()
        .bootstrap_servers(kafka.bootstrap.split(','))
        .acks(Acks::All)
        .linger(Duration::from_millis(2))
        .batch_size(4_000)
        .retry_backoff(Duration::from_millis(20))
        .retry_backoff_max(Duration::from_millis(200))
        .request_timeout(Duration::from_secs(5))
        .socket_connection_setup_timeout(Duration::from_secs(2))
        .socket_connection_setup_timeout_max(Duration::from_secs(2))
        .delivery_timeout(Duration::from_secs(45))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    const N: u64 = 20_000;
    let mut deliveries = Vec::with_capacity(N as usize);
    let stream_started = Instant::now();
    for i in 0..N {
        if i == N / 4 {
            assert!(kafka_sh("kill-node", &dir, victim).success(), "kill-node");
            eprintln!("killed node {victim} (leader of {led:?}) at record {i}");
        }
        let record = ProducerRecord::new(&topic)
            .key(format!("k{}", i % 60))
            .value(verify::value_of(i));
        deliveries.push((i, producer.send(record).await.unwrap()));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    tokio::time::timeout(Duration::from_secs(45), producer.flush())
        .await
        .expect("flush within 45 s")
        .unwrap();
    let stream_time = stream_started.elapsed();
    let mut sent = Vec::with_capacity(deliveries.len());
    let mut failed = Vec::new();
    for (id, d) in deliveries {
        match d.await {
            Ok(md) => sent.push(verify::Sent {
                id,
                partition: md.partition,
                offset: Some(md.offset),
            }),
            Err(e) => failed.push((id, e.to_string())),
        }
    }
    let metrics = producer.metrics();
    producer.close(Duration::from_secs(10)).await.unwrap();
    assert!(
        failed.is_empty(),
        "{} failed deliveries, first: {:?}",
        failed.len(),
        failed.first()
    );
    let log = verify::read_back(
        &kafka.bootstrap,
        &topic,
        PARTITIONS,
        &sent,
        Duration::from_secs(30),
    )
    .await;
    let verdict = verify::verify(&sent, &log);
    eprintln!(
        "failover: cluster up in {cluster_up:?}, {N} records streamed in {stream_time:?}, \
         total {:?}; {metrics:?}; {verdict:?}",
        started.elapsed()
    );
    kafka.stop();
    verdict.assert_exact();
}
