//! KIP-392 follower fetching: `rack_id` in every Fetch, a leader's `preferred_read_replica`
//! followed until it expires, drops out of the metadata, fails or answers with an error; the
//! KIP-227 sessions of both nodes stay right while a partition moves between them.

use kafka_protocol::error::ResponseError;

use super::*;

/// Three brokers (0, 1, 2); partitions 0 and 1 are led by node 0, every partition has the
/// replicas [0, 1, 2]; leader epoch 5.
fn metadata3(partitions: i32) -> ClusterMetadata {
    let response = MetadataResponse::default()
        .with_brokers(
            (0..3)
                .map(|n| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(n))
                        .with_host(StrBytes::from_static_str("h"))
                        .with_port(9092)
                        .with_rack(Some(StrBytes::from_string(format!("r{n}"))))
                })
                .collect(),
        )
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
            .with_topic_id(uuid::Uuid::from_bytes(ID))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(0))
                            .with_leader_epoch(5)
                            .with_replica_nodes(vec![BrokerId(0), BrokerId(1), BrokerId(2)])
                            .with_isr_nodes(vec![BrokerId(0), BrokerId(1), BrokerId(2)])
                    })
                    .collect(),
            )]);
    let mut m = ClusterMetadata::default();
    m.update(&response, Instant::now());
    m
}

fn racked() -> FetchSettings {
    FetchSettings {
        rack_id: "r2".to_owned(),
        ..settings()
    }
}

fn assigned_with(settings: FetchSettings, n: i32) -> FetchState {
    let mut s = FetchState::new(settings);
    s.add_assigned(
        (0..n)
            .map(|p| (tp(p), Some(OffsetAndMetadata::new(0))))
            .collect(),
    );
    s
}

/// A partition answer naming `replica` as the preferred read replica (no records, as a leader
/// sends it).
fn prefer(p: i32, replica: i32, hw: i64) -> PartitionData {
    partition(p, None, hw).with_preferred_read_replica(BrokerId(replica))
}

fn failed(p: i32, error: ResponseError) -> PartitionData {
    partition(p, None, -1).with_error_code(error.code())
}

/// Assigns one partition, fetches it once from the leader (node 0), which names node 2.
fn moved_to_2(now: Instant, m: &ClusterMetadata) -> FetchState {
    let mut s = assigned_with(racked(), 1);
    let (token, request) = s.poll_fetches(now, m).pop().unwrap();
    assert_eq!(token.node(), 0, "the first fetch goes to the leader");
    assert_eq!(request.rack_id.as_str(), "r2");
    s.handle_fetch(now, token, response(0, vec![prefer(0, 2, 10)]));
    assert_eq!(s.read_replica(&tp(0), now), Some(2));
    s
}

fn next_node(s: &mut FetchState, now: Instant, m: &ClusterMetadata) -> (FetchToken, FetchRequest) {
    let mut fetches = s.poll_fetches(now, m);
    assert_eq!(fetches.len(), 1, "one fetch planned");
    fetches.pop().unwrap()
}

#[test]
fn rack_id_is_sent_and_empty_without_client_rack() {
    let now = Instant::now();
    let m = metadata3(1);
    let mut s = assigned_with(racked(), 1);
    let (_, request) = next_node(&mut s, now, &m);
    assert_eq!(request.rack_id.as_str(), "r2");
    let mut s = assigned_with(settings(), 1);
    let (_, request) = next_node(&mut s, now, &m);
    assert_eq!(request.rack_id.as_str(), "");
}

#[test]
fn a_preferred_read_replica_takes_the_following_fetches_with_records() {
    let now = Instant::now();
    let m = metadata3(1);
    let mut s = moved_to_2(now, &m);
    for round in 0..3_i64 {
        let (token, request) = next_node(&mut s, now, &m);
        assert_eq!(token.node(), 2, "round {round}");
        assert_eq!(sent_partitions(&request), [(0, round * 2)]);
        // Still the leader's epoch: the follower checks it.
        assert_eq!(request.topics[0].partitions[0].current_leader_epoch, 5);
        s.handle_fetch(
            now,
            token,
            response(0, vec![partition(0, Some(records(round * 2, 2)), 10)]),
        );
        assert_eq!(s.drain(10).records.len(), 2);
    }
    assert_eq!(s.read_replica(&tp(0), now), Some(2));
}

#[test]
fn the_preference_expires_after_metadata_max_age_and_a_renaming_keeps_its_expiry() {
    let now = Instant::now();
    let m = metadata3(1);
    let mut s = moved_to_2(now, &m);
    let age = s.settings().read_replica_max_age;
    // The leader naming the same replica again later does not extend it (Java's rule).
    let later = now + age / 2;
    let (token, _) = next_node(&mut s, later, &m);
    assert_eq!(token.node(), 2);
    s.handle_fetch(later, token, response(0, vec![prefer(0, 2, 10)]));
    assert_eq!(s.read_replica(&tp(0), now + age), Some(2));
    let expired = now + age + Duration::from_millis(1);
    assert_eq!(s.read_replica(&tp(0), expired), None);
    let (token, _) = next_node(&mut s, expired, &m);
    assert_eq!(token.node(), 0, "expired: back to the leader");
    // The leader names another replica: a fresh expiry from now.
    s.handle_fetch(expired, token, response(0, vec![prefer(0, 1, 10)]));
    assert_eq!(s.read_replica(&tp(0), expired + age), Some(1));
    assert_eq!(next_node(&mut s, expired, &m).0.node(), 1);
}

#[test]
fn a_replica_missing_from_the_metadata_is_not_used() {
    let now = Instant::now();
    let m = metadata3(1);
    let mut s = moved_to_2(now, &m);
    // Node 2 fenced: the next metadata lists brokers 0 and 1 only.
    let mut m2 = m.clone();
    m2.update(
        &MetadataResponse::default().with_brokers(
            (0..2)
                .map(|n| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(n))
                        .with_host(StrBytes::from_static_str("h"))
                        .with_port(9092)
                })
                .collect(),
        ),
        now,
    );
    assert!(m2.broker(2).is_none());
    let _ = s.take_wants_metadata();
    assert_eq!(next_node(&mut s, now, &m2).0.node(), 0);
    assert_eq!(
        s.read_replica(&tp(0), now),
        None,
        "the preference is dropped"
    );
    assert!(
        s.take_wants_metadata(),
        "a replica our metadata does not list: refresh it"
    );

    // A broker still listed but no longer a replica of the partition: not used either.
    let mut s = moved_to_2(now, &m);
    let mut m3 = m.clone();
    m3.update(
        &MetadataResponse::default().with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
            .with_topic_id(uuid::Uuid::from_bytes(ID))
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(0))
                .with_leader_epoch(5)
                .with_replica_nodes(vec![BrokerId(0), BrokerId(1)])])]),
        now,
    );
    assert_eq!(next_node(&mut s, now, &m3).0.node(), 0);
}

#[test]
fn a_failed_fetch_from_the_replica_goes_back_to_the_leader() {
    let now = Instant::now();
    let m = metadata3(2);
    let mut s = assigned_with(racked(), 2);
    let (token, _) = next_node(&mut s, now, &m);
    // Partition 0 moves to node 2; partition 1 stays on the leader.
    s.handle_fetch(
        now,
        token,
        response(0, vec![prefer(0, 2, 10), partition(1, None, 0)]),
    );
    let fetches = s.poll_fetches(now, &m);
    let nodes: Vec<i32> = fetches.iter().map(|(t, _)| t.node()).collect();
    assert_eq!(nodes, [0, 2]);
    let mut fetches = fetches.into_iter();
    let (leader, leader_request) = fetches.next().unwrap();
    let (replica, replica_request) = fetches.next().unwrap();
    assert_eq!(sent_partitions(&leader_request), [(1, 0)]);
    assert_eq!(sent_partitions(&replica_request), [(0, 0)]);
    s.handle_fetch_failure(now, replica);
    assert_eq!(s.read_replica(&tp(0), now), None);
    s.handle_fetch(now, leader, response(0, vec![partition(1, None, 0)]));
    let (token, request) = next_node(&mut s, now, &m);
    assert_eq!(
        token.node(),
        0,
        "node 2 failed: both partitions on the leader"
    );
    assert_eq!(sent_partitions(&request), [(0, 0), (1, 0)]);
}

#[test]
fn replica_errors_go_back_to_the_leader_as_java_does() {
    let now = Instant::now();
    let m = metadata3(1);
    for error in [
        ResponseError::NotLeaderOrFollower,
        ResponseError::ReplicaNotAvailable,
        ResponseError::FencedLeaderEpoch,
        ResponseError::KafkaStorageError,
        ResponseError::OffsetNotAvailable,
        ResponseError::UnknownTopicOrPartition,
        ResponseError::OffsetOutOfRange,
    ] {
        let mut s = moved_to_2(now, &m);
        let (token, _) = next_node(&mut s, now, &m);
        assert_eq!(token.node(), 2);
        s.handle_fetch(now, token, response(0, vec![failed(0, error)]));
        assert_eq!(s.read_replica(&tp(0), now), None, "{error:?}");
        let later = now + Duration::from_secs(1);
        let (token, request) = next_node(&mut s, later, &m);
        assert_eq!(token.node(), 0, "{error:?}");
        assert_eq!(
            sent_partitions(&request),
            [(0, 0)],
            "{error:?}: the position is kept (no reset)"
        );
        assert!(!s.is_resetting(&tp(0)), "{error:?}");
        assert!(s.drain(10).error.is_none(), "{error:?}");
    }
}

#[test]
fn out_of_range_on_the_leader_still_resets_and_unknown_leader_epoch_keeps_the_replica() {
    let now = Instant::now();
    let m = metadata3(1);
    let mut s = moved_to_2(now, &m);
    let (token, _) = next_node(&mut s, now, &m);
    s.handle_fetch(
        now,
        token,
        response(0, vec![failed(0, ResponseError::UnknownLeaderEpoch)]),
    );
    assert_eq!(
        s.read_replica(&tp(0), now),
        Some(2),
        "the follower catches up"
    );
    let later = now + Duration::from_secs(1);
    assert_eq!(next_node(&mut s, later, &m).0.node(), 2);

    let mut s = assigned_with(racked(), 1);
    let (token, _) = next_node(&mut s, now, &m);
    assert_eq!(token.node(), 0);
    s.handle_fetch(
        now,
        token,
        response(0, vec![failed(0, ResponseError::OffsetOutOfRange)]),
    );
    assert!(
        s.is_resetting(&tp(0)),
        "the leader's answer resets by policy"
    );
}

#[test]
fn sessions_of_both_nodes_stay_right_while_a_partition_moves() {
    let now = Instant::now();
    let m = metadata3(2);
    let mut s = assigned_with(racked(), 2);
    // Full request to the leader; it opens session 11 and moves partition 0 to node 2.
    let (token, request) = next_node(&mut s, now, &m);
    assert_eq!((request.session_id, request.session_epoch), (0, 0));
    s.handle_fetch(
        now,
        token,
        response(
            11,
            vec![prefer(0, 2, 10), partition(1, Some(records(0, 1)), 1)],
        ),
    );
    assert_eq!(s.drain(10).records.len(), 1);
    let fetches = s.poll_fetches(now, &m);
    let mut fetches = fetches.into_iter();
    let (leader, leader_request) = fetches.next().unwrap();
    let (replica, replica_request) = fetches.next().unwrap();
    // The leader's session goes on incrementally and forgets partition 0.
    assert_eq!(leader.node(), 0);
    assert_eq!(
        (leader_request.session_id, leader_request.session_epoch),
        (11, 1)
    );
    assert_eq!(sent_partitions(&leader_request), [(1, 1)]);
    assert_eq!(forgotten(&leader_request), [0]);
    // Node 2 gets a session of its own, started full.
    assert_eq!(replica.node(), 2);
    assert_eq!(
        (replica_request.session_id, replica_request.session_epoch),
        (0, 0)
    );
    assert_eq!(sent_partitions(&replica_request), [(0, 0)]);
    s.handle_fetch(now, leader, response(11, vec![]));
    s.handle_fetch(
        now,
        replica,
        response(22, vec![partition(0, Some(records(0, 3)), 10)]),
    );
    assert_eq!(s.drain(10).records.len(), 3);

    // Node 2 says NOT_LEADER_OR_FOLLOWER: partition 0 goes back to the leader, whose
    // incremental request adds it again; node 2's session forgets it on its next request.
    let mut fetches = s.poll_fetches(now, &m).into_iter();
    let (leader, _) = fetches.next().unwrap();
    let (replica, request) = fetches.next().unwrap();
    assert_eq!((leader.node(), replica.node()), (0, 2));
    s.handle_fetch(now, leader, response(11, vec![]));
    assert_eq!((request.session_id, request.session_epoch), (22, 1));
    s.handle_fetch(
        now,
        replica,
        response(22, vec![failed(0, ResponseError::NotLeaderOrFollower)]),
    );
    let later = now + Duration::from_secs(1);
    let (leader, request) = s
        .poll_fetches(later, &m)
        .into_iter()
        .find(|(t, _)| t.node() == 0)
        .unwrap();
    assert_eq!((request.session_id, request.session_epoch), (11, 3));
    assert_eq!(
        sent_partitions(&request),
        [(0, 3)],
        "partition 1 is unchanged"
    );
    assert!(forgotten(&request).is_empty());
    s.handle_fetch(
        later,
        leader,
        response(11, vec![partition(0, Some(records(3, 1)), 10)]),
    );
    let drained = s.drain(10);
    assert_eq!(values(&drained), ["v3"]);
}

#[test]
fn settings_take_client_rack_and_metadata_max_age_from_the_config() {
    let config = crate::config::ConsumerConfig::from_properties([
        ("bootstrap.servers", "127.0.0.1:9092"),
        ("client.rack", "eu-west-1a"),
        ("metadata.max.age.ms", "60000"),
    ])
    .unwrap();
    let s = FetchSettings::from_config(&config);
    assert_eq!(s.rack_id, "eu-west-1a");
    assert_eq!(s.read_replica_max_age, Duration::from_secs(60));
    let unset =
        crate::config::ConsumerConfig::from_properties([("bootstrap.servers", "127.0.0.1:9092")])
            .unwrap();
    let s = FetchSettings::from_config(&unset);
    assert_eq!(s.rack_id, "");
    assert_eq!(s.read_replica_max_age, Duration::from_secs(300));
}

#[test]
fn the_longest_metadata_max_age_does_not_overflow() {
    let now = Instant::now();
    let m = metadata3(1);
    let mut s = assigned_with(
        FetchSettings {
            read_replica_max_age: Duration::from_millis(u64::try_from(i64::MAX).unwrap()),
            ..racked()
        },
        1,
    );
    let (token, _) = next_node(&mut s, now, &m);
    s.handle_fetch(now, token, response(0, vec![prefer(0, 2, 10)]));
    let year = Duration::from_secs(365 * 24 * 3600);
    assert_eq!(s.read_replica(&tp(0), now + year), Some(2));
    assert_eq!(next_node(&mut s, now + year, &m).0.node(), 2);
}

/// The rule that a fetch of caught-up partitions waits while the node's buffered records are
/// taken holds for the node the records came from: the preferred read replica, not the leader.
#[test]
fn a_caught_up_fetch_to_a_read_replica_waits_while_its_records_are_taken() {
    let now = Instant::now();
    let m = metadata3(2);
    let mut s = assigned_with(racked(), 2);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.handle_fetch(
        now,
        token,
        response(0, vec![prefer(0, 2, 0), prefer(1, 2, 0)]),
    );
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    assert_eq!(token.node(), 2, "both partitions read from node 2");
    s.handle_fetch(
        now,
        token,
        response(
            0,
            vec![partition(0, Some(records(0, 5)), 10), partition(1, None, 0)],
        ),
    );
    assert_eq!(s.drain(2).records.len(), 2);
    assert!(
        s.poll_fetches(now, &m).is_empty(),
        "node 2's fetch of caught-up partition 1 waits for partition 0's records to be taken"
    );
    assert_eq!(s.drain(100).records.len(), 3);
    let (token, request) = s.poll_fetches(now, &m).pop().unwrap();
    assert_eq!(token.node(), 2);
    let mut sent = sent_partitions(&request);
    sent.sort_unstable();
    assert_eq!(sent, [(0, 5), (1, 0)]);
}
