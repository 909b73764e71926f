//! The producer: [`Producer`] sends [`ProducerRecord`]s and tells each caller where its
//! record landed ([`RecordMetadata`]) or why it did not ([`ProduceError`]).
//!
//! Idempotent by default (`enable.idempotence=true`, `acks=all`, at most 5 requests in flight
//! per connection), as the Java client is: retries never duplicate or reorder records of a
//! partition. See `DESIGN.md` ("How a record flows") for the path of a record.

mod clock;
mod delivery;
mod error;
mod header;
mod metrics;
mod record;
mod topic;
pub(crate) mod transaction;
pub(crate) mod transaction_coordinator;
mod transaction_error;

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use tracing::info;

pub use crate::state::producer::TransactionPhase;
pub(crate) use clock::{WallClock, RESYNC_EVERY};
pub use delivery::DeliveryFuture;
pub(crate) use delivery::{deliver_all, deliver_drain, Delivery};
pub use error::ProduceError;
pub use header::HeaderName;
pub use kafkit_wire::record::HeaderBlock;
pub use metrics::ProducerMetrics;
pub use record::{ProducerRecord, RecordMetadata};
pub use topic::Topic;
pub use transaction::ConsumerGroupMetadata;
pub use transaction_error::TransactionError;

use crate::config::{ConfigError, ProducerConfig};
use crate::error::Error;
use crate::io::cluster::{Cluster, ClusterConfig};
use crate::io::producer::{self as sender, Core, SenderSettings, Shared};
use crate::state::partitioner::{
    choose_partition, usable_partitions, DefaultPartitioner, PartitionError, RecordInfo,
    TopicPartitions,
};
use crate::state::producer::{
    max_buffered_size, AccumulatorConfig, BufferedRecord, SenderConfig, SenderState, TopicPartition,
};
use crate::state::rng::XorShift64Star;
use kafkit_wire::record::headers_size;

/// The record's upper-bound size in a batch (what `buffer.memory` reserves), and its own
/// headers' encoded size (its header block's not included: the block knows its own): the one
/// walk over the headers, kept with the record from here on.
fn record_max_size(record: &ProducerRecord) -> (usize, usize) {
    let headers = headers_size(&record.headers);
    let all = headers.saturating_add(record.header_block.as_ref().map_or(0, HeaderBlock::size));
    let max = max_buffered_size(record.key.as_deref(), record.value.as_deref(), all);
    (max, headers)
}

/// An async Kafka producer. Cheap to clone (all clones share one sender task); `Send + Sync`.
///
/// Every record accepted by [`send`](Producer::send) or [`try_send`](Producer::try_send)
/// gets exactly one outcome through its [`DeliveryFuture`]: its metadata, or a typed error —
/// also on [`close`](Producer::close), on `delivery.timeout.ms`, and when the last clone is
/// dropped ([`ProduceError::Closed`]).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use kafkit::config::ProducerConfig;
/// use kafkit::producer::{Producer, ProducerRecord};
///
/// let config = ProducerConfig::builder()
///     .bootstrap_servers(["127.0.0.1:9092"])
///     .linger(Duration::from_millis(5))
///     .build()?;
/// let producer = Producer::new(config).await?;
/// let delivery = producer
///     .send(ProducerRecord::new("orders").key("customer-7").value("{\"total\": 12}"))
///     .await?;
/// let metadata = delivery.await?;
/// println!("written to {}-{} at offset {}", metadata.topic, metadata.partition, metadata.offset);
/// producer.close(Duration::from_secs(30)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    cluster: Cluster,
    config: ProducerConfig,
    /// The transaction coordinator of `transactional.id`, if any.
    txn: Option<Arc<transaction::TxnCoordinator>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // The last clone is gone: the sender task fails what is left with `Closed` and stops.
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

fn cluster_config(config: &ProducerConfig) -> ClusterConfig {
    let mut cluster = ClusterConfig::from_client_config(config.client());
    if config.client().client_id().is_none() {
        cluster.connection.client_id = Some("kafkit-producer".to_owned());
    }
    // As Java's producer: the broker creates a missing topic when its
    // `auto.create.topics.enable` says so.
    cluster.allow_auto_topic_creation = true;
    cluster.bootstrap_timeout = config.max_block();
    cluster
}

fn sender_config(config: &ProducerConfig) -> SenderConfig {
    let client = config.client();
    SenderConfig {
        accumulator: AccumulatorConfig {
            batch_size: config.batch_size(),
            linger: config.linger(),
            delivery_timeout: config.delivery_timeout(),
            max_request_size: config.max_request_size(),
        },
        idempotent: config.enable_idempotence(),
        max_in_flight: usize::try_from(config.max_in_flight_requests_per_connection())
            .unwrap_or(5)
            .max(1),
        retries: config.retries(),
        retry_backoff: client.retry_backoff_policy(),
        compression: config.compression(),
        compression_level: config.compression_level(),
    }
}

impl Producer {
    /// Connects to the cluster and, when idempotent, gets a producer id (InitProducerId);
    /// all within `max.block.ms`.
    ///
    /// A bootstrap broker that is not reachable yet (a service starting before its cluster)
    /// is retried with the reconnect backoff until `max.block.ms` passes; then this fails
    /// with the last attempt's error, naming the address. A bootstrap list none of whose host
    /// names resolves fails with [`Error::BootstrapUnresolvable`] at once, or, with
    /// `bootstrap.resolve.timeout.ms` set (KIP-909), once the names have been looked up again
    /// for that long (and at most `max.block.ms`).
    ///
    /// With a `transactional.id` the producer is transactional: call
    /// [`init_transactions`](Producer::init_transactions) before anything else; every record
    /// is then sent inside a transaction (a `send` outside one is refused with
    /// [`ProduceError::Transaction`]).
    pub async fn new(config: ProducerConfig) -> Result<Producer, Error> {
        if config.transactional_id().is_some() && !config.enable_idempotence() {
            return Err(Error::Config(ConfigError::invalid(
                "enable.idempotence",
                "false",
                "a transactional.id needs idempotence",
            )));
        }
        let started = Instant::now();
        let deadline = started + config.max_block();
        config.refuse_unbuilt().map_err(Error::Config)?;
        let cluster = Cluster::connect(cluster_config(&config)).await?;
        match tokio::time::timeout_at(deadline.into(), Self::start(config, &cluster)).await {
            Ok(Ok(producer)) => Ok(producer),
            Ok(Err(err)) => {
                cluster.close();
                Err(err)
            }
            Err(_) => {
                cluster.close();
                Err(Error::ConnectTimeout {
                    broker: cluster.config().bootstrap.join(","),
                    after: started.elapsed(),
                })
            }
        }
    }

    async fn start(config: ProducerConfig, cluster: &Cluster) -> Result<Producer, Error> {
        let cluster = cluster.clone();
        let mut state = SenderState::new(sender_config(&config));
        let client = config.client();
        let txn_v2 = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let txn = config.transactional_id().map(|id| {
            state.enable_transactions(id);
            Arc::new(transaction::TxnCoordinator::new(
                cluster.clone(),
                id.to_owned(),
                client.retry_backoff(),
                client.retry_backoff_max(),
                txn_v2.clone(),
            ))
        });
        if txn.is_none() && config.enable_idempotence() {
            let timeout = config.client().request_timeout();
            let backoff = config.client().retry_backoff();
            let (id, epoch) = loop {
                match sender::init_producer_id(&cluster, (-1, -1), timeout).await {
                    Ok(pair) => break pair,
                    Err(err) if err.is_retriable() => tokio::time::sleep(backoff).await,
                    Err(err) => return Err(err),
                }
            };
            info!(producer_id = id, epoch, "idempotent producer ready");
            state.handle_producer_id(id, epoch);
        }
        let buffer = usize::try_from(config.buffer_memory()).unwrap_or(usize::MAX);
        let partitioner = DefaultPartitioner::from_config(&config, XorShift64Star::from_entropy());
        let shared = Arc::new(Shared::new(state, partitioner, buffer));
        let client = config.client();
        let settings = SenderSettings {
            acks: config.acks().as_i16(),
            request_timeout: client.request_timeout(),
            retry_backoff: client.retry_backoff(),
            retry_backoff_max: client.retry_backoff_max(),
            metadata_max_age: client.metadata_max_age(),
            transactional_id: config.transactional_id().map(str::to_owned),
            txn_v2,
        };
        tokio::spawn(sender::run(
            shared.clone(),
            cluster.clone(),
            settings,
            txn.clone(),
        ));
        Ok(Producer {
            handle: Arc::new(Handle {
                shared,
                cluster,
                config,
                txn,
            }),
        })
    }

    /// Queues `record`, waiting up to `max.block.ms` for its topic's metadata and for
    /// `buffer.memory`. The returned future resolves once the record is acknowledged or has
    /// failed.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        // The fast path (metadata known, memory free): one clock read and one lock per record.
        let started = Instant::now();
        let (size, headers_size) = record_max_size(&record);
        let size = self.check_record(&record, size)?;
        if let Some((core, partitions)) = self.fast_path(&record.topic, size)? {
            return self.enqueue(core, started, record, partitions, size, headers_size);
        }
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let buffer = &self.handle.shared.buffer;
        let mut now = started;
        let max_block = self.handle.config.max_block();
        let partitions = match self.record_partitions(&record.topic) {
            Some(n) => n,
            None => {
                let n = self.partitions(&record.topic, started + max_block).await?;
                now = Instant::now();
                n
            }
        };
        match buffer.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(ProduceError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let acquire = buffer.acquire_many(permits);
                match tokio::time::timeout_at((started + max_block).into(), acquire).await {
                    Ok(Ok(permit)) => permit.forget(),
                    Ok(Err(_)) => return Err(ProduceError::Closed),
                    Err(_) => return Err(ProduceError::BufferExhausted { waited: max_block }),
                }
                now = Instant::now();
            }
        }
        let core = self.handle.shared.lock();
        self.enqueue(core, now, record, partitions, size, headers_size)
    }

    /// Like [`send`](Producer::send), but fails at once (no wait) when the topic's metadata is
    /// not known yet ([`ProduceError::UnknownTopic`]) or `buffer.memory` is full
    /// ([`ProduceError::BufferExhausted`]).
    pub fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let (size, headers_size) = record_max_size(&record);
        let size = self.check_record(&record, size)?;
        if let Some((core, partitions)) = self.fast_path(&record.topic, size)? {
            let now = Instant::now();
            return self.enqueue(core, now, record, partitions, size, headers_size);
        }
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let buffer = &self.handle.shared.buffer;
        let partitions =
            self.record_partitions(&record.topic)
                .ok_or_else(|| ProduceError::UnknownTopic {
                    topic: record.topic.to_string(),
                    waited: Duration::ZERO,
                })?;
        match buffer.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(ProduceError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                return Err(ProduceError::BufferExhausted {
                    waited: Duration::ZERO,
                })
            }
        }
        let core = self.handle.shared.lock();
        self.enqueue(core, Instant::now(), record, partitions, size, headers_size)
    }

    /// The fast path of a send: `size` bytes of `buffer.memory` taken at once and the
    /// partition count of `topic` cached, returned with the lock held (the send's one lock).
    /// `None` (nothing taken) sends the record the slow way; `Err` only once closed.
    fn fast_path(
        &self,
        topic: &Topic,
        size: usize,
    ) -> Result<Option<(MutexGuard<'_, Core>, u32)>, ProduceError> {
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let buffer = &self.handle.shared.buffer;
        match buffer.try_acquire_many(permits) {
            Ok(permit) => {
                permit.forget();
                let core = self.handle.shared.lock();
                if let Some(partitions) = self.cached_partitions(&core, topic) {
                    return Ok(Some((core, partitions)));
                }
                drop(core);
                buffer.add_permits(size);
                Ok(None)
            }
            Err(tokio::sync::TryAcquireError::Closed) => Err(ProduceError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => Ok(None),
        }
    }

    /// The partition count of `topic` when it is the last topic seen under the current
    /// metadata (read under `core`, the lock a send takes once); `None` means a metadata
    /// lookup, made outside that lock ([`Producer::record_partitions`]).
    fn cached_partitions(&self, core: &Core, topic: &Topic) -> Option<u32> {
        let generation = self.handle.cluster.metadata_generation();
        match &core.last_topic {
            Some((t, g, n)) if *g == generation && Arc::ptr_eq(t.as_arc(), topic.as_arc()) => {
                Some(*n)
            }
            _ => None,
        }
    }

    /// Refuses a record that can never be produced (before anything is reserved for it): a
    /// negative timestamp, or a size (`size`, with batch overhead) over `max.request.size` or
    /// `buffer.memory`.
    fn check_record(&self, record: &ProducerRecord, size: usize) -> Result<usize, ProduceError> {
        if let Some(timestamp) = record.timestamp.filter(|t| *t < 0) {
            return Err(ProduceError::InvalidTimestamp { timestamp });
        }
        let config = &self.handle.config;
        let max = config.max_request_size();
        if size > max {
            return Err(ProduceError::RecordTooLarge { size, max });
        }
        let memory = usize::try_from(config.buffer_memory()).unwrap_or(usize::MAX);
        if size > memory {
            return Err(ProduceError::RecordTooLarge { size, max: memory });
        }
        Ok(size)
    }

    fn known_partitions(&self, topic: &str) -> Option<u32> {
        self.handle
            .cluster
            .metadata()
            .partition_count(topic)
            .and_then(|n| u32::try_from(n).ok())
    }

    /// [`known_partitions`](Self::known_partitions) of a record's topic, remembered for the
    /// next record of the same topic while the metadata does not change
    /// ([`Producer::cached_partitions`] reads it).
    fn record_partitions(&self, topic: &Topic) -> Option<u32> {
        let generation = self.handle.cluster.metadata_generation();
        // Looked up before the state lock is taken (metadata may be read under it, never the
        // other way round), which is then held only to store the answer.
        let n = self.known_partitions(topic)?;
        self.handle.shared.lock().last_topic = Some((topic.clone(), generation, n));
        Some(n)
    }

    /// The topic's partition count, refreshing metadata until `deadline`.
    async fn partitions(&self, topic: &str, deadline: Instant) -> Result<u32, ProduceError> {
        let started = Instant::now();
        let backoff = self.handle.config.client().retry_backoff();
        loop {
            if let Some(n) = self.known_partitions(topic) {
                return Ok(n);
            }
            if self.handle.shared.stopped.load(Ordering::Acquire) {
                return Err(ProduceError::Closed);
            }
            let topics = [topic];
            let refresh = self.handle.cluster.refresh_metadata(Some(&topics));
            let _ = tokio::time::timeout_at(deadline.into(), refresh).await;
            if let Some(n) = self.known_partitions(topic) {
                return Ok(n);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProduceError::UnknownTopic {
                    topic: topic.to_owned(),
                    waited: now.saturating_duration_since(started),
                });
            }
            tokio::time::sleep_until(deadline.min(now + backoff).into()).await;
        }
    }

    /// Chooses the record's partition and appends it, under `core` (the one lock of a send).
    fn enqueue(
        &self,
        mut core: MutexGuard<'_, Core>,
        now: Instant,
        record: ProducerRecord,
        partitions: u32,
        reserved: usize,
        headers_size: usize,
    ) -> Result<DeliveryFuture, ProduceError> {
        let shared = &self.handle.shared;
        let (state, partitioner) = core.parts();
        let release = |e: ProduceError| {
            shared.buffer.add_permits(reserved);
            e
        };
        let ProducerRecord {
            topic: topic_name,
            partition: explicit,
            key,
            value,
            headers,
            header_block,
            timestamp,
        } = record;
        let invalid = || ProduceError::InvalidPartition {
            topic: topic_name.to_string(),
            partition: explicit.unwrap_or(-1),
            partition_count: partitions,
        };
        // A keyless record (or any without an explicit partition when keys are ignored) goes
        // to its topic's sticky partition: the topic is looked up once, and its slot serves
        // the choice and the count after the append.
        let sticky = (explicit.is_none() && (key.is_none() || partitioner.ignore_keys()))
            .then(|| partitioner.sticky_slot(&topic_name));
        let partition = if let Some(slot) = sticky {
            // A new sticky partition is about to be drawn: among partitions with a leader,
            // weighted by their queue lengths (adaptive partitioning), as the Java client does.
            let available = if partitioner.sticky_current(slot).is_none() {
                self.load_stats(&topic_name, partitions, state, partitioner)
            } else {
                Vec::new()
            };
            let topic = if available.is_empty() {
                TopicPartitions::all_available(partitions)
            } else {
                TopicPartitions::new(partitions, &available)
            };
            partitioner
                .sticky_choose(slot, &topic)
                .filter(|&p| p < partitions)
                .ok_or_else(|| release(invalid()))?
        } else {
            let mut info = RecordInfo::new(&topic_name);
            if let Some(key) = key.as_deref() {
                info = info.with_key(key);
            }
            if let Some(value) = value.as_deref() {
                info = info.with_value(value);
            }
            if let Some(p) = explicit {
                info = info.with_partition(u32::try_from(p).unwrap_or(u32::MAX));
            }
            let all = TopicPartitions::all_available(partitions);
            choose_partition(&mut *partitioner, &info, &all)
                .map_err(|_: PartitionError| release(invalid()))?
        };
        // The key and value are encoded into the batch (one copy) and dropped.
        let timestamp = timestamp.unwrap_or_else(|| shared.clock.millis_at(now));
        let buffered = BufferedRecord {
            timestamp,
            key,
            value,
            headers,
            headers_size,
            header_block,
            delivery: (),
            reserved,
        };
        let tp = TopicPartition::new(
            topic_name.as_arc().clone(),
            i32::try_from(partition).unwrap_or(0),
        );
        let mut future = None;
        let appended = state
            .append_with(now, &tp, buffered, |previous, index| {
                let (delivery, f) = Delivery::for_slot(previous, index, timestamp);
                future = Some(f);
                delivery
            })
            .map_err(release)?;
        let Some(future) = future else {
            return Err(release(ProduceError::Closed)); // appended without a handle: not reached
        };
        // The default partitioner's `on_append` counts sticky records only.
        if let Some(slot) = sticky {
            partitioner.sticky_appended(slot, partition, reserved, appended.batch_full);
        }
        drop(core);
        if appended.new_batch || appended.batch_full {
            shared.wake.notify_one();
        }
        Ok(future)
    }

    /// The partitions of `topic` with a known leader; feeds their queue lengths (batches) to
    /// the partitioner.
    fn load_stats(
        &self,
        topic: &str,
        partitions: u32,
        state: &SenderState<Delivery>,
        partitioner: &mut DefaultPartitioner<XorShift64Star>,
    ) -> Vec<u32> {
        let config = &self.handle.config;
        // `partitioner.availability.timeout.ms` (adaptive partitioning only): a leader whose
        // batches waited longer than that without progress is skipped.
        let timeout = if config.partitioner_adaptive_partitioning() {
            config.partitioner_availability_timeout()
        } else {
            Duration::ZERO
        };
        // The topic is looked up once in the metadata and once (a range) in the accumulator:
        // this runs at every sticky switch, over every partition of the topic.
        let leaders: Vec<(u32, i32)> = {
            let metadata = self.handle.cluster.metadata();
            metadata
                .topic(topic)
                .map(|info| {
                    (0..partitions)
                        .zip(&info.partitions)
                        .filter_map(|(p, part)| {
                            let leader = part.leader?;
                            metadata.broker(leader)?;
                            Some((p, leader))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let available = usable_partitions(&leaders, state.node_latency(), timeout);
        let mut queued = vec![0u32; usize::try_from(partitions).unwrap_or(0)];
        for (p, batches) in state.accumulator().queued_batches(topic) {
            if let Some(slot) = usize::try_from(p).ok().and_then(|p| queued.get_mut(p)) {
                *slot = u32::try_from(batches).unwrap_or(u32::MAX);
            }
        }
        let queues: Vec<(u32, u32)> = available
            .iter()
            .map(|&p| {
                let n = usize::try_from(p).ok().and_then(|p| queued.get(p));
                (p, n.copied().unwrap_or(0))
            })
            .collect();
        partitioner.update_load_stats(topic, &queues, partitions);
        available
    }

    /// Sends everything queued now (ignoring `linger.ms`) and waits until every record sent
    /// before the call has its outcome.
    pub async fn flush(&self) -> Result<(), Error> {
        let shared = &self.handle.shared;
        let marker = shared.lock().begin_flush();
        shared.wake.notify_one();
        loop {
            let progress = shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if shared.lock().flushed(marker) || shared.stopped.load(Ordering::Acquire) {
                break;
            }
            progress.await;
        }
        shared.lock().end_flush();
        Ok(())
    }

    /// Stops accepting records, sends what is queued and waits up to `timeout` for every
    /// outcome; records still without one then fail with [`ProduceError::Closed`] (a record
    /// whose request was already written may nevertheless be in the log). Then shuts the
    /// connections down gracefully within the same `timeout` (other requests outstanding may
    /// finish; returns once every socket task has ended). Other clones fail their sends with
    /// [`ProduceError::Closed`] afterwards.
    pub async fn close(&self, timeout: Duration) -> Result<(), Error> {
        let shared = &self.handle.shared;
        shared.lock().close();
        shared.wake.notify_one();
        let deadline = Instant::now() + timeout;
        loop {
            let progress = shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if shared.lock().is_idle() || shared.stopped.load(Ordering::Acquire) {
                break;
            }
            if tokio::time::timeout_at(deadline.into(), progress)
                .await
                .is_err()
            {
                let outcomes = {
                    let mut state = shared.lock();
                    state.abort(&ProduceError::Closed);
                    state.take_completions()
                };
                shared.deliver(outcomes);
                break;
            }
        }
        shared.shutdown.store(true, Ordering::Release);
        shared.wake.notify_one();
        shared.buffer.close();
        // The sender task stops (nothing is left for it) before the connections go, so that
        // it starts nothing new on them; bounded by the same deadline.
        loop {
            let progress = shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if shared.stopped.load(Ordering::Acquire) {
                break;
            }
            if tokio::time::timeout_at(deadline.into(), progress)
                .await
                .is_err()
            {
                break;
            }
        }
        // Requests still outstanding (a metadata refresh, an InitProducerId) may finish until
        // the deadline; then every connection closes and its socket tasks end.
        self.handle.cluster.shutdown(deadline).await;
        info!("producer closed");
        Ok(())
    }

    /// A snapshot of the producer's counters.
    pub fn metrics(&self) -> ProducerMetrics {
        let shared = &self.handle.shared;
        let c = &shared.counters;
        let memory = usize::try_from(self.handle.config.buffer_memory()).unwrap_or(usize::MAX);
        ProducerMetrics {
            records_sent: c.records_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            records_failed: c.records_failed.load(Ordering::Relaxed),
            records_expired_unsent: c.records_expired_unsent.load(Ordering::Relaxed),
            records_expired_unknown: c.records_expired_unknown.load(Ordering::Relaxed),
            batches_sent: c.batches_sent.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            epoch_bumps: c.epoch_bumps.load(Ordering::Relaxed),
            batch_splits: c.batch_splits.load(Ordering::Relaxed),
            requests_in_flight: c.requests_in_flight.load(Ordering::Relaxed),
            buffer_used: memory
                .min(tokio::sync::Semaphore::MAX_PERMITS)
                .saturating_sub(shared.buffer.available_permits()) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}

    #[test]
    fn handles_cross_tasks() {
        shareable::<Producer>();
        shareable::<ProduceError>();
        sendable::<DeliveryFuture>();
    }

    /// Type-checked, never run: `send`'s future can move across threads (the state lock it
    /// takes is released before any await).
    #[allow(dead_code)]
    fn send_futures_are_send(producer: &Producer, record: ProducerRecord) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&producer.send(record));
    }

    #[tokio::test]
    async fn new_fails_within_max_block_when_no_broker_answers() {
        let config = ProducerConfig::builder()
            .bootstrap_servers(["127.0.0.1:1"])
            .max_block(Duration::from_millis(300))
            .build();
        let Ok(config) = config else {
            panic!("config");
        };
        let started = Instant::now();
        assert!(Producer::new(config).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
