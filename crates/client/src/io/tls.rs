//! TLS for broker connections (`SSL`, `SASL_SSL`): rustls, with a crypto provider that builds
//! with no C toolchain by default.
//!
//! **Crypto provider.** rustls' own providers (aws-lc-rs, ring) compile C. kafkit's default
//! `tls` feature uses [graviola](https://crates.io/crates/rustls-graviola), pure Rust with
//! assembly written in Rust's `asm!` (x86_64 and aarch64): fast, and a static musl binary builds
//! with no C compiler. It needs a CPU from about 2013 on (x86_64: aes, pclmulqdq, bmi1, adx,
//! avx, avx2; aarch64: neon, aes, pmull, sha2) and would panic without; kafkit checks first and
//! fails the connection with [`Error::Tls`] instead. The choice, first match wins:
//! 1. a provider given with `TlsConfig::crypto_provider`;
//! 2. the process default (`rustls::crypto::CryptoProvider::install_default`);
//! 3. aws-lc-rs with the `tls-aws-lc` feature, ring with `tls-ring` (both need C);
//! 4. graviola with `tls` (the default).
//!
//! **Verification.** The broker's chain is checked against `ssl.ca.location` (PEM) or the
//! webpki roots, and its name against the host connected to (`ssl.endpoint.identification.
//! algorithm=https`, the default), which is also sent as SNI when it is a DNS name. With
//! hostname verification off the chain is still checked. Only the typed
//! `TlsConfig::dangerous_skip_verification` accepts any certificate.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector as RustlsConnector;

use crate::config::{Secret, TlsConfig, TrustAnchors};
use crate::error::{Error, Result};

/// Whether this CPU has what graviola needs (it panics on first use otherwise).
pub fn graviola_cpu_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("adx")
            && std::arch::is_x86_feature_detected!("avx")
            && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("neon")
            && std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
            && std::arch::is_aarch64_feature_detected!("sha2")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(feature = "tls-aws-lc")]
fn builtin_provider() -> std::result::Result<Arc<CryptoProvider>, String> {
    Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

#[cfg(all(feature = "tls-ring", not(feature = "tls-aws-lc")))]
fn builtin_provider() -> std::result::Result<Arc<CryptoProvider>, String> {
    Ok(Arc::new(rustls::crypto::ring::default_provider()))
}

#[cfg(all(
    feature = "tls",
    not(feature = "tls-ring"),
    not(feature = "tls-aws-lc"),
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn builtin_provider() -> std::result::Result<Arc<CryptoProvider>, String> {
    if graviola_cpu_supported() {
        Ok(Arc::new(rustls_graviola::default_provider()))
    } else {
        Err(
            "this CPU lacks the instructions the graviola crypto provider needs (x86_64: \
             aes, pclmulqdq, bmi1, adx, avx, avx2; aarch64: aes, pmull, sha2): build with the \
             `tls-ring` or `tls-aws-lc` feature or pass a provider in TlsConfig"
                .to_owned(),
        )
    }
}

#[cfg(not(any(
    feature = "tls-aws-lc",
    feature = "tls-ring",
    all(feature = "tls", any(target_arch = "x86_64", target_arch = "aarch64"))
)))]
fn builtin_provider() -> std::result::Result<Arc<CryptoProvider>, String> {
    Err(
        "no TLS crypto provider: enable a kafkit TLS feature, install a rustls \
         process default, or pass one in TlsConfig"
            .to_owned(),
    )
}

fn provider(config: &TlsConfig) -> std::result::Result<Arc<CryptoProvider>, String> {
    if let Some(p) = config.provider() {
        return Ok(p.clone());
    }
    if let Some(p) = CryptoProvider::get_default() {
        return Ok(p.clone());
    }
    builtin_provider()
}

/// The rustls client settings for `config`: provider, trust anchors, verifier, client
/// certificate. Public so other kafkit crates (the schema registry's HTTPS client) build
/// their TLS the same way; the error is a message naming the bad setting.
pub fn client_config(config: &TlsConfig) -> std::result::Result<rustls::ClientConfig, String> {
    let provider = provider(config)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS provider: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = if config.skips_verification() {
        Arc::new(NoVerification(provider))
    } else {
        let roots = Arc::new(root_store(&config.trust)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("TLS verifier: {e}"))?;
        if config.verify_hostname {
            webpki
        } else {
            Arc::new(ChainOnly(webpki))
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&config.certificate, &config.key) {
        (Some(chain), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(chain)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("ssl.certificate.location {}: {e}", chain.display()))?;
            if chain.is_empty() {
                return Err("ssl.certificate.location holds no certificate".to_owned());
            }
            let key = private_key(key, config.key_password.as_ref())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
/// The key encryptions [`private_key`] decrypts.
const SCHEMES: &str = "PBES2 with PBKDF2-HMAC-SHA2 or scrypt and AES-CBC";

/// The client's private key from `ssl.key.location` (PEM): unencrypted (PKCS#8, PKCS#1 or
/// SEC1), or encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`: PBES2 with PBKDF2 or scrypt and
/// AES-CBC, what `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes) decrypted with
/// `ssl.key.password`. As in Java, a password needs an encrypted key and an encrypted key a
/// password. Errors name the setting, never the password.
fn private_key(
    path: &std::path::Path,
    password: Option<&Secret>,
) -> std::result::Result<PrivateKeyDer<'static>, String> {
    let location = |e: &dyn std::fmt::Display| format!("ssl.key.location {}: {e}", path.display());
    let pem = std::fs::read(path).map_err(|e| location(&e))?;
    let text = String::from_utf8_lossy(&pem);
    let Some(begin) = text.find(ENCRYPTED_BEGIN) else {
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(location(
                &"the key is encrypted in OpenSSL's legacy PEM format, which is not supported: \
                  convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
            ));
        }
        if password.is_some() {
            return Err(location(
                &"ssl.key.password is set but the key is not encrypted (no `ENCRYPTED PRIVATE \
                  KEY`)",
            ));
        }
        return PrivateKeyDer::from_pem_slice(&pem).map_err(|e| location(&e));
    };
    let Some(password) = password else {
        return Err(location(&"the key is encrypted: set ssl.key.password"));
    };
    let end = text[begin..]
        .find(ENCRYPTED_END)
        .map(|i| begin + i + ENCRYPTED_END.len())
        .ok_or_else(|| location(&"unterminated ENCRYPTED PRIVATE KEY block"))?;
    let (_, document) = pkcs8::der::Document::from_pem(&text[begin..end])
        .map_err(|e| location(&format!("bad ENCRYPTED PRIVATE KEY block: {e}")))?;
    let encrypted =
        pkcs8::EncryptedPrivateKeyInfoRef::try_from(document.as_bytes()).map_err(|e| {
            location(&format!(
                "unsupported or bad ENCRYPTED PRIVATE KEY ({e}): kafkit decrypts {SCHEMES}"
            ))
        })?;
    let plain = encrypted.decrypt(password.expose()).map_err(|e| {
        location(&format!(
            "cannot decrypt the key with ssl.key.password ({e}): a wrong password, or an \
             encryption other than {SCHEMES}"
        ))
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

fn root_store(trust: &TrustAnchors) -> std::result::Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = match trust {
        TrustAnchors::WebPkiRoots => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(roots);
        }
        TrustAnchors::PemFile(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| format!("ssl.ca.location {}: {e}", path.display()))?,
        TrustAnchors::Pem(text) => CertificateDer::pem_slice_iter(text.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("ssl.ca.pem: {e}"))?,
    };
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err("the CA file holds no usable certificate".to_owned());
    }
    Ok(roots)
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(broker: &str) -> &str {
    let host = broker.rsplit_once(':').map_or(broker, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// A client's TLS settings, made once ([`client_config`]) and shared by all its connections:
/// the CA and key files are read (and an encrypted key decrypted) once, when the client
/// starts, and the connections share rustls' session cache, so a broker that allows session
/// resumption sees resumed handshakes (Kafka's own listeners, JDK 17, resumed none in our
/// tests, not even for `openssl s_client`).
#[derive(Clone)]
pub struct TlsConnector {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// Reads the settings (CA, client certificate and key files) and builds the rustls
    /// configuration; the error is a message naming the bad setting.
    pub fn new(config: &TlsConfig) -> std::result::Result<TlsConnector, String> {
        Ok(TlsConnector {
            connector: RustlsConnector::from(Arc::new(client_config(config)?)),
            server_name: config.server_name.clone(),
        })
    }

    /// The rustls configuration every handshake of this connector uses.
    pub fn config(&self) -> &Arc<rustls::ClientConfig> {
        self.connector.config()
    }

    /// Runs the TLS handshake over a connected socket to `broker` (`host:port`).
    pub(crate) async fn handshake(
        &self,
        broker: &str,
        stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>> {
        let tls_error = |message: String| Error::Tls {
            broker: broker.to_owned(),
            message,
        };
        let name = self.server_name.as_deref().unwrap_or(host_of(broker));
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|e| tls_error(format!("invalid TLS server name `{name}`: {e}")))?;
        self.connector
            .connect(server_name, stream)
            .await
            .map_err(|e| {
                let hint = match e.kind() {
                    std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe => {
                        " (the broker closed the connection during the TLS handshake: is this \
                         a TLS listener?)"
                    }
                    _ => "",
                };
                tls_error(format!("TLS handshake failed: {e}{hint}"))
            })
    }
}

/// Accepts every certificate (`TlsConfig::dangerous_skip_verification`); handshake
/// signatures are still checked, so the peer holds the key of the certificate it sent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain (webpki) but not the name (`ssl.endpoint.identification.algorithm=`).
/// webpki checks the chain before the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_broker_addresses() {
        assert_eq!(host_of("kafka-1.example:9093"), "kafka-1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/tls")
            .join(name)
    }

    fn der(key: &PrivateKeyDer<'_>) -> Vec<u8> {
        key.secret_der().to_vec()
    }

    #[test]
    fn encrypted_pkcs8_keys_are_decrypted_with_the_password() {
        let password = Secret::new("fixture-pw");
        let plain = private_key(&fixture("plain.key"), None).unwrap();
        for name in ["aes256.key", "scrypt.key"] {
            let decrypted = private_key(&fixture(name), Some(&password)).unwrap();
            assert_eq!(der(&decrypted), der(&plain), "{name}");
            assert!(matches!(decrypted, PrivateKeyDer::Pkcs8(_)));
        }
    }

    #[test]
    fn key_password_mistakes_name_the_setting_never_the_password() {
        let wrong = Secret::new("not-the-pw");
        let right = Secret::new("fixture-pw");
        let cases = [
            (
                "aes256.key",
                Some(&wrong),
                "cannot decrypt the key with ssl.key.password",
            ),
            ("aes256.key", None, "set ssl.key.password"),
            ("plain.key", Some(&right), "the key is not encrypted"),
            (
                "des3.key",
                Some(&right),
                "unsupported or bad ENCRYPTED PRIVATE KEY",
            ),
            ("legacy.key", Some(&right), "legacy PEM format"),
        ];
        for (name, password, says) in cases {
            let err = private_key(&fixture(name), password).unwrap_err();
            assert!(err.contains(says), "{name}: {err}");
            assert!(err.contains("ssl.key.location"), "{name}: {err}");
            assert!(
                !err.contains("not-the-pw") && !err.contains("fixture-pw"),
                "{err}"
            );
        }
        let missing = private_key(&fixture("no-such.key"), None).unwrap_err();
        assert!(missing.contains("no-such.key"), "{missing}");
    }

    #[test]
    fn the_default_provider_works_here() {
        // This machine (and CI's) has the instructions graviola needs.
        let config = TlsConfig::new();
        assert!(client_config(&config).is_ok());
        let missing = TlsConfig::new().ca_file("/nonexistent/ca.pem");
        let err = client_config(&missing).unwrap_err();
        assert!(err.contains("ssl.ca.location"), "{err}");
    }
}
