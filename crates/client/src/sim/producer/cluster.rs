//! The simulated cluster: three brokers, one topic, per-replica logs, leaders, ISRs, leader
//! epochs, replication, and the broker's idempotent-producer checks.
//!
//! Producer state is not kept beside the log: it is read from the replica's own log (the last
//! five batches of the producer, its epoch, its last sequence), so it moves with replication
//! and is truncated with the log, as Kafka's does (its snapshot is rebuilt from the log).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafkit_wire::record::BatchReader;

use crate::state::producer::increment_sequence;

/// Brokers in the cluster.
pub(super) const BROKERS: i32 = 3;
/// `min.insync.replicas` of the topic.
pub(super) const MIN_INSYNC: usize = 2;
/// Kafka keeps the metadata of this many batches per producer to recognise duplicates.
const DEDUP_WINDOW: usize = 5;

/// A batch as written to a replica's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogBatch {
    /// Unique per write at a leader: replicas hold the same write, so logs compare by it.
    pub write: u64,
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    /// Record ids (the first 8 bytes of each value); none in a control batch.
    pub records: Vec<u64>,
    /// A transaction marker (control batch, one offset): `Some(true)` COMMIT, `Some(false)`
    /// ABORT. Written by the transaction coordinator, replicated like data.
    pub marker: Option<bool>,
}

impl LogBatch {
    /// The offsets the batch takes: its records, or one for a marker.
    pub(super) fn len(&self) -> i64 {
        if self.marker.is_some() {
            1
        } else {
            self.records.len() as i64
        }
    }
}

/// One replica's log.
#[derive(Debug, Clone, Default)]
pub(super) struct ReplicaLog {
    pub batches: Vec<LogBatch>,
}

impl ReplicaLog {
    /// The next offset.
    pub(super) fn end_offset(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.base_offset + b.len())
    }

    /// Every record id in offset order.
    pub(super) fn records(&self) -> impl Iterator<Item = u64> + '_ {
        self.batches.iter().flat_map(|b| b.records.iter().copied())
    }

    /// The number of leading batches `self` and `other` share.
    fn common_batches(&self, other: &ReplicaLog) -> usize {
        self.batches
            .iter()
            .zip(&other.batches)
            .take_while(|(a, b)| a.write == b.write)
            .count()
    }

    /// The offset up to which `self` and `other` hold the same records.
    pub(super) fn common_offset(&self, other: &ReplicaLog) -> i64 {
        let n = self.common_batches(other);
        self.batches[..n]
            .last()
            .map_or(0, |b| b.base_offset + b.len())
    }

    /// Makes `self` a copy of `leader` (truncating a diverged tail first, as a follower does
    /// after a leader change). Returns the number of batches truncated.
    fn follow(&mut self, leader: &ReplicaLog) -> usize {
        let n = self.common_batches(leader);
        let truncated = self.batches.len() - n;
        self.batches.truncate(n);
        self.batches.extend_from_slice(&leader.batches[n..]);
        truncated
    }
}

/// One partition of the topic.
#[derive(Debug, Clone)]
pub(super) struct Partition {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: BTreeSet<i32>,
    /// Replica logs, by broker.
    pub logs: Vec<ReplicaLog>,
    /// When each follower last had all of the leader's log.
    caught_up_at: Vec<Duration>,
}

impl Partition {
    /// The high watermark: what every ISR member holds.
    pub(super) fn high_watermark(&self) -> i64 {
        let leader = &self.logs[self.leader as usize];
        self.isr
            .iter()
            .map(|b| leader.common_offset(&self.logs[*b as usize]))
            .min()
            .unwrap_or(0)
    }

    /// The leader's log.
    pub(super) fn leader_log(&self) -> &ReplicaLog {
        &self.logs[self.leader as usize]
    }
}

/// What a broker deliberately gets wrong (negative controls).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Broken {
    /// Writes a batch again instead of answering a duplicate with its first offset.
    pub no_dedup: bool,
    /// Accepts any sequence (no OUT_OF_ORDER_SEQUENCE_NUMBER on a gap).
    pub ignore_gaps: bool,
    /// Acknowledges once the leader has written (acks=1 semantics) instead of once the ISR has.
    pub ack_on_leader: bool,
    /// Writes the batch it answers with a fatal error (INVALID_RECORD).
    pub write_then_refuse: bool,
}

/// The outcome of appending one batch at its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Appended {
    /// Written at `base_offset`; acknowledged once the high watermark reaches `end`.
    Written { base_offset: i64, end: i64 },
    /// A duplicate of a batch in the log: answered with that batch's offset.
    /// Like a write, Kafka answers it once the high watermark covers it (`end`).
    Duplicate { base_offset: i64, end: i64 },
    /// Refused, nothing written.
    Refused(ResponseError),
}

/// The cluster.
#[derive(Debug)]
pub(super) struct Cluster {
    pub partitions: Vec<Partition>,
    pub paused: Vec<bool>,
    pub broken: Broken,
    next_write: u64,
    /// How long a follower may lag before it leaves the ISR (`replica.lag.time.max.ms`).
    pub lag_max: Duration,
}

/// (producer id, epoch, base sequence, record ids) of the first batch in `bytes`.
pub(super) fn decode(bytes: &Bytes) -> Option<(i64, i16, i32, Vec<u64>)> {
    let batch = BatchReader::new(bytes.clone()).next()?.ok()?;
    let h = &batch.header;
    let (pid, epoch, base) = (h.producer_id, h.producer_epoch, h.base_sequence);
    let ids = batch
        .records()
        .iter()
        .map(|r| {
            let v = r.value.as_deref().unwrap_or_default();
            let id = v.get(..8).and_then(|v| v.try_into().ok()).unwrap_or([0; 8]);
            u64::from_be_bytes(id)
        })
        .collect();
    Some((pid, epoch, base, ids))
}

impl Cluster {
    /// Each partition's log as its leader holds it now (what the checkers judge).
    pub(super) fn leader_logs(&self) -> Vec<ReplicaLog> {
        self.partitions
            .iter()
            .map(|p| p.leader_log().clone())
            .collect()
    }

    /// `partitions` partitions, replication factor 3, leaders spread round-robin.
    pub(super) fn new(partitions: i32, lag_max: Duration, broken: Broken) -> Self {
        let partitions = (0..partitions)
            .map(|p| Partition {
                leader: p % BROKERS,
                leader_epoch: 0,
                isr: (0..BROKERS).collect(),
                logs: vec![ReplicaLog::default(); BROKERS as usize],
                caught_up_at: vec![Duration::ZERO; BROKERS as usize],
            })
            .collect();
        Self {
            partitions,
            paused: vec![false; BROKERS as usize],
            broken,
            next_write: 0,
            lag_max,
        }
    }

    /// The current leader of each partition (what a metadata response says).
    pub(super) fn leaders(&self) -> Vec<i32> {
        self.partitions.iter().map(|p| p.leader).collect()
    }

    /// Appends `bytes` to partition `p` at broker `node` as Kafka's leader does.
    pub(super) fn append(&mut self, node: i32, p: i32, bytes: &Bytes) -> Appended {
        let Some(part) = self.partitions.get_mut(p as usize) else {
            return Appended::Refused(ResponseError::UnknownTopicOrPartition);
        };
        if part.leader != node {
            return Appended::Refused(ResponseError::NotLeaderOrFollower);
        }
        let Some((pid, epoch, base, ids)) = decode(bytes) else {
            return Appended::Refused(ResponseError::CorruptMessage);
        };
        if ids.is_empty() {
            return Appended::Refused(ResponseError::InvalidRecord);
        }
        let log = &part.logs[node as usize];
        let last_sequence = increment_sequence(base, ids.len() as i32 - 1);
        // The producer's state, read from this replica's log. A transaction marker carries
        // the coordinator's epoch (fencing older ones) but no sequence.
        let fence = log
            .batches
            .iter()
            .filter(|b| b.producer_id == pid && b.marker.is_some())
            .map(|b| b.epoch)
            .max();
        if fence.is_some_and(|e| epoch < e) {
            return Appended::Refused(ResponseError::InvalidProducerEpoch);
        }
        let mine: Vec<&LogBatch> = log
            .batches
            .iter()
            .filter(|b| b.producer_id == pid && b.marker.is_none())
            .collect();
        if let Some(last) = mine.last() {
            if epoch < last.epoch {
                return Appended::Refused(ResponseError::InvalidProducerEpoch);
            }
            let dup = mine.iter().rev().take(DEDUP_WINDOW).find(|b| {
                b.epoch == epoch && b.base_sequence == base && b.last_sequence == last_sequence
            });
            if let Some(dup) = dup {
                if !self.broken.no_dedup {
                    return Appended::Duplicate {
                        base_offset: dup.base_offset,
                        end: dup.base_offset + dup.len(),
                    };
                }
                // The broken broker writes it again, as if it were new.
            } else if !self.broken.ignore_gaps {
                let in_order = if epoch > last.epoch {
                    base == 0
                } else {
                    base == increment_sequence(last.last_sequence, 1)
                };
                if !in_order {
                    return Appended::Refused(ResponseError::OutOfOrderSequenceNumber);
                }
            }
        }
        // An unknown producer may start at any sequence (Kafka ≥ 2.5).
        if part.isr.len() < MIN_INSYNC {
            return Appended::Refused(ResponseError::NotEnoughReplicas);
        }
        let base_offset = log.end_offset();
        let end = base_offset + ids.len() as i64;
        let write = self.next_write;
        self.next_write += 1;
        part.logs[node as usize].batches.push(LogBatch {
            write,
            producer_id: pid,
            epoch,
            base_sequence: base,
            last_sequence,
            base_offset,
            records: ids,
            marker: None,
        });
        Appended::Written { base_offset, end }
    }

    /// Appends a transaction marker (`commit`: COMMIT, else ABORT) of producer `pid` at
    /// `epoch` to partition `p` at its leader, as the coordinator's WriteTxnMarkers does.
    /// Returns (leader epoch, end offset) to wait for with [`Cluster::ack_state`], or `None`
    /// when the leader is paused.
    pub(super) fn append_marker(
        &mut self,
        p: i32,
        pid: i64,
        epoch: i16,
        commit: bool,
    ) -> Option<(i32, i64)> {
        let part = self.partitions.get_mut(p as usize)?;
        if self.paused[part.leader as usize] {
            return None;
        }
        let log = &mut part.logs[part.leader as usize];
        let base_offset = log.end_offset();
        log.batches.push(LogBatch {
            write: self.next_write,
            producer_id: pid,
            epoch,
            base_sequence: -1,
            last_sequence: -1,
            base_offset,
            records: Vec::new(),
            marker: Some(commit),
        });
        self.next_write += 1;
        Some((part.leader_epoch, base_offset + 1))
    }

    /// The highest epoch of `pid` in the leader log of `p` (data or marker).
    pub(super) fn leader_epoch_of(&self, p: i32, pid: i64) -> Option<i16> {
        let part = self.partitions.get(p as usize)?;
        part.leader_log()
            .batches
            .iter()
            .filter(|b| b.producer_id == pid)
            .map(|b| b.epoch)
            .max()
    }

    /// Whether a write of partition `p` ending at `end`, made under `leader_epoch`, is
    /// acknowledged now: `Some(Ok)` acknowledged, `Some(Err)` answered with an error, `None`
    /// still waiting for the ISR.
    pub(super) fn ack_state(
        &self,
        p: i32,
        leader_epoch: i32,
        end: i64,
    ) -> Option<Result<(), ResponseError>> {
        let part = &self.partitions[p as usize];
        if part.leader_epoch != leader_epoch {
            return Some(Err(ResponseError::NotLeaderOrFollower));
        }
        if self.broken.ack_on_leader || part.high_watermark() >= end {
            if part.isr.len() < MIN_INSYNC && !self.broken.ack_on_leader {
                // Written and replicated to the ISR, but the ISR is too small.
                return Some(Err(ResponseError::NotEnoughReplicasAfterAppend));
            }
            return Some(Ok(()));
        }
        None
    }

    /// One replication round at `now`: followers that are up copy their leader's log (after
    /// truncating a diverged tail); a follower that lagged longer than `lag_max` leaves the
    /// ISR; one that caught up joins it again. Returns what changed, for the trace.
    pub(super) fn replicate(&mut self, now: Duration) -> Vec<String> {
        let mut changes = Vec::new();
        for (p, part) in self.partitions.iter_mut().enumerate() {
            let leader = part.leader as usize;
            for f in 0..BROKERS as usize {
                if f == leader {
                    part.caught_up_at[f] = now;
                    continue;
                }
                if !self.paused[f] && !self.paused[leader] {
                    let leader_log = part.logs[leader].clone();
                    let truncated = part.logs[f].follow(&leader_log);
                    if truncated > 0 {
                        changes.push(format!("p{p} broker {f} truncated {truncated} batches"));
                    }
                    part.caught_up_at[f] = now;
                    if part.isr.insert(f as i32) {
                        changes.push(format!("p{p} broker {f} joins the ISR"));
                    }
                } else if part.isr.contains(&(f as i32))
                    && now.saturating_sub(part.caught_up_at[f]) > self.lag_max
                    && part.logs[f].common_offset(&part.logs[leader])
                        < part.logs[leader].end_offset()
                {
                    part.isr.remove(&(f as i32));
                    changes.push(format!("p{p} broker {f} leaves the ISR"));
                } else if part.logs[f].common_offset(&part.logs[leader])
                    == part.logs[leader].end_offset()
                {
                    part.caught_up_at[f] = now;
                }
            }
        }
        changes
    }

    /// Moves the leadership of `p` to another ISR member that is up (no unclean election).
    /// The old leader leaves the ISR until it has caught up with the new one.
    pub(super) fn move_leader(&mut self, p: i32, pick: usize) -> Option<i32> {
        let paused = &self.paused;
        let part = self.partitions.get_mut(p as usize)?;
        let candidates: Vec<i32> = part
            .isr
            .iter()
            .copied()
            .filter(|b| *b != part.leader && !paused[*b as usize])
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let new = candidates[pick % candidates.len()];
        part.isr.remove(&part.leader);
        part.leader = new;
        part.leader_epoch += 1;
        Some(new)
    }
}
