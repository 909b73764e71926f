//! The KIP-848 group member's task (`group.protocol=consumer`): it owns the member's
//! [`ConsumerMemberState`] and sends the heartbeats the state asks for to the group
//! coordinator.
//!
//! One task per member, the same shape as the classic member's: the coordinator lookup, each
//! heartbeat and each metadata refresh run as small tasks whose outcomes come back to the
//! member task, which applies them to the state; the task also wakes for the consumer's calls
//! and for the state's timers (heartbeat interval, retries, `max.poll.interval.ms`). Every
//! wait is bounded: requests by `request.timeout.ms`, the task by the state's next deadline
//! (at most [`IDLE_WAKE`]).
//!
//! Commits and offset fetches go through the shared [`Coordinators`] with the member epoch
//! as the generation id.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error};

use super::{GroupEvent, GroupGeneration, GroupSettings, GroupSubscription};
use crate::error::Error;
use crate::io::cluster::Cluster;
use crate::io::connection::Connection;
use crate::io::coordinator::Coordinators;
use crate::state::group::commit::{
    CommitError, CommittedOffsets, MemberIdentity, OffsetFetchQuery,
};
use crate::state::group::consumer_member::{
    new_member_id, ConsumerMemberConfig, ConsumerMemberState, HeartbeatResult, MemberState,
    OutgoingHeartbeat, SubscribedTopics,
};
use crate::state::group::{OffsetAndMetadata, TopicPartition};
use crate::Result;

/// The longest the member task sleeps without a reason (a bound, not a heartbeat period).
pub const IDLE_WAKE: Duration = Duration::from_secs(30);

/// What the consumer and the member task share.
#[derive(Debug)]
struct Shared {
    state: Mutex<ConsumerMemberState>,
    /// Wakes the member task (a consumer call changed the state).
    wake: Notify,
    /// Wakes `next_event` (an event or the end).
    events: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ConsumerMemberState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A KIP-848 consumer group member (ConsumerGroupHeartbeat; the broker assigns).
#[derive(Debug)]
pub struct ConsumerMember {
    shared: Arc<Shared>,
    cluster: Cluster,
    coordinators: Coordinators,
    settings: GroupSettings,
    task: Option<JoinHandle<()>>,
}

fn subscribed(subscription: &GroupSubscription) -> SubscribedTopics {
    match subscription {
        GroupSubscription::Topics(topics) => {
            SubscribedTopics::Topics(topics.iter().cloned().collect())
        }
        GroupSubscription::Pattern(regex) => SubscribedTopics::Pattern(regex.clone()),
    }
}

impl ConsumerMember {
    /// Starts the member's task; returns without waiting for an assignment.
    pub async fn join(
        cluster: Cluster,
        settings: GroupSettings,
        subscription: GroupSubscription,
    ) -> Result<Self> {
        let coordinators = Coordinators::with_retry_backoff(
            cluster.clone(),
            settings.retry_backoff,
            settings.retry_backoff.max(Duration::from_secs(1)),
        );
        Self::join_with(cluster, coordinators, settings, subscription).await
    }

    /// [`join`](Self::join) with a [`Coordinators`] shared with others (the consumer's).
    pub async fn join_with(
        cluster: Cluster,
        coordinators: Coordinators,
        settings: GroupSettings,
        subscription: GroupSubscription,
    ) -> Result<Self> {
        if settings.group_id.is_empty() {
            return Err(crate::config::ConfigError::invalid(
                "group.id",
                "",
                "a consumer group member needs a group id",
            )
            .into());
        }
        // Names for the topic ids of the first assignment (best effort: a topic may not exist
        // yet; unknown ids are looked up again when they come).
        if let GroupSubscription::Topics(topics) = &subscription {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            if let Err(err) = cluster.refresh_metadata(Some(&names)).await {
                debug!(group = %settings.group_id, error = %err, "metadata refresh before joining failed");
            }
        }
        let mut config = ConsumerMemberConfig::new(settings.group_id.clone())
            .with_rebalance_timeout(settings.rebalance_timeout)
            .with_retry_backoff(
                settings.retry_backoff,
                settings.retry_backoff.max(Duration::from_secs(1)),
            );
        config.group_instance_id = settings.group_instance_id.clone();
        config.remote_assignor = settings.remote_assignor.clone();
        config.rack_id = settings.rack_id.clone();
        let state = ConsumerMemberState::new(
            config,
            subscribed(&subscription),
            new_member_id(),
            Instant::now(),
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Notify::new(),
            events: Notify::new(),
        });
        let task = tokio::spawn(run(
            shared.clone(),
            cluster.clone(),
            coordinators.clone(),
            settings.clone(),
        ));
        Ok(ConsumerMember {
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
                if let Some(err) = state.fatal_error() {
                    return Err(err.clone());
                }
                if state.state() == MemberState::Left {
                    return Err(Error::ShutDown { broker: None });
                }
            }
            notified.await;
        }
    }

    /// The consumer gave up `partitions` (after [`GroupEvent::Revoked`]); the member
    /// acknowledges it and takes its new partitions.
    pub fn revocation_done(&self, partitions: &[TopicPartition]) {
        {
            let metadata = self.cluster.metadata();
            self.shared
                .state()
                .revocation_done(Instant::now(), partitions, &*metadata);
        }
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

    /// The member epoch and member id, once the broker has given an epoch.
    pub fn generation(&self) -> Option<GroupGeneration> {
        let state = self.shared.state();
        (state.member_epoch() > 0).then(|| GroupGeneration {
            generation_id: state.member_epoch(),
            member_id: state.member_id().to_owned(),
            protocol: None,
        })
    }

    /// The member's identity as commits carry it (member epoch as generation id).
    pub fn identity(&self) -> MemberIdentity {
        let state = self.shared.state();
        MemberIdentity::member(
            state.member_epoch(),
            state.member_id(),
            self.settings.group_instance_id.clone(),
        )
    }

    /// The cluster the member talks through.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The member's settings.
    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    /// Commits `offsets` with the member epoch, retrying retriable errors (the coordinator
    /// moved or is loading) until `request.timeout.ms` has passed. `STALE_MEMBER_EPOCH`,
    /// `UNKNOWN_MEMBER_ID`, `FENCED_INSTANCE_ID` return typed at once.
    pub async fn commit(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        let deadline = Instant::now() + self.settings.request_timeout;
        self.coordinators
            .commit_offsets(&self.settings.group_id, &self.identity(), offsets, deadline)
            .await
    }

    /// The committed offsets of `partitions` (`None`: nothing committed), read with
    /// `require_stable` (pending transactional commits are waited for), as this member
    /// (OffsetFetch v9 carries the member id and epoch) once it is in the group.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<CommittedOffsets, CommitError> {
        let deadline = Instant::now() + self.settings.request_timeout;
        let identity = self.identity();
        let mut query = OffsetFetchQuery::partitions(self.settings.group_id.clone(), partitions);
        if identity.generation_id_or_member_epoch > 0 {
            query = query.with_member(identity);
        }
        self.coordinators
            .fetch_offsets(&query, true, deadline)
            .await
    }

    /// Changes the subscription; the next heartbeat (at once) carries it.
    pub fn update_subscription(&self, subscription: GroupSubscription) {
        self.shared
            .state()
            .update_subscription(subscribed(&subscription));
        self.shared.wake.notify_one();
    }

    /// Leaves the group (epoch -1; a static member -2, so it may come back to its partitions
    /// within the session timeout) and stops the task, by `deadline`.
    pub async fn close(mut self, deadline: Instant) -> Result<()> {
        let leave = self.shared.state().leave();
        self.shared.wake.notify_one();
        let leave_done = async {
            match leave {
                Some(request) => {
                    send_leave(&self.coordinators, &self.settings, request, deadline).await
                }
                None => Ok(()),
            }
        };
        let deadline_at = tokio::time::Instant::from_std(deadline);
        let left = match tokio::time::timeout_at(deadline_at, leave_done).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                if err.is_client_bug() {
                    error!(group = %self.settings.group_id, error = %err, "leave heartbeat failed: client bug");
                } else {
                    debug!(group = %self.settings.group_id, error = %err, "leave heartbeat failed");
                }
                Err(err)
            }
            Err(_) => {
                debug!(group = %self.settings.group_id, "leave heartbeat not answered by the deadline");
                Ok(())
            }
        };
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout_at(deadline_at, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        self.shared.events.notify_waiters();
        left
    }
}

impl Drop for ConsumerMember {
    fn drop(&mut self) {
        // Dropped without close: stop heartbeating (the coordinator expires the member after
        // its session timeout).
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Sends a leave heartbeat; its response only matters for the log.
async fn send_leave(
    coordinators: &Coordinators,
    settings: &GroupSettings,
    request: ConsumerGroupHeartbeatRequest,
    deadline: Instant,
) -> Result<()> {
    let (_, conn) = coordinators
        .connection(&settings.group_id, deadline)
        .await?;
    let version = conn.version(ApiKey::ConsumerGroupHeartbeat)?;
    let timeout = settings
        .request_timeout
        .min(deadline.saturating_duration_since(Instant::now()));
    let response = conn.send(&request, version, timeout).await?;
    Error::check(
        ApiKey::ConsumerGroupHeartbeat,
        response.error_code,
        response.error_message.as_deref(),
    )
}

/// The outcome of one request, brought back to the member task.
enum Outcome {
    Coordinator(Result<Connection>),
    Heartbeat(u64, Result<ConsumerGroupHeartbeatResponse>),
    Metadata(Result<()>),
    Leave,
}

async fn run(
    shared: Arc<Shared>,
    cluster: Cluster,
    coordinators: Coordinators,
    settings: GroupSettings,
) {
    let group = settings.group_id.clone();
    let mut requests: JoinSet<Outcome> = JoinSet::new();
    let mut coordinator: Option<Connection> = None;
    let mut finding = false;
    let mut find_after = Instant::now();
    let mut find_failures: u32 = 0;
    let mut metadata_in_flight = false;
    loop {
        let now = Instant::now();
        if coordinator.as_ref().is_some_and(Connection::is_closed) {
            coordinator = None;
        }
        let due = {
            let mut state = shared.state();
            if matches!(state.state(), MemberState::Left | MemberState::Fatal) {
                break;
            }
            // The poll timer runs whether or not the coordinator is known.
            if let Some(leave) = state.poll_expired(now) {
                if let Some(conn) = &coordinator {
                    requests.spawn(heartbeat(
                        conn.clone(),
                        leave,
                        settings.request_timeout,
                        true,
                    ));
                }
            }
            let mut due = state.poll_timeout();
            if let Some(conn) = &coordinator {
                match conn.version(ApiKey::ConsumerGroupHeartbeat) {
                    Ok(version) => {
                        if let Some(hb) = state.poll_heartbeat(now, version) {
                            requests.spawn(heartbeat(
                                conn.clone(),
                                hb,
                                settings.request_timeout,
                                false,
                            ));
                        }
                    }
                    Err(err) => state.handle_fatal(err),
                }
                due = state.poll_timeout();
            } else if due.is_some_and(|d| d <= now) {
                // A heartbeat is due and there is no coordinator: look it up.
                if !finding && now >= find_after {
                    finding = true;
                    let coordinators = coordinators.clone();
                    let group = group.clone();
                    let deadline = now + settings.request_timeout;
                    requests.spawn(async move {
                        Outcome::Coordinator(
                            coordinators
                                .connection(&group, deadline)
                                .await
                                .map(|(_, c)| c),
                        )
                    });
                }
                due = (!finding).then_some(find_after);
            }
            if !metadata_in_flight && state.poll_metadata(now) {
                metadata_in_flight = true;
                let cluster = cluster.clone();
                // Assignments only name subscribed topics: ask for those (every topic for a
                // regex, which the broker resolves).
                let topics = match state.subscription() {
                    SubscribedTopics::Topics(topics) => Some(topics.iter().cloned().collect()),
                    SubscribedTopics::Pattern(_) => None,
                };
                requests.spawn(async move {
                    let names: Option<Vec<&str>> = topics
                        .as_ref()
                        .map(|t: &Vec<String>| t.iter().map(String::as_str).collect());
                    Outcome::Metadata(cluster.refresh_metadata(names.as_deref()).await)
                });
            }
            due
        };
        shared.events.notify_waiters();
        let until = due
            .unwrap_or(now + IDLE_WAKE)
            .clamp(now + Duration::from_millis(1), now + IDLE_WAKE);
        tokio::select! {
            Some(done) = requests.join_next(), if !requests.is_empty() => {
                let Ok(outcome) = done else { continue };
                let now = Instant::now();
                match outcome {
                    Outcome::Coordinator(Ok(conn)) => {
                        finding = false;
                        find_failures = 0;
                        coordinator = Some(conn);
                    }
                    Outcome::Coordinator(Err(err)) => {
                        finding = false;
                        if err.is_retriable() {
                            debug!(group = %group, error = %err, "group coordinator not found yet");
                            find_failures = find_failures.saturating_add(1);
                            let pause = settings.retry_backoff
                                .saturating_mul(1u32 << find_failures.min(4))
                                .min(Duration::from_secs(1).max(settings.retry_backoff));
                            find_after = now + pause;
                        } else {
                            shared.state().handle_fatal(err);
                        }
                    }
                    Outcome::Heartbeat(id, result) => {
                        let outcome = {
                            let metadata = cluster.metadata();
                            let mut state = shared.state();
                            match &result {
                                Ok(response) => state.handle_heartbeat_response(now, id, response, &*metadata),
                                Err(err) => state.handle_heartbeat_failure(now, id, err),
                            }
                        };
                        match outcome {
                            HeartbeatResult::FindCoordinator => {
                                coordinators.invalidate(&group);
                                coordinator = None;
                            }
                            HeartbeatResult::Fatal(err) => {
                                debug!(group = %group, error = %err, "group member stopped");
                            }
                            _ => {}
                        }
                    }
                    Outcome::Metadata(result) => {
                        metadata_in_flight = false;
                        if let Err(err) = &result {
                            debug!(group = %group, error = %err, "metadata refresh failed");
                        }
                        let metadata = cluster.metadata();
                        shared.state().handle_metadata(now, &*metadata);
                    }
                    Outcome::Leave => {}
                }
            }
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
        }
    }
    shared.events.notify_waiters();
}

/// Sends one heartbeat on the coordinator's connection.
async fn heartbeat(
    conn: Connection,
    hb: OutgoingHeartbeat,
    timeout: Duration,
    leave: bool,
) -> Outcome {
    let result = async {
        let version = conn.version(ApiKey::ConsumerGroupHeartbeat)?;
        conn.send(&hb.request, version, timeout).await
    }
    .await;
    if leave {
        if let Err(err) = result.as_ref().map_err(ToString::to_string).and_then(|r| {
            match ResponseError::try_from_code(r.error_code) {
                None => Ok(()),
                Some(code) => Err(format!("{code:?}")),
            }
        }) {
            debug!(error = %err, "leave heartbeat failed");
        }
        return Outcome::Leave;
    }
    Outcome::Heartbeat(hb.id, result)
}
