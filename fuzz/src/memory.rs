//! The memory-class check of `record_limits`: a counting global allocator and the bound that
//! decoding hostile batches (decompression bombs included) must stay within.
//!
//! The allocator is the one place the fuzz crate uses `unsafe`; only the `record_limits` binary
//! installs it (`#[global_allocator]`), the throughput targets keep the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use kafkit_wire::record::{BatchReader, DecodeLimits, RecordError};

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = CURRENT.try_with(|current| {
        let now = current.get().wrapping_add(delta);
        current.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

/// A global allocator that forwards to [`System`] and counts the bytes allocated on each thread,
/// so [`peak_of`] can tell the most a closure held at once.
pub struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; the counters are thread-local cells
// that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns its result with the most bytes it had allocated at once on this thread
/// (above what was allocated when it started). Counts nothing unless [`Counting`] is the global
/// allocator: a target using this must install it.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, usize::try_from(peak - start).unwrap_or(0))
}

/// What decoding `input` may hold at once: a few copies of the input (the decompressors' own
/// buffers), two decompressed sections (a buffer growing by doubling), the decoded budget and
/// 1 MiB of codec state (gzip window, zstd tables, lz4 blocks). The same bound
/// `crates/wire/tests/decode_memory.rs` holds the decoder to.
pub fn memory_bound(input: usize, limits: &DecodeLimits) -> usize {
    input
        .saturating_mul(4)
        .saturating_add(limits.max_decompressed_size.saturating_mul(2))
        .saturating_add(limits.max_decoded_size)
        .saturating_add(1 << 20)
}

/// Decodes every batch of `records` whole and then streamed (each record dropped as it comes),
/// measuring both with the counting allocator: each peak stays within [`memory_bound`], a whole
/// batch's records cost at most `max_decoded_size` (`Record::memory_size`), every streamed
/// record fits that budget alone, and a batch over a limit is refused with the limit's typed
/// error naming the limit in force.
pub fn check_memory_bound(records: Bytes, limits: DecodeLimits) {
    let bound = memory_bound(records.len(), &limits);
    let (_, whole_peak) = peak_of(|| {
        let mut reader = BatchReader::with_limits(records.clone(), limits);
        loop {
            match reader.next_batch() {
                Ok(Some(batch)) => {
                    let cost = batch
                        .records()
                        .iter()
                        .fold(0usize, |sum, r| sum.saturating_add(r.memory_size()));
                    assert!(cost <= limits.max_decoded_size, "whole batch costs {cost}");
                }
                Ok(None) => break,
                Err(e) => {
                    check_refusal(&e, &limits);
                    break;
                }
            }
        }
    });
    assert!(
        whole_peak <= bound,
        "whole decode peaked at {whole_peak}, bound {bound}"
    );
    let (_, streamed_peak) = peak_of(|| {
        let mut reader = BatchReader::with_limits(records, limits);
        loop {
            let mut batch = match reader.next_streaming() {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(e) => {
                    check_refusal(&e, &limits);
                    break;
                }
            };
            loop {
                match batch.next_record() {
                    Ok(Some(r)) => assert!(r.memory_size() <= limits.max_decoded_size),
                    Ok(None) => break,
                    Err(e) => {
                        check_refusal(&e, &limits);
                        break;
                    }
                }
            }
        }
    });
    assert!(
        streamed_peak <= bound,
        "streamed decode peaked at {streamed_peak}, bound {bound}"
    );
}

/// A refusal on a limit names the limit in force (and, on the decoded budget, a size over it).
fn check_refusal(error: &RecordError, limits: &DecodeLimits) {
    match error {
        RecordError::DecompressionLimit { limit, .. } => {
            assert_eq!(*limit, limits.max_decompressed_size);
        }
        RecordError::DecodedTooLarge { size, limit, .. } => {
            assert_eq!(*limit, limits.max_decoded_size);
            assert!(
                size > limit,
                "refused {size} bytes under the budget {limit}"
            );
        }
        _ => {}
    }
}
