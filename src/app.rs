//! The daemon's top level: start every source pipeline, wait for the shutdown signal, stop
//! them in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, SourceKind};
use crate::ops::metrics::Metrics;
use crate::ops::status::Health;
use crate::ops::{exit, http, notify};
use crate::registry::Registry;
use crate::shutdown;
use crate::source::mysql::MySourceSettings;
use crate::source::postgres::PgSourceSettings;
use crate::source::supervise;
use crate::source::SourceError;

/// Runs until SIGTERM/SIGINT (then shuts down gracefully) or until a source fails
/// definitely.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let (trigger, stop) = shutdown::channel();
    shutdown::install_signal_handlers(trigger.clone())?;
    ignore_hangup()?;
    tracing::info!(
        config = %cfg.path.display(),
        sources = cfg.sources.len(),
        kafka = %cfg.main.kafka.bootstrap_servers,
        "cdc-agent starting"
    );
    let metrics = Metrics::new();
    let health = Health::new(metrics.clone());
    let registry =
        Arc::new(Registry::new(&cfg.main.schema_registry)?.with_metrics(metrics.registry()));
    let http = if cfg.main.http.enabled {
        let (addr, task) = http::serve(
            &cfg.main.http.listen,
            health.clone(),
            Duration::from_secs(cfg.main.http.ready_max_lag_seconds),
        )
        .await
        .map_err(|e| ExitWith {
            code: exit::FAILURE,
            message: format!(
                "{}: key `http.listen`: cannot listen on {}: {e}; fix: pick a free port, or set \
                 [http] enabled = false",
                cfg.path.display(),
                cfg.main.http.listen
            ),
        })?;
        tracing::info!(addr = %addr, "http endpoint listening (/healthz, /readyz, /metrics)");
        Some(task)
    } else {
        None
    };
    let mut tasks = tokio::task::JoinSet::new();
    for source in cfg.sources.clone() {
        let name = source.name.clone();
        let status = health.register(&name);
        let (registry, stop) = (registry.clone(), stop.clone());
        let when_taken = source.when_taken;
        match source.kind {
            SourceKind::Postgres => {
                let settings = PgSourceSettings::new(source, cfg.main.clone());
                tasks.spawn(async move {
                    (
                        name,
                        supervise::run(settings, when_taken, registry, status, stop).await,
                    )
                });
            }
            SourceKind::Mysql => {
                let settings = MySourceSettings::new(source, cfg.main.clone());
                tasks.spawn(async move {
                    (
                        name,
                        supervise::run(settings, when_taken, registry, status, stop).await,
                    )
                });
            }
        }
    }
    let notifier = notify::spawn(health.clone(), stop.clone());
    let mut stop_wait = stop.clone();
    let mut first_error = None;
    if tasks.is_empty() {
        tracing::warn!("no sources configured; waiting for shutdown");
        stop_wait.wait().await;
    }
    while let Some(joined) = tasks.join_next().await {
        let (name, result) = joined.context("source task panicked")?;
        match result {
            Ok(()) => tracing::info!(source = %name, "source stopped"),
            Err(e) => {
                tracing::error!(source = %name, error = %e, "source failed");
                if first_error.is_none() {
                    let code = match e {
                        SourceError::Taken(_) => exit::SOURCE_TAKEN,
                        SourceError::Fenced(_) => exit::FENCED,
                        _ => exit::FAILURE,
                    };
                    first_error = Some(anyhow::Error::new(ExitWith {
                        code,
                        message: format!("source `{name}`: {e}"),
                    }));
                }
                // One definite failure stops the daemon: the operator must act, and a
                // supervisor restart should not hide it behind the other sources.
                trigger.trigger();
            }
        }
    }
    notifier.abort();
    if let Some(task) = http {
        task.abort();
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Logs and ignores SIGHUP. Its default action would kill the process without draining; the
/// configuration is read at start only, so a reload is a restart (docs/operations.md).
fn ignore_hangup() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::warn!(
                "SIGHUP ignored: configuration is read at start only; reload with a restart \
                 (systemctl restart), which drains and resumes where it stopped"
            );
        }
    });
    Ok(())
}

/// A failure that asks for a specific process exit code (see [`crate::ops::exit`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitWith {
    /// The exit code.
    pub code: u8,
    /// What happened.
    pub message: String,
}
