//! The registry's nouns: schemas, their types and references, registered versions, and
//! compatibility levels, with the names the Confluent REST API uses on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::RegistryError;

/// The kind of a schema (`schemaType` on the wire; absent means Avro).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SchemaType {
    /// Apache Avro (`AVRO`), the registry's default.
    #[default]
    Avro,
    /// JSON Schema (`JSON`).
    Json,
    /// Protocol Buffers (`PROTOBUF`).
    Protobuf,
}

impl SchemaType {
    /// The wire name: `AVRO`, `JSON` or `PROTOBUF`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchemaType {
    type Err = RegistryError;

    /// Parses a wire name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            _ => Err(RegistryError::InvalidResponse {
                message: format!("unknown schema type `{s}`"),
            }),
        }
    }
}

/// A named reference from one schema to a schema registered under another subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referring schema uses (an Avro full name, a JSON `$ref`, a proto import).
    pub name: String,
    /// The subject the referenced schema is registered under.
    pub subject: String,
    /// The referenced version of that subject.
    pub version: i32,
}

/// A schema's text, its type and its references, as sent to the registry.
///
/// ```
/// use kafkit_events::registry::{Schema, SchemaType};
/// let schema = Schema::avro(r#"{"type":"record","name":"Ping","fields":[]}"#);
/// assert_eq!(schema.schema_type, SchemaType::Avro);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    /// The schema's language.
    pub schema_type: SchemaType,
    /// The schema text (Avro JSON, a JSON Schema document, or a `.proto` file).
    pub schema: String,
    /// Schemas this one refers to.
    pub references: Vec<SchemaReference>,
}

impl Schema {
    /// A schema of `schema_type` with no references.
    pub fn new(schema_type: SchemaType, schema: impl Into<String>) -> Self {
        Schema {
            schema_type,
            schema: schema.into(),
            references: Vec::new(),
        }
    }

    /// An Avro schema (JSON text, e.g. the contents of an `.avsc` file).
    pub fn avro(schema: impl Into<String>) -> Self {
        Schema::new(SchemaType::Avro, schema)
    }

    /// A JSON Schema document.
    pub fn json(schema: impl Into<String>) -> Self {
        Schema::new(SchemaType::Json, schema)
    }

    /// A Protocol Buffers schema (`.proto` text).
    pub fn protobuf(schema: impl Into<String>) -> Self {
        Schema::new(SchemaType::Protobuf, schema)
    }

    /// Adds references.
    pub fn with_references(mut self, references: Vec<SchemaReference>) -> Self {
        self.references = references;
        self
    }

    /// A form that is equal for two texts of the same schema, used to compare what the
    /// registry returns with what was sent (Apicurio returns schemas compacted): Avro's Parsing
    /// Canonical Form when the schema parses on its own, otherwise compact JSON when the text is
    /// JSON, otherwise the trimmed text.
    pub fn canonical(&self) -> String {
        if self.schema_type == SchemaType::Avro {
            if let Ok(parsed) = apache_avro::Schema::parse_str(&self.schema) {
                return parsed.canonical_form();
            }
        }
        if self.schema_type != SchemaType::Protobuf {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&self.schema) {
                return value.to_string();
            }
        }
        self.schema.trim().to_owned()
    }

    /// Whether `self` and `other` are the same schema: same type, same references, and the same
    /// [`canonical`](Schema::canonical) form.
    pub fn same_as(&self, other: &Schema) -> bool {
        self.schema_type == other.schema_type
            && self.references == other.references
            && (self.schema == other.schema || self.canonical() == other.canonical())
    }
}

/// A schema as the registry holds it: its global id and, when asked through a subject, the
/// subject and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// The registry-wide schema id (Confluent's `id`; Apicurio's `contentId`), written in the
    /// Confluent wire format's 4-byte prefix.
    pub id: u32,
    /// The subject, when the schema was looked up through one.
    pub subject: Option<String>,
    /// The version under that subject, when known.
    pub version: Option<i32>,
    /// The schema itself (as the registry returns it: possibly compacted).
    pub schema: Schema,
}

/// A compatibility level: which evolutions a subject accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compatibility {
    /// A new schema can read data written with the latest one (`BACKWARD`, Confluent's default).
    Backward,
    /// A new schema can read data written with every earlier one.
    BackwardTransitive,
    /// The latest schema can read data written with a new one.
    Forward,
    /// Every earlier schema can read data written with a new one.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
    /// No check (`NONE`, Apicurio's default).
    None,
}

impl Compatibility {
    /// The wire name, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
            Compatibility::None => "NONE",
        }
    }

    /// Whether a new schema must be able to read data of older ones.
    pub fn checks_backward(self) -> bool {
        matches!(
            self,
            Compatibility::Backward
                | Compatibility::BackwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    /// Whether older schemas must be able to read data of a new one.
    pub fn checks_forward(self) -> bool {
        matches!(
            self,
            Compatibility::Forward
                | Compatibility::ForwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    /// Whether the check covers every earlier version, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compatibility {
    type Err = RegistryError;

    /// Parses a wire name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "BACKWARD" => Compatibility::Backward,
            "BACKWARD_TRANSITIVE" => Compatibility::BackwardTransitive,
            "FORWARD" => Compatibility::Forward,
            "FORWARD_TRANSITIVE" => Compatibility::ForwardTransitive,
            "FULL" => Compatibility::Full,
            "FULL_TRANSITIVE" => Compatibility::FullTransitive,
            "NONE" => Compatibility::None,
            _ => {
                return Err(RegistryError::InvalidResponse {
                    message: format!("unknown compatibility level `{s}`"),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_equal_for_compacted_avro() {
        let pretty = Schema::avro(
            "{\n  \"type\": \"record\", \"name\": \"P\", \"namespace\": \"a.b\",\n  \"doc\": \"x\",\n  \"fields\": [ {\"name\": \"n\", \"type\": \"int\"} ]\n}",
        );
        let compact = Schema::avro(
            r#"{"type":"record","name":"a.b.P","fields":[{"name":"n","type":"int"}]}"#,
        );
        assert!(pretty.same_as(&compact));
        let other = Schema::avro(
            r#"{"type":"record","name":"a.b.P","fields":[{"name":"n","type":"long"}]}"#,
        );
        assert!(!pretty.same_as(&other));
    }

    #[test]
    fn names_round_trip() {
        for c in [
            Compatibility::Backward,
            Compatibility::BackwardTransitive,
            Compatibility::Forward,
            Compatibility::ForwardTransitive,
            Compatibility::Full,
            Compatibility::FullTransitive,
            Compatibility::None,
        ] {
            assert_eq!(
                c.as_str().to_lowercase().parse::<Compatibility>().ok(),
                Some(c)
            );
        }
        assert!("SIDEWAYS".parse::<Compatibility>().is_err());
        assert_eq!("json".parse::<SchemaType>().ok(), Some(SchemaType::Json));
    }
}
