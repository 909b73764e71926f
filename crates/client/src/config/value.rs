//! Parsing of property values the way the Java client's `ConfigDef` reads them: surrounding
//! whitespace is trimmed, numbers are decimal (an optional sign allowed), booleans are `true`
//! or `false` in any case.

use std::time::Duration;

use super::error::ConfigError;

/// The largest Java `int`, the bound of `Type.INT` settings.
pub(crate) const INT_MAX: i64 = i32::MAX as i64;

pub(crate) fn parse_bool(key: &'static str, value: &str) -> Result<bool, ConfigError> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::invalid(
            key,
            value,
            "expected `true` or `false`",
        ))
    }
}

/// A Java `long` (or `int` with `max = INT_MAX`) in `min..=max`.
pub(crate) fn parse_int(
    key: &'static str,
    value: &str,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(key, value, "not an integer"))?;
    check_range(key, n, min, max).map_err(|e| match e {
        ConfigError::InvalidValue { key, reason, .. } => ConfigError::invalid(key, value, reason),
        other => other,
    })
}

pub(crate) fn check_range(
    key: &'static str,
    n: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    if n < min || n > max {
        let reason = if max == i64::MAX {
            format!("must be at least {min}")
        } else {
            format!("must be between {min} and {max}")
        };
        return Err(ConfigError::invalid(key, n.to_string(), reason));
    }
    Ok(n)
}

/// Milliseconds in `min..=max` as a duration.
pub(crate) fn parse_ms(
    key: &'static str,
    value: &str,
    min: i64,
    max: i64,
) -> Result<Duration, ConfigError> {
    let ms = parse_int(key, value, min.max(0), max)?;
    Ok(Duration::from_millis(ms.unsigned_abs()))
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Checks a typed duration against the range of its Java setting.
pub(crate) fn check_ms(
    key: &'static str,
    d: Duration,
    min: i64,
    max: i64,
) -> Result<Duration, ConfigError> {
    check_range(key, millis(d), min, max).map(|_| d)
}

/// A comma-separated list, entries trimmed, empty entries dropped.
pub(crate) fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_like_java() {
        assert_eq!(parse_bool("k", " TRUE "), Ok(true));
        assert_eq!(parse_bool("k", "false"), Ok(false));
        assert!(matches!(
            parse_bool("k", "yes"),
            Err(ConfigError::InvalidValue { key: "k", ref value, .. }) if value == "yes"
        ));
    }

    #[test]
    fn integers_with_ranges_name_the_original_value() {
        assert_eq!(parse_int("k", " +5 ", 0, INT_MAX), Ok(5));
        assert_eq!(parse_int("k", "-1", -1, INT_MAX), Ok(-1));
        let err = parse_int("k", " -1", 0, INT_MAX).unwrap_err();
        assert_eq!(
            err,
            ConfigError::invalid("k", " -1", "must be between 0 and 2147483647")
        );
        assert!(parse_int("k", "2147483648", 0, INT_MAX).is_err());
        assert!(parse_int("k", "1.5", 0, INT_MAX).is_err());
        assert!(parse_int("k", "", 0, INT_MAX).is_err());
        assert_eq!(
            parse_int("k", "-3", 1, i64::MAX).unwrap_err().to_string(),
            "invalid value `-3` for config `k`: must be at least 1"
        );
    }

    #[test]
    fn lists_drop_blanks() {
        assert_eq!(parse_list(" a:1 ,, b:2 ,"), vec!["a:1", "b:2"]);
        assert!(parse_list("  ").is_empty());
    }
}
