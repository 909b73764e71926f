//! The thin tokio loop: poll the client consumer, feed the processing state, carry out its
//! actions. Every decision (order, retries, commits, pauses) is the state's
//! ([`crate::consume`]); this file only does I/O and spawns handlers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafkit::consumer::{Consumer, ConsumerRecord, ListenerFuture, RebalanceListener};
use kafkit::GroupSubscription;
use kafkit::{OffsetAndMetadata, TopicPartition};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::handler::{HandlerError, RecordContext};
use super::router::{RouteFuture, RouteOutcome, Router};
use super::stats::StatsCell;
use super::EventConsumer;
use crate::consume::dead_letter::{dead_letter_record, DeadLetterPolicy, Failure};
use crate::consume::retry::{FailureKind, HandlerFailure, RetryPolicy};
use crate::consume::state::{record_bytes, Action, ProcessingSettings, ProcessingState};
use crate::envelope::now_millis;
use crate::error::{EventsError, RawRecord};

/// What a spawned task reports back.
enum Done {
    Handled(Box<Handled>),
    DeadLettered {
        tp: TopicPartition,
        offset: i64,
        result: Result<(), String>,
    },
    Committed {
        offsets: Vec<(TopicPartition, i64)>,
        result: Result<(), String>,
    },
}

struct Handled {
    tp: TopicPartition,
    record: ConsumerRecord,
    attempt: u32,
    outcome: RouteOutcome,
    elapsed: Duration,
}

type Shared = Arc<Mutex<ProcessingState>>;

fn lock(state: &Shared) -> MutexGuard<'_, ProcessingState> {
    // A panic while holding the lock can only come from a bug in the state; keep going with
    // what it holds rather than poisoning every later call.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn offsets_map(offsets: &[(TopicPartition, i64)]) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
    offsets
        .iter()
        .map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o)))
        .collect()
}

/// Keeps the processing state in step with the group: assigned partitions start empty,
/// revoked ones have their handled records committed first, lost ones are dropped.
struct Listener {
    state: Shared,
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            let safe = lock(&self.state).revoke(partitions);
            if !safe.is_empty() {
                if let Err(e) = consumer.commit_offsets_sync(&offsets_map(&safe)).await {
                    tracing::warn!(error = %e, "commit before revocation failed");
                }
            }
        })
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        lock(&self.state).assign(partitions);
        Box::pin(async {})
    }

    fn on_partitions_lost<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        // Another member may own them already: committing would fail; drop what is queued.
        let _ = lock(&self.state).revoke(partitions);
        Box::pin(async {})
    }
}

pub(crate) fn processing_settings(
    s: &super::ConsumerSettings,
) -> Result<ProcessingSettings, EventsError> {
    let retry = RetryPolicy::new(s.max_retries, s.initial_backoff, s.max_backoff)?;
    let dead_letter = DeadLetterPolicy::default()
        .with_suffix(s.dead_letter_suffix.clone())
        .with_enabled(s.dead_letter_enabled)
        .with_keep_partition(s.dead_letter_keep_partition);
    let settings = ProcessingSettings {
        max_concurrent_partitions: s.max_concurrent_partitions,
        max_buffered_bytes_per_partition: s.max_buffered_bytes_per_partition,
        commit_interval: s.commit_interval,
        commit_every_n: s.commit_every_n,
        retry,
        dead_letter,
    };
    settings.validate()?;
    Ok(settings)
}

struct Driver<'a> {
    owner: &'a EventConsumer,
    consumer: &'a Consumer,
    state: Shared,
    tx: mpsc::UnboundedSender<Done>,
    rx: mpsc::UnboundedReceiver<Done>,
    /// Handler and dead-letter tasks running.
    in_flight: usize,
    stopping: bool,
    policy: DeadLetterPolicy,
    /// When the lag per partition was last read (at most every [`LAG_EVERY`]).
    lag_read: Option<Instant>,
}

/// How often the stats' lag per partition is refreshed.
const LAG_EVERY: Duration = Duration::from_millis(100);

pub(crate) fn stats_of(owner: &EventConsumer) -> &StatsCell {
    &owner.stats
}

pub(crate) async fn run(owner: &EventConsumer, consumer: &Consumer) -> Result<(), EventsError> {
    let settings = processing_settings(&owner.settings)?;
    let policy = settings.dead_letter.clone();
    let state: Shared = Arc::new(Mutex::new(ProcessingState::new(settings)?));
    let listener = Arc::new(Listener {
        state: state.clone(),
    });
    consumer
        .subscribe_with(
            GroupSubscription::Topics(owner.topics.clone()),
            Some(listener),
        )
        .await
        .map_err(|source| EventsError::Consume {
            context: format!("subscribing to {:?}", owner.topics),
            source,
        })?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        owner,
        consumer,
        state,
        tx,
        rx,
        in_flight: 0,
        stopping: false,
        policy,
        lag_read: None,
    };
    stats_of(owner)
        .running
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let result = driver.main_loop().await;
    driver.stop().await;
    stats_of(owner)
        .running
        .store(false, std::sync::atomic::Ordering::Relaxed);
    result
}

impl Driver<'_> {
    async fn main_loop(&mut self) -> Result<(), EventsError> {
        let mut shutdown = self.owner.shutdown.subscribe();
        const POLL: Duration = Duration::from_millis(100);
        loop {
            if *shutdown.borrow_and_update() {
                return Ok(());
            }
            let now = Instant::now();
            let timeout = lock(&self.state)
                .next_deadline()
                .map_or(POLL, |d| {
                    d.saturating_duration_since(now.into_std()).min(POLL)
                })
                .max(Duration::from_millis(1));
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(done) = self.rx.recv() => self.complete(done),
                polled = self.consumer.poll(timeout) => match polled {
                    Ok(records) => self.push(records),
                    Err(e) if e.is_retriable() => {
                        tracing::warn!(error = %e, "poll failed; retrying");
                    }
                    Err(source) => {
                        return Err(EventsError::Consume {
                            context: "polling".to_owned(),
                            source,
                        })
                    }
                },
            }
            while let Ok(done) = self.rx.try_recv() {
                self.complete(done);
            }
            self.execute();
            self.update_lag();
        }
    }

    fn push(&mut self, records: Vec<ConsumerRecord>) {
        let now = Instant::now().into_std();
        let stats = stats_of(self.owner);
        let mut state = lock(&self.state);
        for record in records {
            stats.consumed(
                &record.topic,
                &self.owner.group,
                record_bytes(&record),
                self.owner.settings.metrics,
            );
            state.push(record, now);
        }
        stats.buffered(state.buffered_bytes());
    }

    fn update_lag(&mut self) {
        let now = Instant::now();
        if self.lag_read.is_some_and(|at| now - at < LAG_EVERY) {
            return;
        }
        self.lag_read = Some(now);
        let stats = stats_of(self.owner);
        if let Ok(mut lag) = stats.lag.lock() {
            lag.clear();
            for tp in self.consumer.assignment() {
                if let Some(l) = self.consumer.lag(&tp) {
                    lag.insert(tp, l);
                }
            }
        }
    }

    /// Carries out every action the state has now.
    fn execute(&mut self) {
        let now = Instant::now().into_std();
        loop {
            let action = lock(&self.state).poll_action(now);
            let Some(action) = action else { break };
            match action {
                Action::Dispatch {
                    tp,
                    record,
                    attempt,
                } => {
                    if self.stopping {
                        // Not started: re-read after the restart (nothing past it is committed).
                        continue;
                    }
                    if attempt > 1 {
                        stats_of(self.owner).retried(
                            &tp.topic,
                            &self.owner.group,
                            self.owner.settings.metrics,
                        );
                    }
                    self.dispatch(tp, record, attempt);
                }
                Action::DeadLetter {
                    tp,
                    record,
                    failure,
                } => self.dead_letter(tp, record, failure),
                Action::Discard {
                    tp,
                    record,
                    failure,
                } => {
                    tracing::warn!(
                        topic = %tp.topic, partition = tp.partition, offset = record.offset,
                        error.class = %failure.class,
                        "dead letters disabled: record given up after {} attempts: {}",
                        failure.attempts, failure.message
                    );
                }
                Action::Commit(offsets) => self.commit(offsets),
                Action::Pause(tps) => {
                    let _ = self.consumer.pause(&tps);
                }
                Action::Resume(tps) => {
                    if !self.stopping {
                        let _ = self.consumer.resume(&tps);
                    }
                }
            }
        }
        stats_of(self.owner).buffered(lock(&self.state).buffered_bytes());
    }

    fn dispatch(&mut self, tp: TopicPartition, record: ConsumerRecord, attempt: u32) {
        let ctx = RecordContext::new(&record, None, attempt, self.owner.group.clone());
        let span = process_span(&record, &self.owner.group, attempt);
        let fut = self
            .owner
            .router
            .dispatch(self.owner.codecs.clone(), record.clone(), ctx);
        let tx = self.tx.clone();
        self.in_flight += 1;
        stats_of(self.owner)
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(async move {
            let started = Instant::now();
            // A panic in the handler is caught where it is polled: a failure, not a crash of
            // the consumer (one task per record, not a task to run it and one to await it).
            let outcome = match CatchPanic(fut).instrument(span).await {
                Ok(outcome) => outcome,
                Err(payload) => RouteOutcome::Failed(
                    HandlerError::retriable_msg(panic_message(payload)).with_class("panic"),
                ),
            };
            let _ = tx.send(Done::Handled(Box::new(Handled {
                tp,
                record,
                attempt,
                outcome,
                elapsed: started.elapsed(),
            })));
        });
    }

    fn dead_letter(&mut self, tp: TopicPartition, record: ConsumerRecord, failure: Failure) {
        let dlq = self.owner.dlq.clone();
        let group = self.owner.group.clone();
        let policy = self.policy.clone();
        let tx = self.tx.clone();
        self.in_flight += 1;
        tokio::spawn(async move {
            let offset = record.offset;
            let result = async {
                let partitions = dlq.ensure(&record.topic).await?;
                let raw = RawRecord::from_consumer_record(&record);
                let out = dead_letter_record(&raw, &failure, &group, &policy, Some(partitions));
                dlq.send(out).await
            }
            .await;
            let _ = tx.send(Done::DeadLettered { tp, offset, result });
        });
    }

    fn commit(&mut self, offsets: Vec<(TopicPartition, i64)>) {
        let tx = self.tx.clone();
        match self.consumer.commit_async(Some(offsets_map(&offsets))) {
            Ok(handle) => {
                tokio::spawn(async move {
                    let result = handle.await.map_err(|e| e.to_string());
                    let _ = tx.send(Done::Committed { offsets, result });
                });
            }
            Err(e) => tracing::warn!(error = %e, "commit not started"),
        }
    }

    fn complete(&mut self, done: Done) {
        let now = Instant::now().into_std();
        let stats = stats_of(self.owner);
        let metrics = self.owner.settings.metrics;
        let owner = self.owner;
        let group = &*owner.group;
        match done {
            Done::Handled(handled) => {
                let Handled {
                    tp,
                    record,
                    attempt,
                    outcome,
                    elapsed,
                } = *handled;
                self.in_flight -= 1;
                stats
                    .in_flight
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                let event_type = Router::event_type(&record).unwrap_or_default();
                let result = match outcome {
                    RouteOutcome::Done { handled } => {
                        stats.processed(
                            &tp.topic,
                            group,
                            &event_type,
                            elapsed,
                            Ok(handled),
                            metrics,
                        );
                        if self.owner.settings.logging {
                            tracing::debug!(
                                topic = %tp.topic,
                                partition = tp.partition,
                                offset = record.offset,
                                event.r#type = %event_type,
                                event.id = %header_text(&record, crate::cloudevents::names::ID),
                                correlation_id = %header_text(
                                    &record,
                                    crate::cloudevents::names::CORRELATIONID
                                ),
                                attempt,
                                elapsed_ms = elapsed.as_millis() as u64,
                                "{}",
                                if handled { "event handled" } else { "no handler: skipped" }
                            );
                        }
                        Ok(())
                    }
                    RouteOutcome::Decode(e) => {
                        let class = decode_class(&e);
                        stats.processed(
                            &tp.topic,
                            group,
                            &event_type,
                            elapsed,
                            Err(&class),
                            metrics,
                        );
                        let failure = failure_of(
                            &class,
                            &e.to_string(),
                            None,
                            super::handler::cause_chain(&e),
                            attempt,
                        );
                        self.log_failure(&record, &failure, false);
                        Err(HandlerFailure::not_retriable(failure))
                    }
                    RouteOutcome::Failed(e) => {
                        stats.processed(
                            &tp.topic,
                            group,
                            &event_type,
                            elapsed,
                            Err(e.class()),
                            metrics,
                        );
                        let (kind, failure) = handler_failure(&e, attempt);
                        self.log_failure(&record, &failure, e.is_retriable());
                        Err(HandlerFailure { kind, failure })
                    }
                };
                lock(&self.state).handled(&tp, record.offset, result, now);
            }
            Done::DeadLettered { tp, offset, result } => {
                self.in_flight -= 1;
                match &result {
                    Ok(()) => stats.dead_lettered(&tp.topic, group, metrics),
                    Err(e) => tracing::warn!(
                        topic = %tp.topic, partition = tp.partition, offset, error = %e,
                        "dead letter not written; will retry"
                    ),
                }
                lock(&self.state).dead_lettered(&tp, offset, result, now);
            }
            Done::Committed { offsets, result } => match result {
                Ok(()) => lock(&self.state).committed(&offsets),
                Err(e) => {
                    tracing::warn!(error = %e, "commit failed; sent again with the next one");
                    lock(&self.state).commit_failed(&offsets);
                }
            },
        }
    }

    fn log_failure(&self, record: &ConsumerRecord, failure: &Failure, retriable: bool) {
        if !self.owner.settings.logging {
            return;
        }
        let header = |name: &str| header_text(record, name);
        tracing::warn!(
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            event.r#type = %header(crate::cloudevents::names::TYPE),
            event.id = %header(crate::cloudevents::names::ID),
            correlation_id = %header(crate::cloudevents::names::CORRELATIONID),
            error.class = %failure.class,
            attempts = failure.attempts,
            retriable,
            "handler failed: {}",
            failure.message
        );
    }

    /// Graceful stop: no new handler, running ones drain up to the deadline, handled records
    /// committed, the member leaves the group.
    async fn stop(&mut self) {
        self.stopping = true;
        let consumer = self.consumer;
        let _ = consumer.pause(&consumer.assignment());
        lock(&self.state).drain();
        let deadline = Instant::now() + self.owner.settings.shutdown_timeout;
        while self.in_flight > 0 {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(done)) => self.complete(done),
                Ok(None) | Err(_) => break,
            }
            self.execute();
        }
        while let Ok(done) = self.rx.try_recv() {
            self.complete(done);
        }
        self.execute();
        let safe = lock(&self.state).take_commit();
        if !safe.is_empty() {
            if let Err(e) = consumer.commit_offsets_sync(&offsets_map(&safe)).await {
                tracing::warn!(error = %e, "final commit failed");
            }
        }
        if let Err(e) = consumer.close(Duration::from_secs(10)).await {
            tracing::warn!(error = %e, "closing the consumer (leaving the group) failed");
        }
        self.owner.dlq.close(Duration::from_secs(5)).await;
        if self.in_flight > 0 {
            tracing::warn!(
                in_flight = self.in_flight,
                "stopped with handlers still running: their records will be read again"
            );
        }
    }
}

pub(crate) fn failure_of(
    class: &str,
    message: &str,
    cause_class: Option<&str>,
    detail: Option<String>,
    attempts: u32,
) -> Failure {
    let mut failure = Failure::new(class, message, now_millis());
    failure.cause_class = cause_class.map(str::to_owned);
    failure.detail = detail;
    failure.attempts = attempts;
    failure
}

/// A handler's error as the retry/dead-letter decision takes it: retriable or not, and the
/// failure its dead letter would record at `attempts`.
pub(crate) fn handler_failure(e: &HandlerError, attempts: u32) -> (FailureKind, Failure) {
    let kind = if e.is_retriable() {
        FailureKind::Retriable
    } else {
        FailureKind::NotRetriable
    };
    let failure = failure_of(
        e.class(),
        e.message(),
        e.cause_class(),
        e.detail().map(str::to_owned),
        attempts,
    );
    (kind, failure)
}

pub(crate) fn decode_class(e: &EventsError) -> String {
    let variant = match e {
        EventsError::Deserialization(_) => "Deserialization",
        EventsError::SchemaValidation { .. } => "SchemaValidation",
        EventsError::Registry { .. } => "Registry",
        EventsError::Configuration { .. } => "Configuration",
        _ => "Other",
    };
    format!("kafkit_events::error::EventsError::{variant}")
}

/// Polls a handler's future with panics caught: a panic ends it with the panic's payload (it is
/// not polled again).
pub(crate) struct CatchPanic(pub(crate) RouteFuture);

impl std::future::Future for CatchPanic {
    type Output = Result<RouteOutcome, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(outcome)) => std::task::Poll::Ready(Ok(outcome)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}

pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("handler panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("handler panicked: {s}")
    } else {
        "handler panicked".to_owned()
    }
}

/// The `process <topic>` span, with OpenTelemetry's messaging attributes and the producer's
/// trace context (`traceparent`) recorded; with feature `opentelemetry` the span is made a
/// child of it.
pub(crate) fn process_span(record: &ConsumerRecord, group: &str, attempt: u32) -> tracing::Span {
    let header = |name: &str| header_text(record, name);
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {}", record.topic),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %record.topic,
        messaging.destination.partition.id = %record.partition,
        messaging.kafka.offset = record.offset,
        messaging.consumer.group.name = %group,
        messaging.message.id = %header(crate::cloudevents::names::ID),
        event.r#type = %header(crate::cloudevents::names::TYPE),
        correlation_id = %header(crate::cloudevents::names::CORRELATIONID),
        attempt,
        trace_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
    );
    let headers = || {
        record
            .headers
            .iter()
            .map(|h| (h.key.as_ref(), h.value.as_deref()))
    };
    if let Ok(Some(cx)) = crate::trace_context::extract(headers()) {
        span.record("trace_id", hex(&cx.parent.trace_id).as_str());
        span.record("parent_span_id", hex(&cx.parent.parent_id).as_str());
    }
    #[cfg(feature = "opentelemetry")]
    {
        let _ = crate::trace_context::set_parent_from_headers(&span, headers());
    }
    span
}

/// A header's value as text ("" when missing or not UTF-8), for spans and log lines.
pub(crate) fn header_text(record: &ConsumerRecord, name: &str) -> String {
    record
        .header(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("")
        .to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
