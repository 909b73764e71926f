//! When a broker may be connected to again, and how long connecting may take: the Java
//! client's `ClusterConnectionStates` rules, as plain state.
//!
//! - After a failed connection attempt (refused, timed out, handshake failed) a node waits
//!   `reconnect.backoff.ms × 2^(failures-1)` (±20% jitter, capped at
//!   `reconnect.backoff.max.ms`) before the next attempt; callers asking before then get a
//!   typed, retriable refusal at once instead of a new attempt.
//! - The connection setup timeout grows the same way, from
//!   `socket.connection.setup.timeout.ms` up to `socket.connection.setup.timeout.max.ms`, per
//!   consecutive failed attempt.
//! - A successful attempt forgets both.
//!
//! Unlike the Java client, a connection that breaks *after* its handshake does not arm the
//! backoff: the first reconnect is immediate, and only its failure starts the schedule.
//!
//! Nodes are keyed by whatever the caller uses (the I/O layer uses the broker's address, so a
//! bootstrap entry and the node it turns out to be share one schedule).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::backoff::ExponentialBackoff;
use super::rng::RandomSource;

/// The two growing schedules of reconnecting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    /// `reconnect.backoff.ms` → `reconnect.backoff.max.ms`.
    pub backoff: ExponentialBackoff,
    /// `socket.connection.setup.timeout.ms` → `socket.connection.setup.timeout.max.ms`.
    pub setup_timeout: ExponentialBackoff,
}

impl Default for ReconnectPolicy {
    /// The Java client's defaults: 50 ms → 1 s backoff, 10 s → 30 s setup timeout.
    fn default() -> Self {
        ReconnectPolicy {
            backoff: ExponentialBackoff::new(Duration::from_millis(50), Duration::from_secs(1)),
            setup_timeout: ExponentialBackoff::new(
                Duration::from_secs(10),
                Duration::from_secs(30),
            ),
        }
    }
}

/// What is remembered of one node that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFailures {
    /// Consecutive failed attempts (≥ 1).
    pub failures: u32,
    /// When the last one failed.
    pub last_failure: Instant,
    /// No attempt before this.
    pub next_attempt: Instant,
    /// The setup timeout of the next attempt.
    pub setup_timeout: Duration,
}

/// Why an attempt may not be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackingOff {
    /// The earliest next attempt.
    pub until: Instant,
    /// Consecutive failed attempts so far.
    pub failures: u32,
}

/// The reconnect state of every node that has failed since its last success.
///
/// ```
/// use std::time::{Duration, Instant};
/// use kafkit::state::reconnect::{Reconnects, ReconnectPolicy};
/// use kafkit::state::rng::XorShift64Star;
///
/// let mut nodes = Reconnects::new(ReconnectPolicy::default());
/// let mut rng = XorShift64Star::new(7);
/// let t0 = Instant::now();
/// assert!(nodes.check(&"b1", t0).is_ok()); // never failed: go
/// let until = nodes.failed("b1", t0, &mut rng); // refused: 50 ms ± 20%
/// assert!(nodes.check(&"b1", t0 + Duration::from_millis(10)).is_err());
/// assert!(nodes.check(&"b1", until).is_ok());
/// nodes.succeeded(&"b1");
/// assert!(nodes.check(&"b1", t0).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Reconnects<K> {
    policy: ReconnectPolicy,
    nodes: HashMap<K, NodeFailures>,
}

impl<K: Hash + Eq> Reconnects<K> {
    /// No node has failed yet.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Reconnects {
            policy,
            nodes: HashMap::new(),
        }
    }

    /// The schedules in use.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// `Ok` when an attempt to `node` may be made at `now`, else until when it may not.
    pub fn check(&self, node: &K, now: Instant) -> Result<(), BackingOff> {
        match self.nodes.get(node) {
            Some(state) if now < state.next_attempt => Err(BackingOff {
                until: state.next_attempt,
                failures: state.failures,
            }),
            _ => Ok(()),
        }
    }

    /// The setup timeout for the next attempt to `node`: the first one (with jitter) for a
    /// node without failures, else the one drawn at its last failure.
    pub fn setup_timeout<R: RandomSource + ?Sized>(&self, node: &K, rng: &mut R) -> Duration {
        match self.nodes.get(node) {
            Some(state) => state.setup_timeout,
            None => self.policy.setup_timeout.backoff(0, rng),
        }
    }

    /// Records a failed attempt to `node` at `now`; returns when the next one may be made.
    pub fn failed<R: RandomSource + ?Sized>(
        &mut self,
        node: K,
        now: Instant,
        rng: &mut R,
    ) -> Instant {
        let failures = self.nodes.get(&node).map_or(0, |s| s.failures);
        let wait = self.policy.backoff.backoff(failures, rng);
        let failures = failures.saturating_add(1);
        let setup_timeout = self.policy.setup_timeout.backoff(failures, rng);
        let next_attempt = now.checked_add(wait).unwrap_or(now);
        self.nodes.insert(
            node,
            NodeFailures {
                failures,
                last_failure: now,
                next_attempt,
                setup_timeout,
            },
        );
        next_attempt
    }

    /// Records a successful attempt: `node` starts afresh.
    pub fn succeeded(&mut self, node: &K) {
        self.nodes.remove(node);
    }

    /// What is remembered of `node`, if it failed since its last success.
    pub fn get(&self, node: &K) -> Option<&NodeFailures> {
        self.nodes.get(node)
    }

    /// The earliest time any of `nodes` may be tried, when all of them are backing off at
    /// `now`; `None` when one of them may be tried now.
    pub fn all_backing_off<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a K>,
        now: Instant,
    ) -> Option<BackingOff>
    where
        K: 'a,
    {
        let mut earliest: Option<BackingOff> = None;
        for node in nodes {
            match self.check(node, now) {
                Ok(()) => return None,
                Err(b) => {
                    if earliest.is_none_or(|e| b.until < e.until) {
                        earliest = Some(b);
                    }
                }
            }
        }
        earliest
    }
}

/// When a connection counts as idle (`connections.max.idle.ms`).
///
/// ```
/// use std::time::{Duration, Instant};
/// use kafkit::state::reconnect::IdlePolicy;
///
/// let policy = IdlePolicy::new(Some(Duration::from_millis(300)));
/// let t0 = Instant::now();
/// assert!(!policy.is_idle(t0, 0, t0 + Duration::from_millis(299)));
/// assert!(policy.is_idle(t0, 0, t0 + Duration::from_millis(300)));
/// assert!(!policy.is_idle(t0, 1, t0 + Duration::from_secs(3600))); // in flight: never
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    max_idle: Option<Duration>,
}

impl IdlePolicy {
    /// Connections unused for `max_idle` close; `None` keeps them open.
    pub fn new(max_idle: Option<Duration>) -> Self {
        IdlePolicy { max_idle }
    }

    /// The limit, if any.
    pub fn max_idle(&self) -> Option<Duration> {
        self.max_idle
    }

    /// Whether a connection last used at `last_used` with `in_flight` requests outstanding
    /// should close at `now`. A connection with anything in flight is never idle.
    pub fn is_idle(&self, last_used: Instant, in_flight: usize, now: Instant) -> bool {
        match self.max_idle {
            Some(max) => in_flight == 0 && now.saturating_duration_since(last_used) >= max,
            None => false,
        }
    }

    /// How often to look for idle connections: half the limit (at least 10 ms), so that a
    /// connection closes between 1× and 1.5× the limit after its last use. `None` when
    /// connections never close for idleness.
    pub fn sweep_interval(&self) -> Option<Duration> {
        self.max_idle
            .map(|max| (max / 2).max(Duration::from_millis(10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::rng::XorShift64Star;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Drives one node through failures on a virtual clock: each attempt is made the moment
    /// the backoff allows, and fails.
    fn schedule(policy: ReconnectPolicy, seed: u64, attempts: usize) -> Vec<Duration> {
        let mut nodes = Reconnects::new(policy);
        let mut rng = XorShift64Star::new(seed);
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..attempts {
            assert!(nodes.check(&1, now).is_ok());
            let until = nodes.failed(1, now, &mut rng);
            let wait = until - now;
            // Just before `until`: refused, with the right time and count.
            let early = until - ms(1);
            if wait >= ms(1) {
                let refusal = nodes.check(&1, early).unwrap_err();
                assert_eq!(refusal.until, until);
            }
            waits.push(wait);
            now = until;
        }
        waits
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for seed in 1..50 {
            let waits = schedule(ReconnectPolicy::default(), seed, 10);
            for (i, wait) in waits.iter().enumerate() {
                let base = (50u64 << i.min(5)) as f64;
                let got = wait.as_millis() as f64;
                assert!(got <= 1_000.0, "attempt {i}: {got}");
                if base < 1_000.0 {
                    assert!(
                        got >= (base * 0.8).floor() && got < base * 1.2,
                        "attempt {i}: {got} vs {base}"
                    );
                } else {
                    assert!(got >= 800.0, "attempt {i}: {got}");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let a = schedule(ReconnectPolicy::default(), 42, 8);
        let b = schedule(ReconnectPolicy::default(), 42, 8);
        assert_eq!(a, b);
        let c = schedule(ReconnectPolicy::default(), 43, 8);
        assert_ne!(a, c);
    }

    #[test]
    fn attempts_over_a_window_are_bounded() {
        // A dead broker tried as often as allowed for 10 s: 50+100+200+400+800 ms ≈ 1.5 s,
        // then about one per second: far from a storm.
        let mut nodes = Reconnects::new(ReconnectPolicy::default());
        let mut rng = XorShift64Star::new(9);
        let start = Instant::now();
        let mut now = start;
        let mut attempts = 0;
        while now < start + Duration::from_secs(10) {
            match nodes.check(&"dead", now) {
                Ok(()) => {
                    attempts += 1;
                    nodes.failed("dead", now, &mut rng);
                }
                Err(b) => {
                    assert!(b.until > now);
                    now += ms(1);
                }
            }
        }
        assert!((10..=16).contains(&attempts), "{attempts}");
    }

    #[test]
    fn success_resets_the_schedule() {
        let mut nodes = Reconnects::new(ReconnectPolicy::default());
        let mut rng = XorShift64Star::new(3);
        let t0 = Instant::now();
        let mut now = t0;
        for _ in 0..6 {
            now = nodes.failed(7, now, &mut rng);
        }
        assert_eq!(nodes.get(&7).map(|s| s.failures), Some(6));
        nodes.succeeded(&7);
        assert!(nodes.get(&7).is_none());
        let until = nodes.failed(7, now, &mut rng);
        assert!(until - now < ms(60), "{:?}", until - now);
        assert_eq!(nodes.get(&7).map(|s| s.last_failure), Some(now));
    }

    #[test]
    fn nodes_are_independent() {
        let mut nodes = Reconnects::new(ReconnectPolicy::default());
        let mut rng = XorShift64Star::new(5);
        let t0 = Instant::now();
        nodes.failed("a", t0, &mut rng);
        assert!(nodes.check(&"a", t0).is_err());
        assert!(nodes.check(&"b", t0).is_ok());
        assert_eq!(nodes.all_backing_off([&"a", &"b"], t0), None);
        nodes.failed("b", t0 + ms(5), &mut rng);
        let both = nodes.all_backing_off([&"a", &"b"], t0 + ms(6)).unwrap();
        let a = nodes.get(&"a").unwrap().next_attempt;
        let b = nodes.get(&"b").unwrap().next_attempt;
        assert_eq!(both.until, a.min(b));
        assert_eq!(nodes.all_backing_off([&"a", &"b"], a.max(b)), None);
    }

    #[test]
    fn setup_timeout_grows_per_failure_up_to_the_max() {
        let mut nodes = Reconnects::new(ReconnectPolicy::default());
        let mut rng = XorShift64Star::new(11);
        let first = nodes.setup_timeout(&1, &mut rng);
        assert!(first >= ms(8_000) && first < ms(12_000), "{first:?}");
        let mut now = Instant::now();
        now = nodes.failed(1, now, &mut rng);
        let second = nodes.setup_timeout(&1, &mut rng);
        assert!(second >= ms(16_000) && second < ms(24_000), "{second:?}");
        for _ in 0..5 {
            now = nodes.failed(1, now, &mut rng);
        }
        let capped = nodes.setup_timeout(&1, &mut rng);
        assert!(capped >= ms(24_000) && capped <= ms(30_000), "{capped:?}");
        nodes.succeeded(&1);
        let again = nodes.setup_timeout(&1, &mut rng);
        assert!(again < ms(12_000), "{again:?}");
    }

    #[test]
    fn static_backoff_when_initial_is_not_below_max() {
        let policy = ReconnectPolicy {
            backoff: ExponentialBackoff::new(ms(500), ms(500)),
            ..ReconnectPolicy::default()
        };
        assert!(schedule(policy, 1, 5).iter().all(|w| *w == ms(500)));
    }

    #[test]
    fn idle_needs_nothing_in_flight_and_the_full_limit() {
        let policy = IdlePolicy::new(Some(ms(300)));
        let t0 = Instant::now();
        assert!(!policy.is_idle(t0, 0, t0));
        assert!(!policy.is_idle(t0, 0, t0 + ms(299)));
        assert!(policy.is_idle(t0, 0, t0 + ms(300)));
        assert!(!policy.is_idle(t0, 3, t0 + ms(10_000)));
        // A clock read before the last use (another thread touched it since) is not idle.
        assert!(!policy.is_idle(t0 + ms(500), 0, t0));
        assert_eq!(policy.sweep_interval(), Some(ms(150)));
        let never = IdlePolicy::new(None);
        assert!(!never.is_idle(t0, 0, t0 + ms(1_000_000)));
        assert_eq!(never.sweep_interval(), None);
        assert_eq!(IdlePolicy::new(Some(ms(4))).sweep_interval(), Some(ms(10)));
    }
}
