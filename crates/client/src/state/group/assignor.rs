//! The assignor interface a group leader runs over the members' subscriptions.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;

use super::protocol::{Assignment, ProtocolError, Subscription, TopicPartition, HIGHEST_VERSION};

/// The result of an assignment: every member id mapped to its partitions, sorted by topic then
/// partition. Members that get nothing map to an empty list.
pub type GroupAssignment = BTreeMap<String, Vec<TopicPartition>>;

/// The rebalance protocols of KIP-429 an assignor supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RebalanceProtocol {
    /// Members revoke everything before rejoining.
    Eager,
    /// Members keep their partitions across rebalances and revoke only what moves.
    Cooperative,
}

/// One group member, as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id`, for static members.
    pub group_instance_id: Option<String>,
    /// Its decoded subscription.
    pub subscription: Subscription,
}

impl Member {
    /// A dynamic member (no `group.instance.id`).
    pub fn new(member_id: impl Into<String>, subscription: Subscription) -> Self {
        Self {
            member_id: member_id.into(),
            group_instance_id: None,
            subscription,
        }
    }

    /// A member as a JoinGroup response lists it: its id, instance id and protocol metadata
    /// (an encoded [`Subscription`], decoded here with the bounded decoder; it comes from
    /// another client, so it may be anything).
    ///
    /// ```
    /// use kafkit::state::group::{Member, Subscription};
    ///
    /// let metadata = Subscription::new(["t"]).encode(3).unwrap();
    /// let m = Member::from_join_metadata("m-1", None, &metadata).unwrap();
    /// assert_eq!(m.subscription.topics, ["t"]);
    /// assert!(Member::from_join_metadata("m-2", None, &[0, 3, 0x7f]).is_err());
    /// ```
    pub fn from_join_metadata(
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
        metadata: &[u8],
    ) -> Result<Self, ProtocolError> {
        let (_, subscription) = Subscription::decode(metadata)?;
        Ok(Self {
            member_id: member_id.into(),
            group_instance_id,
            subscription,
        })
    }

    /// The same member with a `group.instance.id`.
    pub fn with_instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.group_instance_id = Some(instance_id.into());
        self
    }
}

/// Why an assignment could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssignError {
    /// Two members carry the same member id.
    #[error("duplicate member id {0:?}")]
    DuplicateMember(String),
    /// A topic's partition count is negative.
    #[error("topic {topic:?} has a negative partition count {count}")]
    NegativePartitionCount {
        /// The topic.
        topic: String,
        /// Its count.
        count: i32,
    },
}

/// A partition assignor: the strategy named in JoinGroup's protocols.
///
/// `partitions_per_topic` holds the partition count of every subscribed topic the leader has
/// metadata for; topics missing from it (or with zero partitions) are skipped, as Java does.
pub trait Assignor: Send + Sync {
    /// The protocol name (`"range"`, `"roundrobin"`, `"cooperative-sticky"`).
    fn name(&self) -> &'static str;

    /// The rebalance protocols it supports, preferred first.
    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    /// Assigns the partitions among `members`.
    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> Result<GroupAssignment, AssignError>;
}

/// Encodes every member's assignment for SyncGroup, at the highest version (as Java's leader
/// does), without user data.
///
/// ```
/// use kafkit::state::group::{encode_group_assignment, Assignment, GroupAssignment, TopicPartition};
///
/// let mut a = GroupAssignment::new();
/// a.insert("m-1".into(), vec![TopicPartition::new("t", 0)]);
/// let encoded = encode_group_assignment(&a).unwrap();
/// let (_, back) = Assignment::decode(&encoded["m-1"]).unwrap();
/// assert_eq!(back.partitions(), a["m-1"]);
/// ```
pub fn encode_group_assignment(
    assignment: &GroupAssignment,
) -> Result<BTreeMap<String, Bytes>, ProtocolError> {
    assignment
        .iter()
        .map(|(member, partitions)| {
            Assignment::from_partitions(partitions)
                .encode(HIGHEST_VERSION)
                .map(|bytes| (member.clone(), bytes))
        })
        .collect()
}

/// Checks the inputs every assignor shares and returns the topics with at least one partition.
pub(crate) fn validate(
    members: &[Member],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Result<BTreeMap<String, i32>, AssignError> {
    let mut seen = HashSet::new();
    for m in members {
        if !seen.insert(m.member_id.as_str()) {
            return Err(AssignError::DuplicateMember(m.member_id.clone()));
        }
    }
    let mut out = BTreeMap::new();
    for (topic, count) in partitions_per_topic {
        if *count < 0 {
            return Err(AssignError::NegativePartitionCount {
                topic: topic.clone(),
                count: *count,
            });
        }
        if *count > 0 {
            out.insert(topic.clone(), *count);
        }
    }
    Ok(out)
}

/// An empty assignment for every member.
pub(crate) fn empty_assignment(members: &[Member]) -> GroupAssignment {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

/// Compares strings as Java's `String.compareTo` does (by UTF-16 code units), which differs
/// from Rust's byte order only for characters outside the Basic Multilingual Plane.
pub(crate) fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Orders members as Java's `MemberInfo.compareTo`: static members first, by instance id, then
/// dynamic members by member id.
pub(crate) fn member_order(a: &Member, b: &Member) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => java_cmp(&a.member_id, &b.member_id),
    }
}

/// Sorts every member's partitions by topic then partition.
pub(crate) fn sort_lists(mut assignment: GroupAssignment) -> GroupAssignment {
    for list in assignment.values_mut() {
        list.sort();
    }
    assignment
}
