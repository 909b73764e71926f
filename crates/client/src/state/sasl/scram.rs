//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), client side, as Kafka speaks them:
//! no channel binding (`n,,`), no authorization identity, the password used as UTF-8 without
//! SASLprep (as the Java client does).
//!
//! 1. client-first: `n,,n=<user>,r=<client nonce>`;
//! 2. server-first: `r=<client nonce + server nonce>,s=<salt>,i=<iterations>` (read with bounds:
//!    length, nonce prefix, 4096..=16384 iterations as Kafka stores them);
//! 3. client-final: `c=biws,r=<nonce>,p=<proof>`;
//! 4. server-final: `v=<server signature>`, compared in constant time, or `e=<error>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::{Authenticator, SaslError, Step};
use crate::config::Secret;

/// The longest server message accepted (a real one is ~100-200 bytes).
const MAX_SERVER_MESSAGE: usize = 4096;
/// Kafka's bounds for stored SCRAM credentials (`ScramMechanism`).
const MIN_ITERATIONS: u32 = 4096;
const MAX_ITERATIONS: u32 = 16384;
/// Bytes of randomness in the client nonce (base64-encoded on the wire).
const NONCE_BYTES: usize = 24;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    /// The mechanism name, as in `sasl.mechanism`.
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    for d in data {
                        mac.update(d);
                    }
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            ScramHash::Sha256 => run::<hmac::Hmac<sha2::Sha256>>(key, data),
            ScramHash::Sha512 => run::<hmac::Hmac<sha2::Sha512>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            ScramHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this HMAC, one block.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut u = self.hmac(password, &[salt, &1u32.to_be_bytes()]);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &[&u]);
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        out
    }
}

enum State {
    Start,
    /// client-first sent.
    First {
        client_first_bare: String,
    },
    /// client-final sent; the server signature we expect.
    Final {
        server_signature: Vec<u8>,
    },
    Done,
}

/// A SCRAM exchange.
pub struct Scram {
    hash: ScramHash,
    username: String,
    password: Secret,
    nonce: String,
    state: State,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scram")
            .field("mechanism", &self.hash.mechanism())
            .field("username", &self.username)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

impl Scram {
    /// An exchange for this user, with a fresh random nonce.
    pub fn new(hash: ScramHash, username: &str, password: Secret) -> Result<Self, SaslError> {
        let mut bytes = [0u8; NONCE_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| SaslError::Random(e.to_string()))?;
        Ok(Self::with_nonce(
            hash,
            username,
            password,
            B64.encode(bytes),
        ))
    }

    /// An exchange with a given client nonce (printable ASCII without `,`): for tests against
    /// published vectors.
    pub fn with_nonce(hash: ScramHash, username: &str, password: Secret, nonce: String) -> Self {
        Scram {
            hash,
            username: username.to_owned(),
            password,
            nonce,
            state: State::Start,
        }
    }

    fn server_first(
        &mut self,
        client_first_bare: &str,
        server: &str,
    ) -> Result<Vec<u8>, SaslError> {
        let mut attrs = server.split(',');
        let nonce = attr(attrs.next(), 'r')?;
        let salt = attr(attrs.next(), 's')?;
        let iterations = attr(attrs.next(), 'i')?;
        // Later attributes are extensions (Kafka's `tokenauth`); nothing to do with them here.
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(SaslError::NonceMismatch);
        }
        if !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(SaslError::Malformed("nonce is not printable ASCII"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| SaslError::Malformed("salt is not base64"))?;
        if salt.is_empty() {
            return Err(SaslError::Malformed("empty salt"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| SaslError::Malformed("iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(SaslError::Iterations(iterations));
        }
        let h = self.hash;
        let salted = h.salted_password(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, &[b"Client Key"]);
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server},{without_proof}");
        let client_signature = h.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.hmac(&salted, &[b"Server Key"]);
        let server_signature = h.hmac(&server_key, &[auth_message.as_bytes()]);
        self.state = State::Final { server_signature };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }
}

/// The value of the attribute `name=` at this position.
fn attr(part: Option<&str>, name: char) -> Result<&str, SaslError> {
    let part = part.ok_or(SaslError::Malformed("missing attribute"))?;
    let mut chars = part.chars();
    if chars.next() != Some(name) || chars.next() != Some('=') {
        return Err(SaslError::Malformed("unexpected attribute"));
    }
    Ok(&part[2..])
}

/// `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
fn sasl_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

impl Authenticator for Scram {
    fn mechanism(&self) -> &'static str {
        self.hash.mechanism()
    }

    fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        if !matches!(self.state, State::Start) {
            return Err(SaslError::OutOfOrder);
        }
        let client_first_bare = format!("n={},r={}", sasl_name(&self.username), self.nonce);
        let message = format!("n,,{client_first_bare}").into_bytes();
        self.state = State::First { client_first_bare };
        Ok(message)
    }

    fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        if server.len() > MAX_SERVER_MESSAGE {
            return Err(SaslError::TooLong(server.len()));
        }
        let server = std::str::from_utf8(server).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        if let Some(error) = server.strip_prefix("e=") {
            self.state = State::Done;
            return Err(SaslError::Server(error.to_owned()));
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::First { client_first_bare } => self
                .server_first(&client_first_bare, server)
                .map(Step::Send),
            State::Final { server_signature } => {
                let verifier = attr(server.split(',').next(), 'v')?;
                let theirs = B64
                    .decode(verifier)
                    .map_err(|_| SaslError::Malformed("server signature is not base64"))?;
                if bool::from(theirs.ct_eq(&server_signature)) {
                    Ok(Step::Done)
                } else {
                    Err(SaslError::ServerSignature)
                }
            }
            State::Start | State::Done => Err(SaslError::OutOfOrder),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3, typed in from the RFC's text.
    const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677() -> Scram {
        Scram::with_nonce(
            ScramHash::Sha256,
            "user",
            Secret::new("pencil"),
            "rOprNGfwEbeRWgbNEkqO".to_owned(),
        )
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let mut s = rfc7677();
        assert_eq!(s.initial().unwrap(), RFC7677_CLIENT_FIRST.as_bytes());
        let Step::Send(final_message) = s.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap() else {
            panic!("expected client-final")
        };
        assert_eq!(
            std::str::from_utf8(&final_message).unwrap(),
            RFC7677_CLIENT_FINAL
        );
        assert_eq!(s.step(RFC7677_SERVER_FINAL.as_bytes()), Ok(Step::Done));
    }

    #[test]
    fn a_wrong_server_signature_is_refused() {
        let mut s = rfc7677();
        s.initial().unwrap();
        s.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        let forged = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".replace("6rri", "7rri");
        assert_eq!(s.step(forged.as_bytes()), Err(SaslError::ServerSignature));
        // Nothing more once it failed.
        assert_eq!(
            s.step(RFC7677_SERVER_FINAL.as_bytes()),
            Err(SaslError::OutOfOrder)
        );
    }

    #[test]
    fn bad_server_first_messages() {
        let cases: [(&str, SaslError); 7] = [
            (
                "r=someoneelse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                SaslError::NonceMismatch,
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                SaslError::NonceMismatch,
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
                SaslError::Iterations(4095),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
                SaslError::Iterations(99_999_999),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096",
                SaslError::Malformed("salt is not base64"),
            ),
            (
                "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOx,i=4096",
                SaslError::Malformed("unexpected attribute"),
            ),
            ("e=unknown-user", SaslError::Server("unknown-user".into())),
        ];
        for (message, expected) in cases {
            let mut s = rfc7677();
            s.initial().unwrap();
            assert_eq!(s.step(message.as_bytes()), Err(expected), "{message}");
        }
        let mut s = rfc7677();
        s.initial().unwrap();
        assert_eq!(
            s.step(&[b'r'; MAX_SERVER_MESSAGE + 1]),
            Err(SaslError::TooLong(MAX_SERVER_MESSAGE + 1))
        );
    }

    #[test]
    fn names_are_escaped_and_nonces_are_fresh() {
        let mut s = Scram::with_nonce(ScramHash::Sha512, "a=b,c", Secret::new("p"), "N".into());
        assert_eq!(s.initial().unwrap(), b"n,,n=a=3Db=2Cc,r=N");
        let a = Scram::new(ScramHash::Sha512, "u", Secret::new("p")).unwrap();
        let b = Scram::new(ScramHash::Sha512, "u", Secret::new("p")).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.nonce.len(), 32);
        assert!(!format!("{a:?}").contains("\"p\""));
    }

    /// A SCRAM-SHA-512 server written against RFC 5802's definitions, computing each key from
    /// the password independently of the client's code path.
    #[test]
    fn sha512_against_an_independent_server() {
        use hmac::Hmac;
        use sha2::{Digest, Sha512};
        fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        let (password, salt, iterations) = ("alice-secret", b"0123456789abcdef", 4096u32);
        // Hi() unrolled by hand.
        let mut u = mac(password.as_bytes(), &[&salt[..], &[0, 0, 0, 1]].concat());
        let mut salted = u.clone();
        for _ in 1..iterations {
            u = mac(password.as_bytes(), &u);
            for (s, x) in salted.iter_mut().zip(&u) {
                *s ^= x;
            }
        }
        let mut client = Scram::new(ScramHash::Sha512, "alice", Secret::new(password)).unwrap();
        let first = String::from_utf8(client.initial().unwrap()).unwrap();
        let bare = first.strip_prefix("n,,").unwrap();
        let nonce = format!("{}server-part", bare.split_once(",r=").unwrap().1);
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        let Step::Send(client_final) = client.step(server_first.as_bytes()).unwrap() else {
            panic!("expected client-final")
        };
        let client_final = String::from_utf8(client_final).unwrap();
        let (without_proof, proof) = client_final.split_once(",p=").unwrap();
        assert_eq!(without_proof, format!("c=biws,r={nonce}"));
        let auth = format!("{bare},{server_first},{without_proof}");
        let stored_key = Sha512::digest(mac(&salted, b"Client Key")).to_vec();
        let signature = mac(&stored_key, auth.as_bytes());
        let client_key: Vec<u8> = B64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(&signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(Sha512::digest(&client_key).to_vec(), stored_key, "proof");
        let server_final = format!(
            "v={}",
            B64.encode(mac(&mac(&salted, b"Server Key"), auth.as_bytes()))
        );
        assert_eq!(client.step(server_final.as_bytes()), Ok(Step::Done));
    }
}
