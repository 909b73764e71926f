//! Codec tests: round trips through the in-memory registry, evolution, and bad input (each a
//! typed error that keeps the raw record).

use apache_avro::AvroSchema;
use bytes::Bytes;
use kafkit::consumer::{ConsumerRecord, Header};
use serde::{Deserialize, Serialize};

use super::*;
use crate::error::{DecodeErrorKind, RawRecord};
use crate::registry::{Schema, SchemaRegistry, SubjectNameStrategy};
use crate::typed::AvroSchemaSource;
use crate::wire_format;

const TOPIC: &str = "shop.orders";

#[derive(Serialize, Deserialize, AvroSchema, Debug, PartialEq, Clone)]
#[avro(namespace = "shop")]
struct Order {
    order_id: String,
    total_cents: i64,
    items: Vec<String>,
    note: Option<String>,
}

impl EventPayload for Order {
    const EVENT_TYPE: &'static str = "shop.order.placed";
    const SCHEMA_VERSION: Option<&'static str> = Some("1");
    fn key(&self) -> Option<String> {
        Some(self.order_id.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::of::<Self>())
    }
    fn json_schema() -> Option<&'static str> {
        Some(
            r#"{"type":"object","required":["order_id","total_cents"],
                "properties":{"order_id":{"type":"string","minLength":1},
                              "total_cents":{"type":"integer","minimum":0}}}"#,
        )
    }
}

/// The same record, one version later: a field added with a default.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct OrderV2 {
    order_id: String,
    total_cents: i64,
    items: Vec<String>,
    note: Option<String>,
    currency: String,
}

impl EventPayload for OrderV2 {
    const EVENT_TYPE: &'static str = "shop.order.placed";
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[
                {"name":"order_id","type":"string"},
                {"name":"total_cents","type":"long"},
                {"name":"items","type":{"type":"array","items":"string"}},
                {"name":"note","type":["null","string"]},
                {"name":"currency","type":"string","default":"EUR"}]}"#,
        ))
    }
}

#[derive(Serialize, Deserialize, AvroSchema, Debug, PartialEq, Clone)]
#[avro(namespace = "shop")]
struct Refund {
    order_id: String,
}

impl EventPayload for Refund {
    const EVENT_TYPE: &'static str = "shop.order.refunded";
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::of::<Self>())
    }
}

fn order() -> Order {
    Order {
        order_id: "o-1".into(),
        total_cents: 1250,
        items: vec!["book".into(), "pen".into()],
        note: Some("gift".into()),
    }
}

fn event() -> Event<Order> {
    Event::new(order())
        .with_source("orders-service", Some("1.0.0"))
        .with_correlation_id("checkout-1")
        .with_user_context(Some("u-1"), Some("t-1"))
        .add_tag("web")
}

fn avro() -> AvroCodec {
    AvroCodec::new(SchemaRegistry::in_memory(), SerdeConfig::default()).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn record(encoded: EncodedEvent) -> ConsumerRecord {
    encoded.into_consumer_record(TOPIC, 3, 42, 1_700_000_000_000)
}

/// The decode error's kind, after checking it carries `record` unchanged.
fn decode_error<T: EventPayload + serde::de::DeserializeOwned>(
    result: Result<Event<T>, EventsError>,
    record: &ConsumerRecord,
) -> DecodeErrorKind {
    match result {
        Err(EventsError::Deserialization(e)) => {
            assert_eq!(e.record, RawRecord::from(record), "raw record kept");
            e.kind
        }
        Err(other) => panic!("not a decode error: {other:?}"),
        Ok(_) => panic!("decoded"),
    }
}

fn zigzag_varint(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

#[test]
fn avro_round_trip_through_the_in_memory_registry() {
    block_on(async {
        let codec = avro();
        let event = event();
        let encoded = codec.encode(TOPIC, &event).await.unwrap();
        assert_eq!(encoded.key.as_deref(), Some(&b"o-1"[..]));
        let (id, _) = wire_format::parse_frame(&encoded.value).unwrap();
        let latest = codec.registry().latest("shop.orders-value").await.unwrap();
        assert_eq!(id, wire_format::SchemaId::Id(latest.id));
        let ct = encoded.headers.iter().find(|(k, _)| k == "content-type");
        assert_eq!(
            ct.and_then(|(_, v)| v.as_deref()),
            Some(&b"application/avro"[..])
        );
        let decoded: Event<Order> = codec.decode(&record(encoded)).await.unwrap();
        assert_eq!(decoded.data, event.data);
        let mut expected = event.envelope.clone();
        expected.data_content_type = Some(AVRO_CONTENT_TYPE.into());
        assert_eq!(decoded.envelope, expected);
        // A second codec (a consumer elsewhere) reads it through the registry alone.
        let again = codec.encode(TOPIC, &event).await.unwrap();
        let other = AvroCodec::new(codec.registry().clone(), SerdeConfig::default()).unwrap();
        let decoded: Event<Order> = other.decode(&record(again)).await.unwrap();
        assert_eq!(decoded.data, event.data);
    });
}

#[test]
fn an_evolved_reader_reads_old_data_with_the_default() {
    block_on(async {
        let codec = avro();
        let encoded = codec.encode(TOPIC, &event()).await.unwrap();
        let decoded: Event<OrderV2> = codec.decode(&record(encoded)).await.unwrap();
        assert_eq!(decoded.data.currency, "EUR");
        assert_eq!(decoded.data.items, order().items);
        assert_eq!(decoded.data.note.as_deref(), Some("gift"));
    });
}

#[test]
fn bad_avro_input_is_a_typed_error_carrying_the_record() {
    block_on(async {
        let codec = avro();
        let good = record(codec.encode(TOPIC, &event()).await.unwrap());
        let (id, _) = wire_format::parse_frame(good.value.as_deref().unwrap()).unwrap();
        let wire_format::SchemaId::Id(id) = id else {
            panic!("id form")
        };
        let with_value = |value: Vec<u8>| {
            let mut r = good.clone();
            r.value = Some(Bytes::from(value));
            r
        };
        let decode = |r: ConsumerRecord| {
            let codec = codec.clone();
            async move {
                let result = codec.decode::<Order>(&r).await;
                decode_error(result, &r)
            }
        };
        // Wrong magic byte, truncated frame, GUID frame.
        let kind = decode(with_value(vec![7, 0, 0, 0, 1, 0])).await;
        assert!(
            matches!(
                kind,
                DecodeErrorKind::Frame(wire_format::FrameError::WrongMagicByte(7))
            ),
            "{kind:?}"
        );
        let kind = decode(with_value(vec![0, 0, 0])).await;
        assert!(
            matches!(
                kind,
                DecodeErrorKind::Frame(wire_format::FrameError::Truncated { .. })
            ),
            "{kind:?}"
        );
        let kind = decode(with_value([&[1u8][..], &[9; 16], b"x"].concat())).await;
        assert!(
            matches!(
                kind,
                DecodeErrorKind::Frame(wire_format::FrameError::GuidNotSupported(_))
            ),
            "{kind:?}"
        );
        // Unknown schema id.
        let kind = decode(with_value(wire_format::frame(id + 1000, &[0, 0, 0, 0]))).await;
        assert!(
            matches!(kind, DecodeErrorKind::UnknownSchemaId(n) if n == id + 1000),
            "{kind:?}"
        );
        // A value that does not match its schema: a string cut short; a bad union index.
        let kind = decode(with_value(wire_format::frame(id, &[0x08, b'a']))).await;
        assert!(matches!(kind, DecodeErrorKind::Payload(_)), "{kind:?}");
        let kind = decode(with_value(wire_format::frame(id, &[0, 0, 0, 10]))).await;
        assert!(matches!(kind, DecodeErrorKind::Payload(_)), "{kind:?}");
        // Bytes after the datum.
        let kind = decode(with_value(wire_format::frame(id, &[0, 0, 0, 0, 0xff]))).await;
        assert!(
            matches!(kind, DecodeErrorKind::TrailingBytes(1)),
            "{kind:?}"
        );
        // Hostile lengths: a string of 2^40 bytes, an array of 2^40 items, and a string of
        // 100 MiB (under apache-avro's own 512 MiB default: the configured 64 MiB cap applies).
        let cap = DEFAULT_MAX_ALLOCATION_BYTES;
        let kind = decode(with_value(wire_format::frame(id, &zigzag_varint(1 << 40)))).await;
        assert!(
            matches!(kind, DecodeErrorKind::AllocationLimit { desired: Some(d), maximum } if d == 1 << 40 && maximum == cap),
            "{kind:?}"
        );
        let array = [&[0u8, 0][..], &zigzag_varint(1 << 40)].concat();
        let kind = decode(with_value(wire_format::frame(id, &array))).await;
        assert!(
            matches!(kind, DecodeErrorKind::AllocationLimit { .. }),
            "{kind:?}"
        );
        let kind = decode(with_value(wire_format::frame(
            id,
            &zigzag_varint(100 << 20),
        )))
        .await;
        assert!(
            matches!(kind, DecodeErrorKind::AllocationLimit { desired: Some(d), .. } if d == 100 << 20),
            "{kind:?}"
        );
        // A tombstone.
        let mut tombstone = good.clone();
        tombstone.value = None;
        assert!(matches!(
            decode(tombstone).await,
            DecodeErrorKind::NullValue
        ));
        // Another event type on the topic.
        let kind = decode_error(codec.decode::<Refund>(&good).await, &good);
        assert!(
            matches!(kind, DecodeErrorKind::EventTypeMismatch { .. }),
            "{kind:?}"
        );
        // Broken CloudEvents headers.
        let mut dup = good.clone();
        dup.headers.push(Header {
            key: Bytes::from_static(b"ce_id"),
            value: Some(Bytes::from_static(b"again")),
        });
        assert!(matches!(decode(dup).await, DecodeErrorKind::Headers(_)));
        // None of these errors is retriable.
        let r = with_value(vec![7]);
        assert!(!codec.decode::<Order>(&r).await.unwrap_err().is_retriable());
    });
}

#[test]
fn allocation_cap_is_process_wide_and_another_value_is_refused() {
    set_max_allocation_bytes(DEFAULT_MAX_ALLOCATION_BYTES).unwrap();
    let config = SerdeConfig {
        max_allocation_bytes: DEFAULT_MAX_ALLOCATION_BYTES + 1,
        ..SerdeConfig::default()
    };
    match AvroCodec::new(SchemaRegistry::in_memory(), config) {
        Err(EventsError::Configuration { setting, .. }) => {
            assert_eq!(setting, "avro.max.allocation.bytes")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn header_carried_ids_and_peer_records_without_cloudevents_headers() {
    block_on(async {
        let codec = avro();
        let good = record(codec.encode(TOPIC, &event()).await.unwrap());
        let framed = good.value.clone().unwrap();
        // The id in `__value_schema_id`, the value bare (the newer Confluent layout).
        let mut r = good.clone();
        r.value = Some(framed.slice(5..));
        r.headers.push(Header {
            key: Bytes::from_static(wire_format::VALUE_SCHEMA_ID_HEADER.as_bytes()),
            value: Some(Bytes::copy_from_slice(&framed[..5])),
        });
        let decoded: Event<Order> = codec.decode(&r).await.unwrap();
        assert_eq!(decoded.data, order());
        // A plain Confluent serializer's record: no CloudEvents headers at all.
        let mut peer = good.clone();
        peer.headers.clear();
        let decoded: Event<Order> = codec.decode(&peer).await.unwrap();
        assert_eq!(decoded.data, order());
        assert_eq!(decoded.envelope.id, "shop.orders/3/42");
        assert_eq!(decoded.envelope.event_type, Order::EVENT_TYPE);
        assert_eq!(decoded.envelope.time, Some(1_700_000_000_000));
    });
}

#[test]
fn schema_ids_by_setting() {
    block_on(async {
        let registry = SchemaRegistry::in_memory();
        // auto.register.schemas=false and nothing registered: a registry error.
        let no_register = SerdeConfig {
            auto_register_schemas: false,
            ..SerdeConfig::default()
        };
        let codec = AvroCodec::new(registry.clone(), no_register.clone()).unwrap();
        match codec.encode(TOPIC, &event()).await {
            Err(EventsError::Registry { source, .. }) => assert!(source.is_not_found()),
            other => panic!("{other:?}"),
        }
        // Registered by someone else: looked up.
        let text = serde_json::to_string(&Order::get_schema()).unwrap();
        let id = registry
            .register("shop.orders-value", &Schema::avro(text))
            .await
            .unwrap();
        let codec = AvroCodec::new(registry.clone(), no_register.clone()).unwrap();
        let encoded = codec.encode(TOPIC, &event()).await.unwrap();
        assert_eq!(&encoded.value[..5], &wire_format::prefix(id));
        // use.latest.version: the subject's latest (here V2 with the default) is the writer.
        let v2 = match OrderV2::avro_schema() {
            Some(AvroSchemaSource::Avsc(t)) => t,
            _ => unreachable!(),
        };
        let v2_id = registry
            .register("shop.orders-value", &Schema::avro(v2))
            .await
            .unwrap();
        assert_ne!(v2_id, id);
        let latest = SerdeConfig {
            use_latest_version: true,
            ..no_register.clone()
        };
        let codec = AvroCodec::new(registry.clone(), latest).unwrap();
        let v2_event = Event::new(OrderV2 {
            order_id: "o-2".into(),
            total_cents: 1,
            items: vec![],
            note: None,
            currency: "USD".into(),
        })
        .with_source("s", None);
        let encoded = codec.encode(TOPIC, &v2_event).await.unwrap();
        assert_eq!(&encoded.value[..5], &wire_format::prefix(v2_id));
        // An Order (without `currency`) is written with the field's default…
        let encoded = codec.encode(TOPIC, &event()).await.unwrap();
        assert!(encoded.value.ends_with(b"\x06EUR"));
        // …but a Refund (no `total_cents`, which has no default) does not fit: refused.
        let refund = Event::new(Refund {
            order_id: "o-1".into(),
        })
        .with_source("s", None);
        let r = codec.encode(TOPIC, &refund).await;
        assert!(matches!(r, Err(EventsError::Serialization { .. })), "{r:?}");
        // use.schema.id: that id, whatever the subject holds.
        let fixed = SerdeConfig {
            use_schema_id: Some(id),
            ..SerdeConfig::default()
        };
        let codec = AvroCodec::new(registry.clone(), fixed).unwrap();
        let encoded = codec.encode("another.topic", &event()).await.unwrap();
        assert_eq!(&encoded.value[..5], &wire_format::prefix(id));
        // Both auto-register and use-latest: refused.
        let both = SerdeConfig {
            use_latest_version: true,
            ..SerdeConfig::default()
        };
        assert!(matches!(
            AvroCodec::new(registry.clone(), both),
            Err(EventsError::Configuration { .. })
        ));
        // TopicRecordName: the subject names the record.
        let per_record = SerdeConfig {
            value_subject_name_strategy: SubjectNameStrategy::TopicRecordName,
            ..SerdeConfig::default()
        };
        let codec = AvroCodec::new(registry.clone(), per_record).unwrap();
        let encoded = codec.encode(TOPIC, &event()).await.unwrap();
        let latest = registry.latest("shop.orders-shop.Order").await.unwrap();
        assert_eq!(&encoded.value[..5], &wire_format::prefix(latest.id));
    });
}

#[test]
fn a_type_without_an_avro_schema_is_a_configuration_error() {
    #[derive(Serialize)]
    struct Plain;
    impl EventPayload for Plain {
        const EVENT_TYPE: &'static str = "plain";
    }
    block_on(async {
        let e = avro()
            .encode(TOPIC, &Event::new(Plain).with_source("s", None))
            .await
            .unwrap_err();
        assert!(matches!(e, EventsError::Configuration { .. }), "{e:?}");
    });
}

#[test]
fn json_round_trip_and_validation_before_sending() {
    block_on(async {
        let codec = JsonCodec::new(SerdeConfig::default());
        let event = event();
        let encoded = codec.encode(TOPIC, &event).await.unwrap();
        let ct = encoded.headers.iter().find(|(k, _)| k == "content-type");
        assert_eq!(
            ct.and_then(|(_, v)| v.as_deref()),
            Some(&b"application/json"[..])
        );
        let decoded: Event<Order> = codec.decode(&record(encoded)).await.unwrap();
        assert_eq!(decoded.data, event.data);
        assert_eq!(
            decoded.envelope.correlation_id.as_deref(),
            Some("checkout-1")
        );

        let mut bad = event.clone();
        bad.data.total_cents = -5;
        bad.data.order_id.clear();
        match codec.encode(TOPIC, &bad).await {
            Err(EventsError::SchemaValidation { issues, record, .. }) => {
                let mut paths: Vec<&str> =
                    issues.iter().map(|i| i.instance_path.as_str()).collect();
                paths.sort_unstable();
                assert_eq!(paths, ["/order_id", "/total_cents"]);
                assert!(record.is_none());
            }
            other => panic!("{other:?}"),
        }
        // Validation off: sent as is.
        let lax = JsonCodec::new(SerdeConfig {
            json_validate: false,
            ..SerdeConfig::default()
        });
        let invalid = record(lax.encode(TOPIC, &bad).await.unwrap());
        // …and refused when read by a validating codec, with the record.
        match codec.decode::<Order>(&invalid).await {
            Err(EventsError::SchemaValidation {
                record: Some(r), ..
            }) => {
                assert_eq!(*r, RawRecord::from(&invalid))
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn json_reads_confluent_framing_structured_mode_and_refuses_bad_json() {
    block_on(async {
        let codec = JsonCodec::new(SerdeConfig::default());
        let good = record(codec.encode(TOPIC, &event()).await.unwrap());
        let plain = good.value.clone().unwrap();
        // Framed by a Confluent JSON serializer.
        let mut framed = good.clone();
        framed.value = Some(Bytes::from(wire_format::frame(7, &plain)));
        let decoded: Event<Order> = codec.decode(&framed).await.unwrap();
        assert_eq!(decoded.data, order());
        // Structured mode.
        let structured = ConsumerRecord {
            headers: vec![Header {
                key: Bytes::from_static(b"Content-Type"),
                value: Some(Bytes::from_static(
                    b"application/cloudevents+json; charset=UTF-8",
                )),
            }],
            value: Some(Bytes::from(format!(
                r#"{{"specversion":"1.0","id":"s-1","source":"peer","type":"shop.order.placed","data":{}}}"#,
                String::from_utf8_lossy(&plain)
            ))),
            ..good.clone()
        };
        let decoded: Event<Order> = codec.decode(&structured).await.unwrap();
        assert_eq!(decoded.envelope.id, "s-1");
        assert_eq!(decoded.data, order());
        // Bad JSON, a truncated frame: typed, with the record.
        let mut bad = good.clone();
        bad.value = Some(Bytes::from_static(b"{\"order_id\": "));
        let kind = decode_error(codec.decode::<Order>(&bad).await, &bad);
        assert!(matches!(kind, DecodeErrorKind::Json(_)), "{kind:?}");
        bad.value = Some(Bytes::from_static(b"\x00\x00"));
        let kind = decode_error(codec.decode::<Order>(&bad).await, &bad);
        assert!(matches!(kind, DecodeErrorKind::Frame(_)), "{kind:?}");
        // Avro cannot read structured mode.
        let kind = decode_error(avro().decode::<Order>(&structured).await, &structured);
        assert!(matches!(kind, DecodeErrorKind::ContentType(_)), "{kind:?}");
    });
}
