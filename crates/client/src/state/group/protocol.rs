//! The embedded consumer protocol: the `Subscription` a member puts in its JoinGroup metadata
//! and the `Assignment` the leader hands back through SyncGroup.
//!
//! Byte-compatible with the Java client's `ConsumerProtocol` (schemas
//! `ConsumerProtocolSubscription.json` and `ConsumerProtocolAssignment.json`, versions 0–3,
//! never flexible): a big-endian `i16` version, then the fields of that version.
//!
//! | field              | type                  | versions |
//! |--------------------|-----------------------|----------|
//! | topics             | `[]string`            | 0+       |
//! | user_data          | nullable `bytes`      | 0+       |
//! | owned_partitions   | `[]{topic, []int32}`  | 1+       |
//! | generation_id      | `int32` (default -1)  | 2+       |
//! | rack_id            | nullable `string`     | 3+       |
//!
//! The assignment is `[]{topic, []int32}` then nullable `bytes` user data in every version.
//!
//! # Why a hand-written codec
//!
//! These bytes come from *other* group members through the broker, so they are untrusted.
//! `kafka_protocol`'s generated decoders reserve memory from wire counts, which lets a short
//! message claim billions of elements. The decoder here checks every count against the bytes
//! that remain (each element needs at least its minimal encoded size) before reserving anything,
//! and reports truncation, negative lengths and the like as [`ProtocolError`]s; it never panics.
//! The encoder is hand-written too, to keep both directions in one readable place.
//!
//! Like Java, decoding accepts versions higher than 3: it reads the version-3 fields and
//! ignores whatever follows. Also like Java, bytes after the known fields are ignored and strings
//! that are not valid UTF-8 are decoded lossily (invalid sequences become U+FFFD).

use bytes::{BufMut, Bytes, BytesMut};

/// The highest consumer protocol version this module knows (for both message kinds).
pub const HIGHEST_VERSION: i16 = 3;

/// A failure to encode or decode a consumer protocol message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The message ended before the field named here was complete.
    #[error("consumer protocol message truncated while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The version prefix is negative (Java rejects these too).
    #[error("unsupported consumer protocol version {0}")]
    UnsupportedVersion(i16),
    /// A non-nullable field was encoded as null, or a length was negative.
    #[error("invalid length {length} for {field}")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
        /// The length found.
        length: i64,
    },
    /// A count claims more elements than the remaining bytes can hold.
    #[error("{field} claims {count} elements but only {remaining} bytes remain")]
    CountTooLarge {
        /// The field being read.
        field: &'static str,
        /// The element count found.
        count: i64,
        /// The bytes left in the message.
        remaining: usize,
    },
    /// A value is too long to be encoded (strings are limited to `i16::MAX` bytes, arrays and
    /// byte fields to `i32::MAX` entries).
    #[error("{field} is too long to encode ({length})")]
    TooLong {
        /// The field being written.
        field: &'static str,
        /// Its length.
        length: usize,
    },
}

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// Partitions of one topic, as the consumer protocol groups them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    /// The topic name.
    pub topic: String,
    /// Its partition indexes.
    pub partitions: Vec<i32>,
}

/// What a member asks for when it joins: its topics and, since version 1, what it owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// The topics the member wants to consume.
    pub topics: Vec<String>,
    /// Assignor-specific data, passed through to the leader's assignor (nullable).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns (version 1+; empty when absent).
    pub owned_partitions: Vec<TopicPartitions>,
    /// The generation in which the member owned them (version 2+; `None` when absent or
    /// negative, as in Java).
    pub generation_id: Option<i32>,
    /// The member's rack (version 3+; `None` when absent or empty, as in Java).
    pub rack_id: Option<String>,
}

impl Subscription {
    /// A subscription to `topics`, with nothing owned.
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// The owned partitions, flattened.
    pub fn owned(&self) -> Vec<TopicPartition> {
        flatten(&self.owned_partitions)
    }

    /// Encodes the subscription at `version` (0–3), with the version prefix. Fields the version
    /// does not have are left out, as Java does for these ignorable fields. Like Java, topics
    /// are written sorted and owned partitions sorted by topic then partition.
    ///
    /// ```
    /// use kafkit::state::group::Subscription;
    ///
    /// let bytes = Subscription::new(["t"]).encode(0).unwrap();
    /// assert_eq!(&bytes[..], &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
    /// let (version, decoded) = Subscription::decode(&bytes).unwrap();
    /// assert_eq!((version, decoded), (0, Subscription::new(["t"])));
    /// ```
    pub fn encode(&self, version: i16) -> Result<Bytes, ProtocolError> {
        check_encode_version(version)?;
        let mut out = BytesMut::new();
        out.put_i16(version);
        // Java sorts topics and owned partitions before writing; so do we, to be byte-equal.
        let mut topics: Vec<&String> = self.topics.iter().collect();
        topics.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        put_count(&mut out, topics.len(), "topics")?;
        for topic in topics {
            put_string(&mut out, topic, "topic")?;
        }
        put_bytes(&mut out, self.user_data.as_deref(), "user_data")?;
        if version >= 1 {
            let mut owned = self.owned();
            owned.sort_by(|a, b| {
                a.topic
                    .encode_utf16()
                    .cmp(b.topic.encode_utf16())
                    .then(a.partition.cmp(&b.partition))
            });
            let grouped = group_by_topic(&owned);
            put_topic_partitions(&mut out, &grouped, "owned_partitions")?;
        }
        if version >= 2 {
            out.put_i32(self.generation_id.unwrap_or(-1));
        }
        if version >= 3 {
            match &self.rack_id {
                Some(rack) => put_string(&mut out, rack, "rack_id")?,
                None => out.put_i16(-1),
            }
        }
        Ok(out.freeze())
    }

    /// Decodes a version-prefixed subscription from untrusted bytes, returning the version found
    /// with it. Versions above 3 are read as version 3.
    pub fn decode(bytes: &[u8]) -> Result<(i16, Self), ProtocolError> {
        let mut r = Reader::new(bytes);
        let version = read_version(&mut r)?;
        let n = r.count("topics", 2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string("topic")?);
        }
        let user_data = r.nullable_bytes("user_data")?;
        let owned_partitions = if version >= 1 {
            r.topic_partitions("owned_partitions")?
        } else {
            Vec::new()
        };
        let generation_id = if version >= 2 {
            Some(r.i32("generation_id")?).filter(|g| *g >= 0)
        } else {
            None
        };
        let rack_id = if version >= 3 {
            r.nullable_string("rack_id")?.filter(|s| !s.is_empty())
        } else {
            None
        };
        Ok((
            version,
            Self {
                topics,
                user_data,
                owned_partitions,
                generation_id,
                rack_id,
            },
        ))
    }
}

/// What the leader gives a member: its partitions and assignor-specific user data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The assigned partitions, grouped by topic.
    pub assigned_partitions: Vec<TopicPartitions>,
    /// Assignor-specific data (nullable).
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` (grouped by topic in order of first appearance), without
    /// user data.
    pub fn from_partitions<'a, I>(partitions: I) -> Self
    where
        I: IntoIterator<Item = &'a TopicPartition>,
    {
        Self {
            assigned_partitions: group_by_topic(partitions),
            user_data: None,
        }
    }

    /// The assigned partitions, flattened.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        flatten(&self.assigned_partitions)
    }

    /// Encodes the assignment at `version` (0–3), with the version prefix (all versions share
    /// one layout).
    ///
    /// ```
    /// use kafkit::state::group::{Assignment, TopicPartition};
    ///
    /// let a = Assignment::from_partitions(&[TopicPartition::new("t", 0), TopicPartition::new("t", 2)]);
    /// let bytes = a.encode(3).unwrap();
    /// assert_eq!(Assignment::decode(&bytes).unwrap(), (3, a));
    /// ```
    pub fn encode(&self, version: i16) -> Result<Bytes, ProtocolError> {
        check_encode_version(version)?;
        let mut out = BytesMut::new();
        out.put_i16(version);
        put_topic_partitions(&mut out, &self.assigned_partitions, "assigned_partitions")?;
        put_bytes(&mut out, self.user_data.as_deref(), "user_data")?;
        Ok(out.freeze())
    }

    /// Decodes a version-prefixed assignment from untrusted bytes, returning the version found
    /// with it. Versions above 3 are read as version 3.
    pub fn decode(bytes: &[u8]) -> Result<(i16, Self), ProtocolError> {
        let mut r = Reader::new(bytes);
        let version = read_version(&mut r)?;
        let assigned_partitions = r.topic_partitions("assigned_partitions")?;
        let user_data = r.nullable_bytes("user_data")?;
        Ok((
            version,
            Self {
                assigned_partitions,
                user_data,
            },
        ))
    }
}

/// Groups partitions by topic, topics in order of first appearance, partitions in given order.
pub fn group_by_topic<'a, I>(partitions: I) -> Vec<TopicPartitions>
where
    I: IntoIterator<Item = &'a TopicPartition>,
{
    let mut out: Vec<TopicPartitions> = Vec::new();
    for tp in partitions {
        match out.iter_mut().find(|t| t.topic == tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => out.push(TopicPartitions {
                topic: tp.topic.clone(),
                partitions: vec![tp.partition],
            }),
        }
    }
    out
}

fn flatten(grouped: &[TopicPartitions]) -> Vec<TopicPartition> {
    grouped
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(&t.topic, *p))
        })
        .collect()
}

fn check_encode_version(version: i16) -> Result<(), ProtocolError> {
    if (0..=HIGHEST_VERSION).contains(&version) {
        Ok(())
    } else {
        Err(ProtocolError::UnsupportedVersion(version))
    }
}

fn read_version(r: &mut Reader<'_>) -> Result<i16, ProtocolError> {
    let version = r.i16("version")?;
    if version < 0 {
        return Err(ProtocolError::UnsupportedVersion(version));
    }
    Ok(version)
}

fn put_count(out: &mut BytesMut, n: usize, field: &'static str) -> Result<(), ProtocolError> {
    let n = i32::try_from(n).map_err(|_| ProtocolError::TooLong { field, length: n })?;
    out.put_i32(n);
    Ok(())
}

fn put_string(out: &mut BytesMut, s: &str, field: &'static str) -> Result<(), ProtocolError> {
    let n = i16::try_from(s.len()).map_err(|_| ProtocolError::TooLong {
        field,
        length: s.len(),
    })?;
    out.put_i16(n);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_bytes(
    out: &mut BytesMut,
    b: Option<&[u8]>,
    field: &'static str,
) -> Result<(), ProtocolError> {
    match b {
        Some(b) => {
            put_count(out, b.len(), field)?;
            out.put_slice(b);
        }
        None => out.put_i32(-1),
    }
    Ok(())
}

fn put_topic_partitions(
    out: &mut BytesMut,
    topics: &[TopicPartitions],
    field: &'static str,
) -> Result<(), ProtocolError> {
    put_count(out, topics.len(), field)?;
    for t in topics {
        put_string(out, &t.topic, "topic")?;
        put_count(out, t.partitions.len(), "partitions")?;
        for p in &t.partitions {
            out.put_i32(*p);
        }
    }
    Ok(())
}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    /// A non-nullable array count, checked so that `count * min_size` bytes remain.
    fn count(&mut self, field: &'static str, min_size: usize) -> Result<usize, ProtocolError> {
        let n = self.i32(field)?;
        let count = usize::try_from(n).map_err(|_| ProtocolError::InvalidLength {
            field,
            length: i64::from(n),
        })?;
        if count.saturating_mul(min_size) > self.buf.len() {
            return Err(ProtocolError::CountTooLarge {
                field,
                count: i64::from(n),
                remaining: self.buf.len(),
            });
        }
        Ok(count)
    }

    fn string_body(&mut self, n: i16, field: &'static str) -> Result<String, ProtocolError> {
        let len = usize::try_from(n).map_err(|_| ProtocolError::InvalidLength {
            field,
            length: i64::from(n),
        })?;
        Ok(String::from_utf8_lossy(self.take(len, field)?).into_owned())
    }

    fn string(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let n = self.i16(field)?;
        self.string_body(n, field)
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, ProtocolError> {
        match self.i16(field)? {
            -1 => Ok(None),
            n => self.string_body(n, field).map(Some),
        }
    }

    fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, ProtocolError> {
        let n = self.i32(field)?;
        if n == -1 {
            return Ok(None);
        }
        let len = usize::try_from(n).map_err(|_| ProtocolError::InvalidLength {
            field,
            length: i64::from(n),
        })?;
        Ok(Some(Bytes::copy_from_slice(self.take(len, field)?)))
    }

    fn topic_partitions(
        &mut self,
        field: &'static str,
    ) -> Result<Vec<TopicPartitions>, ProtocolError> {
        // Each entry is at least a string length (2) and a partition count (4).
        let n = self.count(field, 6)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let topic = self.string("topic")?;
            let np = self.count("partitions", 4)?;
            let mut partitions = Vec::with_capacity(np);
            for _ in 0..np {
                partitions.push(self.i32("partition")?);
            }
            out.push(TopicPartitions { topic, partitions });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn full() -> Subscription {
        Subscription {
            topics: vec!["a".into(), "bb".into()],
            user_data: Some(Bytes::from_static(b"\x00\x00\x00\x07")),
            owned_partitions: vec![TopicPartitions {
                topic: "a".into(),
                partitions: vec![0, 3],
            }],
            generation_id: Some(7),
            rack_id: Some("r1".into()),
        }
    }

    #[test]
    fn subscription_round_trips_at_every_version() {
        for v in 0..=3 {
            let s = full();
            let (version, back) = Subscription::decode(&s.encode(v).unwrap()).unwrap();
            assert_eq!(version, v);
            assert_eq!(back.topics, s.topics);
            assert_eq!(back.user_data, s.user_data);
            assert_eq!(back.owned_partitions.is_empty(), v < 1);
            assert_eq!(back.generation_id, (v >= 2).then_some(7));
            assert_eq!(back.rack_id.is_some(), v >= 3);
        }
    }

    #[test]
    fn higher_versions_read_known_fields_and_ignore_the_rest() {
        let mut bytes = full().encode(3).unwrap().to_vec();
        bytes[1] = 9;
        bytes.extend_from_slice(b"future fields");
        let (version, back) = Subscription::decode(&bytes).unwrap();
        assert_eq!(version, 9);
        assert_eq!(back, full());
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let bytes = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            Subscription::decode(&bytes),
            Err(ProtocolError::CountTooLarge { .. })
        ));
        let bytes = [0, 1, 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            Assignment::decode(&bytes),
            Err(ProtocolError::CountTooLarge { .. })
        ));
    }

    #[test]
    fn negative_version_and_lengths_are_errors() {
        assert_eq!(
            Subscription::decode(&[0xff, 0xff]),
            Err(ProtocolError::UnsupportedVersion(-1))
        );
        assert!(matches!(
            Subscription::decode(&[0, 0, 0xff, 0xff, 0xff, 0xff]),
            Err(ProtocolError::InvalidLength { .. })
        ));
        assert!(matches!(
            Subscription::decode(&[0, 0, 0, 0, 0, 1, 0xff, 0xfe]),
            Err(ProtocolError::InvalidLength { .. })
        ));
        assert!(Subscription::new(["t"]).encode(4).is_err());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = full().encode(3).unwrap();
        for n in 0..bytes.len() {
            assert!(Subscription::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let a = Assignment::from_partitions(&[TopicPartition::new("t", 1)]);
        let bytes = a.encode(0).unwrap();
        for n in 0..bytes.len() {
            assert!(Assignment::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    mod props {
        use super::super::tests;
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                let _ = Subscription::decode(&bytes);
                let _ = Assignment::decode(&bytes);
            }

            #[test]
            fn decoders_never_panic_on_mutated_messages(
                flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
                cut in any::<usize>(),
                v in 0i16..=3,
            ) {
                let mut s = tests::full().encode(v).unwrap().to_vec();
                for (at, byte) in flips {
                    let n = s.len();
                    s[at % n] = byte;
                }
                let n = s.len();
                s.truncate(cut % (n + 1));
                let _ = Subscription::decode(&s);
                let _ = Assignment::decode(&s);
            }

            #[test]
            fn assignment_round_trips(
                topics in proptest::collection::vec(("[a-z]{1,5}", proptest::collection::vec(any::<i32>(), 0..5)), 0..4),
                user in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                v in 0i16..=3,
            ) {
                let a = Assignment {
                    assigned_partitions: topics.into_iter().map(|(topic, partitions)| TopicPartitions { topic, partitions }).collect(),
                    user_data: user.map(Bytes::from),
                };
                prop_assert_eq!(Assignment::decode(&a.encode(v).unwrap()).unwrap(), (v, a));
            }
        }
    }
}
