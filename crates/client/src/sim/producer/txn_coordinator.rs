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
//! (CONCURRENT_TRANSACTIONS until its markers are written).
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
                if current.0 >= 0 {
                    if current.0 != self.producer_id {
                        return Answer::Init(Err(ResponseError::InvalidProducerIdMapping));
                    }
                    let retry = current.1 == self.last_epoch && self.last_epoch != self.epoch;
                    if retry && self.status != Status::Ongoing {
                        return Answer::Init(Ok((self.producer_id, self.epoch)));
                    }
                    if current.1 != self.epoch {
                        return Answer::Init(Err(ResponseError::ProducerFenced));
                    }
                }
                if self.status == Status::Ongoing {
                    // The open transaction is aborted (fencing its producer) first.
                    self.bump();
                    self.prepare(false);
                    return Answer::Init(Err(ResponseError::ConcurrentTransactions));
                }
                if self.producer_id < 0 {
                    self.producer_id = 1;
                    self.epoch = 0;
                } else {
                    self.bump();
                }
                self.status = Status::Empty;
                self.partitions.clear();
                Answer::Init(Ok((self.producer_id, self.epoch)))
            }
            Request::Add { pair, partitions } => {
                let code = if pair.0 != self.producer_id {
                    Some(ResponseError::InvalidProducerIdMapping)
                } else if pair.1 != self.epoch {
                    Some(ResponseError::ProducerFenced)
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
                    return Answer::End(Err(ResponseError::ProducerFenced));
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

    fn bump(&mut self) {
        self.last_epoch = self.epoch;
        self.epoch = self.epoch.saturating_add(1);
    }

    /// EndTxn accepted (or a timeout / InitProducerId abort): markers to write.
    fn prepare(&mut self, commit: bool) {
        self.status = if commit {
            Status::PrepareCommit
        } else {
            Status::PrepareAbort
        };
        self.commit = commit;
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
