//! OAUTHBEARER (RFC 7628) as Kafka speaks it (KIP-255): the client sends
//! `n,,\x01auth=Bearer <token>\x01[key=value\x01]*\x01`; the broker answers with nothing (success)
//! or with a JSON error status, to which the client replies with a lone `\x01` so the broker can
//! fail the exchange with its error code.
//!
//! Where the token comes from is the application's business (a token provider callback, see
//! `config::TokenProvider`); this type only frames it.

use super::{Authenticator, SaslError, Step};
use crate::config::Secret;

const SEPARATOR: u8 = 0x01;
/// The longest server error status accepted.
const MAX_SERVER_MESSAGE: usize = 4096;

/// A bearer token and the SASL extensions sent with it (KIP-342).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearerToken {
    /// The token itself (a JWT, usually).
    pub value: Secret,
    /// `key=value` pairs sent along (keys are letters only; `auth` is reserved).
    pub extensions: Vec<(String, String)>,
}

impl OAuthBearerToken {
    /// A token without extensions.
    pub fn new(value: impl Into<Secret>) -> Self {
        OAuthBearerToken {
            value: value.into(),
            extensions: Vec::new(),
        }
    }
}

/// An OAUTHBEARER exchange.
#[derive(Debug)]
pub struct OAuthBearer {
    token: OAuthBearerToken,
    /// `None` before the first message; the server's error status once it sent one.
    state: Option<Option<String>>,
}

impl OAuthBearer {
    /// An exchange presenting `token`.
    pub fn new(token: OAuthBearerToken) -> Self {
        OAuthBearer { token, state: None }
    }
}

fn valid_extension(key: &str, value: &str) -> bool {
    !key.is_empty()
        && key != "auth"
        && key.bytes().all(|b| b.is_ascii_alphabetic())
        && value
            .bytes()
            .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
}

impl Authenticator for OAuthBearer {
    fn mechanism(&self) -> &'static str {
        "OAUTHBEARER"
    }

    fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        let token = self.token.value.expose();
        if token.is_empty() || token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(SaslError::Malformed(
                "the token is empty or not printable ASCII",
            ));
        }
        let mut out = b"n,,\x01auth=Bearer ".to_vec();
        out.extend_from_slice(token.as_bytes());
        out.push(SEPARATOR);
        for (key, value) in &self.token.extensions {
            if !valid_extension(key, value) {
                return Err(SaslError::Malformed("invalid SASL extension"));
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
            out.push(SEPARATOR);
        }
        out.push(SEPARATOR);
        self.state = Some(None);
        Ok(out)
    }

    fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        if server.len() > MAX_SERVER_MESSAGE {
            return Err(SaslError::TooLong(server.len()));
        }
        match self.state.take() {
            None => Err(SaslError::OutOfOrder),
            Some(None) if server.is_empty() => Ok(Step::Done),
            Some(None) => {
                // An error status: acknowledge it so the broker ends the exchange.
                self.state = Some(Some(String::from_utf8_lossy(server).into_owned()));
                Ok(Step::Send(vec![SEPARATOR]))
            }
            Some(Some(status)) => Err(SaslError::Server(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_response_layout() {
        let mut token = OAuthBearerToken::new("eyJ.x.");
        token.extensions.push(("traceId".into(), "abc 1".into()));
        let mut o = OAuthBearer::new(token);
        assert_eq!(
            o.initial().unwrap(),
            b"n,,\x01auth=Bearer eyJ.x.\x01traceId=abc 1\x01\x01"
        );
        assert_eq!(o.step(b""), Ok(Step::Done));
    }

    #[test]
    fn an_error_status_is_acknowledged_then_reported() {
        let mut o = OAuthBearer::new(OAuthBearerToken::new("t"));
        o.initial().unwrap();
        let status = br#"{"status":"invalid_token"}"#;
        assert_eq!(o.step(status), Ok(Step::Send(vec![1])));
        assert_eq!(
            o.step(b""),
            Err(SaslError::Server(r#"{"status":"invalid_token"}"#.into()))
        );
    }

    #[test]
    fn bad_tokens_and_extensions_are_refused() {
        assert!(OAuthBearer::new(OAuthBearerToken::new(""))
            .initial()
            .is_err());
        assert!(OAuthBearer::new(OAuthBearerToken::new("a b"))
            .initial()
            .is_err());
        let mut t = OAuthBearerToken::new("t");
        t.extensions.push(("auth".into(), "x".into()));
        assert!(OAuthBearer::new(t).initial().is_err());
        let o = OAuthBearer::new(OAuthBearerToken::new("secret-token"));
        assert!(!format!("{o:?}").contains("secret-token"));
    }
}
