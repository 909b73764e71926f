//! The producer world: the real [`SenderState`] driven as `io/producer.rs` drives it, against
//! the simulated [`Cluster`] over simulated connections, in virtual time.
//!
//! Network: one connection per broker; a request reaches its broker after a drawn delay, never
//! before an earlier request of its connection; the broker handles a connection's requests one
//! at a time, in order (Kafka mutes a connection until its response is sent), and responses of
//! one connection arrive in order. A lost request or response leaves the connection silent
//! (TCP delivers in order: nothing after the loss gets through) until the client's
//! `request.timeout.ms` closes it; a cut fails every request in flight on it at once.

mod txn;
mod zombie;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::cluster::{Appended, Broken, Cluster, BROKERS};
use crate::error::Error;
use crate::producer::ProduceError;
use crate::sim::harness::Run;
use crate::sim::schedule::Schedule;
use crate::state::backoff::ExponentialBackoff;
use crate::state::producer::{
    AccumulatorConfig, BufferedRecord, PartitionResponse, ProduceRequestPlan, SenderConfig,
    SenderState, TopicPartition,
};
use kafkit_wire::compression::Compression;

pub(super) use txn::TxnKnobs;
pub(super) use zombie::ZombieKnobs;

/// The topic.
pub(super) const TOPIC: &str = "sim";

/// A world's settings, drawn per seed (so seeds stress different mixes), then adjusted by the
/// scenario.
#[derive(Debug, Clone)]
pub(super) struct Knobs {
    pub partitions: i32,
    pub records: usize,
    /// Records are appended during `0..workload`.
    pub workload: Duration,
    /// Faults happen during `0..fault_phase` only.
    pub fault_phase: Duration,
    pub max_in_flight: usize,
    pub linger: Duration,
    pub batch_size: usize,
    pub request_timeout: Duration,
    pub delivery_timeout: Duration,
    pub retry_backoff: (Duration, Duration),
    pub net_delay: (Duration, Duration),
    pub replicate_every: Duration,
    pub lag_max: Duration,
    /// Per request: lost before the broker reads it.
    pub p_lose_request: f64,
    /// Per response: lost after the broker wrote it.
    pub p_lose_response: f64,
    /// Per partition in a request: answered NOT_LEADER_OR_FOLLOWER, not written.
    pub p_not_leader: f64,
    /// Per partition: NOT_ENOUGH_REPLICAS (not written) or REQUEST_TIMED_OUT (written, not
    /// acknowledged in time), half each.
    pub p_retriable: f64,
    /// Per partition: INVALID_RECORD for a batch the log does not have (at most 2 per run).
    pub p_fatal: f64,
    /// Per partition: MESSAGE_TOO_LARGE for a batch of two records or more that the log does
    /// not have (not written): the producer splits it and sends the pieces again.
    pub p_too_large: f64,
    pub cuts: usize,
    pub leader_moves: usize,
    pub pauses: usize,
    /// The deliberately broken broker of a negative control.
    pub broken: Broken,
    /// A broken driver: the first outcome the sender reports is never recorded.
    pub drop_one_outcome: bool,
}

impl Knobs {
    /// Draws the settings for one run.
    pub(super) fn draw(run: &mut Run) -> Self {
        let ms = Duration::from_millis;
        let request_timeout = ms(run.between(30, 300));
        let linger = ms(run.between(0, 20));
        // Kafka requires delivery.timeout.ms >= linger.ms + request.timeout.ms.
        let delivery_timeout = linger + request_timeout + ms(run.between(0, 3_000));
        let fault_phase = ms(run.between(300, 2_000));
        let backoff = ms(run.between(5, 100));
        let p = |run: &mut Run, max: f64| {
            if run.chance(0.7) {
                run.rng_f64() * max
            } else {
                0.0
            }
        };
        Self {
            partitions: run.between(3, 7) as i32,
            records: run.between(40, 160) as usize,
            workload: fault_phase.mul_f64(0.3 + run.rng_f64()),
            fault_phase,
            max_in_flight: run.between(1, 6) as usize,
            linger,
            batch_size: run.between(60, 1_500) as usize,
            request_timeout,
            delivery_timeout,
            retry_backoff: (backoff, backoff * run.between(1, 20) as u32),
            net_delay: (Duration::from_micros(50), ms(run.between(1, 15))),
            replicate_every: ms(run.between(1, 20)),
            lag_max: ms(run.between(10, 60)),
            p_lose_request: p(run, 0.05),
            p_lose_response: p(run, 0.08),
            p_not_leader: p(run, 0.05),
            p_retriable: p(run, 0.08),
            p_fatal: p(run, 0.01),
            // Only the split scenario turns it on: a draw here would change every other
            // scenario's runs (and what their seeds replay).
            p_too_large: 0.0,
            cuts: run.between(0, 6) as usize,
            leader_moves: run.between(0, 6) as usize,
            pauses: run.between(0, 3) as usize,
            broken: Broken::default(),
            drop_one_outcome: false,
        }
    }
}

/// A uniform `f64` in `0..1` from the run's generator.
trait RunF64 {
    fn rng_f64(&mut self) -> f64;
}

impl RunF64 for Run {
    fn rng_f64(&mut self) -> f64 {
        use crate::state::rng::RandomSource;
        self.rng.next_f64()
    }
}

#[derive(Debug)]
enum Ev {
    Append(usize),
    Close,
    Arrive {
        conn: u64,
    },
    Deliver {
        node: i32,
        conn: u64,
        request: u64,
        answers: Vec<(TopicPartition, PartitionResponse)>,
    },
    Timeout {
        node: i32,
        conn: u64,
        request: u64,
    },
    Replicate,
    LeaderMove(i32),
    Pause(i32),
    Resume(i32),
    Cut(i32),
    ProducerId(i16),
    Metadata,
    /// The transactional mode's events.
    Txn(txn::TxnEv),
    /// The second instance's events.
    Zombie(zombie::ZombieEv),
}

/// The client's end of a connection.
#[derive(Debug)]
struct ClientConn {
    id: u64,
    /// Requests written, oldest first.
    in_flight: VecDeque<u64>,
}

/// A write waiting for the ISR: (partition, leader epoch, end offset, base offset).
type Waiting = (i32, i32, i64, i64);

/// A request the broker has read and is answering (waiting for the ISR if need be).
#[derive(Debug)]
struct Busy {
    request: u64,
    /// Per partition: the answer, or (partition, leader epoch, end offset, base offset) to
    /// wait for.
    answers: Vec<(TopicPartition, Result<PartitionResponse, Waiting>)>,
}

/// Which way a message crosses a connection.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Request,
    Response,
}

/// The broker's end of a connection.
#[derive(Debug)]
struct BrokerConn {
    node: i32,
    /// Requests sent but not yet arrived (in order).
    on_the_wire: VecDeque<ProduceRequestPlan>,
    /// Arrived, not yet read.
    queue: VecDeque<ProduceRequestPlan>,
    busy: Option<Busy>,
    /// Something was lost: nothing more gets through in either direction.
    silent: bool,
    last_arrival: Duration,
    last_delivery: Duration,
}

/// What the checker judges.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Record ids accepted by `append`, with their partition, in send order.
    pub appended: Vec<(u64, i32)>,
    /// Every outcome reported per record id.
    pub outcomes: BTreeMap<u64, Vec<Result<i64, ProduceError>>>,
    /// Whether the sender was idle after close by the deadline.
    pub idle: bool,
    /// Why the run stopped early, if it did (step cap, deadline).
    pub stuck: Option<String>,
    /// Transactional mode: the transaction of each record id.
    pub txn_of: BTreeMap<u64, usize>,
    /// Transactional mode: what the application was told, per transaction.
    pub txns: Vec<super::txn_checker::TxnOutcome>,
    /// Transactional mode: the application got an outcome for every call and closed.
    pub app_done: bool,
    /// Transactional mode: the coordinator timed out a transaction the application did not
    /// hold open that long (`phantom-transaction`).
    pub phantom: Option<String>,
    /// Transactional mode: the coordinator's decision (see `Coordinator::decisions`) each
    /// marker write (`LogBatch::write`) belongs to.
    pub marker_decisions: BTreeMap<u64, u64>,
    /// Zombie mode: the second instance and its fencing of the first.
    pub zombie: Option<super::zombie_checker::ZombieHistory>,
}

/// The world.
pub(super) struct World<'r> {
    run: &'r mut Run,
    knobs: Knobs,
    pub(super) cluster: Cluster,
    state: SenderState<u64>,
    events: Schedule<Ev>,
    /// The record workload: (partition, value length).
    workload: Vec<(i32, usize)>,
    /// The client's view of the leaders (from the last metadata response).
    leaders: Vec<i32>,
    client_conns: BTreeMap<i32, ClientConn>,
    broker_conns: BTreeMap<u64, BrokerConn>,
    next_conn: u64,
    init_running: bool,
    refresh_running: bool,
    last_refresh: Option<Duration>,
    next_check: Option<Duration>,
    fatal_left: u32,
    dropped_outcome: bool,
    refused_appends: u64,
    /// MESSAGE_TOO_LARGE answers given (each makes the producer split a batch).
    pub(super) too_large: u64,
    pub(super) history: History,
    /// The transactional mode (`None`: the idempotent producer alone).
    txn: Option<txn::Txn>,
    /// When the last fault ends (the fault phase, or the last paused broker's resume).
    faults_end: Duration,
    /// The zombie mode: a second instance of the transactional id (`None`: one instance).
    zombie: Option<zombie::Zombie>,
}

impl<'r> World<'r> {
    /// A world for `run` with `knobs`.
    pub(super) fn new(run: &'r mut Run, knobs: Knobs) -> Self {
        let cluster = Cluster::new(knobs.partitions, knobs.lag_max, knobs.broken);
        let leaders = cluster.leaders();
        run.log(format_args!("knobs {knobs:?}"));
        Self {
            run,
            cluster,
            state: SenderState::new(Self::sender_config(&knobs)),
            events: Schedule::new(),
            workload: Vec::new(),
            leaders,
            client_conns: BTreeMap::new(),
            broker_conns: BTreeMap::new(),
            next_conn: 0,
            init_running: false,
            refresh_running: false,
            last_refresh: None,
            next_check: None,
            fatal_left: 2,
            too_large: 0,
            dropped_outcome: false,
            refused_appends: 0,
            history: History::default(),
            faults_end: knobs.fault_phase,
            knobs,
            txn: None,
            zombie: None,
        }
    }

    /// The producer's settings from `knobs`.
    fn sender_config(knobs: &Knobs) -> SenderConfig {
        SenderConfig {
            accumulator: AccumulatorConfig {
                batch_size: knobs.batch_size,
                linger: knobs.linger,
                delivery_timeout: knobs.delivery_timeout,
                max_request_size: 1 << 20,
            },
            idempotent: true,
            max_in_flight: knobs.max_in_flight,
            retries: u32::MAX,
            retry_backoff: ExponentialBackoff::new(knobs.retry_backoff.0, knobs.retry_backoff.1),
            compression: Compression::None,
            compression_level: None,
        }
    }

    /// A transactional world: the sender state gets a `transactional.id` and the application
    /// runs transactions (see [`txn`]).
    pub(super) fn new_txn(run: &'r mut Run, knobs: Knobs, txn_knobs: TxnKnobs) -> Self {
        let mut world = Self::new(run, knobs);
        world.run.log(format_args!("txn knobs {txn_knobs:?}"));
        world.state.enable_transactions(Self::transactional_id());
        world.txn = Some(txn::Txn::new(txn_knobs));
        world
    }

    /// A transactional world with a second instance of the application (see [`zombie`]).
    pub(super) fn new_zombie(
        run: &'r mut Run,
        knobs: Knobs,
        txn_knobs: TxnKnobs,
        zombie_knobs: ZombieKnobs,
    ) -> Self {
        let mut world = Self::new_txn(run, knobs, txn_knobs);
        world.run.log(format_args!("zombie knobs {zombie_knobs:?}"));
        world.zombie = Some(zombie::Zombie::new(zombie_knobs));
        world.history.zombie = Some(Default::default());
        world
    }

    fn now(&self) -> Duration {
        self.run.clock.elapsed()
    }

    fn in_fault_phase(&self) -> bool {
        self.now() < self.knobs.fault_phase
    }

    fn delay(&mut self) -> Duration {
        let (lo, hi) = self.knobs.net_delay;
        self.run.duration_between(lo, hi)
    }

    /// Draws the workload and the fault schedule.
    fn plan(&mut self) {
        let k = self.knobs.clone();
        if self.txn.is_none() {
            for i in 0..k.records {
                let partition = self.run.index(k.partitions as usize) as i32;
                let len = self.run.index(120);
                self.workload.push((partition, len));
                let at = self.run.duration_between(Duration::ZERO, k.workload);
                self.events.at(at, Ev::Append(i));
            }
            self.events.at(k.workload, Ev::Close);
        }
        self.events.at(Duration::ZERO, Ev::Replicate);
        for _ in 0..k.cuts {
            let at = self.run.duration_between(Duration::ZERO, k.fault_phase);
            let node = self.run.index(BROKERS as usize) as i32;
            self.events.at(at, Ev::Cut(node));
        }
        for _ in 0..k.leader_moves {
            let at = self.run.duration_between(Duration::ZERO, k.fault_phase);
            let p = self.run.index(k.partitions as usize) as i32;
            self.events.at(at, Ev::LeaderMove(p));
        }
        for _ in 0..k.pauses {
            let at = self.run.duration_between(Duration::ZERO, k.fault_phase);
            let node = self.run.index(BROKERS as usize) as i32;
            let length = self
                .run
                .duration_between(Duration::from_millis(1), k.request_timeout * 3);
            self.events.at(at, Ev::Pause(node));
            self.events.at(at + length, Ev::Resume(node));
            self.faults_end = self.faults_end.max(at + length);
        }
        if self.txn.is_some() {
            self.txn_plan();
        }
        if self.zombie.is_some() {
            self.zombie_plan();
        }
    }

    /// Runs the workload to its end (or the deadline) and returns the history.
    pub(super) fn simulate(&mut self) {
        self.plan();
        let k = &self.knobs;
        let mut deadline = k.fault_phase.max(k.workload)
            + k.request_timeout * 3
            + k.delivery_timeout
            + Duration::from_secs(5);
        if let Some(t) = &self.txn {
            // Each transaction may need a few rounds of its calls' timeouts.
            let mut n = t.knobs.transactions as u32;
            if let Some(z) = &self.zombie {
                // The second instance's transactions, and one more round for the first
                // instance to learn it is fenced.
                n += z.knobs.transactions as u32 + 1;
            }
            deadline += (t.knobs.call_timeout * 4 + t.knobs.span + t.knobs.idle.1) * n
                + Duration::from_secs(10);
        }
        let mut steps = 0u64;
        loop {
            steps += 1;
            if steps > 2_000_000 {
                self.history.stuck = Some(format!("step cap hit at {:?}", self.now()));
                break;
            }
            self.step_sender();
            if self.state.is_closing()
                && self.state.is_idle()
                && self.txn_app_done()
                && !self.zombie_next()
            {
                self.history.idle = true;
                break;
            }
            let next = match (self.events.next_time(), self.next_check) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => {
                        self.history.stuck = Some("nothing left to happen".into());
                        break;
                    }
                },
            };
            if next > deadline {
                self.history.stuck = Some(format!("not done by the deadline {deadline:?}"));
                break;
            }
            self.run.clock.advance_to(next);
            let now = self.now();
            while let Some((_, ev)) = self.events.pop_due(now) {
                self.handle(ev);
            }
        }
        // Settle replication (everything is up again): the final logs.
        for b in 0..BROKERS as usize {
            self.cluster.paused[b] = false;
        }
        let now = self.now();
        self.cluster.replicate(now);
        self.run.log(format_args!(
            "end: idle {} stats {:?}",
            self.history.idle,
            self.state.stats()
        ));
    }

    /// One turn of the sender loop, as in `io/producer.rs`.
    fn step_sender(&mut self) {
        let now_i = self.run.clock.now();
        self.state.expire(now_i);
        if self.txn.is_some() {
            self.txn_poll_add();
        }
        if !self.init_running {
            if let Some((_, epoch)) = self.state.poll_init_producer_id() {
                self.init_running = true;
                let at = self.now() + self.delay() + self.delay();
                self.events.at(at, Ev::ProducerId(epoch.saturating_add(1)));
                self.run.log(format_args!("InitProducerId (epoch {epoch})"));
            }
        }
        let leaders = self.leaders.clone();
        let leader = |tp: &TopicPartition| leaders.get(tp.partition as usize).copied();
        let transmit = self.state.poll_requests(now_i, &leader);
        let stale = self.state.take_metadata_stale();
        self.collect();
        self.next_check = transmit
            .next_check
            .map(|at| self.run.clock.since_start(at).max(self.now()))
            .filter(|at| *at > self.now());
        if let Some(at) = self.txn_next_check() {
            self.next_check = Some(self.next_check.map_or(at, |c| c.min(at)));
        }
        for plan in transmit.requests {
            self.send(plan);
        }
        let due = self
            .last_refresh
            .is_none_or(|at| self.now() >= at + self.knobs.retry_backoff.0);
        if (stale || !transmit.unknown_leaders.is_empty()) && !self.refresh_running {
            if due {
                self.refresh_running = true;
                self.last_refresh = Some(self.now());
                let at = self.now() + self.delay() + self.delay();
                self.events.at(at, Ev::Metadata);
            } else if let Some(at) = self.last_refresh {
                // Come back when the refresh may run (the real loop's timer does).
                let at = at + self.knobs.retry_backoff.0;
                self.next_check = Some(self.next_check.map_or(at, |c| c.min(at)));
            }
        }
        if self.txn.is_some() {
            self.txn_check_drained();
        }
    }

    fn collect(&mut self) {
        for o in self.state.take_outcomes() {
            if self.knobs.drop_one_outcome && !self.dropped_outcome {
                self.dropped_outcome = true;
                self.run
                    .log(format_args!("driver drops the outcome of {}", o.delivery));
                continue;
            }
            let r = o.result.map(|m| m.offset);
            match &r {
                Ok(offset) => self
                    .run
                    .log(format_args!("outcome {}: offset {offset}", o.delivery)),
                Err(e) => self.run.log(format_args!("outcome {}: {e}", o.delivery)),
            }
            self.history.outcomes.entry(o.delivery).or_default().push(r);
        }
    }

    /// Writes `plan` on the connection to its node.
    fn send(&mut self, plan: ProduceRequestPlan) {
        let node = plan.node;
        let conn = match self.client_conns.get(&node) {
            Some(c) => c.id,
            None => {
                let id = self.next_conn;
                self.next_conn += 1;
                self.client_conns.insert(
                    node,
                    ClientConn {
                        id,
                        in_flight: VecDeque::new(),
                    },
                );
                self.broker_conns.insert(
                    id,
                    BrokerConn {
                        node,
                        on_the_wire: VecDeque::new(),
                        queue: VecDeque::new(),
                        busy: None,
                        silent: false,
                        last_arrival: Duration::ZERO,
                        last_delivery: Duration::ZERO,
                    },
                );
                id
            }
        };
        let parts: Vec<i32> = plan.batches.iter().map(|(tp, _)| tp.partition).collect();
        self.run.log(format_args!(
            "send request {} to broker {node} (conn {conn}) partitions {parts:?}",
            plan.id
        ));
        if let Some(c) = self.client_conns.get_mut(&node) {
            c.in_flight.push_back(plan.id);
        }
        let timeout_at = self.now() + self.knobs.request_timeout;
        self.events.at(
            timeout_at,
            Ev::Timeout {
                node,
                conn,
                request: plan.id,
            },
        );
        let p_lose = self.knobs.p_lose_request;
        let Some(at) = self.transit(conn, Direction::Request, plan.id, p_lose) else {
            return;
        };
        if let Some(b) = self.broker_conns.get_mut(&conn) {
            b.on_the_wire.push_back(plan);
            self.events.at(at, Ev::Arrive { conn });
        }
    }

    /// One message's trip over `conn`: lost (the connection goes silent both ways, `None`)
    /// with probability `p_lose` in the fault phase, else the time it gets there — after a
    /// random delay, never before the previous message in the same direction (a connection
    /// delivers in order).
    fn transit(
        &mut self,
        conn: u64,
        direction: Direction,
        id: u64,
        p_lose: f64,
    ) -> Option<Duration> {
        let lose = self.in_fault_phase() && self.run.chance(p_lose);
        let delay = self.delay();
        let now = self.now();
        let b = self.broker_conns.get_mut(&conn)?;
        if lose {
            b.silent = true;
            let what = match direction {
                Direction::Request => "request",
                Direction::Response => "response",
            };
            self.run
                .log(format_args!("{what} {id} lost (conn {conn} silent)"));
            return None;
        }
        let last = match direction {
            Direction::Request => &mut b.last_arrival,
            Direction::Response => &mut b.last_delivery,
        };
        let at = (now + delay).max(*last);
        *last = at;
        Some(at)
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Append(i) => {
                let (partition, len) = self.workload[i];
                self.append_record(partition, len);
            }
            Ev::Txn(ev) => self.txn_handle(ev),
            Ev::Zombie(ev) => self.zombie_handle(ev),
            Ev::Close => {
                self.run.log("close");
                self.state.close();
            }
            Ev::Arrive { conn } => {
                let Some(b) = self.broker_conns.get_mut(&conn) else {
                    return;
                };
                let Some(plan) = b.on_the_wire.pop_front() else {
                    return;
                };
                if !b.silent {
                    b.queue.push_back(plan);
                    self.process(conn);
                }
            }
            Ev::Deliver {
                node,
                conn,
                request,
                answers,
            } => {
                let Some(c) = self.client_conns.get_mut(&node) else {
                    return;
                };
                if c.id != conn {
                    return; // that connection was closed
                }
                assert_eq!(
                    c.in_flight.front(),
                    Some(&request),
                    "responses of a connection arrive in order"
                );
                c.in_flight.pop_front();
                self.run.log(format_args!(
                    "response {request} from broker {node}: {answers:?}"
                ));
                let now = self.run.clock.now();
                self.state.handle_result(now, request, Ok(answers));
            }
            Ev::Timeout {
                node,
                conn,
                request,
            } => {
                let pending = self
                    .client_conns
                    .get(&node)
                    .is_some_and(|c| c.id == conn && c.in_flight.contains(&request));
                if pending {
                    self.run.log(format_args!(
                        "request {request} timed out: closing conn {conn}"
                    ));
                    let broker = format!("broker-{node}");
                    let after = self.knobs.request_timeout;
                    self.close_conn(node, |id| {
                        if id == request {
                            Error::RequestTimedOut {
                                broker: broker.clone(),
                                api: ApiKey::Produce,
                                after,
                            }
                        } else {
                            Error::ConnectionClosed {
                                broker: broker.clone(),
                                api: ApiKey::Produce,
                            }
                        }
                    });
                }
            }
            Ev::Cut(node) => {
                if self.client_conns.contains_key(&node) {
                    self.run
                        .log(format_args!("connection to broker {node} cut"));
                    let broker = format!("broker-{node}");
                    self.close_conn(node, |_| Error::Io {
                        broker: broker.clone(),
                        source: std::sync::Arc::new(std::io::Error::other("connection reset")),
                    });
                }
            }
            Ev::Replicate => {
                let now = self.now();
                for change in self.cluster.replicate(now) {
                    self.run.log(change);
                }
                self.check_all_busy();
                let at = now + self.knobs.replicate_every;
                self.events.at(at, Ev::Replicate);
            }
            Ev::LeaderMove(p) => {
                let pick = self.run.index(BROKERS as usize);
                if let Some(new) = self.cluster.move_leader(p, pick) {
                    self.run
                        .log(format_args!("p{p}: leader moves to broker {new}"));
                    self.check_all_busy();
                }
            }
            Ev::Pause(node) => {
                self.run.log(format_args!("broker {node} paused"));
                self.cluster.paused[node as usize] = true;
            }
            Ev::Resume(node) => {
                self.run.log(format_args!("broker {node} resumed"));
                self.cluster.paused[node as usize] = false;
                let conns: Vec<u64> = self
                    .broker_conns
                    .iter()
                    .filter(|(_, b)| b.node == node)
                    .map(|(id, _)| *id)
                    .collect();
                for conn in conns {
                    self.check_busy(conn);
                    self.process(conn);
                }
                if self.txn.is_some() {
                    self.txn_resume(node);
                }
            }
            Ev::ProducerId(epoch) => {
                self.init_running = false;
                self.run.log(format_args!("producer id 1 epoch {epoch}"));
                self.state.handle_producer_id(1, epoch);
            }
            Ev::Metadata => {
                self.refresh_running = false;
                self.leaders = self.cluster.leaders();
                self.run
                    .log(format_args!("metadata: leaders {:?}", self.leaders));
            }
        }
    }

    /// The application appends a record of `len` bytes to `partition`: its id if accepted.
    fn append_record(&mut self, partition: i32, len: usize) -> Option<u64> {
        // Ids in send order (the checker's `reordered` relies on it).
        let id = self.history.appended.len() as u64 + self.refused_appends;
        let mut value = id.to_be_bytes().to_vec();
        value.resize(8 + len, b'v');
        let record = BufferedRecord::new(0, None, Some(Bytes::from(value)), id);
        let tp = TopicPartition::new(TOPIC, partition);
        let now = self.run.clock.now();
        match self.state.append(now, &tp, record) {
            Ok(_) => {
                self.history.appended.push((id, partition));
                Some(id)
            }
            Err(e) => {
                self.refused_appends += 1;
                self.run.log(format_args!("append {id} refused: {e}"));
                None
            }
        }
    }

    /// A Produce of `bytes` to `p` at broker `node`: the leader's transaction check (KIP-890
    /// part 1) in transactional mode, then the log's.
    fn leader_append(&mut self, node: i32, p: i32, bytes: &Bytes) -> Appended {
        if let Some(code) = self.txn_verify(node, p, bytes) {
            return Appended::Refused(code);
        }
        self.cluster.append(node, p, bytes)
    }

    /// Closes the client's connection to `node`: every request in flight on it fails with
    /// `error(id)`, in send order; the broker's end is gone (what it had not read is lost).
    fn close_conn(&mut self, node: i32, error: impl Fn(u64) -> Error) {
        let Some(c) = self.client_conns.remove(&node) else {
            return;
        };
        self.broker_conns.remove(&c.id);
        let now = self.run.clock.now();
        for id in c.in_flight {
            self.state.handle_result(now, id, Err(error(id)));
        }
    }

    /// The broker reads the next request of `conn` if it is free to.
    fn process(&mut self, conn: u64) {
        loop {
            let Some(b) = self.broker_conns.get_mut(&conn) else {
                return;
            };
            if self.cluster.paused[b.node as usize] || b.busy.is_some() || b.silent {
                return;
            }
            let Some(plan) = b.queue.pop_front() else {
                return;
            };
            let node = b.node;
            let mut answers = Vec::new();
            for (tp, bytes) in &plan.batches {
                let answer = self.append(node, tp, bytes);
                answers.push((tp.clone(), answer));
            }
            if let Some(b) = self.broker_conns.get_mut(&conn) {
                b.busy = Some(Busy {
                    request: plan.id,
                    answers,
                });
            }
            self.check_busy(conn);
        }
    }

    /// One partition of a request at its leader, with the drawn injected errors.
    fn append(
        &mut self,
        node: i32,
        tp: &TopicPartition,
        bytes: &Bytes,
    ) -> Result<PartitionResponse, (i32, i32, i64, i64)> {
        let refused = |code| {
            Ok(PartitionResponse::Refused {
                code,
                message: None,
            })
        };
        let p = tp.partition;
        if self.in_fault_phase() {
            let k = self.knobs.clone();
            if self.run.chance(k.p_not_leader) {
                return refused(ResponseError::NotLeaderOrFollower);
            }
            if self.run.chance(k.p_retriable) {
                if self.run.chance(0.5) {
                    return refused(ResponseError::NotEnoughReplicas);
                }
                // Written (maybe), but not acknowledged in time.
                let appended = self.leader_append(node, p, bytes);
                self.run.log(format_args!(
                    "p{p} at broker {node}: {appended:?}, answered REQUEST_TIMED_OUT"
                ));
                return refused(ResponseError::RequestTimedOut);
            }
            if self.run.chance(k.p_too_large) && !self.in_log(node, p, bytes) {
                let records = super::cluster::decode(bytes).map_or(0, |(_, _, _, ids)| ids.len());
                if records >= 2 {
                    self.too_large += 1;
                    self.run.log(format_args!(
                        "p{p} at broker {node}: MESSAGE_TOO_LARGE ({records} records)"
                    ));
                    return refused(ResponseError::MessageTooLarge);
                }
            }
            if self.fatal_left > 0 && self.run.chance(k.p_fatal) && !self.in_log(node, p, bytes) {
                self.fatal_left -= 1;
                if self.cluster.broken.write_then_refuse {
                    let appended = self.cluster.append(node, p, bytes);
                    self.run
                        .log(format_args!("p{p} at broker {node}: {appended:?} (broken)"));
                }
                self.run.log(format_args!(
                    "p{p} at broker {node}: INVALID_RECORD (fatal)"
                ));
                return refused(ResponseError::InvalidRecord);
            }
        }
        let appended = self.leader_append(node, p, bytes);
        self.run
            .log(format_args!("p{p} at broker {node}: {appended:?}"));
        match appended {
            Appended::Written { base_offset, end } => {
                let epoch = self.cluster.partitions[p as usize].leader_epoch;
                Err((p, epoch, end, base_offset))
            }
            // A duplicate waits for the ISR like a write (Kafka's delayed produce waits for the
            // duplicate's last offset): acknowledged at once, it was lost when its leader moved
            // before the original write was replicated (found by the transactional runs).
            Appended::Duplicate { base_offset, end } => {
                let epoch = self.cluster.partitions[p as usize].leader_epoch;
                Err((p, epoch, end, base_offset))
            }
            Appended::Refused(code) => refused(code),
        }
    }

    /// Whether the leader's log at `node` already holds the first record of `bytes`.
    fn in_log(&self, node: i32, p: i32, bytes: &Bytes) -> bool {
        let Some((_, _, _, ids)) = super::cluster::decode(bytes) else {
            return false;
        };
        let Some(first) = ids.first() else {
            return false;
        };
        self.cluster
            .partitions
            .get(p as usize)
            .is_some_and(|part| part.logs[node as usize].records().any(|id| id == *first))
    }

    fn check_all_busy(&mut self) {
        let conns: Vec<u64> = self.broker_conns.keys().copied().collect();
        for conn in conns {
            self.check_busy(conn);
            self.process(conn);
        }
    }

    /// Answers the request `conn`'s broker is busy with, once every partition is decided.
    fn check_busy(&mut self, conn: u64) {
        let Some(b) = self.broker_conns.get_mut(&conn) else {
            return;
        };
        if self.cluster.paused[b.node as usize] {
            return;
        }
        let Some(busy) = &mut b.busy else {
            return;
        };
        for (_, answer) in &mut busy.answers {
            if let Err((p, epoch, end, base_offset)) = *answer {
                match self.cluster.ack_state(p, epoch, end) {
                    None => {}
                    Some(Ok(())) => {
                        *answer = Ok(PartitionResponse::Written {
                            base_offset,
                            log_append_time: -1,
                        })
                    }
                    Some(Err(code)) => {
                        *answer = Ok(PartitionResponse::Refused {
                            code,
                            message: None,
                        })
                    }
                }
            }
        }
        if busy.answers.iter().any(|(_, a)| a.is_err()) {
            return;
        }
        let Some(busy) = b.busy.take() else {
            return;
        };
        let node = b.node;
        let answers: Vec<(TopicPartition, PartitionResponse)> = busy
            .answers
            .into_iter()
            .filter_map(|(tp, a)| a.ok().map(|a| (tp, a)))
            .collect();
        let p_lose = self.knobs.p_lose_response;
        let Some(at) = self.transit(conn, Direction::Response, busy.request, p_lose) else {
            return;
        };
        self.events.at(
            at,
            Ev::Deliver {
                node,
                conn,
                request: busy.request,
                answers,
            },
        );
    }
}
