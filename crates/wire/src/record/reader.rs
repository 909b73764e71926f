//! A bounds-checked big-endian cursor over a `Bytes`, tagging errors with the batch base offset.

use bytes::Bytes;

use super::error::RecordError;
use super::varint::{decode_varint, decode_varlong};

pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    /// Where reading stops: the buffer's end, or the end of a [`Reader::within`] view.
    end: usize,
    pub(crate) base_offset: i64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("len", &self.buf.len())
            .field("pos", &self.pos)
            .field("end", &self.end)
            .field("base_offset", &self.base_offset)
            .finish()
    }
}

impl Reader {
    pub(crate) fn new(buf: Bytes, base_offset: i64) -> Self {
        Reader {
            end: buf.len(),
            buf,
            pos: 0,
            base_offset,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// Runs `read` over the next `len` bytes only: a bounded view of the same buffer (no new
    /// handle on it, so no reference count touched; [`Reader::position`] stays counted from
    /// the buffer's start). Afterwards the cursor stands right after those `len` bytes,
    /// whatever `read` did.
    pub(crate) fn within<T>(
        &mut self,
        len: usize,
        read: impl FnOnce(&mut Reader) -> Result<T, RecordError>,
    ) -> Result<T, RecordError> {
        if len > self.remaining() {
            return Err(self.truncated(len));
        }
        let (outer_end, start) = (self.end, self.pos);
        let end = start.saturating_add(len);
        self.end = end;
        let result = read(self);
        self.end = outer_end;
        self.pos = end;
        result
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn truncated(&self, needed: usize) -> RecordError {
        RecordError::Truncated {
            base_offset: self.base_offset,
            needed,
            available: self.remaining(),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        if N > self.remaining() {
            return Err(self.truncated(N));
        }
        let end = self.pos.saturating_add(N);
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.truncated(N))?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    #[inline]
    fn rest(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<i32, RecordError> {
        let (v, n) = decode_varint(self.rest()).map_err(|source| RecordError::BadVarint {
            base_offset: self.base_offset,
            field,
            source,
        })?;
        self.pos = self.pos.saturating_add(n);
        Ok(v)
    }

    #[inline]
    pub(crate) fn varlong(&mut self, field: &'static str) -> Result<i64, RecordError> {
        let (v, n) = decode_varlong(self.rest()).map_err(|source| RecordError::BadVarint {
            base_offset: self.base_offset,
            field,
            source,
        })?;
        self.pos = self.pos.saturating_add(n);
        Ok(v)
    }

    /// The next `len` bytes as a zero-copy slice.
    #[inline]
    pub(crate) fn bytes(&mut self, len: usize) -> Result<Bytes, RecordError> {
        if len > self.remaining() {
            return Err(self.truncated(len));
        }
        let end = self.pos.saturating_add(len);
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// A length that must be >= 0, or -1 (null) when `nullable`; `None` for null.
    #[inline]
    pub(crate) fn length(
        &self,
        len: i64,
        nullable: bool,
        field: &'static str,
    ) -> Result<Option<usize>, RecordError> {
        if len == -1 && nullable {
            return Ok(None);
        }
        usize::try_from(len)
            .map(Some)
            .map_err(|_| self.invalid(field, len))
    }

    pub(crate) fn invalid(&self, field: &'static str, value: i64) -> RecordError {
        RecordError::InvalidLength {
            base_offset: self.base_offset,
            field,
            value,
        }
    }

    /// A varint-length-prefixed byte string (v2 records).
    #[inline]
    pub(crate) fn varint_bytes(
        &mut self,
        nullable: bool,
        field: &'static str,
    ) -> Result<Option<Bytes>, RecordError> {
        let len = self.varint(field)?;
        match self.length(i64::from(len), nullable, field)? {
            None => Ok(None),
            Some(len) => self.bytes(len).map(Some),
        }
    }

    /// An i32-length-prefixed nullable byte string (legacy messages).
    pub(crate) fn i32_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, RecordError> {
        let len = self.i32()?;
        match self.length(i64::from(len), true, field)? {
            None => Ok(None),
            Some(len) => self.bytes(len).map(Some),
        }
    }
}
