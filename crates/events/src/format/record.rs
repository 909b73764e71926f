//! What both codecs do around the payload: the envelope to headers on the way out, and the
//! envelope from a record (checked against the type asked for) on the way in.

use bytes::Bytes;
use kafkit::consumer::ConsumerRecord;
use kafkit::producer::HeaderName;

use kafkit::producer::HeaderBlock;

use crate::cloudevents::{self, DefaultSource, Encoding, HeaderError};
use crate::envelope::{Envelope, Event};
use crate::error::{DecodeErrorKind, EventsError, RawRecord};
use crate::typed::EventPayload;

/// The headers of `event` with `content-type` set to `content_type`, the event type written
/// without copying when it is `T`'s, and `ce_source` / `ce_sourceversion` from
/// `default_source` when the envelope names no source.
pub(crate) fn encode_envelope<T: EventPayload>(
    topic: &str,
    event: &Event<T>,
    content_type: &'static str,
    default_source: Option<&DefaultSource>,
) -> Result<Vec<(HeaderName, Option<Bytes>)>, EventsError> {
    let encoding = Encoding {
        content_type: Some(content_type),
        static_type: Some(T::EVENT_TYPE),
        default_source,
        // The producer's records (the only caller with a default source) are dropped once
        // acknowledged: their values may share a chunk.
        pooled: default_source.is_some(),
        in_block: false,
    };
    let mut headers = Vec::new();
    cloudevents::encode_headers_with(&event.envelope, &encoding, &mut headers)
        .map(|()| headers)
        .map_err(|e| EventsError::Serialization {
            topic: topic.to_owned(),
            event_type: event.envelope.event_type.clone(),
            message: format!("envelope: {e}"),
            source: Some(Box::new(e)),
        })
}

/// A record's own header list.
type Headers = Vec<(HeaderName, Option<Bytes>)>;

/// The producer's headers of `event`: like [`encode_envelope`] with `source` as the default
/// source, and when the event's source, version and type are the default ones, its constant
/// headers as `source`'s shared block (encoded once per event type; see
/// [`DefaultSource::block`]) and only the others in the list.
pub(crate) fn encode_envelope_with_block<T: EventPayload>(
    topic: &str,
    event: &Event<T>,
    content_type: &'static str,
    source: &DefaultSource,
) -> Result<(Headers, Option<HeaderBlock>), EventsError> {
    let mut encoding = Encoding {
        content_type: Some(content_type),
        static_type: Some(T::EVENT_TYPE),
        default_source: Some(source),
        pooled: true,
        in_block: false,
    };
    let block = cloudevents::block_applies(&event.envelope, &encoding)
        .then(|| source.block(T::EVENT_TYPE, content_type))
        .flatten();
    encoding.in_block = block.is_some();
    let mut headers = Vec::new();
    cloudevents::encode_headers_with(&event.envelope, &encoding, &mut headers)
        .map(|()| (headers, block))
        .map_err(|e| EventsError::Serialization {
            topic: topic.to_owned(),
            event_type: event.envelope.event_type.clone(),
            message: format!("envelope: {e}"),
            source: Some(Box::new(e)),
        })
}

/// Whether any header is a CloudEvents attribute (`ce_*`).
fn has_cloudevents_headers(record: &ConsumerRecord) -> bool {
    record.headers.iter().any(|h| h.key.starts_with(b"ce_"))
}

/// The envelope of a record to be decoded as `T`, in binary mode (the codecs read structured
/// mode themselves).
///
/// A record with no CloudEvents header at all (written by a plain Confluent serializer) gets an
/// envelope made from the record: id `<topic>/<partition>/<offset>`, type `T::EVENT_TYPE`,
/// source `kafka:<topic>`, time the record's timestamp. A record with CloudEvents headers must be
/// of type `T::EVENT_TYPE`.
pub(crate) fn decode_envelope<T: EventPayload>(
    record: &ConsumerRecord,
) -> Result<Envelope, EventsError> {
    let raw = || RawRecord::from_consumer_record(record);
    if !has_cloudevents_headers(record) {
        let mut envelope = Envelope::new(T::EVENT_TYPE)
            .with_id(format!(
                "{}/{}/{}",
                record.topic, record.partition, record.offset
            ))
            .with_source(format!("kafka:{}", record.topic), None);
        envelope.time = (record.timestamp >= 0).then_some(record.timestamp);
        envelope.data_content_type = cloudevents::content_type(
            record
                .headers
                .iter()
                .map(|h| (h.key.as_ref(), h.value.as_deref())),
        )
        .ok()
        .flatten()
        .and_then(|ct| std::str::from_utf8(ct).ok())
        .map(str::to_owned);
        return Ok(envelope);
    }
    let envelope = cloudevents::decode_headers(&record.headers)
        .map_err(|e| EventsError::decode(raw(), DecodeErrorKind::Headers(e)))?;
    check_type::<T>(record, envelope)
}

/// `envelope` if it is of type `T::EVENT_TYPE`, else a decode error.
pub(crate) fn check_type<T: EventPayload>(
    record: &ConsumerRecord,
    envelope: Envelope,
) -> Result<Envelope, EventsError> {
    if envelope.event_type != T::EVENT_TYPE {
        return Err(EventsError::decode(
            RawRecord::from_consumer_record(record),
            DecodeErrorKind::EventTypeMismatch {
                expected: T::EVENT_TYPE.to_owned(),
                found: envelope.event_type,
            },
        ));
    }
    Ok(envelope)
}

/// The record's value, or a decode error for a tombstone.
pub(crate) fn value_of(record: &ConsumerRecord) -> Result<&Bytes, EventsError> {
    record.value.as_ref().ok_or_else(|| {
        EventsError::decode(
            RawRecord::from_consumer_record(record),
            DecodeErrorKind::NullValue,
        )
    })
}

/// Whether the record is a structured-mode CloudEvent (its `content-type`), or an error for a
/// duplicated / null `content-type`.
pub(crate) fn is_structured(record: &ConsumerRecord) -> Result<bool, EventsError> {
    match cloudevents::content_type(
        record
            .headers
            .iter()
            .map(|h| (h.key.as_ref(), h.value.as_deref())),
    ) {
        Ok(ct) => Ok(ct.is_some_and(cloudevents::is_structured_json)),
        Err(e) => Err(EventsError::decode(
            RawRecord::from_consumer_record(record),
            DecodeErrorKind::Headers(e),
        )),
    }
}

/// A header error on `record`.
pub(crate) fn header_error(record: &ConsumerRecord, e: HeaderError) -> EventsError {
    EventsError::decode(
        RawRecord::from_consumer_record(record),
        DecodeErrorKind::Headers(e),
    )
}
