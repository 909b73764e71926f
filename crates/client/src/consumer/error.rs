//! [`ConsumeError`]: what `recv`, `poll` and the seek calls can fail with.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafkit_wire::record::RecordError;

use crate::error::Error;

/// Why the consumer could not return records (or do what was asked).
///
/// Errors about one partition name it; the other partitions go on being consumed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// A fetched batch failed its CRC check or could not be decoded. The partition stops at
    /// `offset` (no further fetches,
    /// [`current_position`](crate::consumer::Consumer::current_position) stays there) until
    /// the application seeks, e.g. to `offset + 1` to skip the bad record. Reported again by
    /// every `recv`/`poll` (at once, without waiting) until that seek (Java's rule): records
    /// of other partitions still come, the error between them, so a loop that only logs it
    /// spins; seek past it or stop.
    #[error("{topic}-{partition}: corrupt record batch at offset {offset}: {source}")]
    Corrupt {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The first offset that could not be read (the batch's base offset, or the position
        /// when that is inside the batch).
        offset: i64,
        /// What the decoder found.
        #[source]
        source: Arc<RecordError>,
    },
    /// The position is out of the log's range and `auto.offset.reset=none`. The partition
    /// stops until the application seeks.
    #[error("{topic}-{partition}: offset {offset} is out of range and auto.offset.reset=none")]
    OffsetOutOfRange {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position that was out of range.
        offset: i64,
    },
    /// The log was truncated below the position (KIP-320: the leader's log diverged from the
    /// epoch of the last record consumed) and `auto.offset.reset=none`. With another policy the
    /// consumer moves back to `divergent_offset` by itself. The partition stops until the
    /// application seeks.
    #[error(
        "{topic}-{partition}: log truncated below offset {offset} (diverges at {divergent_offset})"
    )]
    LogTruncation {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position when the truncation was found.
        offset: i64,
        /// The first offset that may differ from what was consumed.
        divergent_offset: i64,
    },
    /// The partition has no position (no committed offset, nothing sought) and
    /// `auto.offset.reset=none`. Seek to start consuming it.
    #[error("{topic}-{partition}: no offset to start from and auto.offset.reset=none")]
    NoOffset {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
    },
    /// The partition's leader refused the fetch with an error that retrying will not cure
    /// (e.g. `TOPIC_AUTHORIZATION_FAILED`). The partition stops until the application seeks.
    #[error("{topic}-{partition}: fetch failed with {code} (error code {})", code.code())]
    Broker {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// Kafka's error.
        code: ResponseError,
    },
    /// The partition is not assigned to this consumer (seek, pause, position…).
    #[error("{topic}-{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A client-level failure (connection, metadata, ListOffsets) that did not heal in time.
    #[error(transparent)]
    Client(#[from] Error),
    /// An operation that waits for the cluster did not finish in time.
    #[error("{operation} did not finish within {after:?}")]
    Timeout {
        /// What was waited for.
        operation: &'static str,
        /// How long.
        after: std::time::Duration,
    },
    /// The consumer is closed.
    #[error("the consumer is closed")]
    Closed,
    /// A negative timestamp given to `offsets_for_times` or `seek_to_timestamp` (Java's
    /// `IllegalArgumentException`; ListOffsets reads -1 and -2 as "end" and "beginning").
    #[error("{topic}-{partition}: timestamp {timestamp} is negative")]
    NegativeTimestamp {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The timestamp given.
        timestamp: i64,
    },
    /// A manual assignment and a group subscription were mixed (Java's
    /// `IllegalStateException`): `assign` while subscribed, or `subscribe` while partitions
    /// are assigned by hand. Call `unsubscribe` (which also drops a manual assignment) first.
    #[error("{operation} refused: the consumer {current}; call unsubscribe first")]
    SubscriptionConflict {
        /// The call refused (`assign`, `subscribe`).
        operation: &'static str,
        /// What the consumer is doing now.
        current: &'static str,
    },
    /// `group.protocol=consumer` (KIP-848) on a cluster that does not offer it: the brokers
    /// lack ConsumerGroupHeartbeat or refuse it (`UNSUPPORTED_VERSION`), as Kafka 3.x does by
    /// default. Reported once by `recv`/`poll`; later calls return it again at once (the
    /// member has stopped, nothing is retried). Not retriable: enable the protocol on the
    /// brokers or use `group.protocol=classic`.
    #[error(
        "the cluster does not support the consumer group protocol (group.protocol=consumer, \
         KIP-848): enable it on the brokers (Kafka 3.7-3.9: \
         group.coordinator.rebalance.protocols=classic,consumer; Kafka 4.0+: the group.version \
         feature at 1 or more, its default) or set group.protocol=classic on the consumer \
         ({source})"
    )]
    GroupProtocolUnsupported {
        /// What the broker said.
        #[source]
        source: Error,
    },
    /// Committing or fetching committed offsets failed (typed: rebalance in progress, stale
    /// generation, unknown or fenced member, coordinator unavailable after retries, …).
    #[error(transparent)]
    Commit(#[from] crate::state::group::commit::CommitError),
}

impl ConsumeError {
    /// The consumer's error for a group member's fatal `err`: [`Self::GroupProtocolUnsupported`]
    /// when the brokers do not offer KIP-848 ConsumerGroupHeartbeat, else [`Self::Client`].
    pub(crate) fn from_group_member(err: Error) -> ConsumeError {
        if is_group_protocol_unsupported(&err) {
            ConsumeError::GroupProtocolUnsupported { source: err }
        } else {
            ConsumeError::Client(err)
        }
    }

    /// Whether calling again may succeed without the application doing anything.
    pub fn is_retriable(&self) -> bool {
        match self {
            ConsumeError::Client(e) => e.is_retriable(),
            ConsumeError::Commit(e) => e.is_retriable(),
            _ => false,
        }
    }

    /// The partition the error is about, if it is about one.
    pub fn partition(&self) -> Option<(&str, i32)> {
        match self {
            ConsumeError::Corrupt {
                topic, partition, ..
            }
            | ConsumeError::OffsetOutOfRange {
                topic, partition, ..
            }
            | ConsumeError::LogTruncation {
                topic, partition, ..
            }
            | ConsumeError::NoOffset { topic, partition }
            | ConsumeError::Broker {
                topic, partition, ..
            } => Some((topic, *partition)),
            ConsumeError::NegativeTimestamp {
                topic, partition, ..
            } => Some((topic, *partition)),
            ConsumeError::NotAssigned { topic, partition } => Some((topic, *partition)),
            _ => None,
        }
    }
}

/// Whether `err` says the brokers lack the KIP-848 protocol: ConsumerGroupHeartbeat missing
/// from ApiVersions, or answered with `UNSUPPORTED_VERSION` (a 3.x group coordinator without
/// `consumer` in `group.coordinator.rebalance.protocols`).
pub(crate) fn is_group_protocol_unsupported(err: &Error) -> bool {
    use kafka_protocol::messages::ApiKey;
    use kafkit_wire::api::NegotiationError;
    match err {
        Error::Negotiation {
            source:
                NegotiationError::NotOffered { api } | NegotiationError::NoCommonVersion { api, .. },
            ..
        } => *api == ApiKey::ConsumerGroupHeartbeat,
        Error::Broker {
            api: ApiKey::ConsumerGroupHeartbeat,
            code: ResponseError::UnsupportedVersion,
            ..
        } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;
    use kafkit_wire::api::NegotiationError;

    #[test]
    fn a_cluster_without_kip848_is_a_typed_error_naming_the_settings() {
        let refused = Error::Broker {
            api: ApiKey::ConsumerGroupHeartbeat,
            code: ResponseError::UnsupportedVersion,
            message: None,
        };
        let not_offered = Error::Negotiation {
            broker: "b:9092".into(),
            source: NegotiationError::NotOffered {
                api: ApiKey::ConsumerGroupHeartbeat,
            },
        };
        for err in [refused, not_offered] {
            let e = ConsumeError::from_group_member(err);
            assert!(matches!(e, ConsumeError::GroupProtocolUnsupported { .. }));
            assert!(!e.is_retriable());
            let text = e.to_string();
            assert!(text.contains("group.coordinator.rebalance.protocols=classic,consumer"));
            assert!(text.contains("group.protocol=classic"));
        }
        let other = Error::Broker {
            api: ApiKey::JoinGroup,
            code: ResponseError::UnsupportedVersion,
            message: None,
        };
        assert!(matches!(
            ConsumeError::from_group_member(other),
            ConsumeError::Client(_)
        ));
    }
}
