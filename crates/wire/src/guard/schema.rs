//! The shape of a Kafka message schema, as the generated tables in `schemas.rs` spell it.
//!
//! This mirrors Kafka's JSON message definitions: a message has `validVersions`,
//! `flexibleVersions` and fields; a field has a type, `versions`, `nullableVersions` and,
//! when it is a tagged field, `taggedVersions` and a `tag`.

/// An inclusive range of versions; `min > max` means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions {
    pub(crate) min: i16,
    pub(crate) max: i16,
}

impl Versions {
    /// Whether `version` is in the range.
    pub(crate) const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// `min..=max` as [`Versions`]; `v(1, 0)` is the empty range ("none").
pub(crate) const fn v(min: i16, max: i16) -> Versions {
    Versions { min, max }
}

const NONE: Versions = v(1, 0);

/// The wire type of a field.
///
/// Every type Kafka's definitions use is here, even when kafkit's table of APIs happens not
/// to need it today (`uint16`, `uint32`, `float64`), so any definition can be generated.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Type {
    /// `bool`: one byte.
    Bool,
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `uint16`.
    UInt16,
    /// `int32`.
    Int32,
    /// `uint32`.
    UInt32,
    /// `int64`.
    Int64,
    /// `float64`.
    Float64,
    /// `uuid`: 16 bytes.
    Uuid,
    /// `string`: int16 length, or unsigned varint length + 1 in flexible versions.
    String,
    /// `bytes`: int32 length, or unsigned varint length + 1 in flexible versions.
    Bytes,
    /// `records`: a record set, framed on the wire exactly like `bytes`.
    Records,
    /// A struct with its own fields (nullable structs carry an int8 presence marker).
    Struct(&'static [Field]),
    /// `[]T`: int32 count, or unsigned varint count + 1 in flexible versions.
    Array(&'static Type),
}

pub(crate) const BOOL: Type = Type::Bool;
pub(crate) const I8: Type = Type::Int8;
pub(crate) const I16: Type = Type::Int16;
#[allow(dead_code)]
pub(crate) const U16: Type = Type::UInt16;
pub(crate) const I32: Type = Type::Int32;
#[allow(dead_code)]
pub(crate) const U32: Type = Type::UInt32;
pub(crate) const I64: Type = Type::Int64;
#[allow(dead_code)]
pub(crate) const F64: Type = Type::Float64;
pub(crate) const UUID: Type = Type::Uuid;
pub(crate) const STR: Type = Type::String;
pub(crate) const BYTES: Type = Type::Bytes;
pub(crate) const RECORDS: Type = Type::Records;

/// One field of a message or struct.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) ty: Type,
    /// `versions`: where the field exists at all.
    pub(crate) versions: Versions,
    /// `nullableVersions`.
    pub(crate) nullable: Versions,
    /// `taggedVersions`: where the field travels as a tagged field instead of in line.
    pub(crate) tagged: Versions,
    /// `tag`, meaningful when `tagged` is not empty.
    pub(crate) tag: u32,
}

/// A field of type `ty` present in `min..=max`, neither nullable nor tagged.
pub(crate) const fn f(name: &'static str, ty: Type, min: i16, max: i16) -> Field {
    Field {
        name,
        ty,
        versions: v(min, max),
        nullable: NONE,
        tagged: NONE,
        tag: 0,
    }
}

impl Field {
    /// The same field, nullable in `min..=max`.
    pub(crate) const fn null(mut self, min: i16, max: i16) -> Field {
        self.nullable = v(min, max);
        self
    }

    /// The same field, tagged with `tag` in `min..=max`.
    pub(crate) const fn tag(mut self, tag: u32, min: i16, max: i16) -> Field {
        self.tag = tag;
        self.tagged = v(min, max);
        self
    }

    /// Whether the field travels in line (not as a tagged field) at `version`.
    pub(crate) fn in_line(&self, version: i16, flexible: bool) -> bool {
        self.versions.contains(version) && !(flexible && self.tagged.contains(version))
    }

    /// Whether the field is a tagged field at `version` (tagged fields need a flexible version).
    pub(crate) fn is_tagged_at(&self, version: i16) -> bool {
        self.versions.contains(version) && self.tagged.contains(version)
    }
}

/// A request or response message of one API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message {
    pub(crate) name: &'static str,
    pub(crate) api_key: i16,
    /// `validVersions`.
    pub(crate) valid: Versions,
    /// `flexibleVersions`.
    pub(crate) flexible: Versions,
    pub(crate) fields: &'static [Field],
}
