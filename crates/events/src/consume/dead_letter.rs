//! Dead letters: the record written to `<topic><suffix>` when a handler gives up, reading the
//! error headers back, and redrive to the original topic.
//!
//! The dead letter keeps the original key, value and headers byte for byte and adds Spring Kafka's
//! headers, so existing tooling reads them:
//!
//! | header | encoding |
//! |---|---|
//! | `kafka_dlt-original-topic` | UTF-8 |
//! | `kafka_dlt-original-partition` | i32 big-endian |
//! | `kafka_dlt-original-offset` | i64 big-endian |
//! | `kafka_dlt-original-timestamp` | i64 big-endian (ms since the epoch) |
//! | `kafka_dlt-original-timestamp-type` | UTF-8 `CreateTime` / `LogAppendTime` |
//! | `kafka_dlt-original-consumer-group` | UTF-8 |
//! | `kafka_dlt-exception-fqcn` | UTF-8: the error's class (Rust type path) |
//! | `kafka_dlt-exception-cause-fqcn` | UTF-8, only when there is a cause |
//! | `kafka_dlt-exception-message` | UTF-8 |
//! | `kafka_dlt-exception-stacktrace` | UTF-8: the error chain, when known |
//! | `kafka_dlt-attempts` (kafkit's) | i32 big-endian: handler calls made |
//! | `kafka_dlt-failure-timestamp` (kafkit's) | i64 big-endian (ms since the epoch) |
//!
//! Earlier error headers (every `kafka_dlt-*`, `__connect.errors.*` and `__streams.errors.*`
//! header) are stripped first, so a record dead-lettered again (after a redrive) does not grow.
//! [`read_dead_letter`] reads Spring's headers and, failing those, Kafka Connect's
//! (`__connect.errors.*`, decimal strings) and Kafka Streams' (`__streams.errors.*`).

use bytes::Bytes;
use kafkit::consumer::{ConsumerRecord, Header};
use kafkit::producer::{HeaderName, ProducerRecord};

use crate::error::RawRecord;

/// Spring's header: the source topic.
pub const ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
/// Spring's header: the source partition (i32 BE).
pub const ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
/// Spring's header: the source offset (i64 BE).
pub const ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
/// Spring's header: the source record's timestamp (i64 BE).
pub const ORIGINAL_TIMESTAMP: &str = "kafka_dlt-original-timestamp";
/// Spring's header: the source record's timestamp type (`CreateTime` or `LogAppendTime`).
pub const ORIGINAL_TIMESTAMP_TYPE: &str = "kafka_dlt-original-timestamp-type";
/// Spring's header: the consumer group that failed.
pub const ORIGINAL_CONSUMER_GROUP: &str = "kafka_dlt-original-consumer-group";
/// Spring's header: the error's class.
pub const EXCEPTION_FQCN: &str = "kafka_dlt-exception-fqcn";
/// Spring's header: the cause's class.
pub const EXCEPTION_CAUSE_FQCN: &str = "kafka_dlt-exception-cause-fqcn";
/// Spring's header: the error's message.
pub const EXCEPTION_MESSAGE: &str = "kafka_dlt-exception-message";
/// Spring's header: the stack trace (here: the error chain).
pub const EXCEPTION_STACKTRACE: &str = "kafka_dlt-exception-stacktrace";
/// kafkit's header: handler calls made before giving up (i32 BE).
pub const ATTEMPTS: &str = "kafka_dlt-attempts";
/// kafkit's header: when the record was given up (i64 BE, ms since the epoch).
pub const FAILURE_TIMESTAMP: &str = "kafka_dlt-failure-timestamp";

/// Prefixes of error headers written by Spring Kafka, Kafka Connect and Kafka Streams: stripped
/// before a record is dead-lettered again or redriven.
pub const ERROR_HEADER_PREFIXES: [&str; 3] =
    ["kafka_dlt-", "__connect.errors.", "__streams.errors."];

const CONNECT_TOPIC: &str = "__connect.errors.topic";
const CONNECT_PARTITION: &str = "__connect.errors.partition";
const CONNECT_OFFSET: &str = "__connect.errors.offset";
const CONNECT_CONNECTOR: &str = "__connect.errors.connector.name";
const CONNECT_EXCEPTION_CLASS: &str = "__connect.errors.exception.class.name";
const CONNECT_EXCEPTION_MESSAGE: &str = "__connect.errors.exception.message";
const CONNECT_STACKTRACE: &str = "__connect.errors.exception.stacktrace";
const STREAMS_TOPIC: &str = "__streams.errors.topic";
const STREAMS_PARTITION: &str = "__streams.errors.partition";
const STREAMS_OFFSET: &str = "__streams.errors.offset";
const STREAMS_EXCEPTION: &str = "__streams.errors.exception";
const STREAMS_MESSAGE: &str = "__streams.errors.message";
const STREAMS_STACKTRACE: &str = "__streams.errors.stacktrace";

/// Where dead letters go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterPolicy {
    /// Appended to the source topic's name (`.dlq` by default; Spring Kafka uses `-dlt`).
    pub suffix: String,
    /// `false`: a record that fails for good is logged and skipped (committed past) instead.
    pub enabled: bool,
    /// Write the dead letter to the source record's partition when the dead-letter topic has it
    /// (default `true`; otherwise the key decides).
    pub keep_partition: bool,
}

impl Default for DeadLetterPolicy {
    fn default() -> Self {
        DeadLetterPolicy {
            suffix: ".dlq".to_owned(),
            enabled: true,
            keep_partition: true,
        }
    }
}

impl DeadLetterPolicy {
    /// The dead-letter topic of `topic`.
    ///
    /// ```
    /// use kafkit_events::consume::DeadLetterPolicy;
    /// assert_eq!(DeadLetterPolicy::default().topic_for("orders"), "orders.dlq");
    /// ```
    pub fn topic_for(&self, topic: &str) -> String {
        format!("{topic}{}", self.suffix)
    }

    /// A policy writing to `<topic><suffix>`.
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = suffix.into();
        self
    }

    /// Enables or disables dead-lettering.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Whether the dead letter keeps the source partition.
    pub fn with_keep_partition(mut self, keep: bool) -> Self {
        self.keep_partition = keep;
        self
    }
}

/// Why a record was given up, as written in the dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Failure {
    /// The error's class (for a Rust error, its type path).
    pub class: String,
    /// The error's message.
    pub message: String,
    /// The class of the error's cause, if any.
    pub cause_class: Option<String>,
    /// More detail (the error chain, a backtrace), if any.
    pub detail: Option<String>,
    /// Handler calls made (set by the processing state when it gives up).
    pub attempts: u32,
    /// When the record was given up, in ms since the epoch.
    pub failed_at_ms: i64,
}

impl Failure {
    /// A failure of `class` with `message`, at `failed_at_ms`.
    pub fn new(class: impl Into<String>, message: impl Into<String>, failed_at_ms: i64) -> Self {
        Failure {
            class: class.into(),
            message: message.into(),
            failed_at_ms,
            ..Failure::default()
        }
    }

    /// The failure of `error`: its type path as the class, its display as the message, the
    /// chain of its sources as the detail (no cause class: a source's type is not known).
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E, failed_at_ms: i64) -> Self {
        let mut detail = String::new();
        let mut source = error.source();
        while let Some(s) = source {
            if !detail.is_empty() {
                detail.push('\n');
            }
            detail.push_str("caused by: ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        Failure {
            class: std::any::type_name::<E>().to_owned(),
            message: error.to_string(),
            cause_class: None,
            detail: (!detail.is_empty()).then_some(detail),
            attempts: 0,
            failed_at_ms,
        }
    }
}

/// Which family of headers a dead letter was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterFormat {
    /// Spring Kafka's `kafka_dlt-*` (also what kafkit writes).
    Spring,
    /// Kafka Connect's `__connect.errors.*`.
    Connect,
    /// Kafka Streams' `__streams.errors.*` (KIP-1034).
    Streams,
}

/// What a dead letter's headers say about the record it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterInfo {
    /// The header family read.
    pub format: DeadLetterFormat,
    /// The source topic.
    pub original_topic: String,
    /// The source partition, when recorded.
    pub original_partition: Option<i32>,
    /// The source offset, when recorded.
    pub original_offset: Option<i64>,
    /// The source record's timestamp, when recorded.
    pub original_timestamp: Option<i64>,
    /// The source record's timestamp type, when recorded.
    pub original_timestamp_type: Option<String>,
    /// The consumer group (for Connect: the connector's name), when recorded.
    pub group: Option<String>,
    /// The error's class.
    pub exception_class: Option<String>,
    /// The error's cause's class.
    pub cause_class: Option<String>,
    /// The error's message.
    pub exception_message: Option<String>,
    /// The stack trace / error chain.
    pub stacktrace: Option<String>,
    /// Handler calls made, when recorded (kafkit's header).
    pub attempts: Option<u32>,
    /// When the record was given up, when recorded (kafkit's header).
    pub failed_at_ms: Option<i64>,
}

/// A dead letter's headers could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// None of the three families' topic headers is present.
    #[error("not a dead letter: no kafka_dlt-original-topic, __connect.errors.topic or __streams.errors.topic header")]
    NotADeadLetter,
    /// A header is present with a null value.
    #[error("dead-letter header {header} is null")]
    NullHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A binary number header has the wrong length.
    #[error("dead-letter header {header}: {actual} bytes, expected {expected}")]
    BadLength {
        /// The header's name.
        header: &'static str,
        /// The length of its encoding.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// A text header is not UTF-8.
    #[error("dead-letter header {header} is not UTF-8")]
    BadUtf8 {
        /// The header's name.
        header: &'static str,
    },
    /// A decimal number header does not parse (or is out of range).
    #[error("dead-letter header {header} is not a number")]
    BadNumber {
        /// The header's name.
        header: &'static str,
    },
}

impl DeadLetterError {
    /// Never: the same headers fail the same way.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// Whether `key` is an error header of Spring, Connect or Streams.
pub fn is_error_header(key: &[u8]) -> bool {
    ERROR_HEADER_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix.as_bytes()))
}

fn header_key(key: &Bytes) -> HeaderName {
    // Kafka header keys are Java strings (UTF-8); a key that is not is carried lossily.
    match std::str::from_utf8(key) {
        Ok(s) => s.to_owned().into(),
        Err(_) => String::from_utf8_lossy(key).into_owned().into(),
    }
}

fn text(value: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(value.as_bytes()))
}

/// The dead letter of `raw` for `group`: the original key, value and non-error headers byte for
/// byte, then Spring's `kafka_dlt-*` headers describing `failure`. The topic is
/// `policy.topic_for(raw.topic)`; the partition is the source's when `policy.keep_partition` and
/// the dead-letter topic has it (`dlq_partitions`, its partition count, when known), otherwise
/// left to the partitioner (the key decides).
pub fn dead_letter_record(
    raw: &RawRecord,
    failure: &Failure,
    group: &str,
    policy: &DeadLetterPolicy,
    dlq_partitions: Option<i32>,
) -> ProducerRecord {
    let mut headers: Vec<(HeaderName, Option<Bytes>)> = raw
        .headers
        .iter()
        .filter(|(key, _)| !is_error_header(key))
        .map(|(key, value)| (header_key(key), value.clone()))
        .collect();
    headers.push((ORIGINAL_TOPIC.into(), text(&raw.topic)));
    headers.push((
        ORIGINAL_PARTITION.into(),
        Some(Bytes::copy_from_slice(&raw.partition.to_be_bytes())),
    ));
    headers.push((
        ORIGINAL_OFFSET.into(),
        Some(Bytes::copy_from_slice(&raw.offset.to_be_bytes())),
    ));
    headers.push((
        ORIGINAL_TIMESTAMP.into(),
        Some(Bytes::copy_from_slice(&raw.timestamp.to_be_bytes())),
    ));
    headers.push((ORIGINAL_TIMESTAMP_TYPE.into(), text("CreateTime")));
    headers.push((ORIGINAL_CONSUMER_GROUP.into(), text(group)));
    headers.push((EXCEPTION_FQCN.into(), text(&failure.class)));
    if let Some(cause) = &failure.cause_class {
        headers.push((EXCEPTION_CAUSE_FQCN.into(), text(cause)));
    }
    headers.push((EXCEPTION_MESSAGE.into(), text(&failure.message)));
    if let Some(detail) = &failure.detail {
        headers.push((EXCEPTION_STACKTRACE.into(), text(detail)));
    }
    let attempts = i32::try_from(failure.attempts).unwrap_or(i32::MAX);
    headers.push((
        ATTEMPTS.into(),
        Some(Bytes::copy_from_slice(&attempts.to_be_bytes())),
    ));
    headers.push((
        FAILURE_TIMESTAMP.into(),
        Some(Bytes::copy_from_slice(&failure.failed_at_ms.to_be_bytes())),
    ));
    let partition = (policy.keep_partition
        && raw.partition >= 0
        && dlq_partitions.is_none_or(|n| raw.partition < n))
    .then_some(raw.partition);
    ProducerRecord {
        topic: policy.topic_for(&raw.topic).into(),
        partition,
        key: raw.key.clone(),
        value: raw.value.clone(),
        headers,
        header_block: None,
        timestamp: None,
    }
}

/// The last header named `name` (Spring reads the last one).
fn last<'a>(headers: &'a [Header], name: &str) -> Option<&'a Header> {
    headers
        .iter()
        .rev()
        .find(|h| h.key.as_ref() == name.as_bytes())
}

fn value<'a>(
    headers: &'a [Header],
    name: &'static str,
) -> Result<Option<&'a [u8]>, DeadLetterError> {
    match last(headers, name) {
        None => Ok(None),
        Some(h) => match &h.value {
            None => Err(DeadLetterError::NullHeader { header: name }),
            Some(v) => Ok(Some(v.as_ref())),
        },
    }
}

fn utf8(headers: &[Header], name: &'static str) -> Result<Option<String>, DeadLetterError> {
    value(headers, name)?
        .map(|v| {
            std::str::from_utf8(v)
                .map(str::to_owned)
                .map_err(|_| DeadLetterError::BadUtf8 { header: name })
        })
        .transpose()
}

/// A big-endian number of `N` bytes (Spring's encoding).
fn be<const N: usize, T>(
    headers: &[Header],
    name: &'static str,
    from_be: fn([u8; N]) -> T,
) -> Result<Option<T>, DeadLetterError> {
    value(headers, name)?
        .map(|v| {
            <[u8; N]>::try_from(v)
                .map(from_be)
                .map_err(|_| DeadLetterError::BadLength {
                    header: name,
                    expected: N,
                    actual: v.len(),
                })
        })
        .transpose()
}

fn be_i32(headers: &[Header], name: &'static str) -> Result<Option<i32>, DeadLetterError> {
    be(headers, name, i32::from_be_bytes)
}

fn be_i64(headers: &[Header], name: &'static str) -> Result<Option<i64>, DeadLetterError> {
    be(headers, name, i64::from_be_bytes)
}

/// A number written as a decimal string (Connect), or, when it is not one, big-endian binary of
/// the type's width (some Streams versions).
fn lenient<const N: usize, T: std::str::FromStr>(
    headers: &[Header],
    name: &'static str,
    from_be: fn([u8; N]) -> T,
) -> Result<Option<T>, DeadLetterError> {
    let Some(v) = value(headers, name)? else {
        return Ok(None);
    };
    let decimal = !v.is_empty()
        && v.iter()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && *b == b'-'));
    if decimal {
        return std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or(DeadLetterError::BadNumber { header: name });
    }
    <[u8; N]>::try_from(v)
        .map(|bytes| Some(from_be(bytes)))
        .map_err(|_| DeadLetterError::BadNumber { header: name })
}

/// The header names of Kafka Connect's and Kafka Streams' dead letters (same shape: topic,
/// partition, offset as numbers, the exception's class, message and stack trace).
struct Family {
    format: DeadLetterFormat,
    topic: &'static str,
    partition: &'static str,
    offset: &'static str,
    group: Option<&'static str>,
    class: &'static str,
    message: &'static str,
    stacktrace: &'static str,
}

const CONNECT: Family = Family {
    format: DeadLetterFormat::Connect,
    topic: CONNECT_TOPIC,
    partition: CONNECT_PARTITION,
    offset: CONNECT_OFFSET,
    group: Some(CONNECT_CONNECTOR),
    class: CONNECT_EXCEPTION_CLASS,
    message: CONNECT_EXCEPTION_MESSAGE,
    stacktrace: CONNECT_STACKTRACE,
};

const STREAMS: Family = Family {
    format: DeadLetterFormat::Streams,
    topic: STREAMS_TOPIC,
    partition: STREAMS_PARTITION,
    offset: STREAMS_OFFSET,
    group: None,
    class: STREAMS_EXCEPTION,
    message: STREAMS_MESSAGE,
    stacktrace: STREAMS_STACKTRACE,
};

impl Family {
    fn read(&self, headers: &[Header], topic: String) -> Result<DeadLetterInfo, DeadLetterError> {
        Ok(DeadLetterInfo {
            format: self.format,
            original_topic: topic,
            original_partition: lenient(headers, self.partition, i32::from_be_bytes)?,
            original_offset: lenient(headers, self.offset, i64::from_be_bytes)?,
            original_timestamp: None,
            original_timestamp_type: None,
            group: self.group.map(|g| utf8(headers, g)).transpose()?.flatten(),
            exception_class: utf8(headers, self.class)?,
            cause_class: None,
            exception_message: utf8(headers, self.message)?,
            stacktrace: utf8(headers, self.stacktrace)?,
            attempts: None,
            failed_at_ms: None,
        })
    }
}

/// Reads a dead letter's error headers: Spring's `kafka_dlt-*` when present, else Kafka
/// Connect's, else Kafka Streams'. Hostile headers (null, wrong lengths, bad UTF-8) give a typed
/// [`DeadLetterError`]; an absent optional header gives `None`.
pub fn read_dead_letter(headers: &[Header]) -> Result<DeadLetterInfo, DeadLetterError> {
    if let Some(topic) = utf8(headers, ORIGINAL_TOPIC)? {
        return Ok(DeadLetterInfo {
            format: DeadLetterFormat::Spring,
            original_topic: topic,
            original_partition: be_i32(headers, ORIGINAL_PARTITION)?,
            original_offset: be_i64(headers, ORIGINAL_OFFSET)?,
            original_timestamp: be_i64(headers, ORIGINAL_TIMESTAMP)?,
            original_timestamp_type: utf8(headers, ORIGINAL_TIMESTAMP_TYPE)?,
            group: utf8(headers, ORIGINAL_CONSUMER_GROUP)?,
            exception_class: utf8(headers, EXCEPTION_FQCN)?,
            cause_class: utf8(headers, EXCEPTION_CAUSE_FQCN)?,
            exception_message: utf8(headers, EXCEPTION_MESSAGE)?,
            stacktrace: utf8(headers, EXCEPTION_STACKTRACE)?,
            attempts: be_i32(headers, ATTEMPTS)?
                .map(|a| {
                    u32::try_from(a).map_err(|_| DeadLetterError::BadNumber { header: ATTEMPTS })
                })
                .transpose()?,
            failed_at_ms: be_i64(headers, FAILURE_TIMESTAMP)?,
        });
    }
    for family in [&CONNECT, &STREAMS] {
        if let Some(topic) = utf8(headers, family.topic)? {
            return family.read(headers, topic);
        }
    }
    Err(DeadLetterError::NotADeadLetter)
}

/// The record that re-publishes dead letter `dead` to its original topic: its key, value and
/// non-error headers byte for byte, every error header stripped. The partition is the original
/// one when the dead letter kept it (same partition number in the dead-letter topic), otherwise
/// the partitioner's choice (the key decides). The timestamp is the time of sending.
pub fn redrive_record(dead: &ConsumerRecord) -> Result<ProducerRecord, DeadLetterError> {
    let info = read_dead_letter(&dead.headers)?;
    let partition = info
        .original_partition
        .filter(|p| *p >= 0 && *p == dead.partition);
    Ok(ProducerRecord {
        topic: info.original_topic.into(),
        partition,
        key: dead.key.clone(),
        value: dead.value.clone(),
        headers: dead
            .headers
            .iter()
            .filter(|h| !is_error_header(&h.key))
            .map(|h| (header_key(&h.key), h.value.clone()))
            .collect(),
        header_block: None,
        timestamp: None,
    })
}

#[cfg(test)]
mod tests;
