//! Avro datum writers made once per distinct writer schema and kept for the life of the
//! process.
//!
//! apache-avro's `GenericDatumWriter` borrows its schema and resolves the schema's named types
//! when it is built (a map of names, several allocations), and its owned variant is private;
//! building one per event cost more than writing the datum. Each distinct schema (by canonical
//! form) therefore gets one writer, built over a schema leaked for it, shared by every codec in
//! the process. The leak is bounded: at most [`MAX_WRITERS`] schemas are kept; beyond that,
//! [`datum_writer`] answers `None` and the caller builds a writer per event as before.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema as AvroSchema;

/// Distinct writer schemas kept per process (a bound on the memory kept, not a tuning knob).
pub(crate) const MAX_WRITERS: usize = 1000;

type Writers = HashMap<String, &'static GenericDatumWriter<'static>>;

fn writers() -> &'static Mutex<Writers> {
    static WRITERS: OnceLock<Mutex<Writers>> = OnceLock::new();
    WRITERS.get_or_init(Mutex::default)
}

/// The process's writer for `schema`, built on first use; `None` once [`MAX_WRITERS`] distinct
/// schemas are kept. An error when apache-avro cannot resolve the schema's names.
pub(crate) fn datum_writer(
    schema: &AvroSchema,
) -> Result<Option<&'static GenericDatumWriter<'static>>, apache_avro::Error> {
    let key = schema.canonical_form();
    // Each update is one insert: a poisoned lock still guards a consistent map.
    let mut map = writers().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(w) = map.get(&key) {
        return Ok(Some(*w));
    }
    if map.len() >= MAX_WRITERS {
        return Ok(None);
    }
    let leaked: &'static AvroSchema = Box::leak(Box::new(schema.clone()));
    let writer = GenericDatumWriter::builder(leaked).build()?;
    let writer: &'static GenericDatumWriter<'static> = Box::leak(Box::new(writer));
    map.insert(key, writer);
    Ok(Some(writer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct A {
        x: i64,
    }

    #[test]
    fn one_writer_per_distinct_schema() {
        let parse = |s: &str| AvroSchema::parse_str(s).map_err(|e| e.to_string());
        let a = parse(r#"{"type":"record","name":"dw.A","fields":[{"name":"x","type":"long"}]}"#);
        let b = parse(r#"{"type":"record","name":"dw.B","fields":[{"name":"x","type":"long"}]}"#);
        let (Ok(a), Ok(b)) = (a, b) else {
            panic!("schemas parse")
        };
        let wa1 = datum_writer(&a).ok().flatten().map(|w| w as *const _);
        let wa2 = datum_writer(&a.clone())
            .ok()
            .flatten()
            .map(|w| w as *const _);
        let wb = datum_writer(&b).ok().flatten().map(|w| w as *const _);
        assert!(wa1.is_some());
        assert_eq!(wa1, wa2);
        assert_ne!(wa1, wb);
        let bytes = datum_writer(&a)
            .ok()
            .flatten()
            .map(|w| w.write_ser_to_vec(&A { x: 3 }));
        assert!(matches!(bytes, Some(Ok(v)) if v == vec![6]));
    }
}
