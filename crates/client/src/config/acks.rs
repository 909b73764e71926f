//! The `acks` setting.

use std::fmt;
use std::str::FromStr;

use super::error::ConfigError;

/// How many replicas must acknowledge a write before the broker answers (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; the producer never learns of failures.
    None,
    /// `acks=1`: the partition leader answers once it wrote the records to its own log.
    Leader,
    /// `acks=all` (or `-1`): the leader answers once all in-sync replicas have the records.
    /// The Java client's default since 3.0, and required by idempotence.
    #[default]
    All,
}

impl Acks {
    /// The `acks` field of a Produce request: 0, 1 or -1.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// The Java property value: `0`, `1` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Acks {
    type Err = ConfigError;

    /// Reads `all`, `-1`, `0` or `1`, trimmed and case-sensitive like the Java client.
    ///
    /// ```
    /// use kafkit::config::Acks;
    ///
    /// assert_eq!(" all ".parse::<Acks>().unwrap(), Acks::All);
    /// assert_eq!("-1".parse::<Acks>().unwrap(), Acks::All);
    /// assert!("ALL".parse::<Acks>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::Leader),
            "0" => Ok(Acks::None),
            _ => Err(ConfigError::invalid(
                "acks",
                s,
                "must be one of: all, -1, 0, 1",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_wire_values() {
        for acks in [Acks::None, Acks::Leader, Acks::All] {
            assert_eq!(acks.as_str().parse::<Acks>(), Ok(acks));
            assert_eq!(acks.as_i16().to_string().parse::<Acks>(), Ok(acks));
        }
        assert_eq!(Acks::All.as_i16(), -1);
        assert_eq!(Acks::default(), Acks::All);
    }

    #[test]
    fn rejects_other_values_naming_them() {
        for bad in ["2", "ALL", "", "none", "-2"] {
            let err = bad.parse::<Acks>().unwrap_err();
            assert_eq!(err.key(), "acks");
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }
}
