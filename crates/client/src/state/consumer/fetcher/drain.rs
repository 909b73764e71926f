//! Handing buffered records out: [`FetchState::drain`].
//!
//! Memory: a drain stops early once the records it took cost `kafkit.prefetch.max.bytes` (at
//! least `MIN_DRAIN_MEMORY`) in memory (`record_memory`: the struct and its header slots;
//! payloads are slices of the fetched or decompressed buffers). With the fetch buffer (at most `kafkit.prefetch.max.bytes`
//! plus one response per broker in flight) and the one open batch of `completed.rs`, that
//! bounds what the consumer holds for records, however small their encoding.

use std::mem::size_of;
use std::sync::Arc;

use kafkit_wire::record::Header;

use super::FetchState;
use crate::consumer::{ConsumeError, ConsumerRecord};

/// The least decoded memory one drain may hand out (1 MiB, about 7,000 records without
/// headers): a small `kafkit.prefetch.max.bytes` limits fetching, not `max.poll.records`.
pub(crate) const MIN_DRAIN_MEMORY: usize = 1 << 20;

/// The most records a drain reserves room for when it takes its first one (a `max` above it
/// grows the vector as records come): `max.poll.records`' default (500) fits, and the vector
/// (~70 KB) stays under the allocator's usual threshold for a mapping of its own.
const PRESIZED_RECORDS: usize = 512;

/// Records (and at most one error) taken by [`FetchState::drain`].
#[derive(Debug, Default)]
pub struct Drained {
    /// The records, in fetch order per partition.
    pub records: Vec<ConsumerRecord>,
    /// An error to report after (or instead of) the records.
    pub error: Option<ConsumeError>,
}

impl FetchState {
    // ---- handing records out ----

    /// Whether a node's next fetch waits for the application to take records (a
    /// [`drain`](Self::drain) releases it: wake the fetcher after it).
    pub fn awaits_take(&self) -> bool {
        !self.awaiting_take.is_empty()
    }

    /// Whether `drain` has something to give (records of an unpaused partition, or an error).
    pub fn has_ready(&self) -> bool {
        !self.errors.is_empty()
            || !self.corrupt.is_empty()
            || self
                .completed
                .iter()
                .any(|c| self.partitions.get(&c.tp).is_none_or(|s| !s.paused))
    }

    /// Takes up to `max` records, in order per partition, and stops early once they cost
    /// `kafkit.prefetch.max.bytes` (at least `MIN_DRAIN_MEMORY`) in memory (at least one
    /// record is taken). A pending error comes first, alone. Buffered records of paused
    /// partitions stay buffered (handed out after `resume`). A corrupt batch met while taking
    /// records ends the call (records before it are returned with the error) and halts its
    /// partition at the bad offset; until a seek, every later drain reports it again, with
    /// the records of other partitions it takes (Java reports it on every poll).
    pub fn drain(&mut self, max: usize) -> Drained {
        // The application is taking records: nodes held back for it may be fetched again.
        self.awaiting_take.clear();
        if let Some(error) = self.errors.pop_front() {
            return Drained {
                records: Vec::new(),
                error: Some(error),
            };
        }
        let mut out = Drained::default();
        let budget = self.settings.prefetch_max_bytes.max(MIN_DRAIN_MEMORY);
        let mut used = 0usize;
        let mut index = 0usize;
        while out.records.len() < max && used < budget {
            let Some(fetch) = self.completed.get_mut(index) else {
                break;
            };
            let current = self.partitions.get_mut(&fetch.tp).filter(|s| {
                s.generation == fetch.generation
                    && !s.halted
                    && s.position.map(|p| p.offset) == Some(fetch.position.offset)
            });
            let s = match current {
                None => {
                    self.remove_completed(index);
                    continue;
                }
                Some(s) if s.paused => {
                    index += 1; // kept for `resume`
                    continue;
                }
                Some(s) => s,
            };
            // The records of this fetch, its partition looked up once for all of them.
            let ended = loop {
                if out.records.len() >= max || used >= budget {
                    break Ok(false);
                }
                // Room for the whole drain at the first record: no reallocation and copy of
                // the records taken so far as the vector grows.
                match fetch.next_record_into(&mut out.records, max.min(PRESIZED_RECORDS)) {
                    Ok(true) => {
                        let taken = out.records.last().map_or(0, record_memory);
                        used = used.saturating_add(taken);
                    }
                    Ok(false) => break Ok(true),
                    Err(source) => break Err(source),
                }
            };
            let position = fetch.position;
            s.position = Some(position);
            match ended {
                Ok(false) => {}
                Ok(true) => self.remove_completed(index),
                Err(source) => {
                    s.halted = true;
                    let offset = source.base_offset().max(position.offset);
                    let error = ConsumeError::Corrupt {
                        topic: s.topic.clone(),
                        partition: fetch.tp.partition,
                        offset,
                        source: Arc::new(source),
                    };
                    let tp = fetch.tp.clone();
                    self.remove_completed(index);
                    self.corrupt.insert(tp, error.clone());
                    out.error = Some(error);
                    return out;
                }
            }
        }
        self.pop_if_used_up(index);
        if out.error.is_none() {
            // Reported until the application seeks past it.
            out.error = self.corrupt.values().next().cloned();
        }
        out
    }

    /// Removes the fetch at `index` if it has nothing left (see
    /// `CompletedFetch::finish_if_used_up`).
    fn pop_if_used_up(&mut self, index: usize) {
        let Some(fetch) = self.completed.get_mut(index) else {
            return;
        };
        let Some(s) = self.partitions.get_mut(&fetch.tp) else {
            return;
        };
        if s.paused
            || s.generation != fetch.generation
            || s.position.map(|p| p.offset) != Some(fetch.position.offset)
        {
            return;
        }
        if fetch.finish_if_used_up() {
            s.position = Some(fetch.position);
            self.remove_completed(index);
        }
    }

    /// Puts an error back to be reported by the next `drain` (records taken with it were
    /// handed out first).
    pub fn defer_error(&mut self, error: ConsumeError) {
        self.errors.push_front(error);
    }

    fn remove_completed(&mut self, index: usize) {
        if let Some(c) = self.completed.remove(index) {
            self.buffered_bytes = self.buffered_bytes.saturating_sub(c.size);
        }
    }
}

/// What a handed-out record takes in memory, its payload excepted (shared slices).
pub(crate) fn record_memory(record: &ConsumerRecord) -> usize {
    record
        .headers
        .capacity()
        .saturating_mul(size_of::<Header>())
        .saturating_add(size_of::<ConsumerRecord>())
}
