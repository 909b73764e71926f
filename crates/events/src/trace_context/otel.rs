//! The bridge to OpenTelemetry through `tracing-opentelemetry` (feature `opentelemetry`).

use bytes::Bytes;
use kafkit::producer::HeaderName;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState as OtelTraceState,
};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{extract, inject, TraceContext, TraceContextError, TraceParent, TraceState};

/// Writes the current `tracing` span's OpenTelemetry context into `headers` as `traceparent`
/// (and `tracestate`), replacing any there. Returns whether a context was written: `false` when
/// the current span has no valid OpenTelemetry context (no subscriber layer, or no span).
pub fn inject_current(headers: &mut Vec<(HeaderName, Option<Bytes>)>) -> bool {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return false;
    }
    let Some(parent) = TraceParent::new(
        sc.trace_id().to_bytes(),
        sc.span_id().to_bytes(),
        sc.trace_flags().to_u8(),
    ) else {
        return false;
    };
    let state = sc
        .trace_state()
        .header()
        .parse::<TraceState>()
        .unwrap_or_default();
    inject(headers, &TraceContext { parent, state });
    true
}

/// Makes `span` a child of the trace context carried by a record's headers. `Ok(false)` when
/// the headers carry none; an error for a malformed `traceparent`.
pub fn set_parent_from_headers<'a, I>(
    span: &tracing::Span,
    headers: I,
) -> Result<bool, TraceContextError>
where
    I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    let Some(cx) = extract(headers)? else {
        return Ok(false);
    };
    let state = OtelTraceState::from_key_value(
        cx.state
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .unwrap_or_default();
    let sc = SpanContext::new(
        TraceId::from_bytes(cx.parent.trace_id),
        SpanId::from_bytes(cx.parent.parent_id),
        TraceFlags::new(cx.parent.flags),
        true,
        state,
    );
    Ok(span
        .set_parent(Context::new().with_remote_span_context(sc))
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    fn pairs(headers: &[(HeaderName, Option<Bytes>)]) -> Vec<(&[u8], Option<&[u8]>)> {
        headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_deref()))
            .collect()
    }

    #[test]
    fn the_current_span_goes_into_headers_and_a_consumer_span_continues_it() {
        let provider = SdkTracerProvider::builder().build();
        let tracer = provider.tracer("kafkit-events-test");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::with_default(subscriber, || {
            // No span: nothing to inject.
            let mut headers = Vec::new();
            assert!(!inject_current(&mut headers));
            assert!(headers.is_empty());

            let send = tracing::info_span!("send orders");
            let _entered = send.enter();
            let producer = send.context().span().span_context().clone();
            assert!(producer.is_valid());
            let mut headers = vec![(
                super::super::TRACEPARENT.into(),
                Some(Bytes::from_static(b"stale")),
            )];
            assert!(inject_current(&mut headers));
            assert_eq!(headers.len(), 1, "replaced, not appended: {headers:?}");
            let carried = extract(pairs(&headers)).unwrap().unwrap();
            assert_eq!(carried.parent.trace_id, producer.trace_id().to_bytes());
            assert_eq!(carried.parent.parent_id, producer.span_id().to_bytes());

            let process = tracing::info_span!(parent: None, "process orders");
            assert_eq!(set_parent_from_headers(&process, pairs(&headers)), Ok(true));
            let consumer = process.context().span().span_context().clone();
            assert_eq!(consumer.trace_id(), producer.trace_id());
            assert_ne!(consumer.span_id(), producer.span_id());
            assert_eq!(set_parent_from_headers(&process, pairs(&[])), Ok(false));
        });
    }
}
