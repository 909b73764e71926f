//! OffsetCommit and OffsetFetch without I/O: building the requests for a member (or for an
//! admin client) at a negotiated version, and reading the responses into typed results.
//!
//! Used by the classic group member, the KIP-848 member and the admin client alike; the I/O
//! (coordinator lookup, retries until a deadline) is in [`crate::io::coordinator`].
//!
//! Versions: OffsetCommit v2–9, OffsetFetch v1–9 (v8+ batches several groups in one request;
//! v7+ carries `require_stable`; v9+ carries a KIP-848 member's id and epoch).
//!
//! ```
//! use std::collections::BTreeMap;
//! use kafkit::state::group::commit::{offset_commit_request, MemberIdentity};
//! use kafkit::state::group::{OffsetAndMetadata, TopicPartition};
//!
//! let offsets = BTreeMap::from([
//!     (TopicPartition::new("orders", 0), OffsetAndMetadata::new(42).with_metadata("m")),
//!     (TopicPartition::new("orders", 1), OffsetAndMetadata::new(7).with_leader_epoch(3)),
//! ]);
//! let request = offset_commit_request("billing", &MemberIdentity::admin(), &offsets, 9)?;
//! assert_eq!(request.generation_id_or_member_epoch, -1);
//! assert_eq!(request.topics.len(), 1);
//! assert_eq!(request.topics[0].partitions.len(), 2);
//! # Ok::<(), kafkit::state::group::commit::CommitError>(())
//! ```

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{OffsetAndMetadata, TopicPartition};
use crate::error::Error;

/// Who commits: a group member's identity as OffsetCommit carries it.
///
/// A classic member sends its generation id and member id; a KIP-848 member its member epoch
/// and member id; an admin client (or a consumer without a group membership, manual assign)
/// sends [`MemberIdentity::admin`]: generation -1 and an empty member id, which the broker
/// accepts only while the group has no active members.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberIdentity {
    /// The classic generation id, or the KIP-848 member epoch; -1 for none.
    pub generation_id_or_member_epoch: i32,
    /// The member id the coordinator gave (empty for none).
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
}

impl MemberIdentity {
    /// No membership: generation -1, empty member id (what admin tools and manually assigned
    /// consumers commit with).
    pub fn admin() -> MemberIdentity {
        MemberIdentity {
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    /// A member's identity.
    pub fn member(
        generation_id_or_member_epoch: i32,
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
    ) -> MemberIdentity {
        MemberIdentity {
            generation_id_or_member_epoch,
            member_id: member_id.into(),
            group_instance_id,
        }
    }
}

/// Why committing or fetching offsets failed.
///
/// [`CommitError::is_retriable`] says whether sending the same request again can succeed;
/// [`CommitError::needs_coordinator_lookup`] whether the coordinator must be found again
/// first. Membership errors (rebalance, generation, member id, fencing, stale epoch) are not
/// retriable as such: the member must rejoin (or wait for its next heartbeat) first.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The group is rebalancing: commit after rejoining (`REBALANCE_IN_PROGRESS`).
    #[error("the group is rebalancing (REBALANCE_IN_PROGRESS)")]
    RebalanceInProgress,
    /// The member's generation is not the group's (`ILLEGAL_GENERATION`): it must rejoin.
    #[error("the member's generation is stale (ILLEGAL_GENERATION)")]
    IllegalGeneration,
    /// The coordinator does not know the member (`UNKNOWN_MEMBER_ID`), or the group has
    /// active members while committing without a membership.
    #[error("the coordinator does not know the member (UNKNOWN_MEMBER_ID)")]
    UnknownMemberId,
    /// Another instance with the same `group.instance.id` took over (`FENCED_INSTANCE_ID`).
    #[error("fenced by another instance with the same group.instance.id (FENCED_INSTANCE_ID)")]
    FencedInstanceId,
    /// A KIP-848 member committed with an older member epoch (`STALE_MEMBER_EPOCH`).
    #[error("the member epoch is stale (STALE_MEMBER_EPOCH)")]
    StaleMemberEpoch,
    /// The broker asked is not (or no longer) the group's coordinator (`NOT_COORDINATOR`).
    #[error("the broker is not the group's coordinator (NOT_COORDINATOR)")]
    NotCoordinator,
    /// The coordinator is still loading the group's offsets (`COORDINATOR_LOAD_IN_PROGRESS`).
    #[error("the coordinator is loading the group (COORDINATOR_LOAD_IN_PROGRESS)")]
    CoordinatorLoadInProgress,
    /// No coordinator is available for the group (`COORDINATOR_NOT_AVAILABLE`).
    #[error("no coordinator available (COORDINATOR_NOT_AVAILABLE)")]
    CoordinatorUnavailable,
    /// A transaction has uncommitted offsets for the partition (`UNSTABLE_OFFSET_COMMIT`,
    /// OffsetFetch with `require_stable`): retry later.
    #[error(
        "{partition:?} has an unstable (transactional) commit pending (UNSTABLE_OFFSET_COMMIT)"
    )]
    UnstableOffsetCommit {
        /// The partition.
        partition: TopicPartition,
    },
    /// The commit's metadata is longer than the broker's `offset.metadata.max.bytes`.
    #[error("commit metadata for {partition:?} is too large (OFFSET_METADATA_TOO_LARGE)")]
    OffsetMetadataTooLarge {
        /// The partition.
        partition: TopicPartition,
    },
    /// The topic or partition does not exist (`UNKNOWN_TOPIC_OR_PARTITION`).
    #[error("{partition:?} does not exist (UNKNOWN_TOPIC_OR_PARTITION)")]
    UnknownTopicOrPartition {
        /// The partition.
        partition: TopicPartition,
    },
    /// Not allowed to use the group (`GROUP_AUTHORIZATION_FAILED`).
    #[error("not authorized for the group (GROUP_AUTHORIZATION_FAILED)")]
    GroupAuthorizationFailed,
    /// Not allowed to use the topic (`TOPIC_AUTHORIZATION_FAILED`).
    #[error("not authorized for {partition:?} (TOPIC_AUTHORIZATION_FAILED)")]
    TopicAuthorizationFailed {
        /// The partition.
        partition: TopicPartition,
    },
    /// The group has active members, so offsets cannot be committed without a membership
    /// (admin commits and resets need an empty group: stop its consumers first).
    #[error("group {group} is not empty{}: stop its consumers before changing its offsets", state.as_deref().map(|s| format!(" (state {s})")).unwrap_or_default())]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// Its state, when known (`Stable`, `PreparingRebalance`, …).
        state: Option<String>,
    },
    /// The response left out a partition that was asked for.
    #[error("the response has no result for {partition:?}")]
    MissingPartition {
        /// The partition.
        partition: TopicPartition,
    },
    /// The request cannot be expressed at the negotiated version (e.g. several groups below
    /// OffsetFetch v8, all partitions at OffsetFetch v1).
    #[error("OffsetFetch v{version} cannot carry this request: {reason}")]
    UnsupportedVersion {
        /// The negotiated version.
        version: i16,
        /// What it lacks.
        reason: &'static str,
    },
    /// Another error code from the broker.
    #[error("the broker answered {code:?} (error code {n})", code = .0, n = .0.code())]
    Broker(ResponseError),
    /// The request could not be sent or its response read (connection, timeout, decoding).
    #[error(transparent)]
    Client(#[from] Error),
}

impl CommitError {
    /// The typed error for a response error code, with the partition it came with (if any).
    pub fn from_code(code: ResponseError, partition: Option<&TopicPartition>) -> CommitError {
        let tp = || {
            partition
                .cloned()
                .unwrap_or_else(|| TopicPartition::new("", -1))
        };
        match code {
            ResponseError::RebalanceInProgress => CommitError::RebalanceInProgress,
            ResponseError::IllegalGeneration => CommitError::IllegalGeneration,
            ResponseError::UnknownMemberId => CommitError::UnknownMemberId,
            ResponseError::FencedInstanceId => CommitError::FencedInstanceId,
            ResponseError::StaleMemberEpoch => CommitError::StaleMemberEpoch,
            ResponseError::NotCoordinator => CommitError::NotCoordinator,
            ResponseError::CoordinatorLoadInProgress => CommitError::CoordinatorLoadInProgress,
            ResponseError::CoordinatorNotAvailable => CommitError::CoordinatorUnavailable,
            ResponseError::UnstableOffsetCommit => {
                CommitError::UnstableOffsetCommit { partition: tp() }
            }
            ResponseError::OffsetMetadataTooLarge => {
                CommitError::OffsetMetadataTooLarge { partition: tp() }
            }
            ResponseError::UnknownTopicOrPartition => {
                CommitError::UnknownTopicOrPartition { partition: tp() }
            }
            ResponseError::GroupAuthorizationFailed => CommitError::GroupAuthorizationFailed,
            ResponseError::TopicAuthorizationFailed => {
                CommitError::TopicAuthorizationFailed { partition: tp() }
            }
            other => CommitError::Broker(other),
        }
    }

    /// Whether sending the same request again (after a backoff, and a coordinator lookup when
    /// [`CommitError::needs_coordinator_lookup`]) can succeed.
    ///
    /// ```
    /// use kafkit::state::group::commit::CommitError;
    ///
    /// assert!(CommitError::NotCoordinator.is_retriable());
    /// assert!(CommitError::CoordinatorLoadInProgress.is_retriable());
    /// assert!(!CommitError::RebalanceInProgress.is_retriable());
    /// assert!(!CommitError::FencedInstanceId.is_retriable());
    /// ```
    pub fn is_retriable(&self) -> bool {
        match self {
            CommitError::NotCoordinator
            | CommitError::CoordinatorLoadInProgress
            | CommitError::CoordinatorUnavailable
            | CommitError::UnstableOffsetCommit { .. }
            | CommitError::UnknownTopicOrPartition { .. } => true,
            CommitError::Broker(code) => code.is_retriable(),
            CommitError::Client(err) => err.is_retriable(),
            _ => false,
        }
    }

    /// Whether the coordinator must be looked up again before retrying: it moved, is not
    /// available, or the connection to it failed.
    pub fn needs_coordinator_lookup(&self) -> bool {
        match self {
            CommitError::NotCoordinator | CommitError::CoordinatorUnavailable => true,
            CommitError::Broker(ResponseError::RequestTimedOut) => true,
            CommitError::Client(err) => err.is_retriable(),
            _ => false,
        }
    }

    /// Whether this error says the member must rejoin the group (its membership is gone or
    /// stale) before it can commit.
    pub fn is_membership_error(&self) -> bool {
        matches!(
            self,
            CommitError::RebalanceInProgress
                | CommitError::IllegalGeneration
                | CommitError::UnknownMemberId
                | CommitError::FencedInstanceId
                | CommitError::StaleMemberEpoch
        )
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// The OffsetCommit request committing `offsets` for `group_id` as `identity`, at `version`
/// (2–9). Fields a version lacks are left out: the leader epoch below v6, the group instance
/// id below v7 (a static member's commit then fails if the broker needs it).
///
/// Fails with [`CommitError::UnsupportedVersion`] outside 2–9.
pub fn offset_commit_request(
    group_id: &str,
    identity: &MemberIdentity,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    version: i16,
) -> Result<OffsetCommitRequest, CommitError> {
    if !(2..=9).contains(&version) {
        return Err(CommitError::UnsupportedVersion {
            version,
            reason: "kafkit speaks OffsetCommit v2-9",
        });
    }
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (tp, offset) in offsets {
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(tp.partition)
            .with_committed_offset(offset.offset)
            .with_committed_leader_epoch(offset.leader_epoch.unwrap_or(-1))
            .with_committed_metadata(offset.metadata.as_deref().map(str_bytes));
        // BTreeMap order: partitions of one topic are adjacent.
        match topics.last_mut() {
            Some(last) if last.name.0.as_str() == tp.topic => last.partitions.push(partition),
            _ => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(str_bytes(&tp.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let group_instance_id = if version >= 7 {
        identity.group_instance_id.as_deref().map(str_bytes)
    } else {
        None
    };
    Ok(OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group_id)))
        .with_generation_id_or_member_epoch(identity.generation_id_or_member_epoch)
        .with_member_id(str_bytes(&identity.member_id))
        .with_group_instance_id(group_instance_id)
        .with_retention_time_ms(-1)
        .with_topics(topics))
}

/// The result of each partition of an OffsetCommit response.
pub fn commit_results(
    response: &OffsetCommitResponse,
) -> BTreeMap<TopicPartition, Result<(), CommitError>> {
    let mut out = BTreeMap::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
            let result = match ResponseError::try_from_code(p.error_code) {
                None => Ok(()),
                Some(code) => Err(CommitError::from_code(code, Some(&tp))),
            };
            out.insert(tp, result);
        }
    }
    out
}

/// The outcome of a whole commit of `requested`: `Ok` when every partition was committed;
/// otherwise the error to act on, non-retriable errors first (they decide), then the ones that
/// need a coordinator lookup, then the rest; a partition missing from the response is
/// [`CommitError::MissingPartition`].
///
/// ```
/// use std::collections::BTreeMap;
/// use kafka_protocol::messages::offset_commit_response::{
///     OffsetCommitResponsePartition, OffsetCommitResponseTopic,
/// };
/// use kafka_protocol::messages::{OffsetCommitResponse, TopicName};
/// use kafka_protocol::protocol::StrBytes;
/// use kafkit::state::group::commit::{commit_outcome, CommitError};
/// use kafkit::state::group::{OffsetAndMetadata, TopicPartition};
///
/// let requested = BTreeMap::from([(TopicPartition::new("t", 0), OffsetAndMetadata::new(1))]);
/// let response = OffsetCommitResponse::default().with_topics(vec![
///     OffsetCommitResponseTopic::default()
///         .with_name(TopicName(StrBytes::from_static_str("t")))
///         .with_partitions(vec![OffsetCommitResponsePartition::default()
///             .with_partition_index(0)
///             .with_error_code(27)]), // REBALANCE_IN_PROGRESS
/// ]);
/// let err = commit_outcome(&response, &requested).unwrap_err();
/// assert!(matches!(err, CommitError::RebalanceInProgress));
/// ```
pub fn commit_outcome(
    response: &OffsetCommitResponse,
    requested: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> Result<(), CommitError> {
    let mut results = commit_results(response);
    let mut errors = Vec::new();
    for tp in requested.keys() {
        match results.remove(tp) {
            Some(Ok(())) => {}
            Some(Err(err)) => errors.push(err),
            None => errors.push(CommitError::MissingPartition {
                partition: tp.clone(),
            }),
        }
    }
    match pick_error(errors) {
        None => Ok(()),
        Some(err) => Err(err),
    }
}

/// The error that decides among several: a non-retriable one first, then one that needs a
/// coordinator lookup, then any.
fn pick_error(mut errors: Vec<CommitError>) -> Option<CommitError> {
    if let Some(i) = errors.iter().position(|e| !e.is_retriable()) {
        return Some(errors.swap_remove(i));
    }
    if let Some(i) = errors
        .iter()
        .position(CommitError::needs_coordinator_lookup)
    {
        return Some(errors.swap_remove(i));
    }
    errors.into_iter().next()
}

/// One group's part of an OffsetFetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchQuery {
    /// The group.
    pub group_id: String,
    /// The partitions to read; `None`: every partition the group has offsets for (v2+).
    pub partitions: Option<Vec<TopicPartition>>,
    /// A KIP-848 member's identity (its member id and epoch are sent from v9; the broker then
    /// checks them). `None` for classic members and admin clients.
    pub member: Option<MemberIdentity>,
}

impl OffsetFetchQuery {
    /// Every committed offset of a group (admin).
    pub fn all(group_id: impl Into<String>) -> OffsetFetchQuery {
        OffsetFetchQuery {
            group_id: group_id.into(),
            partitions: None,
            member: None,
        }
    }

    /// The committed offsets of `partitions`.
    pub fn partitions(group_id: impl Into<String>, partitions: &[TopicPartition]) -> Self {
        OffsetFetchQuery {
            group_id: group_id.into(),
            partitions: Some(partitions.to_vec()),
            member: None,
        }
    }

    /// Sends a KIP-848 member's id and epoch (OffsetFetch v9+).
    pub fn with_member(mut self, member: MemberIdentity) -> Self {
        self.member = Some(member);
        self
    }
}

/// Groups partitions by topic, in order.
fn by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        out.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    for v in out.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    out
}

/// The OffsetFetch request for `queries` at `version` (1–9).
///
/// From v8 every query is one entry of `groups` (one request for many groups); below v8 only
/// one query fits. `require_stable` (v7+; ignored below) makes the broker answer
/// `UNSTABLE_OFFSET_COMMIT` while a transaction has pending offsets for a partition (the Java
/// consumer always asks for it; its admin client only when told to).
///
/// ```
/// use kafkit::state::group::commit::{offset_fetch_request, OffsetFetchQuery};
/// use kafkit::state::group::TopicPartition;
///
/// let queries = [
///     OffsetFetchQuery::all("billing"),
///     OffsetFetchQuery::partitions("audit", &[TopicPartition::new("orders", 2)]),
/// ];
/// let request = offset_fetch_request(&queries, true, 9)?;
/// assert_eq!(request.groups.len(), 2);
/// assert!(request.groups[0].topics.is_none()); // all partitions
/// // Below v8 one group per request:
/// assert!(offset_fetch_request(&queries, true, 7).is_err());
/// # Ok::<(), kafkit::state::group::commit::CommitError>(())
/// ```
pub fn offset_fetch_request(
    queries: &[OffsetFetchQuery],
    require_stable: bool,
    version: i16,
) -> Result<OffsetFetchRequest, CommitError> {
    let unsupported = |reason| CommitError::UnsupportedVersion { version, reason };
    if !(1..=9).contains(&version) {
        return Err(unsupported("kafkit speaks OffsetFetch v1-9"));
    }
    let require_stable = require_stable && version >= 7;
    if version >= 8 {
        let groups = queries
            .iter()
            .map(|q| {
                let topics = q.partitions.as_ref().map(|parts| {
                    by_topic(parts)
                        .into_iter()
                        .map(|(topic, indexes)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(str_bytes(topic)))
                                .with_partition_indexes(indexes)
                        })
                        .collect()
                });
                let (member_id, member_epoch) = match (&q.member, version >= 9) {
                    (Some(m), true) => (
                        Some(str_bytes(&m.member_id)),
                        m.generation_id_or_member_epoch,
                    ),
                    _ => (None, -1),
                };
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(str_bytes(&q.group_id)))
                    .with_member_id(member_id)
                    .with_member_epoch(member_epoch)
                    .with_topics(topics)
            })
            .collect();
        return Ok(OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::default()))
            .with_topics(Some(Vec::new()))
            .with_groups(groups)
            .with_require_stable(require_stable));
    }
    let [query] = queries else {
        return Err(unsupported("one group per request below v8"));
    };
    let topics = match &query.partitions {
        Some(parts) => Some(
            by_topic(parts)
                .into_iter()
                .map(|(topic, indexes)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partition_indexes(indexes)
                })
                .collect(),
        ),
        None if version >= 2 => None,
        None => return Err(unsupported("v1 cannot ask for all partitions")),
    };
    Ok(OffsetFetchRequest::default()
        .with_group_id(GroupId(str_bytes(&query.group_id)))
        .with_topics(topics)
        .with_groups(Vec::new())
        .with_require_stable(require_stable))
}

/// Committed offsets of one group: `None` for a partition the group has no offset for.
pub type CommittedOffsets = BTreeMap<TopicPartition, Option<OffsetAndMetadata>>;

fn committed(
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&StrBytes>,
) -> Option<OffsetAndMetadata> {
    (offset >= 0).then(|| OffsetAndMetadata {
        offset,
        leader_epoch: (leader_epoch >= 0).then_some(leader_epoch),
        // The broker stores a null metadata as "": both read as `None`.
        metadata: metadata
            .filter(|m| !m.is_empty())
            .map(|m| m.as_str().to_owned()),
    })
}

/// Reads an OffsetFetch response into each group's committed offsets (by group id), for the
/// `queries` the request was built from.
///
/// A group whose answer carries an error (group-level, or any partition's) gets that error,
/// chosen as [`commit_outcome`] chooses; a partition asked for but absent from the answer reads
/// as `None`. Offset -1 means "nothing committed" and reads as `None`; empty metadata reads as
/// `None` (the broker stores a null one as ""). Below v8 the answer is
/// the single query's.
pub fn fetch_results(
    response: &OffsetFetchResponse,
    queries: &[OffsetFetchQuery],
    version: i16,
) -> BTreeMap<String, Result<CommittedOffsets, CommitError>> {
    let mut out = BTreeMap::new();
    if version >= 8 {
        for group in &response.groups {
            let mut offsets = CommittedOffsets::new();
            let mut errors = Vec::new();
            if let Some(code) = ResponseError::try_from_code(group.error_code) {
                errors.push(CommitError::from_code(code, None));
            }
            for topic in &group.topics {
                for p in &topic.partitions {
                    let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                    match ResponseError::try_from_code(p.error_code) {
                        Some(code) => errors.push(CommitError::from_code(code, Some(&tp))),
                        None => {
                            let c = committed(
                                p.committed_offset,
                                p.committed_leader_epoch,
                                p.metadata.as_ref(),
                            );
                            offsets.insert(tp, c);
                        }
                    }
                }
            }
            out.insert(group.group_id.0.as_str().to_owned(), (offsets, errors));
        }
    } else if let Some(query) = queries.first() {
        let mut offsets = CommittedOffsets::new();
        let mut errors = Vec::new();
        if let Some(code) = ResponseError::try_from_code(response.error_code) {
            errors.push(CommitError::from_code(code, None));
        }
        for topic in &response.topics {
            for p in &topic.partitions {
                let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                match ResponseError::try_from_code(p.error_code) {
                    Some(code) => errors.push(CommitError::from_code(code, Some(&tp))),
                    None => {
                        let c = committed(
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.metadata.as_ref(),
                        );
                        offsets.insert(tp, c);
                    }
                }
            }
        }
        out.insert(query.group_id.clone(), (offsets, errors));
    }
    let mut results = BTreeMap::new();
    for query in queries {
        let result = match out.remove(&query.group_id) {
            None => Err(CommitError::Broker(ResponseError::UnknownServerError)),
            Some((mut offsets, errors)) => match pick_error(errors) {
                Some(err) => Err(err),
                None => {
                    if let Some(parts) = &query.partitions {
                        for tp in parts {
                            offsets.entry(tp.clone()).or_insert(None);
                        }
                        offsets.retain(|tp, _| parts.contains(tp));
                    }
                    Ok(offsets)
                }
            },
        };
        results.insert(query.group_id.clone(), result);
    }
    results
}

/// Every OffsetCommit and OffsetFetch kafkit builds, for [`crate::request_versions`]: admin,
/// classic, KIP-848 and static identities, with metadata and leader epochs; one group, several
/// groups (v8+; below, the builder refuses and the caller sends one request per group), all
/// partitions or some, with and without `require_stable`.
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    use kafka_protocol::messages::ApiKey;
    let offsets = BTreeMap::from([
        (TopicPartition::new("t", 0), OffsetAndMetadata::new(42)),
        (
            TopicPartition::new("t", 1),
            OffsetAndMetadata::new(7)
                .with_leader_epoch(3)
                .with_metadata("note"),
        ),
        (TopicPartition::new("u", 0), OffsetAndMetadata::new(0)),
    ]);
    let identities = [
        ("admin", MemberIdentity::admin()),
        ("classic", MemberIdentity::member(5, "m-1", None)),
        ("KIP-848", MemberIdentity::member(12, "uuid-member", None)),
        (
            "static",
            MemberIdentity::member(5, "m-1", Some("instance-1".into())),
        ),
    ];
    for v in Encoder::versions(ApiKey::OffsetCommit) {
        for (name, identity) in &identities {
            match offset_commit_request("g", identity, &offsets, v) {
                Ok(r) => enc.check(&format!("OffsetCommit {name}"), v, &r),
                Err(e) => panic!("OffsetCommit {name} v{v} refused: {e}"),
            }
        }
    }
    let some = [TopicPartition::new("t", 0), TopicPartition::new("u", 3)];
    let member = MemberIdentity::member(12, "uuid-member", None);
    let single = [
        ("all partitions", vec![OffsetFetchQuery::all("g")]),
        (
            "some partitions",
            vec![OffsetFetchQuery::partitions("g", &some)],
        ),
        (
            "member",
            vec![OffsetFetchQuery::partitions("g", &some).with_member(member.clone())],
        ),
    ];
    let several = vec![
        OffsetFetchQuery::all("g"),
        OffsetFetchQuery::partitions("h", &some),
    ];
    for v in Encoder::versions(ApiKey::OffsetFetch) {
        for stable in [false, true] {
            for (name, queries) in &single {
                match offset_fetch_request(queries, stable, v) {
                    Ok(r) => enc.check(&format!("OffsetFetch {name} stable={stable}"), v, &r),
                    // v1 has no "all partitions" (null topics): refused, typed.
                    Err(_) if v < 2 && *name == "all partitions" => {
                        enc.refused(ApiKey::OffsetFetch)
                    }
                    Err(e) => panic!("OffsetFetch {name} v{v} refused: {e}"),
                }
            }
            match offset_fetch_request(&several, stable, v) {
                Ok(r) => enc.check(&format!("OffsetFetch groups stable={stable}"), v, &r),
                Err(_) if v < 8 => enc.refused(ApiKey::OffsetFetch),
                Err(e) => panic!("OffsetFetch groups v{v} refused: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn offsets() -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        BTreeMap::from([
            (tp("a", 1), OffsetAndMetadata::new(10).with_leader_epoch(2)),
            (tp("a", 0), OffsetAndMetadata::new(5).with_metadata("m")),
            (tp("b", 0), OffsetAndMetadata::new(0)),
        ])
    }

    #[test]
    fn commit_request_encodes_at_every_version() {
        let static_member = MemberIdentity::member(4, "m-1", Some("i-1".into()));
        for version in 2..=9 {
            let req = offset_commit_request("g", &static_member, &offsets(), version).unwrap();
            assert_eq!(req.topics.len(), 2);
            assert_eq!(req.topics[0].name.0.as_str(), "a");
            assert_eq!(req.topics[0].partitions[0].partition_index, 0);
            assert_eq!(req.topics[0].partitions[1].committed_leader_epoch, 2);
            assert_eq!(
                req.topics[0].partitions[0].committed_metadata.as_deref(),
                Some("m")
            );
            assert_eq!(req.generation_id_or_member_epoch, 4);
            assert_eq!(req.group_instance_id.is_some(), version >= 7);
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, version).unwrap();
        }
        assert!(offset_commit_request("g", &MemberIdentity::admin(), &offsets(), 1).is_err());
        assert!(offset_commit_request("g", &MemberIdentity::admin(), &offsets(), 10).is_err());
    }

    #[test]
    fn fetch_request_encodes_at_every_version() {
        let one = [
            OffsetFetchQuery::partitions("g", &[tp("b", 1), tp("a", 0), tp("b", 0)])
                .with_member(MemberIdentity::member(3, "m", None)),
        ];
        for version in 1..=9 {
            let req = offset_fetch_request(&one, true, version).unwrap();
            assert_eq!(req.require_stable, version >= 7);
            if version >= 8 {
                let g = &req.groups[0];
                assert_eq!(g.group_id.0.as_str(), "g");
                let topics = g.topics.as_ref().unwrap();
                assert_eq!(topics[1].partition_indexes, [0, 1]);
                assert_eq!(g.member_epoch, if version >= 9 { 3 } else { -1 });
            } else {
                assert_eq!(req.group_id.0.as_str(), "g");
                assert_eq!(req.topics.as_ref().unwrap().len(), 2);
            }
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, version).unwrap();
        }
        // All partitions: v2+ only.
        let all = [OffsetFetchQuery::all("g")];
        assert!(offset_fetch_request(&all, false, 1).is_err());
        for version in 2..=9 {
            let req = offset_fetch_request(&all, false, version).unwrap();
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, version).unwrap();
        }
        // Several groups: v8+ only.
        let two = [OffsetFetchQuery::all("g"), OffsetFetchQuery::all("h")];
        assert!(offset_fetch_request(&two, false, 7).is_err());
        assert_eq!(
            offset_fetch_request(&two, false, 8).unwrap().groups.len(),
            2
        );
    }

    fn commit_response(codes: &[(&str, i32, i16)]) -> OffsetCommitResponse {
        let mut topics: Vec<OffsetCommitResponseTopic> = Vec::new();
        for &(t, p, code) in codes {
            let part = OffsetCommitResponsePartition::default()
                .with_partition_index(p)
                .with_error_code(code);
            match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    OffsetCommitResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.into())))
                        .with_partitions(vec![part]),
                ),
            }
        }
        OffsetCommitResponse::default().with_topics(topics)
    }

    #[test]
    fn commit_outcome_classifies() {
        let ok = commit_response(&[("a", 0, 0), ("a", 1, 0), ("b", 0, 0)]);
        assert!(commit_outcome(&ok, &offsets()).is_ok());

        // A fatal error wins over a retriable one.
        let mixed = commit_response(&[("a", 0, 16), ("a", 1, 25), ("b", 0, 0)]);
        assert!(matches!(
            commit_outcome(&mixed, &offsets()),
            Err(CommitError::UnknownMemberId)
        ));
        // NOT_COORDINATOR: retriable, rediscover.
        let moved = commit_response(&[("a", 0, 16), ("a", 1, 14), ("b", 0, 0)]);
        let err = commit_outcome(&moved, &offsets()).unwrap_err();
        assert!(matches!(err, CommitError::NotCoordinator));
        assert!(err.is_retriable() && err.needs_coordinator_lookup());
        let loading = commit_response(&[("a", 0, 14), ("a", 1, 0), ("b", 0, 0)]);
        let err = commit_outcome(&loading, &offsets()).unwrap_err();
        assert!(err.is_retriable() && !err.needs_coordinator_lookup());
        // Missing partition.
        let short = commit_response(&[("a", 0, 0), ("a", 1, 0)]);
        assert!(matches!(
            commit_outcome(&short, &offsets()),
            Err(CommitError::MissingPartition { partition }) if partition == tp("b", 0)
        ));
        // Metadata too large carries the partition.
        let big = commit_response(&[("a", 0, 12), ("a", 1, 0), ("b", 0, 0)]);
        assert!(matches!(
            commit_outcome(&big, &offsets()),
            Err(CommitError::OffsetMetadataTooLarge { partition }) if partition == tp("a", 0)
        ));
    }

    #[test]
    fn error_codes_map_to_typed_errors() {
        type Case = (i16, fn(&CommitError) -> bool, bool);
        let cases: &[Case] = &[
            (27, |e| matches!(e, CommitError::RebalanceInProgress), false),
            (22, |e| matches!(e, CommitError::IllegalGeneration), false),
            (25, |e| matches!(e, CommitError::UnknownMemberId), false),
            (82, |e| matches!(e, CommitError::FencedInstanceId), false),
            (113, |e| matches!(e, CommitError::StaleMemberEpoch), false),
            (16, |e| matches!(e, CommitError::NotCoordinator), true),
            (
                14,
                |e| matches!(e, CommitError::CoordinatorLoadInProgress),
                true,
            ),
            (
                15,
                |e| matches!(e, CommitError::CoordinatorUnavailable),
                true,
            ),
            (
                88,
                |e| matches!(e, CommitError::UnstableOffsetCommit { .. }),
                true,
            ),
            (
                12,
                |e| matches!(e, CommitError::OffsetMetadataTooLarge { .. }),
                false,
            ),
            (
                30,
                |e| matches!(e, CommitError::GroupAuthorizationFailed),
                false,
            ),
            (
                29,
                |e| matches!(e, CommitError::TopicAuthorizationFailed { .. }),
                false,
            ),
            (
                28,
                |e| {
                    matches!(
                        e,
                        CommitError::Broker(ResponseError::InvalidCommitOffsetSize)
                    )
                },
                false,
            ),
        ];
        for &(code, is, retriable) in cases {
            let err = CommitError::from_code(ResponseError::try_from_code(code).unwrap(), None);
            assert!(is(&err), "code {code}: {err:?}");
            assert_eq!(err.is_retriable(), retriable, "code {code}");
        }
        assert!(CommitError::FencedInstanceId.is_membership_error());
        assert!(!CommitError::NotCoordinator.is_membership_error());
        let conn = CommitError::Client(Error::ConnectionClosed {
            broker: "b".into(),
            api: kafka_protocol::messages::ApiKey::OffsetCommit,
        });
        assert!(conn.is_retriable() && conn.needs_coordinator_lookup());
    }

    #[test]
    fn fetch_results_v8_batched() {
        let response = OffsetFetchResponse::default().with_groups(vec![
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_topics(vec![OffsetFetchResponseTopics::default()
                    .with_name(TopicName(StrBytes::from_static_str("a")))
                    .with_partitions(vec![
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(0)
                            .with_committed_offset(5)
                            .with_committed_leader_epoch(1)
                            .with_metadata(Some(StrBytes::from_static_str("m"))),
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(1)
                            .with_committed_offset(-1)
                            .with_committed_leader_epoch(-1),
                    ])]),
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("h")))
                .with_error_code(14),
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("u")))
                .with_topics(vec![OffsetFetchResponseTopics::default()
                    .with_name(TopicName(StrBytes::from_static_str("a")))
                    .with_partitions(vec![OffsetFetchResponsePartitions::default()
                        .with_partition_index(0)
                        .with_error_code(88)])]),
        ]);
        let queries = [
            OffsetFetchQuery::partitions("g", &[tp("a", 0), tp("a", 1), tp("a", 2)]),
            OffsetFetchQuery::all("h"),
            OffsetFetchQuery::all("u"),
            OffsetFetchQuery::all("missing"),
        ];
        let results = fetch_results(&response, &queries, 9);
        let g = results["g"].as_ref().unwrap();
        assert_eq!(
            g[&tp("a", 0)],
            Some(
                OffsetAndMetadata::new(5)
                    .with_leader_epoch(1)
                    .with_metadata("m")
            )
        );
        assert_eq!(g[&tp("a", 1)], None);
        assert_eq!(g[&tp("a", 2)], None); // asked, not answered
        assert!(matches!(
            results["h"],
            Err(CommitError::CoordinatorLoadInProgress)
        ));
        let unstable = results["u"].as_ref().unwrap_err();
        assert!(unstable.is_retriable());
        assert!(matches!(unstable, CommitError::UnstableOffsetCommit { .. }));
        assert!(results["missing"].is_err());
    }

    #[test]
    fn fetch_results_below_v8() {
        let response =
            OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![OffsetFetchResponsePartition::default()
                    .with_partition_index(3)
                    .with_committed_offset(9)
                    .with_committed_leader_epoch(-1)])]);
        let queries = [OffsetFetchQuery::all("g")];
        let results = fetch_results(&response, &queries, 5);
        assert_eq!(
            results["g"].as_ref().unwrap()[&tp("a", 3)],
            Some(OffsetAndMetadata::new(9))
        );
        // v1: the coordinator error comes per partition.
        let response =
            OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![OffsetFetchResponsePartition::default()
                    .with_partition_index(3)
                    .with_error_code(16)])]);
        let results = fetch_results(
            &response,
            &[OffsetFetchQuery::partitions("g", &[tp("a", 3)])],
            1,
        );
        assert!(matches!(results["g"], Err(CommitError::NotCoordinator)));
        let response = OffsetFetchResponse::default().with_error_code(15);
        let results = fetch_results(&response, &queries, 4);
        assert!(matches!(
            results["g"],
            Err(CommitError::CoordinatorUnavailable)
        ));
    }

    // Found by cargo-mutants (scripts/mutants.sh commit): the wire values below were only
    // checked against a real broker.
    #[test]
    fn admin_commits_carry_no_membership_and_unset_fields_are_minus_one() {
        let admin = MemberIdentity::admin();
        assert_eq!(admin.generation_id_or_member_epoch, -1);
        assert!(admin.member_id.is_empty());
        let req = offset_commit_request("g", &admin, &offsets(), 9).unwrap();
        assert_eq!(req.generation_id_or_member_epoch, -1);
        assert!(req.member_id.is_empty());
        // The broker's default retention: -1, not a one-millisecond retention.
        assert_eq!(req.retention_time_ms, -1);
        // An offset without a known leader epoch commits -1 ("unknown"), not epoch 1.
        let b0 = &req.topics[1].partitions[0];
        assert_eq!(
            (req.topics[1].name.0.as_str(), b0.partition_index),
            ("b", 0)
        );
        assert_eq!(b0.committed_leader_epoch, -1);
    }

    #[test]
    fn broker_codes_outside_the_named_ones_keep_their_retriability() {
        // REQUEST_TIMED_OUT has no variant of its own: it is retried, after a lookup (the
        // coordinator may be gone), as the Java client does.
        let timed_out = CommitError::from_code(ResponseError::RequestTimedOut, None);
        assert!(matches!(timed_out, CommitError::Broker(_)));
        assert!(timed_out.is_retriable());
        assert!(timed_out.needs_coordinator_lookup());
        // A non-retriable code stays final and needs no lookup.
        let invalid = CommitError::from_code(ResponseError::InvalidCommitOffsetSize, None);
        assert!(!invalid.is_retriable());
        assert!(!invalid.needs_coordinator_lookup());
        // A partition error without a partition names the placeholder (-1), never partition 1.
        let unstable = CommitError::from_code(ResponseError::UnstableOffsetCommit, None);
        match unstable {
            CommitError::UnstableOffsetCommit { partition } => {
                assert_eq!(partition, TopicPartition::new("", -1))
            }
            other => panic!("{other:?}"),
        }
    }
}
