//! Delivery handles: one shared completion per batch instead of a channel per record.
//!
//! Every record of a batch holds a [`Delivery`] (the producer side, kept in the batch) that
//! points at the batch's [`BatchDelivery`] with the record's index; its [`DeliveryFuture`]
//! points at the same one. A written batch is completed whole: one entry (first index, count,
//! base offset, log append time) from which each future works out its own offset and
//! timestamp, as the Java client's futures do from their batch's one result. The first such
//! entry of a batch is published in a `OnceLock` before the lock is taken, so a future of a
//! written record resolves without locking; later pieces of a split batch go under the lock.
//! Failures are written record by record, one lock per run of the same batch. The wakers of
//! the futures waiting on a batch are woken once per completion. A `Delivery` dropped without
//! an outcome (the state lost it: not expected) writes [`ProduceError::Closed`] for its
//! record, as a dropped channel sender would.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use super::error::ProduceError;
use super::record::RecordMetadata;
use crate::state::producer::{BatchWritten, Completion, Outcome};

type Outcomes = Result<RecordMetadata, ProduceError>;

/// The outcomes of one batch's records, and who waits for them.
#[derive(Debug, Default)]
pub(crate) struct BatchDelivery {
    /// The batch's first written run (for a batch not split, its only one), set once before
    /// the lock is taken to announce it: a future whose record it holds resolves without the
    /// lock, one lock fewer per record for a caller awaiting every future.
    first_run: OnceLock<Written>,
    inner: Mutex<Inner>,
    /// Bumped (under the lock) whenever an outcome is written: a future that registered its
    /// waker at version `v` and still sees `v` has nothing new to look at.
    version: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Records' own outcomes (failures), by record index (grown as they come in).
    slots: Vec<Option<Outcomes>>,
    /// Runs of the batch's records written after `first_run` (pieces of a split batch).
    written: Vec<Written>,
    /// Futures waiting: (record index, waker).
    waiting: Vec<(u32, Waker)>,
}

/// Records `first..first + count` of a batch, written from `base_offset`.
#[derive(Debug)]
struct Written {
    first: u32,
    count: u32,
    base_offset: i64,
    log_append_time: i64,
    topic: Arc<str>,
    partition: i32,
}

impl Written {
    /// The metadata of the record at `index` (created at `timestamp`), if this run holds it.
    fn metadata(&self, index: u32, timestamp: i64) -> Option<RecordMetadata> {
        let at = index
            .checked_sub(self.first)
            .filter(|at| *at < self.count)?;
        Some(RecordMetadata {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: if self.base_offset < 0 {
                -1
            } else {
                self.base_offset.saturating_add(i64::from(at))
            },
            timestamp: if self.log_append_time >= 0 {
                self.log_append_time
            } else {
                timestamp
            },
        })
    }
}

impl BatchDelivery {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The metadata of the record at `index` (created at `timestamp`) if the first written run
    /// holds it (no lock).
    fn first_written(&self, index: u32, timestamp: i64) -> Option<RecordMetadata> {
        self.first_run.get()?.metadata(index, timestamp)
    }
}

impl Inner {
    fn set(&mut self, index: u32, result: Outcomes) {
        let i = index as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if let Some(slot @ None) = self.slots.get_mut(i) {
            *slot = Some(result);
        }
    }

    /// The outcome of the record at `index` (created at `timestamp`), once known; `first` is
    /// the batch's first written run, if set (a record is in one run or has a slot, never both).
    fn take(&mut self, first: Option<&Written>, index: u32, timestamp: i64) -> Option<Outcomes> {
        if let Some(result) = self.slots.get_mut(index as usize).and_then(Option::take) {
            return Some(result);
        }
        first
            .into_iter()
            .chain(&self.written)
            .find_map(|run| run.metadata(index, timestamp))
            .map(Ok)
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
    /// The handle of the record at `index` of its batch, created at `timestamp`, sharing the
    /// completion of `previous` (the record before it in the same batch), or a new one for a
    /// new batch; and the future the caller gets.
    pub(crate) fn for_slot(
        previous: Option<&Delivery>,
        index: usize,
        timestamp: i64,
    ) -> (Delivery, DeliveryFuture) {
        let batch = match previous {
            Some(p) => p.batch.clone(),
            None => Arc::new(BatchDelivery::default()),
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let future = DeliveryFuture {
            batch: batch.clone(),
            index,
            timestamp,
            done: false,
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

/// Hands each completion to its records' futures, one lock and one round of wake-ups per
/// batch; returns the `buffer.memory` bytes to release.
pub(crate) fn deliver_all(completions: Vec<Completion<Delivery>>) -> usize {
    let mut completions = completions;
    deliver_drain(&mut completions)
}

/// [`deliver_all`] from a reusable buffer (left empty, its capacity kept).
pub(crate) fn deliver_drain(completions: &mut Vec<Completion<Delivery>>) -> usize {
    let mut released = 0usize;
    let mut wakers: Vec<(u32, Waker)> = Vec::new();
    let mut records: Vec<Outcome<Delivery>> = Vec::new();
    for completion in completions.drain(..) {
        match completion {
            Completion::Record(outcome) => records.push(outcome),
            Completion::Written(batch) => {
                if let Err(batch) = deliver_written(batch, &mut released, &mut wakers) {
                    records.extend(batch.into_outcomes());
                }
            }
        }
    }
    deliver_records(&mut records, &mut released, &mut wakers);
    wakers.into_iter().for_each(|(_, w)| w.wake());
    released
}

/// Completes a written batch whose records are one contiguous run of one batch's handles (a
/// batch, or a piece of a split one, always is); gives it back otherwise.
fn deliver_written(
    mut batch: BatchWritten<Delivery>,
    released: &mut usize,
    wakers: &mut Vec<(u32, Waker)>,
) -> Result<(), BatchWritten<Delivery>> {
    let Some(first) = batch.records.first() else {
        return Ok(());
    };
    let shared = first.delivery.batch.clone();
    let first = first.delivery.index;
    // One pass: the run's shape, its reserved bytes, its handles told they are done (should
    // the run not be one contiguous stretch of `shared`, the per-record path below still
    // writes every record's outcome).
    let mut contiguous = true;
    let mut reserved = 0usize;
    for (i, record) in batch.records.iter_mut().enumerate() {
        contiguous &= Arc::ptr_eq(&record.delivery.batch, &shared)
            && u32::try_from(i)
                .ok()
                .and_then(|i| first.checked_add(i))
                .is_some_and(|at| at == record.delivery.index);
        reserved = reserved.saturating_add(record.reserved);
        record.delivery.done = true;
    }
    let Some(count) = u32::try_from(batch.records.len())
        .ok()
        .filter(|_| contiguous)
    else {
        return Err(batch);
    };
    let run = Written {
        first,
        count,
        base_offset: batch.base_offset,
        log_append_time: batch.log_append_time,
        topic: batch.tp.topic.clone(),
        partition: batch.tp.partition,
    };
    // Set before the lock is taken: a future that finds it unset and then locks sees it set
    // under the lock, or registers its waker before the wake-up below.
    let later = shared.first_run.set(run).err();
    let mut inner = shared.lock();
    if let Some(run) = later {
        inner.written.push(run);
    }
    shared.version.fetch_add(1, Ordering::Release);
    wakers.append(&mut inner.waiting);
    drop(inner);
    *released = released.saturating_add(reserved);
    Ok(())
}

/// Writes records' own outcomes, one lock per run of the same batch (left empty).
fn deliver_records(
    outcomes: &mut Vec<Outcome<Delivery>>,
    released: &mut usize,
    wakers: &mut Vec<(u32, Waker)>,
) {
    for run in outcomes.chunk_by_mut(|a, b| Arc::ptr_eq(&a.delivery.batch, &b.delivery.batch)) {
        let Some(first) = run.first() else { continue };
        let batch = first.delivery.batch.clone();
        let top = run.iter().map(|o| o.delivery.index).max().unwrap_or(0) as usize;
        let mut inner = batch.lock();
        if inner.slots.len() <= top {
            inner.slots.resize_with(top + 1, || None);
        }
        for outcome in run.iter_mut() {
            *released = released.saturating_add(outcome.reserved);
            let result = std::mem::replace(&mut outcome.result, Err(ProduceError::Closed));
            inner.set(outcome.delivery.index, result);
            outcome.delivery.done = true;
        }
        batch.version.fetch_add(1, Ordering::Release);
        wakers.append(&mut inner.waiting);
    }
    outcomes.clear();
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
    /// The record's create time (its timestamp unless the broker sets log append time).
    timestamp: i64,
    /// Resolved already: a later poll reads as closed.
    done: bool,
    /// The waker last registered and the batch's version then (polls that would change
    /// nothing skip the lock).
    registered: Option<(u64, Waker)>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(Err(ProduceError::Closed));
        }
        if let Some((seen, waker)) = &this.registered {
            if this.batch.version.load(Ordering::Acquire) == *seen && waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        let index = this.index;
        if let Some(metadata) = this.batch.first_written(index, this.timestamp) {
            this.done = true;
            return Poll::Ready(Ok(metadata));
        }
        let mut inner = this.batch.lock();
        if let Some(result) = inner.take(this.batch.first_run.get(), index, this.timestamp) {
            this.done = true;
            return Poll::Ready(result);
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
    use crate::state::producer::{AppendedRecord, TopicPartition};
    use std::sync::Arc as StdArc;

    fn outcome(delivery: Delivery, offset: i64) -> Completion<Delivery> {
        Completion::Record(Outcome {
            delivery,
            reserved: 10,
            result: Ok(RecordMetadata {
                topic: StdArc::from("t"),
                partition: 0,
                offset,
                timestamp: 1,
            }),
        })
    }

    /// `n` records of one batch, created at 1000 + index: their handles and futures.
    fn batch(n: usize) -> (Vec<Delivery>, Vec<DeliveryFuture>) {
        let mut handles: Vec<Delivery> = Vec::new();
        let mut futures = Vec::new();
        for i in 0..n {
            let (d, f) = Delivery::for_slot(handles.last(), i, 1000 + i as i64);
            handles.push(d);
            futures.push(f);
        }
        (handles, futures)
    }

    fn written(
        handles: Vec<Delivery>,
        base_offset: i64,
        log_append_time: i64,
    ) -> Completion<Delivery> {
        let records = handles
            .into_iter()
            .map(|d| AppendedRecord {
                timestamp: 1000 + i64::from(d.index),
                delivery: d,
                reserved: 7,
            })
            .collect();
        Completion::Written(BatchWritten {
            tp: TopicPartition::new("w", 3),
            records,
            base_offset,
            log_append_time,
        })
    }

    /// `f`'s output; a future left pending is a failure here, not a hang.
    async fn within<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(10), f)
            .await
            .expect("resolved")
    }

    async fn offsets(futures: Vec<DeliveryFuture>) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for f in futures {
            let m = within(f).await.expect("written");
            assert_eq!((&*m.topic, m.partition), ("w", 3));
            out.push((m.offset, m.timestamp));
        }
        out
    }

    #[tokio::test]
    async fn every_record_of_a_batch_gets_its_own_outcome() {
        let (d0, f0) = Delivery::for_slot(None, 0, 1);
        let (d1, f1) = Delivery::for_slot(Some(&d0), 1, 1);
        let (other, f_other) = Delivery::for_slot(None, 0, 1);
        let waiter = tokio::spawn(f1);
        tokio::task::yield_now().await;
        assert_eq!(deliver_all(vec![outcome(d0, 5), outcome(d1, 6)]), 20);
        assert!(matches!(within(f0).await, Ok(m) if m.offset == 5));
        assert!(matches!(within(waiter).await, Ok(Ok(m)) if m.offset == 6));
        drop(other);
        assert!(matches!(within(f_other).await, Err(ProduceError::Closed)));
    }

    #[tokio::test]
    async fn a_written_batch_gives_each_record_its_offset_and_create_time() {
        let (handles, mut futures) = batch(3);
        let waiter = tokio::spawn(futures.remove(2));
        tokio::task::yield_now().await;
        assert_eq!(deliver_all(vec![written(handles, 40, -1)]), 21);
        {
            // One entry for the whole batch, no slot per record.
            assert!(futures[0].batch.first_run.get().is_some());
            let inner = futures[0].batch.lock();
            assert!(inner.written.is_empty());
            assert!(inner.slots.iter().all(Option::is_none));
        }
        assert_eq!(offsets(futures).await, [(40, 1000), (41, 1001)]);
        let last = within(waiter).await.expect("joined").expect("written");
        assert_eq!((last.offset, last.timestamp), (42, 1002));
    }

    #[tokio::test]
    async fn log_append_time_and_an_unknown_base_offset_reach_every_record() {
        let (handles, futures) = batch(2);
        deliver_all(vec![written(handles, -1, 77)]);
        assert_eq!(offsets(futures).await, [(-1, 77), (-1, 77)]);
    }

    #[tokio::test]
    async fn the_pieces_of_a_split_batch_count_from_their_own_base_offsets() {
        let (mut handles, futures) = batch(5);
        let rest = handles.split_off(2);
        deliver_all(vec![written(handles, 0, -1)]);
        deliver_all(vec![written(rest, 200, -1)]);
        assert_eq!(
            offsets(futures).await,
            [(0, 1000), (1, 1001), (200, 1002), (201, 1003), (202, 1004)]
        );
    }

    #[tokio::test]
    async fn records_of_two_batches_in_one_written_run_still_each_get_their_outcome() {
        let (mut a, fa) = batch(2);
        let (b, fb) = batch(1);
        a.extend(b);
        assert_eq!(deliver_all(vec![written(a, 10, -1)]), 21);
        let all: Vec<_> = fa.into_iter().chain(fb).collect();
        assert_eq!(offsets(all).await, [(10, 1000), (11, 1001), (12, 1000)]);
    }

    /// A run whose next handle has the index that would continue it but belongs to another
    /// batch is not one batch's run either.
    #[tokio::test]
    async fn a_run_continued_by_the_same_index_of_another_batch_is_delivered_record_by_record() {
        let (mut a, fa) = batch(2);
        let (mut b, mut fb) = batch(3);
        a.push(b.remove(2));
        drop(b);
        assert_eq!(deliver_all(vec![written(a, 10, -1)]), 21);
        let last = fb.remove(2);
        let all: Vec<_> = fa.into_iter().chain([last]).collect();
        assert_eq!(offsets(all).await, [(10, 1000), (11, 1001), (12, 1002)]);
    }

    #[tokio::test]
    async fn a_future_polled_again_after_its_outcome_reads_closed() {
        let (handles, mut futures) = batch(1);
        deliver_all(vec![written(handles, 5, -1)]);
        let mut f = futures.remove(0);
        assert!(matches!(within(&mut f).await, Ok(m) if m.offset == 5));
        assert!(matches!(within(f).await, Err(ProduceError::Closed)));
    }
}
