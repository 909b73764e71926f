//! Kafka's framing: every request and response travels as a 4-byte big-endian size followed by
//! that many bytes.
//!
//! [`FrameDecoder`] cuts frames out of a read buffer as they arrive, refusing sizes above a
//! maximum (or negative) before anything is reserved for them. [`write_frame`] writes one frame
//! into a reusable buffer, patching the size in once the body is encoded.
//!
//! ```
//! use bytes::BytesMut;
//! use kafkit_wire::frame::{write_frame, FrameDecoder, FrameError, Next};
//!
//! let mut out = BytesMut::new();
//! write_frame(&mut out, |buf| {
//!     buf.extend_from_slice(b"hello");
//!     Ok::<_, FrameError>(())
//! })
//! .unwrap();
//! assert_eq!(&out[..], b"\0\0\0\x05hello");
//!
//! let mut decoder = FrameDecoder::new();
//! let mut read_buf = BytesMut::from(&out[..6]);
//! assert_eq!(decoder.decode(&mut read_buf), Ok(Next::Need(3)));
//! read_buf.extend_from_slice(&out[6..]);
//! assert_eq!(decoder.decode(&mut read_buf), Ok(Next::Frame(bytes::Bytes::from_static(b"hello"))));
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The size of the length prefix.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Default largest frame accepted: 100 MiB, like the broker's `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// A frame that cannot be accepted or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix is above the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The size announced (or encoded).
        size: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The size prefix is negative.
    #[error("negative frame size {0}")]
    NegativeSize(i32),
}

/// What [`FrameDecoder::decode`] found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A whole frame, without its size prefix, split off the front of the buffer (no copy).
    Frame(Bytes),
    /// At least this many more bytes must arrive before the next frame is whole.
    Need(usize),
}

/// Cuts size-prefixed frames out of a read buffer, incrementally.
///
/// Feed it the connection's read buffer after every read; it takes whole frames off the front
/// and leaves partial ones in place. A size above the maximum or below zero is an error the
/// moment its 4 bytes arrive, before the buffer grows for it; the connection should then be
/// closed, since the stream can't be resynchronised.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder accepting frames up to [`DEFAULT_MAX_FRAME_SIZE`].
    pub fn new() -> FrameDecoder {
        FrameDecoder::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// A decoder accepting frames up to `max_frame_size` bytes (size prefix excluded).
    pub fn with_max_frame_size(max_frame_size: usize) -> FrameDecoder {
        FrameDecoder { max_frame_size }
    }

    /// The largest frame accepted.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The size (prefix excluded) of the frame that starts `buf`, once its 4-byte prefix is
    /// there (`None` before), checked like [`decode`](Self::decode) checks it. Lets a reader
    /// choose where a large frame's body goes before reading it.
    ///
    /// ```
    /// use kafkit_wire::frame::{FrameDecoder, FrameError};
    ///
    /// let decoder = FrameDecoder::with_max_frame_size(1 << 20);
    /// assert_eq!(decoder.frame_size(&[0, 0]), Ok(None));
    /// assert_eq!(decoder.frame_size(&[0, 2, 0, 0, 7]), Ok(Some(131_072)));
    /// assert_eq!(decoder.frame_size(&[0xff, 0xff, 0xff, 0xff]), Err(FrameError::NegativeSize(-1)));
    /// ```
    pub fn frame_size(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.get(..SIZE_PREFIX_LEN) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
        if size > self.max_frame_size {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        Ok(Some(size))
    }

    /// Takes the next whole frame off the front of `buf`, or says how many more bytes it needs.
    ///
    /// When the size is known and valid but the body is incomplete, `buf` is reserved up to
    /// the whole frame so the following reads fill it without reallocating.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Next, FrameError> {
        let Some(size) = self.frame_size(buf)? else {
            return Ok(Next::Need(SIZE_PREFIX_LEN - buf.len()));
        };
        let total = SIZE_PREFIX_LEN + size;
        if buf.len() < total {
            let missing = total - buf.len();
            buf.reserve(missing);
            return Ok(Next::Need(missing));
        }
        let mut frame = buf.split_to(total);
        frame.advance(SIZE_PREFIX_LEN);
        Ok(Next::Frame(frame.freeze()))
    }
}

/// Appends one frame to `buf`: a 4-byte size, then whatever `encode_body` writes.
///
/// The size is written as a gap first and patched once the body is known, so nothing is
/// encoded twice. If `encode_body` fails, or the body does not fit an `i32`, `buf` is left as
/// it was.
pub fn write_frame<E>(
    buf: &mut BytesMut,
    encode_body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<FrameError>,
{
    let start = buf.len();
    buf.put_i32(0);
    if let Err(e) = encode_body(buf) {
        buf.truncate(start);
        return Err(e);
    }
    let size = buf.len() - start - SIZE_PREFIX_LEN;
    let Ok(size_i32) = i32::try_from(size) else {
        buf.truncate(start);
        return Err(FrameError::TooLarge {
            size,
            max: i32::MAX as usize,
        }
        .into());
    };
    buf[start..start + SIZE_PREFIX_LEN].copy_from_slice(&size_i32.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for body in bodies {
            write_frame(&mut out, |b| {
                b.extend_from_slice(body);
                Ok::<_, FrameError>(())
            })
            .unwrap();
        }
        out.to_vec()
    }

    #[test]
    fn byte_by_byte_feed_yields_each_frame_once() {
        let bodies: [&[u8]; 3] = [b"first", b"", b"third frame"];
        let wire = framed(&bodies);
        let decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &byte in &wire {
            buf.put_u8(byte);
            loop {
                match decoder.decode(&mut buf).unwrap() {
                    Next::Frame(f) => got.push(f),
                    Next::Need(n) => {
                        assert!(n > 0);
                        break;
                    }
                }
            }
        }
        assert_eq!(
            got,
            bodies
                .iter()
                .map(|b| Bytes::copy_from_slice(b))
                .collect::<Vec<_>>()
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn need_counts_exactly_the_missing_bytes() {
        let wire = framed(&[b"abcdef"]);
        let decoder = FrameDecoder::new();
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            let need = if cut < SIZE_PREFIX_LEN {
                SIZE_PREFIX_LEN - cut
            } else {
                wire.len() - cut
            };
            assert_eq!(decoder.decode(&mut buf), Ok(Next::Need(need)));
            assert_eq!(buf.len(), cut, "a partial frame stays in the buffer");
        }
    }

    #[test]
    fn several_frames_in_one_buffer() {
        let wire = framed(&[b"a", b"bb", b"ccc"]);
        let mut buf = BytesMut::from(&wire[..]);
        buf.extend_from_slice(&[0, 0]); // the start of a fourth frame
        let decoder = FrameDecoder::new();
        for expected in [&b"a"[..], b"bb", b"ccc"] {
            assert_eq!(
                decoder.decode(&mut buf),
                Ok(Next::Frame(Bytes::copy_from_slice(expected)))
            );
        }
        assert_eq!(decoder.decode(&mut buf), Ok(Next::Need(2)));
    }

    #[test]
    fn oversize_is_refused_before_reserving() {
        let decoder = FrameDecoder::with_max_frame_size(1024);
        let mut buf = BytesMut::from(&[0, 0, 4, 1][..]);
        let capacity = buf.capacity();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLarge {
                size: 1025,
                max: 1024
            })
        );
        assert_eq!(buf.capacity(), capacity);

        let mut huge = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            FrameDecoder::new().decode(&mut huge),
            Err(FrameError::TooLarge {
                size: 0x7fff_ffff,
                ..
            })
        ));
        assert!(huge.capacity() < 1024);
    }

    #[test]
    fn exactly_the_maximum_is_accepted() {
        let decoder = FrameDecoder::with_max_frame_size(3);
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Next::Frame(Bytes::from_static(&[1, 2, 3])))
        );
    }

    #[test]
    fn negative_sizes_are_refused() {
        for prefix in [[0xff, 0xff, 0xff, 0xff], [0x80, 0, 0, 0]] {
            let mut buf = BytesMut::from(&prefix[..]);
            let expected = i32::from_be_bytes(prefix);
            assert_eq!(
                FrameDecoder::new().decode(&mut buf),
                Err(FrameError::NegativeSize(expected))
            );
        }
    }

    #[test]
    fn a_failed_body_leaves_the_buffer_untouched() {
        let mut buf = BytesMut::from(&b"keep"[..]);
        let result = write_frame(&mut buf, |b| {
            b.extend_from_slice(b"partial");
            Err(FrameError::NegativeSize(-2))
        });
        assert!(result.is_err());
        assert_eq!(&buf[..], b"keep");
    }

    proptest::proptest! {
        /// Any bodies, cut into any chunks: the same bodies come out, in order.
        #[test]
        fn any_chunking_yields_the_same_frames(
            bodies in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..40), 0..5),
            cuts in proptest::collection::vec(1usize..16, 1..64),
        ) {
            let wire = framed(&bodies.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let decoder = FrameDecoder::with_max_frame_size(40);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut rest = &wire[..];
            let mut cut = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                while let Next::Frame(frame) = decoder.decode(&mut buf).unwrap() {
                    got.push(frame.to_vec());
                }
            }
            proptest::prop_assert_eq!(got, bodies);
            proptest::prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn frames_append_to_a_reused_buffer() {
        let mut buf = BytesMut::new();
        for body in [&b"x"[..], b"yz"] {
            write_frame(&mut buf, |b| {
                b.extend_from_slice(body);
                Ok::<_, FrameError>(())
            })
            .unwrap();
        }
        assert_eq!(&buf[..], b"\0\0\0\x01x\0\0\0\x02yz");
    }
}
