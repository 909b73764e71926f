//! Security settings: `security.protocol`, the SASL mechanism and credentials, and TLS.
//!
//! Readable from the usual property names (`security.protocol`, `sasl.mechanism`,
//! `sasl.username`, `sasl.password` or the Java client's `sasl.jaas.config` with PLAIN's or
//! SCRAM's login module, `ssl.ca.location`, `ssl.ca.pem`, `ssl.certificate.location`,
//! `ssl.key.location`, `ssl.key.password` for an encrypted PKCS#8 key,
//! `ssl.endpoint.identification.algorithm`) or built with the typed
//! [`SecurityConfig`], [`SaslConfig`] and [`TlsConfig`]. Secrets are [`Secret`]s: they never
//! show in `Debug` output or logs.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use super::error::ConfigError;
use super::secret::Secret;
use crate::state::sasl::oauthbearer::OAuthBearerToken;

pub(crate) const SECURITY_PROTOCOL: &str = "security.protocol";
pub(crate) const SASL_MECHANISM: &str = "sasl.mechanism";
/// librdkafka's spelling of `sasl.mechanism`.
pub(crate) const SASL_MECHANISMS: &str = "sasl.mechanisms";
pub(crate) const SASL_USERNAME: &str = "sasl.username";
pub(crate) const SASL_PASSWORD: &str = "sasl.password";
pub(crate) const SSL_CA_LOCATION: &str = "ssl.ca.location";
pub(crate) const SSL_CA_PEM: &str = "ssl.ca.pem";
pub(crate) const SSL_CERTIFICATE_LOCATION: &str = "ssl.certificate.location";
pub(crate) const SSL_KEY_LOCATION: &str = "ssl.key.location";
pub(crate) const SSL_KEY_PASSWORD: &str = "ssl.key.password";
pub(crate) const SSL_KEYSTORE_TYPE: &str = "ssl.keystore.type";
pub(crate) const SSL_KEYSTORE_LOCATION: &str = "ssl.keystore.location";
pub(crate) const SSL_TRUSTSTORE_TYPE: &str = "ssl.truststore.type";
pub(crate) const SSL_TRUSTSTORE_LOCATION: &str = "ssl.truststore.location";

/// Why a keystore or truststore setting is refused.
const NO_STORES: &str = "JKS and PKCS#12 stores are not supported: give PEM files with \
    ssl.ca.location, ssl.certificate.location and ssl.key.location (ssl.key.password for an \
    encrypted key); `openssl pkcs12 -in store.p12` prints a PKCS#12 store's certificates and key";
pub(crate) const SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: &str =
    "ssl.endpoint.identification.algorithm";
pub(crate) const ENABLE_SSL_CERTIFICATE_VERIFICATION: &str = "enable.ssl.certificate.verification";

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "jaas", "credential"]
        .iter()
        .any(|word| key.contains(word))
}

/// `security.protocol`: how every connection (bootstrap, brokers, coordinators) is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// No TLS, no authentication (the default).
    #[default]
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The property value, e.g. `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecurityProtocol {
    type Err = ConfigError;

    /// Reads the property value, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(ConfigError::invalid(
                SECURITY_PROTOCOL,
                s,
                "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            )),
        }
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// PLAIN (the Java client's default).
    #[default]
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
    /// OAUTHBEARER, with a token from a [`TokenProvider`].
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism's name as Kafka spells it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SaslMechanism {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "OAUTHBEARER" => Ok(SaslMechanism::OAuthBearer),
            "GSSAPI" => Err(ConfigError::invalid(
                SASL_MECHANISM,
                s,
                "GSSAPI (Kerberos) is not supported",
            )),
            _ => Err(ConfigError::invalid(
                SASL_MECHANISM,
                s,
                "expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
            )),
        }
    }
}

/// The future a [`TokenProvider`] returns.
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<OAuthBearerToken, String>> + Send + 'a>>;

/// Where OAUTHBEARER tokens come from: called for every authentication, including each
/// re-authentication before the broker's session expires (KIP-368), so it should return a
/// token that is valid for a while (cache and refresh it as your identity provider requires).
///
/// ```
/// use kafkit::config::{TokenFuture, TokenProvider};
/// use kafkit::config::OAuthBearerToken;
///
/// #[derive(Debug)]
/// struct Static(String);
///
/// impl TokenProvider for Static {
///     fn token(&self) -> TokenFuture<'_> {
///         Box::pin(async move { Ok(OAuthBearerToken::new(self.0.clone())) })
///     }
/// }
/// ```
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// A current token, or why none can be had (the message is reported as an
    /// authentication error).
    fn token(&self) -> TokenFuture<'_>;
}

/// SASL settings: the mechanism and what it authenticates with.
#[derive(Clone, Default)]
pub struct SaslConfig {
    /// `sasl.mechanism`. Default PLAIN.
    pub mechanism: SaslMechanism,
    /// `sasl.username` (PLAIN, SCRAM).
    pub username: Option<String>,
    /// `sasl.password` (PLAIN, SCRAM).
    pub password: Option<Secret>,
    /// The token source for OAUTHBEARER.
    pub token_provider: Option<Arc<dyn TokenProvider>>,
}

impl SaslConfig {
    /// PLAIN or SCRAM with a user name and password.
    pub fn with_password(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        SaslConfig {
            mechanism,
            username: Some(username.into()),
            password: Some(password.into()),
            token_provider: None,
        }
    }

    /// OAUTHBEARER with tokens from `provider`.
    pub fn oauthbearer(provider: Arc<dyn TokenProvider>) -> Self {
        SaslConfig {
            mechanism: SaslMechanism::OAuthBearer,
            username: None,
            password: None,
            token_provider: Some(provider),
        }
    }
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("token_provider", &self.token_provider)
            .finish()
    }
}

impl PartialEq for SaslConfig {
    fn eq(&self, other: &Self) -> bool {
        self.mechanism == other.mechanism
            && self.username == other.username
            && self.password == other.password
            && match (&self.token_provider, &other.token_provider) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for SaslConfig {}

/// Which certificate authorities the client trusts for the brokers' certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TrustAnchors {
    /// Mozilla's root CAs (the `webpki-roots` crate), the default.
    #[default]
    WebPkiRoots,
    /// `ssl.ca.location`: a PEM file of one or more CA certificates.
    PemFile(PathBuf),
    /// `ssl.ca.pem`: PEM text of one or more CA certificates.
    Pem(String),
}

/// TLS settings, used when `security.protocol` is `SSL` or `SASL_SSL`.
#[derive(Clone)]
pub struct TlsConfig {
    /// The CAs brokers' certificates must chain to.
    pub trust: TrustAnchors,
    /// `ssl.certificate.location`: the client's certificate chain (PEM), for mutual TLS.
    pub certificate: Option<PathBuf>,
    /// `ssl.key.location`: the client's private key (PEM): unencrypted PKCS#8, PKCS#1 or
    /// SEC1, or encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, PBES2) with [`Self::key_password`].
    pub key: Option<PathBuf>,
    /// `ssl.key.password`: the password of an encrypted `ssl.key.location` key (PBES2 with
    /// PBKDF2-HMAC-SHA2 or scrypt, AES-CBC: what `openssl pkcs8 -topk8 -v2 aes-256-cbc`
    /// writes). Set exactly when the key is encrypted.
    pub key_password: Option<Secret>,
    /// `ssl.endpoint.identification.algorithm`: `true` (`https`, the default) checks that the
    /// broker's certificate names the host connected to; `false` (an empty value or `none`)
    /// checks the chain only.
    pub verify_hostname: bool,
    /// The TLS server name (SNI and hostname verification) to use instead of each broker's
    /// host (all brokers behind one name, e.g. a proxy).
    pub server_name: Option<String>,
    dangerous_skip_verification: bool,
    #[cfg(feature = "tls-core")]
    provider: Option<Arc<rustls::crypto::CryptoProvider>>,
}

impl TlsConfig {
    /// Default settings: webpki roots, hostname verification on.
    pub fn new() -> Self {
        TlsConfig {
            trust: TrustAnchors::WebPkiRoots,
            certificate: None,
            key: None,
            key_password: None,
            verify_hostname: true,
            server_name: None,
            dangerous_skip_verification: false,
            #[cfg(feature = "tls-core")]
            provider: None,
        }
    }

    /// Trusts the CAs in this PEM file (`ssl.ca.location`).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.trust = TrustAnchors::PemFile(path.into());
        self
    }

    /// Presents this certificate chain and key (PEM files) to brokers that ask (mTLS).
    pub fn client_certificate(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.certificate = Some(chain.into());
        self.key = Some(key.into());
        self
    }

    /// Decrypts the client key (an `ENCRYPTED PRIVATE KEY` PEM file) with this password
    /// (`ssl.key.password`).
    ///
    /// ```
    /// use kafkit::config::TlsConfig;
    ///
    /// let tls = TlsConfig::new()
    ///     .client_certificate("/etc/kafka/client.pem", "/etc/kafka/client.key")
    ///     .key_password("hunter2");
    /// assert!(!format!("{tls:?}").contains("hunter2"));
    /// ```
    pub fn key_password(mut self, password: impl Into<Secret>) -> Self {
        self.key_password = Some(password.into());
        self
    }

    /// **Dangerous**: accepts any certificate from any server, so anyone between the client
    /// and the broker can read and change the traffic (and steal SASL credentials). For tests
    /// against throwaway brokers only; there is deliberately no property for it.
    pub fn dangerous_skip_verification(mut self) -> Self {
        self.dangerous_skip_verification = true;
        self
    }

    /// Whether [`TlsConfig::dangerous_skip_verification`] was called.
    pub fn skips_verification(&self) -> bool {
        self.dangerous_skip_verification
    }

    /// Uses this rustls crypto provider instead of the built-in choice (a process default
    /// installed with `CryptoProvider::install_default`, else the one the crate's features
    /// select: aws-lc-rs with `tls-aws-lc`, ring with `tls-ring`, graviola with `tls`).
    #[cfg(feature = "tls-core")]
    pub fn crypto_provider(mut self, provider: Arc<rustls::crypto::CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The provider given with [`TlsConfig::crypto_provider`], if any.
    #[cfg(feature = "tls-core")]
    pub(crate) fn provider(&self) -> Option<&Arc<rustls::crypto::CryptoProvider>> {
        self.provider.as_ref()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::new()
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TlsConfig");
        d.field("trust", &self.trust)
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .field("key_password", &self.key_password)
            .field("verify_hostname", &self.verify_hostname)
            .field("server_name", &self.server_name)
            .field(
                "dangerous_skip_verification",
                &self.dangerous_skip_verification,
            );
        #[cfg(feature = "tls-core")]
        d.field("custom_provider", &self.provider.is_some());
        d.finish()
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        #[cfg(feature = "tls-core")]
        let same_provider = match (&self.provider, &other.provider) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        #[cfg(not(feature = "tls-core"))]
        let same_provider = true;
        self.trust == other.trust
            && self.certificate == other.certificate
            && self.key == other.key
            && self.key_password == other.key_password
            && self.verify_hostname == other.verify_hostname
            && self.server_name == other.server_name
            && self.dangerous_skip_verification == other.dangerous_skip_verification
            && same_provider
    }
}

impl Eq for TlsConfig {}

/// How connections are secured: the protocol, and the SASL and TLS settings it uses.
///
/// ```
/// use kafkit::config::{SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol, TlsConfig};
///
/// let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
///     .sasl(SaslConfig::with_password(SaslMechanism::ScramSha512, "alice", "alice-secret"))
///     .tls(TlsConfig::new().ca_file("/etc/kafka/ca.pem"));
/// assert!(security.validate().is_ok());
/// assert!(!format!("{security:?}").contains("alice-secret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// SASL settings (used by `SASL_PLAINTEXT` and `SASL_SSL`).
    pub sasl: SaslConfig,
    /// TLS settings (used by `SSL` and `SASL_SSL`).
    pub tls: TlsConfig,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig::new(SecurityProtocol::Plaintext)
    }
}

impl SecurityConfig {
    /// Settings for `protocol`, with default SASL and TLS settings.
    pub fn new(protocol: SecurityProtocol) -> Self {
        SecurityConfig {
            protocol,
            sasl: SaslConfig::default(),
            tls: TlsConfig::new(),
        }
    }

    /// Replaces the SASL settings.
    pub fn sasl(mut self, sasl: SaslConfig) -> Self {
        self.sasl = sasl;
        self
    }

    /// Replaces the TLS settings.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Checks that the settings the protocol needs are there: credentials for the SASL
    /// mechanism, a key with a client certificate, TLS support compiled in.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.protocol.uses_sasl() {
            let mechanism = self.sasl.mechanism.name();
            match self.sasl.mechanism {
                SaslMechanism::OAuthBearer => {
                    if self.sasl.token_provider.is_none() {
                        return Err(ConfigError::conflict(
                            SASL_MECHANISM,
                            mechanism,
                            "OAUTHBEARER needs a token provider (SaslConfig::oauthbearer)",
                        ));
                    }
                }
                _ => {
                    if self.sasl.username.as_deref().unwrap_or("").is_empty() {
                        return Err(ConfigError::conflict(
                            SASL_USERNAME,
                            "",
                            format!("{mechanism} needs sasl.username"),
                        ));
                    }
                    if self.sasl.password.is_none() {
                        return Err(ConfigError::conflict(
                            SASL_PASSWORD,
                            "",
                            format!("{mechanism} needs sasl.password"),
                        ));
                    }
                }
            }
        }
        if self.protocol.uses_tls() {
            if cfg!(not(feature = "tls-core")) {
                return Err(ConfigError::conflict(
                    SECURITY_PROTOCOL,
                    self.protocol.name(),
                    "kafkit was built without TLS (enable the `tls` feature)",
                ));
            }
            if self.tls.certificate.is_some() != self.tls.key.is_some() {
                return Err(ConfigError::conflict(
                    SSL_KEY_LOCATION,
                    self.tls
                        .key
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    "ssl.certificate.location and ssl.key.location go together",
                ));
            }
            if self.tls.key_password.is_some() && self.tls.key.is_none() {
                return Err(ConfigError::conflict(
                    SSL_KEY_PASSWORD,
                    "***",
                    "ssl.key.password decrypts the key of ssl.key.location, which is not set \
                     (keystores are not supported)",
                ));
            }
        }
        Ok(())
    }

    /// Applies one security property; `Ok(false)` when the key is not one.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let path = |v: &str| PathBuf::from(v.trim());
        match key {
            SECURITY_PROTOCOL => self.protocol = value.parse()?,
            SASL_MECHANISM | SASL_MECHANISMS => self.sasl.mechanism = value.parse()?,
            SASL_USERNAME => self.sasl.username = Some(value.to_owned()),
            SASL_PASSWORD => self.sasl.password = Some(Secret::new(value)),
            super::jaas::SASL_JAAS_CONFIG => {
                let credentials = super::jaas::parse(value)?;
                self.sasl.username = Some(credentials.username);
                self.sasl.password = Some(credentials.password);
            }
            SSL_CA_LOCATION => self.tls.trust = TrustAnchors::PemFile(path(value)),
            SSL_CA_PEM => self.tls.trust = TrustAnchors::Pem(value.to_owned()),
            SSL_CERTIFICATE_LOCATION => self.tls.certificate = Some(path(value)),
            SSL_KEY_LOCATION => self.tls.key = Some(path(value)),
            SSL_KEY_PASSWORD => self.tls.key_password = Some(Secret::new(value)),
            // Stores are not read (nor PEM stores given inline, `ssl.keystore.key`, ...).
            SSL_KEYSTORE_TYPE => {
                return Err(ConfigError::invalid(SSL_KEYSTORE_TYPE, value, NO_STORES))
            }
            SSL_KEYSTORE_LOCATION => {
                return Err(ConfigError::invalid(
                    SSL_KEYSTORE_LOCATION,
                    value,
                    NO_STORES,
                ))
            }
            SSL_TRUSTSTORE_TYPE => {
                return Err(ConfigError::invalid(SSL_TRUSTSTORE_TYPE, value, NO_STORES))
            }
            SSL_TRUSTSTORE_LOCATION => {
                return Err(ConfigError::invalid(
                    SSL_TRUSTSTORE_LOCATION,
                    value,
                    NO_STORES,
                ))
            }
            SSL_ENDPOINT_IDENTIFICATION_ALGORITHM => {
                self.tls.verify_hostname = match value.trim().to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => {
                        return Err(ConfigError::invalid(
                            SSL_ENDPOINT_IDENTIFICATION_ALGORITHM,
                            value,
                            "expected `https`, `none` or an empty value",
                        ))
                    }
                }
            }
            ENABLE_SSL_CERTIFICATE_VERIFICATION => {
                if !super::value::parse_bool(ENABLE_SSL_CERTIFICATE_VERIFICATION, value)? {
                    return Err(ConfigError::invalid(
                        ENABLE_SSL_CERTIFICATE_VERIFICATION,
                        value,
                        "turning certificate verification off is only possible with the typed \
                         TlsConfig::dangerous_skip_verification",
                    ));
                }
            }
            // Unsupported keys that hold secrets (`ssl.key.password`, `ssl.keystore.password`,
            // ...): refused like any unknown key, without repeating the value.
            _ if is_secret_key(key) => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_owned(),
                    value: "***".to_owned(),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The properties that read back into these settings; the password is left out (it is
    /// a secret), as are the typed-only token provider and crypto provider.
    pub(crate) fn append_properties(&self, out: &mut Vec<(&'static str, String)>) {
        out.push((SECURITY_PROTOCOL, self.protocol.name().to_owned()));
        if self.protocol.uses_sasl() {
            out.push((SASL_MECHANISM, self.sasl.mechanism.name().to_owned()));
            if let Some(user) = &self.sasl.username {
                out.push((SASL_USERNAME, user.clone()));
            }
        }
        if self.protocol.uses_tls() {
            match &self.tls.trust {
                TrustAnchors::WebPkiRoots => {}
                TrustAnchors::PemFile(p) => out.push((SSL_CA_LOCATION, p.display().to_string())),
                TrustAnchors::Pem(pem) => out.push((SSL_CA_PEM, pem.clone())),
            }
            if let Some(p) = &self.tls.certificate {
                out.push((SSL_CERTIFICATE_LOCATION, p.display().to_string()));
            }
            if let Some(p) = &self.tls.key {
                out.push((SSL_KEY_LOCATION, p.display().to_string()));
            }
            let algorithm = if self.tls.verify_hostname {
                "https"
            } else {
                ""
            };
            out.push((SSL_ENDPOINT_IDENTIFICATION_ALGORITHM, algorithm.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(props: &[(&str, &str)]) -> Result<SecurityConfig, ConfigError> {
        let mut c = SecurityConfig::default();
        for (k, v) in props {
            assert!(c.set(k, v)?, "{k} not claimed");
        }
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn properties_by_their_usual_names() {
        let c = parse(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
            ("ssl.ca.location", "/tmp/ca.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        assert_eq!(c.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(
            c.sasl.password.as_ref().map(Secret::expose),
            Some("alice-secret")
        );
        assert_eq!(c.tls.trust, TrustAnchors::PemFile("/tmp/ca.pem".into()));
        assert!(!c.tls.verify_hostname);
        let debug = format!("{c:?}");
        assert!(!debug.contains("alice-secret"), "{debug}");
        let mut props = Vec::new();
        c.append_properties(&mut props);
        assert!(props.iter().all(|(_, v)| v != "alice-secret"));
        assert!(props.contains(&(SECURITY_PROTOCOL, "SASL_SSL".to_owned())));
    }

    #[test]
    fn credentials_from_a_jaas_entry() {
        let c = parse(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"alice\" password=\"alice-secret\";",
            ),
        ])
        .unwrap();
        assert_eq!(c.sasl.username.as_deref(), Some("alice"));
        assert_eq!(c.sasl.password, Some(Secret::new("alice-secret")));
    }

    #[test]
    fn bad_values_and_missing_credentials() {
        assert_eq!(
            parse(&[("security.protocol", "TLS")]).unwrap_err().key(),
            SECURITY_PROTOCOL
        );
        assert!(parse(&[("sasl.mechanism", "GSSAPI")])
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        assert_eq!(
            parse(&[("security.protocol", "SASL_PLAINTEXT")])
                .unwrap_err()
                .key(),
            SASL_USERNAME
        );
        assert_eq!(
            parse(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.username", "a")
            ])
            .unwrap_err()
            .key(),
            SASL_PASSWORD
        );
        assert_eq!(
            parse(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "OAUTHBEARER")
            ])
            .unwrap_err()
            .key(),
            SASL_MECHANISM
        );
        assert!(parse(&[("enable.ssl.certificate.verification", "false")]).is_err());
        let err = parse(&[
            ("security.protocol", "SSL"),
            ("ssl.key.password", "hunter2"),
        ])
        .unwrap_err();
        assert_eq!(err.key(), "ssl.key.password");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let c = parse(&[
            ("security.protocol", "SSL"),
            ("ssl.certificate.location", "/c.pem"),
            ("ssl.key.location", "/k.pem"),
            ("ssl.key.password", "hunter2"),
        ])
        .unwrap();
        assert_eq!(c.tls.key_password, Some(Secret::new("hunter2")));
        assert!(!format!("{c:?}").contains("hunter2"));
        for (key, value) in [
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", "/ks.p12"),
            ("ssl.truststore.type", "JKS"),
            ("ssl.truststore.location", "/ts.jks"),
        ] {
            let err = parse(&[(key, value)]).unwrap_err();
            assert_eq!(err.key(), key);
            assert!(err.to_string().contains("not supported"), "{err}");
        }
        let err = parse(&[("ssl.keystore.password", "hunter2")]).unwrap_err();
        assert_eq!(err.key(), "ssl.keystore.password");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(parse(&[("enable.ssl.certificate.verification", "true")]).is_ok());
        assert!(parse(&[("ssl.endpoint.identification.algorithm", "dns")]).is_err());
        assert_eq!(
            parse(&[
                ("security.protocol", "SSL"),
                ("ssl.certificate.location", "/c.pem")
            ])
            .unwrap_err()
            .key(),
            SSL_KEY_LOCATION
        );
    }
}
