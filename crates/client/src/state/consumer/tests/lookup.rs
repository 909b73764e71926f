//! Scripted scenarios for [`OffsetLookup`] (the consumer's `offsets_for_times`,
//! `beginning_offsets`, `end_offsets`): requests per leader, retries, answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{metadata, tp, TOPIC};
use crate::config::IsolationLevel;
use crate::consumer::ConsumeError;
use crate::error::Error;
use crate::state::consumer::{OffsetAndTimestamp, OffsetLookup, OffsetSpec};
use crate::state::metadata::ClusterMetadata;

fn answer(parts: &[(i32, i16, i64, i64)]) -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(
            parts
                .iter()
                .map(|&(p, code, offset, timestamp)| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                        .with_offset(offset)
                        .with_timestamp(timestamp)
                        .with_leader_epoch(5)
                })
                .collect(),
        )])
}

#[test]
fn one_request_per_leader_with_the_isolation_level_and_leader_epochs() {
    let m = metadata(4);
    let asked = (0..4).map(|p| (tp(p), OffsetSpec::Latest));
    let mut lookup = OffsetLookup::new(IsolationLevel::ReadCommitted, 5_000, asked);
    assert!(lookup.take_wants_metadata(), "metadata first");
    let requests = lookup.poll_requests(&m);
    assert_eq!(requests.len(), 2);
    for (token, request) in &requests {
        assert_eq!(request.isolation_level, 1, "read_committed: the LSO");
        assert_eq!(request.timeout_ms, 5_000);
        let parts = &request.topics[0].partitions;
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.partition_index % 2 == token.node()));
        assert!(parts
            .iter()
            .all(|p| p.timestamp == -1 && p.current_leader_epoch == 5));
    }
    assert!(
        lookup.poll_requests(&m).is_empty(),
        "nothing twice in flight"
    );
    for (token, _) in requests {
        let n = token.node();
        lookup.handle_response(
            token,
            Ok(answer(&[(n, 0, 10 + n as i64, -1), (n + 2, 0, 20, -1)])),
        );
    }
    assert!(lookup.is_done());
    let found = lookup.finish().unwrap();
    assert_eq!(found.len(), 4);
    assert_eq!(found[&tp(1)].map(|o| o.offset), Some(11));
    assert_eq!(found[&tp(3)].map(|o| o.leader_epoch), Some(Some(5)));
}

#[test]
fn leader_errors_and_lost_answers_are_asked_again_after_metadata() {
    let m = metadata(2);
    let asked = [(tp(0), OffsetSpec::Earliest), (tp(1), OffsetSpec::Earliest)];
    let mut lookup = OffsetLookup::new(IsolationLevel::ReadUncommitted, 5_000, asked);
    lookup.take_wants_metadata();
    for (token, _) in lookup.poll_requests(&m) {
        if token.node() == 0 {
            let code = ResponseError::NotLeaderOrFollower.code();
            lookup.handle_response(token, Ok(answer(&[(0, code, -1, -1)])));
        } else {
            lookup.handle_response(
                token,
                Err(Error::ConnectionClosed {
                    broker: "h:9092".into(),
                    api: kafka_protocol::messages::ApiKey::ListOffsets,
                }),
            );
        }
    }
    assert!(!lookup.is_done());
    assert!(lookup.take_wants_metadata());
    assert_eq!(lookup.pending(), [tp(0), tp(1)]);
    for (token, request) in lookup.poll_requests(&m) {
        assert_eq!(request.topics[0].partitions[0].timestamp, -2);
        let n = token.node();
        lookup.handle_response(token, Ok(answer(&[(n, 0, 0, -1)])));
    }
    assert_eq!(lookup.finish().unwrap().len(), 2);
}

#[test]
fn no_record_after_a_timestamp_is_none_and_fatal_errors_name_the_partition() {
    let m = metadata(2);
    let asked = [
        (tp(0), OffsetSpec::Timestamp(1_000)),
        (tp(1), OffsetSpec::Timestamp(1_000)),
    ];
    let mut lookup = OffsetLookup::new(IsolationLevel::ReadUncommitted, 5_000, asked);
    for (token, request) in lookup.poll_requests(&m) {
        assert_eq!(request.topics[0].partitions[0].timestamp, 1_000);
        if token.node() == 0 {
            lookup.handle_response(token, Ok(answer(&[(0, 0, 7, 1_234)])));
        } else {
            lookup.handle_response(token, Ok(answer(&[(1, 0, -1, -1)])));
        }
    }
    let found = lookup.finish().unwrap();
    assert_eq!(
        found[&tp(0)],
        Some(OffsetAndTimestamp {
            offset: 7,
            timestamp: 1_234,
            leader_epoch: Some(5)
        })
    );
    assert_eq!(found[&tp(1)], None);

    let mut lookup = OffsetLookup::new(
        IsolationLevel::ReadUncommitted,
        5_000,
        [(tp(1), OffsetSpec::Latest)],
    );
    let (token, _) = lookup.poll_requests(&m).pop().unwrap();
    let code = ResponseError::TopicAuthorizationFailed.code();
    lookup.handle_response(token, Ok(answer(&[(1, code, -1, -1)])));
    assert!(lookup.is_done());
    match lookup.finish() {
        Err(ConsumeError::Broker {
            partition: 1,
            code: ResponseError::TopicAuthorizationFailed,
            ..
        }) => {}
        other => panic!("expected a broker error for partition 1, got {other:?}"),
    }
}

#[test]
fn a_partition_without_a_leader_waits_for_metadata() {
    let m = ClusterMetadata::default();
    let mut lookup = OffsetLookup::new(
        IsolationLevel::ReadUncommitted,
        5_000,
        [(tp(0), OffsetSpec::Latest)],
    );
    lookup.take_wants_metadata();
    assert!(lookup.poll_requests(&m).is_empty());
    assert!(lookup.take_wants_metadata());
    assert_eq!(lookup.topics(), [TOPIC]);
    assert!(!lookup.is_done());
}

#[test]
fn an_earliest_or_latest_answer_without_an_offset_is_asked_again() {
    let m = metadata(2);
    let asked = [(tp(0), OffsetSpec::Earliest), (tp(1), OffsetSpec::Latest)];
    let mut lookup = OffsetLookup::new(IsolationLevel::ReadUncommitted, 5_000, asked);
    lookup.take_wants_metadata();
    // No error and offset -1: the broker has no answer yet; only a timestamp lookup may end
    // with "no offset".
    for (token, _) in lookup.poll_requests(&m) {
        let n = token.node();
        lookup.handle_response(token, Ok(answer(&[(n, 0, -1, -1)])));
    }
    assert!(!lookup.is_done());
    assert!(lookup.take_wants_metadata());
    assert_eq!(lookup.pending(), [tp(0), tp(1)]);
    for (token, _) in lookup.poll_requests(&m) {
        let n = token.node();
        lookup.handle_response(token, Ok(answer(&[(n, 0, 30 + n as i64, -1)])));
    }
    let found = lookup.finish().unwrap();
    assert_eq!(found[&tp(0)].map(|o| o.offset), Some(30));
    assert_eq!(found[&tp(1)].map(|o| o.offset), Some(31));
}
