//! Exactly-once mode: the event consumer on a [`TransactionalPipeline`]. Each polled batch is
//! one transaction: its records are handled (partitions concurrently up to
//! `max_concurrent_partitions`, a partition's records in order), each successful attempt's
//! outputs ([`RecordContext::publish`](super::RecordContext::publish)) and each dead letter are
//! sent through the batch's [`TransactionSink`], and the pipeline commits them with the
//! batch's offsets. Anything that cannot finish inside the transaction (a failed send, a
//! retry wait past the batch's budget, a handler that outlives it) fails the batch: the
//! pipeline aborts and rewinds, and the records are handled again, their attempts carried
//! over ([`crate::consume::transactional`] decides).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafkit::consumer::ConsumerRecord;
use kafkit::pipeline::{BatchOutcome, PipelineError, TransactionSink};
use kafkit::rng::XorShift64Star;
use kafkit::{TopicPartition, TransactionalPipeline};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::driver::{
    decode_class, failure_of, handler_failure, panic_message, process_span, stats_of, CatchPanic,
};
use super::handler::{HandlerError, OutputEncoder, Outputs, RecordContext};
use super::router::{Codecs, RouteOutcome, Router};
use super::stats::StatsCell;
use super::{dead_letter_writer::DeadLetterWriter, EventConsumer};
use crate::consume::dead_letter::{dead_letter_record, DeadLetterPolicy, Failure};
use crate::consume::record_bytes;
use crate::consume::retry::{FailureKind, RetryPolicy};
use crate::consume::transactional::{after_failure, Carried, Next, RetryMemory, TransactionBudget};
use crate::error::{EventsError, RawRecord};

/// What [`EventConsumer`] holds in exactly-once mode.
pub(crate) struct ExactlyOnce {
    /// Taken by the one `run`.
    pub(crate) pipeline: tokio::sync::Mutex<Option<TransactionalPipeline>>,
    pub(crate) encoder: Arc<OutputEncoder>,
    pub(crate) budget: TransactionBudget,
}

/// Why a batch could not finish inside its transaction (the pipeline aborts it).
#[derive(Debug, thiserror::Error)]
enum BatchStop {
    #[error("sending into the transaction failed: {0}")]
    Send(#[from] kafkit::ProduceError),
    #[error("dead-letter topic: {0}")]
    DeadLetterTopic(String),
    #[error(
        "{topic}-{partition}@{offset}: the retry wait does not fit in the batch's transaction \
         budget; the record is handled again in the next transaction"
    )]
    RetryPastBudget {
        topic: String,
        partition: i32,
        offset: i64,
    },
    #[error("the batch's handlers did not finish within the transaction budget ({0:?})")]
    Deadline(Duration),
    #[error("a partition task failed: {0}")]
    Task(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a batch's partition tasks share.
struct Batch {
    router: Arc<Router>,
    codecs: Arc<Codecs>,
    encoder: Arc<OutputEncoder>,
    dlq: Arc<DeadLetterWriter>,
    stats: Arc<StatsCell>,
    group: Arc<str>,
    retry: RetryPolicy,
    dead_letter: DeadLetterPolicy,
    metrics: bool,
    logging: bool,
    deadline: Instant,
    memory: Arc<Mutex<RetryMemory>>,
    /// The record each partition has in a handler now, with its attempt.
    current: Mutex<HashMap<TopicPartition, (i64, u32)>>,
    /// Dead letters sent in this batch (counted once it commits).
    dead_letters: Mutex<Vec<Arc<str>>>,
}

pub(crate) async fn run(owner: &EventConsumer, eos: &ExactlyOnce) -> Result<(), EventsError> {
    let Some(mut pipeline) = eos.pipeline.lock().await.take() else {
        return Err(EventsError::configuration(
            "run",
            "EventConsumer::run runs once (its pipeline is closed)",
        ));
    };
    let settings = super::driver::processing_settings(&owner.settings)?;
    let memory = Arc::new(Mutex::new(RetryMemory::default()));
    let stats = stats_of(owner);
    stats.running.store(true, Ordering::Relaxed);
    let mut shutdown = owner.shutdown.subscribe();
    let result = loop {
        if *shutdown.borrow_and_update() {
            break Ok(());
        }
        let assigned = pipeline.consumer().assignment();
        lock(&memory).retain(&assigned);
        let batch = Arc::new(Batch {
            router: owner.router.clone(),
            codecs: owner.codecs.clone(),
            encoder: eos.encoder.clone(),
            dlq: owner.dlq.clone(),
            stats: owner.stats.clone(),
            group: owner.group.clone(),
            retry: settings.retry.clone(),
            dead_letter: settings.dead_letter.clone(),
            metrics: owner.settings.metrics,
            logging: owner.settings.logging,
            // From the poll on (the transform starts at most a poll timeout later).
            deadline: Instant::from_std(eos.budget.deadline(std::time::Instant::now())),
            memory: memory.clone(),
            current: Mutex::new(HashMap::new()),
            dead_letters: Mutex::new(Vec::new()),
        });
        let concurrency = owner.settings.max_concurrent_partitions;
        let budget = eos.budget;
        let outcome = pipeline
            .process_batch(|records, sink| {
                handle_batch(batch.clone(), records, sink, concurrency, budget.per_batch)
            })
            .await;
        match outcome {
            Ok(BatchOutcome::Committed { offsets, records }) => {
                stats.transactions_committed.fetch_add(1, Ordering::Relaxed);
                lock(&memory).committed(offsets.iter().map(|(tp, o)| (tp, o.offset)));
                for topic in lock(&batch.dead_letters).drain(..) {
                    stats.dead_lettered(&topic, &owner.group, owner.settings.metrics);
                }
                tracing::debug!(records, "transaction committed");
            }
            Ok(BatchOutcome::Aborted { cause }) => {
                stats.transactions_aborted.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(cause = %cause, "transaction aborted; its input is handled again");
            }
            Ok(_) => {}
            Err(PipelineError::Consume(e)) if e.is_retriable() => {
                tracing::warn!(error = %e, "poll failed; going on");
            }
            Err(source) => {
                break Err(EventsError::Transaction {
                    context: "processing".to_owned(),
                    source,
                })
            }
        }
        update_lag(stats, &pipeline);
    };
    // Nothing is open between batches (one transaction per batch): close leaves the group.
    let closed = pipeline.close(owner.settings.shutdown_timeout).await;
    stats.running.store(false, Ordering::Relaxed);
    result?;
    closed.map_err(|source| EventsError::Transaction {
        context: "closing".to_owned(),
        source,
    })
}

fn update_lag(stats: &StatsCell, pipeline: &TransactionalPipeline) {
    if let Ok(mut lag) = stats.lag.lock() {
        lag.clear();
        let consumer = pipeline.consumer();
        for tp in consumer.assignment() {
            if let Some(l) = consumer.lag(&tp) {
                lag.insert(tp, l);
            }
        }
    }
}

/// Handles one polled batch inside its transaction: partitions concurrently, each in order.
async fn handle_batch(
    batch: Arc<Batch>,
    records: Vec<ConsumerRecord>,
    sink: TransactionSink,
    concurrency: usize,
    budget: Duration,
) -> Result<(), BatchStop> {
    let mut by_partition: BTreeMap<TopicPartition, Vec<ConsumerRecord>> = BTreeMap::new();
    for record in records {
        batch.stats.consumed(
            &record.topic,
            &batch.group,
            record_bytes(&record),
            batch.metrics,
        );
        by_partition
            .entry(TopicPartition::new(record.topic.as_ref(), record.partition))
            .or_default()
            .push(record);
    }
    let mut waiting = by_partition.into_iter();
    let mut tasks = JoinSet::new();
    let work = async {
        loop {
            while tasks.len() < concurrency.max(1) {
                let Some((tp, records)) = waiting.next() else {
                    break;
                };
                tasks.spawn(handle_partition(batch.clone(), tp, records, sink.clone()));
            }
            match tasks.join_next().await {
                None => return Ok(()),
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(stop))) => return Err(stop),
                Some(Err(e)) => return Err(BatchStop::Task(e.to_string())),
            }
        }
    };
    let result = match tokio::time::timeout_at(batch.deadline, work).await {
        Ok(result) => result,
        Err(_) => {
            // The handlers still running count an attempt each: one that always outlives the
            // budget ends in the dead letter instead of aborting every transaction.
            let now = Instant::now();
            let current: Vec<_> = lock(&batch.current).drain().collect();
            let mut memory = lock(&batch.memory);
            for (tp, (offset, attempt)) in current {
                let mut failure = failure_of(
                    "kafkit_events::consumer::TransactionBudget",
                    &format!(
                        "the handler did not finish within the transaction budget ({budget:?})"
                    ),
                    None,
                    None,
                    attempt,
                );
                failure.attempts = attempt;
                memory.failed(
                    &tp,
                    offset,
                    Carried {
                        attempts: attempt,
                        due: now.into_std(),
                        failure,
                        kind: FailureKind::Retriable,
                    },
                );
            }
            Err(BatchStop::Deadline(budget))
        }
    };
    // Every task has stopped before the pipeline ends the transaction: none sends later.
    tasks.shutdown().await;
    if result.is_err() {
        // Handlers cut short did not count themselves out.
        batch.stats.in_flight.store(0, Ordering::Relaxed);
    }
    result
}

/// One partition's records of the batch, in order.
async fn handle_partition(
    batch: Arc<Batch>,
    tp: TopicPartition,
    records: Vec<ConsumerRecord>,
    sink: TransactionSink,
) -> Result<(), BatchStop> {
    let mut rng = XorShift64Star::from_entropy();
    for record in records {
        let offset = record.offset;
        let carried = lock(&batch.memory).get(&tp, offset).cloned();
        let mut attempt = 1;
        if let Some(carried) = carried {
            if carried.exhausted(&batch.retry) {
                dead_letter(&batch, &sink, &record, carried.failure).await?;
                continue;
            }
            attempt = carried.attempts + 1;
            let due = Instant::from_std(carried.due);
            if due > batch.deadline {
                return Err(past_budget(&record));
            }
            tokio::time::sleep_until(due).await;
        }
        loop {
            if attempt > 1 {
                batch.stats.retried(&tp.topic, &batch.group, batch.metrics);
            }
            let outputs = Outputs::new(batch.encoder.clone());
            let (outcome, elapsed) = call_handler(&batch, &tp, &record, attempt, &outputs).await;
            let sent = outputs.close();
            let event_type = Router::event_type(&record).unwrap_or_default();
            let (kind, failure) = match outcome {
                RouteOutcome::Done { handled } => {
                    batch.stats.processed(
                        &tp.topic,
                        &batch.group,
                        &event_type,
                        elapsed,
                        Ok(handled),
                        batch.metrics,
                    );
                    for output in sent {
                        // The delivery is awaited by the commit (a failure aborts it).
                        drop(sink.send(output).await?);
                    }
                    lock(&batch.memory).handled(&tp, offset);
                    break;
                }
                RouteOutcome::Decode(e) => {
                    let class = decode_class(&e);
                    batch.stats.processed(
                        &tp.topic,
                        &batch.group,
                        &event_type,
                        elapsed,
                        Err(&class),
                        batch.metrics,
                    );
                    let failure = failure_of(
                        &class,
                        &e.to_string(),
                        None,
                        super::handler::cause_chain(&e),
                        attempt,
                    );
                    (FailureKind::NotRetriable, failure)
                }
                RouteOutcome::Failed(e) => {
                    batch.stats.processed(
                        &tp.topic,
                        &batch.group,
                        &event_type,
                        elapsed,
                        Err(e.class()),
                        batch.metrics,
                    );
                    handler_failure(&e, attempt)
                }
            };
            if batch.logging {
                tracing::warn!(
                    topic = %tp.topic, partition = tp.partition, offset,
                    error.class = %failure.class, attempts = attempt,
                    retriable = kind == FailureKind::Retriable,
                    "handler failed: {}", failure.message
                );
            }
            let now = Instant::now();
            let delay = batch.retry.delay(attempt, &mut rng);
            let next = after_failure(
                &batch.retry,
                kind,
                attempt,
                delay,
                now.into_std(),
                batch.deadline.into_std(),
            );
            // Remembered in case the transaction aborts (cleared when it commits).
            lock(&batch.memory).failed(
                &tp,
                offset,
                Carried {
                    attempts: attempt,
                    due: (now + delay).into_std(),
                    failure: failure.clone(),
                    kind,
                },
            );
            match next {
                Next::Retry { delay } => {
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Next::DeadLetter => {
                    dead_letter(&batch, &sink, &record, failure).await?;
                    break;
                }
                Next::Abort => return Err(past_budget(&record)),
            }
        }
    }
    Ok(())
}

fn past_budget(record: &ConsumerRecord) -> BatchStop {
    BatchStop::RetryPastBudget {
        topic: record.topic.to_string(),
        partition: record.partition,
        offset: record.offset,
    }
}

/// Calls the record's handler (decoding first) with a context whose outputs go to `outputs`;
/// a panic is a retriable failure.
async fn call_handler(
    batch: &Batch,
    tp: &TopicPartition,
    record: &ConsumerRecord,
    attempt: u32,
    outputs: &Outputs,
) -> (RouteOutcome, Duration) {
    let ctx = RecordContext::new(record, None, attempt, batch.group.clone())
        .with_outputs(outputs.clone());
    let span = process_span(record, &batch.group, attempt);
    let fut = batch
        .router
        .dispatch(batch.codecs.clone(), record.clone(), ctx);
    lock(&batch.current).insert(tp.clone(), (record.offset, attempt));
    batch.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let outcome = match CatchPanic(fut).instrument(span).await {
        Ok(outcome) => outcome,
        Err(payload) => RouteOutcome::Failed(
            HandlerError::retriable_msg(panic_message(payload)).with_class("panic"),
        ),
    };
    batch.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    lock(&batch.current).remove(tp);
    (outcome, started.elapsed())
}

/// Sends the dead letter of `record` through the transaction (dead letters disabled: logged
/// and given up, committed with the transaction).
async fn dead_letter(
    batch: &Batch,
    sink: &TransactionSink,
    record: &ConsumerRecord,
    failure: Failure,
) -> Result<(), BatchStop> {
    if !batch.dead_letter.enabled {
        tracing::warn!(
            topic = %record.topic, partition = record.partition, offset = record.offset,
            error.class = %failure.class,
            "dead letters disabled: record given up after {} attempts: {}",
            failure.attempts, failure.message
        );
        return Ok(());
    }
    let partitions = batch
        .dlq
        .ensure(&record.topic)
        .await
        .map_err(BatchStop::DeadLetterTopic)?;
    let raw = RawRecord::from_consumer_record(record);
    let out = dead_letter_record(
        &raw,
        &failure,
        &batch.group,
        &batch.dead_letter,
        Some(partitions),
    );
    drop(sink.send(out).await?);
    lock(&batch.dead_letters).push(record.topic.clone());
    Ok(())
}
