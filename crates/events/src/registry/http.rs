//! The HTTP backend: Confluent's REST API (also Apicurio's `ccompat` API) over reqwest with
//! rustls and kafkit's C-free crypto provider; several URLs, retries with full jitter, a
//! per-request timeout and an overall deadline; registry answers mapped to typed errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::config::{redact, RegistryAuth, RegistryConfig, Secret};
use super::error::{is_retriable_status, Missing, RegistryError};
use super::retry::{random_unit, Backoff};
use super::types::{Compatibility, RegisteredSchema, Schema, SchemaReference, SchemaType};

const ACCEPT_VALUE: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";
const CONTENT_TYPE_VALUE: &str = "application/vnd.schemaregistry.v1+json";
/// Bodies larger than this are refused (schemas are small; a hostile server is not).
const MAX_BODY: usize = 16 << 20;

/// One registry URL: its base (no user info, no trailing `/`) and its credentials.
#[derive(Debug)]
struct Target {
    base: String,
    auth: RegistryAuth,
}

#[derive(Debug)]
pub(crate) struct HttpBackend {
    client: reqwest::Client,
    targets: Vec<Target>,
    request_timeout: Duration,
    deadline: Duration,
    max_retries: u32,
    backoff: Backoff,
    requests: Arc<AtomicU64>,
}

/// What a call is about: names the missing thing in errors.
#[derive(Debug, Clone, Copy)]
enum About<'a> {
    Subject(&'a str),
    Version(&'a str, i32),
    Id(u32),
    Global,
}

impl About<'_> {
    fn subject(&self) -> String {
        match self {
            About::Subject(s) | About::Version(s, _) => (*s).to_owned(),
            About::Id(_) | About::Global => String::new(),
        }
    }
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved characters), so a
/// subject like `a/b` becomes `a%2Fb`.
pub(crate) fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(Ok(v)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn targets(config: &RegistryConfig) -> Result<Vec<Target>, RegistryError> {
    config
        .urls
        .iter()
        .map(|url| {
            let mut parsed = reqwest::Url::parse(url).map_err(|e| {
                RegistryError::config("schema.registry.url", format!("`{}`: {e}", redact(url)))
            })?;
            let mut auth = config.auth.clone();
            if !parsed.username().is_empty() {
                if auth == RegistryAuth::None {
                    auth = RegistryAuth::Basic {
                        username: percent_decode(parsed.username()),
                        password: Secret::new(percent_decode(parsed.password().unwrap_or(""))),
                    };
                }
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
            }
            Ok(Target {
                base: parsed.as_str().trim_end_matches('/').to_owned(),
                auth,
            })
        })
        .collect()
}

fn tls_config(config: &RegistryConfig) -> Result<rustls::ClientConfig, RegistryError> {
    let mut tls = kafkit::config::TlsConfig::new();
    if let Some(ca) = &config.ca_location {
        tls = tls.ca_file(ca.clone());
    }
    if rustls::crypto::CryptoProvider::get_default().is_none()
        && kafkit::tls::graviola_cpu_supported()
    {
        tls = tls.crypto_provider(Arc::new(rustls_graviola::default_provider()));
    }
    kafkit::tls::client_config(&tls)
        .map_err(|message| RegistryError::config("schema.registry.ssl.ca.location", message))
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaResponse {
    subject: Option<String>,
    id: Option<u32>,
    version: Option<i32>,
    schema: String,
    schema_type: Option<String>,
    references: Option<Vec<SchemaReference>>,
}

impl SchemaResponse {
    fn into_registered(self, id: Option<u32>) -> Result<RegisteredSchema, RegistryError> {
        let schema_type = match self.schema_type.as_deref() {
            None | Some("") => SchemaType::Avro,
            Some(t) => t.parse()?,
        };
        Ok(RegisteredSchema {
            id: self
                .id
                .or(id)
                .ok_or_else(|| RegistryError::InvalidResponse {
                    message: "a schema without an id".to_owned(),
                })?,
            subject: self.subject,
            version: self.version,
            schema: Schema {
                schema_type,
                schema: self.schema,
                references: self.references.unwrap_or_default(),
            },
        })
    }
}

#[derive(Deserialize)]
struct CompatibilityCheck {
    is_compatible: bool,
}

/// Confluent's GET answers `compatibilityLevel`, PUT answers `compatibility`; Apicurio
/// likewise: accept both on every answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigResponse {
    compatibility_level: Option<String>,
    compatibility: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<i32>,
    message: Option<String>,
}

fn schema_body(schema: &Schema) -> serde_json::Value {
    let mut body = json!({ "schema": schema.schema });
    if schema.schema_type != SchemaType::Avro {
        body["schemaType"] = json!(schema.schema_type.as_str());
    }
    if !schema.references.is_empty() {
        body["references"] = json!(schema.references);
    }
    body
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::InvalidResponse {
        message: format!(
            "{e}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    })
}

/// Maps an error status to the typed error.
fn status_error(status: StatusCode, body: &[u8], url: &str, about: About<'_>) -> RegistryError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|b| b.error_code);
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned());
    let url = url.to_owned();
    match status.as_u16() {
        404 => {
            let missing = match (code, about) {
                (Some(40401), _) => Missing::Subject,
                (Some(40402), _) => Missing::Version,
                (Some(40403), _) | (None, About::Id(_)) => Missing::Schema,
                (None, About::Subject(_)) => Missing::Subject,
                (None, About::Version(..)) => Missing::Version,
                _ => Missing::Other,
            };
            let what = match (missing, about) {
                (_, About::Id(id)) => format!("schema id {id}"),
                (Missing::Version, About::Version(s, v)) => {
                    format!("version {v} of subject `{s}`")
                }
                (Missing::Schema, About::Subject(s)) => format!("schema under subject `{s}`"),
                (_, About::Subject(s) | About::Version(s, _)) => format!("subject `{s}`"),
                (_, About::Global) => url.clone(),
            };
            RegistryError::NotFound {
                missing,
                what,
                message,
            }
        }
        409 => RegistryError::Incompatible {
            subject: about.subject(),
            message,
        },
        422 => RegistryError::Invalid {
            code: code.unwrap_or(422),
            message,
        },
        401 => RegistryError::Unauthorized { url, message },
        403 => RegistryError::Forbidden { url, message },
        status => RegistryError::Http {
            status,
            code,
            url,
            message,
        },
    }
}

impl HttpBackend {
    pub(crate) fn new(
        config: &RegistryConfig,
        requests: Arc<AtomicU64>,
    ) -> Result<Self, RegistryError> {
        config.validate()?;
        let targets = targets(config)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_VALUE));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_VALUE));
        headers.insert(
            "Confluent-Accept-Unknown-Properties",
            HeaderValue::from_static("true"),
        );
        // Always preconfigured, even for http:// URLs: reqwest built with `rustls-no-provider`
        // panics when it builds a client without a provider.
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.request_timeout)
            .tls_backend_preconfigured(tls_config(config)?)
            .build()
            .map_err(|e| {
                RegistryError::config("schema.registry.url", format!("HTTP client: {e}"))
            })?;
        Ok(HttpBackend {
            client,
            targets,
            request_timeout: config.request_timeout,
            deadline: config.deadline,
            max_retries: config.max_retries,
            backoff: Backoff {
                base: config.retry_backoff,
                max: config.retry_max_backoff,
            },
            requests,
        })
    }

    /// Sends `method path` with `body` until a URL answers something not retriable, the
    /// retries are spent, or the deadline passes; returns the 2xx body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        about: About<'_>,
    ) -> Result<Vec<u8>, RegistryError> {
        let start = Instant::now();
        let deadline = start + self.deadline;
        let operation = format!("{method} {path}");
        let mut attempts = 0u32;
        let mut retry = 0u32;
        loop {
            let mut last_transport: Option<(bool, String)> = None;
            let mut answered: Option<RegistryError> = None;
            for target in &self.targets {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let url = format!("{}{path}", target.base);
                let mut request = self
                    .client
                    .request(method.clone(), &url)
                    .timeout(self.request_timeout.min(deadline - now));
                request = match &target.auth {
                    RegistryAuth::None => request,
                    RegistryAuth::Basic { username, password } => {
                        request.basic_auth(username, Some(password.expose()))
                    }
                    RegistryAuth::Bearer { token } => request.bearer_auth(token.expose()),
                };
                if let Some(body) = body {
                    request = request.body(body.to_string());
                }
                attempts += 1;
                self.requests.fetch_add(1, Ordering::Relaxed);
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(e) => {
                        tracing::debug!(url = %url, error = %e, "schema registry request failed");
                        last_transport = Some((e.is_timeout(), format!("{url}: {}", chain(&e))));
                        continue;
                    }
                };
                let status = response.status();
                let bytes = match read_body(response).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        last_transport = Some((false, format!("{url}: {e}")));
                        continue;
                    }
                };
                if status.is_success() {
                    return Ok(bytes);
                }
                let error = status_error(status, &bytes, &url, about);
                if !is_retriable_status(status.as_u16()) {
                    return Err(error);
                }
                answered = Some(error);
                break;
            }
            let error = match (answered, last_transport) {
                (Some(error), _) => error,
                (None, Some((true, message))) => RegistryError::Timeout {
                    operation: operation.clone(),
                    elapsed: start.elapsed(),
                    last: message,
                },
                (None, Some((false, message))) => RegistryError::Unreachable {
                    urls: self.targets.iter().map(|t| t.base.clone()).collect(),
                    attempts,
                    message,
                },
                (None, None) => RegistryError::Timeout {
                    operation: operation.clone(),
                    elapsed: start.elapsed(),
                    last: "deadline passed".to_owned(),
                },
            };
            if retry >= self.max_retries {
                return Err(error);
            }
            let delay = self.backoff.delay(retry, random_unit());
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            tracing::debug!(%operation, retry, ?delay, error = %error, "retrying schema registry call");
            tokio::time::sleep(delay).await;
            if Instant::now() >= deadline {
                // The sleep ran to the deadline (timers run late on a busy machine): the last
                // round's cause is the answer, not a round with no attempt in it.
                return Err(error);
            }
            retry += 1;
        }
    }

    /// POSTs `schema` (Confluent's request body) to `path`, a call about `subject`.
    async fn post_schema(
        &self,
        path: &str,
        subject: &str,
        schema: &Schema,
    ) -> Result<Vec<u8>, RegistryError> {
        self.call(
            Method::POST,
            path,
            Some(&schema_body(schema)),
            About::Subject(subject),
        )
        .await
    }

    pub(crate) async fn register(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<u32, RegistryError> {
        let path = format!("/subjects/{}/versions", escape_segment(subject));
        let body = self.post_schema(&path, subject, schema).await?;
        Ok(parse::<IdResponse>(&body)?.id)
    }

    pub(crate) async fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<RegisteredSchema, RegistryError> {
        let path = format!("/subjects/{}", escape_segment(subject));
        let body = self.post_schema(&path, subject, schema).await?;
        let mut found = parse::<SchemaResponse>(&body)?.into_registered(None)?;
        found.subject.get_or_insert_with(|| subject.to_owned());
        Ok(found)
    }

    pub(crate) async fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, RegistryError> {
        let body = self
            .call(
                Method::GET,
                &format!("/schemas/ids/{id}"),
                None,
                About::Id(id),
            )
            .await?;
        parse::<SchemaResponse>(&body)?.into_registered(Some(id))
    }

    /// Version `-1` is the latest.
    pub(crate) async fn version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<RegisteredSchema, RegistryError> {
        let v = if version == -1 {
            "latest".to_owned()
        } else {
            version.to_string()
        };
        let path = format!("/subjects/{}/versions/{v}", escape_segment(subject));
        let body = self
            .call(Method::GET, &path, None, About::Version(subject, version))
            .await?;
        let mut found = parse::<SchemaResponse>(&body)?.into_registered(None)?;
        found.subject.get_or_insert_with(|| subject.to_owned());
        Ok(found)
    }

    pub(crate) async fn test_compatibility(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<bool, RegistryError> {
        let path = format!(
            "/compatibility/subjects/{}/versions/latest",
            escape_segment(subject)
        );
        match self.post_schema(&path, subject, schema).await {
            Ok(body) => Ok(parse::<CompatibilityCheck>(&body)?.is_compatible),
            // Nothing registered yet: nothing to be incompatible with.
            Err(RegistryError::NotFound {
                missing: Missing::Subject | Missing::Version,
                ..
            }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<Compatibility, RegistryError> {
        let (path, about) = match subject {
            Some(s) => (
                format!("/config/{}?defaultToGlobal=true", escape_segment(s)),
                About::Subject(s),
            ),
            None => ("/config".to_owned(), About::Global),
        };
        match self.call(Method::GET, &path, None, about).await {
            Ok(body) => level(&body),
            // Apicurio answers 40401 for a subject it does not know even with
            // `defaultToGlobal`; Confluent answers the global level: do the same.
            Err(RegistryError::NotFound {
                missing: Missing::Subject,
                ..
            }) if subject.is_some() => {
                let body = self
                    .call(Method::GET, "/config", None, About::Global)
                    .await?;
                level(&body)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Compatibility,
    ) -> Result<(), RegistryError> {
        let (path, about) = match subject {
            Some(s) => (format!("/config/{}", escape_segment(s)), About::Subject(s)),
            None => ("/config".to_owned(), About::Global),
        };
        let body = json!({ "compatibility": level.as_str() });
        self.call(Method::PUT, &path, Some(&body), about).await?;
        Ok(())
    }
}

fn level(body: &[u8]) -> Result<Compatibility, RegistryError> {
    let config = parse::<ConfigResponse>(body)?;
    config
        .compatibility_level
        .or(config.compatibility)
        .ok_or_else(|| RegistryError::InvalidResponse {
            message: "config without compatibilityLevel or compatibility".to_owned(),
        })?
        .parse()
}

/// An error and its sources, `: `-separated (reqwest's own message hides the cause, e.g. a
/// refused connection or an unknown certificate issuer).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("response body over {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_decodes() {
        assert_eq!(escape_segment("a/b c-d.e_f~"), "a%2Fb%20c-d.e_f~");
        assert_eq!(percent_decode("us%40er"), "us@er");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn both_compatibility_field_names() {
        assert_eq!(
            level(br#"{"compatibilityLevel":"FULL"}"#).unwrap(),
            Compatibility::Full
        );
        assert_eq!(
            level(br#"{"compatibility":"NONE"}"#).unwrap(),
            Compatibility::None
        );
        assert!(level(br#"{}"#).is_err());
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        let e = status_error(
            StatusCode::NOT_FOUND,
            br#"{"error_code":40401,"message":"Subject 'x' not found."}"#,
            "u",
            About::Subject("x"),
        );
        assert!(matches!(
            e,
            RegistryError::NotFound {
                missing: Missing::Subject,
                ..
            }
        ));
        let e = status_error(StatusCode::NOT_FOUND, b"", "u", About::Id(3));
        assert!(
            matches!(e, RegistryError::NotFound { missing: Missing::Schema, ref what, .. } if what == "schema id 3")
        );
        let e = status_error(StatusCode::CONFLICT, b"{}", "u", About::Subject("s"));
        assert!(matches!(e, RegistryError::Incompatible { .. }));
        let e = status_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"error_code":42201,"message":"bad"}"#,
            "u",
            About::Subject("s"),
        );
        assert!(matches!(e, RegistryError::Invalid { code: 42201, .. }));
    }

    #[test]
    fn url_user_info_becomes_basic_auth() {
        let config = RegistryConfig::new(["http://al%40ice:p%3Aw@127.0.0.1:1/apis/"]);
        let t = targets(&config).unwrap();
        assert_eq!(t[0].base, "http://127.0.0.1:1/apis");
        assert_eq!(
            t[0].auth,
            RegistryAuth::Basic {
                username: "al@ice".into(),
                password: Secret::new("p:w")
            }
        );
    }
}
