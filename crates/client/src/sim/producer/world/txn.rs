//! The transactional mode of the producer world: the application, the transactional calls and
//! the coordinator's network, driven as `producer/transaction.rs` (`init_transactions`,
//! `end_transaction`, `bump_after_abort`), `producer/transaction_coordinator.rs`
//! (`TxnCoordinator::call`: lookup, cache, retries until the deadline; `add_partitions`) and
//! `io/producer.rs` (AddPartitionsToTxn polled by the sender loop) drive the REAL
//! [`TransactionState`](crate::state::producer::TransactionState) inside the REAL
//! `SenderState`. Those drivers are async code outside `state/`: this file mirrors their
//! decisions step by step, so a change there must be mirrored here.
//!
//! The application runs `transactions` transactions in sequence: begin, append records to
//! 2–4 partitions over a short span, then commit or abort (drawn). It honours the API
//! contract: a commit refused as abortable is followed by an abort, a `Timeout` by the same
//! call again, a fatal error (fenced, …) stops it (it closes the producer).
//!
//! Coordinator requests travel like messages of their own connection: a drawn delay each
//! way, lost requests or responses in the fault phase (the call's attempt times out after
//! `request.timeout.ms`), injected coordinator errors (NOT_COORDINATOR,
//! COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS, not
//! processed); a paused coordinator broker answers after it resumes (stale requests are then
//! processed late, their answers dropped by the client).

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::{Ev, World, TOPIC};
use crate::error::Error;
use crate::producer::TransactionError;
use crate::sim::harness::Run;
use crate::sim::producer::txn_checker::TxnOutcome;
use crate::sim::producer::txn_coordinator::{
    Answer, BrokenCoordinator, Coordinator, Marker, Request,
};
use crate::state::producer::transaction::{
    add_partitions_lookup_again, call_error, classify, TxnErrorClass,
};
use crate::state::producer::{TopicPartition, TransactionPhase};

/// The transactional id of the simulated producer.
const TRANSACTIONAL_ID: &str = "sim-txn";

/// The transactional mode's settings, drawn per seed after the world's [`super::Knobs`].
#[derive(Debug, Clone)]
pub(in crate::sim::producer) struct TxnKnobs {
    pub transactions: usize,
    /// Chance the application commits (else it aborts).
    pub p_commit: f64,
    /// Records per transaction: `lo..hi`.
    pub records: (u64, u64),
    /// Records of a transaction are appended during this span after its begin.
    pub span: Duration,
    /// The application's timeout for `init_transactions`, `commit_transaction`,
    /// `abort_transaction`.
    pub call_timeout: Duration,
    /// `transaction.timeout.ms`.
    pub txn_timeout: Duration,
    /// After a transaction ends, the application waits before the next begin: with this
    /// chance, up to `idle.1` (an idle producer: a transaction the coordinator still holds
    /// open without the client knowing would time out meanwhile).
    pub idle: (f64, Duration),
    pub coordinator_moves: usize,
    /// Per coordinator request in the fault phase: an injected coordinator error.
    pub p_coord_error: f64,
    /// Per coordinator response in the fault phase: lost.
    pub p_lose_txn_response: f64,
    /// How long a moved coordinator answers COORDINATOR_LOAD_IN_PROGRESS.
    pub load_time: Duration,
    pub broken: BrokenCoordinator,
    /// Every commit must commit, not only those begun after the faults (for a world whose
    /// only faults are ones a correct client rides out, e.g. coordinator moves).
    pub strict_commits: bool,
}

impl TxnKnobs {
    /// Draws the transactional settings for one run.
    pub(in crate::sim::producer) fn draw(run: &mut Run, knobs: &super::Knobs) -> Self {
        let mut drawn = Self::draw_base(run, knobs);
        // Idle pauses only with a short transaction timeout (a long one would need minutes
        // of virtual time per pause).
        if drawn.txn_timeout < Duration::from_secs(5) && run.chance(0.5) {
            drawn.idle = (0.3, drawn.txn_timeout * 2);
        }
        drawn
    }

    fn draw_base(run: &mut Run, knobs: &super::Knobs) -> Self {
        let ms = Duration::from_millis;
        let p = |run: &mut Run, max: f64| {
            if run.chance(0.7) {
                run.between(0, 1_000) as f64 / 1_000.0 * max
            } else {
                0.0
            }
        };
        Self {
            transactions: run.between(3, 9) as usize,
            p_commit: 0.7,
            records: (2, run.between(4, 16)),
            span: ms(run.between(1, 100)),
            call_timeout: knobs.request_timeout * run.between(2, 6) as u32 + ms(100),
            txn_timeout: if run.chance(0.3) {
                ms(run.between(300, 2_000))
            } else {
                Duration::from_secs(60)
            },
            idle: (0.0, Duration::ZERO),
            coordinator_moves: run.between(0, 4) as usize,
            p_coord_error: p(run, 0.1),
            p_lose_txn_response: p(run, 0.1),
            load_time: ms(run.between(0, 50)),
            broken: BrokenCoordinator::default(),
            strict_commits: false,
        }
    }
}

/// Events of the transactional mode.
#[derive(Debug)]
pub(super) enum TxnEv {
    Start,
    Begin(usize),
    Append {
        txn: usize,
        partition: i32,
        len: usize,
    },
    End {
        txn: usize,
        commit: bool,
    },
    /// `end_transaction` called again (after a timeout) or the abort after a refused commit.
    Again {
        txn: usize,
        commit: bool,
    },
    DrainDeadline(u64),
    FindDone {
        call: u64,
        attempt: u64,
        node: Result<i32, ResponseError>,
    },
    Arrive {
        call: u64,
        attempt: u64,
        node: i32,
        request: Request,
    },
    Answer {
        call: u64,
        attempt: u64,
        answer: Answer,
    },
    AttemptTimeout {
        call: u64,
        attempt: u64,
        node: i32,
        api: ApiKey,
    },
    CallDeadline(u64),
    Retry(u64),
    MarkerTick,
    CoordinatorMove,
}

#[derive(Debug, Clone)]
enum CallKind {
    Init {
        current: (i64, i16),
    },
    Add {
        pair: (i64, i16),
        partitions: Vec<TopicPartition>,
    },
    End {
        pair: (i64, i16),
        commit: bool,
    },
}

/// One `TxnCoordinator::call`.
#[derive(Debug)]
struct Call {
    id: u64,
    kind: CallKind,
    deadline: Duration,
    attempts: u32,
    /// The attempt under way (`None` during a backoff).
    attempt: Option<u64>,
}

/// What a call returned.
#[derive(Debug)]
enum Value {
    Pair(i64, i16),
    Added(Vec<(TopicPartition, Option<ResponseError>)>),
    Ended,
}

/// Where the application stands.
#[derive(Debug, Clone)]
enum App {
    Init,
    Open,
    Draining {
        txn: usize,
        commit: bool,
        marker: u64,
        deadline: Duration,
        gen: u64,
    },
    Ending {
        txn: usize,
        commit: bool,
        bump: bool,
        pair: (i64, i16),
        deadline: Duration,
    },
    Bumping {
        txn: usize,
        commit: bool,
    },
    Done,
}

/// The transactional mode's state.
#[derive(Debug)]
pub(super) struct Txn {
    pub(super) knobs: TxnKnobs,
    pub(super) coordinator: Coordinator,
    app: App,
    /// `TxnCoordinator`'s cached coordinator node.
    cached: Option<i32>,
    app_call: Option<Call>,
    add_call: Option<Call>,
    next_id: u64,
    /// Requests that reached a paused coordinator broker: read when it resumes.
    parked: Vec<(u64, u64, i32, Request)>,
    /// When the application began its open transaction (`None`: none open).
    begun_at: Option<Duration>,
}

impl Txn {
    pub(super) fn new(knobs: TxnKnobs) -> Self {
        let coordinator = Coordinator::new(0, knobs.txn_timeout, knobs.broken);
        Self {
            knobs,
            coordinator,
            app: App::Init,
            cached: None,
            app_call: None,
            add_call: None,
            next_id: 0,
            parked: Vec::new(),
            begun_at: None,
        }
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn call_mut(&mut self, id: u64) -> Option<&mut Call> {
        if self.app_call.as_ref().is_some_and(|c| c.id == id) {
            return self.app_call.as_mut();
        }
        self.add_call.as_mut().filter(|c| c.id == id)
    }

    /// The transaction coordinator is not in the middle of writing markers.
    pub(super) fn settled(&self) -> bool {
        self.coordinator.markers.is_empty()
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

impl World<'_> {
    fn txn(&mut self) -> &mut Txn {
        self.txn.as_mut().expect("transactional mode")
    }

    /// The transactional id to enable in the sender state.
    pub(super) fn transactional_id() -> &'static str {
        TRANSACTIONAL_ID
    }

    /// Draws the transactional fault schedule and starts the application.
    pub(super) fn txn_plan(&mut self) {
        let k = self.knobs.clone();
        let moves = self.txn().knobs.coordinator_moves;
        for _ in 0..moves {
            let at = self.run.duration_between(Duration::ZERO, k.fault_phase);
            self.events.at(at, Ev::Txn(TxnEv::CoordinatorMove));
        }
        self.events.at(Duration::ZERO, Ev::Txn(TxnEv::MarkerTick));
        self.events.at(Duration::ZERO, Ev::Txn(TxnEv::Start));
    }

    /// One turn of the sender loop's transactional part (`io/producer.rs`): AddPartitionsToTxn
    /// when the state asks for it.
    pub(super) fn txn_poll_add(&mut self) {
        let now = self.run.clock.now();
        if let Some((pair, partitions)) = self.state.poll_add_partitions(now) {
            let parts: Vec<i32> = partitions.iter().map(|t| t.partition).collect();
            self.run
                .log(format_args!("AddPartitionsToTxn {parts:?} (pair {pair:?})"));
            let deadline = self.now() + self.knobs.request_timeout;
            self.start_call(CallKind::Add { pair, partitions }, deadline);
        }
    }

    /// When a delayed AddPartitionsToTxn is due (the sender loop's timer).
    pub(super) fn txn_next_check(&self) -> Option<Duration> {
        let at = self.state.transaction()?.next_add_at()?;
        Some(self.run.clock.since_start(at).max(self.now()))
    }

    /// The application's `end_transaction` waits for everything sent and acknowledged (or
    /// failed), nothing in flight and every AddPartitionsToTxn answered (`adds_settled`).
    pub(super) fn txn_check_drained(&mut self) {
        let Some(Txn {
            app:
                App::Draining {
                    txn,
                    commit,
                    marker,
                    deadline,
                    ..
                },
            ..
        }) = self.txn.as_ref()
        else {
            return;
        };
        let (txn, commit, marker, deadline) = (*txn, *commit, *marker, *deadline);
        let settled = self.state.transaction().is_none_or(|t| t.adds_settled());
        if self.state.flushed(marker) && self.state.requests_in_flight() == 0 && settled {
            self.drained(txn, commit, deadline);
        }
    }

    pub(super) fn txn_handle(&mut self, ev: TxnEv) {
        match ev {
            TxnEv::Start => {
                self.run.log("init_transactions");
                self.txn_phase_call(|t| t.start_init().map_err(|e| e.to_string()));
                let deadline = self.now() + self.txn().knobs.call_timeout;
                self.txn().app = App::Init;
                self.start_call(CallKind::Init { current: (-1, -1) }, deadline);
            }
            TxnEv::Begin(i) => self.begin(i),
            TxnEv::Append {
                txn,
                partition,
                len,
            } => self.txn_append(txn, partition, len),
            TxnEv::End { txn, commit } | TxnEv::Again { txn, commit } => {
                self.end_transaction(txn, commit)
            }
            TxnEv::DrainDeadline(gen) => {
                let Some(Txn {
                    app:
                        App::Draining {
                            txn,
                            commit,
                            gen: g,
                            ..
                        },
                    ..
                }) = self.txn.as_ref()
                else {
                    return;
                };
                if *g != gen {
                    return;
                }
                let (txn, commit) = (*txn, *commit);
                self.txn_check_drained();
                if matches!(self.txn().app, App::Draining { gen: g, .. } if g == gen) {
                    self.state.end_flush();
                    let operation = op(commit);
                    let after = self.txn().knobs.call_timeout;
                    self.call_failed(txn, commit, TransactionError::Timeout { operation, after });
                }
            }
            TxnEv::FindDone {
                call,
                attempt,
                node,
            } => {
                if self.current_attempt(call) != Some(attempt) {
                    return;
                }
                match node {
                    Ok(node) => {
                        self.txn().cached = Some(node);
                        self.send_to(call, node);
                    }
                    Err(code) => {
                        let error = Error::Broker {
                            api: ApiKey::FindCoordinator,
                            code,
                            message: None,
                        };
                        self.attempt_failed(call, error);
                    }
                }
            }
            TxnEv::Arrive {
                call,
                attempt,
                node,
                request,
            } => {
                if self.cluster.paused[node as usize] {
                    self.txn().parked.push((call, attempt, node, request));
                } else {
                    self.coordinator_reads(call, attempt, node, request);
                }
            }
            TxnEv::Answer {
                call,
                attempt,
                answer,
            } => {
                if self.current_attempt(call) != Some(attempt) {
                    return;
                }
                let Some(kind) = self.txn().call_mut(call).map(|c| c.kind.clone()) else {
                    return;
                };
                let result = match (kind, answer) {
                    (CallKind::Init { .. }, Answer::Init(r)) => r
                        .map(|(id, epoch)| Value::Pair(id, epoch))
                        .map_err(|code| broker(ApiKey::InitProducerId, code)),
                    (CallKind::End { .. }, Answer::End(r)) => r
                        .map(|()| Value::Ended)
                        .map_err(|code| broker(ApiKey::EndTxn, code)),
                    (CallKind::Add { .. }, Answer::Add(v)) => Ok(Value::Added(
                        v.into_iter().map(|(p, code)| (tp(p), code)).collect(),
                    )),
                    _ => Err(broker(ApiKey::EndTxn, ResponseError::InvalidRequest)),
                };
                match result {
                    Ok(value) => self.finish(call, Ok(value)),
                    Err(error) => self.attempt_failed(call, error),
                }
            }
            TxnEv::AttemptTimeout {
                call,
                attempt,
                node,
                api,
            } => {
                if self.current_attempt(call) != Some(attempt) {
                    return;
                }
                let error = Error::RequestTimedOut {
                    broker: format!("broker-{node}"),
                    api,
                    after: self.knobs.request_timeout,
                };
                self.attempt_failed(call, error);
            }
            TxnEv::CallDeadline(call) => {
                if self
                    .txn()
                    .call_mut(call)
                    .is_some_and(|c| c.attempt.is_some())
                {
                    let error = Error::Broker {
                        api: ApiKey::FindCoordinator,
                        code: ResponseError::RequestTimedOut,
                        message: Some("transactional call deadline passed".to_owned()),
                    };
                    self.finish(call, Err((error, true)));
                }
            }
            TxnEv::Retry(call) => {
                if self
                    .txn()
                    .call_mut(call)
                    .is_some_and(|c| c.attempt.is_none())
                {
                    self.attempt(call);
                }
            }
            TxnEv::MarkerTick => {
                self.marker_tick();
                let at = self.now() + self.knobs.replicate_every;
                self.events.at(at, Ev::Txn(TxnEv::MarkerTick));
            }
            TxnEv::CoordinatorMove => {
                let from = self.txn().coordinator.node;
                let to = (from + 1 + self.run.index(2) as i32) % super::BROKERS;
                let load = self.txn().knobs.load_time;
                let now = self.now();
                let c = &mut self.txn().coordinator;
                c.node = to;
                c.loading_until = now + load;
                self.run.log(format_args!(
                    "transaction coordinator moves from broker {from} to {to}"
                ));
            }
        }
    }

    /// A broker resumed: the coordinator requests it holds are read now.
    pub(super) fn txn_resume(&mut self, node: i32) {
        let parked = std::mem::take(&mut self.txn().parked);
        for (call, attempt, n, request) in parked {
            if n == node {
                self.coordinator_reads(call, attempt, n, request);
            } else {
                self.txn().parked.push((call, attempt, n, request));
            }
        }
    }

    /// The leader's KIP-890 check of a transactional batch: `Some(code)` refuses it.
    pub(super) fn txn_verify(
        &self,
        node: i32,
        p: i32,
        bytes: &bytes::Bytes,
    ) -> Option<ResponseError> {
        let txn = self.txn.as_ref()?;
        let part = self.cluster.partitions.get(p as usize)?;
        if part.leader != node {
            return None;
        }
        let (pid, epoch, _, _) = super::super::cluster::decode(bytes)?;
        if self
            .cluster
            .leader_epoch_of(p, pid)
            .is_some_and(|e| e > epoch)
        {
            return None; // the log fences it (INVALID_PRODUCER_EPOCH)
        }
        txn.coordinator.verify(pid, epoch, p)
    }

    fn txn_phase_call(
        &mut self,
        f: impl FnOnce(&mut crate::state::producer::TransactionState) -> Result<(), String>,
    ) {
        if let Some(t) = self.state.transaction_mut() {
            if let Err(e) = f(t) {
                self.run.log(format_args!("unexpected: {e}"));
            }
        }
    }

    fn begin(&mut self, i: usize) {
        if i >= self.txn().knobs.transactions {
            self.run.log("application done: close");
            self.stop_app();
            return;
        }
        let begun = self
            .state
            .transaction_mut()
            .map(|t| t.begin())
            .unwrap_or(Err(TransactionError::NotTransactional));
        if let Err(e) = begun {
            self.run
                .log(format_args!("begin_transaction {i} failed: {e}; close"));
            self.stop_app();
            return;
        }
        let now = self.now();
        self.history.txns.push(TxnOutcome {
            begun: now,
            ..TxnOutcome::default()
        });
        self.txn().app = App::Open;
        self.txn().begun_at = Some(now);
        let k = self.txn().knobs.clone();
        let partitions = self.knobs.partitions as usize;
        let want = self.run.between(2, 5).min(partitions as u64) as usize;
        let mut chosen: Vec<i32> = (0..partitions as i32).collect();
        // A drawn subset (Fisher-Yates prefix).
        for j in 0..want {
            let pick = j + self.run.index(partitions - j);
            chosen.swap(j, pick);
        }
        chosen.truncate(want);
        let records = self.run.between(k.records.0, k.records.1);
        let now = self.now();
        for _ in 0..records {
            let at = now + self.run.duration_between(Duration::ZERO, k.span);
            let partition = chosen[self.run.index(chosen.len())];
            let len = self.run.index(120);
            self.events.at(
                at,
                Ev::Txn(TxnEv::Append {
                    txn: i,
                    partition,
                    len,
                }),
            );
        }
        let commit = self.run.chance(k.p_commit);
        // Quiet: no fault left, nothing from the faults still pending (a batch retried since
        // then has expired by now), and nothing stale the faults left behind that a short
        // `delivery.timeout.ms` may not cover (the client's leaders, its coordinator).
        let quiet_from = self.faults_end + self.knobs.delivery_timeout;
        let coordinator = self.txn().coordinator.node;
        let loaded = self.now() >= self.txn().coordinator.loading_until;
        // And a request timeout that covers a round trip and replication: a shorter one
        // times requests out without any fault.
        let roomy = self.knobs.request_timeout
            > self.knobs.net_delay.1 * 2 + self.knobs.replicate_every * 2;
        let current = roomy
            && self.leaders == self.cluster.leaders()
            && self.txn().cached.is_none_or(|n| n == coordinator)
            && loaded;
        if commit && (k.strict_commits || (self.now() >= quiet_from && current)) {
            if let Some(o) = self.history.txns.last_mut() {
                o.quiet_commit = true;
            }
        }
        self.run.log(format_args!(
            "begin_transaction {i}: {records} records to {chosen:?}, then {}",
            op(commit)
        ));
        self.events
            .at(now + k.span, Ev::Txn(TxnEv::End { txn: i, commit }));
    }

    fn txn_append(&mut self, txn: usize, partition: i32, len: usize) {
        if let Some(id) = self.append_record(partition, len) {
            self.history.txn_of.insert(id, txn);
        }
    }

    /// `commit_transaction` / `abort_transaction` (`end_transaction`), first part: the phase
    /// change and the flush.
    fn end_transaction(&mut self, txn: usize, commit: bool) {
        self.run
            .log(format_args!("{} (transaction {txn})", op(commit)));
        let Some(t) = self.state.transaction_mut() else {
            return;
        };
        let started = if commit {
            t.begin_commit()
        } else {
            t.begin_abort()
        };
        if let Err(e) = started {
            return self.call_failed(txn, commit, e);
        }
        let marker = self.state.begin_flush();
        let gen = self.txn().next();
        let deadline = self.now() + self.txn().knobs.call_timeout;
        self.txn().app = App::Draining {
            txn,
            commit,
            marker,
            deadline,
            gen,
        };
        self.events.at(deadline, Ev::Txn(TxnEv::DrainDeadline(gen)));
    }

    /// `end_transaction` after the flush: ends locally, sends EndTxn, or bumps the epoch.
    fn drained(&mut self, txn: usize, commit: bool, deadline: Duration) {
        self.state.end_flush();
        let bump = self.state.needs_epoch_bump();
        let pair = self.state.producer_id();
        let Some(t) = self.state.transaction_mut() else {
            return;
        };
        match t.phase() {
            TransactionPhase::Committing | TransactionPhase::Aborting => {}
            TransactionPhase::AbortableError => {
                let e = t.abortable_error();
                return self.call_failed(txn, commit, e);
            }
            phase => {
                let e = t
                    .fatal_error()
                    .cloned()
                    .unwrap_or(TransactionError::InvalidState {
                        operation: op(commit),
                        state: phase,
                    });
                return self.call_failed(txn, commit, e);
            }
        }
        let bump = !commit && bump;
        if !t.needs_end_txn() && !bump {
            t.handle_end_txn(Ok(())).ok();
            self.run.log("empty transaction ended locally");
            return self.txn_ended(txn, commit);
        }
        let end_txn = t.needs_end_txn();
        if end_txn {
            t.end_txn_sending();
        }
        if !end_txn {
            self.txn().app = App::Bumping { txn, commit };
            self.run.log(format_args!("InitProducerId bump {pair:?}"));
            self.start_call(CallKind::Init { current: pair }, deadline);
        } else {
            self.txn().app = App::Ending {
                txn,
                commit,
                bump,
                pair,
                deadline,
            };
            self.run.log(format_args!(
                "EndTxn {} {pair:?}",
                if commit { "commit" } else { "abort" }
            ));
            self.start_call(CallKind::End { pair, commit }, deadline);
        }
    }

    /// A transactional call failed with `e`: the application reacts as the API asks.
    fn call_failed(&mut self, txn: usize, commit: bool, e: TransactionError) {
        self.run.log(format_args!(
            "{} (transaction {txn}) failed: {e}",
            op(commit)
        ));
        self.txn().app = App::Open;
        match &e {
            TransactionError::Timeout { .. } => {
                let at = self.now();
                self.events.at(at, Ev::Txn(TxnEv::Again { txn, commit }));
            }
            TransactionError::Abortable { .. } if commit => {
                let at = self.now();
                self.events
                    .at(at, Ev::Txn(TxnEv::Again { txn, commit: false }));
            }
            _ => {
                self.history.txns[txn].failed = Some(e.to_string());
                self.history.txns[txn].fenced = matches!(e, TransactionError::Fenced { .. });
                self.stop_app();
            }
        }
    }

    fn txn_ended(&mut self, txn: usize, commit: bool) {
        self.run
            .log(format_args!("{} (transaction {txn}): Ok", op(commit)));
        if commit {
            self.history.txns[txn].committed = true;
        } else {
            self.history.txns[txn].aborted = true;
        }
        self.txn().app = App::Open;
        self.txn().begun_at = None;
        let (p_idle, idle) = self.txn().knobs.idle;
        let pause = if self.run.chance(p_idle) {
            self.run.duration_between(Duration::ZERO, idle)
        } else {
            self.run
                .duration_between(Duration::ZERO, Duration::from_millis(20))
        };
        let at = self.now() + pause;
        self.events.at(at, Ev::Txn(TxnEv::Begin(txn + 1)));
    }

    /// The application stops (done or fatal): it closes the producer.
    fn stop_app(&mut self) {
        self.txn().app = App::Done;
        self.txn().begun_at = None;
        self.history.app_done = true;
        self.state.close();
    }

    /// Where the application stands (for the trace).
    pub(super) fn txn_app_phase(&self) -> String {
        self.txn
            .as_ref()
            .map_or_else(String::new, |t| format!("{:?}", t.app))
    }

    /// Another instance of the application takes over the transactional id: its application
    /// starts afresh (the coordinator, the requests it holds and its markers stay), running
    /// transactions up to index `transactions` (after the first instance's).
    pub(super) fn txn_next_instance(&mut self, transactions: usize) {
        let t = self.txn();
        t.app = App::Open;
        t.cached = None;
        t.app_call = None;
        t.add_call = None;
        t.begun_at = None;
        t.knobs.transactions = transactions;
    }

    pub(super) fn txn_app_done(&self) -> bool {
        self.txn
            .as_ref()
            .is_none_or(|t| matches!(t.app, App::Done) && t.settled())
    }

    // ---- TxnCoordinator::call ----

    fn start_call(&mut self, kind: CallKind, deadline: Duration) {
        let id = self.txn().next();
        let call = Call {
            id,
            kind: kind.clone(),
            deadline,
            attempts: 0,
            attempt: None,
        };
        if matches!(kind, CallKind::Add { .. }) {
            self.txn().add_call = Some(call);
        } else {
            self.txn().app_call = Some(call);
        }
        self.events.at(deadline, Ev::Txn(TxnEv::CallDeadline(id)));
        self.attempt(id);
    }

    fn current_attempt(&mut self, call: u64) -> Option<u64> {
        self.txn().call_mut(call).and_then(|c| c.attempt)
    }

    fn attempt_timeout(&mut self, call: u64) -> Duration {
        let now = self.now();
        let deadline = self.txn().call_mut(call).map_or(now, |c| c.deadline);
        self.knobs.request_timeout.min(deadline.saturating_sub(now))
    }

    /// One attempt: FindCoordinator when the node is not cached, then the request.
    fn attempt(&mut self, call: u64) {
        let cached = self.txn().cached;
        match cached {
            Some(node) => self.send_to(call, node),
            None => {
                let attempt = self.txn().next();
                let timeout = self.attempt_timeout(call);
                if let Some(c) = self.txn().call_mut(call) {
                    c.attempt = Some(attempt);
                }
                let now = self.now();
                let api = ApiKey::FindCoordinator;
                self.events.at(
                    now + timeout,
                    Ev::Txn(TxnEv::AttemptTimeout {
                        call,
                        attempt,
                        node: -1,
                        api,
                    }),
                );
                let fault = self.in_fault_phase();
                if fault && self.run.chance(self.knobs.p_lose_request) {
                    self.run.log("FindCoordinator lost");
                    return;
                }
                let p_err = self.txn().knobs.p_coord_error;
                let node = if fault && self.run.chance(p_err) {
                    Err(ResponseError::CoordinatorNotAvailable)
                } else {
                    Ok(self.txn().coordinator.node)
                };
                let at = now + self.delay() + self.delay();
                self.events.at(
                    at,
                    Ev::Txn(TxnEv::FindDone {
                        call,
                        attempt,
                        node,
                    }),
                );
            }
        }
    }

    fn send_to(&mut self, call: u64, node: i32) {
        let attempt = self.txn().next();
        let timeout = self.attempt_timeout(call);
        let Some(c) = self.txn().call_mut(call) else {
            return;
        };
        c.attempt = Some(attempt);
        let (request, api) = match &c.kind {
            CallKind::Init { current } => {
                (Request::Init { current: *current }, ApiKey::InitProducerId)
            }
            CallKind::Add { pair, partitions } => (
                Request::Add {
                    pair: *pair,
                    partitions: partitions.iter().map(|t| t.partition).collect(),
                },
                ApiKey::AddPartitionsToTxn,
            ),
            CallKind::End { pair, commit } => (
                Request::End {
                    pair: *pair,
                    commit: *commit,
                },
                ApiKey::EndTxn,
            ),
        };
        let now = self.now();
        self.events.at(
            now + timeout,
            Ev::Txn(TxnEv::AttemptTimeout {
                call,
                attempt,
                node,
                api,
            }),
        );
        if self.in_fault_phase() && self.run.chance(self.knobs.p_lose_request) {
            self.run.log(format_args!("{api:?} to broker {node} lost"));
            return;
        }
        let at = now + self.delay();
        self.events.at(
            at,
            Ev::Txn(TxnEv::Arrive {
                call,
                attempt,
                node,
                request,
            }),
        );
    }

    /// Broker `node` reads a coordinator request and answers it.
    fn coordinator_reads(&mut self, call: u64, attempt: u64, node: i32, request: Request) {
        let now = self.now();
        let fault = self.in_fault_phase();
        let p_err = self.txn().knobs.p_coord_error;
        let answer = if fault && self.run.chance(p_err) {
            let code = [
                ResponseError::NotCoordinator,
                ResponseError::CoordinatorNotAvailable,
                ResponseError::CoordinatorLoadInProgress,
                ResponseError::ConcurrentTransactions,
            ][self.run.index(4)];
            request.refuse(code)
        } else {
            let decisions = self.txn().coordinator.decisions;
            let answer = self.txn().coordinator.handle(node, now, &request);
            if self.txn().coordinator.decisions != decisions {
                self.note_delayed_end_txn(call);
            }
            answer
        };
        self.run.log(format_args!(
            "coordinator at broker {node}: {request:?} -> {answer:?}"
        ));
        let p_lose = self.txn().knobs.p_lose_txn_response;
        if fault && self.run.chance(p_lose) {
            self.run.log("coordinator response lost");
            return;
        }
        let at = now + self.delay();
        self.events.at(
            at,
            Ev::Txn(TxnEv::Answer {
                call,
                attempt,
                answer,
            }),
        );
    }

    /// The coordinator just decided a transaction on an EndTxn: if that EndTxn is not the
    /// application's current call (a delayed one, read after the client retried it
    /// elsewhere and moved on: transactions v1's hazard), it decided the transaction the
    /// application holds open now, whatever the application is told about it.
    fn note_delayed_end_txn(&mut self, call: u64) {
        if self.txn().app_call.as_ref().is_some_and(|c| c.id == call) {
            return;
        }
        if let Some(o) = self.history.txns.last_mut() {
            if !o.committed && !o.aborted && o.failed.is_none() {
                o.delayed_end_txn = true;
                self.run
                    .log("a delayed EndTxn decides the open transaction");
            }
        }
    }

    /// `TxnCoordinator::call` after a failed attempt: rediscover, retry after a backoff, or
    /// give up.
    fn attempt_failed(&mut self, call: u64, error: Error) {
        let now = self.now();
        let (backoff, backoff_max) = self.knobs.retry_backoff;
        let class = classify(&error);
        let Some(c) = self.txn().call_mut(call) else {
            return;
        };
        c.attempt = None;
        let deadline = c.deadline;
        let attempts = c.attempts;
        match class {
            TxnErrorClass::Rediscover => self.txn().cached = None,
            TxnErrorClass::Retry => {}
            _ => return self.finish(call, Err((error, false))),
        }
        let pause = backoff
            .saturating_mul(1u32 << attempts.min(10))
            .min(backoff_max.max(backoff));
        if now + pause >= deadline {
            return self.finish(call, Err((error, true)));
        }
        if let Some(c) = self.txn().call_mut(call) {
            c.attempts = c.attempts.saturating_add(1);
        }
        self.events.at(now + pause, Ev::Txn(TxnEv::Retry(call)));
    }

    /// A call ended: its result goes where `producer/transaction.rs` or the sender loop puts
    /// it.
    fn finish(&mut self, call: u64, result: Result<Value, (Error, bool)>) {
        let txn = self.txn();
        let kind = if txn.add_call.as_ref().is_some_and(|c| c.id == call) {
            txn.add_call.take().map(|c| c.kind)
        } else if txn.app_call.as_ref().is_some_and(|c| c.id == call) {
            txn.app_call.take().map(|c| c.kind)
        } else {
            None
        };
        let Some(kind) = kind else {
            return;
        };
        self.run.log(format_args!("call {kind:?} -> {result:?}"));
        match kind {
            CallKind::Add { .. } => {
                let result = match result {
                    Ok(Value::Added(v)) => {
                        // `TxnCoordinator::add_partitions`: a per-partition move forgets it.
                        if add_partitions_lookup_again(&v) {
                            self.txn().cached = None;
                        }
                        Ok(v)
                    }
                    Ok(_) => Ok(Vec::new()),
                    Err((e, _)) => Err(e),
                };
                let now = self.run.clock.now();
                let backoff = self.knobs.retry_backoff.0;
                if let Some(t) = self.state.transaction_mut() {
                    t.handle_add_partitions(now, result, backoff);
                }
            }
            CallKind::Init { .. } => self.init_done(result),
            CallKind::End { .. } => self.end_txn_done(result),
        }
    }

    fn init_done(&mut self, result: Result<Value, (Error, bool)>) {
        let app = self.txn().app.clone();
        let (operation, txn, commit) = match app {
            App::Init => ("init_transactions", None, false),
            App::Bumping { txn, commit } => (op(commit), Some(txn), commit),
            _ => return,
        };
        match result {
            Ok(Value::Pair(id, epoch)) => {
                self.state.handle_producer_id(id, epoch);
                if let Some(t) = self.state.transaction_mut() {
                    t.init_done();
                }
                self.run.log(format_args!("producer id {id} epoch {epoch}"));
                match txn {
                    None => {
                        let at = self.now();
                        self.events.at(at, Ev::Txn(TxnEv::Begin(0)));
                    }
                    Some(txn) => self.txn_ended(txn, commit),
                }
            }
            Ok(_) => {}
            Err((error, timed_out)) => {
                let after = self.txn().knobs.call_timeout;
                let fallback = call_error(error.clone(), timed_out, operation, after);
                let mut e = fallback.clone();
                if !timed_out {
                    if let Some(t) = self.state.transaction_mut() {
                        match classify(&error) {
                            TxnErrorClass::Fenced => t.fenced(code_of(&error)),
                            _ => t.fatal(TransactionError::fatal(error.clone())),
                        }
                        e = t.fatal_error().cloned().unwrap_or(fallback);
                    }
                }
                match txn {
                    Some(txn) => self.call_failed(txn, commit, e),
                    None if timed_out => {
                        self.run.log("init_transactions timed out: again");
                        let at = self.now();
                        self.events.at(at, Ev::Txn(TxnEv::Start));
                    }
                    None => {
                        self.run
                            .log(format_args!("init_transactions failed: {e}; close"));
                        self.stop_app();
                    }
                }
            }
        }
    }

    fn end_txn_done(&mut self, result: Result<Value, (Error, bool)>) {
        let App::Ending {
            txn,
            commit,
            bump,
            pair,
            deadline,
        } = self.txn().app.clone()
        else {
            return;
        };
        let Some(t) = self.state.transaction_mut() else {
            return;
        };
        match result {
            Ok(_) if bump => {
                self.txn().app = App::Bumping { txn, commit };
                self.run.log(format_args!("InitProducerId bump {pair:?}"));
                self.start_call(CallKind::Init { current: pair }, deadline);
            }
            Ok(_) => {
                let _ = t.handle_end_txn(Ok(()));
                self.txn_ended(txn, commit);
            }
            Err((_, true)) => {
                let after = self.txn().knobs.call_timeout;
                self.call_failed(
                    txn,
                    commit,
                    TransactionError::Timeout {
                        operation: op(commit),
                        after,
                    },
                );
            }
            Err((error, false)) => {
                let _ = t.handle_end_txn(Err(error.clone()));
                let e = match t.phase() {
                    TransactionPhase::AbortableError => t.abortable_error(),
                    _ => t
                        .fatal_error()
                        .cloned()
                        .unwrap_or_else(|| TransactionError::fatal(error)),
                };
                self.call_failed(txn, commit, e);
            }
        }
    }

    // ---- the coordinator's marker writes ----

    /// The coordinator timed a transaction out at `now`: fair only if the application holds
    /// a transaction open for longer than `transaction.timeout.ms` (the coordinator's
    /// transaction starts at its first AddPartitionsToTxn, after the application's begin).
    /// Otherwise the coordinator held a transaction the client thought ended or never
    /// started (`phantom-transaction`): its timeout bumps the epoch and fences an idle
    /// producer.
    fn judge_timeout_abort(&mut self, now: Duration) {
        if self.history.phantom.is_some() {
            return;
        }
        let t = self.txn();
        if matches!(t.app, App::Done) {
            return;
        }
        let (timeout, begun_at) = (t.knobs.txn_timeout, t.begun_at);
        let fair = begun_at.is_some_and(|at| now.saturating_sub(at) > timeout);
        if !fair {
            let open = match begun_at {
                Some(at) => format!("the open transaction began {:?} before", now - at),
                None => "no transaction open".to_owned(),
            };
            self.history.phantom = Some(format!(
                "the coordinator timed out a transaction at {now:?} ({open}; timeout {timeout:?})"
            ));
        }
    }

    /// The marker just appended at `p`'s leader belongs to the coordinator's current decision.
    fn record_marker(&mut self, p: i32) {
        let decision = self.txn().coordinator.decisions;
        let part = self.cluster.partitions.get(p as usize);
        if let Some(last) = part.and_then(|part| part.leader_log().batches.last()) {
            self.history.marker_decisions.insert(last.write, decision);
        }
    }

    fn marker_tick(&mut self) {
        let now = self.now();
        let node = self.txn().coordinator.node;
        if self.cluster.paused[node as usize] {
            return;
        }
        if self.txn().coordinator.expire(now) {
            let epoch = self.txn().coordinator.epoch;
            self.run.log(format_args!(
                "transaction timed out: the coordinator aborts it (epoch {epoch})"
            ));
            self.judge_timeout_abort(now);
        }
        let c = &self.txn().coordinator;
        let (pid, epoch) = (c.producer_id, c.epoch);
        let todo: Vec<(i32, Marker)> = c.markers.iter().map(|(p, m)| (*p, *m)).collect();
        for (p, marker) in todo {
            let next = match marker {
                Marker::Todo => match self.txn().coordinator.marker_for(p) {
                    None => Marker::Done,
                    Some(commit) => match self.cluster.append_marker(p, pid, epoch, commit) {
                        Some((leader_epoch, end)) => {
                            self.record_marker(p);
                            self.run.log(format_args!(
                                "p{p}: {} marker (epoch {epoch}) at offset {}",
                                if commit { "COMMIT" } else { "ABORT" },
                                end - 1
                            ));
                            Marker::Written { leader_epoch, end }
                        }
                        None => Marker::Todo,
                    },
                },
                Marker::Written { leader_epoch, end } => {
                    match self.cluster.ack_state(p, leader_epoch, end) {
                        None => marker,
                        Some(Ok(())) | Some(Err(ResponseError::NotEnoughReplicasAfterAppend)) => {
                            Marker::Done
                        }
                        Some(Err(_)) => Marker::Todo,
                    }
                }
                Marker::Done => Marker::Done,
            };
            self.txn().coordinator.markers.insert(p, next);
        }
        if self.txn().coordinator.complete_if_done() {
            let status = self.txn().coordinator.status;
            self.run
                .log(format_args!("transaction complete: {status:?}"));
        }
    }
}

fn op(commit: bool) -> &'static str {
    if commit {
        "commit_transaction"
    } else {
        "abort_transaction"
    }
}

fn broker(api: ApiKey, code: ResponseError) -> Error {
    Error::Broker {
        api,
        code,
        message: None,
    }
}

fn code_of(error: &Error) -> Option<ResponseError> {
    match error {
        Error::Broker { code, .. } => Some(*code),
        _ => None,
    }
}
