//! [`RecordStream`]: the consumer's records as a `futures_core::Stream`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{ConsumeError, Consumer, ConsumerRecord};

type Next<'a> = Pin<Box<dyn Future<Output = Result<ConsumerRecord, ConsumeError>> + Send + 'a>>;

/// The records of a [`Consumer`], one by one; errors are items too (the stream goes on after
/// them), and it ends once the consumer is closed.
///
/// Buffered records are handed out without allocating; only waiting boxes a future.
pub struct RecordStream<'a> {
    consumer: &'a Consumer,
    waiting: Option<Next<'a>>,
    done: bool,
}

impl<'a> RecordStream<'a> {
    pub(super) fn new(consumer: &'a Consumer) -> Self {
        RecordStream {
            consumer,
            waiting: None,
            done: false,
        }
    }
}

impl std::fmt::Debug for RecordStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("waiting", &self.waiting.is_some())
            .finish()
    }
}

impl<'a> futures_core::Stream for RecordStream<'a> {
    type Item = Result<ConsumerRecord, ConsumeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.waiting.is_none() {
            if let Some(item) = self.consumer.try_next() {
                return Poll::Ready(Some(item));
            }
            let consumer = self.consumer;
            self.waiting = Some(Box::pin(consumer.recv()));
        }
        let Some(waiting) = self.waiting.as_mut() else {
            return Poll::Pending;
        };
        match waiting.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.waiting = None;
                if matches!(result, Err(ConsumeError::Closed)) {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(result))
            }
        }
    }
}
