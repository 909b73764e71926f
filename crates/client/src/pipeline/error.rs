//! [`PipelineError`] (why the pipeline stopped or could not start) and [`AbortCause`] (why a
//! transaction was aborted and its input will be read again).

use std::sync::Arc;

use crate::config::ConfigError;
use crate::consumer::ConsumeError;
use crate::producer::TransactionError;

/// Why a [`TransactionalPipeline`](super::TransactionalPipeline) could not be built, or
/// stopped.
///
/// ```
/// use kafkit::pipeline::PipelineError;
/// use kafkit::producer::TransactionError;
///
/// let e = PipelineError::Transaction(TransactionError::NotTransactional);
/// assert!(e.is_fatal());
/// assert!(!PipelineError::Closed.is_fatal());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A setting of the consumer or producer the pipeline cannot honour (it names the
    /// property: `group.id` missing, `enable.auto.commit=true`).
    #[error("transactional pipeline: {0}")]
    Config(#[from] ConfigError),
    /// The transactional producer failed in a way aborting cannot mend (fenced by a newer
    /// producer with the same `transactional.id`, a fatal broker error, a commit that kept
    /// timing out, no `transactional.id`): the pipeline stopped.
    #[error("transactional pipeline stopped: {0}")]
    Transaction(TransactionError),
    /// Polling the input failed (after any open transaction was aborted). `run` goes on
    /// after a retriable one ([`ConsumeError::is_retriable`]) and stops after any other.
    #[error("transactional pipeline: polling the input failed: {0}")]
    Consume(#[from] ConsumeError),
    /// The pipeline was closed (or stopped after an earlier fatal error, returned then).
    #[error("the transactional pipeline is closed")]
    Closed,
}

impl PipelineError {
    /// Whether the pipeline cannot go on (close it): every error but a retriable poll error
    /// and [`PipelineError::Closed`] (which is the state, not a new failure).
    pub fn is_fatal(&self) -> bool {
        match self {
            PipelineError::Config(_) | PipelineError::Transaction(_) => true,
            PipelineError::Consume(e) => !e.is_retriable(),
            PipelineError::Closed => false,
        }
    }
}

/// Why a transaction was aborted. Its outputs are invisible to `read_committed` readers and
/// the consumer was rewound, so its input is transformed again.
///
/// ```
/// use kafkit::pipeline::AbortCause;
///
/// let cause = AbortCause::transform("no such customer");
/// assert!(cause.to_string().contains("no such customer"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AbortCause {
    /// The transform returned this error.
    #[error("the transform failed: {0}")]
    Transform(Arc<dyn std::error::Error + Send + Sync>),
    /// An abortable producer error (a failed send, offsets that could not be added, a stale
    /// group generation) or a transactional call that timed out before its commit was sent.
    #[error("the transaction could not commit: {0}")]
    Transaction(TransactionError),
    /// A retriable poll error came while a transaction was open.
    #[error("polling failed inside the transaction: {0}")]
    Consume(ConsumeError),
}

impl AbortCause {
    /// A transform failure from anything that converts into a boxed error.
    pub fn transform(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AbortCause::Transform(Arc::from(error.into()))
    }
}
