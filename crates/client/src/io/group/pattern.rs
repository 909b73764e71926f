//! Topic patterns of `subscribe(Pattern)`: a topic matches when the regular expression
//! matches its whole name, as Java's `Pattern.matcher(topic).matches()`.

use crate::config::ConfigError;

/// A compiled topic pattern.
///
/// ```
/// use kafkit::io::group::TopicPattern;
///
/// let p = TopicPattern::new("orders-.*").unwrap();
/// assert!(p.matches("orders-eu"));
/// assert!(!p.matches("old-orders-eu"));
/// assert!(TopicPattern::new("(").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TopicPattern {
    regex: regex::Regex,
}

impl TopicPattern {
    /// Compiles `pattern` (the `regex` crate's syntax, close to Java's for topic patterns).
    pub fn new(pattern: &str) -> Result<Self, ConfigError> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(|regex| TopicPattern { regex })
            .map_err(|e| ConfigError::invalid("subscription pattern", pattern, e.to_string()))
    }

    /// Whether `topic`'s whole name matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }
}
