//! An arbitrary header list (names from a dictionary or raw bytes, null or arbitrary values,
//! duplicates allowed) read as CloudEvents binary mode, as a trace context and as a schema-id
//! header: no panic; every envelope read writes back to headers that read back the same.
#![no_main]

use kafkit_events::cloudevents::{decode_header_pairs, decode_structured, encode_headers};
use kafkit_events::{trace_context, wire_format};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&[u8]] = &[
    b"ce_specversion",
    b"ce_id",
    b"ce_source",
    b"ce_type",
    b"ce_time",
    b"ce_subject",
    b"ce_dataschema",
    b"ce_correlationid",
    b"ce_causationid",
    b"ce_authid",
    b"ce_tenantid",
    b"ce_tags",
    b"ce_sourceversion",
    b"ce_schemaversion",
    b"content-type",
    b"Content-Type",
    b"traceparent",
    b"tracestate",
    b"__value_schema_id",
];

/// The header list `data` describes (see [`kafkit_fuzz::split_headers`]).
fn headers(data: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
    kafkit_fuzz::split_headers(data, NAMES)
}

fuzz_target!(|data: &[u8]| {
    let list = headers(data);
    if let Ok(envelope) = decode_header_pairs(list.iter().copied()) {
        if let Ok(encoded) = encode_headers(&envelope) {
            let again =
                decode_header_pairs(encoded.iter().map(|(k, v)| (k.as_bytes(), v.as_deref())));
            assert_eq!(again, Ok(envelope));
        }
    }
    let _ = trace_context::extract(list.iter().copied());
    let _ = wire_format::locate(list.iter().copied(), data, false);
    let _ = decode_structured(data);
});
