//! The `"range"` assignor, deciding exactly as the Java client's `RangeAssignor` without rack
//! information.
//!
//! Per topic, the subscribed members are ordered (static members first by `group.instance.id`,
//! then dynamic members by member id, both in Java string order) and the partitions are split
//! into contiguous ranges: with `n` partitions and `k` members, the first `n % k` members get
//! `n / k + 1` partitions and the others `n / k`.
//!
//! Java's rack-aware variant (KIP-881) needs the partitions' replica racks, which this interface
//! does not carry; without them Java falls back to exactly this.

use std::collections::BTreeMap;

use super::assignor::{
    empty_assignment, member_order, sort_lists, validate, AssignError, Assignor, GroupAssignment,
    Member,
};
use super::protocol::TopicPartition;

/// The range assignor (protocol name `"range"`).
///
/// ```
/// use std::collections::BTreeMap;
/// use kafkit::state::group::{Assignor, Member, RangeAssignor, Subscription, TopicPartition};
///
/// let members = [
///     Member::new("b", Subscription::new(["t"])),
///     Member::new("a", Subscription::new(["t"])),
/// ];
/// let out = RangeAssignor.assign(&members, &BTreeMap::from([("t".into(), 3)])).unwrap();
/// assert_eq!(out["a"], vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)]);
/// assert_eq!(out["b"], vec![TopicPartition::new("t", 2)]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> Result<GroupAssignment, AssignError> {
        let topics = validate(members, partitions_per_topic)?;
        let mut out = empty_assignment(members);
        for (topic, count) in &topics {
            let mut consumers: Vec<&Member> = members
                .iter()
                .filter(|m| m.subscription.topics.iter().any(|t| t == topic))
                .collect();
            if consumers.is_empty() {
                continue;
            }
            consumers.sort_by(|a, b| member_order(a, b));
            // Both fit: `consumers.len()` is at most `members.len()` and `count` is positive.
            let k = i64::try_from(consumers.len()).unwrap_or(i64::MAX);
            let n = i64::from(*count);
            let (per, extra) = (n / k, n % k);
            let mut next: i64 = 0;
            for (i, member) in (0i64..).zip(&consumers) {
                let take = per + i64::from(i < extra);
                let list = out.entry(member.member_id.clone()).or_default();
                for p in next..next + take {
                    if let Ok(p) = i32::try_from(p) {
                        list.push(TopicPartition::new(topic.clone(), p));
                    }
                }
                next += take;
            }
        }
        Ok(sort_lists(out))
    }
}
