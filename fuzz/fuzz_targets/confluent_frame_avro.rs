//! A Confluent-framed Avro value decoded with a fixed writer schema (and resolved to an evolved
//! reader schema): no panic, no allocation above the cap (libFuzzer's -malloc_limit_mb catches
//! one), and what decodes re-encodes to bytes that decode to the same value.
#![no_main]

use std::sync::LazyLock;

use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use kafkit_events::format::{decode_avro_datum, set_max_allocation_bytes};
use kafkit_events::wire_format::{self, SchemaId};
use libfuzzer_sys::fuzz_target;

/// The decoding cap: far below the fuzz run's 256 MiB malloc limit.
const CAP: usize = 16 << 20;

const WRITER: &str = r#"{"type":"record","name":"Fuzzed","namespace":"kafkit.fuzz","fields":[
  {"name":"id","type":"string"},
  {"name":"n","type":"long"},
  {"name":"flag","type":"boolean"},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"attrs","type":{"type":"map","values":"int"}},
  {"name":"note","type":["null","string"]},
  {"name":"blob","type":"bytes"},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}},
  {"name":"four","type":{"type":"fixed","name":"Four","size":4}},
  {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item",
    "fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}}]}"#;

/// The writer plus a field with a default, `n` read as a double (a promotion).
const READER: &str = r#"{"type":"record","name":"Fuzzed","namespace":"kafkit.fuzz","fields":[
  {"name":"id","type":"string"},
  {"name":"n","type":"double"},
  {"name":"flag","type":"boolean"},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"attrs","type":{"type":"map","values":"long"}},
  {"name":"note","type":["null","string"]},
  {"name":"blob","type":"bytes"},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}},
  {"name":"four","type":{"type":"fixed","name":"Four","size":4}},
  {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item",
    "fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}},
  {"name":"extra","type":"string","default":"x"}]}"#;

static SCHEMAS: LazyLock<(Schema, Schema)> = LazyLock::new(|| {
    set_max_allocation_bytes(CAP).unwrap();
    (
        Schema::parse_str(WRITER).unwrap(),
        Schema::parse_str(READER).unwrap(),
    )
});

fuzz_target!(|data: &[u8]| {
    let (writer, reader) = &*SCHEMAS;
    let Ok((SchemaId::Id(_), payload)) = wire_format::parse_frame(data) else {
        return;
    };
    let _ = decode_avro_datum(writer, Some(reader), payload);
    if let Ok(value) = decode_avro_datum(writer, None, payload) {
        // What was read is written back identically (Avro has one encoding per value, except
        // for block sizes, which the writer leaves out) and reads back the same.
        let bytes = GenericDatumWriter::builder(writer)
            .build()
            .unwrap()
            .write_value_to_vec(value.clone())
            .unwrap();
        assert_eq!(decode_avro_datum(writer, None, &bytes).unwrap(), value);
    }
});
