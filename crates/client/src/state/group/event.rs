//! What a group member tells the consumer, and the identity commits carry. Shared by the
//! classic and the KIP-848 members (re-exported by [`crate::io::group`]).

use super::protocol::TopicPartition;

/// What the member tells the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// Newly added partitions (incremental): fetch their committed offsets and start fetching.
    Assigned(Vec<TopicPartition>),
    /// Partitions to give up: stop fetching them, run the user's callback (which may commit),
    /// then call `GroupMember::revocation_done` ([`crate::io::group::GroupMember::revocation_done`]).
    Revoked(Vec<TopicPartition>),
    /// Partitions lost (fenced, session expired, unknown member): drop them without committing.
    Lost(Vec<TopicPartition>),
}

/// The member's identity in the group, as commits carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupGeneration {
    /// The classic generation id, or the KIP-848 member epoch.
    pub generation_id: i32,
    /// The member id the coordinator gave (classic) or the member chose (KIP-848).
    pub member_id: String,
    /// The classic protocol (assignor name) the group chose; `None` for KIP-848.
    pub protocol: Option<String>,
}
