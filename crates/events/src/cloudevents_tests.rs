use super::*;
use proptest::prelude::*;

fn pairs(headers: &[(HeaderName, Option<Bytes>)]) -> Vec<(&[u8], Option<&[u8]>)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_deref()))
        .collect()
}

fn h(k: &str, v: &str) -> (HeaderName, Option<Bytes>) {
    (
        k.to_owned().into(),
        Some(Bytes::copy_from_slice(v.as_bytes())),
    )
}

fn minimal() -> Vec<(HeaderName, Option<Bytes>)> {
    vec![
        h("ce_specversion", "1.0"),
        h("ce_id", "id-1"),
        h("ce_source", "svc"),
        h("ce_type", "a.b"),
    ]
}

fn full_envelope() -> Envelope {
    Envelope::new("hr.employee.created")
        .with_source("hr-service", Some("1.2.3"))
        .with_schema_version("2")
        .with_correlation_id("corr")
        .with_user_context(Some("u1"), Some("t1"))
        .add_tag("a")
        .add_tag("b,c")
        .with_subject("emp_1")
        .with_extension("region", "eu")
}

#[test]
fn every_field_round_trips_and_names_are_the_binding_s() {
    let mut e = full_envelope();
    e.causation_id = Some("cause".into());
    e.data_schema = Some("https://example.com/s.json".into());
    e.data_content_type = Some("application/avro".into());
    let headers = encode_headers(&e).unwrap();
    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "ce_dataschema",
            "ce_sourceversion",
            "ce_schemaversion",
            "ce_correlationid",
            "ce_causationid",
            "ce_authid",
            "ce_tenantid",
            "ce_tags",
            "ce_region",
            "content-type"
        ]
    );
    let tags = headers.iter().find(|(k, _)| k == "ce_tags").unwrap();
    assert_eq!(tags.1.as_deref(), Some(&br#"["a","b,c"]"#[..]));
    assert_eq!(decode_header_pairs(pairs(&headers)), Ok(e));
}

#[test]
fn time_is_rfc3339_utc_millis_and_any_offset_is_read() {
    assert_eq!(format_time(0).unwrap(), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        format_time(1_733_344_300_123).unwrap(),
        "2024-12-04T20:31:40.123Z"
    );
    assert_eq!(format_time(-1).unwrap(), "1969-12-31T23:59:59.999Z");
    assert_eq!(
        parse_time("2024-12-04T21:31:40.123+01:00"),
        Ok(1_733_344_300_123)
    );
    assert_eq!(parse_time("2024-12-04T20:31:40Z"), Ok(1_733_344_300_000));
    // Finer digits are truncated toward the past, also before 1970.
    assert_eq!(parse_time("1969-12-31T23:59:59.9995Z"), Ok(-1));
    assert!(parse_time("yesterday").is_err());
    assert!(format_time(i64::MAX).is_err());
}

#[test]
fn time_text_per_second_cache_matches_the_uncached_text() {
    // Within one second, across seconds, backwards, and before 1970.
    let base = 1_733_344_300_000_i64;
    for millis in [
        base,
        base + 1,
        base + 999,
        base + 1000,
        base + 999,
        base - 1,
        -1001,
        -1000,
        -1,
        0,
        999,
        1000,
        base + 5,
    ] {
        assert_eq!(time_text(millis), time_text_uncached(millis), "{millis}");
    }
    // An error leaves the cache as it was.
    assert!(time_text(i64::MAX).is_err());
    assert_eq!(time_text(base + 7), time_text_uncached(base + 7));
}

proptest! {
    #[test]
    fn time_text_cached_equals_uncached(ms in proptest::collection::vec(-62_135_596_800_000_i64..253_402_300_799_999, 1..20)) {
        for m in ms {
            for millis in [m, m + 1, m.saturating_sub(1)] {
                prop_assert_eq!(time_text(millis), time_text_uncached(millis));
            }
        }
    }
}

#[test]
fn duplicates_nulls_bad_utf8_are_errors() {
    let mut dup = minimal();
    dup.push(h("ce_id", "id-2"));
    assert_eq!(
        decode_header_pairs(pairs(&dup)),
        Err(HeaderError::Duplicate("ce_id".into()))
    );
    let mut ct = minimal();
    ct.push(h("content-type", "application/json"));
    ct.push(h("Content-Type", "application/avro"));
    assert_eq!(
        decode_header_pairs(pairs(&ct)),
        Err(HeaderError::Duplicate("Content-Type".into()))
    );
    let mut null = minimal();
    null.push(("ce_subject".into(), None));
    assert_eq!(
        decode_header_pairs(pairs(&null)),
        Err(HeaderError::Null("ce_subject".into()))
    );
    let mut bad = minimal();
    bad.push(("ce_subject".into(), Some(Bytes::from_static(b"\xff\xfe"))));
    assert_eq!(
        decode_header_pairs(pairs(&bad)),
        Err(HeaderError::NotUtf8("ce_subject".into()))
    );
    // Not ours: ignored even when odd.
    let mut other = minimal();
    other.push(("traceparent".into(), None));
    other.push(("x".into(), Some(Bytes::from_static(b"\xff"))));
    other.push(("x".into(), None));
    let mut raw: Vec<(&[u8], Option<&[u8]>)> = pairs(&other);
    raw.push((b"ce_\xff", Some(b"v")));
    assert!(decode_header_pairs(raw).is_ok());
}

#[test]
fn missing_or_bad_required_attributes_are_errors() {
    for (i, name) in ["ce_specversion", "ce_id", "ce_source", "ce_type"]
        .iter()
        .enumerate()
    {
        let mut headers = minimal();
        headers.remove(i);
        assert_eq!(
            decode_header_pairs(pairs(&headers)),
            Err(HeaderError::Missing(name))
        );
        let mut empty = minimal();
        empty[i].1 = Some(Bytes::new());
        assert!(decode_header_pairs(pairs(&empty)).is_err(), "{name} empty");
    }
    let mut v = minimal();
    v[0] = h("ce_specversion", "0.3");
    assert_eq!(
        decode_header_pairs(pairs(&v)),
        Err(HeaderError::UnsupportedSpecVersion("0.3".into()))
    );
    let mut t = minimal();
    t.push(h("ce_time", "not a time"));
    assert!(matches!(
        decode_header_pairs(pairs(&t)),
        Err(HeaderError::Invalid { .. })
    ));
    let mut tags = minimal();
    tags.push(h("ce_tags", "a,b"));
    assert!(matches!(
        decode_header_pairs(pairs(&tags)),
        Err(HeaderError::Invalid { .. })
    ));
}

#[test]
fn encode_refuses_what_cannot_be_read_back() {
    assert!(encode_headers(&Envelope::new("a")).is_err(), "empty source");
    let ok = Envelope::new("a").with_source("s", None);
    assert!(encode_headers(&ok.clone().with_extension("Upper", "x")).is_err());
    assert!(encode_headers(&ok.clone().with_extension("with_underscore", "x")).is_err());
    assert!(encode_headers(&ok.clone().with_extension("tags", "x")).is_err());
    assert!(encode_headers(&ok.clone().with_time(i64::MAX)).is_err());
    let mut out = vec![h("keep", "me")];
    assert!(encode_headers_into(&ok.clone().with_extension("id", "x"), &mut out).is_err());
    assert_eq!(out.len(), 1, "left unchanged on error");
    assert!(encode_headers_into(&ok, &mut out).is_ok());
}

#[test]
fn structured_mode_is_read() {
    assert!(is_structured_json(b"application/cloudevents+json"));
    assert!(is_structured_json(
        b"Application/CloudEvents+JSON; charset=UTF-8"
    ));
    assert!(!is_structured_json(b"application/json"));
    assert!(!is_structured_json(b"application/cloud"));
    let value = br#"{"specversion":"1.0","id":"x1","source":"/svc","type":"a.b",
        "time":"2024-12-04T20:31:40.123Z","datacontenttype":"application/json",
        "correlationid":"c","tags":"[\"t\"]","priority":3,"data":{"n":1}}"#;
    let (e, data) = decode_structured(value).unwrap();
    assert_eq!(e.id, "x1");
    assert_eq!(e.time, Some(1_733_344_300_123));
    assert_eq!(e.correlation_id.as_deref(), Some("c"));
    assert_eq!(e.tags, vec!["t"]);
    assert_eq!(e.extensions.get("priority").map(String::as_str), Some("3"));
    assert_eq!(data, StructuredData::Json(serde_json::json!({"n": 1})));
    assert!(decode_structured(b"[1]").is_err());
    assert!(decode_structured(b"{").is_err());
    assert!(decode_structured(
        br#"{"specversion":"1.0","id":"x","source":"s","type":"t","data":1,"data_base64":"AA=="}"#
    )
    .is_err());
    assert_eq!(
        decode_structured(br#"{"id":"x","source":"s","type":"t"}"#).map(|_| ()),
        Err(HeaderError::Missing("specversion"))
    );
    // Through envelope_of, chosen by content-type.
    let headers = vec![Header {
        key: Bytes::from_static(b"content-type"),
        value: Some(Bytes::from_static(
            b"application/cloudevents+json; charset=utf-8",
        )),
    }];
    assert_eq!(
        envelope_of(&headers, Some(value)).map(|e| e.id),
        Ok("x1".into())
    );
    assert!(envelope_of(&headers, None).is_err());
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(".{0,12}")
}

prop_compose! {
    fn envelope()(
        id in ".{1,20}",
        event_type in "[a-z.]{1,20}",
        source in ".{1,20}",
        time in proptest::option::of(-62_135_596_800_000i64..253_402_300_799_999),
        source_version in opt_text(),
        schema_version in opt_text(),
        correlation_id in opt_text(),
        causation_id in opt_text(),
        user_id in opt_text(),
        tenant_id in opt_text(),
        tags in proptest::collection::vec(".{0,8}", 0..4),
        subject in opt_text(),
        data_schema in opt_text(),
        data_content_type in opt_text(),
        extensions in proptest::collection::btree_map("[a-z0-9]{1,10}", ".{0,8}", 0..4),
    ) -> Envelope {
        let mut e = Envelope::new(event_type).with_id(id);
        e.source = source;
        e.time = time;
        e.source_version = source_version;
        e.schema_version = schema_version;
        e.correlation_id = correlation_id;
        e.causation_id = causation_id;
        e.user_id = user_id;
        e.tenant_id = tenant_id;
        e.tags = tags;
        e.subject = subject;
        e.data_schema = data_schema;
        e.data_content_type = data_content_type;
        e.extensions = extensions.into_iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())).collect();
        e
    }
}

fn header_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"ce_specversion".to_vec()),
        Just(b"ce_id".to_vec()),
        Just(b"ce_source".to_vec()),
        Just(b"ce_type".to_vec()),
        Just(b"ce_time".to_vec()),
        Just(b"ce_tags".to_vec()),
        Just(b"content-type".to_vec()),
        "ce_[a-z]{0,6}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

fn header_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(prop_oneof![
        Just(b"1.0".to_vec()),
        Just(b"2024-12-04T20:31:40Z".to_vec()),
        Just(br#"["x"]"#.to_vec()),
        Just(b"application/cloudevents+json".to_vec()),
        ".{0,10}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..10),
    ])
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(e in envelope()) {
        let headers = encode_headers(&e).unwrap();
        prop_assert_eq!(decode_header_pairs(pairs(&headers)), Ok(e));
    }

    #[test]
    fn arbitrary_header_lists_never_panic(
        headers in proptest::collection::vec((header_name(), header_value()), 0..12),
        value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    ) {
        let decoded = decode_header_pairs(headers.iter().map(|(k, v)| (&k[..], v.as_deref())));
        if let Ok(e) = decoded {
            // What was read can be written and read back the same.
            if let Ok(again) = encode_headers(&e) {
                prop_assert_eq!(decode_header_pairs(pairs(&again)), Ok(e));
            }
        }
        let kafka: Vec<Header> = headers
            .into_iter()
            .map(|(k, v)| Header { key: Bytes::from(k), value: v.map(Bytes::from) })
            .collect();
        let _ = envelope_of(&kafka, value.as_deref());
        if let Some(v) = &value {
            let _ = decode_structured(v);
        }
    }
}

#[test]
fn a_default_source_and_static_values_write_what_the_envelope_would() {
    let mut filled = full_envelope();
    filled.data_content_type = Some("application/avro".into());
    let expected = encode_headers(&filled).unwrap();
    let mut open = filled.clone();
    open.data_content_type = None;
    open.source = String::new();
    open.source_version = None;
    let default = DefaultSource::new(
        Bytes::from_static(b"hr-service"),
        Bytes::from_static(b"1.2.3"),
    );
    let encoding = Encoding {
        content_type: Some("application/avro"),
        static_type: Some("hr.employee.created"),
        default_source: Some(&default),
        pooled: true,
        in_block: false,
    };
    let mut out = Vec::new();
    encode_headers_with(&open, &encoding, &mut out).unwrap();
    assert_eq!(out, expected);
    assert_eq!(out.capacity(), out.len(), "sized once");
    // The envelope's own source (and version) win over the default; a version of its own is
    // kept with the default source; a static type that is not the envelope's is not used.
    let mut own = open.clone().with_source("other", Some("7"));
    own.event_type = "x.y".into();
    let mut out = Vec::new();
    encode_headers_with(&own, &encoding, &mut out).unwrap();
    let back = decode_header_pairs(pairs(&out)).unwrap();
    assert_eq!(
        (back.source.as_str(), back.source_version.as_deref()),
        ("other", Some("7"))
    );
    assert_eq!(back.event_type, "x.y");
    open.source_version = Some("2.0".into());
    let mut out = Vec::new();
    encode_headers_with(&open, &encoding, &mut out).unwrap();
    let back = decode_header_pairs(pairs(&out)).unwrap();
    assert_eq!(
        (back.source.as_str(), back.source_version.as_deref()),
        ("hr-service", Some("2.0"))
    );
    // An empty default source is refused like an empty envelope source.
    let empty = DefaultSource::new(Bytes::new(), Bytes::new());
    let encoding = Encoding {
        default_source: Some(&empty),
        ..encoding
    };
    let mut open = full_envelope();
    open.source = String::new();
    assert!(encode_headers_with(&open, &encoding, &mut Vec::new()).is_err());
}

#[test]
fn a_plain_envelope_writes_the_same_headers_in_the_same_order() {
    // `Event::new`'s envelope: no optional attribute; the producer fills source and version.
    let plain = Envelope::new("hr.employee.created").with_id("e-1");
    let mut filled = plain.clone().with_source("hr-service", Some("1.2.3"));
    filled.data_content_type = Some("application/avro".into());
    let expected = encode_headers(&filled).unwrap();
    let names: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_sourceversion",
            "content-type"
        ]
    );
    let default = DefaultSource::new(
        Bytes::from_static(b"hr-service"),
        Bytes::from_static(b"1.2.3"),
    );
    let encoding = Encoding {
        content_type: Some("application/avro"),
        static_type: Some("hr.employee.created"),
        default_source: Some(&default),
        pooled: true,
        in_block: false,
    };
    let mut out = Vec::new();
    encode_headers_with(&plain, &encoding, &mut out).unwrap();
    assert_eq!(out, expected);
    assert_eq!(out.capacity(), out.len(), "sized once");
    // One optional attribute takes the full table: it lands in its place.
    let mut with_subject = plain.clone();
    with_subject.subject = Some("emp-7".into());
    let mut out = Vec::new();
    encode_headers_with(&with_subject, &encoding, &mut out).unwrap();
    let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names[4..7], ["ce_time", "ce_subject", "ce_sourceversion"]);
}

#[test]
fn the_constant_headers_in_a_block_and_the_rest_decode_to_the_same_envelope() {
    let default = DefaultSource::new(
        Bytes::from_static(b"hr-service"),
        Bytes::from_static(b"1.2.3"),
    );
    const TYPE: &str = "hr.employee.created";
    const CT: &str = "application/avro";
    let encoding = Encoding {
        content_type: Some(CT),
        static_type: Some(TYPE),
        default_source: Some(&default),
        pooled: true,
        in_block: false,
    };
    // A plain envelope and one with optional attributes and an extension.
    let mut rich = full_envelope();
    rich.source = String::new();
    rich.source_version = None;
    for envelope in [Envelope::new(TYPE).with_id("e-1"), rich] {
        assert!(block_applies(&envelope, &encoding));
        let mut all = Vec::new();
        encode_headers_with(&envelope, &encoding, &mut all).unwrap();
        let block = default.block(TYPE, CT).unwrap();
        let again = default.block(TYPE, CT).unwrap();
        assert!(
            std::ptr::eq(block.as_bytes(), again.as_bytes()),
            "made once"
        );
        let in_block = Encoding {
            in_block: true,
            ..encoding
        };
        let mut own = Vec::new();
        encode_headers_with(&envelope, &in_block, &mut own).unwrap();
        assert_eq!(block.count() + own.len(), all.len());
        let names: Vec<&[u8]> = block.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                &b"ce_specversion"[..],
                b"ce_source",
                b"ce_type",
                b"ce_sourceversion",
                b"content-type"
            ]
        );
        // The same headers, the block's first: the same envelope.
        let mut joined: Vec<(&[u8], Option<&[u8]>)> = block.iter().collect();
        joined.extend(pairs(&own));
        let mut sorted_all = pairs(&all);
        let mut sorted_joined = joined.clone();
        sorted_all.sort();
        sorted_joined.sort();
        assert_eq!(sorted_joined, sorted_all);
        assert_eq!(
            decode_header_pairs(joined).unwrap(),
            decode_header_pairs(pairs(&all)).unwrap()
        );
    }
    // Not with the envelope's own source, version or another type.
    let own_source = Envelope::new(TYPE).with_source("x", None);
    assert!(!block_applies(&own_source, &encoding));
    let mut own_version = Envelope::new(TYPE);
    own_version.source_version = Some("9".into());
    assert!(!block_applies(&own_version, &encoding));
    assert!(!block_applies(&Envelope::new("other.type"), &encoding));
}
