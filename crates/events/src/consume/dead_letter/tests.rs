use std::sync::Arc;

use kafkit::consumer::TimestampType;
use proptest::prelude::*;

use super::*;

fn h(key: &str, value: &[u8]) -> Header {
    Header {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Some(Bytes::copy_from_slice(value)),
    }
}

fn to_headers(record: &ProducerRecord) -> Vec<Header> {
    record
        .headers
        .iter()
        .map(|(k, v)| Header {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: v.clone(),
        })
        .collect()
}

/// The dead letter as a consumer reads it back from partition `partition` of its topic.
fn consumed(record: &ProducerRecord, partition: i32, offset: i64) -> ConsumerRecord {
    ConsumerRecord {
        topic: Arc::from(record.topic.to_string().as_str()),
        partition,
        offset,
        timestamp: 1,
        timestamp_type: TimestampType::CreateTime,
        key: record.key.clone(),
        value: record.value.clone(),
        headers: to_headers(record),
        leader_epoch: None,
    }
}

fn raw() -> RawRecord {
    RawRecord {
        topic: "orders".into(),
        partition: 2,
        offset: 41,
        timestamp: 1_700_000_000_123,
        key: Some(Bytes::from_static(b"o-1")),
        value: Some(Bytes::from_static(b"\x00\x00\x00\x00\x01payload")),
        headers: vec![
            (
                Bytes::from_static(b"ce_type"),
                Some(Bytes::from_static(b"shop.order.placed")),
            ),
            (Bytes::from_static(b"nullable"), None),
        ],
    }
}

fn failure() -> Failure {
    Failure {
        class: "my::HandlerError".into(),
        message: "boom".into(),
        cause_class: Some("std::io::Error".into()),
        detail: Some("caused by: reset".into()),
        attempts: 4,
        failed_at_ms: 1_700_000_000_999,
    }
}

#[test]
fn spring_headers_and_encodings() {
    let r = dead_letter_record(
        &raw(),
        &failure(),
        "billing",
        &DeadLetterPolicy::default(),
        Some(6),
    );
    assert_eq!(r.topic.to_string(), "orders.dlq");
    assert_eq!(r.partition, Some(2));
    assert_eq!(r.key.as_deref(), Some(&b"o-1"[..]));
    let get = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(&get("kafka_dlt-original-topic")[..], b"orders");
    assert_eq!(
        &get("kafka_dlt-original-partition")[..],
        &2i32.to_be_bytes()
    );
    assert_eq!(&get("kafka_dlt-original-offset")[..], &41i64.to_be_bytes());
    assert_eq!(
        &get("kafka_dlt-original-timestamp")[..],
        &1_700_000_000_123i64.to_be_bytes()
    );
    assert_eq!(&get("kafka_dlt-original-timestamp-type")[..], b"CreateTime");
    assert_eq!(&get("kafka_dlt-original-consumer-group")[..], b"billing");
    assert_eq!(&get("kafka_dlt-exception-fqcn")[..], b"my::HandlerError");
    assert_eq!(
        &get("kafka_dlt-exception-cause-fqcn")[..],
        b"std::io::Error"
    );
    assert_eq!(&get("kafka_dlt-exception-message")[..], b"boom");
    assert_eq!(
        &get("kafka_dlt-exception-stacktrace")[..],
        b"caused by: reset"
    );
    assert_eq!(&get("kafka_dlt-attempts")[..], &4i32.to_be_bytes());
    assert_eq!(
        &get("kafka_dlt-failure-timestamp")[..],
        &1_700_000_000_999i64.to_be_bytes()
    );
    // The original headers come first, unchanged (a null stays null).
    assert_eq!(
        r.headers[0],
        (
            "ce_type".into(),
            Some(Bytes::from_static(b"shop.order.placed"))
        )
    );
    assert_eq!(r.headers[1], ("nullable".into(), None));
}

#[test]
fn partition_kept_only_when_the_dead_letter_topic_has_it() {
    let policy = DeadLetterPolicy::default();
    let r = dead_letter_record(&raw(), &failure(), "g", &policy, Some(2));
    assert_eq!(r.partition, None);
    let r = dead_letter_record(&raw(), &failure(), "g", &policy, None);
    assert_eq!(r.partition, Some(2));
    let policy = policy.with_keep_partition(false).with_suffix("-dlt");
    let r = dead_letter_record(&raw(), &failure(), "g", &policy, Some(6));
    assert_eq!(
        (r.partition, r.topic.to_string()),
        (None, "orders-dlt".into())
    );
}

#[test]
fn redrive_goes_back_to_the_original_topic_and_partition() {
    let r = dead_letter_record(
        &raw(),
        &failure(),
        "g",
        &DeadLetterPolicy::default(),
        Some(6),
    );
    let back = redrive_record(&consumed(&r, 2, 9)).unwrap();
    assert_eq!(back.topic.to_string(), "orders");
    assert_eq!(back.partition, Some(2));
    assert_eq!((back.key, back.value), (raw().key, raw().value));
    let original: Vec<(kafkit::producer::HeaderName, Option<Bytes>)> = raw()
        .headers
        .iter()
        .map(|(k, v)| (String::from_utf8(k.to_vec()).unwrap().into(), v.clone()))
        .collect();
    assert_eq!(back.headers, original);
    // Written to another partition of the dead-letter topic: the key decides on redrive.
    assert_eq!(redrive_record(&consumed(&r, 0, 9)).unwrap().partition, None);
}

#[test]
fn connect_headers_are_read() {
    let headers = vec![
        h("__connect.errors.topic", b"sink-in"),
        h("__connect.errors.partition", b"3"),
        h("__connect.errors.offset", b"12345"),
        h("__connect.errors.connector.name", b"jdbc-sink"),
        h(
            "__connect.errors.exception.class.name",
            b"org.apache.kafka.connect.errors.DataException",
        ),
        h("__connect.errors.exception.message", b"bad"),
    ];
    let info = read_dead_letter(&headers).unwrap();
    assert_eq!(info.format, DeadLetterFormat::Connect);
    assert_eq!(info.original_topic, "sink-in");
    assert_eq!(info.original_partition, Some(3));
    assert_eq!(info.original_offset, Some(12_345));
    assert_eq!(info.group.as_deref(), Some("jdbc-sink"));
    assert_eq!(info.exception_message.as_deref(), Some("bad"));
}

#[test]
fn streams_headers_are_read_as_decimal_or_binary() {
    let headers = vec![
        h("__streams.errors.topic", b"in"),
        h("__streams.errors.partition", &7i32.to_be_bytes()),
        h("__streams.errors.offset", b"99"),
        h("__streams.errors.exception", b"java.lang.RuntimeException"),
    ];
    let info = read_dead_letter(&headers).unwrap();
    assert_eq!(info.format, DeadLetterFormat::Streams);
    assert_eq!(
        (info.original_partition, info.original_offset),
        (Some(7), Some(99))
    );
    assert_eq!(
        info.exception_class.as_deref(),
        Some("java.lang.RuntimeException")
    );
}

#[test]
fn connect_and_streams_headers_are_stripped_when_dead_lettered_again() {
    let mut r = raw();
    r.headers.push((
        Bytes::from_static(b"__connect.errors.topic"),
        Some(Bytes::from_static(b"x")),
    ));
    r.headers.push((
        Bytes::from_static(b"__streams.errors.offset"),
        Some(Bytes::from_static(b"1")),
    ));
    let d = dead_letter_record(&r, &failure(), "g", &DeadLetterPolicy::default(), None);
    assert!(!d.headers.iter().any(|(k, _)| k.starts_with("__")));
}

#[test]
fn hostile_headers_give_typed_errors() {
    use DeadLetterError::*;
    let topic = h(ORIGINAL_TOPIC, b"t");
    assert_eq!(read_dead_letter(&[]), Err(NotADeadLetter));
    assert_eq!(
        read_dead_letter(&[h(ORIGINAL_TOPIC, b"\xff\xfe")]),
        Err(BadUtf8 {
            header: ORIGINAL_TOPIC
        })
    );
    assert_eq!(
        read_dead_letter(&[Header {
            key: Bytes::from_static(ORIGINAL_TOPIC.as_bytes()),
            value: None
        }]),
        Err(NullHeader {
            header: ORIGINAL_TOPIC
        })
    );
    assert_eq!(
        read_dead_letter(&[topic.clone(), h(ORIGINAL_PARTITION, b"\x00\x01\x02")]),
        Err(BadLength {
            header: ORIGINAL_PARTITION,
            expected: 4,
            actual: 3
        })
    );
    assert_eq!(
        read_dead_letter(&[topic.clone(), h(ORIGINAL_OFFSET, &[0; 9])]),
        Err(BadLength {
            header: ORIGINAL_OFFSET,
            expected: 8,
            actual: 9
        })
    );
    assert_eq!(
        read_dead_letter(&[topic, h(ATTEMPTS, &(-1i32).to_be_bytes())]),
        Err(BadNumber { header: ATTEMPTS })
    );
    assert!(matches!(
        read_dead_letter(&[h(CONNECT_TOPIC, b"t"), h(CONNECT_PARTITION, b"99999999999")]),
        Err(BadNumber { .. })
    ));
    assert!(matches!(
        read_dead_letter(&[h(STREAMS_TOPIC, b"t"), h(STREAMS_OFFSET, b"12x")]),
        Err(BadNumber { .. })
    ));
    assert!(!BadUtf8 {
        header: ORIGINAL_TOPIC
    }
    .is_retriable());
}

fn header_strategy() -> impl Strategy<Value = (Bytes, Option<Bytes>)> {
    let key = prop_oneof![
        "[a-z_.-]{1,12}",
        Just("kafka_dlt-exception-message".to_owned()),
        Just("kafka_dlt-original-topic".to_owned()),
        Just("__connect.errors.topic".to_owned()),
        Just("__streams.errors.stacktrace".to_owned()),
    ];
    (
        key,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
    )
        .prop_map(|(k, v)| (Bytes::from(k), v.map(Bytes::from)))
}

prop_compose! {
    fn raw_strategy()(
        topic in "[a-zA-Z0-9._-]{1,20}",
        partition in 0i32..1000,
        offset in 0i64..i64::MAX,
        timestamp in -1i64..i64::MAX,
        key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        headers in proptest::collection::vec(header_strategy(), 0..8),
    ) -> RawRecord {
        RawRecord {
            topic,
            partition,
            offset,
            timestamp,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            headers,
        }
    }
}

prop_compose! {
    fn failure_strategy()(
        class in ".{0,20}",
        message in ".{0,40}",
        cause_class in proptest::option::of(".{0,20}"),
        detail in proptest::option::of(".{0,40}"),
        attempts in 0u32..=i32::MAX as u32,
        failed_at_ms: i64,
    ) -> Failure {
        Failure { class, message, cause_class, detail, attempts, failed_at_ms }
    }
}

proptest! {
    #[test]
    fn written_headers_read_back(raw in raw_strategy(), f in failure_strategy(), group in ".{0,16}") {
        let d = dead_letter_record(&raw, &f, &group, &DeadLetterPolicy::default(), None);
        let info = read_dead_letter(&to_headers(&d)).unwrap();
        prop_assert_eq!(info.format, DeadLetterFormat::Spring);
        prop_assert_eq!(&info.original_topic, &raw.topic);
        prop_assert_eq!(info.original_partition, Some(raw.partition));
        prop_assert_eq!(info.original_offset, Some(raw.offset));
        prop_assert_eq!(info.original_timestamp, Some(raw.timestamp));
        prop_assert_eq!(info.group.as_deref(), Some(group.as_str()));
        prop_assert_eq!(info.exception_class.as_deref(), Some(f.class.as_str()));
        prop_assert_eq!(&info.exception_message, &Some(f.message.clone()));
        prop_assert_eq!(&info.cause_class, &f.cause_class);
        prop_assert_eq!(&info.stacktrace, &f.detail);
        prop_assert_eq!(info.attempts, Some(f.attempts));
        prop_assert_eq!(info.failed_at_ms, Some(f.failed_at_ms));
    }

    #[test]
    fn key_value_and_other_headers_kept_byte_for_byte(raw in raw_strategy(), f in failure_strategy()) {
        let d = dead_letter_record(&raw, &f, "g", &DeadLetterPolicy::default(), None);
        prop_assert_eq!(&d.key, &raw.key);
        prop_assert_eq!(&d.value, &raw.value);
        let kept: Vec<(Bytes, Option<Bytes>)> = d.headers.iter()
            .filter(|(k, _)| !is_error_header(k.as_bytes()))
            .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone()))
            .collect();
        let original: Vec<(Bytes, Option<Bytes>)> = raw.headers.iter()
            .filter(|(k, _)| !is_error_header(k))
            .cloned()
            .collect();
        prop_assert_eq!(kept, original);
    }

    #[test]
    fn dead_lettering_again_keeps_the_header_count(
        raw in raw_strategy(),
        f in failure_strategy(),
        times in 1usize..5,
    ) {
        let policy = DeadLetterPolicy::default();
        let first = dead_letter_record(&raw, &f, "g", &policy, None);
        let mut current = first.clone();
        for i in 0..times {
            let c = consumed(&current, 0, i as i64);
            let again = RawRecord::from_consumer_record(&c);
            current = dead_letter_record(&again, &f, "g", &policy, None);
            prop_assert_eq!(current.headers.len(), first.headers.len());
        }
        // And a redrive restores the original non-error headers.
        let back = redrive_record(&consumed(&first, raw.partition, 0)).unwrap();
        prop_assert_eq!(back.topic.to_string(), raw.topic.clone());
        prop_assert_eq!(back.partition, Some(raw.partition));
        prop_assert!(back.headers.iter().all(|(k, _)| !is_error_header(k.as_bytes())));
    }

    #[test]
    fn hostile_headers_never_panic(
        headers in proptest::collection::vec(
            (
                prop_oneof![
                    Just(ORIGINAL_TOPIC), Just(ORIGINAL_PARTITION), Just(ORIGINAL_OFFSET),
                    Just(ORIGINAL_TIMESTAMP), Just(ATTEMPTS), Just(FAILURE_TIMESTAMP),
                    Just(EXCEPTION_MESSAGE), Just(CONNECT_TOPIC), Just(CONNECT_PARTITION),
                    Just(CONNECT_OFFSET), Just(STREAMS_TOPIC), Just(STREAMS_PARTITION),
                    Just(STREAMS_OFFSET), Just("other"),
                ],
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
            ),
            0..10,
        )
    ) {
        let headers: Vec<Header> = headers.into_iter()
            .map(|(k, v)| Header { key: Bytes::from_static(k.as_bytes()), value: v.map(Bytes::from) })
            .collect();
        let _ = read_dead_letter(&headers);
    }
}
