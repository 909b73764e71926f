//! An arbitrary header list (names from a dictionary of Spring, Connect and Streams error
//! headers, or raw bytes; null or arbitrary values; duplicates allowed) read as a dead letter: no
//! panic, a typed error or an answer. A record carrying these headers dead-lettered again keeps
//! its non-error headers byte for byte, reads back what was written, and dead-lettering the dead
//! letter keeps the header count.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use kafkit_events::client::consumer::{ConsumerRecord, Header, TimestampType};
use kafkit_events::client::producer::HeaderName;
use kafkit_events::consume::dead_letter::is_error_header;
use kafkit_events::consume::{
    dead_letter_record, read_dead_letter, redrive_record, DeadLetterPolicy, Failure,
};
use kafkit_events::error::RawRecord;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&[u8]] = &[
    b"kafka_dlt-original-topic",
    b"kafka_dlt-original-partition",
    b"kafka_dlt-original-offset",
    b"kafka_dlt-original-timestamp",
    b"kafka_dlt-original-timestamp-type",
    b"kafka_dlt-original-consumer-group",
    b"kafka_dlt-exception-fqcn",
    b"kafka_dlt-exception-cause-fqcn",
    b"kafka_dlt-exception-message",
    b"kafka_dlt-exception-stacktrace",
    b"kafka_dlt-attempts",
    b"kafka_dlt-failure-timestamp",
    b"__connect.errors.topic",
    b"__connect.errors.partition",
    b"__connect.errors.offset",
    b"__connect.errors.connector.name",
    b"__connect.errors.exception.message",
    b"__streams.errors.topic",
    b"__streams.errors.partition",
    b"__streams.errors.offset",
    b"__streams.errors.exception",
    b"ce_type",
    b"traceparent",
];

/// The header list `data` describes (see [`kafkit_fuzz::split_headers`]).
fn headers(data: &[u8]) -> Vec<Header> {
    kafkit_fuzz::split_headers(data, NAMES)
        .into_iter()
        .map(|(name, value)| Header {
            key: Bytes::copy_from_slice(name),
            value: value.map(Bytes::copy_from_slice),
        })
        .collect()
}

fn consumed(topic: &str, partition: i32, headers: Vec<Header>) -> ConsumerRecord {
    ConsumerRecord {
        topic: Arc::from(topic),
        partition,
        offset: 7,
        timestamp: 1,
        timestamp_type: TimestampType::CreateTime,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers,
        leader_epoch: None,
    }
}

fn as_headers(pairs: &[(HeaderName, Option<Bytes>)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(k, v)| Header {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: v.clone(),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let list = headers(data);
    let _ = read_dead_letter(&list);
    let _ = redrive_record(&consumed("t.dlq", 0, list.clone()));

    let raw = RawRecord::from_consumer_record(&consumed("t", 3, list.clone()));
    let failure = Failure::new("E", "m", 5);
    let policy = DeadLetterPolicy::default();
    let dead = dead_letter_record(&raw, &failure, "g", &policy, None);
    // Non-error headers (keys UTF-8 in the dictionary; raw keys compared lossily) kept in order.
    let kept: Vec<&Option<Bytes>> = dead
        .headers
        .iter()
        .filter(|(k, _)| !is_error_header(k.as_bytes()))
        .map(|(_, v)| v)
        .collect();
    let original: Vec<&Option<Bytes>> = list
        .iter()
        .filter(|h| !is_error_header(&h.key))
        .map(|h| &h.value)
        .collect();
    assert_eq!(kept, original);
    let info = read_dead_letter(&as_headers(&dead.headers)).expect("written headers read back");
    assert_eq!(info.original_topic, "t");
    assert_eq!(info.original_partition, Some(3));
    let again = dead_letter_record(
        &RawRecord::from_consumer_record(&consumed("t.dlq", 3, as_headers(&dead.headers))),
        &failure,
        "g",
        &policy,
        None,
    );
    assert_eq!(again.headers.len(), dead.headers.len());
    let back = redrive_record(&consumed("t.dlq", 3, as_headers(&dead.headers)))
        .expect("redrive of a written dead letter");
    assert_eq!(back.topic.to_string(), "t");
    assert_eq!(back.partition, Some(3));
});
