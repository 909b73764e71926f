//! kafkit-events' observability on a real broker: a trace started around a publish continues in
//! the handler's `process <topic>` span (spans read back from an in-memory OpenTelemetry
//! exporter), and the `metrics` facade's counters and histograms after a run with a failing
//! handler (read back from this binary's own recorder).
//!
//! The tracing subscriber and the metrics recorder are process-global, so they live in this
//! binary alone; every test uses its own topic and group and reads only its own series.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit_events::config::EventsConfig;
use kafkit_events::consumer::{EventConsumer, HandlerError, RecordContext};
use kafkit_events::producer::EventProducer;
use kafkit_events::{Event, EventPayload, EventsError};
use kafkit_tests::{kafka, unique_name};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Ping {
    n: u64,
    fail: bool,
}

impl EventPayload for Ping {
    const EVENT_TYPE: &'static str = "test.observability.ping";
    fn key(&self) -> Option<String> {
        Some(format!("k{}", self.n))
    }
}

// --- the process-wide OpenTelemetry pipeline and metrics recorder ------------------------------

struct Observed {
    provider: SdkTracerProvider,
    spans: InMemorySpanExporter,
    metrics: TestRecorder,
}

/// Installs (once) a global `tracing` subscriber with the OpenTelemetry layer exporting to
/// memory, and the global metrics recorder; both before anything is published or consumed.
fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("events-observability"))
            .with_filter(tracing::level_filters::LevelFilter::INFO);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only global subscriber of this binary");
        let metrics = TestRecorder::default();
        metrics::set_global_recorder(metrics.clone())
            .map_err(|_| "a recorder was already installed")
            .unwrap();
        Observed {
            provider,
            spans,
            metrics,
        }
    })
}

/// A metric's identity: its name and its labels, sorted.
type Series = (String, BTreeMap<String, String>);

/// A `metrics` recorder keeping every counter and every histogram sample, by series.
#[derive(Clone, Default)]
struct TestRecorder {
    counters: Arc<Mutex<BTreeMap<Series, Arc<AtomicU64>>>>,
    histograms: Arc<Mutex<BTreeMap<Series, Arc<Samples>>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn series(key: &Key) -> Series {
    let labels = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    (key.name().to_owned(), labels)
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(counters.entry(series(key)).or_default().clone())
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(AtomicU64::new(0)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().unwrap();
        Histogram::from_arc(histograms.entry(series(key)).or_default().clone())
    }
}

impl TestRecorder {
    /// Every counter named `name` whose labels include `with`: (its labels, its value).
    fn counters(&self, name: &str, with: &[(&str, &str)]) -> Vec<(BTreeMap<String, String>, u64)> {
        self.counters
            .lock()
            .unwrap()
            .iter()
            .filter(|((n, labels), _)| n == name && has(labels, with))
            .map(|((_, labels), v)| (labels.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }

    /// Every histogram named `name` whose labels include `with`: (its labels, its samples).
    fn histograms(
        &self,
        name: &str,
        with: &[(&str, &str)],
    ) -> Vec<(BTreeMap<String, String>, Vec<f64>)> {
        self.histograms
            .lock()
            .unwrap()
            .iter()
            .filter(|((n, labels), _)| n == name && has(labels, with))
            .map(|((_, labels), v)| (labels.clone(), v.0.lock().unwrap().clone()))
            .collect()
    }
}

fn has(labels: &BTreeMap<String, String>, with: &[(&str, &str)]) -> bool {
    with.iter()
        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
}

fn label_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// --- broker helpers --------------------------------------------------------------------------

async fn topic(partitions: i32) -> String {
    let name = unique_name("evobs");
    Admin::connect(&kafka().bootstrap)
        .await
        .unwrap()
        .create_topics(&[NewTopic::new(&name, partitions, 1)])
        .await
        .unwrap();
    name
}

fn config() -> EventsConfig {
    EventsConfig::builder()
        .bootstrap_servers(&kafka().bootstrap)
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .build()
        .unwrap()
}

/// Runs `consumer` until `done` says so (within WAIT), then stops it gracefully.
async fn run_until(consumer: EventConsumer, what: &str, done: impl Fn(&EventConsumer) -> bool) {
    let consumer = Arc::new(consumer);
    let c = consumer.clone();
    let run = tokio::spawn(async move { c.run().await });
    let deadline = Instant::now() + WAIT;
    while !done(&consumer) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            consumer.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer.shutdown_handle().shutdown();
    let result: Result<(), EventsError> = tokio::time::timeout(WAIT, run)
        .await
        .expect("run() stops within its deadline")
        .unwrap();
    result.unwrap();
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> String {
    match attribute(span, key) {
        Some(v) => v.as_str().into_owned(),
        None => panic!(
            "{} has no attribute {key}: {:?}",
            span.name, span.attributes
        ),
    }
}

/// The one finished span named `name`.
fn finished(name: &str) -> SpanData {
    let o = observed();
    o.provider.force_flush().unwrap();
    let mut spans: Vec<SpanData> = o
        .spans
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    assert_eq!(spans.len(), 1, "one span named {name:?}");
    spans.remove(0)
}

// --- the tests -----------------------------------------------------------------------------

/// A span around a publish: the producer's `send <topic>` span is its child and travels as
/// `traceparent`; the consumer's `process <topic>` span is a child of that send span (same
/// trace, remote parent), carries the messaging attributes, and the handler runs inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_started_around_a_publish_continues_in_the_handlers_process_span() {
    observed();
    let topic = topic(1).await;
    let group = unique_name("evobs-g");
    let config = config();

    let producer = EventProducer::new(&config).await.unwrap();
    let publish = tracing::info_span!("checkout");
    let origin = publish.context().span().span_context().clone();
    assert!(origin.is_valid(), "the OpenTelemetry layer is installed");
    let event = Event::new(Ping { n: 7, fail: false });
    let metadata = producer
        .publish_to(&topic, event)
        .instrument(publish.clone())
        .await
        .unwrap();
    drop(publish);
    producer.close().await.unwrap();

    let in_handler: Arc<Mutex<Option<(TraceId, SpanId)>>> = Arc::default();
    let seen = in_handler.clone();
    let consumer = EventConsumer::builder(&config, &group)
        .topics([topic.as_str()])
        .on::<Ping, _, _>(move |_event: Event<Ping>, _ctx: RecordContext| {
            let seen = seen.clone();
            async move {
                let cx = tracing::Span::current().context();
                let sc = cx.span().span_context().clone();
                *seen.lock().unwrap() = Some((sc.trace_id(), sc.span_id()));
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    run_until(consumer, "the event handled", |c| c.stats().processed == 1).await;

    let send = finished(&format!("send {topic}"));
    let process = finished(&format!("process {topic}"));
    assert_eq!(send.span_context.trace_id(), origin.trace_id());
    assert_eq!(
        send.parent_span_id,
        origin.span_id(),
        "send is a child of the span around the publish"
    );
    assert_eq!(send.span_kind, SpanKind::Producer);

    assert_eq!(
        process.span_context.trace_id(),
        origin.trace_id(),
        "the trace crosses the broker"
    );
    assert_eq!(
        process.parent_span_id,
        send.span_context.span_id(),
        "process is a child of the send span"
    );
    assert!(
        process.parent_span_is_remote,
        "the parent came from the record"
    );
    assert_eq!(process.span_kind, SpanKind::Consumer);
    for (key, want) in [
        ("messaging.system", "kafka"),
        ("messaging.destination.name", topic.as_str()),
        ("messaging.operation.type", "process"),
        ("messaging.operation.name", "process"),
        ("messaging.consumer.group.name", group.as_str()),
        ("messaging.destination.partition.id", "0"),
        ("event.type", Ping::EVENT_TYPE),
    ] {
        assert_eq!(text(&process, key), want, "{key}");
    }
    assert_eq!(
        attribute(&process, "messaging.kafka.offset"),
        Some(&Value::I64(metadata.offset)),
    );
    assert_eq!(
        *in_handler.lock().unwrap(),
        Some((origin.trace_id(), process.span_context.span_id())),
        "the handler runs inside the process span"
    );
}

/// One failing handler (retried twice, then dead-lettered) among five events: the producer's
/// and the consumer's series have the expected values and labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sends_consumption_processing_retries_and_dead_letters() {
    let m = &observed().metrics;
    let topic = topic(1).await;
    let group = unique_name("evobs-g");
    let config = config();

    let producer = EventProducer::new(&config).await.unwrap();
    for n in 0..3 {
        producer
            .publish_to(&topic, Event::new(Ping { n, fail: n == 2 }))
            .await
            .unwrap();
    }
    // A batch is counted once for all its deliveries, with a duration sample each.
    let batch = (3..5).map(|n| Event::new(Ping { n, fail: false }));
    for outcome in producer.publish_batch_to(&topic, batch, |_| None).await {
        outcome.unwrap();
    }
    producer.close().await.unwrap();

    let consumer = EventConsumer::builder(&config, &group)
        .topics([topic.as_str()])
        .configure(|s| {
            s.max_retries = 2;
            s.initial_backoff = Duration::from_millis(20);
            s.max_backoff = Duration::from_millis(100);
        })
        .on::<Ping, _, _>(|event: Event<Ping>, _ctx: RecordContext| async move {
            if event.data.fail {
                return Err(HandlerError::retriable_msg("refused"));
            }
            Ok(())
        })
        .build()
        .await
        .unwrap();
    run_until(consumer, "4 handled and 1 dead letter", |c| {
        let s = c.stats();
        s.processed == 4 && s.dead_lettered == 1
    })
    .await;

    let on_topic = [("messaging.destination.name", topic.as_str())];
    let sent = m.counters("messaging.client.sent.messages", &on_topic);
    assert_eq!(
        sent,
        [(
            label_map(&[
                ("messaging.system", "kafka"),
                ("messaging.operation.name", "send"),
                ("messaging.destination.name", &topic),
                ("cloudevents.event_type", Ping::EVENT_TYPE),
            ]),
            5
        )]
    );

    let send_durations = m.histograms("messaging.client.operation.duration", &on_topic);
    assert_eq!(send_durations.len(), 1, "{send_durations:?}");
    assert_eq!(send_durations[0].1.len(), 5, "one sample per sent event");

    let consumer_labels = [
        ("messaging.system", "kafka"),
        ("messaging.destination.name", topic.as_str()),
        ("messaging.consumer.group.name", group.as_str()),
    ];
    assert_eq!(
        m.counters("messaging.client.consumed.messages", &on_topic),
        [(label_map(&consumer_labels), 5)]
    );
    assert_eq!(
        m.counters("messaging.process.retries", &on_topic),
        [(label_map(&consumer_labels), 2)]
    );
    assert_eq!(
        m.counters("messaging.process.dead_letters", &on_topic),
        [(label_map(&consumer_labels), 1)]
    );

    let mut process_labels = consumer_labels.to_vec();
    process_labels.push(("messaging.operation.name", "process"));
    process_labels.push(("cloudevents.event_type", Ping::EVENT_TYPE));
    let durations = m.histograms("messaging.process.duration", &on_topic);
    assert_eq!(durations.len(), 2, "ok and failed series: {durations:?}");
    let (ok_labels, ok) = &durations
        .iter()
        .find(|(l, _)| !l.contains_key("error.type"))
        .expect("a series without error.type");
    assert_eq!(*ok_labels, label_map(&process_labels));
    assert_eq!(ok.len(), 4, "one sample per handled event");
    let mut failed_labels = process_labels.clone();
    failed_labels.push(("error.type", "kafkit_events::consumer::HandlerError"));
    let (_, failed) = durations
        .iter()
        .find(|(l, _)| *l == label_map(&failed_labels))
        .expect("a series with error.type = the handler error's class");
    assert_eq!(
        failed.len(),
        3,
        "one sample per failed attempt (1 + 2 retries)"
    );
    assert!(
        ok.iter()
            .chain(failed)
            .all(|s| s.is_finite() && *s >= 0.0 && *s < 60.0),
        "durations in seconds: {durations:?}"
    );
}
