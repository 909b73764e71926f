//! The platform's topic catalogue, declared in code, and [`ensure_topics`] to create the
//! missing ones and check the existing ones at start-up.
//!
//! [`catalogue`] is the event-driven architecture's topic list: names, partitions,
//! retention, and the production settings every topic shares (replication factor 3,
//! `min.insync.replicas` 2, lz4, `cleanup.policy=delete`). [`seed_topics`] adds the topics the
//! other SDKs' event types publish to by default (workflow, inspection, employee events).
//!
//! On a cluster smaller than a topic's replication factor (a one-broker development setup)
//! the factor is clamped to the cluster size, and `min.insync.replicas` with it, with a
//! warning; an existing topic with fewer partitions than declared, or a config that differs,
//! is reported in [`EnsureReport::mismatches`], and refused when [`EnsureOptions::strict`] is
//! set; [`EnsureOptions::alter_configs`] sets the declared configs on existing topics instead.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use kafkit::admin::Admin;
//! use kafkit_events::topics::{catalogue, ensure_topics, EnsureOptions};
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! let report = ensure_topics(&admin, &catalogue(), &EnsureOptions::default()).await?;
//! println!("created {:?}, already there {:?}", report.created, report.existing);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit::admin::{Admin, AlterConfigOp, NewTopic};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// `cleanup.policy` of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete old segments after the retention (`delete`).
    Delete,
    /// Keep the last record per key (`compact`).
    Compact,
    /// Both (`compact,delete`).
    CompactDelete,
}

impl CleanupPolicy {
    /// The value of `cleanup.policy`.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }
}

/// One topic of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic name.
    pub name: String,
    /// What the topic carries.
    pub purpose: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (clamped to the cluster size by [`ensure_topics`]).
    pub replication_factor: i16,
    /// `min.insync.replicas` (clamped to the replication factor).
    pub min_insync_replicas: i16,
    /// `retention.ms`; `None` keeps forever (`-1`).
    pub retention: Option<Duration>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `compression.type` on the broker (`producer` keeps what producers send).
    pub compression: String,
    /// Any other topic config.
    pub extra_configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A topic with the architecture's production defaults: replication 3,
    /// `min.insync.replicas` 2, 7 days, `delete`, lz4.
    pub fn new(name: impl Into<String>, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            purpose: String::new(),
            partitions,
            replication_factor: 3,
            min_insync_replicas: 2,
            retention: Some(7 * DAY),
            cleanup_policy: CleanupPolicy::Delete,
            compression: "lz4".to_owned(),
            extra_configs: BTreeMap::new(),
        }
    }

    /// Sets what the topic carries.
    pub fn purpose(mut self, purpose: impl Into<String>) -> TopicSpec {
        self.purpose = purpose.into();
        self
    }

    /// Sets `retention.ms` (`None`: forever).
    pub fn retention(mut self, retention: Option<Duration>) -> TopicSpec {
        self.retention = retention;
        self
    }

    /// Sets the replication factor and `min.insync.replicas`.
    pub fn replication(mut self, factor: i16, min_insync_replicas: i16) -> TopicSpec {
        self.replication_factor = factor;
        self.min_insync_replicas = min_insync_replicas;
        self
    }

    /// Sets `cleanup.policy`.
    pub fn cleanup_policy(mut self, policy: CleanupPolicy) -> TopicSpec {
        self.cleanup_policy = policy;
        self
    }

    /// Adds another topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> TopicSpec {
        self.extra_configs.insert(key.into(), value.into());
        self
    }

    /// The topic configs as the broker names them, for a cluster of `brokers` brokers
    /// (`min.insync.replicas` clamped to the effective replication factor).
    pub fn configs(&self, brokers: usize) -> BTreeMap<String, String> {
        let replication = self.effective_replication(brokers);
        let mut configs = BTreeMap::new();
        let retention = self
            .retention
            .map_or(-1, |r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX));
        configs.insert("retention.ms".to_owned(), retention.to_string());
        configs.insert(
            "cleanup.policy".to_owned(),
            self.cleanup_policy.as_str().to_owned(),
        );
        configs.insert(
            "min.insync.replicas".to_owned(),
            self.min_insync_replicas.min(replication).max(1).to_string(),
        );
        configs.insert("compression.type".to_owned(), self.compression.clone());
        for (k, v) in &self.extra_configs {
            configs.insert(k.clone(), v.clone());
        }
        configs
    }

    /// The replication factor on a cluster of `brokers` brokers: the declared one, at most
    /// the cluster size (at least 1).
    pub fn effective_replication(&self, brokers: usize) -> i16 {
        let size = i16::try_from(brokers).unwrap_or(i16::MAX).max(1);
        self.replication_factor.min(size).max(1)
    }

    /// The [`NewTopic`] that creates this topic on a cluster of `brokers` brokers.
    pub fn new_topic(&self, brokers: usize) -> NewTopic {
        let mut topic = NewTopic::new(
            self.name.clone(),
            self.partitions,
            self.effective_replication(brokers),
        );
        for (k, v) in self.configs(brokers) {
            topic = topic.config(k, v);
        }
        topic
    }
}

/// The event-driven architecture's topics (names, partitions, retention as its topic table
/// gives them; replication 3, `min.insync.replicas` 2, lz4, `delete` for all).
pub fn catalogue() -> Vec<TopicSpec> {
    let t = |name: &str, partitions: i32, days: u32, purpose: &str| {
        TopicSpec::new(name, partitions)
            .retention(Some(DAY * days))
            .purpose(purpose)
    };
    vec![
        t("data-ingestion", 12, 7, "Data ingestion events"),
        t("data-quality", 6, 30, "Quality check results"),
        t("data-lineage", 3, 90, "Lineage updates"),
        t("system-health", 3, 7, "Service health"),
        t("deployment-events", 3, 90, "Deployments"),
        t("config-changes", 3, 365, "Config updates"),
        t("security-events", 6, 365, "Security events"),
        t("audit-user-actions", 12, 365, "User actions"),
        t("audit-api-calls", 12, 30, "API calls"),
        t("audit-data-access", 12, 90, "Data access"),
    ]
}

/// The default topics of the other seed SDKs' event types ([`crate::catalog`]): workflow,
/// chip-quality inspection and employee events (6 partitions, 7 days, production
/// replication).
pub fn seed_topics() -> Vec<TopicSpec> {
    [
        ("workflow-events", "Workflow lifecycle events"),
        (
            "chip-quality.inspection.events",
            "Inspection lifecycle events",
        ),
        ("employees.events", "Employee events"),
    ]
    .into_iter()
    .map(|(name, purpose)| TopicSpec::new(name, 6).purpose(purpose))
    .collect()
}

/// How [`ensure_topics`] treats existing topics that differ from their spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureOptions {
    /// Refuse ([`TopicsError::Mismatch`]) instead of reporting differences.
    pub strict: bool,
    /// Set the declared configs on existing topics whose configs differ
    /// (IncrementalAlterConfigs). Partition counts are never changed.
    pub alter_configs: bool,
}

/// A difference between an existing topic and its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMismatch {
    /// The topic.
    pub topic: String,
    /// `partitions` or the config name.
    pub setting: String,
    /// The declared value.
    pub expected: String,
    /// The value on the cluster (`None`: not reported).
    pub actual: Option<String>,
}

/// What [`ensure_topics`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureReport {
    /// Topics created now.
    pub created: Vec<String>,
    /// Topics that were already there.
    pub existing: Vec<String>,
    /// Topics whose replication factor was clamped to the cluster size: (topic, declared,
    /// used).
    pub clamped: Vec<(String, i16, i16)>,
    /// Differences found on existing topics (after `alter_configs`, only what could not be
    /// fixed: partition counts).
    pub mismatches: Vec<TopicMismatch>,
}

/// Why [`ensure_topics`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TopicsError {
    /// An admin call failed.
    #[error("topic admin call failed: {0}")]
    Admin(#[from] kafkit::Error),
    /// Existing topics differ from their specs (with [`EnsureOptions::strict`]).
    #[error("{} topic setting(s) differ from the catalogue, first: {}", .0.len(), describe(.0))]
    Mismatch(Vec<TopicMismatch>),
}

impl TopicsError {
    /// Whether trying again may succeed (a retriable admin error).
    pub fn is_retriable(&self) -> bool {
        match self {
            TopicsError::Admin(e) => e.is_retriable(),
            TopicsError::Mismatch(_) => false,
        }
    }
}

fn describe(mismatches: &[TopicMismatch]) -> String {
    mismatches.first().map_or_else(String::new, |m| {
        format!(
            "{} {} is {} (declared {})",
            m.topic,
            m.setting,
            m.actual.as_deref().unwrap_or("unset"),
            m.expected
        )
    })
}

/// Whether `actual` (as the broker reports it) satisfies `expected` for `setting`.
fn config_matches(setting: &str, expected: &str, actual: Option<&str>) -> bool {
    let Some(actual) = actual else { return false };
    if setting == "cleanup.policy" {
        let norm = |s: &str| {
            let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
            parts.sort_unstable();
            parts.join(",")
        };
        return norm(expected) == norm(actual);
    }
    expected.trim() == actual.trim()
}

/// Creates the topics of `specs` that are missing and checks those that exist: partition
/// count (fewer than declared is a mismatch; more is fine: the partition count only grows)
/// and the declared configs (DescribeConfigs). Replication is clamped to the cluster size
/// with a warning.
pub async fn ensure_topics(
    admin: &Admin,
    specs: &[TopicSpec],
    options: &EnsureOptions,
) -> Result<EnsureReport, TopicsError> {
    let brokers = admin.describe_cluster().await?.len();
    let mut report = EnsureReport::default();
    for spec in specs {
        let used = spec.effective_replication(brokers);
        if used != spec.replication_factor {
            tracing::warn!(
                topic = %spec.name,
                declared = spec.replication_factor,
                used,
                brokers,
                "replication factor clamped to the cluster size"
            );
            report
                .clamped
                .push((spec.name.clone(), spec.replication_factor, used));
        }
    }
    // Which exist already: a metadata request for all of them.
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut existing = Vec::new();
    for name in &names {
        if admin.describe_topics(&[name]).await.is_ok() {
            existing.push(*name);
        }
    }
    let missing: Vec<NewTopic> = specs
        .iter()
        .filter(|s| !existing.contains(&s.name.as_str()))
        .map(|s| s.new_topic(brokers))
        .collect();
    if !missing.is_empty() {
        admin.create_topics_if_missing(&missing).await?;
        report.created = missing.iter().map(|t| t.name.clone()).collect();
        tracing::info!(topics = ?report.created, "created topics");
    }
    report.existing = existing.iter().map(|s| (*s).to_owned()).collect();
    if existing.is_empty() {
        return Ok(report);
    }
    let infos = admin.describe_topics(&existing).await?;
    let configs = admin.describe_topic_configs(&existing).await?;
    for spec in specs.iter().filter(|s| existing.contains(&s.name.as_str())) {
        if let Some(info) = infos.iter().find(|i| i.name == spec.name) {
            let actual = i32::try_from(info.partitions.len()).unwrap_or(i32::MAX);
            if actual < spec.partitions {
                report.mismatches.push(TopicMismatch {
                    topic: spec.name.clone(),
                    setting: "partitions".to_owned(),
                    expected: spec.partitions.to_string(),
                    actual: Some(actual.to_string()),
                });
            }
        }
        let Some(current) = configs.iter().find(|c| c.topic == spec.name) else {
            continue;
        };
        let mut changes = Vec::new();
        for (key, expected) in spec.configs(brokers) {
            let actual = current.get(&key);
            if config_matches(&key, &expected, actual) {
                continue;
            }
            if options.alter_configs {
                changes.push(AlterConfigOp::Set(key, expected));
            } else {
                report.mismatches.push(TopicMismatch {
                    topic: spec.name.clone(),
                    setting: key,
                    expected,
                    actual: actual.map(str::to_owned),
                });
            }
        }
        if !changes.is_empty() {
            tracing::info!(topic = %spec.name, changes = changes.len(), "altering topic configs");
            admin
                .incremental_alter_topic_configs(&spec.name, &changes)
                .await?;
        }
    }
    for m in &report.mismatches {
        tracing::warn!(
            topic = %m.topic,
            setting = %m.setting,
            expected = %m.expected,
            actual = ?m.actual,
            "topic differs from the catalogue"
        );
    }
    if options.strict && !report.mismatches.is_empty() {
        return Err(TopicsError::Mismatch(report.mismatches));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_matches_the_architecture_table() {
        let topics = catalogue();
        assert_eq!(topics.len(), 10);
        let ingestion = &topics[0];
        assert_eq!(
            (ingestion.name.as_str(), ingestion.partitions),
            ("data-ingestion", 12)
        );
        let configs = ingestion.configs(3);
        assert_eq!(configs["retention.ms"], "604800000");
        assert_eq!(configs["min.insync.replicas"], "2");
        assert_eq!(configs["compression.type"], "lz4");
        assert_eq!(configs["cleanup.policy"], "delete");
        let config_changes = topics.iter().find(|t| t.name == "config-changes").unwrap();
        assert_eq!(
            config_changes.configs(3)["retention.ms"],
            (365 * 86_400_000u64).to_string()
        );
    }

    #[test]
    fn replication_is_clamped_to_the_cluster() {
        let spec = TopicSpec::new("t", 3);
        assert_eq!(spec.effective_replication(1), 1);
        assert_eq!(spec.effective_replication(5), 3);
        assert_eq!(spec.configs(1)["min.insync.replicas"], "1");
        let topic = spec.new_topic(1);
        assert_eq!(topic.replication_factor, 1);
        assert_eq!(topic.configs["min.insync.replicas"], "1");
        assert_eq!(
            TopicSpec::new("t", 1).retention(None).configs(1)["retention.ms"],
            "-1"
        );
    }

    #[test]
    fn cleanup_policy_compares_as_a_set() {
        assert!(config_matches(
            "cleanup.policy",
            "compact,delete",
            Some("delete, compact")
        ));
        assert!(!config_matches("cleanup.policy", "compact", Some("delete")));
        assert!(!config_matches("retention.ms", "1", None));
    }
}
