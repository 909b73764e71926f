//! An Avro record written field by field in schema order, without apache-avro's per-field
//! lookup.
//!
//! apache-avro's serializer finds each struct field by name (a map lookup) and keeps a map of
//! fields received out of order (one hash per field, even when none is), per record written.
//! Its serializer also writes a *tuple* against a record schema positionally, with neither.
//! [`write`] therefore serializes the payload through [`InOrder`], which turns the top-level
//! `serialize_struct` of a record of two fields or more into a tuple as long as each field
//! arrives under the name the schema has at that position; anything else (a field out of order
//! or skipped, another shape) makes the write fail and [`write`] writes the record again the
//! usual way, so the bytes and every error are apache-avro's own. Nested values are always
//! serialized by apache-avro directly.
//!
//! A type whose fields are not in schema order gives up on every record; the caller keeps an
//! [`InOrderHint`] per writer (type and schema) which counts the give-ups, so such a type is
//! serialized once per record, the usual way, after its first few records, while a type that
//! only sometimes skips a field (`skip_serializing_if`) keeps the field-order path for the
//! records that fit it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use apache_avro::schema::RecordField;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema as AvroSchema;
use bytes::{BufMut, BytesMut};
use serde::ser::{Error as _, Serialize, SerializeStruct, SerializeTuple, Serializer};

/// Give-ups of one writer before [`InOrderHint`] weighs them against the records that fit.
const FREE_GIVE_UPS: u64 = 8;

/// The field-order path stays on while at most one attempt in this many gives up (past
/// [`FREE_GIVE_UPS`]): each give-up costs a second serialization, each fit saves about half
/// of one.
const FITS_PER_GIVE_UP: u64 = 4;

/// Whether the field-order path is still worth trying for one writer (a payload type and the
/// schema it is written with): counts the records that path gave up on (and the usual way
/// then wrote) and, once there were any, the records it wrote; off for good once more than
/// [`FREE_GIVE_UPS`] gave up and more than one attempt in [`FITS_PER_GIVE_UP`] did. Cheap to
/// clone; clones share the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct InOrderHint(Arc<HintCounts>);

#[derive(Debug, Default)]
struct HintCounts {
    give_ups: AtomicU64,
    /// Counted only after a first give-up: a type that always fits writes nothing shared.
    fits: AtomicU64,
}

impl InOrderHint {
    /// Whether [`write`] tries the field-order path.
    pub(crate) fn tries(&self) -> bool {
        let give_ups = self.0.give_ups.load(Ordering::Relaxed);
        give_ups < FREE_GIVE_UPS
            || give_ups.saturating_mul(FITS_PER_GIVE_UP) <= self.0.fits.load(Ordering::Relaxed)
    }

    fn fitted(&self) {
        if self.0.give_ups.load(Ordering::Relaxed) > 0 {
            self.0.fits.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn give_up(&self) {
        self.0.give_ups.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
thread_local! {
    /// Field-order attempts on this thread (tests only).
    static ATTEMPTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Appends `value` to `buf` as one Avro datum of `schema` (the schema `datum` writes): the
/// field-order path when `schema` is a record and `hint` still tries it, else (or when that
/// path gives up) apache-avro's own. A give-up followed by a successful usual write clears
/// counts against `hint` (the type's fields are not in schema order, or it skips one). On
/// error what was appended is removed.
pub(crate) fn write<T: Serialize>(
    datum: &GenericDatumWriter<'_>,
    schema: &AvroSchema,
    hint: &InOrderHint,
    buf: &mut BytesMut,
    value: &T,
) -> Result<usize, apache_avro::Error> {
    let start = buf.len();
    let mut gave_up = false;
    if let (AvroSchema::Record(record), true) = (schema, hint.tries()) {
        #[cfg(test)]
        ATTEMPTS.with(|a| a.set(a.get() + 1));
        let fast = InOrder {
            value,
            fields: &record.fields,
        };
        match datum.write_ser(&mut (&mut *buf).writer(), &fast) {
            Ok(n) => {
                hint.fitted();
                return Ok(n);
            }
            Err(_) => {
                buf.truncate(start);
                gave_up = true;
            }
        }
    }
    let written = datum.write_ser(&mut (&mut *buf).writer(), value);
    match &written {
        Ok(_) if gave_up => hint.give_up(),
        Ok(_) => {}
        Err(_) => buf.truncate(start),
    }
    written
}

/// `value` serialized with its top-level struct as a tuple in `fields`' order.
struct InOrder<'a, T: ?Sized> {
    value: &'a T,
    fields: &'a [RecordField],
}

impl<T: Serialize + ?Sized> Serialize for InOrder<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Top {
            inner: serializer,
            fields: self.fields,
        })
    }
}

/// The serializer `T` sees at the top: everything but `serialize_struct` goes to `inner`.
struct Top<'a, S> {
    inner: S,
    fields: &'a [RecordField],
}

/// Why the field-order path gave up (the caller writes the record again the usual way).
const GIVE_UP: &str = "fields not in schema order";

/// A top-level struct: positional while its fields come in schema order.
enum Fields<'a, S: Serializer> {
    InOrder {
        tuple: S::SerializeTuple,
        fields: &'a [RecordField],
        next: usize,
    },
    ByName(S::SerializeStruct),
}

impl<S: Serializer> SerializeStruct for Fields<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), S::Error> {
        match self {
            Fields::InOrder {
                tuple,
                fields,
                next,
            } => {
                if fields.get(*next).is_none_or(|f| f.name != key) {
                    return Err(S::Error::custom(GIVE_UP));
                }
                *next += 1;
                tuple.serialize_element(value)
            }
            Fields::ByName(s) => s.serialize_field(key, value),
        }
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        match self {
            Fields::InOrder { .. } => Err(S::Error::custom(GIVE_UP)),
            Fields::ByName(s) => s.skip_field(key),
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        match self {
            Fields::InOrder {
                tuple,
                fields,
                next,
            } => {
                if next != fields.len() {
                    return Err(S::Error::custom(GIVE_UP));
                }
                tuple.end()
            }
            Fields::ByName(s) => s.end(),
        }
    }
}

impl<'a, S: Serializer> Serializer for Top<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = Fields<'a, S>;
    type SerializeStructVariant = S::SerializeStructVariant;

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        // Two fields or more: apache-avro writes a one-element tuple against the record schema
        // itself, not its field's.
        if len == self.fields.len() && len >= 2 {
            Ok(Fields::InOrder {
                tuple: self.inner.serialize_tuple(len)?,
                fields: self.fields,
                next: 0,
            })
        } else {
            self.inner.serialize_struct(name, len).map(Fields::ByName)
        }
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u128(v)
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.inner.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    fn serialize_some<V: Serialize + ?Sized>(self, value: &V) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(value)
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<V: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &V,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_struct(name, value)
    }
    fn serialize_newtype_variant<V: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &V,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_variant(name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<S::SerializeSeq, S::Error> {
        self.inner.serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> Result<S::SerializeTuple, S::Error> {
        self.inner.serialize_tuple(len)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleStruct, S::Error> {
        self.inner.serialize_tuple_struct(name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleVariant, S::Error> {
        self.inner
            .serialize_tuple_variant(name, index, variant, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<S::SerializeMap, S::Error> {
        self.inner.serialize_map(len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeStructVariant, S::Error> {
        self.inner
            .serialize_struct_variant(name, index, variant, len)
    }
    fn collect_str<V: std::fmt::Display + ?Sized>(self, value: &V) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"io.R","fields":[
        {"name":"a","type":"string"},{"name":"b","type":"long"},
        {"name":"c","type":{"type":"record","name":"io.N","fields":[{"name":"x","type":"int"}]}},
        {"name":"d","type":["null","string"],"default":null}]}"#;

    #[derive(serde::Serialize)]
    struct N {
        x: i32,
    }

    #[derive(serde::Serialize)]
    struct R {
        a: String,
        b: i64,
        c: N,
        d: Option<String>,
    }

    /// Same fields, declared in another order: apache-avro reorders them.
    #[derive(serde::Serialize)]
    struct Shuffled {
        d: Option<String>,
        b: i64,
        a: String,
        c: N,
    }

    /// `d` skipped when empty: written from the schema's default.
    #[derive(serde::Serialize)]
    struct Skipping {
        a: String,
        b: i64,
        c: N,
        #[serde(skip_serializing_if = "Option::is_none")]
        d: Option<String>,
    }

    fn both<T: Serialize>(value: &T) -> (Result<Vec<u8>, String>, Result<Vec<u8>, String>) {
        let schema = AvroSchema::parse_str(SCHEMA).map_err(|e| e.to_string());
        let Ok(schema) = schema else {
            panic!("schema parses: {schema:?}")
        };
        let datum = GenericDatumWriter::builder(&schema).build();
        let Ok(datum) = datum else {
            panic!("writer builds")
        };
        let mut buf = BytesMut::from(&b"pre"[..]);
        let ours = write(&datum, &schema, &InOrderHint::default(), &mut buf, value)
            .map(|_| buf[3..].to_vec())
            .map_err(|e| {
                assert_eq!(&buf[..], b"pre", "nothing left behind on error");
                e.to_string()
            });
        let theirs = datum.write_ser_to_vec(value).map_err(|e| e.to_string());
        (ours, theirs)
    }

    #[test]
    fn in_order_out_of_order_and_skipped_fields_write_apache_avros_bytes() {
        let r = R {
            a: "hello".to_owned(),
            b: -3,
            c: N { x: 7 },
            d: Some("z".to_owned()),
        };
        let (ours, theirs) = both(&r);
        assert!(ours.is_ok());
        assert_eq!(ours, theirs);

        let s = Shuffled {
            d: None,
            b: 5,
            a: "x".to_owned(),
            c: N { x: 1 },
        };
        let (ours, theirs) = both(&s);
        assert!(ours.is_ok());
        assert_eq!(ours, theirs);

        for d in [None, Some("y".to_owned())] {
            let k = Skipping {
                a: "a".to_owned(),
                b: 1,
                c: N { x: 2 },
                d,
            };
            let (ours, theirs) = both(&k);
            assert!(ours.is_ok());
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn a_one_field_record_is_written_the_usual_way() {
        #[derive(serde::Serialize)]
        struct Node {
            next: Option<Box<Node>>,
        }
        let schema = AvroSchema::parse_str(
            r#"{"type":"record","name":"io.Node","fields":[{"name":"next","type":["null","io.Node"]}]}"#,
        );
        let Ok(schema) = schema else {
            panic!("schema parses")
        };
        let Ok(datum) = GenericDatumWriter::builder(&schema).build() else {
            panic!("writer builds")
        };
        let node = Node {
            next: Some(Box::new(Node { next: None })),
        };
        let mut buf = BytesMut::new();
        assert!(write(&datum, &schema, &InOrderHint::default(), &mut buf, &node).is_ok());
        assert_eq!(&buf[..], &[2, 0]);
    }

    #[test]
    fn a_payload_that_does_not_fit_gets_apache_avros_error() {
        #[derive(serde::Serialize)]
        struct Wrong {
            a: i64,
            b: i64,
            c: N,
            d: Option<String>,
        }
        let w = Wrong {
            a: 1,
            b: 2,
            c: N { x: 3 },
            d: None,
        };
        let (ours, theirs) = both(&w);
        assert!(ours.is_err());
        assert_eq!(ours, theirs);

        // Not a struct at all.
        let (ours, theirs) = both(&42_i64);
        assert!(ours.is_err());
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_give_up_is_remembered_per_writer() {
        let Ok(schema) = AvroSchema::parse_str(SCHEMA) else {
            panic!("schema parses")
        };
        let Ok(datum) = GenericDatumWriter::builder(&schema).build() else {
            panic!("writer builds")
        };
        let attempts = || ATTEMPTS.with(std::cell::Cell::get);
        let hint = InOrderHint::default();
        let shuffled = |b| Shuffled {
            d: Some("q".to_owned()),
            b,
            a: "x".to_owned(),
            c: N { x: 1 },
        };
        for i in 0..FREE_GIVE_UPS as usize + 3 {
            let b = i as i64;
            let before = attempts();
            let mut buf = BytesMut::new();
            let ours = write(&datum, &schema, &hint, &mut buf, &shuffled(b)).map(|_| buf.to_vec());
            let theirs = datum.write_ser_to_vec(&shuffled(b));
            assert!(ours.is_ok());
            assert_eq!(ours.ok(), theirs.ok(), "same bytes as apache-avro");
            // Tried on the first few records only.
            assert_eq!(attempts() - before, usize::from(i < FREE_GIVE_UPS as usize));
            assert_eq!(hint.tries(), i + 1 < FREE_GIVE_UPS as usize);
        }

        // A type that fits most of the time keeps the path: one record in ten out of order.
        let hint = InOrderHint::default();
        let before = attempts();
        for i in 0..200_i64 {
            let mut buf = BytesMut::new();
            let ok = if i % 10 == 9 {
                write(&datum, &schema, &hint, &mut buf, &shuffled(i)).is_ok()
            } else {
                let r = R {
                    a: "a".to_owned(),
                    b: i,
                    c: N { x: 2 },
                    d: None,
                };
                write(&datum, &schema, &hint, &mut buf, &r).is_ok()
            };
            assert!(ok);
        }
        assert_eq!(attempts() - before, 200, "every record tried");
        assert!(hint.tries());

        // An in-order type keeps its hint; a payload that fits no way does not clear it.
        let hint = InOrderHint::default();
        let r = R {
            a: "a".to_owned(),
            b: 1,
            c: N { x: 2 },
            d: None,
        };
        let mut buf = BytesMut::new();
        assert!(write(&datum, &schema, &hint, &mut buf, &r).is_ok());
        assert!(hint.tries());
        assert!(write(&datum, &schema, &hint, &mut buf, &42_i64).is_err());
        assert!(hint.tries());
        // A clone shares the counts (the cached writer hands out clones).
        let clone = hint.clone();
        for _ in 0..FREE_GIVE_UPS {
            let mut buf = BytesMut::new();
            assert!(write(&datum, &schema, &clone, &mut buf, &shuffled(1)).is_ok());
        }
        assert!(!hint.tries());
    }
}
