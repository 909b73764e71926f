//! The `"cooperative-sticky"` assignor (KIP-429), compatible with the Java client's
//! `CooperativeStickyAssignor`.
//!
//! Sticky: members keep the partitions they owned (as their subscriptions report, with claims
//! of a stale generation discarded) as long as balance allows. Cooperative: a partition that
//! must move from one member to another is left out of *both* assignments in this rebalance; the
//! old owner revokes it, rejoins, and a follow-up rebalance gives it to the new owner.
//!
//! # How close to Java
//!
//! - When all members subscribe to the same topics, this is the algorithm of Java's
//!   `ConstrainedAssignmentBuilder` (without rack awareness): quotas `floor(P/N)` and
//!   `ceil(P/N)`, owned partitions kept up to the quota (owned lists ordered by partition then
//!   topic), the rest dealt round-robin to the under-quota members ordered by member id. Where
//!   Java's result depends on the iteration order of its `HashMap` of members (which members
//!   keep an extra partition when more own one than there are slots), we reproduce that order
//!   from the members' `String.hashCode`s and the order of the `members` slice, which should be
//!   the JoinGroup response's order, as Java's leader inserts them.
//! - When subscriptions differ, this is the algorithm of Java's `GeneralAssignmentBuilder`
//!   (without rack awareness), with Java's collection iteration orders reproduced where they
//!   decide ties (see the private `general` module).
//!   Both paths walk members in Java `HashMap` order, so pass `members` in JoinGroup response
//!   order. Checked against 200+ rounds computed by Java 4.1.0 (see
//!   `tests/data/assignors/README.md`); all are identical.
//! - Deliberate differences, for input Java mishandles: owned claims of partitions beyond a
//!   topic's partition count are dropped (Java keeps and even assigns them); a partition is
//!   never handed back to a stale previous owner that no longer subscribes to its topic; and
//!   the "highest generation seen" is computed per call (Java keeps it across calls on one
//!   assignor instance).
//!
//! The member generation comes from the subscription's `generation_id` (version 2+) or else
//! from the assignor's user data (a big-endian `i32`, as Java's `CooperativeStickyAssignor`
//! writes it).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;

use super::assignor::{
    empty_assignment, java_cmp, sort_lists, validate, AssignError, Assignor, GroupAssignment,
    Member, RebalanceProtocol,
};
use super::protocol::TopicPartition;

pub(crate) const DEFAULT_GENERATION: i32 = -1;

/// The cooperative sticky assignor (protocol name `"cooperative-sticky"`).
///
/// ```
/// use std::collections::BTreeMap;
/// use kafkit::state::group::{
///     Assignor, CooperativeStickyAssignor, Member, Subscription, TopicPartitions,
/// };
///
/// // "a" owned all four partitions; "b" joins. Two partitions must move to "b", so in this
/// // rebalance "a" keeps two and "b" gets nothing yet.
/// let mut owner = Subscription::new(["t"]);
/// owner.owned_partitions = vec![TopicPartitions { topic: "t".into(), partitions: vec![0, 1, 2, 3] }];
/// owner.generation_id = Some(1);
/// let members = [Member::new("a", owner), Member::new("b", Subscription::new(["t"]))];
/// let out = CooperativeStickyAssignor.assign(&members, &BTreeMap::from([("t".into(), 4)])).unwrap();
/// assert_eq!(out["a"].len(), 2);
/// assert!(out["b"].is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl CooperativeStickyAssignor {
    /// The user data a member of `generation` puts in its subscription, as Java does
    /// (a big-endian `i32`; Java members read the generation from it when the subscription is
    /// older than version 2).
    pub fn user_data(generation: i32) -> Bytes {
        Bytes::copy_from_slice(&generation.to_be_bytes())
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> Result<GroupAssignment, AssignError> {
        let counts = validate(members, partitions_per_topic)?;
        let mut out = empty_assignment(members);
        if members.is_empty() {
            return Ok(out);
        }
        // Only topics somebody subscribes to take part.
        let counts: BTreeMap<String, i32> = counts
            .into_iter()
            .filter(|(t, _)| {
                members
                    .iter()
                    .any(|m| m.subscription.topics.iter().any(|s| s == t))
            })
            .collect();
        let mut sorted: Vec<&Member> = members.iter().collect();
        sorted.sort_by(|a, b| java_cmp(&a.member_id, &b.member_id));
        let hash_order = java_hash_map_order(members);

        let owned = resolve_owned(&hash_order, &counts);
        let (assignment, transferring) = if all_subscriptions_equal(&sorted) {
            constrained(&hash_order, &counts, owned)
        } else {
            let max_generation = owned.max_generation;
            let a = super::general::assign(&hash_order, &counts, owned, max_generation);
            let t = transferring(&sorted, &a);
            (a, t)
        };
        for (member, list) in assignment {
            let list = list
                .into_iter()
                .filter(|tp| transferring.get(tp) != Some(&member))
                .collect();
            out.insert(member, list);
        }
        Ok(sort_lists(out))
    }
}

/// The members in the order a Java `HashMap<String, _>` filled in `members` order iterates
/// them: by bucket of the member id's `String.hashCode` (spread as `HashMap` does) under the
/// table size that many entries grow a default map to, then by insertion. Java's assignor walks
/// members in that order, and where the order decides (who keeps an extra partition), so does
/// ours when the leader passes members in JoinGroup response order, as Java's leader does.
fn java_hash_map_order(members: &[Member]) -> Vec<&Member> {
    let mut capacity: usize = 16;
    while members.len() > capacity / 4 * 3 {
        capacity = capacity.saturating_mul(2);
    }
    let mask = u32::try_from(capacity - 1).unwrap_or(u32::MAX);
    let bucket = |m: &Member| {
        let h = m
            .member_id
            .encode_utf16()
            .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)));
        (h ^ (h >> 16)) & mask
    };
    let mut out: Vec<&Member> = members.iter().collect();
    out.sort_by_key(|m| bucket(m));
    out
}

/// The generation a member's owned partitions belong to, as Java's `memberData` finds it:
/// the subscription's, else the user data's, else none (unreadable user data counts as -1).
pub(crate) fn member_data_generation(m: &Member) -> Option<i32> {
    // Java's `Subscription` turns negative generations into none.
    if let Some(g) = m.subscription.generation_id.filter(|g| *g >= 0) {
        return Some(g);
    }
    let b = m.subscription.user_data.as_ref()?;
    Some(match <[u8; 4]>::try_from(b.get(..4).unwrap_or_default()) {
        Ok(a) => i32::from_be_bytes(a),
        Err(_) => DEFAULT_GENERATION,
    })
}

fn member_generation(m: &Member) -> i32 {
    member_data_generation(m).unwrap_or(DEFAULT_GENERATION)
}

fn all_subscriptions_equal(members: &[&Member]) -> bool {
    let mut sets = members
        .iter()
        .map(|m| m.subscription.topics.iter().collect::<BTreeSet<_>>());
    match sets.next() {
        None => true,
        Some(first) => sets.all(|s| s == first),
    }
}

/// Owned partitions after conflict resolution, and the partitions claimed by several members of
/// one generation.
pub(crate) struct Owned {
    pub(crate) by_member: BTreeMap<String, Vec<TopicPartition>>,
    pub(crate) multiple_owners: HashSet<TopicPartition>,
    pub(crate) max_generation: i32,
}

fn resolve_owned(members: &[&Member], counts: &BTreeMap<String, i32>) -> Owned {
    let mut by_member: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    let mut multiple_owners = HashSet::new();
    // Java compares a claimant's generation with the *subscription* generation of the member
    // that claimed the partition first.
    let mut owner_of: HashMap<TopicPartition, (String, i32)> = HashMap::new();
    let mut max_generation = DEFAULT_GENERATION;
    for m in members {
        let generation = member_generation(m);
        max_generation = max_generation.max(generation);
        let subscription_generation = m
            .subscription
            .generation_id
            .filter(|g| *g >= 0)
            .unwrap_or(DEFAULT_GENERATION);
        by_member.entry(m.member_id.clone()).or_default();
        for tp in m.subscription.owned() {
            let valid = counts
                .get(&tp.topic)
                .is_some_and(|c| tp.partition >= 0 && tp.partition < *c);
            if !valid {
                continue;
            }
            match owner_of.get(&tp).cloned() {
                None => {
                    owner_of.insert(tp.clone(), (m.member_id.clone(), subscription_generation));
                    by_member.entry(m.member_id.clone()).or_default().push(tp);
                }
                Some((other, other_generation)) => {
                    if generation == other_generation {
                        multiple_owners.insert(tp.clone());
                        if let Some(list) = by_member.get_mut(&other) {
                            list.retain(|x| x != &tp);
                        }
                        owner_of.insert(tp, (m.member_id.clone(), subscription_generation));
                    } else if generation > other_generation {
                        if let Some(list) = by_member.get_mut(&other) {
                            list.retain(|x| x != &tp);
                        }
                        owner_of.insert(tp.clone(), (m.member_id.clone(), subscription_generation));
                        by_member.entry(m.member_id.clone()).or_default().push(tp);
                    }
                }
            }
        }
    }
    Owned {
        by_member,
        multiple_owners,
        max_generation,
    }
}

fn all_partitions(counts: &BTreeMap<String, i32>) -> Vec<TopicPartition> {
    let mut topics: Vec<&String> = counts.keys().collect();
    topics.sort_by(|a, b| java_cmp(a, b));
    topics
        .into_iter()
        .flat_map(|t| {
            (0..counts.get(t).copied().unwrap_or(0)).map(move |p| TopicPartition::new(t, p))
        })
        .collect()
}

type Transfers = HashMap<TopicPartition, String>;

/// Java's `ConstrainedAssignmentBuilder` without racks, members walked by member id.
fn constrained(
    members: &[&Member],
    counts: &BTreeMap<String, i32>,
    owned: Owned,
) -> (BTreeMap<String, Vec<TopicPartition>>, Transfers) {
    let n = members.len();
    let total: usize = counts
        .values()
        .map(|c| usize::try_from(*c).unwrap_or(0))
        .sum();
    let min_quota = total / n;
    let max_quota = total.div_ceil(n);
    let expected_over = total % n;
    let mut current_over = 0usize;

    let mut assignment: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    let mut assigned: HashSet<TopicPartition> = HashSet::new();
    let mut maybe_revoked: HashMap<TopicPartition, String> = HashMap::new();
    let mut under: Vec<String> = Vec::new();
    let mut exact: Vec<String> = Vec::new();

    for m in members {
        let id = &m.member_id;
        let mut mine: Vec<TopicPartition> = owned.by_member.get(id).cloned().unwrap_or_default();
        mine.sort_by(|a, b| {
            a.partition
                .cmp(&b.partition)
                .then_with(|| java_cmp(&a.topic, &b.topic))
        });
        mine.retain(|tp| !owned.multiple_owners.contains(tp));
        let list = assignment.entry(id.clone()).or_default();
        if mine.len() < min_quota {
            assigned.extend(mine.iter().cloned());
            list.extend(mine);
            under.push(id.clone());
        } else {
            let keep = if mine.len() >= max_quota && current_over < expected_over {
                current_over += 1;
                if current_over == expected_over {
                    exact.clear();
                }
                max_quota
            } else {
                if current_over < expected_over {
                    exact.push(id.clone());
                }
                min_quota
            };
            for tp in mine.split_off(keep) {
                maybe_revoked.insert(tp, id.clone());
            }
            assigned.extend(mine.iter().cloned());
            list.extend(mine);
        }
    }

    let unassigned: Vec<TopicPartition> = all_partitions(counts)
        .into_iter()
        .filter(|tp| !assigned.contains(tp))
        .collect();
    under.sort_by(|a, b| java_cmp(a, b));
    exact.sort_by(|a, b| java_cmp(a, b));

    let mut transfers = Transfers::new();
    // A cursor over `under` that supports removing the element last returned, like Java's
    // `LinkedList` iterator.
    let mut pos = 0usize;
    for tp in unassigned {
        let (consumer, from_under) = if pos < under.len() {
            pos += 1;
            (under[pos - 1].clone(), true)
        } else if under.is_empty() {
            if exact.is_empty() {
                // Java throws here; the quotas make it unreachable.
                tracing::error!(partition = ?tp, "no unfilled member left for partition");
                break;
            }
            (exact.remove(0), false)
        } else {
            pos = 1;
            (under[0].clone(), true)
        };
        let list = assignment.entry(consumer.clone()).or_default();
        list.push(tp.clone());
        let size = list.len();
        let moved = maybe_revoked.get(&tp).is_some_and(|prev| prev != &consumer);
        if moved || owned.multiple_owners.contains(&tp) {
            transfers.insert(tp, consumer.clone());
        }
        if size == min_quota && from_under {
            pos -= 1;
            under.remove(pos);
            exact.push(consumer);
        }
    }
    (assignment, transfers)
}

/// Java's `computePartitionsTransferringOwnership`: partitions newly given to a member that
/// some other member owned and now loses.
fn transferring(
    members: &[&Member],
    assignment: &BTreeMap<String, Vec<TopicPartition>>,
) -> Transfers {
    let mut added = Transfers::new();
    let mut revoked = HashSet::new();
    for m in members {
        let owned: HashSet<TopicPartition> = m.subscription.owned().into_iter().collect();
        let list = assignment
            .get(&m.member_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mine: HashSet<&TopicPartition> = list.iter().collect();
        for tp in list {
            if !owned.contains(tp) {
                added.insert(tp.clone(), m.member_id.clone());
            }
        }
        for tp in owned {
            if !mine.contains(&tp) {
                revoked.insert(tp);
            }
        }
    }
    added.retain(|tp, _| revoked.contains(tp));
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::group::protocol::{Subscription, TopicPartitions};

    fn owner(id: &str, partitions: Vec<i32>, generation: Option<i32>) -> Member {
        let mut s = Subscription::new(["t"]);
        s.owned_partitions = vec![TopicPartitions {
            topic: "t".into(),
            partitions,
        }];
        s.generation_id = generation;
        Member::new(id, s)
    }

    #[test]
    fn generation_falls_back_to_user_data() {
        let mut m = owner("a", vec![], None);
        assert_eq!(member_generation(&m), -1);
        m.subscription.user_data = Some(CooperativeStickyAssignor::user_data(5));
        assert_eq!(member_generation(&m), 5);
        m.subscription.user_data = Some(Bytes::from_static(&[1, 2]));
        assert_eq!(member_generation(&m), -1);
        m.subscription.generation_id = Some(9);
        assert_eq!(member_generation(&m), 9);
    }

    #[test]
    fn higher_generation_claim_wins_and_equal_claims_are_held_back() {
        let counts = BTreeMap::from([("t".to_string(), 4)]);
        // "a" claims 0 at generation 3, "b" at a stale generation 2: "a" keeps it.
        let members = [
            owner("a", vec![0, 1], Some(3)),
            owner("b", vec![0, 2, 3], Some(2)),
        ];
        let out = CooperativeStickyAssignor.assign(&members, &counts).unwrap();
        assert!(out["a"].contains(&TopicPartition::new("t", 0)));
        assert!(!out["b"].contains(&TopicPartition::new("t", 0)));
        // Both claim 0 in the same generation: nobody gets it this round.
        let members = [
            owner("a", vec![0, 1], Some(3)),
            owner("b", vec![0, 2], Some(3)),
        ];
        let out = CooperativeStickyAssignor.assign(&members, &counts).unwrap();
        assert!(out.values().flatten().all(|tp| tp.partition != 0));
    }

    #[test]
    fn java_hash_map_order_is_bucket_order() {
        // "member-e".hashCode() lands in an earlier bucket of a 16-slot table than "member-c".
        let ids = ["member-b", "member-c", "member-d", "member-e", "member-f"];
        let members: Vec<Member> = ids
            .iter()
            .map(|id| Member::new(*id, Subscription::new(["t"])))
            .collect();
        let order: Vec<&str> = java_hash_map_order(&members)
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        let pos = |id: &str| order.iter().position(|x| *x == id);
        assert!(pos("member-e") < pos("member-c"));
    }
}
