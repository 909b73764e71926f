//! The typed errors the fetch state queues for the application: a fatal OffsetForLeaderEpoch
//! answer halts its partition (a retriable one is asked again), a retriable fetch error that
//! names no leader change is retried too, an OffsetForLeaderEpoch answer with either field
//! unknown resets the position, and removing a partition drops its queued errors but not
//! another partition's; an error put back is reported first. Each test here was written for a
//! mutant `scripts/mutants.sh consumer` found alive.

use kafka_protocol::error::ResponseError;

use super::*;
use crate::state::consumer::fetcher::is_leader_error;

/// A state whose partition 0 (committed offset 50, leader epoch 4) is being validated.
fn validating(now: Instant, m: &ClusterMetadata) -> (FetchState, ValidationToken) {
    let mut s = FetchState::new(settings());
    s.add_assigned(vec![(
        tp(0),
        Some(OffsetAndMetadata::new(50).with_leader_epoch(4)),
    )]);
    assert!(s.poll_fetches(now, m).is_empty(), "validation comes first");
    let (token, _) = s.poll_validations(now, m).pop().unwrap();
    (s, token)
}

/// An OffsetForLeaderEpoch answer for partition 0 with `code`.
fn refused(code: i16) -> kafka_protocol::messages::OffsetForLeaderEpochResponse {
    let mut response = epoch_end(0, -1, -1);
    response.topics[0].partitions[0].error_code = code;
    response
}

#[test]
fn a_fatal_validation_error_halts_the_partition_and_a_leader_error_retries() {
    let now = Instant::now();
    let later = now + Duration::from_millis(100);
    let m = metadata(1);
    // TOPIC_AUTHORIZATION_FAILED (29): a typed error, the partition stops.
    let (mut s, token) = validating(now, &m);
    s.handle_validations(now, token, Ok(refused(29)));
    assert!(s.is_halted(&tp(0)));
    assert!(matches!(
        s.drain(1).error,
        Some(ConsumeError::Broker { partition: 0, .. })
    ));
    assert!(s.poll_validations(later, &m).is_empty());
    assert!(s.poll_fetches(later, &m).is_empty());
    // NOT_LEADER_OR_FOLLOWER (6): new metadata, the same check again after the backoff.
    let (mut s, token) = validating(now, &m);
    s.take_wants_metadata();
    s.handle_validations(now, token, Ok(refused(6)));
    assert!(!s.is_halted(&tp(0)));
    assert!(s.take_wants_metadata());
    assert!(s.drain(1).error.is_none());
    assert!(s.poll_validations(now, &m).is_empty());
    assert_eq!(s.poll_validations(later, &m).len(), 1);
}

#[test]
fn a_retriable_validation_error_that_is_not_a_leader_error_is_asked_again() {
    let now = Instant::now();
    let later = now + Duration::from_millis(100);
    let m = metadata(1);
    // REQUEST_TIMED_OUT (7): retriable, names no leader change.
    assert!(!is_leader_error(ResponseError::RequestTimedOut));
    let (mut s, token) = validating(now, &m);
    s.handle_validations(now, token, Ok(refused(7)));
    assert!(!s.is_halted(&tp(0)));
    assert!(s.drain(1).error.is_none());
    assert!(s.poll_validations(now, &m).is_empty(), "after the backoff");
    assert_eq!(s.poll_validations(later, &m).len(), 1);
}

#[test]
fn removing_a_partition_drops_its_errors_and_keeps_the_others() {
    let now = Instant::now();
    let m = metadata(2);
    let mut s = assigned(2);
    // TOPIC_AUTHORIZATION_FAILED (29) for both partitions (one node each): two errors queued.
    for (token, _) in s.poll_fetches(now, &m) {
        let p = token.node();
        let refused = partition(p, None, 0).with_error_code(29);
        s.handle_fetch(now, token, response(0, vec![refused]));
    }
    s.remove_assigned(&[tp(0)]);
    assert!(matches!(
        s.drain(1).error,
        Some(ConsumeError::Broker { partition: 1, .. })
    ));
    assert!(s.drain(1).error.is_none());
}

#[test]
fn a_deferred_error_is_reported_by_the_next_drain_before_the_queued_ones() {
    let now = Instant::now();
    let m = metadata(2);
    let mut s = assigned(2);
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    let refused = partition(token.node(), None, 0).with_error_code(29);
    s.handle_fetch(now, token, response(0, vec![refused]));
    s.defer_error(ConsumeError::NoOffset {
        topic: TOPIC.into(),
        partition: 0,
    });
    assert!(matches!(
        s.drain(1).error,
        Some(ConsumeError::NoOffset { partition: 0, .. })
    ));
    assert!(matches!(
        s.drain(1).error,
        Some(ConsumeError::Broker { partition: 1, .. })
    ));
}

#[test]
fn a_retriable_fetch_error_that_is_not_a_leader_error_is_retried_after_metadata() {
    let now = Instant::now();
    let later = now + Duration::from_millis(100);
    let m = metadata(1);
    let mut s = assigned(1);
    s.take_wants_metadata();
    let (token, _) = s.poll_fetches(now, &m).pop().unwrap();
    // REQUEST_TIMED_OUT (7): retriable, but not one of the leader errors.
    let code = ResponseError::RequestTimedOut;
    assert!(code.is_retriable() && !is_leader_error(code));
    let timed_out = partition(0, None, 0).with_error_code(code.code());
    s.handle_fetch(now, token, response(0, vec![timed_out]));
    assert!(!s.is_halted(&tp(0)));
    assert!(s.drain(1).error.is_none());
    assert!(s.take_wants_metadata());
    assert!(s.poll_fetches(now, &m).is_empty(), "the node backs off");
    let (_, request) = s.poll_fetches(later, &m).pop().unwrap();
    assert_eq!(sent_partitions(&request), [(0, 0)]);
}

#[test]
fn a_validation_answer_with_only_the_end_offset_or_only_the_epoch_unknown_resets() {
    let now = Instant::now();
    let m = metadata(1);
    // (leader epoch, end offset): one of the two -1, the other a plausible value (the end
    // offset past the position of 50, so neither a truncation nor a pass may be read from it).
    for (epoch, end) in [(4, -1), (-1, 60)] {
        let (mut s, token) = validating(now, &m);
        s.handle_validations(now, token, Ok(epoch_end(0, epoch, end)));
        assert!(s.is_resetting(&tp(0)), "epoch {epoch}, end offset {end}");
        assert_eq!(s.position(&tp(0)), None, "epoch {epoch}, end offset {end}");
        assert!(s.drain(1).error.is_none());
    }
}
