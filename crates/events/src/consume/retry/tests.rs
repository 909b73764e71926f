use kafkit::rng::XorShift64Star;
use proptest::prelude::*;

use super::*;

#[test]
fn defaults_are_the_seeds() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_retries(), 3);
    assert_eq!(p.initial_backoff(), Duration::from_secs(1));
    assert_eq!(p.max_backoff(), Duration::from_secs(32));
}

#[test]
fn ceilings_double_up_to_the_maximum() {
    let p = RetryPolicy::default();
    let secs: Vec<u64> = (1..=8).map(|n| p.ceiling(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 32, 32]);
    assert_eq!(p.ceiling(0), Duration::from_secs(1));
    assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(32));
}

#[test]
fn inverted_or_huge_backoffs_are_refused_by_name() {
    let err = RetryPolicy::new(3, Duration::from_secs(2), Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("events.retry.backoff.ms"), "{err}");
    let err = RetryPolicy::new(3, Duration::ZERO, Duration::from_secs(8 * 24 * 3600)).unwrap_err();
    assert!(
        err.to_string().contains("events.retry.backoff.max.ms"),
        "{err}"
    );
}

#[test]
fn jitter_spreads_over_the_whole_range() {
    let p = RetryPolicy::new(3, Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let mut rng = XorShift64Star::new(11);
    let delays: Vec<Duration> = (0..2_000).map(|_| p.delay(1, &mut rng)).collect();
    let low = delays
        .iter()
        .filter(|d| **d < Duration::from_millis(100))
        .count();
    let high = delays
        .iter()
        .filter(|d| **d > Duration::from_millis(900))
        .count();
    // Full jitter: about 10 % in each tail, never all equal.
    assert!((100..300).contains(&low), "{low}");
    assert!((100..300).contains(&high), "{high}");
}

#[test]
fn same_seed_same_delays() {
    let p = RetryPolicy::default();
    let mut a = XorShift64Star::new(5);
    let mut b = XorShift64Star::new(5);
    for n in 1..10 {
        assert_eq!(p.delay(n, &mut a), p.delay(n, &mut b));
    }
}

#[test]
fn retries_are_counted_exactly() {
    let p = RetryPolicy::default();
    // Attempt 1 is the first call; 3 retries make 4 calls in all.
    assert!(p.should_retry(FailureKind::Retriable, 1));
    assert!(p.should_retry(FailureKind::Retriable, 3));
    assert!(!p.should_retry(FailureKind::Retriable, 4));
    assert!(!p.should_retry(FailureKind::NotRetriable, 1));
    assert!(!RetryPolicy::no_retries().should_retry(FailureKind::Retriable, 1));
}

#[test]
fn decode_and_schema_errors_are_not_retriable() {
    let decode = EventsError::decode(
        crate::error::RawRecord::default(),
        crate::error::DecodeErrorKind::NullValue,
    );
    assert_eq!(FailureKind::of(&decode), FailureKind::NotRetriable);
    let schema = EventsError::SchemaValidation {
        topic: "t".into(),
        event_type: "e".into(),
        issues: vec![],
        record: None,
    };
    assert_eq!(FailureKind::of(&schema), FailureKind::NotRetriable);
    let timeout = EventsError::Timeout {
        operation: "x".into(),
        after: Duration::from_secs(1),
    };
    assert_eq!(FailureKind::of(&timeout), FailureKind::Retriable);
    let f = HandlerFailure::from_events_error(&timeout, 42);
    assert_eq!(f.kind, FailureKind::Retriable);
    assert_eq!(f.failure.failed_at_ms, 42);
    assert!(
        f.failure.class.ends_with("EventsError"),
        "{}",
        f.failure.class
    );
}

proptest! {
    #[test]
    fn delays_stay_within_the_full_jitter_range(
        seed: u64,
        initial_ms in 0u64..5_000,
        extra_ms in 0u64..100_000,
        attempt in 0u32..80,
    ) {
        let initial = Duration::from_millis(initial_ms);
        let max = initial + Duration::from_millis(extra_ms);
        let p = RetryPolicy::new(3, initial, max).unwrap();
        let mut rng = XorShift64Star::new(seed);
        let exact = initial.as_nanos() * (1u128 << attempt.max(1).saturating_sub(1).min(100));
        let ceiling = exact.min(max.as_nanos());
        prop_assert_eq!(p.ceiling(attempt).as_nanos(), ceiling);
        for _ in 0..16 {
            let d = p.delay(attempt, &mut rng);
            prop_assert!(d.as_nanos() <= ceiling);
            prop_assert!(d <= max);
        }
    }
}
