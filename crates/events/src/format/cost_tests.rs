//! Where an Avro event's encoding time goes, each step alone (no broker): a timing, not a
//! check, so `#[ignore]`d. Run it optimized:
//! `cargo test --release -p kafkit-events --lib cost -- --ignored --nocapture`.
//! The payload is the events bench's (`benches/src/bin/events_produce.rs`): 200 bytes of Avro.

use std::hint::black_box;
use std::time::Instant;

use apache_avro::Schema as AvroSchema;
use serde::Serialize;

use super::datum_writers::datum_writer;
use super::*;
use crate::cloudevents::{encode_headers_with, DefaultSource, Encoding};
use crate::envelope::Event;
use crate::registry::SchemaRegistry;
use crate::typed::AvroSchemaSource;

const SCHEMA: &str = r#"{"type":"record","name":"SensorReading","namespace":"bench",
"fields":[{"name":"device_id","type":"string"},{"name":"site","type":"string"},
{"name":"metric","type":"string"},{"name":"value","type":"double"},
{"name":"unit","type":"string"},{"name":"sequence","type":"long"},
{"name":"note","type":"string"}]}"#;

#[derive(Serialize, Clone)]
struct SensorReading {
    device_id: String,
    site: String,
    metric: String,
    value: f64,
    unit: String,
    sequence: i64,
    note: String,
}

impl EventPayload for SensorReading {
    const EVENT_TYPE: &'static str = "bench.sensor.reading";
    fn key(&self) -> Option<String> {
        Some(self.device_id.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(SCHEMA))
    }
}

fn reading(i: usize) -> SensorReading {
    SensorReading {
        device_id: format!("device-{:06}", i % 1000),
        site: "eu-west-fab-07".to_owned(),
        metric: "chamber.temperature".to_owned(),
        value: 21.5,
        unit: "celsius".to_owned(),
        sequence: i as i64,
        note: "x".repeat(120),
    }
}

const N: usize = 200_000;

/// ns per call of `f`, best of 3 runs of `N`.
fn ns(mut f: impl FnMut(usize)) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for i in 0..N {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / N as f64
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "a timing: run with --release --ignored --nocapture"]
fn cost_of_each_encoding_step() {
    let schema = AvroSchema::parse_str(SCHEMA).unwrap();
    let writer = datum_writer(&schema).unwrap().unwrap();
    let payload = reading(7);
    let mut buf = Vec::with_capacity(256);
    writer.write_ser(&mut buf, &payload).unwrap();
    let avro_len = buf.len();
    let avro = ns(|_| {
        buf.clear();
        writer.write_ser(&mut buf, black_box(&payload)).unwrap();
    });
    let payload_new = ns(|i| drop(black_box(reading(i))));
    let event_new = ns(|_| drop(black_box(Event::new(black_box(payload.clone())))));
    let clone = ns(|_| drop(black_box(payload.clone())));
    let event = Event::new(payload.clone());
    let default = DefaultSource::new(Bytes::from_static(b"bench"), Bytes::from_static(b"0.0.0"));
    let encoding = Encoding {
        content_type: Some(AVRO_CONTENT_TYPE),
        static_type: Some(SensorReading::EVENT_TYPE),
        default_source: Some(&default),
        pooled: true,
        in_block: false,
    };
    let headers = ns(|_| {
        let mut out = Vec::new();
        encode_headers_with(black_box(&event.envelope), &encoding, &mut out).unwrap();
        drop(black_box(out));
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let codec = AvroCodec::new(SchemaRegistry::in_memory(), SerdeConfig::default()).unwrap();
    let value = ns(|_| {
        let v = rt
            .block_on(codec.encode_value("t", black_box(&event), true))
            .unwrap();
        drop(black_box(v));
    });
    let key = ns(|_| drop(black_box(key_bytes(black_box(&event)))));
    println!(
        "ns per event ({avro_len}-byte datum): apache-avro write_ser {avro:.0}; codec value (writer lookup + frame + \
         write_ser + Bytes) {value:.0}; CloudEvents headers {headers:.0}; key {key:.0}; \
         Event::new {:.0} (payload clone {clone:.0}); the bench's payload made {payload_new:.0}",
        event_new - clone
    );
}
