//! The one error type of kafkit-events, in the seeds' categories.
//!
//! Every variant carries the context needed to act on it (the topic, the event type, the setting's
//! name) and [`EventsError::is_retriable`] says whether trying again can help. A record that could
//! not be decoded keeps its raw bytes in a [`RawRecord`] so a dead-letter queue can store it byte
//! for byte.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use kafkit::consumer::ConsumerRecord;

use crate::cloudevents::HeaderError;
use crate::wire_format::FrameError;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error of the event layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    /// A setting is missing, malformed or conflicts with another; `setting` names it (a Java /
    /// Confluent property name, an environment variable or a Rust field).
    #[error("configuration: {setting}: {message}")]
    Configuration {
        /// The setting's name (for example `use.latest.version`).
        setting: String,
        /// What is wrong with it (never the value of a secret).
        message: String,
    },
    /// The Kafka producer failed to send an event.
    #[error("producer: topic {topic}: {source}")]
    Producer {
        /// The topic the event was sent to.
        topic: String,
        /// The client's error.
        #[source]
        source: kafkit::Error,
    },
    /// The Kafka consumer failed.
    #[error("consumer: {context}: {source}")]
    Consumer {
        /// What the consumer was doing.
        context: String,
        /// The client's error.
        #[source]
        source: kafkit::Error,
    },
    /// The Kafka consumer failed while fetching, in its group or committing (its typed error).
    #[error("consumer: {context}: {source}")]
    Consume {
        /// What the consumer was doing.
        context: String,
        /// The consumer's error.
        #[source]
        source: kafkit::consumer::ConsumeError,
    },
    /// An event could not be encoded (payload to bytes, envelope to headers).
    #[error("serialization of {event_type} for topic {topic}: {message}")]
    Serialization {
        /// The topic the event was meant for.
        topic: String,
        /// The event's type.
        event_type: String,
        /// What went wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A record could not be decoded into an event; the record is kept, unchanged.
    #[error("{0}")]
    Deserialization(Box<DecodeError>),
    /// A payload does not satisfy its JSON Schema (refused before it is sent, or on decode).
    #[error("schema validation of {event_type} for topic {topic}: {}", format_issues(.issues))]
    SchemaValidation {
        /// The topic.
        topic: String,
        /// The event's type.
        event_type: String,
        /// Each violation with its JSON pointer path.
        issues: Vec<ValidationIssue>,
        /// The raw record when the failure happened while decoding.
        record: Option<Box<RawRecord>>,
    },
    /// The schema registry failed or refused.
    #[error("schema registry: {context}: {source}")]
    Registry {
        /// What was being asked (for example `register subject orders-value`).
        context: String,
        /// The registry's error.
        #[source]
        source: crate::registry::RegistryError,
    },
    /// The exactly-once consumer's transactional pipeline could not start or stopped: fenced
    /// by a newer instance with the same `transactional.id`, a fatal broker error, a commit
    /// that kept timing out, a poll error that is not retriable. Its open transaction, if any,
    /// is aborted: the input is read again by the next owner.
    #[error("exactly-once consumer: {context}: {source}")]
    Transaction {
        /// What the consumer was doing.
        context: String,
        /// The pipeline's error.
        #[source]
        source: kafkit::pipeline::PipelineError,
    },
    /// An operation did not finish in time.
    #[error("timeout: {operation} did not finish within {after:?}")]
    Timeout {
        /// The operation (for example `flush`).
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },
}

fn format_issues(issues: &[ValidationIssue]) -> String {
    let mut out = String::new();
    for (i, issue) in issues.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&issue.to_string());
    }
    out
}

impl EventsError {
    /// Whether trying the same operation again may succeed: transient client errors, registry
    /// errors the registry marks retriable, and timeouts. Configuration, serialization, decode and
    /// schema-validation errors are never retriable (the same input fails the same way).
    pub fn is_retriable(&self) -> bool {
        match self {
            EventsError::Producer { source, .. } | EventsError::Consumer { source, .. } => {
                source.is_retriable()
            }
            EventsError::Consume { source, .. } => source.is_retriable(),
            EventsError::Registry { source, .. } => source.is_retriable(),
            EventsError::Timeout { .. } => true,
            EventsError::Transaction { source, .. } => !source.is_fatal(),
            EventsError::Configuration { .. }
            | EventsError::Serialization { .. }
            | EventsError::Deserialization(_)
            | EventsError::SchemaValidation { .. } => false,
        }
    }

    /// The raw record this error is about, when it happened while decoding one.
    pub fn raw_record(&self) -> Option<&RawRecord> {
        match self {
            EventsError::Deserialization(e) => Some(&e.record),
            EventsError::SchemaValidation { record, .. } => record.as_deref(),
            _ => None,
        }
    }

    /// A configuration error naming `setting`.
    pub fn configuration(setting: impl Into<String>, message: impl Into<String>) -> Self {
        EventsError::Configuration {
            setting: setting.into(),
            message: message.into(),
        }
    }

    /// A decode error for `record`.
    pub fn decode(record: RawRecord, kind: DecodeErrorKind) -> Self {
        EventsError::Deserialization(Box::new(DecodeError { record, kind }))
    }
}

/// One JSON-Schema violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// JSON pointer into the payload (`/amount`), empty for the root.
    pub instance_path: String,
    /// JSON pointer into the schema (`/properties/amount/minimum`).
    pub schema_path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "at {at}: {}", self.message)?;
        if !self.schema_path.is_empty() {
            write!(f, " (schema {})", self.schema_path)?;
        }
        Ok(())
    }
}

/// A consumed record exactly as it came off the wire, kept so that a dead-letter queue can
/// republish it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch; -1 when none).
    pub timestamp: i64,
    /// The key.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Option<Bytes>,
    /// The headers, in order; keys as bytes (they need not be UTF-8).
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

impl RawRecord {
    /// A copy of `record` (cheap: the byte buffers are reference-counted).
    pub fn from_consumer_record(record: &ConsumerRecord) -> Self {
        RawRecord {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect(),
        }
    }
}

impl From<&ConsumerRecord> for RawRecord {
    fn from(record: &ConsumerRecord) -> Self {
        RawRecord::from_consumer_record(record)
    }
}

/// Why a record could not be decoded, and the record itself.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {}-{}@{}: {kind}", record.topic, record.partition, record.offset)]
pub struct DecodeError {
    /// The record, unchanged.
    pub record: RawRecord,
    /// What was wrong with it.
    #[source]
    pub kind: DecodeErrorKind,
}

/// What was wrong with a record that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The CloudEvents headers are missing, duplicated or malformed.
    #[error("headers: {0}")]
    Headers(#[from] HeaderError),
    /// The Confluent frame (magic byte, schema id) is malformed.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// The value is null (a tombstone) where an event was expected.
    #[error("the value is null (a tombstone)")]
    NullValue,
    /// The record's `ce_type` is not the type asked for.
    #[error("event type {found:?}, expected {expected:?}")]
    EventTypeMismatch {
        /// The type the caller decodes into.
        expected: String,
        /// The record's type.
        found: String,
    },
    /// The schema id in the frame is not known to the registry.
    #[error("unknown schema id {0}")]
    UnknownSchemaId(u32),
    /// The registry could not be asked for the writer's schema.
    #[error("schema registry: {0}")]
    Registry(#[source] crate::registry::RegistryError),
    /// The writer's schema (from the registry) could not be parsed, or cannot be resolved to the
    /// reader's schema.
    #[error("schema: {0}")]
    Schema(String),
    /// The payload does not match its writer's schema (truncated, bad varint, bad union index…).
    #[error("payload does not match its schema: {0}")]
    Payload(String),
    /// A length in the payload asks for more memory than the configured cap.
    #[error("a length in the payload needs {desired:?} bytes, over the cap of {maximum} bytes")]
    AllocationLimit {
        /// What the payload asked for, when known.
        desired: Option<usize>,
        /// The cap (`max.allocation.bytes`).
        maximum: usize,
    },
    /// Bytes were left after the payload.
    #[error("{0} trailing bytes after the payload")]
    TrailingBytes(usize),
    /// The decoded value does not fit the reader's Rust type.
    #[error("payload does not fit the reader's type: {0}")]
    Type(String),
    /// The JSON payload is not valid JSON (or not the reader's shape).
    #[error("bad JSON: {0}")]
    Json(String),
    /// The content type is not one this codec reads.
    #[error("content type {0:?} is not one this codec reads")]
    ContentType(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;

    #[test]
    fn retriable_by_category() {
        assert!(!EventsError::configuration("x", "y").is_retriable());
        assert!(EventsError::Timeout {
            operation: "flush".into(),
            after: Duration::from_secs(1)
        }
        .is_retriable());
        let unreachable = RegistryError::Unreachable {
            urls: vec!["http://127.0.0.1:1".into()],
            attempts: 4,
            message: "refused".into(),
        };
        let e = EventsError::Registry {
            context: "register".into(),
            source: unreachable,
        };
        assert!(e.is_retriable());
        assert!(e.to_string().contains("register"), "{e}");
        let decode = EventsError::decode(
            RawRecord {
                topic: "t".into(),
                offset: 9,
                value: Some(Bytes::from_static(b"\x07")),
                ..RawRecord::default()
            },
            DecodeErrorKind::NullValue,
        );
        assert!(!decode.is_retriable());
        assert_eq!(decode.raw_record().map(|r| r.offset), Some(9));
        assert_eq!(
            decode.to_string(),
            "cannot decode t-0@9: the value is null (a tombstone)"
        );
        let invalid = EventsError::SchemaValidation {
            topic: "t".into(),
            event_type: "a.b".into(),
            issues: vec![ValidationIssue {
                instance_path: "/amount".into(),
                schema_path: "/properties/amount/minimum".into(),
                message: "-1 is less than the minimum of 0".into(),
            }],
            record: None,
        };
        assert!(!invalid.is_retriable());
        assert!(invalid.to_string().contains("at /amount: -1"), "{invalid}");
    }

    #[test]
    fn an_issue_without_a_schema_path_does_not_print_an_empty_one() {
        let issue = ValidationIssue {
            instance_path: "/amount".into(),
            schema_path: String::new(),
            message: "must be positive".into(),
        };
        assert_eq!(issue.to_string(), "at /amount: must be positive");
        let issue = ValidationIssue {
            schema_path: "/properties/amount/minimum".into(),
            ..issue
        };
        assert_eq!(
            issue.to_string(),
            "at /amount: must be positive (schema /properties/amount/minimum)"
        );
    }
}
