//! Random scripts (fetch rounds with lost responses and session errors, drains, seeks, pauses)
//! against a simulated broker that keeps KIP-227 sessions as Kafka does; every record must be
//! handed out exactly once and in order from the last seek, and everything must be read in the
//! end.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ListOffsetsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafkit_wire::record::{BatchBuilder, BatchOptions, RecordRef};
use proptest::prelude::*;

use super::{metadata, settings, tp, ID, TOPIC};
use crate::state::consumer::*;
use crate::state::group::OffsetAndMetadata;

const PARTITIONS: i32 = 3;

/// One partition's log: batches by base offset.
#[derive(Debug, Clone)]
struct Log {
    batches: Vec<(i64, i64, Bytes)>, // (base, next offset, bytes)
    end: i64,
}

fn build_log(batch_sizes: &[u8]) -> Log {
    let mut batches = Vec::new();
    let mut base = 0i64;
    for &n in batch_sizes {
        let n = i64::from(n.max(1));
        let mut buf = BytesMut::new();
        let mut b = BatchBuilder::new(&mut buf, base);
        for o in base..base + n {
            let v = format!("v{o}");
            b.append(&RecordRef::new(1, None, Some(v.as_bytes())))
                .unwrap();
        }
        b.finish(&BatchOptions::default(), &mut Vec::new()).unwrap();
        batches.push((base, base + n, buf.freeze()));
        base += n;
    }
    Log { batches, end: base }
}

impl Log {
    /// What a broker returns from `offset`: whole batches from the one holding it, at least
    /// one, up to `max` bytes.
    fn read(&self, offset: i64, max: usize) -> Bytes {
        let mut out = BytesMut::new();
        for (_, _, bytes) in self.batches.iter().filter(|(_, next, _)| *next > offset) {
            if !out.is_empty() && out.len() + bytes.len() > max {
                break;
            }
            out.extend_from_slice(bytes);
        }
        out.freeze()
    }
}

/// The broker's side of one node's fetch session.
#[derive(Debug, Default)]
struct BrokerSession {
    id: i32,
    next_epoch: i32,
    offsets: BTreeMap<i32, (i64, i32)>, // partition → (fetch offset, max bytes)
}

#[derive(Debug, Default)]
struct Broker {
    sessions: HashMap<i32, BrokerSession>,
    next_id: i32,
}

impl Broker {
    fn fetch(&mut self, node: i32, request: &FetchRequest, logs: &[Log]) -> FetchResponse {
        let session = self.sessions.entry(node).or_default();
        let full = request.session_epoch == 0;
        if full {
            self.next_id += 1;
            *session = BrokerSession {
                id: self.next_id,
                next_epoch: 1,
                offsets: BTreeMap::new(),
            };
        } else if request.session_id != session.id || request.session_epoch != session.next_epoch {
            return FetchResponse::default().with_error_code(71);
        } else {
            session.next_epoch += 1;
        }
        for t in &request.forgotten_topics_data {
            for p in &t.partitions {
                session.offsets.remove(p);
            }
        }
        for t in &request.topics {
            assert_eq!(t.topic_id, uuid::Uuid::from_bytes(ID));
            for p in &t.partitions {
                session
                    .offsets
                    .insert(p.partition, (p.fetch_offset, p.partition_max_bytes));
            }
        }
        let mut partitions = Vec::new();
        for (&p, &(offset, max)) in &session.offsets {
            let log = &logs[usize::try_from(p).unwrap()];
            let data = PartitionData::default()
                .with_partition_index(p)
                .with_high_watermark(log.end)
                .with_last_stable_offset(log.end);
            if offset > log.end || offset < 0 {
                partitions.push(data.with_error_code(1));
                continue;
            }
            let records = log.read(offset, usize::try_from(max).unwrap_or(0));
            if full || !records.is_empty() {
                partitions.push(data.with_records(Some(records)));
            }
        }
        FetchResponse::default()
            .with_session_id(session.id)
            .with_responses(vec![FetchableTopicResponse::default()
                .with_topic_id(uuid::Uuid::from_bytes(ID))
                .with_partitions(partitions)])
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Plan fetches and answer them: 0 = answered, 1 = lost, 2 = session lost on the broker.
    FetchRound(Vec<u8>),
    Drain(usize),
    Seek(i32, i64),
    Pause(i32),
    Resume(i32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)], 2)
            .prop_map(Op::FetchRound),
        4 => (1usize..40).prop_map(Op::Drain),
        1 => (0..PARTITIONS, 0i64..80).prop_map(|(p, o)| Op::Seek(p, o)),
        1 => (0..PARTITIONS).prop_map(Op::Pause),
        1 => (0..PARTITIONS).prop_map(Op::Resume),
    ]
}

struct Run {
    state: FetchState,
    broker: Broker,
    logs: Vec<Log>,
    metadata: crate::state::metadata::ClusterMetadata,
    now: Instant,
    /// The next offset each partition must hand out.
    expect: Vec<i64>,
}

impl Run {
    fn fetch_round(&mut self, faults: &[u8]) {
        self.now += Duration::from_millis(200); // past any backoff
        let lookups = self.state.poll_list_offsets(self.now, &self.metadata);
        for (token, request) in lookups {
            let topics = request
                .topics
                .iter()
                .map(|t| {
                    ListOffsetsTopicResponse::default()
                        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_offset(0) // earliest
                                })
                                .collect(),
                        )
                })
                .collect();
            self.state.handle_list_offsets(
                self.now,
                token,
                Ok(ListOffsetsResponse::default().with_topics(topics)),
            );
        }
        let fetches = self.state.poll_fetches(self.now, &self.metadata);
        for (i, (token, request)) in fetches.into_iter().enumerate() {
            match faults.get(i).copied().unwrap_or(0) {
                1 => self.state.handle_fetch_failure(self.now, token),
                2 => {
                    self.broker.sessions.remove(&token.node());
                    self.state.handle_fetch(
                        self.now,
                        token,
                        FetchResponse::default().with_error_code(70),
                    );
                }
                _ => {
                    let response = self.broker.fetch(token.node(), &request, &self.logs);
                    self.state.handle_fetch(self.now, token, response);
                }
            }
        }
    }

    fn drain(&mut self, max: usize) {
        let drained = self.state.drain(max);
        assert!(drained.error.is_none(), "{:?}", drained.error);
        assert!(drained.records.len() <= max);
        for r in drained.records {
            let p = usize::try_from(r.partition).unwrap();
            assert_eq!(
                r.offset, self.expect[p],
                "partition {} out of order",
                r.partition
            );
            assert_eq!(
                r.value.as_deref(),
                Some(format!("v{}", r.offset).as_bytes())
            );
            self.expect[p] += 1;
        }
        for p in 0..PARTITIONS {
            if let Some(pos) = self.state.position(&tp(p)) {
                assert!(pos.offset <= self.logs[usize::try_from(p).unwrap()].end.max(pos.offset));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_record_once_in_order_from_the_last_seek(
        sizes in proptest::collection::vec(proptest::collection::vec(1u8..8, 1..10), PARTITIONS as usize),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let logs: Vec<Log> = sizes.iter().map(|s| build_log(s)).collect();
        let mut state = FetchState::new(FetchSettings { partition_max_bytes: 200, prefetch_max_bytes: 600, ..settings() });
        state.add_assigned((0..PARTITIONS).map(|p| (tp(p), Some(OffsetAndMetadata::new(0)))).collect());
        let mut run = Run {
            state,
            broker: Broker::default(),
            logs,
            metadata: metadata(PARTITIONS),
            now: Instant::now(),
            expect: vec![0; PARTITIONS as usize],
        };
        for op in ops {
            match op {
                Op::FetchRound(faults) => run.fetch_round(&faults),
                Op::Drain(n) => run.drain(n),
                Op::Seek(p, o) => {
                    run.state.seek(&tp(p), FetchPosition::new(o)).unwrap();
                    let end = run.logs[usize::try_from(p).unwrap()].end;
                    // Past the end: OFFSET_OUT_OF_RANGE, then earliest (0).
                    run.expect[usize::try_from(p).unwrap()] = if o > end { 0 } else { o };
                }
                Op::Pause(p) => run.state.pause(&tp(p)).unwrap(),
                Op::Resume(p) => run.state.resume(&tp(p)).unwrap(),
            }
        }
        // Liveness: resumed, everything is read in a bounded number of rounds.
        for p in 0..PARTITIONS {
            run.state.resume(&tp(p)).unwrap();
        }
        for _ in 0..200 {
            run.fetch_round(&[]);
            run.drain(1000);
            if (0..PARTITIONS).all(|p| run.expect[usize::try_from(p).unwrap()] == run.logs[usize::try_from(p).unwrap()].end) {
                break;
            }
        }
        for p in 0..PARTITIONS {
            let end = run.logs[usize::try_from(p).unwrap()].end;
            prop_assert_eq!(run.expect[usize::try_from(p).unwrap()], end, "partition {} not read to the end", p);
            prop_assert_eq!(run.state.position(&tp(p)).map(|x| x.offset), Some(end));
        }
        prop_assert_eq!(run.state.buffered_bytes(), 0);
    }
}
