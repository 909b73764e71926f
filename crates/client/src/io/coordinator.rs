//! Group coordinators: finding them (FindCoordinator, cached per group id), and committing and
//! fetching offsets through them with retries until a deadline.
//!
//! The decisions are pure ([`crate::state::group::coordinator`] for lookups and what errors
//! mean, [`crate::state::group::commit`] for OffsetCommit/OffsetFetch); this module sends and
//! waits:
//!
//! - a group's coordinator is cached after a lookup and forgotten on `NOT_COORDINATOR`,
//!   `COORDINATOR_NOT_AVAILABLE`, a request timeout or a connection failure; the next call
//!   looks it up again (FindCoordinator v4+ batches keys; v0–3 ask one at a time);
//! - retriable errors (those, `COORDINATOR_LOAD_IN_PROGRESS`, `UNSTABLE_OFFSET_COMMIT`) are
//!   retried after `retry.backoff.ms` doubling up to `retry.backoff.max.ms` (±20%), never
//!   past the caller's deadline; each request's timeout is the smaller of
//!   `request.timeout.ms` and the time left;
//! - every request to a coordinator goes on the coordinator's own connection
//!   ([`Cluster::coordinator_connection`]), never on the socket a consumer long-polls Fetch on
//!   (the broker answers one request per connection at a time): a commit or a heartbeat does
//!   not wait for `fetch.max.wait.ms`. FindCoordinator goes to the least loaded open
//!   connection ([`Cluster::any_connection`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//! use kafkit::io::cluster::{Cluster, ClusterConfig};
//! use kafkit::io::coordinator::Coordinators;
//! use kafkit::state::group::commit::{MemberIdentity, OffsetFetchQuery};
//! use kafkit::state::group::{OffsetAndMetadata, TopicPartition};
//!
//! let cluster = Cluster::connect(ClusterConfig::new("127.0.0.1:9092")).await?;
//! let coordinators = Coordinators::new(cluster);
//! let deadline = Instant::now() + Duration::from_secs(30);
//! let offsets = BTreeMap::from([(TopicPartition::new("orders", 0), OffsetAndMetadata::new(42))]);
//! coordinators.commit_offsets("billing", &MemberIdentity::admin(), &offsets, deadline).await?;
//! let committed = coordinators
//!     .fetch_offsets(&OffsetFetchQuery::all("billing"), true, deadline)
//!     .await?;
//! assert_eq!(committed[&TopicPartition::new("orders", 0)].as_ref().map(|o| o.offset), Some(42));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use tracing::debug;

use super::cluster::Cluster;
use super::connection::Connection;
use crate::error::{Error, Result};
use crate::state::backoff::ExponentialBackoff;
use crate::state::group::commit::{
    commit_outcome, fetch_results, offset_commit_request, offset_fetch_request, CommitError,
    CommittedOffsets, MemberIdentity, OffsetFetchQuery,
};
use crate::state::group::coordinator::{
    coordinator_action, find_coordinator_request, lookup_results, CoordinatorAction,
    CoordinatorCache, Lookup,
};
use crate::state::group::{OffsetAndMetadata, TopicPartition};
use crate::state::metadata::BrokerInfo;
use crate::state::rng::XorShift64Star;

/// Group coordinators of one cluster: lookups, a cache, and offset commits and fetches.
///
/// Cheap to clone (shared state). A group member or an admin client keeps one.
#[derive(Debug, Clone)]
pub struct Coordinators {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cluster: Cluster,
    cache: Mutex<CoordinatorCache>,
    retry: ExponentialBackoff,
    rng: Mutex<XorShift64Star>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The timeout for one request sent now: `request.timeout.ms`, cut to the time left before
/// `deadline`; `None` once the deadline has passed.
pub fn request_timeout(cluster: &Cluster, deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    if left.is_zero() {
        return None;
    }
    Some(cluster.config().request_timeout.min(left))
}

impl Coordinators {
    /// Coordinators of `cluster`, retrying with the Java client's `retry.backoff.ms` (100 ms)
    /// and `retry.backoff.max.ms` (1 s).
    pub fn new(cluster: Cluster) -> Coordinators {
        Coordinators::with_retry_backoff(
            cluster,
            Duration::from_millis(100),
            Duration::from_secs(1),
        )
    }

    /// Coordinators of `cluster` with another retry backoff (`retry.backoff.ms`,
    /// `retry.backoff.max.ms`).
    pub fn with_retry_backoff(cluster: Cluster, initial: Duration, max: Duration) -> Coordinators {
        Coordinators {
            inner: Arc::new(Inner {
                cluster,
                cache: Mutex::new(CoordinatorCache::default()),
                retry: ExponentialBackoff::new(initial, max),
                rng: Mutex::new(XorShift64Star::from_entropy()),
            }),
        }
    }

    /// The cluster the coordinators belong to.
    pub fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    /// The cached coordinator of `group`, if any.
    pub fn cached(&self, group: &str) -> Option<i32> {
        lock(&self.inner.cache).get(group)
    }

    /// Forgets the coordinator of `group`; the next call looks it up again.
    pub fn invalidate(&self, group: &str) {
        lock(&self.inner.cache).invalidate(group);
    }

    /// Sleeps the retry backoff after `attempts` failures, unless that would pass `deadline`:
    /// then returns `false` at once.
    pub async fn backoff(&self, attempts: u32, deadline: Instant) -> bool {
        let pause = {
            let mut rng = lock(&self.inner.rng);
            self.inner.retry.backoff(attempts, &mut *rng)
        };
        if Instant::now() + pause >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        true
    }

    /// Finds the coordinators of `groups` (cached ones are not asked again), retrying until
    /// `deadline` while the answer is "not available yet". One request for all of them from
    /// FindCoordinator v4, one per group below.
    ///
    /// Fails with the broker's error for a group it refuses for good
    /// (`GROUP_AUTHORIZATION_FAILED`, …), or the last retriable error at the deadline.
    pub async fn find(&self, groups: &[&str], deadline: Instant) -> Result<BTreeMap<String, i32>> {
        let mut found = BTreeMap::new();
        let mut missing: Vec<&str> = Vec::new();
        for g in groups {
            match self.cached(g) {
                Some(node) => {
                    found.insert((*g).to_owned(), node);
                }
                None if !missing.contains(g) => missing.push(g),
                None => {}
            }
        }
        let mut attempts = 0;
        while !missing.is_empty() {
            let last = match self.find_once(&missing, deadline).await {
                Ok(round) => {
                    let mut failure = None;
                    for (group, lookup) in round {
                        match lookup {
                            Lookup::Found(info) => {
                                self.inner.cluster.update_metadata(|m| {
                                    m.add_broker(BrokerInfo {
                                        node_id: info.node_id,
                                        host: info.host.clone(),
                                        port: info.port,
                                        rack: None,
                                    })
                                });
                                lock(&self.inner.cache).insert(&group, info.node_id);
                                missing.retain(|g| *g != group);
                                found.insert(group, info.node_id);
                            }
                            Lookup::Failed(code, message) => {
                                return Err(Error::Broker {
                                    api: ApiKey::FindCoordinator,
                                    code,
                                    message: Some(format!(
                                        "group {group}: {}",
                                        message.unwrap_or_default()
                                    )),
                                });
                            }
                            Lookup::Retry(code) => {
                                failure = Some(Error::Broker {
                                    api: ApiKey::FindCoordinator,
                                    code,
                                    message: Some(format!("group {group}")),
                                });
                            }
                        }
                    }
                    failure
                }
                Err(err) if err.is_retriable() => Some(err),
                Err(err) => return Err(err),
            };
            if missing.is_empty() {
                break;
            }
            debug!(groups = ?missing, error = ?last, "coordinator not found yet");
            if !self.backoff(attempts, deadline).await {
                return Err(last.unwrap_or(Error::Broker {
                    api: ApiKey::FindCoordinator,
                    code: ResponseError::CoordinatorNotAvailable,
                    message: Some(format!("groups {missing:?}: deadline passed")),
                }));
            }
            attempts = attempts.saturating_add(1);
        }
        Ok(found)
    }

    /// One lookup round for `groups` on any broker.
    async fn find_once(
        &self,
        groups: &[&str],
        deadline: Instant,
    ) -> Result<BTreeMap<String, Lookup>> {
        let cluster = &self.inner.cluster;
        let conn = cluster.any_connection().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        let batches: Vec<&[&str]> = if version >= 4 {
            vec![groups]
        } else {
            groups.chunks(1).collect()
        };
        let mut out = BTreeMap::new();
        for batch in batches {
            let timeout = request_timeout(cluster, deadline).ok_or_else(|| Error::Broker {
                api: ApiKey::FindCoordinator,
                code: ResponseError::CoordinatorNotAvailable,
                message: Some(format!("groups {batch:?}: deadline passed")),
            })?;
            let request = find_coordinator_request(batch, version).map_err(|e| Error::Broker {
                api: ApiKey::FindCoordinator,
                code: ResponseError::InvalidRequest,
                message: Some(e.to_string()),
            })?;
            let response = conn.send(&request, version, timeout).await?;
            out.extend(lookup_results(&response, batch, version));
        }
        Ok(out)
    }

    /// The coordinator connection to broker `node` (see [`Cluster::coordinator_connection`]):
    /// what every request to a group coordinator is sent on.
    pub async fn node_connection(&self, node: i32) -> Result<Connection> {
        self.inner.cluster.coordinator_connection(node).await
    }

    /// A connection to the coordinator of `group`, looked up if not cached (the coordinator's
    /// own connection: [`Coordinators::node_connection`]).
    pub async fn connection(&self, group: &str, deadline: Instant) -> Result<(i32, Connection)> {
        let found = self.find(&[group], deadline).await?;
        let node = found.get(group).copied().ok_or_else(|| Error::Broker {
            api: ApiKey::FindCoordinator,
            code: ResponseError::CoordinatorNotAvailable,
            message: Some(format!("group {group}")),
        })?;
        match self.node_connection(node).await {
            Ok(conn) => Ok((node, conn)),
            Err(err) => {
                // The broker is unknown, gone or unreachable: look the coordinator up again.
                self.invalidate(group);
                Err(err)
            }
        }
    }

    /// Runs `call` with a connection to the coordinator of `group` (and its node id), looking
    /// the coordinator up again when `call` fails with NOT_COORDINATOR,
    /// COORDINATOR_NOT_AVAILABLE, a timeout or a connection error, and retrying
    /// COORDINATOR_LOAD_IN_PROGRESS and other retriable errors after a backoff, until
    /// `deadline` (see [`coordinator_action`]). `call` should turn the response's error code
    /// into an [`Error::Broker`] so that it is classified.
    ///
    /// ```no_run
    /// # async fn example(coordinators: kafkit::io::coordinator::Coordinators) -> kafkit::Result<()> {
    /// use std::time::{Duration, Instant};
    /// use kafka_protocol::messages::{ApiKey, GroupId, LeaveGroupRequest};
    /// use kafka_protocol::protocol::StrBytes;
    /// use kafkit::Error;
    ///
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// coordinators
    ///     .call("billing", deadline, |_node, conn| async move {
    ///         let version = conn.version(ApiKey::LeaveGroup)?;
    ///         let request = LeaveGroupRequest::default()
    ///             .with_group_id(GroupId(StrBytes::from_static_str("billing")));
    ///         let response = conn.send(&request, version, Duration::from_secs(5)).await?;
    ///         Error::check(ApiKey::LeaveGroup, response.error_code, None)
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn call<T, F, Fut>(&self, group: &str, deadline: Instant, mut call: F) -> Result<T>
    where
        F: FnMut(i32, Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempts = 0;
        loop {
            let result = match self.connection(group, deadline).await {
                Ok((node, conn)) => call(node, conn).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(err) => {
                    let action = coordinator_action(&err);
                    if action == CoordinatorAction::Rediscover {
                        self.invalidate(group);
                    }
                    debug!(group, error = %err, ?action, attempts, "coordinator call failed");
                    if action == CoordinatorAction::Fail || !self.backoff(attempts, deadline).await
                    {
                        return Err(err);
                    }
                    attempts = attempts.saturating_add(1);
                }
            }
        }
    }

    /// Commits `offsets` for `group` as `identity` ([`MemberIdentity::admin`] for no
    /// membership), retrying retriable errors (with a new coordinator lookup when it moved)
    /// until `deadline`. Membership errors (`REBALANCE_IN_PROGRESS`, `ILLEGAL_GENERATION`,
    /// `UNKNOWN_MEMBER_ID`, `FENCED_INSTANCE_ID`, `STALE_MEMBER_EPOCH`) return at once.
    pub async fn commit_offsets(
        &self,
        group: &str,
        identity: &MemberIdentity,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        deadline: Instant,
    ) -> Result<(), CommitError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut attempts = 0;
        loop {
            let result = self.commit_once(group, identity, offsets, deadline).await;
            match result {
                Ok(()) => return Ok(()),
                Err(err) => {
                    if err.needs_coordinator_lookup() {
                        self.invalidate(group);
                    }
                    debug!(group, error = %err, attempts, "offset commit failed");
                    if !err.is_retriable() || !self.backoff(attempts, deadline).await {
                        return Err(err);
                    }
                    attempts = attempts.saturating_add(1);
                }
            }
        }
    }

    async fn commit_once(
        &self,
        group: &str,
        identity: &MemberIdentity,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        deadline: Instant,
    ) -> Result<(), CommitError> {
        let (_, conn) = self
            .connection(group, deadline)
            .await
            .map_err(lookup_error)?;
        let version = conn.version(ApiKey::OffsetCommit)?;
        let request = offset_commit_request(group, identity, offsets, version)?;
        let timeout = request_timeout(&self.inner.cluster, deadline)
            .ok_or(CommitError::Broker(ResponseError::RequestTimedOut))?;
        let response = conn.send(&request, version, timeout).await?;
        commit_outcome(&response, offsets)
    }

    /// The committed offsets `query` asks for (`None` for a partition with nothing
    /// committed), retrying retriable errors (coordinator moved or loading,
    /// `UNSTABLE_OFFSET_COMMIT` when `require_stable`) until `deadline`.
    pub async fn fetch_offsets(
        &self,
        query: &OffsetFetchQuery,
        require_stable: bool,
        deadline: Instant,
    ) -> Result<CommittedOffsets, CommitError> {
        let mut attempts = 0;
        loop {
            match self.fetch_once(query, require_stable, deadline).await {
                Ok(offsets) => return Ok(offsets),
                Err(err) => {
                    if err.needs_coordinator_lookup() {
                        self.invalidate(&query.group_id);
                    }
                    debug!(group = %query.group_id, error = %err, attempts, "offset fetch failed");
                    if !err.is_retriable() || !self.backoff(attempts, deadline).await {
                        return Err(err);
                    }
                    attempts = attempts.saturating_add(1);
                }
            }
        }
    }

    /// The committed offsets of several groups: one FindCoordinator round for all of them,
    /// then one OffsetFetch per coordinator from v8 (`groups` batching; one per group below).
    /// A group whose answer is a retriable error is then fetched on its own with
    /// [`Coordinators::fetch_offsets`] (retries until `deadline`); other errors are that
    /// group's result.
    pub async fn fetch_offsets_many(
        &self,
        queries: &[OffsetFetchQuery],
        require_stable: bool,
        deadline: Instant,
    ) -> BTreeMap<String, Result<CommittedOffsets, CommitError>> {
        let mut results = BTreeMap::new();
        let groups: Vec<&str> = queries.iter().map(|q| q.group_id.as_str()).collect();
        let nodes = self.find(&groups, deadline).await.unwrap_or_default();
        let mut by_node: BTreeMap<i32, Vec<OffsetFetchQuery>> = BTreeMap::new();
        let mut alone: Vec<&OffsetFetchQuery> = Vec::new();
        for q in queries {
            match nodes.get(&q.group_id) {
                Some(&node) => by_node.entry(node).or_default().push(q.clone()),
                None => alone.push(q),
            }
        }
        let mut retry: Vec<OffsetFetchQuery> = Vec::new();
        for (node, batch) in by_node {
            match self
                .fetch_batch(node, &batch, require_stable, deadline)
                .await
            {
                Ok(answers) => {
                    for q in batch {
                        match answers.get(&q.group_id) {
                            Some(Ok(offsets)) => {
                                results.insert(q.group_id.clone(), Ok(offsets.clone()));
                            }
                            Some(Err(err)) if !err.is_retriable() => {
                                results.insert(q.group_id.clone(), Err(err.clone()));
                            }
                            _ => retry.push(q),
                        }
                    }
                }
                Err(_) => retry.extend(batch),
            }
        }
        for q in alone.into_iter().cloned().chain(retry) {
            let result = self.fetch_offsets(&q, require_stable, deadline).await;
            results.insert(q.group_id, result);
        }
        results
    }

    /// One OffsetFetch (v8+: all of `batch`; below: the groups one by one) to `node`.
    async fn fetch_batch(
        &self,
        node: i32,
        batch: &[OffsetFetchQuery],
        require_stable: bool,
        deadline: Instant,
    ) -> Result<BTreeMap<String, Result<CommittedOffsets, CommitError>>, CommitError> {
        let conn = self.node_connection(node).await?;
        let version = conn.version(ApiKey::OffsetFetch)?;
        let chunks: Vec<&[OffsetFetchQuery]> = if version >= 8 {
            vec![batch]
        } else {
            batch.chunks(1).collect()
        };
        let mut out = BTreeMap::new();
        for chunk in chunks {
            let request = offset_fetch_request(chunk, require_stable, version)?;
            let timeout = request_timeout(&self.inner.cluster, deadline)
                .ok_or(CommitError::Broker(ResponseError::RequestTimedOut))?;
            let response = conn.send(&request, version, timeout).await?;
            out.extend(fetch_results(&response, chunk, version));
        }
        Ok(out)
    }

    async fn fetch_once(
        &self,
        query: &OffsetFetchQuery,
        require_stable: bool,
        deadline: Instant,
    ) -> Result<CommittedOffsets, CommitError> {
        let (_, conn) = self
            .connection(&query.group_id, deadline)
            .await
            .map_err(lookup_error)?;
        let version = conn.version(ApiKey::OffsetFetch)?;
        let queries = std::slice::from_ref(query);
        let request = offset_fetch_request(queries, require_stable, version)?;
        let timeout = request_timeout(&self.inner.cluster, deadline)
            .ok_or(CommitError::Broker(ResponseError::RequestTimedOut))?;
        let response = conn.send(&request, version, timeout).await?;
        fetch_results(&response, queries, version)
            .remove(&query.group_id)
            .unwrap_or(Err(CommitError::Broker(ResponseError::UnknownServerError)))
    }
}

/// A failed coordinator lookup as a commit error: the broker's refusal typed (e.g.
/// `GROUP_AUTHORIZATION_FAILED`), anything else as a client error.
fn lookup_error(err: Error) -> CommitError {
    match err {
        Error::Broker {
            api: ApiKey::FindCoordinator,
            code,
            ..
        } => CommitError::from_code(code, None),
        other => CommitError::Client(other),
    }
}

/// Commits `offsets` for `group` through `coordinators` (see [`Coordinators::commit_offsets`]).
pub async fn commit_offsets(
    coordinators: &Coordinators,
    group: &str,
    identity: &MemberIdentity,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    deadline: Instant,
) -> Result<(), CommitError> {
    coordinators
        .commit_offsets(group, identity, offsets, deadline)
        .await
}

/// Fetches committed offsets through `coordinators` (see [`Coordinators::fetch_offsets`]).
pub async fn fetch_offsets(
    coordinators: &Coordinators,
    query: &OffsetFetchQuery,
    require_stable: bool,
    deadline: Instant,
) -> Result<CommittedOffsets, CommitError> {
    coordinators
        .fetch_offsets(query, require_stable, deadline)
        .await
}
