//! Metadata recovery (KIP-899, KIP-1102): which addresses a client tries when it needs a
//! connection to "any broker", and when it gives up on the brokers it knows and goes back to
//! `bootstrap.servers`.
//!
//! [`MetadataRecovery`] is plain state driven by the cluster's metadata refreshes; call, in
//! this order for each refresh:
//!
//! 1. [`MetadataRecovery::on_metadata_attempt`] before sending the Metadata request: it says
//!    whether the `metadata.recovery.rebootstrap.trigger.ms` has passed without a successful
//!    refresh, in which case the caller rebootstraps (closes every connection);
//! 2. [`MetadataRecovery::candidates`] when a new connection is needed: the addresses to try,
//!    in order;
//! 3. [`MetadataRecovery::on_metadata_success`] when a Metadata response was applied, or
//!    [`MetadataRecovery::on_rebootstrap_required`] when a broker answered
//!    `REBOOTSTRAP_REQUIRED` (error code 129), in which case the caller rebootstraps at once.
//!
//! With the `rebootstrap` strategy (the default) the known brokers come first and the
//! bootstrap addresses after them (so a cluster whose known brokers are all gone is found
//! again through the bootstrap list, KIP-899); after a rebootstrap only the bootstrap addresses
//! are tried until a refresh succeeds. With `none`, once brokers are known, the bootstrap
//! addresses are never tried again.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use kafkit::config::MetadataRecoveryStrategy;
//! use kafkit::state::rebootstrap::{MetadataRecovery, Rebootstrap};
//!
//! let mut recovery =
//!     MetadataRecovery::new(MetadataRecoveryStrategy::Rebootstrap, Duration::from_secs(300));
//! let start = Instant::now();
//! let known = ["broker-1:9092".to_owned()];
//! let bootstrap = ["lb:9092".to_owned()];
//! assert_eq!(recovery.on_metadata_attempt(start, true), None);
//! assert_eq!(recovery.candidates(&known, &bootstrap), ["broker-1:9092", "lb:9092"]);
//! // Five minutes of failed refreshes: back to the bootstrap list only.
//! let later = start + Duration::from_secs(300);
//! assert_eq!(recovery.on_metadata_attempt(later, true), Some(Rebootstrap::Timeout));
//! assert_eq!(recovery.candidates(&known, &bootstrap), ["lb:9092"]);
//! recovery.on_metadata_success();
//! assert_eq!(recovery.candidates(&known, &bootstrap), ["broker-1:9092", "lb:9092"]);
//! ```

use std::time::{Duration, Instant};

use crate::config::MetadataRecoveryStrategy;

/// Why a client goes back to its bootstrap list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rebootstrap {
    /// No metadata could be fetched for `metadata.recovery.rebootstrap.trigger.ms`.
    Timeout,
    /// A broker answered `REBOOTSTRAP_REQUIRED` (error code 129).
    Required,
}

/// The metadata recovery decisions of one client (see the [module docs](self) for the call
/// order).
///
/// ```
/// use std::time::{Duration, Instant};
/// use kafkit::config::MetadataRecoveryStrategy;
/// use kafkit::state::rebootstrap::MetadataRecovery;
///
/// let mut recovery = MetadataRecovery::new(MetadataRecoveryStrategy::None, Duration::ZERO);
/// let known = ["broker-1:9092".to_owned()];
/// let bootstrap = ["lb:9092".to_owned()];
/// // `none`: no trigger, no bootstrap fallback once brokers are known.
/// assert_eq!(recovery.on_metadata_attempt(Instant::now(), true), None);
/// assert_eq!(recovery.candidates(&known, &bootstrap), ["broker-1:9092"]);
/// // Before the first metadata, the bootstrap list is all there is.
/// assert_eq!(recovery.candidates(&[], &bootstrap), ["lb:9092"]);
/// ```
#[derive(Debug, Clone)]
pub struct MetadataRecovery {
    strategy: MetadataRecoveryStrategy,
    trigger: Duration,
    /// When the first metadata attempt since the last successful one started.
    failing_since: Option<Instant>,
    /// After a rebootstrap, until a refresh succeeds: connect through the bootstrap list only.
    bootstrap_only: bool,
}

impl MetadataRecovery {
    /// Decisions for `strategy` with `metadata.recovery.rebootstrap.trigger.ms` = `trigger`.
    pub fn new(strategy: MetadataRecoveryStrategy, trigger: Duration) -> MetadataRecovery {
        MetadataRecovery {
            strategy,
            trigger,
            failing_since: None,
            bootstrap_only: false,
        }
    }

    /// The strategy these decisions follow.
    pub fn strategy(&self) -> MetadataRecoveryStrategy {
        self.strategy
    }

    /// Whether only the bootstrap addresses are tried (after a rebootstrap, until a refresh
    /// succeeds): open connections to known brokers are not to be used either.
    pub fn is_bootstrap_only(&self) -> bool {
        self.bootstrap_only
    }

    /// A metadata refresh starts at `now`; `knows_brokers` says whether the metadata names any
    /// broker. Returns [`Rebootstrap::Timeout`] when, with the `rebootstrap` strategy, the
    /// trigger time has passed since the first attempt after the last success: the caller
    /// closes its connections and connects through the bootstrap list (the trigger time
    /// then starts again). Never rebootstraps when no broker is known (the bootstrap list is
    /// already what is tried).
    pub fn on_metadata_attempt(
        &mut self,
        now: Instant,
        knows_brokers: bool,
    ) -> Option<Rebootstrap> {
        let since = *self.failing_since.get_or_insert(now);
        if self.strategy != MetadataRecoveryStrategy::Rebootstrap || !knows_brokers {
            return None;
        }
        if now.saturating_duration_since(since) < self.trigger {
            return None;
        }
        self.failing_since = Some(now);
        self.bootstrap_only = true;
        Some(Rebootstrap::Timeout)
    }

    /// A broker answered `REBOOTSTRAP_REQUIRED` at `now`. Returns [`Rebootstrap::Required`]
    /// with the `rebootstrap` strategy (the caller closes its connections and asks the
    /// bootstrap list at once); `None` with `none` (the caller fails with the error).
    pub fn on_rebootstrap_required(&mut self, now: Instant) -> Option<Rebootstrap> {
        if self.strategy != MetadataRecoveryStrategy::Rebootstrap {
            return None;
        }
        self.failing_since = Some(now);
        self.bootstrap_only = true;
        Some(Rebootstrap::Required)
    }

    /// A Metadata response was applied: the trigger clock stops, the known brokers are tried
    /// again.
    pub fn on_metadata_success(&mut self) {
        self.failing_since = None;
        self.bootstrap_only = false;
    }

    /// The addresses to try, in order, for a new connection to any broker, given the
    /// addresses of the brokers the metadata names (`known`) and `bootstrap.servers`:
    /// - `rebootstrap`: the known ones then the bootstrap ones not among them; only the
    ///   bootstrap ones after a rebootstrap;
    /// - `none`: the known ones; the bootstrap ones only while none is known.
    pub fn candidates(&self, known: &[String], bootstrap: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(known.len() + bootstrap.len());
        if !self.bootstrap_only {
            for address in known {
                if !out.contains(address) {
                    out.push(address.clone());
                }
            }
        }
        let use_bootstrap = match self.strategy {
            MetadataRecoveryStrategy::None => known.is_empty(),
            MetadataRecoveryStrategy::Rebootstrap => true,
        };
        if use_bootstrap {
            for address in bootstrap {
                if !out.contains(address) {
                    out.push(address.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIGGER: Duration = Duration::from_millis(300_000);

    fn addrs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rebootstrap_tries_known_brokers_then_the_bootstrap_list() {
        let r = MetadataRecovery::new(MetadataRecoveryStrategy::Rebootstrap, TRIGGER);
        let known = addrs(&["b1:9092", "b2:9092", "b1:9092"]);
        let bootstrap = addrs(&["b2:9092", "lb:9092"]);
        assert_eq!(
            r.candidates(&known, &bootstrap),
            ["b1:9092", "b2:9092", "lb:9092"]
        );
        assert_eq!(r.candidates(&[], &bootstrap), ["b2:9092", "lb:9092"]);
        assert!(!r.is_bootstrap_only());
    }

    #[test]
    fn none_never_falls_back_once_brokers_are_known() {
        let mut r = MetadataRecovery::new(MetadataRecoveryStrategy::None, Duration::ZERO);
        let known = addrs(&["b1:9092"]);
        let bootstrap = addrs(&["lb:9092"]);
        assert_eq!(r.candidates(&[], &bootstrap), ["lb:9092"]);
        assert_eq!(r.candidates(&known, &bootstrap), ["b1:9092"]);
        // A zero trigger, hours of failures, code 129: nothing changes.
        let t0 = Instant::now();
        for s in [0, 1, 3600] {
            let now = t0 + Duration::from_secs(s);
            assert_eq!(r.on_metadata_attempt(now, true), None);
        }
        assert_eq!(r.on_rebootstrap_required(t0), None);
        assert!(!r.is_bootstrap_only());
        assert_eq!(r.candidates(&known, &bootstrap), ["b1:9092"]);
    }

    #[test]
    fn the_trigger_counts_from_the_first_attempt_after_a_success() {
        let mut r = MetadataRecovery::new(MetadataRecoveryStrategy::Rebootstrap, TRIGGER);
        let t0 = Instant::now();
        // Successful refreshes far apart never trigger: the clock runs only while failing.
        assert_eq!(r.on_metadata_attempt(t0, true), None);
        r.on_metadata_success();
        let t1 = t0 + 2 * TRIGGER;
        assert_eq!(r.on_metadata_attempt(t1, true), None);
        // Now failing from t1.
        let just_before = t1 + TRIGGER - Duration::from_millis(1);
        assert_eq!(r.on_metadata_attempt(just_before, true), None);
        assert_eq!(
            r.on_metadata_attempt(t1 + TRIGGER, true),
            Some(Rebootstrap::Timeout)
        );
        assert!(r.is_bootstrap_only());
        // The clock starts again at the rebootstrap.
        assert_eq!(
            r.on_metadata_attempt(t1 + TRIGGER + Duration::from_secs(1), true),
            None
        );
        assert_eq!(
            r.on_metadata_attempt(t1 + 2 * TRIGGER, true),
            Some(Rebootstrap::Timeout)
        );
    }

    #[test]
    fn bootstrap_only_after_a_rebootstrap_until_a_success() {
        let mut r = MetadataRecovery::new(MetadataRecoveryStrategy::Rebootstrap, Duration::ZERO);
        let known = addrs(&["b1:9092"]);
        let bootstrap = addrs(&["lb:9092", "b1:9092"]);
        let t0 = Instant::now();
        assert_eq!(r.on_metadata_attempt(t0, true), Some(Rebootstrap::Timeout));
        // A bootstrap address that is also a known broker stays (it is a bootstrap one).
        assert_eq!(r.candidates(&known, &bootstrap), ["lb:9092", "b1:9092"]);
        r.on_metadata_success();
        assert_eq!(r.candidates(&known, &bootstrap), ["b1:9092", "lb:9092"]);
    }

    #[test]
    fn no_rebootstrap_before_any_broker_is_known() {
        let mut r = MetadataRecovery::new(MetadataRecoveryStrategy::Rebootstrap, Duration::ZERO);
        let t0 = Instant::now();
        assert_eq!(r.on_metadata_attempt(t0, false), None);
        assert_eq!(
            r.on_metadata_attempt(t0 + Duration::from_secs(5), false),
            None
        );
        assert!(!r.is_bootstrap_only());
    }

    #[test]
    fn rebootstrap_required_acts_at_once() {
        let mut r = MetadataRecovery::new(MetadataRecoveryStrategy::Rebootstrap, TRIGGER);
        let t0 = Instant::now();
        assert_eq!(r.on_metadata_attempt(t0, true), None);
        assert_eq!(r.on_rebootstrap_required(t0), Some(Rebootstrap::Required));
        assert!(r.is_bootstrap_only());
        assert_eq!(
            r.candidates(&addrs(&["b1:9092"]), &addrs(&["lb:9092"])),
            ["lb:9092"]
        );
        // The trigger clock restarted at the code-129 rebootstrap.
        assert_eq!(
            r.on_metadata_attempt(t0 + TRIGGER - Duration::from_millis(1), true),
            None
        );
        r.on_metadata_success();
        assert!(!r.is_bootstrap_only());
    }
}
