//! The simulated transaction coordinator of the producer world's one `transactional.id`:
//! producer id and epoch, the open transaction's partitions, its status, the markers still to
//! write, the transaction timeout, as Kafka's `TransactionCoordinator` behaves for
//! transactions v1 (KIP-98, KIP-360 epoch bumps).
//!
//! Statuses: Empty → Ongoing (first AddPartitionsToTxn) → PrepareCommit / PrepareAbort
//! (EndTxn, answered at once) → CompleteCommit / CompleteAbort once a marker of every
//! partition is in its leader's log and replicated to the ISR (the world writes them, see
//! `world/txn.rs`). While markers are being written, InitProducerId, AddPartitionsToTxn and a
//! repeated EndTxn are answered CONCURRENT_TRANSACTIONS; a repeated EndTxn after completion
//! with the same result is answered Ok (the idempotent retry), with the other result
//! INVALID_TXN_STATE. An older epoch is PRODUCER_FENCED; another producer id
//! INVALID_PRODUCER_ID_MAPPING. An Ongoing transaction older than `transaction.timeout.ms` is
//! aborted by the coordinator with a bumped epoch (its markers fence the producer's batches).
//! InitProducerId with the current pair bumps the epoch; with the pair before the last bump it
//! is a retry and gets the current pair; with an open transaction it aborts it first
//! (CONCURRENT_TRANSACTIONS until its markers are written). A fresh InitProducerId (no pair:
//! a second instance of the transactional id) bumps the epoch too and keeps no previous
//! epoch, so the first instance's bump is PRODUCER_FENCED, not a retry.
//!
//! The coordinator's broker can change (a coordinator move): the state moves with it (Kafka
//! reloads it from `__transaction_state`), and the new broker answers
//! COORDINATOR_LOAD_IN_PROGRESS while loading; the old one NOT_COORDINATOR.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// Where the transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

/// What the coordinator deliberately gets wrong (negative controls).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BrokenCoordinator {
    /// Never writes a marker to partition 0 but completes anyway (`committed-lost`).
    pub skip_partition_zero: bool,
    /// Writes COMMIT markers for an abort (`aborted-visible`).
    pub commit_aborts: bool,
    /// Writes ABORT to the lowest partition of a committing transaction (`torn-transaction`).
    pub tear_commits: bool,
    /// Answers EndTxn(abort) of an Ongoing transaction without ending it: the transaction
    /// stays open until it times out (`phantom-transaction`).
    pub keep_aborted_open: bool,
    /// Answers a fresh InitProducerId (a second instance of the transactional id) with the
    /// current pair, without bumping the epoch or aborting the open transaction: the first
    /// instance is never fenced (`zombie-committed`).
    pub no_fence: bool,
    /// Refuses an older epoch with INVALID_TXN_STATE instead of PRODUCER_FENCED: the fenced
    /// instance stops on an error that does not tell it it was fenced (`zombie-unfenced`).
    pub fence_as_invalid_state: bool,
}

/// One partition's marker of the transaction being completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    /// Not written yet (or its leader changed before it was replicated: written again).
    Todo,
    /// Written at the leader under `leader_epoch`, acknowledged once the ISR has `end`.
    Written {
        leader_epoch: i32,
        end: i64,
    },
    Done,
}

/// A transactional request, as the coordinator reads it.
#[derive(Debug, Clone)]
pub(super) enum Request {
    /// InitProducerId with the current (producer id, epoch), (-1, -1) the first time.
    Init {
        current: (i64, i16),
    },
    Add {
        pair: (i64, i16),
        partitions: Vec<i32>,
    },
    End {
        pair: (i64, i16),
        commit: bool,
    },
}

/// The coordinator's answer.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    Init(Result<(i64, i16), ResponseError>),
    /// Per partition (AddPartitionsToTxn v1–3 has no top-level error).
    Add(Vec<(i32, Option<ResponseError>)>),
    End(Result<(), ResponseError>),
}

impl Request {
    /// The same error for the whole request.
    pub(super) fn refuse(&self, code: ResponseError) -> Answer {
        match self {
            Request::Init { .. } => Answer::Init(Err(code)),
            Request::Add { partitions, .. } => {
                Answer::Add(partitions.iter().map(|p| (*p, Some(code))).collect())
            }
            Request::End { .. } => Answer::End(Err(code)),
        }
    }
}

/// The coordinator.
#[derive(Debug)]
pub(super) struct Coordinator {
    /// The broker hosting it.
    pub node: i32,
    /// It answers COORDINATOR_LOAD_IN_PROGRESS until then (after a move).
    pub loading_until: Duration,
    pub producer_id: i64,
    pub epoch: i16,
    /// The epoch before the last bump (a retried bump is answered with the current pair).
    last_epoch: i16,
    pub status: Status,
    pub partitions: BTreeSet<i32>,
    started: Duration,
    timeout: Duration,
    /// The markers of the transaction being completed.
    pub markers: BTreeMap<i32, Marker>,
    /// The result being written: COMMIT or ABORT.
    pub commit: bool,
    /// How many transactions were decided (EndTxn accepted, timeout or fencing abort): the
    /// number of the decision whose markers are being written.
    pub decisions: u64,
    pub broken: BrokenCoordinator,
}

impl Coordinator {
    /// A coordinator on `node` with `transaction.timeout.ms` = `timeout`.
    pub(super) fn new(node: i32, timeout: Duration, broken: BrokenCoordinator) -> Self {
        Self {
            node,
            loading_until: Duration::ZERO,
            producer_id: -1,
            epoch: -1,
            last_epoch: -1,
            status: Status::Empty,
            partitions: BTreeSet::new(),
            started: Duration::ZERO,
            timeout,
            markers: BTreeMap::new(),
            commit: false,
            decisions: 0,
            broken,
        }
    }

    /// Handles `request` read by broker `node` at `now`.
    pub(super) fn handle(&mut self, node: i32, now: Duration, request: &Request) -> Answer {
        if node != self.node {
            return request.refuse(ResponseError::NotCoordinator);
        }
        if now < self.loading_until {
            return request.refuse(ResponseError::CoordinatorLoadInProgress);
        }
        let preparing = matches!(self.status, Status::PrepareCommit | Status::PrepareAbort);
        match request {
            Request::Init { current } => {
                if preparing {
                    return Answer::Init(Err(ResponseError::ConcurrentTransactions));
                }
                let fresh = current.0 < 0;
                if fresh && self.producer_id >= 0 && self.broken.no_fence {
                    return Answer::Init(Ok((self.producer_id, self.epoch)));
                }
                if !fresh {
                    if current.0 != self.producer_id {
                        return Answer::Init(Err(ResponseError::InvalidProducerIdMapping));
                    }
                    let retry = current.1 == self.last_epoch && self.last_epoch != self.epoch;
                    if retry && self.status != Status::Ongoing {
                        return Answer::Init(Ok((self.producer_id, self.epoch)));
                    }
                    if current.1 != self.epoch {
                        return Answer::Init(Err(self.fenced_code()));
                    }
                }
                if self.status == Status::Ongoing {
                    // The open transaction is aborted (fencing its producer) first.
                    self.bump();
                    self.forget_last_epoch(fresh);
                    self.prepare(false);
                    return Answer::Init(Err(ResponseError::ConcurrentTransactions));
                }
                if self.producer_id < 0 {
                    self.producer_id = 1;
                    self.epoch = 0;
                } else {
                    self.bump();
                    self.forget_last_epoch(fresh);
                }
                self.status = Status::Empty;
                self.partitions.clear();
                Answer::Init(Ok((self.producer_id, self.epoch)))
            }
            Request::Add { pair, partitions } => {
                let code = if pair.0 != self.producer_id {
                    Some(ResponseError::InvalidProducerIdMapping)
                } else if pair.1 != self.epoch {
                    Some(self.fenced_code())
                } else if preparing {
                    Some(ResponseError::ConcurrentTransactions)
                } else {
                    None
                };
                if let Some(code) = code {
                    return request.refuse(code);
                }
                if self.status != Status::Ongoing {
                    self.status = Status::Ongoing;
                    self.partitions.clear();
                    self.started = now;
                }
                self.partitions.extend(partitions.iter().copied());
                Answer::Add(partitions.iter().map(|p| (*p, None)).collect())
            }
            Request::End { pair, commit } => {
                if pair.0 != self.producer_id {
                    return Answer::End(Err(ResponseError::InvalidProducerIdMapping));
                }
                if pair.1 != self.epoch {
                    return Answer::End(Err(self.fenced_code()));
                }
                Answer::End(match (self.status, *commit) {
                    (Status::Ongoing, false) if self.broken.keep_aborted_open => Ok(()),
                    (Status::Ongoing, _) => {
                        self.prepare(*commit);
                        Ok(())
                    }
                    (Status::PrepareCommit, true) | (Status::PrepareAbort, false) => {
                        Err(ResponseError::ConcurrentTransactions)
                    }
                    (Status::CompleteCommit, true) | (Status::CompleteAbort, false) => Ok(()),
                    _ => Err(ResponseError::InvalidTxnState),
                })
            }
        }
    }

    /// The answer to an older epoch: PRODUCER_FENCED (or the broken coordinator's).
    fn fenced_code(&self) -> ResponseError {
        if self.broken.fence_as_invalid_state {
            ResponseError::InvalidTxnState
        } else {
            ResponseError::ProducerFenced
        }
    }

    fn bump(&mut self) {
        self.last_epoch = self.epoch;
        self.epoch = self.epoch.saturating_add(1);
    }

    /// A bump for a fresh InitProducerId (no current pair: another instance of the
    /// transactional id) keeps no previous epoch, as Kafka's `prepareIncrementProducerEpoch`
    /// without an expected epoch and its `prepareFenceProducerEpoch` do: the fenced
    /// instance's retried bump is then PRODUCER_FENCED, not a retry given the new pair. (Kafka
    /// forgets it on every fencing bump, also the timeout abort's and a client's own bump of
    /// an Ongoing transaction; here those keep it, as before.)
    fn forget_last_epoch(&mut self, fresh: bool) {
        if fresh {
            self.last_epoch = -1;
        }
    }

    /// EndTxn accepted (or a timeout / InitProducerId abort): markers to write.
    fn prepare(&mut self, commit: bool) {
        self.status = if commit {
            Status::PrepareCommit
        } else {
            Status::PrepareAbort
        };
        self.commit = commit;
        self.decisions += 1;
        self.markers = self.partitions.iter().map(|p| (*p, Marker::Todo)).collect();
    }

    /// Aborts an Ongoing transaction older than the transaction timeout (epoch bumped, as
    /// Kafka's coordinator does). Returns whether it did.
    pub(super) fn expire(&mut self, now: Duration) -> bool {
        if self.status == Status::Ongoing && now.saturating_sub(self.started) > self.timeout {
            self.bump();
            self.prepare(false);
            return true;
        }
        false
    }

    /// The marker to write to partition `p` (COMMIT or ABORT), `None` for none (the broken
    /// coordinator of a negative control).
    pub(super) fn marker_for(&self, p: i32) -> Option<bool> {
        if self.broken.skip_partition_zero && p == 0 {
            return None;
        }
        if !self.commit && self.broken.commit_aborts {
            return Some(true);
        }
        if self.commit && self.broken.tear_commits && self.partitions.first() == Some(&p) {
            return Some(false);
        }
        Some(self.commit)
    }

    /// Every marker written: the transaction is complete.
    pub(super) fn complete_if_done(&mut self) -> bool {
        let preparing = matches!(self.status, Status::PrepareCommit | Status::PrepareAbort);
        if preparing && self.markers.values().all(|m| *m == Marker::Done) {
            self.status = if self.commit {
                Status::CompleteCommit
            } else {
                Status::CompleteAbort
            };
            self.markers.clear();
            return true;
        }
        false
    }

    /// KIP-890 part 1 verification at a partition leader: whether a transactional batch of
    /// (`pid`, `epoch`) for `p` belongs to the open transaction. An older epoch than the
    /// coordinator's is INVALID_PRODUCER_EPOCH; a partition not in the Ongoing transaction
    /// INVALID_TXN_STATE.
    pub(super) fn verify(&self, pid: i64, epoch: i16, p: i32) -> Option<ResponseError> {
        if pid != self.producer_id || epoch < self.epoch {
            return Some(ResponseError::InvalidProducerEpoch);
        }
        if epoch != self.epoch || self.status != Status::Ongoing || !self.partitions.contains(&p) {
            return Some(ResponseError::InvalidTxnState);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(c: &mut Coordinator, current: (i64, i16)) -> Result<(i64, i16), ResponseError> {
        match c.handle(0, Duration::ZERO, &Request::Init { current }) {
            Answer::Init(r) => r,
            other => panic!("not an InitProducerId answer: {other:?}"),
        }
    }

    /// A bump retried with the pair before it gets the current pair; after a second instance's
    /// fresh InitProducerId the first instance's bump is fenced, not taken for a retry.
    #[test]
    fn a_fresh_init_fences_the_first_instance_bump() {
        let mut c = Coordinator::new(0, Duration::from_secs(60), BrokenCoordinator::default());
        let a = init(&mut c, (-1, -1)).expect("first init");
        let bumped = init(&mut c, a).expect("bump");
        assert_eq!(init(&mut c, a), Ok(bumped), "a retried bump");
        let b = init(&mut c, (-1, -1)).expect("second instance");
        assert!(b.1 > bumped.1);
        assert_eq!(init(&mut c, bumped), Err(ResponseError::ProducerFenced));
        assert_eq!(
            init(&mut c, b).map(|p| p.1),
            Ok(b.1 + 1),
            "the new instance's bump"
        );
    }
}
