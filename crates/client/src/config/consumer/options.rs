//! The enumerated consumer settings: `auto.offset.reset`, `isolation.level`, `group.protocol`
//! and the entries of `partition.assignment.strategy`.

use std::fmt;
use std::str::FromStr;

use crate::config::error::ConfigError;

/// `auto.offset.reset`: where to start when a partition has no valid position (no committed
/// offset, or the position is out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoOffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest`: the log end offset (the last stable offset with `read_committed`). Java's
    /// default.
    #[default]
    Latest,
    /// `none`: fail with a typed error and wait for the application to seek.
    None,
}

impl AutoOffsetReset {
    /// The Java property value.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
            AutoOffsetReset::None => "none",
        }
    }
}

impl FromStr for AutoOffsetReset {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            "none" => Ok(AutoOffsetReset::None),
            _ => Err(ConfigError::invalid(
                super::AUTO_OFFSET_RESET,
                s,
                "must be one of: earliest, latest, none",
            )),
        }
    }
}

impl fmt::Display for AutoOffsetReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `isolation.level`: whether records of open and aborted transactions are returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted`: every data record up to the high watermark (Java's default).
    #[default]
    ReadUncommitted,
    /// `read_committed`: records up to the last stable offset, without those of aborted
    /// transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// The Java property value.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }

    /// The protocol's `isolation_level` byte (0 or 1).
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

impl FromStr for IsolationLevel {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            _ => Err(ConfigError::invalid(
                super::ISOLATION_LEVEL,
                s,
                "must be one of: read_uncommitted, read_committed",
            )),
        }
    }
}

/// `group.protocol`: the classic rebalance protocol or KIP-848's consumer protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupProtocol {
    /// `classic`: JoinGroup/SyncGroup/Heartbeat, client-side assignors (Java's default).
    #[default]
    Classic,
    /// `consumer`: ConsumerGroupHeartbeat (KIP-848), broker-side assignors.
    Consumer,
}

impl GroupProtocol {
    /// The Java property value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

impl FromStr for GroupProtocol {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "classic" => Ok(GroupProtocol::Classic),
            "consumer" => Ok(GroupProtocol::Consumer),
            _ => Err(ConfigError::invalid(
                super::GROUP_PROTOCOL,
                s,
                "must be one of: classic, consumer",
            )),
        }
    }
}

/// One entry of `partition.assignment.strategy`: a Java class name or a short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorName {
    /// `range` / `org.apache.kafka.clients.consumer.RangeAssignor`.
    Range,
    /// `roundrobin` / `org.apache.kafka.clients.consumer.RoundRobinAssignor`.
    RoundRobin,
    /// `cooperative-sticky` / `org.apache.kafka.clients.consumer.CooperativeStickyAssignor`.
    CooperativeSticky,
}

impl AssignorName {
    /// The protocol name the assignor registers under in JoinGroup (`range`, `roundrobin`,
    /// `cooperative-sticky`).
    pub fn as_str(self) -> &'static str {
        match self {
            AssignorName::Range => "range",
            AssignorName::RoundRobin => "roundrobin",
            AssignorName::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The Java class name.
    pub fn class_name(self) -> &'static str {
        match self {
            AssignorName::Range => "org.apache.kafka.clients.consumer.RangeAssignor",
            AssignorName::RoundRobin => "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            AssignorName::CooperativeSticky => {
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
            }
        }
    }

    /// Parses one list entry (class name, simple class name or short name).
    pub(crate) fn parse(entry: &str) -> Option<AssignorName> {
        let simple = entry.trim().rsplit('.').next().unwrap_or_default();
        match simple.to_ascii_lowercase().as_str() {
            "range" | "rangeassignor" => Some(AssignorName::Range),
            "roundrobin" | "roundrobinassignor" => Some(AssignorName::RoundRobin),
            "cooperative-sticky" | "cooperativestickyassignor" => {
                Some(AssignorName::CooperativeSticky)
            }
            _ => None,
        }
    }
}
