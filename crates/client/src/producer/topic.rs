//! [`Topic`]: a topic name that is cheap to clone, so that a [`ProducerRecord`] does not
//! allocate its topic per record.
//!
//! [`ProducerRecord`]: super::ProducerRecord

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A topic name shared by reference counting: clone it once per record instead of building a
/// new `String` each time. Built from `&str`, `String`, `&String` or `Arc<str>`; reads as a
/// `&str`.
///
/// ```
/// use kafkit::producer::{ProducerRecord, Topic};
///
/// let orders = Topic::from("orders");
/// for i in 0..3 {
///     // No allocation for the topic: `clone` bumps a reference count.
///     let record = ProducerRecord::new(orders.clone()).value(format!("{i}"));
///     assert_eq!(&*record.topic, "orders");
/// }
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared name.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl Default for Topic {
    fn default() -> Self {
        Topic(Arc::from(""))
    }
}

impl Deref for Topic {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Topic {
    fn from(name: &str) -> Self {
        Topic(Arc::from(name))
    }
}

impl From<&String> for Topic {
    fn from(name: &String) -> Self {
        Topic(Arc::from(name.as_str()))
    }
}

impl From<String> for Topic {
    fn from(name: String) -> Self {
        Topic(Arc::from(name))
    }
}

impl From<Arc<str>> for Topic {
    fn from(name: Arc<str>) -> Self {
        Topic(name)
    }
}

impl From<&Topic> for Topic {
    fn from(name: &Topic) -> Self {
        name.clone()
    }
}

impl From<Topic> for Arc<str> {
    fn from(name: Topic) -> Self {
        name.0
    }
}

impl PartialEq<str> for Topic {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Topic {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}
