//! The in-memory backend (like Confluent's `mock://`): a registry inside the process for unit
//! tests, with the HTTP backend's behaviour for the calls `SchemaRegistry` offers.
//!
//! - Ids are global and by content: the same schema (same canonical form) under two subjects
//!   has one id, as in Confluent's registry; ids start at 1; versions at 1 per subject.
//! - Registering a schema a subject already has returns its id and adds no version.
//! - The global level starts at `BACKWARD` (Confluent's default). Compatibility is checked for
//!   Avro with apache-avro's schema resolution (reader against writer, the latest version or
//!   all of them for the transitive levels); JSON Schema and Protobuf schemas are not checked
//!   (always compatible) — a simplification of the real registries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::error::{Missing, RegistryError};
use super::types::{Compatibility, RegisteredSchema, Schema, SchemaType};

#[derive(Debug)]
struct State {
    /// Schema id `i + 1` is `schemas[i]`.
    schemas: Vec<Schema>,
    /// Version `v` of a subject is the id at `[v - 1]`.
    subjects: BTreeMap<String, Vec<u32>>,
    global: Compatibility,
    per_subject: HashMap<String, Compatibility>,
}

/// The in-memory registry's state.
#[derive(Debug)]
pub(crate) struct MemoryBackend {
    state: Mutex<State>,
}

fn subject_not_found(subject: &str) -> RegistryError {
    RegistryError::NotFound {
        missing: Missing::Subject,
        what: format!("subject `{subject}`"),
        message: "Subject not found.".to_owned(),
    }
}

fn poisoned() -> RegistryError {
    RegistryError::InvalidResponse {
        message: "in-memory registry poisoned by a panic".to_owned(),
    }
}

impl MemoryBackend {
    pub(crate) fn new() -> Self {
        MemoryBackend {
            state: Mutex::new(State {
                schemas: Vec::new(),
                subjects: BTreeMap::new(),
                global: Compatibility::Backward,
                per_subject: HashMap::new(),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R, RegistryError> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        Ok(f(&mut state))
    }

    pub(crate) fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        self.with(|s| {
            if let Some(found) = s.find_in_subject(subject, schema) {
                return Ok(found.id);
            }
            let level = s.level(subject);
            if let Err(message) = s.check(subject, schema, level) {
                return Err(RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    message,
                });
            }
            let id = match s.schemas.iter().position(|known| known.same_as(schema)) {
                Some(i) => index_to_id(i)?,
                None => {
                    s.schemas.push(schema.clone());
                    index_to_id(s.schemas.len() - 1)?
                }
            };
            s.subjects.entry(subject.to_owned()).or_default().push(id);
            Ok(id)
        })?
    }

    pub(crate) fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<RegisteredSchema, RegistryError> {
        self.with(|s| {
            if !s.subjects.contains_key(subject) {
                return Err(subject_not_found(subject));
            }
            s.find_in_subject(subject, schema)
                .ok_or_else(|| RegistryError::NotFound {
                    missing: Missing::Schema,
                    what: format!("schema under subject `{subject}`"),
                    message: "Schema not found".to_owned(),
                })
        })?
    }

    pub(crate) fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, RegistryError> {
        self.with(|s| {
            let schema = id
                .checked_sub(1)
                .and_then(|i| s.schemas.get(i as usize))
                .ok_or_else(|| RegistryError::NotFound {
                    missing: Missing::Schema,
                    what: format!("schema id {id}"),
                    message: "Schema not found".to_owned(),
                })?;
            Ok(RegisteredSchema {
                id,
                subject: None,
                version: None,
                schema: schema.clone(),
            })
        })?
    }

    /// Version `-1` is the latest, as in the REST API.
    pub(crate) fn version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<RegisteredSchema, RegistryError> {
        self.with(|s| {
            let ids = s
                .subjects
                .get(subject)
                .ok_or_else(|| subject_not_found(subject))?;
            let index = if version == -1 {
                ids.len().checked_sub(1)
            } else {
                usize::try_from(version).ok().and_then(|v| v.checked_sub(1))
            };
            let id = index
                .and_then(|i| ids.get(i))
                .ok_or_else(|| RegistryError::NotFound {
                    missing: Missing::Version,
                    what: format!("version {version} of subject `{subject}`"),
                    message: "Version not found.".to_owned(),
                })?;
            s.registered(subject, *id, index.unwrap_or_default())
        })?
    }

    pub(crate) fn test_compatibility(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<bool, RegistryError> {
        self.with(|s| s.check(subject, schema, s.level(subject)).is_ok())
    }

    pub(crate) fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<Compatibility, RegistryError> {
        self.with(|s| match subject {
            Some(subject) => s.level(subject),
            None => s.global,
        })
    }

    pub(crate) fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Compatibility,
    ) -> Result<(), RegistryError> {
        self.with(|s| match subject {
            Some(subject) => {
                s.per_subject.insert(subject.to_owned(), level);
            }
            None => s.global = level,
        })
    }
}

fn index_to_id(index: usize) -> Result<u32, RegistryError> {
    u32::try_from(index + 1).map_err(|_| RegistryError::InvalidResponse {
        message: "in-memory registry full".to_owned(),
    })
}

impl State {
    fn level(&self, subject: &str) -> Compatibility {
        self.per_subject
            .get(subject)
            .copied()
            .unwrap_or(self.global)
    }

    fn registered(
        &self,
        subject: &str,
        id: u32,
        index: usize,
    ) -> Result<RegisteredSchema, RegistryError> {
        let schema = id
            .checked_sub(1)
            .and_then(|i| self.schemas.get(i as usize))
            .ok_or_else(poisoned)?;
        Ok(RegisteredSchema {
            id,
            subject: Some(subject.to_owned()),
            version: i32::try_from(index + 1).ok(),
            schema: schema.clone(),
        })
    }

    fn find_in_subject(&self, subject: &str, schema: &Schema) -> Option<RegisteredSchema> {
        let ids = self.subjects.get(subject)?;
        ids.iter().enumerate().find_map(|(index, id)| {
            let known = self.schemas.get(id.checked_sub(1)? as usize)?;
            if known.same_as(schema) {
                self.registered(subject, *id, index).ok()
            } else {
                None
            }
        })
    }

    /// `Err(reason)` when `schema` breaks `level` against the subject's versions.
    fn check(&self, subject: &str, schema: &Schema, level: Compatibility) -> Result<(), String> {
        if level == Compatibility::None || schema.schema_type != SchemaType::Avro {
            return Ok(());
        }
        let Some(ids) = self.subjects.get(subject) else {
            return Ok(());
        };
        let candidates: Vec<&u32> = if level.is_transitive() {
            ids.iter().collect()
        } else {
            ids.last().into_iter().collect()
        };
        let new = apache_avro::Schema::parse_str(&schema.schema)
            .map_err(|e| format!("the new schema does not parse: {e}"))?;
        for id in candidates {
            let Some(old) = id.checked_sub(1).and_then(|i| self.schemas.get(i as usize)) else {
                continue;
            };
            if old.schema_type != SchemaType::Avro {
                continue;
            }
            let Ok(old) = apache_avro::Schema::parse_str(&old.schema) else {
                continue;
            };
            use apache_avro::schema_compatibility::SchemaCompatibility;
            if level.checks_backward() {
                SchemaCompatibility::can_read(&old, &new).map_err(|e| {
                    format!("the new schema cannot read data written with schema id {id}: {e}")
                })?;
            }
            if level.checks_forward() {
                SchemaCompatibility::can_read(&new, &old).map_err(|e| {
                    format!("schema id {id} cannot read data written with the new schema: {e}")
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}"#;
    const BAD: &str = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"c","type":"string"}]}"#;

    #[test]
    fn ids_versions_and_backward() {
        let m = MemoryBackend::new();
        let id1 = m.register("s", &Schema::avro(V1)).unwrap();
        assert_eq!(m.register("s", &Schema::avro(V1)).unwrap(), id1);
        assert_eq!(m.register("other", &Schema::avro(V1)).unwrap(), id1);
        assert!(m.test_compatibility("s", &Schema::avro(V2)).unwrap());
        assert!(!m.test_compatibility("s", &Schema::avro(BAD)).unwrap());
        let id2 = m.register("s", &Schema::avro(V2)).unwrap();
        assert_ne!(id1, id2);
        assert!(matches!(
            m.register("s", &Schema::avro(BAD)),
            Err(RegistryError::Incompatible { .. })
        ));
        assert_eq!(m.version("s", -1).unwrap().version, Some(2));
        assert_eq!(m.version("s", 1).unwrap().id, id1);
        assert!(matches!(
            m.version("s", 3),
            Err(RegistryError::NotFound {
                missing: Missing::Version,
                ..
            })
        ));
        assert!(matches!(
            m.schema_by_id(99),
            Err(RegistryError::NotFound {
                missing: Missing::Schema,
                ..
            })
        ));
        m.set_compatibility(Some("s"), Compatibility::None).unwrap();
        assert_eq!(m.compatibility(Some("s")).unwrap(), Compatibility::None);
        assert_eq!(m.compatibility(None).unwrap(), Compatibility::Backward);
        assert!(m.register("s", &Schema::avro(BAD)).is_ok());
    }
}
