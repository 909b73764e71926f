//! W3C Trace Context (`traceparent`, `tracestate`) in Kafka headers.
//!
//! The parse/format half is pure. With the `opentelemetry` feature, `inject_current` writes the
//! current `tracing` span's OpenTelemetry context into a record's headers and
//! `set_parent_from_headers` makes a span a child of the context found in a record. Headers are
//! replaced, never appended, so a record carries one trace context.
//!
//! ```
//! use kafkit_events::trace_context::TraceParent;
//!
//! let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
//! assert!(tp.sampled());
//! assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use kafkit::producer::HeaderName;

/// The header carrying the trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// The header carrying vendor trace state.
pub const TRACESTATE: &str = "tracestate";
/// The most `tracestate` entries kept (W3C: 32).
pub const MAX_TRACESTATE_ENTRIES: usize = 32;

/// Why a `traceparent` or `tracestate` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceContextError {
    /// The `traceparent` is malformed.
    #[error("traceparent: {0}")]
    TraceParent(&'static str),
    /// The `tracestate` is malformed.
    #[error("tracestate: {0}")]
    TraceState(&'static str),
}

/// A parsed `traceparent`: version `00` layout (`<version>-<trace-id>-<parent-id>-<flags>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The version (`00` today; `ff` is invalid).
    pub version: u8,
    /// The trace id (not all zero).
    pub trace_id: [u8; 16],
    /// The parent span id (not all zero).
    pub parent_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// A version-00 trace parent; `None` when an id is all zero.
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Option<Self> {
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            version: 0,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None, // W3C: upper case is invalid
    }
}

fn parse_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl FromStr for TraceParent {
    type Err = TraceContextError;

    /// Parses per W3C: lowercase hex; version `ff` invalid; version `00` exactly 55 characters;
    /// a higher version may carry more fields after a `-`, which are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = TraceContextError::TraceParent;
        let b = s.trim_matches([' ', '\t']).as_bytes();
        if b.len() < 55 {
            return Err(err("shorter than 55 characters"));
        }
        let version = parse_hex::<1>(&b[0..2]).ok_or(err("bad version"))?[0];
        if version == 0xff {
            return Err(err("version ff is invalid"));
        }
        if version == 0 && b.len() != 55 {
            return Err(err("version 00 is exactly 55 characters"));
        }
        if version != 0 && b.len() > 55 && b[55] != b'-' {
            return Err(err("bad separator after flags"));
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(err("bad separator"));
        }
        let trace_id = parse_hex::<16>(&b[3..35]).ok_or(err("bad trace id"))?;
        let parent_id = parse_hex::<8>(&b[36..52]).ok_or(err("bad parent id"))?;
        let flags = parse_hex::<1>(&b[53..55]).ok_or(err("bad flags"))?[0];
        if trace_id == [0; 16] {
            return Err(err("all-zero trace id"));
        }
        if parent_id == [0; 8] {
            return Err(err("all-zero parent id"));
        }
        Ok(TraceParent {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    /// Always writes the version-00 layout (a higher version's extra fields are not kept).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}-", self.version)?;
        write_hex(f, &self.trace_id)?;
        f.write_str("-")?;
        write_hex(f, &self.parent_id)?;
        write!(f, "-{:02x}", self.flags)
    }
}

/// A parsed `tracestate`: `key=value` entries, left first (most recent first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceState {
    /// The entries, in order.
    pub entries: Vec<(String, String)>,
}

fn valid_key(key: &str) -> bool {
    // simple-key = lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")
    // multi-tenant-key = tenant-id "@" system-id
    let simple = |k: &str, first_digit_ok: bool| {
        let b = k.as_bytes();
        !b.is_empty()
            && b.len() <= 256
            && (b[0].is_ascii_lowercase() || (first_digit_ok && b[0].is_ascii_digit()))
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(c))
    };
    match key.split_once('@') {
        None => simple(key, false),
        Some((tenant, system)) => {
            tenant.len() <= 241
                && system.len() <= 14
                && simple(tenant, true)
                && simple(system, false)
        }
    }
}

fn valid_value(value: &str) -> bool {
    // 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && b[b.len() - 1] != b' '
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

impl FromStr for TraceState {
    type Err = TraceContextError;

    /// Parses comma-separated entries (empty list members and blanks around them are allowed);
    /// more than 32 entries, a bad key or value, or a key seen twice is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = TraceContextError::TraceState;
        let mut entries: Vec<(String, String)> = Vec::new();
        for member in s.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=').ok_or(err("an entry without '='"))?;
            if !valid_key(key) {
                return Err(err("bad key"));
            }
            if !valid_value(value) {
                return Err(err("bad value"));
            }
            if entries.iter().any(|(k, _)| k == key) {
                return Err(err("a key appears twice"));
            }
            if entries.len() == MAX_TRACESTATE_ENTRIES {
                return Err(err("more than 32 entries"));
            }
            entries.push((key.to_owned(), value.to_owned()));
        }
        Ok(TraceState { entries })
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// A trace context as carried by a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The parent.
    pub parent: TraceParent,
    /// The vendor state (empty when absent).
    pub state: TraceState,
}

/// Sets header `name` to `value` in `headers`: every existing header of that name is removed
/// first, so the record carries exactly one.
pub fn set_header(
    headers: &mut Vec<(HeaderName, Option<Bytes>)>,
    name: impl Into<HeaderName>,
    value: Bytes,
) {
    let name = name.into();
    headers.retain(|(k, _)| *k != name);
    headers.push((name, Some(value)));
}

/// Writes `cx` as `traceparent` (and `tracestate` when not empty) into `headers`, replacing any
/// there; an empty state removes a stale `tracestate`.
pub fn inject(headers: &mut Vec<(HeaderName, Option<Bytes>)>, cx: &TraceContext) {
    set_header(headers, TRACEPARENT, Bytes::from(cx.parent.to_string()));
    if cx.state.entries.is_empty() {
        headers.retain(|(k, _)| *k != TRACESTATE);
    } else {
        set_header(headers, TRACESTATE, Bytes::from(cx.state.to_string()));
    }
}

/// Reads the trace context from header pairs. `Ok(None)` when there is no `traceparent`; a
/// malformed or repeated `traceparent` is an error; a malformed `tracestate` is dropped (W3C: the
/// parent stays usable).
pub fn extract<'a, I>(headers: I) -> Result<Option<TraceContext>, TraceContextError>
where
    I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    let mut parent = None;
    let mut state: Option<&[u8]> = None;
    let mut states = 0;
    for (k, v) in headers {
        if k == TRACEPARENT.as_bytes() {
            if parent.is_some() {
                return Err(TraceContextError::TraceParent("appears more than once"));
            }
            let text = v
                .and_then(|v| std::str::from_utf8(v).ok())
                .ok_or(TraceContextError::TraceParent("null or not UTF-8"))?;
            parent = Some(text.parse::<TraceParent>()?);
        } else if k == TRACESTATE.as_bytes() {
            states += 1;
            state = v;
        }
    }
    let Some(parent) = parent else {
        return Ok(None);
    };
    let state = match (states, state) {
        (1, Some(v)) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default(),
        _ => TraceState::default(),
    };
    Ok(Some(TraceContext { parent, state }))
}

#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(feature = "opentelemetry")]
pub use otel::{inject_current, set_parent_from_headers};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn w3c_examples() {
        let tp: TraceParent = EXAMPLE.parse().unwrap();
        assert_eq!(tp.version, 0);
        assert_eq!(tp.flags, 1);
        assert_eq!(tp.to_string(), EXAMPLE);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad:?}");
        }
        // A future version may append fields.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert_eq!(future.parse::<TraceParent>().map(|t| t.version), Ok(1));
    }

    #[test]
    fn tracestate_parses_and_formats() {
        let ts: TraceState = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,,tenant@sys=x"
            .parse()
            .unwrap();
        assert_eq!(ts.entries.len(), 3);
        assert_eq!(
            ts.to_string(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@sys=x"
        );
        assert!("a=1,a=2".parse::<TraceState>().is_err());
        assert!("A=1".parse::<TraceState>().is_err());
        assert!("a".parse::<TraceState>().is_err());
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(many.join(",").parse::<TraceState>().is_err());
        assert!(many[..32].join(",").parse::<TraceState>().is_ok());
    }

    #[test]
    fn inject_replaces_and_extract_reads_back() {
        let cx = TraceContext {
            parent: EXAMPLE.parse().unwrap(),
            state: "a=b".parse().unwrap(),
        };
        let mut headers = vec![
            ("traceparent".into(), Some(Bytes::from_static(b"junk"))),
            ("x".into(), None),
            ("traceparent".into(), Some(Bytes::from_static(b"junk2"))),
        ];
        inject(&mut headers, &cx);
        assert_eq!(headers.iter().filter(|(k, _)| k == TRACEPARENT).count(), 1);
        let back = extract(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_deref())));
        assert_eq!(back, Ok(Some(cx.clone())));
        // A malformed tracestate is dropped, the parent kept.
        headers.push((TRACESTATE.into(), Some(Bytes::from_static(b"=="))));
        let back = extract(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_deref())));
        assert_eq!(
            back.map(|c| c.map(|c| c.state)),
            Ok(Some(TraceState::default()))
        );
        assert_eq!(extract(std::iter::empty()), Ok(None));
    }

    proptest! {
        #[test]
        fn traceparent_round_trips(t in any::<[u8; 16]>(), p in any::<[u8; 8]>(), flags in any::<u8>()) {
            if let Some(tp) = TraceParent::new(t, p, flags) {
                prop_assert_eq!(tp.to_string().parse::<TraceParent>(), Ok(tp));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let _ = s.parse::<TraceParent>();
            let _ = s.parse::<TraceState>();
        }

        #[test]
        fn tracestate_round_trips(entries in proptest::collection::vec(("[a-z][a-z0-9_*/-]{0,8}", "[!-+\\--<>-~]{1,8}"), 0..8)) {
            let mut seen = std::collections::HashSet::new();
            let entries: Vec<(String, String)> = entries.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
            let ts = TraceState { entries };
            prop_assert_eq!(ts.to_string().parse::<TraceState>(), Ok(ts));
        }
    }
}
