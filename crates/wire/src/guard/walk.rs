//! The walk: reads a message body the way kafka-protocol's decoder will, allocating nothing, and
//! checks every length and count against the bytes that are really there.
//!
//! It also estimates what the decoded message will take in memory ([`walk`] returns it) and
//! refuses a message whose estimate is over a budget: a structurally sound body can still
//! decode into ten times its size (an 18-byte partition on the wire is a ~110-byte struct with
//! three vectors). The estimate, per kafka-protocol's generated structs: every struct's
//! fields at their in-memory size whatever the version (absent fields are still there), plus
//! its map of unknown tagged fields; every array its elements' structs plus an allocation;
//! every string and bytes value its length plus an allocation (kafka-protocol slices most of
//! them from the input, so this errs high); `records` nothing beyond their slice (zero-copy
//! `Bytes`, the same bytes as the frame); every unknown tagged field a map entry.

use std::mem::size_of;

use bytes::Bytes;

use super::error::{GuardError, Problem};
use super::schema::{Field, Message, Type};

/// What one heap allocation costs beyond its bytes (allocator header and rounding), as counted.
const ALLOCATION: usize = 16;
/// A string or bytes field in a decoded struct (`StrBytes`/`Bytes`, `Option` of either).
const SLICE: usize = size_of::<Bytes>();
/// A vector in a decoded struct.
const VEC: usize = size_of::<Vec<u8>>();
/// Every decoded struct's `unknown_tagged_fields: BTreeMap<i32, Bytes>` (empty: no allocation).
const TAG_MAP: usize = size_of::<std::collections::BTreeMap<i32, Bytes>>();
/// One entry of that map, its node share included.
const TAG_ENTRY: usize = 64;

/// Walks `body` as `message` at `version`; `Ok` means every length and count fits the bytes
/// present, nothing is left over, and the decoded message is estimated to take at most
/// `max_decoded` bytes of memory (the estimate is returned).
pub(crate) fn walk(
    message: &Message,
    version: i16,
    body: &[u8],
    max_decoded: usize,
) -> Result<usize, GuardError> {
    walk_with(message, version, body, false, max_decoded)
}

/// [`walk`], refusing every tag the schema does not know: tests use it to prove that the tags
/// kafka-protocol writes are the tags the schema walks.
#[cfg(test)]
pub(crate) fn walk_known_tags_only(
    message: &Message,
    version: i16,
    body: &[u8],
) -> Result<(), GuardError> {
    walk_with(message, version, body, true, usize::MAX).map(drop)
}

fn walk_with(
    message: &Message,
    version: i16,
    body: &[u8],
    known_tags_only: bool,
    max_decoded: usize,
) -> Result<usize, GuardError> {
    if !message.valid.contains(version) {
        return Err(GuardError::UnsupportedVersion {
            message: message.name,
            version,
        });
    }
    let mut walker = Walker {
        buf: body,
        pos: 0,
        version,
        flexible: message.flexible.contains(version),
        known_tags_only,
        field: "",
        decoded: 0,
        max_decoded,
    };
    let malformed = |walker: &Walker<'_>, problem| match problem {
        Problem::DecodedTooLarge { estimate, limit } => GuardError::DecodedTooLarge {
            message: message.name,
            version,
            field: walker.field,
            estimate,
            limit,
        },
        problem => GuardError::Malformed {
            message: message.name,
            version,
            field: walker.field,
            offset: walker.pos,
            problem,
        },
    };
    walker
        .charge(struct_size(message.fields))
        .and_then(|()| walker.walk_struct(message.fields))
        .map_err(|problem| malformed(&walker, problem))?;
    if walker.pos != body.len() {
        return Err(GuardError::TrailingBytes {
            message: message.name,
            version,
            trailing: body.len() - walker.pos,
        });
    }
    Ok(walker.decoded)
}

/// A cursor over the untrusted bytes; `buf` ends where the current scope (message or tagged
/// field) ends, `pos` counts from the start of the body so errors can say where.
struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
    /// Refuse unknown tags instead of skipping them (tests only).
    known_tags_only: bool,
    /// The field being walked, for error messages.
    field: &'static str,
    /// The decoded message's estimated memory so far.
    decoded: usize,
    /// The most it may reach.
    max_decoded: usize,
}

impl Walker<'_> {
    /// Adds `bytes` to the decoded estimate, refusing the message once it passes the budget.
    fn charge(&mut self, bytes: usize) -> Result<(), Problem> {
        self.decoded = self.decoded.saturating_add(bytes);
        if self.decoded > self.max_decoded {
            return Err(Problem::DecodedTooLarge {
                estimate: self.decoded,
                limit: self.max_decoded,
            });
        }
        Ok(())
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: usize) -> Result<(), Problem> {
        if n > self.remaining() {
            return Err(Problem::Truncated {
                needed: n,
                remaining: self.remaining(),
            });
        }
        self.pos += n;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Problem> {
        let mut out = [0u8; N];
        let end = self.pos.saturating_add(N);
        let src = self.buf.get(self.pos..end).ok_or(Problem::Truncated {
            needed: N,
            remaining: self.remaining(),
        })?;
        out.copy_from_slice(src);
        self.pos = end;
        Ok(out)
    }

    /// An unsigned varint of at most 5 bytes that fits in 32 bits (stricter than the decoder,
    /// which silently drops overflowing bits).
    fn uvarint(&mut self) -> Result<u32, Problem> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.fixed::<1>()?;
            if i == 4 && b > 0x0f {
                return Err(Problem::BadVarint);
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(Problem::BadVarint)
    }

    /// A length or count: `int16`/`int32` in classic versions, `uvarint` N+1 in flexible ones.
    /// `None` is null, allowed only where the field is nullable.
    fn length(&mut self, wide: bool, nullable: bool) -> Result<Option<usize>, Problem> {
        let n: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(i32::from_be_bytes(self.fixed()?))
        } else {
            i64::from(i16::from_be_bytes(self.fixed()?))
        };
        match n {
            -1 if nullable => Ok(None),
            -1 => Err(Problem::UnexpectedNull),
            n if n < 0 => Err(Problem::NegativeLength(n)),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| Problem::NegativeLength(n)),
        }
    }

    fn walk_struct(&mut self, fields: &'static [Field]) -> Result<(), Problem> {
        for field in fields {
            if field.in_line(self.version, self.flexible) {
                self.field = field.name;
                self.walk_value(&field.ty, field.nullable.contains(self.version))?;
            }
        }
        if self.flexible {
            self.walk_tagged_fields(fields)?;
        }
        Ok(())
    }

    fn walk_value(&mut self, ty: &Type, nullable: bool) -> Result<(), Problem> {
        match ty {
            Type::String => {
                if let Some(len) = self.length(false, nullable)? {
                    self.skip(len)?;
                    self.charge(len.saturating_add(ALLOCATION))?;
                }
            }
            Type::Bytes => {
                if let Some(len) = self.length(true, nullable)? {
                    self.skip(len)?;
                    self.charge(len.saturating_add(ALLOCATION))?;
                }
            }
            Type::Records => {
                if let Some(len) = self.length(true, nullable)? {
                    self.skip(len)?;
                }
            }
            Type::Struct(fields) => {
                if nullable {
                    match i8::from_be_bytes(self.fixed()?) {
                        -1 => return Ok(()),
                        1 => {}
                        marker => return Err(Problem::BadPresenceMarker(marker)),
                    }
                }
                self.walk_struct(fields)?;
            }
            Type::Array(element) => {
                let Some(count) = self.length(true, nullable)? else {
                    return Ok(());
                };
                // Every element takes at least one byte: refuse counts the bytes can't hold
                // before anyone reserves memory for them.
                let min = self.min_size(element).max(1);
                if count.saturating_mul(min) > self.remaining() {
                    return Err(Problem::TooManyElements {
                        count,
                        min_element_size: min,
                        remaining: self.remaining(),
                    });
                }
                if count > 0 {
                    let slots = count.saturating_mul(inline_size(element));
                    self.charge(slots.saturating_add(ALLOCATION))?;
                }
                for _ in 0..count {
                    self.walk_value(element, false)?;
                }
            }
            fixed => self.skip(fixed_size(fixed))?,
        }
        Ok(())
    }

    /// The tagged-field section: a count, then `tag`, `size`, value. Known tags are walked by
    /// their schema and must fill their declared size exactly, since the decoder reads them from
    /// the main buffer without looking at the size; unknown tags are skipped.
    fn walk_tagged_fields(&mut self, fields: &'static [Field]) -> Result<(), Problem> {
        let count = self.uvarint()? as usize;
        if count.saturating_mul(2) > self.remaining() {
            return Err(Problem::TooManyElements {
                count,
                min_element_size: 2,
                remaining: self.remaining(),
            });
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let end = self.pos.saturating_add(size);
            let scope = self.buf.get(..end).ok_or(Problem::Truncated {
                needed: size,
                remaining: self.remaining(),
            })?;
            let known = fields
                .iter()
                .find(|f| f.tagged.min <= f.tagged.max && f.tag == tag);
            match known {
                Some(field) if field.is_tagged_at(self.version) => {
                    let mut inner = Walker {
                        buf: scope,
                        pos: self.pos,
                        version: self.version,
                        flexible: self.flexible,
                        known_tags_only: self.known_tags_only,
                        field: field.name,
                        decoded: self.decoded,
                        max_decoded: self.max_decoded,
                    };
                    let walked = inner.walk_value(&field.ty, field.nullable.contains(self.version));
                    self.field = inner.field;
                    self.decoded = inner.decoded;
                    if let Err(problem) = walked {
                        self.pos = inner.pos;
                        return Err(problem);
                    }
                    if inner.pos != end {
                        self.pos = inner.pos;
                        return Err(Problem::TaggedFieldSize {
                            tag,
                            declared: size,
                            used: inner.pos - (end - size),
                        });
                    }
                }
                Some(field) => {
                    self.field = field.name;
                    return Err(Problem::TagNotInVersion(tag));
                }
                None if self.known_tags_only => return Err(Problem::TagNotInVersion(tag)),
                None => self.charge(TAG_ENTRY.saturating_add(size))?,
            }
            self.pos = end;
        }
        Ok(())
    }

    /// The fewest bytes a value of `ty` can take at this version.
    fn min_size(&self, ty: &Type) -> usize {
        let length_prefix = |wide: usize| if self.flexible { 1 } else { wide };
        match ty {
            Type::String => length_prefix(2),
            Type::Bytes | Type::Records | Type::Array(_) => length_prefix(4),
            Type::Struct(fields) => {
                let in_line = fields
                    .iter()
                    .filter(|f| f.in_line(self.version, self.flexible))
                    .map(|f| {
                        if f.nullable.contains(self.version) && matches!(f.ty, Type::Struct(_)) {
                            1
                        } else {
                            self.min_size(&f.ty)
                        }
                    })
                    .fold(0usize, usize::saturating_add);
                in_line.saturating_add(usize::from(self.flexible))
            }
            fixed => fixed_size(fixed),
        }
    }
}

fn fixed_size(ty: &Type) -> usize {
    match ty {
        Type::Bool | Type::Int8 => 1,
        Type::Int16 | Type::UInt16 => 2,
        Type::Int32 | Type::UInt32 => 4,
        Type::Int64 | Type::Float64 => 8,
        Type::Uuid => 16,
        Type::String | Type::Bytes | Type::Records | Type::Struct(_) | Type::Array(_) => 0,
    }
}

/// What a value of `ty` takes inside its decoded parent (a struct's field or an array slot).
fn inline_size(ty: &Type) -> usize {
    match ty {
        Type::String | Type::Bytes | Type::Records => SLICE,
        Type::Array(_) => VEC,
        Type::Struct(fields) => struct_size(fields),
        fixed => fixed_size(fixed),
    }
}

/// A decoded struct's size: every field of every version, its tagged-field map, rounded up to
/// the 8-byte alignment the generated structs have.
fn struct_size(fields: &[Field]) -> usize {
    let sum = fields
        .iter()
        .map(|f| inline_size(&f.ty))
        .fold(TAG_MAP, usize::saturating_add);
    sum.saturating_add(7) / 8 * 8
}
