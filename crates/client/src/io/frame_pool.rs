//! Receive buffers for a connection's large response frames, reused from one response to the
//! next.
//!
//! A Fetch response is read into one buffer and handed out as slices of it (record keys and
//! values are never copied), so the records an application still holds keep that buffer
//! alive, and the last one dropped frees it on whatever thread dropped it. Allocating a fresh
//! multi-megabyte buffer for every response that way lets the system allocator keep freed
//! buffers in per-thread arenas (glibc raises its mmap threshold after the first such free):
//! reading a backlog of 900 KB records, the consumer stayed at about twice the memory its live
//! buffers needed (32 MiB of growth, 14 MiB with the allocator made to return every buffer).
//! Here a buffer whose last slice is dropped goes back to its connection's pool and the next
//! large frame is read into it, so what stays resident follows the buffers in use at once.
//!
//! Only frames of at least [`POOLED_FRAME_MIN`] bytes come from the pool (smaller ones are
//! cut from the connection's read buffer as before), and the pool keeps at most
//! [`IDLE_MAX`] idle buffers: after a burst of large responses, the memory above that is freed.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;

/// Frames (size prefix excluded) at least this large are read into a pooled buffer: the size
/// above which glibc's allocator starts out serving allocations with `mmap`.
pub(crate) const POOLED_FRAME_MIN: usize = 128 * 1024;

/// Idle buffers a pool keeps; a buffer given back beyond that is freed.
pub(crate) const IDLE_MAX: usize = 2;

/// One connection's idle receive buffers.
#[derive(Debug, Default)]
pub(crate) struct FramePool {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl FramePool {
    /// An empty buffer with room for at least `size` bytes: an idle one that is big enough,
    /// else a new one with an eighth more room (so that the next, slightly larger response of
    /// the same kind fits it too). When no idle buffer fits, the smallest one is freed: a
    /// buffer too small for the frames that come now would only add to the memory held.
    pub(crate) fn take(&self, size: usize) -> Vec<u8> {
        let mut idle = lock(&self.idle);
        let fitting = idle
            .iter()
            .enumerate()
            .filter(|(_, buf)| buf.capacity() >= size)
            .min_by_key(|(_, buf)| buf.capacity())
            .map(|(i, _)| i);
        if let Some(i) = fitting {
            return idle.swap_remove(i);
        }
        if let Some(smallest) = idle
            .iter()
            .enumerate()
            .min_by_key(|(_, buf)| buf.capacity())
            .map(|(i, _)| i)
        {
            idle.swap_remove(smallest);
        }
        drop(idle);
        Vec::with_capacity(size.saturating_add(size / 8))
    }

    /// Takes back a buffer nothing refers to any more (kept while fewer than [`IDLE_MAX`] are
    /// idle).
    fn give_back(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut idle = lock(&self.idle);
        if idle.len() < IDLE_MAX {
            idle.push(buf);
        }
    }

    /// Idle buffers held now.
    #[cfg(test)]
    fn idle(&self) -> usize {
        lock(&self.idle).len()
    }
}

/// Wraps a filled buffer from `pool` as [`Bytes`]: slices of it share the buffer, and when the
/// last one is dropped the buffer goes back to the pool (or is freed if the pool is gone: the
/// pool is referred to weakly, so records outliving their connection do not keep it).
pub(crate) fn pooled_bytes(buf: Vec<u8>, pool: &Arc<FramePool>) -> Bytes {
    Bytes::from_owner(Filled {
        buf,
        pool: Arc::downgrade(pool),
    })
}

/// A pooled buffer holding one frame, owned by the [`Bytes`] made of it.
struct Filled {
    buf: Vec<u8>,
    pool: Weak<FramePool>,
}

impl AsRef<[u8]> for Filled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Filled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.buf));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(pool: &Arc<FramePool>, size: usize, byte: u8) -> (Bytes, *const u8) {
        let mut buf = pool.take(size);
        assert!(buf.capacity() >= size && buf.is_empty());
        buf.resize(size, byte);
        let at = buf.as_ptr();
        (pooled_bytes(buf, pool), at)
    }

    #[test]
    fn a_buffer_comes_back_only_when_its_last_slice_is_dropped() {
        let pool = Arc::new(FramePool::default());
        let (frame, at) = filled(&pool, 1000, 7);
        let record = frame.slice(10..20);
        drop(frame);
        assert_eq!(pool.idle(), 0, "a record still refers to the buffer");
        assert_eq!(&record[..], &[7u8; 10]);
        drop(record);
        assert_eq!(pool.idle(), 1);
        // The next frame that fits is read into the same memory, which starts empty.
        let (next, again) = filled(&pool, 900, 9);
        assert_eq!(again, at);
        assert!(next.iter().all(|&b| b == 9));
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn a_frame_larger_than_every_idle_buffer_gets_a_new_one_and_frees_the_smallest() {
        let pool = Arc::new(FramePool::default());
        let small = filled(&pool, 100, 1).0;
        let medium = filled(&pool, 400, 2).0;
        drop((small, medium));
        assert_eq!(pool.idle(), 2);
        let big = pool.take(1000);
        assert!(big.capacity() >= 1000 + 1000 / 8);
        assert_eq!(pool.idle(), 1, "the smallest idle buffer was freed");
        // The one left is the 400-byte one: a 300-byte frame takes it.
        assert!(pool.take(300).capacity() >= 400);
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn the_smallest_fitting_idle_buffer_is_taken() {
        let pool = Arc::new(FramePool::default());
        let a = filled(&pool, 5000, 1).0;
        let b = filled(&pool, 800, 2).0;
        drop((a, b));
        let taken = pool.take(700);
        assert!(taken.capacity() >= 800 && taken.capacity() < 5000);
    }

    #[test]
    fn at_most_idle_max_buffers_are_kept() {
        let pool = Arc::new(FramePool::default());
        let frames: Vec<Bytes> = (0..IDLE_MAX + 3)
            .map(|i| filled(&pool, 256 + i, 0).0)
            .collect();
        drop(frames);
        assert_eq!(pool.idle(), IDLE_MAX);
    }

    #[test]
    fn records_outliving_their_pool_free_their_buffer() {
        let pool = Arc::new(FramePool::default());
        let (frame, _) = filled(&pool, 64, 3);
        drop(pool);
        assert_eq!(&frame[..4], &[3, 3, 3, 3]);
        drop(frame); // nothing to give back to: freed
    }
}
