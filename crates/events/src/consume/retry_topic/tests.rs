use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn policy(secs: &[u64]) -> RetryTopicPolicy {
    RetryTopicPolicy::new(secs.iter().map(|s| Duration::from_secs(*s))).unwrap()
}

fn raw(topic: &str, headers: Vec<(&str, Option<&[u8]>)>) -> RawRecord {
    RawRecord {
        topic: topic.to_owned(),
        partition: 2,
        offset: 41,
        timestamp: 1_000,
        key: Some(Bytes::from_static(b"k1")),
        value: Some(Bytes::from_static(b"\x00\x00\x00\x00\x07payload")),
        headers: headers
            .into_iter()
            .map(|(k, v)| {
                (
                    Bytes::copy_from_slice(k.as_bytes()),
                    v.map(Bytes::copy_from_slice),
                )
            })
            .collect(),
    }
}

fn info(record: &ProducerRecord) -> RetryInfo {
    read_retry_headers(
        record
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_deref())),
    )
    .unwrap()
}

#[test]
fn stages_go_through_each_retry_topic_then_to_the_dead_letter() {
    let p = policy(&[60, 600]);
    assert_eq!(p.topics("orders"), ["orders-retry-1", "orders-retry-2"]);
    assert_eq!(
        p.after_failure("orders", 1_000),
        Stage::Retry {
            topic: "orders-retry-1".into(),
            due_ms: 61_000
        }
    );
    assert_eq!(
        p.after_failure("orders-retry-1", 5_000),
        Stage::Retry {
            topic: "orders-retry-2".into(),
            due_ms: 605_000
        }
    );
    assert_eq!(p.after_failure("orders-retry-2", 0), Stage::DeadLetter);
    // A due time never overflows.
    assert!(matches!(
        p.after_failure("orders", i64::MAX - 1),
        Stage::Retry {
            due_ms: i64::MAX,
            ..
        }
    ));
}

#[test]
fn only_this_policys_retry_topics_are_stages() {
    let p = policy(&[1, 2]);
    assert_eq!(p.stage_of("orders"), ("orders", 0));
    assert_eq!(p.stage_of("orders-retry-2"), ("orders", 2));
    // Out of range, zero, leading zero, not a number, no source: a source topic of its own.
    for topic in [
        "orders-retry-3",
        "orders-retry-0",
        "orders-retry-01",
        "orders-retry-x",
        "orders-retry-",
        "-retry-1",
    ] {
        assert_eq!(p.stage_of(topic), (topic, 0), "{topic}");
    }
    // The last infix counts: a source named with `-retry-` in it.
    assert_eq!(p.stage_of("a-retry-b-retry-1"), ("a-retry-b", 1));
    assert_eq!(
        p.after_failure("a-retry-b-retry-1", 0),
        Stage::Retry {
            topic: "a-retry-b-retry-2".into(),
            due_ms: 2_000
        }
    );
}

#[test]
fn delays_that_cannot_be_honoured_are_refused_by_name() {
    let refused = |delays: Vec<Duration>| {
        RetryTopicPolicy::new(delays)
            .unwrap_err()
            .to_string()
            .contains("events.retry.topics.delays")
    };
    assert!(refused(vec![]));
    assert!(refused(vec![Duration::ZERO]));
    assert!(refused(vec![
        Duration::from_secs(1),
        MAX_DELAY + Duration::from_millis(1)
    ]));
    assert!(refused(vec![Duration::from_secs(1); MAX_RETRY_TOPICS + 1]));
    assert!(RetryTopicPolicy::new(vec![MAX_DELAY; MAX_RETRY_TOPICS]).is_ok());
}

#[test]
fn the_retry_record_keeps_the_original_bytes_and_replaces_its_retry_headers() {
    let source = raw("orders", vec![("ce_type", Some(b"t")), ("x-null", None)]);
    let first = retry_record(&source, "orders-retry-1", 61_000, 3, Some(6));
    assert_eq!(first.topic.as_ref(), "orders-retry-1");
    assert_eq!(first.key, source.key);
    assert_eq!(first.value, source.value);
    assert_eq!(first.partition, Some(2), "the source partition kept");
    assert_eq!(
        first.headers[..2],
        [
            (HeaderName::from("ce_type"), Some(Bytes::from_static(b"t"))),
            (HeaderName::from("x-null"), None)
        ]
    );
    let i = info(&first);
    assert_eq!(i.original_topic.as_deref(), Some("orders"));
    assert_eq!(i.attempts, Some(3));
    assert_eq!(i.due_ms, Some(61_000));
    assert_eq!(i.wait(1_000), Some(Duration::from_secs(60)));
    assert_eq!(i.wait(61_000), None);

    // The second hop: read back from the retry topic, re-published to the next one.
    let consumed = RawRecord {
        topic: "orders-retry-1".into(),
        headers: first
            .headers
            .iter()
            .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone()))
            .collect(),
        ..source.clone()
    };
    let second = retry_record(&consumed, "orders-retry-2", 700_000, 6, Some(1));
    assert_eq!(
        second.headers.len(),
        first.headers.len(),
        "replaced, not appended"
    );
    let i = info(&second);
    assert_eq!(
        i.original_topic.as_deref(),
        Some("orders"),
        "the first topic, not the retry topic"
    );
    assert_eq!((i.attempts, i.due_ms), (Some(6), Some(700_000)));
    assert_eq!(
        second.partition, None,
        "partition 2 does not exist there: the partitioner picks"
    );
}

#[test]
fn hostile_retry_headers_are_typed_errors() {
    let read = |headers: Vec<(&str, Option<&[u8]>)>| {
        read_retry_headers(headers.iter().map(|(k, v)| (k.as_bytes(), *v)))
    };
    assert_eq!(read(vec![]), Ok(RetryInfo::default()));
    assert_eq!(
        read(vec![(DUE, Some(&[0; 7]))]),
        Err(RetryHeaderError::Malformed(DUE))
    );
    assert_eq!(
        read(vec![(ATTEMPTS, None)]),
        Err(RetryHeaderError::Malformed(ATTEMPTS))
    );
    assert_eq!(
        read(vec![(ORIGINAL_TOPIC, Some(b"\xff"))]),
        Err(RetryHeaderError::Malformed(ORIGINAL_TOPIC))
    );
    assert_eq!(
        read(vec![(ORIGINAL_TOPIC, Some(b""))]),
        Err(RetryHeaderError::Malformed(ORIGINAL_TOPIC))
    );
    assert_eq!(
        read(vec![(DUE, Some(&[0; 8])), (DUE, Some(&[0; 8]))]),
        Err(RetryHeaderError::Repeated(DUE)),
        "never first-wins: the holder and the reader must agree on the due time"
    );
}

proptest! {
    #[test]
    fn arbitrary_headers_never_panic(
        headers in proptest::collection::vec(
            (prop_oneof![Just(DUE.to_owned()), Just(ATTEMPTS.to_owned()), Just(ORIGINAL_TOPIC.to_owned()), "[a-z_-]{0,12}"],
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12))),
            0..6),
    ) {
        let _ = read_retry_headers(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_deref())));
    }

    #[test]
    fn retry_records_read_back(due in any::<i64>(), attempts in any::<u32>(), partition in -1i32..8) {
        let mut source = raw("orders", vec![(DUE, Some(b"junk")), ("h", Some(b"v"))]);
        source.partition = partition;
        let record = retry_record(&source, "orders-retry-1", due, attempts, Some(4));
        let i = info(&record);
        prop_assert_eq!(i.due_ms, Some(due));
        prop_assert_eq!(i.attempts, Some(attempts));
        prop_assert_eq!(i.original_topic.as_deref(), Some("orders"));
        prop_assert_eq!(record.partition, (0..4).contains(&partition).then_some(partition));
    }
}
