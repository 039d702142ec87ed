//! What each source is doing, for systemd (`STATUS=`, `READY=1`, `WATCHDOG=1`), `/readyz`,
//! `/healthz` and the metrics.
//!
//! ```text
//!  source pipeline ── SourceStatus::set_state / set_lag / snapshot_progress / beat ──┐
//!                                                                                   ▼
//!                    Health (every source) ──▶ notify.rs (systemd)   http.rs (/readyz, /healthz)
//! ```
//!
//! The API is the same for every source kind. A source:
//! - sets its [`SourceState`] at each phase change (connecting, snapshotting, streaming,
//!   waiting for an unavailable dependency, standby);
//! - reports its lag with [`SourceStatus::set_lag`] whenever it learns what Kafka acknowledged;
//! - calls [`SourceStatus::beat`] from every loop it runs, including the loops that wait and
//!   retry: a beat proves the pipeline task is being scheduled and returns to its loop. The
//!   watchdog stops when a running source has not beaten for [`STALL_LIMIT`] — a wedged
//!   pipeline — but a database outage keeps beating, because the retry loop keeps running.
//!   Waits on bounded external calls (a Kafka commit, a registry request) go through
//!   [`SourceStatus::while_waiting`], which beats while it waits.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::metrics::{Metrics, SourceMetrics};
pub use super::state::{SourceState, STATE_NAMES};

/// A running source that has not beaten for this long is considered wedged: the systemd
/// watchdog is no longer fed and `/healthz` answers 503. Every wait in a pipeline beats at
/// least every [`BEAT_INTERVAL`], so only a task that stopped being scheduled (a blocking call
/// on the runtime, a deadlock, a busy loop) gets here.
pub const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How often [`SourceStatus::while_waiting`] beats.
pub const BEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A streaming (or snapshotting) source shows `waiting_for_kafka` once Kafka has answered
/// nothing for this long while records or a commit wait on it. librdkafka retries a lost
/// broker by itself, so a cut or a half-open connection never fails a call for minutes
/// (`message.timeout.ms`); without this the source looked `streaming` through a whole outage
/// (fault suite, docs/reliability.md). Acknowledgements normally come within milliseconds and a
/// commit within a second: 5 s of silence is an outage, not a slow broker.
pub const KAFKA_SILENCE_LIMIT: Duration = Duration::from_secs(5);
/// Kafka's silence counts only while the sink is looking for its answers: when the sink last
/// looked longer ago than this, the pipeline is busy elsewhere (a slow registry, a long
/// snapshot query) and answers may be waiting unread, so nothing is concluded about Kafka.
/// The sink looks at least every [`BEAT_INTERVAL`] while it waits on Kafka, and the pipeline's
/// loop every second (`pipeline::TICK`).
const KAFKA_LOOK_FRESH: Duration = Duration::from_secs(2);

/// Every source's status. One per process, shared by the sources, systemd notification and
/// the HTTP endpoint.
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    metrics: Arc<Metrics>,
    sources: RwLock<Vec<SourceStatus>>,
}

impl Health {
    /// An empty set of sources reporting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            metrics,
            sources: RwLock::new(Vec::new()),
        })
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Registers a source (state [`SourceState::Starting`]) and returns its handle.
    pub fn register(&self, name: &str) -> SourceStatus {
        let status = SourceStatus::new(name, self.epoch, self.metrics.source(name));
        self.sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(status.clone());
        status
    }

    /// A point-in-time report of every source.
    pub fn reports(&self, max_lag: Duration) -> Vec<SourceReport> {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.report(max_lag))
            .collect()
    }

    /// Whether every source is started ([`SourceState::is_started`]): the condition for
    /// `READY=1`. True with no sources.
    pub fn all_started(&self) -> bool {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .all(|s| s.state().is_started())
    }

    /// Whether every running source beat within [`STALL_LIMIT`]: the condition for
    /// `WATCHDOG=1` and `/healthz`. Returns the names of the stalled sources otherwise.
    pub fn liveness(&self) -> Result<(), Vec<String>> {
        self.liveness_within(STALL_LIMIT)
    }

    fn liveness_within(&self, limit: Duration) -> Result<(), Vec<String>> {
        let stalled: Vec<String> = self
            .sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.state().is_running() && s.since_beat() > limit)
            .map(|s| s.name().to_string())
            .collect();
        if stalled.is_empty() {
            Ok(())
        } else {
            Err(stalled)
        }
    }

    /// Every source's state name, in order: changes when a source changes phase (not when
    /// only its lag or percentage moves).
    pub fn phases(&self) -> Vec<&'static str> {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.state().name())
            .collect()
    }

    /// The `STATUS=` line: `pg-demo: streaming, lag 0 B; shop: snapshotting 43%`.
    pub fn status_line(&self) -> String {
        let reports = self.reports(Duration::MAX);
        if reports.is_empty() {
            return "no sources configured".into();
        }
        let mut out = String::new();
        for (i, r) in reports.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            out.push_str(&r.name);
            out.push_str(": ");
            out.push_str(&r.summary);
        }
        out
    }

    /// Fills the values computed at scrape time: per-source state, readiness, lag, RSS.
    pub fn refresh_metrics(&self, max_lag: Duration) {
        for r in self.reports(max_lag) {
            self.metrics.set_source_state(&r.name, r.state, r.ready);
            self.metrics
                .set_lag(&r.name, r.lag_bytes, r.lag_seconds.unwrap_or(0.0));
        }
        if let Some(rss) = super::metrics::resident_memory_bytes() {
            self.metrics.rss.set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
    }
}

/// One source at one moment, as `/readyz` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceReport {
    /// Source name.
    pub name: String,
    /// [`SourceState::name`].
    pub state: &'static str,
    /// Human summary, as in `STATUS=`: `streaming, lag 0 B`, `waiting for database: …`.
    pub summary: String,
    /// Streaming with lag under the threshold.
    pub ready: bool,
    /// Why not ready (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Source log bytes not yet acknowledged by Kafka, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    /// Seconds the oldest unacknowledged change waits, when streaming.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// Seconds since the pipeline last beat.
    pub since_beat_seconds: f64,
}

/// A source's handle on its status and metrics. Cheap to clone; every method is safe to call
/// from any task. [`SourceStatus::detached`] reports into nothing (tools, tests).
#[derive(Debug, Clone)]
pub struct SourceStatus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    epoch: Instant,
    state: Mutex<SourceState>,
    /// Milliseconds since `epoch` of the last beat.
    beat_ms: AtomicU64,
    /// `u64::MAX`: unknown.
    lag_bytes: AtomicU64,
    /// Commit time (µs since the Unix epoch) of the oldest change not yet acknowledged;
    /// `i64::MIN`: none, caught up.
    oldest_unacked_us: AtomicI64,
    /// Whether a lag was ever reported (until then lag is unknown).
    lag_known: AtomicBool,
    /// Milliseconds since `epoch` since which Kafka owes an answer (records or a commit wait
    /// on it) without having given any; [`NOTHING_OWED`] when nothing waits on Kafka.
    kafka_owed_since_ms: AtomicU64,
    /// Milliseconds since `epoch` when the sink last looked for Kafka's answers.
    kafka_looked_ms: AtomicU64,
    /// The last failure of a registration being retried in place, until it ends.
    registry_failure: Mutex<Option<String>>,
    metrics: SourceMetrics,
}

const NO_LAG_BYTES: u64 = u64::MAX;
const CAUGHT_UP: i64 = i64::MIN;
const NOTHING_OWED: u64 = u64::MAX;

impl SourceStatus {
    fn new(name: &str, epoch: Instant, metrics: SourceMetrics) -> Self {
        let s = Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                epoch,
                state: Mutex::new(SourceState::Starting),
                beat_ms: AtomicU64::new(0),
                lag_bytes: AtomicU64::new(NO_LAG_BYTES),
                oldest_unacked_us: AtomicI64::new(CAUGHT_UP),
                lag_known: AtomicBool::new(false),
                kafka_owed_since_ms: AtomicU64::new(NOTHING_OWED),
                kafka_looked_ms: AtomicU64::new(0),
                registry_failure: Mutex::new(None),
                metrics,
            }),
        };
        s.beat();
        s
    }

    /// A status registered nowhere, with detached metrics.
    pub fn detached(name: &str) -> Self {
        Self::new(name, Instant::now(), SourceMetrics::detached())
    }

    /// The source name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The source's metric handles.
    pub fn metrics(&self) -> &SourceMetrics {
        &self.inner.metrics
    }

    /// The current state.
    pub fn state(&self) -> SourceState {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Enters `state` (and beats). Changes of phase are logged; a new percentage of the same
    /// snapshot is not.
    pub fn set_state(&self, state: SourceState) {
        self.beat();
        let mut cur = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        if *cur == state {
            return;
        }
        if cur.name() != state.name() {
            match &state {
                SourceState::WaitingForDatabase { why }
                | SourceState::WaitingForKafka { why }
                | SourceState::WaitingForRegistry { why } => {
                    tracing::info!(source = %self.inner.name, state = %state, reason = %why, "source state")
                }
                _ => tracing::info!(source = %self.inner.name, state = %state, "source state"),
            }
        }
        if !matches!(state, SourceState::Streaming) {
            // Lag is a streaming measure; a new stream reports afresh.
            self.inner.lag_known.store(false, Ordering::Relaxed);
        }
        *cur = state;
    }

    /// Counts a transient failure that the source retries, and enters `state` (one of the
    /// waiting states).
    pub fn retrying(&self, state: SourceState) {
        self.inner.metrics.retries.inc();
        self.set_state(state);
    }

    /// Snapshot progress: `rows` read so far of an estimated `estimate` (0 when unknown).
    /// Sets [`SourceState::Snapshotting`] with the percentage.
    pub fn snapshot_progress(&self, rows: u64, estimate: u64) {
        let ratio = if estimate == 0 {
            0.0
        } else {
            (rows as f64 / estimate as f64).min(1.0)
        };
        self.inner.metrics.snapshot_progress.set(ratio);
        // 100% only once the snapshot is really done (estimates are approximate).
        let pct = ((ratio * 100.0) as u8).min(99);
        let same = matches!(&*self.inner.state.lock().unwrap_or_else(|p| p.into_inner()),
            SourceState::Snapshotting { pct: p } if *p == pct);
        if same {
            self.beat();
        } else {
            self.set_state(SourceState::Snapshotting { pct });
        }
    }

    /// Counts `n` rows read by the snapshot.
    #[inline]
    pub fn snapshot_rows(&self, n: u64) {
        self.inner.metrics.snapshot_rows.inc_by(n);
    }

    /// Reports the lag. `bytes`: source log bytes between the server's end and the position
    /// Kafka acknowledged (PostgreSQL: WAL; MySQL: binlog), `None` when unknown.
    /// `oldest_unacked_commit_us`: commit time (µs since the Unix epoch) of the oldest change
    /// received but not yet acknowledged by Kafka, `None` when everything received is
    /// acknowledged. Lag seconds are computed from it when read, so they keep growing while
    /// the pipeline waits. MySQL's "seconds behind source" is the same measure: pass the
    /// oldest unacknowledged event's timestamp.
    pub fn set_lag(&self, bytes: Option<u64>, oldest_unacked_commit_us: Option<i64>) {
        self.inner
            .lag_bytes
            .store(bytes.unwrap_or(NO_LAG_BYTES), Ordering::Relaxed);
        self.inner.oldest_unacked_us.store(
            oldest_unacked_commit_us.unwrap_or(CAUGHT_UP),
            Ordering::Relaxed,
        );
        self.inner.lag_known.store(true, Ordering::Relaxed);
    }

    /// Proves the pipeline task is alive: call from every loop the source runs.
    #[inline]
    pub fn beat(&self) {
        let ms = self.inner.epoch.elapsed().as_millis() as u64;
        self.inner.beat_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last [`SourceStatus::beat`].
    pub fn since_beat(&self) -> Duration {
        let now = self.inner.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.inner.beat_ms.load(Ordering::Relaxed)))
    }

    /// Awaits `fut`, beating every [`BEAT_INTERVAL`] meanwhile. For bounded waits on other
    /// systems (a Kafka commit, a registry request, a backoff sleep): the task is healthy
    /// while it waits for them.
    pub async fn while_waiting<F: Future>(&self, fut: F) -> F::Output {
        self.while_waiting_every(BEAT_INTERVAL, fut).await
    }

    async fn while_waiting_every<F: Future>(&self, every: Duration, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        loop {
            self.beat();
            tokio::select! {
                out = &mut fut => {
                    self.beat();
                    return out;
                }
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// The sink handed Kafka work (a record, a commit): from now on Kafka owes an answer,
    /// unless it already did. Cheap enough to call for every record.
    #[inline]
    pub fn kafka_owed(&self) {
        let owed = &self.inner.kafka_owed_since_ms;
        if owed.load(Ordering::Relaxed) == NOTHING_OWED {
            let _ = owed.compare_exchange(
                NOTHING_OWED,
                self.now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Kafka answered (a delivery report, a commit's outcome): the silence, if any, ends here.
    /// Work may still wait on it; [`SourceStatus::kafka_settled`] says when none does.
    #[inline]
    pub fn kafka_answered(&self) {
        let owed = &self.inner.kafka_owed_since_ms;
        let since = owed.load(Ordering::Relaxed);
        if since == NOTHING_OWED {
            return;
        }
        let now = self.now_ms();
        let silent = Duration::from_millis(now.saturating_sub(since));
        if silent >= KAFKA_SILENCE_LIMIT {
            tracing::info!(source = %self.inner.name, silent_s = silent.as_secs(), "kafka answers again");
        }
        owed.store(now, Ordering::Relaxed);
    }

    /// The sink looks for Kafka's answers now (polls its deliveries or its commit): answers
    /// that arrived are seen, so a silence measured now is Kafka's.
    #[inline]
    pub fn kafka_looked(&self) {
        self.inner
            .kafka_looked_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// [`SourceStatus::while_waiting`] for a wait on Kafka's answers: it also tells, every
    /// [`BEAT_INTERVAL`], that the sink is looking ([`SourceStatus::kafka_looked`]), and adds
    /// the wait to `cdc_agent_kafka_wait_seconds_total` (a wait given up is not counted).
    pub async fn while_waiting_for_kafka<F: Future>(&self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let started = std::time::Instant::now();
        loop {
            self.beat();
            self.kafka_looked();
            tokio::select! {
                out = &mut fut => {
                    self.beat();
                    self.metrics().kafka_wait.inc_by(started.elapsed().as_secs_f64());
                    return out;
                }
                _ = tokio::time::sleep(BEAT_INTERVAL) => {}
            }
        }
    }

    /// Nothing waits on Kafka any more (everything sent is acknowledged, no commit runs), or
    /// the sink that waited is gone.
    #[inline]
    pub fn kafka_settled(&self) {
        self.inner
            .kafka_owed_since_ms
            .store(NOTHING_OWED, Ordering::Relaxed);
    }

    /// A registration failed and is retried in place (`why`: the failure): the source waits
    /// for the registry until [`SourceStatus::registry_answered`].
    pub fn registry_failing(&self, why: &str) {
        *self
            .inner
            .registry_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
    }

    /// The registration retried in place ended (registered, refused, or handed to the
    /// supervisor, which shows its own state).
    pub fn registry_answered(&self) {
        *self
            .inner
            .registry_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How long Kafka had owed an answer without giving any when the sink last looked, if
    /// something waits on it and the sink looked recently ([`KAFKA_LOOK_FRESH`]).
    fn kafka_silence(&self) -> Option<Duration> {
        let since = self.inner.kafka_owed_since_ms.load(Ordering::Relaxed);
        let looked = self.inner.kafka_looked_ms.load(Ordering::Relaxed);
        let fresh = self.now_ms().saturating_sub(looked) <= KAFKA_LOOK_FRESH.as_millis() as u64;
        (since != NOTHING_OWED && fresh)
            .then(|| Duration::from_millis(looked.saturating_sub(since)))
    }

    fn lag_seconds(&self) -> Option<f64> {
        if !self.inner.lag_known.load(Ordering::Relaxed) {
            return None;
        }
        let oldest = self.inner.oldest_unacked_us.load(Ordering::Relaxed);
        if oldest == CAUGHT_UP {
            return Some(0.0);
        }
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        Some((now_us.saturating_sub(oldest)).max(0) as f64 / 1e6)
    }

    fn report(&self, max_lag: Duration) -> SourceReport {
        let mut state = self.state();
        // A source that works but waits on a dependency that is failing shows that: a
        // registration retried in place, or records or a commit Kafka leaves unanswered
        // (librdkafka retries in the background and no call fails until its timeouts).
        let registry_failure = self
            .inner
            .registry_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (SourceState::Streaming | SourceState::Snapshotting { .. }, Some(why)) =
            (&state, registry_failure)
        {
            // The pipeline is paused on a registration retried in place.
            state = SourceState::WaitingForRegistry { why };
        }
        if matches!(
            state,
            SourceState::Streaming | SourceState::Snapshotting { .. }
        ) {
            if let Some(silent) = self.kafka_silence().filter(|s| *s >= KAFKA_SILENCE_LIMIT) {
                state = SourceState::WaitingForKafka {
                    why: format!(
                        "kafka has answered nothing for {} s while records or a commit wait on \
                         it (brokers unreachable or not responding; the client keeps retrying)",
                        silent.as_secs()
                    ),
                };
            }
        }
        let known = self.inner.lag_known.load(Ordering::Relaxed);
        let lag_bytes = Some(self.inner.lag_bytes.load(Ordering::Relaxed))
            .filter(|b| known && *b != NO_LAG_BYTES);
        let lag_seconds = self.lag_seconds();
        let summary = match &state {
            SourceState::Streaming => match (lag_bytes, lag_seconds) {
                (Some(b), Some(s)) => format!("streaming, lag {}, {s:.0} s", bytes(b)),
                (None, Some(s)) => format!("streaming, lag {s:.0} s"),
                _ => "streaming".to_string(),
            },
            SourceState::WaitingForDatabase { why }
            | SourceState::WaitingForKafka { why }
            | SourceState::WaitingForRegistry { why }
            | SourceState::Failed { why } => format!("{state}: {}", short(why)),
            other => other.to_string(),
        };
        let reason = match &state {
            SourceState::Streaming => match lag_seconds {
                Some(s) if s > max_lag.as_secs_f64() => Some(format!(
                    "lag {s:.0} s is over the threshold of {} s",
                    max_lag.as_secs()
                )),
                _ => None,
            },
            _ => Some(summary.clone()),
        };
        SourceReport {
            name: self.inner.name.clone(),
            state: state.name(),
            ready: reason.is_none(),
            reason,
            summary,
            lag_bytes,
            lag_seconds,
            since_beat_seconds: self.since_beat().as_secs_f64(),
        }
    }
}

/// `STATUS=` lines are short: the first line of an error, at most this many characters.
const SHORT_REASON: usize = 120;

fn short(why: &str) -> String {
    let line = why.lines().next().unwrap_or("");
    match line.char_indices().nth(SHORT_REASON) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> Arc<Health> {
        Health::new(Metrics::new())
    }

    #[test]
    fn ready_needs_every_source_streaming_snapshotting_or_standing_by() {
        let h = health();
        let a = h.register("a");
        let b = h.register("b");
        assert!(!h.all_started());
        a.set_state(SourceState::Streaming);
        b.set_state(SourceState::WaitingForDatabase {
            why: "connection refused".into(),
        });
        assert!(!h.all_started());
        b.set_state(SourceState::Standby);
        assert!(h.all_started());
        b.snapshot_progress(43, 100);
        assert!(h.all_started());
    }

    #[test]
    fn the_status_line_names_each_source_with_its_state_and_lag() {
        let h = health();
        let a = h.register("pg-demo");
        let b = h.register("shop");
        a.set_state(SourceState::Streaming);
        a.set_lag(Some(0), None);
        b.snapshot_progress(43, 100);
        assert_eq!(
            h.status_line(),
            "pg-demo: streaming, lag 0 B, 0 s; shop: snapshotting 43%"
        );
        b.set_state(SourceState::WaitingForDatabase {
            why: "connect to PostgreSQL: connection refused\nmore".into(),
        });
        assert_eq!(
            h.status_line(),
            "pg-demo: streaming, lag 0 B, 0 s; shop: waiting for database: connect to \
             PostgreSQL: connection refused"
        );
    }

    /// Pretends Kafka has owed an answer for `ago` (the limit is seconds long).
    fn kafka_owed_for(s: &SourceStatus, ago: Duration) {
        let now = s.now_ms();
        s.inner.kafka_owed_since_ms.store(
            now.saturating_sub(ago.as_millis() as u64),
            Ordering::Relaxed,
        );
    }

    #[test]
    fn a_streaming_source_whose_kafka_answers_nothing_for_5s_shows_waiting_for_kafka() {
        let h = Health::new(Metrics::new());
        // An epoch a minute back, so that "owed since" can lie seconds in the past.
        let a = SourceStatus::new(
            "a",
            Instant::now() - Duration::from_secs(60),
            h.metrics().source("a"),
        );
        a.set_state(SourceState::Streaming);
        a.kafka_owed();
        assert_eq!(
            a.report(Duration::from_secs(60)).state,
            "streaming",
            "just sent"
        );
        kafka_owed_for(&a, KAFKA_SILENCE_LIMIT + Duration::from_secs(1));
        assert_eq!(
            a.report(Duration::from_secs(60)).state,
            "streaming",
            "the sink did not look: answers may be waiting unread"
        );
        a.kafka_looked();
        let r = a.report(Duration::from_secs(60));
        assert_eq!(r.state, "waiting_for_kafka");
        assert!(!r.ready);
        assert!(
            r.reason
                .as_deref()
                .is_some_and(|w| w.contains("kafka has answered nothing for 6 s")),
            "{r:?}"
        );
        // An answer ends the silence; work may still be pending.
        a.kafka_answered();
        assert_eq!(a.report(Duration::from_secs(60)).state, "streaming");
        kafka_owed_for(&a, KAFKA_SILENCE_LIMIT * 2);
        a.kafka_settled();
        assert_eq!(
            a.report(Duration::from_secs(60)).state,
            "streaming",
            "nothing owed"
        );
        // A source in another phase keeps its own state.
        a.kafka_owed();
        kafka_owed_for(&a, KAFKA_SILENCE_LIMIT * 2);
        a.kafka_looked();
        a.set_state(SourceState::WaitingForDatabase { why: "down".into() });
        assert_eq!(
            a.report(Duration::from_secs(60)).state,
            "waiting_for_database"
        );
    }

    #[test]
    fn a_registration_retried_in_place_shows_waiting_for_registry_until_it_ends() {
        let h = health();
        let a = h.register("a");
        a.set_state(SourceState::Streaming);
        a.registry_failing("schema registry unavailable: http 500");
        let r = &h.reports(Duration::from_secs(60))[0];
        assert_eq!(r.state, "waiting_for_registry");
        assert!(!r.ready);
        assert!(
            r.reason.as_deref().is_some_and(|w| w.contains("http 500")),
            "{r:?}"
        );
        a.registry_answered();
        let r = &h.reports(Duration::from_secs(60))[0];
        assert_eq!(r.state, "streaming");
        assert!(r.ready);
    }

    #[test]
    fn readiness_says_why_per_source() {
        let h = health();
        let a = h.register("a");
        a.set_state(SourceState::Streaming);
        let old = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64
            - 120_000_000;
        a.set_lag(Some(4096), Some(old));
        let r = &h.reports(Duration::from_secs(60))[0];
        assert!(!r.ready);
        assert!(r.reason.as_deref().unwrap().contains("over the threshold"));
        assert_eq!(r.lag_bytes, Some(4096));
        a.set_lag(Some(0), None);
        assert!(h.reports(Duration::from_secs(60))[0].ready);
        a.set_state(SourceState::Standby);
        let r = &h.reports(Duration::from_secs(60))[0];
        assert_eq!((r.ready, r.reason.as_deref()), (false, Some("standby")));
    }

    #[test]
    fn a_source_that_stops_beating_is_reported_stalled_unless_it_ended() {
        let h = health();
        let a = h.register("a");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            h.liveness_within(Duration::from_millis(10)),
            Err(vec!["a".to_string()])
        );
        a.beat();
        assert_eq!(h.liveness_within(Duration::from_millis(10)), Ok(()));
        a.set_state(SourceState::Stopped);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(h.liveness_within(Duration::from_millis(10)), Ok(()));
    }

    #[tokio::test]
    async fn waiting_on_a_slow_call_keeps_beating() {
        let s = SourceStatus::detached("a");
        let probe = s.clone();
        // The waited-on call itself looks at the heartbeat: it must be fresh throughout.
        let worst = s
            .while_waiting_every(Duration::from_millis(10), async move {
                let mut worst = Duration::ZERO;
                for _ in 0..20 {
                    std::thread::sleep(Duration::from_millis(1));
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    worst = worst.max(probe.since_beat());
                }
                worst
            })
            .await;
        assert!(worst < Duration::from_millis(200), "{worst:?}");
    }

    #[test]
    fn transient_failures_are_attributed_to_their_dependency() {
        use crate::source::SourceError;
        let state = |e| SourceState::waiting_for(&e).name();
        assert_eq!(
            state(SourceError::transient(
                "connect to PostgreSQL: connection refused".into()
            )),
            "waiting_for_database"
        );
        let sink = crate::sink::kafka::SinkError::Aborted("commit transaction: timed out".into());
        assert_eq!(state(sink.into()), "waiting_for_kafka");
        let reg = crate::registry::RegistryError::Unavailable("http 503".into());
        assert_eq!(state(reg.into()), "waiting_for_registry");
    }

    /// What a retrying source reports waiting for, for each way a transient error is made:
    /// the dependency the error carries, whatever its text says.
    #[test]
    fn a_retrying_source_reports_the_dependency_its_error_carries() {
        use crate::error::Dependency;
        use crate::registry::RegistryError;
        use crate::sink::kafka::SinkError;
        use crate::source::SourceError;
        let io = || std::io::Error::other("connection refused");
        let mysql = crate::source::mysql::my_error("connect to MySQL")(mysql_async::Error::Io(
            mysql_async::IoError::Io(io()),
        ));
        let cases: Vec<(&str, SourceError, &str)> = vec![
            ("a MySQL connection error", mysql, "waiting_for_database"),
            (
                "a source's own transient error",
                SourceError::transient("server ended the replication stream".into()),
                "waiting_for_database",
            ),
            (
                "a database error whose text mentions kafka",
                SourceError::transient("table kafka_events: column 3 beyond the schema".into()),
                "waiting_for_database",
            ),
            (
                "an aborted Kafka transaction",
                SinkError::Aborted("commit transaction: timed out".into()).into(),
                "waiting_for_kafka",
            ),
            (
                "a Kafka client error",
                SinkError::Client("all brokers down".into()).into(),
                "waiting_for_kafka",
            ),
            (
                "an error named as Kafka's",
                SourceError::transient("offsets topic read timed out".into())
                    .concerning(Dependency::Kafka),
                "waiting_for_kafka",
            ),
            (
                "an unavailable registry",
                RegistryError::Unavailable("http 503".into()).into(),
                "waiting_for_registry",
            ),
            (
                "an unavailable registry for one table",
                SourceError::registry_in(
                    "table public.t",
                    RegistryError::Unavailable("eof".into()),
                ),
                "waiting_for_registry",
            ),
        ];
        for (what, error, want) in cases {
            assert!(error.is_transient(), "{what}");
            let s = SourceStatus::detached("a");
            s.retrying(SourceState::waiting_for(&error));
            let report = s.report(Duration::from_secs(60));
            assert_eq!(report.state, want, "{what}");
            assert!(!report.ready, "{what}");
            assert_eq!(
                report.reason.as_deref(),
                Some(format!("{}: {}", s.state(), short(&error.to_string())).as_str()),
                "{what}"
            );
        }
    }

    #[test]
    fn errors_that_stop_a_source_name_the_dependency_they_concern() {
        use crate::error::{Dependency, ErrorKind};
        use crate::registry::RegistryError;
        use crate::sink::kafka::SinkError;
        use crate::source::SourceError;
        let cases: Vec<(SourceError, ErrorKind, Dependency)> = vec![
            (
                SourceError::definite("wal_level is replica".into()),
                ErrorKind::Definite,
                Dependency::Database,
            ),
            (
                SourceError::taken("replication slot `s` is active".into()),
                ErrorKind::Taken,
                Dependency::Database,
            ),
            (
                SinkError::Fenced("txn".into()).into(),
                ErrorKind::Fenced,
                Dependency::Kafka,
            ),
            (
                SinkError::MissingTopic("t".into()).into(),
                ErrorKind::Definite,
                Dependency::Kafka,
            ),
            (
                SinkError::Auth("bad password".into()).into(),
                ErrorKind::Definite,
                Dependency::Kafka,
            ),
            (
                RegistryError::Config("bad url".into()).into(),
                ErrorKind::Definite,
                Dependency::Registry,
            ),
        ];
        for (error, kind, dependency) in cases {
            assert_eq!(
                (error.kind(), error.dependency()),
                (kind, dependency),
                "{error}"
            );
        }
    }

    #[test]
    fn byte_counts_are_human_readable() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
