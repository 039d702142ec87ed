//! Operating `cdc-agent apply` like `run`: `/metrics`, `/healthz`, `/readyz` on `[http] listen`,
//! and systemd notification (`READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`).
//!
//! ```text
//!  mod.rs (apply loop) ──beat, state, batch, lag──▶ Status ◀── http (scrape, probes)
//!                                                      ▲
//!                                                      └────── notify loop (systemd)
//! ```
//!
//! - `/healthz`: 200 while the apply loop beats (it wakes at least every [`BEAT_EVERY`], busy
//!   or idle), 503 when it has not for [`STALL_AFTER`]: a hung target statement or a wedged
//!   process. A database that is away is *not* unhealthy: the loop keeps beating while it
//!   waits to retry.
//! - `/readyz`: 200 when apply reads and writes and every assigned partition's lag is at most
//!   `[http] ready_max_lag_records`; else 503, and the JSON body's `waiting_for` says what it
//!   waits for (the target database, the first assignment, a partition catching up).
//! - `/metrics`: OpenMetrics text, every name prefixed `cdc_agent_apply_` (docs/consumers.md).
//!
//! The per-event cost is one relaxed atomic add on a counter resolved once per (table, op).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use sd_notify::NotifyState;
use tokio::task::JoinHandle;

use crate::ops::metrics::CONTENT_TYPE;
use crate::shutdown::Shutdown;

/// The apply loop wakes at least this often, so a beat proves it is not stuck.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

/// `/healthz` fails (and the watchdog is no longer fed) after this long without a beat.
pub const STALL_AFTER: Duration = Duration::from_secs(60);

/// How often the notify loop looks at the state.
const NOTIFY_POLL: Duration = Duration::from_millis(500);

/// A `STATUS=` that only moved its lag is sent at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    table: String,
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

/// What the apply loop is doing, as `/readyz` and `STATUS=` tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connecting to the target and reading the stored offsets.
    Starting,
    /// Reading and applying.
    Applying,
    /// The last attempt failed transiently; the next one starts after a backoff.
    Retrying(String),
    /// Shutting down.
    Stopping,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Applying => "applying",
            Phase::Retrying(_) => "retrying",
            Phase::Stopping => "stopping",
        }
    }
}

struct Shared {
    phase: Phase,
    /// Records between the applied offset and the high watermark, per partition.
    lag: BTreeMap<(String, i32), i64>,
}

/// The state shared by the apply loop, the HTTP endpoint and the notify loop.
pub struct Status {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    batches: Counter,
    batch_seconds: Histogram,
    batch_events: Histogram,
    lag_records: Family<PartitionLabels, Gauge>,
    errors: Family<ErrorLabels, Counter>,
    ready_gauge: Gauge,
    started: Instant,
    /// Milliseconds since `started` of the last beat.
    beat_ms: AtomicU64,
    shared: Mutex<Shared>,
    max_lag: i64,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status").finish_non_exhaustive()
    }
}

/// One table's event counters, resolved once so each event is an atomic add.
#[derive(Debug, Clone)]
pub struct TableCounters {
    upsert: Counter,
    delete: Counter,
    truncate: Counter,
}

impl TableCounters {
    /// Counts one upsert (`c`, `r`, `u`).
    pub fn upsert(&self) {
        self.upsert.inc();
    }
    /// Counts one delete.
    pub fn delete(&self) {
        self.delete.inc();
    }
    /// Counts one truncate.
    pub fn truncate(&self) {
        self.truncate.inc();
    }
}

impl Status {
    /// A status with every metric registered; `max_lag` is `[http] ready_max_lag_records`.
    pub fn new(max_lag: u64) -> Arc<Self> {
        let mut registry = Registry::with_prefix("cdc_agent_apply");
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Events applied to the target, by target table and op (upsert, delete, truncate)",
            events.clone(),
        );
        let batches = Counter::default();
        registry.register("batches", "Target transactions committed", batches.clone());
        // 1 ms to about 33 s: a commit's fsync up to a target that is struggling.
        let batch_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "batch_duration",
            "Time to apply one batch in the target (rows and offsets, one transaction)",
            Unit::Seconds,
            batch_seconds.clone(),
        );
        // 1 to about 1M events.
        let batch_events = Histogram::new(exponential_buckets(1.0, 4.0, 11));
        registry.register(
            "batch_events",
            "Events per target transaction",
            batch_events.clone(),
        );
        let lag_records = Family::<PartitionLabels, Gauge>::default();
        registry.register(
            "lag_records",
            "Records between the offset the target holds and the partition's high watermark",
            lag_records.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Failed attempts, by kind (transient: retried; definite: apply stopped)",
            errors.clone(),
        );
        let ready_gauge = Gauge::default();
        registry.register(
            "ready",
            "1 when /readyz answers 200 (applying, every partition within the lag bound)",
            ready_gauge.clone(),
        );
        Arc::new(Self {
            registry,
            events,
            batches,
            batch_seconds,
            batch_events,
            lag_records,
            errors,
            ready_gauge,
            started: Instant::now(),
            beat_ms: AtomicU64::new(0),
            shared: Mutex::new(Shared {
                phase: Phase::Starting,
                lag: BTreeMap::new(),
            }),
            max_lag: i64::try_from(max_lag).unwrap_or(i64::MAX),
        })
    }

    /// The counters of target table `table`.
    pub fn table(&self, table: &str) -> TableCounters {
        let get = |op| {
            self.events
                .get_or_create(&EventLabels {
                    table: table.to_string(),
                    op,
                })
                .clone()
        };
        TableCounters {
            upsert: get("upsert"),
            delete: get("delete"),
            truncate: get("truncate"),
        }
    }

    /// The apply loop is alive.
    pub fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.beat_ms.store(ms, Ordering::Relaxed);
    }

    /// Enters `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.beat();
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Starting = phase {
            s.lag.clear();
        }
        s.phase = phase;
    }

    /// A batch of `events` committed in `took`.
    pub fn batch_done(&self, events: usize, took: Duration) {
        self.batches.inc();
        self.batch_seconds.observe(took.as_secs_f64());
        self.batch_events.observe(events as f64);
    }

    /// A failed attempt.
    pub fn error(&self, transient: bool) {
        let kind = if transient { "transient" } else { "definite" };
        self.errors.get_or_create(&ErrorLabels { kind }).inc();
    }

    /// The lag of one partition, in records.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag_records
            .get_or_create(&PartitionLabels {
                topic: topic.to_string(),
                partition: partition.to_string(),
            })
            .set(lag);
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.lag.insert((topic.to_string(), partition), lag);
    }

    /// `Ok` while the loop beats, else how long it has been silent.
    pub fn liveness(&self) -> Result<(), Duration> {
        let now = self.started.elapsed().as_millis() as u64;
        let silent =
            Duration::from_millis(now.saturating_sub(self.beat_ms.load(Ordering::Relaxed)));
        if silent > STALL_AFTER {
            Err(silent)
        } else {
            Ok(())
        }
    }

    /// Whether apply is ready, and what it waits for when not.
    pub fn readiness(&self) -> Readiness {
        let s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let behind: Vec<PartitionLag> = s
            .lag
            .iter()
            .filter(|(_, &lag)| lag > self.max_lag)
            .map(|((topic, partition), &lag)| PartitionLag {
                topic: topic.clone(),
                partition: *partition,
                lag,
            })
            .collect();
        let waiting_for = match &s.phase {
            Phase::Starting => Some(
                "the target database and the stored offsets (connecting, first assignment)"
                    .to_string(),
            ),
            Phase::Retrying(e) => Some(format!("a retry after: {e}")),
            Phase::Stopping => Some("nothing: stopping".to_string()),
            Phase::Applying if s.lag.is_empty() => {
                Some("the first partition of the selected topics".to_string())
            }
            Phase::Applying if !behind.is_empty() => Some(format!(
                "{} partition(s) to catch up to at most {} records of lag",
                behind.len(),
                self.max_lag
            )),
            Phase::Applying => None,
        };
        let ready = waiting_for.is_none();
        self.ready_gauge.set(ready as i64);
        Readiness {
            ready,
            phase: s.phase.name(),
            waiting_for,
            total_lag_records: s.lag.values().sum(),
            behind,
        }
    }

    /// One line for `STATUS=`: `applying, lag 12 records`.
    pub fn status_line(&self) -> String {
        let s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let lag: i64 = s.lag.values().sum();
        match &s.phase {
            Phase::Retrying(e) => format!("retrying: {e}"),
            p => format!("{}, lag {lag} records", p.name()),
        }
    }

    fn phase_name(&self) -> &'static str {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .phase
            .name()
    }

    /// The metrics as OpenMetrics text.
    pub fn render(&self) -> String {
        let _ = self.readiness(); // refreshes the ready gauge
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }
}

/// The `/readyz` body.
#[derive(Debug, serde::Serialize)]
pub struct Readiness {
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// `starting`, `applying`, `retrying` or `stopping`.
    pub phase: &'static str,
    /// What apply waits for before it is ready (`null` when ready).
    pub waiting_for: Option<String>,
    /// Sum of every partition's lag.
    pub total_lag_records: i64,
    /// The partitions over the lag bound.
    pub behind: Vec<PartitionLag>,
}

/// One partition over the lag bound.
#[derive(Debug, serde::Serialize)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Records behind the high watermark.
    pub lag: i64,
}

/// Binds `listen` and serves `/healthz`, `/readyz`, `/metrics` until the task is aborted.
pub async fn serve(
    listen: &str,
    status: Arc<Status>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(status);
    crate::ops::http::serve_router(listen, app).await
}

async fn healthz(State(s): State<Arc<Status>>) -> Response {
    match s.liveness() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(silent) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stalled: the apply loop has not run for {} s\n",
                silent.as_secs()
            ),
        )
            .into_response(),
    }
}

async fn readyz(State(s): State<Arc<Status>>) -> Response {
    let r = s.readiness();
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

async fn metrics(State(s): State<Arc<Status>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.render()).into_response()
}

/// Starts the systemd notification task (a no-op without `NOTIFY_SOCKET`); it runs until
/// aborted.
pub fn spawn_notify(status: Arc<Status>, stop: Shutdown) -> JoinHandle<()> {
    tokio::spawn(notify(status, stop))
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

async fn notify(status: Arc<Status>, mut stop: Shutdown) {
    if !crate::ops::notify::enabled() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled();
    let ping_every = watchdog.map(|w| w / 2);
    let mut interval =
        tokio::time::interval(ping_every.map_or(NOTIFY_POLL, |p| p.min(NOTIFY_POLL)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut ready, mut stopping) = (false, false);
    let mut last = (String::new(), "", Instant::now());
    let mut last_ping = Instant::now();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait(), if !stopping => {
                stopping = true;
                send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing the batch")]);
                continue;
            }
        }
        if !stopping {
            let line = status.status_line();
            let phase = status.phase_name();
            // READY=1 once apply reads and writes: `systemctl start` returns when the target
            // is reachable and the partitions are assigned, not when the backlog is applied.
            if !ready && phase == "applying" {
                ready = true;
                send(&[NotifyState::Ready, NotifyState::Status(&line)]);
                last = (line, phase, Instant::now());
            } else if line != last.0 && (phase != last.1 || last.2.elapsed() >= STATUS_EVERY) {
                send(&[NotifyState::Status(&line)]);
                last = (line, phase, Instant::now());
            }
        }
        if let Some(every) = ping_every {
            if last_ping.elapsed() >= every && status.liveness().is_ok() {
                last_ping = Instant::now();
                send(&[NotifyState::Watchdog]);
            }
        }
    }
}
