//! Avro payloads in the Confluent wire format, with schemas from the registry.

use std::any::TypeId;
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

use apache_avro::error::Details;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema as AvroSchema;
use bytes::{BufMut, Bytes, BytesMut};
use kafkit::consumer::ConsumerRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::Event;
use crate::error::{DecodeErrorKind, EventsError, RawRecord};
use crate::format::record::{decode_envelope, encode_envelope, is_structured, value_of};
use crate::format::{datum_writers, in_order};
use crate::format::{key_bytes, EncodedEvent, EventCodec, SerdeConfig, AVRO_CONTENT_TYPE};
use crate::registry::{RegistryError, Schema, SchemaRegistry};
use crate::typed::{AvroSchemaSource, EventPayload};
use crate::wire_format::{self, SchemaId};

/// Parsed writer schemas kept per codec before the cache is cleared (a bound, not a tuning knob).
const MAX_CACHED_SCHEMAS: usize = 1000;

/// Fixes apache-avro's process-wide decoding allocation cap to `bytes`.
///
/// apache-avro reads the cap once and keeps it for the life of the process, so the first call
/// (here or by apache-avro itself on its first decode, with its 512 MiB default) wins. Asking for
/// another value afterwards is refused with a configuration error naming
/// `avro.max.allocation.bytes`, so a cap that is accepted is a cap that holds.
pub fn set_max_allocation_bytes(bytes: usize) -> Result<(), EventsError> {
    let effective = apache_avro::util::max_allocation_bytes(bytes);
    if effective != bytes {
        return Err(EventsError::configuration(
            "avro.max.allocation.bytes",
            format!(
                "{bytes} asked, but this process's Avro cap is already fixed at {effective} \
                 (apache-avro keeps one cap per process)"
            ),
        ));
    }
    Ok(())
}

fn avro_error_kind(e: apache_avro::Error) -> DecodeErrorKind {
    match e.into_details() {
        Details::MemoryAllocation { desired, maximum } => {
            DecodeErrorKind::AllocationLimit { desired, maximum }
        }
        other => DecodeErrorKind::Payload(other.to_string()),
    }
}

/// Decodes one Avro datum written with `writer` and, when `reader` is given, resolves it to the
/// reader's schema (Avro schema resolution: added fields take their defaults, promotions apply).
///
/// Pure and bounded: every length in `payload` is checked against the allocation cap
/// ([`set_max_allocation_bytes`]) before anything is reserved, so a hostile length is
/// [`DecodeErrorKind::AllocationLimit`], never an abort; bytes left after the datum are
/// [`DecodeErrorKind::TrailingBytes`].
pub fn decode_avro_datum(
    writer: &AvroSchema,
    reader: Option<&AvroSchema>,
    payload: &[u8],
) -> Result<Value, DecodeErrorKind> {
    let datum_reader = GenericDatumReader::builder(writer)
        .build()
        .map_err(|e| DecodeErrorKind::Schema(e.to_string()))?;
    let mut cursor = Cursor::new(payload);
    let value = datum_reader
        .read_value(&mut cursor)
        .map_err(avro_error_kind)?;
    let read = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
    if read < payload.len() {
        return Err(DecodeErrorKind::TrailingBytes(payload.len() - read));
    }
    match reader {
        None => Ok(value),
        Some(reader) => value.resolve(reader).map_err(|e| {
            DecodeErrorKind::Schema(format!(
                "writer's data does not resolve to the reader's schema: {e}"
            ))
        }),
    }
}

/// The writer side learnt for one (type, topic): the schema id, the schema to write with and
/// its datum writer (shared per process, see [`datum_writers`]; `None` past their bound), and
/// whether the type's fields come in the schema's order ([`in_order::InOrderHint`]).
#[derive(Clone)]
struct Writer {
    id: u32,
    schema: Arc<AvroSchema>,
    datum: Option<&'static GenericDatumWriter<'static>>,
    in_order: in_order::InOrderHint,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("id", &self.id)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Caches {
    /// By type, then topic (looked up without allocating a key).
    writers: HashMap<TypeId, HashMap<String, Writer>>,
    readers: HashMap<TypeId, Arc<AvroSchema>>,
    by_id: HashMap<u32, Arc<AvroSchema>>,
    /// The writer found last, by (type, topic): a run of events of one type to one topic
    /// finds it by comparing, without hashing either key.
    last: Option<(TypeId, String, Writer)>,
}

/// The Avro codec: payloads as Avro binary in the Confluent wire format (`0x00`, the schema id
/// as a big-endian `u32`, the datum), `content-type: application/avro`.
///
/// Encoding finds the schema id once per (type, topic) by [`SerdeConfig`]: a fixed
/// `use.schema.id`, else the subject's latest version (`use.latest.version`), else it registers
/// the type's schema (`auto.register.schemas`, the default), else it looks the schema up. The
/// subject comes from `value.subject.name.strategy`.
///
/// Decoding reads the schema id from the `__value_schema_id` header or the frame, fetches the
/// writer's schema from the registry (parsed schemas are cached by id), decodes with it under the
/// allocation cap, resolves to the reader type's schema ([`EventPayload::avro_schema`]) and
/// deserializes. Every failure keeps the raw record.
///
/// ```
/// use apache_avro::AvroSchema;
/// use kafkit_events::envelope::Event;
/// use kafkit_events::format::{AvroCodec, EventCodec, SerdeConfig};
/// use kafkit_events::registry::SchemaRegistry;
/// use kafkit_events::typed::{AvroSchemaSource, EventPayload};
///
/// #[derive(serde::Serialize, serde::Deserialize, AvroSchema, Debug, PartialEq)]
/// #[avro(namespace = "shop")]
/// struct OrderPlaced { order_id: String, total_cents: i64 }
///
/// impl EventPayload for OrderPlaced {
///     const EVENT_TYPE: &'static str = "shop.order.placed";
///     fn key(&self) -> Option<String> { Some(self.order_id.clone()) }
///     fn avro_schema() -> Option<AvroSchemaSource> { Some(AvroSchemaSource::of::<Self>()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let codec = AvroCodec::new(SchemaRegistry::in_memory(), SerdeConfig::default())?;
/// let event = Event::new(OrderPlaced { order_id: "o-1".into(), total_cents: 1250 })
///     .with_source("orders-service", None);
/// let encoded = codec.encode("shop.orders", &event).await?;
/// assert_eq!(encoded.value[0], 0); // the Confluent magic byte, then the schema id
/// # Ok::<(), kafkit_events::error::EventsError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct AvroCodec {
    registry: SchemaRegistry,
    config: SerdeConfig,
    caches: Arc<Mutex<Caches>>,
}

impl AvroCodec {
    /// An Avro codec over `registry`. Fails when `config` is inconsistent
    /// ([`SerdeConfig::validate`]) or its allocation cap cannot be applied
    /// ([`set_max_allocation_bytes`]).
    pub fn new(registry: SchemaRegistry, config: SerdeConfig) -> Result<Self, EventsError> {
        config.validate()?;
        set_max_allocation_bytes(config.max_allocation_bytes)?;
        Ok(AvroCodec {
            registry,
            config,
            caches: Arc::default(),
        })
    }

    /// The registry this codec asks.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    fn caches(&self) -> MutexGuard<'_, Caches> {
        // Each cache update is one insert: a poisoned lock still guards consistent maps.
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The type's own schema, parsed once.
    fn own_schema<T: EventPayload>(
        &self,
    ) -> Result<(Arc<AvroSchema>, AvroSchemaSource), EventsError> {
        let source = T::avro_schema().ok_or_else(|| {
            EventsError::configuration(
                format!("avro schema of {}", T::EVENT_TYPE),
                "the type has no Avro schema (EventPayload::avro_schema)",
            )
        })?;
        if let Some(s) = self.caches().readers.get(&TypeId::of::<T>()) {
            return Ok((s.clone(), source));
        }
        let parsed = Arc::new(source.parse()?);
        self.caches()
            .readers
            .insert(TypeId::of::<T>(), parsed.clone());
        Ok((parsed, source))
    }

    /// The writer (id, schema) for `T` on `topic`, asking the registry on first use.
    async fn writer<T: EventPayload>(&self, topic: &str) -> Result<Writer, EventsError> {
        {
            let mut caches = self.caches();
            let caches = &mut *caches;
            if let Some((ty, last_topic, w)) = &caches.last {
                if *ty == TypeId::of::<T>() && last_topic == topic {
                    return Ok(w.clone());
                }
            }
            if let Some(w) = caches
                .writers
                .get(&TypeId::of::<T>())
                .and_then(|by_topic| by_topic.get(topic))
            {
                caches.last = Some((TypeId::of::<T>(), topic.to_owned(), w.clone()));
                return Ok(w.clone());
            }
        }
        let (own, source) = self.own_schema::<T>()?;
        let record_name = own.name().map(|n| n.fullname(None));
        let subject = self
            .config
            .value_subject_name_strategy
            .subject(topic, record_name.as_deref(), false)
            .map_err(|e| registry_error(format!("subject for topic {topic}"), e))?;
        let text = match &source {
            AvroSchemaSource::Avsc(text) => (*text).to_owned(),
            _ => serde_json::to_string(&*own).map_err(|e| {
                EventsError::configuration(
                    format!("avro schema of {}", T::EVENT_TYPE),
                    e.to_string(),
                )
            })?,
        };
        let schema = Schema::avro(text);
        let (id, writer_schema) = if let Some(id) = self.config.use_schema_id {
            let found = self.writer_schema_by_id(id).await.map_err(|e| match e {
                SchemaFetch::Registry(e) => registry_error(format!("use.schema.id {id}"), e),
                SchemaFetch::Parse(m) => EventsError::configuration("use.schema.id", m),
            })?;
            (id, found)
        } else if self.config.use_latest_version {
            let latest =
                self.registry.latest(&subject).await.map_err(|e| {
                    registry_error(format!("latest version of subject {subject}"), e)
                })?;
            let parsed = parse_registered(&latest.schema).map_err(|m| {
                EventsError::configuration("use.latest.version", format!("subject {subject}: {m}"))
            })?;
            (latest.id, parsed)
        } else if self.config.auto_register_schemas {
            let id = self
                .registry
                .register(&subject, &schema)
                .await
                .map_err(|e| registry_error(format!("register under subject {subject}"), e))?;
            (id, own)
        } else {
            let found = self
                .registry
                .lookup(&subject, &schema)
                .await
                .map_err(|e| registry_error(format!("look up under subject {subject}"), e))?;
            (found.id, own)
        };
        let datum = datum_writers::datum_writer(&writer_schema).map_err(|e| {
            EventsError::configuration(
                format!("avro schema of {}", T::EVENT_TYPE),
                format!("schema id {id}: {e}"),
            )
        })?;
        let writer = Writer {
            id,
            schema: writer_schema,
            datum,
            in_order: in_order::InOrderHint::default(),
        };
        self.caches()
            .writers
            .entry(TypeId::of::<T>())
            .or_default()
            .insert(topic.to_owned(), writer.clone());
        Ok(writer)
    }

    /// The parsed schema of `id`, from the cache or the registry.
    async fn writer_schema_by_id(&self, id: u32) -> Result<Arc<AvroSchema>, SchemaFetch> {
        if let Some(s) = self.caches().by_id.get(&id) {
            return Ok(s.clone());
        }
        let registered = self
            .registry
            .schema_by_id(id)
            .await
            .map_err(SchemaFetch::Registry)?;
        let parsed = parse_registered(&registered.schema).map_err(SchemaFetch::Parse)?;
        let mut caches = self.caches();
        if caches.by_id.len() >= MAX_CACHED_SCHEMAS {
            caches.by_id.clear();
        }
        caches.by_id.insert(id, parsed.clone());
        Ok(parsed)
    }

    /// The payload of `event` as a Confluent-framed Avro datum (the record's value).
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
        let writer = self.writer::<T>(topic).await?;
        let serialization =
            |message: String, source: Option<apache_avro::Error>| EventsError::Serialization {
                topic: topic.to_owned(),
                event_type: event.envelope.event_type.clone(),
                message,
                source: source.map(|e| Box::new(e) as crate::error::BoxError),
            };
        let mut buf = if pooled {
            crate::arena::take(256)
        } else {
            BytesMut::with_capacity(256)
        };
        buf.extend_from_slice(&wire_format::prefix(writer.id));
        let written = match writer.datum {
            Some(datum) => in_order::write(
                datum,
                &writer.schema,
                &writer.in_order,
                &mut buf,
                &event.data,
            ),
            None => GenericDatumWriter::builder(&writer.schema)
                .build()
                .and_then(|datum| datum.write_ser(&mut (&mut buf).writer(), &event.data)),
        };
        let value = buf.split().freeze();
        if pooled {
            crate::arena::put_back(buf);
        }
        written.map_err(|e| {
            serialization(
                format!("payload does not fit schema id {}: {e}", writer.id),
                Some(e),
            )
        })?;
        Ok(value)
    }
}

enum SchemaFetch {
    Registry(RegistryError),
    Parse(String),
}

fn registry_error(context: String, source: RegistryError) -> EventsError {
    EventsError::Registry { context, source }
}

/// A registry schema parsed as Avro (references are not resolved: refused).
fn parse_registered(schema: &Schema) -> Result<Arc<AvroSchema>, String> {
    if schema.schema_type != crate::registry::SchemaType::Avro {
        return Err(format!("a {:?} schema, not Avro", schema.schema_type));
    }
    if !schema.references.is_empty() {
        return Err("schema references are not supported".to_owned());
    }
    AvroSchema::parse_str(&schema.schema)
        .map(Arc::new)
        .map_err(|e| format!("not a valid Avro schema: {e}"))
}

impl EventCodec for AvroCodec {
    fn content_type(&self) -> &'static str {
        AVRO_CONTENT_TYPE
    }

    async fn encode<T>(&self, topic: &str, event: &Event<T>) -> Result<EncodedEvent, EventsError>
    where
        T: EventPayload + Serialize,
    {
        Ok(EncodedEvent {
            key: key_bytes(event),
            value: self.encode_value(topic, event, false).await?,
            headers: encode_envelope(topic, event, AVRO_CONTENT_TYPE, None)?,
        })
    }

    async fn decode<T>(&self, record: &ConsumerRecord) -> Result<Event<T>, EventsError>
    where
        T: EventPayload + DeserializeOwned,
    {
        let raw = || RawRecord::from_consumer_record(record);
        let fail = |kind: DecodeErrorKind| EventsError::decode(raw(), kind);
        let value = value_of(record)?;
        if is_structured(record)? {
            return Err(fail(DecodeErrorKind::ContentType(
                "application/cloudevents+json (structured mode carries JSON, not Avro)".to_owned(),
            )));
        }
        let envelope = decode_envelope::<T>(record)?;
        let headers = record
            .headers
            .iter()
            .map(|h| (h.key.as_ref(), h.value.as_deref()));
        let (id, payload) =
            wire_format::locate(headers, value, false).map_err(|e| fail(e.into()))?;
        let id = match id {
            SchemaId::Id(id) => id,
            SchemaId::Guid(guid) => {
                return Err(fail(wire_format::FrameError::GuidNotSupported(guid).into()))
            }
        };
        let writer = self.writer_schema_by_id(id).await.map_err(|e| {
            fail(match e {
                SchemaFetch::Registry(e) if e.is_not_found() => {
                    DecodeErrorKind::UnknownSchemaId(id)
                }
                SchemaFetch::Registry(e) => DecodeErrorKind::Registry(e),
                SchemaFetch::Parse(m) => DecodeErrorKind::Schema(format!("schema id {id}: {m}")),
            })
        })?;
        let reader = match T::avro_schema() {
            Some(_) => Some(self.own_schema::<T>()?.0),
            None => None,
        };
        let datum = decode_avro_datum(&writer, reader.as_deref(), payload).map_err(fail)?;
        let data = apache_avro::from_value::<T>(&datum)
            .map_err(|e| fail(DecodeErrorKind::Type(e.to_string())))?;
        Ok(Event { envelope, data })
    }
}
