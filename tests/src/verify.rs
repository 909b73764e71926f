//! Independent read-back and exactly-once checks for producer suites.
//!
//! A test gives every record it sends an id, increasing in send order, carried in the record's
//! value as decimal text ([`value_of`]). After the producer flushed, [`read_back`] reads every
//! partition of the topic from offset 0 up to its high watermark with raw Fetch requests (its
//! own connections, straight to the brokers), and [`verify`] compares that log with what was
//! sent: records lost, extra copies, records out of send order within a partition, and records
//! found somewhere other than where their delivery report said.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafkit::admin::Admin;
use kafkit::Error;
use kafkit_wire::record::BatchReader;

/// A Fetch request for one partition from `offset`, naming the topic by id at Fetch v13+ and
/// by name before, as a reader outside the consumer (tests, tools) sends it.
pub fn fetch_one(
    topic: &str,
    topic_id: [u8; 16],
    partition: i32,
    offset: i64,
    version: i16,
    max_wait_ms: i32,
) -> FetchRequest {
    let mut t = FetchTopic::default().with_partitions(vec![FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_current_leader_epoch(-1)
        .with_last_fetched_epoch(-1)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(4 << 20)]);
    if version >= 13 {
        t.topic_id = uuid::Uuid::from_bytes(topic_id);
    } else {
        t.topic = TopicName(StrBytes::from_string(topic.to_owned()));
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(8 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![t])
}

/// The value a record with id `id` carries.
pub fn value_of(id: u64) -> String {
    id.to_string()
}

/// One record as the test sent it: its id, and the partition and offset its delivery report
/// gave (`None` when the test did not wait for reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The record's id (its value).
    pub id: u64,
    /// The partition its delivery report named.
    pub partition: i32,
    /// The offset its delivery report named, if the test has one.
    pub offset: Option<i64>,
}

/// A partition's log as read back: (offset, record id), in offset order.
pub type Log = HashMap<i32, Vec<(i64, u64)>>;

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Records sent.
    pub sent: usize,
    /// Records read back (copies included).
    pub read: usize,
    /// Ids sent but never read back.
    pub lost: Vec<u64>,
    /// Extra copies: records read back whose id was already read (anywhere).
    pub duplicated: usize,
    /// Records whose first copy comes after a record sent later, in the same partition.
    pub out_of_order: usize,
    /// Records read back in a partition or at an offset other than their delivery report's.
    pub misreported: usize,
    /// Records read back that the test never sent.
    pub unknown: usize,
}

impl Verdict {
    /// Every record exactly once, in send order per partition, where its report said.
    pub fn is_exact(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.misreported == 0
            && self.unknown == 0
            && self.read == self.sent
    }

    /// Panics with the verdict unless [`Verdict::is_exact`].
    pub fn assert_exact(&self) {
        assert!(
            self.is_exact(),
            "not exactly once in order: {} lost (first: {:?}), {} duplicated, {} out of order, \
             {} misreported, {} unknown; {} sent, {} read",
            self.lost.len(),
            self.lost.iter().take(10).collect::<Vec<_>>(),
            self.duplicated,
            self.out_of_order,
            self.misreported,
            self.unknown,
            self.sent,
            self.read
        );
    }
}

/// Compares the log read back with what was sent (ids increase in send order).
pub fn verify(sent: &[Sent], log: &Log) -> Verdict {
    let by_id: HashMap<u64, &Sent> = sent.iter().map(|s| (s.id, s)).collect();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut v = Verdict {
        sent: sent.len(),
        ..Verdict::default()
    };
    for (&p, records) in log {
        let mut highest: Option<u64> = None;
        for &(offset, id) in records {
            v.read += 1;
            let Some(s) = by_id.get(&id) else {
                v.unknown += 1;
                continue;
            };
            if !seen.insert(id) {
                v.duplicated += 1;
                continue;
            }
            if s.partition != p || s.offset.is_some_and(|o| o != offset) {
                v.misreported += 1;
            }
            if highest.is_some_and(|h| h > id) {
                v.out_of_order += 1;
            }
            highest = highest.max(Some(id));
        }
    }
    v.lost = sent
        .iter()
        .map(|s| s.id)
        .filter(|id| !seen.contains(id))
        .collect();
    v
}

/// Reads partitions `0..partitions` of `topic` from offset 0 to their high watermarks, through
/// a connection of its own to `bootstrap` (leaders are looked up again after every error, so a
/// cluster that just lost a broker is fine). Goes on until every id of `expect` is in and every
/// partition is read to its high watermark, or `timeout` passes (then returns what it has, so
/// that [`verify`] reports the missing records).
///
/// # Panics
/// When no connection to the cluster can be made.
pub async fn read_back(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expect: &[Sent],
    timeout: Duration,
) -> Log {
    let deadline = Instant::now() + timeout;
    let admin = Admin::connect(bootstrap).await.unwrap();
    let cluster = admin.cluster();
    let mut out: Log = HashMap::new();
    let mut next: HashMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let mut high: HashMap<i32, i64> = HashMap::new();
    let mut ids: HashSet<u64> = HashSet::new();
    loop {
        let caught_up = (0..partitions).all(|p| high.get(&p).is_some_and(|&h| next[&p] >= h));
        if caught_up && expect.iter().all(|s| ids.contains(&s.id)) {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!("read_back: deadline passed; returning what was read");
            break;
        }
        if cluster.refresh_metadata(Some(&[topic])).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for p in 0..partitions {
            if high.get(&p).is_some_and(|&h| next[&p] >= h) && caught_up {
                // Only re-read a caught-up partition when some record is still missing.
                high.remove(&p);
            }
            let (leader, topic_id) = {
                let m = cluster.metadata();
                (
                    m.leader(topic, p).map(|b| b.node_id),
                    m.topic(topic).map(|t| t.topic_id),
                )
            };
            let (Some(leader), Some(topic_id)) = (leader, topic_id) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(conn) = cluster.connection(leader).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(version) = conn.version(ApiKey::Fetch) else {
                continue;
            };
            let request = fetch_one(topic, topic_id, p, next[&p], version, 50);
            let Ok(response) = conn.send(&request, version, Duration::from_secs(10)).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            for part in response.responses.iter().flat_map(|t| &t.partitions) {
                if let Err(err) = Error::check(ApiKey::Fetch, part.error_code, None) {
                    assert!(err.is_retriable(), "fetch of partition {p}: {err}");
                    continue;
                }
                high.insert(p, part.high_watermark);
                let Some(records) = part.records.clone() else {
                    continue;
                };
                for batch in BatchReader::new(records) {
                    let batch = batch.unwrap();
                    let pos = next.get_mut(&p).unwrap();
                    if !batch.is_control() {
                        for r in batch.records() {
                            if r.offset < *pos {
                                continue;
                            }
                            *pos = r.offset + 1;
                            let value = r.value.as_deref().expect("a record without a value");
                            let id: u64 = std::str::from_utf8(value)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .unwrap_or_else(|| panic!("not a record id: {value:?}"));
                            ids.insert(id);
                            out.entry(p).or_default().push((r.offset, id));
                        }
                    }
                    // Every batch moves the position past its last offset, a control batch
                    // (transaction marker) too: a partition whose last batch is a marker is
                    // read to its high watermark, not re-fetched until the deadline.
                    *pos = (*pos).max(batch.header.next_offset());
                }
            }
        }
    }
    admin.cluster().close();
    out
}
