//! The simulated KIP-848 group coordinator (ConsumerGroupHeartbeat), as Kafka's new group
//! coordinator answers it, simplified.
//!
//! - Any change of membership (a join with epoch 0, a leave with epoch -1, a session expiry,
//!   a member fenced for not revoking within its rebalance timeout) bumps the group epoch and
//!   computes a target assignment: the partitions, sorted, dealt round-robin over the members
//!   sorted by id (a simple server-side assignor).
//! - Revocation before reassignment: a member that owns partitions outside its target is sent
//!   only the part of its target it owns (and keeps its epoch) until it reports, in a later
//!   heartbeat, that it gave the rest up. Then it moves to the group epoch and is sent its
//!   target minus the partitions another member still owns or was sent and has not given up.
//!   What a member owns is learnt only from its requests at its current epoch (a late request
//!   at the previous epoch, e.g. one from a connection cut since, must not bring back an
//!   older view: the long run found that hole in an earlier version of this coordinator).
//! - Epoch checks: unknown member id → UNKNOWN_MEMBER_ID; an epoch that is neither the
//!   member's nor (with owned partitions it was given) its previous one → FENCED_MEMBER_EPOCH.
//!   Commits: unknown member → UNKNOWN_MEMBER_ID, another epoch → STALE_MEMBER_EPOCH.
//! - Not modelled: subscriptions that differ between members, regexes, static members,
//!   assignors by name, rack awareness.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, OffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::coordinator::Removal;
use crate::state::group::TopicPartition;

/// The broker's `group.consumer.session.timeout.ms` in the simulation.
pub(crate) const SESSION: Duration = Duration::from_secs(10);
/// The broker's `group.consumer.heartbeat.interval.ms` in the simulation.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct Member {
    epoch: i32,
    previous_epoch: i32,
    /// What the member last reported owning.
    owned: BTreeSet<TopicPartition>,
    /// What it was last sent.
    sent: BTreeSet<TopicPartition>,
    /// The assignment in the last response (`None`: send it next time).
    answered: Option<BTreeSet<TopicPartition>>,
    last_seen: Duration,
    rebalance: Duration,
    revoke_deadline: Option<Duration>,
}

/// Knobs that break the coordinator on purpose (negative controls).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Kip848Faults {
    /// Give a partition to its new owner without waiting for the old one to revoke it.
    pub no_revocation_wait: bool,
}

/// One KIP-848 group.
#[derive(Debug)]
pub(crate) struct Kip848Group {
    pub group_epoch: i32,
    members: BTreeMap<String, Member>,
    target: BTreeMap<String, BTreeSet<TopicPartition>>,
    partitions: Vec<TopicPartition>,
    ids: BTreeMap<String, Uuid>,
    pub faults: Kip848Faults,
}

impl Kip848Group {
    pub(crate) fn new(partitions: Vec<TopicPartition>, ids: BTreeMap<String, Uuid>) -> Self {
        Self {
            group_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            partitions,
            ids,
            faults: Kip848Faults::default(),
        }
    }

    pub(crate) fn knows(&self, id: &str) -> bool {
        self.members.contains_key(id)
    }

    pub(crate) fn member_ids(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// A member's epoch and target, for the end-of-run check.
    pub(crate) fn settled(&self, id: &str) -> Option<(i32, Vec<TopicPartition>)> {
        let m = self.members.get(id)?;
        let target = self.target.get(id).cloned().unwrap_or_default();
        Some((m.epoch, target.into_iter().collect()))
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "group epoch {} members {:?}",
            self.group_epoch,
            self.members
                .iter()
                .map(|(id, m)| (id.clone(), m.epoch))
                .collect::<Vec<_>>()
        )
    }

    fn retarget(&mut self) {
        self.group_epoch += 1;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        self.target = ids.iter().map(|id| (id.clone(), BTreeSet::new())).collect();
        if ids.is_empty() {
            return;
        }
        for (i, tp) in self.partitions.iter().enumerate() {
            let owner = &ids[i % ids.len()];
            self.target
                .get_mut(owner)
                .expect("target of a member")
                .insert(tp.clone());
        }
    }

    fn remove(
        &mut self,
        id: &str,
        now: Duration,
        why: Removal,
        log: &mut Vec<(String, Duration, Removal)>,
    ) {
        if self.members.remove(id).is_some() {
            log.push((id.to_owned(), now, why));
            self.retarget();
        }
    }

    fn error(&self, e: ResponseError) -> ConsumerGroupHeartbeatResponse {
        ConsumerGroupHeartbeatResponse::default().with_error_code(e.code())
    }

    fn encode(&self, tps: &BTreeSet<TopicPartition>) -> Assignment {
        let mut by_topic: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for tp in tps {
            if let Some(id) = self.ids.get(&tp.topic) {
                by_topic.entry(*id).or_default().push(tp.partition);
            }
        }
        Assignment::default().with_topic_partitions(
            by_topic
                .into_iter()
                .map(|(id, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
    }

    fn decode(
        &self,
        tps: &[kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions],
    ) -> BTreeSet<TopicPartition> {
        let mut out = BTreeSet::new();
        for t in tps {
            if let Some((name, _)) = self.ids.iter().find(|(_, id)| **id == t.topic_id) {
                for p in &t.partitions {
                    out.insert(TopicPartition::new(name.as_str(), *p));
                }
            }
        }
        out
    }

    /// ConsumerGroupHeartbeat.
    pub(crate) fn heartbeat(
        &mut self,
        now: Duration,
        req: &ConsumerGroupHeartbeatRequest,
        removals: &mut Vec<(String, Duration, Removal)>,
    ) -> ConsumerGroupHeartbeatResponse {
        let id = req.member_id.to_string();
        let epoch = req.member_epoch;
        if epoch < 0 {
            self.remove(&id, now, Removal::Leave, removals);
            return ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(StrBytes::from_string(id)))
                .with_member_epoch(epoch);
        }
        if epoch == 0 {
            if self.members.contains_key(&id) {
                // Rejoining: what it owned is released.
                self.members.remove(&id);
            }
            self.members.insert(
                id.clone(),
                Member {
                    epoch: 0,
                    previous_epoch: 0,
                    owned: BTreeSet::new(),
                    sent: BTreeSet::new(),
                    answered: None,
                    last_seen: now,
                    rebalance: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                    revoke_deadline: None,
                },
            );
            self.retarget();
        }
        let reported = req.topic_partitions.as_ref().map(|t| self.decode(t));
        let Some(m) = self.members.get(&id) else {
            return self.error(ResponseError::UnknownMemberId);
        };
        if epoch != 0 && epoch != m.epoch {
            let tolerated = epoch == m.previous_epoch
                && reported.as_ref().is_some_and(|r| r.is_subset(&m.sent));
            if !tolerated {
                return self.error(ResponseError::FencedMemberEpoch);
            }
        }
        let target = self.target.get(&id).cloned().unwrap_or_default();
        // Partitions another member still owns or was sent.
        let blocked: BTreeSet<TopicPartition> = self
            .members
            .iter()
            .filter(|(other, _)| **other != id)
            .flat_map(|(_, o)| o.owned.union(&o.sent).cloned().collect::<Vec<_>>())
            .collect();
        let group_epoch = self.group_epoch;
        let no_wait = self.faults.no_revocation_wait;
        let m = self.members.get_mut(&id).expect("member");
        m.last_seen = now;
        // What a member owns is learnt from requests at its current epoch only: a late request
        // at the previous epoch (tolerated) must not bring back an older view.
        if let Some(r) = reported.filter(|_| epoch == m.epoch) {
            m.owned = r;
        }
        let to_revoke: BTreeSet<TopicPartition> = m.owned.difference(&target).cloned().collect();
        if !to_revoke.is_empty() {
            m.sent = m.owned.intersection(&target).cloned().collect();
            let deadline = *m.revoke_deadline.get_or_insert(now + m.rebalance);
            if now >= deadline {
                self.remove(&id, now, Removal::RebalanceTimeout, removals);
                return self.error(ResponseError::FencedMemberEpoch);
            }
        } else {
            m.revoke_deadline = None;
            m.sent = target
                .iter()
                .filter(|tp| no_wait || m.owned.contains(tp) || !blocked.contains(tp))
                .cloned()
                .collect();
            if m.epoch != group_epoch {
                m.previous_epoch = m.epoch;
                m.epoch = group_epoch;
            }
        }
        // As Kafka: the assignment only when it changed, or to a member that sent everything
        // (it joined or recovers from an error).
        let full = req.subscribed_topic_names.is_some();
        let changed = full || m.answered.as_ref() != Some(&m.sent);
        m.answered = Some(m.sent.clone());
        let (epoch, sent) = (m.epoch, m.sent.clone());
        ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(id)))
            .with_member_epoch(epoch)
            .with_heartbeat_interval_ms(HEARTBEAT.as_millis() as i32)
            .with_assignment(changed.then(|| self.encode(&sent)))
    }

    /// The epoch check of an OffsetCommit: `None` when accepted.
    pub(crate) fn check_commit(
        &mut self,
        now: Duration,
        req: &OffsetCommitRequest,
    ) -> Option<ResponseError> {
        match self.members.get_mut(req.member_id.as_str()) {
            None => Some(ResponseError::UnknownMemberId),
            Some(m) if m.epoch != req.generation_id_or_member_epoch => {
                Some(ResponseError::StaleMemberEpoch)
            }
            Some(m) => {
                m.last_seen = now;
                None
            }
        }
    }

    /// Session expiry.
    pub(crate) fn tick(&mut self, now: Duration, removals: &mut Vec<(String, Duration, Removal)>) {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| now > m.last_seen + SESSION)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id, now, Removal::SessionExpired, removals);
        }
    }

    /// A coordinator move: sessions restart.
    pub(crate) fn restart_sessions(&mut self, at: Duration) {
        for m in self.members.values_mut() {
            m.last_seen = at;
        }
    }
}
