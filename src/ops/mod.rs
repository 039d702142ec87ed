//! Operating the daemon: logging, exit codes, per-source status, systemd notification, the
//! HTTP health/readiness/metrics endpoint.

pub mod check;
pub mod exit;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod snapshot;
pub mod state;
pub mod status;
