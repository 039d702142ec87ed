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
//! Exactly once without Kafka's group offsets: the next offset of every partition is stored
//! in the target in the same transaction as the rows it covers, and a start seeks to what the
//! target holds. A crash loses at most an uncommitted transaction, which is read again.
//! Transient failures (a database or broker away) start the attempt over from the stored
//! offsets after a backoff; definite ones (a type change, a table without key) stop with the
//! fix. See docs/consumers.md.

pub mod config;
pub mod error;
pub mod read;
pub mod schema;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use self::config::{ApplyConfig, TargetKind};
use self::read::Reader;
use self::target::{Batch, OffsetMove, Offsets, Target};
use crate::shutdown::Shutdown;

pub use self::error::ApplyError;

/// First wait before a failed attempt starts over; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// An attempt that ran this long before failing starts the backoff afresh.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Runs until `stop` (then returns `Ok`) or a definite failure.
pub async fn run(cfg: ApplyConfig, mut stop: Shutdown) -> Result<(), ApplyError> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = std::time::Instant::now();
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
                    Ok(t) => attempt(&cfg, t, stop.clone()).await,
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
                    Ok(t) => attempt(&cfg, t, stop.clone()).await,
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.transient && !stop.is_triggered() => {
                if started.elapsed() > HEALTHY_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "apply failed; starting over from the stored offsets");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait() => return Ok(()),
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
) -> Result<(), ApplyError> {
    let name = cfg.apply.name.as_str();
    target.prepare().await?;
    let stored: Offsets = target.offsets(name).await?;
    let mut reader = Reader::new(cfg)?;
    let n = reader.assign_new(&stored).await?;
    tracing::info!(
        apply = name,
        partitions = n,
        stored = stored.len(),
        "apply started"
    );
    // What the target holds now, per partition: the `from` of the next move.
    let mut committed: std::collections::HashMap<(Arc<str>, i32), i64> = stored
        .iter()
        .map(|((t, p), o)| ((Arc::from(t.as_str()), *p), *o))
        .collect();
    let max_wait = Duration::from_millis(cfg.apply.batch_max_ms);
    let refresh = Duration::from_secs(cfg.apply.topic_refresh_seconds);
    let mut next_refresh = tokio::time::Instant::now() + refresh;
    loop {
        let mut batch = Batch::default();
        // Next offset per partition read in this batch, in first-seen order.
        let mut moved: Vec<(Arc<str>, i32, i64)> = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut events = 0usize;
        let stopping = loop {
            let until = deadline.unwrap_or(next_refresh);
            tokio::select! {
                biased;
                _ = stop.wait() => break true,
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
                    if deadline.is_some() {
                        break false;
                    }
                    let added = reader.assign_new(&stored).await?;
                    if added > 0 {
                        tracing::info!(partitions = added, "new partitions assigned");
                    }
                    next_refresh = tokio::time::Instant::now() + refresh;
                }
            }
        };
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
            target.apply(name, &batch).await?;
            for (t, p, to) in &moved {
                committed.insert((t.clone(), *p), *to);
            }
            tracing::debug!(events, changes = batch.changes.len(), "batch applied");
            reader.report(&moved);
        }
        if stopping {
            tracing::info!(apply = name, "apply stopped");
            return Ok(());
        }
    }
}
