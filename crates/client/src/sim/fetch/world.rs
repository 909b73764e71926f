//! The fetcher world: the real [`FetchState`] driven as `io/fetcher.rs` drives it, against the
//! simulated [`Cluster`] over simulated connections, in virtual time; a scripted writer
//! filling the logs; an application draining records at a drawn pace.
//!
//! Network: one connection per broker; a request reaches its broker after a drawn delay, never
//! before an earlier one of its connection; the broker serves a connection's requests one at
//! a time, in order (a Fetch long-polls: it waits up to `fetch.max.wait.ms` for
//! `fetch.min.bytes`, holding the requests behind it); responses of one connection arrive in
//! order. A lost response leaves the connection silent until the client's request timeout
//! (`request.timeout.ms`, plus `fetch.max.wait.ms` for a Fetch) closes it; a cut fails every
//! request in flight on it at once. A paused broker serves nothing until it resumes.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ListOffsetsRequest, MetadataResponse,
    OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::{id_of, Broken, Cluster, FetchFaults, Kind, BROKERS, TOPIC, TOPIC_ID};
use crate::config::{AutoOffsetReset, IsolationLevel};
use crate::error::Error;
use crate::sim::harness::Run;
use crate::sim::schedule::Schedule;
use crate::state::consumer::{
    FetchPosition, FetchSettings, FetchState, FetchToken, ListOffsetsToken, ValidationToken,
};
use crate::state::group::{OffsetAndMetadata, TopicPartition};
use crate::state::metadata::ClusterMetadata;
use crate::state::rng::RandomSource;

/// The real fetcher task's longest sleep without a wake (`io/fetcher.rs`'s `IDLE_TICK`).
const IDLE_TICK: Duration = Duration::from_millis(500);
/// The step cap of one run (hitting it is a `liveness` violation).
const STEP_CAP: u64 = 400_000;

/// A world's settings, drawn per seed, then adjusted by the scenario.
#[derive(Debug, Clone)]
pub(super) struct Knobs {
    pub partitions: i32,
    pub isolation: IsolationLevel,
    /// Writer steps (batches and transaction ends).
    pub writes: usize,
    /// Transactional producers (ids 1..=n).
    pub txn_producers: i64,
    pub p_abort: f64,
    /// Writes happen during `0..workload`, faults during `0..fault_phase`.
    pub workload: Duration,
    pub fault_phase: Duration,
    /// After the fault phase, the consumer must reach every partition's end within this.
    pub quiet: Duration,
    pub replication_delay: (Duration, Duration),
    pub net_delay: (Duration, Duration),
    pub settings: FetchSettings,
    /// Records the application takes per drain, and how often it drains.
    pub max_poll_records: usize,
    pub poll_every: (Duration, Duration),
    /// Batches written before the consumer starts, and whether it starts from a drawn
    /// committed offset (else from the earliest).
    pub prefill: usize,
    pub start_committed: bool,
    pub p_lose_request: f64,
    pub p_lose_response: f64,
    /// Per metadata refresh: partitions that moved answered as they were before their last
    /// move (a broker that has not heard of it yet).
    pub p_stale_metadata: f64,
    pub retentions: usize,
    /// Per Fetch: a partition answered with a leader error; a session evicted.
    pub p_partition_error: f64,
    pub p_evict_session: f64,
    pub p_metadata_fails: f64,
    pub cuts: usize,
    pub pauses: usize,
    pub leader_moves: usize,
    /// Per drain in the fault phase: pause a partition for a while; seek a partition back.
    pub p_pause_partition: f64,
    pub p_seek_back: f64,
    pub broken: Broken,
    pub driver: BrokenDriver,
    /// The longest the application may find nothing to take while a partition it reads has
    /// records below its end (`stalled`); `None`: not judged (faults stall legitimately).
    pub stall_limit: Option<Duration>,
}

/// A deliberately broken driver of a negative control.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BrokenDriver {
    /// Removes one batch from the first response carrying two or more of a partition.
    pub drop_batch: bool,
    /// Once, seeks a partition back to a record it handed out, without telling the checker.
    pub silent_seek_back: bool,
    /// Hands the records of one drain to the application in reverse order.
    pub reverse_one_drain: bool,
}

fn rng_f64(run: &mut Run) -> f64 {
    run.rng.next_f64()
}

impl Knobs {
    /// Draws the settings for one run.
    pub(super) fn draw(run: &mut Run) -> Self {
        let ms = Duration::from_millis;
        let fault_phase = ms(run.between(400, 2_000));
        let p = |run: &mut Run, max: f64| {
            if run.chance(0.7) {
                rng_f64(run) * max
            } else {
                0.0
            }
        };
        let max_wait_ms = run.between(5, 300) as i32;
        let partition_max_bytes = run.between(200, 4_000) as i32;
        let settings = FetchSettings {
            isolation_level: IsolationLevel::ReadCommitted,
            auto_offset_reset: AutoOffsetReset::Earliest,
            min_bytes: if run.chance(0.7) {
                1
            } else {
                run.between(1, 2_000) as i32
            },
            max_wait_ms,
            max_bytes: run.between(300, 20_000) as i32,
            partition_max_bytes,
            prefetch_max_bytes: run.between(500, 50_000) as usize,
            retry_backoff: ms(run.between(5, 100)),
            request_timeout: ms(run.between(50, 400)),
            rack_id: String::new(),
            read_replica_max_age: Duration::from_secs(300),
            check_crcs: true,
        };
        Self {
            partitions: run.between(2, 5) as i32,
            isolation: IsolationLevel::ReadCommitted,
            writes: run.between(30, 120) as usize,
            txn_producers: run.between(2, 4) as i64,
            p_abort: 0.2 + rng_f64(run) * 0.6,
            workload: fault_phase.mul_f64(0.3 + rng_f64(run) * 0.9),
            fault_phase,
            quiet: Duration::from_secs(8),
            replication_delay: (ms(0), ms(run.between(1, 30))),
            net_delay: (Duration::from_micros(50), ms(run.between(1, 15))),
            settings,
            max_poll_records: run.between(1, 200) as usize,
            poll_every: (ms(0), ms(run.between(1, 40))),
            prefill: run.between(0, 10) as usize,
            start_committed: run.chance(0.4),
            p_lose_request: p(run, 0.03),
            p_lose_response: p(run, 0.05),
            p_stale_metadata: p(run, 0.3),
            retentions: run.between(0, 3) as usize,
            p_partition_error: p(run, 0.05),
            p_evict_session: p(run, 0.05),
            p_metadata_fails: p(run, 0.2),
            cuts: run.between(0, 5) as usize,
            pauses: run.between(0, 3) as usize,
            leader_moves: run.between(0, 5) as usize,
            p_pause_partition: p(run, 0.05),
            p_seek_back: p(run, 0.03),
            broken: Broken::default(),
            driver: BrokenDriver::default(),
            stall_limit: None,
        }
    }
}

/// What the checker judges.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Per partition, in order: what the application saw.
    pub events: BTreeMap<i32, Vec<Seen>>,
    /// Record id → (partition, transaction or `None`).
    pub written: BTreeMap<u64, (i32, Option<(i64, u64)>)>,
    /// Transaction → committed?
    pub decided: BTreeMap<(i64, u64), bool>,
    /// Per partition: the offset the application started from.
    pub start: BTreeMap<i32, i64>,
    /// Per partition at the end: the position, the end it must reach (LSO or high
    /// watermark), and the final log (offset, record id) of records a consumer must see.
    pub end: BTreeMap<i32, (Option<i64>, i64)>,
    pub final_records: BTreeMap<i32, Vec<(i64, u64)>>,
    pub read_committed: bool,
    /// Why the run did not end properly, if it did not.
    pub stuck: Option<String>,
    /// Stretches (start, length) during which every drain handed out nothing while some
    /// partition, not paused, had records between its position and its end.
    pub stalls: Vec<(Duration, Duration)>,
    pub stall_limit: Option<Duration>,
}

/// One thing the application saw on a partition.
#[derive(Debug, Clone)]
pub(super) enum Seen {
    /// A record at `offset` with value id `id` (`None`: not a value the writer wrote, e.g. a
    /// control record), when the partition's LSO was `lso`.
    Record {
        offset: i64,
        id: Option<u64>,
        lso: i64,
    },
    /// An explicit seek to `offset`.
    Seek(i64),
}

#[derive(Debug)]
enum Req {
    Fetch(FetchRequest),
    List(ListOffsetsRequest),
    Validate(OffsetForLeaderEpochRequest),
}

#[derive(Debug)]
enum Token {
    Fetch(FetchToken),
    List(ListOffsetsToken),
    Validate(ValidationToken),
}

#[derive(Debug)]
enum Resp {
    Fetch(kafka_protocol::messages::FetchResponse),
    List(kafka_protocol::messages::ListOffsetsResponse),
    Validate(kafka_protocol::messages::OffsetForLeaderEpochResponse),
}

#[derive(Debug)]
enum Ev {
    Write,
    Poll,
    ResumePartition(i32),
    Replicated(i32),
    Arrive { conn: u64, id: u64 },
    Serve { node: i32, conn: u64 },
    Respond { conn: u64, id: u64, resp: Resp },
    Deadline { conn: u64, id: u64 },
    Cut(i32),
    Pause(i32, Duration),
    Unpause(i32),
    LeaderMove(i32),
    Retention(i32),
    Wake,
}

/// The client's side of a connection.
#[derive(Debug)]
struct ClientConn {
    id: u64,
    in_flight: BTreeMap<u64, Token>,
    silent: bool,
    last_arrival: Duration,
    last_delivery: Duration,
}

/// A request queued on the broker's side of a connection.
#[derive(Debug)]
struct Queued {
    id: u64,
    req: Req,
    since: Duration,
}

/// The writer: transactional producers and a plain one.
#[derive(Debug, Default)]
struct Writer {
    steps_left: usize,
    next_id: u64,
    /// Per producer: its current transaction and the partitions it wrote in it.
    open: BTreeMap<i64, (u64, Vec<i32>)>,
    next_txn: BTreeMap<i64, u64>,
}

/// The world.
pub(super) struct World<'r> {
    pub run: &'r mut Run,
    pub knobs: Knobs,
    pub cluster: Cluster,
    pub state: FetchState,
    pub history: History,
    metadata: ClusterMetadata,
    metadata_not_before: Duration,
    events: Schedule<Ev>,
    conns: BTreeMap<i32, ClientConn>,
    broker_queues: BTreeMap<u64, VecDeque<Queued>>,
    next_conn: u64,
    next_req: u64,
    wake_at: Option<Duration>,
    writer: Writer,
    dropped_batch: bool,
    silent_seek_done: bool,
    reversed: bool,
    /// Per partition: (leader, epoch) before its last move, for stale metadata.
    before_move: BTreeMap<i32, (i32, i32)>,
    /// Since when every drain found nothing while records were waiting (see `History::stalls`).
    starved_since: Option<Duration>,
}

impl<'r> World<'r> {
    /// A world for `run` with `knobs`.
    pub(super) fn new(run: &'r mut Run, knobs: Knobs) -> Self {
        let settings = FetchSettings {
            isolation_level: knobs.isolation,
            ..knobs.settings.clone()
        };
        let history = History {
            read_committed: knobs.isolation == IsolationLevel::ReadCommitted,
            stall_limit: knobs.stall_limit,
            ..History::default()
        };
        World {
            cluster: Cluster::new(knobs.partitions, knobs.broken),
            state: FetchState::new(settings),
            history,
            metadata: ClusterMetadata::default(),
            metadata_not_before: Duration::ZERO,
            events: Schedule::new(),
            conns: BTreeMap::new(),
            broker_queues: BTreeMap::new(),
            next_conn: 1,
            next_req: 1,
            wake_at: None,
            writer: Writer {
                steps_left: knobs.writes,
                ..Writer::default()
            },
            dropped_batch: false,
            silent_seek_done: false,
            reversed: false,
            before_move: BTreeMap::new(),
            starved_since: None,
            knobs,
            run,
        }
    }

    fn now(&self) -> Duration {
        self.run.clock.elapsed()
    }

    fn instant(&self) -> Instant {
        self.run.clock.now()
    }

    fn in_fault_phase(&self) -> bool {
        self.now() < self.knobs.fault_phase
    }

    fn delay(&mut self) -> Duration {
        let (lo, hi) = self.knobs.net_delay;
        self.run.duration_between(lo, hi)
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new(TOPIC, p)
    }

    // ---- the writer ----

    /// One writer step: a plain batch, a transactional batch, or a transaction's end.
    fn write_step(&mut self) {
        let k = &self.knobs;
        let (partitions, producers, p_abort) = (k.partitions, k.txn_producers, k.p_abort);
        if self.writer.steps_left == 0 {
            // The end of the workload: every open transaction ends.
            let pids: Vec<i64> = self.writer.open.keys().copied().collect();
            for pid in pids {
                let commit = !self.run.chance(p_abort);
                self.end_txn(pid, commit);
            }
            return;
        }
        self.writer.steps_left -= 1;
        let who = self.run.between(0, producers as u64 + 1) as i64; // 0: the plain producer
        if who > 0 && self.writer.open.contains_key(&who) && self.run.chance(0.3) {
            let commit = !self.run.chance(p_abort);
            self.end_txn(who, commit);
            return;
        }
        let p = self.run.between(0, partitions as u64) as i32;
        let n = self.run.between(1, 5) as usize;
        let ids: Vec<u64> = (0..n)
            .map(|_| {
                self.writer.next_id += 1;
                self.writer.next_id
            })
            .collect();
        let kind = if who == 0 {
            Kind::Plain
        } else {
            let next = self.writer.next_txn.entry(who).or_insert(0);
            let (txn, touched) = self.writer.open.entry(who).or_insert_with(|| {
                *next += 1;
                (*next, Vec::new())
            });
            if !touched.contains(&p) {
                touched.push(p);
            }
            Kind::Txn {
                pid: who,
                txn: *txn,
            }
        };
        let txn = match kind {
            Kind::Txn { pid, txn } => Some((pid, txn)),
            _ => None,
        };
        for id in &ids {
            self.history.written.insert(*id, (p, txn));
        }
        self.append(p, kind, ids);
    }

    fn end_txn(&mut self, pid: i64, commit: bool) {
        let Some((txn, touched)) = self.writer.open.remove(&pid) else {
            return;
        };
        self.history.decided.insert((pid, txn), commit);
        self.run.log(format_args!(
            "txn {pid}/{txn} {} on {touched:?}",
            if commit { "COMMIT" } else { "ABORT" }
        ));
        for p in touched {
            self.append(p, Kind::Marker { pid, txn, commit }, Vec::new());
        }
    }

    fn append(&mut self, p: i32, kind: Kind, ids: Vec<u64>) {
        let (lo, hi) = self.knobs.replication_delay;
        let due = self.now() + self.run.duration_between(lo, hi);
        let part = &mut self.cluster.partitions[p as usize];
        let base = part.leo();
        let end = part.append(kind, ids);
        part.pending.push_back((end, due));
        self.run
            .log(format_args!("p{p} append {kind:?} {base}..{end}"));
        self.events.at(due, Ev::Replicated(p));
    }

    /// After a truncation: a transaction decided but whose marker vanished gets it again
    /// (the coordinator writes markers until they are written).
    fn rewrite_markers(&mut self, p: i32) {
        let open = self.cluster.partitions[p as usize].open_txns();
        for (pid, txn) in open {
            if let Some(&commit) = self.history.decided.get(&(pid, txn)) {
                self.append(p, Kind::Marker { pid, txn, commit }, Vec::new());
            }
        }
    }

    // ---- metadata ----

    fn metadata_response(&self, stale: bool) -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(
                (0..BROKERS)
                    .map(|n| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(n))
                            .with_host(StrBytes::from_string(format!("broker-{n}")))
                            .with_port(9092)
                    })
                    .collect(),
            )
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
                .with_topic_id(uuid::Uuid::from_bytes(TOPIC_ID))
                .with_partitions(
                    self.cluster
                        .partitions
                        .iter()
                        .enumerate()
                        .map(|(i, part)| {
                            let (leader, epoch) = self
                                .before_move
                                .get(&(i as i32))
                                .filter(|_| stale)
                                .copied()
                                .unwrap_or((part.leader, part.epoch));
                            MetadataResponsePartition::default()
                                .with_partition_index(i as i32)
                                .with_leader_id(BrokerId(leader))
                                .with_leader_epoch(epoch)
                                .with_replica_nodes((0..BROKERS).map(BrokerId).collect())
                                .with_isr_nodes((0..BROKERS).map(BrokerId).collect())
                        })
                        .collect(),
                )])
    }

    fn refresh_metadata(&mut self) {
        if self.in_fault_phase() && self.run.chance(self.knobs.p_metadata_fails) {
            self.run.log("metadata refresh failed");
            self.state.request_metadata();
            return;
        }
        let stale = self.in_fault_phase() && self.run.chance(self.knobs.p_stale_metadata);
        let response = self.metadata_response(stale);
        let now = self.instant();
        self.metadata.update(&response, now);
        self.run.log(if stale {
            "metadata refreshed (stale)"
        } else {
            "metadata refreshed"
        });
    }

    // ---- the fetcher loop, as io/fetcher.rs ----

    fn fetcher_round(&mut self) {
        let missing = self.state.missing_leaders(&self.metadata);
        let wants = self.state.take_wants_metadata() || missing;
        if wants {
            if self.now() >= self.metadata_not_before {
                self.metadata_not_before = self.now() + self.knobs.settings.retry_backoff;
                self.refresh_metadata();
            } else {
                self.state.request_metadata();
            }
        }
        let now = self.instant();
        let lookups = self.state.poll_list_offsets(now, &self.metadata);
        let fetches = self.state.poll_fetches(now, &self.metadata);
        let validations = self.state.poll_validations(now, &self.metadata);
        let timer = self.state.next_timer(now);
        for (token, request) in validations {
            self.send(token.node(), Token::Validate(token), Req::Validate(request));
        }
        for (token, request) in lookups {
            self.send(token.node(), Token::List(token), Req::List(request));
        }
        for (token, request) in fetches {
            self.send(token.node(), Token::Fetch(token), Req::Fetch(request));
        }
        let mut next = self.now() + IDLE_TICK;
        if let Some(at) = timer {
            next = next.min(self.run.clock.since_start(at));
        }
        if wants {
            next = next.min(self.metadata_not_before);
        }
        next = next.max(self.now());
        if self.wake_at.is_none_or(|w| next < w || w < self.now()) {
            self.wake_at = Some(next);
            self.events.at(next, Ev::Wake);
        }
    }

    fn send(&mut self, node: i32, token: Token, req: Req) {
        let conn = match self.conns.get(&node) {
            Some(c) => c.id,
            None => {
                let id = self.next_conn;
                self.next_conn += 1;
                self.conns.insert(
                    node,
                    ClientConn {
                        id,
                        in_flight: BTreeMap::new(),
                        silent: false,
                        last_arrival: Duration::ZERO,
                        last_delivery: Duration::ZERO,
                    },
                );
                self.broker_queues.insert(id, VecDeque::new());
                id
            }
        };
        let id = self.next_req;
        self.next_req += 1;
        let kind = match req {
            Req::Fetch(_) => "fetch",
            Req::List(_) => "list-offsets",
            Req::Validate(_) => "validate",
        };
        self.run
            .log(format_args!("send {kind} {id} to {node} (conn {conn})"));
        let mut timeout = self.knobs.settings.request_timeout;
        if matches!(req, Req::Fetch(_)) {
            timeout += Duration::from_millis(self.knobs.settings.max_wait_ms as u64);
        }
        let now = self.now();
        self.events.at(now + timeout, Ev::Deadline { conn, id });
        let delay = self.delay();
        let lose = self.in_fault_phase() && self.run.chance(self.knobs.p_lose_request);
        let c = self.conns.get_mut(&node).expect("just made");
        c.in_flight.insert(id, token);
        if lose || c.silent {
            // Lost on the way: nothing after it on this connection gets through either.
            c.silent = true;
            self.run
                .log(format_args!("request {id} lost (conn {conn} silent)"));
            return;
        }
        let at = (now + delay).max(c.last_arrival);
        c.last_arrival = at;
        if let Some(q) = self.broker_queues.get_mut(&conn) {
            q.push_back(Queued { id, req, since: at });
        }
        self.events.at(at, Ev::Arrive { conn, id });
    }

    fn node_of(&self, conn: u64) -> Option<i32> {
        self.conns
            .iter()
            .find(|(_, c)| c.id == conn)
            .map(|(n, _)| *n)
    }

    /// The broker serves the head of `conn`'s queue if it has arrived and is ready.
    fn serve(&mut self, node: i32, conn: u64) {
        loop {
            if self.cluster.paused[node as usize] {
                return;
            }
            let now = self.now();
            let Some(q) = self.broker_queues.get_mut(&conn) else {
                return;
            };
            let Some(head) = q.front() else { return };
            if head.since > now {
                return; // not arrived yet (its Arrive event serves it)
            }
            if let Req::Fetch(request) = &head.req {
                let deadline =
                    head.since + Duration::from_millis(request.max_wait_ms.max(0) as u64);
                let enough = self.cluster.fetch_bytes(node, request)
                    >= usize::try_from(request.min_bytes.max(0)).unwrap_or(0);
                if !enough && now < deadline {
                    self.events.at(deadline, Ev::Serve { node, conn });
                    return;
                }
            }
            let Some(head) = self
                .broker_queues
                .get_mut(&conn)
                .and_then(VecDeque::pop_front)
            else {
                return;
            };
            let resp = match head.req {
                Req::Fetch(request) => {
                    let faults = self.fetch_faults(&request);
                    Resp::Fetch(self.cluster.fetch(node, &request, faults))
                }
                Req::List(request) => Resp::List(self.cluster.list_offsets(node, &request)),
                Req::Validate(request) => Resp::Validate(self.cluster.epoch_ends(node, &request)),
            };
            let lose = self.in_fault_phase() && self.run.chance(self.knobs.p_lose_response);
            let delay = self.delay();
            let Some(c) = self.conns.get_mut(&node).filter(|c| c.id == conn) else {
                return;
            };
            if lose {
                self.run.log(format_args!(
                    "response {} lost (conn {conn} silent)",
                    head.id
                ));
                c.silent = true;
                continue;
            }
            let at = (now + delay).max(c.last_delivery);
            c.last_delivery = at;
            self.events.at(
                at,
                Ev::Respond {
                    conn,
                    id: head.id,
                    resp,
                },
            );
        }
    }

    fn fetch_faults(&mut self, request: &FetchRequest) -> FetchFaults {
        let mut faults = FetchFaults::default();
        if !self.in_fault_phase() {
            return faults;
        }
        faults.evict_session = self.run.chance(self.knobs.p_evict_session);
        let n: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
        if n > 0 && self.run.chance(self.knobs.p_partition_error) {
            let code = [
                ResponseError::NotLeaderOrFollower,
                ResponseError::FencedLeaderEpoch,
                ResponseError::UnknownLeaderEpoch,
            ][self.run.index(3)];
            faults.partition_error = Some((self.run.index(n), code));
        }
        if faults.evict_session || faults.partition_error.is_some() {
            self.run.log(format_args!("fetch faults {faults:?}"));
        }
        faults
    }

    /// Closes the connection to `node`: everything in flight on it fails.
    fn close_conn(&mut self, node: i32, why: &str) {
        let Some(c) = self.conns.remove(&node) else {
            return;
        };
        self.broker_queues.remove(&c.id);
        self.run
            .log(format_args!("conn {} to {node} closed: {why}", c.id));
        let now = self.instant();
        let broker = format!("broker-{node}");
        for (_, token) in c.in_flight {
            let err = |api| Error::ConnectionClosed {
                broker: broker.clone(),
                api,
            };
            match token {
                Token::Fetch(t) => self.state.handle_fetch_failure(now, t),
                Token::List(t) => {
                    self.state
                        .handle_list_offsets(now, t, Err(err(ApiKey::ListOffsets)))
                }
                Token::Validate(t) => {
                    self.state
                        .handle_validations(now, t, Err(err(ApiKey::OffsetForLeaderEpoch)))
                }
            }
        }
    }

    fn respond(&mut self, conn: u64, id: u64, resp: Resp) {
        let Some(node) = self.node_of(conn) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&node) else {
            return;
        };
        if c.silent {
            return;
        }
        let Some(token) = c.in_flight.remove(&id) else {
            return;
        };
        let now = self.instant();
        match (token, resp) {
            (Token::Fetch(t), Resp::Fetch(mut r)) => {
                self.run.log(format_args!(
                    "fetch {id} answered: error {} session {} {}",
                    r.error_code,
                    r.session_id,
                    describe(&r)
                ));
                if self.knobs.driver.drop_batch && !self.dropped_batch {
                    self.dropped_batch = drop_one_batch(&mut r);
                    if self.dropped_batch {
                        self.run.log("BROKEN DRIVER: dropped one batch");
                    }
                }
                for (topic, partition, leader, epoch, endpoint) in t.leader_hints(&r) {
                    self.metadata
                        .update_leader(&topic, partition, leader, epoch, endpoint);
                }
                self.state.handle_fetch(now, t, r);
            }
            (Token::List(t), Resp::List(r)) => {
                self.run.log(format_args!("list-offsets {id} answered"));
                self.state.handle_list_offsets(now, t, Ok(r));
            }
            (Token::Validate(t), Resp::Validate(r)) => {
                self.run.log(format_args!("validate {id} answered"));
                self.state.handle_validations(now, t, Ok(r));
            }
            _ => unreachable!("a response answers its own request kind"),
        }
    }

    // ---- the application ----

    fn start_consumer(&mut self) {
        let mut assigned = Vec::new();
        for p in 0..self.knobs.partitions {
            let start = if self.knobs.start_committed {
                let lso = self.cluster.partitions[p as usize].lso();
                self.run.between(0, lso as u64 + 1) as i64
            } else {
                0
            };
            self.history.start.insert(p, start);
            let committed = self
                .knobs
                .start_committed
                .then(|| OffsetAndMetadata::new(start));
            assigned.push((Self::tp(p), committed));
        }
        self.run
            .log(format_args!("assign from {:?}", self.history.start));
        self.state.add_assigned(assigned);
    }

    fn poll(&mut self) {
        let max = self.knobs.max_poll_records;
        let drained = self.state.drain(max);
        if let Some(e) = &drained.error {
            self.run.log(format_args!("drain error: {e}"));
        }
        let mut records = drained.records;
        if self.knobs.driver.reverse_one_drain && !self.reversed && records.len() >= 2 {
            let p = records[0].partition;
            if records[1].partition == p {
                self.reversed = true;
                records.swap(0, 1);
                self.run
                    .log("BROKEN DRIVER: two records handed out swapped");
            }
        }
        for r in &records {
            let lso = self.cluster.partitions[r.partition as usize].lso();
            let id = r.value.as_deref().and_then(id_of);
            self.history
                .events
                .entry(r.partition)
                .or_default()
                .push(Seen::Record {
                    offset: r.offset,
                    id,
                    lso,
                });
        }
        self.note_starvation(records.is_empty());
        if !records.is_empty() {
            let (first, last) = (records[0].offset, records[records.len() - 1].offset);
            self.run.log(format_args!(
                "drained {} records ({first}..={last} of p{} first)",
                records.len(),
                records[0].partition
            ));
        }
        if self.knobs.driver.silent_seek_back && !self.silent_seek_done {
            if let Some(r) = records.first() {
                self.silent_seek_done = true;
                let (p, offset) = (r.partition, r.offset);
                self.run.log(format_args!(
                    "BROKEN DRIVER: silent seek of p{p} to {offset}"
                ));
                let _ = self.state.seek(&Self::tp(p), FetchPosition::new(offset));
            }
        }
        if self.in_fault_phase() {
            if self.run.chance(self.knobs.p_pause_partition) {
                let p = self.run.index(self.knobs.partitions as usize) as i32;
                let _ = self.state.pause(&Self::tp(p));
                let until = self.now()
                    + self
                        .run
                        .duration_between(Duration::ZERO, Duration::from_millis(200));
                self.run.log(format_args!("pause p{p}"));
                self.events.at(until, Ev::ResumePartition(p));
            }
            if self.run.chance(self.knobs.p_seek_back) {
                let p = self.run.index(self.knobs.partitions as usize) as i32;
                let back = self.history.events.get(&p).and_then(|seen| {
                    let offsets: Vec<i64> = seen
                        .iter()
                        .filter_map(|s| match s {
                            Seen::Record { offset, .. } => Some(*offset),
                            Seen::Seek(_) => None,
                        })
                        .collect();
                    (!offsets.is_empty()).then(|| offsets[offsets.len().saturating_sub(5)])
                });
                if let Some(offset) = back {
                    self.run.log(format_args!("seek p{p} back to {offset}"));
                    self.history
                        .events
                        .entry(p)
                        .or_default()
                        .push(Seen::Seek(offset));
                    let _ = self.state.seek(&Self::tp(p), FetchPosition::new(offset));
                }
            }
        }
    }

    /// Opens a stall when a drain found nothing while a partition not paused had records
    /// between its position and its end; closes it at the next drain that found some, or once
    /// nothing is waiting.
    fn note_starvation(&mut self, found_nothing: bool) {
        let paused = self.state.paused();
        let waiting = found_nothing
            && self.cluster.partitions.iter().enumerate().any(|(p, part)| {
                let tp = Self::tp(p as i32);
                !paused.contains(&tp)
                    && self
                        .state
                        .position(&tp)
                        .is_some_and(|pos| pos.offset < self.end_of(part))
            });
        let now = self.now();
        match (waiting, self.starved_since) {
            (true, None) => self.starved_since = Some(now),
            (false, Some(since)) => {
                self.starved_since = None;
                self.history.stalls.push((since, now - since));
            }
            _ => {}
        }
    }

    /// Whether the consumer is at the end of every partition and nothing more can come.
    fn done(&self) -> bool {
        if self.writer.steps_left > 0
            || !self.writer.open.is_empty()
            || self.in_fault_phase()
            || self.now() < self.knobs.workload
        {
            return false;
        }
        self.cluster.partitions.iter().enumerate().all(|(p, part)| {
            let end = self.end_of(part);
            part.pending.is_empty()
                && self
                    .state
                    .position(&Self::tp(p as i32))
                    .is_some_and(|pos| pos.offset >= end)
        }) && !self.state.has_ready()
    }

    fn end_of(&self, part: &super::cluster::Partition) -> i64 {
        if self.history.read_committed {
            part.lso()
        } else {
            part.hw
        }
    }

    // ---- the run ----

    fn plan(&mut self) {
        let k = self.knobs.clone();
        for _ in 0..k.prefill {
            self.write_step();
        }
        // Prefilled batches are replicated before the consumer starts.
        let now = self.now();
        for part in &mut self.cluster.partitions {
            for entry in part.pending.iter_mut() {
                entry.1 = now;
            }
            part.replicate(now);
        }
        let ends: Vec<i64> = self.cluster.partitions.iter().map(|p| p.hw).collect();
        self.run.log(format_args!("prefilled to {ends:?}"));
        self.start_consumer();
        self.events.at(Duration::ZERO, Ev::Write);
        self.events.at(Duration::ZERO, Ev::Poll);
        let fault = |w: &mut Self| w.run.duration_between(Duration::ZERO, k.fault_phase);
        for _ in 0..k.cuts {
            let at = fault(self);
            let node = self.run.index(BROKERS as usize) as i32;
            self.events.at(at, Ev::Cut(node));
        }
        for _ in 0..k.pauses {
            let at = fault(self);
            let node = self.run.index(BROKERS as usize) as i32;
            let len = self
                .run
                .duration_between(Duration::from_millis(10), Duration::from_millis(400));
            self.events.at(at, Ev::Pause(node, len));
        }
        for _ in 0..k.retentions {
            let at = fault(self);
            let p = self.run.index(k.partitions as usize) as i32;
            self.events.at(at, Ev::Retention(p));
        }
        for _ in 0..k.leader_moves {
            let at = fault(self);
            let p = self.run.index(k.partitions as usize) as i32;
            self.events.at(at, Ev::LeaderMove(p));
        }
    }

    /// Runs the world until the consumer has read everything or the deadline passes.
    pub(super) fn simulate(&mut self) {
        self.plan();
        let deadline = self.knobs.fault_phase.max(self.knobs.workload) + self.knobs.quiet;
        let mut steps = 0u64;
        loop {
            steps += 1;
            if steps > STEP_CAP {
                self.history.stuck = Some(format!("step cap hit at {:?}", self.now()));
                break;
            }
            let Some(next) = self.events.next_time() else {
                self.history.stuck = Some("nothing left to happen".into());
                break;
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
            self.fetcher_round();
            if self.done() {
                self.run.log("consumer at the end of every partition");
                break;
            }
        }
        for (p, part) in self.cluster.partitions.iter().enumerate() {
            let p = p as i32;
            let position = self.state.position(&Self::tp(p)).map(|pos| pos.offset);
            self.history.end.insert(p, (position, self.end_of(part)));
            let limit = self.end_of(part);
            let must: Vec<(i64, u64)> = part
                .log
                .iter()
                .filter(|b| b.base < limit)
                .flat_map(|b| {
                    let keep = match b.kind {
                        Kind::Plain => true,
                        Kind::Txn { pid, txn } => {
                            !self.history.read_committed
                                || self.history.decided.get(&(pid, txn)) == Some(&true)
                        }
                        Kind::Marker { .. } => false,
                    };
                    b.ids
                        .iter()
                        .enumerate()
                        .filter(move |_| keep)
                        .map(move |(i, id)| (b.base + i as i64, *id))
                })
                .collect();
            self.history.final_records.insert(p, must);
        }
        self.run.log(format_args!("end: {:?}", self.history.end));
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Write => {
                let more = self.writer.steps_left > 0;
                self.write_step();
                if more {
                    let gap = self.knobs.workload / (self.knobs.writes.max(1) as u32);
                    let at = self.now() + self.run.duration_between(Duration::ZERO, gap * 2);
                    self.events.at(at, Ev::Write);
                }
            }
            Ev::Poll => {
                self.poll();
                let (lo, hi) = self.knobs.poll_every;
                let at = self.now() + self.run.duration_between(lo, hi) + Duration::from_micros(1);
                self.events.at(at, Ev::Poll);
            }
            Ev::ResumePartition(p) => {
                self.run.log(format_args!("resume p{p}"));
                let _ = self.state.resume(&Self::tp(p));
            }
            Ev::Replicated(p) => {
                let now = self.now();
                let part = &mut self.cluster.partitions[p as usize];
                part.replicate(now);
                let leader = part.leader;
                self.wake_broker(leader);
            }
            Ev::Arrive { conn, id } => {
                if let Some(node) = self.node_of(conn) {
                    let _ = id;
                    self.serve(node, conn);
                }
            }
            Ev::Serve { node, conn } => self.serve(node, conn),
            Ev::Respond { conn, id, resp } => self.respond(conn, id, resp),
            Ev::Deadline { conn, id } => {
                let timed_out = self
                    .conns
                    .iter()
                    .find(|(_, c)| c.id == conn && c.in_flight.contains_key(&id))
                    .map(|(n, _)| *n);
                if let Some(node) = timed_out {
                    self.close_conn(node, &format!("request {id} timed out"));
                }
            }
            Ev::Cut(node) => self.close_conn(node, "cut"),
            Ev::Pause(node, len) => {
                self.run
                    .log(format_args!("broker {node} paused for {len:?}"));
                self.cluster.paused[node as usize] = true;
                let at = self.now() + len;
                self.events.at(at, Ev::Unpause(node));
            }
            Ev::Unpause(node) => {
                self.run.log(format_args!("broker {node} resumed"));
                self.cluster.paused[node as usize] = false;
                self.wake_broker(node);
            }
            Ev::Retention(p) => {
                let part = &self.cluster.partitions[p as usize];
                let upto = self.run.between(part.log_start as u64, part.hw as u64 + 1) as i64;
                let start = self.cluster.partitions[p as usize].delete_before(upto);
                self.run
                    .log(format_args!("p{p} retention: log start {start}"));
            }
            Ev::LeaderMove(p) => {
                let part = &self.cluster.partitions[p as usize];
                let (hw, leo, old) = (part.hw, part.leo(), part.leader);
                self.before_move.insert(p, (old, part.epoch));
                let others: Vec<i32> = (0..BROKERS).filter(|b| *b != old).collect();
                let leader = others[self.run.index(others.len())];
                let keep = self.run.between(hw as u64, leo as u64 + 1) as i64;
                let gone = self.cluster.partitions[p as usize].move_leader(leader, keep);
                for id in &gone {
                    self.history.written.remove(id);
                }
                let epoch = self.cluster.partitions[p as usize].epoch;
                self.run.log(format_args!(
                    "p{p} leader {old} -> {leader} epoch {epoch}, log {leo} truncated to {} ({} records gone)",
                    self.cluster.partitions[p as usize].leo(),
                    gone.len()
                ));
                self.rewrite_markers(p);
            }
            Ev::Wake => {
                if self.wake_at == Some(self.now()) {
                    self.wake_at = None;
                }
            }
        }
    }

    /// Serves again every connection of `node` (new data, or it resumed).
    fn wake_broker(&mut self, node: i32) {
        if let Some(conn) = self.conns.get(&node).map(|c| c.id) {
            self.serve(node, conn);
        }
    }
}

/// Partitions and record bytes of a Fetch response (for the trace).
fn describe(r: &kafka_protocol::messages::FetchResponse) -> String {
    let mut out = String::new();
    for t in &r.responses {
        for p in &t.partitions {
            let n = p.records.as_ref().map_or(0, |b| b.len());
            out.push_str(&format!(
                "[p{} e{} hw{} lso{} {}B ab{}]",
                p.partition_index,
                p.error_code,
                p.high_watermark,
                p.last_stable_offset,
                n,
                p.aborted_transactions.as_ref().map_or(0, Vec::len)
            ));
        }
    }
    out
}

/// The broken driver: removes the second batch of the first partition answered with two or
/// more (batches are read by their v2 header length field).
fn drop_one_batch(r: &mut kafka_protocol::messages::FetchResponse) -> bool {
    for t in &mut r.responses {
        for p in &mut t.partitions {
            let Some(records) = p.records.as_ref() else {
                continue;
            };
            let batch_len = |at: usize| -> Option<usize> {
                let len = records.get(at + 8..at + 12)?;
                let len = i32::from_be_bytes(len.try_into().ok()?);
                Some(12 + usize::try_from(len).ok()?)
            };
            let Some(first) = batch_len(0) else { continue };
            let Some(second) = batch_len(first) else {
                continue;
            };
            if first + second > records.len() {
                continue;
            }
            let mut kept = records.slice(..first).to_vec();
            kept.extend_from_slice(&records[first + second..]);
            p.records = Some(bytes::Bytes::from(kept));
            return true;
        }
    }
    false
}
