//! [`HeaderName`]: the name of a header on a record to produce, without an allocation per
//! record when the name is a constant.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The name of a header on a [`ProducerRecord`](super::ProducerRecord).
///
/// A `&'static str` (`"trace-id"`, a `const`) is kept as the reference: no allocation, nothing
/// to free. Any other name is held in an `Arc<str>`, so a name made once (per producer, per
/// event type) is shared by every record that clones it. Compared, ordered and hashed as its
/// text; on the wire it is the text's UTF-8 bytes, whichever way it is held.
///
/// ```
/// use kafkit::producer::HeaderName;
///
/// const TRACE_ID: HeaderName = HeaderName::from_static("trace-id");
/// let dynamic = HeaderName::from(format!("ce_{}", "tenant"));
/// assert_eq!(TRACE_ID, "trace-id");
/// assert_eq!(dynamic.as_str(), "ce_tenant");
/// let shared = dynamic.clone(); // a reference count, not a copy of the text
/// assert_eq!(shared, dynamic);
/// ```
#[derive(Clone)]
pub struct HeaderName(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl HeaderName {
    /// A name from a `&'static str`, usable in `const` items.
    pub const fn from_static(name: &'static str) -> Self {
        HeaderName(Repr::Static(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }

    /// The name as the bytes written on the wire (its UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl Default for HeaderName {
    /// The empty name (a valid, if unusual, header name).
    fn default() -> Self {
        HeaderName::from_static("")
    }
}

impl From<&'static str> for HeaderName {
    fn from(name: &'static str) -> Self {
        HeaderName::from_static(name)
    }
}

impl From<String> for HeaderName {
    /// Copies the text once into a shared `Arc<str>` (clones then share it).
    fn from(name: String) -> Self {
        HeaderName(Repr::Shared(Arc::from(name)))
    }
}

impl From<&String> for HeaderName {
    fn from(name: &String) -> Self {
        HeaderName(Repr::Shared(Arc::from(name.as_str())))
    }
}

impl From<Arc<str>> for HeaderName {
    fn from(name: Arc<str>) -> Self {
        HeaderName(Repr::Shared(name))
    }
}

impl From<Box<str>> for HeaderName {
    fn from(name: Box<str>) -> Self {
        HeaderName(Repr::Shared(Arc::from(name)))
    }
}

impl From<HeaderName> for String {
    fn from(name: HeaderName) -> Self {
        name.as_str().to_owned()
    }
}

impl Deref for HeaderName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for HeaderName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for HeaderName {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for HeaderName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HeaderName {}

impl PartialOrd for HeaderName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeaderName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for HeaderName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HeaderName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for HeaderName {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<HeaderName> for str {
    fn eq(&self, other: &HeaderName) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<HeaderName> for &str {
    fn eq(&self, other: &HeaderName) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use super::*;

    fn hash(x: &impl Hash) -> u64 {
        let mut h = DefaultHasher::new();
        x.hash(&mut h);
        h.finish()
    }

    #[test]
    fn static_and_shared_names_are_the_same_name() {
        let a = HeaderName::from("ce_id");
        let b = HeaderName::from(String::from("ce_id"));
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(hash(&a), hash(&"ce_id"));
        assert_eq!(a.as_bytes(), b"ce_id");
        let (lower, higher) = (HeaderName::from("a"), HeaderName::from(String::from("b")));
        assert!(lower < higher);
        assert_eq!(format!("{a} {b:?}"), "ce_id \"ce_id\"");
        assert_eq!(String::from(b), "ce_id");
    }

    #[test]
    fn a_static_name_is_not_copied_and_a_shared_one_is_shared() {
        const NAME: &str = "traceparent";
        let h = HeaderName::from(NAME);
        assert!(std::ptr::eq(h.as_str(), NAME));
        let shared = HeaderName::from(Arc::<str>::from("x-tenant"));
        let clone = shared.clone();
        assert!(std::ptr::eq(shared.as_str(), clone.as_str()));
    }
}
