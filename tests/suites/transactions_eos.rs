//! Exactly-once end to end (#13), with a negative control that shows the check can fail, on
//! Kafka 4.2 (transactions v2, KIP-890) and on Kafka 3.9.1 (transactions v1): one scenario,
//! two tests, each with a cluster of its own (they may start at the same time). Every
//! transactional producer is checked to use the version its cluster offers.
//!
//! A dedicated 3-node cluster (replication factor 3, `min.insync.replicas` 2 for the topics,
//! `__consumer_offsets` and `__transaction_state`: `scripts/kafka.sh` sets the internal ones)
//! and a [`ProxyCluster`] in front of it. One input topic of 50,000 records (6 partitions, the
//! record id as decimal text in the value) is copied by two pipelines at the same time, each
//! with two members in a group of its own:
//!
//! - **transactional**: the loop users write over the public API — poll, begin, produce,
//!   `send_offsets_to_transaction` with the consumer's group metadata, commit; on an abortable
//!   error abort and seek back to the committed offsets; on a fatal one (or a failed abort) a
//!   new producer with the same `transactional.id`;
//! - **plain** (the negative control): the idempotent producer, then `commit_offsets_sync`
//!   once the records are acknowledged (at least once).
//!
//! Members are tokio tasks. While both pipelines run, the faults hit both: connections cut
//! through the proxy, responses lost after the broker carried the request out (EndTxn,
//! TxnOffsetCommit, OffsetCommit, Produce), the broker coordinating the transactional group
//! killed (`kill -9`) and later restarted, one member of each pipeline killed (its task
//! dropped: no leave, no abort) right after its records were acknowledged and before its
//! commit, and another killed at an arbitrary moment; each killed member is started again at
//! once with the same `transactional.id`, as a restarted process would be.
//!
//! The checker reads each output whole with `isolation.level=read_committed` and maps it back
//! to input ids: the transactional output must hold every id exactly once; the plain output
//! must hold duplicates (the kill between acknowledgement and commit makes them), so a checker
//! that cannot see duplicates fails the test. The transactional output is also read raw (every
//! batch and transaction marker, with Fetch at read_uncommitted) and its committed view rebuilt
//! by hand: it must equal what kafkit's `read_committed` consumer returned, leave no
//! transaction open, and hold aborted copies of some records (proof that the faults made the
//! pipeline redo work).

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::{ConsumeError, Consumer, ConsumerRecord};
use kafkit::io::coordinator::Coordinators;
use kafkit::producer::{
    ProduceError, Producer, ProducerRecord, TransactionError, TransactionPhase,
};
use kafkit::{Error, OffsetAndMetadata, TopicPartition};
use kafkit_tests::proxy::{LostResponse, ProxyCluster};
use kafkit_tests::{repo_root, start_broker, start_broker_version, unique_name, verify, Kafka};
use kafkit_wire::record::{BatchReader, ControlRecordType};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Input records (ids `0..INPUT`, record `id` on partition `id % PARTITIONS`).
const INPUT: u64 = 50_000;
const PARTITIONS: i32 = 6;
const MEMBERS: usize = 2;
/// How long the pipelines may take, faults included; every wait of a run ends by then (the
/// 4.2 and 3.9.1 runs share the machine).
const RUN: Duration = Duration::from_secs(300);
/// The timeout of each transactional call.
const CALL: Duration = Duration::from_secs(30);
/// No member is parked at the kill point.
const NONE: usize = usize::MAX;
/// How far (in committed input records) the control may run ahead of the transactional
/// pipeline.
const PACE: u64 = INPUT / 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// poll → begin → produce → send_offsets_to_transaction → commit.
    Transactional,
    /// poll → produce (idempotent) → acknowledged → commit_offsets_sync.
    Plain,
}

/// What a pipeline's members went through (for the report and the assertions).
#[derive(Debug, Default)]
struct Stats {
    committed: u64,
    aborted: u64,
    producers_recreated: u64,
    rewinds: u64,
    /// Batches failed with CONCURRENT_TRANSACTIONS (retriable: must be none).
    concurrent_transactions: u64,
    /// Errors seen, by kind (first text of each kind kept).
    errors: BTreeMap<String, (u64, String)>,
}

/// One pipeline: its topics, group, members' shared switches.
struct Pipeline {
    mode: Mode,
    /// The transaction protocol every transactional producer must use (KIP-890: 2 on Kafka
    /// 4.x, 1 on 3.9).
    txn_version: u8,
    /// Through the proxy.
    bootstrap: String,
    input: String,
    output: String,
    group: String,
    stop: AtomicBool,
    /// The index of the member to park at the kill point ([`NONE`]: none).
    kill_armed: AtomicUsize,
    /// Notified by the member that parked at the kill point.
    parked: Notify,
    stats: Mutex<Stats>,
    /// Why a member task gave up (a test failure).
    failures: Mutex<Vec<String>>,
    /// Input records the group committed, as last read by the test's progress task.
    progress: AtomicU64,
    /// The pipeline this one keeps pace with (the control runs no further ahead of the
    /// transactional one than [`PACE`], so that every fault hits both at the same stage).
    pace: Option<Arc<Pipeline>>,
}

impl Pipeline {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, kind: &str, error: &dyn std::fmt::Display) {
        let mut stats = self.stats();
        let entry = stats
            .errors
            .entry(kind.to_owned())
            .or_insert_with(|| (0, error.to_string()));
        entry.0 += 1;
    }

    /// Waits while this pipeline is more than [`PACE`] records ahead of the one it keeps pace
    /// with, unless a member of it is armed to park at the kill point: the test waits for
    /// that park while the other pipeline's parked member is killed and its group recovers
    /// (a session timeout and a rebalance), and pacing then held the armed member back past
    /// the test's wait for it (seen under CI load: "Plain member 1 never reached the kill
    /// point").
    async fn keep_pace(&self) {
        let Some(leader) = &self.pace else { return };
        while !self.stop.load(Ordering::Acquire)
            && self.kill_armed.load(Ordering::Acquire) == NONE
            && self.progress.load(Ordering::Acquire)
                > leader.progress.load(Ordering::Acquire) + PACE
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// After the records of a batch were acknowledged, before the commit: parks forever (until
    /// the test drops the task) when this member is the one armed.
    async fn kill_point(&self, index: usize) {
        if self
            .kill_armed
            .compare_exchange(index, NONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.parked.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

/// Why one batch did not commit.
#[derive(Debug)]
enum Step {
    Txn(TransactionError),
    Produce(ProduceError),
}

impl From<TransactionError> for Step {
    fn from(e: TransactionError) -> Self {
        Step::Txn(e)
    }
}

impl From<ProduceError> for Step {
    fn from(e: ProduceError) -> Self {
        Step::Produce(e)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Txn(e) => write!(f, "{e}"),
            Step::Produce(e) => write!(f, "{e}"),
        }
    }
}

impl Step {
    fn is_fatal(&self) -> bool {
        match self {
            Step::Txn(e) => e.is_fatal(),
            Step::Produce(ProduceError::Transaction(e)) => e.is_fatal(),
            Step::Produce(_) => false,
        }
    }

    fn kind(&self) -> String {
        let text = format!("{self:?}");
        let kind: String = text
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '(')
            .collect();
        format!("batch failed: {kind}")
    }
}

/// The next offset of every partition in `records` (what a commit of them sends).
fn next_offsets(records: &[ConsumerRecord]) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
    let mut out = BTreeMap::new();
    for r in records {
        let mut o = OffsetAndMetadata::new(r.offset + 1);
        if let Some(epoch) = r.leader_epoch {
            o = o.with_leader_epoch(epoch);
        }
        out.insert(TopicPartition::new(r.topic.to_string(), r.partition), o);
    }
    out
}

fn consumer_config(p: &Pipeline) -> ConsumerConfig {
    ConsumerConfig::from_properties([
        ("bootstrap.servers", p.bootstrap.as_str()),
        ("group.id", p.group.as_str()),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("isolation.level", "read_committed"),
        // The broker's minimum: a killed member's partitions move within ~6 s (the default,
        // 45 s, only makes the run longer).
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
    ])
    .expect("consumer config")
}

/// A new producer for member `index` (transactional: `init_transactions` done, which fences
/// every older producer with the same id and ends what it left open).
async fn new_producer(p: &Pipeline, index: usize, deadline: Instant) -> Result<Producer, String> {
    let mut builder = ProducerConfig::builder().bootstrap_servers(p.bootstrap.split(','));
    let txn_id = format!("{}-member-{index}", p.group);
    if p.mode == Mode::Transactional {
        builder = builder.transactional_id(&txn_id);
    }
    let config = builder
        .build()
        .map_err(|e| format!("producer config: {e}"))?;
    let producer = loop {
        match Producer::new(config.clone()).await {
            Ok(producer) => break producer,
            Err(e) if Instant::now() < deadline => {
                p.note("Producer::new", &e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("Producer::new: {e}")),
        }
    };
    if p.mode == Mode::Transactional {
        loop {
            match producer.init_transactions(Duration::from_secs(60)).await {
                Ok(()) => break,
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    p.note("init_transactions", &e);
                }
                Err(e) => return Err(format!("init_transactions of {txn_id}: {e}")),
            }
        }
        let version = producer.transaction_version();
        if version != Some(p.txn_version) {
            return Err(format!(
                "{txn_id} uses transactions {version:?}, expected v{}",
                p.txn_version
            ));
        }
    }
    Ok(producer)
}

/// Seeks every assigned partition back to the group's committed offset (OffsetFetch with
/// `require_stable`: waits out a transaction still completing), or to the beginning.
async fn rewind(p: &Pipeline, consumer: &Consumer, deadline: Instant) -> Result<(), String> {
    p.stats().rewinds += 1;
    loop {
        let assigned = consumer.assignment();
        if assigned.is_empty() {
            return Ok(());
        }
        match consumer.committed(&assigned).await {
            Ok(committed) => {
                for tp in &assigned {
                    // A partition revoked meanwhile is not assigned any more: nothing to do.
                    let _ = match committed.get(tp).cloned().flatten() {
                        Some(o) => consumer.seek(tp, o.offset),
                        None => consumer.seek_to_beginning(std::slice::from_ref(tp)),
                    };
                }
                return Ok(());
            }
            Err(e) if Instant::now() < deadline => {
                p.note("committed", &e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("committed offsets never came: {e}")),
        }
    }
}

/// One transaction: the records copied, the consumed offsets sent, commit.
async fn transact(
    p: &Pipeline,
    index: usize,
    consumer: &Consumer,
    producer: &Producer,
    records: &[ConsumerRecord],
) -> Result<(), Step> {
    producer.begin_transaction()?;
    let mut acks = Vec::with_capacity(records.len());
    for r in records {
        let out = ProducerRecord::new(p.output.as_str())
            .partition(r.partition)
            .value(r.value.clone().unwrap_or_default());
        acks.push(producer.send(out).await?);
    }
    for ack in acks {
        ack.await?;
    }
    let group = consumer.group_metadata().expect("group.id is set");
    producer
        .send_offsets_to_transaction(&next_offsets(records), &group)
        .await?;
    p.kill_point(index).await;
    let mut timeouts = 0;
    loop {
        match producer.commit_transaction(CALL).await {
            Ok(()) => return Ok(()),
            // The call's state is unchanged: commit again (the documented way on).
            Err(e) if e.is_retriable() && timeouts < 3 => {
                timeouts += 1;
                p.note("commit_transaction timeout", &e);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One at-least-once batch: the records copied and acknowledged, then the offsets committed.
async fn copy_plain(
    p: &Pipeline,
    index: usize,
    consumer: &Consumer,
    producer: &Producer,
    records: &[ConsumerRecord],
) -> Result<(), String> {
    let mut acks = Vec::with_capacity(records.len());
    for r in records {
        let out = ProducerRecord::new(p.output.as_str())
            .partition(r.partition)
            .value(r.value.clone().unwrap_or_default());
        acks.push(producer.send(out).await.map_err(|e| e.to_string())?);
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    p.kill_point(index).await;
    if let Err(e) = consumer.commit_offsets_sync(&next_offsets(records)).await {
        // The records are out; the next owner of the partition reads them again.
        p.note("commit_offsets_sync", &e);
    }
    Ok(())
}

/// A member: consume, copy, commit, until the pipeline stops.
async fn member(p: Arc<Pipeline>, index: usize) -> Result<(), String> {
    let deadline = Instant::now() + RUN;
    let consumer = loop {
        match Consumer::new(consumer_config(&p)).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                p.note("Consumer::new", &e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("Consumer::new: {e}")),
        }
    };
    consumer
        .subscribe([p.input.clone()])
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let mut producer = new_producer(&p, index, deadline).await?;
    while !p.stop.load(Ordering::Acquire) {
        if Instant::now() >= deadline {
            return Err(format!("member {index} still running at its deadline"));
        }
        p.keep_pace().await;
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(ConsumeError::Closed) => return Err("consumer closed".to_owned()),
            Err(e) => {
                p.note("poll", &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        match p.mode {
            Mode::Transactional => {
                let Err(step) = transact(&p, index, &consumer, &producer, &records).await else {
                    p.stats().committed += 1;
                    continue;
                };
                p.note(&step.kind(), &step);
                p.stats().aborted += 1;
                if matches!(
                    step,
                    Step::Produce(ProduceError::Broker {
                        code: ResponseError::ConcurrentTransactions,
                        ..
                    })
                ) {
                    p.stats().concurrent_transactions += 1;
                }
                let fatal = step.is_fatal()
                    || producer.transaction_phase() == Some(TransactionPhase::FatalError);
                let recreate = fatal || {
                    match producer.abort_transaction(CALL).await {
                        Ok(()) => false,
                        Err(e) => {
                            p.note("abort_transaction", &e);
                            true
                        }
                    }
                };
                if recreate {
                    let _ = producer.close(Duration::from_secs(1)).await;
                    producer = new_producer(&p, index, deadline).await?;
                    p.stats().producers_recreated += 1;
                }
                rewind(&p, &consumer, deadline).await?;
            }
            Mode::Plain => match copy_plain(&p, index, &consumer, &producer, &records).await {
                Ok(()) => p.stats().committed += 1,
                Err(e) => {
                    p.note("plain send", &e);
                    p.stats().aborted += 1;
                    rewind(&p, &consumer, deadline).await?;
                }
            },
        }
    }
    // Stopped between batches: nothing is open.
    let _ = producer.close(Duration::from_secs(5)).await;
    let _ = consumer.close(Duration::from_secs(5)).await;
    Ok(())
}

fn spawn_member(p: &Arc<Pipeline>, index: usize) -> JoinHandle<()> {
    let p = p.clone();
    tokio::spawn(async move {
        if let Err(e) = member(p.clone(), index).await {
            p.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{:?} member {index}: {e}", p.mode));
        }
    })
}

/// Kills member `index` (drops its task: no leave, no abort, as a crashed process) and starts
/// it again with the same `transactional.id`.
async fn kill_and_restart(p: &Arc<Pipeline>, members: &mut [JoinHandle<()>], index: usize) {
    members[index].abort();
    let _ = (&mut members[index]).await;
    members[index] = spawn_member(p, index);
}

fn kafka_sh(what: &str, dir: &std::path::Path, node: i32) -> bool {
    Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .arg(what)
        .arg(dir)
        .arg(node.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Input records committed by `group` (the sum of its committed offsets of `input`); `None`
/// when the coordinator did not answer.
async fn committed_count(admin: &Admin, group: &str, input: &str) -> Option<u64> {
    let offsets = admin.list_group_offsets(group).await.ok()?;
    Some(
        offsets
            .iter()
            .filter(|(tp, _)| tp.topic == input)
            .filter_map(|(_, o)| o.as_ref())
            .map(|o| u64::try_from(o.offset).unwrap_or(0))
            .sum(),
    )
}

/// Keeps every pipeline's `progress` up to date (every 250 ms) until `stop`.
async fn track_progress(admin: Admin, pipelines: Vec<Arc<Pipeline>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        for p in &pipelines {
            if let Some(n) = committed_count(&admin, &p.group, &p.input).await {
                p.progress.store(n, Ordering::Release);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    admin.close(Duration::from_secs(5)).await;
}

/// Waits until both pipelines committed at least `fraction` of the input (1.0: all of it);
/// panics with the members' failures, or at the deadline.
async fn wait_progress(pipelines: &[&Arc<Pipeline>], fraction: f64, deadline: Instant) {
    let target = (INPUT as f64 * fraction) as u64;
    loop {
        for p in pipelines {
            let failures = p.failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
            assert!(failures.is_empty(), "member failures: {failures:?}");
        }
        let progress: Vec<u64> = pipelines
            .iter()
            .map(|p| p.progress.load(Ordering::Acquire))
            .collect();
        if progress.iter().all(|&n| n >= target) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pipelines stuck below {target} committed records: {progress:?}; {:?}",
            pipelines
                .iter()
                .map(|p| (p.mode, format!("{:?}", p.stats())))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything kafkit's consumer reads from `topic` with `read_committed`, as record ids: up to
/// the last stable offset of every partition, and nothing more within 500 ms.
async fn read_committed_ids(bootstrap: &str, topic: &str) -> Vec<u64> {
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("fetch.max.wait.ms", "100"),
    ])
    .expect("config");
    let consumer = Consumer::new(config).await.expect("consumer");
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.to_owned(), p))
        .collect();
    consumer.assign(tps.clone()).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ids = Vec::new();
    let mut quiet_since: Option<Instant> = None;
    loop {
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(e) if e.is_retriable() => Vec::new(),
            Err(e) => panic!("read_committed read of {topic}: {e}"),
        };
        let got = !records.is_empty();
        ids.extend(records.iter().map(id_of));
        let caught_up = tps.iter().all(|tp| consumer.lag(tp) == Some(0));
        match (caught_up && !got, quiet_since) {
            (true, Some(t)) if t.elapsed() >= Duration::from_millis(500) => break,
            (true, None) => quiet_since = Some(Instant::now()),
            (true, Some(_)) => {}
            (false, _) => quiet_since = None,
        }
        assert!(
            Instant::now() < deadline,
            "read_committed read of {topic} not caught up after {} records",
            ids.len()
        );
    }
    consumer.close(Duration::from_secs(5)).await.ok();
    ids
}

fn id_of(r: &ConsumerRecord) -> u64 {
    let value = r.value.as_deref().expect("a record without a value");
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a record id: {value:?}"))
}

/// One entry of a partition's raw log.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Data {
        producer_id: i64,
        transactional: bool,
        id: u64,
    },
    Marker {
        producer_id: i64,
        commit: bool,
    },
}

/// Every batch of every partition of `topic`, read raw from offset 0 to the high watermark
/// (Fetch at read_uncommitted, straight to the leaders): data records with their producer id,
/// and the transaction markers.
async fn raw_log(bootstrap: &str, topic: &str) -> HashMap<i32, Vec<Entry>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let admin = Admin::connect(bootstrap).await.expect("admin");
    let cluster = admin.cluster();
    let mut out: HashMap<i32, Vec<Entry>> = HashMap::new();
    let mut next: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut high: HashMap<i32, i64> = HashMap::new();
    while !(0..PARTITIONS).all(|p| high.get(&p).is_some_and(|&h| next[&p] >= h)) {
        assert!(Instant::now() < deadline, "raw read of {topic} not done");
        if cluster.refresh_metadata(Some(&[topic])).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for p in 0..PARTITIONS {
            if high.get(&p).is_some_and(|&h| next[&p] >= h) {
                continue;
            }
            let (leader, topic_id) = {
                let m = cluster.metadata();
                (
                    m.leader(topic, p).map(|b| b.node_id),
                    m.topic(topic).map(|t| t.topic_id),
                )
            };
            let (Some(leader), Some(topic_id)) = (leader, topic_id) else {
                continue;
            };
            let Ok(conn) = cluster.connection(leader).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(version) = conn.version(ApiKey::Fetch) else {
                continue;
            };
            let request = verify::fetch_one(topic, topic_id, p, next[&p], version, 50);
            let Ok(response) = conn.send(&request, version, Duration::from_secs(10)).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            for part in response.responses.iter().flat_map(|t| &t.partitions) {
                if let Err(err) = Error::check(ApiKey::Fetch, part.error_code, None) {
                    assert!(err.is_retriable(), "raw fetch of partition {p}: {err}");
                    continue;
                }
                high.insert(p, part.high_watermark);
                let Some(records) = part.records.clone() else {
                    continue;
                };
                for batch in BatchReader::new(records) {
                    let batch = batch.expect("a decodable batch");
                    let pos = next.get_mut(&p).expect("partition");
                    if batch.header.last_offset() < *pos {
                        continue;
                    }
                    let producer_id = batch.header.producer_id;
                    let log = out.entry(p).or_default();
                    for c in batch.control_records() {
                        match c.kind {
                            ControlRecordType::Commit | ControlRecordType::Abort => {
                                log.push(Entry::Marker {
                                    producer_id,
                                    commit: c.kind == ControlRecordType::Commit,
                                })
                            }
                            ControlRecordType::Other(_) => {}
                        }
                    }
                    for r in batch.records() {
                        if r.offset < *pos {
                            continue;
                        }
                        let value = r.value.as_deref().expect("a record without a value");
                        let id = std::str::from_utf8(value)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or_else(|| panic!("not a record id: {value:?}"));
                        log.push(Entry::Data {
                            producer_id,
                            transactional: batch.header.attributes.transactional,
                            id,
                        });
                    }
                    // Control batches move the position too.
                    *pos = batch.header.next_offset();
                }
            }
        }
    }
    cluster.close();
    out
}

/// The raw log as a `read_committed` reader must see it, rebuilt by hand: (committed ids,
/// records in aborted transactions, records in transactions still open).
fn committed_view(log: &HashMap<i32, Vec<Entry>>) -> (Vec<u64>, usize, usize) {
    let mut committed = Vec::new();
    let mut aborted = 0;
    let mut open = 0;
    for entries in log.values() {
        let mut pending: HashMap<i64, Vec<u64>> = HashMap::new();
        for entry in entries {
            match *entry {
                Entry::Data {
                    transactional: false,
                    id,
                    ..
                } => committed.push(id),
                Entry::Data {
                    producer_id, id, ..
                } => pending.entry(producer_id).or_default().push(id),
                Entry::Marker {
                    producer_id,
                    commit,
                } => {
                    let ids = pending.remove(&producer_id).unwrap_or_default();
                    if commit {
                        committed.extend(ids);
                    } else {
                        aborted += ids.len();
                    }
                }
            }
        }
        open += pending.values().map(Vec::len).sum::<usize>();
    }
    (committed, aborted, open)
}

/// What the output holds, against the input ids `0..INPUT`.
#[derive(Debug, Default)]
struct Verdict {
    read: usize,
    missing: Vec<u64>,
    /// (id, copies) of every id read more than once.
    duplicated: Vec<(u64, usize)>,
    unknown: Vec<u64>,
}

impl Verdict {
    fn of(ids: &[u64]) -> Verdict {
        let mut copies: HashMap<u64, usize> = HashMap::new();
        let mut unknown = Vec::new();
        for &id in ids {
            if id < INPUT {
                *copies.entry(id).or_default() += 1;
            } else {
                unknown.push(id);
            }
        }
        let mut duplicated: Vec<(u64, usize)> = copies
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(&id, &n)| (id, n))
            .collect();
        duplicated.sort_unstable();
        Verdict {
            read: ids.len(),
            missing: (0..INPUT).filter(|id| !copies.contains_key(id)).collect(),
            duplicated,
            unknown,
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} read; {} missing (first {:?}); {} duplicated (first {:?}); {} unknown (first {:?})",
            self.read,
            self.missing.len(),
            &self.missing[..self.missing.len().min(20)],
            self.duplicated.len(),
            &self.duplicated[..self.duplicated.len().min(20)],
            self.unknown.len(),
            &self.unknown[..self.unknown.len().min(20)],
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_pipeline_copies_every_record_exactly_once_through_faults() {
    let started = Instant::now();
    exactly_once_through_faults(start_broker(3), "4.2", 2, started).await;
}

/// The same scenario on a 3-node Kafka 3.9.1 cluster: transactions v1 (AddPartitionsToTxn,
/// AddOffsetsToTxn, no epoch bump per transaction, Produce capped at v11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_pipeline_copies_every_record_exactly_once_through_faults_on_kafka_39() {
    let started = Instant::now();
    exactly_once_through_faults(start_broker_version("3.9.1", 3), "3.9.1", 1, started).await;
}

/// The scenario on `kafka` (a 3-node cluster of this test, Kafka `version`), whose producers
/// must use transactions `txn_version`.
async fn exactly_once_through_faults(
    kafka: Kafka,
    version: &str,
    txn_version: u8,
    started: Instant,
) {
    let dir = kafka.state_dir.clone().expect("a cluster of this process");
    let cluster_up = started.elapsed();
    let admin = Admin::connect(&kafka.bootstrap).await.expect("admin");
    let input = unique_name("eos-in");
    let outputs = [unique_name("eos-out-txn"), unique_name("eos-out-plain")];
    let topics: Vec<NewTopic> = std::iter::once(&input)
        .chain(&outputs)
        .map(|t| NewTopic::new(t, PARTITIONS, 3).config("min.insync.replicas", "2"))
        .collect();
    admin.create_topics(&topics).await.expect("topics");

    // The input: ids 0..INPUT, id on partition id % PARTITIONS.
    let fill = ProducerConfig::builder()
        .bootstrap_servers(kafka.bootstrap.split(','))
        .linger(Duration::from_millis(5))
        .build()
        .expect("config");
    let filler = Producer::new(fill).await.expect("producer");
    let mut acks = Vec::with_capacity(INPUT as usize);
    for id in 0..INPUT {
        let p = i32::try_from(id % PARTITIONS as u64).expect("partition");
        let record = ProducerRecord::new(input.as_str())
            .partition(p)
            .value(verify::value_of(id));
        acks.push(filler.send(record).await.expect("input record queued"));
    }
    for ack in acks {
        ack.await.expect("input record written");
    }
    filler.close(Duration::from_secs(10)).await.expect("close");
    let filled = started.elapsed();

    let proxy = ProxyCluster::start(&kafka.bootstrap).await;
    let pipeline = |mode: Mode, output: &str, pace: Option<Arc<Pipeline>>| {
        Arc::new(Pipeline {
            mode,
            txn_version,
            bootstrap: proxy.bootstrap(),
            input: input.clone(),
            output: output.to_owned(),
            group: unique_name(match mode {
                Mode::Transactional => "eos-txn",
                Mode::Plain => "eos-plain",
            }),
            stop: AtomicBool::new(false),
            kill_armed: AtomicUsize::new(NONE),
            parked: Notify::new(),
            stats: Mutex::new(Stats::default()),
            failures: Mutex::new(Vec::new()),
            progress: AtomicU64::new(0),
            pace,
        })
    };
    let txn = pipeline(Mode::Transactional, &outputs[0], None);
    let plain = pipeline(Mode::Plain, &outputs[1], Some(txn.clone()));
    let both = [&txn, &plain];
    let tracking = Arc::new(AtomicBool::new(false));
    let tracker = tokio::spawn(track_progress(
        Admin::connect(&kafka.bootstrap).await.expect("admin"),
        vec![txn.clone(), plain.clone()],
        tracking.clone(),
    ));
    let run_started = Instant::now();
    let deadline = run_started + RUN;
    let mut members: Vec<Vec<JoinHandle<()>>> = both
        .iter()
        .map(|p| (0..MEMBERS).map(|i| spawn_member(p, i)).collect())
        .collect();

    // The faults, each once both pipelines got that far.
    let mark = |what: String| eprintln!("eos {version}: {:>6.1?} {what}", run_started.elapsed());
    wait_progress(&both, 0.05, deadline).await;
    proxy.cut_all();
    mark("every connection cut".into());

    wait_progress(&both, 0.15, deadline).await;
    proxy.drop_response_of(ApiKey::EndTxn, 1, LostResponse::Cut);
    proxy.drop_response_of(ApiKey::OffsetCommit, 1, LostResponse::Cut);
    proxy.drop_response_of(ApiKey::Produce, 3, LostResponse::Cut);
    mark("next EndTxn, OffsetCommit and third Produce responses lost".into());

    wait_progress(&both, 0.25, deadline).await;
    let coordinators = Coordinators::new(admin.cluster().clone());
    let victim = coordinators
        .find(
            &[txn.group.as_str()],
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .expect("group coordinator")[&txn.group];
    assert!(kafka_sh("kill-node", &dir, victim), "kill-node {victim}");
    mark(format!(
        "node {victim} (the transactional group's coordinator) killed"
    ));

    wait_progress(&both, 0.35, deadline).await;
    proxy.cut_all();
    proxy.drop_response_of(ApiKey::TxnOffsetCommit, 1, LostResponse::Cut);
    mark("every connection cut; next TxnOffsetCommit response lost".into());

    wait_progress(&both, 0.45, deadline).await;
    for p in both {
        p.kill_armed.store(1, Ordering::Release);
    }
    for (p, handles) in both.iter().zip(members.iter_mut()) {
        let parked = tokio::time::timeout(Duration::from_secs(60), p.parked.notified()).await;
        assert!(
            parked.is_ok(),
            "{:?} member 1 never reached the kill point",
            p.mode
        );
        kill_and_restart(p, handles, 1).await;
    }
    mark("member 1 of each pipeline killed between acknowledgement and commit, restarted".into());

    wait_progress(&both, 0.55, deadline).await;
    let restart = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || kafka_sh("restart-node", &dir, victim))
    };
    mark(format!("node {victim} restarting"));

    wait_progress(&both, 0.7, deadline).await;
    for (p, handles) in both.iter().zip(members.iter_mut()) {
        kill_and_restart(p, handles, 0).await;
    }
    proxy.cut_all();
    mark(
        "member 0 of each pipeline killed at an arbitrary moment, restarted; connections cut"
            .into(),
    );

    wait_progress(&both, 1.0, deadline).await;
    let pipelines_done = run_started.elapsed();
    mark("every input record committed by both groups".into());
    for p in both {
        p.stop.store(true, Ordering::Release);
    }
    tracking.store(true, Ordering::Release);
    tracker.await.expect("progress task");
    for handles in members {
        for h in handles {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("member stops")
                .expect("member task");
        }
    }
    for p in both {
        let failures = p.failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(failures.is_empty(), "member failures: {failures:?}");
    }
    let restarted = tokio::time::timeout(Duration::from_secs(120), restart)
        .await
        .expect("restart-node within 120 s")
        .expect("restart task");
    let proxy_stats = proxy.stats();
    drop(proxy);

    // The checker.
    let txn_ids = read_committed_ids(&kafka.bootstrap, &txn.output).await;
    let plain_ids = read_committed_ids(&kafka.bootstrap, &plain.output).await;
    let txn_verdict = Verdict::of(&txn_ids);
    let plain_verdict = Verdict::of(&plain_ids);
    let raw = raw_log(&kafka.bootstrap, &txn.output).await;
    let (mut raw_committed, aborted_records, open_records) = committed_view(&raw);
    let raw_all: Vec<u64> = raw
        .values()
        .flatten()
        .filter_map(|e| match e {
            Entry::Data { id, .. } => Some(*id),
            Entry::Marker { .. } => None,
        })
        .collect();
    let raw_verdict = Verdict::of(&raw_all);
    eprintln!(
        "eos {version}: cluster up in {cluster_up:?}, {INPUT} input records in {:?}; pipelines done in \
         {pipelines_done:?}; total {:?}\n  transactional: {:?}\n    read_committed: {}\n    \
         raw log: {} records, {aborted_records} in aborted transactions, {open_records} in open \
         ones; read_uncommitted: {}\n  plain: {:?}\n    read_committed: {}\n  proxy: {} \
         connections, {} responses lost; node restarted: {restarted}",
        filled - cluster_up,
        started.elapsed(),
        txn.stats(),
        txn_verdict.summary(),
        raw_all.len(),
        raw_verdict.summary(),
        plain.stats(),
        plain_verdict.summary(),
        proxy_stats.connections_accepted,
        proxy_stats.responses_dropped,
    );
    kafka.stop();

    // Exactly once through read_committed.
    assert!(
        txn_verdict.missing.is_empty()
            && txn_verdict.duplicated.is_empty()
            && txn_verdict.unknown.is_empty()
            && txn_verdict.read == INPUT as usize,
        "transactional output not exactly once: {}",
        txn_verdict.summary()
    );
    // kafkit's read_committed agrees with the committed view rebuilt from the raw log.
    let mut kafkit_sorted = txn_ids.clone();
    kafkit_sorted.sort_unstable();
    raw_committed.sort_unstable();
    assert!(
        kafkit_sorted == raw_committed,
        "read_committed ({} records) differs from the raw log's committed view ({})",
        kafkit_sorted.len(),
        raw_committed.len()
    );
    assert_eq!(open_records, 0, "records of transactions never ended");
    // A send refused with CONCURRENT_TRANSACTIONS (the previous transaction still completing)
    // is retried, not turned into an abort.
    assert_eq!(
        txn.stats().concurrent_transactions,
        0,
        "sends failed with CONCURRENT_TRANSACTIONS"
    );
    // The faults made the pipeline redo work: aborted copies exist, filtered out.
    assert!(
        aborted_records > 0 && !raw_verdict.duplicated.is_empty(),
        "no aborted copies in the transactional output: the faults did not bite"
    );
    // The negative control: the same pipeline without transactions duplicates, and the
    // checker sees it (and loses nothing).
    assert!(
        plain_verdict.missing.is_empty() && plain_verdict.unknown.is_empty(),
        "plain output lost records: {}",
        plain_verdict.summary()
    );
    assert!(
        !plain_verdict.duplicated.is_empty(),
        "the negative control shows no duplicates: the fault schedule is too weak ({})",
        plain_verdict.summary()
    );
    assert!(restarted, "node {victim} did not restart");
}
