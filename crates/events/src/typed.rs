//! Tying a payload type to its event type, topic, key and schema.
//!
//! ```
//! use apache_avro::AvroSchema;
//! use kafkit_events::typed::{AvroSchemaSource, EventPayload};
//!
//! #[derive(serde::Serialize, serde::Deserialize, AvroSchema)]
//! #[avro(namespace = "com.example.hr")]
//! struct EmployeeCreated {
//!     employee_id: String,
//!     department: String,
//! }
//!
//! impl EventPayload for EmployeeCreated {
//!     const EVENT_TYPE: &'static str = "hr.employee.created";
//!     const SCHEMA_VERSION: Option<&'static str> = Some("1");
//!     fn default_topic() -> Option<&'static str> { Some("hr.employees") }
//!     fn key(&self) -> Option<String> { Some(self.employee_id.clone()) }
//!     fn avro_schema() -> Option<AvroSchemaSource> { Some(AvroSchemaSource::of::<Self>()) }
//! }
//!
//! let schema = EmployeeCreated::avro_schema().map(|s| s.parse());
//! assert!(matches!(schema, Some(Ok(_))));
//! ```

use apache_avro::{AvroSchema, Schema};

use crate::error::EventsError;

/// A payload type: its event type name, where it goes by default, its key, and its schemas.
///
/// The codecs ([`crate::format`]) use the Avro schema (Avro) or the JSON Schema (JSON, when
/// validation is on); a type without the schema a codec needs is refused by that codec with a
/// typed configuration error.
pub trait EventPayload: Send + Sync + 'static {
    /// The event type name (`ce_type`), dotted: `hr.employee.created`.
    const EVENT_TYPE: &'static str;

    /// The payload's schema version, written as `ce_schemaversion` (none by default).
    const SCHEMA_VERSION: Option<&'static str> = None;

    /// The topic events of this type go to when no topic is given (none by default).
    fn default_topic() -> Option<&'static str> {
        None
    }

    /// The record key: the id of the entity the event is about, so that one entity's events
    /// stay on one partition, in order. `None` (the default) sends a null key.
    fn key(&self) -> Option<String> {
        None
    }

    /// The Avro schema of the payload (none by default; the Avro codec needs one).
    fn avro_schema() -> Option<AvroSchemaSource> {
        None
    }

    /// The JSON Schema of the payload, as JSON text (none by default: no validation).
    fn json_schema() -> Option<&'static str> {
        None
    }
}

/// Where a payload's Avro schema comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AvroSchemaSource {
    /// A schema built in code, typically by `#[derive(apache_avro::AvroSchema)]`.
    Schema(Schema),
    /// The text of an `.avsc` file (for example `include_str!("order.avsc")`).
    Avsc(&'static str),
}

impl AvroSchemaSource {
    /// The schema derived for `T` (`#[derive(AvroSchema)]`).
    pub fn of<T: AvroSchema>() -> Self {
        AvroSchemaSource::Schema(T::get_schema())
    }

    /// The schema in `text` (the contents of an `.avsc` file).
    pub fn avsc(text: &'static str) -> Self {
        AvroSchemaSource::Avsc(text)
    }

    /// The parsed schema; a malformed `.avsc` is a configuration error naming the text's start.
    pub fn parse(&self) -> Result<Schema, EventsError> {
        match self {
            AvroSchemaSource::Schema(s) => Ok(s.clone()),
            AvroSchemaSource::Avsc(text) => Schema::parse_str(text).map_err(|e| {
                let start: String = text.chars().take(60).collect();
                EventsError::configuration("avro schema", format!("{e} (in {start:?}…)"))
            }),
        }
    }
}
