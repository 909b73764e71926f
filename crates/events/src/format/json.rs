//! JSON payloads, optionally validated against the type's JSON Schema.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes};
use kafkit::consumer::ConsumerRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cloudevents::{self, StructuredData};
use crate::envelope::Event;
use crate::error::{DecodeErrorKind, EventsError, RawRecord, ValidationIssue};
use crate::format::record::{
    check_type, decode_envelope, encode_envelope, header_error, is_structured, value_of,
};
use crate::format::{key_bytes, EncodedEvent, EventCodec, SerdeConfig, JSON_CONTENT_TYPE};
use crate::typed::EventPayload;
use crate::wire_format;

/// The JSON codec: payloads as JSON text (`content-type: application/json`).
///
/// When [`SerdeConfig::json_validate`] is on (the default) and the type has a JSON Schema
/// ([`EventPayload::json_schema`]), a payload that does not satisfy it is refused with
/// [`EventsError::SchemaValidation`] listing each violation's path — on encode, so it is never
/// sent, and on decode. Compiled schemas are cached per type.
///
/// Reading accepts plain JSON, JSON framed by a Confluent JSON serializer (magic byte and schema
/// id first, or the id in a `__value_schema_id` header; the id is not checked against a registry)
/// and CloudEvents structured mode (`application/cloudevents+json`, the payload in `data`).
///
/// ```
/// use kafkit_events::envelope::Event;
/// use kafkit_events::format::{EventCodec, JsonCodec, SerdeConfig};
/// use kafkit_events::typed::EventPayload;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Payment { amount: i64 }
/// impl EventPayload for Payment {
///     const EVENT_TYPE: &'static str = "shop.payment.made";
///     fn json_schema() -> Option<&'static str> {
///         Some(r#"{"type":"object","properties":{"amount":{"type":"integer","minimum":1}},"required":["amount"]}"#)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let codec = JsonCodec::new(SerdeConfig::default());
/// let ok = Event::new(Payment { amount: 5 }).with_source("shop", None);
/// let encoded = codec.encode("payments", &ok).await.unwrap();
/// assert_eq!(&encoded.value[..], br#"{"amount":5}"#);
/// let bad = Event::new(Payment { amount: 0 }).with_source("shop", None);
/// assert!(codec.encode("payments", &bad).await.is_err()); // refused before it is sent
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct JsonCodec {
    config: SerdeConfig,
    validators: Arc<Mutex<HashMap<TypeId, Arc<jsonschema::Validator>>>>,
}

impl JsonCodec {
    /// A JSON codec with `config` (only `json.fail.invalid.schema` matters to it).
    pub fn new(config: SerdeConfig) -> Self {
        JsonCodec {
            config,
            validators: Arc::default(),
        }
    }

    /// The compiled JSON Schema of `T`, if it has one and validation is on.
    fn validator<T: EventPayload>(
        &self,
    ) -> Result<Option<Arc<jsonschema::Validator>>, EventsError> {
        if !self.config.json_validate {
            return Ok(None);
        }
        let Some(text) = T::json_schema() else {
            return Ok(None);
        };
        let id = TypeId::of::<T>();
        if let Some(v) = self.lock().get(&id) {
            return Ok(Some(v.clone()));
        }
        let setting = || format!("json schema of {}", T::EVENT_TYPE);
        let schema: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| EventsError::configuration(setting(), format!("not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| EventsError::configuration(setting(), e.to_string()))?;
        let validator = Arc::new(validator);
        self.lock().insert(id, validator.clone());
        Ok(Some(validator))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Arc<jsonschema::Validator>>> {
        // A poisoned cache is still a valid cache (inserts are single operations).
        self.validators.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The payload of `event` as JSON (the record's value), validated first when the type has
    /// a JSON Schema.
    ///
    /// `pooled`: written into the thread's shared chunk ([`crate::arena`]; for records the
    /// producer sends and drops) instead of a buffer of its own.
    pub(crate) async fn encode_value<T>(
        &self,
        topic: &str,
        event: &Event<T>,
        pooled: bool,
    ) -> Result<Bytes, EventsError>
    where
        T: EventPayload + Serialize,
    {
        let serialization =
            |message: String, source: serde_json::Error| EventsError::Serialization {
                topic: topic.to_owned(),
                event_type: event.envelope.event_type.clone(),
                message,
                source: Some(Box::new(source)),
            };
        let value = match self.validator::<T>()? {
            None if pooled => {
                let mut buf = crate::arena::take(256);
                let written = serde_json::to_writer((&mut buf).writer(), &event.data);
                let value = buf.split().freeze();
                crate::arena::put_back(buf);
                written.map_err(|e| serialization(format!("payload to JSON: {e}"), e))?;
                return Ok(value);
            }
            None => {
                let mut value = Vec::with_capacity(256);
                serde_json::to_writer(&mut value, &event.data)
                    .map_err(|e| serialization(format!("payload to JSON: {e}"), e))?;
                value
            }
            Some(validator) => {
                let json = serde_json::to_value(&event.data)
                    .map_err(|e| serialization(format!("payload to JSON: {e}"), e))?;
                let issues = violations(&validator, &json);
                if !issues.is_empty() {
                    return Err(EventsError::SchemaValidation {
                        topic: topic.to_owned(),
                        event_type: event.envelope.event_type.clone(),
                        issues,
                        record: None,
                    });
                }
                serde_json::to_vec(&json)
                    .map_err(|e| serialization(format!("payload to JSON: {e}"), e))?
            }
        };
        Ok(Bytes::from(value))
    }
}

/// The violations of `instance` against `validator` (empty when valid).
fn violations(
    validator: &jsonschema::Validator,
    instance: &serde_json::Value,
) -> Vec<ValidationIssue> {
    validator
        .iter_errors(instance)
        .map(|e| ValidationIssue {
            instance_path: e.instance_path().to_string(),
            schema_path: e.schema_path().to_string(),
            message: e.to_string(),
        })
        .collect()
}

impl EventCodec for JsonCodec {
    fn content_type(&self) -> &'static str {
        JSON_CONTENT_TYPE
    }

    async fn encode<T>(&self, topic: &str, event: &Event<T>) -> Result<EncodedEvent, EventsError>
    where
        T: EventPayload + Serialize,
    {
        Ok(EncodedEvent {
            key: key_bytes(event),
            value: self.encode_value(topic, event, false).await?,
            headers: encode_envelope(topic, event, JSON_CONTENT_TYPE, None)?,
        })
    }

    async fn decode<T>(&self, record: &ConsumerRecord) -> Result<Event<T>, EventsError>
    where
        T: EventPayload + DeserializeOwned,
    {
        let raw = || RawRecord::from_consumer_record(record);
        let value = value_of(record)?;
        let (envelope, json) = if is_structured(record)? {
            let (envelope, data) =
                cloudevents::decode_structured(value).map_err(|e| header_error(record, e))?;
            let envelope = check_type::<T>(record, envelope)?;
            let json = match data {
                StructuredData::Json(json) => json,
                StructuredData::None => serde_json::Value::Null,
                _ => {
                    return Err(EventsError::decode(
                        raw(),
                        DecodeErrorKind::Json("data_base64 is not JSON data".to_owned()),
                    ))
                }
            };
            (envelope, json)
        } else {
            let envelope = decode_envelope::<T>(record)?;
            let headers = record
                .headers
                .iter()
                .map(|h| (h.key.as_ref(), h.value.as_deref()));
            // JSON text never starts with 0x00 or 0x01: such a value is Confluent-framed.
            let has_id_header = record
                .headers
                .iter()
                .any(|h| h.key.as_ref() == wire_format::VALUE_SCHEMA_ID_HEADER.as_bytes());
            let payload: &[u8] = if has_id_header || matches!(value.first(), Some(0 | 1)) {
                wire_format::locate(headers, value, false)
                    .map_err(|e| EventsError::decode(raw(), DecodeErrorKind::Frame(e)))?
                    .1
            } else {
                value
            };
            let json: serde_json::Value = serde_json::from_slice(payload)
                .map_err(|e| EventsError::decode(raw(), DecodeErrorKind::Json(e.to_string())))?;
            (envelope, json)
        };
        if let Some(validator) = self.validator::<T>()? {
            let issues = violations(&validator, &json);
            if !issues.is_empty() {
                return Err(EventsError::SchemaValidation {
                    topic: record.topic.to_string(),
                    event_type: T::EVENT_TYPE.to_owned(),
                    issues,
                    record: Some(Box::new(raw())),
                });
            }
        }
        let data = serde_json::from_value::<T>(json)
            .map_err(|e| EventsError::decode(raw(), DecodeErrorKind::Json(e.to_string())))?;
        Ok(Event { envelope, data })
    }
}
