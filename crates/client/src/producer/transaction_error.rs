//! [`TransactionError`]: why a call of the transactional producer failed, in the three classes
//! of KIP-1050 (retriable: [`TransactionError::Timeout`]; abortable; fatal) plus the caller's
//! mistakes ([`TransactionError::InvalidState`], [`TransactionError::NotTransactional`]).

use std::time::Duration;

use kafka_protocol::error::ResponseError;

use super::ProduceError;
use crate::error::Error;
use crate::state::producer::transaction::TransactionPhase;

/// Why a transactional call failed.
///
/// - [`Fenced`](TransactionError::Fenced) and [`Fatal`](TransactionError::Fatal): the producer
///   can do nothing more but close (`is_fatal`).
/// - [`Abortable`](TransactionError::Abortable): the current transaction cannot commit;
///   `abort_transaction` makes the producer usable again (`is_abortable`).
/// - [`Timeout`](TransactionError::Timeout): the call did not finish in time; the state is
///   unchanged, so the same call may be retried (or the transaction aborted).
///
/// ```
/// use kafkit::producer::TransactionError;
///
/// let e = TransactionError::NotTransactional;
/// assert!(!e.is_fatal() && !e.is_abortable());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A newer producer with the same `transactional.id` exists (`PRODUCER_FENCED`, or
    /// `INVALID_PRODUCER_EPOCH` on a transactional call): this one must be closed. Nothing it
    /// writes afterwards becomes visible to `read_committed` consumers.
    #[error("producer fenced: another producer with transactional.id {transactional_id} took over ({code:?}); close this producer")]
    Fenced {
        /// The transactional id.
        transactional_id: String,
        /// The broker's error.
        code: ResponseError,
    },
    /// An error after which the producer cannot continue (authorization refused, an
    /// unexpected broker error, a request kafkit cannot encode): close it.
    #[error("fatal transactional producer error: {0}; close the producer")]
    Fatal(Box<ProduceError>),
    /// The current transaction cannot be committed (`cause` is the first failure inside it:
    /// a send that failed, a partition or offsets that could not be added); abort it.
    #[error("the transaction must be aborted: {cause}")]
    Abortable {
        /// The first failure inside the transaction.
        cause: Box<ProduceError>,
    },
    /// `operation` did not complete within `after`; the producer's state is unchanged: call it
    /// again, or abort the transaction.
    #[error("{operation} did not complete within {after:?}; retry it or abort the transaction")]
    Timeout {
        /// The call.
        operation: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// `operation` is not allowed in `state` (for example `commit_transaction` without
    /// `begin_transaction`, or a transactional call before `init_transactions`).
    #[error("{operation} is not allowed while the transactional producer is {state:?}")]
    InvalidState {
        /// The call.
        operation: &'static str,
        /// The producer's transaction state.
        state: TransactionPhase,
    },
    /// The producer has no `transactional.id`.
    #[error("the producer has no transactional.id")]
    NotTransactional,
    /// The producer was closed.
    #[error("the producer is closed")]
    Closed,
}

impl TransactionError {
    /// Whether only closing the producer is left.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            TransactionError::Fenced { .. } | TransactionError::Fatal(_)
        )
    }

    /// Whether aborting the transaction makes the producer usable again.
    pub fn is_abortable(&self) -> bool {
        matches!(self, TransactionError::Abortable { .. })
    }

    /// Whether the same call may simply be made again.
    pub fn is_retriable(&self) -> bool {
        matches!(self, TransactionError::Timeout { .. })
    }

    pub(crate) fn fatal(error: Error) -> TransactionError {
        TransactionError::Fatal(Box::new(ProduceError::Client(error)))
    }

    pub(crate) fn abortable(error: Error) -> TransactionError {
        TransactionError::Abortable {
            cause: Box::new(ProduceError::Client(error)),
        }
    }
}
