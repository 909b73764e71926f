//! Consumer group membership: the types the consumer and every kind of group member share,
//! and [`GroupMember`], which forwards to the member of the protocol in use.
//!
//! A member runs in a background task of its own (coordinator discovery, join, heartbeats);
//! the consumer talks to it through the methods below and reacts to its [`GroupEvent`]s:
//!
//! 1. [`GroupMember::join`] starts the member and returns at once;
//! 2. the consumer loops on [`GroupMember::next_event`] (cancel-safe) alongside its fetches:
//!    [`GroupEvent::Assigned`] → fetch the committed offsets of the new partitions and start
//!    fetching them; [`GroupEvent::Revoked`] → stop fetching them, run the user's callback
//!    (which may commit), then call [`GroupMember::revocation_done`]; [`GroupEvent::Lost`] →
//!    drop them without committing;
//! 3. each `poll`/`recv` of the application calls [`GroupMember::poll_tick`]
//!    (`max.poll.interval.ms`);
//! 4. [`GroupMember::close`] leaves the group.
//!
//! The classic protocol (JoinGroup/SyncGroup/Heartbeat) is [`classic`]; its decisions are made
//! by the pure [`crate::state::group::member`] state machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{AssignorName, ConsumerConfig};
use crate::io::cluster::Cluster;
use crate::state::group::commit::{CommitError, CommittedOffsets};
pub use crate::state::group::event::{GroupEvent, GroupGeneration};
use crate::state::group::{
    Assignor, CooperativeStickyAssignor, OffsetAndMetadata, RangeAssignor, RoundRobinAssignor,
    TopicPartition,
};
use crate::Result;

pub mod classic;
pub mod consumer;
mod pattern;

pub use pattern::TopicPattern;

/// Which group protocol a member speaks (`group.protocol`): the consumer config's type.
pub use crate::config::GroupProtocol;

/// The group settings of a consumer, as the Java client names them.
#[derive(Clone)]
pub struct GroupSettings {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: static membership (KIP-345).
    pub group_instance_id: Option<String>,
    /// `group.protocol` (default classic).
    pub protocol: GroupProtocol,
    /// `session.timeout.ms` (classic; default 45 s).
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`, which is also the classic rebalance timeout (default 300 s).
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms` (classic; default 3 s).
    pub heartbeat_interval: Duration,
    /// `partition.assignment.strategy` (classic), in preference order (default range then
    /// cooperative-sticky, as Java; here range alone unless set).
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// `group.remote.assignor` (KIP-848).
    pub remote_assignor: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `retry.backoff.ms` (default 100 ms).
    pub retry_backoff: Duration,
    /// `request.timeout.ms` (default 30 s).
    pub request_timeout: Duration,
    /// `metadata.max.age.ms` (default 5 min): how often the classic member refreshes the
    /// metadata of its topics (a pattern is matched again; the leader checks partition
    /// counts and rejoins when they changed).
    pub metadata_max_age: Duration,
}

impl std::fmt::Debug for GroupSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSettings")
            .field("group_id", &self.group_id)
            .field("group_instance_id", &self.group_instance_id)
            .field("protocol", &self.protocol)
            .field("session_timeout", &self.session_timeout)
            .field("rebalance_timeout", &self.rebalance_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field(
                "assignors",
                &self.assignors.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .field("remote_assignor", &self.remote_assignor)
            .field("rack_id", &self.rack_id)
            .field("retry_backoff", &self.retry_backoff)
            .field("request_timeout", &self.request_timeout)
            .field("metadata_max_age", &self.metadata_max_age)
            .finish()
    }
}

impl GroupSettings {
    /// The Java client's defaults for group `group_id` (classic protocol, range assignor).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kafkit::io::group::GroupSettings;
    ///
    /// let s = GroupSettings::new("billing");
    /// assert_eq!(s.session_timeout, Duration::from_secs(45));
    /// assert_eq!(s.heartbeat_interval, Duration::from_secs(3));
    /// assert_eq!(s.rebalance_timeout, Duration::from_secs(300));
    /// assert_eq!(s.assignors[0].name(), "range");
    /// ```
    pub fn new(group_id: impl Into<String>) -> Self {
        GroupSettings {
            group_id: group_id.into(),
            group_instance_id: None,
            protocol: GroupProtocol::Classic,
            session_timeout: Duration::from_millis(45_000),
            rebalance_timeout: Duration::from_millis(300_000),
            heartbeat_interval: Duration::from_millis(3_000),
            assignors: vec![Arc::new(RangeAssignor)],
            remote_assignor: None,
            rack_id: None,
            retry_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_millis(30_000),
            metadata_max_age: Duration::from_millis(300_000),
        }
    }
}

impl GroupSettings {
    /// The group settings of a consumer's config; `None` when it has no `group.id`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kafkit::config::{AssignorName, ConsumerConfig};
    /// use kafkit::io::group::GroupSettings;
    ///
    /// let config = ConsumerConfig::builder()
    ///     .bootstrap_servers(["127.0.0.1:9092"])
    ///     .group_id("billing")
    ///     .session_timeout(Duration::from_secs(10))
    ///     .partition_assignment_strategy(vec![AssignorName::CooperativeSticky])
    ///     .build()
    ///     .unwrap();
    /// let s = GroupSettings::from_consumer_config(&config).unwrap();
    /// assert_eq!(s.group_id, "billing");
    /// assert_eq!(s.session_timeout, Duration::from_secs(10));
    /// assert_eq!(s.assignors[0].name(), "cooperative-sticky");
    /// ```
    pub fn from_consumer_config(config: &ConsumerConfig) -> Option<GroupSettings> {
        let group_id = config.group_id()?;
        let assignors: Vec<Arc<dyn Assignor>> = config
            .partition_assignment_strategy()
            .iter()
            .map(|name| -> Arc<dyn Assignor> {
                match name {
                    AssignorName::Range => Arc::new(RangeAssignor),
                    AssignorName::RoundRobin => Arc::new(RoundRobinAssignor),
                    AssignorName::CooperativeSticky => Arc::new(CooperativeStickyAssignor),
                }
            })
            .collect();
        Some(GroupSettings {
            group_id: group_id.to_owned(),
            group_instance_id: config.group_instance_id().map(str::to_owned),
            protocol: config.group_protocol(),
            session_timeout: config.session_timeout(),
            rebalance_timeout: config.max_poll_interval(),
            heartbeat_interval: config.heartbeat_interval(),
            assignors,
            remote_assignor: config.group_remote_assignor().map(str::to_owned),
            rack_id: config.client_rack().map(str::to_owned),
            retry_backoff: config.client().retry_backoff(),
            request_timeout: config.client().request_timeout(),
            metadata_max_age: config.client().metadata_max_age(),
        })
    }
}

/// What a member subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupSubscription {
    /// These topics.
    Topics(Vec<String>),
    /// Every topic whose whole name matches this regular expression. The classic member
    /// resolves it against the cluster's metadata itself; KIP-848 sends it to the broker.
    Pattern(String),
}

/// A member of a consumer group, of whichever protocol [`GroupSettings::protocol`] chose.
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupMember {
    /// A classic-protocol member.
    Classic(classic::ClassicMember),
    /// A KIP-848 (`group.protocol=consumer`) member.
    Consumer(consumer::ConsumerMember),
}

impl GroupMember {
    /// Starts a member (its background task discovers the coordinator and joins); returns
    /// without waiting for an assignment.
    pub async fn join(
        cluster: Cluster,
        settings: GroupSettings,
        subscription: GroupSubscription,
    ) -> Result<Self> {
        match settings.protocol {
            GroupProtocol::Classic => Ok(GroupMember::Classic(
                classic::ClassicMember::join(cluster, settings, subscription).await?,
            )),
            GroupProtocol::Consumer => Ok(GroupMember::Consumer(
                consumer::ConsumerMember::join(cluster, settings, subscription).await?,
            )),
        }
    }

    /// The next event; cancel-safe. An error is fatal for the member (fenced instance id,
    /// group authorization failed, group full, member closed).
    pub async fn next_event(&self) -> Result<GroupEvent> {
        match self {
            GroupMember::Classic(m) => m.next_event().await,
            GroupMember::Consumer(m) => m.next_event().await,
        }
    }

    /// The consumer has given up `partitions` (after a [`GroupEvent::Revoked`]); the member
    /// continues the rebalance.
    pub fn revocation_done(&self, partitions: &[TopicPartition]) {
        match self {
            GroupMember::Classic(m) => m.revocation_done(partitions),
            GroupMember::Consumer(m) => m.revocation_done(partitions),
        }
    }

    /// The application is still consuming: if this is not called within
    /// `max.poll.interval.ms`, the member leaves the group, as Java's does.
    pub fn poll_tick(&self) {
        match self {
            GroupMember::Classic(m) => m.poll_tick(),
            GroupMember::Consumer(m) => m.poll_tick(),
        }
    }

    /// The partitions the member owns now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        match self {
            GroupMember::Classic(m) => m.assignment(),
            GroupMember::Consumer(m) => m.assignment(),
        }
    }

    /// The member's current generation, once it has joined.
    pub fn generation(&self) -> Option<GroupGeneration> {
        match self {
            GroupMember::Classic(m) => m.generation(),
            GroupMember::Consumer(m) => m.generation(),
        }
    }

    /// Commits `offsets` with the member's identity, retrying retriable errors (coordinator
    /// moved or loading) until `request.timeout.ms`; membership errors (rebalance in
    /// progress, illegal generation, unknown member, fenced, stale epoch) return typed.
    pub async fn commit(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        match self {
            GroupMember::Classic(m) => m.commit(offsets).await,
            GroupMember::Consumer(m) => m.commit(offsets).await,
        }
    }

    /// The group's committed offsets of `partitions` (`None`: nothing committed), waiting
    /// out pending transactional commits (OffsetFetch with `require_stable`).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<CommittedOffsets, CommitError> {
        match self {
            GroupMember::Classic(m) => m.committed(partitions).await,
            GroupMember::Consumer(m) => m.committed(partitions).await,
        }
    }

    /// Changes the subscription; the member rejoins if the topics changed.
    pub fn update_subscription(&self, subscription: GroupSubscription) {
        match self {
            GroupMember::Classic(m) => m.update_subscription(subscription),
            GroupMember::Consumer(m) => m.update_subscription(subscription),
        }
    }

    /// Leaves the group (LeaveGroup for dynamic members; static members just stop
    /// heartbeating, as Java's do), waiting at most until `deadline`. An error says why the
    /// leave failed: the coordinator then drops the member after its session timeout
    /// ([`Error::is_client_bug`](crate::Error::is_client_bug) when kafkit could not encode
    /// the request).
    pub async fn close(self, deadline: Instant) -> Result<()> {
        match self {
            GroupMember::Classic(m) => m.close(deadline).await,
            GroupMember::Consumer(m) => m.close(deadline).await,
        }
    }
}
