//! When an admin call tries again, as Java's `KafkaAdminClient` does with its `Call`s.
//!
//! A call has a deadline: `default.api.timeout.ms` (60 s) after it starts. Each attempt's
//! request waits at most `request.timeout.ms`, cut to the time left. After a failed attempt:
//!
//! - a retriable failure is tried again: a connection refused, reset or closed, a request
//!   timeout, a reconnect backoff ([`Error::is_retriable`]), and the error codes of
//!   [`retries_call`]: `NOT_CONTROLLER`, `LEADER_NOT_AVAILABLE`, `NOT_LEADER_OR_FOLLOWER`,
//!   `COORDINATOR_LOAD_IN_PROGRESS`, `NOT_COORDINATOR`, `COORDINATOR_NOT_AVAILABLE`,
//!   `REQUEST_TIMED_OUT`, `NETWORK_EXCEPTION`, `THROTTLING_QUOTA_EXCEEDED` (a call to partition
//!   leaders also retries every other code Kafka marks retriable, such as
//!   `UNKNOWN_TOPIC_OR_PARTITION` from a leader that has not heard of a new topic yet, as
//!   Java's leader calls do — but not a topic-level error of the Metadata answer that locates
//!   the leaders: a topic the metadata does not know ends the call at once, as Java's
//!   `listOffsets` since KAFKA-15425);
//! - any other error (`TOPIC_ALREADY_EXISTS`, `INVALID_REPLICATION_FACTOR`, an authorization
//!   failure, `UNKNOWN_TOPIC_OR_PARTITION` from DeleteTopics, a bad answer, …) ends the call at
//!   once with that error. Java's per-resource answers fail the same way;
//! - a retriable one is tried again
//!   after `retry.backoff.ms`, doubling per failure up to `retry.backoff.max.ms` with ±20%
//!   jitter (KIP-580), with fresh metadata first when the call goes to a partition leader;
//! - when that wait would reach the deadline, the call ends with [`Error::AdminTimeout`],
//!   which names the call, how long it tried, how many attempts it made and the last failure.
//!
//! Where the next attempt goes is the caller's part: a call for any broker asks the least
//! loaded live connection, and a broker whose connection failed is backing off (its reconnect
//! backoff), so the next attempt goes to another broker when there is one; a coordinator call
//! looks its coordinator up again after a coordinator error or a connection failure
//! (`io/coordinator.rs`).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use kafka_protocol::error::ResponseError;
//! use kafka_protocol::messages::ApiKey;
//! use kafkit::state::admin_retry::{AdminRetry, NextStep, Route};
//! use kafkit::state::backoff::ExponentialBackoff;
//! use kafkit::state::rng::XorShift64Star;
//! use kafkit::Error;
//!
//! let start = Instant::now();
//! let backoff = ExponentialBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
//! let mut call = AdminRetry::new("create_topics", Route::AnyBroker, start, Duration::from_secs(60), backoff);
//! let mut rng = XorShift64Star::new(7);
//!
//! // The controller moved: retried after about 100 ms.
//! let moved = Error::Broker { api: ApiKey::CreateTopics, code: ResponseError::NotController, message: None };
//! match call.failed(moved, start, &mut rng) {
//!     NextStep::Retry { after, .. } => assert!(after <= Duration::from_millis(120)),
//!     NextStep::Fail(err) => panic!("{err}"),
//! }
//! // The topic exists: the call ends at once with that error.
//! let exists = Error::Broker { api: ApiKey::CreateTopics, code: ResponseError::TopicAlreadyExists, message: None };
//! assert!(matches!(call.failed(exists, start, &mut rng), NextStep::Fail(Error::Broker { .. })));
//! ```

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::backoff::ExponentialBackoff;
use super::rng::RandomSource;
use crate::error::Error;

/// Where an admin call's requests go, which decides what a retry does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Any broker (CreateTopics, DescribeConfigs, the ACL calls, …): the next attempt takes
    /// the least loaded live connection.
    AnyBroker,
    /// A given broker (a broker's configs, ListGroups or ListTransactions to each broker).
    Broker,
    /// Partition leaders (ListOffsets, DeleteRecords, DescribeProducers, …): the next attempt
    /// refreshes the metadata first.
    Leader,
    /// A group or transaction coordinator: looked up again after a coordinator error.
    Coordinator,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone)]
pub enum NextStep {
    /// Try again after `after`.
    Retry {
        /// The backoff to wait first.
        after: Duration,
        /// Whether to refresh the metadata before the next attempt (a leader moved or is not
        /// known yet).
        refresh_metadata: bool,
    },
    /// The call ends with this error: the attempt's own (not retriable), or
    /// [`Error::AdminTimeout`] naming it (the deadline would pass).
    Fail(Error),
}

/// The retry state of one admin call. Pure: the caller passes the clock and the random
/// source. Call [`AdminRetry::request_timeout`] before each attempt and
/// [`AdminRetry::failed`] after each failed one.
#[derive(Debug, Clone)]
pub struct AdminRetry {
    call: &'static str,
    route: Route,
    started: Instant,
    deadline: Instant,
    backoff: ExponentialBackoff,
    failures: u32,
}

impl AdminRetry {
    /// A call named `call` (as the method users call, e.g. `"create_topics"`) that starts at
    /// `now` and may go on for `api_timeout` (`default.api.timeout.ms`), waiting `backoff`
    /// (`retry.backoff.ms` up to `retry.backoff.max.ms`) between attempts.
    pub fn new(
        call: &'static str,
        route: Route,
        now: Instant,
        api_timeout: Duration,
        backoff: ExponentialBackoff,
    ) -> AdminRetry {
        AdminRetry {
            call,
            route,
            started: now,
            deadline: now + api_timeout,
            backoff,
            failures: 0,
        }
    }

    /// When the call gives up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The timeout of a request sent at `now`: `request_timeout` (`request.timeout.ms`) cut
    /// to the time left, or `None` once the deadline has passed.
    pub fn request_timeout(&self, now: Instant, request_timeout: Duration) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(now)?;
        if left.is_zero() {
            return None;
        }
        Some(request_timeout.min(left))
    }

    /// The error that ends the call at `now` after `last`, when the deadline allows no more
    /// attempts.
    pub fn timed_out(&self, now: Instant, last: Error) -> Error {
        Error::AdminTimeout {
            call: self.call,
            after: now.saturating_duration_since(self.started),
            attempts: self.failures.max(1),
            last: Box::new(last),
        }
    }

    /// Records a failed attempt (`err`, at `now`) and says whether and when to try again.
    pub fn failed<R: RandomSource + ?Sized>(
        &mut self,
        err: Error,
        now: Instant,
        rng: &mut R,
    ) -> NextStep {
        if !self.is_retriable(&err) {
            return NextStep::Fail(err);
        }
        let pause = self.backoff.backoff(self.failures, rng);
        self.failures = self.failures.saturating_add(1);
        if now + pause >= self.deadline {
            return NextStep::Fail(self.timed_out(now, err));
        }
        NextStep::Retry {
            after: pause,
            refresh_metadata: self.needs_metadata(&err),
        }
    }

    /// Whether `err` is one this call tries again (see the module doc).
    pub fn is_retriable(&self, err: &Error) -> bool {
        match err {
            // A topic-level error of the Metadata answer that locates the leaders describes the
            // topic (Java's listOffsets fails a topic missing from metadata at once,
            // KAFKA-15425); only the codes every call retries ask again.
            Error::Broker {
                api: ApiKey::Metadata,
                code,
                ..
            } if self.route == Route::Leader => retries_call(*code),
            Error::Broker { code, .. } if self.route == Route::Leader => code.is_retriable(),
            Error::Broker { code, .. } => retries_call(*code),
            // The inner loop of a coordinator call ran out of time: that is the last failure.
            Error::AdminTimeout { .. } => false,
            other => other.is_retriable(),
        }
    }

    fn needs_metadata(&self, err: &Error) -> bool {
        match self.route {
            Route::Leader => true,
            Route::Broker => matches!(err, Error::UnknownBroker { .. }),
            Route::AnyBroker | Route::Coordinator => matches!(
                err,
                Error::Broker {
                    code: ResponseError::NotController,
                    ..
                }
            ),
        }
    }
}

/// Whether an error code answered for a request to any broker, a given broker or a
/// coordinator retries the call (see the module doc). Codes Kafka marks retriable but that
/// describe the resource asked about (`UNKNOWN_TOPIC_OR_PARTITION`, …) end it.
///
/// ```
/// use kafka_protocol::error::ResponseError;
/// use kafkit::state::admin_retry::retries_call;
///
/// assert!(retries_call(ResponseError::NotController));
/// assert!(!retries_call(ResponseError::UnknownTopicOrPartition));
/// assert!(!retries_call(ResponseError::TopicAlreadyExists));
/// ```
pub fn retries_call(code: ResponseError) -> bool {
    matches!(
        code,
        ResponseError::NotController
            | ResponseError::LeaderNotAvailable
            | ResponseError::NotLeaderOrFollower
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::NotCoordinator
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::RequestTimedOut
            | ResponseError::NetworkException
            | ResponseError::ThrottlingQuotaExceeded
    )
}

/// Whether a topic-level error in a CreateTopics or DeleteTopics answer asks that topic again
/// (the others are not): `NOT_CONTROLLER` and `THROTTLING_QUOTA_EXCEEDED`, as Java's
/// `createTopics` / `deleteTopics` retry them. Any other topic-level error is that topic's
/// answer.
///
/// ```
/// use kafka_protocol::error::ResponseError;
/// use kafkit::state::admin_retry::retries_topic;
///
/// assert!(retries_topic(ResponseError::NotController));
/// assert!(!retries_topic(ResponseError::RequestTimedOut));
/// assert!(!retries_topic(ResponseError::UnknownTopicOrPartition));
/// ```
pub fn retries_topic(code: ResponseError) -> bool {
    matches!(
        code,
        ResponseError::NotController | ResponseError::ThrottlingQuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::rng::XorShift64Star;
    use std::sync::Arc;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn broker(code: ResponseError) -> Error {
        Error::Broker {
            api: ApiKey::CreateTopics,
            code,
            message: None,
        }
    }

    fn refused() -> Error {
        Error::Connect {
            broker: "127.0.0.1:1".into(),
            source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        }
    }

    fn call(route: Route, start: Instant, timeout: Duration) -> AdminRetry {
        AdminRetry::new(
            "test_call",
            route,
            start,
            timeout,
            ExponentialBackoff::new(ms(100), ms(1_000)),
        )
    }

    #[test]
    fn retriable_failures_back_off_exponentially_up_to_the_cap() {
        let start = Instant::now();
        let mut c = call(Route::AnyBroker, start, Duration::from_secs(60));
        let mut rng = XorShift64Star::new(3);
        let mut waits = Vec::new();
        for _ in 0..6 {
            match c.failed(refused(), start, &mut rng) {
                NextStep::Retry { after, .. } => waits.push(after),
                NextStep::Fail(err) => panic!("{err}"),
            }
        }
        assert!(waits[0] >= ms(80) && waits[0] < ms(120), "{waits:?}");
        assert!(waits[1] >= ms(160) && waits[1] < ms(240), "{waits:?}");
        assert!(waits[2] >= ms(320) && waits[2] < ms(480), "{waits:?}");
        assert!(waits[5] <= ms(1_000), "{waits:?}");
        assert_eq!(c.failures(), 6);
    }

    #[test]
    fn every_retriable_case_of_the_java_client_is_retried() {
        let start = Instant::now();
        let mut rng = XorShift64Star::new(3);
        for err in [
            refused(),
            Error::ConnectionClosed {
                broker: "b".into(),
                api: ApiKey::CreateTopics,
            },
            Error::RequestTimedOut {
                broker: "b".into(),
                api: ApiKey::CreateTopics,
                after: ms(30_000),
            },
            broker(ResponseError::NotController),
            broker(ResponseError::LeaderNotAvailable),
            broker(ResponseError::NotLeaderOrFollower),
            broker(ResponseError::CoordinatorLoadInProgress),
            broker(ResponseError::NotCoordinator),
            broker(ResponseError::RequestTimedOut),
        ] {
            let mut c = call(Route::AnyBroker, start, Duration::from_secs(60));
            assert!(
                matches!(
                    c.failed(err.clone(), start, &mut rng),
                    NextStep::Retry { .. }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn a_non_retriable_error_ends_the_call_at_once_unchanged() {
        let start = Instant::now();
        let mut rng = XorShift64Star::new(3);
        for code in [
            ResponseError::TopicAlreadyExists,
            ResponseError::InvalidReplicationFactor,
            ResponseError::TopicAuthorizationFailed,
            ResponseError::UnknownTopicOrPartition,
        ] {
            let mut c = call(Route::AnyBroker, start, Duration::from_secs(60));
            match c.failed(broker(code), start, &mut rng) {
                NextStep::Fail(Error::Broker { code: got, .. }) => assert_eq!(got, code),
                other => panic!("{code}: {other:?}"),
            }
            assert_eq!(c.failures(), 0);
        }
    }

    #[test]
    fn the_deadline_ends_the_call_with_a_timeout_naming_the_last_failure() {
        let start = Instant::now();
        let mut c = call(Route::AnyBroker, start, ms(1_000));
        let mut rng = XorShift64Star::new(3);
        let mut now = start;
        let last = loop {
            match c.failed(refused(), now, &mut rng) {
                NextStep::Retry { after, .. } => now += after,
                NextStep::Fail(err) => break err,
            }
            assert!(now < start + ms(1_000));
        };
        match &last {
            Error::AdminTimeout {
                call,
                after,
                attempts,
                last,
            } => {
                assert_eq!(*call, "test_call");
                assert!(*after < ms(1_000), "{after:?}");
                assert!(*attempts >= 3, "{attempts}");
                assert!(matches!(**last, Error::Connect { .. }));
            }
            other => panic!("{other:?}"),
        }
        let text = last.to_string();
        assert!(
            text.contains("test_call") && text.contains("cannot connect"),
            "{text}"
        );
        assert!(!last.is_retriable());
    }

    #[test]
    fn leader_calls_retry_every_retriable_code() {
        let start = Instant::now();
        let mut rng = XorShift64Star::new(3);
        let mut c = call(Route::Leader, start, Duration::from_secs(60));
        let unknown = broker(ResponseError::UnknownTopicOrPartition);
        assert!(matches!(
            c.failed(unknown, start, &mut rng),
            NextStep::Retry {
                refresh_metadata: true,
                ..
            }
        ));
    }

    #[test]
    fn a_leader_calls_topic_missing_from_metadata_ends_it_at_once() {
        let start = Instant::now();
        let mut rng = XorShift64Star::new(3);
        let mut c = call(Route::Leader, start, Duration::from_secs(60));
        let metadata = |code| Error::Broker {
            api: ApiKey::Metadata,
            code,
            message: Some("t".into()),
        };
        assert!(matches!(
            c.failed(
                metadata(ResponseError::UnknownTopicOrPartition),
                start,
                &mut rng
            ),
            NextStep::Fail(Error::Broker {
                api: ApiKey::Metadata,
                code: ResponseError::UnknownTopicOrPartition,
                ..
            })
        ));
        assert!(matches!(
            c.failed(
                metadata(ResponseError::TopicAuthorizationFailed),
                start,
                &mut rng
            ),
            NextStep::Fail(_)
        ));
        // A topic whose leaders are still being elected is asked again.
        assert!(matches!(
            c.failed(metadata(ResponseError::LeaderNotAvailable), start, &mut rng),
            NextStep::Retry { .. }
        ));
    }

    #[test]
    fn request_timeouts_are_cut_to_the_time_left() {
        let start = Instant::now();
        let c = call(Route::AnyBroker, start, ms(5_000));
        assert_eq!(c.request_timeout(start, ms(30_000)), Some(ms(5_000)));
        assert_eq!(c.request_timeout(start, ms(1_000)), Some(ms(1_000)));
        assert_eq!(
            c.request_timeout(start + ms(4_500), ms(1_000)),
            Some(ms(500))
        );
        assert_eq!(c.request_timeout(start + ms(5_000), ms(1_000)), None);
        assert_eq!(c.request_timeout(start + ms(6_000), ms(1_000)), None);
    }

    #[test]
    fn leader_calls_refresh_metadata_any_broker_calls_only_for_not_controller() {
        let start = Instant::now();
        let refresh = |route, err| {
            let mut c = call(route, start, Duration::from_secs(60));
            match c.failed(err, start, &mut XorShift64Star::new(1)) {
                NextStep::Retry {
                    refresh_metadata, ..
                } => refresh_metadata,
                NextStep::Fail(err) => panic!("{err}"),
            }
        };
        assert!(refresh(Route::Leader, refused()));
        assert!(refresh(
            Route::Leader,
            broker(ResponseError::NotLeaderOrFollower)
        ));
        assert!(!refresh(Route::AnyBroker, refused()));
        assert!(refresh(
            Route::AnyBroker,
            broker(ResponseError::NotController)
        ));
        assert!(!refresh(
            Route::Coordinator,
            broker(ResponseError::NotCoordinator)
        ));
    }
}
