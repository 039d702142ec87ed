//! `[http]`: the health, readiness and Prometheus endpoint.

use serde::Deserialize;

use super::*;

/// `[http]`: the health, readiness and Prometheus endpoint (docs/operations.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve `/healthz`, `/readyz` and `/metrics`. Default: true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `host:port` to listen on. Port 0 picks a free port (logged at start). Use
    /// `0.0.0.0:<port>` only where the network is trusted (e.g. a pod). Default:
    /// `127.0.0.1:9745`.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// `/readyz` answers 503 while a source's lag (age of its oldest change not yet
    /// acknowledged by Kafka) is above this many seconds. Default: 60.
    #[serde(default = "default_ready_max_lag_seconds")]
    pub ready_max_lag_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: default_http_listen(),
            ready_max_lag_seconds: DEFAULT_READY_MAX_LAG_SECONDS,
        }
    }
}
