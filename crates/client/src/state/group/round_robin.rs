//! The `"roundrobin"` assignor, deciding exactly as the Java client's `RoundRobinAssignor`.
//!
//! All partitions of all subscribed topics (topics in Java string order, partitions ascending)
//! are dealt out in turn to the members (ordered as for range: static members by
//! `group.instance.id` first, then dynamic members by member id); a member not subscribed to a
//! partition's topic is skipped, and the turn stays where the partition landed.

use std::collections::BTreeMap;

use super::assignor::{
    empty_assignment, java_cmp, member_order, sort_lists, validate, AssignError, Assignor,
    GroupAssignment, Member,
};
use super::protocol::TopicPartition;

/// The round-robin assignor (protocol name `"roundrobin"`).
///
/// ```
/// use std::collections::BTreeMap;
/// use kafkit::state::group::{Assignor, Member, RoundRobinAssignor, Subscription, TopicPartition};
///
/// let members = [
///     Member::new("a", Subscription::new(["t"])),
///     Member::new("b", Subscription::new(["t"])),
/// ];
/// let out = RoundRobinAssignor.assign(&members, &BTreeMap::from([("t".into(), 3)])).unwrap();
/// assert_eq!(out["a"], vec![TopicPartition::new("t", 0), TopicPartition::new("t", 2)]);
/// assert_eq!(out["b"], vec![TopicPartition::new("t", 1)]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> Result<GroupAssignment, AssignError> {
        let counts = validate(members, partitions_per_topic)?;
        let mut out = empty_assignment(members);
        let mut sorted: Vec<&Member> = members.iter().collect();
        sorted.sort_by(|a, b| member_order(a, b));
        let mut topics: Vec<&String> = counts
            .keys()
            .filter(|t| {
                members
                    .iter()
                    .any(|m| m.subscription.topics.iter().any(|s| s == *t))
            })
            .collect();
        topics.sort_by(|a, b| java_cmp(a, b));
        let mut turn = 0usize;
        for topic in topics {
            let count = counts.get(topic).copied().unwrap_or(0);
            for p in 0..count {
                // Some member subscribes to `topic`, so this finds one within a full circle.
                let Some(offset) = (0..sorted.len()).find(|i| {
                    sorted[(turn + i) % sorted.len()]
                        .subscription
                        .topics
                        .iter()
                        .any(|s| s == topic)
                }) else {
                    break;
                };
                let idx = (turn + offset) % sorted.len();
                out.entry(sorted[idx].member_id.clone())
                    .or_default()
                    .push(TopicPartition::new(topic.clone(), p));
                turn = idx + 1;
            }
        }
        Ok(sort_lists(out))
    }
}
