//! Admin calls on consumer groups: list, describe, committed offsets and lag, alter and reset
//! offsets, delete groups and offsets.
//!
//! Calls about one group go to its coordinator (`Coordinators`), looked up again when it
//! moved; retriable errors are retried until the request timeout. Changing a group's offsets
//! needs the group empty (no active members): the broker refuses otherwise, which reads as
//! [`CommitError::GroupNotEmpty`].
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use kafkit::admin::{Admin, OffsetSpec};
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! for group in admin.list_groups(&Default::default()).await? {
//!     println!("{} {:?}", group.group_id, group.state);
//! }
//! for (tp, lag) in admin.group_lag("billing").await? {
//!     println!("{}-{}: {:?}", tp.topic, tp.partition, lag.lag);
//! }
//! // Replay: move the (stopped) group back to the start of its topics.
//! admin.reset_group_offsets("billing", &["orders"], OffsetSpec::Earliest).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::ApiKey;

use super::{Admin, OffsetSpec};
use crate::error::{Error, Result};
use crate::io::connection::Connection;
use crate::io::coordinator::request_timeout;
use crate::state::admin_retry::Route;
use crate::state::group::commit::{
    CommitError, CommittedOffsets, MemberIdentity, OffsetFetchQuery,
};
use crate::state::group::{Assignment, OffsetAndMetadata, Subscription, TopicPartition};

/// Which groups [`Admin::list_groups`] returns. Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGroupsFilter {
    /// Only groups in these states (`Stable`, `Empty`, `PreparingRebalance`, …; ListGroups
    /// v4+, else filtered here).
    pub states: Vec<String>,
    /// Only groups of these types (`classic`, `consumer`, `share`; ListGroups v5+, else
    /// filtered here when the broker reports types).
    pub types: Vec<String>,
}

/// A group as [`Admin::list_groups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type (`consumer` for consumer groups; empty for groups that only commit
    /// offsets).
    pub protocol_type: String,
    /// The state, when the broker reports it (v4+).
    pub state: Option<String>,
    /// The group type (`classic`, `consumer`), when the broker reports it (v5+).
    pub group_type: Option<String>,
}

/// What [`Admin::list_groups_per_broker`] found: the groups of the brokers that answered, and
/// the failure of each broker that did not (by node id).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct GroupListings {
    /// The groups (each once, by group id), filtered.
    pub groups: Vec<GroupListing>,
    /// Why a broker's groups are missing, by node id.
    pub failures: BTreeMap<i32, Error>,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberDescription {
    /// The member id the coordinator gave.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host, as the coordinator saw it.
    pub client_host: String,
    /// The subscription it joined with (consumer groups; `None` when it cannot be decoded or
    /// the group is not a consumer group).
    pub subscription: Option<Subscription>,
    /// Its assigned partitions (decoded from the consumer protocol; empty when none or not
    /// decodable).
    pub assignment: Vec<TopicPartition>,
}

/// A group as [`Admin::describe_groups`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Its state (`Stable`, `Empty`, `Dead` for a group that does not exist, …).
    pub state: String,
    /// The protocol type (`consumer`, or empty).
    pub protocol_type: String,
    /// The protocol chosen for the generation: the assignor's name (`range`, …).
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
    /// The coordinator's node id.
    pub coordinator: i32,
    /// The group type: `classic` (DescribeGroups) or `consumer` (a KIP-848 group, described
    /// with ConsumerGroupDescribe).
    pub group_type: String,
}

/// Committed offset, log end and lag of one partition ([`Admin::group_lag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// The partition's log-end offset (high watermark).
    pub log_end: i64,
    /// `log_end - committed` (never negative), or `None` without a committed offset.
    pub lag: Option<i64>,
}

impl PartitionLag {
    /// The lag of a partition with `committed` offset and `log_end`.
    ///
    /// ```
    /// use kafkit::admin::PartitionLag;
    ///
    /// assert_eq!(PartitionLag::new(Some(7), 10).lag, Some(3));
    /// assert_eq!(PartitionLag::new(None, 10).lag, None);
    /// ```
    pub fn new(committed: Option<i64>, log_end: i64) -> PartitionLag {
        PartitionLag {
            committed,
            log_end,
            lag: committed.map(|c| log_end.saturating_sub(c).max(0)),
        }
    }
}

/// Groups split by their coordinator (one DescribeGroups / DeleteGroups each, duplicates
/// asked once), and the groups whose coordinator is not known (asked alone, after a lookup).
pub(crate) fn batches_by_coordinator<'a>(
    groups: &[&'a str],
    coordinators: &BTreeMap<String, i32>,
) -> (BTreeMap<i32, Vec<&'a str>>, Vec<&'a str>) {
    let mut batches: BTreeMap<i32, Vec<&'a str>> = BTreeMap::new();
    let mut alone: Vec<&'a str> = Vec::new();
    for group in groups {
        match coordinators.get(*group) {
            Some(node) => {
                let batch = batches.entry(*node).or_default();
                if !batch.contains(group) {
                    batch.push(group);
                }
            }
            None if !alone.contains(group) => alone.push(group),
            None => {}
        }
    }
    (batches, alone)
}

/// One DeleteGroups of `groups` on `conn` (their coordinator): each group's result, in order.
async fn delete_answer(
    conn: &Connection,
    groups: &[&str],
    deadline: Instant,
    cluster: &crate::io::cluster::Cluster,
) -> Result<Vec<Result<()>>> {
    let version = conn.version(ApiKey::DeleteGroups)?;
    let request = super::requests::delete_groups(groups);
    let timeout = request_timeout(cluster, deadline).ok_or(Error::Broker {
        api: ApiKey::DeleteGroups,
        code: ResponseError::RequestTimedOut,
        message: None,
    })?;
    let response = conn.send(&request, version, timeout).await?;
    Ok(groups
        .iter()
        .map(|group| {
            let answer = response
                .results
                .iter()
                .find(|r| r.group_id.0.as_str() == *group)
                .ok_or(Error::Broker {
                    api: ApiKey::DeleteGroups,
                    code: ResponseError::UnknownServerError,
                    message: Some(format!("no answer for group {group}")),
                })?;
            Error::check(
                ApiKey::DeleteGroups,
                answer.error_code,
                Some(&format!("group {group}")),
            )
        })
        .collect())
}

/// Reads one DescribeGroups answer (from coordinator `coordinator`); group-level errors are
/// returned as they are.
pub(crate) fn describe_result(
    group: &DescribedGroup,
    coordinator: i32,
) -> Result<GroupDescription> {
    Error::check(
        ApiKey::DescribeGroups,
        group.error_code,
        Some(&format!(
            "group {}: {}",
            group.group_id.0.as_str(),
            group.error_message.as_deref().unwrap_or("")
        )),
    )?;
    let consumer = group.protocol_type.as_str() == "consumer";
    let members = group
        .members
        .iter()
        .map(|m| {
            let subscription = consumer
                .then(|| Subscription::decode(&m.member_metadata).ok())
                .flatten()
                .map(|(_, s)| s);
            let assignment = consumer
                .then(|| Assignment::decode(&m.member_assignment).ok())
                .flatten()
                .map(|(_, a)| a.partitions())
                .unwrap_or_default();
            MemberDescription {
                member_id: m.member_id.as_str().to_owned(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.as_str().to_owned()),
                client_id: m.client_id.as_str().to_owned(),
                client_host: m.client_host.as_str().to_owned(),
                subscription,
                assignment,
            }
        })
        .collect();
    Ok(GroupDescription {
        group_id: group.group_id.0.as_str().to_owned(),
        state: group.group_state.as_str().to_owned(),
        protocol_type: group.protocol_type.as_str().to_owned(),
        protocol: group.protocol_data.as_str().to_owned(),
        members,
        coordinator,
        group_type: "classic".to_owned(),
    })
}

/// Reads one ConsumerGroupDescribe answer (a KIP-848 group) into the same shape: the
/// assignor's name as the protocol, subscribed topic names as the subscription, the current
/// assignment (not the target) as the assignment.
pub(crate) fn describe_consumer_result(
    group: &ConsumerDescribedGroup,
    coordinator: i32,
) -> Result<GroupDescription> {
    Error::check(
        ApiKey::ConsumerGroupDescribe,
        group.error_code,
        Some(&format!(
            "group {}: {}",
            group.group_id.0.as_str(),
            group.error_message.as_deref().unwrap_or("")
        )),
    )?;
    let members = group
        .members
        .iter()
        .map(|m| {
            let mut assignment: Vec<TopicPartition> = m
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |&p| TopicPartition::new(t.topic_name.0.as_str(), p))
                })
                .collect();
            assignment.sort();
            MemberDescription {
                member_id: m.member_id.as_str().to_owned(),
                group_instance_id: m.instance_id.as_ref().map(|s| s.as_str().to_owned()),
                client_id: m.client_id.as_str().to_owned(),
                client_host: m.client_host.as_str().to_owned(),
                subscription: Some(Subscription {
                    rack_id: m.rack_id.as_ref().map(|r| r.as_str().to_owned()),
                    ..Subscription::new(m.subscribed_topic_names.iter().map(|t| t.0.as_str()))
                }),
                assignment,
            }
        })
        .collect();
    Ok(GroupDescription {
        group_id: group.group_id.0.as_str().to_owned(),
        state: group.group_state.as_str().to_owned(),
        protocol_type: "consumer".to_owned(),
        protocol: group.assignor_name.as_str().to_owned(),
        members,
        coordinator,
        group_type: "consumer".to_owned(),
    })
}

/// Each of `groups`' results from one ConsumerGroupDescribe answer of coordinator
/// `coordinator`, in `groups` order; a group the answer leaves out is an error naming it.
pub(crate) fn consumer_describe_answers(
    groups: &[&str],
    answers: &[ConsumerDescribedGroup],
    coordinator: i32,
) -> Vec<Result<GroupDescription>> {
    groups
        .iter()
        .map(|group| {
            answers
                .iter()
                .find(|g| g.group_id.0.as_str() == *group)
                .ok_or_else(|| no_answer(ApiKey::ConsumerGroupDescribe, group))
                .and_then(|answer| describe_consumer_result(answer, coordinator))
        })
        .collect()
}

/// A response that has no entry for `group`.
fn no_answer(api: ApiKey, group: &str) -> Error {
    Error::Broker {
        api,
        code: ResponseError::UnknownServerError,
        message: Some(format!("no answer for group {group}")),
    }
}

fn is_group_not_found<T>(result: &Result<T>) -> bool {
    matches!(
        result,
        Err(Error::Broker {
            code: ResponseError::GroupIdNotFound,
            ..
        })
    )
}

fn matches_filter(listing: &GroupListing, filter: &ListGroupsFilter) -> bool {
    let state_ok = filter.states.is_empty()
        || listing
            .state
            .as_ref()
            .is_none_or(|s| filter.states.iter().any(|f| f.eq_ignore_ascii_case(s)));
    let type_ok = filter.types.is_empty()
        || listing
            .group_type
            .as_ref()
            .is_none_or(|t| filter.types.iter().any(|f| f.eq_ignore_ascii_case(t)));
    state_ok && type_ok
}

impl Admin {
    /// The coordinators this client uses for group calls (`unstable-internals`: no semver
    /// promise).
    #[cfg(feature = "unstable-internals")]
    #[doc(hidden)]
    pub fn coordinators(&self) -> &crate::io::coordinator::Coordinators {
        &self.coordinators
    }

    /// The deadline of a group call starting now (`default.api.timeout.ms`): the coordinator
    /// loops retry until then.
    fn deadline(&self) -> Instant {
        Instant::now() + self.api_timeout
    }

    /// Runs `call` on the coordinator of `group` (see [`Coordinators::call`]).
    ///
    /// [`Coordinators::call`]: crate::io::coordinator::Coordinators::call
    async fn on_coordinator<T, F, Fut>(&self, group: &str, deadline: Instant, call: F) -> Result<T>
    where
        F: FnMut(i32, Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.coordinators.call(group, deadline, call).await
    }

    /// Every group of the cluster (ListGroups to every broker), filtered by state and type
    /// (by the broker where its version allows, else here). Fails with the first broker's
    /// failure if any broker fails (Java's `listConsumerGroups().all()`);
    /// [`list_groups_per_broker`](Self::list_groups_per_broker) reports failures per broker
    /// beside what the others answered.
    pub async fn list_groups(&self, filter: &ListGroupsFilter) -> Result<Vec<GroupListing>> {
        let listings = self.list_groups_per_broker(filter).await?;
        match listings.failures.into_iter().next() {
            Some((_, err)) => Err(err),
            None => Ok(listings.groups),
        }
    }

    /// Every group the brokers that answered know (ListGroups to every broker, each asked
    /// once), filtered as [`list_groups`](Self::list_groups), with the failure of each broker
    /// that did not answer (Java's `valid()` and `errors()`). Fails as a whole only when the
    /// brokers cannot be listed (metadata).
    pub async fn list_groups_per_broker(&self, filter: &ListGroupsFilter) -> Result<GroupListings> {
        let mut call = self.call("list_groups", Route::Broker);
        loop {
            match self.cluster.refresh_metadata(Some(&[])).await {
                Ok(()) => break,
                Err(err) => call.failed(err).await?,
            }
        }
        let nodes: Vec<i32> = self
            .cluster
            .metadata()
            .brokers()
            .map(|b| b.node_id)
            .collect();
        let mut out: BTreeMap<String, GroupListing> = BTreeMap::new();
        let mut failures = BTreeMap::new();
        for node in nodes {
            // Each broker retried on its own, within the call's deadline.
            let answer = loop {
                match self.list_groups_of(node, filter, call.deadline()).await {
                    Ok(listings) => break Ok(listings),
                    Err(err) => match call.failed(err).await {
                        Ok(()) => {}
                        Err(last) => break Err(last),
                    },
                }
            };
            match answer {
                Ok(listings) => {
                    for listing in listings {
                        out.insert(listing.group_id.clone(), listing);
                    }
                }
                Err(err) => {
                    tracing::warn!(node, error = %err, "ListGroups failed on one broker");
                    failures.insert(node, err);
                }
            }
        }
        Ok(GroupListings {
            groups: out.into_values().collect(),
            failures,
        })
    }

    /// ListGroups on broker `node`, filtered.
    async fn list_groups_of(
        &self,
        node: i32,
        filter: &ListGroupsFilter,
        deadline: Instant,
    ) -> Result<Vec<GroupListing>> {
        let conn = self.cluster.connection(node).await?;
        let version = conn.version(ApiKey::ListGroups)?;
        let request = super::requests::list_groups(filter, version);
        let timeout = request_timeout(&self.cluster, deadline).ok_or(Error::Broker {
            api: ApiKey::ListGroups,
            code: ResponseError::RequestTimedOut,
            message: None,
        })?;
        let response = conn.send(&request, version, timeout).await?;
        Error::check(ApiKey::ListGroups, response.error_code, Some(conn.broker()))?;
        Ok(response
            .groups
            .iter()
            .map(|g| GroupListing {
                group_id: g.group_id.0.as_str().to_owned(),
                protocol_type: g.protocol_type.as_str().to_owned(),
                state: (version >= 4).then(|| g.group_state.as_str().to_owned()),
                group_type: (version >= 5).then(|| g.group_type.as_str().to_owned()),
            })
            .filter(|listing| matches_filter(listing, filter))
            .collect())
    }

    /// Describes `groups`, in the order given (their coordinators found by one batched
    /// FindCoordinator, then one DescribeGroups per coordinator with all its groups; a group
    /// whose coordinator moved or is loading is asked again alone, looked up and retried
    /// until `default.api.timeout.ms`; the groups DescribeGroups does not know asked in one
    /// ConsumerGroupDescribe per coordinator: KIP-848 `consumer` groups): state,
    /// protocol (the assignor), members with their subscriptions and assignments. The first
    /// group that fails (in the order given) fails the call, its error naming it. A group that does not exist fails
    /// with `GROUP_ID_NOT_FOUND` from DescribeGroups v6 (Kafka 4.0+, KIP-1043); older
    /// brokers describe it with state `Dead` and no members.
    pub async fn describe_groups(&self, groups: &[&str]) -> Result<Vec<GroupDescription>> {
        self.retrying("describe_groups", Route::Coordinator, |at| {
            self.describe_groups_until(groups, at.deadline)
        })
        .await
    }

    async fn describe_groups_until(
        &self,
        groups: &[&str],
        deadline: Instant,
    ) -> Result<Vec<GroupDescription>> {
        let nodes = self
            .coordinators
            .find(groups, deadline)
            .await
            .unwrap_or_default();
        let (batches, _) = batches_by_coordinator(groups, &nodes);
        let mut results: BTreeMap<&str, Result<GroupDescription>> = BTreeMap::new();
        for (node, batch) in batches {
            // A failed request: each of its groups is asked again alone below.
            let Ok(answers) = self.describe_batch(node, &batch, deadline).await else {
                continue;
            };
            self.keep_final_answers(batch, answers, &mut results);
        }
        // Groups without a coordinator yet, moved or loading: alone, looked up and retried.
        for group in groups {
            if !results.contains_key(group) {
                let result = self.describe_one(group, deadline).await;
                results.insert(group, result);
            }
        }
        groups
            .iter()
            .map(|g| {
                results.get(g).cloned().unwrap_or_else(|| {
                    Err(Error::Broker {
                        api: ApiKey::DescribeGroups,
                        code: ResponseError::UnknownServerError,
                        message: Some(format!("group {g}: no result")),
                    })
                })
            })
            .collect()
    }

    /// One DescribeGroups for `batch` (all coordinated by `node`): each group's result, in
    /// `batch` order.
    /// Keeps each group's answer from a batched request, except a retriable one (coordinator
    /// moved or loading): that forgets the coordinator and leaves the group to be asked alone.
    fn keep_final_answers<'g, T>(
        &self,
        batch: Vec<&'g str>,
        answers: Vec<Result<T>>,
        results: &mut BTreeMap<&'g str, Result<T>>,
    ) {
        for (group, answer) in batch.into_iter().zip(answers) {
            match answer {
                Err(err) if err.is_retriable() => self.coordinators.invalidate(group),
                result => {
                    results.insert(group, result);
                }
            }
        }
    }

    async fn describe_batch(
        &self,
        node: i32,
        batch: &[&str],
        deadline: Instant,
    ) -> Result<Vec<Result<GroupDescription>>> {
        let conn = self.coordinators.node_connection(node).await?;
        self.describe_on(&conn, node, batch, deadline).await
    }

    /// `group` alone on its coordinator, looked up and retried until `deadline`.
    async fn describe_one(&self, group: &str, deadline: Instant) -> Result<GroupDescription> {
        self.on_coordinator(group, deadline, |node, conn| async move {
            let mut answers = self.describe_on(&conn, node, &[group], deadline).await?;
            answers
                .pop()
                .unwrap_or_else(|| Err(no_answer(ApiKey::DescribeGroups, group)))
        })
        .await
    }

    /// One DescribeGroups for `batch` (all coordinated by `node`, on its connection `conn`),
    /// then one ConsumerGroupDescribe with every group of it that DescribeGroups does not
    /// know (KIP-848 groups: Kafka 4 answers `GROUP_ID_NOT_FOUND` for them): each group's
    /// result, in `batch` order.
    async fn describe_on(
        &self,
        conn: &Connection,
        node: i32,
        batch: &[&str],
        deadline: Instant,
    ) -> Result<Vec<Result<GroupDescription>>> {
        let version = conn.version(ApiKey::DescribeGroups)?;
        let request = super::requests::describe_groups(batch);
        let timeout = request_timeout(&self.cluster, deadline).ok_or(Error::Broker {
            api: ApiKey::DescribeGroups,
            code: ResponseError::RequestTimedOut,
            message: None,
        })?;
        let response = conn.send(&request, version, timeout).await?;
        let mut out: Vec<Result<GroupDescription>> = batch
            .iter()
            .map(|group| {
                response
                    .groups
                    .iter()
                    .find(|g| g.group_id.0.as_str() == *group)
                    .ok_or_else(|| no_answer(ApiKey::DescribeGroups, group))
                    .and_then(|answer| describe_result(answer, node))
            })
            .collect();
        if conn.version(ApiKey::ConsumerGroupDescribe).is_err() {
            return Ok(out);
        }
        let unknown: Vec<&str> = batch
            .iter()
            .zip(&out)
            .filter(|(_, r)| is_group_not_found(r))
            .map(|(g, _)| *g)
            .collect();
        if unknown.is_empty() {
            return Ok(out);
        }
        let answers = self
            .consumer_group_describe(conn, node, &unknown, deadline)
            .await;
        for (slot, group) in out.iter_mut().zip(batch) {
            let Some(i) = unknown.iter().position(|u| u == group) else {
                continue;
            };
            let answer = match &answers {
                Ok(answers) => answers
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Err(no_answer(ApiKey::ConsumerGroupDescribe, group))),
                // The request failed: every group it asked shares its error.
                Err(err) => Err(err.clone()),
            };
            // Not a KIP-848 group either: DescribeGroups' answer stands.
            if !is_group_not_found(&answer) {
                *slot = answer;
            }
        }
        Ok(out)
    }

    /// One ConsumerGroupDescribe of `groups` (KIP-848 groups, all coordinated by `node`) on
    /// its connection `conn`: each group's result, in `groups` order.
    async fn consumer_group_describe(
        &self,
        conn: &Connection,
        node: i32,
        groups: &[&str],
        deadline: Instant,
    ) -> Result<Vec<Result<GroupDescription>>> {
        let version = conn.version(ApiKey::ConsumerGroupDescribe)?;
        let request = super::requests::consumer_group_describe(groups);
        let timeout = request_timeout(&self.cluster, deadline).ok_or(Error::Broker {
            api: ApiKey::ConsumerGroupDescribe,
            code: ResponseError::RequestTimedOut,
            message: None,
        })?;
        let response = conn.send(&request, version, timeout).await?;
        Ok(consumer_describe_answers(groups, &response.groups, node))
    }

    /// Every committed offset of `group` (`None` never appears here: only partitions with a
    /// commit are listed).
    pub async fn list_group_offsets(&self, group: &str) -> Result<CommittedOffsets, CommitError> {
        let mut offsets = self
            .coordinators
            .fetch_offsets(&OffsetFetchQuery::all(group), false, self.deadline())
            .await?;
        offsets.retain(|_, o| o.is_some());
        Ok(offsets)
    }

    /// Every committed offset of each of `groups`, by group id: one OffsetFetch per
    /// coordinator where the broker batches groups (v8+).
    pub async fn list_groups_offsets(
        &self,
        groups: &[&str],
    ) -> BTreeMap<String, Result<CommittedOffsets, CommitError>> {
        let queries: Vec<OffsetFetchQuery> =
            groups.iter().map(|g| OffsetFetchQuery::all(*g)).collect();
        let mut results = self
            .coordinators
            .fetch_offsets_many(&queries, false, self.deadline())
            .await;
        for offsets in results.values_mut().flatten() {
            offsets.retain(|_, o| o.is_some());
        }
        results
    }

    /// Committed offset, log end and lag of every partition `group` has committed offsets
    /// for, and of every other partition of those topics (with no committed offset).
    pub async fn group_lag(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, PartitionLag>, CommitError> {
        let committed = self.list_group_offsets(group).await?;
        let topics: BTreeSet<&str> = committed.keys().map(|tp| tp.topic.as_str()).collect();
        let mut out = BTreeMap::new();
        for topic in topics {
            let partitions = self.partitions_of(topic).await?;
            let ends = self
                .list_offsets(topic, &partitions, OffsetSpec::Latest)
                .await?;
            for end in ends {
                let tp = TopicPartition::new(topic, end.partition);
                let c = committed
                    .get(&tp)
                    .and_then(|o| o.as_ref())
                    .map(|o| o.offset);
                out.insert(tp, PartitionLag::new(c, end.offset));
            }
        }
        Ok(out)
    }

    async fn partitions_of(&self, topic: &str) -> Result<Vec<i32>> {
        let info = self.describe_topics(&[topic]).await?;
        Ok(info
            .first()
            .map(|t| t.partitions.iter().map(|p| p.partition).collect())
            .unwrap_or_default())
    }

    /// Commits `offsets` for `group` without a membership (generation -1), as Kafka's
    /// `kafka-consumer-groups --reset-offsets --execute` does. The group must be empty: the
    /// broker refuses a group with active members ([`CommitError::GroupNotEmpty`]). A topic
    /// that does not exist fails at once with [`CommitError::UnknownTopicOrPartition`].
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        // Kafka 4 refuses commits for topics that do not exist with the retriable
        // UNKNOWN_TOPIC_OR_PARTITION; fail fast here instead of retrying until the timeout.
        let topics: BTreeSet<&str> = offsets.keys().map(|tp| tp.topic.as_str()).collect();
        for topic in topics {
            let exists = self.describe_topics(&[topic]).await;
            match exists {
                Ok(_) => {}
                Err(Error::Broker {
                    code: ResponseError::UnknownTopicOrPartition,
                    ..
                }) => {
                    let partition = offsets
                        .keys()
                        .find(|tp| tp.topic == topic)
                        .cloned()
                        .unwrap_or_else(|| TopicPartition::new(topic, -1));
                    return Err(CommitError::UnknownTopicOrPartition { partition });
                }
                Err(err) => return Err(err.into()),
            }
        }
        let result = self
            .coordinators
            .commit_offsets(group, &MemberIdentity::admin(), offsets, self.deadline())
            .await;
        match result {
            // Without a membership this means: the group has members.
            Err(CommitError::UnknownMemberId) => Err(CommitError::GroupNotEmpty {
                group: group.to_owned(),
                state: None,
            }),
            other => other,
        }
    }

    /// Moves `group`'s offsets for every partition of `topics` to the earliest or latest
    /// offset, or the first offset at or after a timestamp (the log end where no record is
    /// that late, as Kafka's tool does); returns the offsets committed.
    ///
    /// Only for a group with no active members (state `Empty`, or one that does not exist
    /// yet): else [`CommitError::GroupNotEmpty`] with its state.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        topics: &[&str],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>, CommitError> {
        let described = match self.describe_groups(&[group]).await {
            Ok(described) => described,
            // No such group yet: committing creates it.
            Err(Error::Broker {
                code: ResponseError::GroupIdNotFound,
                ..
            }) => Vec::new(),
            Err(err) => return Err(err.into()),
        };
        if let Some(d) = described.first() {
            if !(d.state.eq_ignore_ascii_case("Empty") || d.state.eq_ignore_ascii_case("Dead")) {
                return Err(CommitError::GroupNotEmpty {
                    group: group.to_owned(),
                    state: Some(d.state.clone()),
                });
            }
        }
        let mut target = BTreeMap::new();
        for topic in topics {
            let partitions = self.partitions_of(topic).await?;
            let found = self.list_offsets(topic, &partitions, spec).await?;
            let missing: Vec<i32> = found
                .iter()
                .filter(|o| o.offset < 0)
                .map(|o| o.partition)
                .collect();
            let ends = if missing.is_empty() {
                Vec::new()
            } else {
                self.list_offsets(topic, &missing, OffsetSpec::Latest)
                    .await?
            };
            for o in found {
                let offset = if o.offset >= 0 {
                    o.offset
                } else {
                    ends.iter()
                        .find(|e| e.partition == o.partition)
                        .map_or(0, |e| e.offset)
                };
                target.insert(TopicPartition::new(*topic, o.partition), offset);
            }
        }
        let offsets = target
            .iter()
            .map(|(tp, &o)| (tp.clone(), OffsetAndMetadata::new(o)))
            .collect();
        self.alter_group_offsets(group, &offsets).await?;
        Ok(target)
    }

    /// Deletes `groups` (one DeleteGroups per coordinator with all its groups, found and
    /// retried as in [`describe_groups`](Self::describe_groups)): their committed offsets go
    /// too. A group with members fails with `NON_EMPTY_GROUP`, one that does not exist with
    /// `GROUP_ID_NOT_FOUND`; the first failure (in the order given) is returned, naming its
    /// group, after the other groups were deleted (Java's `all()`).
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<()> {
        // Not asked again as a whole (a deleted group would be GROUP_ID_NOT_FOUND): each group
        // is retried alone below; what is still retriable at the deadline is the timeout.
        let call = self.call("delete_groups", Route::Coordinator);
        let deadline = call.deadline();
        let nodes = self
            .coordinators
            .find(groups, deadline)
            .await
            .unwrap_or_default();
        let (batches, _) = batches_by_coordinator(groups, &nodes);
        let mut results: BTreeMap<&str, Result<()>> = BTreeMap::new();
        for (node, batch) in batches {
            // A failed request: each of its groups is asked again alone below.
            let Ok(conn) = self.coordinators.node_connection(node).await else {
                continue;
            };
            let Ok(answers) = delete_answer(&conn, &batch, deadline, &self.cluster).await else {
                continue;
            };
            self.keep_final_answers(batch, answers, &mut results);
        }
        // Groups without a coordinator yet, moved or loading: alone, looked up and retried.
        for group in groups {
            if !results.contains_key(group) {
                let result = self
                    .on_coordinator(group, deadline, |_, conn| async move {
                        delete_answer(&conn, &[group], deadline, &self.cluster)
                            .await?
                            .into_iter()
                            .next()
                            .unwrap_or(Ok(()))
                    })
                    .await;
                results.insert(group, result);
            }
        }
        // The first failure in input order (Java's `all()`); the other groups are deleted.
        for group in groups {
            if let Some(Err(err)) = results.remove(group) {
                return Err(call.finish(err));
            }
        }
        Ok(())
    }

    /// Deletes `group`'s committed offsets of `partitions` (OffsetDelete). The broker refuses
    /// partitions of topics an active member is subscribed to (`GROUP_SUBSCRIBED_TO_TOPIC`).
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let request = &super::requests::offset_delete(group, partitions);
        self.retrying("delete_group_offsets", Route::Coordinator, |at| {
            self.delete_group_offsets_until(group, request, at.deadline)
        })
        .await
    }

    async fn delete_group_offsets_until(
        &self,
        group: &str,
        request: &kafka_protocol::messages::OffsetDeleteRequest,
        deadline: Instant,
    ) -> Result<()> {
        self.on_coordinator(group, deadline, |_, conn| async move {
            let version = conn.version(ApiKey::OffsetDelete)?;
            let timeout = request_timeout(&self.cluster, deadline).ok_or(Error::Broker {
                api: ApiKey::OffsetDelete,
                code: ResponseError::RequestTimedOut,
                message: None,
            })?;
            let response = conn.send(request, version, timeout).await?;
            Error::check(
                ApiKey::OffsetDelete,
                response.error_code,
                Some(&format!("group {group}")),
            )?;
            for t in &response.topics {
                for p in &t.partitions {
                    Error::check(
                        ApiKey::OffsetDelete,
                        p.error_code,
                        Some(&format!(
                            "group {group}: {}-{}",
                            t.name.0.as_str(),
                            p.partition_index
                        )),
                    )?;
                }
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_batch_per_coordinator_duplicates_once_unknown_alone() {
        let nodes: BTreeMap<String, i32> = [("a", 1), ("b", 2), ("c", 1), ("d", 1)]
            .into_iter()
            .map(|(g, n)| (g.to_owned(), n))
            .collect();
        let groups = ["c", "a", "x", "b", "a", "d", "x"];
        let (batches, alone) = batches_by_coordinator(&groups, &nodes);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[&1], vec!["c", "a", "d"]);
        assert_eq!(batches[&2], vec!["b"]);
        assert_eq!(alone, vec!["x"]);
    }
    use kafka_protocol::messages::describe_groups_response::DescribedGroupMember;
    use kafka_protocol::messages::{GroupId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn describe_decodes_consumer_members() {
        let assignment = Assignment::from_partitions(&[
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 2),
        ]);
        let group = DescribedGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_group_state(StrBytes::from_static_str("Stable"))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocol_data(StrBytes::from_static_str("range"))
            .with_members(vec![DescribedGroupMember::default()
                .with_member_id(StrBytes::from_static_str("m-1"))
                .with_client_id(StrBytes::from_static_str("c"))
                .with_client_host(StrBytes::from_static_str("/127.0.0.1"))
                .with_member_metadata(Subscription::new(["t"]).encode(3).unwrap())
                .with_member_assignment(assignment.encode(3).unwrap())]);
        let d = describe_result(&group, 1).unwrap();
        assert_eq!(d.state, "Stable");
        assert_eq!(d.protocol, "range");
        assert_eq!(d.members[0].assignment, assignment.partitions());
        assert_eq!(d.members[0].subscription.as_ref().unwrap().topics, ["t"]);

        // Garbage blobs do not fail the description.
        let mut bad = group.clone();
        bad.members[0].member_assignment = bytes::Bytes::from_static(&[0, 0, 0xff]);
        bad.members[0].member_metadata = bytes::Bytes::from_static(&[1]);
        let d = describe_result(&bad, 1).unwrap();
        assert!(d.members[0].assignment.is_empty());
        assert!(d.members[0].subscription.is_none());

        let mut err = group;
        err.error_code = 30;
        assert!(matches!(
            describe_result(&err, 1),
            Err(Error::Broker {
                code: ResponseError::GroupAuthorizationFailed,
                ..
            })
        ));
    }

    #[test]
    fn one_consumer_group_describe_answers_each_group_in_the_order_asked() {
        let described = |id: &'static str, state: &'static str, code: i16| {
            ConsumerDescribedGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str(id)))
                .with_group_state(StrBytes::from_static_str(state))
                .with_assignor_name(StrBytes::from_static_str("uniform"))
                .with_error_code(code)
        };
        // The broker answers in its own order; one group unknown, one left out.
        let answers = [
            described("b", "Stable", 0),
            described("gone", "Dead", 69),
            described("a", "Empty", 0),
        ];
        let results = consumer_describe_answers(&["a", "gone", "b", "left-out"], &answers, 3);
        assert_eq!(results.len(), 4);
        let a = results[0].as_ref().unwrap();
        assert_eq!((a.group_id.as_str(), a.state.as_str()), ("a", "Empty"));
        assert!(is_group_not_found(&results[1]), "{:?}", results[1]);
        let b = results[2].as_ref().unwrap();
        assert_eq!((b.group_id.as_str(), b.state.as_str()), ("b", "Stable"));
        match &results[3] {
            Err(Error::Broker {
                api: ApiKey::ConsumerGroupDescribe,
                message: Some(m),
                ..
            }) => assert!(m.contains("left-out"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn consumer_group_describe_reads_members() {
        use kafka_protocol::messages::consumer_group_describe_response::{
            Assignment as CgAssignment, Member, TopicPartitions,
        };
        let group = ConsumerDescribedGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_group_state(StrBytes::from_static_str("Stable"))
            .with_assignor_name(StrBytes::from_static_str("uniform"))
            .with_members(vec![Member::default()
                .with_member_id(StrBytes::from_static_str("m"))
                .with_rack_id(Some(StrBytes::from_static_str("r1")))
                .with_subscribed_topic_names(vec![TopicName(StrBytes::from_static_str("t"))])
                .with_assignment(CgAssignment::default().with_topic_partitions(
                    vec![
                    TopicPartitions::default()
                        .with_topic_name(TopicName(StrBytes::from_static_str("t")))
                        .with_partitions(vec![2, 0]),
                ],
                ))]);
        let d = describe_consumer_result(&group, 4).unwrap();
        assert_eq!(
            (d.group_type.as_str(), d.protocol.as_str()),
            ("consumer", "uniform")
        );
        assert_eq!(
            d.members[0].assignment,
            [TopicPartition::new("t", 0), TopicPartition::new("t", 2)]
        );
        let sub = d.members[0].subscription.as_ref().unwrap();
        assert_eq!(
            (sub.topics.as_slice(), sub.rack_id.as_deref()),
            (&["t".to_owned()][..], Some("r1"))
        );
        let mut missing = group;
        missing.error_code = 69; // GROUP_ID_NOT_FOUND
        assert!(describe_consumer_result(&missing, 4).is_err());
    }

    #[test]
    fn filters_match_case_insensitively() {
        let listing = GroupListing {
            group_id: "g".into(),
            protocol_type: "consumer".into(),
            state: Some("Stable".into()),
            group_type: Some("classic".into()),
        };
        assert!(matches_filter(&listing, &ListGroupsFilter::default()));
        let stable = ListGroupsFilter {
            states: vec!["stable".into()],
            types: vec![],
        };
        assert!(matches_filter(&listing, &stable));
        let empty = ListGroupsFilter {
            states: vec!["Empty".into()],
            types: vec![],
        };
        assert!(!matches_filter(&listing, &empty));
        let consumer = ListGroupsFilter {
            states: vec![],
            types: vec!["consumer".into()],
        };
        assert!(!matches_filter(&listing, &consumer));
    }
}
