//! The retry loop every source runs in: one *attempt* connects, checks, snapshots and
//! streams until it stops or fails; this loop decides what a failure means.
//!
//! - *transient* (connection lost, Kafka or registry unavailable): retry with exponential
//!   backoff from the last acknowledged position;
//! - *taken* (another agent owns the source): wait a short grace for our own dead predecessor
//!   to be noticed by the server, then exit (`when_taken = "exit"`), or stand by and take
//!   over when the owner lets go (`when_taken = "standby"`);
//! - *definite* or *fenced*: stop and tell the operator.
//!
//! Every phase is reported to the source's [`SourceStatus`] (systemd `STATUS=`, `/readyz`,
//! metrics), and every wait beats, so a database outage never stops the watchdog.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::WhenTaken;
use crate::ops::status::{SourceState, SourceStatus};
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::source::SourceError;

/// A database source as the supervisor runs it.
pub trait Source: Send + Sync {
    /// One attempt: connect, check prerequisites, take ownership, snapshot if needed and
    /// stream through the pipeline until shutdown (`Ok`) or failure.
    fn attempt(&self, run: Attempt<'_>) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// What one attempt of a [`Source`] gets from the supervisor.
pub struct Attempt<'a> {
    /// The schema registry client shared by every source.
    pub registry: &'a Arc<Registry>,
    /// Where the source reports state, beats and lag.
    pub status: &'a SourceStatus,
    /// This attempt's handle on the shutdown signal.
    pub stop: &'a mut Shutdown,
}

/// Runs `source` until shutdown, retrying transient failures with backoff (see [`supervise`]);
/// `when_taken` is the source's setting for a source another agent owns.
pub async fn run<S: Source>(
    source: S,
    when_taken: WhenTaken,
    registry: Arc<Registry>,
    status: SourceStatus,
    mut stop: Shutdown,
) -> Result<(), SourceError> {
    let name = status.name().to_string();
    supervise(&name, when_taken, &status, &mut stop, |mut stop| {
        let (source, registry, status) = (&source, &registry, &status);
        async move {
            let run = Attempt {
                registry,
                status,
                stop: &mut stop,
            };
            source.attempt(run).await
        }
    })
    .await
}

/// First delay before retrying after a transient failure; doubles up to [`MAX_RETRY_DELAY`],
/// and starts again here after an attempt that got to work (`retry_delay`).
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest delay between retries. It bounds how long the agent may sit idle after a dependency
/// came back: 10 s keeps recovery within 30 s of a long outage's end (docs/reliability.md), at
/// the cost of one reconnection attempt every 10 s while the outage lasts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);
/// How long a busy source (slot active, lock held) is re-checked before an agent in exit
/// mode concludes that another agent owns it: right after a crash the server may not yet have
/// noticed that our previous incarnation is gone.
pub const TAKEN_GRACE: Duration = Duration::from_secs(10);
/// How often a standby checks whether the source is free.
pub const STANDBY_POLL: Duration = Duration::from_secs(2);

/// Runs `attempt` until it succeeds (a clean stop), fails definitely, or shutdown begins.
/// `attempt` gets its own handle on the shutdown signal each time.
pub async fn supervise<F, Fut>(
    name: &str,
    when_taken: WhenTaken,
    status: &SourceStatus,
    stop: &mut Shutdown,
    mut attempt: F,
) -> Result<(), SourceError>
where
    F: FnMut(Shutdown) -> Fut,
    Fut: Future<Output = Result<(), SourceError>>,
{
    let mut delay = FIRST_RETRY_DELAY;
    let mut taken_since: Option<Instant> = None;
    loop {
        // While waiting for a dependency the state stays "waiting for …" across attempts:
        // flipping to "connecting" for every retry would only make STATUS= flicker.
        if matches!(status.state(), SourceState::Starting | SourceState::Standby) {
            status.set_state(SourceState::Connecting);
        }
        let result = match attempt(stop.clone()).await {
            Err(e) if !e.is_transient() && !matches!(e, SourceError::Taken(_)) => {
                status.set_state(SourceState::Failed { why: e.to_string() });
                Err(e)
            }
            other => other,
        };
        match result {
            Ok(()) => {
                status.set_state(SourceState::Stopped);
                return Ok(());
            }
            Err(SourceError::Taken(why))
                if when_taken == WhenTaken::Exit
                    && taken_since.get_or_insert_with(Instant::now).elapsed() < TAKEN_GRACE =>
            {
                tracing::info!(source = %name, reason = %why, "source busy, checking again");
                if wait(status, Duration::from_millis(500), stop).await {
                    status.set_state(SourceState::Stopped);
                    return Ok(());
                }
            }
            Err(SourceError::Taken(why)) if when_taken == WhenTaken::Standby => {
                tracing::info!(source = %name, reason = %why, "standing by");
                status.set_state(SourceState::Standby);
                if wait(status, STANDBY_POLL, stop).await {
                    status.set_state(SourceState::Stopped);
                    return Ok(());
                }
                delay = FIRST_RETRY_DELAY;
            }
            Err(e) if e.is_transient() && !stop.is_triggered() => {
                taken_since = None;
                let worked = matches!(
                    status.state(),
                    SourceState::Streaming | SourceState::Snapshotting { .. }
                );
                delay = retry_delay(delay, worked);
                tracing::warn!(source = %name, error = %e, retry_in_s = delay.as_secs(), "source failed, retrying");
                status.retrying(SourceState::waiting_for(&e));
                if wait(status, delay, stop).await {
                    status.set_state(SourceState::Stopped);
                    return Ok(());
                }
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
            Err(e) if stop.is_triggered() && e.is_transient() => {
                status.set_state(SourceState::Stopped);
                return Ok(());
            }
            Err(e) => {
                if matches!(e, SourceError::Taken(_)) {
                    status.set_state(SourceState::Failed { why: e.to_string() });
                }
                return Err(e);
            }
        }
    }
}

/// The wait before the next attempt, given the previous wait (`FIRST_RETRY_DELAY` before the
/// first failure, then what this returned doubled up to [`MAX_RETRY_DELAY`]) and whether the
/// attempt that failed got to work (streaming or snapshotting): such a failure is a new outage,
/// retried after [`FIRST_RETRY_DELAY`] again rather than after the longest wait an earlier
/// outage reached.
fn retry_delay(previous: Duration, worked: bool) -> Duration {
    if worked {
        FIRST_RETRY_DELAY
    } else {
        previous.min(MAX_RETRY_DELAY)
    }
}

/// Sleeps `d` while beating; true when shutdown began meanwhile.
async fn wait(status: &SourceStatus, d: Duration, stop: &mut Shutdown) -> bool {
    status
        .while_waiting(async {
            tokio::select! {
                _ = tokio::time::sleep(d) => false,
                _ = stop.wait() => true,
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The waits of successive failures: `worked[i]` says whether attempt i got to work.
    fn waits(worked: &[bool]) -> Vec<u64> {
        let mut delay = FIRST_RETRY_DELAY;
        worked
            .iter()
            .map(|w| {
                delay = retry_delay(delay, *w);
                let wait = delay.as_secs();
                delay = (delay * 2).min(MAX_RETRY_DELAY);
                wait
            })
            .collect()
    }

    #[test]
    fn retries_back_off_doubling_up_to_the_longest_delay() {
        assert_eq!(waits(&[false; 7]), [1, 2, 4, 8, 10, 10, 10]);
    }

    #[test]
    fn a_failure_after_the_source_worked_again_starts_a_new_backoff() {
        // A long outage, a recovery, then a second outage: its first retry comes after 1 s,
        // not after the 10 s the first outage had reached.
        assert_eq!(
            waits(&[false, false, false, false, false, true, false, false]),
            [1, 2, 4, 8, 10, 1, 2, 4]
        );
    }
}
