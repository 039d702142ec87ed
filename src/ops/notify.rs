//! systemd notification (`Type=notify`): `READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`.
//!
//! - `READY=1` once every source streams, snapshots or stands by
//!   ([`crate::ops::status::SourceState::is_started`]); a source that waits for its database
//!   delays it, so `systemctl start` returns when the agent really works (or times out).
//! - `STATUS=` whenever the one-line summary changes: `pg-demo: streaming, lag 0 B, 0 s`.
//! - `WATCHDOG=1` every half of `WATCHDOG_USEC`, only while every running source's pipeline
//!   beats ([`crate::ops::status::Health::liveness`]). It proves the agent is alive, not that
//!   its database is up: a source waiting for its database keeps beating.
//! - `STOPPING=1` when shutdown begins.
//!
//! Everything is a no-op without `NOTIFY_SOCKET` (not started by systemd).

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;

use super::status::Health;
use crate::shutdown::Shutdown;

/// How often the state is looked at for `READY=1` and `STATUS=` changes.
const POLL: Duration = Duration::from_millis(500);
/// A `STATUS=` whose sources kept their phases (only lag or percentage moved) is sent at most
/// this often; a change of phase is sent at once.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Ping interval when `WATCHDOG_USEC` is smaller than two polls: never slower than this.
const MIN_WATCHDOG_PING: Duration = Duration::from_millis(100);

/// Sends `states` to the service manager; errors are logged once per kind of message, never
/// fatal (a vanished socket must not stop the data flowing).
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Whether the process runs under a service manager that listens.
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Starts the notification task. It runs until aborted; after shutdown began it keeps
/// feeding the watchdog while the sources drain.
pub fn spawn(health: Arc<Health>, stop: Shutdown) -> JoinHandle<()> {
    tokio::spawn(run(health, stop))
}

async fn run(health: Arc<Health>, mut stop: Shutdown) {
    if !enabled() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled();
    let ping_every = watchdog.map(|w| (w / 2).max(MIN_WATCHDOG_PING));
    let tick = ping_every.map_or(POLL, |p| p.min(POLL));
    tracing::info!(
        watchdog_ms = watchdog.map(|w| w.as_millis() as u64),
        "notifying systemd"
    );
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ready = false;
    let mut stopping = false;
    let mut last_status = String::new();
    let mut last_phases = Vec::new();
    let mut last_status_at = tokio::time::Instant::now();
    let mut last_ping = tokio::time::Instant::now();
    let mut stalled_logged = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait(), if !stopping => {
                stopping = true;
                send(&[NotifyState::Stopping, NotifyState::Status("stopping: draining to Kafka")]);
                last_status.clear();
                continue;
            }
        }
        if !stopping {
            let status = health.status_line();
            let phases = health.phases();
            let first_ready = !ready && health.all_started();
            let changed = status != last_status
                && (phases != last_phases || last_status_at.elapsed() >= STATUS_EVERY);
            if first_ready {
                ready = true;
                send(&[NotifyState::Ready, NotifyState::Status(&status)]);
            } else if changed {
                send(&[NotifyState::Status(&status)]);
            }
            if first_ready || changed {
                last_status = status;
                last_phases = phases;
                last_status_at = tokio::time::Instant::now();
            }
        }
        feed_watchdog(&health, ping_every, &mut last_ping, &mut stalled_logged);
    }
}

/// Sends `WATCHDOG=1` when a ping is due and every running pipeline beats.
fn feed_watchdog(
    health: &Health,
    ping_every: Option<Duration>,
    last_ping: &mut tokio::time::Instant,
    stalled_logged: &mut bool,
) {
    if let Some(every) = ping_every {
        if last_ping.elapsed() >= every {
            match health.liveness() {
                Ok(()) => {
                    *last_ping = tokio::time::Instant::now();
                    send(&[NotifyState::Watchdog]);
                    *stalled_logged = false;
                }
                Err(stalled) if !*stalled_logged => {
                    *stalled_logged = true;
                    tracing::error!(sources = ?stalled, "pipeline stalled; no longer feeding the systemd watchdog");
                }
                Err(_) => {}
            }
        }
    }
}
