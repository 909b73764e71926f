//! Choosing the partition of a record: the [`Partitioner`] trait and the Java client's default
//! rule, [`DefaultPartitioner`]: explicit partition > key hash > sticky.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;

use super::murmur2::partition_for_key;
use super::name_hash::NameHash;
use super::producer::NodeLatency;
use super::rng::RandomSource;
use super::sticky::StickyPartitioner;
use crate::config::ProducerConfig;

pub use super::sticky::TopicPartitions;

/// What a partitioner may look at in a record: its topic, the partition the application asked
/// for (if any), and the serialized key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordInfo<'a> {
    /// The topic the record is produced to.
    pub topic: &'a str,
    /// The partition set explicitly on the record, if any.
    pub partition: Option<u32>,
    /// The serialized key; `None` for a record without a key.
    pub key: Option<&'a [u8]>,
    /// The serialized value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

impl<'a> RecordInfo<'a> {
    /// A record for `topic` with no explicit partition, key or value; fill in with the
    /// `with_*` methods.
    pub fn new(topic: &'a str) -> Self {
        Self {
            topic,
            partition: None,
            key: None,
            value: None,
        }
    }

    /// The record with an explicit partition.
    pub fn with_partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// The record with a serialized key.
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// The record with a serialized value.
    pub fn with_value(mut self, value: &'a [u8]) -> Self {
        self.value = Some(value);
        self
    }
}

/// Why no partition could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The topic has no partitions in the metadata at hand.
    #[error("topic `{topic}` has no partitions")]
    NoPartitions {
        /// The topic.
        topic: String,
    },
    /// The chosen (explicit or custom) partition is not one of the topic's.
    #[error("partition {partition} of topic `{topic}` is not in the range [0, {partition_count})")]
    OutOfRange {
        /// The topic.
        topic: String,
        /// The partition that was asked for.
        partition: u32,
        /// How many partitions the topic has.
        partition_count: u32,
    },
}

/// Chooses the partition of each record (the Java client's `Partitioner` plug-in).
///
/// Implement it for custom routing. The producer routes each record through
/// [`choose_partition`], which keeps a record's explicit partition and otherwise calls
/// [`partition`](Self::partition); after appending the record it calls
/// [`on_append`](Self::on_append) with the same record's topic, explicit partition and key
/// (its value has moved into its batch by then: `value` is `None`). The trait is object safe
/// (`Box<dyn Partitioner + Send>` works).
///
/// ```
/// use kafkit::state::partitioner::{
///     PartitionError, Partitioner, RecordInfo, TopicPartitions,
/// };
///
/// /// Sends everything to the last partition.
/// struct Last;
///
/// impl Partitioner for Last {
///     fn partition(
///         &mut self,
///         record: &RecordInfo<'_>,
///         partitions: &TopicPartitions<'_>,
///     ) -> Result<u32, PartitionError> {
///         partitions
///             .partition_count()
///             .checked_sub(1)
///             .ok_or_else(|| PartitionError::NoPartitions { topic: record.topic.to_owned() })
///     }
/// }
///
/// let mut p = Last;
/// let chosen = p.partition(&RecordInfo::new("t"), &TopicPartitions::all_available(3));
/// assert_eq!(chosen, Ok(2));
/// ```
pub trait Partitioner {
    /// The partition for `record`, given the topic's partitions. The result must be below
    /// `partitions.partition_count()`; the producer rejects it otherwise.
    fn partition(
        &mut self,
        record: &RecordInfo<'_>,
        partitions: &TopicPartitions<'_>,
    ) -> Result<u32, PartitionError>;

    /// Told after `record` was appended to `partition`, taking `appended_bytes` of the batch.
    /// `batch_ready` says whether that partition's batch is now ready to send. From the
    /// producer, `record` carries the topic, explicit partition and key, not the value.
    ///
    /// The default does nothing; [`DefaultPartitioner`] uses it to move the sticky partition.
    fn on_append(
        &mut self,
        record: &RecordInfo<'_>,
        partition: u32,
        appended_bytes: usize,
        batch_ready: bool,
    ) {
        let _ = (record, partition, appended_bytes, batch_ready);
    }
}

/// Routes one record as the Java producer does around a partitioner: a record's explicit
/// partition is used as is (never shown to the partitioner), otherwise `partitioner` decides;
/// either way the result must be one of the topic's partitions.
///
/// With a [`DefaultPartitioner`] this gives the same answers as calling it directly; with a
/// custom partitioner it keeps explicit partitions working, as the Java client does.
///
/// ```
/// use kafkit::state::partitioner::{
///     choose_partition, PartitionError, Partitioner, RecordInfo, TopicPartitions,
/// };
///
/// struct Always(u32);
/// impl Partitioner for Always {
///     fn partition(&mut self, _: &RecordInfo<'_>, _: &TopicPartitions<'_>) -> Result<u32, PartitionError> {
///         Ok(self.0)
///     }
/// }
///
/// let topic = TopicPartitions::all_available(4);
/// let explicit = RecordInfo::new("t").with_partition(1);
/// assert_eq!(choose_partition(&mut Always(3), &explicit, &topic), Ok(1));
/// assert_eq!(choose_partition(&mut Always(3), &RecordInfo::new("t"), &topic), Ok(3));
/// assert!(choose_partition(&mut Always(9), &RecordInfo::new("t"), &topic).is_err());
/// ```
pub fn choose_partition<P: Partitioner + ?Sized>(
    partitioner: &mut P,
    record: &RecordInfo<'_>,
    partitions: &TopicPartitions<'_>,
) -> Result<u32, PartitionError> {
    let count = partitions.partition_count();
    if count == 0 {
        return Err(PartitionError::NoPartitions {
            topic: record.topic.to_owned(),
        });
    }
    let partition = match record.partition {
        Some(explicit) => explicit,
        None => partitioner.partition(record, partitions)?,
    };
    if partition < count {
        Ok(partition)
    } else {
        Err(PartitionError::OutOfRange {
            topic: record.topic.to_owned(),
            partition,
            partition_count: count,
        })
    }
}

/// The partitions a new sticky choice may use: those with a leader (`leaders` lists
/// `(partition, leader node)`), minus those whose leader has had work waiting without progress
/// for longer than `availability_timeout` (`partitioner.availability.timeout.ms`; zero keeps
/// every one). When every partition with a leader is skipped, all of them are returned: the
/// producer never stalls on the choice.
pub(crate) fn usable_partitions(
    leaders: &[(u32, i32)],
    latency: &NodeLatency,
    availability_timeout: Duration,
) -> Vec<u32> {
    let usable: Vec<u32> = leaders
        .iter()
        .filter(|(_, node)| !latency.is_unavailable(*node, availability_timeout))
        .map(|(p, _)| *p)
        .collect();
    if usable.is_empty() {
        leaders.iter().map(|(p, _)| *p).collect()
    } else {
        usable
    }
}

/// The sticky state per topic: a list with a name index, and the last topic looked up
/// checked first (a producer usually sends to one or a few topics: one name compare, no hash).
#[derive(Debug, Clone, Default)]
struct StickyMap {
    entries: Vec<(String, StickyPartitioner)>,
    index: HashMap<String, usize, NameHash>,
    last: Cell<usize>,
}

impl StickyMap {
    fn find(&self, topic: &str) -> Option<usize> {
        let last = self.last.get();
        if self.entries.get(last).is_some_and(|(t, _)| t == topic) {
            return Some(last);
        }
        let at = *self.index.get(topic)?;
        self.last.set(at);
        Some(at)
    }

    fn get(&self, topic: &str) -> Option<&StickyPartitioner> {
        let at = self.find(topic)?;
        self.entries.get(at).map(|(_, s)| s)
    }

    fn get_mut(&mut self, topic: &str) -> Option<&mut StickyPartitioner> {
        let at = self.find(topic)?;
        self.entries.get_mut(at).map(|(_, s)| s)
    }

    /// The index of `topic`'s entry, pushed (made by `make`) when there is none.
    fn slot_or_insert(&mut self, topic: &str, make: impl FnOnce() -> StickyPartitioner) -> usize {
        match self.find(topic) {
            Some(at) => at,
            None => {
                let at = self.entries.len();
                self.entries.push((topic.to_owned(), make()));
                self.index.insert(topic.to_owned(), at);
                self.last.set(at);
                at
            }
        }
    }

    fn get_or_insert(
        &mut self,
        topic: &str,
        make: impl FnOnce() -> StickyPartitioner,
    ) -> &mut StickyPartitioner {
        let at = self.slot_or_insert(topic, make);
        // `at` indexes `entries` (found or just pushed).
        let len = self.entries.len();
        &mut self.entries[at.min(len - 1)].1
    }
}

/// Where a topic's sticky state sits in a [`DefaultPartitioner`] (from
/// `DefaultPartitioner::sticky_slot`); valid for that partitioner's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StickySlot(usize);

/// The Java client's built-in partitioning: a record's explicit partition if it has one,
/// else the murmur2 hash of its key (unless `partitioner.ignore.keys`), else the uniform sticky
/// partition of its topic ([KIP-794](StickyPartitioner)).
///
/// ```
/// use kafkit::state::partitioner::{
///     DefaultPartitioner, Partitioner, RecordInfo, TopicPartitions,
/// };
/// use kafkit::state::rng::XorShift64Star;
///
/// let mut p = DefaultPartitioner::new(16_384, false, XorShift64Star::new(7));
/// let topic = TopicPartitions::all_available(7);
///
/// let explicit = RecordInfo::new("orders").with_partition(5).with_key(b"21");
/// assert_eq!(p.partition(&explicit, &topic), Ok(5));
///
/// let keyed = RecordInfo::new("orders").with_key(b"21");
/// assert_eq!(p.partition(&keyed, &topic), Ok(3)); // same as the Java client
///
/// let keyless = RecordInfo::new("orders").with_value(b"v");
/// let sticky = p.partition(&keyless, &topic).unwrap();
/// assert_eq!(p.partition(&keyless, &topic), Ok(sticky));
/// ```
#[derive(Debug, Clone)]
pub struct DefaultPartitioner<R> {
    batch_size: usize,
    ignore_keys: bool,
    adaptive: bool,
    sticky: StickyMap,
    rng: R,
}

impl<R: RandomSource> DefaultPartitioner<R> {
    /// A default partitioner switching sticky partitions after `batch_size` bytes
    /// (`batch.size`), hashing keys unless `ignore_keys` (`partitioner.ignore.keys`), and
    /// drawing sticky partitions from `rng`.
    pub fn new(batch_size: usize, ignore_keys: bool, rng: R) -> Self {
        Self {
            batch_size,
            ignore_keys,
            adaptive: true,
            sticky: StickyMap::default(),
            rng,
        }
    }

    /// A default partitioner with the producer's `batch.size`, `partitioner.ignore.keys` and
    /// `partitioner.adaptive.partitioning.enable`.
    ///
    /// ```
    /// use kafkit::config::ProducerConfig;
    /// use kafkit::state::partitioner::DefaultPartitioner;
    /// use kafkit::state::rng::XorShift64Star;
    ///
    /// let config = ProducerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("partitioner.ignore.keys", "true"),
    /// ])?;
    /// let partitioner = DefaultPartitioner::from_config(&config, XorShift64Star::from_entropy());
    /// assert!(partitioner.ignore_keys());
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn from_config(config: &ProducerConfig, rng: R) -> Self {
        let mut partitioner = Self::new(config.batch_size(), config.partitioner_ignore_keys(), rng);
        partitioner.adaptive = config.partitioner_adaptive_partitioning();
        partitioner
    }

    /// Turns adaptive partitioning (`partitioner.adaptive.partitioning.enable`, on by
    /// default) on or off; off, queue sizes given to
    /// [`update_load_stats`](Self::update_load_stats) are ignored.
    pub fn with_adaptive_partitioning(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        if !adaptive {
            self.sticky
                .entries
                .iter_mut()
                .for_each(|(_, s)| s.clear_load_stats());
        }
        self
    }

    /// Whether keys are ignored (every record without an explicit partition goes sticky).
    pub fn ignore_keys(&self) -> bool {
        self.ignore_keys
    }

    /// Feeds a topic's queue sizes for adaptive sticky choice; see
    /// [`StickyPartitioner::update_load_stats`].
    pub fn update_load_stats(&mut self, topic: &str, queues: &[(u32, u32)], partition_count: u32) {
        if self.adaptive {
            self.sticky_for(topic)
                .update_load_stats(queues, partition_count);
        }
    }

    /// The current sticky partition of `topic`, if any.
    pub fn sticky_partition(&self, topic: &str) -> Option<u32> {
        self.sticky.get(topic).and_then(StickyPartitioner::current)
    }

    /// Whether `record` is routed by the sticky partitioner (no explicit partition, and no
    /// key or keys ignored).
    fn is_sticky(&self, record: &RecordInfo<'_>) -> bool {
        record.partition.is_none() && (record.key.is_none() || self.ignore_keys)
    }

    /// The slot of `topic`'s sticky state, made on first use. A slot stays valid for the
    /// partitioner's life (topics are never forgotten): the producer looks the topic up once
    /// per keyless record and goes through the slot for the choice and the append.
    pub(crate) fn sticky_slot(&mut self, topic: &str) -> StickySlot {
        let batch_size = self.batch_size;
        StickySlot(
            self.sticky
                .slot_or_insert(topic, || StickyPartitioner::new(batch_size)),
        )
    }

    /// The current sticky partition at `slot` (as [`sticky_partition`](Self::sticky_partition)).
    pub(crate) fn sticky_current(&self, slot: StickySlot) -> Option<u32> {
        self.sticky
            .entries
            .get(slot.0)
            .and_then(|(_, s)| s.current())
    }

    /// The partition for a keyless (or key-ignored) record of the topic at `slot`: its
    /// current sticky partition, or a new one drawn from `partitions` (as
    /// [`partition`](Partitioner::partition) does for such a record).
    pub(crate) fn sticky_choose(
        &mut self,
        slot: StickySlot,
        partitions: &TopicPartitions<'_>,
    ) -> Option<u32> {
        let (_, sticky) = self.sticky.entries.get_mut(slot.0)?;
        sticky.partition(partitions, &mut self.rng)
    }

    /// Counts a keyless record appended to `partition` of the topic at `slot` (as
    /// [`on_append`](Partitioner::on_append) does for such a record).
    pub(crate) fn sticky_appended(
        &mut self,
        slot: StickySlot,
        partition: u32,
        appended_bytes: usize,
        batch_ready: bool,
    ) {
        if let Some((_, sticky)) = self.sticky.entries.get_mut(slot.0) {
            sticky.record_appended(partition, appended_bytes, batch_ready);
        }
    }

    fn sticky_for(&mut self, topic: &str) -> &mut StickyPartitioner {
        let batch_size = self.batch_size;
        self.sticky
            .get_or_insert(topic, || StickyPartitioner::new(batch_size))
    }
}

impl<R: RandomSource> Partitioner for DefaultPartitioner<R> {
    fn partition(
        &mut self,
        record: &RecordInfo<'_>,
        partitions: &TopicPartitions<'_>,
    ) -> Result<u32, PartitionError> {
        let count = partitions.partition_count();
        if count == 0 {
            return Err(PartitionError::NoPartitions {
                topic: record.topic.to_owned(),
            });
        }
        if let Some(partition) = record.partition {
            return if partition < count {
                Ok(partition)
            } else {
                Err(PartitionError::OutOfRange {
                    topic: record.topic.to_owned(),
                    partition,
                    partition_count: count,
                })
            };
        }
        if let (Some(key), false) = (record.key, self.ignore_keys) {
            return partition_for_key(key, count).ok_or_else(|| PartitionError::NoPartitions {
                topic: record.topic.to_owned(),
            });
        }
        let batch_size = self.batch_size;
        let no_partitions = || PartitionError::NoPartitions {
            topic: record.topic.to_owned(),
        };
        if let Some(sticky) = self.sticky.get_mut(record.topic) {
            return sticky
                .partition(partitions, &mut self.rng)
                .ok_or_else(no_partitions);
        }
        let sticky = self
            .sticky
            .get_or_insert(record.topic, || StickyPartitioner::new(batch_size));
        sticky
            .partition(partitions, &mut self.rng)
            .ok_or_else(|| PartitionError::NoPartitions {
                topic: record.topic.to_owned(),
            })
    }

    fn on_append(
        &mut self,
        record: &RecordInfo<'_>,
        partition: u32,
        appended_bytes: usize,
        batch_ready: bool,
    ) {
        if !self.is_sticky(record) {
            return;
        }
        if let Some(sticky) = self.sticky.get_mut(record.topic) {
            sticky.record_appended(partition, appended_bytes, batch_ready);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::rng::XorShift64Star;

    fn partitioner(ignore_keys: bool) -> DefaultPartitioner<XorShift64Star> {
        DefaultPartitioner::new(100, ignore_keys, XorShift64Star::new(99))
    }

    #[test]
    fn stalled_leaders_get_no_new_sticky_choice_until_they_progress() {
        use std::time::Instant;
        let t0 = Instant::now();
        let ms = std::time::Duration::from_millis;
        let leaders = [(0, 1), (1, 2), (2, 1), (3, 3)];
        let mut latency = NodeLatency::default();
        latency.record_progress(1, t0);
        latency.record_ready(1, t0 + ms(300)); // node 1: batches waited 300 ms
        latency.record_progress(2, t0 + ms(300));
        // Off (zero) or a longer timeout: every partition with a leader.
        assert_eq!(usable_partitions(&leaders, &latency, ms(0)), [0, 1, 2, 3]);
        assert_eq!(usable_partitions(&leaders, &latency, ms(300)), [0, 1, 2, 3]);
        let usable = usable_partitions(&leaders, &latency, ms(250));
        assert_eq!(usable, [1, 3]);
        // Keyless records only ever get a new sticky partition among the usable ones.
        let mut p = DefaultPartitioner::new(10, false, XorShift64Star::new(5));
        let topic = TopicPartitions::new(4, &usable);
        for _ in 0..200 {
            let r = RecordInfo::new("t");
            let chosen = p.partition(&r, &topic).unwrap();
            assert!(usable.contains(&chosen), "{chosen}");
            p.on_append(&r, chosen, 10, true);
        }
        // Keyed records are never rerouted.
        let keyed = RecordInfo::new("t").with_key(b"21");
        assert_eq!(
            p.partition(&keyed, &topic),
            partition_for_key(b"21", 4).ok_or_else(|| unreachable!())
        );
        // Every leader stalled: choose among all rather than stall.
        let mut all_stalled = NodeLatency::default();
        for node in 1..=3 {
            all_stalled.record_progress(node, t0);
            all_stalled.record_ready(node, t0 + ms(900));
        }
        assert_eq!(
            usable_partitions(&leaders, &all_stalled, ms(250)),
            [0, 1, 2, 3]
        );
        // Progress makes node 1 usable again.
        all_stalled.record_progress(1, t0 + ms(901));
        assert_eq!(usable_partitions(&leaders, &all_stalled, ms(250)), [0, 2]);
    }

    #[test]
    fn explicit_partition_wins_over_key() {
        let mut p = partitioner(false);
        let topic = TopicPartitions::all_available(7);
        let r = RecordInfo::new("t").with_partition(6).with_key(b"21");
        assert_eq!(p.partition(&r, &topic), Ok(6));
    }

    #[test]
    fn explicit_partition_out_of_range_is_an_error() {
        let mut p = partitioner(false);
        let r = RecordInfo::new("t").with_partition(7);
        assert_eq!(
            p.partition(&r, &TopicPartitions::all_available(7)),
            Err(PartitionError::OutOfRange {
                topic: "t".into(),
                partition: 7,
                partition_count: 7
            })
        );
    }

    #[test]
    fn keyed_records_hash_like_java_and_ignore_availability() {
        let mut p = partitioner(false);
        // Partition 3 of 7 has no leader; the Java client still hashes onto it.
        let available = [0, 1, 2, 4, 5, 6];
        let topic = TopicPartitions::new(7, &available);
        let r = RecordInfo::new("t").with_key(b"21");
        assert_eq!(p.partition(&r, &topic), Ok(3));
        // An empty key is a key, not a keyless record.
        let empty = RecordInfo::new("t").with_key(b"");
        assert_eq!(
            p.partition(&empty, &TopicPartitions::all_available(100)),
            Ok(81)
        );
    }

    #[test]
    fn ignore_keys_sends_keyed_records_sticky() {
        let mut p = partitioner(true);
        let topic = TopicPartitions::all_available(1_000);
        let a = p
            .partition(&RecordInfo::new("t").with_key(b"a"), &topic)
            .unwrap();
        let b = p
            .partition(&RecordInfo::new("t").with_key(b"b"), &topic)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(p.sticky_partition("t"), Some(a));
    }

    #[test]
    fn sticky_is_per_topic_and_moves_after_batch_size() {
        let mut p = partitioner(false);
        let topic = TopicPartitions::all_available(1_000);
        let r = RecordInfo::new("a").with_value(b"v");
        let first = p.partition(&r, &topic).unwrap();
        p.on_append(&r, first, 60, true);
        assert_eq!(p.partition(&r, &topic), Ok(first));
        // A keyed record on the same partition does not count towards the sticky bytes.
        let keyed = RecordInfo::new("a").with_key(b"k");
        p.on_append(&keyed, first, 1_000, true);
        assert_eq!(p.sticky_partition("a"), Some(first));
        p.on_append(&r, first, 40, true);
        assert_eq!(p.sticky_partition("a"), None);
        let other_topic = RecordInfo::new("b");
        p.partition(&other_topic, &topic).unwrap();
        assert!(p.sticky_partition("b").is_some());
    }

    #[test]
    fn empty_topic_is_an_error() {
        let mut p = partitioner(false);
        let topic = TopicPartitions::all_available(0);
        for r in [RecordInfo::new("t"), RecordInfo::new("t").with_key(b"k")] {
            assert_eq!(
                p.partition(&r, &topic),
                Err(PartitionError::NoPartitions { topic: "t".into() })
            );
        }
    }

    /// A custom partitioner: the first byte of the key, modulo the partition count.
    struct FirstByte;

    impl Partitioner for FirstByte {
        fn partition(
            &mut self,
            record: &RecordInfo<'_>,
            partitions: &TopicPartitions<'_>,
        ) -> Result<u32, PartitionError> {
            let byte = record.key.and_then(|k| k.first()).copied().unwrap_or(0);
            Ok(u32::from(byte) % partitions.partition_count())
        }
    }

    #[test]
    fn custom_partitioners_work_as_trait_objects_behind_choose_partition() {
        let mut custom: Box<dyn Partitioner> = Box::new(FirstByte);
        let topic = TopicPartitions::all_available(10);
        let keyed = RecordInfo::new("t").with_key(b"\x07rest");
        assert_eq!(choose_partition(custom.as_mut(), &keyed, &topic), Ok(7));
        let explicit = keyed.with_partition(2);
        assert_eq!(choose_partition(custom.as_mut(), &explicit, &topic), Ok(2));
        let out_of_range = keyed.with_partition(10);
        assert!(matches!(
            choose_partition(custom.as_mut(), &out_of_range, &topic),
            Err(PartitionError::OutOfRange { partition: 10, .. })
        ));
        custom.on_append(&keyed, 7, 100, true); // the default hook is a no-op
        assert_eq!(
            choose_partition(custom.as_mut(), &keyed, &TopicPartitions::all_available(0)),
            Err(PartitionError::NoPartitions { topic: "t".into() })
        );
    }

    #[test]
    fn choose_partition_with_the_default_matches_calling_it() {
        let mut a = partitioner(false);
        let mut b = partitioner(false);
        let topic = TopicPartitions::all_available(6);
        for key in [&b"x"[..], b"yy", b""] {
            let r = RecordInfo::new("t").with_key(key);
            assert_eq!(
                choose_partition(&mut a, &r, &topic),
                b.partition(&r, &topic)
            );
        }
        let keyless = RecordInfo::new("t");
        assert_eq!(
            choose_partition(&mut a, &keyless, &topic),
            b.partition(&keyless, &topic)
        );
    }

    #[test]
    fn adaptive_off_ignores_queue_sizes() {
        let topic = TopicPartitions::all_available(2);
        let run = |adaptive: bool| {
            let mut p = DefaultPartitioner::new(1, false, XorShift64Star::new(5))
                .with_adaptive_partitioning(adaptive);
            // Partition 1 has a huge queue: adaptive choice nearly never picks it.
            p.update_load_stats("t", &[(0, 0), (1, 1_000)], 2);
            let r = RecordInfo::new("t");
            let mut ones = 0;
            for _ in 0..2_000 {
                let chosen = p.partition(&r, &topic).unwrap();
                ones += chosen;
                p.on_append(&r, chosen, 1, true);
            }
            ones
        };
        assert!(run(true) < 20, "{}", run(true));
        assert!((800..1_200).contains(&run(false)), "{}", run(false));
    }

    #[test]
    fn the_producers_slot_path_matches_partition_and_on_append() {
        // The producer routes keyless records through a slot; it must choose as the trait
        // methods do, topic by topic, switching after the same bytes.
        let mut by_trait = DefaultPartitioner::new(50, false, XorShift64Star::new(3));
        let mut by_slot = DefaultPartitioner::new(50, false, XorShift64Star::new(3));
        let topic = TopicPartitions::all_available(16);
        let available = [2, 5, 11];
        let some = TopicPartitions::new(16, &available);
        let mut switches = 0;
        for i in 0..400usize {
            let name = ["a", "b", "c"][i % 3];
            let partitions = if i % 5 == 0 { &some } else { &topic };
            let r = RecordInfo::new(name);
            let slot = by_slot.sticky_slot(name);
            assert_eq!(
                by_slot.sticky_current(slot),
                by_trait.sticky_partition(name)
            );
            switches += usize::from(by_slot.sticky_current(slot).is_none());
            let want = by_trait.partition(&r, partitions).unwrap();
            assert_eq!(
                by_slot.sticky_choose(slot, partitions),
                Some(want),
                "record {i}"
            );
            let bytes = 7 + i % 13;
            by_trait.on_append(&r, want, bytes, i % 4 == 0);
            by_slot.sticky_appended(slot, want, bytes, i % 4 == 0);
        }
        assert!(switches > 30, "{switches} sticky switches");
        // A topic with no partitions has no sticky choice.
        let slot = by_slot.sticky_slot("d");
        assert_eq!(
            by_slot.sticky_choose(slot, &TopicPartitions::all_available(0)),
            None
        );
    }

    #[test]
    fn sticky_state_is_per_topic_whatever_the_lookup_order() {
        let mut map = StickyMap::default();
        for (i, topic) in ["a", "b", "c"].iter().enumerate() {
            let s = map.get_or_insert(topic, || StickyPartitioner::new(100 + i));
            assert_eq!(s.sticky_batch_size(), 100 + i);
        }
        for topic in ["c", "a", "a", "b", "c", "b"] {
            let want = 100 + usize::from(topic.as_bytes()[0] - b'a');
            assert_eq!(map.get(topic).map(|s| s.sticky_batch_size()), Some(want));
            let again = map.get_or_insert(topic, || StickyPartitioner::new(1));
            assert_eq!(again.sticky_batch_size(), want);
        }
        assert!(map.get("d").is_none() && map.get_mut("d").is_none());
        assert_eq!(map.entries.len(), 3);
    }

    #[test]
    fn from_config_takes_the_producer_settings() {
        let config = ProducerConfig::from_properties([
            ("bootstrap.servers", "b:1"),
            ("batch.size", "10"),
            ("partitioner.adaptive.partitioning.enable", "false"),
        ])
        .unwrap();
        let mut p = DefaultPartitioner::from_config(&config, XorShift64Star::new(1));
        assert!(!p.ignore_keys());
        assert!(!p.adaptive);
        let topic = TopicPartitions::all_available(1_000);
        let r = RecordInfo::new("t");
        let first = p.partition(&r, &topic).unwrap();
        p.on_append(&r, first, 9, true);
        assert_eq!(p.sticky_partition("t"), Some(first));
        p.on_append(&r, first, 1, true);
        assert_eq!(p.sticky_partition("t"), None, "batch.size=10 reached");
    }
}
