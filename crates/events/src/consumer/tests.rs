//! Routing and handler errors without a broker.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kafkit::consumer::ConsumerRecord;

use super::handler::{FnHandler, HandlerError, RecordContext, UnhandledRecord};
use super::router::{Codecs, RouteOutcome, Router};
use crate::format::{EventCodec, JsonCodec, SerdeConfig};
use crate::{Event, EventPayload};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Created {
    id: u32,
}
impl EventPayload for Created {
    const EVENT_TYPE: &'static str = "t.created";
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Deleted {
    id: u32,
}
impl EventPayload for Deleted {
    const EVENT_TYPE: &'static str = "t.deleted";
}

fn codecs() -> Arc<Codecs> {
    Arc::new(Codecs {
        json: JsonCodec::new(SerdeConfig::default()),
        avro: None,
    })
}

async fn record<T: EventPayload + serde::Serialize>(data: T) -> ConsumerRecord {
    let event = Event::new(data).with_source("test", None);
    JsonCodec::new(SerdeConfig::default())
        .encode("t", &event)
        .await
        .unwrap()
        .into_consumer_record("t", 0, 7, 1)
}

fn ctx(record: &ConsumerRecord) -> RecordContext {
    RecordContext::new(record, None, 1, Arc::from("g"))
}

#[tokio::test]
async fn routes_on_ce_type_and_skips_other_types_without_a_default() {
    let created = Arc::new(AtomicU32::new(0));
    let c = created.clone();
    let mut router = Router::default();
    router
        .add::<Created>(Arc::new(FnHandler(
            move |e: Event<Created>, ctx: RecordContext| {
                let c = c.clone();
                async move {
                    assert_eq!(ctx.offset, 7);
                    assert_eq!(
                        ctx.envelope.as_ref().map(|e| e.event_type.as_str()),
                        Some("t.created")
                    );
                    c.fetch_add(e.data.id, Ordering::SeqCst);
                    Ok(())
                }
            },
        )))
        .unwrap();
    let r = record(Created { id: 5 }).await;
    let out = router.dispatch(codecs(), r.clone(), ctx(&r)).await;
    assert!(
        matches!(out, RouteOutcome::Done { handled: true }),
        "{out:?}"
    );
    assert_eq!(created.load(Ordering::SeqCst), 5);
    // Another type: not decoded, skipped.
    let mut other = record(Deleted { id: 1 }).await;
    other.value = Some(Bytes::from_static(b"not even json"));
    let out = router.dispatch(codecs(), other.clone(), ctx(&other)).await;
    assert!(
        matches!(out, RouteOutcome::Done { handled: false }),
        "{out:?}"
    );
    // Two handlers for one type are refused.
    let again = router.add::<Created>(Arc::new(FnHandler(
        |_: Event<Created>, _: RecordContext| async { Ok(()) },
    )));
    assert!(again.is_err());
}

#[tokio::test]
async fn the_default_handler_gets_other_types_undecoded() {
    let mut router = Router::default();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let s = seen.clone();
    router.set_default(Arc::new(FnHandler(
        move |u: UnhandledRecord, ctx: RecordContext| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some((u.event_type, ctx.envelope.map(|e| e.event_type)));
                Err::<(), _>(HandlerError::not_retriable_msg("nope"))
            }
        },
    )));
    let r = record(Deleted { id: 1 }).await;
    let out = router.dispatch(codecs(), r.clone(), ctx(&r)).await;
    match out {
        RouteOutcome::Failed(e) => assert!(!e.is_retriable()),
        other => panic!("{other:?}"),
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        Some((Some("t.deleted".to_owned()), Some("t.deleted".to_owned())))
    );
}

#[tokio::test]
async fn bad_payloads_are_decode_errors_and_avro_without_a_registry_is_refused() {
    let mut router = Router::default();
    router
        .add::<Created>(Arc::new(FnHandler(
            |_: Event<Created>, _: RecordContext| async { Ok(()) },
        )))
        .unwrap();
    let mut bad = record(Created { id: 1 }).await;
    bad.value = Some(Bytes::from_static(b"{\"id\": \"x\"}"));
    let out = router.dispatch(codecs(), bad.clone(), ctx(&bad)).await;
    assert!(
        matches!(&out, RouteOutcome::Decode(e) if e.raw_record().is_some()),
        "{out:?}"
    );
    let mut avro = record(Created { id: 1 }).await;
    for h in avro.headers.iter_mut() {
        if h.key.as_ref() == b"content-type" {
            h.value = Some(Bytes::from_static(b"application/avro"));
        }
    }
    avro.value = Some(Bytes::from_static(&[0, 0, 0, 0, 1, 2]));
    let out = router.dispatch(codecs(), avro.clone(), ctx(&avro)).await;
    assert!(
        matches!(&out, RouteOutcome::Decode(e) if e.to_string().contains("schema.registry.url")),
        "{out:?}"
    );
}

#[test]
fn handler_errors_are_retriable_by_default_with_their_class_and_causes() {
    fn io() -> Result<(), HandlerError> {
        Err(std::io::Error::other("disk full"))?;
        Ok(())
    }
    let e = io().unwrap_err();
    assert!(e.is_retriable());
    assert!(e.class().contains("io::error::Error"), "{}", e.class());
    assert_eq!(e.message(), "disk full");
    let e = HandlerError::not_retriable(std::fmt::Error).with_class("com.example.Bad");
    assert!(!e.is_retriable());
    assert_eq!(e.class(), "com.example.Bad");
}

/// A span around a publish is the parent of the handler's `process` span (the trace crosses
/// producer → consumer through `traceparent`).
#[cfg(feature = "opentelemetry")]
#[tokio::test]
async fn the_process_span_continues_the_producers_trace() {
    use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt;

    let r = record(Created { id: 1 }).await;
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("evconsumer-test")));
    tracing::subscriber::with_default(subscriber, || {
        let send = tracing::info_span!("send t");
        let _entered = send.enter();
        let producer = send.context().span().span_context().clone();
        let mut headers: Vec<(kafkit::producer::HeaderName, Option<Bytes>)> = Vec::new();
        assert!(crate::trace_context::inject_current(&mut headers));
        let mut consumed = r.clone();
        for (k, v) in headers {
            consumed.headers.push(kafkit::consumer::Header {
                key: Bytes::copy_from_slice(k.as_bytes()),
                value: v,
            });
        }
        drop(_entered);
        let process = super::driver::process_span(&consumed, "g", 1);
        let consumer = process.context().span().span_context().clone();
        assert_eq!(consumer.trace_id(), producer.trace_id());
        assert_ne!(consumer.span_id(), producer.span_id());
    });
}

#[test]
fn settings_that_cannot_be_honoured_are_refused_by_name() {
    let refused = |f: fn(&mut super::ConsumerSettings)| {
        let mut s = super::ConsumerSettings::default();
        f(&mut s);
        s.validate().unwrap_err().to_string()
    };
    assert!(refused(|s| s.max_concurrent_partitions = 0).contains("max_concurrent_partitions"));
    assert!(refused(|s| s.initial_backoff = s.max_backoff * 2).contains("events.retry.backoff.ms"));
    assert!(refused(|s| s.dead_letter_suffix.clear()).contains("events.dlq.topic.suffix"));
    assert!(super::ConsumerSettings::default().validate().is_ok());
}
