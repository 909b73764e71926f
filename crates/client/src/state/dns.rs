//! Which resolved address a connection attempt tries next, and for how long
//! (`client.dns.lookup=use_all_dns_ips`, the Java client's default since 2.6 and its only
//! lookup mode besides `resolve_canonical_bootstrap_servers_only` since 3.0).
//!
//! The I/O layer resolves the broker's host name afresh on every connection attempt (an
//! address is never kept past the attempt, so a broker that moves is found on the next
//! reconnect), hands the addresses to an [`AddressWalk`], and tries them one after the other
//! until one accepts:
//!
//! - addresses are tried in the resolver's order (RFC 6724's, from `getaddrinfo`), each once
//!   (duplicates dropped);
//! - the walk shares the attempt's connect timeout among the addresses not tried yet, so an
//!   address that swallows packets costs its share, not the whole timeout; the last address
//!   gets whatever is left;
//! - unlike Java (KIP-302 keeps only the addresses of the first one's family), both IPv6 and
//!   IPv4 addresses are tried: a dual-stack name whose broker listens on one family connects.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//! use kafkit::state::dns::AddressWalk;
//!
//! let v6: SocketAddr = "[::1]:9092".parse().unwrap();
//! let v4: SocketAddr = "127.0.0.1:9092".parse().unwrap();
//! let t0 = Instant::now();
//! let mut walk = AddressWalk::new(vec![v6, v4], t0, Duration::from_secs(10));
//! // ::1 refuses at once: 127.0.0.1 gets the rest of the timeout.
//! assert_eq!(walk.next(t0), Some((v6, t0 + Duration::from_secs(5))));
//! assert_eq!(walk.next(t0), Some((v4, t0 + Duration::from_secs(10))));
//! assert_eq!(walk.next(t0), None);
//! ```
//!
//! [`BootstrapResolution`] decides whether a bootstrap list none of whose names resolves is
//! looked up again (KIP-909's `bootstrap.resolve.timeout.ms`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The addresses of one connection attempt, walked in order within its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressWalk {
    addresses: Vec<SocketAddr>,
    next: usize,
    deadline: Instant,
}

impl AddressWalk {
    /// A walk over `addresses` (duplicates dropped, first occurrence kept) for an attempt
    /// that started at `now` and may take `timeout`.
    pub fn new(addresses: Vec<SocketAddr>, now: Instant, timeout: Duration) -> AddressWalk {
        let mut unique: Vec<SocketAddr> = Vec::with_capacity(addresses.len());
        for address in addresses {
            if !unique.contains(&address) {
                unique.push(address);
            }
        }
        AddressWalk {
            addresses: unique,
            next: 0,
            deadline: now.checked_add(timeout).unwrap_or(now),
        }
    }

    /// The next address to try and when trying it must give up (its share of the time left:
    /// `(deadline - now) / addresses left`; the last one gets all of it). `None` once every
    /// address was tried or the deadline has passed.
    pub fn next(&mut self, now: Instant) -> Option<(SocketAddr, Instant)> {
        let address = *self.addresses.get(self.next)?;
        if now >= self.deadline {
            return None;
        }
        let left = u32::try_from(self.addresses.len() - self.next).unwrap_or(u32::MAX);
        self.next += 1;
        let share = self.deadline.saturating_duration_since(now) / left.max(1);
        Some((address, now + share))
    }

    /// How many addresses the walk holds (after dropping duplicates).
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Whether the lookup gave no address at all.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The attempt's deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// What to do when no host name of the bootstrap list resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveStep {
    /// Look the names up again (and try connecting) at this instant.
    RetryAt(Instant),
    /// `bootstrap.resolve.timeout.ms` has passed: fail naming the hosts.
    GiveUp,
}

/// KIP-909's bootstrap lookup rule (`bootstrap.resolve.timeout.ms`): a bootstrap list none
/// of whose host names resolves is looked up again after the reconnect backoff until the
/// timeout has passed since connecting started, with a last look at the deadline itself; a
/// zero timeout (Java's default) gives up at once. A name that resolves meanwhile is used:
/// the I/O layer resolves afresh on every attempt.
///
/// ```
/// use std::time::{Duration, Instant};
/// use kafkit::state::dns::{BootstrapResolution, ResolveStep};
///
/// let t0 = Instant::now();
/// let ms = Duration::from_millis;
/// let rule = BootstrapResolution::new(t0, ms(500));
/// assert_eq!(rule.on_unresolved(t0, ms(50)), ResolveStep::RetryAt(t0 + ms(50)));
/// // The last look is at the deadline, not past it.
/// assert_eq!(rule.on_unresolved(t0 + ms(480), ms(50)), ResolveStep::RetryAt(t0 + ms(500)));
/// assert_eq!(rule.on_unresolved(t0 + ms(500), ms(50)), ResolveStep::GiveUp);
/// // Java's default: fail at once.
/// let at_once = BootstrapResolution::new(t0, Duration::ZERO);
/// assert_eq!(at_once.on_unresolved(t0, ms(50)), ResolveStep::GiveUp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapResolution {
    started: Instant,
    deadline: Instant,
}

impl BootstrapResolution {
    /// The rule for a bootstrap that started at `started` with `bootstrap.resolve.timeout.ms`
    /// = `timeout` (a timeout too large for the clock never ends).
    pub fn new(started: Instant, timeout: Duration) -> BootstrapResolution {
        let deadline = started
            .checked_add(timeout)
            .unwrap_or_else(|| far_future(started));
        BootstrapResolution { started, deadline }
    }

    /// The step after a lookup at `now` found no bootstrap host name; `backoff` is the
    /// reconnect backoff due now.
    pub fn on_unresolved(&self, now: Instant, backoff: Duration) -> ResolveStep {
        if now >= self.deadline {
            return ResolveStep::GiveUp;
        }
        let wake = now.checked_add(backoff).unwrap_or(self.deadline);
        ResolveStep::RetryAt(wake.min(self.deadline))
    }

    /// When the lookups stop.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// How long the lookups have gone on at `now`.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}

/// The latest instant reachable from `start` by halving the step (about a century at most).
fn far_future(start: Instant) -> Instant {
    let mut step = Duration::from_secs(100 * 365 * 24 * 3600);
    while !step.is_zero() {
        if let Some(t) = start.checked_add(step) {
            return t;
        }
        step /= 2;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolved_names_are_looked_up_again_with_the_backoff_until_the_deadline() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let rule = BootstrapResolution::new(t0, ms(1_000));
        assert_eq!(rule.deadline(), t0 + ms(1_000));
        assert_eq!(
            rule.on_unresolved(t0, ms(50)),
            ResolveStep::RetryAt(t0 + ms(50))
        );
        // The backoff grows (reconnect.backoff.max.ms): the step follows it.
        assert_eq!(
            rule.on_unresolved(t0 + ms(300), ms(400)),
            ResolveStep::RetryAt(t0 + ms(700))
        );
        // Never past the deadline: one last look at it.
        assert_eq!(
            rule.on_unresolved(t0 + ms(900), ms(400)),
            ResolveStep::RetryAt(t0 + ms(1_000))
        );
        assert_eq!(
            rule.on_unresolved(t0 + ms(1_000), ms(50)),
            ResolveStep::GiveUp
        );
        assert_eq!(
            rule.on_unresolved(t0 + ms(5_000), ms(50)),
            ResolveStep::GiveUp
        );
        assert_eq!(rule.elapsed(t0 + ms(1_200)), ms(1_200));
    }

    #[test]
    fn a_zero_timeout_gives_up_at_once_and_a_huge_one_does_not_overflow() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let at_once = BootstrapResolution::new(t0, Duration::ZERO);
        assert_eq!(at_once.on_unresolved(t0, ms(50)), ResolveStep::GiveUp);
        let huge = BootstrapResolution::new(t0, Duration::MAX);
        assert!(huge.deadline() > t0 + Duration::from_secs(3600));
        assert_eq!(
            huge.on_unresolved(t0, Duration::MAX),
            ResolveStep::RetryAt(huge.deadline())
        );
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_address_in_order_each_once() {
        let t0 = Instant::now();
        let addresses = vec![
            a("[::1]:9092"),
            a("127.0.0.1:9092"),
            a("[::1]:9092"),
            a("10.0.0.1:9092"),
        ];
        let mut walk = AddressWalk::new(addresses, t0, Duration::from_secs(9));
        assert_eq!(walk.len(), 3);
        let tried: Vec<SocketAddr> = std::iter::from_fn(|| walk.next(t0).map(|(a, _)| a)).collect();
        assert_eq!(
            tried,
            [a("[::1]:9092"), a("127.0.0.1:9092"), a("10.0.0.1:9092")]
        );
    }

    #[test]
    fn the_time_left_is_shared_among_the_addresses_left() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let addresses = vec![a("10.0.0.1:1"), a("10.0.0.2:1"), a("10.0.0.3:1")];
        let mut walk = AddressWalk::new(addresses, t0, s(9));
        // The first swallows its packets until its share ends (3 s of 9).
        assert_eq!(walk.next(t0), Some((a("10.0.0.1:1"), t0 + s(3))));
        // The second refuses at once, at 3 s: half of the 6 s left.
        assert_eq!(walk.next(t0 + s(3)), Some((a("10.0.0.2:1"), t0 + s(6))));
        // The last gets all that is left.
        assert_eq!(walk.next(t0 + s(3)), Some((a("10.0.0.3:1"), t0 + s(9))));
        assert_eq!(walk.next(t0 + s(3)), None);
    }

    #[test]
    fn a_single_address_gets_the_whole_timeout() {
        let t0 = Instant::now();
        let mut walk = AddressWalk::new(vec![a("127.0.0.1:9092")], t0, Duration::from_secs(10));
        assert_eq!(
            walk.next(t0),
            Some((a("127.0.0.1:9092"), t0 + Duration::from_secs(10)))
        );
        assert_eq!(walk.next(t0), None);
    }

    #[test]
    fn nothing_is_tried_after_the_deadline_or_without_addresses() {
        let t0 = Instant::now();
        let mut walk = AddressWalk::new(
            vec![a("10.0.0.1:1"), a("10.0.0.2:1")],
            t0,
            Duration::from_secs(2),
        );
        assert!(walk.next(t0).is_some());
        assert_eq!(walk.next(t0 + Duration::from_secs(2)), None);
        let mut empty = AddressWalk::new(Vec::new(), t0, Duration::from_secs(2));
        assert!(empty.is_empty());
        assert_eq!(empty.next(t0), None);
        // A zero timeout tries nothing.
        let mut zero = AddressWalk::new(vec![a("10.0.0.1:1")], t0, Duration::ZERO);
        assert_eq!(zero.next(t0), None);
    }
}
