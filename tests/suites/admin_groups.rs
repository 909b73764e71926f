//! Admin calls on consumer groups against the real broker: committed offsets, lag, resets,
//! list/describe, deletes; a live (hand-driven) member blocking offset changes; and a
//! cross-check with Kafka's own `kafka-consumer-groups --describe`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity as LeaveMember;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafkit::admin::{Admin, ListGroupsFilter, NewTopic, OffsetSpec, PartitionLag};
use kafkit::config::ProducerConfig;
use kafkit::io::connection::Connection;
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::state::group::commit::{CommitError, MemberIdentity};
use kafkit::state::group::{Assignment, OffsetAndMetadata, Subscription, TopicPartition};
use kafkit::Error;
use kafkit_tests::{kafka, repo_root, unique_name};

const TIMEOUT: Duration = Duration::from_secs(30);

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

/// A topic of 3 partitions holding 10, 5 and 0 records; record `i` of partition 0 has
/// timestamp `base + i * 1000`. Returns `(topic, base)`.
async fn filled_topic(admin: &Admin) -> (String, i64) {
    let topic = unique_name("groups");
    admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)])
        .await
        .unwrap();
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([kafka().bootstrap.clone()])
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let base = 1_700_000_000_000i64;
    let mut waits = Vec::new();
    for i in 0..10i64 {
        let r = ProducerRecord::new(&topic)
            .partition(0)
            .timestamp(base + i * 1000)
            .value(format!("p0-{i}"));
        waits.push(producer.send(r).await.unwrap());
    }
    for i in 0..5i64 {
        let r = ProducerRecord::new(&topic)
            .partition(1)
            .timestamp(base + i * 1000)
            .value(format!("p1-{i}"));
        waits.push(producer.send(r).await.unwrap());
    }
    for w in waits {
        tokio::time::timeout(TIMEOUT, w).await.unwrap().unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    (topic, base)
}

fn offsets(list: &[(&TopicPartition, i64)]) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
    list.iter()
        .map(|(tp, o)| ((*tp).clone(), OffsetAndMetadata::new(*o)))
        .collect()
}

async fn committed(admin: &Admin, group: &str) -> BTreeMap<TopicPartition, i64> {
    admin
        .list_group_offsets(group)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(tp, o)| o.map(|o| (tp, o.offset)))
        .collect()
}

/// `kafka-consumer-groups --describe --group G`: (topic, partition) → (current, log end, lag)
/// as the Java tool prints them ("-" → None).
/// One row of the Java tool's output: current offset, log end, lag.
type JavaRow = (Option<i64>, i64, Option<i64>);

fn java_describe(group: &str) -> BTreeMap<(String, i32), JavaRow> {
    let out = Command::new("timeout")
        .arg("120")
        .arg("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .args([
            "java",
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            "--bootstrap-server",
            &kafka().bootstrap,
            "--describe",
            "--group",
            group,
        ])
        .output()
        .expect("run kafka-consumer-groups");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kafka-consumer-groups failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = BTreeMap::new();
    for line in stdout.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        if cols.len() < 6 || cols[0] != group {
            continue;
        }
        let num = |s: &str| s.parse::<i64>().ok();
        let Ok(partition) = cols[2].parse::<i32>() else {
            continue;
        };
        rows.insert(
            (cols[1].to_owned(), partition),
            (num(cols[3]), num(cols[4]).unwrap_or(-1), num(cols[5])),
        );
    }
    assert!(!rows.is_empty(), "no rows in: {stdout}");
    rows
}

#[tokio::test]
async fn offsets_lag_resets_list_describe_delete() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let (topic, base) = filled_topic(&admin).await;
    let group = unique_name("admin-group");
    let (p0, p1, p2) = (tp(&topic, 0), tp(&topic, 1), tp(&topic, 2));

    // A fresh group: commit without a membership, read back (with metadata).
    let mut commit = offsets(&[(&p0, 3), (&p1, 5)]);
    commit.insert(
        p0.clone(),
        OffsetAndMetadata::new(3).with_metadata("replay-1"),
    );
    admin.alter_group_offsets(&group, &commit).await.unwrap();
    let read = admin.list_group_offsets(&group).await.unwrap();
    assert_eq!(read.len(), 2, "{read:?}");
    let r0 = read[&p0].as_ref().unwrap();
    assert_eq!((r0.offset, r0.metadata.as_deref()), (3, Some("replay-1")));
    assert_eq!(read[&p1].as_ref().map(|o| o.offset), Some(5));

    // A topic that does not exist: a typed error at once, not retries until the timeout.
    let started = Instant::now();
    let err = admin
        .alter_group_offsets(&group, &offsets(&[(&tp("no-such-topic-kafkit", 0), 1)]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommitError::UnknownTopicOrPartition { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // Lag = log end − committed; partitions without a commit have none.
    let lag = admin.group_lag(&group).await.unwrap();
    assert_eq!(lag[&p0], PartitionLag::new(Some(3), 10));
    assert_eq!(lag[&p0].lag, Some(7));
    assert_eq!(lag[&p1].lag, Some(0));
    assert_eq!(
        lag[&p2],
        PartitionLag {
            committed: None,
            log_end: 0,
            lag: None
        }
    );

    // Kafka's own tool agrees.
    let java = java_describe(&group);
    assert_eq!(
        java[&(topic.clone(), 0)],
        (Some(3), 10, Some(7)),
        "{java:?}"
    );
    assert_eq!(java[&(topic.clone(), 1)], (Some(5), 5, Some(0)), "{java:?}");

    // Resets.
    let earliest = admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(earliest.values().copied().collect::<Vec<_>>(), [0, 0, 0]);
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(p0.clone(), 0), (p1.clone(), 0), (p2.clone(), 0)])
    );
    admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(p0.clone(), 10), (p1.clone(), 5), (p2.clone(), 0)])
    );
    // By timestamp: p0's record 6 is the first at or after base + 5500; p1 has none that late
    // (→ its log end), nor has the empty p2.
    admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Timestamp(base + 5_500))
        .await
        .unwrap();
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(p0.clone(), 6), (p1.clone(), 5), (p2.clone(), 0)])
    );
    admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Timestamp(base + 2_000))
        .await
        .unwrap();
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(p0.clone(), 2), (p1.clone(), 2), (p2.clone(), 0)])
    );

    // List and describe show it: an empty group with no members.
    let listed = admin
        .list_groups(&ListGroupsFilter::default())
        .await
        .unwrap();
    let ours = listed
        .iter()
        .find(|g| g.group_id == group)
        .unwrap_or_else(|| panic!("{group} not in {listed:?}"));
    assert_eq!(ours.state.as_deref(), Some("Empty"));
    let stable_only = admin
        .list_groups(&ListGroupsFilter {
            states: vec!["Stable".into()],
            types: vec![],
        })
        .await
        .unwrap();
    assert!(stable_only.iter().all(|g| g.group_id != group));
    let described = admin.describe_groups(&[&group]).await.unwrap();
    assert_eq!(described[0].state, "Empty");
    assert!(described[0].members.is_empty());

    // Delete one partition's offset, then the group.
    admin
        .delete_group_offsets(&group, std::slice::from_ref(&p1))
        .await
        .unwrap();
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(p0.clone(), 2), (p2.clone(), 0)])
    );
    admin.delete_groups(&[&group]).await.unwrap();
    assert!(committed(&admin, &group).await.is_empty());
    let listed = admin
        .list_groups(&ListGroupsFilter::default())
        .await
        .unwrap();
    assert!(listed.iter().all(|g| g.group_id != group));
    // Kafka 4 (DescribeGroups v6) says GROUP_ID_NOT_FOUND; older brokers describe it as Dead.
    match admin.describe_groups(&[&group]).await {
        Ok(d) => assert_eq!(d[0].state, "Dead"),
        Err(err) => assert!(
            matches!(
                err,
                Error::Broker {
                    code: ResponseError::GroupIdNotFound,
                    ..
                }
            ),
            "{err:?}"
        ),
    }
    let err = admin.delete_groups(&[&group]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Broker {
                code: ResponseError::GroupIdNotFound,
                ..
            }
        ),
        "{err:?}"
    );
    // Resetting a group that does not exist creates it.
    admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(committed(&admin, &group).await.len(), 3);
    admin.delete_groups(&[&group]).await.unwrap();
}

/// A classic consumer group member driven by hand (JoinGroup, SyncGroup as leader, LeaveGroup).
/// A connection to `group`'s coordinator once it answers: on a fresh broker the offsets topic
/// is created by the first lookup and its coordinator loads for a while (NOT_COORDINATOR,
/// COORDINATOR_LOAD_IN_PROGRESS). `list_group_offsets` retries those, as a real member does;
/// the hand-driven requests below do not.
async fn loaded_coordinator(admin: &Admin, group: &str) -> Connection {
    admin.list_group_offsets(group).await.unwrap();
    let (_, conn) = admin
        .coordinators()
        .connection(group, Instant::now() + TIMEOUT)
        .await
        .unwrap();
    conn
}

struct HandMember {
    conn: Connection,
    group: String,
    member_id: String,
    generation: i32,
}

impl HandMember {
    async fn join(
        admin: &Admin,
        group: &str,
        topic: &str,
        assign: &[TopicPartition],
    ) -> HandMember {
        let conn = loaded_coordinator(admin, group).await;
        let version = conn.version(ApiKey::JoinGroup).unwrap();
        assert!(version >= 4, "JoinGroup v{version}");
        let metadata = Subscription::new([topic]).encode(3).unwrap();
        let mut member_id = String::new();
        let response = loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                .with_session_timeout_ms(45_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(metadata.clone())]);
            let response = conn.send(&request, version, TIMEOUT).await.unwrap();
            match ResponseError::try_from_code(response.error_code) {
                Some(ResponseError::MemberIdRequired) if member_id.is_empty() => {
                    member_id = response.member_id.as_str().to_owned();
                }
                None => break response,
                Some(other) => panic!("JoinGroup: {other:?}"),
            }
        };
        assert_eq!(response.leader.as_str(), member_id, "the only member leads");
        let assignment: Bytes = Assignment::from_partitions(assign).encode(3).unwrap();
        let version = conn.version(ApiKey::SyncGroup).unwrap();
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_generation_id(response.generation_id)
            .with_member_id(StrBytes::from_string(member_id.clone()))
            .with_protocol_type((version >= 5).then(|| StrBytes::from_static_str("consumer")))
            .with_protocol_name((version >= 5).then(|| StrBytes::from_static_str("range")))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member_id.clone()))
                .with_assignment(assignment)]);
        let sync = conn.send(&request, version, TIMEOUT).await.unwrap();
        assert_eq!(sync.error_code, 0, "SyncGroup");
        HandMember {
            conn,
            group: group.to_owned(),
            member_id,
            generation: response.generation_id,
        }
    }

    async fn leave(self) {
        let version = self.conn.version(ApiKey::LeaveGroup).unwrap();
        let mut request = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())));
        if version >= 3 {
            request.members = vec![LeaveMember::default()
                .with_member_id(StrBytes::from_string(self.member_id.clone()))];
        } else {
            request.member_id = StrBytes::from_string(self.member_id.clone());
        }
        let response = self.conn.send(&request, version, TIMEOUT).await.unwrap();
        assert_eq!(response.error_code, 0, "LeaveGroup");
    }
}

#[tokio::test]
async fn a_live_member_is_described_and_blocks_offset_changes() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let (topic, _) = filled_topic(&admin).await;
    let group = unique_name("live-group");
    let mine = [tp(&topic, 0), tp(&topic, 2)];
    let member = HandMember::join(&admin, &group, &topic, &mine).await;

    let described = admin.describe_groups(&[&group]).await.unwrap();
    let d = &described[0];
    assert_eq!(
        (
            d.state.as_str(),
            d.protocol_type.as_str(),
            d.protocol.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, member.member_id);
    assert_eq!(d.members[0].assignment, mine);
    assert_eq!(
        d.members[0].subscription.as_ref().unwrap().topics,
        [topic.as_str()]
    );

    // The member commits with its generation; the admin (no membership) may not.
    let deadline = Instant::now() + TIMEOUT;
    let identity = MemberIdentity::member(member.generation, member.member_id.clone(), None);
    admin
        .coordinators()
        .commit_offsets(&group, &identity, &offsets(&[(&mine[0], 4)]), deadline)
        .await
        .unwrap();
    // A stale generation is a typed, non-retriable error.
    let stale = MemberIdentity::member(member.generation + 5, member.member_id.clone(), None);
    let err = admin
        .coordinators()
        .commit_offsets(&group, &stale, &offsets(&[(&mine[0], 5)]), deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::IllegalGeneration), "{err:?}");
    let err = admin
        .alter_group_offsets(&group, &offsets(&[(&mine[0], 1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::GroupNotEmpty { .. }), "{err:?}");
    let err = admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Earliest)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CommitError::GroupNotEmpty { state: Some(s), .. } if s == "Stable"),
        "{err:?}"
    );
    let err = admin.delete_groups(&[&group]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Broker {
                code: ResponseError::NonEmptyGroup,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(mine[0].clone(), 4)])
    );

    // Once it leaves, the group is empty and can be reset.
    member.leave().await;
    admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(tp(&topic, 0), 10), (tp(&topic, 1), 5), (tp(&topic, 2), 0)])
    );
    admin.delete_groups(&[&group]).await.unwrap();
}

#[tokio::test]
async fn coordinator_lookup_is_cached_and_batched() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let groups = [
        unique_name("find-a"),
        unique_name("find-b"),
        unique_name("find-c"),
    ];
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let deadline = Instant::now() + TIMEOUT;
    let found = admin.coordinators().find(&names, deadline).await.unwrap();
    assert_eq!(found.len(), 3);
    let broker = admin.describe_cluster().await.unwrap()[0].node_id;
    assert!(found.values().all(|&n| n == broker), "{found:?}");
    assert_eq!(admin.coordinators().cached(&groups[0]), Some(broker));
    admin.coordinators().invalidate(&groups[0]);
    assert_eq!(admin.coordinators().cached(&groups[0]), None);
    // Nothing committed yet reads as no offsets (None per asked partition).
    let q = kafkit::state::group::commit::OffsetFetchQuery::partitions(
        &groups[1],
        &[tp("no-such-topic-here", 0)],
    );
    let fetched = admin
        .coordinators()
        .fetch_offsets(&q, true, deadline)
        .await
        .unwrap();
    assert_eq!(fetched.get(&tp("no-such-topic-here", 0)), Some(&None));
}

/// One ConsumerGroupHeartbeat of a KIP-848 member driven by hand; returns (epoch, assigned).
async fn heartbeat(
    conn: &Connection,
    group: &str,
    member_id: &str,
    epoch: i32,
    topic: &str,
    owned: Option<Vec<kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions>>,
) -> kafka_protocol::messages::ConsumerGroupHeartbeatResponse {
    use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, TopicName};
    let version = conn.version(ApiKey::ConsumerGroupHeartbeat).unwrap();
    let mut request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_member_id(StrBytes::from_string(member_id.to_owned()))
        .with_member_epoch(epoch);
    if epoch == 0 {
        request = request
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_string(
                topic.to_owned(),
            ))]))
            .with_topic_partitions(Some(Vec::new()));
    } else {
        request = request.with_topic_partitions(owned);
    }
    let response = conn.send(&request, version, TIMEOUT).await.unwrap();
    assert_eq!(
        response.error_code, 0,
        "ConsumerGroupHeartbeat: {:?}",
        response.error_message
    );
    response
}

#[tokio::test]
async fn a_kip848_group_is_described_with_consumer_group_describe() {
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let (topic, _) = filled_topic(&admin).await;
    let group = unique_name("kip848-group");
    let conn = loaded_coordinator(&admin, &group).await;
    // A client-chosen member id (ConsumerGroupHeartbeat v1); unique per run.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        ^ (u128::from(std::process::id()) << 64);
    let member_id = uuid::Uuid::from_u128(seed).to_string();
    let mut response = heartbeat(&conn, &group, &member_id, 0, &topic, None).await;
    let member_id = response
        .member_id
        .as_ref()
        .map_or(member_id, |m| m.as_str().to_owned());
    // Acknowledge the assignment until the group has settled on all 3 partitions.
    let settle = Instant::now() + Duration::from_secs(15);
    let described = loop {
        let owned: Vec<TopicPartitions> = response
            .assignment
            .as_ref()
            .map(|a| {
                a.topic_partitions
                    .iter()
                    .map(|t| {
                        TopicPartitions::default()
                            .with_topic_id(t.topic_id)
                            .with_partitions(t.partitions.clone())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let epoch = response.member_epoch;
        let d = admin.describe_groups(&[&group]).await.unwrap().remove(0);
        if d.members.first().is_some_and(|m| m.assignment.len() == 3) {
            break d;
        }
        assert!(Instant::now() < settle, "group never settled: {d:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let owned = if response.assignment.is_some() {
            Some(owned)
        } else {
            None
        };
        response = heartbeat(&conn, &group, &member_id, epoch, &topic, owned).await;
    };
    assert_eq!(described.group_type, "consumer");
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.members[0].member_id, member_id);
    assert_eq!(
        described.members[0].assignment,
        [tp(&topic, 0), tp(&topic, 1), tp(&topic, 2)]
    );
    assert_eq!(
        described.members[0].subscription.as_ref().unwrap().topics,
        [topic.as_str()]
    );
    let listed = admin
        .list_groups(&ListGroupsFilter {
            states: vec![],
            types: vec!["consumer".into()],
        })
        .await
        .unwrap();
    assert!(listed.iter().any(|g| g.group_id == group), "{listed:?}");

    // Beside a classic group in one call (one DescribeGroups, then one ConsumerGroupDescribe
    // for the groups it does not know): each as its protocol says, in the order asked.
    let classic = unique_name("kip848-beside-classic");
    admin
        .alter_group_offsets(&classic, &offsets(&[(&tp(&topic, 0), 1)]))
        .await
        .unwrap();
    let both = admin
        .describe_groups(&[&classic, &group, &classic])
        .await
        .unwrap();
    let ids: Vec<&str> = both.iter().map(|d| d.group_id.as_str()).collect();
    assert_eq!(ids, [classic.as_str(), group.as_str(), classic.as_str()]);
    assert_eq!(both[1].group_type, "consumer", "{both:?}");
    assert_eq!(both[1].members.len(), 1, "{both:?}");
    assert_ne!(both[0].group_type, "consumer", "{both:?}");
    assert_eq!(both[0].state, "Empty", "{both:?}");
    admin.delete_groups(&[&classic]).await.unwrap();

    // An active KIP-848 group refuses admin offset changes too.
    let err = admin
        .alter_group_offsets(&group, &offsets(&[(&tp(&topic, 0), 1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::GroupNotEmpty { .. }), "{err:?}");
    let err = admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Earliest)
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::GroupNotEmpty { .. }), "{err:?}");

    // Leave (epoch -1): the group is empty and accepts a reset.
    heartbeat(&conn, &group, &member_id, -1, &topic, None).await;
    admin
        .reset_group_offsets(&group, &[&topic], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(tp(&topic, 0), 10), (tp(&topic, 1), 5), (tp(&topic, 2), 0)])
    );
    admin.delete_groups(&[&group]).await.unwrap();
}

#[tokio::test]
async fn a_lost_commit_response_is_retried_on_a_rediscovered_coordinator() {
    use kafkit::io::cluster::{Cluster, ClusterConfig};
    use kafkit_tests::proxy::{LostResponse, ProxyCluster};

    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let mut config = ClusterConfig::new(&proxy.bootstrap());
    config.request_timeout = Duration::from_secs(10);
    let cluster = Cluster::connect(config).await.unwrap();
    let admin = Admin::from_cluster(cluster);
    let control = proxy.control();
    let group = unique_name("lost-commit");
    let topic = unique_name("lost-commit-topic");
    let (p0, p1) = (tp(&topic, 0), tp(&topic, 1));
    admin
        .create_topics(&[NewTopic::new(&topic, 2, 1)])
        .await
        .unwrap();

    admin
        .alter_group_offsets(&group, &offsets(&[(&p0, 1)]))
        .await
        .unwrap();
    let finds_before = control.stats().requests_of(ApiKey::FindCoordinator);

    // The broker writes the commit, the response is lost with the connection: the helper
    // forgets the coordinator, looks it up again and commits again (idempotent).
    control.drop_response_of(ApiKey::OffsetCommit, 1, LostResponse::Cut);
    admin
        .alter_group_offsets(&group, &offsets(&[(&p0, 2), (&p1, 3)]))
        .await
        .unwrap();
    assert!(control.stats().requests_of(ApiKey::OffsetCommit) >= 3);
    assert!(
        control.stats().requests_of(ApiKey::FindCoordinator) > finds_before,
        "the coordinator was looked up again"
    );

    // The same for a lost OffsetFetch response.
    control.drop_response_of(ApiKey::OffsetFetch, 1, LostResponse::Cut);
    assert_eq!(
        committed(&admin, &group).await,
        BTreeMap::from([(p0.clone(), 2), (p1.clone(), 3)])
    );
    assert!(control.stats().requests_of(ApiKey::OffsetFetch) >= 2);
    assert_eq!(control.stats().responses_dropped, 2);

    // Several groups' offsets in one OffsetFetch (v8+ batching).
    let other = unique_name("lost-commit-other");
    admin
        .alter_group_offsets(&other, &offsets(&[(&p1, 7)]))
        .await
        .unwrap();
    let fetches = control.stats().requests_of(ApiKey::OffsetFetch);
    let all = admin.list_groups_offsets(&[&group, &other]).await;
    assert_eq!(
        control.stats().requests_of(ApiKey::OffsetFetch),
        fetches + 1
    );
    let mine = all[&group].as_ref().unwrap();
    assert_eq!(mine[&p0].as_ref().map(|o| o.offset), Some(2));
    let theirs = all[&other].as_ref().unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[&p1].as_ref().map(|o| o.offset), Some(7));
    admin.delete_groups(&[&other]).await.unwrap();
    admin.delete_groups(&[&group]).await.unwrap();
    proxy.shutdown();
}

/// Several groups in one call (one DescribeGroups / DeleteGroups per coordinator): results in
/// the order asked; a group that fails does not keep the others from being deleted.
#[tokio::test]
async fn several_groups_are_described_and_deleted_in_one_call() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let (topic, _) = filled_topic(&admin).await;
    let groups = [
        unique_name("batch-a"),
        unique_name("batch-b"),
        unique_name("batch-c"),
    ];
    for (i, g) in groups.iter().enumerate() {
        // A different committed state per group, to tell the answers apart.
        let offsets = offsets(&[(&tp(&topic, 0), i64::try_from(i).unwrap())]);
        admin.alter_group_offsets(g, &offsets).await.unwrap();
    }
    let asked = [&groups[2], &groups[0], &groups[1], &groups[0]].map(String::as_str);
    let described = admin.describe_groups(&asked).await.unwrap();
    let ids: Vec<&str> = described.iter().map(|d| d.group_id.as_str()).collect();
    assert_eq!(ids, asked);
    assert!(
        described.iter().all(|d| d.state == "Empty"),
        "{described:?}"
    );

    // One group that does not exist: its typed error, and the others are deleted all the same.
    let missing = unique_name("batch-missing");
    let err = admin
        .delete_groups(&[&groups[0], &missing, &groups[1], &groups[2]])
        .await
        .unwrap_err();
    match &err {
        Error::Broker {
            api: ApiKey::DeleteGroups,
            code: ResponseError::GroupIdNotFound,
            message: Some(m),
        } => assert!(m.contains(&missing), "{m}"),
        other => panic!("{other:?}"),
    }
    for g in &groups {
        assert!(
            committed(&admin, g).await.is_empty(),
            "{g} kept its offsets"
        );
    }
}
