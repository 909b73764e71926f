//! The consumer: fetches the records of assigned partitions from their leaders.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use kafkit::config::ConsumerConfig;
//! use kafkit::consumer::Consumer;
//! use kafkit::TopicPartition;
//!
//! let config = ConsumerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("auto.offset.reset", "earliest"),
//! ])?;
//! let consumer = Consumer::new(config).await?;
//! let tp = TopicPartition::new("events", 0);
//! consumer.assign([tp.clone()])?;
//! consumer.seek(&tp, 42)?;
//! let record = consumer.recv().await?;
//! println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
//! let batch = consumer.poll(Duration::from_millis(100)).await?; // up to max.poll.records
//! println!("lag of {tp:?}: {:?}", consumer.lag(&tp));
//! # drop(batch);
//! consumer.close(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The consumer fetches in the background (one Fetch in flight per leader, KIP-227 sessions,
//! up to `kafkit.prefetch.max.bytes` buffered); `recv`/`poll` hand out what has arrived. Every
//! method takes `&self`: the state sits behind a mutex shared with the fetcher task.

mod driver;
mod error;
mod group;
mod offsets;
mod record;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::ConsumerConfig;
use crate::error::Error;
use crate::io::cluster::{Cluster, ClusterConfig};
use crate::io::fetcher::{self, FetchShared};
use crate::state::consumer::{Drained, FetchPosition, FetchSettings, FetchState, OffsetSpec};

pub use crate::io::group::{GroupGeneration, GroupSubscription};
pub use crate::state::consumer::OffsetAndTimestamp;
pub use crate::state::group::commit::{CommitError, CommittedOffsets};
pub use crate::state::group::{OffsetAndMetadata, TopicPartition};
#[allow(unused_imports)] // used by the group member (consumer/group.rs)
pub(crate) use driver::{BoxFuture, GroupDriver};
pub use error::ConsumeError;
pub use group::{CommitHandle, ListenerFuture, RebalanceListener};
pub use record::{ConsumerRecord, Header, TimestampType};
pub use stream::RecordStream;

/// A Kafka consumer with manual partition assignment (group subscription builds on it).
///
/// Dropping it stops the background fetcher; [`close`](Self::close) does so gracefully.
pub struct Consumer {
    shared: Arc<FetchShared>,
    config: ConsumerConfig,
    group: Mutex<Option<Arc<dyn GroupDriver>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Whether the cluster was opened by `new` (closed with the consumer) or handed in.
    owns_cluster: bool,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Consumer {
    /// Connects to the cluster (the first reachable bootstrap broker) and starts the fetcher
    /// task. Nothing is fetched until partitions are assigned.
    ///
    /// A bootstrap broker that is not reachable yet is retried with the reconnect backoff
    /// until `default.api.timeout.ms`; a bootstrap list none of whose names resolves fails
    /// with [`Error::BootstrapUnresolvable`] at once, or after `bootstrap.resolve.timeout.ms`
    /// of lookups when that is set (KIP-909; at most `default.api.timeout.ms`). Metadata
    /// requests ask the broker to create missing topics as `allow.auto.create.topics` says.
    pub async fn new(config: ConsumerConfig) -> Result<Consumer, Error> {
        let mut cluster_config = ClusterConfig::from_client_config(config.client());
        cluster_config.allow_auto_topic_creation = config.allow_auto_create_topics();
        cluster_config.bootstrap_timeout = config.default_api_timeout();
        let cluster = Cluster::connect(cluster_config).await?;
        let mut consumer = Self::over_cluster(config, cluster);
        consumer.owns_cluster = true;
        Ok(consumer)
    }

    /// A consumer over an existing cluster connection set (shared with other clients): closing
    /// or dropping the consumer leaves the cluster open. Must be called within a tokio runtime.
    /// `unstable-internals` only: no semver promise.
    #[cfg(feature = "unstable-internals")]
    #[doc(hidden)]
    pub fn with_cluster(config: ConsumerConfig, cluster: Cluster) -> Consumer {
        Self::over_cluster(config, cluster)
    }

    /// See `with_cluster`.
    pub(crate) fn over_cluster(config: ConsumerConfig, cluster: Cluster) -> Consumer {
        let shared = Arc::new(FetchShared {
            cluster,
            state: Mutex::new(FetchState::new(FetchSettings::from_config(&config))),
            wake: Notify::new(),
            ready: watch::Sender::new(0),
            closed: watch::Sender::new(false),
            request_timeout: config.client().request_timeout(),
            fetch_max_wait: config.fetch_max_wait(),
            retry_backoff: config.client().retry_backoff(),
            fetching: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(fetcher::run(shared.clone()));
        Consumer {
            shared,
            config,
            group: Mutex::new(None),
            task: Mutex::new(Some(task)),
            owns_cluster: false,
        }
    }

    fn state(&self) -> MutexGuard<'_, FetchState> {
        self.shared.lock()
    }

    fn check_open(&self) -> Result<(), ConsumeError> {
        if self.shared.is_closed() {
            Err(ConsumeError::Closed)
        } else {
            Ok(())
        }
    }

    /// Applies `change` to the state and wakes the fetcher.
    fn change<T>(
        &self,
        change: impl FnOnce(&mut FetchState) -> Result<T, ConsumeError>,
    ) -> Result<T, ConsumeError> {
        self.check_open()?;
        let result = change(&mut self.state());
        self.shared.changed();
        result
    }

    /// Replaces the assignment with `partitions` (manual assignment, no group). Partitions
    /// kept keep their positions; new ones start by `auto.offset.reset` (or at a
    /// [`seek`](Self::seek)); dropped ones lose their buffered records.
    ///
    /// Refused with [`ConsumeError::SubscriptionConflict`] while the consumer is subscribed
    /// to a group (Java's `IllegalStateException`): the group decides the assignment then;
    /// [`unsubscribe`](Self::unsubscribe) first.
    pub fn assign(
        &self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> Result<(), ConsumeError> {
        if self.driver().is_some() {
            return Err(ConsumeError::SubscriptionConflict {
                operation: "assign",
                current: "is subscribed to a group",
            });
        }
        let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
        self.change(|s| {
            s.assign(partitions);
            Ok(())
        })
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.state().assignment()
    }

    /// Consumes `tp` from `offset` next (also the way past a corrupt record or an
    /// out-of-range error).
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<(), ConsumeError> {
        self.change(|s| s.seek(tp, FetchPosition::new(offset)))
    }

    /// Consumes each partition from its log start offset (looked up before the next fetch).
    pub fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        self.change(|s| {
            partitions
                .iter()
                .try_for_each(|tp| s.request_reset(tp, OffsetSpec::Earliest))
        })
    }

    /// Consumes each partition from its end (the high watermark, or the last stable offset
    /// with `read_committed`): only records written from now on.
    pub fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        self.change(|s| {
            partitions
                .iter()
                .try_for_each(|tp| s.request_reset(tp, OffsetSpec::Latest))
        })
    }

    /// Consumes each partition from the first record whose timestamp is at or after the
    /// given one (ms since the epoch), found with ListOffsets; a partition with no such record
    /// goes to its end. Returns once every position is known, or fails after
    /// `request.timeout.ms`. A lookup the broker refuses for good (e.g. an authorization error)
    /// halts that partition and is reported by the next `recv`/`poll`. A negative timestamp is
    /// [`ConsumeError::NegativeTimestamp`] (nothing changes).
    pub async fn seek_to_timestamp(
        &self,
        partitions: &[(TopicPartition, i64)],
    ) -> Result<(), ConsumeError> {
        offsets::check_timestamps(partitions)?;
        self.change(|s| {
            partitions
                .iter()
                .try_for_each(|(tp, ts)| s.request_reset(tp, OffsetSpec::Timestamp(*ts)))
        })?;
        let timeout = self.config.client().request_timeout();
        let deadline = Instant::now() + timeout;
        let mut ready = self.shared.ready.subscribe();
        loop {
            ready.borrow_and_update();
            {
                let state = self.state();
                let pending = partitions
                    .iter()
                    .any(|(tp, _)| state.is_resetting(tp) && !state.is_halted(tp));
                if !pending {
                    return Ok(());
                }
            }
            tokio::select! {
                changed = ready.changed() => if changed.is_err() { return Err(ConsumeError::Closed) },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return Err(ConsumeError::Timeout { operation: "seek_to_timestamp", after: timeout });
                }
            }
        }
    }

    /// Stops fetching the partitions (`recv`/`poll` return none of their records) until
    /// [`resume`](Self::resume).
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        self.change(|s| partitions.iter().try_for_each(|tp| s.pause(tp)))
    }

    /// Fetches paused partitions again.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        self.change(|s| partitions.iter().try_for_each(|tp| s.resume(tp)))
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.state().paused()
    }

    /// The offset of the next record `recv`/`poll` will return for `tp`, without waiting;
    /// `None` when not assigned or not known yet (an offset lookup is pending:
    /// [`position`](Self::position) waits for it).
    pub fn current_position(&self, tp: &TopicPartition) -> Option<i64> {
        self.state().position(tp).map(|p| p.offset)
    }

    /// How many records of `tp` remain after the position: the high watermark (the last
    /// stable offset with `read_committed`) from the latest fetch response minus the position.
    /// `None` before the first fetch response for the partition.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        self.state().lag(tp)
    }

    /// Takes up to `max` records (or a pending error) without waiting.
    fn take(&self, max: usize) -> Drained {
        let mut state = self.state();
        let before = state.buffered_bytes();
        let held_back = state.awaits_take();
        let drained = state.drain(max);
        let freed = state.buffered_bytes() < before;
        drop(state);
        if freed || held_back {
            // A partition's buffered fetch is used up, or a node's next fetch waited for this
            // take: fetching may go on.
            self.shared.wake.notify_one();
        }
        drained
    }

    fn driver(&self) -> Option<Arc<dyn GroupDriver>> {
        lock(&self.group).clone()
    }

    /// Waits for records (at most `max`) until `deadline` (`None`: no limit).
    async fn next_records(
        &self,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        loop {
            self.check_open()?;
            let driver = self.driver();
            if let Some(driver) = &driver {
                driver.drive(self).await?;
            }
            let mut ready = self.shared.ready.subscribe();
            ready.borrow_and_update();
            let Drained { records, error } = self.take(max);
            if !records.is_empty() {
                if let Some(error) = error {
                    // Hand the records out now; the error comes with the next call.
                    self.state().defer_error(error);
                }
                return Ok(records);
            }
            if let Some(error) = error {
                return Err(error);
            }
            let group_ready = async {
                match &driver {
                    Some(d) => d.ready().await,
                    None => std::future::pending().await,
                }
            };
            let timeout = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = ready.changed() => if changed.is_err() { return Err(ConsumeError::Closed) },
                _ = group_ready => {}
                _ = timeout => return Ok(Vec::new()),
            }
        }
    }

    /// The next record. Waits as long as it takes; cancel-safe (no record is lost when the
    /// future is dropped).
    pub async fn recv(&self) -> Result<ConsumerRecord, ConsumeError> {
        loop {
            if let Some(record) = self.next_records(1, None).await?.pop() {
                return Ok(record);
            }
        }
    }

    /// Up to `max.poll.records` records, waiting at most `timeout` for the first; empty when
    /// none came in time.
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        let max = self.config.max_poll_records();
        self.next_records(max, Some(Instant::now() + timeout)).await
    }

    /// The records as a [`Stream`](futures_core::Stream); it ends after the consumer closes.
    pub fn stream(&self) -> RecordStream<'_> {
        RecordStream::new(self)
    }

    /// Takes one record or error without waiting (the stream's fast path).
    pub(crate) fn try_next(&self) -> Option<Result<ConsumerRecord, ConsumeError>> {
        if self.driver().is_some() {
            return None; // the group must be driven first: take the async path
        }
        let Drained { mut records, error } = self.take(1);
        match (records.pop(), error) {
            (Some(record), Some(error)) => {
                self.state().defer_error(error);
                Some(Ok(record))
            }
            (Some(record), None) => Some(Ok(record)),
            (None, Some(error)) => Some(Err(error)),
            (None, None) => None,
        }
    }

    /// Closes the consumer within `timeout` (as Java's `close(Duration)`): the group member
    /// (if any) leaves within it, the fetcher
    /// stops, and (for a consumer made by [`new`](Self::new)) a Fetch long-poll in flight is
    /// abandoned (its connection closed at once) and the other connections close gracefully
    /// by the end of `timeout`. Later calls fail with [`ConsumeError::Closed`].
    ///
    /// Every step runs even when one fails; the first failure is returned: the final
    /// auto-commit, or the group could not be left (its partitions then move to other members
    /// only after `session.timeout.ms`; a static member never sends a leave). The consumer is
    /// closed either way.
    pub async fn close(&self, timeout: Duration) -> Result<(), ConsumeError> {
        let deadline = Instant::now() + timeout;
        let result = match self.driver() {
            Some(driver) => driver.close(self, deadline).await,
            None => Ok(()),
        };
        self.shared.closed.send_replace(true);
        self.shared.changed();
        let task = lock(&self.task).take();
        if let Some(mut task) = task {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, &mut task).await.is_err() {
                task.abort();
            }
        }
        if self.owns_cluster {
            // Nothing waits for a Fetch now: do not wait up to fetch.max.wait.ms for its
            // long-poll to end (commits and the leave are done, on connections of their own).
            self.shared.abandon_fetches();
            self.shared.cluster.shutdown(deadline).await;
        }
        result
    }

    // ---- hooks for the group member (consumer/group.rs); see docs/consumer-plan.md ----

    /// Starts fetching each partition from its committed offset, or by `auto.offset.reset`
    /// when `None`; partitions already assigned keep their position.
    #[allow(dead_code)] // used by the group member
    pub(crate) fn add_assigned(
        &self,
        partitions: Vec<(TopicPartition, Option<OffsetAndMetadata>)>,
    ) {
        let _ = self.change(|s| {
            s.add_assigned(partitions);
            Ok(())
        });
    }

    /// Stops fetching the partitions and drops their positions and buffered records.
    #[allow(dead_code)] // used by the group member
    pub(crate) fn remove_assigned(&self, partitions: &[TopicPartition]) {
        let _ = self.change(|s| {
            s.remove_assigned(partitions);
            Ok(())
        });
    }

    /// Next offset to consume + leader epoch of the last returned record, per assigned
    /// partition with a position (what a commit sends).
    #[allow(dead_code)] // used by the group member
    pub(crate) fn consumed_positions(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.state().consumed_positions()
    }

    /// The cluster the consumer uses.
    #[allow(dead_code)] // used by the group member
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.shared.cluster
    }

    /// The consumer's settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Installs (or removes) the group driver run from `recv`/`poll`.
    #[allow(dead_code)] // used by the group member
    pub(crate) fn set_group_driver(&self, driver: Option<Arc<dyn GroupDriver>>) {
        *lock(&self.group) = driver;
        self.shared.changed();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.closed.send_replace(true);
        self.shared.wake.notify_one();
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        if self.owns_cluster {
            self.shared.cluster.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn handles_and_errors_cross_threads() {
        send_sync::<Consumer>();
        send::<RecordStream<'static>>();
        send_sync::<ConsumeError>();
        send_sync::<ConsumerRecord>();
    }
}
