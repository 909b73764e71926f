//! The serializers' settings, by their Confluent property names.

use crate::error::EventsError;
use crate::registry::SubjectNameStrategy;

/// Default cap on one allocation while decoding Avro (`avro.max.allocation.bytes`): 64 MiB.
pub const DEFAULT_MAX_ALLOCATION_BYTES: usize = 64 * 1024 * 1024;

/// How the codecs find schema ids and validate payloads.
///
/// Each field names the Confluent property [`SerdeConfig::from_properties`] reads it from.
///
/// ```
/// use kafkit_events::format::SerdeConfig;
///
/// let config = SerdeConfig::from_properties([
///     ("auto.register.schemas", "false"),
///     ("use.latest.version", "true"),
/// ])
/// .unwrap();
/// assert!(config.use_latest_version);
/// // Python's serializers refuse both at once; so does kafkit.
/// assert!(SerdeConfig::from_properties([("use.latest.version", "true")]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SerdeConfig {
    /// `auto.register.schemas` (default `true`): register the type's schema under its subject on
    /// first use.
    pub auto_register_schemas: bool,
    /// `use.latest.version` (default `false`): write with the subject's latest schema (which the
    /// payload must fit) instead of the type's own. Refused together with auto-registration.
    pub use_latest_version: bool,
    /// `use.schema.id` (default `-1`, none): write with this fixed schema id; it wins over
    /// auto-registration. Refused together with `use.latest.version`.
    pub use_schema_id: Option<u32>,
    /// `json.fail.invalid.schema` (default `true`, as Python's `validate`; Java's default is
    /// `false`): refuse a JSON payload that does not satisfy its type's JSON Schema, before it is
    /// sent and when it is read.
    pub json_validate: bool,
    /// `avro.max.allocation.bytes` (default 64 MiB): the most one Avro length (string, bytes,
    /// array, map block) may ask for while decoding; above it decoding fails with a typed error.
    /// apache-avro keeps this cap process-wide and fixes it at first use: every codec of the
    /// process must ask for the same value (another is refused with a configuration error).
    pub max_allocation_bytes: usize,
    /// `key.subject.name.strategy` (default TopicName): the subject of key schemas. Keys are
    /// written as UTF-8 strings today, so this is read and checked but has no schema to name.
    pub key_subject_name_strategy: SubjectNameStrategy,
    /// `value.subject.name.strategy` (default TopicName, `<topic>-value`): the subject the
    /// value schema is registered or looked up under.
    pub value_subject_name_strategy: SubjectNameStrategy,
}

impl Default for SerdeConfig {
    fn default() -> Self {
        SerdeConfig {
            auto_register_schemas: true,
            use_latest_version: false,
            use_schema_id: None,
            json_validate: true,
            max_allocation_bytes: DEFAULT_MAX_ALLOCATION_BYTES,
            key_subject_name_strategy: SubjectNameStrategy::TopicName,
            value_subject_name_strategy: SubjectNameStrategy::TopicName,
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, EventsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(EventsError::configuration(
            key,
            format!("{value:?} is not true or false"),
        )),
    }
}

impl SerdeConfig {
    /// Reads the settings from Confluent property names; unknown names and bad values are
    /// configuration errors naming the property. Accepted: `auto.register.schemas`,
    /// `use.latest.version`, `use.schema.id`, `json.fail.invalid.schema`,
    /// `avro.max.allocation.bytes`, `key.subject.name.strategy`, `value.subject.name.strategy`
    /// (Confluent class names or short names), and — at their defaults only — `normalize.schemas=false`,
    /// `latest.compatibility.strict=true`.
    pub fn from_properties<'a, I>(properties: I) -> Result<Self, EventsError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut config = SerdeConfig::default();
        for (key, value) in properties {
            config.set(key, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets one property by its Confluent name (not validated across fields: see
    /// [`SerdeConfig::validate`]).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EventsError> {
        match key {
            "auto.register.schemas" => self.auto_register_schemas = parse_bool(key, value)?,
            "use.latest.version" => self.use_latest_version = parse_bool(key, value)?,
            "use.schema.id" => {
                let id: i64 = value.trim().parse().map_err(|_| {
                    EventsError::configuration(key, format!("{value:?} is not a number"))
                })?;
                self.use_schema_id = match id {
                    -1 => None,
                    id => Some(u32::try_from(id).map_err(|_| {
                        EventsError::configuration(key, format!("{id} is not -1 or a schema id"))
                    })?),
                };
            }
            "json.fail.invalid.schema" => self.json_validate = parse_bool(key, value)?,
            "avro.max.allocation.bytes" => {
                let n: usize = value.trim().parse().map_err(|_| {
                    EventsError::configuration(key, format!("{value:?} is not a byte count"))
                })?;
                if n == 0 {
                    return Err(EventsError::configuration(key, "must be at least 1"));
                }
                self.max_allocation_bytes = n;
            }
            "key.subject.name.strategy" | "value.subject.name.strategy" => {
                let strategy: SubjectNameStrategy = value
                    .parse()
                    .map_err(|e| EventsError::configuration(key, format!("{value:?}: {e}")))?;
                if key.starts_with("key.") {
                    self.key_subject_name_strategy = strategy;
                } else {
                    self.value_subject_name_strategy = strategy;
                }
            }
            "normalize.schemas" => {
                if parse_bool(key, value)? {
                    return Err(EventsError::configuration(
                        key,
                        "schema normalization is not supported (only false)",
                    ));
                }
            }
            "latest.compatibility.strict" => {
                if !parse_bool(key, value)? {
                    return Err(EventsError::configuration(
                        key,
                        "only true is supported (the latest schema must fit the payload)",
                    ));
                }
            }
            _ => {
                return Err(EventsError::configuration(
                    key,
                    "not a serializer property kafkit-events knows",
                ))
            }
        }
        Ok(())
    }

    /// Checks the rules across fields: `auto.register.schemas` and `use.latest.version` are not
    /// both true; `use.schema.id` is not combined with `use.latest.version`.
    pub fn validate(&self) -> Result<(), EventsError> {
        if self.auto_register_schemas && self.use_latest_version {
            return Err(EventsError::configuration(
                "use.latest.version",
                "cannot be true while auto.register.schemas is true",
            ));
        }
        if self.use_schema_id.is_some() && self.use_latest_version {
            return Err(EventsError::configuration(
                "use.schema.id",
                "cannot be set while use.latest.version is true",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(e: EventsError) -> String {
        match e {
            EventsError::Configuration { setting, .. } => setting,
            other => panic!("not a configuration error: {other}"),
        }
    }

    #[test]
    fn defaults_match_confluent() {
        let c = SerdeConfig::from_properties([]).unwrap();
        assert!(c.auto_register_schemas);
        assert!(!c.use_latest_version);
        assert_eq!(c.use_schema_id, None);
        assert_eq!(c, SerdeConfig::default());
    }

    #[test]
    fn properties_are_read_and_bad_ones_named() {
        let c = SerdeConfig::from_properties([
            ("auto.register.schemas", "False"),
            ("use.schema.id", "17"),
            ("avro.max.allocation.bytes", "1024"),
            ("json.fail.invalid.schema", "false"),
            ("normalize.schemas", "false"),
            (
                "value.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
            ),
        ])
        .unwrap();
        assert_eq!(c.use_schema_id, Some(17));
        assert_eq!(c.max_allocation_bytes, 1024);
        assert!(!c.json_validate && !c.auto_register_schemas);
        assert_eq!(
            c.value_subject_name_strategy,
            SubjectNameStrategy::TopicRecordName
        );
        let e = SerdeConfig::from_properties([("key.subject.name.strategy", "Nope")]).unwrap_err();
        assert_eq!(setting(e), "key.subject.name.strategy");
        let e = SerdeConfig::from_properties([("use.schema.id", "-2")]).unwrap_err();
        assert_eq!(setting(e), "use.schema.id");
        let e =
            SerdeConfig::from_properties([("auto.register.schemas", "yes please")]).unwrap_err();
        assert_eq!(setting(e), "auto.register.schemas");
        let e = SerdeConfig::from_properties([("normalize.schemas", "true")]).unwrap_err();
        assert_eq!(setting(e), "normalize.schemas");
        let e = SerdeConfig::from_properties([("no.such", "1")]).unwrap_err();
        assert_eq!(setting(e), "no.such");
    }

    #[test]
    fn conflicting_settings_are_refused() {
        let e = SerdeConfig::from_properties([("use.latest.version", "true")]).unwrap_err();
        assert_eq!(setting(e), "use.latest.version");
        let e = SerdeConfig::from_properties([
            ("auto.register.schemas", "false"),
            ("use.latest.version", "true"),
            ("use.schema.id", "3"),
        ])
        .unwrap_err();
        assert_eq!(setting(e), "use.schema.id");
    }
}
