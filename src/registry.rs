//! Confluent-compatible schema registry client (Confluent, Apicurio `ccompat`, Karapace,
//! Redpanda): registers a subject's schema and returns its id for the wire format.
//!
//! Ids are cached by (subject, schema text), so the registry sees one call per table schema
//! version, not per event. A registry that is down is *transient*: a registration is retried
//! in place for [`RETRY_IN_PLACE`] (a blip passes without a reconnect), then the failure goes
//! to the source's supervisor, which shows `waiting_for_registry` and retries the source with
//! its backoff; the pipeline pauses, nothing is dropped. A registry that refuses the schema
//! (incompatible, invalid, unauthorized) is *definite*: the source stops with the registry's
//! own explanation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{SchemaRegistryConfig, Secret};
use crate::ops::metrics::RegistryMetrics;

/// Content type of the Confluent REST API.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Per-request timeout: long enough for a registry under load, short enough to notice a hang
/// (a half-open connection) while an outage lasts: 30 s let a 30 s half-open registry pass
/// unseen in /readyz (fault suite, docs/reliability.md).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// First retry delay; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long [`Registry::register_with_retry`] retries a transient failure before returning it.
/// Retried for ever in place, an outage would never show: the source would stay `streaming`
/// (and `/readyz` 200) while it waits (fault suite, docs/reliability.md).
pub const RETRY_IN_PLACE: Duration = Duration::from_secs(5);

/// A registry failure, split into what retrying can fix and what it cannot.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Network trouble or a 5xx: retry.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    /// The registry refused the schema as incompatible with earlier versions.
    #[error(
        "schema registry rejected the schema of subject `{subject}` as incompatible: {message}; \
         fix: make the change backward compatible, or relax the subject's compatibility \
         (PUT /config/{subject}), or route such events to a dead-letter topic"
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's explanation (names the field).
        message: String,
    },
    /// The `[schema_registry]` settings cannot be used (unreadable or malformed `ca_file`).
    #[error("schema registry client: {0}")]
    Config(String),
    /// Any other refusal (invalid schema, unauthorized, …).
    #[error("schema registry refused subject `{subject}` (http {status}): {message}")]
    Refused {
        /// The subject.
        subject: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
}

impl RegistryError {
    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Unavailable(_))
    }
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// A request that got no answer: a refused certificate is definite (the operator must trust
/// the registry's CA), anything else is the network and transient. The URL is left out: it may
/// carry credentials.
fn send_error(e: reqwest::Error) -> RegistryError {
    use std::error::Error as _;
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    if crate::net::tls::is_certificate_failure(&text) {
        RegistryError::Config(format!(
            "tls to the registry failed: {text}; fix: set schema_registry.ca_file to the PEM \
             file of the CA that signed the registry's certificate"
        ))
    } else {
        RegistryError::Unavailable(text)
    }
}

/// Registry client with an id cache. Cheap to share behind an `Arc`.
pub struct Registry {
    base: String,
    http: reqwest::Client,
    username: Option<String>,
    password: Option<Secret>,
    cache: Mutex<HashMap<(String, String), u32>>,
    by_id: Mutex<HashMap<u32, Arc<str>>>,
    metrics: RegistryMetrics,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .finish()
    }
}

impl Registry {
    /// A client for the configured registry.
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Self, RegistryError> {
        let mut http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(ca) = &cfg.ca_file {
            let bad = |problem: String| {
                RegistryError::Config(format!(
                    "key `schema_registry.ca_file`: {problem}; fix: point it at the PEM file of \
                     the CA that signed the registry's certificate"
                ))
            };
            let pem =
                std::fs::read(ca).map_err(|e| bad(format!("cannot read {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                bad(format!(
                    "{} is not a PEM certificate file: {e}",
                    ca.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(bad(format!("{} holds no certificate", ca.display())));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| RegistryError::Config(format!("http client: {e}")))?;
        Ok(Self {
            base: cfg.url.trim_end_matches('/').to_string(),
            http,
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            cache: Mutex::new(HashMap::new()),
            by_id: Mutex::new(HashMap::new()),
            metrics: RegistryMetrics::default(),
        })
    }

    /// Counts requests and errors into `metrics` (`cdc_agent_registry_*`).
    pub fn with_metrics(mut self, metrics: RegistryMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The id of `schema` under `subject`, as `Registry::register_once`, counting the
    /// outcome.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let r = self.register_once(subject, schema).await;
        if let Err(e) = &r {
            match e {
                RegistryError::Unavailable(_) => self.metrics.register_unavailable.inc(),
                RegistryError::Incompatible { .. } => self.metrics.register_incompatible.inc(),
                RegistryError::Refused { .. } | RegistryError::Config(_) => {
                    self.metrics.register_refused.inc()
                }
            };
        }
        r
    }

    /// The id of `schema` under `subject`, registering it when the registry does not know it.
    /// One attempt; see [`Registry::register_with_retry`].
    async fn register_once(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(*id);
        }
        let body = serde_json::json!({ "schema": schema });
        let req = self
            .http
            .post(format!("{}/subjects/{}/versions", self.base, subject))
            .header("Content-Type", CONTENT_TYPE)
            .body(body.to_string());
        self.metrics.register.inc();
        let (status, text) = self.call(req).await?;
        if status.is_success() {
            let id = serde_json::from_str::<IdResponse>(&text)
                .map_err(|e| RegistryError::Refused {
                    subject: subject.to_string(),
                    status: status.as_u16(),
                    message: format!("unexpected response {text:?}: {e}"),
                })?
                .id;
            self.cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, id);
            return Ok(id);
        }
        let err: ErrorResponse = serde_json::from_str(&text).unwrap_or(ErrorResponse {
            error_code: None,
            message: Some(text.clone()),
        });
        let message = err.message.unwrap_or_default();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(RegistryError::Unavailable(format!(
                "http {status}: {message}"
            )));
        }
        if status.as_u16() == 409 || err.error_code == Some(409) {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                message,
            });
        }
        let message = match status.as_u16() {
            401 | 403 => format!(
                "{message}; fix: check [schema_registry] username and password (or \
                 password_file), and the user's rights on the subject"
            ),
            _ => message,
        };
        Err(RegistryError::Refused {
            subject: subject.to_string(),
            status: status.as_u16(),
            message,
        })
    }

    /// Sends one request with the Accept header and credentials; a failure to connect or to
    /// read the answer is [`RegistryError::Unavailable`] (the URL is left out: it may carry
    /// credentials).
    async fn call(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, String), RegistryError> {
        let mut req = req.header("Accept", CONTENT_TYPE);
        if let Some(user) = &self.username {
            req = req.basic_auth(user, self.password.as_ref().map(|p| p.expose()));
        }
        let resp = req.send().await.map_err(send_error)?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| RegistryError::Unavailable(e.without_url().to_string()))?;
        Ok((status, text))
    }

    /// `GET /subjects` once: the HTTP status and body, or the network error. The `check`
    /// preflight uses it to prove the registry is reachable and accepts the credentials.
    pub async fn probe(&self) -> Result<(u16, String), RegistryError> {
        let req = self.http.get(format!("{}/subjects", self.base));
        let (status, text) = self.call(req).await?;
        Ok((status.as_u16(), text))
    }

    /// The schema text registered under `id` (`GET /schemas/ids/{id}`), cached.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<str>, RegistryError> {
        if let Some(s) = self
            .by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(s.clone());
        }
        let req = self.http.get(format!("{}/schemas/ids/{id}", self.base));
        self.metrics.lookup.inc();
        let (status, text) = self.call(req).await.inspect_err(|_| {
            self.metrics.lookup_unavailable.inc();
        })?;
        if status.is_server_error() {
            self.metrics.lookup_unavailable.inc();
            return Err(RegistryError::Unavailable(format!("http {status}")));
        }
        #[derive(Deserialize)]
        struct SchemaResponse {
            schema: String,
        }
        let schema: Arc<str> = serde_json::from_str::<SchemaResponse>(&text)
            .map_err(|_| {
                self.metrics.lookup_refused.inc();
                RegistryError::Refused {
                    subject: format!("schema id {id}"),
                    status: status.as_u16(),
                    message: text.clone(),
                }
            })?
            .schema
            .into();
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }

    /// [`Registry::register`], retrying transient failures with exponential backoff for
    /// [`RETRY_IN_PLACE`] or until `stop` says to give up (the shutdown signal); then the
    /// transient failure is returned, for the source's supervisor to show and retry. Definite
    /// failures return at once. `on_retry` hears of every transient failure retried in place
    /// (the source shows `waiting_for_registry` meanwhile).
    pub async fn register_with_retry(
        &self,
        subject: &str,
        schema: &str,
        stop: &mut crate::shutdown::Shutdown,
        on_retry: &mut (dyn FnMut(&RegistryError) + Send),
    ) -> Result<u32, RegistryError> {
        let mut delay = FIRST_BACKOFF;
        let started = std::time::Instant::now();
        loop {
            match self.register(subject, schema).await {
                Err(e)
                    if e.is_transient()
                        && !stop.is_triggered()
                        && started.elapsed() < RETRY_IN_PLACE =>
                {
                    tracing::warn!(subject, error = %e, retry_in_ms = delay.as_millis() as u64, "schema registry unavailable, retrying");
                    on_retry(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = stop.wait() => {},
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                other => return other,
            }
        }
    }
}
