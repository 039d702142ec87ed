//! The one shutdown signal. SIGTERM or SIGINT flips it once; every stage watches it and stops
//! in order: sources stop reading, the sink drains and acknowledges, positions are
//! checkpointed, connections close.

use tokio::sync::watch;

/// Sender half: owned by whoever decides the process is shutting down.
#[derive(Debug, Clone)]
pub struct Trigger(watch::Sender<bool>);

/// Receiver half, cheap to clone into every task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger and signal.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Starts the shutdown; idempotent.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// A new receiver.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// True once shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown begins (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means every trigger is gone: nobody can ask for shutdown any more, which
        // only happens while the process is exiting anyway.
        let _ = self.0.wait_for(|v| *v).await;
    }
}

/// Triggers `trigger` on the first SIGTERM or SIGINT. A second signal is left to the default
/// handler's successor: we exit at once with the conventional 130.
pub fn install_signal_handlers(trigger: Trigger) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = which, "shutdown requested, draining");
        trigger.trigger();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal, exiting without draining");
        std::process::exit(130);
    });
    Ok(())
}
