//! `sasl.jaas.config`, as Java applications write it, read for the user name and password:
//! `<LoginModule class> required username="alice" password="alice-secret";`.
//!
//! Only PLAIN's and SCRAM's login modules carry what kafkit needs; OAUTHBEARER tokens come from
//! a typed `TokenProvider` and GSSAPI is not supported, so their modules are refused with a
//! reason.

use super::error::ConfigError;
use super::secret::Secret;

pub(crate) const SASL_JAAS_CONFIG: &str = "sasl.jaas.config";

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// The credentials read from a JAAS entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct JaasCredentials {
    pub(crate) username: String,
    pub(crate) password: Secret,
}

/// Reads one login module entry. The error never repeats the value (it holds a password).
pub(crate) fn parse(value: &str) -> Result<JaasCredentials, ConfigError> {
    let bad = |reason: &str| ConfigError::invalid(SASL_JAAS_CONFIG, "***", reason);
    let mut rest = value.trim();
    let (module, after) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("expected `<LoginModule> required key=\"value\" ...;`"))?;
    if module != PLAIN_MODULE && module != SCRAM_MODULE {
        return Err(bad(
            "only PlainLoginModule and ScramLoginModule are read (OAUTHBEARER takes a typed \
             TokenProvider; GSSAPI is not supported)",
        ));
    }
    rest = after.trim_start();
    let (flag, after) = rest
        .split_once(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or((rest, ""));
    if !["required", "requisite", "sufficient", "optional"].contains(&flag) {
        return Err(bad("the login module's flag must be `required`"));
    }
    rest = after;
    let mut username = None;
    let mut password = None;
    loop {
        rest = rest.trim_start();
        if let Some(tail) = rest.strip_prefix(';') {
            if !tail.trim().is_empty() {
                return Err(bad("only one login module entry is read"));
            }
            break;
        }
        if rest.is_empty() {
            return Err(bad("the entry must end with `;`"));
        }
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| bad("expected key=\"value\""))?;
        let key = key.trim();
        let (value, after) =
            quoted_or_bare(after.trim_start()).ok_or_else(|| bad("unclosed quote"))?;
        rest = after;
        match key {
            "username" => username = Some(value),
            "password" => password = Some(Secret::new(value)),
            _ => {} // other options (e.g. tokenauth) do not concern the client
        }
    }
    Ok(JaasCredentials {
        username: username.ok_or_else(|| bad("no username option"))?,
        password: password.ok_or_else(|| bad("no password option"))?,
    })
}

/// A `"quoted \" value"` or a bare word; returns it and the text after it.
fn quoted_or_bare(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?.1),
                '"' => return Some((out, &body[i + 1..])),
                c => out.push(c),
            }
        }
        None
    } else {
        let end = s
            .find(|c: char| c.is_whitespace() || c == ';')
            .unwrap_or(s.len());
        Some((s[..end].to_owned(), &s[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_scram_entries() {
        let c = parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"alice\" password=\"a \\\"quoted\\\" secret\";",
        )
        .unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose(), "a \"quoted\" secret");
        let c = parse(&format!(
            "{PLAIN_MODULE} required username=bob password=pw ;"
        ))
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("bob", "pw"));
    }

    #[test]
    fn refused_entries_do_not_echo_the_value() {
        for bad in [
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            "com.sun.security.auth.module.Krb5LoginModule required;",
            &format!("{PLAIN_MODULE} required username=\"a\" password=\"hunter2\""),
            &format!("{PLAIN_MODULE} required username=\"a\" password=\"hunter2;"),
            &format!("{PLAIN_MODULE} required password=\"hunter2\";"),
            &format!("{PLAIN_MODULE} maybe username=\"a\" password=\"hunter2\";"),
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.key(), SASL_JAAS_CONFIG);
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
