//! The Consumer in a consumer group, the same tests for both group protocols
//! (`group.protocol=classic` and `consumer`, KIP-848), against the shared broker: three
//! consumers read everything exactly once with commit-on-revoke, a killed consumer's
//! partitions move on with nothing lost, a restarted group resumes right after its last
//! commit, commits during a rebalance succeed or fail typed.
//!
//! Each test body takes the protocol, and [`both!`] makes one `#[tokio::test]` per protocol.
//! `classic_only` holds what only the classic protocol has: a client-chosen assignor (eager
//! range and cooperative-sticky, with partitions that move after their records were read)
//! and ordered async commits.

const PARTITIONS: i32 = 6;

async fn topic(prefix: &str) -> String {
    kafkit_tests::fill::topic(&kafka().bootstrap, prefix, PARTITIONS).await
}

/// The group protocol a test runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Classic,
    Consumer,
}

impl Protocol {
    /// How long a member that vanished keeps its partitions.
    fn session_timeout(self) -> Duration {
        match self {
            Protocol::Classic => Duration::from_secs(6),
            // group.consumer.session.timeout.ms: 45 s by default, and its minimum.
            Protocol::Consumer => Duration::from_secs(45),
        }
    }

    /// A bound for one rebalance (KIP-848 moves partitions at heartbeats, 5 s apart).
    fn rebalance_bound(self) -> Duration {
        match self {
            Protocol::Classic => Duration::from_secs(30),
            Protocol::Consumer => Duration::from_secs(60),
        }
    }
}

/// One `#[tokio::test]` per protocol for each parametrised test.
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
    three_consumers_consume_everything_exactly_once,
    a_killed_consumer_loses_nothing_and_its_partitions_move_on,
    a_restarted_group_resumes_right_after_the_last_commit,
    commits_during_a_rebalance_succeed_or_fail_typed
);

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit::config::ConsumerConfig;
use kafkit::consumer::CommitError;
use kafkit::consumer::{ConsumeError, Consumer, ListenerFuture, RebalanceListener};
use kafkit::GroupSubscription;
use kafkit::{OffsetAndMetadata, TopicPartition};
use kafkit_tests::{kafka, unique_name};

async fn consumer(protocol: Protocol, group: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut props = vec![
        ("bootstrap.servers", kafka().bootstrap.as_str()),
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
    ];
    match protocol {
        // Short sessions: a killed member is replaced within seconds.
        Protocol::Classic => {
            props.push(("session.timeout.ms", "6000"));
            props.push(("heartbeat.interval.ms", "500"));
        }
        // The broker owns the session (45 s) and the heartbeat interval (5 s).
        Protocol::Consumer => props.push(("group.protocol", "consumer")),
    }
    props.extend_from_slice(extra);
    Consumer::new(ConsumerConfig::from_properties(props).unwrap())
        .await
        .unwrap()
}

/// Writes `count` records per partition, values `"{tag}-{partition}-{i}"`.
async fn produce(topic: &str, tag: &str, count: usize) -> BTreeSet<String> {
    kafkit_tests::fill::produce_tagged(&kafka().bootstrap, topic, PARTITIONS, tag, count).await
}

/// Commits what was handed out before partitions go (the Java idiom).
struct CommitOnRevoke {
    revoked: Mutex<Vec<TopicPartition>>,
}

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            self.revoked.lock().unwrap().extend_from_slice(partitions);
            if let Err(e) = consumer.commit_sync().await {
                eprintln!("commit on revoke failed: {e}");
            }
        })
    }
}

type Seen = Arc<Mutex<Vec<String>>>;

/// Polls until `stop`, recording every value; commits after each batch when `commit`.
async fn consume(consumer: Arc<Consumer>, seen: Seen, stop: Arc<AtomicBool>, commit: bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => {
                {
                    let mut s = seen.lock().unwrap();
                    for r in &records {
                        let v = r.value.as_ref().unwrap();
                        s.push(String::from_utf8_lossy(v).into_owned());
                    }
                }
                if commit && !records.is_empty() {
                    if let Err(e) = consumer.commit_sync().await {
                        eprintln!("commit after processing failed: {e}");
                    }
                }
            }
            Err(ConsumeError::Commit(e)) => eprintln!("group error: {e}"),
            Err(e) => panic!("poll failed: {e}"),
        }
    }
}

async fn wait_for(seen: &Seen, n: usize, within: Duration) {
    let until = Instant::now() + within;
    while seen.lock().unwrap().len() < n {
        assert!(
            Instant::now() < until,
            "only {} of {n} records within {within:?}",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn three_consumers_consume_everything_exactly_once(protocol: Protocol) {
    let topic = topic("group-c3").await;
    let group = unique_name("g-c3");
    let mut sent = produce(&topic, "a", 50).await;
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let c = Arc::new(consumer(protocol, &group, &[]).await);
        let listener = Arc::new(CommitOnRevoke {
            revoked: Mutex::new(Vec::new()),
        });
        c.subscribe_with(
            GroupSubscription::Topics(vec![topic.clone()]),
            Some(listener),
        )
        .await
        .unwrap();
        tasks.push(tokio::spawn(consume(
            c.clone(),
            seen.clone(),
            stop.clone(),
            false,
        )));
        consumers.push(c);
        // Members join while the others consume: rebalances overlap consumption.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    sent.extend(produce(&topic, "b", 50).await);
    wait_for(&seen, sent.len(), Duration::from_secs(90)).await;
    // The group settles on an even split while everyone polls (a KIP-848 rebalance takes a
    // few 5 s heartbeats: the records may all be read before it is over).
    let until = Instant::now() + protocol.rebalance_bound();
    while consumers.iter().any(|c| c.assignment().len() != 2) {
        let split: Vec<usize> = consumers.iter().map(|c| c.assignment().len()).collect();
        assert!(Instant::now() < until, "no even split: {split:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything duplicated would show up now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates");
    assert_eq!(unique, sent, "lost records");
    let assigned: Vec<usize> = consumers.iter().map(|c| c.assignment().len()).collect();
    assert_eq!(assigned, [2, 2, 2], "one group, an even split");
    for c in consumers {
        let _ = c.close(Duration::from_secs(5)).await;
    }
}

async fn a_killed_consumer_loses_nothing_and_its_partitions_move_on(protocol: Protocol) {
    let topic = topic("group-ckill").await;
    let group = unique_name("g-ckill");
    let mut sent = produce(&topic, "a", 30).await;
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let c = Arc::new(consumer(protocol, &group, &[]).await);
        c.subscribe([topic.clone()]).await.unwrap();
        tasks.push(tokio::spawn(consume(
            c.clone(),
            seen.clone(),
            stop.clone(),
            true,
        )));
        consumers.push(c);
    }
    wait_for(&seen, sent.len(), Duration::from_secs(60)).await;
    // Wait for one generation with everyone in it, then kill one (no LeaveGroup).
    let until = Instant::now() + protocol.rebalance_bound();
    while consumers.iter().any(|c| c.assignment().len() != 2) {
        assert!(Instant::now() < until, "no even split");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let victim = consumers.pop().unwrap();
    let orphaned = victim.assignment();
    tasks.pop().unwrap().abort();
    let killed_at = Instant::now();
    drop(victim); // the last handle: its member task stops heartbeating
    sent.extend(produce(&topic, "b", 30).await);
    // The survivors take the orphaned partitions once the session expires, and
    // read what was written to them after the kill.
    let until = Instant::now() + protocol.session_timeout() + Duration::from_secs(30);
    loop {
        let owned: BTreeSet<TopicPartition> =
            consumers.iter().flat_map(|c| c.assignment()).collect();
        if orphaned.iter().all(|tp| owned.contains(tp)) {
            break;
        }
        assert!(Instant::now() < until, "{orphaned:?} never reassigned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed_at.elapsed();
    assert!(
        took < protocol.session_timeout() + Duration::from_secs(6),
        "reassigned after {took:?}"
    );
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let unique: BTreeSet<String> = seen.lock().unwrap().iter().cloned().collect();
        if unique.is_superset(&sent) {
            break;
        }
        assert!(
            Instant::now() < until,
            "lost: {:?}",
            sent.difference(&unique).take(5).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    for c in consumers {
        let _ = c.close(Duration::from_secs(5)).await;
    }
}

async fn a_restarted_group_resumes_right_after_the_last_commit(protocol: Protocol) {
    let topic = topic("group-resume").await;
    let group = unique_name("g-resume");
    let sent = produce(&topic, "a", 20).await;
    let first = consumer(protocol, &group, &[("max.poll.records", "7")]).await;
    first.subscribe([topic.clone()]).await.unwrap();
    let mut before = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    while before.len() < 40 {
        assert!(
            Instant::now() < until,
            "first consumer got {}",
            before.len()
        );
        for r in first.poll(Duration::from_millis(200)).await.unwrap() {
            before.push(String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned());
        }
    }
    first.commit_sync().await.unwrap();
    let positions: BTreeMap<TopicPartition, i64> = first
        .assignment()
        .into_iter()
        .filter_map(|tp| first.current_position(&tp).map(|p| (tp, p)))
        .collect();
    let committed = first.committed(&first.assignment()).await.unwrap();
    for (tp, p) in &positions {
        assert_eq!(committed[tp].as_ref().map(|c| c.offset), Some(*p), "{tp:?}");
    }
    let _ = first.close(Duration::from_secs(5)).await;

    let second = consumer(protocol, &group, &[]).await;
    second.subscribe([topic.clone()]).await.unwrap();
    let mut after = Vec::new();
    let mut first_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(60);
    while before.len() + after.len() < sent.len() {
        assert!(
            Instant::now() < until,
            "second consumer got {} of {}",
            after.len(),
            sent.len() - before.len()
        );
        for r in second.poll(Duration::from_millis(200)).await.unwrap() {
            first_offsets.entry(r.partition).or_insert(r.offset);
            after.push(String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for r in second.poll(Duration::from_millis(200)).await.unwrap() {
        after.push(String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned());
    }
    for (tp, p) in &positions {
        if let Some(first) = first_offsets.get(&tp.partition) {
            assert_eq!(first, p, "{tp:?} resumed at the commit");
        }
    }
    let b: BTreeSet<&String> = before.iter().collect();
    let a: BTreeSet<&String> = after.iter().collect();
    assert!(b.is_disjoint(&a), "records read again after the restart");
    assert_eq!(before.len() + after.len(), sent.len(), "duplicates");
    assert_eq!(b.union(&a).count(), sent.len(), "lost records");
    let _ = second.close(Duration::from_secs(5)).await;
}

async fn commits_during_a_rebalance_succeed_or_fail_typed(protocol: Protocol) {
    let topic = topic("group-crb").await;
    let group = unique_name("g-crb");
    produce(&topic, "a", 10).await;
    let a = Arc::new(consumer(protocol, &group, &[]).await);
    a.subscribe([topic.clone()]).await.unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while a.assignment().len() != PARTITIONS as usize {
        assert!(Instant::now() < until);
        a.poll(Duration::from_millis(100)).await.unwrap();
    }
    // B joins while A commits in a loop (A keeps polling in between).
    let b = Arc::new(consumer(protocol, &group, &[]).await);
    b.subscribe([topic.clone()]).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let b_task = tokio::spawn(consume(b.clone(), Arc::default(), stop.clone(), false));
    let mut outcomes = BTreeMap::<String, usize>::new();
    let until = Instant::now() + protocol.rebalance_bound();
    while a.assignment().len() != 3 || b.assignment().len() != 3 {
        assert!(Instant::now() < until, "no rebalance");
        let offsets = BTreeMap::from([(
            TopicPartition::new(topic.clone(), 0),
            OffsetAndMetadata::new(1).with_metadata("during the rebalance"),
        )]);
        let key = match a.commit_offsets_sync(&offsets).await {
            Ok(()) => "ok".to_string(),
            Err(ConsumeError::Commit(
                e @ (CommitError::RebalanceInProgress
                | CommitError::IllegalGeneration
                | CommitError::StaleMemberEpoch
                | CommitError::UnknownMemberId),
            )) => format!("{e:?}"),
            Err(e) => panic!("untyped commit failure: {e:?}"),
        };
        *outcomes.entry(key).or_default() += 1;
        a.poll(Duration::from_millis(20)).await.unwrap();
    }
    // Once stable again, a commit goes through, metadata included.
    let offsets = BTreeMap::from([(
        TopicPartition::new(topic.clone(), 0),
        OffsetAndMetadata::new(2).with_metadata("after"),
    )]);
    a.commit_offsets_sync(&offsets).await.unwrap();
    let committed = b
        .committed(&[TopicPartition::new(topic.clone(), 0)])
        .await
        .unwrap();
    let c = committed[&TopicPartition::new(topic.clone(), 0)]
        .clone()
        .unwrap();
    assert_eq!((c.offset, c.metadata.as_deref()), (2, Some("after")));
    eprintln!("commit outcomes during the rebalance: {outcomes:?}");
    assert!(outcomes.contains_key("ok"), "{outcomes:?}");
    stop.store(true, Ordering::Relaxed);
    b_task.await.unwrap();
    let _ = a.close(Duration::from_secs(5)).await;
    let _ = b.close(Duration::from_secs(5)).await;
}

/// Classic-only: the assignor is the client's choice (KIP-848 assigns on the broker).
mod classic_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitions_that_move_after_consumption_are_not_read_twice() {
        // Eager (everything revoked, committed on revoke) and cooperative (only what moves).
        for strategy in ["range", "cooperative-sticky"] {
            moved_partitions_exactly_once(strategy).await;
        }
    }

    /// The first member reads everything before the others join, so every partition that
    /// moves carries records already handed out: only the commit on revoke keeps the new
    /// owner from reading them again.
    async fn moved_partitions_exactly_once(strategy: &str) {
        let topic = topic("group-c3").await;
        let group = unique_name("g-c3");
        let mut sent = produce(&topic, "a", 50).await;
        let seen: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut consumers = Vec::new();
        for _ in 0..3 {
            let extra = [("partition.assignment.strategy", strategy)];
            let c = Arc::new(consumer(Protocol::Classic, &group, &extra).await);
            let listener = Arc::new(CommitOnRevoke {
                revoked: Mutex::new(Vec::new()),
            });
            c.subscribe_with(
                GroupSubscription::Topics(vec![topic.clone()]),
                Some(listener),
            )
            .await
            .unwrap();
            tasks.push(tokio::spawn(consume(
                c.clone(),
                seen.clone(),
                stop.clone(),
                false,
            )));
            consumers.push(c);
            if consumers.len() == 1 {
                wait_for(&seen, sent.len(), Duration::from_secs(30)).await;
            }
            let c = consumers.last().unwrap();
            let until = Instant::now() + Duration::from_secs(30);
            while c.assignment().is_empty() {
                assert!(
                    Instant::now() < until,
                    "member {} got nothing",
                    consumers.len()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        sent.extend(produce(&topic, "b", 50).await);
        wait_for(&seen, sent.len(), Duration::from_secs(90)).await;
        // Anything duplicated would show up now.
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let seen = seen.lock().unwrap().clone();
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{strategy}: duplicates");
        assert_eq!(unique, sent, "{strategy}: lost records");
        let assigned: Vec<usize> = consumers.iter().map(|c| c.assignment().len()).collect();
        assert_eq!(assigned, [2, 2, 2], "one group, an even split");
        for c in consumers {
            let _ = c.close(Duration::from_secs(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_commits_land_in_the_order_they_were_made() {
        let topic = topic("group-async").await;
        let group = unique_name("g-async");
        let c = consumer(Protocol::Classic, &group, &[]).await;
        c.subscribe([topic.clone()]).await.unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while c.assignment().len() != PARTITIONS as usize {
            assert!(Instant::now() < until);
            c.poll(Duration::from_millis(100)).await.unwrap();
        }
        let tp = TopicPartition::new(topic.clone(), 0);
        let handles: Vec<_> = (1..=30)
            .map(|offset| {
                let offsets = BTreeMap::from([(tp.clone(), OffsetAndMetadata::new(offset))]);
                c.commit_async(Some(offsets)).unwrap()
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        let committed = c.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!(committed[&tp].as_ref().map(|o| o.offset), Some(30));
        let _ = c.close(Duration::from_secs(5)).await;
    }
}
