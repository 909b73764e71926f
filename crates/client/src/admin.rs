//! Admin calls: create and delete topics, describe the cluster and topics, list offsets;
//! consumer groups ([`groups`]: list, describe, offsets, lag, reset, delete); ACLs ([`acls`]:
//! create, describe, delete).
//!
//! ```no_run
//! # async fn example() -> Result<(), kafkit::Error> {
//! use kafkit::admin::{Admin, NewTopic, OffsetSpec};
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! admin.create_topics(&[NewTopic::new("events", 6, 1).config("retention.ms", "86400000")]).await?;
//! let latest = admin.list_offsets("events", &[0, 1], OffsetSpec::Latest).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use crate::config::{AdminConfig, ClientConfig};
use crate::error::{Error, Result};
use crate::io::cluster::{Cluster, ClusterConfig};
use crate::io::coordinator::Coordinators;
use crate::state::admin_retry::{retries_topic, Route};
pub use crate::state::group::protocol::{ProtocolError, Subscription, TopicPartitions};
pub use crate::state::metadata::{BrokerInfo, PartitionInfo, TopicInfo};
use crate::state::rng::XorShift64Star;

pub mod acls;
mod call;
pub mod configs;
pub mod groups;
mod partitions;
pub mod producers;
pub(crate) mod requests;
pub mod transactions;

pub use acls::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, PatternType, ResourcePattern, ResourcePatternFilter, ResourceType,
};
pub use configs::{AlterConfigOp, BrokerConfigs, ConfigEntry, ConfigSource, TopicConfigs};
pub use groups::{
    GroupDescription, GroupListing, GroupListings, ListGroupsFilter, MemberDescription,
    PartitionLag,
};
pub use producers::{AbortTransactionSpec, ProducerState, TxnAdminError};
pub use transactions::{ListTransactionsFilter, TransactionDescription, TransactionListing};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic name.
    pub name: String,
    /// Number of partitions (-1: the broker's `num.partitions`).
    pub partitions: i32,
    /// Replication factor (-1: the broker's `default.replication.factor`).
    pub replication_factor: i16,
    /// Topic configs (`retention.ms`, `cleanup.policy`, …).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions of `replication_factor` replicas each.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// Which offset [`Admin::list_offsets`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the offset the next record will get).
    Latest,
    /// The offset of the first record whose timestamp is at or after this one (ms since the
    /// epoch); the answer has offset -1 when there is none.
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// The answer for one partition of [`Admin::list_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedOffset {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp of the record at `offset`, or -1.
    pub timestamp: i64,
    /// The leader epoch of that record, or -1.
    pub leader_epoch: i32,
}

/// Java's `default.api.timeout.ms` default: how long an admin call retries.
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(60);

/// The admin client.
///
/// Every call retries as Java's `AdminClient` does: a retriable failure (a connection refused,
/// reset or timed out after `request.timeout.ms`; `NOT_CONTROLLER`, `LEADER_NOT_AVAILABLE`,
/// `NOT_LEADER_OR_FOLLOWER`, `NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`,
/// `REQUEST_TIMED_OUT`, …) is tried again after `retry.backoff.ms` (doubling up to
/// `retry.backoff.max.ms`), with fresh metadata or a fresh coordinator lookup where the
/// request went to a leader or a coordinator, until `default.api.timeout.ms` (60 s,
/// [`Admin::with_default_api_timeout`]) has passed since the call started: then it fails with
/// [`Error::AdminTimeout`] naming the last failure. A non-retriable error ends the call at once.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Cluster,
    coordinators: Coordinators,
    api_timeout: Duration,
    rng: Arc<Mutex<XorShift64Star>>,
}

impl Admin {
    /// Connects to a cluster through `bootstrap_servers` (comma-separated `host:port`).
    ///
    /// A bootstrap broker that is not reachable yet is retried with the reconnect backoff for
    /// up to 60 s (Java's `default.api.timeout.ms`); an unresolvable host name fails at once
    /// (`bootstrap.resolve.timeout.ms`=0; [`Admin::from_client_config`] honours another).
    /// The admin client never asks the broker to create a topic (its metadata requests set
    /// `allow_auto_topic_creation=false`); [`Admin::from_client_config`] takes other settings.
    pub async fn connect(bootstrap_servers: &str) -> Result<Admin> {
        let cluster = Cluster::connect(ClusterConfig::new(bootstrap_servers)).await?;
        Ok(Admin::over_cluster(cluster))
    }

    /// An admin client with `config`'s settings: the connection settings of
    /// [`AdminConfig::client`] and its `default.api.timeout.ms`, which bounds both the wait
    /// for a bootstrap broker and every call's retries (see
    /// [`Admin::with_default_api_timeout`]).
    ///
    /// ```no_run
    /// # async fn example() -> kafkit::Result<()> {
    /// use std::time::Duration;
    ///
    /// use kafkit::config::AdminConfig;
    /// use kafkit::Admin;
    ///
    /// let config = AdminConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("default.api.timeout.ms", "120000"),
    /// ])?;
    /// let admin = Admin::new(config).await?;
    /// assert_eq!(admin.default_api_timeout(), Duration::from_secs(120));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(config: AdminConfig) -> Result<Admin> {
        let mut cluster = ClusterConfig::from_client_config(config.client());
        cluster.bootstrap_timeout = config.default_api_timeout();
        let cluster = Cluster::connect(cluster).await?;
        Ok(Admin::over_cluster(cluster).with_default_api_timeout(config.default_api_timeout()))
    }

    /// An admin client with the connection settings of `client` (security, timeouts,
    /// backoffs), for an application that already has a producer or consumer config;
    /// `default.api.timeout.ms` is the default 60 s (use [`Admin::new`] with
    /// [`AdminConfig::from_client_config`] for another).
    ///
    /// ```no_run
    /// # async fn example() -> kafkit::Result<()> {
    /// use kafkit::{Admin, ConsumerConfig};
    ///
    /// let config = ConsumerConfig::from_properties([("bootstrap.servers", "localhost:9092")])?;
    /// let admin = Admin::from_client_config(config.client()).await?;
    /// println!("{} brokers", admin.describe_cluster().await?.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn from_client_config(client: &ClientConfig) -> Result<Admin> {
        let cluster = Cluster::connect(ClusterConfig::from_client_config(client)).await?;
        Ok(Admin::over_cluster(cluster))
    }

    /// An admin client over connections already open (`unstable-internals`: no semver promise).
    #[cfg(feature = "unstable-internals")]
    #[doc(hidden)]
    pub fn from_cluster(cluster: Cluster) -> Admin {
        Admin::over_cluster(cluster)
    }

    /// The connections this client uses (`unstable-internals`: no semver promise).
    #[cfg(feature = "unstable-internals")]
    #[doc(hidden)]
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Closes the client's connections: calls in flight may finish within `timeout`, then
    /// every connection closes. Later calls fail with [`Error::ShutDown`]. Clones share the
    /// connections: closing one closes them all.
    pub async fn close(&self, timeout: Duration) {
        self.cluster.shutdown(Instant::now() + timeout).await;
    }

    /// An admin client over connections already open.
    pub(crate) fn over_cluster(cluster: Cluster) -> Admin {
        let config = cluster.config();
        Admin {
            coordinators: Coordinators::with_retry_backoff(
                cluster.clone(),
                config.retry_backoff,
                config.retry_backoff_max,
            ),
            api_timeout: DEFAULT_API_TIMEOUT,
            rng: Arc::new(Mutex::new(XorShift64Star::from_entropy())),
            cluster,
        }
    }

    /// This client with another `default.api.timeout.ms`: how long each call retries its
    /// retriable failures before it fails with [`Error::AdminTimeout`]. Default 60 s. Clones
    /// made before keep theirs.
    ///
    /// ```no_run
    /// # async fn example() -> kafkit::Result<()> {
    /// use std::time::Duration;
    /// use kafkit::Admin;
    ///
    /// let admin = Admin::connect("127.0.0.1:9092")
    ///     .await?
    ///     .with_default_api_timeout(Duration::from_secs(10));
    /// assert_eq!(admin.default_api_timeout(), Duration::from_secs(10));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_default_api_timeout(mut self, timeout: Duration) -> Admin {
        self.api_timeout = timeout;
        self
    }

    /// `default.api.timeout.ms`: how long each call retries (see
    /// [`Admin::with_default_api_timeout`]).
    pub fn default_api_timeout(&self) -> Duration {
        self.api_timeout
    }

    fn rng(&self) -> MutexGuard<'_, XorShift64Star> {
        self.rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn timeout(&self) -> Duration {
        self.cluster.config().request_timeout
    }

    /// Creates topics, then waits (within the request timeout) until the metadata shows a
    /// leader for every partition, so that producing to them right away works.
    ///
    /// A topic that already exists is an error ([`ResponseError::TopicAlreadyExists`]); use
    /// [`Admin::create_topics_if_missing`] to accept it.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        self.create(topics, false).await
    }

    /// [`Admin::create_topics`], treating topics that already exist as created.
    pub async fn create_topics_if_missing(&self, topics: &[NewTopic]) -> Result<()> {
        self.create(topics, true).await
    }

    /// Creates `topics`, retrying as every admin call does. A topic-level retriable error
    /// (`NOT_CONTROLLER`, `REQUEST_TIMED_OUT`, a quota throttle, …) retries that topic only,
    /// as Java's `createTopics` does; topics created are not asked again. A topic created by
    /// an attempt whose answer was lost is `TOPIC_ALREADY_EXISTS` on the next one (as in Java).
    async fn create(&self, topics: &[NewTopic], exist_ok: bool) -> Result<()> {
        let name = if exist_ok {
            "create_topics_if_missing"
        } else {
            "create_topics"
        };
        let mut call = self.call(name, Route::AnyBroker);
        let mut pending: Vec<NewTopic> = topics.to_vec();
        while !pending.is_empty() {
            match self.create_once(&pending, exist_ok, call.attempt()).await {
                Ok(Ok(None)) => pending.clear(),
                Ok(Ok(Some((again, err)))) => {
                    pending.retain(|t| again.contains(&t.name));
                    call.failed(err).await?;
                }
                Ok(Err(refused)) => return Err(refused),
                Err(err) => call.failed(err).await?,
            }
        }
        // Any partition count: a topic that existed already ("if missing") may have fewer.
        let wanted: Vec<(&str, i32)> = topics.iter().map(|t| (t.name.as_str(), 1)).collect();
        self.wait_for_leaders(&wanted, &call).await
    }

    /// One CreateTopics attempt: `Err` when the request failed, else the topics' answers.
    async fn create_once(
        &self,
        topics: &[NewTopic],
        exist_ok: bool,
        at: call::Attempt,
    ) -> Result<TopicAnswers> {
        let request = requests::create_topics(topics, duration_ms(at.timeout));
        let conn = self.cluster.any_connection().await?;
        let version = conn.version(ApiKey::CreateTopics)?;
        let response = conn.send(&request, version, at.timeout).await?;
        let mut again = Vec::new();
        let mut first = None;
        for result in &response.topics {
            match ResponseError::try_from_code(result.error_code) {
                None => {}
                Some(ResponseError::TopicAlreadyExists) if exist_ok => {}
                Some(code) => {
                    let err = Error::Broker {
                        api: ApiKey::CreateTopics,
                        code,
                        message: Some(format!(
                            "{}: {}",
                            result.name.0.as_str(),
                            result.error_message.as_deref().unwrap_or("")
                        )),
                    };
                    if !retries_topic(code) {
                        return Ok(Err(err));
                    }
                    again.push(result.name.0.as_str().to_owned());
                    first.get_or_insert(err);
                }
            }
        }
        Ok(Ok(first.map(|err| (again, err))))
    }

    /// Polls metadata until each topic has at least its partition count (at least one) and
    /// every partition has a leader, or the call's deadline passes.
    async fn wait_for_leaders(&self, topics: &[(&str, i32)], call: &call::Call<'_>) -> Result<()> {
        let deadline = call.deadline();
        let names: Vec<&str> = topics.iter().map(|(t, _)| *t).collect();
        let mut pause = Duration::from_millis(20);
        loop {
            let last = match self.cluster.refresh_metadata(Some(&names)).await {
                Err(err) if !err.is_retriable() => return Err(err),
                Err(err) => Some(err),
                Ok(()) => None,
            };
            let ready = last.is_none() && {
                let metadata = self.cluster.metadata();
                topics.iter().all(|(t, count)| {
                    metadata.topic(t).is_some_and(|info| {
                        let n = i32::try_from(info.partitions.len()).unwrap_or(i32::MAX);
                        n >= (*count).max(1) && info.partitions.iter().all(|p| p.leader.is_some())
                    })
                })
            };
            if ready {
                return Ok(());
            }
            if Instant::now() + pause > deadline {
                return Err(call.timed_out(last.unwrap_or_else(|| Error::Broker {
                    api: ApiKey::Metadata,
                    code: ResponseError::LeaderNotAvailable,
                    message: Some(format!("no leader yet for every partition of {names:?}")),
                })));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Deletes topics by name. Deleting a topic that does not exist is an error
    /// ([`ResponseError::UnknownTopicOrPartition`]).
    ///
    /// A topic-level retriable error retries that topic only (as for creation); a topic
    /// deleted by an attempt whose answer was lost is `UNKNOWN_TOPIC_OR_PARTITION` on the next.
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<()> {
        let mut call = self.call("delete_topics", Route::AnyBroker);
        let mut pending: Vec<&str> = topics.to_vec();
        while !pending.is_empty() {
            match self.delete_once(&pending, call.attempt()).await {
                Ok(Ok(None)) => pending.clear(),
                Ok(Ok(Some((again, err)))) => {
                    pending.retain(|t| again.iter().any(|a| a == t));
                    call.failed(err).await?;
                }
                Ok(Err(refused)) => return Err(refused),
                Err(err) => call.failed(err).await?,
            }
        }
        Ok(())
    }

    /// One DeleteTopics attempt, answered as [`Admin::create_once`] is.
    async fn delete_once(&self, topics: &[&str], at: call::Attempt) -> Result<TopicAnswers> {
        let conn = self.cluster.any_connection().await?;
        let version = conn.version(ApiKey::DeleteTopics)?;
        let request = requests::delete_topics(topics, duration_ms(at.timeout), version);
        let response = conn.send(&request, version, at.timeout).await?;
        let mut again = Vec::new();
        let mut first = None;
        for result in &response.responses {
            let name = result.name.as_ref().map(|n| n.0.as_str()).unwrap_or("");
            if let Err(err) = Error::check(
                ApiKey::DeleteTopics,
                result.error_code,
                Some(&format!(
                    "{name}: {}",
                    result.error_message.as_deref().unwrap_or("")
                )),
            ) {
                if !matches!(&err, Error::Broker { code, .. } if retries_topic(*code)) {
                    return Ok(Err(err));
                }
                again.push(name.to_owned());
                first.get_or_insert(err);
            }
        }
        Ok(Ok(first.map(|err| (again, err))))
    }

    /// The brokers of the cluster, freshly fetched.
    pub async fn describe_cluster(&self) -> Result<Vec<BrokerInfo>> {
        self.retrying("describe_cluster", Route::AnyBroker, |_| {
            self.cluster.refresh_metadata(Some(&[]))
        })
        .await?;
        Ok(self.cluster.metadata().brokers().cloned().collect())
    }

    /// Topics with their partitions, leaders and replicas, freshly fetched. A topic that does
    /// not exist is an error.
    pub async fn describe_topics(&self, topics: &[&str]) -> Result<Vec<TopicInfo>> {
        self.retrying("describe_topics", Route::AnyBroker, |_| {
            self.cluster.refresh_metadata(Some(topics))
        })
        .await?;
        let metadata = self.cluster.metadata();
        topics
            .iter()
            .map(|t| match metadata.topic(t) {
                Some(info) if info.error.is_none() => Ok(info.clone()),
                Some(info) => Err(Error::Broker {
                    api: ApiKey::Metadata,
                    code: info.error.unwrap_or(ResponseError::UnknownServerError),
                    message: Some((*t).to_owned()),
                }),
                None => Err(Error::Broker {
                    api: ApiKey::Metadata,
                    code: ResponseError::UnknownTopicOrPartition,
                    message: Some((*t).to_owned()),
                }),
            })
            .collect()
    }

    /// Offsets of `partitions` of `topic`: earliest, latest, or by timestamp. Each partition is
    /// asked of its leader; retriable errors (a leader that moved or is not ready yet, a lost
    /// connection) are retried with fresh metadata, as every admin call is. A topic the
    /// cluster's metadata does not know fails at once with [`Error::Broker`]
    /// `UNKNOWN_TOPIC_OR_PARTITION` (`api` Metadata), as Java's `listOffsets`.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<Vec<ListedOffset>> {
        self.retrying("list_offsets", Route::Leader, |at| {
            self.list_offsets_once(topic, partitions, spec, at.timeout)
        })
        .await
    }

    async fn list_offsets_once(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
        timeout: Duration,
    ) -> Result<Vec<ListedOffset>> {
        self.cluster.refresh_metadata(Some(&[topic])).await?;
        // A topic-level error (UNKNOWN_TOPIC_OR_PARTITION: no such topic) is the answer, not
        // retried (`AdminRetry::is_retriable`), as Java's listOffsets.
        if let Some(code) = self.cluster.metadata().topic(topic).and_then(|t| t.error) {
            return Err(Error::Broker {
                api: ApiKey::Metadata,
                code,
                message: Some(topic.to_owned()),
            });
        }
        // Group the partitions by leader: one request per broker.
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in partitions {
            let leader = self.cluster.metadata().leader(topic, p).map(|b| b.node_id);
            let leader = leader.ok_or_else(|| Error::Broker {
                api: ApiKey::ListOffsets,
                code: ResponseError::LeaderNotAvailable,
                message: Some(format!("{topic}-{p}")),
            })?;
            by_leader.entry(leader).or_default().push(p);
        }
        let mut out = Vec::with_capacity(partitions.len());
        for (leader, parts) in by_leader {
            let conn = self.cluster.connection(leader).await?;
            let version = conn.version(ApiKey::ListOffsets)?;
            let request = requests::list_offsets(topic, &parts, spec, duration_ms(timeout));
            let response = conn.send(&request, version, timeout).await?;
            for t in &response.topics {
                for p in &t.partitions {
                    Error::check(
                        ApiKey::ListOffsets,
                        p.error_code,
                        Some(&format!("{topic}-{}", p.partition_index)),
                    )?;
                    out.push(ListedOffset {
                        partition: p.partition_index,
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: p.leader_epoch,
                    });
                }
            }
        }
        out.sort_by_key(|o| o.partition);
        Ok(out)
    }
}

/// The topic-level answers of one CreateTopics or DeleteTopics attempt: `Ok(None)` when every
/// topic is done, `Ok(Some)` with the topics to ask again and the first of their errors
/// ([`retries_topic`]), `Err` with the first topic's error that ends the call.
type TopicAnswers = std::result::Result<Option<(Vec<String>, Error)>, Error>;

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
