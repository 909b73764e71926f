//! Choosing the partition of a record: the [`Partitioner`] trait and the Java client's default
//! rule, [`DefaultPartitioner`]: explicit partition > key hash > sticky.

use std::collections::HashMap;

use super::murmur2::partition_for_key;
use super::rng::RandomSource;
use super::sticky::StickyPartitioner;

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
/// Implement it for custom routing. The producer calls [`partition`](Self::partition) before
/// appending a record and [`on_append`](Self::on_append) after, with the same record.
///
/// ```
/// use kafkit_client::state::partitioner::{
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
    /// `batch_ready` says whether that partition's batch is now ready to send.
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

/// The Java client's built-in partitioning: a record's explicit partition if it has one,
/// else the murmur2 hash of its key (unless `partitioner.ignore.keys`), else the uniform sticky
/// partition of its topic ([KIP-794](StickyPartitioner)).
///
/// ```
/// use kafkit_client::state::partitioner::{
///     DefaultPartitioner, Partitioner, RecordInfo, TopicPartitions,
/// };
/// use kafkit_client::state::rng::XorShift64Star;
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
    sticky: HashMap<String, StickyPartitioner>,
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
            sticky: HashMap::new(),
            rng,
        }
    }

    /// Whether keys are ignored (every record without an explicit partition goes sticky).
    pub fn ignore_keys(&self) -> bool {
        self.ignore_keys
    }

    /// Feeds a topic's queue sizes for adaptive sticky choice; see
    /// [`StickyPartitioner::update_load_stats`].
    pub fn update_load_stats(&mut self, topic: &str, queues: &[(u32, u32)], partition_count: u32) {
        self.sticky_for(topic)
            .update_load_stats(queues, partition_count);
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

    fn sticky_for(&mut self, topic: &str) -> &mut StickyPartitioner {
        let batch_size = self.batch_size;
        self.sticky
            .entry(topic.to_owned())
            .or_insert_with(|| StickyPartitioner::new(batch_size))
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
        let sticky = self
            .sticky
            .entry(record.topic.to_owned())
            .or_insert_with(|| StickyPartitioner::new(batch_size));
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
}
