//! The consumer-group world of the deterministic simulation (issue #16): the real classic
//! group member (`state::group::member::ClassicMemberState`, with the range or the
//! cooperative-sticky assignor), the real KIP-848 member
//! (`state::group::consumer_member::ConsumerMemberState`) and the real commit
//! builders/readers (`state::group::commit`) against a simulated group coordinator, in
//! virtual time. Scenarios: `classic_range`, `classic_cooperative`, `kip848`.
//!
//! # What it models
//! - [`coordinator`]: one group on a simulated 3-broker cluster; Kafka's classic group states
//!   (Empty, PreparingRebalance, CompletingRebalance, Stable), MEMBER_ID_REQUIRED, session
//!   expiry, the rebalance timeout, REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION /
//!   UNKNOWN_MEMBER_ID, OffsetCommit with the generation check, OffsetFetch, FindCoordinator,
//!   coordinator moves (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE while loading) and pauses.
//! - [`kip848`]: the KIP-848 coordinator (ConsumerGroupHeartbeat): group epoch, a round-robin
//!   target assignment, member epochs (the previous epoch tolerated, as Kafka does, when the
//!   member owns only what it was given), revocation before reassignment, FENCED_MEMBER_EPOCH /
//!   UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH for commits, a 10 s session, 3 s heartbeats.
//! - [`machine`]: the hosted member, classic or KIP-848, behind the calls the driver makes;
//!   the KIP-848 member's lookup of the coordinator is the driver's, as in
//!   `io/group/consumer.rs`.
//! - [`world`]: 2–4 consumers to start with, subscribed to topics `a` (3 partitions) and `b`
//!   (4), whose logs fill during the first 50 s (50–400 records a partition). Each consumer is
//!   driven as `io/group/classic.rs` and `consumer/group.rs` drive the member: requests from
//!   `poll_request`, answers into `handle_*`, failures into `handle_request_failed`; events
//!   applied in order (Assigned → OffsetFetch, start at the committed offset or 0; Revoked →
//!   commit the positions, then `revocation_done`; Lost → drop); a poll every 200 ms
//!   (`poll_tick`, up to 8 records a partition, auto-commit every 5 s); a graceful close
//!   commits, then `close` (LeaveGroup). Session 10 s, heartbeat 3 s, max.poll.interval 60 s,
//!   request timeout 30 s (a JoinGroup waits 65 s, as the I/O task's).
//! - Faults, drawn from the seed, only in the first 60 s: 3–13 of connection cuts (in-flight
//!   requests fail), a dropped reply (the request times out, the connection closes), whole-
//!   process stalls of 1–25 s (past the session timeout) or 61–75 s (past max.poll.interval),
//!   crashes, graceful closes, new members, coordinator moves (loading 10 ms–3 s) and pauses
//!   (0.1–15 s); 3 % of messages delayed 0.2–4 s; 2 % of coordinator requests answered with a
//!   retriable error (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS).
//!   Then a quiet phase to 420 s.
//!
//! # What it does not model
//! No fetcher (`state::consumer`): a position per owned partition stands for it; no
//! read_committed/transactions; no static membership; no subscription changes or regexes; no
//! group-level KIP-848 assignor choice (one round-robin assignor); one group, one consumer per
//! member; OffsetFetch answered by the simulation directly (not through
//! `commit::offset_fetch_request`); a commit or offset fetch goes to the current coordinator
//! (as if the `Coordinators` cache had looked it up) and is retried on retriable errors for
//! 30 s; partition counts never change.
//!
//! # Invariants ([`checker`])
//! - `commit-beyond-processed`: a commit sent for a partition never exceeds the offset after
//!   the last record the committing member processed in its current holding.
//! - `exclusive-ownership`: when a member processes a partition, no other member that the
//!   coordinator still has in the group holds it (assigned, not given up). Processing by a
//!   member the coordinator already removed (a zombie after a stall) is counted, not judged:
//!   Kafka fences its commits but cannot stop it until it learns.
//! - `liveness`: at the end every live consumer is stable in the coordinator's generation
//!   (KIP-848: its member epoch is the group epoch and it owns exactly its target), the
//!   coordinator's members are exactly the live consumers, each partition has exactly one
//!   owner, no member failed, the step cap was not hit, and every close that met no fault is
//!   seen by the coordinator as a LeaveGroup (not a session expiry).
//! - `lost-progress`: at the end every partition's committed offset is its log end, and every
//!   offset below it was processed by someone.
//!
//! To add one: record what it needs in [`checker::Checker`] (called from `world.rs` where the
//! thing happens, or at the end from `World::judge`), fail with a new kebab-case name, add a
//! knob to [`world::Scenario`] (or to the coordinators' `*Faults`) that breaks it and an
//! `expect_caught` test below.
//!
//! Negative controls: `commit_ahead` (commit 3 records past the position) →
//! `commit-beyond-processed`; `CoordinatorFaults::complete_without_waiting` (a classic
//! rebalance completed before the other members rejoined, i.e. revoked) and
//! `Kip848Faults::no_revocation_wait` → `exclusive-ownership`; `drop_leave` (the LeaveGroup /
//! leave heartbeat never sent) → `liveness`; `skip_on_assign` (a new owner starts one
//! record past the committed offset) → `lost-progress`.
//!
//! Replay a failure with `KAFKIT_SIM_SEED=<seed> cargo test -p kafkit --lib sim::group --
//! <scenario>`; `show_trace` (ignored) prints a whole run.

pub(crate) mod checker;
pub(crate) mod coordinator;
pub(crate) mod kip848;
pub(crate) mod machine;
pub(crate) mod world;

#[cfg(test)]
mod tests {
    use super::world::{simulate, Protocol, Scenario};
    use crate::sim::harness::{assert_replays, check_seeds, expect_caught};

    #[test]
    fn classic_range() {
        check_seeds("classic_range", 30, |run| {
            simulate(run, Scenario::new(Protocol::Range))
        });
    }

    #[test]
    fn classic_cooperative() {
        check_seeds("classic_cooperative", 30, |run| {
            simulate(run, Scenario::new(Protocol::Cooperative))
        });
    }

    /// Prints the whole trace of `KAFKIT_SIM_SEED` (default 1) for `KAFKIT_SIM_PROTOCOL`
    /// (`range`, `cooperative`: the default, `kip848`).
    #[test]
    #[ignore = "a debugging aid"]
    fn show_trace() {
        let seed = std::env::var("KAFKIT_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let protocol = match std::env::var("KAFKIT_SIM_PROTOCOL").as_deref() {
            Ok("range") => Protocol::Range,
            Ok("kip848") => Protocol::Kip848,
            _ => Protocol::Cooperative,
        };
        let mut run = crate::sim::harness::Run::new(seed);
        let verdict = simulate(&mut run, Scenario::new(protocol));
        for line in run.trace.lines() {
            println!("{line}");
        }
        println!("{verdict:?}");
    }

    #[test]
    fn kip848() {
        check_seeds("kip848", 30, |run| {
            simulate(run, Scenario::new(Protocol::Kip848))
        });
    }

    #[test]
    fn kip848_control_reassign_before_revocation() {
        expect_caught("exclusive-ownership", 40, |run| {
            let mut sc = Scenario::new(Protocol::Kip848);
            sc.kip848.no_revocation_wait = true;
            simulate(run, sc)
        });
    }

    #[test]
    fn group_replays() {
        assert_replays(7, |run| simulate(run, Scenario::new(Protocol::Cooperative)));
        assert_replays(8, |run| simulate(run, Scenario::new(Protocol::Range)));
        assert_replays(9, |run| simulate(run, Scenario::new(Protocol::Kip848)));
    }

    #[test]
    fn control_commit_before_processing() {
        expect_caught("commit-beyond-processed", 20, |run| {
            let mut sc = Scenario::new(Protocol::Range);
            sc.commit_ahead = true;
            simulate(run, sc)
        });
    }

    #[test]
    fn control_rebalance_without_waiting_for_revocation() {
        expect_caught("exclusive-ownership", 40, |run| {
            let mut sc = Scenario::new(Protocol::Range);
            sc.coordinator.complete_without_waiting = true;
            simulate(run, sc)
        });
    }

    #[test]
    fn control_skip_a_record_on_assignment() {
        expect_caught("lost-progress", 20, |run| {
            let mut sc = Scenario::new(Protocol::Cooperative);
            sc.skip_on_assign = true;
            simulate(run, sc)
        });
    }

    #[test]
    fn control_leave_never_sent() {
        expect_caught("liveness", 40, |run| {
            let mut sc = Scenario::new(Protocol::Cooperative);
            sc.drop_leave = true;
            simulate(run, sc)
        });
    }
}
