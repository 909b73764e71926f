//! Exactly-once consume-transform-produce: [`TransactionalPipeline`] reads a consumer group's
//! input, hands each polled batch to your transform, and commits the transform's outputs and
//! the consumed offsets in one transaction — the loop of Java's EOS examples and franz-go's
//! `GroupTransactSession`, with the parts that are easy to get wrong done for you:
//!
//! - every output goes through the [`TransactionSink`] of its batch, so it belongs to the
//!   transaction (a sink refuses sends once its transaction ended);
//! - the offsets committed are last offset + 1 of every consumed partition, with the
//!   consumer's group generation (KIP-447: a zombie member's commit is refused);
//! - a transform error or an abortable producer error aborts the transaction and rewinds the
//!   consumer to the group's committed offsets, so the input is transformed again, never
//!   skipped;
//! - a rebalance that revokes (or loses) a partition the open transaction consumed aborts it
//!   inside the rebalance, before the partition is given up, then rewinds the partitions
//!   still owned;
//! - a fatal error (fenced by a newer producer with the same `transactional.id`, a fatal
//!   broker error) stops the pipeline: the consumer leaves the group and both clients close.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use kafkit::{Consumer, ConsumerConfig, GroupSubscription, Producer, ProducerConfig};
//! use kafkit::{ProducerRecord, TransactionalPipeline};
//!
//! let consumer = Consumer::new(ConsumerConfig::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("group.id", "order-enricher"),
//!     ("isolation.level", "read_committed"),
//!     ("auto.offset.reset", "earliest"),
//! ])?)
//! .await?;
//! let producer = Producer::new(ProducerConfig::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("transactional.id", "order-enricher-1"),
//! ])?)
//! .await?;
//! let subscription = GroupSubscription::Topics(vec!["orders".into()]);
//! let pipeline = TransactionalPipeline::builder(consumer, producer, subscription)
//!     .build()
//!     .await?;
//! // Runs until a fatal error (fenced: another instance took over this transactional.id).
//! let stopped = pipeline
//!     .run(|records, sink| async move {
//!         for record in records {
//!             let value = record.value.unwrap_or_default();
//!             sink.send(ProducerRecord::new("orders-enriched").value(value)).await?;
//!         }
//!         Ok::<_, kafkit::ProduceError>(())
//!     })
//!     .await;
//! eprintln!("pipeline stopped: {stopped}");
//! # Ok(())
//! # }
//! ```
//!
//! One transaction per polled batch by default; [`PipelineBuilder::commit_interval`] keeps a
//! transaction open over several polls (fewer, larger transactions, as Kafka Streams'
//! `commit.interval.ms`). The decisions (offsets, when to commit, whether a revocation
//! aborts, where to rewind) are in the sans-IO `state::pipeline`.

mod error;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

pub use crate::state::pipeline::PipelineStats;
pub use error::{AbortCause, PipelineError};

use crate::config::ConfigError;
use crate::consumer::{
    ConsumeError, Consumer, ConsumerRecord, GroupSubscription, ListenerFuture, RebalanceListener,
};
use crate::producer::{
    ConsumerGroupMetadata, DeliveryFuture, ProduceError, Producer, ProducerRecord,
    TransactionError, TransactionPhase,
};
use crate::state::group::{OffsetAndMetadata, TopicPartition};
use crate::state::pipeline::{rewind_targets, Consumed, PipelineState};

/// How many times a transactional call that timed out is made again before the pipeline
/// gives up on it.
const CALL_ATTEMPTS: u32 = 3;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What [`TransactionalPipeline::process_batch`] did.
///
/// ```
/// use kafkit::pipeline::BatchOutcome;
///
/// let outcome = BatchOutcome::Idle;
/// assert!(matches!(outcome, BatchOutcome::Idle));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BatchOutcome {
    /// Nothing was polled and no transaction was due.
    Idle,
    /// The batch was transformed inside the open transaction, which commits later
    /// ([`PipelineBuilder::commit_interval`]).
    Pending {
        /// Records in this batch.
        records: usize,
    },
    /// The transaction committed: its outputs are visible to `read_committed` readers and the
    /// group's offsets moved to `offsets`.
    Committed {
        /// Input records of the transaction (this batch and, with a commit interval, earlier
        /// ones).
        records: u64,
        /// The offsets committed with it (per partition: the next record to read).
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    },
    /// The transaction aborted; its input will be read and transformed again.
    Aborted {
        /// Why.
        cause: AbortCause,
    },
}

/// Sends the transform's outputs into the transaction of its batch. Cheap to clone; refuses
/// sends once that transaction ended (a sink kept past its batch cannot leak records into
/// a later transaction).
///
/// ```no_run
/// # async fn example(sink: kafkit::pipeline::TransactionSink) -> Result<(), kafkit::ProduceError> {
/// use kafkit::ProducerRecord;
///
/// // The delivery future may be dropped: the commit waits for every send and aborts if one
/// // failed.
/// let _delivery = sink.send(ProducerRecord::new("out").value("v")).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TransactionSink {
    shared: Arc<Shared>,
    generation: u64,
}

impl std::fmt::Debug for TransactionSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionSink")
            .field("transaction", &self.generation)
            .finish_non_exhaustive()
    }
}

impl TransactionSink {
    /// Sends `record` as part of the batch's transaction ([`Producer::send`]). Refused with
    /// [`ProduceError::Transaction`] (`InvalidState`) once the transaction ended.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        if !lock(&self.shared.state).accepts(self.generation) {
            return Err(ProduceError::Transaction(Box::new(
                TransactionError::InvalidState {
                    operation: "TransactionSink::send (its transaction has ended)",
                    state: self
                        .shared
                        .producer
                        .transaction_phase()
                        .unwrap_or(TransactionPhase::Ready),
                },
            )));
        }
        self.shared.producer.send(record).await
    }
}

/// What the pipeline and its rebalance listener share.
struct Shared {
    producer: Producer,
    state: Mutex<PipelineState>,
    call_timeout: Duration,
    /// A fatal error the rebalance listener ran into (reported by the next `process_batch`).
    fatal: Mutex<Option<TransactionError>>,
}

impl Shared {
    /// Aborts the producer's open transaction (a timed-out abort is made again), then rewinds
    /// the partitions of `owned` the transaction consumed.
    async fn abort(
        &self,
        consumer: &Consumer,
        rebalance: bool,
        owned: &[TopicPartition],
    ) -> Result<(), TransactionError> {
        let mut attempt = 1;
        loop {
            match self.producer.abort_transaction(self.call_timeout).await {
                Ok(()) => break,
                Err(e) if e.is_retriable() && attempt < CALL_ATTEMPTS => attempt += 1,
                // The producer had no transaction (begin_transaction failed): nothing to end.
                Err(TransactionError::InvalidState {
                    state: TransactionPhase::Ready,
                    ..
                }) => break,
                Err(e) => return Err(e),
            }
        }
        let ended = lock(&self.state).aborted(rebalance);
        rewind(consumer, &ended.partitions, owned).await;
        Ok(())
    }

    /// The rebalance listener's part: `partitions` are about to be revoked or lost.
    async fn before_giving_up(&self, consumer: &Consumer, partitions: &[TopicPartition]) {
        if !lock(&self.state).must_abort_on_revoke(partitions) {
            return;
        }
        warn!(
            ?partitions,
            "partitions revoked while a transaction consumed them: aborting it first"
        );
        let owned: Vec<TopicPartition> = consumer
            .assignment()
            .into_iter()
            .filter(|tp| !partitions.contains(tp))
            .collect();
        if let Err(e) = self.abort(consumer, true, &owned).await {
            lock(&self.fatal).get_or_insert(e);
        }
    }
}

/// Seeks each partition of `aborted` still in `owned` back to the group's committed offset
/// (else to where the transaction began consuming it).
async fn rewind(
    consumer: &Consumer,
    aborted: &BTreeMap<TopicPartition, Consumed>,
    owned: &[TopicPartition],
) {
    let partitions: Vec<TopicPartition> = aborted
        .keys()
        .filter(|tp| owned.contains(tp))
        .cloned()
        .collect();
    if partitions.is_empty() {
        return;
    }
    let committed = match consumer.committed(&partitions).await {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "committed offsets unknown after an abort: rewinding to where the transaction began");
            BTreeMap::new()
        }
    };
    for (tp, offset) in rewind_targets(aborted, owned, &committed) {
        debug!(topic = %tp.topic, partition = tp.partition, offset, "rewound after abort");
        if let Err(e) = consumer.seek(&tp, offset) {
            warn!(error = %e, topic = %tp.topic, partition = tp.partition, "rewind failed");
        }
    }
}

/// Aborts the open transaction before partitions it consumed are given up, then calls the
/// application's listener, if any.
struct PipelineListener {
    shared: Arc<Shared>,
    user: Option<Arc<dyn RebalanceListener>>,
}

impl RebalanceListener for PipelineListener {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            self.shared.before_giving_up(consumer, partitions).await;
            if let Some(user) = &self.user {
                user.on_partitions_revoked(consumer, partitions).await;
            }
        })
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if let Some(user) = &self.user {
                user.on_partitions_assigned(consumer, partitions).await;
            }
        })
    }

    fn on_partitions_lost<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            self.shared.before_giving_up(consumer, partitions).await;
            if let Some(user) = &self.user {
                user.on_partitions_lost(consumer, partitions).await;
            }
        })
    }
}

/// Settings of a [`TransactionalPipeline`]; [`build`](Self::build) checks them.
///
/// ```no_run
/// # async fn example(consumer: kafkit::Consumer, producer: kafkit::Producer) -> Result<(), kafkit::pipeline::PipelineError> {
/// use std::time::Duration;
/// use kafkit::{GroupSubscription, TransactionalPipeline};
///
/// let pipeline = TransactionalPipeline::builder(consumer, producer, GroupSubscription::Topics(vec!["in".into()]))
///     .commit_interval(Duration::from_millis(100)) // one transaction per 100 ms of batches
///     .poll_timeout(Duration::from_millis(500))
///     .build()
///     .await?;
/// # drop(pipeline);
/// # Ok(())
/// # }
/// ```
pub struct PipelineBuilder {
    consumer: Consumer,
    producer: Producer,
    subscription: GroupSubscription,
    commit_interval: Duration,
    poll_timeout: Duration,
    call_timeout: Duration,
    listener: Option<Arc<dyn RebalanceListener>>,
}

impl std::fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("subscription", &self.subscription)
            .field("commit_interval", &self.commit_interval)
            .field("poll_timeout", &self.poll_timeout)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    /// How long a transaction stays open collecting polled batches before it commits.
    /// Default zero: one transaction per polled batch. Keep it well below the producer's
    /// `transaction.timeout.ms` and the consumer's `max.poll.interval.ms`.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// How long one [`TransactionalPipeline::process_batch`] waits for records. Default 1 s.
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// The timeout of each transactional call (`init_transactions`, `commit_transaction`,
    /// `abort_transaction`; a timed-out one is made up to three times). Default 60 s.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The application's rebalance listener, called after the pipeline's own part (revoked:
    /// after the open transaction was aborted).
    pub fn listener(mut self, listener: Arc<dyn RebalanceListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Checks the clients, calls `init_transactions` if the producer has not yet (which
    /// fences older producers with its `transactional.id`), and subscribes the consumer.
    ///
    /// Refused: a consumer without `group.id` or with `enable.auto.commit=true` (offsets
    /// must be committed only by the transactions) ([`PipelineError::Config`] naming the
    /// property); a producer without `transactional.id`
    /// ([`TransactionError::NotTransactional`]) or inside a transaction.
    pub async fn build(self) -> Result<TransactionalPipeline, PipelineError> {
        let config = self.consumer.config();
        let Some(group_id) = config.group_id().map(str::to_owned) else {
            return Err(ConfigError::invalid(
                "group.id",
                "",
                "the transactional pipeline commits a consumer group's offsets; set a group.id",
            )
            .into());
        };
        if config.enable_auto_commit() {
            return Err(ConfigError::conflict(
                "enable.auto.commit",
                "true",
                "the transactional pipeline commits offsets inside its transactions; \
                 auto-commit would commit input whose outputs may still abort",
            )
            .into());
        }
        match self.producer.transaction_phase() {
            None => {
                return Err(PipelineError::Transaction(
                    TransactionError::NotTransactional,
                ))
            }
            Some(TransactionPhase::Uninitialized | TransactionPhase::Initializing) => self
                .producer
                .init_transactions(self.call_timeout)
                .await
                .map_err(PipelineError::Transaction)?,
            Some(TransactionPhase::Ready) => {}
            Some(state) => {
                return Err(PipelineError::Transaction(TransactionError::InvalidState {
                    operation: "TransactionalPipeline::build (a transaction is open)",
                    state,
                }))
            }
        }
        let shared = Arc::new(Shared {
            producer: self.producer,
            state: Mutex::new(PipelineState::new()),
            call_timeout: self.call_timeout,
            fatal: Mutex::new(None),
        });
        let listener = PipelineListener {
            shared: shared.clone(),
            user: self.listener,
        };
        self.consumer
            .subscribe_with(self.subscription, Some(Arc::new(listener)))
            .await?;
        Ok(TransactionalPipeline {
            consumer: self.consumer,
            shared,
            group_id,
            commit_interval: self.commit_interval,
            poll_timeout: self.poll_timeout,
            stopped: false,
        })
    }
}

/// Exactly-once consume-transform-produce over a consumer group and a transactional
/// producer; see the [module docs](self) for what it does and an example.
pub struct TransactionalPipeline {
    consumer: Consumer,
    shared: Arc<Shared>,
    group_id: String,
    commit_interval: Duration,
    poll_timeout: Duration,
    /// A fatal error stopped it (the clients are closed).
    stopped: bool,
}

impl std::fmt::Debug for TransactionalPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalPipeline")
            .field("group_id", &self.group_id)
            .field("stats", &self.stats())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl TransactionalPipeline {
    /// A pipeline consuming `subscription` with `consumer` (needs `group.id`, auto-commit
    /// off; `isolation.level=read_committed` when the input is itself written in
    /// transactions) and producing with `producer` (needs `transactional.id`).
    pub fn builder(
        consumer: Consumer,
        producer: Producer,
        subscription: GroupSubscription,
    ) -> PipelineBuilder {
        PipelineBuilder {
            consumer,
            producer,
            subscription,
            commit_interval: Duration::ZERO,
            poll_timeout: Duration::from_secs(1),
            call_timeout: Duration::from_secs(60),
            listener: None,
        }
    }

    /// What the pipeline did so far.
    pub fn stats(&self) -> PipelineStats {
        lock(&self.shared.state).stats()
    }

    /// The consumer (for `assignment`, `lag`, `position`, metrics). Do not poll it, seek it or
    /// commit with it: the pipeline does.
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The transactional producer.
    pub fn producer(&self) -> &Producer {
        &self.shared.producer
    }

    /// Polls one batch (waiting up to the poll timeout), begins a transaction if none is
    /// open, hands the records and a [`TransactionSink`] to `transform`, and commits the
    /// transaction when due (at once by default). A transform error or an abortable producer
    /// error aborts it and rewinds the consumer ([`BatchOutcome::Aborted`]); the next call goes
    /// on. A fatal error closes both clients (the consumer leaves the group) and is returned;
    /// later calls return [`PipelineError::Closed`]. A poll error is returned after any open
    /// transaction was aborted: the pipeline goes on if it is retriable.
    pub async fn process_batch<F, Fut, E>(
        &mut self,
        transform: F,
    ) -> Result<BatchOutcome, PipelineError>
    where
        F: FnOnce(Vec<ConsumerRecord>, TransactionSink) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if self.stopped {
            return Err(PipelineError::Closed);
        }
        // Rebalance events apply inside the poll: the listener may abort the open transaction.
        let polled = self.consumer.poll(self.poll_timeout).await;
        let listener_fatal = lock(&self.shared.fatal).take();
        if let Some(e) = listener_fatal {
            return Err(self.fail(e).await);
        }
        let records = match polled {
            Ok(records) => records,
            Err(e) => {
                if self.is_open() {
                    self.abort(AbortCause::Consume(e.clone())).await?;
                }
                return Err(PipelineError::Consume(e));
            }
        };
        if records.is_empty() {
            return if self.commit_due() {
                self.commit().await
            } else {
                Ok(BatchOutcome::Idle)
            };
        }
        let generation = if self.is_open() {
            lock(&self.shared.state).generation()
        } else {
            if let Err(e) = self.shared.producer.begin_transaction() {
                return Err(self.fail(e).await);
            }
            lock(&self.shared.state).begin(Instant::now())
        };
        {
            let mut state = lock(&self.shared.state);
            for r in &records {
                let tp = TopicPartition::new(r.topic.as_ref(), r.partition);
                state.note_consumed(&tp, r.offset, r.leader_epoch);
            }
        }
        let count = records.len();
        let sink = TransactionSink {
            shared: self.shared.clone(),
            generation,
        };
        if let Err(e) = transform(records, sink).await {
            return self.abort(AbortCause::transform(e)).await;
        }
        if self.commit_due() {
            self.commit().await
        } else {
            Ok(BatchOutcome::Pending { records: count })
        }
    }

    /// Runs [`process_batch`](Self::process_batch) with `transform` until a fatal error,
    /// which it returns after closing the clients (the consumer leaves the group). Aborted
    /// batches and retriable poll errors are logged and the loop goes on.
    pub async fn run<F, Fut, E>(self, transform: F) -> PipelineError
    where
        F: FnMut(Vec<ConsumerRecord>, TransactionSink) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self.run_until(std::future::pending(), transform).await {
            Err(e) => e,
            Ok(()) => PipelineError::Closed,
        }
    }

    /// As [`run`](Self::run), until `shutdown` completes too (checked between batches):
    /// then the open transaction, if any, commits and the pipeline closes.
    pub async fn run_until<S, F, Fut, E>(
        mut self,
        shutdown: S,
        mut transform: F,
    ) -> Result<(), PipelineError>
    where
        S: Future<Output = ()>,
        F: FnMut(Vec<ConsumerRecord>, TransactionSink) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut shutdown = pin!(shutdown);
        loop {
            let stop =
                std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await;
            if stop {
                break;
            }
            match self.process_batch(&mut transform).await {
                Ok(BatchOutcome::Aborted { cause }) => {
                    warn!(cause = %cause, "transaction aborted; its input is read again");
                }
                Ok(_) => {}
                Err(PipelineError::Consume(e)) if e.is_retriable() => {
                    warn!(error = %e, "poll failed; going on");
                }
                Err(e) => {
                    if !self.stopped {
                        let timeout = self.shared.call_timeout;
                        let _ = self.close(timeout).await;
                    }
                    return Err(e);
                }
            }
        }
        let timeout = self.shared.call_timeout;
        self.close(timeout).await
    }

    /// Commits the open transaction (if any; aborts it if it cannot commit), then closes the
    /// consumer (leaving the group) and the producer within `timeout`.
    pub async fn close(mut self, timeout: Duration) -> Result<(), PipelineError> {
        if self.stopped {
            return Ok(());
        }
        let mut first = None;
        if self.is_open() {
            if let Err(e) = self.commit().await {
                first = Some(e);
            }
        }
        if self.stopped {
            // The commit failed fatally and closed the clients.
            return first.map_or(Ok(()), Err);
        }
        self.stopped = true;
        if let Err(e) = self.consumer.close(timeout).await {
            first.get_or_insert(PipelineError::Consume(e));
        }
        if let Err(e) = self.shared.producer.close(timeout).await {
            first.get_or_insert(PipelineError::Consume(ConsumeError::Client(e)));
        }
        first.map_or(Ok(()), Err)
    }

    fn is_open(&self) -> bool {
        lock(&self.shared.state).is_open()
    }

    fn commit_due(&self) -> bool {
        lock(&self.shared.state).commit_due(Instant::now(), self.commit_interval)
    }

    /// Sends the open transaction's offsets and commits it; aborts it when it cannot commit.
    async fn commit(&mut self) -> Result<BatchOutcome, PipelineError> {
        let offsets = lock(&self.shared.state).offsets();
        let group = self
            .consumer
            .group_metadata()
            .unwrap_or_else(|| ConsumerGroupMetadata::new(self.group_id.clone()));
        let producer = self.shared.producer.clone();
        if let Err(e) = producer.send_offsets_to_transaction(&offsets, &group).await {
            if e.is_fatal() {
                return Err(self.fail(e).await);
            }
            return self.abort(AbortCause::Transaction(e)).await;
        }
        let mut attempt = 1;
        loop {
            match producer.commit_transaction(self.shared.call_timeout).await {
                Ok(()) => {
                    let ended = lock(&self.shared.state).committed();
                    debug!(records = ended.records, "transaction committed");
                    return Ok(BatchOutcome::Committed {
                        records: ended.records,
                        offsets,
                    });
                }
                Err(e) if e.is_fatal() => return Err(self.fail(e).await),
                Err(e) if e.is_retriable() && attempt < CALL_ATTEMPTS => attempt += 1,
                // Abortable, or still timing out: abort (refused, hence fatal, when the
                // commit was already sent: its outcome is the coordinator's).
                Err(e) => return self.abort(AbortCause::Transaction(e)).await,
            }
        }
    }

    /// Aborts the open transaction and rewinds every partition it consumed.
    async fn abort(&mut self, cause: AbortCause) -> Result<BatchOutcome, PipelineError> {
        let owned = self.consumer.assignment();
        match self.shared.abort(&self.consumer, false, &owned).await {
            Ok(()) => Ok(BatchOutcome::Aborted { cause }),
            Err(e) => Err(self.fail(e).await),
        }
    }

    /// A fatal transactional error: the transaction is given up (the coordinator aborts it),
    /// the consumer leaves the group, both clients close.
    async fn fail(&mut self, error: TransactionError) -> PipelineError {
        warn!(error = %error, "transactional pipeline stopped");
        self.stopped = true;
        {
            let mut state = lock(&self.shared.state);
            if state.is_open() {
                state.aborted(false);
            }
        }
        let timeout = self.shared.call_timeout;
        if let Err(e) = self.consumer.close(timeout).await {
            warn!(error = %e, "closing the consumer after a fatal error failed");
        }
        if let Err(e) = self.shared.producer.close(timeout).await {
            warn!(error = %e, "closing the producer after a fatal error failed");
        }
        PipelineError::Transaction(error)
    }
}
