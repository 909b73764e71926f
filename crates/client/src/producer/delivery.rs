//! Delivery handles: one shared completion per batch instead of a channel per record.
//!
//! Every record of a batch holds a [`Delivery`] (the producer side, kept in the batch) that
//! points at the batch's [`BatchDelivery`] with the record's index; its [`DeliveryFuture`]
//! points at the same one. Outcomes are written per batch under one lock, and the wakers of
//! the futures waiting on that batch are woken once. A `Delivery` dropped without an outcome
//! (the state lost it: not expected) writes [`ProduceError::Closed`] for its record, as a
//! dropped channel sender would.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::error::ProduceError;
use super::record::RecordMetadata;
use crate::state::producer::Outcome;

type Outcomes = Result<RecordMetadata, ProduceError>;

/// The outcomes of one batch's records, and who waits for them.
#[derive(Debug, Default)]
pub(crate) struct BatchDelivery {
    inner: Mutex<Inner>,
    /// Bumped (under the lock) whenever an outcome is written: a future that registered its
    /// waker at version `v` and still sees `v` has nothing new to look at.
    version: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// By record index (grown as outcomes come in).
    slots: Vec<Slot>,
    /// Futures waiting: (record index, waker).
    waiting: Vec<(u32, Waker)>,
}

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Pending,
    Ready(Outcomes),
    Taken,
}

impl BatchDelivery {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn set(&mut self, index: u32, result: Outcomes) {
        let i = index as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        if let Some(slot @ Slot::Pending) = self.slots.get_mut(i) {
            *slot = Slot::Ready(result);
        }
    }
}

/// The producer side of one record's outcome (the state's delivery handle `D`).
#[derive(Debug)]
pub(crate) struct Delivery {
    batch: Arc<BatchDelivery>,
    index: u32,
    done: bool,
}

impl Delivery {
    /// The handle of the record at `index` of its batch, sharing the completion of
    /// `previous` (the record before it in the same batch), or a new one for a new batch;
    /// and the future the caller gets.
    pub(crate) fn for_slot(
        previous: Option<&Delivery>,
        index: usize,
    ) -> (Delivery, DeliveryFuture) {
        let batch = match previous {
            Some(p) => p.batch.clone(),
            None => Arc::new(BatchDelivery::default()),
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let future = DeliveryFuture {
            batch: batch.clone(),
            index,
            registered: None,
        };
        (
            Delivery {
                batch,
                index,
                done: false,
            },
            future,
        )
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if !self.done {
            let wakers = {
                let mut inner = self.batch.lock();
                inner.set(self.index, Err(ProduceError::Closed));
                self.batch.version.fetch_add(1, Ordering::Release);
                std::mem::take(&mut inner.waiting)
            };
            wakers.into_iter().for_each(|(_, w)| w.wake());
        }
    }
}

/// Hands each outcome to its record's future, one lock and one round of wake-ups per batch;
/// returns the `buffer.memory` bytes to release.
pub(crate) fn deliver_all(outcomes: Vec<Outcome<Delivery>>) -> usize {
    let mut outcomes = outcomes;
    deliver_drain(&mut outcomes)
}

/// [`deliver_all`] from a reusable buffer (left empty, its capacity kept).
pub(crate) fn deliver_drain(outcomes: &mut Vec<Outcome<Delivery>>) -> usize {
    let mut released = 0usize;
    let mut wakers: Vec<(u32, Waker)> = Vec::new();
    // Outcomes come batch by batch: one lock per run of the same batch, its slots sized once.
    for run in outcomes.chunk_by_mut(|a, b| Arc::ptr_eq(&a.delivery.batch, &b.delivery.batch)) {
        let Some(first) = run.first() else { continue };
        let batch = first.delivery.batch.clone();
        let top = run.iter().map(|o| o.delivery.index).max().unwrap_or(0) as usize;
        let mut inner = batch.lock();
        if inner.slots.len() <= top {
            inner.slots.resize_with(top + 1, Slot::default);
        }
        for outcome in run.iter_mut() {
            released = released.saturating_add(outcome.reserved);
            let result = std::mem::replace(&mut outcome.result, Err(ProduceError::Closed));
            inner.set(outcome.delivery.index, result);
            outcome.delivery.done = true;
        }
        batch.version.fetch_add(1, Ordering::Release);
        wakers.append(&mut inner.waiting);
    }
    outcomes.clear();
    wakers.into_iter().for_each(|(_, w)| w.wake());
    released
}

/// Resolves to a record's outcome once its batch is acknowledged or has failed.
///
/// If the producer is dropped or closed before the outcome is known, it resolves to
/// [`ProduceError::Closed`]. The futures of one batch share one allocation (kept until the
/// last of them is dropped).
#[derive(Debug)]
pub struct DeliveryFuture {
    batch: Arc<BatchDelivery>,
    index: u32,
    /// The waker last registered and the batch's version then (polls that would change
    /// nothing skip the lock).
    registered: Option<(u64, Waker)>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some((seen, waker)) = &this.registered {
            if this.batch.version.load(Ordering::Acquire) == *seen && waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        let index = this.index;
        let mut inner = this.batch.lock();
        if let Some(slot) = inner.slots.get_mut(index as usize) {
            match std::mem::replace(slot, Slot::Taken) {
                Slot::Ready(result) => return Poll::Ready(result),
                // A poll after completion reads as closed.
                Slot::Taken => return Poll::Ready(Err(ProduceError::Closed)),
                Slot::Pending => *slot = Slot::Pending,
            }
        }
        match inner.waiting.iter_mut().find(|(at, _)| *at == index) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => inner.waiting.push((index, cx.waker().clone())),
        }
        // Read under the lock: every later write bumps it after this.
        let version = this.batch.version.load(Ordering::Acquire);
        drop(inner);
        this.registered = Some((version, cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc as StdArc;

    fn outcome(delivery: Delivery, offset: i64) -> Outcome<Delivery> {
        Outcome {
            delivery,
            reserved: 10,
            result: Ok(RecordMetadata {
                topic: StdArc::from("t"),
                partition: 0,
                offset,
                timestamp: 1,
            }),
        }
    }

    #[tokio::test]
    async fn every_record_of_a_batch_gets_its_own_outcome() {
        let (d0, f0) = Delivery::for_slot(None, 0);
        let (d1, f1) = Delivery::for_slot(Some(&d0), 1);
        let (other, f_other) = Delivery::for_slot(None, 0);
        let waiter = tokio::spawn(f1);
        tokio::task::yield_now().await;
        assert_eq!(deliver_all(vec![outcome(d0, 5), outcome(d1, 6)]), 20);
        assert!(matches!(f0.await, Ok(m) if m.offset == 5));
        assert!(matches!(waiter.await, Ok(Ok(m)) if m.offset == 6));
        drop(other);
        assert!(matches!(f_other.await, Err(ProduceError::Closed)));
    }
}
