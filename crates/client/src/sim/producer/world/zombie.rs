//! The zombie mode of the transactional world: a second instance (B) of the application with
//! the same `transactional.id` starts while the first (A) runs, which is what transactions
//! fence against.
//!
//! At a drawn time (once A has its producer id) B calls `init_transactions`: its
//! InitProducerId carries no producer id and epoch, so the coordinator bumps the epoch (first
//! aborting A's open transaction, answering CONCURRENT_TRANSACTIONS until the markers are
//! written, then bumping again on B's retry) and keeps no previous epoch: every later request
//! of A (Produce, AddPartitionsToTxn, EndTxn, a KIP-360 bump) is refused as fenced. A may be
//! anywhere then: mid-transaction, draining, with an EndTxn in flight or parked at a paused
//! broker, with Produce requests in flight, lost or delayed. A keeps running as the REAL
//! client does until it learns it is fenced (a fatal error), then stops and closes.
//!
//! B's InitProducerId is sent straight to the coordinator's current broker (its
//! FindCoordinator is not simulated), retried after the retry backoff on any error (a paused
//! broker: after a request timeout); no faults are drawn for it. Once A has stopped (its
//! application done, its sender idle) and B has its producer id, B takes the world over: a
//! fresh REAL `SenderState` and `TransactionState` with B's pair and new connections, and its
//! application runs its own transactions through [`super::txn`], judged like A's. (B does not
//! begin while A still runs: the two clients never produce at once.)
//!
//! What the checker needs ([`super::History::zombie`]): the coordinator's decision count when
//! B's InitProducerId took effect (a markers' decision above it was taken after A was
//! fenced), where B's records and transactions start, whether A had stopped before. A's
//! transactions from the first one not ended at the fence on are not required to commit by
//! the `liveness` rule for quiet commits: the fence decides them.

use std::time::Duration;

use kafka_protocol::error::ResponseError;

use super::txn::TxnEv;
use super::{Ev, Knobs, TxnKnobs, World};
use crate::sim::harness::Run;
use crate::sim::producer::txn_coordinator::{Answer, Request};
use crate::state::producer::SenderState;

/// The zombie mode's settings, drawn per seed after the transactional ones.
#[derive(Debug, Clone)]
pub(in crate::sim::producer) struct ZombieKnobs {
    /// When B calls `init_transactions` (later if A has no producer id yet).
    pub at: Duration,
    /// How many transactions B runs once it has taken over.
    pub transactions: usize,
}

impl ZombieKnobs {
    /// Draws B's start within A's likely run, and B's workload.
    pub(in crate::sim::producer) fn draw(run: &mut Run, knobs: &Knobs, txn: &TxnKnobs) -> Self {
        let ms = Duration::from_millis;
        // A transaction takes its span plus a few round trips (more under faults).
        let busy = (txn.span + knobs.request_timeout) * txn.transactions as u32;
        Self {
            at: run.duration_between(ms(1), busy.max(ms(2))),
            transactions: run.between(2, 5) as usize,
        }
    }
}

/// The zombie mode's events.
#[derive(Debug)]
pub(super) enum ZombieEv {
    /// B sends (again) its InitProducerId.
    Init,
    /// It reaches broker `node`.
    Arrive { node: i32 },
    /// Its answer reaches B.
    Answer(Result<(i64, i16), ResponseError>),
}

/// The zombie mode's state.
#[derive(Debug)]
pub(super) struct Zombie {
    pub(super) knobs: ZombieKnobs,
    /// B's producer id and epoch, once its InitProducerId succeeded.
    pair: Option<(i64, i16)>,
    /// B has taken the world over.
    running: bool,
}

impl Zombie {
    pub(super) fn new(knobs: ZombieKnobs) -> Self {
        Self {
            knobs,
            pair: None,
            running: false,
        }
    }
}

impl World<'_> {
    /// Schedules B's start.
    pub(super) fn zombie_plan(&mut self) {
        if let Some(z) = &self.zombie {
            self.events.at(z.knobs.at, Ev::Zombie(ZombieEv::Init));
        }
    }

    pub(super) fn zombie_handle(&mut self, ev: ZombieEv) {
        let now = self.now();
        match ev {
            ZombieEv::Init => {
                if self.state.producer_id().0 < 0 && !self.zombie_running() {
                    // A has not initialized yet: B comes later (else A would fence B).
                    let at = now + self.knobs.request_timeout;
                    self.events.at(at, Ev::Zombie(ZombieEv::Init));
                    return;
                }
                let Some(node) = self.txn.as_ref().map(|t| t.coordinator.node) else {
                    return;
                };
                self.run.log(format_args!(
                    "instance B: InitProducerId (no pair) to broker {node}"
                ));
                let at = now + self.delay();
                self.events.at(at, Ev::Zombie(ZombieEv::Arrive { node }));
            }
            ZombieEv::Arrive { node } => {
                if self.cluster.paused[node as usize] {
                    // B's attempt times out; it sends again.
                    let at = now + self.knobs.request_timeout;
                    self.events.at(at, Ev::Zombie(ZombieEv::Init));
                    return;
                }
                self.zombie_reaches_coordinator(node, now);
            }
            ZombieEv::Answer(Ok(pair)) => {
                self.run
                    .log(format_args!("instance B: producer id and epoch {pair:?}"));
                if let Some(z) = &mut self.zombie {
                    z.pair = Some(pair);
                }
            }
            ZombieEv::Answer(Err(code)) => {
                self.run
                    .log(format_args!("instance B: InitProducerId {code:?}, again"));
                let at = now + self.knobs.retry_backoff.0;
                self.events.at(at, Ev::Zombie(ZombieEv::Init));
            }
        }
    }

    /// The coordinator's broker `node` handles B's InitProducerId; the first time it takes
    /// effect (bumps the epoch, or is granted) is when A is fenced.
    fn zombie_reaches_coordinator(&mut self, node: i32, now: Duration) {
        let phase = self.txn_app_phase();
        let a_done = self.history.app_done;
        let txns = &self.history.txns;
        let unsettled = txns
            .iter()
            .position(|o| !o.committed && !o.aborted && o.failed.is_none())
            .unwrap_or(txns.len());
        let Some(c) = self.txn.as_mut().map(|t| &mut t.coordinator) else {
            return;
        };
        let (epoch, decisions) = (c.epoch, c.decisions);
        let answer = c.handle(node, now, &Request::Init { current: (-1, -1) });
        let took_effect = c.epoch != epoch || matches!(answer, Answer::Init(Ok(_)));
        let new_epoch = c.epoch;
        self.run.log(format_args!(
            "coordinator at broker {node}: instance B's InitProducerId -> {answer:?}"
        ));
        let Some(h) = self.history.zombie.as_mut() else {
            return;
        };
        if took_effect && h.fenced_after.is_none() {
            h.fenced_after = Some(decisions);
            h.fenced_at = Some(now);
            h.a_stopped_first = a_done;
            h.a_unsettled_from = unsettled;
            self.run.log(format_args!(
                "instance B fences A (epoch {epoch} -> {new_epoch}) while A is {phase}"
            ));
        }
        let result = match answer {
            Answer::Init(r) => r,
            _ => Err(ResponseError::InvalidRequest),
        };
        let at = now + self.delay();
        self.events.at(at, Ev::Zombie(ZombieEv::Answer(result)));
    }

    fn zombie_running(&self) -> bool {
        self.zombie.as_ref().is_some_and(|z| z.running)
    }

    /// The client stopped: whether the run goes on because B is still to take over (it does
    /// now if it has its producer id).
    pub(super) fn zombie_next(&mut self) -> bool {
        let Some(z) = &mut self.zombie else {
            return false;
        };
        if z.running {
            return false;
        }
        let Some((pid, epoch)) = z.pair else {
            return true; // waiting for B's InitProducerId
        };
        z.running = true;
        let b_transactions = z.knobs.transactions;
        let first_record = self.history.appended.len() as u64 + self.refused_appends;
        let first_txn = self.history.txns.len();
        let mut unsettled = first_txn;
        if let Some(h) = &mut self.history.zombie {
            h.b_first_record = Some(first_record);
            h.b_first_txn = Some(first_txn);
            unsettled = h.a_unsettled_from;
        }
        // A transaction of A's open at the fence or begun after it cannot commit (unless its
        // commit was accepted just before): the liveness rule that a quiet commit commits
        // holds for B's transactions only.
        for o in self.history.txns.iter_mut().skip(unsettled) {
            o.quiet_commit = false;
        }
        self.history.app_done = false;
        self.run.log(format_args!(
            "A stopped: instance B takes over with {:?}, transactions {first_txn}..{}",
            (pid, epoch),
            first_txn + b_transactions
        ));
        // B's client: a fresh sender and transaction state, initialized with B's pair (as
        // `init_transactions` leaves it), new connections, fresh metadata.
        self.state = SenderState::new(Self::sender_config(&self.knobs));
        self.state.enable_transactions(Self::transactional_id());
        if let Some(t) = self.state.transaction_mut() {
            if let Err(e) = t.start_init() {
                self.run.log(format_args!("unexpected: {e}"));
            }
        }
        self.state.handle_producer_id(pid, epoch);
        if let Some(t) = self.state.transaction_mut() {
            t.init_done();
        }
        self.client_conns.clear();
        self.broker_conns.clear();
        self.init_running = false;
        self.refresh_running = false;
        self.next_check = None;
        self.leaders = self.cluster.leaders();
        self.txn_next_instance(first_txn + b_transactions);
        let now = self.now();
        self.events.at(now, Ev::Txn(TxnEv::Begin(first_txn)));
        true
    }
}
