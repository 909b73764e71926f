//! Non-blocking retry topics (the retry-topic pattern of Spring Kafka), sans-IO: a record whose
//! handler failed is re-published to `<topic>-retry-<n>` with the time it is due, and its source
//! partition goes on at once; the consumer of the retry topic holds it until it is due. For
//! backoffs too long to wait in place with the partition paused.
//!
//! This module decides names, stages and due times and builds the retry record; the consumer's
//! driver does not use it yet (no builder setting: retries wait in place), see DESIGN.md.
//!
//! The retry record keeps the original key, value and headers byte for byte (earlier
//! `kafkit_retry-*` headers replaced) and adds:
//!
//! | header | encoding |
//! |---|---|
//! | `kafkit_retry-original-topic` | UTF-8: the topic the record was first published to |
//! | `kafkit_retry-attempts` | u32 big-endian: handler calls made so far, over all topics |
//! | `kafkit_retry-due` | i64 big-endian: ms since the epoch before which it is not handled |
//!
//! ```
//! use std::time::Duration;
//! use kafkit_events::consume::retry_topic::{RetryTopicPolicy, Stage};
//!
//! let policy = RetryTopicPolicy::new([Duration::from_secs(60), Duration::from_secs(600)]).unwrap();
//! assert_eq!(policy.topics("orders"), ["orders-retry-1", "orders-retry-2"]);
//! // A failure in the source topic at t = 1,000 ms goes to the first retry topic, due a minute later.
//! assert_eq!(
//!     policy.after_failure("orders", 1_000),
//!     Stage::Retry { topic: "orders-retry-1".into(), due_ms: 61_000 }
//! );
//! // A failure in the last retry topic is a dead letter.
//! assert_eq!(policy.after_failure("orders-retry-2", 0), Stage::DeadLetter);
//! ```

use std::time::Duration;

use bytes::Bytes;
use kafkit::producer::{HeaderName, ProducerRecord};

use crate::error::{EventsError, RawRecord};

/// kafkit's header: the topic the record was first published to (UTF-8).
pub const ORIGINAL_TOPIC: &str = "kafkit_retry-original-topic";
/// kafkit's header: handler calls made so far, over all topics (u32 BE).
pub const ATTEMPTS: &str = "kafkit_retry-attempts";
/// kafkit's header: not handled before this time (i64 BE, ms since the epoch).
pub const DUE: &str = "kafkit_retry-due";
/// The prefix of every retry header (stripped before new ones are written).
pub const HEADER_PREFIX: &str = "kafkit_retry-";
/// What comes between the source topic and the stage number.
pub const TOPIC_INFIX: &str = "-retry-";
/// The most retry topics per source topic.
pub const MAX_RETRY_TOPICS: usize = 16;
/// The longest delay of one retry topic.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

const SETTING: &str = "events.retry.topics.delays";

/// One retry topic per delay, in order: a record that fails in the source topic goes to the
/// first, one that fails there to the second, and so on; one that fails in the last is a dead
/// letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryTopicPolicy {
    delays: Vec<Duration>,
}

/// Where a record goes after its handler failed (for good in its current topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Re-publish it to `topic`, not to be handled before `due_ms`.
    Retry {
        /// The retry topic.
        topic: String,
        /// Ms since the epoch.
        due_ms: i64,
    },
    /// No retry topic left: write the dead letter.
    DeadLetter,
}

impl RetryTopicPolicy {
    /// A policy with these delays (one retry topic each). Refused, naming
    /// `events.retry.topics.delays`: none, more than [`MAX_RETRY_TOPICS`], a zero delay or one
    /// over [`MAX_DELAY`].
    pub fn new(delays: impl IntoIterator<Item = Duration>) -> Result<Self, EventsError> {
        let delays: Vec<Duration> = delays.into_iter().collect();
        if delays.is_empty() || delays.len() > MAX_RETRY_TOPICS {
            return Err(EventsError::configuration(
                SETTING,
                format!(
                    "{} retry topics: between 1 and {MAX_RETRY_TOPICS}",
                    delays.len()
                ),
            ));
        }
        if let Some(bad) = delays.iter().find(|d| d.is_zero() || **d > MAX_DELAY) {
            return Err(EventsError::configuration(
                SETTING,
                format!("a delay of {bad:?}: more than zero and at most 7 days"),
            ));
        }
        Ok(RetryTopicPolicy { delays })
    }

    /// The delays, one per retry topic.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The retry topics of `source`, in order (to create and subscribe to with it).
    pub fn topics(&self, source: &str) -> Vec<String> {
        (1..=self.delays.len())
            .map(|n| format!("{source}{TOPIC_INFIX}{n}"))
            .collect()
    }

    /// Which stage `topic` is: `(topic, 0)` for a topic that is not one of this policy's retry
    /// topics, `(source, n)` for `<source>-retry-<n>` with `n` in `1..=delays` (no leading
    /// zero).
    pub fn stage_of<'a>(&self, topic: &'a str) -> (&'a str, usize) {
        if let Some((source, n)) = topic.rsplit_once(TOPIC_INFIX) {
            let is_number = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            if let (true, Ok(n)) = (is_number && !n.starts_with('0'), n.parse::<usize>()) {
                if (1..=self.delays.len()).contains(&n) && !source.is_empty() {
                    return (source, n);
                }
            }
        }
        (topic, 0)
    }

    /// Where a record of `topic` goes when its handler gave up on it there at `now_ms`
    /// (non-retriable errors go to the dead letter directly, not through here).
    pub fn after_failure(&self, topic: &str, now_ms: i64) -> Stage {
        let (source, stage) = self.stage_of(topic);
        match self.delays.get(stage) {
            Some(delay) => Stage::Retry {
                topic: format!("{source}{TOPIC_INFIX}{}", stage + 1),
                due_ms: now_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            },
            None => Stage::DeadLetter,
        }
    }
}

/// What a record's retry headers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryInfo {
    /// The topic the record was first published to.
    pub original_topic: Option<String>,
    /// Handler calls made before it was re-published.
    pub attempts: Option<u32>,
    /// Not handled before this time (ms since the epoch).
    pub due_ms: Option<i64>,
}

impl RetryInfo {
    /// How long to hold the record at `now_ms` (`None`: handle it now).
    pub fn wait(&self, now_ms: i64) -> Option<Duration> {
        let due = self.due_ms?;
        (due > now_ms).then(|| Duration::from_millis(due.saturating_sub(now_ms).unsigned_abs()))
    }
}

/// Why retry headers could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryHeaderError {
    /// A header appears more than once.
    #[error("retry header {0} appears more than once")]
    Repeated(&'static str),
    /// A header is null or has the wrong size or encoding.
    #[error("retry header {0} is malformed")]
    Malformed(&'static str),
}

/// Reads the retry headers of a record's header pairs (a record with none: all `None`).
pub fn read_retry_headers<'a, I>(headers: I) -> Result<RetryInfo, RetryHeaderError>
where
    I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    let mut info = RetryInfo::default();
    for (key, value) in headers {
        let name = match key {
            k if k == ORIGINAL_TOPIC.as_bytes() => ORIGINAL_TOPIC,
            k if k == ATTEMPTS.as_bytes() => ATTEMPTS,
            k if k == DUE.as_bytes() => DUE,
            _ => continue,
        };
        let value = value.ok_or(RetryHeaderError::Malformed(name))?;
        let malformed = || RetryHeaderError::Malformed(name);
        match name {
            ORIGINAL_TOPIC => {
                let topic = std::str::from_utf8(value).map_err(|_| malformed())?;
                if topic.is_empty() {
                    return Err(malformed());
                }
                set_once(&mut info.original_topic, topic.to_owned(), name)?;
            }
            ATTEMPTS => {
                let bytes: [u8; 4] = value.try_into().map_err(|_| malformed())?;
                set_once(&mut info.attempts, u32::from_be_bytes(bytes), name)?;
            }
            _ => {
                let bytes: [u8; 8] = value.try_into().map_err(|_| malformed())?;
                set_once(&mut info.due_ms, i64::from_be_bytes(bytes), name)?;
            }
        }
    }
    Ok(info)
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), RetryHeaderError> {
    if slot.is_some() {
        return Err(RetryHeaderError::Repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

/// The record to re-publish to `topic` (a retry topic), due at `due_ms`, after `attempts`
/// handler calls in all: key, value and headers byte for byte (earlier `kafkit_retry-*`
/// headers replaced), the source partition kept (retry topics are created with the source's
/// partition count, so per-key order holds) when `partitions` says it exists there.
pub fn retry_record(
    raw: &RawRecord,
    topic: &str,
    due_ms: i64,
    attempts: u32,
    partitions: Option<i32>,
) -> ProducerRecord {
    let previous = read_retry_headers(raw.headers.iter().map(|(k, v)| (k.as_ref(), v.as_deref())))
        .ok()
        .and_then(|info| info.original_topic);
    let original = previous.unwrap_or_else(|| raw.topic.clone());
    let mut headers: Vec<(HeaderName, Option<Bytes>)> = raw
        .headers
        .iter()
        .filter(|(k, _)| !k.starts_with(HEADER_PREFIX.as_bytes()))
        .map(|(k, v)| {
            (
                HeaderName::from(String::from_utf8_lossy(k).into_owned()),
                v.clone(),
            )
        })
        .collect();
    headers.push((ORIGINAL_TOPIC.into(), Some(Bytes::from(original))));
    headers.push((
        ATTEMPTS.into(),
        Some(Bytes::copy_from_slice(&attempts.to_be_bytes())),
    ));
    headers.push((
        DUE.into(),
        Some(Bytes::copy_from_slice(&due_ms.to_be_bytes())),
    ));
    let mut record = ProducerRecord::new(topic.to_owned());
    record.key = raw.key.clone();
    record.value = raw.value.clone();
    record.headers = headers;
    record.partition = (raw.partition >= 0 && partitions.is_none_or(|n| raw.partition < n))
        .then_some(raw.partition);
    record
}

#[cfg(test)]
mod tests;
