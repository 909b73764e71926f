use super::*;

#[test]
fn defaults_are_the_seeds() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_retries(), 3);
    assert_eq!(p.initial_backoff(), Duration::from_secs(1));
    assert_eq!(p.max_backoff(), Duration::from_secs(32));
}
