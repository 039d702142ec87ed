//! The HTTP endpoint (`[http]`, 127.0.0.1 by default): `/healthz`, `/readyz`, `/metrics`.
//!
//! - `/healthz`: 200 while the process and every running source pipeline respond (the same
//!   test as the systemd watchdog), else 503. A database outage is *not* unhealthy.
//! - `/readyz`: 200 when every source streams with its lag under
//!   `http.ready_max_lag_seconds`, else 503; the JSON body says why, per source.
//! - `/metrics`: Prometheus / OpenMetrics text (see docs/operations.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::task::JoinHandle;

use super::metrics::CONTENT_TYPE;
use super::status::Health;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    max_lag: Duration,
}

/// Binds `listen` and serves until the returned task is aborted. Binding errors are returned
/// (the daemon does not start without its endpoint: a port conflict is a configuration
/// error the operator must see).
pub async fn serve(
    listen: &str,
    health: Arc<Health>,
    max_lag: Duration,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AppState { health, max_lag });
    serve_router(listen, app).await
}

/// Binds `listen` and serves `app` on a task of its own until that task is aborted: the
/// endpoint of `run` and of `apply` alike. Binding errors are returned, serving errors logged.
pub async fn serve_router(
    listen: &str,
    app: Router,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    });
    Ok((addr, task))
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.health.liveness() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(stalled) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stalled: {}\n", stalled.join(", ")),
        )
            .into_response(),
    }
}

#[derive(serde::Serialize)]
struct Readiness {
    ready: bool,
    sources: Vec<super::status::SourceReport>,
}

async fn readyz(State(s): State<AppState>) -> Response {
    let sources = s.health.reports(s.max_lag);
    let ready = sources.iter().all(|r| r.ready);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Readiness { ready, sources })).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    s.health.refresh_metrics(s.max_lag);
    let body = s.health.metrics().render();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}
