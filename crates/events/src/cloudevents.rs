//! The envelope as CloudEvents 1.0 Kafka-binding headers (binary mode), and a reader for
//! structured mode. Pure: no I/O, every input may be hostile.
//!
//! Binary mode: one header per attribute, named `ce_<attribute>`, values UTF-8:
//!
//! | header | envelope field | |
//! |---|---|---|
//! | `ce_specversion` | — | always `1.0`; other versions are refused |
//! | `ce_id` | [`Envelope::id`] | required, non-empty |
//! | `ce_source` | [`Envelope::source`] | required, non-empty |
//! | `ce_type` | [`Envelope::event_type`] | required, non-empty |
//! | `ce_time` | [`Envelope::time`] | RFC 3339, written in UTC with milliseconds |
//! | `ce_subject`, `ce_dataschema` | `subject`, `data_schema` | optional |
//! | `content-type` | [`Envelope::data_content_type`] | the CloudEvents `datacontenttype` |
//! | `ce_sourceversion`, `ce_schemaversion` | `source_version`, `schema_version` | extensions |
//! | `ce_correlationid`, `ce_causationid` | `correlation_id`, `causation_id` | extensions |
//! | `ce_authid`, `ce_tenantid` | `user_id`, `tenant_id` | extensions |
//! | `ce_tags` | [`Envelope::tags`] | one extension: a JSON array of strings (`["a","b"]`), omitted when empty |
//! | `ce_<name>` (others) | [`Envelope::extensions`] | names `[a-z0-9]+` |
//!
//! Decisions (so that routing on a header and decoding can never disagree):
//! - A CloudEvents header (`ce_*`, `content-type` in any case) that appears twice is an error
//!   ([`HeaderError::Duplicate`]), not "first wins".
//! - A null value or a value that is not UTF-8 in one of those headers is an error.
//! - Headers that are not CloudEvents attributes (no `ce_` prefix, or a key that is not UTF-8)
//!   are ignored: they belong to someone else (`traceparent`, `__value_schema_id`, …).
//! - `ce_time` is read with any RFC 3339 offset and kept to the millisecond (finer digits are
//!   truncated toward the past).
//!
//! Structured mode (`content-type: application/cloudevents+json…`, compared case-insensitively)
//! carries the envelope and the data in one JSON object in the value; [`decode_structured`]
//! reads it.
//!
//! ```
//! use kafkit_events::cloudevents::{decode_header_pairs, encode_headers};
//! use kafkit_events::envelope::Envelope;
//!
//! let envelope = Envelope::new("shop.order.placed")
//!     .with_source("orders-service", Some("1.0.0"))
//!     .with_correlation_id("req-42");
//! let headers = encode_headers(&envelope).unwrap();
//! assert!(headers.iter().any(|(k, v)| k == "ce_type"
//!     && v.as_deref() == Some(&b"shop.order.placed"[..])));
//! let back = decode_header_pairs(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_deref())))
//!     .unwrap();
//! assert_eq!(back, envelope);
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafkit::consumer::Header;
use kafkit::producer::{HeaderBlock, HeaderName};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::envelope::Envelope;

/// The CloudEvents spec version written and accepted.
pub const SPEC_VERSION: &str = "1.0";
/// The header carrying the payload's media type (`datacontenttype`).
pub const CONTENT_TYPE: &str = "content-type";
/// The media type prefix of structured mode in JSON.
pub const STRUCTURED_JSON: &str = "application/cloudevents+json";

/// Header names of the attributes the envelope maps.
pub mod names {
    /// `specversion`.
    pub const SPECVERSION: &str = "ce_specversion";
    /// `id`.
    pub const ID: &str = "ce_id";
    /// `source`.
    pub const SOURCE: &str = "ce_source";
    /// `type`.
    pub const TYPE: &str = "ce_type";
    /// `time`.
    pub const TIME: &str = "ce_time";
    /// `subject`.
    pub const SUBJECT: &str = "ce_subject";
    /// `dataschema`.
    pub const DATASCHEMA: &str = "ce_dataschema";
    /// Extension: the producing service's version.
    pub const SOURCEVERSION: &str = "ce_sourceversion";
    /// Extension: the payload schema's version.
    pub const SCHEMAVERSION: &str = "ce_schemaversion";
    /// Extension: correlation id.
    pub const CORRELATIONID: &str = "ce_correlationid";
    /// Extension: causation id.
    pub const CAUSATIONID: &str = "ce_causationid";
    /// Extension (CloudEvents `authcontext`): the user's id.
    pub const AUTHID: &str = "ce_authid";
    /// Extension: the tenant's id.
    pub const TENANTID: &str = "ce_tenantid";
    /// Extension: the tags, a JSON array of strings.
    pub const TAGS: &str = "ce_tags";
}

/// The attribute names (without `ce_`) the envelope maps to fields; not usable as extensions.
const RESERVED: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "dataschema",
    "datacontenttype",
    "data",
    "data_base64",
    "sourceversion",
    "schemaversion",
    "correlationid",
    "causationid",
    "authid",
    "tenantid",
    "tags",
];

/// Why CloudEvents headers (or a structured event) could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A required attribute is absent.
    #[error("missing required attribute {0}")]
    Missing(&'static str),
    /// A CloudEvents header appears more than once.
    #[error("header {0} appears more than once")]
    Duplicate(String),
    /// A CloudEvents header has a null value.
    #[error("header {0} has a null value")]
    Null(String),
    /// A CloudEvents header's value is not UTF-8.
    #[error("header {0} is not UTF-8")]
    NotUtf8(String),
    /// `ce_specversion` is not `1.0`.
    #[error("unsupported CloudEvents spec version {0:?}")]
    UnsupportedSpecVersion(String),
    /// An attribute's value is malformed (empty id, bad RFC 3339 time, bad tags…).
    #[error("attribute {attribute}: {reason}")]
    Invalid {
        /// The header (or attribute) name.
        attribute: String,
        /// What is wrong.
        reason: String,
    },
    /// A structured-mode value is not a CloudEvents JSON object.
    #[error("structured event: {0}")]
    Structured(String),
}

fn invalid(attribute: &str, reason: impl Into<String>) -> HeaderError {
    HeaderError::Invalid {
        attribute: attribute.to_owned(),
        reason: reason.into(),
    }
}

/// Formats ms since the epoch as RFC 3339 in UTC with milliseconds
/// (`2026-12-04T20:31:40.123Z`); years outside 0..=9999 are an error.
pub fn format_time(millis: i64) -> Result<String, HeaderError> {
    let text = time_text(millis)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The length of the RFC 3339 text [`time_text`] writes (`yyyy-mm-ddThh:mm:ss.mmmZ`).
const TIME_TEXT_LEN: usize = 24;

thread_local! {
    /// The second last formatted on this thread and its text: events made within one second
    /// only rewrite the milliseconds.
    static LAST_SECOND: std::cell::Cell<(i64, [u8; TIME_TEXT_LEN])> =
        const { std::cell::Cell::new((i64::MIN, [0; TIME_TEXT_LEN])) };
}

/// [`format_time`] into a stack buffer, without allocating; the calendar fields are worked out
/// once per second per thread.
fn time_text(millis: i64) -> Result<[u8; TIME_TEXT_LEN], HeaderError> {
    let second = millis.div_euclid(1000);
    let (last, mut out) = LAST_SECOND.with(std::cell::Cell::get);
    if last != second {
        out = time_text_uncached(millis)?;
        LAST_SECOND.with(|c| c.set((second, out)));
    }
    let mut ms = millis.rem_euclid(1000);
    for i in (20..23).rev() {
        // `ms` is in 0..1000: each digit fits a u8.
        out[i] = b'0' + u8::try_from(ms % 10).unwrap_or(0);
        ms /= 10;
    }
    Ok(out)
}

/// [`time_text`] without the per-second cache.
fn time_text_uncached(millis: i64) -> Result<[u8; TIME_TEXT_LEN], HeaderError> {
    let nanos = i128::from(millis) * 1_000_000;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| invalid(names::TIME, e.to_string()))?;
    let year = t.year();
    let Ok(year) = u32::try_from(year) else {
        return Err(invalid(
            names::TIME,
            format!("year {year} is not in 0..=9999"),
        ));
    };
    if year > 9999 {
        return Err(invalid(
            names::TIME,
            format!("year {year} is not in 0..=9999"),
        ));
    }
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut digits = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    digits(0, 4, year);
    digits(5, 2, u32::from(u8::from(t.month())));
    digits(8, 2, u32::from(t.day()));
    digits(11, 2, u32::from(t.hour()));
    digits(14, 2, u32::from(t.minute()));
    digits(17, 2, u32::from(t.second()));
    digits(20, 3, u32::from(t.millisecond()));
    Ok(out)
}

/// Parses an RFC 3339 time (any offset) to ms since the epoch, truncating finer digits.
pub fn parse_time(text: &str) -> Result<i64, HeaderError> {
    let t =
        OffsetDateTime::parse(text, &Rfc3339).map_err(|e| invalid(names::TIME, e.to_string()))?;
    let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis).map_err(|_| invalid(names::TIME, "out of range"))
}

fn valid_extension_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Where a header's value comes from: copied into the record's one value buffer, or a
/// `'static` / shared value handed out without copying.
#[derive(Clone, Copy)]
enum Text<'a> {
    Copy(&'a [u8]),
    Static(&'static str),
    Shared(&'a Bytes),
}

impl Text<'_> {
    fn copied_len(self) -> usize {
        match self {
            Text::Copy(v) => v.len(),
            Text::Static(_) | Text::Shared(_) => 0,
        }
    }

    fn is_empty(self) -> bool {
        match self {
            Text::Copy(v) => v.is_empty(),
            Text::Static(v) => v.is_empty(),
            Text::Shared(v) => v.is_empty(),
        }
    }
}

fn copy(value: Option<&str>) -> Option<Text<'_>> {
    value.map(|v| Text::Copy(v.as_bytes()))
}

/// Header values copied into one buffer and handed out as slices of it: one allocation for
/// all of a record's copied values instead of one each; names are `'static` (no allocation).
struct Values {
    buf: BytesMut,
}

impl Values {
    fn put(
        &mut self,
        out: &mut Vec<(HeaderName, Option<Bytes>)>,
        name: HeaderName,
        value: Text<'_>,
    ) {
        let value = match value {
            Text::Copy(v) => {
                self.buf.extend_from_slice(v);
                self.buf.split().freeze()
            }
            Text::Static(v) => Bytes::from_static(v.as_bytes()),
            Text::Shared(v) => v.clone(),
        };
        out.push((name, Some(value)));
    }
}

/// The producing service's name and version as header values made once (per producer):
/// `ce_source` / `ce_sourceversion` of events whose envelope names no source, shared by every
/// record instead of copied into each envelope. It also keeps, per event type and content
/// type, the headers every such event carries alike as one encoded [`HeaderBlock`]
/// ([`DefaultSource::block`]).
#[derive(Debug, Clone)]
pub(crate) struct DefaultSource {
    /// `ce_source`.
    pub(crate) name: Bytes,
    /// `ce_sourceversion` (when the envelope has none).
    pub(crate) version: Bytes,
    /// The blocks made so far, found by the addresses of their `'static` event type and
    /// content type (a linear scan of a few entries, no hashing).
    blocks: Arc<Mutex<Vec<ConstantBlock>>>,
}

/// The constant headers of events of one type and content type.
#[derive(Debug)]
struct ConstantBlock {
    event_type: &'static str,
    content_type: &'static str,
    block: HeaderBlock,
}

/// Event types (times content types) whose constant headers a producer keeps encoded; others
/// get all their headers per event, as before.
const MAX_BLOCKS: usize = 64;

impl DefaultSource {
    /// The default source `name` and `version`.
    pub(crate) fn new(name: Bytes, version: Bytes) -> Self {
        DefaultSource {
            name,
            version,
            blocks: Arc::default(),
        }
    }

    /// The headers every event of `event_type` with `content_type` and this default source
    /// carries alike, encoded once: `ce_specversion`, `ce_source`, `ce_type`,
    /// `ce_sourceversion`, `content-type` (in that order). `None` past [`MAX_BLOCKS`] kinds.
    pub(crate) fn block(
        &self,
        event_type: &'static str,
        content_type: &'static str,
    ) -> Option<HeaderBlock> {
        // Each update is one push: a poisoned lock still guards a consistent list.
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        let same = |a: &'static str, b: &'static str| std::ptr::eq(a, b);
        if let Some(b) = blocks
            .iter()
            .find(|b| same(b.event_type, event_type) && same(b.content_type, content_type))
        {
            return Some(b.block.clone());
        }
        if blocks.len() >= MAX_BLOCKS {
            return None;
        }
        let headers = [
            (names::SPECVERSION, SPEC_VERSION.as_bytes()),
            (names::SOURCE, &self.name[..]),
            (names::TYPE, event_type.as_bytes()),
            (names::SOURCEVERSION, &self.version[..]),
            (CONTENT_TYPE, content_type.as_bytes()),
        ]
        .map(|(k, v)| (k, Some(v)));
        let block = HeaderBlock::new(&headers).ok()?;
        blocks.push(ConstantBlock {
            event_type,
            content_type,
            block: block.clone(),
        });
        Some(block)
    }
}

/// Whether `envelope`'s constant headers under `encoding` are those of
/// [`DefaultSource::block`] (its source and version the default's, its type the static one,
/// the content type given): then the caller may attach that block and encode with
/// [`Encoding::in_block`] set.
pub(crate) fn block_applies(envelope: &Envelope, encoding: &Encoding<'_>) -> bool {
    encoding.default_source.is_some()
        && encoding.content_type.is_some()
        && envelope.source.is_empty()
        && envelope.source_version.is_none()
        && encoding
            .static_type
            .is_some_and(|t| t == envelope.event_type)
}

/// How [`encode_headers_with`] fills what the envelope leaves open, without copying the
/// envelope.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Encoding<'a> {
    /// `content-type`, instead of the envelope's `data_content_type`.
    pub(crate) content_type: Option<&'static str>,
    /// The event type as a `'static` string (the typed payload's), used when it equals the
    /// envelope's: written without copying.
    pub(crate) static_type: Option<&'static str>,
    /// The source (and its version) when the envelope's source is empty.
    pub(crate) default_source: Option<&'a DefaultSource>,
    /// Copy the values into the thread's shared chunk ([`crate::arena`]: no allocation per
    /// record) instead of a buffer of their own: for records the producer sends and drops.
    pub(crate) pooled: bool,
    /// Leave out `ce_specversion`, `ce_source`, `ce_type`, `ce_sourceversion` and
    /// `content-type`: the record carries them in its [`DefaultSource::block`]. Only where
    /// [`block_applies`] (they are still checked as if written).
    pub(crate) in_block: bool,
}

/// The envelope as binary-mode headers, in a fixed order (`ce_specversion`, `ce_id`,
/// `ce_source`, `ce_type`, `ce_time`, …, `content-type` last when set).
///
/// Errors: an empty `id`, `source` or `event_type`, a time outside years 0..=9999, an
/// extension name that is not `[a-z0-9]+` or that names a mapped attribute.
pub fn encode_headers(
    envelope: &Envelope,
) -> Result<Vec<(HeaderName, Option<Bytes>)>, HeaderError> {
    let mut out = Vec::new();
    encode_headers_into(envelope, &mut out)?;
    Ok(out)
}

/// Like [`encode_headers`], appending to `out` (which is left unchanged on error).
pub fn encode_headers_into(
    envelope: &Envelope,
    out: &mut Vec<(HeaderName, Option<Bytes>)>,
) -> Result<(), HeaderError> {
    encode_headers_with(envelope, &Encoding::default(), out)
}

/// [`encode_headers_into`] with what `encoding` gives in place of the envelope's fields,
/// without copying the envelope. `out` grows once, by exactly the headers written.
pub(crate) fn encode_headers_with(
    envelope: &Envelope,
    encoding: &Encoding<'_>,
    out: &mut Vec<(HeaderName, Option<Bytes>)>,
) -> Result<(), HeaderError> {
    let (source, source_version) = match encoding.default_source {
        Some(default) if envelope.source.is_empty() => (
            Text::Shared(&default.name),
            Some(
                copy(envelope.source_version.as_deref()).unwrap_or(Text::Shared(&default.version)),
            ),
        ),
        _ => (
            Text::Copy(envelope.source.as_bytes()),
            copy(envelope.source_version.as_deref()),
        ),
    };
    let event_type = match encoding.static_type {
        Some(t) if t == envelope.event_type => Text::Static(t),
        _ => Text::Copy(envelope.event_type.as_bytes()),
    };
    for (name, value) in [
        (names::ID, Text::Copy(envelope.id.as_bytes())),
        (names::SOURCE, source),
        (names::TYPE, event_type),
    ] {
        if value.is_empty() {
            return Err(invalid(name, "must not be empty"));
        }
    }
    for name in envelope.extensions.keys() {
        if !valid_extension_name(name) {
            return Err(invalid(
                name,
                "extension names are lowercase ASCII letters and digits",
            ));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(invalid(
                name,
                "names an attribute the envelope maps to a field",
            ));
        }
    }
    let time = envelope.time.map(time_text).transpose()?;
    let tags = if envelope.tags.is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(&envelope.tags)
                .map_err(|e| invalid(names::TAGS, e.to_string()))?,
        )
    };
    let content_type = match encoding.content_type {
        Some(ct) => Some(Text::Static(ct)),
        None => copy(envelope.data_content_type.as_deref()),
    };
    // Written by the caller's block instead (same values: see `block_applies`).
    fn unless<'t>(in_block: bool, v: Text<'t>) -> Option<Text<'t>> {
        (!in_block).then_some(v)
    }
    let keep = |v| unless(encoding.in_block, v);
    let content_type = content_type.and_then(keep);
    let source_version = source_version.and_then(keep);
    let head = [
        (names::SPECVERSION, keep(Text::Static(SPEC_VERSION))),
        (names::ID, Some(Text::Copy(envelope.id.as_bytes()))),
        (names::SOURCE, keep(source)),
        (names::TYPE, keep(event_type)),
        (names::TIME, time.as_ref().map(|t| Text::Copy(t))),
    ];
    // An envelope with no optional attribute but `ce_sourceversion` (the usual event) takes a
    // table of six: same headers, same order, less to build and walk.
    let plain = envelope.subject.is_none()
        && envelope.data_schema.is_none()
        && envelope.schema_version.is_none()
        && envelope.correlation_id.is_none()
        && envelope.causation_id.is_none()
        && envelope.user_id.is_none()
        && envelope.tenant_id.is_none()
        && tags.is_none()
        && envelope.extensions.is_empty();
    if plain {
        let [a, b, c, d, e] = head;
        let attributes = [a, b, c, d, e, (names::SOURCEVERSION, source_version)];
        write_attributes(&attributes, envelope, content_type, encoding.pooled, out);
        return Ok(());
    }
    let [a, b, c, d, e] = head;
    // In wire order; extensions go between `ce_tags` and `content-type`.
    let attributes: [(&'static str, Option<Text<'_>>); 14] = [
        a,
        b,
        c,
        d,
        e,
        (names::SUBJECT, copy(envelope.subject.as_deref())),
        (names::DATASCHEMA, copy(envelope.data_schema.as_deref())),
        (names::SOURCEVERSION, source_version),
        (
            names::SCHEMAVERSION,
            copy(envelope.schema_version.as_deref()),
        ),
        (
            names::CORRELATIONID,
            copy(envelope.correlation_id.as_deref()),
        ),
        (names::CAUSATIONID, copy(envelope.causation_id.as_deref())),
        (names::AUTHID, copy(envelope.user_id.as_deref())),
        (names::TENANTID, copy(envelope.tenant_id.as_deref())),
        (names::TAGS, copy(tags.as_deref())),
    ];
    write_attributes(&attributes, envelope, content_type, encoding.pooled, out);
    Ok(())
}

/// Appends the present `attributes` (in wire order), then the envelope's extensions, then
/// `content-type`; the copied values go into one buffer (the thread's chunk when `pooled`).
fn write_attributes(
    attributes: &[(&'static str, Option<Text<'_>>)],
    envelope: &Envelope,
    content_type: Option<Text<'_>>,
    pooled: bool,
    out: &mut Vec<(HeaderName, Option<Bytes>)>,
) {
    // One walk for the buffer's size and the number of headers.
    let (count, copied) = attributes
        .iter()
        .filter_map(|(_, v)| *v)
        .chain(content_type)
        .fold((0, 0), |(n, len), v| (n + 1, len + v.copied_len()));
    let len = copied + envelope.extensions.values().map(String::len).sum::<usize>();
    let mut values = Values {
        buf: if pooled {
            crate::arena::take(len)
        } else {
            BytesMut::with_capacity(len)
        },
    };
    out.reserve_exact(count + envelope.extensions.len());
    for (name, value) in attributes {
        if let Some(value) = *value {
            values.put(out, HeaderName::from_static(name), value);
        }
    }
    for (name, value) in &envelope.extensions {
        let name = HeaderName::from(format!("ce_{name}"));
        values.put(out, name, Text::Copy(value.as_bytes()));
    }
    if let Some(ct) = content_type {
        values.put(out, HeaderName::from_static(CONTENT_TYPE), ct);
    }
    if pooled {
        crate::arena::put_back(values.buf);
    }
}

/// Reads the envelope from a consumed record's headers (binary mode).
pub fn decode_headers(headers: &[Header]) -> Result<Envelope, HeaderError> {
    decode_header_pairs(headers.iter().map(|h| (h.key.as_ref(), h.value.as_deref())))
}

/// Reads the envelope from `(key, value)` header pairs (binary mode); see the module docs for
/// what is an error.
pub fn decode_header_pairs<'a, I>(headers: I) -> Result<Envelope, HeaderError>
where
    I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    // Attribute name (without `ce_`; `datacontenttype` for content-type) → value.
    let mut attrs: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in headers {
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        let attr = if let Some(name) = key.strip_prefix("ce_") {
            name.to_owned()
        } else if key.eq_ignore_ascii_case(CONTENT_TYPE) {
            "datacontenttype".to_owned()
        } else {
            continue;
        };
        let Some(value) = value else {
            return Err(HeaderError::Null(key.to_owned()));
        };
        let Ok(value) = std::str::from_utf8(value) else {
            return Err(HeaderError::NotUtf8(key.to_owned()));
        };
        if attrs.contains_key(&attr) {
            return Err(HeaderError::Duplicate(key.to_owned()));
        }
        attrs.insert(attr, value.to_owned());
    }
    envelope_from_attributes(attrs, false)
}

/// Builds the envelope from attributes by name (`datacontenttype` included). In structured
/// mode, `data`/`data_base64` were removed by the caller.
fn envelope_from_attributes(
    mut attrs: BTreeMap<String, String>,
    structured: bool,
) -> Result<Envelope, HeaderError> {
    let prefix = if structured { "" } else { "ce_" };
    let mut required = |name: &'static str, header: &'static str| {
        let value = attrs
            .remove(name)
            .ok_or(HeaderError::Missing(if structured { name } else { header }))?;
        if value.is_empty() {
            return Err(invalid(&format!("{prefix}{name}"), "must not be empty"));
        }
        Ok(value)
    };
    let spec = required("specversion", names::SPECVERSION)?;
    if spec != SPEC_VERSION {
        return Err(HeaderError::UnsupportedSpecVersion(spec));
    }
    let id = required("id", names::ID)?;
    let source = required("source", names::SOURCE)?;
    let event_type = required("type", names::TYPE)?;
    let time = attrs.remove("time").map(|t| parse_time(&t)).transpose()?;
    let tags = match attrs.remove("tags") {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
            invalid(
                &format!("{prefix}tags"),
                format!("not a JSON array of strings: {e}"),
            )
        })?,
    };
    Ok(Envelope {
        id,
        event_type,
        time,
        source,
        source_version: attrs.remove("sourceversion"),
        schema_version: attrs.remove("schemaversion"),
        correlation_id: attrs.remove("correlationid"),
        causation_id: attrs.remove("causationid"),
        user_id: attrs.remove("authid"),
        tenant_id: attrs.remove("tenantid"),
        tags,
        subject: attrs.remove("subject"),
        data_schema: attrs.remove("dataschema"),
        data_content_type: attrs.remove("datacontenttype"),
        extensions: attrs,
    })
    .map(|mut e: Envelope| {
        // Only valid extension names are kept (others cannot be written back).
        e.extensions
            .retain(|name, _| valid_extension_name(name) && !RESERVED.contains(&name.as_str()));
        e
    })
}

/// Whether `content_type` is CloudEvents structured mode in JSON (case-insensitive prefix).
pub fn is_structured_json(content_type: &[u8]) -> bool {
    content_type.len() >= STRUCTURED_JSON.len()
        && content_type[..STRUCTURED_JSON.len()].eq_ignore_ascii_case(STRUCTURED_JSON.as_bytes())
}

/// Finds the `content-type` header (any case); `Ok(None)` when absent, an error when it is
/// duplicated, null or not UTF-8.
pub fn content_type<'a, I>(headers: I) -> Result<Option<&'a [u8]>, HeaderError>
where
    I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    let mut found = None;
    for (key, value) in headers {
        if key.eq_ignore_ascii_case(CONTENT_TYPE.as_bytes()) {
            if found.is_some() {
                return Err(HeaderError::Duplicate(CONTENT_TYPE.to_owned()));
            }
            found = Some(value.ok_or_else(|| HeaderError::Null(CONTENT_TYPE.to_owned()))?);
        }
    }
    Ok(found)
}

/// The data of a structured-mode event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StructuredData {
    /// No data.
    None,
    /// `data`, as JSON.
    Json(serde_json::Value),
    /// `data_base64`, the base64 text as found (not decoded).
    Base64(String),
}

/// Reads a structured-mode event (a CloudEvents JSON object) from a record value.
///
/// Attribute values must be JSON strings (numbers and booleans are rendered as text for
/// extensions); `data` and `data_base64` together are an error.
pub fn decode_structured(value: &[u8]) -> Result<(Envelope, StructuredData), HeaderError> {
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| HeaderError::Structured(e.to_string()))?;
    let serde_json::Value::Object(object) = json else {
        return Err(HeaderError::Structured("not a JSON object".to_owned()));
    };
    let mut attrs = BTreeMap::new();
    let mut data = StructuredData::None;
    for (name, value) in object {
        match (name.as_str(), value) {
            ("data", v) => {
                if matches!(data, StructuredData::Base64(_)) {
                    return Err(HeaderError::Structured("both data and data_base64".into()));
                }
                data = StructuredData::Json(v);
            }
            ("data_base64", serde_json::Value::String(s)) => {
                if matches!(data, StructuredData::Json(_)) {
                    return Err(HeaderError::Structured("both data and data_base64".into()));
                }
                data = StructuredData::Base64(s);
            }
            (_, serde_json::Value::Null) => {}
            (_, serde_json::Value::String(s)) => {
                attrs.insert(name, s);
            }
            (_, v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                attrs.insert(name, v.to_string());
            }
            (_, _) => return Err(invalid(&name, "not a string, number or boolean")),
        }
    }
    let envelope = envelope_from_attributes(attrs, true)?;
    Ok((envelope, data))
}

/// Reads the envelope of a consumed record in either mode: structured when its `content-type`
/// says `application/cloudevents+json` (the value is parsed), binary otherwise (headers only).
pub fn envelope_of(headers: &[Header], value: Option<&[u8]>) -> Result<Envelope, HeaderError> {
    let ct = content_type(headers.iter().map(|h| (h.key.as_ref(), h.value.as_deref())))?;
    match (ct, value) {
        (Some(ct), Some(value)) if is_structured_json(ct) => Ok(decode_structured(value)?.0),
        (Some(ct), None) if is_structured_json(ct) => Err(HeaderError::Structured(
            "structured mode with a null value".into(),
        )),
        _ => decode_headers(headers),
    }
}

#[cfg(test)]
#[path = "cloudevents_tests.rs"]
mod tests;
