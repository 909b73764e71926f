//! The walk: reads a message body the way kafka-protocol's decoder will, allocating nothing, and
//! checks every length and count against the bytes that are really there.

use super::error::{GuardError, Problem};
use super::schema::{Field, Message, Type};

/// Walks `body` as `message` at `version`; `Ok` means every length and count fits the bytes
/// present and nothing is left over.
pub(crate) fn walk(message: &Message, version: i16, body: &[u8]) -> Result<(), GuardError> {
    walk_with(message, version, body, false)
}

/// [`walk`], refusing every tag the schema does not know: tests use it to prove that the tags
/// kafka-protocol writes are the tags the schema walks.
#[cfg(test)]
pub(crate) fn walk_known_tags_only(
    message: &Message,
    version: i16,
    body: &[u8],
) -> Result<(), GuardError> {
    walk_with(message, version, body, true)
}

fn walk_with(
    message: &Message,
    version: i16,
    body: &[u8],
    known_tags_only: bool,
) -> Result<(), GuardError> {
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
    };
    let malformed = |walker: &Walker<'_>, problem| GuardError::Malformed {
        message: message.name,
        version,
        field: walker.field,
        offset: walker.pos,
        problem,
    };
    walker
        .walk_struct(message.fields)
        .map_err(|problem| malformed(&walker, problem))?;
    if walker.pos != body.len() {
        return Err(GuardError::TrailingBytes {
            message: message.name,
            version,
            trailing: body.len() - walker.pos,
        });
    }
    Ok(())
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
}

impl Walker<'_> {
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
                }
            }
            Type::Bytes | Type::Records => {
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
                    };
                    let walked = inner.walk_value(&field.ty, field.nullable.contains(self.version));
                    self.field = inner.field;
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
                None => {}
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
