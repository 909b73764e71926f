//! Random scripts against a simulated broker that checks sequences like Kafka does.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit_wire::record::BatchReader;
use proptest::prelude::*;

use super::super::*;
use super::{config, tp};
use crate::error::Error;
use crate::producer::ProduceError;

#[derive(Debug, Clone)]
enum Op {
    Append {
        partition: i32,
        len: usize,
    },
    Poll,
    Respond {
        pick: usize,
        fault: Fault,
    },
    Advance(u64),
    /// The partition's leadership moves to the other node.
    MoveLeader(i32),
    /// A flush starts.
    Flush,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// Written, response lost.
    LostResponse,
    /// Not written, connection failed before (reported as an I/O error: outcome unknown).
    NotSent,
    /// Not written, the leader could not be connected to (the client knows it was not sent).
    Unreachable,
    /// Not written, leader moved.
    NotLeader,
    /// Not written, refused for good.
    Fatal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3i32, 1..300usize).prop_map(|(partition, len)| Op::Append { partition, len }),
        3 => Just(Op::Poll),
        4 => (any::<usize>(), prop_oneof![
            6 => Just(Fault::None),
            1 => Just(Fault::LostResponse),
            1 => Just(Fault::NotSent),
            1 => Just(Fault::Unreachable),
            1 => Just(Fault::NotLeader),
            1 => Just(Fault::Fatal),
        ]).prop_map(|(pick, fault)| Op::Respond { pick, fault }),
        2 => (1..2_000u64).prop_map(Op::Advance),
        1 => (0..3i32).prop_map(Op::MoveLeader),
        1 => Just(Op::Flush),
    ]
}

/// One partition's log and producer state on the simulated broker.
#[derive(Debug, Default)]
struct Log {
    records: Vec<u64>,
    /// Whether the broker knows the producer here (else it accepts any first sequence).
    known: bool,
    epoch: i16,
    next_sequence: i32,
    /// (base sequence, base offset) of batches written under the current epoch.
    written: Vec<(i32, i64)>,
}

fn decode(bytes: &Bytes) -> (i16, i32, Vec<u64>) {
    let mut out = Vec::new();
    let mut header = (0, 0);
    for batch in BatchReader::new(bytes.clone()).flatten() {
        header = (batch.header.producer_epoch, batch.header.base_sequence);
        for r in batch.records() {
            let v = r.value.as_deref().unwrap_or_default();
            let id = v.get(..8).and_then(|v| v.try_into().ok()).unwrap_or([0; 8]);
            out.push(u64::from_be_bytes(id));
        }
    }
    (header.0, header.1, out)
}

/// Partition 2's `max.message.bytes`: batches above it are refused (`MESSAGE_TOO_LARGE`) before
/// any sequence check, as Kafka does; some records are too large alone.
const LIMITED: i32 = 2;
const MAX_MESSAGE_BYTES: usize = 300;

impl Log {
    /// Writes a batch, or refuses it. `too_large` collects the records refused alone as too
    /// large.
    fn produce(
        &mut self,
        bytes: &Bytes,
        limit: Option<usize>,
        too_large: &mut Vec<u64>,
    ) -> PartitionResponse {
        let (epoch, base, ids) = decode(bytes);
        if limit.is_some_and(|max| bytes.len() > max) {
            if let [id] = ids[..] {
                too_large.push(id);
            }
            return refused(ResponseError::MessageTooLarge);
        }
        if !self.known {
            // Kafka accepts any first sequence from a producer it has no state for.
            self.known = true;
            self.epoch = epoch;
            self.next_sequence = base;
        } else if epoch > self.epoch {
            if base != 0 {
                return refused(ResponseError::OutOfOrderSequenceNumber);
            }
            self.epoch = epoch;
            self.next_sequence = 0;
            self.written.clear();
        } else if epoch < self.epoch {
            return refused(ResponseError::InvalidProducerEpoch);
        }
        if let Some((_, offset)) = self.written.iter().find(|(s, _)| *s == base) {
            return PartitionResponse::Written {
                base_offset: *offset,
                log_append_time: -1,
            };
        }
        if base != self.next_sequence {
            return refused(ResponseError::OutOfOrderSequenceNumber);
        }
        let offset = self.records.len() as i64;
        self.written.push((base, offset));
        self.next_sequence = increment_sequence(base, ids.len() as i32);
        self.records.extend(ids);
        PartitionResponse::Written {
            base_offset: offset,
            log_append_time: -1,
        }
    }
}

fn refused(code: ResponseError) -> PartitionResponse {
    PartitionResponse::Refused {
        code,
        message: None,
    }
}

/// A request written to its broker; `result` is set once that broker has processed it.
struct Pending {
    plan: ProduceRequestPlan,
    result: Option<RequestResult>,
}

struct Sim {
    state: SenderState<u64>,
    now: Instant,
    pending: Vec<Pending>,
    /// Leader node of each partition (1 or 2).
    leaders: HashMap<i32, i32>,
    logs: HashMap<i32, Log>,
    outcomes: BTreeMap<u64, Vec<Result<i64, ProduceError>>>,
    appended: Vec<(u64, i32)>,
    next_id: u64,
    fatal: bool,
    /// Records a broker refused alone as too large.
    too_large: Vec<u64>,
    /// Flushes in progress: marker, and the records appended before it.
    flushes: Vec<(u64, usize)>,
}

impl Sim {
    fn new(delivery_timeout: Duration) -> Sim {
        let mut cfg = config(true, 600, 100_000);
        cfg.accumulator.delivery_timeout = delivery_timeout;
        cfg.retry_backoff = crate::state::backoff::ExponentialBackoff::new(
            Duration::from_millis(10),
            Duration::from_millis(50),
        );
        let mut state = SenderState::new(cfg);
        state.handle_producer_id(1, 0);
        Sim {
            state,
            now: Instant::now(),
            pending: Vec::new(),
            leaders: HashMap::new(),
            logs: HashMap::new(),
            outcomes: BTreeMap::new(),
            appended: Vec::new(),
            next_id: 0,
            fatal: false,
            too_large: Vec::new(),
            flushes: Vec::new(),
        }
    }

    /// A finished flush means every record appended before it has its outcome.
    fn check_flushes(&mut self) -> Result<(), String> {
        let mut still = Vec::new();
        for (marker, before) in std::mem::take(&mut self.flushes) {
            if self.state.flushed(marker) {
                self.state.end_flush();
                if let Some((id, _)) = self.appended[..before]
                    .iter()
                    .find(|(id, _)| !self.outcomes.contains_key(id))
                {
                    return Err(format!("flushed, but record {id} has no outcome"));
                }
            } else {
                still.push((marker, before));
            }
        }
        self.flushes = still;
        Ok(())
    }

    fn collect(&mut self) {
        for o in self.state.take_outcomes() {
            let r = o.result.map(|m| m.offset);
            self.outcomes.entry(o.delivery).or_default().push(r);
        }
    }

    fn poll(&mut self) {
        if let Some((_, epoch)) = self.state.poll_init_producer_id() {
            self.state.handle_producer_id(1, epoch + 1);
        }
        self.state.expire(self.now);
        let leaders = &self.leaders;
        let leader = |tp: &TopicPartition| Some(*leaders.get(&tp.partition).unwrap_or(&1));
        let tx = self.state.poll_requests(self.now, &leader);
        self.pending.extend(
            tx.requests
                .into_iter()
                .map(|plan| Pending { plan, result: None }),
        );
        self.collect();
    }

    /// The broker of `plan.node` processes it (with `fault`).
    fn process(&mut self, plan: &ProduceRequestPlan, fault: Fault) -> RequestResult {
        match fault {
            Fault::Unreachable => Err(Error::ConnectTimeout {
                broker: "b".into(),
                after: Duration::from_secs(10),
            }),
            Fault::NotSent => Err(Error::Io {
                broker: "b".into(),
                source: std::sync::Arc::new(std::io::Error::other("cut")),
            }),
            Fault::LostResponse => {
                let _ = self.write(plan);
                Err(Error::ConnectionClosed {
                    broker: "b".into(),
                    api: ApiKey::Produce,
                })
            }
            Fault::NotLeader | Fault::Fatal => {
                let code = if matches!(fault, Fault::Fatal) {
                    self.fatal = true;
                    ResponseError::InvalidRecord
                } else {
                    ResponseError::NotLeaderOrFollower
                };
                Ok(plan
                    .batches
                    .iter()
                    .map(|(tp, _)| (tp.clone(), refused(code)))
                    .collect())
            }
            Fault::None => Ok(self.write(plan)),
        }
    }

    fn write(&mut self, plan: &ProduceRequestPlan) -> Vec<(TopicPartition, PartitionResponse)> {
        plan.batches
            .iter()
            .map(|(tp, bytes)| {
                let leader = *self.leaders.get(&tp.partition).unwrap_or(&1);
                let answer = if leader == plan.node {
                    let limit = (tp.partition == LIMITED).then_some(MAX_MESSAGE_BYTES);
                    let log = self.logs.entry(tp.partition).or_default();
                    log.produce(bytes, limit, &mut self.too_large)
                } else {
                    refused(ResponseError::NotLeaderOrFollower)
                };
                (tp.clone(), answer)
            })
            .collect()
    }

    /// Delivers the result of pending request `pick` (any order: results reach the state in
    /// whatever order tasks run). A broker processes its requests in the order written, so
    /// the earlier requests to the same node are processed first, normally.
    fn respond(&mut self, pick: usize, fault: Fault) {
        let index = pick % self.pending.len();
        let node = self.pending[index].plan.node;
        for i in 0..index {
            if self.pending[i].plan.node == node && self.pending[i].result.is_none() {
                let plan = self.pending[i].plan.clone();
                let result = self.process(&plan, Fault::None);
                self.pending[i].result = Some(result);
            }
        }
        let Pending { plan, result } = self.pending.remove(index);
        let result = match (result, fault) {
            (None, fault) => self.process(&plan, fault),
            // Already written: only its response can be lost.
            (Some(_), Fault::LostResponse | Fault::NotSent | Fault::Unreachable) => {
                Err(Error::ConnectionClosed {
                    broker: "b".into(),
                    api: ApiKey::Produce,
                })
            }
            (Some(result), _) => result,
        };
        self.state.handle_result(self.now, plan.id, result);
        self.collect();
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Append { partition, len } => {
                let id = self.next_id;
                self.next_id += 1;
                // The id, then `len` bytes: batches of partition 2 are often too large for
                // its broker, and a record of about 230 bytes or more is too large alone.
                let mut value = id.to_be_bytes().to_vec();
                value.resize(8 + *len, b'x');
                let record = BufferedRecord::new(1_000, None, Some(Bytes::from(value)), id);
                if self.state.append(self.now, &tp(*partition), record).is_ok() {
                    self.appended.push((id, *partition));
                }
            }
            Op::Poll => self.poll(),
            Op::Respond { pick, fault } => {
                if !self.pending.is_empty() {
                    self.respond(*pick, *fault);
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(*ms),
            Op::Flush => {
                let marker = self.state.begin_flush();
                self.flushes.push((marker, self.appended.len()));
            }
            Op::MoveLeader(p) => {
                let node = self.leaders.entry(*p).or_insert(1);
                *node = 3 - *node;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_record_has_one_outcome_and_logs_keep_append_order(
        ops in prop::collection::vec(op(), 1..120),
        delivery_secs in prop_oneof![Just(120u64), Just(4u64)],
    ) {
        let mut sim = Sim::new(Duration::from_secs(delivery_secs));
        for op in &ops {
            sim.run(op);
            let checked = sim.state.check_invariants().and_then(|()| sim.check_flushes());
            prop_assert!(checked.is_ok(), "after {:?}: {:?}", op, checked);
        }
        // Heal: a well-behaved broker until everything is done.
        let mut rounds = 0;
        while !sim.state.is_idle() && rounds < 10_000 {
            rounds += 1;
            sim.now += Duration::from_millis(20);
            sim.poll();
            while !sim.pending.is_empty() {
                sim.respond(0, Fault::None);
            }
            let checked = sim.state.check_invariants();
            prop_assert!(checked.is_ok(), "healing: {:?}", checked);
        }
        prop_assert!(sim.state.is_idle(), "stuck: {:?}", sim.state.accumulator().batch_ids());
        let flushed = sim.check_flushes();
        prop_assert!(flushed.is_ok(), "{:?}", flushed);
        prop_assert!(sim.flushes.is_empty(), "a flush never ended");
        for (id, _) in &sim.appended {
            let n = sim.outcomes.get(id).map_or(0, Vec::len);
            prop_assert_eq!(n, 1, "record {} has {} outcomes", id, n);
        }
        prop_assert_eq!(sim.outcomes.len(), sim.appended.len());
        let bumped = sim.state.stats().epoch_bumps > 0;
        for (partition, log) in &sim.logs {
            // First occurrences are in append order; duplicates only after an epoch bump.
            let mut seen = std::collections::HashSet::new();
            let firsts: Vec<u64> = log.records.iter().copied().filter(|id| seen.insert(*id)).collect();
            let mut sorted = firsts.clone();
            sorted.sort_unstable();
            prop_assert_eq!(&firsts, &sorted, "partition {} out of order", partition);
            if !bumped {
                prop_assert_eq!(firsts.len(), log.records.len(), "duplicates without a bump");
            }
        }
        // A success names the record's real offset; a record that expired never sent is in
        // no log; without fatal errors, bumps or expiries, every record succeeded.
        for (id, partition) in &sim.appended {
            let outcome = &sim.outcomes[id][0];
            match outcome {
                Ok(offset) => {
                    if *offset >= 0 {
                        let log = &sim.logs[partition];
                        prop_assert_eq!(log.records.get(*offset as usize), Some(id));
                    }
                }
                Err(ProduceError::DeliveryTimeout { sent: false, .. }) => {
                    let written = sim.logs.get(partition).is_some_and(|l| l.records.contains(id));
                    prop_assert!(!written, "record {} expired as never sent but is in the log", id);
                }
                Err(ProduceError::DeliveryTimeout { sent: true, .. }) => {}
                Err(ProduceError::Broker { code: ResponseError::MessageTooLarge, .. }) => {
                    // Only a record refused alone: a larger batch is split, never failed.
                    prop_assert!(sim.too_large.contains(id), "record {} failed as too large", id);
                }
                Err(error) => {
                    prop_assert!(sim.fatal || bumped, "record {} failed: {:?}", id, error);
                }
            }
        }
        let stats = sim.state.stats();
        let expired = |sent: bool| {
            sim.outcomes.values().filter(|o| {
                matches!(&o[0], Err(ProduceError::DeliveryTimeout { sent: s, .. }) if *s == sent)
            }).count() as u64
        };
        prop_assert_eq!(stats.records_expired_unsent, expired(false));
        prop_assert_eq!(stats.records_expired_unknown, expired(true));
    }
}
