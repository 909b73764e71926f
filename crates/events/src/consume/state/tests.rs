//! Scripted tests, one per rule, and a property test driving random interleavings.

use std::sync::Arc;

use bytes::Bytes;
use kafkit::consumer::TimestampType;

use super::*;
use crate::consume::retry::FailureKind;

mod model;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn rec(p: i32, offset: i64, size: usize) -> ConsumerRecord {
    ConsumerRecord {
        topic: Arc::from("t"),
        partition: p,
        offset,
        timestamp: 0,
        timestamp_type: TimestampType::CreateTime,
        key: None,
        value: Some(Bytes::from(vec![0u8; size])),
        headers: vec![],
        leader_epoch: None,
    }
}

fn settings() -> ProcessingSettings {
    ProcessingSettings {
        max_concurrent_partitions: 8,
        max_buffered_bytes_per_partition: 1 << 20,
        commit_interval: Duration::from_secs(5),
        commit_every_n: 1000,
        retry: RetryPolicy::new(3, Duration::from_millis(100), Duration::from_millis(350)).unwrap(),
        dead_letter: DeadLetterPolicy::default(),
    }
}

fn state(settings: ProcessingSettings, parts: &[i32]) -> ProcessingState {
    let mut s = ProcessingState::with_seed(settings, XorShift64Star::new(9)).unwrap();
    s.assign(&parts.iter().map(|p| tp(*p)).collect::<Vec<_>>());
    s
}

fn drain_actions(s: &mut ProcessingState, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = s.poll_action(now) {
        out.push(a);
        assert!(out.len() < 1000, "poll_action does not settle");
    }
    out
}

fn dispatched(actions: &[Action]) -> Vec<(i32, i64, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dispatch {
                tp,
                record,
                attempt,
            } => Some((tp.partition, record.offset, *attempt)),
            _ => None,
        })
        .collect()
}

fn retriable() -> HandlerFailure {
    HandlerFailure::retriable(Failure::new("E", "transient", 7))
}

#[test]
fn one_record_of_a_partition_at_a_time_in_order() {
    let now = Instant::now();
    let mut s = state(settings(), &[0]);
    for o in 0..3 {
        s.push(rec(0, o, 10), now);
    }
    assert_eq!(dispatched(&drain_actions(&mut s, now)), [(0, 0, 1)]);
    assert!(s.is_in_flight(&tp(0)));
    s.handled(&tp(0), 0, Ok(()), now);
    assert_eq!(dispatched(&drain_actions(&mut s, now)), [(0, 1, 1)]);
    // A duplicate or stale report changes nothing.
    s.handled(&tp(0), 0, Ok(()), now);
    assert!(drain_actions(&mut s, now).is_empty());
    s.handled(&tp(0), 1, Ok(()), now);
    assert_eq!(dispatched(&drain_actions(&mut s, now)), [(0, 2, 1)]);
}

#[test]
fn concurrency_limit_counts_partitions_in_handlers() {
    let now = Instant::now();
    let mut s = state(
        ProcessingSettings {
            max_concurrent_partitions: 2,
            ..settings()
        },
        &[0, 1, 2],
    );
    for p in 0..3 {
        s.push(rec(p, 0, 10), now);
    }
    let first = dispatched(&drain_actions(&mut s, now));
    assert_eq!(first.len(), 2);
    s.handled(&tp(first[0].0), 0, Ok(()), now);
    let next = dispatched(&drain_actions(&mut s, now));
    assert_eq!(next.len(), 1);
    assert!(!first.iter().any(|d| d.0 == next[0].0));
}

#[test]
fn commits_batch_by_count() {
    let now = Instant::now();
    let mut s = state(
        ProcessingSettings {
            commit_every_n: 2,
            ..settings()
        },
        &[0],
    );
    for o in 0..3 {
        s.push(rec(0, o, 10), now);
    }
    drain_actions(&mut s, now);
    s.handled(&tp(0), 0, Ok(()), now);
    let a = drain_actions(&mut s, now);
    assert!(!a.iter().any(|a| matches!(a, Action::Commit(_))), "{a:?}");
    s.handled(&tp(0), 1, Ok(()), now);
    let a = drain_actions(&mut s, now);
    assert!(a.contains(&Action::Commit(vec![(tp(0), 2)])), "{a:?}");
}

#[test]
fn commits_batch_by_interval() {
    let t0 = Instant::now();
    let mut s = state(settings(), &[0]);
    s.push(rec(0, 0, 10), t0);
    drain_actions(&mut s, t0);
    s.handled(&tp(0), 0, Ok(()), t0);
    assert!(drain_actions(&mut s, t0).is_empty());
    assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(5)));
    assert!(drain_actions(&mut s, t0 + Duration::from_millis(4_999)).is_empty());
    let a = drain_actions(&mut s, t0 + Duration::from_secs(5));
    assert_eq!(a, [Action::Commit(vec![(tp(0), 1)])]);
    assert_eq!(s.next_deadline(), None);
    // Failed: sent again with the next batch.
    s.commit_failed(&[(tp(0), 1)]);
    let a = drain_actions(&mut s, t0 + Duration::from_secs(11));
    assert!(a.is_empty());
    let a = drain_actions(&mut s, t0 + Duration::from_secs(16));
    assert_eq!(a, [Action::Commit(vec![(tp(0), 1)])]);
    s.committed(&[(tp(0), 1)]);
    assert!(s.revoke(&[tp(0)]).is_empty(), "already committed");
}

#[test]
fn retries_pause_the_partition_grow_and_end_in_one_dead_letter() {
    let t0 = Instant::now();
    let mut s = state(settings(), &[0]);
    s.push(rec(0, 0, 10), t0);
    s.push(rec(0, 1, 10), t0);
    drain_actions(&mut s, t0);
    let mut now = t0;
    let policy = settings().retry;
    for attempt in 1..=3u32 {
        s.handled(&tp(0), 0, Err(retriable()), now);
        let a = drain_actions(&mut s, now);
        assert_eq!(a, [Action::Pause(vec![tp(0)])], "attempt {attempt}");
        let due = s.next_deadline().unwrap();
        assert!(due - now <= policy.ceiling(attempt), "attempt {attempt}");
        if due > now {
            assert!(drain_actions(&mut s, due - Duration::from_nanos(1)).is_empty());
        }
        now = due;
        let a = drain_actions(&mut s, now);
        assert_eq!(a[0], Action::Resume(vec![tp(0)]));
        assert_eq!(dispatched(&a), [(0, 0, attempt + 1)]);
    }
    // The 4th call fails: retries exhausted, one dead letter with the attempt count.
    s.handled(&tp(0), 0, Err(retriable()), now);
    let a = drain_actions(&mut s, now);
    assert_eq!(a.len(), 1, "{a:?}");
    let Action::DeadLetter {
        tp: t,
        record,
        failure,
    } = &a[0]
    else {
        panic!("{a:?}")
    };
    assert_eq!((t, record.offset, failure.attempts), (&tp(0), 0, 4));
    assert_eq!(failure.message, "transient");
    // Nothing committed, nothing dispatched, while the dead letter is unacknowledged.
    assert_eq!(s.take_commit(), vec![]);
    s.dead_lettered(&tp(0), 0, Ok(()), now);
    let a = drain_actions(&mut s, now);
    assert_eq!(dispatched(&a), [(0, 1, 1)]);
    assert_eq!(s.take_commit(), vec![(tp(0), 1)]);
}

#[test]
fn retry_ceilings_grow_then_stay_at_the_maximum() {
    let policy = settings().retry;
    let c: Vec<u128> = (1..=4).map(|n| policy.ceiling(n).as_millis()).collect();
    assert_eq!(c, [100, 200, 350, 350]);
}

#[test]
fn not_retriable_goes_to_the_dead_letter_at_once() {
    let now = Instant::now();
    let mut s = state(settings(), &[0]);
    s.push(rec(0, 0, 10), now);
    drain_actions(&mut s, now);
    let f = HandlerFailure {
        kind: FailureKind::NotRetriable,
        failure: Failure::new("Poison", "bad avro", 1),
    };
    s.handled(&tp(0), 0, Err(f), now);
    let a = drain_actions(&mut s, now);
    assert!(
        matches!(&a[..], [Action::DeadLetter { failure, .. }] if failure.attempts == 1),
        "{a:?}"
    );
}

#[test]
fn a_failed_dead_letter_write_is_retried_and_blocks_the_commit() {
    let now = Instant::now();
    let mut s = state(
        ProcessingSettings {
            commit_every_n: 1,
            ..settings()
        },
        &[0],
    );
    s.push(rec(0, 0, 10), now);
    drain_actions(&mut s, now);
    s.handled(
        &tp(0),
        0,
        Err(HandlerFailure::not_retriable(Failure::default())),
        now,
    );
    drain_actions(&mut s, now);
    s.dead_lettered(&tp(0), 0, Err("broker down".into()), now);
    let a = drain_actions(&mut s, now);
    assert_eq!(a, [Action::Pause(vec![tp(0)])]);
    let due = s.next_deadline().unwrap();
    let a = drain_actions(&mut s, due);
    assert!(
        matches!(&a[..], [Action::Resume(_), Action::DeadLetter { .. }]),
        "{a:?}"
    );
    assert!(!s.is_idle());
    s.dead_lettered(&tp(0), 0, Ok(()), due);
    let a = drain_actions(&mut s, due);
    assert_eq!(a, [Action::Commit(vec![(tp(0), 1)])]);
    assert!(s.is_idle());
}

#[test]
fn disabled_dead_letters_discard_and_move_on() {
    let now = Instant::now();
    let mut s = state(
        ProcessingSettings {
            dead_letter: DeadLetterPolicy::default().with_enabled(false),
            commit_every_n: 1,
            ..settings()
        },
        &[0],
    );
    s.push(rec(0, 0, 10), now);
    s.push(rec(0, 1, 10), now);
    drain_actions(&mut s, now);
    s.handled(
        &tp(0),
        0,
        Err(HandlerFailure::not_retriable(Failure::default())),
        now,
    );
    let a = drain_actions(&mut s, now);
    assert!(matches!(a[0], Action::Discard { .. }), "{a:?}");
    assert_eq!(dispatched(&a), [(0, 1, 1)]);
    assert!(a.contains(&Action::Commit(vec![(tp(0), 1)])));
}

#[test]
fn backpressure_pauses_at_the_limit_and_resumes_below_half() {
    let now = Instant::now();
    let mut s = state(
        ProcessingSettings {
            max_buffered_bytes_per_partition: 100,
            ..settings()
        },
        &[0, 1],
    );
    for o in 0..3 {
        s.push(rec(0, o, 40), now);
    }
    s.push(rec(1, 0, 40), now);
    let a = drain_actions(&mut s, now);
    assert_eq!(a[0], Action::Pause(vec![tp(0)]));
    assert_eq!(s.buffered_bytes_of(&tp(0)), 120);
    assert_eq!(s.buffered_bytes(), 160);
    s.handled(&tp(0), 0, Ok(()), now);
    let a = drain_actions(&mut s, now);
    assert!(
        !a.iter().any(|a| matches!(a, Action::Resume(_))),
        "80 bytes: not below half"
    );
    s.handled(&tp(0), 1, Ok(()), now);
    let a = drain_actions(&mut s, now);
    assert_eq!(a[0], Action::Resume(vec![tp(0)]), "40 bytes < 50");
}

#[test]
fn revocation_drops_the_queue_and_ignores_late_results() {
    let now = Instant::now();
    let mut s = state(settings(), &[0]);
    for o in 0..3 {
        s.push(rec(0, o, 10), now);
    }
    drain_actions(&mut s, now);
    s.handled(&tp(0), 0, Ok(()), now);
    drain_actions(&mut s, now); // offset 1 in a handler
    assert_eq!(s.revoke(&[tp(0)]), vec![(tp(0), 1)]);
    assert_eq!(s.buffered_bytes(), 0);
    assert!(s.is_in_flight(&tp(0)), "the handler still runs");
    // Reassigned and re-fetched from the committed offset: nothing dispatched while the old
    // handler runs, then in order again.
    s.assign(&[tp(0)]);
    s.push(rec(0, 1, 10), now);
    assert!(dispatched(&drain_actions(&mut s, now)).is_empty());
    assert!(!s.is_idle());
    s.handled(&tp(0), 1, Ok(()), now); // the old handler: ignored
    assert_eq!(s.take_commit(), vec![]);
    assert_eq!(dispatched(&drain_actions(&mut s, now)), [(0, 1, 1)]);
    // Records of partitions not assigned are dropped.
    s.push(rec(5, 0, 10), now);
    assert_eq!(s.buffered_bytes_of(&tp(5)), 0);
    assert_eq!(
        s.buffered_bytes(),
        10,
        "only the re-fetched record of partition 0"
    );
}

#[test]
fn drain_keeps_work_under_way_and_drops_the_rest() {
    let now = Instant::now();
    let mut s = state(settings(), &[0, 1]);
    for o in 0..3 {
        s.push(rec(0, o, 10), now);
    }
    s.push(rec(1, 0, 10), now);
    drain_actions(&mut s, now);
    s.handled(&tp(1), 0, Err(retriable()), now);
    drain_actions(&mut s, now);
    s.drain();
    assert_eq!(s.buffered_bytes(), 10, "only the record in a handler");
    assert!(!s.is_idle());
    s.handled(&tp(0), 0, Ok(()), now);
    assert!(dispatched(&drain_actions(&mut s, now)).is_empty());
    assert!(s.is_idle());
    assert_eq!(s.take_commit(), vec![(tp(0), 1)]);
}

#[test]
fn zero_limits_are_refused() {
    for settings in [
        ProcessingSettings {
            commit_every_n: 0,
            ..settings()
        },
        ProcessingSettings {
            max_concurrent_partitions: 0,
            ..settings()
        },
        ProcessingSettings {
            max_buffered_bytes_per_partition: 0,
            ..settings()
        },
    ] {
        let err = ProcessingState::new(settings).unwrap_err();
        assert!(matches!(err, EventsError::Configuration { .. }), "{err}");
    }
}

#[test]
fn hostile_offsets_do_not_overflow() {
    let now = Instant::now();
    let mut s = state(settings(), &[0]);
    s.push(rec(0, i64::MAX, 1), now);
    drain_actions(&mut s, now);
    s.handled(&tp(0), i64::MAX, Ok(()), now);
    drain_actions(&mut s, now);
    assert_eq!(s.take_commit(), vec![(tp(0), i64::MAX)]);
    // Nothing at or below an offset already pushed is taken again.
    s.push(rec(0, 5, 1), now);
    assert_eq!(s.buffered_bytes(), 0);
}
