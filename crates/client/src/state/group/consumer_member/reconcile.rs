//! Target assignment reconciliation for a KIP-848 member: what the broker wants the member to
//! own (by topic id) against what it owns now (by topic id and name), revocations first.
//!
//! The broker only ever puts partitions in a member's assignment that are free to use, so the
//! member may start on the new ones as soon as it has given up the ones it loses. One
//! reconciliation is:
//!
//! 1. resolve the target's topic ids to names (partitions of topics not yet in the metadata
//!    wait, and a metadata refresh is asked for);
//! 2. owned partitions no longer in the (resolved) target are revoked: [`Reconciler::reconcile`]
//!    returns them, and nothing else happens until [`Reconciler::revocation_done`] covers them;
//! 3. then the partitions new to the member are added: it owns the resolved target, and the
//!    next heartbeat acknowledges it (its `TopicPartitions`).
//!
//! A target that arrives during a revocation replaces the pending one; it is reconciled when
//! the revocation is done.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::state::group::TopicPartition;
use crate::state::metadata::ClusterMetadata;

/// Resolves topic ids (as the broker names topics in assignments) to topic names.
///
/// Implemented for the client's [`ClusterMetadata`] and for plain maps (tests, caches).
pub trait TopicNames {
    /// The name of the topic with this id, if known.
    fn topic_name(&self, id: &Uuid) -> Option<String>;
}

impl TopicNames for ClusterMetadata {
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        let bytes = *id.as_bytes();
        self.topic_names()
            .into_iter()
            .find(|name| self.topic(name).is_some_and(|t| t.topic_id == bytes))
    }
}

impl TopicNames for BTreeMap<Uuid, String> {
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.get(id).cloned()
    }
}

impl TopicNames for std::collections::HashMap<Uuid, String> {
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.get(id).cloned()
    }
}

/// Partitions by topic id.
pub type IdPartitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// What one call to [`Reconciler::reconcile`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Partitions to give up before anything else (the member waits for
    /// [`Reconciler::revocation_done`]).
    pub revoked: Vec<TopicPartition>,
    /// Partitions the member owns from now on, in addition to what it kept.
    pub assigned: Vec<TopicPartition>,
    /// Whether to acknowledge the owned set in the next heartbeat: it changed, or the whole
    /// target is now owned.
    pub acknowledge: bool,
    /// Whether some of the target's topic ids are unknown (refresh the metadata, call again).
    pub unresolved: bool,
}

/// The member's owned partitions and the broker's latest target; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Reconciler {
    /// Owned partitions: topic id → (name, partitions).
    owned: BTreeMap<Uuid, (String, BTreeSet<i32>)>,
    /// The latest target not yet fully reconciled (`None`: nothing to do).
    target: Option<IdPartitions>,
    /// Partitions handed out as revoked and not yet confirmed.
    revoking: BTreeSet<(Uuid, i32)>,
}

impl Reconciler {
    /// Takes in a new target assignment (the `Assignment` of a heartbeat response).
    pub fn set_target(&mut self, target: IdPartitions) {
        let target = target.into_iter().filter(|(_, p)| !p.is_empty()).collect();
        self.target = Some(target);
    }

    /// Whether a target waits for reconciliation (possibly for metadata or a revocation).
    pub fn has_pending_target(&self) -> bool {
        self.target.is_some()
    }

    /// Whether a revocation handed out is not confirmed yet.
    pub fn is_revoking(&self) -> bool {
        !self.revoking.is_empty()
    }

    /// Runs one reconciliation step against the pending target (see the module docs).
    pub fn reconcile(&mut self, names: &dyn TopicNames) -> Step {
        let mut step = Step::default();
        if self.is_revoking() {
            return step;
        }
        let Some(target) = self.target.as_ref() else {
            return step;
        };
        // Resolve: owned topics keep the name they have; others come from the metadata.
        let mut resolved: BTreeMap<Uuid, (String, BTreeSet<i32>)> = BTreeMap::new();
        for (id, partitions) in target {
            let name = self
                .owned
                .get(id)
                .map(|(name, _)| name.clone())
                .or_else(|| names.topic_name(id));
            match name {
                Some(name) => {
                    resolved.insert(*id, (name, partitions.clone()));
                }
                None => step.unresolved = true,
            }
        }
        // Revoke what is owned and not in the target. A partition of an unresolved topic is
        // never owned (owned topics always resolve), so nothing is revoked for lack of a name.
        let mut revoking = BTreeSet::new();
        for (id, (name, partitions)) in &self.owned {
            let keep = resolved.get(id).map(|(_, p)| p);
            for p in partitions {
                if !keep.is_some_and(|k| k.contains(p)) {
                    revoking.insert((*id, *p));
                    step.revoked.push(TopicPartition::new(name.clone(), *p));
                }
            }
        }
        if !revoking.is_empty() {
            step.revoked.sort();
            self.revoking = revoking;
            return step;
        }
        for (id, (name, partitions)) in &resolved {
            let owned = self.owned.get(id).map(|(_, p)| p);
            for p in partitions {
                if !owned.is_some_and(|o| o.contains(p)) {
                    step.assigned.push(TopicPartition::new(name.clone(), *p));
                }
            }
        }
        step.assigned.sort();
        let changed = !step.assigned.is_empty() || self.owned != resolved;
        self.owned = resolved;
        if !step.unresolved {
            self.target = None;
        }
        step.acknowledge = changed || !step.unresolved;
        step
    }

    /// Confirms revoked partitions (by name). Returns whether every partition handed out as
    /// revoked is now confirmed, i.e. whether to call [`Reconciler::reconcile`] again.
    pub fn revocation_done(&mut self, partitions: &[TopicPartition]) -> bool {
        if self.revoking.is_empty() {
            return false;
        }
        for tp in partitions {
            let id = self
                .owned
                .iter()
                .find(|(_, (name, _))| *name == tp.topic)
                .map(|(id, _)| *id);
            if let Some(id) = id {
                if self.revoking.remove(&(id, tp.partition)) {
                    if let Some((_, owned)) = self.owned.get_mut(&id) {
                        owned.remove(&tp.partition);
                    }
                }
            }
        }
        self.owned.retain(|_, (_, p)| !p.is_empty());
        self.revoking.is_empty()
    }

    /// Forgets everything (fenced, left, fatal): returns what was owned and not already handed
    /// out as revoked, the partitions to report lost.
    pub fn clear(&mut self) -> Vec<TopicPartition> {
        let mut lost = Vec::new();
        for (id, (name, partitions)) in &self.owned {
            for p in partitions {
                if !self.revoking.contains(&(*id, *p)) {
                    lost.push(TopicPartition::new(name.clone(), *p));
                }
            }
        }
        lost.sort();
        *self = Reconciler::default();
        lost
    }

    /// The partitions owned now (including ones being revoked), by name, sorted.
    pub fn owned(&self) -> Vec<TopicPartition> {
        let mut all: Vec<TopicPartition> = self
            .owned
            .values()
            .flat_map(|(name, ps)| {
                ps.iter()
                    .map(move |p| TopicPartition::new(name.clone(), *p))
            })
            .collect();
        all.sort();
        all
    }

    /// The partitions owned now by topic id, as heartbeats report them.
    pub fn owned_ids(&self) -> IdPartitions {
        self.owned
            .iter()
            .map(|(id, (_, ps))| (*id, ps.clone()))
            .collect()
    }
}
