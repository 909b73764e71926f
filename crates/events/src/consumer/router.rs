//! Routing: a record goes to the handler of its `ce_type` header (only that type is decoded);
//! records of other types go to the default handler, or are skipped. The codec is chosen by
//! the record's `content-type` (Avro needs a schema registry).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kafkit::consumer::ConsumerRecord;
use serde::de::DeserializeOwned;

use super::handler::{DefaultHandler, Handler, HandlerError, RecordContext, UnhandledRecord};
use crate::cloudevents;
use crate::error::EventsError;
use crate::format::{AvroCodec, EventCodec, JsonCodec, AVRO_CONTENT_TYPE};
use crate::typed::EventPayload;

/// The decoders a route may use.
pub(crate) struct Codecs {
    pub(crate) json: JsonCodec,
    pub(crate) avro: Option<AvroCodec>,
}

/// How a record's handling ended, before the retry policy sees it.
#[derive(Debug)]
pub(crate) enum RouteOutcome {
    /// Handled (or skipped: no handler for its type and no default handler).
    Done {
        /// Whether a handler ran (false: skipped).
        handled: bool,
    },
    /// The record could not be decoded: never retried.
    Decode(EventsError),
    /// The handler failed.
    Failed(HandlerError),
}

pub(crate) type RouteFuture = Pin<Box<dyn Future<Output = RouteOutcome> + Send>>;

/// One event type's decoder + handler, with the type erased.
pub(crate) trait Route: Send + Sync {
    fn call(
        self: Arc<Self>,
        codecs: Arc<Codecs>,
        record: ConsumerRecord,
        ctx: RecordContext,
    ) -> RouteFuture;
}

struct TypedRoute<E> {
    handler: Arc<dyn Handler<E>>,
}

/// The codec for `record`: Avro when `content-type` says so (or, without one, when the value
/// starts with the Confluent magic byte), JSON otherwise.
fn is_avro(record: &ConsumerRecord) -> bool {
    let headers = record
        .headers
        .iter()
        .map(|h| (h.key.as_ref(), h.value.as_deref()));
    match cloudevents::content_type(headers) {
        Ok(Some(ct)) => ct.eq_ignore_ascii_case(AVRO_CONTENT_TYPE.as_bytes()),
        _ => record.value.as_ref().is_some_and(|v| v.first() == Some(&0)),
    }
}

pub(crate) async fn decode<E>(
    codecs: &Codecs,
    record: &ConsumerRecord,
) -> Result<crate::Event<E>, EventsError>
where
    E: EventPayload + DeserializeOwned,
{
    if is_avro(record) {
        match &codecs.avro {
            Some(avro) => avro.decode(record).await,
            None => Err(EventsError::configuration(
                "schema.registry.url",
                format!(
                    "{}-{}@{} is Avro and the consumer has no schema registry",
                    record.topic, record.partition, record.offset
                ),
            )),
        }
    } else {
        codecs.json.decode(record).await
    }
}

impl<E> Route for TypedRoute<E>
where
    E: EventPayload + DeserializeOwned,
{
    fn call(
        self: Arc<Self>,
        codecs: Arc<Codecs>,
        record: ConsumerRecord,
        mut ctx: RecordContext,
    ) -> RouteFuture {
        Box::pin(async move {
            let event = match decode::<E>(&codecs, &record).await {
                Ok(event) => event,
                // A registry that is down may come back: retry, do not dead-letter.
                Err(e) if e.is_retriable() => {
                    return RouteOutcome::Failed(HandlerError::retriable(e));
                }
                Err(e) => return RouteOutcome::Decode(e),
            };
            ctx.envelope = Some(event.envelope.clone());
            match self.handler.handle(event, ctx).await {
                Ok(()) => RouteOutcome::Done { handled: true },
                Err(e) => RouteOutcome::Failed(e),
            }
        })
    }
}

struct DefaultRoute {
    handler: Arc<dyn DefaultHandler>,
}

/// Handlers by event type, and the default one.
#[derive(Clone, Default)]
pub(crate) struct Router {
    routes: HashMap<String, Arc<dyn Route>>,
    default: Option<Arc<DefaultRoute>>,
}

impl Router {
    pub(crate) fn add<E>(&mut self, handler: Arc<dyn Handler<E>>) -> Result<(), EventsError>
    where
        E: EventPayload + DeserializeOwned,
    {
        let route: Arc<dyn Route> = Arc::new(TypedRoute { handler });
        if self
            .routes
            .insert(E::EVENT_TYPE.to_owned(), route)
            .is_some()
        {
            return Err(EventsError::configuration(
                "handlers",
                format!("two handlers for event type {}", E::EVENT_TYPE),
            ));
        }
        Ok(())
    }

    pub(crate) fn set_default(&mut self, handler: Arc<dyn DefaultHandler>) {
        self.default = Some(Arc::new(DefaultRoute { handler }));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.default.is_none()
    }

    /// The record's `ce_type` (read from the header, no decoding).
    pub(crate) fn event_type(record: &ConsumerRecord) -> Option<String> {
        record
            .header(cloudevents::names::TYPE)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    }

    /// Runs the record's handler (decoding only for a typed route).
    pub(crate) fn dispatch(
        &self,
        codecs: Arc<Codecs>,
        record: ConsumerRecord,
        ctx: RecordContext,
    ) -> RouteFuture {
        let event_type = Self::event_type(&record);
        if let Some(route) = event_type.as_deref().and_then(|t| self.routes.get(t)) {
            return route.clone().call(codecs, record, ctx);
        }
        let Some(default) = self.default.clone() else {
            return Box::pin(async { RouteOutcome::Done { handled: false } });
        };
        Box::pin(async move {
            let mut ctx = ctx;
            ctx.envelope = cloudevents::envelope_of(&record.headers, record.value.as_deref()).ok();
            let unhandled = UnhandledRecord {
                event_type,
                value: record.value.clone(),
            };
            match default.handler.handle(unhandled, ctx).await {
                Ok(()) => RouteOutcome::Done { handled: true },
                Err(e) => RouteOutcome::Failed(e),
            }
        })
    }
}
