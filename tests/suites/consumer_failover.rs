//! The consumer through the crash of a partition leader: a dedicated 3-node cluster, a topic
//! with replication factor 3 and `min.insync.replicas=2`, every record written with acks=all
//! before consuming starts; the leader of partition 0 is killed (`kill -9`) mid-read and the
//! consumer must go on from the new leaders (metadata refresh, newer leader epoch) and read
//! every record exactly once, in order. Starts a cluster of its own, hence a target of its own.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Acks, ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::TopicPartition;
use kafkit_tests::placement::leader_of_partition_0;
use kafkit_tests::{repo_root, start_broker, unique_name};

const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 2_000;

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
async fn leader_killed_mid_read_loses_and_duplicates_nothing() {
    let kafka = start_broker(3);
    let dir = kafka.state_dir.clone().unwrap();
    let admin = Admin::connect(&kafka.bootstrap).await.unwrap();
    let topic = unique_name("consumer-failover");
    admin
        .create_topics(&[NewTopic::new(&topic, PARTITIONS, 3).config("min.insync.replicas", "2")])
        .await
        .unwrap();
    let victim = leader_of_partition_0(&admin, &[&topic]).await;
    admin.cluster().close();

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
    for i in 0..PER_PARTITION * i64::from(PARTITIONS) {
        let p = i32::try_from(i % i64::from(PARTITIONS)).unwrap();
        let record = ProducerRecord::new(&topic)
            .partition(p)
            .value(format!("{i:0>100}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    let config = ConsumerConfig::builder()
        .bootstrap_servers(kafka.bootstrap.split(','))
        .auto_offset_reset(kafkit::config::AutoOffsetReset::Earliest)
        .max_partition_fetch_bytes(8_192)
        .max_poll_records(100)
        .request_timeout(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(50))
        .set("socket.connection.setup.timeout.ms", "2000")
        .unwrap()
        .set("socket.connection.setup.timeout.max.ms", "2000")
        .unwrap()
        .build()
        .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    consumer
        .assign((0..PARTITIONS).map(|p| TopicPartition::new(topic.clone(), p)))
        .unwrap();
    let expected = usize::try_from(PER_PARTITION).unwrap() * PARTITIONS as usize;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut got: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut total = 0;
    let mut killed_at = None;
    while total < expected {
        assert!(
            Instant::now() < deadline,
            "only {total} of {expected} records came (killed at {killed_at:?})"
        );
        let batch = consumer.poll(Duration::from_millis(200)).await.unwrap();
        for r in &batch {
            got.entry(r.partition).or_default().push(r.offset);
        }
        total += batch.len();
        if killed_at.is_none() && total >= expected / 3 {
            assert!(kafka_sh("kill-node", &dir, victim).success(), "kill-node");
            eprintln!("killed node {victim} (leader of partition 0) after {total} records");
            killed_at = Some(total);
        }
    }
    consumer.close(Duration::from_secs(5)).await.expect("close");
    kafka.stop();
    assert!(
        killed_at.is_some_and(|n| n < expected),
        "the kill came too late"
    );
    for (p, offsets) in &got {
        assert_eq!(
            offsets,
            &(0..PER_PARTITION).collect::<Vec<i64>>(),
            "partition {p}"
        );
    }
}
