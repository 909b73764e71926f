//! Group subscription for the [`Consumer`]: `subscribe`, the rebalance listener, commits.
//!
//! `subscribe` starts a [`GroupMember`] (classic or KIP-848, by `group.protocol`) and installs
//! a driver that `recv`/`poll` run before taking records: it ticks the member's poll timer,
//! applies its events in order and auto-commits when enabled:
//!
//! - **assigned**: the partitions' committed offsets are fetched (OffsetFetch,
//!   `require_stable`), fetching starts from them (or by `auto.offset.reset`), then the
//!   listener's `on_partitions_assigned` runs;
//! - **revoked**: with auto-commit, the consumed positions of those partitions are committed;
//!   then the listener's `on_partitions_revoked` runs while they are still assigned (it may
//!   commit, e.g. with [`Consumer::commit_sync`]); then fetching stops and the member goes on;
//! - **lost**: `on_partitions_lost` runs (committing would fail: the partitions may already be
//!   someone else's), then fetching stops.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, Instant};
//! use kafkit::config::ConsumerConfig;
//! use kafkit::consumer::Consumer;
//!
//! let config = ConsumerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "billing"),
//!     ("auto.offset.reset", "earliest"),
//! ])?;
//! let consumer = Consumer::new(config).await?;
//! consumer.subscribe(["invoices"]).await?;
//! loop {
//!     let records = consumer.poll(Duration::from_millis(500)).await?;
//!     for record in &records {
//!         println!("{}-{}@{}", record.topic, record.partition, record.offset);
//!     }
//!     consumer.commit_sync().await?; // what was handed out so far
//!     # break;
//! }
//! consumer.close(Duration::from_secs(5)).await?; // leaves the group
//! # Ok(())
//! # }
//! ```

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use super::driver::{BoxFuture, GroupDriver};
use super::{ConsumeError, Consumer};
use crate::config::ConfigError;
use crate::error::Error;
use crate::io::coordinator::Coordinators;
use crate::io::group::{
    GroupEvent, GroupGeneration, GroupMember, GroupSettings, GroupSubscription,
};
use crate::state::group::commit::{
    CommitError, CommittedOffsets, MemberIdentity, OffsetFetchQuery,
};
use crate::state::group::{OffsetAndMetadata, TopicPartition};

/// The future a [`RebalanceListener`] callback returns.
pub type ListenerFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Callbacks around rebalances (Java's `ConsumerRebalanceListener`). They run inside
/// `recv`/`poll`, get the consumer, and may call it (commit, seek, position); the member waits
/// for them before it goes on with the rebalance.
///
/// ```no_run
/// use kafkit::consumer::{Consumer, ListenerFuture, RebalanceListener};
/// use kafkit::TopicPartition;
///
/// struct CommitOnRevoke;
///
/// impl RebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(
///         &'a self,
///         consumer: &'a Consumer,
///         _partitions: &'a [TopicPartition],
///     ) -> ListenerFuture<'a> {
///         Box::pin(async move {
///             if let Err(e) = consumer.commit_sync().await {
///                 eprintln!("commit before revocation failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send + Sync + 'static {
    /// `partitions` are about to go (still assigned: their positions can be committed).
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// `partitions` were added to the assignment (fetching starts from their committed
    /// offsets; seek here to start elsewhere).
    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// `partitions` were lost (the member was fenced or expired): they may already belong to
    /// another member, so committing them fails. By default, as in Java, this calls
    /// [`Self::on_partitions_revoked`].
    fn on_partitions_lost<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// A commit started by [`Consumer::commit_async`]: await it for the outcome, or drop it (the
/// commit goes on).
#[derive(Debug)]
pub struct CommitHandle {
    task: JoinHandle<Result<(), CommitError>>,
}

impl Future for CommitHandle {
    type Output = Result<(), CommitError>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        Pin::new(&mut self.task).poll(cx).map(|joined| {
            joined.unwrap_or(Err(CommitError::Client(Error::ShutDown { broker: None })))
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The installed group: the member, the listener, auto-commit.
struct Group {
    member: Mutex<Option<Arc<GroupMember>>>,
    listener: Option<Arc<dyn RebalanceListener>>,
    /// Events taken by `ready` and not applied yet (applied in order by `drive`).
    pending: Mutex<VecDeque<Result<GroupEvent, Error>>>,
    /// One `drive` at a time (events apply in order).
    driving: tokio::sync::Mutex<()>,
    auto_commit: Option<Duration>,
    next_auto_commit: Mutex<Instant>,
    closing: Notify,
    /// Commits go out one after the other, in the order they were asked for (as Java's
    /// `commitAsync` promises): a later commit never lands before an earlier one.
    commits: mpsc::UnboundedSender<CommitJob>,
    commit_worker: JoinHandle<()>,
}

type CommitJob = (
    BTreeMap<TopicPartition, OffsetAndMetadata>,
    oneshot::Sender<Result<(), CommitError>>,
);

impl Drop for Group {
    fn drop(&mut self) {
        self.commit_worker.abort();
    }
}

/// Sends the queued commits in order, with the member of the moment.
async fn commit_worker(member: Weak<GroupMember>, mut jobs: mpsc::UnboundedReceiver<CommitJob>) {
    while let Some((offsets, reply)) = jobs.recv().await {
        let result = match member.upgrade() {
            Some(m) => m.commit(&offsets).await,
            None => Err(CommitError::Client(Error::ShutDown { broker: None })),
        };
        let _ = reply.send(result);
    }
}

impl Group {
    fn member(&self) -> Option<Arc<GroupMember>> {
        lock(&self.member).clone()
    }

    /// Queues a commit now; the future resolves with its outcome.
    fn commit(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> impl Future<Output = Result<(), CommitError>> + Send + 'static {
        let (reply, outcome) = oneshot::channel();
        let queued = self.commits.send((offsets, reply)).is_ok();
        async move {
            if !queued {
                return Err(CommitError::Client(Error::ShutDown { broker: None }));
            }
            outcome
                .await
                .unwrap_or(Err(CommitError::Client(Error::ShutDown { broker: None })))
        }
    }

    fn next_pending(&self) -> Option<Result<GroupEvent, Error>> {
        if let Some(e) = lock(&self.pending).pop_front() {
            return Some(e);
        }
        None
    }

    async fn next_event_now(&self, member: &GroupMember) -> Option<Result<GroupEvent, Error>> {
        if let Some(e) = self.next_pending() {
            return Some(e);
        }
        // `next_event` returns at once when an event is queued; a zero timeout polls it once.
        tokio::time::timeout(Duration::ZERO, member.next_event())
            .await
            .ok()
    }

    async fn apply(
        &self,
        consumer: &Consumer,
        member: &GroupMember,
        event: GroupEvent,
    ) -> Result<(), ConsumeError> {
        match event {
            GroupEvent::Assigned(partitions) => {
                let committed = match member.committed(&partitions).await {
                    Ok(c) => c,
                    Err(err) => {
                        // Try again at the next drive.
                        lock(&self.pending).push_front(Ok(GroupEvent::Assigned(partitions)));
                        return Err(ConsumeError::Commit(err));
                    }
                };
                consumer.add_assigned(
                    partitions
                        .iter()
                        .map(|tp| (tp.clone(), committed.get(tp).cloned().flatten()))
                        .collect(),
                );
                if let Some(l) = &self.listener {
                    l.on_partitions_assigned(consumer, &partitions).await;
                }
            }
            GroupEvent::Revoked(partitions) => {
                if self.auto_commit.is_some() {
                    let positions: BTreeMap<TopicPartition, OffsetAndMetadata> = consumer
                        .consumed_positions()
                        .into_iter()
                        .filter(|(tp, _)| partitions.contains(tp))
                        .collect();
                    if let Err(err) = self.commit(positions).await {
                        warn!(error = %err, "auto-commit before revocation failed");
                    }
                }
                if let Some(l) = &self.listener {
                    l.on_partitions_revoked(consumer, &partitions).await;
                }
                consumer.remove_assigned(&partitions);
                member.revocation_done(&partitions);
            }
            GroupEvent::Lost(partitions) => {
                if let Some(l) = &self.listener {
                    l.on_partitions_lost(consumer, &partitions).await;
                }
                consumer.remove_assigned(&partitions);
            }
        }
        Ok(())
    }

    async fn auto_commit_if_due(&self, consumer: &Consumer) {
        let Some(interval) = self.auto_commit else {
            return;
        };
        let now = Instant::now();
        {
            let mut next = lock(&self.next_auto_commit);
            if now < *next {
                return;
            }
            *next = now + interval;
        }
        let positions = consumer.consumed_positions();
        if let Err(err) = self.commit(positions).await {
            debug!(error = %err, "auto-commit failed");
        }
    }
}

impl GroupDriver for Group {
    fn drive<'a>(&'a self, consumer: &'a Consumer) -> BoxFuture<'a, Result<(), ConsumeError>> {
        Box::pin(async move {
            let _one = self.driving.lock().await;
            let Some(member) = self.member() else {
                return Ok(());
            };
            member.poll_tick();
            while let Some(event) = self.next_event_now(&member).await {
                match event {
                    Ok(event) => self.apply(consumer, &member, event).await?,
                    Err(err) => {
                        // Fatal for the member: keep reporting it.
                        lock(&self.pending).push_front(Err(err.clone()));
                        return Err(ConsumeError::from_group_member(err));
                    }
                }
            }
            self.auto_commit_if_due(consumer).await;
            Ok(())
        })
    }

    fn ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !lock(&self.pending).is_empty() {
                return;
            }
            let Some(member) = self.member() else {
                return std::future::pending().await;
            };
            let commit_at = self.auto_commit.map(|_| *lock(&self.next_auto_commit));
            let auto_commit = async {
                match commit_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // The member's poll timer wants ticks even while no record comes.
            let tick = tokio::time::sleep(Duration::from_secs(1));
            tokio::select! {
                event = member.next_event() => lock(&self.pending).push_back(event),
                _ = auto_commit => {}
                _ = tick => {}
                _ = self.closing.notified() => {}
            }
        })
    }

    fn close<'a>(
        &'a self,
        consumer: &'a Consumer,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), ConsumeError>> {
        Box::pin(async move {
            let Some(member) = lock(&self.member).take() else {
                return Ok(());
            };
            let mut first_error: Option<ConsumeError> = None;
            let started = Instant::now();
            self.closing.notify_waiters();
            let assigned = member.assignment();
            if self.auto_commit.is_some() {
                let positions = consumer.consumed_positions();
                // Queued behind any commit still under way.
                if let Err(err) = self.commit(positions).await {
                    warn!(error = %err, "auto-commit at close failed");
                    first_error = Some(err.into());
                }
            }
            if let Some(l) = &self.listener {
                if !assigned.is_empty() {
                    l.on_partitions_revoked(consumer, &assigned).await;
                }
            }
            consumer.remove_assigned(&assigned);
            // Commits started with commit_async may hold the member for a moment.
            let mut member = member;
            loop {
                match Arc::try_unwrap(member) {
                    Ok(m) => {
                        if let Err(err) = m.close(deadline).await {
                            if err.is_client_bug() {
                                error!(error = %err, "leaving the group failed: client bug");
                            } else {
                                warn!(error = %err, "leaving the group failed");
                            }
                            first_error.get_or_insert(ConsumeError::Client(err));
                        }
                        return first_error.map_or(Ok(()), Err);
                    }
                    Err(shared) if Instant::now() < deadline => {
                        member = shared;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(_) => {
                        warn!("group member still in use at the close deadline: dropped without leaving");
                        return Err(first_error.unwrap_or(ConsumeError::Timeout {
                            operation: "leaving the group (a commit_async still holds the member)",
                            after: deadline.saturating_duration_since(started),
                        }));
                    }
                }
            }
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn no_group_id() -> ConsumeError {
    ConsumeError::Client(Error::Config(ConfigError::invalid(
        "group.id",
        "",
        "subscribe and commits need a group.id",
    )))
}

impl Consumer {
    fn group(&self) -> Option<Arc<dyn GroupDriver>> {
        self.driver()
    }

    fn group_member(&self) -> Option<Arc<GroupMember>> {
        let driver = self.group()?;
        let group = driver.as_any().downcast_ref::<Group>()?;
        group.member()
    }

    /// Joins the group (`group.id`) subscribed to `topics`; the assignment arrives through
    /// `recv`/`poll`. Subscribing again changes the subscription (the member rejoins).
    /// Refused with [`ConsumeError::SubscriptionConflict`] while partitions are assigned by
    /// hand ([`assign`](Consumer::assign); Java's `IllegalStateException`):
    /// [`unsubscribe`](Consumer::unsubscribe) or `assign([])` first.
    pub async fn subscribe<I, S>(&self, topics: I) -> Result<(), ConsumeError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics = topics.into_iter().map(Into::into).collect();
        self.subscribe_with(GroupSubscription::Topics(topics), None)
            .await
    }

    /// Joins the group subscribed to every topic whose whole name matches `pattern` (the
    /// classic member matches it against the cluster's topics at every metadata refresh).
    pub async fn subscribe_pattern(&self, pattern: &str) -> Result<(), ConsumeError> {
        self.subscribe_with(GroupSubscription::Pattern(pattern.to_owned()), None)
            .await
    }

    /// [`Consumer::subscribe`] or [`Consumer::subscribe_pattern`] with a rebalance listener.
    pub async fn subscribe_with(
        &self,
        subscription: GroupSubscription,
        listener: Option<Arc<dyn RebalanceListener>>,
    ) -> Result<(), ConsumeError> {
        let settings =
            GroupSettings::from_consumer_config(self.config()).ok_or_else(no_group_id)?;
        if self.group().is_none() && !self.assignment().is_empty() {
            return Err(ConsumeError::SubscriptionConflict {
                operation: "subscribe",
                current: "has partitions assigned by hand",
            });
        }
        if let GroupSubscription::Pattern(p) = &subscription {
            crate::io::group::TopicPattern::new(p)
                .map_err(|e| ConsumeError::Client(Error::Config(e)))?;
        }
        if listener.is_none() {
            if let Some(member) = self.group_member() {
                member.update_subscription(subscription);
                return Ok(());
            }
        }
        // A new member (or a new listener): leave with the old one first. The new member
        // joins either way (the old one, if it could not leave, expires with its session).
        if let Err(err) = self.unsubscribe().await {
            warn!(error = %err, "leaving with the previous subscription failed");
        }
        // What the previous member was assigned (a manual assignment was refused above).
        let previous = self.assignment();
        self.remove_assigned(&previous);
        let member = GroupMember::join(self.cluster().clone(), settings, subscription)
            .await
            .map_err(ConsumeError::from_group_member)?;
        let auto_commit = self
            .config()
            .enable_auto_commit()
            .then(|| self.config().auto_commit_interval());
        let member = Arc::new(member);
        let (commits, jobs) = mpsc::unbounded_channel();
        let commit_worker = tokio::spawn(commit_worker(Arc::downgrade(&member), jobs));
        let group = Group {
            member: Mutex::new(Some(member)),
            listener,
            pending: Mutex::new(VecDeque::new()),
            driving: tokio::sync::Mutex::new(()),
            auto_commit,
            next_auto_commit: Mutex::new(Instant::now() + auto_commit.unwrap_or_default()),
            closing: Notify::new(),
            commits,
            commit_worker,
        };
        self.set_group_driver(Some(Arc::new(group)));
        Ok(())
    }

    /// Leaves the group (committing first with auto-commit, calling the listener's revoke)
    /// and drops the assignment. Not subscribed, drops a manual assignment (as Java). The
    /// subscription ends either way; the first failure (the final auto-commit, the leave) is
    /// returned.
    pub async fn unsubscribe(&self) -> Result<(), ConsumeError> {
        let Some(driver) = self.group() else {
            let manual = self.assignment();
            self.remove_assigned(&manual);
            return Ok(());
        };
        let deadline = Instant::now() + self.config().client().request_timeout();
        let result = driver.close(self, deadline).await;
        self.set_group_driver(None);
        result
    }

    /// The member's generation (generation id or member epoch, member id), when subscribed
    /// and joined (Java's `groupMetadata()`).
    pub fn group_generation(&self) -> Option<GroupGeneration> {
        self.group_member()?.generation()
    }

    /// What `send_offsets_to_transaction` needs to commit this consumer's offsets inside a
    /// transaction (KIP-447): `group.id`, `group.instance.id`, and — when subscribed and
    /// joined — the generation id (classic) or member epoch (KIP-848) and member id; without
    /// them generation -1 and an empty member id (accepted only for a group with no members).
    /// `None` without a `group.id` (Java's `groupMetadata()`).
    pub fn group_metadata(&self) -> Option<crate::producer::ConsumerGroupMetadata> {
        let config = self.config();
        let group_id = config.group_id()?.to_owned();
        let generation = self.group_generation();
        Some(crate::producer::ConsumerGroupMetadata {
            group_id,
            generation_id: generation.as_ref().map_or(-1, |g| g.generation_id),
            member_id: generation.map(|g| g.member_id).unwrap_or_default(),
            group_instance_id: config.group_instance_id().map(str::to_owned),
        })
    }

    /// Commits the positions of everything handed out so far (the next offset of every
    /// assigned partition), waiting for the outcome.
    pub async fn commit_sync(&self) -> Result<(), ConsumeError> {
        let positions = self.consumed_positions();
        self.commit_offsets_sync(&positions).await
    }

    /// Commits `offsets` (with their metadata), waiting for the outcome. Retriable failures
    /// (coordinator moved or loading) are retried until `request.timeout.ms`; a rebalance in
    /// progress, a stale generation, an unknown or fenced member fail typed
    /// ([`ConsumeError::Commit`]). Without a subscription, commits as a group-less client
    /// (generation -1), which the broker accepts only while the group has no members.
    pub async fn commit_offsets_sync(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), ConsumeError> {
        self.commit_future(offsets.clone())?
            .await
            .map_err(ConsumeError::Commit)
    }

    /// Starts committing `offsets` (`None`: the current positions) and returns at once; await
    /// the handle for the outcome or drop it.
    pub fn commit_async(
        &self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<CommitHandle, ConsumeError> {
        let offsets = offsets.unwrap_or_else(|| self.consumed_positions());
        let commit = self.commit_future(offsets)?;
        Ok(CommitHandle {
            task: tokio::spawn(commit),
        })
    }

    fn commit_future(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<impl Future<Output = Result<(), CommitError>> + Send + 'static, ConsumeError> {
        let group_id = self.config().group_id().ok_or_else(no_group_id)?.to_owned();
        // Subscribed: queued in call order. Not subscribed: a group-less commit.
        let queued = self.group().and_then(|driver| {
            let group = driver.as_any().downcast_ref::<Group>()?;
            group.member()?;
            Some(group.commit(offsets.clone()))
        });
        let cluster = self.cluster().clone();
        let deadline = Instant::now() + self.config().client().request_timeout();
        Ok(async move {
            match queued {
                Some(commit) => commit.await,
                None => {
                    Coordinators::new(cluster)
                        .commit_offsets(&group_id, &MemberIdentity::admin(), &offsets, deadline)
                        .await
                }
            }
        })
    }

    /// The group's committed offsets of `partitions` (`None`: nothing committed), within
    /// `default.api.timeout.ms` (Java's `committed(partitions)`); see
    /// [`committed_with_timeout`](Self::committed_with_timeout).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<CommittedOffsets, ConsumeError> {
        let timeout = self.config().default_api_timeout();
        self.committed_with_timeout(partitions, timeout).await
    }

    /// The group's (`group.id`) committed offsets of `partitions` (`None`: nothing
    /// committed), asked of the group coordinator with OffsetFetch (waiting out pending
    /// transactional commits), whether the consumer is subscribed or assigned partitions by
    /// hand (Java's `committed(partitions, timeout)`). A coordinator that moves or is loading
    /// is retried until `timeout`, then [`ConsumeError::Timeout`].
    pub async fn committed_with_timeout(
        &self,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<CommittedOffsets, ConsumeError> {
        let group_id = self.config().group_id().ok_or_else(no_group_id)?.to_owned();
        let deadline = Instant::now() + timeout;
        let fetch = async {
            match self.group_member() {
                Some(m) => m.committed(partitions).await,
                None => {
                    Coordinators::new(self.cluster().clone())
                        .fetch_offsets(
                            &OffsetFetchQuery::partitions(group_id, partitions),
                            true,
                            deadline,
                        )
                        .await
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), fetch).await {
            Ok(result) => result.map_err(ConsumeError::Commit),
            Err(_) => Err(ConsumeError::Timeout {
                operation: "committed",
                after: timeout,
            }),
        }
    }
}
