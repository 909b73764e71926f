//! A seek wins over every lookup sent before it: the answer of a ListOffsets reset that was in
//! flight when the application sought must not move the position afterwards (it would hand out
//! records again, or skip them). Killed planted defect: `seek-accepts-older-fetch`.

use super::*;

fn reset_answer(offset: i64) -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![ListOffsetsPartitionResponse::default()
            .with_partition_index(0)
            .with_offset(offset)
            .with_leader_epoch(5)])])
}

/// Partition 0 out of range at its first fetch, its reset's ListOffsets in flight.
fn reset_in_flight(now: Instant, m: &ClusterMetadata) -> (FetchState, ListOffsetsToken) {
    let mut s = assigned(1);
    let (fetch, _) = s.poll_fetches(now, m).pop().unwrap();
    let out_of_range = partition(0, None, 0).with_error_code(1);
    s.handle_fetch(now, fetch, response(0, vec![out_of_range]));
    let (lookup, _) = s.poll_list_offsets(now, m).pop().unwrap();
    (s, lookup)
}

#[test]
fn a_reset_answer_sent_before_a_seek_does_not_move_the_position() {
    let (now, m) = (Instant::now(), metadata(1));
    let (mut s, lookup) = reset_in_flight(now, &m);
    // The application seeks while the reset's ListOffsets is in flight.
    s.seek(&tp(0), FetchPosition::new(7)).unwrap();
    assert!(!s.is_resetting(&tp(0)));
    s.handle_list_offsets(now, lookup, Ok(reset_answer(40)));
    assert_eq!(s.position(&tp(0)), Some(FetchPosition::new(7)));
    let (_, request) = s.poll_fetches(now, &m).pop().unwrap();
    assert_eq!(sent_partitions(&request), [(0, 7)]);
}

#[test]
fn a_failed_reset_sent_before_a_seek_does_not_delay_the_sought_fetch() {
    let (now, m) = (Instant::now(), metadata(1));
    let (mut s, lookup) = reset_in_flight(now, &m);
    s.seek(&tp(0), FetchPosition::new(7)).unwrap();
    s.handle_list_offsets(now, lookup, Err(crate::error::Error::NoBrokers));
    let (_, request) = s.poll_fetches(now, &m).pop().unwrap();
    assert_eq!(sent_partitions(&request), [(0, 7)]);
}
