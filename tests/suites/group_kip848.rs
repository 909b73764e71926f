//! The KIP-848 consumer group member (`group.protocol=consumer`) against the real broker,
//! driven through the `GroupMember` interface: disjoint and complete assignments, partitions
//! moving when a member closes or disappears, commits with the member epoch, static
//! membership, fatal errors, regex subscriptions.
//!
//! The broker's defaults apply (Kafka 4.2): heartbeat interval 5 s, session timeout 45 s (also
//! its minimum), the `uniform` assignor. A rebalance therefore takes a few heartbeats; every
//! wait below has a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafkit::admin::{Admin, NewTopic};
use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::group::{GroupEvent, GroupMember, GroupProtocol, GroupSettings, GroupSubscription};
use kafkit::state::group::commit::{CommitError, MemberIdentity};
use kafkit::Error;
use kafkit::{OffsetAndMetadata, TopicPartition};
use kafkit_tests::{kafka, unique_name};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Long enough for a few heartbeat rounds (5 s each) of several members.
const REBALANCE: Duration = Duration::from_secs(60);

async fn cluster() -> Cluster {
    cluster_on(&kafka().bootstrap).await
}

async fn cluster_on(bootstrap: &str) -> Cluster {
    let mut config = ClusterConfig::new(bootstrap);
    config.request_timeout = Duration::from_secs(10);
    tokio::time::timeout(Duration::from_secs(15), Cluster::connect(config))
        .await
        .expect("connect in time")
        .expect("connect")
}

async fn topic(partitions: i32) -> String {
    let name = unique_name("kip848");
    create(&name, partitions).await;
    name
}

async fn create(name: &str, partitions: i32) {
    let admin = Admin::connect(&kafka().bootstrap).await.expect("admin");
    admin
        .create_topics(&[NewTopic::new(name, partitions, 1)])
        .await
        .expect("create topic");
}

fn settings(group: &str) -> GroupSettings {
    let mut s = GroupSettings::new(group);
    s.protocol = GroupProtocol::Consumer;
    s.request_timeout = Duration::from_secs(10);
    s
}

fn all(topic: &str, partitions: i32) -> BTreeSet<TopicPartition> {
    (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect()
}

/// A member driven by a task of its own, as a consumer would: it applies every event to its
/// owned set, confirms revocations at once and ticks the poll timer.
struct Driven {
    owned: Arc<Mutex<BTreeSet<TopicPartition>>>,
    log: Arc<Mutex<Vec<GroupEvent>>>,
    error: Arc<Mutex<Option<Error>>>,
    /// Whether revocations are confirmed (a stuck rebalance callback when not).
    confirm: Arc<AtomicBool>,
    /// Whether the application polls (`poll_tick`).
    ticking: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Driven {
    async fn start(settings: GroupSettings, subscription: GroupSubscription) -> Driven {
        Driven::start_on(&kafka().bootstrap, settings, subscription).await
    }

    async fn start_on(
        bootstrap: &str,
        settings: GroupSettings,
        subscription: GroupSubscription,
    ) -> Driven {
        let member = GroupMember::join(cluster_on(bootstrap).await, settings, subscription)
            .await
            .expect("join");
        Driven::drive(member)
    }

    fn drive(member: GroupMember) -> Driven {
        let owned = Arc::new(Mutex::new(BTreeSet::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let error = Arc::new(Mutex::new(None));
        let confirm = Arc::new(AtomicBool::new(true));
        let ticking = Arc::new(AtomicBool::new(true));
        let (stop, mut stopped) = oneshot::channel::<bool>();
        let task = {
            let (owned, log, error) = (owned.clone(), log.clone(), error.clone());
            let (confirm, ticking) = (confirm.clone(), ticking.clone());
            tokio::spawn(async move {
                loop {
                    if ticking.load(Ordering::SeqCst) {
                        member.poll_tick();
                    }
                    tokio::select! {
                        close = &mut stopped => {
                            if close.unwrap_or(false) {
                                member
                                    .close(Instant::now() + Duration::from_secs(10))
                                    .await
                                    .expect("the member leaves");
                            }
                            // else: dropped, as a crashed process would be.
                            return;
                        }
                        event = tokio::time::timeout(Duration::from_millis(500), member.next_event()) => {
                            match event {
                                Err(_) => continue,
                                Ok(Err(err)) => {
                                    *error.lock().unwrap() = Some(err);
                                    return;
                                }
                                Ok(Ok(event)) => {
                                    log.lock().unwrap().push(event.clone());
                                    let mut owned = owned.lock().unwrap();
                                    match event {
                                        GroupEvent::Assigned(tps) => {
                                            for tp in tps {
                                                assert!(owned.insert(tp.clone()), "assigned twice: {tp:?}");
                                            }
                                        }
                                        GroupEvent::Revoked(tps) => {
                                            for tp in &tps {
                                                assert!(owned.remove(tp), "revoked but not owned: {tp:?}");
                                            }
                                            drop(owned);
                                            if confirm.load(Ordering::SeqCst) {
                                                member.revocation_done(&tps);
                                            }
                                        }
                                        GroupEvent::Lost(tps) => {
                                            for tp in &tps {
                                                owned.remove(tp);
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            })
        };
        Driven {
            owned,
            log,
            error,
            confirm,
            ticking,
            stop: Some(stop),
            task,
        }
    }

    fn events(&self) -> Vec<GroupEvent> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until an event matching `what` is in the log.
    async fn wait_event(
        &self,
        what: &str,
        within: Duration,
        matches: impl Fn(&GroupEvent) -> bool,
    ) {
        let deadline = Instant::now() + within;
        while !self.events().iter().any(&matches) {
            assert!(self.error().is_none(), "{:?}", self.error());
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn owned(&self) -> BTreeSet<TopicPartition> {
        self.owned.lock().unwrap().clone()
    }

    fn error(&self) -> Option<Error> {
        self.error.lock().unwrap().clone()
    }

    /// Closes the member (leave heartbeat) and waits for its task.
    async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("member closes in time")
            .expect("member task");
    }

    /// Drops the member without leaving (a crash): it just stops heartbeating.
    async fn drop_member(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(false);
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("member task ends")
            .expect("member task");
    }
}

/// Waits until the members' owned sets are disjoint, cover `expected` and are each of a size
/// in `sizes`; panics with the last view at the deadline.
async fn wait_balanced(members: &[&Driven], expected: &BTreeSet<TopicPartition>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let views: Vec<BTreeSet<TopicPartition>> = members.iter().map(|m| m.owned()).collect();
        for m in members {
            assert!(m.error().is_none(), "member failed: {:?}", m.error());
        }
        let total: usize = views.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<TopicPartition> = views.iter().flatten().cloned().collect();
        let fair = expected.len() / members.len();
        let balanced = views.iter().all(|v| v.len() == fair || v.len() == fair + 1);
        if total == union.len() && &union == expected && balanced {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no disjoint complete assignment within {within:?}: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_get_disjoint_complete_assignments() {
    let topic = topic(6).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![topic.clone()]);
    let a = Driven::start(settings(&group), subscription.clone()).await;
    let b = Driven::start(settings(&group), subscription.clone()).await;
    let c = Driven::start(settings(&group), subscription.clone()).await;
    wait_balanced(&[&a, &b, &c], &all(&topic, 6), REBALANCE).await;
    for m in [&a, &b, &c] {
        assert_eq!(m.owned().len(), 2, "uniform assignor: 2 each");
    }
    // Each member saw only increments and revocations of what it owned (checked in the
    // driver); nobody lost anything.
    for m in [&a, &b, &c] {
        let log = m.log.lock().unwrap().clone();
        assert!(
            !log.iter().any(|e| matches!(e, GroupEvent::Lost(_))),
            "{log:?}"
        );
    }
    a.close().await;
    b.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_members_partitions_move_to_the_others() {
    let topic = topic(6).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![topic.clone()]);
    let a = Driven::start(settings(&group), subscription.clone()).await;
    let b = Driven::start(settings(&group), subscription.clone()).await;
    let c = Driven::start(settings(&group), subscription.clone()).await;
    wait_balanced(&[&a, &b, &c], &all(&topic, 6), REBALANCE).await;
    let gone = c.owned();
    let closed_at = Instant::now();
    c.close().await;
    // The leave heartbeat (epoch -1) frees its partitions at once: two heartbeat rounds, far
    // less than the 45 s session timeout.
    wait_balanced(&[&a, &b], &all(&topic, 6), Duration::from_secs(30)).await;
    assert!(closed_at.elapsed() < Duration::from_secs(30));
    let moved: BTreeSet<TopicPartition> = a.owned().union(&b.owned()).cloned().collect();
    assert!(gone.is_subset(&moved));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_members_partitions_move_after_the_session_timeout() {
    let topic = topic(6).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![topic.clone()]);
    let a = Driven::start(settings(&group), subscription.clone()).await;
    let b = Driven::start(settings(&group), subscription.clone()).await;
    wait_balanced(&[&a, &b], &all(&topic, 6), REBALANCE).await;
    let dropped_at = Instant::now();
    b.drop_member().await;
    // Nothing moves before the broker's session timeout (45 s by default, its minimum too)…
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(a.owned().len(), 3, "moved before the session timeout");
    // …then the survivor gets everything.
    wait_balanced(&[&a], &all(&topic, 6), Duration::from_secs(75)).await;
    let took = dropped_at.elapsed();
    assert!(took >= Duration::from_secs(40), "{took:?}");
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_committed_round_trip_with_the_member_epoch() {
    let topic = topic(2).await;
    let group = unique_name("kip848-g");
    let member = GroupMember::join(
        cluster().await,
        settings(&group),
        GroupSubscription::Topics(vec![topic.clone()]),
    )
    .await
    .expect("join");
    let mut owned = BTreeSet::new();
    let deadline = Instant::now() + REBALANCE;
    while owned.len() < 2 {
        member.poll_tick();
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, member.next_event()).await {
            Ok(Ok(GroupEvent::Assigned(tps))) => owned.extend(tps),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => panic!("no assignment within {REBALANCE:?}"),
        }
    }
    assert_eq!(owned, all(&topic, 2));
    let generation = member.generation().expect("joined");
    assert!(generation.generation_id > 0, "{generation:?}");
    assert_eq!(generation.protocol, None);
    uuid::Uuid::parse_str(&generation.member_id).expect("a client-made UUID member id");

    let GroupMember::Consumer(m) = &member else {
        panic!("not a KIP-848 member");
    };
    let offsets = BTreeMap::from([
        (
            TopicPartition::new(&topic, 0),
            OffsetAndMetadata::new(42).with_metadata("kip848"),
        ),
        (TopicPartition::new(&topic, 1), OffsetAndMetadata::new(7)),
    ]);
    m.commit(&offsets)
        .await
        .expect("commit with the member epoch");
    let committed = m
        .committed(&[
            TopicPartition::new(&topic, 0),
            TopicPartition::new(&topic, 1),
        ])
        .await
        .expect("committed");
    let p0 = committed[&TopicPartition::new(&topic, 0)]
        .clone()
        .expect("offset of partition 0");
    assert_eq!(p0.offset, 42);
    assert_eq!(p0.metadata.as_deref(), Some("kip848"));
    assert_eq!(
        committed[&TopicPartition::new(&topic, 1)]
            .as_ref()
            .map(|o| o.offset),
        Some(7)
    );

    // The broker checks the epoch: one from the future is stale.
    let coordinators = kafkit::io::coordinator::Coordinators::new(cluster().await);
    let wrong = MemberIdentity::member(
        generation.generation_id + 1_000,
        generation.member_id.clone(),
        None,
    );
    let err = coordinators
        .commit_offsets(
            &group,
            &wrong,
            &offsets,
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::StaleMemberEpoch), "{err:?}");
    member
        .close(Instant::now() + Duration::from_secs(10))
        .await
        .expect("the member leaves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_comes_back_to_its_partitions() {
    let topic = topic(6).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![topic.clone()]);
    let static_settings = |instance: &str| {
        let mut s = settings(&group);
        s.group_instance_id = Some(instance.to_owned());
        s
    };
    let a = Driven::start(static_settings("instance-a"), subscription.clone()).await;
    let b = Driven::start(static_settings("instance-b"), subscription.clone()).await;
    wait_balanced(&[&a, &b], &all(&topic, 6), REBALANCE).await;
    let a_had = a.owned();
    let b_had = b.owned();

    // A second live member with b's instance id is refused for good.
    let dup = Driven::start(static_settings("instance-b"), subscription.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while dup.error().is_none() {
        assert!(Instant::now() < deadline, "duplicate instance not refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        matches!(
            dup.error(),
            Some(Error::Broker {
                code: ResponseError::UnreleasedInstanceId,
                ..
            })
        ),
        "{:?}",
        dup.error()
    );
    assert!(dup.owned().is_empty());
    dup.drop_member().await;

    // a leaves for now (epoch -2): the broker keeps its partitions for it…
    a.close().await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(b.owned(), b_had, "b took a static member's partitions");
    // …and gives them back when the same instance comes back (a new member id).
    let a2 = Driven::start(static_settings("instance-a"), subscription.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while a2.owned() != a_had {
        assert!(a2.error().is_none(), "{:?}", a2.error());
        assert!(
            Instant::now() < deadline,
            "the static member did not get its partitions back: {:?} vs {a_had:?}",
            a2.owned()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(b.owned(), b_had);
    a2.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regex_subscription_is_resolved_by_the_broker() {
    let prefix = unique_name("kip848re");
    let first = format!("{prefix}-one");
    let second = format!("{prefix}-two");
    create(&first, 2).await;
    create(&second, 1).await;
    create(&format!("other-{prefix}"), 1).await;
    let group = unique_name("kip848-g");
    let regex = format!("{}-.*", prefix.replace('-', "\\-"));
    let a = Driven::start(settings(&group), GroupSubscription::Pattern(regex)).await;
    let mut expected = all(&first, 2);
    expected.extend(all(&second, 1));
    wait_balanced(&[&a], &expected, REBALANCE).await;
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_rejoins_on_the_next_poll() {
    let topic = topic(2).await;
    let group = unique_name("kip848-g");
    let mut s = settings(&group);
    // max.poll.interval.ms, also the rebalance timeout sent to the broker.
    s.rebalance_timeout = Duration::from_secs(4);
    let a = Driven::start(s, GroupSubscription::Topics(vec![topic.clone()])).await;
    wait_balanced(&[&a], &all(&topic, 2), REBALANCE).await;
    a.ticking.store(false, Ordering::SeqCst);
    a.wait_event(
        "Lost after the poll timeout",
        Duration::from_secs(10),
        |e| matches!(e, GroupEvent::Lost(tps) if tps.len() == 2),
    )
    .await;
    assert!(a.owned().is_empty());
    // No rejoin while the application does not poll.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.owned().is_empty());
    a.ticking.store(true, Ordering::SeqCst);
    wait_balanced(&[&a], &all(&topic, 2), REBALANCE).await;
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_does_not_revoke_in_time_is_fenced_and_rejoins() {
    let topic = topic(6).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![topic.clone()]);
    let mut slow = settings(&group);
    // The broker fences a member that keeps partitions to revoke past its rebalance timeout.
    slow.rebalance_timeout = Duration::from_secs(6);
    let a = Driven::start(slow, subscription.clone()).await;
    wait_balanced(&[&a], &all(&topic, 6), REBALANCE).await;
    a.confirm.store(false, Ordering::SeqCst);
    let b = Driven::start(settings(&group), subscription.clone()).await;
    a.wait_event("Revoked", REBALANCE, |e| {
        matches!(e, GroupEvent::Revoked(_))
    })
    .await;
    // Never confirmed: fenced (FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID) → what it still owns is
    // lost, and it rejoins with epoch 0.
    a.wait_event("Lost after fencing", Duration::from_secs(30), |e| {
        matches!(e, GroupEvent::Lost(_))
    })
    .await;
    let events = a.events();
    let revoked: BTreeSet<TopicPartition> = events
        .iter()
        .find_map(|e| match e {
            GroupEvent::Revoked(tps) => Some(tps.iter().cloned().collect()),
            _ => None,
        })
        .unwrap_or_default();
    let lost: BTreeSet<TopicPartition> = events
        .iter()
        .find_map(|e| match e {
            GroupEvent::Lost(tps) => Some(tps.iter().cloned().collect()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(revoked.is_disjoint(&lost), "{events:?}");
    assert_eq!(revoked.len() + lost.len(), 6, "{events:?}");
    a.confirm.store(true, Ordering::SeqCst);
    wait_balanced(&[&a, &b], &all(&topic, 6), REBALANCE).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_assignor_is_the_one_asked_for() {
    // Two topics of 3 partitions, 2 members: `range` gives both topics' partitions 0-1 to one
    // member and partition 2 of each to the other (4 + 2); `uniform` would balance 3 + 3.
    let first = topic(3).await;
    let second = topic(3).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![first.clone(), second.clone()]);
    let range = || {
        let mut s = settings(&group);
        s.remote_assignor = Some("range".into());
        s
    };
    let a = Driven::start(range(), subscription.clone()).await;
    let b = Driven::start(range(), subscription.clone()).await;
    let mut expected = all(&first, 3);
    expected.extend(all(&second, 3));
    let deadline = Instant::now() + REBALANCE;
    loop {
        let (x, y) = (a.owned(), b.owned());
        let mut sizes = [x.len(), y.len()];
        sizes.sort_unstable();
        let union: BTreeSet<TopicPartition> = x.union(&y).cloned().collect();
        if x.is_disjoint(&y) && union == expected && sizes == [2, 4] {
            // Each member has the same partition indexes in both topics.
            for owned in [&x, &y] {
                let of = |t: &str| -> BTreeSet<i32> {
                    owned
                        .iter()
                        .filter(|tp| tp.topic == t)
                        .map(|tp| tp.partition)
                        .collect()
                };
                assert_eq!(of(&first), of(&second), "{owned:?}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no range assignment: {x:?} / {y:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.close().await;
    b.close().await;

    // An assignor the broker does not have is refused for good.
    let mut unknown = settings(&unique_name("kip848-g"));
    unknown.remote_assignor = Some("no-such-assignor".into());
    let c = Driven::start(unknown, GroupSubscription::Topics(vec![first.clone()])).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.error().is_none() {
        assert!(Instant::now() < deadline, "unknown assignor not refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        matches!(
            c.error(),
            Some(Error::Broker {
                code: ResponseError::UnsupportedAssignor,
                ..
            })
        ),
        "{:?}",
        c.error()
    );
    c.drop_member().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_and_a_kip848_member_share_one_group() {
    // Kafka 4.x upgrades a classic group when a consumer-protocol member joins
    // (group.consumer.migration.policy=bidirectional by default): the broker then assigns
    // both, the classic member through JoinGroup/SyncGroup.
    let topic = topic(6).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![topic.clone()]);
    let mut classic = GroupSettings::new(&group);
    classic.request_timeout = Duration::from_secs(10);
    classic.session_timeout = Duration::from_secs(10);
    classic.heartbeat_interval = Duration::from_millis(500);
    let a = Driven::start(classic, subscription.clone()).await;
    wait_balanced(&[&a], &all(&topic, 6), REBALANCE).await;
    let b = Driven::start(settings(&group), subscription.clone()).await;
    wait_balanced(&[&a, &b], &all(&topic, 6), REBALANCE).await;
    b.close().await;
    wait_balanced(&[&a], &all(&topic, 6), REBALANCE).await;
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_survives_cut_connections_and_lost_heartbeat_responses() {
    use kafka_protocol::messages::ApiKey;
    use kafkit_tests::proxy::{LostResponse, ProxyCluster};

    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let control = proxy.control();
    let bootstrap = proxy.bootstrap();
    let topic = topic(6).await;
    let group = unique_name("kip848-g");
    let subscription = GroupSubscription::Topics(vec![topic.clone()]);
    let mut s = settings(&group);
    s.request_timeout = Duration::from_secs(5);
    let a = Driven::start_on(&bootstrap, s.clone(), subscription.clone()).await;
    wait_balanced(&[&a], &all(&topic, 6), REBALANCE).await;
    let b = Driven::start_on(&bootstrap, s.clone(), subscription.clone()).await;
    // Faults while the group rebalances: every connection cut, heartbeat responses lost
    // (the broker applied the heartbeat, the member never heard: it resends a full one).
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        control.cut_all();
        control.drop_response_of(ApiKey::ConsumerGroupHeartbeat, 1, LostResponse::Cut);
    }
    wait_balanced(&[&a, &b], &all(&topic, 6), REBALANCE).await;
    assert!(
        control.stats().responses_dropped >= 1,
        "{:?}",
        control.stats()
    );
    // Lost responses to the lone member's heartbeats keep it in the group.
    // A stable group: a lost heartbeat response changes nothing (the full heartbeat that
    // follows carries the same epoch and partitions).
    control.clear_faults();
    let dropped = control.stats().responses_dropped;
    let before = (a.owned(), b.owned());
    let events_before = (a.events().len(), b.events().len());
    control.drop_response_of(ApiKey::ConsumerGroupHeartbeat, 1, LostResponse::Cut);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(control.stats().responses_dropped, dropped + 1);
    assert!(a.error().is_none() && b.error().is_none());
    assert_eq!((a.owned(), b.owned()), before);
    assert_eq!((a.events().len(), b.events().len()), events_before);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_subscribing_is_assigned_by_id_and_resolved() {
    // The member knows no id for the topic when it joins; the assignment names it by id only,
    // and the member looks the name up in fresh metadata.
    let name = unique_name("kip848-late");
    let group = unique_name("kip848-g");
    let a = Driven::start(
        settings(&group),
        GroupSubscription::Topics(vec![name.clone()]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.owned().is_empty());
    create(&name, 3).await;
    wait_balanced(&[&a], &all(&name, 3), REBALANCE).await;
    a.close().await;
}
