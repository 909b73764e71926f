//! A classic group through the crash of its coordinator: a dedicated 3-node cluster
//! (`__consumer_offsets` replicated 3 times), two consumers committing after every batch; the
//! broker that coordinates the group is killed (`kill -9`) mid-run. The group coordinator
//! moves to another broker: the members find it again, commits go on (retried through
//! `NOT_COORDINATOR` / connection errors), nothing is lost, and the last commit lands at the
//! log ends. Starts a cluster of its own, hence a target of its own.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::ConsumerConfig;
use kafkit::consumer::{ConsumeError, Consumer};
use kafkit::io::coordinator::Coordinators;
use kafkit::TopicPartition;
use kafkit_tests::{repo_root, start_broker, unique_name};

const PARTITIONS: i32 = 6;

async fn produce(bootstrap: &str, topic: &str, tag: &str, count: usize) -> BTreeSet<String> {
    kafkit_tests::fill::produce_tagged(bootstrap, topic, PARTITIONS, tag, count).await
}

async fn consume(c: Arc<Consumer>, seen: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)).await {
            Ok(records) => {
                seen.lock().unwrap().extend(
                    records
                        .iter()
                        .map(|r| String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned()),
                );
                if !records.is_empty() {
                    match c.commit_sync().await {
                        Ok(()) => {}
                        Err(ConsumeError::Commit(e))
                            if e.is_retriable() || e.is_membership_error() =>
                        {
                            eprintln!("commit during the failover: {e}")
                        }
                        Err(e) => panic!("commit failed untyped: {e:?}"),
                    }
                }
            }
            Err(e) if e.is_retriable() => {}
            Err(ConsumeError::Commit(e)) => eprintln!("group during the failover: {e}"),
            Err(e) => panic!("poll failed: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_survives_the_crash_of_its_coordinator() {
    let kafka = start_broker(3);
    let dir = kafka.state_dir.clone().unwrap();
    let admin = Admin::connect(&kafka.bootstrap).await.unwrap();
    let topic = unique_name("group-failover");
    let group = unique_name("g-failover");
    admin
        .create_topics(&[NewTopic::new(&topic, PARTITIONS, 3).config("min.insync.replicas", "2")])
        .await
        .unwrap();
    let mut sent = produce(&kafka.bootstrap, &topic, "a", 30).await;

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut consumers = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let config = ConsumerConfig::from_properties([
            ("bootstrap.servers", kafka.bootstrap.as_str()),
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "500"),
            ("request.timeout.ms", "10000"),
        ])
        .unwrap();
        let c = Arc::new(Consumer::new(config).await.unwrap());
        c.subscribe([topic.clone()]).await.unwrap();
        tasks.push(tokio::spawn(consume(c.clone(), seen.clone(), stop.clone())));
        consumers.push(c);
    }
    let until = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < sent.len() {
        assert!(Instant::now() < until, "first records not consumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Kill the broker that coordinates the group.
    let coordinators = Coordinators::new(admin.cluster().clone());
    let found = coordinators
        .find(&[group.as_str()], Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    let victim = found[&group];
    let status = Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .arg("kill-node")
        .arg(&dir)
        .arg(victim.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let survivors: Vec<&str> = kafka
        .bootstrap
        .split(',')
        .filter(|b| {
            admin
                .cluster()
                .metadata()
                .broker(victim)
                .is_none_or(|v| v.address() != *b)
        })
        .collect();
    sent.extend(produce(&survivors.join(","), &topic, "b", 30).await);

    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let unique: BTreeSet<String> = seen.lock().unwrap().iter().cloned().collect();
        if unique.is_superset(&sent) {
            break;
        }
        assert!(
            Instant::now() < until,
            "lost after the coordinator crash: {} of {}",
            sent.difference(&unique).count(),
            sent.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    // The coordinator moved; the last commit lands at the log ends.
    coordinators.invalidate(&group);
    let moved = coordinators
        .find(&[group.as_str()], Instant::now() + Duration::from_secs(20))
        .await
        .unwrap()[&group];
    assert_ne!(moved, victim, "the coordinator moved");
    let until = Instant::now() + Duration::from_secs(60);
    for c in &consumers {
        loop {
            c.poll(Duration::from_millis(50)).await.ok();
            if c.commit_sync().await.is_ok() {
                break;
            }
            assert!(Instant::now() < until, "final commit never succeeded");
        }
    }
    let all: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.clone(), p))
        .collect();
    let committed = consumers[0].committed(&all).await.unwrap();
    for tp in &all {
        assert_eq!(committed[tp].as_ref().map(|c| c.offset), Some(60), "{tp:?}");
    }
    for c in consumers {
        let _ = c.close(Duration::from_secs(5)).await;
    }
    admin.cluster().close();
    kafka.stop();
}
