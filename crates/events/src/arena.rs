//! Per-thread byte chunks for the small values of published records (the encoded payload,
//! the CloudEvents header values): each value is a slice of a chunk shared by many records,
//! so publishing an event costs no allocation for them (one per chunk instead of two per
//! value: the buffer and the `Bytes`' shared header).
//!
//! A chunk is freed when the last record holding a slice of it is dropped (records are
//! dropped once the broker has acknowledged them). A value larger than what is left of the
//! chunk gets a new chunk; a payload that outgrows its chunk while being written moves to a
//! new buffer of its own, so any size is written correctly.

use std::cell::Cell;

use bytes::BytesMut;

/// Bytes per chunk: a few hundred typical events.
const CHUNK: usize = 32 * 1024;

thread_local! {
    static SPARE: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// The thread's buffer, empty, with at least `min_spare` bytes of capacity; hand it back with
/// [`put_back`] once the values written into it have been split off.
pub(crate) fn take(min_spare: usize) -> BytesMut {
    let mut buf = SPARE.with(Cell::take);
    buf.clear();
    if buf.capacity() < min_spare {
        buf = BytesMut::with_capacity(CHUNK.max(min_spare));
    }
    buf
}

/// Keeps what is left of `buf` for the next [`take`] on this thread (anything still written
/// in it is dropped).
pub(crate) fn put_back(mut buf: BytesMut) {
    buf.clear();
    SPARE.with(|spare| spare.set(buf));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_slices_of_one_chunk_and_any_size_fits() {
        let mut buf = take(16);
        buf.extend_from_slice(b"first");
        let first = buf.split().freeze();
        put_back(buf);
        let mut buf = take(16);
        buf.extend_from_slice(b"second");
        let second = buf.split().freeze();
        put_back(buf);
        assert_eq!(&first[..], b"first");
        assert_eq!(&second[..], b"second");
        // Adjacent in one chunk: no allocation for the second value.
        assert_eq!(first.as_ptr().wrapping_add(first.len()), second.as_ptr());

        // Larger than a chunk: written whole, earlier values untouched.
        let mut buf = take(8);
        let big = vec![7u8; CHUNK * 3];
        buf.extend_from_slice(&big);
        let got = buf.split().freeze();
        put_back(buf);
        assert_eq!(&got[..], &big[..]);
        assert_eq!(&first[..], b"first");

        // Something left unsplit is dropped, not handed to the next value.
        let mut buf = take(4);
        buf.extend_from_slice(b"abandoned");
        put_back(buf);
        let mut buf = take(4);
        buf.extend_from_slice(b"next");
        assert_eq!(&buf.split().freeze()[..], b"next");
        put_back(buf);
    }
}
