//! The producer's sender task: the thin loop around [`SenderState`].
//!
//! One task per producer waits for new records, a linger/backoff deadline, a response, a
//! metadata refresh or shutdown; then it expires and polls Produce requests. A request to a
//! node with an open connection and nothing pending in its dispatcher is queued on that
//! connection by the sender task itself, which awaits the response among its own (no task hop
//! per request: at `linger.ms` 0 every record is a request). Any other goes to the node's
//! dispatcher (one task per leader), which connects when needed and *queues* the node's
//! requests one after the other, each response awaited by a small task of its own; later
//! requests to that node follow it there until it has caught up. Either way requests are
//! written in the order the state produced them (sequence order), up to
//! `max.in.flight.requests.per.connection` in flight. Results come back to the sender task,
//! which applies them (the state re-orders them per node) and hands every record outcome to
//! its delivery handle.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, Notify, Semaphore};
use tracing::{debug, info, warn};

use super::cluster::Cluster;
use super::connection::Connection;
use crate::error::Error;
use crate::producer::transaction::{TxnCoordinator, PRODUCE_V1_MAX};
use crate::producer::{
    deliver_all, deliver_drain, Delivery, ProduceError, Topic, WallClock, RESYNC_EVERY,
};
use crate::state::metadata::BrokerInfo;
use crate::state::partitioner::DefaultPartitioner;
use crate::state::producer::{
    Completion, PartitionResponse, ProduceRequestPlan, RequestResult, SenderState, TopicPartition,
};
use crate::state::rng::XorShift64Star;

/// What the producer handles and the sender task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<Core>,
    /// Wakes the sender task (new batch, flush, close, shutdown).
    pub(crate) wake: Notify,
    /// Signalled after outcomes are delivered (flush and close wait on it).
    pub(crate) progress: Notify,
    /// `buffer.memory`, in bytes.
    pub(crate) buffer: Semaphore,
    /// Every handle is gone: abort and stop.
    pub(crate) shutdown: AtomicBool,
    /// The sender task has stopped.
    pub(crate) stopped: AtomicBool,
    pub(crate) counters: Counters,
    /// Record timestamps (re-anchored by the sender task).
    pub(crate) clock: WallClock,
}

/// Counters mirrored from the state after each step, read without locking.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) records_failed: AtomicU64,
    pub(crate) records_expired_unsent: AtomicU64,
    pub(crate) records_expired_unknown: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) epoch_bumps: AtomicU64,
    pub(crate) batch_splits: AtomicU64,
    pub(crate) requests_in_flight: AtomicU64,
}

/// The sender state and what `send` decides beside it, under one lock: a record's send
/// takes that lock once (partition choice, the cached partition count, the append).
/// Dereferences to the [`SenderState`].
#[derive(Debug)]
pub(crate) struct Core {
    state: SenderState<Delivery>,
    /// Chooses each record's partition (sticky, keyed or explicit).
    pub(crate) partitioner: DefaultPartitioner<XorShift64Star>,
    /// The last topic sent to, its partition count and the metadata generation it was read
    /// at: a record of the same topic under the same metadata needs no metadata lookup.
    pub(crate) last_topic: Option<(Topic, u64, u32)>,
}

impl Core {
    /// The state and the partitioner, borrowed apart.
    pub(crate) fn parts(
        &mut self,
    ) -> (
        &mut SenderState<Delivery>,
        &mut DefaultPartitioner<XorShift64Star>,
    ) {
        (&mut self.state, &mut self.partitioner)
    }
}

impl Deref for Core {
    type Target = SenderState<Delivery>;

    fn deref(&self) -> &Self::Target {
        &self.state
    }
}

impl DerefMut for Core {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.state
    }
}

impl Shared {
    pub(crate) fn new(
        state: SenderState<Delivery>,
        partitioner: DefaultPartitioner<XorShift64Star>,
        buffer_memory: usize,
    ) -> Self {
        Shared {
            state: Mutex::new(Core {
                state,
                partitioner,
                last_topic: None,
            }),
            wake: Notify::new(),
            progress: Notify::new(),
            buffer: Semaphore::new(buffer_memory.min(Semaphore::MAX_PERMITS)),
            shutdown: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            counters: Counters::default(),
            clock: WallClock::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands completions to their records and releases their buffer memory.
    pub(crate) fn deliver(&self, completions: Vec<Completion<Delivery>>) {
        if completions.is_empty() {
            return;
        }
        let released = deliver_all(completions);
        self.buffer.add_permits(released);
        self.progress.notify_waiters();
    }

    /// [`Shared::deliver`] from a reusable buffer (left empty).
    pub(crate) fn deliver_from(&self, completions: &mut Vec<Completion<Delivery>>) {
        if completions.is_empty() {
            return;
        }
        let released = deliver_drain(completions);
        self.buffer.add_permits(released);
        self.progress.notify_waiters();
    }

    fn mirror(&self, state: &SenderState<Delivery>) {
        let s = state.stats();
        let c = &self.counters;
        c.records_sent.store(s.records_sent, Ordering::Relaxed);
        c.bytes_sent.store(s.bytes_sent, Ordering::Relaxed);
        c.records_failed.store(s.records_failed, Ordering::Relaxed);
        c.records_expired_unsent
            .store(s.records_expired_unsent, Ordering::Relaxed);
        c.records_expired_unknown
            .store(s.records_expired_unknown, Ordering::Relaxed);
        c.batches_sent.store(s.batches_sent, Ordering::Relaxed);
        c.retries.store(s.retries, Ordering::Relaxed);
        c.epoch_bumps.store(s.epoch_bumps, Ordering::Relaxed);
        c.batch_splits.store(s.batch_splits, Ordering::Relaxed);
        c.requests_in_flight
            .store(state.requests_in_flight() as u64, Ordering::Relaxed);
    }
}

/// Settings of the sender task.
#[derive(Debug, Clone)]
pub(crate) struct SenderSettings {
    pub(crate) acks: i16,
    pub(crate) request_timeout: Duration,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
    /// `metadata.max.age.ms`: metadata older than this is refreshed.
    pub(crate) metadata_max_age: Duration,
    /// `transactional.id`: Produce requests carry it (and stay at v11, transactions v1).
    pub(crate) transactional_id: Option<String>,
    /// Transactions v2 (KIP-890) in use: Produce v12+ adds partitions to the transaction.
    pub(crate) txn_v2: Arc<AtomicBool>,
}

enum Event {
    Response(u64, RequestResult),
    ProducerId(Result<(i64, i16), Error>),
    PartitionsAdded(Result<Vec<(TopicPartition, Option<ResponseError>)>, Error>),
    Refreshed,
}

/// A node's dispatcher: its queue, and how many plans in it are not queued on a connection
/// yet (the sender task queues a request itself only when none are: write order stays the
/// order the state produced).
struct Dispatcher {
    plans: mpsc::UnboundedSender<ProduceRequestPlan>,
    backlog: Arc<AtomicUsize>,
}

/// A response the sender task awaits itself.
type ResponseFuture = Pin<Box<dyn Future<Output = (u64, RequestResult)> + Send>>;

/// The responses to the requests the sender task queued itself: at most
/// `max.in.flight.requests.per.connection` per node, so polling each one on a wake-up is
/// cheap; this saves a task (and a wake-up) per request.
#[derive(Default)]
struct Responses {
    pending: Vec<ResponseFuture>,
}

impl Responses {
    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn push(&mut self, response: ResponseFuture) {
        self.pending.push(response);
    }

    /// The next response to arrive.
    fn next(&mut self) -> impl Future<Output = (u64, RequestResult)> + '_ {
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            for i in 0..self.pending.len() {
                if let Poll::Ready(out) = self.pending[i].as_mut().poll(cx) {
                    drop(self.pending.swap_remove(i));
                    return Poll::Ready(out);
                }
            }
            Poll::Pending
        })
    }
}

/// The Produce version for `conn` (transactions v1 stay at Produce v11).
fn produce_version(conn: &Connection, settings: &SenderSettings) -> Result<i16, Error> {
    let v = conn.version(ApiKey::Produce)?;
    // Transactions v1: Produce v12+ would ask the broker to add partitions itself.
    if settings.transactional_id.is_some() && !settings.txn_v2.load(Ordering::Acquire) {
        Ok(v.min(PRODUCE_V1_MAX))
    } else {
        Ok(v)
    }
}

/// Queues `plan` on the node's open connection from the sender task itself, when that needs
/// no wait: the node's dispatcher has nothing pending, a connection is open, and the
/// connection takes the frame at once. `Err(plan)` otherwise, nothing queued: the dispatcher
/// takes it (and reports any error, connecting again if the connection just closed).
fn send_direct(
    plan: ProduceRequestPlan,
    cluster: &Cluster,
    settings: &SenderSettings,
    responses: &mut Responses,
) -> Result<(), ProduceRequestPlan> {
    if settings.acks == 0 {
        return Err(plan);
    }
    let Some(conn) = cluster.live_connection(plan.node) else {
        return Err(plan);
    };
    let id = plan.id;
    let Ok(version) = produce_version(&conn, settings) else {
        return Err(plan);
    };
    let request = produce_request(
        &plan,
        settings.acks,
        settings.request_timeout,
        settings.transactional_id.as_deref(),
    );
    match conn.try_start_send(&request, version, settings.request_timeout) {
        Ok(Some(pending)) => {
            let cluster = cluster.clone();
            responses.push(Box::pin(async move {
                let result = pending
                    .wait()
                    .await
                    .map(|response| read_response(&cluster, response));
                (id, result)
            }));
            Ok(())
        }
        Ok(None) | Err(_) => Err(plan),
    }
}

/// Runs InitProducerId (any broker) with `current` (-1, -1 or the pair to bump, KIP-360).
pub(crate) async fn init_producer_id(
    cluster: &Cluster,
    current: (i64, i16),
    timeout: Duration,
) -> Result<(i64, i16), Error> {
    let conn = cluster.any_connection().await?;
    let version = conn.version(ApiKey::InitProducerId)?;
    let request = init_producer_id_request(current);
    let response = conn.send(&request, version, timeout).await?;
    Error::check(ApiKey::InitProducerId, response.error_code, None)?;
    Ok((response.producer_id.0, response.producer_epoch))
}

/// InitProducerId for an idempotent producer: a fresh id (`current` = (-1, -1)) or, for an
/// epoch bump (KIP-360, v3+), the current id and epoch.
fn init_producer_id_request(current: (i64, i16)) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(ProducerId(current.0))
        .with_producer_epoch(current.1)
}

/// The sender task. Ends when shut down, or closed with nothing left.
pub(crate) async fn run(
    shared: Arc<Shared>,
    cluster: Cluster,
    settings: SenderSettings,
    txn: Option<Arc<TxnCoordinator>>,
) {
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let mut dispatchers: HashMap<i32, Dispatcher> = HashMap::new();
    let mut responses = Responses::default();
    let sleep = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(sleep);
    let mut init_running = false;
    let mut init_failures = 0u32;
    let mut init_not_before = Instant::now();
    let mut refresh_running = false;
    let mut last_refresh: Option<Instant> = None;
    let mut last_resync = Instant::now();
    let mut outcomes: Vec<Completion<Delivery>> = Vec::new();
    loop {
        let now = Instant::now();
        if now >= last_resync + RESYNC_EVERY {
            shared.clock.resync();
            last_resync = now;
        }
        if shared.shutdown.load(Ordering::Acquire) {
            let outcomes = {
                let mut state = shared.lock();
                state.abort(&ProduceError::Closed);
                state.take_completions()
            };
            shared.deliver(outcomes);
            break;
        }
        let (transmit, init, stale, idle, closing, add) = {
            let mut state = shared.lock();
            state.expire(now);
            let add = if txn.is_some() {
                state.poll_add_partitions(now)
            } else {
                None
            };
            let init = if init_running || now < init_not_before {
                None
            } else {
                state.poll_init_producer_id()
            };
            let transmit = {
                let metadata = cluster.metadata();
                let leader = |tp: &TopicPartition| {
                    metadata.leader(&tp.topic, tp.partition).map(|b| b.node_id)
                };
                state.poll_requests(now, &leader)
            };
            let stale = state.take_metadata_stale();
            shared.mirror(&state);
            let closing = state.is_closing();
            state.take_completions_into(&mut outcomes);
            let mut transmit = transmit;
            if let Some(at) = state.transaction().and_then(|t| t.next_add_at()) {
                transmit.next_check = Some(transmit.next_check.map_or(at, |c| c.min(at)));
            }
            (transmit, init, stale, state.is_idle(), closing, add)
        };
        if let (Some((pair, partitions)), Some(txn)) = (add, &txn) {
            let (txn, tx, timeout) = (txn.clone(), events_tx.clone(), settings.request_timeout);
            tokio::spawn(async move {
                debug!(partitions = partitions.len(), "AddPartitionsToTxn");
                let result = txn.add_partitions(pair, &partitions, timeout).await;
                let _ = tx.send(Event::PartitionsAdded(result));
            });
        }
        shared.deliver_from(&mut outcomes);
        if closing && idle {
            break;
        }
        for plan in transmit.requests {
            let node = plan.node;
            let idle_dispatcher = dispatchers
                .get(&node)
                .is_none_or(|d| d.backlog.load(Ordering::Acquire) == 0);
            // The common case (connected, nothing queued before it): queued here, its response
            // awaited here; a connect, a full queue or a re-authentication go through the
            // node's dispatcher, and so does every later request until it has caught up.
            let plan = if idle_dispatcher {
                match send_direct(plan, &cluster, &settings, &mut responses) {
                    Ok(()) => continue,
                    Err(plan) => plan,
                }
            } else {
                plan
            };
            let dispatcher = dispatchers.entry(node).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let backlog = Arc::new(AtomicUsize::new(0));
                tokio::spawn(dispatch(
                    node,
                    cluster.clone(),
                    settings.clone(),
                    rx,
                    backlog.clone(),
                    events_tx.clone(),
                ));
                Dispatcher { plans: tx, backlog }
            });
            dispatcher.backlog.fetch_add(1, Ordering::AcqRel);
            if let Err(mpsc::error::SendError(plan)) = dispatcher.plans.send(plan) {
                dispatcher.backlog.fetch_sub(1, Ordering::AcqRel);
                let lost = Error::UnknownBroker { node_id: node };
                let _ = events_tx.send(Event::Response(plan.id, Err(lost)));
            }
        }
        if let Some(current) = init {
            init_running = true;
            let (cluster, tx, timeout) =
                (cluster.clone(), events_tx.clone(), settings.request_timeout);
            tokio::spawn(async move {
                let result = init_producer_id(&cluster, current, timeout).await;
                let _ = tx.send(Event::ProducerId(result));
            });
        }
        let refresh_due = last_refresh.is_none_or(|at| now >= at + settings.retry_backoff);
        let aged = cluster.metadata().is_stale(now, settings.metadata_max_age);
        let wants_refresh = stale || aged || !transmit.unknown_leaders.is_empty();
        if wants_refresh && !refresh_running && refresh_due {
            refresh_running = true;
            last_refresh = Some(now);
            let topics: BTreeSet<Arc<str>> = transmit.unknown_leaders.clone();
            let (cluster, tx) = (cluster.clone(), events_tx.clone());
            tokio::spawn(async move {
                let names: Vec<&str> = topics.iter().map(|t| &**t).collect();
                let result = if names.is_empty() {
                    let known: Vec<String> = cluster.metadata().topic_names();
                    let known: Vec<&str> = known.iter().map(String::as_str).collect();
                    cluster.refresh_metadata(Some(&known)).await
                } else {
                    cluster.refresh_metadata(Some(&names)).await
                };
                if let Err(err) = result {
                    debug!(error = %err, "producer metadata refresh failed");
                }
                let _ = tx.send(Event::Refreshed);
            });
        }
        let mut deadline = transmit
            .next_check
            .unwrap_or(now + Duration::from_secs(1))
            .min(now + Duration::from_secs(1));
        if wants_refresh && !refresh_running {
            if let Some(at) = last_refresh {
                deadline = deadline.min(at + settings.retry_backoff);
            }
        }
        if init_not_before > now {
            deadline = deadline.min(init_not_before);
        }
        // One timer for the task's life, moved only when it must fire sooner (or fired): an
        // early wake-up only costs a turn of the loop, a timer entry per turn costs more.
        let deadline = tokio::time::Instant::from_std(deadline);
        if sleep.is_elapsed() || deadline < sleep.deadline() {
            sleep.as_mut().reset(deadline);
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = &mut sleep => {}
            (id, result) = responses.next(), if !responses.is_empty() => {
                shared.lock().handle_result(Instant::now(), id, result);
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                let mut next = Some(event);
                while let Some(event) = next.take() {
                    match event {
                        Event::Response(id, result) => {
                            shared.lock().handle_result(Instant::now(), id, result);
                        }
                        Event::ProducerId(Ok((id, epoch))) => {
                            init_running = false;
                            init_failures = 0;
                            info!(producer_id = id, epoch, "producer id");
                            shared.lock().handle_producer_id(id, epoch);
                        }
                        Event::ProducerId(Err(err)) => {
                            init_running = false;
                            init_failures = init_failures.saturating_add(1);
                            if err.is_retriable() {
                                warn!(error = %err, "InitProducerId failed; retrying");
                                let wait = settings.retry_backoff
                                    .saturating_mul(init_failures.min(10))
                                    .min(settings.retry_backoff_max);
                                init_not_before = Instant::now() + wait;
                            } else {
                                let error = ProduceError::Client(err);
                                let outcomes = {
                                    let mut state = shared.lock();
                                    if state.handle_producer_id_error(&error) {
                                        warn!(error = %error, "epoch bump refused; asking for a new producer id");
                                    } else {
                                        warn!(error = %error, "InitProducerId failed for good");
                                    }
                                    state.take_completions()
                                };
                                shared.deliver(outcomes);
                            }
                        }
                        Event::PartitionsAdded(result) => {
                            let mut state = shared.lock();
                            let backoff = settings.retry_backoff;
                            if let Some(t) = state.transaction_mut() {
                                t.handle_add_partitions(Instant::now(), result, backoff);
                            }
                            drop(state);
                            shared.progress.notify_waiters();
                        }
                        Event::Refreshed => refresh_running = false,
                    }
                    next = events.try_recv().ok();
                }
            }
        }
    }
    shared.stopped.store(true, Ordering::Release);
    shared.progress.notify_waiters();
    debug!("producer sender task stopped");
}

/// One leader's dispatcher: connects when needed and queues its requests in order; `backlog`
/// counts the plans not queued on a connection yet.
async fn dispatch(
    node: i32,
    cluster: Cluster,
    settings: SenderSettings,
    mut plans: mpsc::UnboundedReceiver<ProduceRequestPlan>,
    backlog: Arc<AtomicUsize>,
    events: mpsc::UnboundedSender<Event>,
) {
    while let Some(plan) = plans.recv().await {
        dispatch_one(node, &cluster, &settings, plan, &events).await;
        backlog.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Queues one plan on the node's connection (connecting first if needed); its result goes to
/// `events`.
async fn dispatch_one(
    node: i32,
    cluster: &Cluster,
    settings: &SenderSettings,
    plan: ProduceRequestPlan,
    events: &mpsc::UnboundedSender<Event>,
) {
    let id = plan.id;
    let partitions: Vec<TopicPartition> = plan.batches.iter().map(|(tp, _)| tp.clone()).collect();
    let request = produce_request(
        &plan,
        settings.acks,
        settings.request_timeout,
        settings.transactional_id.as_deref(),
    );
    let conn = match cluster.connection(node).await {
        Ok(conn) => conn,
        Err(err) => {
            debug!(node, error = %err, "cannot reach leader");
            let _ = events.send(Event::Response(id, Err(err)));
            return;
        }
    };
    let version = match produce_version(&conn, settings) {
        Ok(v) => v,
        Err(err) => {
            let _ = events.send(Event::Response(id, Err(err)));
            return;
        }
    };
    if settings.acks == 0 {
        let result = conn
            .send_without_response(&request, version)
            .await
            .map(|()| {
                partitions
                    .into_iter()
                    .map(|tp| {
                        let written = PartitionResponse::Written {
                            base_offset: -1,
                            log_append_time: -1,
                        };
                        (tp, written)
                    })
                    .collect()
            });
        let _ = events.send(Event::Response(id, result));
        return;
    }
    match conn
        .start_send(&request, version, settings.request_timeout)
        .await
    {
        Ok(pending) => {
            let (events, cluster) = (events.clone(), cluster.clone());
            tokio::spawn(async move {
                let result = pending
                    .wait()
                    .await
                    .map(|response| read_response(&cluster, response));
                let _ = events.send(Event::Response(id, result));
            });
        }
        Err(err) => {
            let _ = events.send(Event::Response(id, Err(err)));
        }
    }
}

fn produce_request(
    plan: &ProduceRequestPlan,
    acks: i16,
    request_timeout: Duration,
    transactional_id: Option<&str>,
) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (tp, records) in &plan.batches {
        let data = PartitionProduceData::default()
            .with_index(tp.partition)
            .with_records(Some(records.clone()));
        match topics.iter_mut().find(|t| *t.name.0 == *tp.topic) {
            Some(topic) => topic.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    ProduceRequest::default()
        .with_transactional_id(
            transactional_id.map(|id| TransactionalId(StrBytes::from_string(id.to_owned()))),
        )
        .with_acks(acks)
        .with_timeout_ms(i32::try_from(request_timeout.as_millis()).unwrap_or(i32::MAX))
        .with_topic_data(topics)
}

/// Per-partition answers; applies KIP-951 leader hints and forgets stale leaders.
fn read_response(
    cluster: &Cluster,
    response: ProduceResponse,
) -> Vec<(TopicPartition, PartitionResponse)> {
    let endpoints: HashMap<i32, BrokerInfo> = response
        .node_endpoints
        .iter()
        .map(|e| {
            let info = BrokerInfo {
                node_id: e.node_id.0,
                host: e.host.to_string(),
                port: e.port,
                rack: e.rack.as_ref().map(|r| r.to_string()),
            };
            (e.node_id.0, info)
        })
        .collect();
    let mut out = Vec::new();
    for topic in &response.responses {
        let name: Arc<str> = Arc::from(&*topic.name.0);
        for p in &topic.partition_responses {
            let tp = TopicPartition::new(name.clone(), p.index);
            let answer = match ResponseError::try_from_code(p.error_code) {
                None => PartitionResponse::Written {
                    base_offset: p.base_offset,
                    log_append_time: p.log_append_time_ms,
                },
                Some(code) => {
                    if matches!(
                        code,
                        ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch
                    ) {
                        let hint = &p.current_leader;
                        let leader = hint.leader_id.0;
                        let applied = leader >= 0
                            && cluster.update_metadata(|m| {
                                m.update_leader(
                                    &name,
                                    p.index,
                                    leader,
                                    hint.leader_epoch,
                                    endpoints.get(&leader).cloned(),
                                )
                            });
                        if !applied {
                            cluster.update_metadata(|m| m.invalidate_leader(&name, p.index));
                        }
                    }
                    PartitionResponse::Refused {
                        code,
                        message: p.error_message.as_ref().map(|m| m.to_string()),
                    }
                }
            };
            out.push((tp, answer));
        }
    }
    out
}

/// The producer's requests at every version, for `crate::request_versions`: Produce (batches of
/// two topics, every `acks`), InitProducerId (a fresh id; an epoch bump from v3, KIP-360).
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    let batch = bytes::Bytes::from_static(&[0u8; 61]);
    let plan = ProduceRequestPlan {
        id: 1,
        node: 0,
        batches: vec![
            (TopicPartition::new(Arc::from("a"), 0), batch.clone()),
            (TopicPartition::new(Arc::from("a"), 1), batch.clone()),
            (TopicPartition::new(Arc::from("b"), 0), batch),
        ],
    };
    for v in Encoder::versions(ApiKey::Produce) {
        for acks in [-1, 0, 1] {
            enc.check(
                "Produce",
                v,
                &produce_request(&plan, acks, Duration::from_secs(30), None),
            );
            if acks == -1 {
                enc.check(
                    "Produce (transactional)",
                    v,
                    &produce_request(&plan, acks, Duration::from_secs(30), Some("tx")),
                );
            }
        }
    }
    for v in Encoder::versions(ApiKey::InitProducerId) {
        enc.check(
            "InitProducerId (new id)",
            v,
            &init_producer_id_request((-1, -1)),
        );
        if v >= 3 {
            enc.check(
                "InitProducerId (epoch bump)",
                v,
                &init_producer_id_request((42, 3)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sender task's own responses come out as each arrives, not in the order queued, and
    /// each once.
    #[tokio::test]
    async fn responses_come_out_as_they_arrive() {
        let mut responses = Responses::default();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
        responses.push(Box::pin(async move {
            let _ = first_rx.await;
            (1, Ok(Vec::new()))
        }));
        responses.push(Box::pin(async move {
            let _ = second_rx.await;
            (2, Ok(Vec::new()))
        }));
        let idle = tokio::time::timeout(Duration::from_millis(20), responses.next()).await;
        assert!(idle.is_err(), "nothing has arrived yet");
        let _ = second_tx.send(());
        let (id, _) = tokio::time::timeout(Duration::from_secs(5), responses.next())
            .await
            .expect("the second response");
        assert_eq!(id, 2);
        let _ = first_tx.send(());
        let (id, _) = tokio::time::timeout(Duration::from_secs(5), responses.next())
            .await
            .expect("the first response");
        assert_eq!(id, 1);
        assert!(responses.is_empty());
    }
}
