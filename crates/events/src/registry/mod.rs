//! A Confluent-compatible schema registry client (also for Apicurio's `ccompat` API), C-free:
//! reqwest over rustls with kafkit's pure-Rust crypto provider.
//!
//! [`SchemaRegistry`] is cheap to clone (an `Arc` inside) and has two backends: HTTP
//! ([`SchemaRegistry::new`]) and in-memory ([`SchemaRegistry::in_memory`], like Confluent's
//! `mock://`, for tests). Schemas fetched by id are cached (one request per id even when many
//! callers miss it at once); ids learnt by register/lookup are cached per (subject, schema);
//! `latest` answers are cached only when `latest.cache.ttl.sec` asks for it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use kafkit_events::registry::{Schema, SchemaRegistry, SubjectNameStrategy};
//! let registry = SchemaRegistry::in_memory();
//! let subject = SubjectNameStrategy::TopicName.subject("orders", None, false)?;
//! let schema = Schema::avro(r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#);
//! let id = registry.register(&subject, &schema).await?;
//! assert_eq!(registry.schema_by_id(id).await?.schema.canonical(), schema.canonical());
//! # Ok::<(), kafkit_events::registry::RegistryError>(())
//! # }).unwrap();
//! ```
//!
//! Files: `types.rs` (schemas, levels), `error.rs`, `config.rs` (settings, Confluent property
//! names), `subject.rs` (subject name strategies), `retry.rs` (backoff), `cache.rs`,
//! `http.rs` (REST backend), `memory.rs` (in-memory backend).

mod cache;
mod config;
mod error;
mod http;
mod memory;
mod retry;
mod subject;
mod types;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use config::{RegistryAuth, RegistryConfig, Secret};
pub use error::{Missing, RegistryError};
pub use subject::SubjectNameStrategy;
pub use types::{Compatibility, RegisteredSchema, Schema, SchemaReference, SchemaType};

use cache::Cache;
use http::HttpBackend;
use memory::MemoryBackend;

#[derive(Debug)]
enum Backend {
    Http(HttpBackend),
    Memory(MemoryBackend),
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    cache: Cache,
    /// Requests sent to the backend (HTTP attempts, retries included; in-memory calls).
    requests: Arc<AtomicU64>,
}

/// Counters of a [`SchemaRegistry`] client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryStats {
    /// Requests sent to the registry (each HTTP attempt, retries included; each in-memory call).
    pub requests: u64,
    /// Calls answered from the cache.
    pub cache_hits: u64,
}

/// A schema registry client: HTTP or in-memory. Clones share the connection pool and caches.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    inner: Arc<Inner>,
}

macro_rules! dispatch {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        $self.inner.requests_for_memory();
        match &$self.inner.backend {
            Backend::Http(b) => b.$method($($arg),*).await,
            Backend::Memory(b) => b.$method($($arg),*),
        }
    }};
}

impl Inner {
    fn requests_for_memory(&self) {
        if matches!(self.backend, Backend::Memory(_)) {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl SchemaRegistry {
    /// An HTTP client for `config`'s URLs. Fails with [`RegistryError::Config`] on a bad URL
    /// or TLS setting; connects lazily.
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let requests = Arc::new(AtomicU64::new(0));
        let backend = HttpBackend::new(&config, requests.clone())?;
        Ok(SchemaRegistry {
            inner: Arc::new(Inner {
                backend: Backend::Http(backend),
                cache: Cache::new(config.cache_capacity, config.latest_cache_ttl),
                requests,
            }),
        })
    }

    /// A registry held in this process (like Confluent's `mock://`): for tests, and for users'
    /// unit tests of code that serializes. See the `memory` notes in the module docs: ids by
    /// content, idempotent register, `BACKWARD` by default, Avro checks only.
    pub fn in_memory() -> Self {
        let config = RegistryConfig::default();
        SchemaRegistry {
            inner: Arc::new(Inner {
                backend: Backend::Memory(MemoryBackend::new()),
                cache: Cache::new(config.cache_capacity, config.latest_cache_ttl),
                requests: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    /// Whether this is an in-memory registry.
    pub fn is_in_memory(&self) -> bool {
        matches!(self.inner.backend, Backend::Memory(_))
    }

    /// Registers `schema` under `subject` (`POST /subjects/{subject}/versions`) and returns
    /// its id; registering a schema the subject already has returns the same id. Fails with
    /// [`RegistryError::Incompatible`] when the schema breaks the subject's level.
    pub async fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        if let Some(found) = self.inner.cache.by_schema(subject, schema) {
            return Ok(found.id);
        }
        let id = dispatch!(self, register(subject, schema))?;
        self.inner.cache.forget_latest(subject);
        self.inner.cache.put_by_schema(
            subject,
            schema,
            RegisteredSchema {
                id,
                subject: Some(subject.to_owned()),
                version: None,
                schema: schema.clone(),
            },
        );
        Ok(id)
    }

    /// The id and version of `schema` under `subject` (`POST /subjects/{subject}`), without
    /// registering it: [`RegistryError::NotFound`] when it is not there.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<RegisteredSchema, RegistryError> {
        if let Some(found) = self.inner.cache.by_schema(subject, schema) {
            if found.version.is_some() {
                return Ok(found);
            }
        }
        let found = dispatch!(self, lookup(subject, schema))?;
        self.inner
            .cache
            .put_by_schema(subject, schema, found.clone());
        Ok(found)
    }

    /// The schema with id `id` (`GET /schemas/ids/{id}`), cached: later calls make no
    /// request, and concurrent first calls make one.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        self.inner
            .cache
            .schema_by_id(id, || async move { dispatch!(self, schema_by_id(id)) })
            .await
    }

    /// The latest version under `subject` (`GET /subjects/{subject}/versions/latest`); cached
    /// for `latest.cache.ttl.sec` when set.
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        if let Some(found) = self.inner.cache.latest(subject) {
            return Ok(found);
        }
        let found = dispatch!(self, version(subject, -1))?;
        self.inner.cache.put_latest(subject, &found);
        Ok(found)
    }

    /// Version `version` under `subject` (`GET /subjects/{subject}/versions/{version}`;
    /// `-1` means the latest).
    pub async fn version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<RegisteredSchema, RegistryError> {
        dispatch!(self, version(subject, version))
    }

    /// Whether `schema` may be registered under `subject` given its compatibility level
    /// (`POST /compatibility/subjects/{subject}/versions/latest`); `true` when the subject
    /// has no version yet.
    pub async fn test_compatibility(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<bool, RegistryError> {
        dispatch!(self, test_compatibility(subject, schema))
    }

    /// The compatibility level of `subject` (falling back to the global one), or the global
    /// level for `None` (`GET /config[/{subject}]`).
    pub async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<Compatibility, RegistryError> {
        dispatch!(self, compatibility(subject))
    }

    /// Sets the compatibility level of `subject`, or the global one for `None`
    /// (`PUT /config[/{subject}]`).
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Compatibility,
    ) -> Result<(), RegistryError> {
        dispatch!(self, set_compatibility(subject, level))
    }

    /// Counters: requests sent and cache hits.
    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            cache_hits: self.inner.cache.hits.load(Ordering::Relaxed),
        }
    }
}
