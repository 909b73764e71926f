//! What the coordinator's answers (and failed requests) do to the classic member.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{ApiKey, HeartbeatResponse, JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, error, info, warn};

use super::{ClassicMemberState, MemberRequest, Phase, RequestKind};
use crate::error::Error;
use crate::state::group::assignor::{encode_group_assignment, Member};
use crate::state::group::event::GroupEvent;
use crate::state::group::protocol::{Assignment, Subscription, TopicPartition};

/// What an error code in a group response means for the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reaction {
    /// The coordinator moved or is unavailable: find it again, then retry.
    Rediscover,
    /// Try again after the retry backoff.
    Retry,
    /// A rebalance started: rejoin (keeping the generation).
    Rejoin,
    /// The generation is stale: partitions lost, rejoin with the same member id.
    ResetGeneration,
    /// The member id is unknown: partitions lost, rejoin as a new member.
    ResetMember,
    /// The member cannot go on.
    Fatal,
}

fn reaction(code: ResponseError) -> Reaction {
    use ResponseError as E;
    match code {
        E::CoordinatorNotAvailable | E::NotCoordinator => Reaction::Rediscover,
        E::CoordinatorLoadInProgress | E::UnknownServerError => Reaction::Retry,
        E::RebalanceInProgress => Reaction::Rejoin,
        E::IllegalGeneration => Reaction::ResetGeneration,
        E::UnknownMemberId => Reaction::ResetMember,
        _ => Reaction::Fatal,
    }
}

impl ClassicMemberState {
    /// Applies an error code of a JoinGroup/SyncGroup response.
    pub(super) fn rebalance_error(&mut self, now: Instant, api: ApiKey, code: ResponseError) {
        match reaction(code) {
            Reaction::Rediscover => {
                self.coordinator_lost(now);
                self.rejoin(now);
            }
            Reaction::Retry => self.rejoin(now + self.config.retry_backoff),
            Reaction::Rejoin => self.rejoin(now),
            Reaction::ResetGeneration => {
                self.lose_all();
                self.reset_generation(false);
                self.rejoin(now);
            }
            Reaction::ResetMember => {
                self.lose_all();
                self.reset_generation(true);
                self.rejoin(now);
            }
            Reaction::Fatal => self.fail(Error::Broker {
                api,
                code,
                message: None,
            }),
        }
    }

    /// The coordinator lookup's outcome: its node id, or an error (retried after the backoff).
    pub fn handle_coordinator(&mut self, now: Instant, node_id: Result<i32, Error>) {
        self.finding_coordinator = false;
        match node_id {
            Ok(id) => {
                debug!(group = %self.config.group_id, coordinator = id, "group coordinator found");
                self.coordinator = Some(id);
                self.last_heartbeat_ok = now;
            }
            Err(err) if err.is_retriable() || is_coordinator_error(&err) => {
                debug!(group = %self.config.group_id, error = %err, "FindCoordinator failed; retrying");
                self.find_at = now + self.config.retry_backoff;
            }
            Err(err) => self.fail(err),
        }
    }

    /// The JoinGroup response.
    pub fn handle_join(&mut self, now: Instant, response: &JoinGroupResponse) {
        if self.phase != Phase::Joining {
            return;
        }
        if let Some(code) = ResponseError::try_from_code(response.error_code) {
            if code == ResponseError::MemberIdRequired {
                // KIP-394: the coordinator gave us an id; join again with it at once.
                self.member_id = response.member_id.to_string();
                self.rejoin(now);
                return;
            }
            debug!(group = %self.config.group_id, error = ?code, "JoinGroup failed");
            self.rebalance_error(now, ApiKey::JoinGroup, code);
            return;
        }
        self.member_id = response.member_id.to_string();
        self.generation_id = response.generation_id;
        self.protocol_name = response.protocol_name.as_ref().map(|p| p.to_string());
        self.leader = response.leader == response.member_id;
        self.last_heartbeat_ok = now;
        info!(group = %self.config.group_id, generation = self.generation_id, member = %self.member_id, leader = self.leader, protocol = ?self.protocol_name, "joined the group");
        if self.leader && !response.skip_assignment {
            let mut topics: BTreeSet<String> = BTreeSet::new();
            for m in &response.members {
                match Subscription::decode(&m.metadata) {
                    Ok((_, s)) => topics.extend(s.topics),
                    Err(err) => {
                        warn!(member = %m.member_id, error = %err, "undecodable subscription")
                    }
                }
            }
            self.phase = Phase::Assigning {
                join: Box::new(response.clone()),
            };
            self.outbox = Some(MemberRequest::PartitionCounts(topics.into_iter().collect()));
        } else {
            self.phase = Phase::Syncing;
            self.outbox = Some(MemberRequest::SyncGroup(self.sync_request(Vec::new())));
        }
    }

    /// The partition counts the leader asked for (topics missing from the map have no
    /// metadata and get no assignment, as in Java).
    pub fn handle_partition_counts(&mut self, now: Instant, counts: BTreeMap<String, i32>) {
        let Phase::Assigning { join } = &self.phase else {
            return;
        };
        let join = join.clone();
        let Some(name) = join.protocol_name.as_ref().map(|p| p.to_string()) else {
            self.fail(Error::Broker {
                api: ApiKey::JoinGroup,
                code: ResponseError::InconsistentGroupProtocol,
                message: Some("the coordinator chose no protocol".into()),
            });
            return;
        };
        let Some(assignor) = self
            .config
            .assignors
            .iter()
            .find(|a| a.name() == name)
            .cloned()
        else {
            self.fail(Error::Broker {
                api: ApiKey::JoinGroup,
                code: ResponseError::InconsistentGroupProtocol,
                message: Some(format!(
                    "the coordinator chose {name:?}, which we do not have"
                )),
            });
            return;
        };
        let members: Vec<Member> = join
            .members
            .iter()
            .map(|m| {
                let instance = m.group_instance_id.as_ref().map(|s| s.to_string());
                Member::from_join_metadata(m.member_id.to_string(), instance.clone(), &m.metadata)
                    .unwrap_or_else(|_| Member {
                        member_id: m.member_id.to_string(),
                        group_instance_id: instance,
                        subscription: Subscription::default(),
                    })
            })
            .collect();
        let encoded = assignor
            .assign(&members, &counts)
            .map_err(|e| e.to_string())
            .and_then(|a| encode_group_assignment(&a).map_err(|e| e.to_string()));
        match encoded {
            Ok(encoded) => {
                debug!(group = %self.config.group_id, assignor = %name, members = members.len(), "assigned partitions as leader");
                self.assigned_counts = counts;
                let assignments = encoded
                    .into_iter()
                    .map(|(member, bytes)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(member))
                            .with_assignment(bytes)
                    })
                    .collect();
                self.phase = Phase::Syncing;
                self.outbox = Some(MemberRequest::SyncGroup(self.sync_request(assignments)));
            }
            Err(reason) => {
                warn!(group = %self.config.group_id, %reason, "assignment failed; rejoining");
                self.rejoin(now + self.config.retry_backoff);
            }
        }
    }

    /// The SyncGroup response: the member's assignment.
    pub fn handle_sync(&mut self, now: Instant, response: &SyncGroupResponse) {
        if self.phase != Phase::Syncing {
            return;
        }
        if let Some(code) = ResponseError::try_from_code(response.error_code) {
            debug!(group = %self.config.group_id, error = ?code, "SyncGroup failed");
            self.rebalance_error(now, ApiKey::SyncGroup, code);
            return;
        }
        let assigned: BTreeSet<TopicPartition> = if response.assignment.is_empty() {
            BTreeSet::new()
        } else {
            match Assignment::decode(&response.assignment) {
                Ok((_, a)) => a.partitions().into_iter().collect(),
                Err(err) => {
                    warn!(group = %self.config.group_id, error = %err, "undecodable assignment; rejoining");
                    self.rejoin(now + self.config.retry_backoff);
                    return;
                }
            }
        };
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        info!(group = %self.config.group_id, generation = self.generation_id, assigned = assigned.len(), added = added.len(), revoked = revoked.len(), "assignment received");
        self.phase = Phase::Stable;
        self.heartbeat_in_flight = false;
        self.last_heartbeat_ok = now;
        self.next_heartbeat = now + self.config.heartbeat_interval;
        // Cooperative: the revoked partitions go first, then a rejoin hands them on.
        self.revoke(revoked, true);
        if !added.is_empty() {
            self.owned.extend(added.iter().cloned());
            self.events.push_back(GroupEvent::Assigned(added));
        }
    }
    /// The Heartbeat response.
    pub fn handle_heartbeat(&mut self, now: Instant, response: &HeartbeatResponse) {
        self.heartbeat_in_flight = false;
        if !self.heartbeating() {
            return;
        }
        self.next_heartbeat = now + self.config.heartbeat_interval;
        match ResponseError::try_from_code(response.error_code) {
            None => self.last_heartbeat_ok = now,
            Some(code) => {
                debug!(group = %self.config.group_id, error = ?code, "Heartbeat failed");
                match reaction(code) {
                    Reaction::Rediscover => self.coordinator_lost(now),
                    Reaction::Retry => self.next_heartbeat = now + self.config.retry_backoff,
                    _ => self.rebalance_error(now, ApiKey::Heartbeat, code),
                }
            }
        }
    }

    /// The LeaveGroup outcome (the member is done when it was closing).
    pub fn handle_leave(&mut self, _now: Instant) {
        if let Phase::Leaving { sent: true } = self.phase {
            self.phase = Phase::Done;
        }
    }

    /// A request that got no response (connection lost, timed out) or could not be sent.
    pub fn handle_request_failed(&mut self, now: Instant, kind: RequestKind, error: &Error) {
        let closing =
            kind == RequestKind::LeaveGroup && matches!(self.phase, Phase::Leaving { sent: true });
        if error.is_client_bug() {
            // kafkit built a request the coordinator's version cannot carry: retrying sends the
            // same bytes, so the member ends with the error (the close reports it instead).
            error!(group = %self.config.group_id, request = ?kind, %error, "group request failed: client bug");
            if closing {
                self.leave_error = Some(error.clone());
                self.phase = Phase::Done;
            } else {
                self.fail(error.clone());
            }
            return;
        }
        debug!(group = %self.config.group_id, request = ?kind, %error, "group request failed");
        match kind {
            RequestKind::FindCoordinator => self.handle_coordinator(now, Err(error.clone())),
            RequestKind::LeaveGroup => {
                if closing {
                    warn!(group = %self.config.group_id, %error, "LeaveGroup at close failed: the coordinator drops the member after session.timeout.ms");
                    self.leave_error = Some(error.clone());
                    self.phase = Phase::Done;
                }
            }
            RequestKind::Heartbeat => {
                self.heartbeat_in_flight = false;
                if self.heartbeating() {
                    self.coordinator_lost(now);
                }
            }
            RequestKind::PartitionCounts => {
                if matches!(self.phase, Phase::Assigning { .. }) {
                    self.rejoin(now + self.config.retry_backoff);
                }
            }
            RequestKind::JoinGroup | RequestKind::SyncGroup => {
                if matches!(self.phase, Phase::Joining | Phase::Syncing) {
                    self.outbox = None;
                    if error.is_retriable() {
                        self.coordinator_lost(now);
                        self.rejoin(now);
                    } else {
                        self.fail(error.clone());
                    }
                }
            }
        }
    }
}

fn is_coordinator_error(err: &Error) -> bool {
    matches!(
        err,
        Error::Broker {
            code: ResponseError::CoordinatorNotAvailable
                | ResponseError::NotCoordinator
                | ResponseError::CoordinatorLoadInProgress,
            ..
        }
    )
}
