//! The classic consumer group member as a pure state machine: JoinGroup, SyncGroup,
//! Heartbeat and LeaveGroup decisions, without sockets or clocks.
//!
//! # How to drive it
//!
//! The I/O task loops:
//! 1. [`ClassicMemberState::poll_request`]`(now)`: the next request to send to the coordinator
//!    (or a lookup: find the coordinator, fetch partition counts for the leader), if any. At
//!    most one JoinGroup/SyncGroup/LeaveGroup and one Heartbeat are outstanding at a time; the
//!    state remembers what it asked for.
//! 2. Its outcome goes back through the matching `handle_*` (`handle_coordinator`,
//!    `handle_join`, `handle_sync`, `handle_heartbeat`, `handle_leave`,
//!    `handle_partition_counts`) or, when the request failed on the way,
//!    [`ClassicMemberState::handle_request_failed`].
//! 3. [`ClassicMemberState::poll_event`] hands out what the consumer must know
//!    ([`GroupEvent`]s), [`ClassicMemberState::fatal`] the error that ended the member.
//! 4. Sleep until [`ClassicMemberState::poll_timeout`] or until something arrives.
//!
//! The consumer's side arrives through [`ClassicMemberState::revocation_done`],
//! [`ClassicMemberState::poll_tick`], [`ClassicMemberState::update_topics`] and
//! [`ClassicMemberState::close`].
//!
//! # Rebalance protocols (KIP-429)
//!
//! The protocol is the strongest one every configured assignor supports (cooperative when all
//! support it, else eager), as in Java. Eager: before every JoinGroup the member revokes all it
//! owns and waits for [`ClassicMemberState::revocation_done`]. Cooperative: it keeps its
//! partitions through the rebalance; after SyncGroup it revokes only what the new assignment
//! lacks, and once that is done rejoins so the leader can hand those partitions on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest,
};
use tracing::{debug, info, warn};

use crate::error::Error;

use super::assignor::{Assignor, RebalanceProtocol};
use super::event::{GroupEvent, GroupGeneration};
use super::protocol::TopicPartition;
pub use requests::LeaveGroup;

/// The consumer protocol type in JoinGroup/SyncGroup.
pub const PROTOCOL_TYPE: &str = "consumer";

/// What the member is configured with (the group part of a consumer's settings).
#[derive(Clone)]
pub struct MemberConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id` (static membership, KIP-345).
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms` (the rebalance timeout).
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `partition.assignment.strategy`, in preference order (never empty).
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
}

impl std::fmt::Debug for MemberConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberConfig")
            .field("group_id", &self.group_id)
            .field("group_instance_id", &self.group_instance_id)
            .field(
                "assignors",
                &self.assignors.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Something the member needs done.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MemberRequest {
    /// Find the group coordinator (FindCoordinator, key type group); answer with
    /// [`ClassicMemberState::handle_coordinator`].
    FindCoordinator,
    /// Send this JoinGroup to the coordinator; it may take up to the rebalance timeout.
    JoinGroup(JoinGroupRequest),
    /// The leader needs the partition counts of these topics (fresh metadata); answer with
    /// [`ClassicMemberState::handle_partition_counts`].
    PartitionCounts(Vec<String>),
    /// Send this SyncGroup to the coordinator.
    SyncGroup(SyncGroupRequest),
    /// Send this Heartbeat to the coordinator.
    Heartbeat(HeartbeatRequest),
    /// Leave the group: send [`LeaveGroup::request`] (at the negotiated version) to the
    /// coordinator.
    LeaveGroup(LeaveGroup),
}

/// Which request failed, for [`ClassicMemberState::handle_request_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// FindCoordinator.
    FindCoordinator,
    /// JoinGroup.
    JoinGroup,
    /// The leader's metadata lookup.
    PartitionCounts,
    /// SyncGroup.
    SyncGroup,
    /// Heartbeat.
    Heartbeat,
    /// LeaveGroup.
    LeaveGroup,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Not in the group; JoinGroup at `at` (once the coordinator is known and nothing is
    /// being revoked).
    Unjoined { at: Instant },
    /// JoinGroup in flight.
    Joining,
    /// The leader waits for partition counts before assigning.
    Assigning { join: Box<JoinGroupResponse> },
    /// SyncGroup in flight.
    Syncing,
    /// In the group with an assignment.
    Stable,
    /// Left after `max.poll.interval.ms` passed without a poll; rejoins at the next poll.
    PollExpired,
    /// Closing: LeaveGroup to send (or in flight).
    Leaving { sent: bool },
    /// Done (closed or failed).
    Done,
}

/// The classic group member's state. See the module documentation for the call order.
#[derive(Debug)]
pub struct ClassicMemberState {
    config: MemberConfig,
    protocol: RebalanceProtocol,
    topics: Vec<String>,
    coordinator: Option<i32>,
    finding_coordinator: bool,
    /// When FindCoordinator may be sent next.
    find_at: Instant,
    phase: Phase,
    member_id: String,
    generation_id: i32,
    protocol_name: Option<String>,
    leader: bool,
    /// What the leader assigned with, to spot metadata changes.
    assigned_counts: BTreeMap<String, i32>,
    /// Partitions owned now.
    owned: BTreeSet<TopicPartition>,
    /// Partitions revoked but not yet given up by the consumer.
    revoking: BTreeSet<TopicPartition>,
    /// Rejoin once the revocation is done (cooperative follow-up).
    rejoin_after_revoke: bool,
    heartbeat_in_flight: bool,
    next_heartbeat: Instant,
    /// The last heartbeat answered (or join/sync completed): the session as we see it.
    last_heartbeat_ok: Instant,
    last_poll: Instant,
    /// A LeaveGroup to send and forget (poll expiry).
    pending_leave: Option<LeaveGroup>,
    /// The next rebalance request to send (SyncGroup, the leader's partition counts).
    outbox: Option<MemberRequest>,
    events: VecDeque<GroupEvent>,
    fatal: Option<Error>,
    /// Why the LeaveGroup sent at close failed, for [`Self::leave_error`].
    leave_error: Option<Error>,
}

/// The strongest rebalance protocol all assignors support (cooperative over eager).
pub fn common_protocol(assignors: &[Arc<dyn Assignor>]) -> RebalanceProtocol {
    let all_cooperative = !assignors.is_empty()
        && assignors.iter().all(|a| {
            a.supported_protocols()
                .contains(&RebalanceProtocol::Cooperative)
        });
    if all_cooperative {
        RebalanceProtocol::Cooperative
    } else {
        RebalanceProtocol::Eager
    }
}

impl ClassicMemberState {
    /// A member that is not in the group yet, subscribed to `topics`.
    pub fn new(config: MemberConfig, topics: Vec<String>, now: Instant) -> Self {
        let protocol = common_protocol(&config.assignors);
        let mut topics = topics;
        topics.sort();
        topics.dedup();
        ClassicMemberState {
            config,
            protocol,
            topics,
            coordinator: None,
            finding_coordinator: false,
            find_at: now,
            phase: Phase::Unjoined { at: now },
            member_id: String::new(),
            generation_id: -1,
            protocol_name: None,
            leader: false,
            assigned_counts: BTreeMap::new(),
            owned: BTreeSet::new(),
            revoking: BTreeSet::new(),
            rejoin_after_revoke: false,
            heartbeat_in_flight: false,
            next_heartbeat: now,
            last_heartbeat_ok: now,
            last_poll: now,
            pending_leave: None,
            outbox: None,
            events: VecDeque::new(),
            fatal: None,
            leave_error: None,
        }
    }

    /// The rebalance protocol in use.
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// The coordinator's node id, when known.
    pub fn coordinator(&self) -> Option<i32> {
        self.coordinator
    }

    /// The partitions owned now (including ones being revoked).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.union(&self.revoking).cloned().collect()
    }

    /// Whether this member is the group's leader in the current generation.
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// The subscribed topics.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The current generation, when the member has one (joined at least once and not reset).
    pub fn generation(&self) -> Option<GroupGeneration> {
        (self.generation_id >= 0 && !self.member_id.is_empty()).then(|| GroupGeneration {
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            protocol: self.protocol_name.clone(),
        })
    }

    /// The generation an offset commit may carry now: while stable, and between a rebalance
    /// being announced and the JoinGroup (when an eager member commits in its revocation
    /// callback, as Java's does). `None` while a JoinGroup/SyncGroup is under way (see
    /// [`Self::is_rebalancing`]) or when the member has no generation.
    pub fn commit_generation(&self) -> Option<GroupGeneration> {
        match self.phase {
            Phase::Stable | Phase::Unjoined { .. } => self.generation(),
            _ => None,
        }
    }

    /// Whether a JoinGroup/SyncGroup round is under way.
    pub fn is_rebalancing(&self) -> bool {
        matches!(
            self.phase,
            Phase::Joining | Phase::Assigning { .. } | Phase::Syncing
        ) || matches!(self.phase, Phase::Unjoined { .. }) && self.generation_id < 0
    }

    /// Whether the member is in the group with an assignment (commits can carry its
    /// generation).
    pub fn is_stable(&self) -> bool {
        self.phase == Phase::Stable
    }

    /// Whether the member is done (closed or failed).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The error that ended the member, if one did.
    pub fn fatal(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    /// The next event for the consumer.
    pub fn poll_event(&mut self) -> Option<GroupEvent> {
        self.events.pop_front()
    }

    /// The earliest time something is due (heartbeat, rejoin, retry, poll expiry).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut due: Vec<Instant> = Vec::new();
        if self.coordinator.is_none() && !self.finding_coordinator {
            due.push(self.find_at);
        }
        let leave_due = self.pending_leave.is_some() && self.coordinator.is_some();
        if leave_due || self.phase == (Phase::Leaving { sent: false }) {
            due.push(self.find_at.min(self.last_poll));
        }
        match &self.phase {
            Phase::Unjoined { at } if self.revoking.is_empty() && self.coordinator.is_some() => {
                due.push(*at)
            }
            Phase::Unjoined { .. } => {}
            Phase::Syncing | Phase::Assigning { .. } if self.outbox.is_some() => {
                due.push(self.last_poll.min(self.last_heartbeat_ok))
            }
            Phase::Stable => due.push(self.last_heartbeat_ok + self.config.session_timeout),
            Phase::Done | Phase::PollExpired | Phase::Leaving { .. } => {}
            Phase::Joining | Phase::Assigning { .. } | Phase::Syncing => {}
        }
        if self.heartbeating() && !self.heartbeat_in_flight && self.coordinator.is_some() {
            due.push(self.next_heartbeat);
        }
        if self.in_group() {
            due.push(self.last_poll + self.config.rebalance_timeout);
        }
        due.into_iter().min()
    }

    /// Heartbeats go on while stable, and while an eager revocation keeps the member from
    /// rejoining (the consumer may be committing in its callback).
    fn heartbeating(&self) -> bool {
        match self.phase {
            Phase::Stable => true,
            Phase::Unjoined { .. } => !self.revoking.is_empty() && self.generation_id >= 0,
            _ => false,
        }
    }

    fn in_group(&self) -> bool {
        matches!(
            self.phase,
            Phase::Joining | Phase::Assigning { .. } | Phase::Syncing | Phase::Stable
        ) || matches!(self.phase, Phase::Unjoined { .. }) && !self.member_id.is_empty()
    }

    /// The next request to send, if one is due. Call again until it returns `None`.
    pub fn poll_request(&mut self, now: Instant) -> Option<MemberRequest> {
        if self.phase == Phase::Done {
            return None;
        }
        self.check_timers(now);
        if let Phase::Leaving { sent: false } = self.phase {
            if self.coordinator.is_some() {
                self.phase = Phase::Leaving { sent: true };
                return Some(MemberRequest::LeaveGroup(
                    self.leave_request("the consumer is closing"),
                ));
            }
            self.phase = Phase::Done;
            return None;
        }
        if self.coordinator.is_some() {
            if let Some(leave) = self.pending_leave.take() {
                return Some(MemberRequest::LeaveGroup(leave));
            }
        }
        if self.coordinator.is_none() {
            if !self.finding_coordinator && now >= self.find_at {
                self.finding_coordinator = true;
                return Some(MemberRequest::FindCoordinator);
            }
            return None;
        }
        if matches!(self.phase, Phase::Syncing | Phase::Assigning { .. }) {
            return self.outbox.take();
        }
        match &self.phase {
            Phase::Unjoined { at } if now >= *at && self.revoking.is_empty() => {
                if self.protocol == RebalanceProtocol::Eager && !self.owned.is_empty() {
                    // Eager: give everything up before joining.
                    self.revoke(self.owned.clone(), false);
                    return None;
                }
                self.phase = Phase::Joining;
                Some(MemberRequest::JoinGroup(self.join_request()))
            }
            _ if self.heartbeating() && !self.heartbeat_in_flight && now >= self.next_heartbeat => {
                self.heartbeat_in_flight = true;
                Some(MemberRequest::Heartbeat(self.heartbeat_request()))
            }
            _ => None,
        }
    }

    fn check_timers(&mut self, now: Instant) {
        // max.poll.interval.ms: the application stopped polling; leave so the group moves on.
        if self.in_group() && now >= self.last_poll + self.config.rebalance_timeout {
            warn!(group = %self.config.group_id, "max.poll.interval.ms passed without a poll: leaving the group");
            let leave = self.coordinator.is_some()
                && self.config.group_instance_id.is_none()
                && !self.member_id.is_empty();
            self.lose_all();
            // Sent and forgotten: its outcome does not change what we do.
            self.pending_leave =
                leave.then(|| self.leave_request("consumer poll timeout has expired"));
            self.reset_generation(true);
            self.phase = Phase::PollExpired;
        }
        if self.phase == Phase::Stable
            && now >= self.last_heartbeat_ok + self.config.session_timeout
        {
            // No heartbeat answered for a whole session: the coordinator is unreachable or
            // gone; find it again (the broker has probably expired us: the next heartbeat
            // tells).
            debug!(group = %self.config.group_id, "no heartbeat answered within the session timeout: rediscovering the coordinator");
            self.coordinator_lost(now);
            self.last_heartbeat_ok = now;
        }
    }
}

impl ClassicMemberState {
    /// Emits a revocation and waits for the consumer's [`Self::revocation_done`].
    pub(super) fn revoke(&mut self, partitions: BTreeSet<TopicPartition>, rejoin_after: bool) {
        if partitions.is_empty() {
            return;
        }
        self.events
            .push_back(GroupEvent::Revoked(partitions.iter().cloned().collect()));
        for tp in &partitions {
            self.owned.remove(tp);
        }
        self.revoking.extend(partitions);
        self.rejoin_after_revoke |= rejoin_after;
    }

    pub(super) fn drop_owned(&mut self) {
        self.owned.clear();
        self.revoking.clear();
        self.rejoin_after_revoke = false;
    }

    /// Partitions lost: told to the consumer, forgotten here.
    pub(super) fn lose_all(&mut self) {
        if !self.owned.is_empty() || !self.revoking.is_empty() {
            self.events.push_back(GroupEvent::Lost(self.assignment()));
        }
        self.drop_owned();
    }

    pub(super) fn reset_generation(&mut self, member_too: bool) {
        self.generation_id = -1;
        self.protocol_name = None;
        self.leader = false;
        if member_too {
            self.member_id.clear();
        }
    }

    pub(super) fn coordinator_lost(&mut self, now: Instant) {
        if self.coordinator.take().is_some() {
            info!(group = %self.config.group_id, "group coordinator lost: rediscovering");
        }
        self.find_at = now + self.config.retry_backoff;
        self.heartbeat_in_flight = false;
    }

    pub(super) fn rejoin(&mut self, at: Instant) {
        self.phase = Phase::Unjoined { at };
    }

    pub(super) fn fail(&mut self, error: Error) {
        warn!(group = %self.config.group_id, error = %error, "group member failed");
        self.lose_all();
        self.fatal = Some(error);
        self.phase = Phase::Done;
        self.pending_leave = None;
    }
}

impl ClassicMemberState {
    /// The consumer gave `partitions` up after a [`GroupEvent::Revoked`].
    pub fn revocation_done(&mut self, now: Instant, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.revoking.remove(tp);
        }
        if self.revoking.is_empty() && self.rejoin_after_revoke {
            self.rejoin_after_revoke = false;
            if self.phase == Phase::Stable {
                self.rejoin(now);
            }
        }
    }

    /// The application polled (`max.poll.interval.ms`); after a poll expiry, this rejoins.
    pub fn poll_tick(&mut self, now: Instant) {
        self.last_poll = now;
        if self.phase == Phase::PollExpired {
            self.rejoin(now);
        }
    }

    /// The subscription's topics now (a pattern resolved again, or a new list). Rejoins when
    /// they changed; partitions of topics no longer subscribed are revoked first.
    pub fn update_topics(&mut self, now: Instant, topics: Vec<String>) {
        let mut topics = topics;
        topics.sort();
        topics.dedup();
        if topics == self.topics {
            return;
        }
        info!(group = %self.config.group_id, ?topics, "subscription changed: rejoining");
        self.topics = topics;
        let gone: BTreeSet<TopicPartition> = self
            .owned
            .iter()
            .filter(|tp| !self.topics.contains(&tp.topic))
            .cloned()
            .collect();
        self.revoke(gone, false);
        if matches!(self.phase, Phase::Stable | Phase::Unjoined { .. }) {
            self.rejoin(now);
        }
    }

    /// Fresh partition counts of the subscribed topics (the leader checks them): rejoins when
    /// a topic the assignment was made with changed its count or a subscribed topic appeared.
    pub fn handle_metadata(&mut self, now: Instant, counts: &BTreeMap<String, i32>) {
        if !self.leader || self.phase != Phase::Stable {
            return;
        }
        let changed = self
            .assigned_counts
            .iter()
            .any(|(topic, n)| counts.get(topic).is_some_and(|m| m != n))
            || counts
                .iter()
                .any(|(topic, n)| *n > 0 && !self.assigned_counts.contains_key(topic));
        if changed {
            info!(group = %self.config.group_id, "partition counts changed: rejoining to reassign");
            self.rejoin(now);
        }
    }

    /// Why the LeaveGroup sent by [`Self::close`] failed (the member is done anyway; the
    /// coordinator drops it after `session.timeout.ms`).
    pub fn leave_error(&self) -> Option<&Error> {
        self.leave_error.as_ref()
    }

    /// Closes the member: a dynamic member sends LeaveGroup (see [`Self::poll_request`]); a
    /// static one just stops, as Java's does. What it owns is revoked (the consumer committed
    /// before, if it wanted to).
    pub fn close(&mut self, _now: Instant) {
        if self.phase == Phase::Done {
            return;
        }
        self.drop_owned();
        self.outbox = None;
        self.pending_leave = None;
        let leave = self.config.group_instance_id.is_none() && !self.member_id.is_empty();
        self.phase = if leave {
            Phase::Leaving { sent: false }
        } else {
            Phase::Done
        };
    }
}

mod requests;
mod responses;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::encoding_samples;
