//! What a handler is: [`Handler<E>`] (or an async closure), the [`RecordContext`] it receives
//! beside the decoded event, and the [`HandlerError`] it returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafkit::consumer::{ConsumerRecord, Header};
use kafkit::producer::{ProducerRecord, Topic};
use serde::Serialize;

use super::router::Codecs;
use crate::cloudevents::DefaultSource;
use crate::envelope::{Envelope, Event};
use crate::error::EventsError;
use crate::typed::EventPayload;

/// A boxed handler future.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>>;

/// Where a record came from, handed to the handler beside the decoded event.
#[derive(Debug, Clone)]
pub struct RecordContext {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's key.
    pub key: Option<Bytes>,
    /// The record's headers, in order.
    pub headers: Vec<Header>,
    /// The record's timestamp (ms since the epoch; -1 when none).
    pub timestamp: i64,
    /// The envelope read from the CloudEvents headers (`None` for a record that carries none
    /// and reaches the default handler).
    pub envelope: Option<Envelope>,
    /// Which attempt this is: 1 the first time, 2 the first retry, …
    pub attempt: u32,
    /// The consumer group.
    pub group: Arc<str>,
    /// Exactly-once mode: where [`publish`](Self::publish) puts this attempt's outputs.
    outputs: Option<Outputs>,
}

impl RecordContext {
    pub(crate) fn new(
        record: &ConsumerRecord,
        envelope: Option<Envelope>,
        attempt: u32,
        group: Arc<str>,
    ) -> Self {
        RecordContext {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key: record.key.clone(),
            headers: record.headers.clone(),
            timestamp: record.timestamp,
            envelope,
            attempt,
            group,
            outputs: None,
        }
    }

    /// The context of an exactly-once attempt: [`publish`](Self::publish) puts outputs in
    /// `outputs`.
    pub(crate) fn with_outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = Some(outputs);
        self
    }

    /// Publishes `event` to its type's default topic as an output of this record, inside the
    /// record's transaction ([`ProcessingGuarantee::ExactlyOnce`](super::ProcessingGuarantee)).
    ///
    /// The event is encoded at once as [`EventProducer`](crate::producer::EventProducer)
    /// encodes (Avro through the registry, JSON validated against its schema; an encoding
    /// error is returned here) and held until the handler returns: outputs of an attempt that
    /// fails are dropped (a retry publishes its own), those of an attempt that succeeds are
    /// sent in the transaction that also commits the record's offset, so a `read_committed`
    /// reader sees them exactly once. Refused with [`EventsError::Configuration`] naming
    /// `processing.guarantee` in at-least-once mode (publish with an `EventProducer` there),
    /// and once the handler has returned.
    ///
    /// ```no_run
    /// use kafkit_events::consumer::{HandlerError, RecordContext};
    /// use kafkit_events::{Event, EventPayload};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Invoiced { order_id: String }
    /// impl EventPayload for Invoiced {
    ///     const EVENT_TYPE: &'static str = "billing.invoiced";
    ///     fn default_topic() -> Option<&'static str> { Some("billing.invoices") }
    /// }
    ///
    /// async fn on_order(order_id: String, ctx: RecordContext) -> Result<(), HandlerError> {
    ///     ctx.publish(Event::new(Invoiced { order_id })).await?;
    ///     Ok(())
    /// }
    /// ```
    pub async fn publish<T>(&self, event: Event<T>) -> Result<(), EventsError>
    where
        T: EventPayload + Serialize,
    {
        let topic = crate::producer::publisher::default_topic::<T>()?;
        self.publish_to(topic, event).await
    }

    /// [`publish`](Self::publish) to `topic`.
    pub async fn publish_to<T>(&self, topic: &str, event: Event<T>) -> Result<(), EventsError>
    where
        T: EventPayload + Serialize,
    {
        let Some(outputs) = &self.outputs else {
            return Err(EventsError::configuration(
                "processing.guarantee",
                "RecordContext::publish sends inside the record's transaction, which only \
                 ProcessingGuarantee::ExactlyOnce has; publish with an EventProducer instead",
            ));
        };
        outputs.publish(topic, event).await
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|h| h.key.as_ref() == name.as_bytes())
            .and_then(|h| h.value.as_ref())
    }
}

/// Encodes the exactly-once consumer's outputs: the consumer's codecs and the service as
/// the default `ce_source`.
pub(crate) struct OutputEncoder {
    pub(crate) codecs: Arc<Codecs>,
    pub(crate) source: DefaultSource,
}

/// One handler attempt's outputs, held until the attempt ends (shared by its context's
/// clones); closed then, so a context kept past its handler publishes nothing.
#[derive(Clone)]
pub(crate) struct Outputs {
    encoder: Arc<OutputEncoder>,
    /// `None` once the attempt ended.
    records: Arc<Mutex<Option<Vec<ProducerRecord>>>>,
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outputs").finish_non_exhaustive()
    }
}

impl Outputs {
    pub(crate) fn new(encoder: Arc<OutputEncoder>) -> Self {
        Outputs {
            encoder,
            records: Arc::new(Mutex::new(Some(Vec::new()))),
        }
    }

    async fn publish<T>(&self, topic: &str, event: Event<T>) -> Result<(), EventsError>
    where
        T: EventPayload + Serialize,
    {
        let topic = Topic::from(topic);
        let encoder = &*self.encoder;
        let mut record = crate::producer::encode_record(
            &encoder.codecs.json,
            encoder.codecs.avro.as_ref(),
            &encoder.source,
            &topic,
            &event,
        )
        .await?;
        record.key = crate::format::key_bytes(&event);
        #[cfg(feature = "opentelemetry")]
        crate::trace_context::inject_current(&mut record.headers);
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        match records.as_mut() {
            Some(records) => {
                records.push(record);
                Ok(())
            }
            None => Err(EventsError::configuration(
                "processing.guarantee",
                "RecordContext::publish after the handler returned: its transaction has moved \
                 on",
            )),
        }
    }

    /// Ends the attempt: its outputs, in publish order; later publishes are refused.
    pub(crate) fn close(&self) -> Vec<ProducerRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// The cause chain of `error`, one `caused by: …` line per source (`None` without sources).
pub(crate) fn cause_chain<E: std::error::Error + ?Sized>(error: &E) -> Option<String> {
    let mut out = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str("caused by: ");
        out.push_str(&cause.to_string());
        out.push('\n');
        source = cause.source();
    }
    (!out.is_empty()).then_some(out)
}

/// A handler's failure: whether a retry may help, the error's class and message, and its
/// cause. Any `std::error::Error` converts into one with `?` and is **retriable** (as the
/// seeds retry every exception); say otherwise with [`HandlerError::not_retriable`].
///
/// ```
/// use kafkit_events::consumer::HandlerError;
///
/// fn parse(text: &str) -> Result<i64, HandlerError> {
///     let n: i64 = text.parse()?; // retriable by default
///     if n < 0 {
///         return Err(HandlerError::not_retriable_msg("negative amounts are refused"));
///     }
///     Ok(n)
/// }
/// assert!(parse("x").unwrap_err().is_retriable());
/// assert!(!parse("-1").unwrap_err().is_retriable());
/// ```
pub struct HandlerError {
    retriable: bool,
    class: String,
    message: String,
    cause_class: Option<String>,
    detail: Option<String>,
}

impl HandlerError {
    fn from_error<E: std::error::Error + ?Sized>(error: &E, class: &str, retriable: bool) -> Self {
        let detail = cause_chain(error);
        HandlerError {
            retriable,
            class: class.to_owned(),
            message: error.to_string(),
            // A source's concrete type is not known behind `dyn Error`.
            cause_class: detail.as_ref().map(|_| "std::error::Error".to_owned()),
            detail,
        }
    }

    /// A retriable failure from `error` (what `?` does).
    pub fn retriable<E: std::error::Error + 'static>(error: E) -> Self {
        Self::from_error(&error, std::any::type_name::<E>(), true)
    }

    /// A failure no retry can mend: the record goes to the dead letter at once.
    pub fn not_retriable<E: std::error::Error + 'static>(error: E) -> Self {
        Self::from_error(&error, std::any::type_name::<E>(), false)
    }

    /// A retriable failure with a message only.
    pub fn retriable_msg(message: impl Into<String>) -> Self {
        Self::msg(message, true)
    }

    /// A non-retriable failure with a message only.
    pub fn not_retriable_msg(message: impl Into<String>) -> Self {
        Self::msg(message, false)
    }

    fn msg(message: impl Into<String>, retriable: bool) -> Self {
        HandlerError {
            retriable,
            class: "kafkit_events::consumer::HandlerError".to_owned(),
            message: message.into(),
            cause_class: None,
            detail: None,
        }
    }

    /// Sets the class written to the dead letter's `kafka_dlt-exception-fqcn`.
    pub fn with_class(mut self, class: impl Into<String>) -> Self {
        self.class = class.into();
        self
    }

    /// Whether a retry may help.
    pub fn is_retriable(&self) -> bool {
        self.retriable
    }

    /// The error's class (its Rust type name by default).
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first cause's class, if the error had a source.
    pub fn cause_class(&self) -> Option<&str> {
        self.cause_class.as_deref()
    }

    /// The cause chain, one `caused by:` line each (written as the dead letter's stack trace).
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        HandlerError::retriable(error)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("retriable", &self.retriable)
            .field("class", &self.class)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// Handles the events of one type `E`. Async closures work too: see
/// [`EventConsumerBuilder::on`](crate::consumer::EventConsumerBuilder::on).
///
/// ```
/// use kafkit_events::consumer::{Handler, HandlerError, HandlerFuture, RecordContext};
/// use kafkit_events::Event;
///
/// # #[derive(serde::Deserialize)] struct Shipped { order_id: String }
/// # impl kafkit_events::EventPayload for Shipped { const EVENT_TYPE: &'static str = "shipped"; }
/// struct Mailer;
/// impl Handler<Shipped> for Mailer {
///     fn handle<'a>(&'a self, event: Event<Shipped>, _ctx: RecordContext) -> HandlerFuture<'a> {
///         Box::pin(async move {
///             println!("mail for {}", event.data.order_id);
///             Ok::<(), HandlerError>(())
///         })
///     }
/// }
/// ```
pub trait Handler<E>: Send + Sync + 'static {
    /// Handles one event. An error is retried (when retriable) or dead-lettered.
    fn handle<'a>(&'a self, event: Event<E>, ctx: RecordContext) -> HandlerFuture<'a>;
}

/// An async closure as a [`Handler`].
pub(crate) struct FnHandler<F>(pub(crate) F);

impl<E, F, Fut> Handler<E> for FnHandler<F>
where
    E: Send + 'static,
    F: Fn(Event<E>, RecordContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn handle<'a>(&'a self, event: Event<E>, ctx: RecordContext) -> HandlerFuture<'a> {
        Box::pin((self.0)(event, ctx))
    }
}

/// A record of a type no handler is registered for, as the default handler gets it: the
/// context (envelope from the headers, when there are CloudEvents headers) and the value's
/// bytes, undecoded.
#[derive(Debug, Clone)]
pub struct UnhandledRecord {
    /// The record's `ce_type`, if it has one.
    pub event_type: Option<String>,
    /// The value, as read.
    pub value: Option<Bytes>,
}

/// The default handler: records of types with no handler of their own.
pub trait DefaultHandler: Send + Sync + 'static {
    /// Handles one record of an unhandled type.
    fn handle<'a>(&'a self, record: UnhandledRecord, ctx: RecordContext) -> HandlerFuture<'a>;
}

impl<F, Fut> DefaultHandler for FnHandler<F>
where
    F: Fn(UnhandledRecord, RecordContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn handle<'a>(&'a self, record: UnhandledRecord, ctx: RecordContext) -> HandlerFuture<'a> {
        Box::pin((self.0)(record, ctx))
    }
}
