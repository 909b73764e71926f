//! Scripted scenarios for the consumer's fetch state: no sockets, hand-made responses,
//! a virtual clock.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsResponse, MetadataResponse, ProducerId,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafkit_wire::record::control::{end_txn_marker_key, end_txn_marker_value};
use kafkit_wire::record::{BatchBuilder, BatchOptions, ControlRecordType, RecordRef};

use super::*;

mod errors;
mod follower;
mod lookup;
mod props;
mod seek_races;
use crate::config::{AutoOffsetReset, IsolationLevel};
use crate::consumer::ConsumeError;
use crate::state::group::{OffsetAndMetadata, TopicPartition};
use crate::state::metadata::ClusterMetadata;

const TOPIC: &str = "t";
const ID: [u8; 16] = [7; 16];

fn settings() -> FetchSettings {
    FetchSettings {
        isolation_level: IsolationLevel::ReadUncommitted,
        auto_offset_reset: AutoOffsetReset::Earliest,
        min_bytes: 1,
        max_wait_ms: 500,
        max_bytes: 1 << 20,
        partition_max_bytes: 1 << 16,
        prefetch_max_bytes: 1 << 20,
        retry_backoff: Duration::from_millis(100),
        request_timeout: Duration::from_secs(30),
        rack_id: String::new(),
        read_replica_max_age: Duration::from_secs(300),
        check_crcs: true,
    }
}

/// Partition p is led by node p % 2 (two brokers), leader epoch 5.
fn metadata(partitions: i32) -> ClusterMetadata {
    let response = MetadataResponse::default()
        .with_brokers(
            (0..2)
                .map(|n| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(n))
                        .with_host(StrBytes::from_static_str("h"))
                        .with_port(9092)
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
                            .with_leader_id(BrokerId(p % 2))
                            .with_leader_epoch(5)
                    })
                    .collect(),
            )]);
    let mut m = ClusterMetadata::default();
    m.update(&response, Instant::now());
    m
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

/// A batch of `n` records from `base`, values "v<offset>".
fn batch(buf: &mut BytesMut, base: i64, n: i64, options: &BatchOptions) {
    let values: Vec<String> = (base..base + n).map(|o| format!("v{o}")).collect();
    let mut b = BatchBuilder::new(buf, base);
    for v in &values {
        b.append(&RecordRef::new(1_000, None, Some(v.as_bytes())))
            .unwrap();
    }
    b.finish(options, &mut Vec::new()).unwrap();
}

fn marker(buf: &mut BytesMut, offset: i64, producer_id: i64, kind: ControlRecordType) {
    let key = end_txn_marker_key(kind);
    let value = end_txn_marker_value(0);
    let mut b = BatchBuilder::new(buf, offset);
    b.append(&RecordRef::new(1_000, Some(&key), Some(&value)))
        .unwrap();
    let options = BatchOptions {
        producer_id,
        producer_epoch: 0,
        transactional: true,
        control: true,
        ..BatchOptions::default()
    };
    b.finish(&options, &mut Vec::new()).unwrap();
}

fn records(base: i64, n: i64) -> Bytes {
    let mut buf = BytesMut::new();
    batch(&mut buf, base, n, &BatchOptions::default());
    buf.freeze()
}

fn partition(p: i32, records: Option<Bytes>, hw: i64) -> PartitionData {
    PartitionData::default()
        .with_partition_index(p)
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_records(records)
}

fn response(session_id: i32, partitions: Vec<PartitionData>) -> FetchResponse {
    FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(vec![FetchableTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_bytes(ID))
            .with_partitions(partitions)])
}

fn sent_partitions(request: &FetchRequest) -> Vec<(i32, i64)> {
    request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset)))
        .collect()
}

fn forgotten(request: &FetchRequest) -> Vec<i32> {
    request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.clone())
        .collect()
}

fn values(drained: &Drained) -> Vec<String> {
    drained
        .records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect()
}

/// A state with partitions 0..n assigned at offset 0.
fn assigned(n: i32) -> FetchState {
    let mut s = FetchState::new(settings());
    s.add_assigned(
        (0..n)
            .map(|p| (tp(p), Some(OffsetAndMetadata::new(0))))
            .collect(),
    );
    s
}

#[test]
fn one_fetch_per_leader_with_epochs_then_records_move_positions() {
    let now = Instant::now();
    let m = metadata(4);
    let mut s = assigned(4);
    let fetches = s.poll_fetches(now, &m);
    assert_eq!(fetches.len(), 2, "one request per leader");
    for (token, request) in &fetches {
        let parts = sent_partitions(request);
        assert!(parts.iter().all(|(p, _)| p % 2 == token.node()));
        assert_eq!(request.session_id, 0);
        assert_eq!(request.session_epoch, 0);
        assert!(request.topics[0]
            .partitions
            .iter()
            .all(|p| p.current_leader_epoch == 5));
        // Only a follower knows a log start offset; a consumer sends -1.
        assert!(request.topics[0]
            .partitions
            .iter()
            .all(|p| p.log_start_offset == -1));
        assert_eq!(request.topics[0].topic_id, uuid::Uuid::from_bytes(ID));
    }
    // Nothing more while both are in flight.
    assert!(s.poll_fetches(now, &m).is_empty());

    let mut fetches = fetches.into_iter();
    let (token, _) = fetches.next().unwrap();
    assert_eq!(token.node(), 0);
    s.handle_fetch(
        now,
        token,
        response(
            11,
            vec![partition(0, Some(records(0, 3)), 3), partition(2, None, 0)],
        ),
    );
    let drained = s.drain(100);
    assert_eq!(values(&drained), ["v0", "v1", "v2"]);
    assert!(drained.error.is_none());
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(3));
    assert_eq!(s.lag(&tp(0)), Some(0));
    assert_eq!(s.lag(&tp(2)), Some(0));
    assert_eq!(s.lag(&tp(1)), None, "no response for partition 1 yet");
    assert_eq!(s.consumed_positions()[&tp(0)].offset, 3);
    assert_eq!(s.buffered_bytes(), 0);
}

#[test]
fn incremental_session_sends_changes_and_forgets_then_restarts_on_session_errors() {
    let now = Instant::now();
    let m = metadata(2);
    let mut s = FetchState::new(settings());
    // Both partitions on node 0 here: lead them both by node 0.
    let mut m0 = m.clone();
    assert!(m0.update_leader(TOPIC, 1, 0, 6, None));
    s.add_assigned(vec![
        (tp(0), Some(OffsetAndMetadata::new(0))),
        (tp(1), Some(OffsetAndMetadata::new(10))),
    ]);

    let (token, request) = s.poll_fetches(now, &m0).pop().unwrap();
    assert_eq!(sent_partitions(&request), [(0, 0), (1, 10)]);
    s.handle_fetch(
        now,
        token,
        response(77, vec![partition(0, Some(records(0, 2)), 2)]),
    );
    assert_eq!(s.drain(10).records.len(), 2);

    // Incremental: only partition 0 changed (offset 2); partition 1 is unchanged.
    let (token, request) = s.poll_fetches(now, &m0).pop().unwrap();
    assert_eq!((request.session_id, request.session_epoch), (77, 1));
    assert_eq!(sent_partitions(&request), [(0, 2)]);
    assert!(forgotten(&request).is_empty());
    s.handle_fetch(now, token, response(77, vec![]));

    // Pausing partition 1 forgets it from the session.
    s.pause(&tp(1)).unwrap();
    let (token, request) = s.poll_fetches(now, &m0).pop().unwrap();
    assert_eq!(request.session_epoch, 2);
    assert!(sent_partitions(&request).is_empty());
    assert_eq!(forgotten(&request), [1]);
    s.handle_fetch(now, token, response(77, vec![]));

    // The broker lost the session: the next request is full again.
    s.resume(&tp(1)).unwrap();
    let (token, request) = s.poll_fetches(now, &m0).pop().unwrap();
    assert_eq!(request.session_epoch, 3);
    s.handle_fetch(now, token, response(77, vec![]).with_error_code(70));
    let (token, request) = s.poll_fetches(now, &m0).pop().unwrap();
    assert_eq!((request.session_id, request.session_epoch), (0, 0));
    assert_eq!(sent_partitions(&request), [(0, 2), (1, 10)]);
    // A lost response: full again, and the node backs off.
    s.handle_fetch_failure(now, token);
    assert!(s.poll_fetches(now, &m0).is_empty());
    let later = now + Duration::from_millis(150);
    let (_, request) = s.poll_fetches(later, &m0).pop().unwrap();
    assert_eq!((request.session_id, request.session_epoch), (0, 0));
}

#[test]
fn sessions_start_full_and_sessionless_brokers_stay_full() {
    let mut session = FetchSession::default();
    let wanted = std::collections::BTreeMap::new();
    let full = session.build(wanted.clone());
    assert!(full.full);
    assert!(session.handle_response(full, 0, 5));
    assert_eq!((session.id(), session.epoch()), (5, 1));
    // A broker that makes no session: every request stays full.
    let mut sessionless = FetchSession::default();
    let full = sessionless.build(wanted);
    assert!(sessionless.handle_response(full, 0, 0));
    assert_eq!((sessionless.id(), sessionless.epoch()), (0, 0));
}

#[test]
fn stale_responses_are_dropped_after_a_seek() {
    let now = Instant::now();
    let m = metadata(1);
    let mut s = assigned(1);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.seek(&tp(0), FetchPosition::new(100)).unwrap();
    s.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, Some(records(0, 3)), 3)]),
    );
    assert!(s.drain(10).records.is_empty());
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(100));
    // Buffered records are dropped by a seek too.
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, Some(records(100, 3)), 103)]),
    );
    assert!(s.buffered_bytes() > 0);
    s.seek(&tp(0), FetchPosition::new(101)).unwrap();
    assert_eq!(s.buffered_bytes(), 0);
    // A compressed batch fetched again from inside: records before the position are skipped.
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, Some(records(100, 3)), 103)]),
    );
    assert_eq!(values(&s.drain(10)), ["v101", "v102"]);
}

#[test]
fn buffered_partitions_are_not_refetched_and_prefetch_is_bounded() {
    let now = Instant::now();
    let m = metadata(1);
    let mut s = FetchState::new(FetchSettings {
        prefetch_max_bytes: 10,
        ..settings()
    });
    s.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(0)))]);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, Some(records(0, 5)), 5)]),
    );
    assert!(
        s.poll_fetches(now, &m).is_empty(),
        "buffer full / partition buffered"
    );
    assert_eq!(s.drain(2).records.len(), 2);
    assert!(s.poll_fetches(now, &m).is_empty(), "still buffered");
    // Taking exactly the last records frees the buffer at once (no extra drain needed).
    assert_eq!(s.drain(3).records.len(), 3);
    assert_eq!(s.buffered_bytes(), 0);
    let (_, request) = s.poll_fetches(now, &m).pop().unwrap();
    assert_eq!(sent_partitions(&request), [(0, 5)]);
}

/// The partitions (sorted, with their fetch offsets) of node 0's fetch planned now, if any.
fn node0_fetch(s: &mut FetchState, now: Instant, m: &ClusterMetadata) -> Option<Vec<(i32, i64)>> {
    s.poll_fetches(now, m)
        .into_iter()
        .find(|(t, _)| t.node() == 0)
        .map(|(_, r)| {
            let mut sent = sent_partitions(&r);
            sent.sort_unstable();
            sent
        })
}

/// Four partitions assigned at offset 0, node 0's first fetch answered with `partitions`.
fn answered_by_node0(
    now: Instant,
    m: &ClusterMetadata,
    partitions: Vec<PartitionData>,
) -> FetchState {
    let mut s = assigned(4);
    let (token, _) = s
        .poll_fetches(now, m)
        .into_iter()
        .find(|(t, _)| t.node() == 0)
        .unwrap();
    s.handle_fetch(now, token, response(0, partitions));
    s
}

/// Node 0 leads partitions 0 and 2. After a response buffers partition 0's records, node 0's
/// next fetch waits for the application to take records, so that it long-polls partition 0
/// too (fetched at once it would leave partition 0 out, and partition 0's next records would
/// wait up to `fetch.max.wait.ms` for that fetch to end).
#[test]
fn a_node_is_fetched_again_once_the_application_takes_its_records() {
    let now = Instant::now();
    let m = metadata(4);
    let node0 = |s: &mut FetchState| node0_fetch(s, now, &m);
    let answered = |partitions| answered_by_node0(now, &m, partitions);
    let mut s = answered(vec![
        partition(0, Some(records(0, 3)), 3),
        partition(2, None, 0),
    ]);
    assert!(s.awaits_take());
    assert_eq!(
        node0(&mut s),
        None,
        "held until the application takes records"
    );
    assert_eq!(values(&s.drain(100)), ["v0", "v1", "v2"]);
    assert!(!s.awaits_take());
    let planned = node0(&mut s).expect("fetched after the take");
    assert_eq!(
        planned,
        [(0, 3), (2, 0)],
        "the drained partition is long-polled too"
    );

    // A partial take releases the node as well (Java fetches after every poll that took
    // records); the partition still buffered stays out of the fetch.
    let mut s = answered(vec![partition(0, Some(records(0, 5)), 5)]);
    assert_eq!(node0(&mut s), None);
    assert_eq!(s.drain(2).records.len(), 2);
    assert_eq!(node0(&mut s), Some(vec![(2, 0)]));

    // Records of a partition paused since hold nothing back (the application will not take
    // them before it resumes).
    let mut s = answered(vec![partition(0, Some(records(0, 3)), 3)]);
    s.pause(&tp(0)).unwrap();
    assert_eq!(node0(&mut s), Some(vec![(2, 0)]));
}

/// Node 0 leads partitions 0 and 2. While the application takes partition 0's buffered
/// records, node 0's next fetch would hold only partition 2, which is at the end of its log:
/// the broker would keep it `fetch.max.wait.ms`, and partition 0's next records (already on
/// the broker) would wait behind it. So that fetch waits until partition 0 is taken, and then
/// carries both.
#[test]
fn a_fetch_of_caught_up_partitions_waits_while_the_nodes_records_are_taken() {
    let now = Instant::now();
    let m = metadata(4);
    let node0 = |s: &mut FetchState| node0_fetch(s, now, &m);
    let answered = |partitions| answered_by_node0(now, &m, partitions);
    // Partition 0: 5 records buffered, 10 on the broker; partition 2: empty, caught up.
    let mut s = answered(vec![
        partition(0, Some(records(0, 5)), 10),
        partition(2, None, 0),
    ]);
    assert_eq!(s.drain(2).records.len(), 2);
    assert_eq!(
        node0(&mut s),
        None,
        "a long-poll of partition 2 alone waits"
    );
    assert_eq!(s.drain(2).records.len(), 2);
    assert_eq!(node0(&mut s), None);
    assert_eq!(s.drain(100).records.len(), 1);
    assert_eq!(
        node0(&mut s),
        Some(vec![(0, 5), (2, 0)]),
        "once partition 0 is taken, one fetch carries both"
    );

    // A partition behind its end is fetched at once, as before.
    let mut s = answered(vec![
        partition(0, Some(records(0, 5)), 10),
        partition(2, None, 4),
    ]);
    assert_eq!(s.drain(2).records.len(), 2);
    assert_eq!(node0(&mut s), Some(vec![(2, 0)]));

    // Buffered records of a paused partition hold nothing back (not taken before a resume).
    let mut s = answered(vec![
        partition(0, Some(records(0, 5)), 10),
        partition(2, None, 0),
    ]);
    assert_eq!(s.drain(2).records.len(), 2);
    s.pause(&tp(0)).unwrap();
    assert_eq!(node0(&mut s), Some(vec![(2, 0)]));
    // Nor do those of a partition seeked away from them (they will never be handed out).
    let mut s = answered(vec![
        partition(0, Some(records(0, 5)), 10),
        partition(2, None, 0),
    ]);
    assert_eq!(s.drain(2).records.len(), 2);
    s.seek(&tp(0), FetchPosition::new(7)).unwrap();
    assert_eq!(node0(&mut s), Some(vec![(0, 7), (2, 0)]));
}

#[test]
fn out_of_range_resets_by_policy_or_halts_with_none() {
    let now = Instant::now();
    let m = metadata(1);
    let mut s = assigned(1);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, None, 0).with_error_code(1)]),
    );
    assert!(s.is_resetting(&tp(0)));
    let (token, request) = s.poll_list_offsets(now, &m).pop().unwrap();
    assert_eq!(request.topics[0].partitions[0].timestamp, -2);
    assert_eq!(request.topics[0].partitions[0].current_leader_epoch, 5);
    assert!(
        s.poll_list_offsets(now, &m).is_empty(),
        "one lookup in flight"
    );
    let answer =
        ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![ListOffsetsPartitionResponse::default()
                .with_partition_index(0)
                .with_offset(40)
                .with_leader_epoch(5)])]);
    s.handle_list_offsets(now, token, Ok(answer));
    assert_eq!(
        s.position(&tp(0)),
        Some(FetchPosition {
            offset: 40,
            leader_epoch: Some(5)
        })
    );

    let mut none = FetchState::new(FetchSettings {
        auto_offset_reset: AutoOffsetReset::None,
        ..settings()
    });
    none.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(7)))]);
    let (token, _) = none.poll_fetches(now, &m).pop().unwrap();
    none.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, None, 0).with_error_code(1)]),
    );
    let drained = none.drain(10);
    assert!(matches!(
        drained.error,
        Some(ConsumeError::OffsetOutOfRange { offset: 7, .. })
    ));
    assert!(none.is_halted(&tp(0)));
    assert!(none.poll_fetches(now, &m).is_empty());
    none.seek(&tp(0), FetchPosition::new(0)).unwrap();
    assert_eq!(none.poll_fetches(now, &m).len(), 1);

    // No committed offset and policy none: NoOffset at once.
    let mut fresh = FetchState::new(FetchSettings {
        auto_offset_reset: AutoOffsetReset::None,
        ..settings()
    });
    fresh.assign([tp(0)]);
    assert!(matches!(
        fresh.drain(1).error,
        Some(ConsumeError::NoOffset { partition: 0, .. })
    ));
}

#[test]
fn leader_errors_ask_for_metadata_and_fatal_ones_halt() {
    let now = Instant::now();
    let m = metadata(2);
    let mut s = assigned(2);
    assert!(s.take_wants_metadata());
    let mut fetches = s.poll_fetches(now, &m);
    let (t1, _) = fetches.pop().unwrap();
    let (t0, _) = fetches.pop().unwrap();
    // FENCED_LEADER_EPOCH (74): refresh metadata, keep the position.
    s.handle_fetch(
        now,
        t0,
        response(0, vec![partition(0, None, 0).with_error_code(74)]),
    );
    assert!(s.take_wants_metadata());
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(0));
    assert!(s.drain(1).error.is_none());
    // TOPIC_AUTHORIZATION_FAILED (29): a typed error, the partition stops.
    s.handle_fetch(
        now,
        t1,
        response(0, vec![partition(1, None, 0).with_error_code(29)]),
    );
    assert!(matches!(
        s.drain(1).error,
        Some(ConsumeError::Broker { partition: 1, .. })
    ));
    assert!(s.is_halted(&tp(1)));
}

fn epoch_end(
    p: i32,
    epoch: i32,
    end_offset: i64,
) -> kafka_protocol::messages::OffsetForLeaderEpochResponse {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset as End, OffsetForLeaderTopicResult,
    };
    kafka_protocol::messages::OffsetForLeaderEpochResponse::default().with_topics(vec![
        OffsetForLeaderTopicResult::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![End::default()
                .with_partition(p)
                .with_leader_epoch(epoch)
                .with_end_offset(end_offset)]),
    ])
}

/// A state whose partition 0 starts at committed offset 50 with leader epoch 4, validated.
fn validated_at_50(reset: AutoOffsetReset, m: &ClusterMetadata, now: Instant) -> FetchState {
    let mut s = FetchState::new(FetchSettings {
        auto_offset_reset: reset,
        ..settings()
    });
    s.add_assigned(vec![(
        tp(0),
        Some(OffsetAndMetadata::new(50).with_leader_epoch(4)),
    )]);
    assert!(s.poll_fetches(now, m).is_empty(), "validation comes first");
    let (token, request) = s.poll_validations(now, m).pop().unwrap();
    let p = &request.topics[0].partitions[0];
    assert_eq!((p.current_leader_epoch, p.leader_epoch), (5, 4));
    s.handle_validations(now, token, Ok(epoch_end(0, 4, 60)));
    s
}

#[test]
fn positions_are_validated_after_a_leader_change() {
    let now = Instant::now();
    let mut m = metadata(1);
    // Validation passes: fetching starts at the committed offset.
    let mut s = validated_at_50(AutoOffsetReset::Earliest, &m, now);
    let (token, request) = s.poll_fetches(now, &m).pop().unwrap();
    assert_eq!(sent_partitions(&request), [(0, 50)]);
    let mut buf = BytesMut::new();
    batch(
        &mut buf,
        50,
        2,
        &BatchOptions {
            partition_leader_epoch: 5,
            ..BatchOptions::default()
        },
    );
    s.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, Some(buf.freeze()), 52)]),
    );
    assert_eq!(s.drain(10).records.len(), 2);
    assert!(
        s.poll_validations(now, &m).is_empty(),
        "same leader epoch: nothing to check"
    );
    // A new leader (epoch 6): validate before the next fetch; it finds a truncation at 51.
    assert!(m.update_leader(TOPIC, 0, 1, 6, None));
    assert!(s.poll_fetches(now, &m).is_empty());
    let (token, request) = s.poll_validations(now, &m).pop().unwrap();
    assert_eq!(token.node(), 1);
    let p = &request.topics[0].partitions[0];
    assert_eq!((p.current_leader_epoch, p.leader_epoch), (6, 5));
    s.handle_validations(now, token, Ok(epoch_end(0, 5, 51)));
    assert_eq!(
        s.position(&tp(0)),
        Some(FetchPosition {
            offset: 51,
            leader_epoch: Some(5)
        })
    );
    assert_eq!(
        sent_partitions(&s.poll_fetches(now, &m).pop().unwrap().1),
        [(0, 51)]
    );

    // With auto.offset.reset=none a truncation is the application's call.
    let m = metadata(1);
    let mut none = FetchState::new(FetchSettings {
        auto_offset_reset: AutoOffsetReset::None,
        ..settings()
    });
    none.add_assigned(vec![(
        tp(0),
        Some(OffsetAndMetadata::new(50).with_leader_epoch(4)),
    )]);
    none.poll_fetches(now, &m);
    let (token, _) = none.poll_validations(now, &m).pop().unwrap();
    none.handle_validations(now, token, Ok(epoch_end(0, 4, 40)));
    assert!(matches!(
        none.drain(1).error,
        Some(ConsumeError::LogTruncation {
            offset: 50,
            divergent_offset: 40,
            ..
        })
    ));
    // An epoch the leader does not know: reset by policy.
    let mut unknown = FetchState::new(settings());
    unknown.add_assigned(vec![(
        tp(0),
        Some(OffsetAndMetadata::new(50).with_leader_epoch(4)),
    )]);
    unknown.poll_fetches(now, &m);
    let (token, _) = unknown.poll_validations(now, &m).pop().unwrap();
    unknown.handle_validations(now, token, Ok(epoch_end(0, -1, -1)));
    assert!(unknown.is_resetting(&tp(0)));
    // A failed request is retried after the backoff.
    let mut failed = FetchState::new(settings());
    failed.add_assigned(vec![(
        tp(0),
        Some(OffsetAndMetadata::new(50).with_leader_epoch(4)),
    )]);
    failed.poll_fetches(now, &m);
    let (token, _) = failed.poll_validations(now, &m).pop().unwrap();
    failed.handle_validations(now, token, Err(crate::error::Error::NoBrokers));
    assert!(failed.poll_validations(now, &m).is_empty());
    assert_eq!(
        failed
            .poll_validations(now + Duration::from_millis(100), &m)
            .len(),
        1
    );
    // A position from a plain seek has no epoch: nothing to validate.
    let mut plain = FetchState::new(settings());
    plain.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(50)))]);
    assert_eq!(plain.poll_fetches(now, &m).len(), 1);
    assert!(plain.poll_validations(now, &m).is_empty());
}

#[test]
fn diverging_epoch_moves_the_position_back() {
    let now = Instant::now();
    let m = metadata(1);
    let mut s = validated_at_50(AutoOffsetReset::Earliest, &m, now);
    let (token, request) = s.poll_fetches(now, &m).pop().unwrap();
    assert_eq!(request.topics[0].partitions[0].last_fetched_epoch, 4);
    let diverged = partition(0, None, 45)
        .with_diverging_epoch(EpochEndOffset::default().with_epoch(4).with_end_offset(45));
    s.handle_fetch(now, token, response(0, vec![diverged.clone()]));
    assert_eq!(
        s.position(&tp(0)),
        Some(FetchPosition {
            offset: 45,
            leader_epoch: Some(4)
        })
    );

    // With auto.offset.reset=none the application decides.
    let mut none = validated_at_50(AutoOffsetReset::None, &m, now);
    let (token, _) = none.poll_fetches(now, &m).pop().unwrap();
    none.handle_fetch(now, token, response(0, vec![diverged]));
    assert!(matches!(
        none.drain(1).error,
        Some(ConsumeError::LogTruncation {
            offset: 50,
            divergent_offset: 45,
            ..
        })
    ));
    assert!(none.is_halted(&tp(0)));
}

#[test]
fn read_committed_skips_aborted_batches_and_control_records_never_surface() {
    let now = Instant::now();
    let m = metadata(1);
    let txn = |pid| BatchOptions {
        producer_id: pid,
        producer_epoch: 0,
        transactional: true,
        ..BatchOptions::default()
    };
    // 0-1: pid 1 committed; 2-3: pid 2 aborted, interleaved with 4: pid 1 more (committed);
    // 5: pid 2 ABORT; 6: pid 1 COMMIT; 7-8 non-transactional.
    let mut buf = BytesMut::new();
    batch(&mut buf, 0, 2, &txn(1));
    batch(&mut buf, 2, 2, &txn(2));
    batch(&mut buf, 4, 1, &txn(1));
    marker(&mut buf, 5, 2, ControlRecordType::Abort);
    marker(&mut buf, 6, 1, ControlRecordType::Commit);
    batch(&mut buf, 7, 2, &BatchOptions::default());
    let log = buf.freeze();
    let aborted = vec![AbortedTransaction::default()
        .with_producer_id(ProducerId(2))
        .with_first_offset(2)];

    for (level, expect) in [
        (
            IsolationLevel::ReadCommitted,
            vec!["v0", "v1", "v4", "v7", "v8"],
        ),
        (
            IsolationLevel::ReadUncommitted,
            vec!["v0", "v1", "v2", "v3", "v4", "v7", "v8"],
        ),
    ] {
        let mut s = FetchState::new(FetchSettings {
            isolation_level: level,
            ..settings()
        });
        s.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(0)))]);
        let (token, request) = s.poll_fetches(now, &m).pop().unwrap();
        assert_eq!(request.isolation_level, level.as_i8());
        let mut p = partition(0, Some(log.clone()), 9);
        if level == IsolationLevel::ReadCommitted {
            p = p.with_aborted_transactions(Some(aborted.clone()));
        }
        s.handle_fetch(now, token, response(0, vec![p]));
        assert_eq!(values(&s.drain(100)), expect, "{level:?}");
        assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(9));
    }

    // A fetch of nothing but an aborted batch and its marker still moves the position.
    let mut buf = BytesMut::new();
    batch(&mut buf, 0, 3, &txn(9));
    marker(&mut buf, 3, 9, ControlRecordType::Abort);
    let mut s = FetchState::new(FetchSettings {
        isolation_level: IsolationLevel::ReadCommitted,
        ..settings()
    });
    s.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(0)))]);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    let p = partition(0, Some(buf.freeze()), 4).with_aborted_transactions(Some(vec![
        AbortedTransaction::default()
            .with_producer_id(ProducerId(9))
            .with_first_offset(0),
    ]));
    s.handle_fetch(now, token, response(0, vec![p]));
    assert!(s.drain(100).records.is_empty());
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(4));
}

#[test]
fn read_committed_skips_every_aborted_transaction_of_one_fetch() {
    // Three aborted transactions (two of them by the same producer) and a committed one in one
    // response: each aborted batch is skipped, whatever order the broker lists them in.
    let now = Instant::now();
    let m = metadata(1);
    let txn = |pid| BatchOptions {
        producer_id: pid,
        producer_epoch: 0,
        transactional: true,
        ..BatchOptions::default()
    };
    // 0-1 pid 2 (aborted, marker 2); 3-4 pid 3 (aborted, marker 5); 6 pid 2 again (aborted,
    // marker 7); 8 pid 1 (committed, marker 9); 10 non-transactional.
    let mut buf = BytesMut::new();
    batch(&mut buf, 0, 2, &txn(2));
    marker(&mut buf, 2, 2, ControlRecordType::Abort);
    batch(&mut buf, 3, 2, &txn(3));
    marker(&mut buf, 5, 3, ControlRecordType::Abort);
    batch(&mut buf, 6, 1, &txn(2));
    marker(&mut buf, 7, 2, ControlRecordType::Abort);
    batch(&mut buf, 8, 1, &txn(1));
    marker(&mut buf, 9, 1, ControlRecordType::Commit);
    batch(&mut buf, 10, 1, &BatchOptions::default());
    let log = buf.freeze();
    let aborted = |pid: i64, first: i64| {
        AbortedTransaction::default()
            .with_producer_id(ProducerId(pid))
            .with_first_offset(first)
    };
    let ascending = vec![aborted(2, 0), aborted(3, 3), aborted(2, 6)];
    let shuffled = vec![aborted(2, 6), aborted(2, 0), aborted(3, 3)];
    for list in [ascending, shuffled] {
        let mut s = FetchState::new(FetchSettings {
            isolation_level: IsolationLevel::ReadCommitted,
            ..settings()
        });
        s.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(0)))]);
        let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
        let p = partition(0, Some(log.clone()), 11).with_aborted_transactions(Some(list.clone()));
        s.handle_fetch(now, token, response(0, vec![p]));
        assert_eq!(values(&s.drain(100)), vec!["v8", "v10"], "{list:?}");
        assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(11));
    }
}

#[test]
fn a_corrupt_batch_halts_the_partition_at_its_offset_after_the_good_records() {
    let now = Instant::now();
    let m = metadata(1);
    let mut s = assigned(1);
    let mut buf = BytesMut::new();
    batch(&mut buf, 0, 2, &BatchOptions::default());
    batch(&mut buf, 2, 2, &BatchOptions::default());
    let last = buf.len() - 1;
    buf[last] ^= 0xff;
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.handle_fetch(
        now,
        token,
        response(0, vec![partition(0, Some(buf.freeze()), 4)]),
    );
    let drained = s.drain(100);
    assert_eq!(values(&drained), ["v0", "v1"]);
    match drained.error {
        Some(ConsumeError::Corrupt {
            offset,
            partition,
            ref topic,
            ..
        }) => {
            assert_eq!((offset, partition, &**topic), (2, 0, TOPIC));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(s.is_halted(&tp(0)));
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(2));
    assert!(s.poll_fetches(now, &m).is_empty());
    // Java's rule: reported again by every drain until the application seeks.
    for _ in 0..3 {
        let again = s.drain(100);
        assert!(again.records.is_empty());
        assert!(
            matches!(again.error, Some(ConsumeError::Corrupt { offset: 2, .. })),
            "{:?}",
            again.error
        );
        assert!(s.has_ready());
    }
    s.seek(&tp(0), FetchPosition::new(4)).unwrap();
    assert!(!s.is_halted(&tp(0)));
    let after = s.drain(100);
    assert!(after.error.is_none() && after.records.is_empty());
    assert!(!s.has_ready());
    assert_eq!(
        sent_partitions(&s.poll_fetches(now, &m).pop().unwrap().1),
        [(0, 4)]
    );
}

#[test]
fn with_check_crcs_off_a_batch_whose_crc_does_not_match_is_handed_out() {
    let now = Instant::now();
    let m = metadata(1);
    for check_crcs in [false, true] {
        let mut s = FetchState::new(FetchSettings {
            check_crcs,
            ..settings()
        });
        s.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(0)))]);
        let mut buf = BytesMut::new();
        batch(&mut buf, 0, 2, &BatchOptions::default());
        batch(&mut buf, 2, 2, &BatchOptions::default());
        // The last record is "v3" and a 1-byte header count: flip the '3'.
        let at = buf.len() - 2;
        buf[at] ^= 0x01;
        let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
        s.handle_fetch(
            now,
            token,
            response(0, vec![partition(0, Some(buf.freeze()), 4)]),
        );
        let drained = s.drain(100);
        if check_crcs {
            assert_eq!(values(&drained), ["v0", "v1"]);
            assert!(
                matches!(drained.error, Some(ConsumeError::Corrupt { offset: 2, .. })),
                "{:?}",
                drained.error
            );
        } else {
            // The bytes as they are: the flipped one is in the last value.
            assert_eq!(values(&drained), ["v0", "v1", "v2", "v2"]);
            assert!(drained.error.is_none(), "{:?}", drained.error);
            assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(4));
        }
    }
}

#[test]
fn a_corrupt_partition_is_reported_beside_the_records_of_the_others() {
    let now = Instant::now();
    let m = metadata(2);
    let mut s = assigned(2);
    let mut buf = BytesMut::new();
    batch(&mut buf, 0, 2, &BatchOptions::default());
    let last = buf.len() - 1;
    buf[last] ^= 0xff;
    let corrupt = buf.freeze();
    for (token, _) in s.poll_fetches(now, &m) {
        let p = if token.node() == 0 { 0 } else { 1 };
        let bytes = if p == 0 {
            corrupt.clone()
        } else {
            records(0, 3)
        };
        s.handle_fetch(now, token, response(0, vec![partition(p, Some(bytes), 3)]));
    }
    // Partition 0's batch comes first: reported alone (nothing good before it).
    let first = s.drain(100);
    assert!(first.records.is_empty());
    assert!(matches!(
        first.error,
        Some(ConsumeError::Corrupt {
            partition: 0,
            offset: 0,
            ..
        })
    ));
    // Partition 1 goes on, with partition 0's error reported beside its records.
    let second = s.drain(100);
    assert_eq!(values(&second), ["v0", "v1", "v2"]);
    assert!(matches!(
        second.error,
        Some(ConsumeError::Corrupt { partition: 0, .. })
    ));
    // Past the bad batch: nothing reported any more.
    s.seek(&tp(0), FetchPosition::new(2)).unwrap();
    assert!(s.drain(100).error.is_none());
}

#[test]
fn paused_partitions_keep_their_buffered_records_for_resume() {
    let now = Instant::now();
    let m = metadata(2);
    let mut s = FetchState::new(FetchSettings {
        prefetch_max_bytes: 10, // any one response fills it
        ..settings()
    });
    s.add_assigned(
        (0..2)
            .map(|p| (tp(p), Some(OffsetAndMetadata::new(0))))
            .collect(),
    );
    let mut token1 = None;
    for (token, _) in s.poll_fetches(now, &m) {
        if token.node() == 0 {
            s.handle_fetch(
                now,
                token,
                response(0, vec![partition(0, Some(records(0, 3)), 3)]),
            );
        } else {
            token1 = Some(token);
        }
    }
    let buffered = s.buffered_bytes();
    assert!(buffered > 0);
    s.pause(&tp(0)).unwrap();
    assert_eq!(s.buffered_bytes(), buffered, "pause keeps the records");
    assert!(!s.has_ready(), "nothing to hand out while paused");
    let drained = s.drain(100);
    assert!(drained.records.is_empty() && drained.error.is_none());
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(0));
    // The paused partition's bytes do not hold the others back, and it is not fetched.
    s.handle_fetch_failure(now, token1.unwrap());
    let later = now + Duration::from_secs(1);
    let planned: Vec<(i32, i64)> = s
        .poll_fetches(later, &m)
        .iter()
        .flat_map(|(_, r)| sent_partitions(r))
        .collect();
    assert_eq!(
        planned,
        [(1, 0)],
        "partition 1 fetched, paused partition 0 not"
    );
    // Resume: the buffered records come out without a new fetch.
    s.resume(&tp(0)).unwrap();
    assert!(s.has_ready());
    let drained = s.drain(100);
    assert_eq!(values(&drained), ["v0", "v1", "v2"]);
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(3));
    assert_eq!(s.buffered_bytes(), 0);
    // A seek while paused still drops them (stale data never surfaces).
    s.pause(&tp(0)).unwrap();
    s.seek(&tp(0), FetchPosition::new(1)).unwrap();
    assert_eq!(s.buffered_bytes(), 0);
}

#[test]
fn assign_replaces_and_remove_drops_buffers() {
    let now = Instant::now();
    let m = metadata(3);
    let mut s = assigned(2);
    let fetches = s.poll_fetches(now, &m);
    for (token, _) in fetches {
        let p = token.node();
        s.handle_fetch(
            now,
            token,
            response(0, vec![partition(p, Some(records(0, 2)), 2)]),
        );
    }
    assert!(s.buffered_bytes() > 0);
    s.assign([tp(1), tp(2)]);
    assert_eq!(s.assignment(), [tp(1), tp(2)]);
    assert!(
        s.is_resetting(&tp(2)),
        "new partitions start by auto.offset.reset"
    );
    assert_eq!(
        s.position(&tp(1)).map(|p| p.offset),
        Some(0),
        "kept ones keep their position"
    );
    assert!(values(&s.drain(10)).iter().all(|v| v.starts_with('v')));
    s.remove_assigned(&[tp(1)]);
    assert_eq!(s.buffered_bytes(), 0);
    assert!(s.drain(10).records.is_empty());
}

#[test]
fn leader_hints_name_the_new_leader() {
    use kafka_protocol::messages::fetch_response::{LeaderIdAndEpoch, NodeEndpoint};
    let now = Instant::now();
    let m = metadata(1);
    let mut s = assigned(1);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    let moved = partition(0, None, 0)
        .with_error_code(6)
        .with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(6),
        );
    let r = response(0, vec![moved]).with_node_endpoints(vec![NodeEndpoint::default()
        .with_node_id(BrokerId(1))
        .with_host(StrBytes::from_static_str("h1"))
        .with_port(9093)]);
    let hints = token.leader_hints(&r);
    assert_eq!(hints.len(), 1);
    let (topic, partition, leader, epoch, endpoint) = &hints[0];
    assert_eq!(
        (topic.as_str(), *partition, *leader, *epoch),
        (TOPIC, 0, 1, 6)
    );
    assert_eq!(endpoint.as_ref().map(|e| e.port), Some(9093));
    s.handle_fetch(now, token, r);
    assert!(s.take_wants_metadata());
}

#[test]
fn a_throttled_node_is_not_fetched_before_the_throttle_ends() {
    let now = Instant::now();
    let m = metadata(1);
    let mut s = assigned(1);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    s.handle_fetch(now, token, response(0, vec![]).with_throttle_time_ms(300));
    assert!(s
        .poll_fetches(now + Duration::from_millis(299), &m)
        .is_empty());
    assert_eq!(s.next_timer(now), Some(now + Duration::from_millis(300)));
    assert_eq!(
        s.poll_fetches(now + Duration::from_millis(300), &m).len(),
        1
    );
}

/// The consumer's requests as `FetchState` plans them, for `crate::request_versions`: a full
/// Fetch (two leaders), one with `rack_id` (`client.rack`), an incremental one with a forgotten partition, ListOffsets resets
/// (earliest, latest, by timestamp, read_committed), OffsetForLeaderEpoch validations.
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    use kafka_protocol::messages::ApiKey;
    let now = Instant::now();
    let m = metadata(4);
    let mut fetches = Vec::new();
    let mut s = assigned(4);
    fetches.extend(
        s.poll_fetches(now, &m)
            .into_iter()
            .map(|(_, r)| ("full Fetch", 4, r)),
    );
    // `client.rack` set: `rack_id` (v11+; not written below).
    let mut s = FetchState::new(FetchSettings {
        rack_id: "rack-a".to_owned(),
        ..settings()
    });
    s.assign([tp(0)]);
    let _ = s.poll_list_offsets(now, &m);
    s.seek(&tp(0), super::position::FetchPosition::new(0))
        .unwrap();
    fetches.extend(
        s.poll_fetches(now, &m)
            .into_iter()
            .map(|(_, r)| ("Fetch with rack_id", 4, r)),
    );
    assert!(fetches.iter().any(|(n, _, _)| *n == "Fetch with rack_id"));
    // Incremental with a forgotten partition: both partitions on node 0.
    let mut m0 = metadata(2);
    m0.update_leader(TOPIC, 1, 0, 6, None);
    let mut s = assigned(2);
    if let Some((token, _)) = s.poll_fetches(now, &m0).pop() {
        s.handle_fetch(
            now,
            token,
            response(77, vec![partition(0, Some(records(0, 2)), 2)]),
        );
        let _ = s.drain(10);
        let _ = s.pause(&tp(1));
        // Fetch sessions (KIP-227) exist from v7: below, every response has session id 0
        // and every request is full.
        fetches.extend(
            s.poll_fetches(now, &m0)
                .into_iter()
                .map(|(_, r)| ("incremental Fetch", 7, r)),
        );
    }
    assert!(fetches.iter().any(|(n, _, _)| *n == "incremental Fetch"));
    for v in Encoder::versions(ApiKey::Fetch) {
        for (name, from, r) in &fetches {
            if v >= *from {
                enc.check(name, v, r);
            }
        }
    }

    let mut lookups = Vec::new();
    for (reset, isolation) in [
        (AutoOffsetReset::Earliest, IsolationLevel::ReadUncommitted),
        (AutoOffsetReset::Latest, IsolationLevel::ReadCommitted),
    ] {
        let mut s = FetchState::new(FetchSettings {
            auto_offset_reset: reset,
            isolation_level: isolation,
            ..settings()
        });
        s.assign([tp(0), tp(1), tp(2)]);
        // isolation_level exists from ListOffsets v2 (KIP-98): read_committed needs it.
        let from = if isolation == IsolationLevel::ReadCommitted {
            2
        } else {
            1
        };
        lookups.extend(
            s.poll_list_offsets(now, &m)
                .into_iter()
                .map(|(_, r)| (from, r)),
        );
    }
    let mut s = assigned(2);
    let _ = s.request_reset(
        &tp(0),
        super::position::OffsetSpec::Timestamp(1_700_000_000_000),
    );
    lookups.extend(
        s.poll_list_offsets(now, &m)
            .into_iter()
            .map(|(_, r)| (1, r)),
    );
    // The consumer's offset queries (`offsets_for_times` and friends): the same builder.
    for (isolation, from) in [
        (IsolationLevel::ReadUncommitted, 1),
        (IsolationLevel::ReadCommitted, 2),
    ] {
        let asked = [
            (tp(0), super::position::OffsetSpec::Earliest),
            (tp(1), super::position::OffsetSpec::Latest),
            (
                tp(2),
                super::position::OffsetSpec::Timestamp(1_700_000_000_000),
            ),
        ];
        let mut lookup = OffsetLookup::new(isolation, 30_000, asked);
        lookups.extend(
            lookup
                .poll_requests(&metadata(3))
                .into_iter()
                .map(|(_, r)| (from, r)),
        );
    }
    assert!(!lookups.is_empty());
    for v in Encoder::versions(ApiKey::ListOffsets) {
        for (from, r) in &lookups {
            if v >= *from {
                enc.check("consumer ListOffsets", v, r);
            }
        }
    }

    let mut s = FetchState::new(settings());
    s.add_assigned(vec![
        (tp(0), Some(OffsetAndMetadata::new(5).with_leader_epoch(3))),
        (tp(2), Some(OffsetAndMetadata::new(9).with_leader_epoch(4))),
    ]);
    let _ = s.poll_fetches(now, &m); // marks the positions to validate first
    let validations: Vec<_> = s
        .poll_validations(now, &m)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert!(!validations.is_empty());
    for v in Encoder::versions(ApiKey::OffsetForLeaderEpoch) {
        for r in &validations {
            enc.check("OffsetForLeaderEpoch", v, r);
        }
    }
}

/// A state with one fetch of partition 0 buffered: 40 records of 1,000 empty headers each
/// (2 KB each on the wire, 64 KB each decoded), `kafkit.prefetch.max.bytes` as given.
fn header_heavy_fetch(prefetch_max_bytes: usize) -> FetchState {
    let now = Instant::now();
    let m = metadata(1);
    let mut s = FetchState::new(FetchSettings {
        prefetch_max_bytes,
        ..settings()
    });
    s.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(0)))]);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    let headers = vec![kafkit_wire::record::HeaderRef::new(b"", None); 1_000];
    let mut buf = BytesMut::new();
    let mut b = BatchBuilder::new(&mut buf, 0);
    for _ in 0..40 {
        b.append(&RecordRef::new(1_000, None, None).with_headers(&headers))
            .unwrap();
    }
    b.finish(&BatchOptions::default(), &mut Vec::new()).unwrap();
    let data = Some(buf.freeze());
    s.handle_fetch(now, token, response(0, vec![partition(0, data, 40)]));
    s
}

#[test]
fn a_drain_stops_once_its_records_cost_the_prefetch_bound_in_memory() {
    let mut s = header_heavy_fetch(1 << 20);
    // 1 MiB / 64 KB: the 17th record passes the bound, then the drain stops.
    let first = s.drain(500).records;
    assert_eq!(first.len(), 17);
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(17));
    let rest = s.drain(500).records;
    assert_eq!(rest.len(), 17);
    assert_eq!(s.drain(500).records.len(), 6);
}

#[test]
fn a_drain_whose_records_cost_exactly_the_bound_stops_there() {
    // The bound is reached exactly, not passed: the drain must stop at it (a drain that went
    // on while `used == budget` would find the same fetch again and again, taking nothing).
    let one = header_heavy_fetch(1 << 20).drain(1).records;
    let each = fetcher::record_memory(&one[0]);
    // 20 records' memory, above `MIN_DRAIN_MEMORY` (1 MiB) so it is the budget itself.
    assert!(20 * each >= fetcher::MIN_DRAIN_MEMORY);
    let mut s = header_heavy_fetch(20 * each);
    assert_eq!(s.drain(500).records.len(), 20);
    assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(20));
    assert_eq!(s.drain(500).records.len(), 20);
}

/// The lag counts to the last stable offset under read_committed (to the high watermark when
/// the broker sent none, -1), to the high watermark under read_uncommitted.
#[test]
fn lag_counts_to_the_last_stable_offset_under_read_committed() {
    let now = Instant::now();
    let m = metadata(1);
    for (isolation, lso, want) in [
        (IsolationLevel::ReadCommitted, 6, 3),
        (IsolationLevel::ReadCommitted, -1, 7),
        (IsolationLevel::ReadUncommitted, 6, 7),
    ] {
        let mut s = FetchState::new(FetchSettings {
            isolation_level: isolation,
            ..settings()
        });
        s.add_assigned(vec![(tp(0), Some(OffsetAndMetadata::new(0)))]);
        let (token, _) = s.poll_fetches(now, &m).pop().expect("a fetch");
        let data = partition(0, Some(records(0, 3)), 10).with_last_stable_offset(lso);
        s.handle_fetch(now, token, response(11, vec![data]));
        assert_eq!(s.drain(100).records.len(), 3);
        assert_eq!(s.lag(&tp(0)), Some(want), "{isolation:?}, LSO {lso}");
    }
}

/// The partition errors after which the fetcher asks who leads now; other errors are not.
#[test]
fn leader_errors_are_the_ones_that_send_the_fetcher_to_the_metadata() {
    use super::fetcher::is_leader_error;
    use kafka_protocol::error::ResponseError as E;
    for e in [
        E::NotLeaderOrFollower,
        E::FencedLeaderEpoch,
        E::UnknownLeaderEpoch,
        E::UnknownTopicOrPartition,
        E::UnknownTopicId,
        E::InconsistentTopicId,
        E::OffsetNotAvailable,
        E::KafkaStorageError,
        E::ReplicaNotAvailable,
        E::LeaderNotAvailable,
    ] {
        assert!(is_leader_error(e), "{e:?}");
    }
    for e in [
        E::OffsetOutOfRange,
        E::CorruptMessage,
        E::TopicAuthorizationFailed,
        E::FetchSessionIdNotFound,
    ] {
        assert!(!is_leader_error(e), "{e:?}");
    }
}
