//! Checks the backoff against the Java client's `ExponentialBackoff`, run with jitter 0
//! (see `tests/data/README.md`). The `4999` and `999998` entries pin the floating-point
//! exponent cap and the truncation to whole milliseconds.

use std::time::Duration;

use kafkit::rng::XorShift64Star;
use kafkit::state::backoff::ExponentialBackoff;

const VECTORS: &str = include_str!("data/backoff_vectors.txt");

#[test]
fn backoff_matches_the_java_client_without_jitter() {
    let mut rng = XorShift64Star::new(1);
    let mut lines = 0;
    for line in VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let n: Vec<u64> = line.split(' ').map(|f| f.parse().unwrap()).collect();
        assert_eq!(n.len(), 3 + 13, "bad line: {line}");
        let backoff = ExponentialBackoff::with_parameters(
            Duration::from_millis(n[0]),
            u32::try_from(n[1]).unwrap(),
            Duration::from_millis(n[2]),
            0.0,
        );
        for (attempt, expected) in n[3..].iter().enumerate() {
            let got = backoff.backoff(attempt as u32, &mut rng);
            assert_eq!(
                got,
                Duration::from_millis(*expected),
                "initial {} x{} max {} attempt {attempt}",
                n[0],
                n[1],
                n[2]
            );
        }
        lines += 1;
    }
    assert!(lines >= 10);
}

#[test]
fn jittered_backoff_stays_within_twenty_percent_of_the_java_values() {
    let mut rng = XorShift64Star::new(2);
    for line in VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let n: Vec<u64> = line.split(' ').map(|f| f.parse().unwrap()).collect();
        if n[1] != 2 {
            continue;
        }
        let backoff =
            ExponentialBackoff::new(Duration::from_millis(n[0]), Duration::from_millis(n[2]));
        for (attempt, exact) in n[3..].iter().enumerate() {
            for _ in 0..50 {
                let got = backoff.backoff(attempt as u32, &mut rng).as_millis() as f64;
                let exact = *exact as f64;
                assert!(got <= n[2] as f64);
                assert!(
                    got >= (exact * 0.8).floor() - 1.0,
                    "{line} attempt {attempt}: {got}"
                );
                assert!(got <= exact * 1.2, "{line} attempt {attempt}: {got}");
            }
        }
    }
}
