//! The `compression.type` setting: the wire crate's codec enum, read with a config error.

/// The codec for record batches (`compression.type`): one type from the setting down to the
/// record batch (`kafkit_wire::compression::Compression`, re-exported).
///
/// ```
/// use kafkit::config::Compression;
///
/// assert_eq!("zstd".parse::<Compression>().unwrap().id(), 4);
/// assert!("GZIP".parse::<Compression>().is_err());
/// ```
pub use kafkit_wire::compression::Compression;

use super::error::ConfigError;

/// Reads `compression.type` as the Java client does (trimmed, lower case only), with an error
/// naming the key.
pub(crate) fn parse_compression(
    key: &'static str,
    value: &str,
) -> Result<Compression, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::invalid(key, value, "must be one of: none, gzip, snappy, lz4, zstd")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_ids_are_the_wire_ids() {
        let ids: Vec<(&str, u8)> = Compression::ALL
            .iter()
            .map(|c| (c.name(), c.id()))
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
            assert_eq!(Compression::from_id(c.id()), Some(c));
            assert_eq!(parse_compression("compression.type", c.name()), Ok(c));
        }
        assert_eq!(Compression::from_id(5), None);
    }

    #[test]
    fn rejects_unknown_codecs() {
        let err = parse_compression("compression.type", "brotli").unwrap_err();
        assert_eq!(err.key(), "compression.type");
        assert!(err.to_string().contains("`brotli`"));
    }
}
