//! `cdc-agent apply`: keep a read model in a database up to date from the table topics,
//! exactly once.
//!
//! ```text
//!  table topics ──read_committed──▶ read.rs ──────────▶ mod.rs (batch) ─────────▶ target/
//!  (Confluent-framed Avro)          assign at stored     up to batch_max_events    postgres.rs / sqlite.rs
//!                                   offsets; decode by   or batch_max_ms           one transaction:
//!  schema registry ◀── writer id ── schema id           (schema.rs: shapes,       rows by primary key
//!                                                        cells)                   + offsets table (fenced)
//!        ▲                                                                              │
//!        └───────────── on (re)start: offsets read back from the target ◀────────────────┘
//! ```
//!
//! Values are decoded by avro.rs: a plan compiled once per writer schema reads `op`, the
//! `source` names and the one row image a change needs straight into cells (apache-avro's
//! `Value` tree only for schemas the plan does not model).
//!
//! `[source] event_store` reads the agent's event-store topic instead of table topics (the
//! same envelopes; keys are text, so key columns come from the key's JSON). `[tables]` maps
//! source tables to target names and renames or leaves out columns; `include_tables` /
//! `exclude_tables` select tables (read.rs). `--from` places partitions the target holds no
//! offset for. ops.rs serves `/metrics`, `/healthz`, `/readyz` and notifies systemd.
//!
//! Exactly once without Kafka's group offsets: the next offset of every partition is stored
//! in the target in the same transaction as the rows it covers, and a start seeks to what the
//! target holds. A crash loses at most an uncommitted transaction, which is read again.
//! Transient failures (a database or broker away) start the attempt over from the stored
//! offsets after a backoff; definite ones (a type change, a table without key) stop with the
//! fix. See docs/consumers.md.

pub mod avro;
pub mod config;
pub mod error;
pub mod ops;
pub mod read;
pub mod schema;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use self::config::{ApplyConfig, TargetKind};
use self::ops::{Phase, Status, TableCounters};
use self::read::Reader;
use self::target::{Batch, Change, OffsetMove, Offsets, Target};
use crate::shutdown::Shutdown;

pub use self::error::ApplyError;

/// First wait before a failed attempt starts over; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// An attempt that ran this long before failing starts the backoff afresh.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Runs until `stop` (then returns `Ok`) or a definite failure, serving `[http]` and
/// notifying systemd meanwhile.
pub async fn run(cfg: ApplyConfig, stop: Shutdown) -> Result<(), ApplyError> {
    let status = Status::new(cfg.http.ready_max_lag_records);
    let http = match &cfg.http.listen {
        Some(listen) => {
            let (addr, task) = ops::serve(listen, status.clone()).await.map_err(|e| {
                ApplyError::definite(format!(
                    "{}: key `http.listen`: cannot listen on {listen}: {e}; fix: pick a free \
                     port, or remove the key",
                    cfg.path.display()
                ))
            })?;
            tracing::info!(addr = %addr, "http endpoint listening (/healthz, /readyz, /metrics)");
            Some(task)
        }
        None => None,
    };
    let notifier = ops::spawn_notify(status.clone(), stop.clone());
    let result = supervise(&cfg, stop, &status).await;
    status.set_phase(Phase::Stopping);
    notifier.abort();
    if let Some(task) = http {
        task.abort();
    }
    result
}

/// Attempts until stopped, starting over after transient failures.
async fn supervise(
    cfg: &ApplyConfig,
    mut stop: Shutdown,
    status: &Arc<Status>,
) -> Result<(), ApplyError> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = std::time::Instant::now();
        status.set_phase(Phase::Starting);
        let result = match cfg.target.kind {
            TargetKind::Postgres => {
                let url = cfg.target.url.as_ref().map(|u| u.expose()).unwrap_or("");
                match target::postgres::PgTarget::connect(
                    url,
                    &cfg.target.schema,
                    &cfg.target.offsets_table,
                    cfg.apply.schema_evolution,
                )
                .await
                {
                    Ok(t) => attempt(cfg, t, stop.clone(), status).await,
                    Err(e) => Err(e),
                }
            }
            TargetKind::Sqlite => {
                let path = cfg.target.path.clone().unwrap_or_default();
                match target::sqlite::SqliteTarget::open(
                    &path,
                    &cfg.target.offsets_table,
                    cfg.apply.schema_evolution,
                ) {
                    Ok(t) => attempt(cfg, t, stop.clone(), status).await,
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = &result {
            if !stop.is_triggered() {
                status.error(e.transient);
            }
        }
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.transient && !stop.is_triggered() => {
                if started.elapsed() > HEALTHY_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "apply failed; starting over from the stored offsets");
                status.set_phase(Phase::Retrying(e.message.clone()));
                // Beats while waiting: a database that is away is not a hung process.
                let until = tokio::time::Instant::now() + backoff;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        _ = tokio::time::sleep(ops::BEAT_EVERY) => status.beat(),
                        _ = stop.wait() => return Ok(()),
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) if e.transient => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// One attempt: read the stored offsets, assign, then batch → apply until stopped.
async fn attempt<T: Target>(
    cfg: &ApplyConfig,
    mut target: T,
    mut stop: Shutdown,
    status: &Status,
) -> Result<(), ApplyError> {
    let name = cfg.apply.name.as_str();
    target.prepare().await?;
    target.claim(name).await?;
    let stored: Offsets = target.offsets(name).await?;
    let mut reader = Reader::new(cfg)?;
    let (n, resolved) = reader.assign_new(&stored).await?;
    // What the target holds now, per partition: the `from` of the next move.
    let mut committed: HashMap<(Arc<str>, i32), i64> = stored
        .iter()
        .map(|((t, p), o)| ((Arc::from(t.as_str()), *p), *o))
        .collect();
    if !resolved.is_empty() {
        // Stored at once: a restart (with or without --from) continues from these, and a
        // partition that stays quiet does not resolve `latest` or a time again later.
        store_start(&mut target, name, &resolved, &mut committed).await?;
    }
    tracing::info!(
        apply = name,
        partitions = n,
        stored = stored.len(),
        "apply started"
    );
    status.set_phase(Phase::Applying);
    let mut counters: HashMap<String, TableCounters> = HashMap::new();
    let max_wait = Duration::from_millis(cfg.apply.batch_max_ms);
    let refresh = Duration::from_secs(cfg.apply.topic_refresh_seconds);
    let mut next_refresh = tokio::time::Instant::now() + refresh;
    let mut next_beat = tokio::time::Instant::now();
    // One batch in the target while the next is read and decoded: the database's work and
    // the decoding overlap. The target moves into the in-flight future and comes back with
    // its result, so a batch starts only after the one before it committed (its offsets'
    // `from` is what that commit stored) and at most one batch waits decoded: backpressure.
    let mut idle: Option<T> = Some(target);
    let mut inflight: Option<InFlight<'_, T>> = None;
    loop {
        let mut batch = Batch::default();
        // Next offset per partition read in this batch, in first-seen order.
        let mut moved: Vec<(Arc<str>, i32, i64)> = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut events = 0usize;
        let stopping = loop {
            if tokio::time::Instant::now() >= next_beat {
                status.beat();
                publish_lag(&reader, &committed, status);
                next_beat = tokio::time::Instant::now() + ops::BEAT_EVERY;
            }
            let until = deadline.unwrap_or(next_refresh).min(next_beat);
            tokio::select! {
                biased;
                _ = stop.wait() => break true,
                done = landed(&mut inflight), if inflight.is_some() => {
                    inflight = None;
                    idle = Some(done.finish(&reader, &mut committed, &mut counters, status)?);
                }
                msg = reader.next() => {
                    // Decoded outside the race: an interrupted decode would lose the record.
                    let ev = reader.decode(msg?).await?;
                    events += 1;
                    match moved.iter_mut().find(|(t, p, _)| *t == ev.topic && *p == ev.partition) {
                        Some(m) => m.2 = ev.offset + 1,
                        None => moved.push((ev.topic.clone(), ev.partition, ev.offset + 1)),
                    }
                    if let Some(c) = ev.change {
                        batch.changes.push(c);
                    }
                    if deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + max_wait);
                    }
                    if events >= cfg.apply.batch_max_events {
                        break false;
                    }
                }
                _ = tokio::time::sleep_until(until) => {
                    let now = tokio::time::Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        break false;
                    }
                    if deadline.is_none() && now >= next_refresh {
                        let (added, _) = reader.assign_new(&stored).await?;
                        if added > 0 {
                            tracing::info!(partitions = added, "new partitions assigned");
                        }
                        next_refresh = tokio::time::Instant::now() + refresh;
                    }
                }
            }
        };
        if let Some(f) = inflight.take() {
            idle = Some(
                f.await
                    .finish(&reader, &mut committed, &mut counters, status)?,
            );
        }
        if !moved.is_empty() {
            batch.offsets = moved
                .iter()
                .map(|(t, p, to)| OffsetMove {
                    topic: t.clone(),
                    partition: *p,
                    from: committed.get(&(t.clone(), *p)).copied(),
                    to: *to,
                })
                .collect();
            let Some(mut target) = idle.take() else {
                return Err(ApplyError::definite(
                    "internal: the target is neither idle nor applying".into(),
                ));
            };
            inflight = Some(Box::pin(async move {
                let began = std::time::Instant::now();
                let result = target.apply(name, &batch).await;
                Applied {
                    target,
                    result,
                    batch,
                    moved,
                    events,
                    took: began.elapsed(),
                }
            }));
        }
        if stopping {
            if let Some(f) = inflight.take() {
                f.await
                    .finish(&reader, &mut committed, &mut counters, status)?;
            }
            tracing::info!(apply = name, "apply stopped");
            return Ok(());
        }
    }
}

/// A batch in the target: resolves to the target back and the batch's outcome.
type InFlight<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Applied<T>> + 'a>>;

/// Waits for the in-flight batch; pending forever when there is none (the caller's
/// `select!` guard keeps that branch off then).
async fn landed<T>(inflight: &mut Option<InFlight<'_, T>>) -> Applied<T> {
    match inflight {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// What an in-flight batch comes back with.
struct Applied<T> {
    target: T,
    result: Result<(), ApplyError>,
    batch: Batch,
    moved: Vec<(Arc<str>, i32, i64)>,
    events: usize,
    took: Duration,
}

impl<T> Applied<T> {
    /// Books a committed batch (offsets, counters, lag, Kafka's committed offsets) and hands
    /// the target back; a failed one is the attempt's error.
    fn finish(
        self,
        reader: &Reader,
        committed: &mut HashMap<(Arc<str>, i32), i64>,
        counters: &mut HashMap<String, TableCounters>,
        status: &Status,
    ) -> Result<T, ApplyError> {
        self.result?;
        status.batch_done(self.events, self.took);
        for (t, p, to) in &self.moved {
            committed.insert((t.clone(), *p), *to);
        }
        count(&self.batch, counters, status);
        tracing::debug!(
            events = self.events,
            changes = self.batch.changes.len(),
            "batch applied"
        );
        reader.report(&self.moved);
        publish_lag(reader, committed, status);
        Ok(self.target)
    }
}

/// Stores the offsets `--from` resolved, in one target transaction without rows.
async fn store_start<T: Target>(
    target: &mut T,
    name: &str,
    resolved: &[(Arc<str>, i32, i64)],
    committed: &mut HashMap<(Arc<str>, i32), i64>,
) -> Result<(), ApplyError> {
    let batch = Batch {
        changes: Vec::new(),
        offsets: resolved
            .iter()
            .map(|(t, p, to)| OffsetMove {
                topic: t.clone(),
                partition: *p,
                from: None,
                to: *to,
            })
            .collect(),
    };
    target.apply(name, &batch).await?;
    for (t, p, to) in resolved {
        tracing::info!(topic = %t, partition = *p, offset = *to, "--from start offset stored");
        committed.insert((t.clone(), *p), *to);
    }
    Ok(())
}

/// Counts a committed batch's changes per target table and op.
fn count(batch: &Batch, counters: &mut HashMap<String, TableCounters>, status: &Status) {
    for change in &batch.changes {
        let table = match change {
            Change::Upsert { table, .. } | Change::Delete { table, .. } => table.name.as_str(),
            Change::Truncate { table } => table.as_str(),
        };
        let c = match counters.get(table) {
            Some(c) => c,
            None => counters
                .entry(table.to_string())
                .or_insert_with(|| status.table(table)),
        };
        match change {
            Change::Upsert { .. } => c.upsert(),
            Change::Delete { .. } => c.delete(),
            Change::Truncate { .. } => c.truncate(),
        }
    }
}

/// Every assigned partition's lag, from the consumer's cached watermarks.
fn publish_lag(reader: &Reader, committed: &HashMap<(Arc<str>, i32), i64>, status: &Status) {
    for (topic, partition) in reader.assigned() {
        let next = committed.get(&(topic.clone(), *partition)).copied();
        if let Some(lag) = reader.lag(topic, *partition, next) {
            status.set_lag(topic, *partition, lag);
        }
    }
}
