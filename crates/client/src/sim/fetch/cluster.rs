//! The simulated cluster of the fetcher world: per partition a leader, a leader epoch with
//! its history, one log of encoded record batches, a high watermark and a last stable
//! offset; and the broker's answers to Fetch (with KIP-227 sessions), ListOffsets and
//! OffsetForLeaderEpoch, computed from that state as Kafka computes them.
//!
//! Replication is reduced to what a consumer can see: an append is replicated to the ISR
//! (and the high watermark moves over it) a drawn delay later. A leader move elects another
//! broker, bumps the epoch and truncates the log to a drawn point between the high watermark
//! and the log end (what the new leader had replicated): data above the high watermark may
//! vanish, data below it never does (clean election).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset as EndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafkit_wire::record::control::{end_txn_marker_key, end_txn_marker_value};
use kafkit_wire::record::{BatchBuilder, BatchOptions, ControlRecordType, RecordRef};

/// The topic.
pub(super) const TOPIC: &str = "simfetch";
/// Its topic id.
pub(super) const TOPIC_ID: [u8; 16] = [0x5f; 16];
/// Brokers 0, 1, 2.
pub(super) const BROKERS: i32 = 3;

/// The deliberately broken broker of a negative control.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Broken {
    /// read_committed fetches carry no aborted transactions.
    pub omit_aborted: bool,
    /// read_committed fetches return data up to the high watermark, not the LSO.
    pub ignore_lso: bool,
    /// Partition 0 is always answered without records.
    pub mute_partition_0: bool,
}

/// What a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Not transactional.
    Plain,
    /// Data of transaction `txn` of producer `pid`.
    Txn { pid: i64, txn: u64 },
    /// The COMMIT or ABORT marker of that transaction.
    Marker { pid: i64, txn: u64, commit: bool },
}

/// One record batch in a log.
#[derive(Debug, Clone)]
pub(super) struct Batch {
    pub base: i64,
    pub count: i64,
    pub kind: Kind,
    pub epoch: i32,
    /// The record ids (one per record; none for a marker).
    pub ids: Vec<u64>,
    pub bytes: Bytes,
}

impl Batch {
    fn end(&self) -> i64 {
        self.base + self.count
    }
}

/// The value a record with id `id` carries.
pub(super) fn value_of(id: u64) -> String {
    format!("rec-{id}")
}

/// The id of a record value written by [`value_of`].
pub(super) fn id_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value)
        .ok()?
        .strip_prefix("rec-")?
        .parse()
        .ok()
}

fn encode(base: i64, kind: Kind, epoch: i32, ids: &[u64]) -> Bytes {
    let mut buf = BytesMut::new();
    let mut options = BatchOptions {
        partition_leader_epoch: epoch,
        ..BatchOptions::default()
    };
    let mut b = BatchBuilder::new(&mut buf, base);
    match kind {
        Kind::Plain | Kind::Txn { .. } => {
            for id in ids {
                let value = value_of(*id);
                b.append(&RecordRef::new(1_000, None, Some(value.as_bytes())))
                    .expect("a small record fits a batch");
            }
            if let Kind::Txn { pid, .. } = kind {
                options.producer_id = pid;
                options.producer_epoch = 0;
                options.transactional = true;
            }
        }
        Kind::Marker { pid, commit, .. } => {
            let key = end_txn_marker_key(if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            });
            let value = end_txn_marker_value(0);
            b.append(&RecordRef::new(1_000, Some(&key), Some(&value)))
                .expect("a marker fits a batch");
            options.producer_id = pid;
            options.producer_epoch = 0;
            options.transactional = true;
            options.control = true;
        }
    }
    b.finish(&options, &mut Vec::new())
        .expect("an uncompressed batch encodes");
    buf.freeze()
}

/// One partition on its leader.
#[derive(Debug, Clone)]
pub(super) struct Partition {
    pub leader: i32,
    pub epoch: i32,
    /// (epoch, its first offset), oldest first.
    pub epochs: Vec<(i32, i64)>,
    pub log: Vec<Batch>,
    pub hw: i64,
    /// The first offset the log still holds (retention moves it).
    pub log_start: i64,
    /// Appends not yet replicated: (their end offset, when they will be).
    pub pending: VecDeque<(i64, Duration)>,
}

impl Partition {
    /// What a broker `node` answers a request naming `current_leader_epoch` for this partition
    /// before reading it: not the leader, a fenced (older) or an unknown (newer) epoch; `None`:
    /// go on. -1 skips the epoch check, as in Kafka.
    fn leader_error(&self, node: i32, current_leader_epoch: i32) -> Option<ResponseError> {
        if self.leader != node {
            Some(ResponseError::NotLeaderOrFollower)
        } else if current_leader_epoch >= 0 && current_leader_epoch < self.epoch {
            Some(ResponseError::FencedLeaderEpoch)
        } else if current_leader_epoch > self.epoch {
            Some(ResponseError::UnknownLeaderEpoch)
        } else {
            None
        }
    }
    fn new(leader: i32) -> Self {
        Partition {
            leader,
            epoch: 0,
            epochs: vec![(0, 0)],
            log: Vec::new(),
            hw: 0,
            log_start: 0,
            pending: VecDeque::new(),
        }
    }

    /// The log end offset.
    pub(super) fn leo(&self) -> i64 {
        self.log.last().map_or(self.log_start, Batch::end)
    }

    /// Appends a batch under the current epoch; returns its end offset.
    pub(super) fn append(&mut self, kind: Kind, ids: Vec<u64>) -> i64 {
        let base = self.leo();
        let count = if matches!(kind, Kind::Marker { .. }) {
            1
        } else {
            ids.len() as i64
        };
        let bytes = encode(base, kind, self.epoch, &ids);
        self.log.push(Batch {
            base,
            count,
            kind,
            epoch: self.epoch,
            ids,
            bytes,
        });
        base + count
    }

    /// Moves the high watermark over every append replicated by `now`.
    pub(super) fn replicate(&mut self, now: Duration) {
        while let Some(&(end, due)) = self.pending.front() {
            if due > now {
                break;
            }
            self.pending.pop_front();
            self.hw = self.hw.max(end.min(self.leo()));
        }
    }

    /// The last stable offset: the first offset of the oldest transaction whose marker is not
    /// below the high watermark, else the high watermark.
    pub(super) fn lso(&self) -> i64 {
        let mut open: BTreeMap<(i64, u64), i64> = BTreeMap::new();
        for b in &self.log {
            match b.kind {
                Kind::Txn { pid, txn } => {
                    open.entry((pid, txn)).or_insert(b.base);
                }
                Kind::Marker { pid, txn, .. } if b.base < self.hw => {
                    open.remove(&(pid, txn));
                }
                _ => {}
            }
        }
        open.values().copied().fold(self.hw, i64::min)
    }

    /// Retention: deletes the whole batches ending at or before `upto` (at most the LSO);
    /// returns the new log start offset.
    pub(super) fn delete_before(&mut self, upto: i64) -> i64 {
        let upto = upto.min(self.lso());
        let gone = self.log.iter().take_while(|b| b.end() <= upto).count();
        if gone > 0 {
            self.log_start = self.log_start.max(self.log[gone - 1].end());
            self.log.drain(..gone);
        }
        self.log_start
    }

    /// Transactions with data but no marker in this log.
    pub(super) fn open_txns(&self) -> BTreeSet<(i64, u64)> {
        let mut open = BTreeSet::new();
        for b in &self.log {
            match b.kind {
                Kind::Txn { pid, txn } => {
                    open.insert((pid, txn));
                }
                Kind::Marker { pid, txn, .. } => {
                    open.remove(&(pid, txn));
                }
                Kind::Plain => {}
            }
        }
        open
    }

    /// Aborted transactions (producer id, first offset) overlapping `from..end` (Kafka's
    /// rule: first offset below the end of the returned data, marker at or after the fetch
    /// offset).
    fn aborted_between(&self, from: i64, end: i64) -> Vec<(i64, i64)> {
        let mut first: BTreeMap<(i64, u64), i64> = BTreeMap::new();
        let mut out = Vec::new();
        for b in &self.log {
            match b.kind {
                Kind::Txn { pid, txn } => {
                    first.entry((pid, txn)).or_insert(b.base);
                }
                Kind::Marker { pid, txn, commit } => {
                    if let Some(f) = first.remove(&(pid, txn)) {
                        if !commit && f < end && b.base >= from {
                            out.push((pid, f));
                        }
                    }
                }
                Kind::Plain => {}
            }
        }
        out.sort_by_key(|&(pid, f)| (f, pid));
        out
    }

    /// Where `epoch` ends in this log, as OffsetForLeaderEpoch answers: the largest known
    /// epoch ≤ `epoch` and the first offset of the epoch after it (the log end for the
    /// latest); `None` for an epoch older than every known one.
    pub(super) fn epoch_end(&self, epoch: i32) -> Option<(i32, i64)> {
        let i = self.epochs.iter().rposition(|(e, _)| *e <= epoch)?;
        let end = self
            .epochs
            .get(i + 1)
            .map_or(self.leo(), |(_, start)| *start);
        Some((self.epochs[i].0, end))
    }

    /// A leader move to `leader`: a new epoch, the log truncated to `keep` (≥ the high
    /// watermark); returns the ids that vanished.
    pub(super) fn move_leader(&mut self, leader: i32, keep: i64) -> Vec<u64> {
        let keep = keep.max(self.hw);
        let mut gone = Vec::new();
        while self.log.last().is_some_and(|b| b.base >= keep) {
            if let Some(b) = self.log.pop() {
                gone.extend(b.ids);
            }
        }
        // Batches are whole: `keep` falls on a batch boundary or the batch spanning it stays.
        let leo = self.leo();
        self.pending.retain(|(end, _)| *end <= leo);
        self.leader = leader;
        self.epoch += 1;
        self.epochs.push((self.epoch, self.leo()));
        gone
    }
}

/// One broker-side fetch session (KIP-227).
#[derive(Debug, Clone)]
struct Session {
    epoch: i32,
    /// partition → (fetch offset, current leader epoch, last fetched epoch, max bytes)
    partitions: BTreeMap<i32, (i64, i32, i32, i32)>,
}

/// The cluster.
#[derive(Debug)]
pub(super) struct Cluster {
    pub partitions: Vec<Partition>,
    pub paused: [bool; BROKERS as usize],
    sessions: [BTreeMap<i32, Session>; BROKERS as usize],
    next_session: i32,
    pub broken: Broken,
}

/// Faults the world draws for one Fetch answer.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FetchFaults {
    /// The broker evicts the request's session before reading it.
    pub evict_session: bool,
    /// A partition answered with this error instead (index into the request's partitions).
    pub partition_error: Option<(usize, ResponseError)>,
}

/// A partition's fetch fields as a request (or a session) gives them.
type FetchFields = (i64, i32, i32, i32);

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn refused(p: i32, code: ResponseError, leader: i32, epoch: i32) -> PartitionData {
    PartitionData::default()
        .with_partition_index(p)
        .with_error_code(code.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(epoch),
        )
}

impl Cluster {
    /// `partitions` partitions, partition p led by broker p % 3 at epoch 0.
    pub(super) fn new(partitions: i32, broken: Broken) -> Self {
        Cluster {
            partitions: (0..partitions)
                .map(|p| Partition::new(p % BROKERS))
                .collect(),
            paused: [false; BROKERS as usize],
            sessions: Default::default(),
            next_session: 1,
            broken,
        }
    }

    /// Bytes a Fetch would return now (for `fetch.min.bytes`).
    pub(super) fn fetch_bytes(&self, node: i32, request: &FetchRequest) -> usize {
        let Some(wanted) = self.session_view(node, request) else {
            return usize::MAX; // an error answer goes out at once
        };
        let rc = request.isolation_level == 1;
        let mut bytes = 0;
        for (p, (offset, _, _, _)) in wanted {
            let Some(part) = self.partitions.get(p as usize) else {
                continue;
            };
            if part.leader != node {
                return usize::MAX;
            }
            let limit = self.limit(part, rc);
            bytes += part
                .log
                .iter()
                .filter(|b| b.end() > offset && b.end() <= limit)
                .map(|b| b.bytes.len())
                .sum::<usize>();
        }
        bytes
    }

    fn limit(&self, part: &Partition, read_committed: bool) -> i64 {
        if read_committed && !self.broken.ignore_lso {
            part.lso()
        } else {
            part.hw
        }
    }

    /// The partitions a request fetches (its own plus its session's), or `None` if its
    /// session is unknown or out of step (read-only: [`fetch`](Self::fetch) updates it).
    fn session_view(
        &self,
        node: i32,
        request: &FetchRequest,
    ) -> Option<BTreeMap<i32, FetchFields>> {
        let sent = request.topics.iter().flat_map(|t| &t.partitions).map(|p| {
            (
                p.partition,
                (
                    p.fetch_offset,
                    p.current_leader_epoch,
                    p.last_fetched_epoch,
                    p.partition_max_bytes,
                ),
            )
        });
        if request.session_id == 0 {
            return Some(sent.collect());
        }
        let session = self.sessions[node as usize].get(&request.session_id)?;
        if session.epoch != request.session_epoch {
            return None;
        }
        let mut all = session.partitions.clone();
        for t in &request.forgotten_topics_data {
            for p in &t.partitions {
                all.remove(p);
            }
        }
        all.extend(sent);
        Some(all)
    }

    /// Answers a Fetch on `node`.
    pub(super) fn fetch(
        &mut self,
        node: i32,
        request: &FetchRequest,
        faults: FetchFaults,
    ) -> FetchResponse {
        let n = node as usize;
        if faults.evict_session && request.session_id != 0 {
            self.sessions[n].remove(&request.session_id);
        }
        let full = request.session_id == 0;
        let Some(wanted) = self.session_view(node, request) else {
            let code = if self.sessions[n].contains_key(&request.session_id) {
                ResponseError::InvalidFetchSessionEpoch
            } else {
                ResponseError::FetchSessionIdNotFound
            };
            return FetchResponse::default().with_error_code(code.code());
        };
        // The session: a full request opens a new one (epoch 0 → the next is 1); an
        // incremental one moves it on.
        let session_id = if full {
            if request.session_epoch == -1 {
                0
            } else {
                let id = self.next_session;
                self.next_session += 1;
                self.sessions[n].insert(
                    id,
                    Session {
                        epoch: 1,
                        partitions: wanted.clone(),
                    },
                );
                id
            }
        } else {
            if let Some(s) = self.sessions[n].get_mut(&request.session_id) {
                s.epoch = if s.epoch == i32::MAX { 1 } else { s.epoch + 1 };
                s.partitions = wanted.clone();
            }
            request.session_id
        };
        let rc = request.isolation_level == 1;
        let mut budget = usize::try_from(request.max_bytes.max(0)).unwrap_or(0);
        let mut first_data = true;
        let mut out = Vec::new();
        for (i, (p, (offset, current_epoch, last_epoch, max_bytes))) in
            wanted.into_iter().enumerate()
        {
            let Some(part) = self.partitions.get(p as usize) else {
                continue;
            };
            let code = part.leader_error(node, current_epoch).or_else(|| {
                faults
                    .partition_error
                    .filter(|(at, _)| *at == i)
                    .map(|(_, code)| code)
            });
            if let Some(code) = code {
                out.push(refused(p, code, part.leader, part.epoch));
                continue;
            }
            let mut data = PartitionData::default()
                .with_partition_index(p)
                .with_high_watermark(part.hw)
                .with_last_stable_offset(part.lso())
                .with_log_start_offset(part.log_start)
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(-1))
                        .with_leader_epoch(-1),
                );
            if last_epoch >= 0 {
                let diverged = match part.epoch_end(last_epoch) {
                    Some((e, end)) => (e != last_epoch || end < offset).then_some((e, end)),
                    None => Some((-1, -1)),
                };
                if let Some((e, end)) = diverged {
                    out.push(data.with_diverging_epoch(
                        EpochEndOffset::default().with_epoch(e).with_end_offset(end),
                    ));
                    continue;
                }
            }
            if offset < part.log_start || offset > part.leo() {
                out.push(refused(p, ResponseError::OffsetOutOfRange, -1, -1));
                continue;
            }
            let limit = self.limit(part, rc);
            let mut records = BytesMut::new();
            let mut last_end = offset;
            let cap = usize::try_from(max_bytes.max(0)).unwrap_or(0);
            if !(self.broken.mute_partition_0 && p == 0) {
                for b in part
                    .log
                    .iter()
                    .filter(|b| b.end() > offset && b.end() <= limit)
                {
                    let room = cap.min(budget);
                    let fits = records.len() + b.bytes.len() <= room;
                    if !(fits || (records.is_empty() && first_data)) {
                        // Kafka reads the log by bytes: the slice ends inside this batch,
                        // and the client must drop the incomplete tail.
                        let partial = room.saturating_sub(records.len());
                        records.extend_from_slice(&b.bytes[..partial.min(b.bytes.len())]);
                        break;
                    }
                    records.extend_from_slice(&b.bytes);
                    last_end = b.end();
                }
            }
            if last_end > offset {
                first_data = false;
                budget = budget.saturating_sub(records.len());
            }
            if rc {
                let aborted = if self.broken.omit_aborted || last_end <= offset {
                    Vec::new()
                } else {
                    part.aborted_between(offset, last_end)
                };
                data = data.with_aborted_transactions(Some(
                    aborted
                        .into_iter()
                        .map(|(pid, first)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(pid))
                                .with_first_offset(first)
                        })
                        .collect(),
                ));
            }
            if !full && records.is_empty() {
                // An incremental response leaves out partitions with nothing new.
                continue;
            }
            out.push(data.with_records(Some(records.freeze())));
        }
        FetchResponse::default()
            .with_session_id(session_id)
            .with_responses(vec![FetchableTopicResponse::default()
                .with_topic(name())
                .with_topic_id(uuid::Uuid::from_bytes(TOPIC_ID))
                .with_partitions(out)])
    }

    /// Answers a ListOffsets on `node` (earliest: the log start; latest: the LSO for
    /// read_committed, else the high watermark).
    pub(super) fn list_offsets(
        &self,
        node: i32,
        request: &ListOffsetsRequest,
    ) -> ListOffsetsResponse {
        let rc = request.isolation_level == 1;
        let topics = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|q| {
                        let answer = ListOffsetsPartitionResponse::default()
                            .with_partition_index(q.partition_index);
                        let Some(part) = self.partitions.get(q.partition_index as usize) else {
                            return answer
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                        };
                        if let Some(code) = part.leader_error(node, q.current_leader_epoch) {
                            return answer.with_error_code(code.code());
                        }
                        let offset = match q.timestamp {
                            -2 => part.log_start,
                            _ if rc => part.lso(),
                            _ => part.hw,
                        };
                        answer
                            .with_offset(offset)
                            .with_timestamp(-1)
                            .with_leader_epoch(part.epoch)
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        ListOffsetsResponse::default().with_topics(topics)
    }

    /// Answers an OffsetForLeaderEpoch on `node`.
    pub(super) fn epoch_ends(
        &self,
        node: i32,
        request: &OffsetForLeaderEpochRequest,
    ) -> OffsetForLeaderEpochResponse {
        let topics = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|q| {
                        let answer = EndOffset::default().with_partition(q.partition);
                        let Some(part) = self.partitions.get(q.partition as usize) else {
                            return answer
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                        };
                        if let Some(code) = part.leader_error(node, q.current_leader_epoch) {
                            return answer.with_error_code(code.code());
                        }
                        match part.epoch_end(q.leader_epoch) {
                            Some((e, end)) => answer.with_leader_epoch(e).with_end_offset(end),
                            None => answer.with_leader_epoch(-1).with_end_offset(-1),
                        }
                    })
                    .collect();
                OffsetForLeaderTopicResult::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(partitions)
            })
            .collect();
        OffsetForLeaderEpochResponse::default().with_topics(topics)
    }
}
