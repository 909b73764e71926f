//! PLAIN (RFC 4616): the user name and password in one message, `authzid NUL authcid NUL passwd`.
//! Use it only over TLS (`SASL_SSL`): the password crosses the wire as is.

use super::{Authenticator, SaslError, Step};
use crate::config::Secret;

/// A PLAIN exchange.
#[derive(Debug)]
pub struct Plain {
    username: String,
    password: Secret,
    sent: bool,
}

impl Plain {
    /// An exchange for this user (no authorization identity: the broker uses `username`).
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Plain {
            username: username.into(),
            password,
            sent: false,
        }
    }
}

impl Authenticator for Plain {
    fn mechanism(&self) -> &'static str {
        "PLAIN"
    }

    fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        self.sent = true;
        let mut out = Vec::with_capacity(self.username.len() + self.password.expose().len() + 2);
        out.push(0);
        out.extend_from_slice(self.username.as_bytes());
        out.push(0);
        out.extend_from_slice(self.password.expose().as_bytes());
        Ok(out)
    }

    fn step(&mut self, _server: &[u8]) -> Result<Step, SaslError> {
        // Kafka answers a PLAIN message with an empty success or an error code (handled by the
        // caller); there is nothing to verify.
        if self.sent {
            Ok(Step::Done)
        } else {
            Err(SaslError::OutOfOrder)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let mut p = Plain::new("alice", Secret::new("alice-secret"));
        assert_eq!(p.step(b""), Err(SaslError::OutOfOrder));
        assert_eq!(p.initial().unwrap(), b"\0alice\0alice-secret");
        assert_eq!(p.step(b""), Ok(Step::Done));
        assert!(!format!("{p:?}").contains("alice-secret"));
    }
}
