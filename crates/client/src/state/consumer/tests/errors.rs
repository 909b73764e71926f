//! The typed errors the fetch state queues for the application: a fatal OffsetForLeaderEpoch
//! answer halts its partition (a retriable one is asked again), and removing a partition drops
//! its queued errors but not another partition's; an error put back is reported first. Each test here was written for a mutant
//! `scripts/mutants.sh consumer` found alive.

use super::*;

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
