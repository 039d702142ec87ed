//! The daemon's top level: start every source pipeline, wait for the shutdown signal, stop
//! them in order.

use crate::config::Config;
use crate::shutdown;

/// Runs until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let (trigger, mut stop) = shutdown::channel();
    shutdown::install_signal_handlers(trigger.clone())?;
    tracing::info!(
        config = %cfg.path.display(),
        sources = cfg.sources.len(),
        kafka = %cfg.main.kafka.bootstrap_servers,
        "cdc-agent starting"
    );
    stop.wait().await;
    tracing::info!("stopped");
    Ok(())
}
