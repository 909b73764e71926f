//! The `compression.type` setting.

use std::fmt;
use std::str::FromStr;

use super::error::ConfigError;

/// The codec for record batches (`compression.type`).
///
/// The discriminants are the codec ids of the record batch `attributes` field (bits 0-2), so
/// [`Compression::codec_id`] maps 1:1 onto the wire crate's codec enum: none = 0, gzip = 1,
/// snappy = 2, lz4 = 3, zstd = 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Compression {
    /// `none`: no compression (the Java client's default).
    #[default]
    None = 0,
    /// `gzip`.
    Gzip = 1,
    /// `snappy` (xerial framing on old brokers, raw block in batches).
    Snappy = 2,
    /// `lz4` (LZ4 frame format).
    Lz4 = 3,
    /// `zstd` (needs Produce v7+, Kafka 2.1+).
    Zstd = 4,
}

impl Compression {
    /// Every codec, in codec-id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The record batch codec id (0-4).
    pub fn codec_id(self) -> u8 {
        self as u8
    }

    /// The codec with the given record batch codec id, if any.
    pub fn from_codec_id(id: u8) -> Option<Self> {
        Self::ALL.get(usize::from(id)).copied()
    }

    /// The Java property value: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = ConfigError;

    /// Reads the Java property value, trimmed and lower case only, like the Java client.
    ///
    /// ```
    /// use kafkit::config::Compression;
    ///
    /// assert_eq!("zstd".parse::<Compression>().unwrap().codec_id(), 4);
    /// assert!("GZIP".parse::<Compression>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == trimmed)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "compression.type",
                    s,
                    "must be one of: none, gzip, snappy, lz4, zstd",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_ids_are_the_wire_ids() {
        let ids: Vec<(&str, u8)> = Compression::ALL
            .iter()
            .map(|c| (c.as_str(), c.codec_id()))
            .collect();
        assert_eq!(
            ids,
            [
                ("none", 0),
                ("gzip", 1),
                ("snappy", 2),
                ("lz4", 3),
                ("zstd", 4)
            ]
        );
        for c in Compression::ALL {
            assert_eq!(Compression::from_codec_id(c.codec_id()), Some(c));
            assert_eq!(c.as_str().parse::<Compression>(), Ok(c));
        }
        assert_eq!(Compression::from_codec_id(5), None);
    }

    #[test]
    fn rejects_unknown_codecs() {
        let err = "brotli".parse::<Compression>().unwrap_err();
        assert_eq!(err.key(), "compression.type");
        assert!(err.to_string().contains("`brotli`"));
    }
}
