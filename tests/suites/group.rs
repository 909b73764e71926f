//! Classic consumer groups against the real broker: members of one group share a topic's
//! partitions with no overlap and no gap, a member that vanishes without leaving is replaced
//! within the session timeout, static members come back without a rebalance, cooperative
//! rebalances move only what must move, and a kafkit member shares a group with librdkafka
//! (`kcat -G`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::group::{GroupEvent, GroupMember, GroupSettings, GroupSubscription};
use kafkit::state::group::{
    Assignor, CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor, TopicPartition,
};
use kafkit_tests::{kafka, unique_name};
use tokio::io::{AsyncBufReadExt, BufReader};

const PARTITIONS: i32 = 6;

async fn topic(prefix: &str) -> String {
    kafkit_tests::fill::topic(&kafka().bootstrap, prefix, PARTITIONS).await
}

fn settings(group: &str, assignor: Arc<dyn Assignor>) -> GroupSettings {
    let mut s = GroupSettings::new(group);
    s.session_timeout = Duration::from_millis(6_000);
    s.heartbeat_interval = Duration::from_millis(500);
    s.rebalance_timeout = Duration::from_millis(20_000);
    s.assignors = vec![assignor];
    s
}

async fn join(settings: GroupSettings, topic: &str) -> GroupMember {
    let cluster = Cluster::connect(ClusterConfig::new(&kafka().bootstrap))
        .await
        .unwrap();
    GroupMember::join(
        cluster,
        settings,
        GroupSubscription::Topics(vec![topic.to_string()]),
    )
    .await
    .unwrap()
}

/// Every event a member saw, in order.
#[derive(Debug, Default, Clone)]
struct Log {
    events: Vec<GroupEvent>,
}

/// Drives the members (answers revocations at once, keeps polling) until `done` holds for
/// their assignments, or fails at `deadline`.
async fn drive(
    members: &mut [GroupMember],
    logs: &mut [Log],
    deadline: Duration,
    done: impl Fn(&[GroupMember]) -> bool,
) {
    let until = Instant::now() + deadline;
    loop {
        for (m, log) in members.iter_mut().zip(logs.iter_mut()) {
            m.poll_tick();
            while let Ok(event) =
                tokio::time::timeout(Duration::from_millis(20), m.next_event()).await
            {
                let event = event.unwrap();
                if let GroupEvent::Revoked(partitions) = &event {
                    m.revocation_done(partitions);
                }
                log.events.push(event);
            }
        }
        if done(members) {
            // Events are queued with the state change they report: take the ones behind
            // what `done` saw.
            for (m, log) in members.iter_mut().zip(logs.iter_mut()) {
                while let Ok(event) =
                    tokio::time::timeout(Duration::from_millis(1), m.next_event()).await
                {
                    let event = event.unwrap();
                    if let GroupEvent::Revoked(partitions) = &event {
                        m.revocation_done(partitions);
                    }
                    log.events.push(event);
                }
            }
            return;
        }
        assert!(
            Instant::now() < until,
            "not settled within {deadline:?}: {:?}",
            members.iter().map(|m| m.assignment()).collect::<Vec<_>>()
        );
    }
}

fn stable_generation(m: &GroupMember) -> Option<i32> {
    match m {
        GroupMember::Classic(c) => c.stable_generation().map(|g| g.generation_id),
        _ => None,
    }
}

/// Every partition of `topic` owned by exactly one member, evenly, all members stable in
/// one generation (even: a cooperative member still giving partitions up shows them too).
fn settled(members: &[GroupMember], topic: &str) -> bool {
    let generations: BTreeSet<Option<i32>> = members.iter().map(stable_generation).collect();
    if generations.len() != 1 || generations.contains(&None) {
        return false;
    }
    let share = PARTITIONS as usize / members.len();
    if members.iter().any(|m| m.assignment().len() != share) {
        return false;
    }
    exact_cover(
        members.iter().map(|m| m.assignment()).collect::<Vec<_>>(),
        topic,
    )
}

fn exact_cover(assignments: Vec<Vec<TopicPartition>>, topic: &str) -> bool {
    let mut seen = BTreeSet::new();
    for a in &assignments {
        for tp in a {
            if !seen.insert(tp.clone()) {
                return false;
            }
        }
    }
    seen == (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect()
}

async fn close_all(members: Vec<GroupMember>) {
    for m in members {
        m.close(Instant::now() + Duration::from_secs(5))
            .await
            .expect("the member leaves");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_six_partitions_with_no_overlap_and_no_gap() {
    for assignor in [
        Arc::new(RangeAssignor) as Arc<dyn Assignor>,
        Arc::new(RoundRobinAssignor),
        Arc::new(CooperativeStickyAssignor),
    ] {
        let topic = topic("group-three").await;
        let group = unique_name("g-three");
        let mut members = Vec::new();
        for _ in 0..3 {
            members.push(join(settings(&group, assignor.clone()), &topic).await);
        }
        let mut logs = vec![Log::default(); 3];
        drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
            settled(m, &topic)
        })
        .await;
        for m in &members {
            assert_eq!(m.assignment().len(), 2, "{}: even split", assignor.name());
        }
        close_all(members).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_dropped_without_leaving_is_replaced_within_the_session_timeout() {
    let topic = topic("group-kill").await;
    let group = unique_name("g-kill");
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(join(settings(&group, Arc::new(RangeAssignor)), &topic).await);
    }
    let mut logs = vec![Log::default(); 3];
    drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
        settled(m, &topic)
    })
    .await;
    // Dropped, not closed: no LeaveGroup, its heartbeats just stop.
    let dropped = members.pop().unwrap();
    let orphaned = dropped.assignment();
    assert!(!orphaned.is_empty());
    drop(dropped);
    let killed_at = Instant::now();
    logs.pop();
    drive(&mut members, &mut logs, Duration::from_secs(30), |m| {
        settled(m, &topic)
    })
    .await;
    let took = killed_at.elapsed();
    // The coordinator notices after the 6 s session; the rest rebalance within a heartbeat
    // or two.
    assert!(took < Duration::from_secs(6 + 6), "took {took:?}");
    let now_owned: BTreeSet<TopicPartition> = members.iter().flat_map(|m| m.assignment()).collect();
    for tp in &orphaned {
        assert!(now_owned.contains(tp), "{tp:?} not reassigned");
    }
    close_all(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_rejoins_without_a_rebalance() {
    let topic = topic("group-static").await;
    let group = unique_name("g-static");
    let stat = |id: &str| {
        let mut s = settings(&group, Arc::new(RangeAssignor));
        s.group_instance_id = Some(id.to_string());
        s
    };
    let mut members = vec![join(stat("a"), &topic).await, join(stat("b"), &topic).await];
    let mut logs = vec![Log::default(); 2];
    drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
        settled(m, &topic)
    })
    .await;
    let generation = stable_generation(&members[0]);
    let b_owned = members[1].assignment();
    let b = members.pop().unwrap();
    logs.pop();
    // Static members do not send LeaveGroup on close.
    b.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("a static member stops");
    let events_before = logs[0].events.len();
    members.push(join(stat("b"), &topic).await);
    logs.push(Log::default());
    drive(&mut members, &mut logs, Duration::from_secs(30), |m| {
        settled(m, &topic) && !m[1].assignment().is_empty()
    })
    .await;
    assert_eq!(members[1].assignment(), b_owned, "same partitions back");
    assert_eq!(
        stable_generation(&members[0]),
        generation,
        "no new generation"
    );
    assert_eq!(
        logs[0].events.len(),
        events_before,
        "the other member saw nothing: {:?}",
        logs[0].events
    );
    close_all(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_moves_only_what_the_newcomer_gets() {
    let topic = topic("group-coop").await;
    let group = unique_name("g-coop");
    let coop = || settings(&group, Arc::new(CooperativeStickyAssignor));
    let mut members = vec![join(coop(), &topic).await, join(coop(), &topic).await];
    let mut logs = vec![Log::default(); 2];
    drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
        settled(m, &topic)
    })
    .await;
    let before: Vec<BTreeSet<TopicPartition>> = members
        .iter()
        .map(|m| m.assignment().into_iter().collect())
        .collect();
    let marks: Vec<usize> = logs.iter().map(|l| l.events.len()).collect();
    members.push(join(coop(), &topic).await);
    logs.push(Log::default());
    drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
        settled(m, &topic) && m.iter().all(|m| m.assignment().len() == 2)
    })
    .await;
    for (i, old) in before.iter().enumerate() {
        let now: BTreeSet<TopicPartition> = members[i].assignment().into_iter().collect();
        assert!(now.is_subset(old), "member {i} kept its own partitions");
        let revoked: BTreeSet<TopicPartition> = logs[i].events[marks[i]..]
            .iter()
            .flat_map(|e| match e {
                GroupEvent::Revoked(p) => p.clone(),
                GroupEvent::Lost(p) => panic!("member {i} lost {p:?}"),
                GroupEvent::Assigned(_) => Vec::new(),
            })
            .collect();
        let moved: BTreeSet<TopicPartition> = old.difference(&now).cloned().collect();
        assert_eq!(revoked, moved, "member {i} revoked only what moved");
    }
    close_all(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_rejoins_at_its_next_poll() {
    let topic = topic("group-poll").await;
    let group = unique_name("g-poll");
    let short = || {
        let mut s = settings(&group, Arc::new(RangeAssignor));
        s.rebalance_timeout = Duration::from_millis(3_000);
        s
    };
    let mut members = vec![join(short(), &topic).await, join(short(), &topic).await];
    let mut logs = vec![Log::default(); 2];
    drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
        settled(m, &topic)
    })
    .await;
    // Only the second member is driven (polled) now: the first one's max.poll.interval.ms
    // (3 s) passes, it loses its partitions and leaves; the second gets everything.
    let (a, b) = members.split_at_mut(1);
    let (log_a, log_b) = logs.split_at_mut(1);
    let stopped_at = Instant::now();
    drive(b, log_b, Duration::from_secs(20), |m| {
        m[0].assignment().len() == PARTITIONS as usize && stable_generation(&m[0]).is_some()
    })
    .await;
    assert!(
        stopped_at.elapsed() < Duration::from_secs(3 + 6),
        "{:?}",
        stopped_at.elapsed()
    );
    assert!(a[0].assignment().is_empty());
    let event = tokio::time::timeout(Duration::from_secs(1), a[0].next_event())
        .await
        .expect("an event")
        .unwrap();
    assert!(
        matches!(event, GroupEvent::Lost(ref p) if p.len() == 3),
        "{event:?}"
    );
    log_a[0].events.push(event);
    // Polling again brings it back.
    drive(&mut members, &mut logs, Duration::from_secs(30), |m| {
        settled(m, &topic)
    })
    .await;
    close_all(members).await;
}

/// Raises `topic`'s partition count to `count` (CreatePartitions through any broker).
async fn add_partitions(topic: &str, count: i32) {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let cluster = Cluster::connect(ClusterConfig::new(&kafka().bootstrap))
        .await
        .unwrap();
    let conn = cluster.any_connection().await.unwrap();
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(10_000);
    let version = conn.version(ApiKey::CreatePartitions).unwrap();
    let response = conn
        .send(&request, version, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
    cluster.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_rejoins_when_partitions_are_added() {
    let topic = topic("group-grow").await;
    let group = unique_name("g-grow");
    let s = || {
        let mut s = settings(&group, Arc::new(RangeAssignor));
        s.metadata_max_age = Duration::from_millis(500);
        s
    };
    let mut members = vec![join(s(), &topic).await, join(s(), &topic).await];
    let mut logs = vec![Log::default(); 2];
    drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
        settled(m, &topic)
    })
    .await;
    add_partitions(&topic, PARTITIONS + 2).await;
    drive(&mut members, &mut logs, Duration::from_secs(30), |m| {
        let all: BTreeSet<TopicPartition> = m.iter().flat_map(|m| m.assignment()).collect();
        all.len() == (PARTITIONS + 2) as usize
            && m.iter().all(|m| m.assignment().len() == 4)
            && m.iter()
                .map(stable_generation)
                .collect::<BTreeSet<_>>()
                .len()
                == 1
    })
    .await;
    close_all(members).await;
}

/// The partitions of `topic` listed after the last `": "` of a kcat rebalance line
/// (`t [0], t [3]`).
fn kcat_partitions(line: &str, topic: &str) -> Vec<TopicPartition> {
    let list = line.rsplit("): ").next().unwrap_or("");
    let list = list.split("assigned: ").last().unwrap_or(list);
    list.split(',')
        .filter_map(|item| {
            let (t, p) = item.trim().split_once(" [")?;
            let p: i32 = p.trim_end_matches(']').parse().ok()?;
            (t == topic).then(|| TopicPartition::new(t, p))
        })
        .collect()
}

/// Applies one kcat stderr line to what kcat owns: eager "assigned:" / "revoked:", and
/// cooperative "incremental assignment" / "incremental revoke".
fn kcat_apply(line: &str, topic: &str, owned: &mut BTreeSet<TopicPartition>) {
    if !line.contains("rebalanced") {
        return;
    }
    let listed = kcat_partitions(line, topic);
    if line.contains("incremental assignment") {
        owned.extend(listed);
    } else if line.contains("incremental revoke") {
        for tp in listed {
            owned.remove(&tp);
        }
    } else if line.contains("assigned:") {
        *owned = listed.into_iter().collect();
    } else if line.contains("revoked:") {
        owned.clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafkit_member_and_a_kcat_member_share_the_partitions() {
    for strategy in ["range", "roundrobin", "cooperative-sticky"] {
        let topic = topic("group-kcat").await;
        let group = unique_name("g-kcat");
        let assignor: Arc<dyn Assignor> = match strategy {
            "range" => Arc::new(RangeAssignor),
            "roundrobin" => Arc::new(RoundRobinAssignor),
            _ => Arc::new(CooperativeStickyAssignor),
        };
        let mut kcat = tokio::process::Command::new("kcat")
            .args(["-b", &kafka().bootstrap, "-G", &group, &topic])
            .args(["-X", &format!("partition.assignment.strategy={strategy}")])
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kcat (scripts/install-tools.sh)");
        let stderr = kcat.stderr.take().unwrap();
        let kcat_assignment = Arc::new(std::sync::Mutex::new(BTreeSet::<TopicPartition>::new()));
        let seen = kcat_assignment.clone();
        let t = topic.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                kcat_apply(&line, &t, &mut seen.lock().unwrap());
            }
        });
        let mut members = vec![join(settings(&group, assignor), &topic).await];
        let mut logs = vec![Log::default()];
        let kcat_view = kcat_assignment.clone();
        drive(&mut members, &mut logs, Duration::from_secs(60), |m| {
            let k: Vec<TopicPartition> = kcat_view.lock().unwrap().iter().cloned().collect();
            stable_generation(&m[0]).is_some()
                && !k.is_empty()
                && !m[0].assignment().is_empty()
                && exact_cover(vec![m[0].assignment(), k], &topic)
        })
        .await;
        let k = kcat_assignment.lock().unwrap().clone();
        assert!(k.is_disjoint(&members[0].assignment().into_iter().collect()));
        assert_eq!(k.len() + members[0].assignment().len(), PARTITIONS as usize);
        let by_owner: BTreeMap<&str, usize> =
            BTreeMap::from([("kafkit", members[0].assignment().len()), ("kcat", k.len())]);
        assert_eq!(by_owner["kafkit"], 3, "{strategy}: {by_owner:?}");
        close_all(members).await;
        let _ = kcat.kill().await;
        reader.abort();
    }
}

// ---- the Consumer in a group: subscribe, listener, commits ----

mod consumers_support {
    use std::collections::BTreeSet;

    use kafkit_tests::kafka;

    use super::PARTITIONS;

    /// Writes `count` records per partition, values `"{tag}-{partition}-{i}"`.
    pub(super) async fn produce(topic: &str, tag: &str, count: usize) -> BTreeSet<String> {
        kafkit_tests::fill::produce_tagged(&kafka().bootstrap, topic, PARTITIONS, tag, count).await
    }
}

mod auto_commit_and_patterns {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use kafkit::admin::{Admin, NewTopic};
    use kafkit::config::ConsumerConfig;
    use kafkit::consumer::Consumer;
    use kafkit::TopicPartition;
    use kafkit_tests::{kafka, unique_name};

    use super::consumers_support::produce;
    use super::{topic, PARTITIONS};

    async fn consumer(group: &str, extra: &[(&str, &str)]) -> Consumer {
        let mut props = vec![
            ("bootstrap.servers", kafka().bootstrap.as_str()),
            ("group.id", group),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ];
        props.extend_from_slice(extra);
        Consumer::new(ConsumerConfig::from_properties(props).unwrap())
            .await
            .unwrap()
    }

    async fn read(consumer: &Consumer, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let until = Instant::now() + Duration::from_secs(60);
        while out.len() < n {
            assert!(Instant::now() < until, "got {} of {n}", out.len());
            for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
                out.push(String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned());
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn auto_commit_on_close_lets_the_next_consumer_resume() {
        let topic = topic("group-auto").await;
        let group = unique_name("g-auto");
        let first_batch = produce(&topic, "a", 10).await;
        let auto = [
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "200"),
        ];
        let first = consumer(&group, &auto).await;
        first.subscribe([topic.clone()]).await.unwrap();
        let got = read(&first, first_batch.len()).await;
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), first_batch);
        // close commits the positions (auto-commit) and leaves.
        let _ = first.close(Duration::from_secs(5)).await;

        let second_batch = produce(&topic, "b", 10).await;
        let second = consumer(&group, &auto).await;
        second.subscribe([topic.clone()]).await.unwrap();
        let got = read(&second, second_batch.len()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let extra = second.poll(Duration::from_millis(200)).await.unwrap();
        assert!(extra.is_empty(), "read again: {} records", extra.len());
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), second_batch);
        // The interval commit ran too: committed = end of each partition.
        let parts: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            second.poll(Duration::from_millis(100)).await.unwrap();
            let committed = second.committed(&parts).await.unwrap();
            if committed
                .values()
                .all(|c| c.as_ref().map(|c| c.offset) == Some(20))
            {
                break;
            }
            assert!(
                Instant::now() < until,
                "auto-commit did not run: {committed:?}"
            );
        }
        let _ = second.close(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pattern_subscription_gets_every_matching_topic() {
        let prefix = unique_name("group-pat");
        let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
        let (t1, t2, other) = (
            format!("{prefix}-x"),
            format!("{prefix}-y"),
            format!("{prefix}z"),
        );
        admin
            .create_topics(&[
                NewTopic::new(&t1, 2, 1),
                NewTopic::new(&t2, 2, 1),
                NewTopic::new(&other, 2, 1),
            ])
            .await
            .unwrap();
        let c = consumer(&unique_name("g-pat"), &[]).await;
        c.subscribe_pattern(&format!("{}-.*", regex_escape(&prefix)))
            .await
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while c.assignment().len() < 4 {
            assert!(Instant::now() < until, "{:?}", c.assignment());
            c.poll(Duration::from_millis(100)).await.unwrap();
        }
        let topics: BTreeSet<String> = c.assignment().into_iter().map(|tp| tp.topic).collect();
        assert_eq!(topics, BTreeSet::from([t1, t2]), "{other} must not match");
        c.unsubscribe().await.expect("unsubscribe");
        assert!(c.assignment().is_empty());
        let _ = c.close(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_created_later_joins_a_pattern_subscription() {
        let prefix = unique_name("group-patlate");
        let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
        let first = format!("{prefix}-1");
        admin
            .create_topics(&[NewTopic::new(&first, 1, 1)])
            .await
            .unwrap();
        let c = consumer(&unique_name("g-patlate"), &[("metadata.max.age.ms", "500")]).await;
        c.subscribe_pattern(&format!("{}-.*", regex_escape(&prefix)))
            .await
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while c.assignment().is_empty() {
            assert!(Instant::now() < until);
            c.poll(Duration::from_millis(100)).await.unwrap();
        }
        let second = format!("{prefix}-2");
        admin
            .create_topics(&[NewTopic::new(&second, 2, 1)])
            .await
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while c.assignment().len() < 3 {
            assert!(Instant::now() < until, "{:?}", c.assignment());
            c.poll(Duration::from_millis(100)).await.unwrap();
        }
        let topics: BTreeSet<String> = c.assignment().into_iter().map(|tp| tp.topic).collect();
        assert_eq!(topics, BTreeSet::from([first, second]));
        let _ = c.close(Duration::from_secs(5)).await;
    }

    fn regex_escape(s: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else {
                    format!("\\{c}")
                }
            })
            .collect()
    }
}

mod faults {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use kafka_protocol::messages::ApiKey;
    use kafkit::config::ConsumerConfig;
    use kafkit::consumer::{ConsumeError, Consumer};
    use kafkit::TopicPartition;
    use kafkit_tests::proxy::{LostResponse, ProxyCluster};
    use kafkit_tests::{kafka, unique_name};

    use super::consumers_support::produce;
    use super::{topic, PARTITIONS};

    /// Polls and commits after every batch, through connection cuts: errors must be typed and
    /// retriable (or a commit refused by a rebalance), never anything else.
    async fn consume(c: Arc<Consumer>, seen: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match c.poll(Duration::from_millis(200)).await {
                Ok(records) => {
                    seen.lock().unwrap().extend(
                        records.iter().map(|r| {
                            String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned()
                        }),
                    );
                    if !records.is_empty() {
                        match c.commit_sync().await {
                            Ok(()) => {}
                            Err(ConsumeError::Commit(e))
                                if e.is_retriable() || e.is_membership_error() => {}
                            Err(e) => panic!("commit failed untyped: {e:?}"),
                        }
                    }
                }
                Err(e) if e.is_retriable() => {}
                Err(ConsumeError::Commit(_)) => {}
                Err(e) => panic!("poll failed: {e:?}"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_and_membership_survive_lost_coordinator_connections() {
        let proxy = ProxyCluster::start(&kafka().bootstrap).await;
        let control = proxy.control();
        let topic = topic("group-cut").await;
        let group = unique_name("g-cut");
        let mut sent = produce(&topic, "a", 20).await;
        let bootstrap = proxy.bootstrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut consumers = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let config = ConsumerConfig::from_properties([
                ("bootstrap.servers", bootstrap.as_str()),
                ("group.id", group.as_str()),
                ("auto.offset.reset", "earliest"),
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "300"),
                ("request.timeout.ms", "5000"),
            ])
            .unwrap();
            let c = Arc::new(Consumer::new(config).await.unwrap());
            c.subscribe([topic.clone()]).await.unwrap();
            tasks.push(tokio::spawn(consume(c.clone(), seen.clone(), stop.clone())));
            consumers.push(c);
        }
        // Faults while the group forms and consumes: every connection cut, then lost
        // responses to commits, heartbeats and a JoinGroup.
        for round in 0..3u32 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            control.cut_all();
            control.drop_response_of(ApiKey::OffsetCommit, 1, LostResponse::Cut);
            control.drop_response_of(ApiKey::Heartbeat, 2, LostResponse::Cut);
            if round == 0 {
                control.drop_response_of(ApiKey::JoinGroup, 1, LostResponse::Cut);
            }
            sent.extend(produce(&topic, &format!("b{round}"), 5).await);
        }
        let until = Instant::now() + Duration::from_secs(60);
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
        let stats = control.stats();
        eprintln!(
            "proxy: {} responses dropped, {} connections, {} JoinGroup",
            stats.responses_dropped,
            stats.connections_accepted,
            stats.requests_of(ApiKey::JoinGroup)
        );
        assert!(stats.responses_dropped >= 3, "the faults fired: {stats:?}");
        control.clear_faults();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        // After the faults: the group is whole and a final commit lands at the log ends.
        let owned: BTreeSet<TopicPartition> =
            consumers.iter().flat_map(|c| c.assignment()).collect();
        assert_eq!(owned.len(), PARTITIONS as usize, "{owned:?}");
        let per_partition = (sent.len() / PARTITIONS as usize) as i64;
        let until = Instant::now() + Duration::from_secs(30);
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
            assert_eq!(
                committed[tp].as_ref().map(|c| c.offset),
                Some(per_partition),
                "{tp:?}"
            );
        }
        for c in consumers {
            let _ = c.close(Duration::from_secs(5)).await;
        }
        proxy.shutdown();
    }
}
