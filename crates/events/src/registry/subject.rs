//! Subject name strategies: which registry subject a topic's key or value schema lives under.

use std::str::FromStr;

use super::error::RegistryError;

/// How a subject name is derived from a topic and a record name (Confluent's
/// `key.subject.name.strategy` / `value.subject.name.strategy`).
///
/// ```
/// use kafkit_events::registry::SubjectNameStrategy;
/// let s = SubjectNameStrategy::TopicName;
/// assert_eq!(s.subject("orders", None, false).unwrap(), "orders-value");
/// let s: SubjectNameStrategy =
///     "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy".parse().unwrap();
/// assert_eq!(s.subject("orders", Some("shop.Order"), true).unwrap(), "orders-shop.Order");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value` (the default).
    #[default]
    TopicName,
    /// The record's full name (namespace + name): one subject per type, on any topic.
    RecordName,
    /// `<topic>-<full record name>`: several types per topic, each evolving on its own.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for `topic`'s key (`is_key`) or value whose record is `record_name`.
    /// RecordName and TopicRecordName need the record name.
    pub fn subject(
        &self,
        topic: &str,
        record_name: Option<&str>,
        is_key: bool,
    ) -> Result<String, RegistryError> {
        let record = || {
            record_name.filter(|n| !n.is_empty()).ok_or_else(|| {
                RegistryError::config(
                    if is_key {
                        "key.subject.name.strategy"
                    } else {
                        "value.subject.name.strategy"
                    },
                    format!("{self:?} needs a record name (the schema has none)"),
                )
            })
        };
        Ok(match self {
            SubjectNameStrategy::TopicName => {
                format!("{topic}-{}", if is_key { "key" } else { "value" })
            }
            SubjectNameStrategy::RecordName => record()?.to_owned(),
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{}", record()?),
        })
    }
}

impl FromStr for SubjectNameStrategy {
    type Err = RegistryError;

    /// Accepts Confluent's class names (`io.confluent.kafka.serializers.subject.TopicNameStrategy`
    /// and the two others), their simple names (`TopicNameStrategy`), and short names
    /// (`topic_name`, `record_name`, `topic_record_name`, `topic`, `record`, `topic_record`),
    /// ignoring case.
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        let simple = s.trim().rsplit('.').next().unwrap_or_default();
        let normalized: String = simple
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let normalized = normalized.strip_suffix("strategy").unwrap_or(&normalized);
        match normalized {
            "topicname" | "topic" => Ok(SubjectNameStrategy::TopicName),
            "recordname" | "record" => Ok(SubjectNameStrategy::RecordName),
            "topicrecordname" | "topicrecord" => Ok(SubjectNameStrategy::TopicRecordName),
            _ => Err(RegistryError::config(
                "subject.name.strategy",
                format!(
                    "unknown strategy `{s}` (expected TopicNameStrategy, RecordNameStrategy or \
                     TopicRecordNameStrategy)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = |s: &str| s.parse::<SubjectNameStrategy>().ok();
        assert_eq!(
            p("io.confluent.kafka.serializers.subject.TopicNameStrategy"),
            Some(SubjectNameStrategy::TopicName)
        );
        assert_eq!(
            p("io.confluent.kafka.serializers.subject.RecordNameStrategy"),
            Some(SubjectNameStrategy::RecordName)
        );
        assert_eq!(
            p("topic_record_name"),
            Some(SubjectNameStrategy::TopicRecordName)
        );
        assert_eq!(p("record"), Some(SubjectNameStrategy::RecordName));
        assert_eq!(p("AssociatedNameStrategy"), None);
    }

    #[test]
    fn subjects() {
        let t = SubjectNameStrategy::TopicName;
        assert_eq!(t.subject("t", None, true).ok().as_deref(), Some("t-key"));
        let r = SubjectNameStrategy::RecordName;
        assert_eq!(
            r.subject("t", Some("a.B"), false).ok().as_deref(),
            Some("a.B")
        );
        assert!(r.subject("t", None, false).is_err());
        let tr = SubjectNameStrategy::TopicRecordName;
        assert_eq!(
            tr.subject("t", Some("a.B"), false).ok().as_deref(),
            Some("t-a.B")
        );
    }
}
