//! The next-generation consumer group member (KIP-848, `group.protocol=consumer`), as a pure
//! state machine: no sockets, no clock of its own.
//!
//! The broker runs the assignor; the member only heartbeats (ConsumerGroupHeartbeat) and
//! reconciles the assignment each response may carry. The member:
//!
//! - joins with member epoch 0 and a member id it made itself (a UUID v4, KIP-1082: required
//!   with ConsumerGroupHeartbeat v1; with v0 it sends an empty id and takes the broker's);
//! - heartbeats every `heartbeat_interval_ms` the broker returns, sending the optional fields
//!   (rebalance timeout, rack, subscription, server assignor, owned partitions) only when they
//!   changed, and all of them after any error;
//! - reconciles a new assignment: partitions to give up first ([`GroupEvent::Revoked`]; the
//!   application confirms with [`ConsumerMemberState::revocation_done`]), then the new ones
//!   ([`GroupEvent::Assigned`]), then acknowledges what it owns in the next heartbeat, sent
//!   at once;
//! - on FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID loses everything ([`GroupEvent::Lost`]) and
//!   rejoins with epoch 0 (same member id);
//! - on NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE asks for the coordinator again and retries
//!   at once; COORDINATOR_LOAD_IN_PROGRESS and connection errors are retried with backoff
//!   (`retry.backoff.ms` doubling to `retry.backoff.max.ms`);
//! - on UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID, GROUP_AUTHORIZATION_FAILED,
//!   GROUP_MAX_SIZE_REACHED, UNSUPPORTED_ASSIGNOR, INVALID_REQUEST, INVALID_REGULAR_EXPRESSION
//!   and any error it does not know stops for good (fatal, as the Java client does);
//! - when the application does not call [`ConsumerMemberState::poll_tick`] within the rebalance
//!   timeout (`max.poll.interval.ms`), leaves the group (its partitions are lost) and rejoins
//!   on the next tick;
//! - leaves with epoch -1, or -2 for a static member (`group.instance.id`), which the broker
//!   keeps for its session timeout so the same instance can come back to the same assignment.
//!
//! # Driving it
//!
//! The I/O task loops:
//! 1. [`poll_heartbeat`](ConsumerMemberState::poll_heartbeat) (`now`, the negotiated version):
//!    a request to send to the coordinator, if one is due;
//! 2. its outcome to [`handle_heartbeat_response`](ConsumerMemberState::handle_heartbeat_response)
//!    or [`handle_heartbeat_failure`](ConsumerMemberState::handle_heartbeat_failure), which say
//!    whether to look the coordinator up again or stop;
//! 3. [`poll_metadata`](ConsumerMemberState::poll_metadata): refresh the metadata and call
//!    [`handle_metadata`](ConsumerMemberState::handle_metadata) when topic ids need names;
//! 4. [`poll_event`](ConsumerMemberState::poll_event) until `None`, to the application;
//! 5. sleep until [`poll_timeout`](ConsumerMemberState::poll_timeout) or a call from the
//!    application ([`revocation_done`](ConsumerMemberState::revocation_done),
//!    [`poll_tick`](ConsumerMemberState::poll_tick),
//!    [`update_subscription`](ConsumerMemberState::update_subscription),
//!    [`leave`](ConsumerMemberState::leave)).
//!
//! ```
//! use std::collections::{BTreeMap, BTreeSet};
//! use std::time::{Duration, Instant};
//! use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
//! use kafka_protocol::messages::ConsumerGroupHeartbeatResponse;
//! use kafkit::state::group::consumer_member::{
//!     ConsumerMemberConfig, ConsumerMemberState, SubscribedTopics,
//! };
//! use kafkit::state::group::event::GroupEvent;
//! use kafkit::state::group::TopicPartition;
//! use uuid::Uuid;
//!
//! let now = Instant::now();
//! let config = ConsumerMemberConfig::new("billing");
//! let topics = SubscribedTopics::Topics(BTreeSet::from(["orders".to_string()]));
//! let mut member = ConsumerMemberState::new(config, topics, "member-1".into(), now);
//!
//! // The join: epoch 0, the full subscription.
//! let join = member.poll_heartbeat(now, 1).unwrap();
//! assert_eq!(join.request.member_epoch, 0);
//!
//! // The broker answers with epoch 1 and partition 0 of "orders".
//! let orders = Uuid::from_u128(7);
//! let response = ConsumerGroupHeartbeatResponse::default()
//!     .with_member_epoch(1)
//!     .with_heartbeat_interval_ms(5_000)
//!     .with_assignment(Some(Assignment::default().with_topic_partitions(vec![
//!         TopicPartitions::default().with_topic_id(orders).with_partitions(vec![0]),
//!     ])));
//! let names = BTreeMap::from([(orders, "orders".to_string())]);
//! member.handle_heartbeat_response(now, join.id, &response, &names);
//! assert_eq!(
//!     member.poll_event(),
//!     Some(GroupEvent::Assigned(vec![TopicPartition::new("orders", 0)]))
//! );
//!
//! // The acknowledgement goes out at once, with what the member owns now.
//! let ack = member.poll_heartbeat(now, 1).unwrap();
//! assert_eq!(ack.request.member_epoch, 1);
//! assert_eq!(ack.request.topic_partitions.unwrap()[0].partitions, vec![0]);
//! // Then nothing until the heartbeat interval.
//! # member.handle_heartbeat_response(now, ack.id, &response.clone().with_assignment(None), &names);
//! assert!(member.poll_heartbeat(now + Duration::from_secs(1), 1).is_none());
//! ```

mod heartbeat;
#[cfg(test)]
mod props;
mod reconcile;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::encoding_samples;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::state::backoff::ExponentialBackoff;
use crate::state::group::event::GroupEvent;
use crate::state::group::TopicPartition;
use crate::state::rng::XorShift64Star;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};

pub use heartbeat::SubscribedTopics;
pub use reconcile::{IdPartitions, Reconciler, Step, TopicNames};

use heartbeat::{Fields, SentFields};

/// The member epoch that leaves the group for good.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The member epoch with which a static member leaves for now (it may come back).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// The settings of a KIP-848 member (the Java consumer's names in brackets).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerMemberConfig {
    /// The group (`group.id`).
    pub group_id: String,
    /// Static membership (`group.instance.id`).
    pub group_instance_id: Option<String>,
    /// How long the broker waits for revocations, and how long the application may go without
    /// polling (`max.poll.interval.ms`, 300 s).
    pub rebalance_timeout: Duration,
    /// The broker-side assignor to ask for (`group.remote.assignor`, e.g. `uniform` or
    /// `range`; `None`: the broker's default).
    pub remote_assignor: Option<String>,
    /// The member's rack (`client.rack`), for rack-aware assignors.
    pub rack_id: Option<String>,
    /// First retry backoff (`retry.backoff.ms`, 100 ms).
    pub retry_backoff: Duration,
    /// Longest retry backoff (`retry.backoff.max.ms`, 1 s).
    pub retry_backoff_max: Duration,
}

impl ConsumerMemberConfig {
    /// The Java defaults for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerMemberConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            rebalance_timeout: Duration::from_millis(300_000),
            remote_assignor: None,
            rack_id: None,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1_000),
        }
    }

    /// Sets `group.instance.id` (static membership).
    pub fn with_group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// Sets `max.poll.interval.ms`.
    pub fn with_rebalance_timeout(mut self, timeout: Duration) -> Self {
        self.rebalance_timeout = timeout;
        self
    }

    /// Sets `group.remote.assignor`.
    pub fn with_remote_assignor(mut self, assignor: impl Into<String>) -> Self {
        self.remote_assignor = Some(assignor.into());
        self
    }

    /// Sets `client.rack`.
    pub fn with_rack_id(mut self, rack: impl Into<String>) -> Self {
        self.rack_id = Some(rack.into());
        self
    }

    /// Sets `retry.backoff.ms` and `retry.backoff.max.ms`.
    pub fn with_retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_backoff = initial;
        self.retry_backoff_max = max;
        self
    }
}

/// Where the member is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Sending epoch 0 until the broker answers.
    Joining,
    /// In the group (maybe reconciling an assignment).
    Stable,
    /// Left because the application stopped polling; rejoins on the next
    /// [`ConsumerMemberState::poll_tick`].
    Stale,
    /// Left the group ([`ConsumerMemberState::leave`]).
    Left,
    /// Stopped on a fatal error.
    Fatal,
}

/// A heartbeat to send to the group coordinator; its `id` goes back with the outcome.
#[derive(Debug, Clone)]
pub struct OutgoingHeartbeat {
    /// The request.
    pub request: ConsumerGroupHeartbeatRequest,
    /// Which request this is (outcomes of requests the member no longer waits for are ignored).
    pub id: u64,
}

/// What the I/O task should do after a heartbeat outcome.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HeartbeatResult {
    /// Nothing special.
    Ok,
    /// The outcome was for a request the member no longer waits for; ignored.
    Ignored,
    /// Retry after the backoff ([`ConsumerMemberState::poll_timeout`] says when).
    Retry,
    /// The coordinator moved or is unreachable: look it up again, then heartbeat at once.
    FindCoordinator,
    /// The member was fenced: its partitions are lost and it rejoins with epoch 0.
    Fenced,
    /// The member stopped for good (also in [`ConsumerMemberState::fatal_error`]).
    Fatal(Error),
}

/// The KIP-848 member's state; see the module docs for the calling order.
#[derive(Debug)]
pub struct ConsumerMemberState {
    config: ConsumerMemberConfig,
    subscription: SubscribedTopics,
    member_id: String,
    /// Whether the broker has confirmed the member id (v0: it generates it).
    member_id_known: bool,
    member_epoch: i32,
    state: MemberState,
    sent: SentFields,
    reconciler: Reconciler,
    events: VecDeque<GroupEvent>,
    /// Events handed out by [`poll_event`](Self::poll_event) so far.
    events_read: u64,
    /// The number of the `Revoked` event of the revocation in progress (`events_read` must
    /// reach it before a [`revocation_done`](Self::revocation_done) can be about it).
    revoked_event: u64,
    events_pushed: u64,
    heartbeat_interval: Duration,
    next_heartbeat: Instant,
    heartbeat_now: bool,
    in_flight: Option<u64>,
    next_id: u64,
    last_sent: Instant,
    failures: u32,
    backoff: ExponentialBackoff,
    rng: XorShift64Star,
    last_poll: Instant,
    metadata_due: Option<Instant>,
    metadata_in_flight: bool,
    fatal: Option<Error>,
}

impl ConsumerMemberState {
    /// A member about to join, with `member_id` (see [`new_member_id`]) made by the client.
    pub fn new(
        config: ConsumerMemberConfig,
        subscription: SubscribedTopics,
        member_id: String,
        now: Instant,
    ) -> Self {
        let backoff = ExponentialBackoff::new(config.retry_backoff, config.retry_backoff_max);
        ConsumerMemberState {
            config,
            subscription,
            member_id,
            member_id_known: false,
            member_epoch: 0,
            state: MemberState::Joining,
            sent: SentFields::default(),
            reconciler: Reconciler::default(),
            events: VecDeque::new(),
            events_read: 0,
            revoked_event: 0,
            events_pushed: 0,
            heartbeat_interval: Duration::ZERO,
            next_heartbeat: now,
            heartbeat_now: true,
            in_flight: None,
            next_id: 0,
            last_sent: now,
            failures: 0,
            backoff,
            rng: XorShift64Star::from_entropy(),
            last_poll: now,
            metadata_due: None,
            metadata_in_flight: false,
            fatal: None,
        }
    }

    /// Seeds the backoff jitter (tests).
    pub fn with_rng(mut self, rng: XorShift64Star) -> Self {
        self.rng = rng;
        self
    }

    /// The member id sent in heartbeats (and commits).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The member epoch: 0 before joining, then the broker's; the generation id of commits.
    pub fn member_epoch(&self) -> i32 {
        self.member_epoch
    }

    /// What the member subscribes to now.
    pub fn subscription(&self) -> &SubscribedTopics {
        &self.subscription
    }

    /// Where the member is.
    pub fn state(&self) -> MemberState {
        self.state
    }

    /// The heartbeat interval the broker asked for (zero before the first response).
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// Whether the member is in the group with an epoch > 0.
    pub fn is_joined(&self) -> bool {
        self.state == MemberState::Stable && self.member_epoch > 0
    }

    /// The partitions owned now (including those handed out as revoked and not yet confirmed).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.reconciler.owned()
    }

    /// The fatal error that stopped the member, if any.
    pub fn fatal_error(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    /// The next change for the application.
    pub fn poll_event(&mut self) -> Option<GroupEvent> {
        let event = self.events.pop_front()?;
        self.events_read += 1;
        Some(event)
    }

    fn is_active(&self) -> bool {
        matches!(self.state, MemberState::Joining | MemberState::Stable)
    }

    fn leave_epoch(&self) -> i32 {
        if self.config.group_instance_id.is_some() {
            LEAVE_GROUP_STATIC_MEMBER_EPOCH
        } else {
            LEAVE_GROUP_MEMBER_EPOCH
        }
    }

    /// The next heartbeat if one is due at `now` (none while one is in flight). `version` is
    /// the ConsumerGroupHeartbeat version negotiated with the coordinator.
    ///
    /// This is also where the poll timer is checked: past the rebalance timeout since the last
    /// [`poll_tick`](Self::poll_tick), the member loses its partitions and this returns the
    /// leave request (whose outcome is ignored).
    pub fn poll_heartbeat(&mut self, now: Instant, version: i16) -> Option<OutgoingHeartbeat> {
        if let Some(leave) = self.poll_expired(now) {
            return Some(leave);
        }
        if !self.is_active() || self.in_flight.is_some() {
            return None;
        }
        if !self.heartbeat_now && now < self.next_heartbeat {
            return None;
        }
        let request = match self.build_heartbeat(version) {
            Ok(request) => request,
            Err(err) => {
                self.fail(err);
                return None;
            }
        };
        let id = self.next_id();
        self.in_flight = Some(id);
        self.heartbeat_now = false;
        self.last_sent = now;
        Some(OutgoingHeartbeat { request, id })
    }

    /// Checks the poll timer alone (what [`poll_heartbeat`](Self::poll_heartbeat) does first),
    /// for when no heartbeat can be sent (no coordinator): past the rebalance timeout since
    /// the last [`poll_tick`](Self::poll_tick) the member loses its partitions, and this
    /// returns the leave request to send if the coordinator is reachable (its outcome is
    /// ignored).
    pub fn poll_expired(&mut self, now: Instant) -> Option<OutgoingHeartbeat> {
        if self.is_active() && now >= self.poll_deadline() {
            self.expire_poll_timer()
        } else {
            None
        }
    }

    /// Stops the member for good on an error found outside a heartbeat (the coordinator
    /// lookup refused, the broker does not speak ConsumerGroupHeartbeat).
    pub fn handle_fatal(&mut self, err: Error) {
        if self.state != MemberState::Fatal {
            self.fail(err);
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn build_heartbeat(&mut self, version: i16) -> Result<ConsumerGroupHeartbeatRequest, Error> {
        if version < 1 && matches!(self.subscription, SubscribedTopics::Pattern(_)) {
            return Err(Error::Broker {
                api: ApiKey::ConsumerGroupHeartbeat,
                code: ResponseError::UnsupportedVersion,
                message: Some(
                    "a regex subscription (SubscribedTopicRegex) needs ConsumerGroupHeartbeat v1"
                        .into(),
                ),
            });
        }
        // KIP-1082: from v1 the client's id is always sent; with v0 the broker makes one.
        let member_id = if version < 1 && !self.member_id_known {
            ""
        } else {
            self.member_id.as_str()
        };
        let rebalance_timeout_ms =
            i32::try_from(self.config.rebalance_timeout.as_millis()).unwrap_or(i32::MAX);
        let owned = self.reconciler.owned_ids();
        let fields = Fields {
            group_id: &self.config.group_id,
            member_id,
            member_epoch: self.member_epoch,
            instance_id: self.config.group_instance_id.as_deref(),
            rack_id: self.config.rack_id.as_deref(),
            rebalance_timeout_ms,
            server_assignor: self.config.remote_assignor.as_deref(),
            subscription: &self.subscription,
            owned: &owned,
        };
        Ok(self.sent.build(&fields))
    }

    fn poll_deadline(&self) -> Instant {
        self.last_poll + self.config.rebalance_timeout
    }

    /// The poll timer expired: lose everything, leave, wait for the next tick.
    fn expire_poll_timer(&mut self) -> Option<OutgoingHeartbeat> {
        tracing::warn!(
            group = %self.config.group_id,
            member = %self.member_id,
            "no poll within max.poll.interval.ms: leaving the group"
        );
        let sent_anything = !self.sent.is_reset() || self.member_epoch > 0;
        let leave = sent_anything.then(|| self.leave_request());
        self.lose_all();
        self.state = MemberState::Stale;
        leave.map(|request| OutgoingHeartbeat {
            request,
            id: self.next_id(),
        })
    }

    fn leave_request(&self) -> ConsumerGroupHeartbeatRequest {
        heartbeat::leave(
            &self.config.group_id,
            &self.member_id,
            self.leave_epoch(),
            self.config.group_instance_id.as_deref(),
        )
    }

    /// Drops owned partitions as lost and resets the membership to epoch 0.
    fn lose_all(&mut self) {
        let lost = self.reconciler.clear();
        if !lost.is_empty() {
            self.push_event(GroupEvent::Lost(lost));
        }
        self.member_epoch = 0;
        self.in_flight = None;
        self.metadata_due = None;
        self.sent.reset();
    }

    fn fail(&mut self, err: Error) {
        tracing::error!(group = %self.config.group_id, member = %self.member_id, error = %err, "consumer group member stopped");
        self.lose_all();
        self.state = MemberState::Fatal;
        self.fatal = Some(err);
    }

    /// Takes in the response to heartbeat `id`, received at `now`; `names` resolves the
    /// topic ids of an assignment.
    pub fn handle_heartbeat_response(
        &mut self,
        now: Instant,
        id: u64,
        response: &ConsumerGroupHeartbeatResponse,
        names: &dyn TopicNames,
    ) -> HeartbeatResult {
        if self.in_flight != Some(id) {
            return HeartbeatResult::Ignored;
        }
        self.in_flight = None;
        let Some(code) = ResponseError::try_from_code(response.error_code) else {
            self.on_success(now, response, names);
            return HeartbeatResult::Ok;
        };
        let message = response.error_message.as_ref().map(|m| m.to_string());
        // Any error: the broker may have missed what we sent, so the next request is full.
        self.sent.reset();
        match code {
            ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable => {
                self.heartbeat_now = true;
                HeartbeatResult::FindCoordinator
            }
            ResponseError::CoordinatorLoadInProgress => {
                self.back_off(now);
                HeartbeatResult::Retry
            }
            ResponseError::FencedMemberEpoch | ResponseError::UnknownMemberId => {
                tracing::info!(group = %self.config.group_id, member = %self.member_id, epoch = self.member_epoch, error = ?code, "fenced: rejoining");
                self.lose_all();
                self.state = MemberState::Joining;
                self.heartbeat_now = true;
                HeartbeatResult::Fenced
            }
            _ => {
                let err = Error::Broker {
                    api: ApiKey::ConsumerGroupHeartbeat,
                    code,
                    message,
                };
                self.fail(err.clone());
                HeartbeatResult::Fatal(err)
            }
        }
    }

    fn back_off(&mut self, now: Instant) {
        let wait = self.backoff.backoff(self.failures, &mut self.rng);
        self.failures = self.failures.saturating_add(1);
        self.next_heartbeat = now + wait;
        self.heartbeat_now = false;
    }

    fn on_success(
        &mut self,
        now: Instant,
        response: &ConsumerGroupHeartbeatResponse,
        names: &dyn TopicNames,
    ) {
        self.failures = 0;
        if let Some(id) = response.member_id.as_ref().filter(|id| !id.is_empty()) {
            if id.as_str() != self.member_id {
                self.member_id = id.to_string();
            }
        }
        self.member_id_known = true;
        self.member_epoch = response.member_epoch;
        if let Ok(ms) = u64::try_from(response.heartbeat_interval_ms) {
            if ms > 0 {
                self.heartbeat_interval = Duration::from_millis(ms);
            }
        }
        // As the Java client: the interval runs from when the request was sent.
        self.next_heartbeat = self.last_sent + self.heartbeat_interval;
        self.state = MemberState::Stable;
        if let Some(assignment) = &response.assignment {
            let mut target: IdPartitions = BTreeMap::new();
            for tp in &assignment.topic_partitions {
                target
                    .entry(tp.topic_id)
                    .or_default()
                    .extend(tp.partitions.iter().copied());
            }
            self.reconciler.set_target(target);
            self.reconcile(now, names);
        }
    }

    fn push_event(&mut self, event: GroupEvent) {
        self.events.push_back(event);
        self.events_pushed += 1;
    }

    fn reconcile(&mut self, now: Instant, names: &dyn TopicNames) {
        let step = self.reconciler.reconcile(names);
        if !step.revoked.is_empty() {
            self.push_event(GroupEvent::Revoked(step.revoked));
            self.revoked_event = self.events_pushed;
        }
        if !step.assigned.is_empty() {
            self.push_event(GroupEvent::Assigned(step.assigned));
        }
        if step.acknowledge {
            self.sent.resend_owned();
            self.heartbeat_now = true;
        }
        if !step.unresolved {
            self.metadata_due = None;
        } else if !self.metadata_in_flight && self.metadata_due.is_none() {
            self.metadata_due = Some(now);
        }
    }

    /// Takes in the failure of heartbeat `id` to get a response (connection lost, timed out,
    /// coordinator connection refused).
    pub fn handle_heartbeat_failure(
        &mut self,
        now: Instant,
        id: u64,
        err: &Error,
    ) -> HeartbeatResult {
        if self.in_flight != Some(id) {
            return HeartbeatResult::Ignored;
        }
        self.in_flight = None;
        self.sent.reset();
        if err.is_retriable() {
            self.back_off(now);
            HeartbeatResult::FindCoordinator
        } else {
            self.fail(err.clone());
            HeartbeatResult::Fatal(err.clone())
        }
    }

    /// Whether topic ids of the assignment need names now: if so, refresh the metadata, then
    /// call [`handle_metadata`](Self::handle_metadata) (whatever the refresh's outcome). Returns
    /// `true` once per refresh.
    pub fn poll_metadata(&mut self, now: Instant) -> bool {
        if self.metadata_in_flight || self.metadata_due.is_none_or(|due| now < due) {
            return false;
        }
        self.metadata_due = None;
        self.metadata_in_flight = true;
        true
    }

    /// Takes in refreshed metadata: reconciles the partitions whose topics are now known. If
    /// some are still unknown, the next refresh is due after `retry.backoff.max.ms`.
    pub fn handle_metadata(&mut self, now: Instant, names: &dyn TopicNames) {
        if !self.metadata_in_flight {
            return;
        }
        self.metadata_in_flight = false;
        if !self.is_active() {
            return;
        }
        self.reconcile(now, names);
        if self.metadata_due.is_some() {
            self.metadata_due = Some(now + self.config.retry_backoff_max);
        }
    }

    /// The application gave up these revoked partitions (after its callback, and its commit).
    /// Once every revoked partition is confirmed, the reconciliation goes on (`names` for the
    /// new partitions' topics).
    pub fn revocation_done(
        &mut self,
        now: Instant,
        partitions: &[TopicPartition],
        names: &dyn TopicNames,
    ) {
        // A confirmation can only be about a `Revoked` the application has read: one that
        // comes before (about an earlier revocation of the same partitions, the member fenced
        // and revoking again since) must not release partitions it has not given up.
        if self.events_read < self.revoked_event {
            return;
        }
        if self.reconciler.revocation_done(partitions) {
            // What the member gave up is acknowledged even if the rest has to wait.
            self.sent.resend_owned();
            self.heartbeat_now = true;
            self.reconcile(now, names);
        }
    }

    /// The application is still consuming (it called poll). Rejoins a member that left on
    /// the poll timer.
    pub fn poll_tick(&mut self, now: Instant) {
        self.last_poll = now;
        if self.state == MemberState::Stale {
            self.state = MemberState::Joining;
            self.member_epoch = 0;
            self.sent.reset();
            self.heartbeat_now = true;
        }
    }

    /// Changes the subscription; the next heartbeat (sent at once) carries it.
    pub fn update_subscription(&mut self, subscription: SubscribedTopics) {
        if subscription != self.subscription {
            self.subscription = subscription;
            self.heartbeat_now = true;
        }
    }

    /// Leaves the group: the request to send (epoch -1, or -2 for a static member), or `None`
    /// when the member is not in the group. Its outcome does not matter; the member is done.
    pub fn leave(&mut self) -> Option<ConsumerGroupHeartbeatRequest> {
        let in_group = self.is_active() && (!self.sent.is_reset() || self.member_epoch > 0);
        let request = in_group.then(|| self.leave_request());
        self.reconciler.clear();
        self.in_flight = None;
        self.metadata_due = None;
        if self.state != MemberState::Fatal {
            self.state = MemberState::Left;
        }
        request
    }

    /// When to call [`poll_heartbeat`](Self::poll_heartbeat) (or
    /// [`poll_metadata`](Self::poll_metadata)) next; `None`: only after an outcome or a call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.is_active() {
            return None;
        }
        let mut at = self.poll_deadline();
        if self.in_flight.is_none() {
            let heartbeat = if self.heartbeat_now {
                self.last_sent.min(self.next_heartbeat)
            } else {
                self.next_heartbeat
            };
            at = at.min(heartbeat);
        }
        if let Some(due) = self.metadata_due {
            at = at.min(due);
        }
        Some(at)
    }
}

/// A fresh member id: a random UUID v4, hyphenated (KIP-1082: the client makes its member id).
pub fn new_member_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the process-seeded generator (ids need only be unique).
        let mut rng = XorShift64Star::from_entropy();
        use crate::state::rng::RandomSource;
        bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}
