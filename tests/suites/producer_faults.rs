//! The producer through a broker pause: requests time out (their outcome unknown), the
//! connection is dropped, batches are resent with the same sequences, and every record is
//! written exactly once, in order. Uses a broker of its own (it is frozen with SIGSTOP).

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use kafkit_client::admin::{Admin, NewTopic};
use kafkit_client::config::ProducerConfig;
use kafkit_client::producer::{Producer, ProducerRecord};
use kafkit_tests::{repo_root, start_broker, unique_name};

fn signal(dir: &std::path::Path, what: &str) {
    let status = Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .arg(what)
        .arg(dir)
        .arg("1")
        .status()
        .unwrap();
    assert!(status.success(), "kafka.sh {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_pause_loses_nothing_and_duplicates_nothing() {
    let kafka = start_broker(1);
    let dir = kafka.state_dir.clone().unwrap();
    let admin = Admin::connect(&kafka.bootstrap).await.unwrap();
    let topic = unique_name("producer-pause");
    admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)])
        .await
        .unwrap();
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka.bootstrap.clone()])
        .linger(Duration::from_millis(2))
        .batch_size(2_000)
        .request_timeout(Duration::from_secs(2))
        .socket_connection_setup_timeout(Duration::from_secs(2))
        .socket_connection_setup_timeout_max(Duration::from_secs(2))
        .delivery_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..3_000u32 {
        if i == 1_000 {
            signal(&dir, "freeze");
        }
        if i == 2_000 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            signal(&dir, "thaw");
        }
        let record = ProducerRecord::new(&topic)
            .key(format!("k{}", i % 30))
            .value(i.to_string());
        deliveries.push((i, producer.send(record).await.unwrap()));
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    producer.flush().await.unwrap();
    let metrics = producer.metrics();
    let mut by_partition: HashMap<i32, Vec<(i64, u32)>> = HashMap::new();
    for (i, d) in deliveries {
        let md = d.await.unwrap_or_else(|e| panic!("record {i}: {e}"));
        by_partition
            .entry(md.partition)
            .or_default()
            .push((md.offset, i));
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    // Offsets per partition are 0..n without gaps (nothing written twice, since every
    // reported offset is distinct and dense) and follow send order.
    for (p, mut written) in by_partition {
        written.sort_unstable();
        for (n, (offset, _)) in written.iter().enumerate() {
            assert_eq!(*offset, n as i64, "partition {p}: a gap or a duplicate");
        }
        assert!(
            written.windows(2).all(|w| w[0].1 < w[1].1),
            "partition {p} reordered"
        );
    }
    eprintln!("{metrics:?}");
    kafka.stop();
}
