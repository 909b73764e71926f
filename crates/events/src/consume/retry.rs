//! Retrying a failed handler: exponential backoff with full jitter, and which failures may be
//! retried at all.
//!
//! The delay before retry `n` (1-based) is drawn uniformly from `[0, min(max_backoff,
//! initial_backoff · 2^(n-1))]` ("full jitter"), so a burst of failures does not retry in lock
//! step. The random source is an argument: tests fix the seed.

use std::time::Duration;

use kafkit::rng::RandomSource;

use crate::consume::dead_letter::Failure;
use crate::error::EventsError;

/// How often and how long to wait before retrying a handler that failed with a retriable error.
///
/// Defaults (the seeds'): 3 retries, 1 s initial backoff doubling up to 32 s.
///
/// ```
/// use std::time::Duration;
/// use kafkit::rng::XorShift64Star;
/// use kafkit_events::consume::RetryPolicy;
///
/// let policy = RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(1))?;
/// let mut rng = XorShift64Star::new(7);
/// // Retry 3 waits at most min(1 s, 100 ms · 2²) = 400 ms.
/// assert!(policy.delay(3, &mut rng) <= Duration::from_millis(400));
/// # Ok::<(), kafkit_events::EventsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(32),
        }
    }
}

/// The longest backoff accepted: a wait beyond it is certainly a mistake (and keeps the jitter
/// arithmetic in range).
const LONGEST_BACKOFF: Duration = Duration::from_secs(7 * 24 * 3600);

impl RetryPolicy {
    /// A policy with `max_retries` retries after the first attempt (so at most `max_retries + 1`
    /// handler calls per record), waiting `initial_backoff · 2^(n-1)` at most before retry `n`,
    /// capped at `max_backoff`.
    ///
    /// Refused with [`EventsError::Configuration`] when `initial_backoff > max_backoff` or
    /// `max_backoff` is over a week.
    pub fn new(
        max_retries: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
    ) -> Result<Self, EventsError> {
        if initial_backoff > max_backoff {
            return Err(EventsError::configuration(
                "events.retry.backoff.ms",
                format!(
                    "the initial backoff {initial_backoff:?} is longer than the maximum {max_backoff:?} (events.retry.backoff.max.ms)"
                ),
            ));
        }
        if max_backoff > LONGEST_BACKOFF {
            return Err(EventsError::configuration(
                "events.retry.backoff.max.ms",
                format!("{max_backoff:?} is longer than a week"),
            ));
        }
        Ok(RetryPolicy {
            max_retries,
            initial_backoff,
            max_backoff,
        })
    }

    /// A policy that never retries: the first failure goes to the dead letter.
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Retries after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The cap of the first retry's delay.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The cap of every delay.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The upper bound of the delay before retry `attempt` (1-based; 0 is treated as 1):
    /// `min(max_backoff, initial_backoff · 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        // No initial backoff: every retry is immediate, however many came before (the factor
        // below overflows from attempt 33 and would otherwise give `max_backoff`).
        if self.initial_backoff.is_zero() {
            return Duration::ZERO;
        }
        let exponent = attempt.max(1) - 1;
        let factor = 1u32.checked_shl(exponent).unwrap_or(0);
        if factor == 0 {
            return self.max_backoff;
        }
        self.initial_backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    /// The delay before retry `attempt` (1-based): uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32, rng: &mut impl RandomSource) -> Duration {
        let ceiling = self.ceiling(attempt);
        // ≤ a week in nanoseconds: fits in u64, and the product below in u128.
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let scaled = (u128::from(nanos) * (u128::from(rng.next_u64()) + 1)) >> 64;
        Duration::from_nanos(u64::try_from(scaled).unwrap_or(nanos))
    }

    /// Whether a record that failed with `kind` after `attempts` handler calls is retried
    /// (`true`) or goes to the dead letter (`false`).
    pub fn should_retry(&self, kind: FailureKind, attempts: u32) -> bool {
        kind == FailureKind::Retriable && attempts <= self.max_retries
    }
}

/// Whether trying a failed handler again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A transient failure (a timeout, an unreachable dependency): retried with backoff.
    Retriable,
    /// The same input fails the same way (a poison pill, a decode or schema error): straight to
    /// the dead letter.
    NotRetriable,
}

impl FailureKind {
    /// The kind of an event-layer error: decode, schema-validation, serialization and
    /// configuration errors are [`NotRetriable`](FailureKind::NotRetriable); the others follow
    /// [`EventsError::is_retriable`].
    pub fn of(error: &EventsError) -> Self {
        match error {
            EventsError::Deserialization(_)
            | EventsError::SchemaValidation { .. }
            | EventsError::Serialization { .. }
            | EventsError::Configuration { .. } => FailureKind::NotRetriable,
            other if other.is_retriable() => FailureKind::Retriable,
            _ => FailureKind::NotRetriable,
        }
    }
}

/// A failed handler call: whether it may be retried, and what to write in the dead letter if it
/// is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFailure {
    /// Retriable or not.
    pub kind: FailureKind,
    /// The error's description (class, message, …) for the dead letter's headers.
    pub failure: Failure,
}

impl HandlerFailure {
    /// A retriable failure.
    pub fn retriable(failure: Failure) -> Self {
        HandlerFailure {
            kind: FailureKind::Retriable,
            failure,
        }
    }

    /// A failure that is not retried.
    pub fn not_retriable(failure: Failure) -> Self {
        HandlerFailure {
            kind: FailureKind::NotRetriable,
            failure,
        }
    }

    /// The failure of an event-layer error, classified by [`FailureKind::of`].
    pub fn from_events_error(error: &EventsError, failed_at_ms: i64) -> Self {
        HandlerFailure {
            kind: FailureKind::of(error),
            failure: Failure::from_error(error, failed_at_ms),
        }
    }
}

#[cfg(test)]
mod tests;
