//! The simulated classic group coordinator: JoinGroup / SyncGroup / Heartbeat / LeaveGroup,
//! OffsetCommit with the generation check, OffsetFetch, FindCoordinator, as Kafka's group
//! coordinator answers them.
//!
//! Group states as in Kafka: Empty → PreparingRebalance (a join, a leave, an expiry) →
//! CompletingRebalance (every known member has rejoined, or the rebalance timeout removed the
//! ones that did not) → Stable (the leader's SyncGroup). A new member first gets
//! MEMBER_ID_REQUIRED with its id (KIP-394). A follower rejoining a Stable group with the same
//! metadata gets the current generation back without a rebalance. Sessions expire after the
//! member's session timeout, except while its JoinGroup is parked. Commits: unknown member →
//! UNKNOWN_MEMBER_ID, another generation → ILLEGAL_GENERATION, CompletingRebalance →
//! REBALANCE_IN_PROGRESS; accepted while PreparingRebalance with the current generation (an
//! eager member commits in its revocation). A move keeps the group (Kafka 4.x persists every
//! change), answers parked requests NOT_COORDINATOR and restarts every session.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::state::group::TopicPartition;

/// Where a parked answer goes: the simulated member, its connection, the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplyTo {
    pub member: usize,
    pub conn: u64,
    pub req: u64,
}

/// An answer of the coordinator.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Find(Result<i32, ResponseError>),
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave,
    Commit(OffsetCommitResponse),
    Fetch(Result<BTreeMap<TopicPartition, i64>, ResponseError>),
    /// A top-level error for a request whose answer the member reads as a failure
    /// (LeaveGroup, OffsetCommit).
    Error(ResponseError),
    /// ConsumerGroupHeartbeat (the KIP-848 group answers it).
    Hb(kafka_protocol::messages::ConsumerGroupHeartbeatResponse),
}

/// Why the coordinator removed a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    Leave,
    SessionExpired,
    RebalanceTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupState {
    Empty,
    Preparing { deadline: Duration },
    Completing,
    Stable,
}

#[derive(Debug, Clone)]
struct GroupMember {
    protocols: Vec<(String, Bytes)>,
    session: Duration,
    rebalance: Duration,
    last_seen: Duration,
    join: Option<ReplyTo>,
    sync: Option<ReplyTo>,
    assignment: Bytes,
}

/// Knobs that break the coordinator on purpose (negative controls).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CoordinatorFaults {
    /// Complete a rebalance as soon as the member that started it has joined, without waiting
    /// for the others (who keep their partitions and stay members).
    pub complete_without_waiting: bool,
}

/// The group coordinator of one group.
#[derive(Debug)]
pub(crate) struct Coordinator {
    pub node: i32,
    pub generation: i32,
    state: GroupState,
    members: BTreeMap<String, GroupMember>,
    pending_ids: BTreeSet<String>,
    leader: Option<String>,
    protocol: Option<String>,
    pub offsets: BTreeMap<TopicPartition, i64>,
    next_id: u64,
    /// FindCoordinator answers COORDINATOR_NOT_AVAILABLE until then (after a move).
    pub unavailable_until: Duration,
    /// Requests wait until then (a paused broker).
    pub paused_until: Duration,
    pub faults: CoordinatorFaults,
    /// Every removal: member id, when, why.
    pub removals: Vec<(String, Duration, Removal)>,
    /// Every accepted commit: member id, partition, offset, when.
    pub accepted_commits: Vec<(String, TopicPartition, i64, Duration)>,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

impl Coordinator {
    pub(crate) fn new(node: i32, faults: CoordinatorFaults) -> Self {
        Self {
            node,
            generation: 0,
            state: GroupState::Empty,
            members: BTreeMap::new(),
            pending_ids: BTreeSet::new(),
            leader: None,
            protocol: None,
            offsets: BTreeMap::new(),
            next_id: 0,
            unavailable_until: Duration::ZERO,
            paused_until: Duration::ZERO,
            faults,
            removals: Vec::new(),
            accepted_commits: Vec::new(),
        }
    }

    /// Whether `member_id` is a member now.
    pub(crate) fn knows(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// The member ids, sorted.
    pub(crate) fn member_ids(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    pub(crate) fn is_stable(&self) -> bool {
        self.state == GroupState::Stable
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "gen {} {:?} members {:?} leader {:?}",
            self.generation,
            self.state,
            self.members.keys().collect::<Vec<_>>(),
            self.leader
        )
    }

    /// FindCoordinator.
    pub(crate) fn find(&self, now: Duration) -> Answer {
        if now < self.unavailable_until {
            Answer::Find(Err(ResponseError::CoordinatorNotAvailable))
        } else {
            Answer::Find(Ok(self.node))
        }
    }

    /// The coordinator moves to `node`: parked requests are answered NOT_COORDINATOR, the
    /// group is kept, sessions restart when it is available again.
    pub(crate) fn move_to(&mut self, node: i32, available_at: Duration) -> Vec<(ReplyTo, Answer)> {
        self.node = node;
        self.unavailable_until = available_at;
        let mut out = Vec::new();
        for m in self.members.values_mut() {
            if let Some(to) = m.join.take() {
                out.push((to, not_coordinator_join()));
            }
            if let Some(to) = m.sync.take() {
                out.push((
                    to,
                    Answer::Sync(
                        SyncGroupResponse::default()
                            .with_error_code(code(ResponseError::NotCoordinator)),
                    ),
                ));
            }
            m.last_seen = available_at;
        }
        if let GroupState::Preparing { deadline } = self.state {
            self.state = GroupState::Preparing {
                deadline: deadline.max(available_at + self.max_rebalance()),
            };
        }
        out
    }

    fn max_rebalance(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    fn remove(&mut self, id: &str, now: Duration, why: Removal, out: &mut Vec<(ReplyTo, Answer)>) {
        let Some(m) = self.members.remove(id) else {
            return;
        };
        self.removals.push((id.to_owned(), now, why));
        if let Some(to) = m.join {
            out.push((
                to,
                Answer::Join(
                    JoinGroupResponse::default()
                        .with_error_code(code(ResponseError::UnknownMemberId)),
                ),
            ));
        }
        if let Some(to) = m.sync {
            out.push((
                to,
                Answer::Sync(
                    SyncGroupResponse::default()
                        .with_error_code(code(ResponseError::UnknownMemberId)),
                ),
            ));
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        match self.state {
            GroupState::Stable | GroupState::Completing => self.prepare(now, out),
            GroupState::Preparing { .. } => self.maybe_complete(now, out),
            GroupState::Empty => {}
        }
    }

    fn prepare(&mut self, now: Duration, out: &mut Vec<(ReplyTo, Answer)>) {
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        for m in self.members.values_mut() {
            if let Some(to) = m.sync.take() {
                out.push((
                    to,
                    Answer::Sync(
                        SyncGroupResponse::default()
                            .with_error_code(code(ResponseError::RebalanceInProgress)),
                    ),
                ));
            }
        }
        if !matches!(self.state, GroupState::Preparing { .. }) {
            self.state = GroupState::Preparing {
                deadline: now + self.max_rebalance(),
            };
        }
        self.maybe_complete(now, out);
    }

    fn become_empty(&mut self) {
        if self.state != GroupState::Empty {
            self.generation += 1;
        }
        self.state = GroupState::Empty;
        self.leader = None;
        self.protocol = None;
    }

    fn maybe_complete(&mut self, now: Duration, out: &mut Vec<(ReplyTo, Answer)>) {
        let GroupState::Preparing { deadline } = self.state else {
            return;
        };
        let all_joined = self.members.values().all(|m| m.join.is_some());
        let any_joined = self.members.values().any(|m| m.join.is_some());
        let early = self.faults.complete_without_waiting && any_joined;
        if !all_joined && !early {
            if now < deadline {
                return;
            }
            let late: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| m.join.is_none())
                .map(|(id, _)| id.clone())
                .collect();
            for id in late {
                self.members.remove(&id);
                self.removals.push((id, now, Removal::RebalanceTimeout));
            }
        }
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        self.generation += 1;
        let joined: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        if !self.leader.as_ref().is_some_and(|l| joined.contains(l)) {
            self.leader = joined.first().cloned();
        }
        let leader = self.leader.clone().unwrap_or_default();
        // The first protocol of the leader's that every joined member supports.
        let leader_protocols: Vec<String> = self.members[&leader]
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        let protocol = leader_protocols.into_iter().find(|p| {
            joined
                .iter()
                .all(|id| self.members[id].protocols.iter().any(|(n, _)| n == p))
        });
        self.protocol = protocol.clone();
        let listing: Vec<JoinGroupResponseMember> = joined
            .iter()
            .map(|id| {
                let meta = self.members[id]
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                JoinGroupResponseMember::default()
                    .with_member_id(s(id))
                    .with_metadata(meta)
            })
            .collect();
        for id in &joined {
            let m = self.members.get_mut(id).expect("joined member");
            m.last_seen = now;
            let to = m.join.take().expect("parked join");
            let response = JoinGroupResponse::default()
                .with_generation_id(self.generation)
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(protocol.as_deref().map(s))
                .with_leader(s(&leader))
                .with_member_id(s(id))
                .with_members(if *id == leader {
                    listing.clone()
                } else {
                    Vec::new()
                });
            out.push((to, Answer::Join(response)));
        }
        self.state = GroupState::Completing;
    }

    /// JoinGroup.
    pub(crate) fn join(
        &mut self,
        now: Duration,
        to: ReplyTo,
        req: &JoinGroupRequest,
    ) -> Vec<(ReplyTo, Answer)> {
        let mut out = Vec::new();
        let id = req.member_id.to_string();
        if id.is_empty() {
            self.next_id += 1;
            let id = format!("c{}-{}", to.member, self.next_id);
            self.pending_ids.insert(id.clone());
            out.push((
                to,
                Answer::Join(
                    JoinGroupResponse::default()
                        .with_error_code(code(ResponseError::MemberIdRequired))
                        .with_member_id(s(&id)),
                ),
            ));
            return out;
        }
        if !self.members.contains_key(&id) && !self.pending_ids.remove(&id) {
            out.push((
                to,
                Answer::Join(
                    JoinGroupResponse::default()
                        .with_error_code(code(ResponseError::UnknownMemberId)),
                ),
            ));
            return out;
        }
        let protocols: Vec<(String, Bytes)> = req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();
        let known = self.members.get(&id).cloned();
        let same = known.as_ref().is_some_and(|m| m.protocols == protocols);
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        if same && !is_leader && matches!(self.state, GroupState::Stable | GroupState::Completing) {
            // A follower with unchanged metadata: the current generation, no rebalance.
            let m = self.members.get_mut(&id).expect("known");
            m.last_seen = now;
            out.push((
                to,
                Answer::Join(
                    JoinGroupResponse::default()
                        .with_generation_id(self.generation)
                        .with_protocol_type(Some(s("consumer")))
                        .with_protocol_name(self.protocol.as_deref().map(s))
                        .with_leader(s(self.leader.as_deref().unwrap_or("")))
                        .with_member_id(s(&id)),
                ),
            ));
            return out;
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        let rebalance = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        let entry = self.members.entry(id.clone()).or_insert(GroupMember {
            protocols: Vec::new(),
            session,
            rebalance,
            last_seen: now,
            join: None,
            sync: None,
            assignment: Bytes::new(),
        });
        entry.protocols = protocols;
        entry.last_seen = now;
        if let Some(old) = entry.join.replace(to) {
            out.push((old, not_coordinator_join()));
        }
        if let Some(old) = entry.sync.take() {
            out.push((
                old,
                Answer::Sync(
                    SyncGroupResponse::default()
                        .with_error_code(code(ResponseError::RebalanceInProgress)),
                ),
            ));
        }
        match self.state {
            GroupState::Preparing { .. } => self.maybe_complete(now, &mut out),
            _ => self.prepare(now, &mut out),
        }
        out
    }

    /// SyncGroup.
    pub(crate) fn sync(
        &mut self,
        now: Duration,
        to: ReplyTo,
        req: &SyncGroupRequest,
    ) -> Vec<(ReplyTo, Answer)> {
        let id = req.member_id.to_string();
        let err = |e: ResponseError| {
            vec![(
                to,
                Answer::Sync(SyncGroupResponse::default().with_error_code(code(e))),
            )]
        };
        let Some(m) = self.members.get_mut(&id) else {
            return err(ResponseError::UnknownMemberId);
        };
        m.last_seen = now;
        if req.generation_id != self.generation {
            return err(ResponseError::IllegalGeneration);
        }
        match self.state {
            GroupState::Empty => err(ResponseError::UnknownMemberId),
            GroupState::Preparing { .. } => err(ResponseError::RebalanceInProgress),
            GroupState::Stable => vec![(to, self.sync_answer(&id))],
            GroupState::Completing => {
                m.sync = Some(to);
                if self.leader.as_deref() != Some(id.as_str()) {
                    return Vec::new();
                }
                let given: BTreeMap<String, Bytes> = req
                    .assignments
                    .iter()
                    .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                    .collect();
                let mut out = Vec::new();
                for (mid, m) in self.members.iter_mut() {
                    m.assignment = given.get(mid).cloned().unwrap_or_default();
                }
                self.state = GroupState::Stable;
                let parked: Vec<(String, ReplyTo)> = self
                    .members
                    .iter_mut()
                    .filter_map(|(mid, m)| m.sync.take().map(|t| (mid.clone(), t)))
                    .collect();
                for (mid, t) in parked {
                    out.push((t, self.sync_answer(&mid)));
                }
                out
            }
        }
    }

    fn sync_answer(&self, id: &str) -> Answer {
        Answer::Sync(
            SyncGroupResponse::default()
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(self.protocol.as_deref().map(s))
                .with_assignment(self.members[id].assignment.clone()),
        )
    }

    /// Heartbeat.
    pub(crate) fn heartbeat(&mut self, now: Duration, req: &HeartbeatRequest) -> Answer {
        let e = match self.members.get_mut(req.member_id.as_str()) {
            None => Some(ResponseError::UnknownMemberId),
            Some(m) => {
                m.last_seen = now;
                if req.generation_id != self.generation {
                    Some(ResponseError::IllegalGeneration)
                } else if matches!(self.state, GroupState::Preparing { .. }) {
                    Some(ResponseError::RebalanceInProgress)
                } else {
                    None
                }
            }
        };
        Answer::Heartbeat(HeartbeatResponse::default().with_error_code(e.map_or(0, code)))
    }

    /// LeaveGroup of `member_id`.
    pub(crate) fn leave(&mut self, now: Duration, member_id: &str) -> Vec<(ReplyTo, Answer)> {
        let mut out = Vec::new();
        self.remove(member_id, now, Removal::Leave, &mut out);
        out
    }

    /// OffsetCommit from `member` (the simulated member's index, for the history).
    pub(crate) fn commit(&mut self, now: Duration, req: &OffsetCommitRequest) -> Answer {
        let id = req.member_id.to_string();
        let gen = req.generation_id_or_member_epoch;
        let e = if gen < 0 && id.is_empty() {
            (self.state != GroupState::Empty).then_some(ResponseError::UnknownMemberId)
        } else if let Some(m) = self.members.get_mut(&id) {
            m.last_seen = now;
            if gen != self.generation {
                Some(ResponseError::IllegalGeneration)
            } else if self.state == GroupState::Completing {
                Some(ResponseError::RebalanceInProgress)
            } else {
                None
            }
        } else {
            Some(ResponseError::UnknownMemberId)
        };
        self.commit_checked(now, req, e)
    }

    /// OffsetCommit whose membership check (`e`) was made elsewhere (a KIP-848 group).
    pub(crate) fn commit_checked(
        &mut self,
        now: Duration,
        req: &OffsetCommitRequest,
        e: Option<ResponseError>,
    ) -> Answer {
        let id = req.member_id.to_string();
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        if e.is_none() {
                            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                            self.offsets.insert(tp.clone(), p.committed_offset);
                            self.accepted_commits
                                .push((id.clone(), tp, p.committed_offset, now));
                        }
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(e.map_or(0, code))
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        Answer::Commit(OffsetCommitResponse::default().with_topics(topics))
    }

    /// OffsetFetch of `partitions` (no membership needed).
    pub(crate) fn fetch(&self, partitions: &[TopicPartition]) -> Answer {
        Answer::Fetch(Ok(partitions
            .iter()
            .filter_map(|tp| self.offsets.get(tp).map(|o| (tp.clone(), *o)))
            .collect()))
    }

    /// Timers: session expiry and the rebalance timeout.
    pub(crate) fn tick(&mut self, now: Duration) -> Vec<(ReplyTo, Answer)> {
        let mut out = Vec::new();
        if now < self.paused_until || now < self.unavailable_until {
            return out;
        }
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join.is_none() && now > m.last_seen + m.session)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id, now, Removal::SessionExpired, &mut out);
        }
        self.maybe_complete(now, &mut out);
        out
    }
}

fn not_coordinator_join() -> Answer {
    Answer::Join(JoinGroupResponse::default().with_error_code(code(ResponseError::NotCoordinator)))
}
