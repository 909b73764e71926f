//! Deterministic simulation (issue #16): the real `state/` machines hosted by a simulated
//! cluster in virtual time, with a seeded fault schedule and a history checker.
//!
//! Test-only. Every run is a function of one `u64` seed: the same seed gives the same fault
//! schedule, the same trace and the same verdict, so a failing seed is replayed with
//! `KAFKIT_SIM_SEED=<seed> cargo test -p kafkit --lib sim::` (see [`harness`]).
//!
//! The shared parts live here: [`clock::VirtualClock`] (an `Instant` that only moves when the
//! world says so), [`schedule::Schedule`] (timed events in a deterministic order),
//! [`harness`] (seed selection, the trace, violations, negative controls, the replay check).
//! Each world (a producer against partition logs, consumers in a group, …) is a module of its
//! own with its own simulated brokers and its own checker; [`fetch`] is the consumer's fetcher
//! reading transactions under read_committed.

// Shared helpers: not every world uses each of them.
#![allow(dead_code)]

pub(crate) mod clock;
pub(crate) mod fetch;
pub(crate) mod group;
pub(crate) mod harness;
pub(crate) mod producer;
pub(crate) mod schedule;
