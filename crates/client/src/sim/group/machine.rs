//! The member state machine a simulated consumer hosts: the classic member or the KIP-848
//! member, behind the few calls the world's driver needs (as `io/group/mod.rs`'s
//! `GroupMember` forwards them).

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
use uuid::Uuid;

use crate::error::Error;
use crate::state::group::consumer_member::{ConsumerMemberState, MemberState};
use crate::state::group::event::GroupEvent;
use crate::state::group::member::ClassicMemberState;
use crate::state::group::TopicPartition;

/// The KIP-848 member with what its I/O task keeps beside it.
#[derive(Debug)]
pub(crate) struct Kip {
    pub state: ConsumerMemberState,
    /// The coordinator, as the I/O task's lookup found it.
    pub coordinator: Option<i32>,
    pub finding: bool,
    pub find_at: Instant,
    /// The leave request to send (after `leave`).
    pub leave: Option<ConsumerGroupHeartbeatRequest>,
    pub names: BTreeMap<Uuid, String>,
}

/// A hosted member.
#[derive(Debug)]
pub(crate) enum Machine {
    Classic(Box<ClassicMemberState>),
    Kip(Box<Kip>),
}

impl Machine {
    /// The member id the coordinator knows it by, once it is in the group.
    pub(crate) fn member_id(&self) -> Option<String> {
        match self {
            Machine::Classic(s) => s.generation().map(|g| g.member_id),
            Machine::Kip(k) => (k.state.member_epoch() > 0).then(|| k.state.member_id().to_owned()),
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<GroupEvent> {
        match self {
            Machine::Classic(s) => s.poll_event(),
            Machine::Kip(k) => k.state.poll_event(),
        }
    }

    pub(crate) fn revocation_done(&mut self, now: Instant, tps: &[TopicPartition]) {
        match self {
            Machine::Classic(s) => s.revocation_done(now, tps),
            Machine::Kip(k) => {
                let names = k.names.clone();
                k.state.revocation_done(now, tps, &names)
            }
        }
    }

    /// The generation (classic) or member epoch (KIP-848) and member id a commit carries now.
    pub(crate) fn commit_generation(&self) -> Option<(i32, String)> {
        match self {
            Machine::Classic(s) => s
                .commit_generation()
                .map(|g| (g.generation_id, g.member_id)),
            Machine::Kip(k) => (k.state.member_epoch() > 0)
                .then(|| (k.state.member_epoch(), k.state.member_id().to_owned())),
        }
    }

    pub(crate) fn coordinator(&self) -> Option<i32> {
        match self {
            Machine::Classic(s) => s.coordinator(),
            Machine::Kip(k) => k.coordinator,
        }
    }

    pub(crate) fn close(&mut self, now: Instant) {
        match self {
            Machine::Classic(s) => s.close(now),
            Machine::Kip(k) => k.leave = k.state.leave(),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        match self {
            Machine::Classic(s) => s.is_done(),
            Machine::Kip(k) => {
                matches!(k.state.state(), MemberState::Left | MemberState::Fatal)
                    && k.leave.is_none()
            }
        }
    }

    pub(crate) fn fatal(&self) -> Option<&Error> {
        match self {
            Machine::Classic(s) => s.fatal(),
            Machine::Kip(k) => k.state.fatal_error(),
        }
    }

    pub(crate) fn poll_tick(&mut self, now: Instant) {
        match self {
            Machine::Classic(s) => s.poll_tick(now),
            Machine::Kip(k) => k.state.poll_tick(now),
        }
    }

    pub(crate) fn is_stable(&self) -> bool {
        match self {
            Machine::Classic(s) => s.is_stable(),
            Machine::Kip(k) => k.state.state() == MemberState::Stable,
        }
    }

    pub(crate) fn assignment(&self) -> Vec<TopicPartition> {
        match self {
            Machine::Classic(s) => s.assignment(),
            Machine::Kip(k) => k.state.assignment(),
        }
    }
}
