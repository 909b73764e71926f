//! The envelope every event travels in: identity, type, time, origin and the context that links
//! events together (correlation, causation, user, tenant, tags).
//!
//! On a Kafka record the envelope is carried as CloudEvents binary-mode headers
//! ([`crate::cloudevents`]), so a consumer can route on it without decoding the value.
//!
//! ```
//! use kafkit_events::envelope::Envelope;
//!
//! let order_placed = Envelope::new("shop.order.placed")
//!     .with_source("orders-service", Some("1.4.2"))
//!     .with_user_context(Some("user-7"), Some("tenant-1"))
//!     .add_tag("checkout");
//! // A follow-up event keeps the conversation's correlation id and names its cause.
//! let payment_requested = Envelope::new("shop.payment.requested").caused_by(&order_placed);
//! assert_eq!(payment_requested.causation_id.as_deref(), Some(order_placed.id.as_str()));
//! assert_eq!(payment_requested.correlation_id, Some(order_placed.id.clone()));
//! ```

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use crate::typed::EventPayload;

/// Which UUID version new event ids use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdVersion {
    /// Time-ordered UUID v7 (the default: ids sort by creation time, index-friendly).
    #[default]
    V7,
    /// Random UUID v4 (what the Python seeds use).
    V4,
}

impl IdVersion {
    /// A new id of this version, as its hyphenated text.
    pub fn new_id(self) -> String {
        self.new_id_at(now_millis())
    }

    /// A new id made at `now_ms` (ms since the epoch: a v7 id's timestamp).
    fn new_id_at(self, now_ms: i64) -> String {
        crate::event_id::to_text(match self {
            IdVersion::V7 => crate::event_id::new_v7(now_ms),
            IdVersion::V4 => Uuid::new_v4(),
        })
    }
}

/// The current time in milliseconds since the Unix epoch (UTC).
pub fn now_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The metadata of one event (everything but the payload).
///
/// The CloudEvents attribute each field maps to is given in its doc; `id`, `source` and
/// `event_type` are required by CloudEvents (`source` must be set before the event is encoded:
/// the event producer fills it from its configured service name).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// Unique id (`ce_id`). Ids made here are UUIDs (v7 by default); ids read from other
    /// producers may be any non-empty string.
    pub id: String,
    /// The event type, dotted (`ce_type`), for example `hr.employee.created`.
    pub event_type: String,
    /// When the event happened, ms since the Unix epoch, UTC (`ce_time`, RFC 3339 on the wire,
    /// millisecond precision). `None` only for events read from producers that did not set it.
    pub time: Option<i64>,
    /// The service that produced it (`ce_source`).
    pub source: String,
    /// The producing service's version (extension `ce_sourceversion`).
    pub source_version: Option<String>,
    /// The version of the payload's schema (extension `ce_schemaversion`).
    pub schema_version: Option<String>,
    /// The conversation this event belongs to (extension `ce_correlationid`).
    pub correlation_id: Option<String>,
    /// The id of the event that caused this one (extension `ce_causationid`).
    pub causation_id: Option<String>,
    /// The user on whose behalf it happened (extension `ce_authid`).
    pub user_id: Option<String>,
    /// The tenant (extension `ce_tenantid`).
    pub tenant_id: Option<String>,
    /// Free-form tags (extension `ce_tags`, a JSON array of strings).
    pub tags: Vec<String>,
    /// The subject within the source, for example an entity id (`ce_subject`).
    pub subject: Option<String>,
    /// A URI of the payload's schema (`ce_dataschema`).
    pub data_schema: Option<String>,
    /// The payload's media type (`content-type`), set by the codec: `application/avro`,
    /// `application/json`.
    pub data_content_type: Option<String>,
    /// Other CloudEvents extension attributes, by name (without the `ce_` prefix).
    pub extensions: BTreeMap<String, String>,
}

impl Envelope {
    /// An envelope of `event_type` with a new UUID v7 id, the current time and an empty source.
    pub fn new(event_type: impl Into<String>) -> Self {
        Envelope::with_id_version(event_type, IdVersion::V7)
    }

    /// An envelope of `event_type` with a new id of `version` and the current time.
    pub fn with_id_version(event_type: impl Into<String>, version: IdVersion) -> Self {
        let now = now_millis();
        Envelope {
            // One clock reading: a v7 id carries the event's time.
            id: version.new_id_at(now),
            event_type: event_type.into(),
            time: Some(now),
            source: String::new(),
            source_version: None,
            schema_version: None,
            correlation_id: None,
            causation_id: None,
            user_id: None,
            tenant_id: None,
            tags: Vec::new(),
            subject: None,
            data_schema: None,
            data_content_type: None,
            extensions: BTreeMap::new(),
        }
    }

    /// The id as a UUID, when it is one.
    pub fn id_uuid(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.id).ok()
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the time (ms since the epoch, UTC).
    pub fn with_time(mut self, millis: i64) -> Self {
        self.time = Some(millis);
        self
    }

    /// Sets the source service and, optionally, its version.
    pub fn with_source(mut self, source: impl Into<String>, version: Option<&str>) -> Self {
        self.source = source.into();
        self.source_version = version.map(str::to_owned);
        self
    }

    /// Sets the payload's schema version.
    pub fn with_schema_version(mut self, version: impl Into<String>) -> Self {
        self.schema_version = Some(version.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Marks this event as caused by `cause`: the causation id becomes `cause.id`, and the
    /// correlation id is `cause`'s correlation id (or `cause.id` when it has none, so the first
    /// event of a conversation names it).
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.causation_id = Some(cause.id.clone());
        self.correlation_id = Some(
            cause
                .correlation_id
                .clone()
                .unwrap_or_else(|| cause.id.clone()),
        );
        self
    }

    /// Sets the user and tenant (each only when `Some`).
    pub fn with_user_context(mut self, user_id: Option<&str>, tenant_id: Option<&str>) -> Self {
        if let Some(user) = user_id {
            self.user_id = Some(user.to_owned());
        }
        if let Some(tenant) = tenant_id {
            self.tenant_id = Some(tenant.to_owned());
        }
        self
    }

    /// Adds a tag (kept once: adding an existing tag does nothing).
    pub fn add_tag(mut self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// Sets the subject (`ce_subject`).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets an extension attribute (`ce_<name>`; the name must be lowercase ASCII letters and
    /// digits, checked when the envelope is encoded).
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.insert(name.into(), value.into());
        self
    }
}

/// A typed event: its envelope and its payload.
///
/// ```
/// use kafkit_events::envelope::Event;
/// use kafkit_events::typed::EventPayload;
///
/// #[derive(serde::Serialize)]
/// struct EmployeeCreated { employee_id: String }
///
/// impl EventPayload for EmployeeCreated {
///     const EVENT_TYPE: &'static str = "hr.employee.created";
///     fn key(&self) -> Option<String> { Some(self.employee_id.clone()) }
/// }
///
/// let event = Event::new(EmployeeCreated { employee_id: "emp_123".into() })
///     .with_correlation_id("req-42")
///     .add_tag("onboarding");
/// assert_eq!(event.envelope.event_type, "hr.employee.created");
/// assert_eq!(event.key().as_deref(), Some("emp_123"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event<T> {
    /// The metadata.
    pub envelope: Envelope,
    /// The payload.
    pub data: T,
}

impl<T: EventPayload> Event<T> {
    /// An event carrying `data`, typed by [`EventPayload::EVENT_TYPE`], with a new UUID v7 id,
    /// the current time and the payload's schema version.
    pub fn new(data: T) -> Self {
        Event::with_id_version(data, IdVersion::V7)
    }

    /// Like [`Event::new`] with ids of `version`.
    pub fn with_id_version(data: T, version: IdVersion) -> Self {
        let mut envelope = Envelope::with_id_version(T::EVENT_TYPE, version);
        envelope.schema_version = T::SCHEMA_VERSION.map(str::to_owned);
        Event { envelope, data }
    }

    /// The record key: the payload's entity id ([`EventPayload::key`]), so that all events of
    /// one entity land on one partition, in order.
    pub fn key(&self) -> Option<String> {
        self.data.key()
    }
}

impl<T> Event<T> {
    /// An event from an envelope and a payload (for example one read from a record).
    pub fn from_parts(envelope: Envelope, data: T) -> Self {
        Event { envelope, data }
    }

    /// The payload, replaced by `f(payload)`; the envelope is kept.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Event<U> {
        Event {
            envelope: self.envelope,
            data: f(self.data),
        }
    }

    /// See [`Envelope::with_source`].
    pub fn with_source(mut self, source: impl Into<String>, version: Option<&str>) -> Self {
        self.envelope = self.envelope.with_source(source, version);
        self
    }

    /// See [`Envelope::with_correlation_id`].
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.envelope = self.envelope.with_correlation_id(id);
        self
    }

    /// See [`Envelope::caused_by`].
    pub fn caused_by<U>(mut self, cause: &Event<U>) -> Self {
        self.envelope = self.envelope.caused_by(&cause.envelope);
        self
    }

    /// See [`Envelope::with_user_context`].
    pub fn with_user_context(mut self, user_id: Option<&str>, tenant_id: Option<&str>) -> Self {
        self.envelope = self.envelope.with_user_context(user_id, tenant_id);
        self
    }

    /// See [`Envelope::add_tag`].
    pub fn add_tag(mut self, tag: impl Into<String>) -> Self {
        self.envelope = self.envelope.add_tag(tag);
        self
    }

    /// See [`Envelope::with_subject`].
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.envelope = self.envelope.with_subject(subject);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_by_default_and_v4_on_request() {
        let e = Envelope::new("a.b");
        assert_eq!(e.id_uuid().map(|u| u.get_version_num()), Some(7));
        let e = Envelope::with_id_version("a.b", IdVersion::V4);
        assert_eq!(e.id_uuid().map(|u| u.get_version_num()), Some(4));
        assert_ne!(Envelope::new("a").id, Envelope::new("a").id);
    }

    #[test]
    fn time_is_now_in_millis() {
        let before = now_millis();
        let e = Envelope::new("a.b");
        let after = now_millis();
        let t = e.time.unwrap_or_default();
        assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
        // ms, not s or ns: after 2020 and before 2100.
        assert!(t > 1_577_836_800_000 && t < 4_102_444_800_000);
    }

    #[test]
    fn caused_by_chains_correlation() {
        let first = Envelope::new("a");
        let second = Envelope::new("b").caused_by(&first);
        let third = Envelope::new("c").caused_by(&second);
        assert_eq!(second.correlation_id.as_deref(), Some(first.id.as_str()));
        assert_eq!(third.correlation_id.as_deref(), Some(first.id.as_str()));
        assert_eq!(third.causation_id.as_deref(), Some(second.id.as_str()));
        let explicit = Envelope::new("a").with_correlation_id("req-1");
        let next = Envelope::new("b").caused_by(&explicit);
        assert_eq!(next.correlation_id.as_deref(), Some("req-1"));
    }

    #[test]
    fn tags_are_kept_once_and_user_context_only_when_given() {
        let e = Envelope::new("a")
            .add_tag("x")
            .add_tag("y")
            .add_tag("x")
            .with_user_context(Some("u"), None)
            .with_user_context(None, Some("t"));
        assert_eq!(e.tags, vec!["x", "y"]);
        assert_eq!(e.user_id.as_deref(), Some("u"));
        assert_eq!(e.tenant_id.as_deref(), Some("t"));
    }
}
