//! The classic-protocol group member's task: it owns the member's
//! [`ClassicMemberState`] and sends what the state asks for to the group coordinator.
//!
//! One task per member. Each request runs in a small task of its own (a JoinGroup may wait
//! for the whole rebalance timeout) and its outcome comes back to the member task, which
//! applies it to the state; the task also wakes for the consumer's calls and for the state's
//! timers (heartbeats, retries, `max.poll.interval.ms`). Every wait is bounded: requests by
//! their timeout, the task by the state's next deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, HeartbeatResponse, JoinGroupResponse, SyncGroupResponse};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use super::{GroupEvent, GroupGeneration, GroupSettings, GroupSubscription};
use crate::error::Error;
use crate::io::cluster::Cluster;
use crate::io::coordinator::Coordinators;
use crate::state::group::commit::{
    CommitError, CommittedOffsets, MemberIdentity, OffsetFetchQuery,
};
use crate::state::group::member::{ClassicMemberState, MemberConfig, MemberRequest, RequestKind};
use crate::state::group::OffsetAndMetadata;
use crate::state::group::TopicPartition;
use crate::Result;

/// What the consumer and the member task share.
#[derive(Debug)]
struct Shared {
    state: Mutex<ClassicMemberState>,
    /// Wakes the member task (a consumer call changed the state).
    wake: Notify,
    /// Wakes `next_event` (an event or the end).
    events: Notify,
    subscription: Mutex<GroupSubscription>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ClassicMemberState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A classic-protocol consumer group member (JoinGroup, SyncGroup, Heartbeat).
#[derive(Debug)]
pub struct ClassicMember {
    shared: Arc<Shared>,
    cluster: Cluster,
    coordinators: Coordinators,
    settings: GroupSettings,
    task: Option<JoinHandle<()>>,
}

impl ClassicMember {
    /// Starts the member's task; returns without waiting for an assignment.
    pub async fn join(
        cluster: Cluster,
        settings: GroupSettings,
        subscription: GroupSubscription,
    ) -> Result<Self> {
        if settings.assignors.is_empty() {
            return Err(crate::config::ConfigError::invalid(
                "partition.assignment.strategy",
                "",
                "at least one assignor is needed",
            )
            .into());
        }
        let topics = resolve(&cluster, &subscription).await?;
        let config = MemberConfig {
            group_id: settings.group_id.clone(),
            group_instance_id: settings.group_instance_id.clone(),
            session_timeout: settings.session_timeout,
            rebalance_timeout: settings.rebalance_timeout,
            heartbeat_interval: settings.heartbeat_interval,
            assignors: settings.assignors.clone(),
            rack_id: settings.rack_id.clone(),
            retry_backoff: settings.retry_backoff,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(ClassicMemberState::new(config, topics, Instant::now())),
            wake: Notify::new(),
            events: Notify::new(),
            subscription: Mutex::new(subscription),
        });
        let coordinators = Coordinators::with_retry_backoff(
            cluster.clone(),
            settings.retry_backoff,
            settings.retry_backoff.max(Duration::from_secs(1)),
        );
        let task = tokio::spawn(run(shared.clone(), coordinators.clone(), settings.clone()));
        Ok(ClassicMember {
            shared,
            cluster,
            coordinators,
            settings,
            task: Some(task),
        })
    }

    /// The next event; cancel-safe. An error ends the member (a fatal broker error, or
    /// [`Error::ShutDown`] once closed).
    pub async fn next_event(&self) -> Result<GroupEvent> {
        loop {
            let notified = self.shared.events.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.shared.state();
                if let Some(event) = state.poll_event() {
                    return Ok(event);
                }
                if let Some(err) = state.fatal() {
                    return Err(err.clone());
                }
                if state.is_done() {
                    return Err(Error::ShutDown { broker: None });
                }
            }
            notified.await;
        }
    }

    /// The consumer gave up `partitions`; the rebalance goes on.
    pub fn revocation_done(&self, partitions: &[TopicPartition]) {
        self.shared
            .state()
            .revocation_done(Instant::now(), partitions);
        self.shared.wake.notify_one();
    }

    /// The application is still consuming (`max.poll.interval.ms`).
    pub fn poll_tick(&self) {
        self.shared.state().poll_tick(Instant::now());
        self.shared.wake.notify_one();
    }

    /// The partitions owned now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.state().assignment()
    }

    /// The current generation, once joined.
    pub fn generation(&self) -> Option<GroupGeneration> {
        self.shared.state().generation()
    }

    /// The member's generation if it is in the group with an assignment (what commits need).
    pub fn stable_generation(&self) -> Option<GroupGeneration> {
        let state = self.shared.state();
        if state.is_stable() {
            state.generation()
        } else {
            None
        }
    }

    /// Commits `offsets` with the member's generation (see [`super::GroupMember::commit`]).
    /// While a JoinGroup/SyncGroup is under way this fails at once with
    /// [`CommitError::RebalanceInProgress`], as Java's `commitSync` does.
    pub async fn commit(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let identity = {
            let state = self.shared.state();
            match state.commit_generation() {
                Some(g) => MemberIdentity::member(
                    g.generation_id,
                    g.member_id,
                    self.settings.group_instance_id.clone(),
                ),
                None if state.is_rebalancing() => return Err(CommitError::RebalanceInProgress),
                None => return Err(CommitError::UnknownMemberId),
            }
        };
        let deadline = Instant::now() + self.settings.request_timeout;
        self.coordinators
            .commit_offsets(&self.settings.group_id, &identity, offsets, deadline)
            .await
    }

    /// The group's committed offsets of `partitions` (OffsetFetch with `require_stable`,
    /// retrying `UNSTABLE_OFFSET_COMMIT` and coordinator errors until `request.timeout.ms`).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<CommittedOffsets, CommitError> {
        let query = OffsetFetchQuery::partitions(self.settings.group_id.clone(), partitions);
        let deadline = Instant::now() + self.settings.request_timeout;
        self.coordinators
            .fetch_offsets(&query, true, deadline)
            .await
    }

    /// The coordinator's node id, when known.
    pub fn coordinator(&self) -> Option<i32> {
        self.shared.state().coordinator()
    }

    /// The cluster the member talks through.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The member's settings.
    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    /// Changes the subscription; a pattern is matched against the metadata at the next
    /// refresh, a topic list applies now (rejoining if it changed).
    pub fn update_subscription(&self, subscription: GroupSubscription) {
        if let GroupSubscription::Topics(topics) = &subscription {
            self.shared
                .state()
                .update_topics(Instant::now(), topics.clone());
        }
        *self
            .shared
            .subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = subscription;
        self.shared.wake.notify_one();
    }

    /// Leaves the group (dynamic members send LeaveGroup) and stops the task, by `deadline`.
    /// An error says why the LeaveGroup failed (the coordinator then drops the member only
    /// after `session.timeout.ms`); [`Error::is_client_bug`] when kafkit could not encode it.
    pub async fn close(mut self, deadline: Instant) -> Result<()> {
        self.shared.state().close(Instant::now());
        self.shared.wake.notify_one();
        if let Some(mut task) = self.task.take() {
            let deadline = tokio::time::Instant::from_std(deadline);
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                debug!(group = %self.settings.group_id, "group member did not stop by the deadline: aborting it");
                task.abort();
            }
        }
        self.shared.events.notify_waiters();
        match self.shared.state().leave_error() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }
}

impl Drop for ClassicMember {
    fn drop(&mut self) {
        // Dropped without close: stop heartbeating (the coordinator expires the member after
        // the session timeout).
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The topics a subscription names now.
async fn resolve(cluster: &Cluster, subscription: &GroupSubscription) -> Result<Vec<String>> {
    match subscription {
        GroupSubscription::Topics(topics) => Ok(topics.clone()),
        GroupSubscription::Pattern(pattern) => {
            let matcher = super::TopicPattern::new(pattern)?;
            cluster.refresh_metadata(None).await?;
            let names = cluster.metadata().topic_names();
            Ok(names.into_iter().filter(|t| matcher.matches(t)).collect())
        }
    }
}

/// The outcome of one request, brought back to the member task.
enum Outcome {
    Coordinator(Result<i32>),
    Join(Result<JoinGroupResponse>),
    Counts(Result<BTreeMap<String, i32>>),
    Sync(Result<SyncGroupResponse>),
    Heartbeat(Result<HeartbeatResponse>),
    Leave(Result<()>),
    Metadata(Result<(Vec<String>, BTreeMap<String, i32>)>),
}

async fn run(shared: Arc<Shared>, coordinators: Coordinators, settings: GroupSettings) {
    let cluster = coordinators.cluster().clone();
    // metadata.max.age.ms: the leader's partition-count check and the pattern re-match.
    let refresh_every = settings.metadata_max_age.max(Duration::from_millis(100));
    let mut requests: JoinSet<Outcome> = JoinSet::new();
    let mut next_metadata = Instant::now() + refresh_every;
    let mut metadata_in_flight = false;
    loop {
        let now = Instant::now();
        let mut due = {
            let mut state = shared.state();
            while let Some(request) = state.poll_request(now) {
                let coordinator = state.coordinator();
                requests.spawn(send(
                    coordinators.clone(),
                    settings.clone(),
                    coordinator,
                    request,
                ));
            }
            if state.is_done() {
                // Closed (LeaveGroup answered or not needed) or failed: nothing more to send.
                requests.abort_all();
                break;
            }
            state.poll_timeout()
        };
        shared.events.notify_waiters();
        if !metadata_in_flight && now >= next_metadata {
            metadata_in_flight = true;
            let subscription = shared
                .subscription
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            requests.spawn(refresh(cluster.clone(), subscription));
        }
        if !metadata_in_flight {
            due = Some(due.map_or(next_metadata, |d| d.min(next_metadata)));
        }
        // Bounded: at least once per metadata refresh period.
        let until = due
            .unwrap_or(now + refresh_every)
            .max(now + Duration::from_millis(1));
        tokio::select! {
            Some(done) = requests.join_next(), if !requests.is_empty() => {
                let Ok(outcome) = done else { continue };
                let now = Instant::now();
                let mut state = shared.state();
                match outcome {
                    Outcome::Coordinator(r) => state.handle_coordinator(now, r),
                    Outcome::Join(Ok(r)) => state.handle_join(now, &r),
                    Outcome::Join(Err(e)) => state.handle_request_failed(now, RequestKind::JoinGroup, &e),
                    Outcome::Counts(Ok(c)) => state.handle_partition_counts(now, c),
                    Outcome::Counts(Err(e)) => state.handle_request_failed(now, RequestKind::PartitionCounts, &e),
                    Outcome::Sync(Ok(r)) => state.handle_sync(now, &r),
                    Outcome::Sync(Err(e)) => state.handle_request_failed(now, RequestKind::SyncGroup, &e),
                    Outcome::Heartbeat(Ok(r)) => state.handle_heartbeat(now, &r),
                    Outcome::Heartbeat(Err(e)) => state.handle_request_failed(now, RequestKind::Heartbeat, &e),
                    Outcome::Leave(Ok(())) => state.handle_leave(now),
                    Outcome::Leave(Err(e)) => state.handle_request_failed(now, RequestKind::LeaveGroup, &e),
                    Outcome::Metadata(r) => {
                        metadata_in_flight = false;
                        next_metadata = now + refresh_every;
                        if let Ok((topics, counts)) = r {
                            state.update_topics(now, topics);
                            state.handle_metadata(now, &counts);
                        }
                    }
                }
            }
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
        }
    }
    shared.events.notify_waiters();
}

/// Sends one request the state asked for.
async fn send(
    coordinators: Coordinators,
    settings: GroupSettings,
    coordinator: Option<i32>,
    request: MemberRequest,
) -> Outcome {
    let cluster = coordinators.cluster().clone();
    let timeout = settings.request_timeout;
    match request {
        MemberRequest::FindCoordinator => {
            Outcome::Coordinator(find_coordinator(&coordinators, &settings).await)
        }
        MemberRequest::PartitionCounts(topics) => {
            Outcome::Counts(partition_counts(&cluster, &topics).await)
        }
        MemberRequest::JoinGroup(req) => {
            // The coordinator answers when the rebalance completes (Java waits
            // rebalance.timeout + 5 s).
            let timeout = timeout.max(settings.rebalance_timeout + Duration::from_secs(5));
            Outcome::Join(
                async {
                    let conn = coordinators.node_connection(node(coordinator)?).await?;
                    conn.send(&req, conn.version(ApiKey::JoinGroup)?, timeout)
                        .await
                }
                .await,
            )
        }
        MemberRequest::SyncGroup(req) => Outcome::Sync(
            async {
                let conn = coordinators.node_connection(node(coordinator)?).await?;
                conn.send(&req, conn.version(ApiKey::SyncGroup)?, timeout)
                    .await
            }
            .await,
        ),
        MemberRequest::Heartbeat(req) => Outcome::Heartbeat(
            async {
                let conn = coordinators.node_connection(node(coordinator)?).await?;
                conn.send(&req, conn.version(ApiKey::Heartbeat)?, timeout)
                    .await
            }
            .await,
        ),
        MemberRequest::LeaveGroup(leave) => Outcome::Leave(
            async {
                let conn = coordinators.node_connection(node(coordinator)?).await?;
                let version = conn.version(ApiKey::LeaveGroup)?;
                let response = conn.send(&leave.request(version), version, timeout).await?;
                Error::check(ApiKey::LeaveGroup, response.error_code, None)
            }
            .await,
        ),
    }
}

fn node(coordinator: Option<i32>) -> Result<i32> {
    coordinator.ok_or(Error::Broker {
        api: ApiKey::FindCoordinator,
        code: ResponseError::CoordinatorNotAvailable,
        message: None,
    })
}

/// FindCoordinator for the group, through the shared cache (forgotten first: the state asks
/// only when it lost the coordinator).
async fn find_coordinator(coordinators: &Coordinators, settings: &GroupSettings) -> Result<i32> {
    let group = settings.group_id.as_str();
    coordinators.invalidate(group);
    let deadline = Instant::now() + settings.request_timeout;
    let found = coordinators.find(&[group], deadline).await?;
    found.get(group).copied().ok_or(Error::Broker {
        api: ApiKey::FindCoordinator,
        code: ResponseError::CoordinatorNotAvailable,
        message: None,
    })
}

/// Fresh partition counts of `topics` (topics without metadata are left out).
async fn partition_counts(cluster: &Cluster, topics: &[String]) -> Result<BTreeMap<String, i32>> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    cluster.refresh_metadata(Some(&names)).await?;
    let metadata = cluster.metadata();
    Ok(topics
        .iter()
        .filter_map(|t| {
            let n = metadata.partition_count(t)?;
            Some((t.clone(), i32::try_from(n).unwrap_or(i32::MAX)))
        })
        .collect())
}

/// The periodic refresh: the subscription's topics now and their partition counts.
async fn refresh(cluster: Cluster, subscription: GroupSubscription) -> Outcome {
    Outcome::Metadata(
        async {
            let topics = match &subscription {
                GroupSubscription::Topics(t) => t.clone(),
                GroupSubscription::Pattern(_) => resolve(&cluster, &subscription).await?,
            };
            let counts = partition_counts(&cluster, &topics).await?;
            Ok((topics, counts))
        }
        .await,
    )
}
