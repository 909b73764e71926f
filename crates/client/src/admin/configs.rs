//! Admin calls on topic and broker configs: describe them (DescribeConfigs) and change them
//! one key at a time (IncrementalAlterConfigs, KIP-339: keys not named keep their values).
//! Topic configs are asked of any broker; a broker's own configs of that broker (the static
//! ones only it knows), the cluster-wide broker defaults of any broker.
//!
//! ```no_run
//! # async fn example() -> Result<(), kafkit::Error> {
//! use kafkit::admin::{Admin, AlterConfigOp};
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! let configs = admin.describe_topic_configs(&["events"]).await?;
//! println!("retention.ms = {:?}", configs[0].get("retention.ms"));
//! admin
//!     .incremental_alter_topic_configs("events", &[AlterConfigOp::Set("retention.ms".into(), "3600000".into())])
//!     .await?;
//! # Ok(())
//! # }
//! ```

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::Admin;
use crate::error::{Error, Result};
use crate::state::admin_retry::Route;

/// The resource type of a topic in the config APIs.
const TOPIC: i8 = 2;
/// The resource type of a broker in the config APIs.
const BROKER: i8 = 4;

/// Where a config value comes from (DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set on the topic itself.
    Topic,
    /// A broker setting applied to every topic (dynamic, static, or the default); for a
    /// broker's own configs: a dynamic per-broker, dynamic cluster-wide or static value.
    Broker,
    /// The built-in default.
    Default,
    /// Any other source code the broker sent.
    Other(i8),
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::Topic,
            2..=4 => ConfigSource::Broker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }
}

/// One config of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// The config name (`retention.ms`, …).
    pub name: String,
    /// Its value; `None` for a sensitive config or one without a value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether the broker hides its value.
    pub sensitive: bool,
}

/// The configs of one topic, as [`Admin::describe_topic_configs`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicConfigs {
    /// The topic name.
    pub topic: String,
    /// Every config the broker reported.
    pub entries: Vec<ConfigEntry>,
}

impl TopicConfigs {
    /// The value of config `name`, if reported and not hidden.
    pub fn get(&self, name: &str) -> Option<&str> {
        value_of(&self.entries, name)
    }
}

/// The configs of one broker, as [`Admin::describe_broker_configs`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerConfigs {
    /// The broker's node id.
    pub broker: i32,
    /// Every config the broker reported (its static `server.properties` values, dynamic
    /// per-broker and cluster-wide values, defaults).
    pub entries: Vec<ConfigEntry>,
}

impl BrokerConfigs {
    /// The value of config `name`, if reported and not hidden.
    pub fn get(&self, name: &str) -> Option<&str> {
        value_of(&self.entries, name)
    }

    /// The entry of config `name`, if reported.
    pub fn entry(&self, name: &str) -> Option<&ConfigEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

fn value_of<'a>(entries: &'a [ConfigEntry], name: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

/// One change of [`Admin::incremental_alter_topic_configs`] and
/// [`Admin::incremental_alter_broker_configs`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlterConfigOp {
    /// Sets a config to a value.
    Set(String, String),
    /// Removes a topic-level (or dynamic broker-level) value: the default applies again.
    Delete(String),
}

impl Admin {
    /// The configs of `topics` (DescribeConfigs; any broker answers for topics). A topic that
    /// does not exist is an error.
    pub async fn describe_topic_configs(&self, topics: &[&str]) -> Result<Vec<TopicConfigs>> {
        let described = self
            .retrying(
                "describe_topic_configs",
                Route::AnyBroker,
                |at| async move {
                    let conn = self.cluster.any_connection().await?;
                    self.describe_configs(&conn, TOPIC, topics, at.timeout)
                        .await
                },
            )
            .await?;
        Ok(described
            .into_iter()
            .map(|(topic, entries)| TopicConfigs { topic, entries })
            .collect())
    }

    /// The configs of each broker in `brokers` (node ids), each asked of that broker (Java's
    /// `describeConfigs` with a `BROKER` resource). A node id not in the cluster is an error.
    pub async fn describe_broker_configs(&self, brokers: &[i32]) -> Result<Vec<BrokerConfigs>> {
        let mut out = Vec::with_capacity(brokers.len());
        let mut call = self.call("describe_broker_configs", Route::Broker);
        for &broker in brokers {
            let name = broker.to_string();
            let described = loop {
                let at = call.attempt();
                let attempt = async {
                    self.ensure_broker_known(broker).await?;
                    let conn = self.cluster.connection(broker).await?;
                    self.describe_configs(&conn, BROKER, &[&name], at.timeout)
                        .await
                };
                match attempt.await {
                    Ok(described) => break described,
                    Err(err) => call.failed(err).await?,
                }
            };
            for (_, entries) in described {
                out.push(BrokerConfigs { broker, entries });
            }
        }
        Ok(out)
    }

    async fn ensure_broker_known(&self, broker: i32) -> Result<()> {
        if self
            .cluster
            .metadata()
            .brokers()
            .all(|b| b.node_id != broker)
        {
            self.cluster.refresh_metadata(Some(&[])).await?;
        }
        if self
            .cluster
            .metadata()
            .brokers()
            .any(|b| b.node_id == broker)
        {
            Ok(())
        } else {
            Err(Error::Broker {
                api: ApiKey::DescribeConfigs,
                code: kafka_protocol::error::ResponseError::BrokerNotAvailable,
                message: Some(format!("no broker {broker} in the cluster")),
            })
        }
    }

    /// DescribeConfigs of `names` (of `resource_type`) on `conn`: (name, entries) each.
    async fn describe_configs(
        &self,
        conn: &crate::io::connection::Connection,
        resource_type: i8,
        names: &[&str],
        timeout: std::time::Duration,
    ) -> Result<Vec<(String, Vec<ConfigEntry>)>> {
        let version = conn.version(ApiKey::DescribeConfigs)?;
        let request = describe_configs_request(resource_type, names);
        let response = conn.send(&request, version, timeout).await?;
        let mut out = Vec::with_capacity(response.results.len().min(names.len()));
        for result in response.results {
            let name = result.resource_name.as_str().to_owned();
            Error::check(
                ApiKey::DescribeConfigs,
                result.error_code,
                Some(&format!(
                    "{name}: {}",
                    result.error_message.as_deref().unwrap_or("")
                )),
            )?;
            let entries = result
                .configs
                .into_iter()
                .map(|c| ConfigEntry {
                    name: c.name.as_str().to_owned(),
                    value: c.value.map(|v| v.as_str().to_owned()),
                    source: ConfigSource::from_code(c.config_source),
                    read_only: c.read_only,
                    sensitive: c.is_sensitive,
                })
                .collect();
            out.push((name, entries));
        }
        Ok(out)
    }

    /// Changes configs of `topic`, leaving the others as they are (IncrementalAlterConfigs).
    pub async fn incremental_alter_topic_configs(
        &self,
        topic: &str,
        changes: &[AlterConfigOp],
    ) -> Result<()> {
        self.retrying(
            "incremental_alter_topic_configs",
            Route::AnyBroker,
            |at| async move {
                let conn = self.cluster.any_connection().await?;
                self.alter_configs(&conn, TOPIC, topic, changes, at.timeout)
                    .await
            },
        )
        .await
    }

    /// Changes dynamic broker configs, leaving the others as they are
    /// (IncrementalAlterConfigs with a `BROKER` resource): of broker `Some(id)` (sent to that
    /// broker), or the cluster-wide default of every broker with `None`. A config that is not
    /// dynamically updatable is the broker's `INVALID_REQUEST`/`INVALID_CONFIG`, naming it.
    pub async fn incremental_alter_broker_configs(
        &self,
        broker: Option<i32>,
        changes: &[AlterConfigOp],
    ) -> Result<()> {
        let route = if broker.is_some() {
            Route::Broker
        } else {
            Route::AnyBroker
        };
        let name = broker.map(|id| id.to_string()).unwrap_or_default();
        let name = name.as_str();
        self.retrying("incremental_alter_broker_configs", route, |at| async move {
            let conn = match broker {
                Some(id) => {
                    self.ensure_broker_known(id).await?;
                    self.cluster.connection(id).await?
                }
                None => self.cluster.any_connection().await?,
            };
            self.alter_configs(&conn, BROKER, name, changes, at.timeout)
                .await
        })
        .await
    }

    async fn alter_configs(
        &self,
        conn: &crate::io::connection::Connection,
        resource_type: i8,
        name: &str,
        changes: &[AlterConfigOp],
        timeout: std::time::Duration,
    ) -> Result<()> {
        let version = conn.version(ApiKey::IncrementalAlterConfigs)?;
        let request = incremental_alter_configs_request(resource_type, name, changes);
        let response = conn.send(&request, version, timeout).await?;
        for result in &response.responses {
            Error::check(
                ApiKey::IncrementalAlterConfigs,
                result.error_code,
                Some(&format!(
                    "{name}: {}",
                    result.error_message.as_deref().unwrap_or("")
                )),
            )?;
        }
        Ok(())
    }
}

/// DescribeConfigs of every config of each resource in `names`.
fn describe_configs_request(resource_type: i8, names: &[&str]) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default().with_resources(
        names
            .iter()
            .map(|t| {
                DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string((*t).to_owned()))
                    .with_configuration_keys(None)
            })
            .collect(),
    )
}

/// IncrementalAlterConfigs of one resource: set (operation 0) or delete (operation 1) per key.
fn incremental_alter_configs_request(
    resource_type: i8,
    name: &str,
    changes: &[AlterConfigOp],
) -> IncrementalAlterConfigsRequest {
    let configs = changes
        .iter()
        .map(|change| match change {
            AlterConfigOp::Set(name, value) => AlterableConfig::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(value.clone()))),
            AlterConfigOp::Delete(name) => AlterableConfig::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_config_operation(1)
                .with_value(None),
        })
        .collect();
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_owned()))
        .with_configs(configs)])
}

/// The config requests at every version, for `crate::request_versions`.
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    for v in Encoder::versions(ApiKey::DescribeConfigs) {
        enc.check(
            "DescribeConfigs",
            v,
            &describe_configs_request(TOPIC, &["a", "b"]),
        );
        enc.check(
            "DescribeConfigs broker",
            v,
            &describe_configs_request(BROKER, &["1"]),
        );
    }
    let changes = [
        AlterConfigOp::Set("retention.ms".to_owned(), "1000".to_owned()),
        AlterConfigOp::Delete("cleanup.policy".to_owned()),
    ];
    for v in Encoder::versions(ApiKey::IncrementalAlterConfigs) {
        enc.check(
            "IncrementalAlterConfigs",
            v,
            &incremental_alter_configs_request(TOPIC, "a", &changes),
        );
        for broker in ["1", ""] {
            enc.check(
                "IncrementalAlterConfigs broker",
                v,
                &incremental_alter_configs_request(BROKER, broker, &changes),
            );
        }
    }
}
