//! The initial snapshot: every published table read under the slot's exported snapshot, so
//! the rows are exactly the state at the slot's consistent point — no gap, no double with the
//! stream that follows.
//!
//! ```text
//!  reader 1 ─ COPY t1, t3 … ─┐   (own connection, REPEATABLE READ, SET TRANSACTION SNAPSHOT)
//!  reader 2 ─ COPY t2, t4 … ─┼─▶ bounded channel of COPY chunks ─▶ decode ─▶ Publisher (op "r")
//!  reader N ─ …             ─┘
//! ```
//!
//! Readers only move bytes; decoding and encoding happen in one place, so the event order
//! per table is the COPY order and the publisher needs no locking. The channel is bounded:
//! a slow Kafka slows the readers, memory stays flat whatever the table size.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{pin_mut, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::schema::{RelationState, SchemaLoader};
use super::setup::{self, quote_ident, quote_literal};
use super::wire::Lsn;
use super::{connect_sql, PgSourceSettings, SourceError};
use crate::event::{ChangeEvent, Datum, Op, PostgresSource, SourceBlock};
use crate::ops::status::{SourceStatus, BEAT_INTERVAL};
use crate::pipeline::Pipeline;
use crate::publish::EventMeta;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// Tables read at the same time, each on its own connection.
pub const DEFAULT_PARALLELISM: usize = 2;
/// COPY chunks buffered between the readers and the pipeline.
const CHANNEL_CHUNKS: usize = 64;
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

enum Chunk {
    Data(usize, Bytes),
    Done(usize),
    Failed(SourceError),
}

/// Reads every table of the publication and publishes its rows as `op = "r"` events.
/// `snapshot_name` must still be valid: the replication connection that exported it stays
/// open and idle until every reader has imported it.
pub async fn run<S: Sink>(
    settings: &PgSourceSettings,
    sql: &Client,
    snapshot_name: &str,
    consistent_point: Lsn,
    pipeline: &mut Pipeline<S>,
    status: &SourceStatus,
    stop: &mut Shutdown,
) -> Result<(), SourceError> {
    status.snapshot_progress(0, 0);
    let tables = settings.captured_tables(sql).await?;
    let mut loader = SchemaLoader::new(sql);
    let mut states: Vec<RelationState> = Vec::with_capacity(tables.len());
    let mut estimate: i64 = 0;
    for (schema, table) in &tables {
        let (state, oid) = loader.load_table(schema, table).await?;
        let shared = pipeline.set_table(state.schema_owned(), stop).await?;
        states.push(state.with_schema(shared));
        let rows: f32 = sql
            .query_one("SELECT reltuples FROM pg_class WHERE oid = $1", &[&oid])
            .await
            .map_err(SourceError::sql("estimate rows"))?
            .get(0);
        estimate += rows.max(0.0) as i64;
    }
    tracing::info!(tables = tables.len(), estimated_rows = estimate, %consistent_point, "snapshot starting");

    let (tx, mut rx) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
    let queue: Vec<(usize, String, (String, String))> = tables
        .iter()
        .enumerate()
        .zip(&states)
        .map(|((i, (s, t)), st)| {
            let cols: Vec<String> = st
                .schema()
                .columns
                .iter()
                .map(|c| quote_ident(&c.name))
                .collect();
            (
                i,
                format!(
                    "COPY (SELECT {} FROM {}.{}) TO STDOUT",
                    if cols.is_empty() {
                        "*".into()
                    } else {
                        cols.join(", ")
                    },
                    quote_ident(s),
                    quote_ident(t)
                ),
                (s.clone(), t.clone()),
            )
        })
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(queue.into_iter()));
    let parallelism = DEFAULT_PARALLELISM.min(tables.len()).max(1);
    let mut readers = Vec::with_capacity(parallelism);
    for _ in 0..parallelism {
        let client = connect_sql(settings).await?;
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                quote_literal(snapshot_name)
            ))
            .await
            .map_err(SourceError::sql("import the exported snapshot"))?;
        let (tx, queue) = (tx.clone(), queue.clone());
        let role = settings.source.user.clone();
        readers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((idx, copy, table)) = next else {
                    break;
                };
                if let Err(e) = read_table(&client, idx, &copy, &tx)
                    .await
                    .map_err(|e| copy_error(e, &table, &role))
                {
                    let _ = tx.send(Chunk::Failed(e)).await;
                    return;
                }
                if tx.send(Chunk::Done(idx)).await.is_err() {
                    return;
                }
            }
            let _ = client.batch_execute("COMMIT").await;
        }));
    }
    drop(tx);

    let snapshot_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let db = settings.source.database.as_deref().unwrap_or("postgres");
    let position = consistent_point.to_string();
    let mut carry: HashMap<usize, Vec<u8>> = HashMap::new();
    let (mut done_rows, started, mut last_log) = (0u64, Instant::now(), Instant::now());
    let mut tables_done = 0usize;

    // Readers may be slow to deliver the first chunk of a big table (the server plans and
    // starts the scan): the tick keeps the heartbeat going meanwhile.
    let mut tick = tokio::time::interval(BEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let estimate_rows = u64::try_from(estimate).unwrap_or(0);
    loop {
        let chunk = tokio::select! {
            c = rx.recv() => match c {
                Some(c) => c,
                None => break,
            },
            _ = stop.wait() => break,
            _ = tick.tick() => {
                status.beat();
                continue;
            }
        };
        let (idx, data) = match chunk {
            Chunk::Data(i, d) => (i, d),
            Chunk::Done(i) => {
                tables_done += 1;
                if carry.get(&i).is_some_and(|c| !c.is_empty()) {
                    return Err(SourceError::transient(format!(
                        "COPY of {} ended in the middle of a row",
                        states[i].schema().id
                    )));
                }
                continue;
            }
            Chunk::Failed(e) => return Err(e),
        };
        let state = &states[idx];
        let rows_before = done_rows;
        let buf = carry.entry(idx).or_default();
        buf.extend_from_slice(&data);
        let mut start = 0;
        let mut fields: Vec<Option<Cow<'_, [u8]>>> = Vec::with_capacity(state.width());
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            start += nl + 1;
            split_copy_line(line, &mut fields);
            if fields.len() != state.width() {
                return Err(SourceError::definite(format!(
                    "snapshot of {}: COPY row has {} fields, expected {}",
                    state.schema().id,
                    fields.len(),
                    state.width()
                )));
            }
            let mut row: Vec<Datum<'_>> = Vec::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                row.push(match f {
                    None => Datum::Null,
                    Some(f) => state.decode_text(i, f)?,
                });
            }
            let table = state.schema();
            let ev = ChangeEvent {
                table,
                op: Op::Read,
                before: None,
                after: Some(&row),
                source: SourceBlock::Postgres(PostgresSource {
                    name: &settings.source.topic_prefix,
                    ts_us: snapshot_us,
                    snapshot: "true",
                    db,
                    sequence: None,
                    schema: &table.id.schema,
                    table: &table.id.table,
                    tx_id: None,
                    lsn: Some(consistent_point.0 as i64),
                    xmin: None,
                }),
                processed_us: snapshot_us,
                transaction: None,
            };
            pipeline
                .publish(
                    &ev,
                    EventMeta {
                        position: &position,
                        txid: None,
                        commit_ms: snapshot_us / 1000,
                    },
                )
                .await?;
            drop(row);
            fields.clear();
            done_rows += 1;
        }
        buf.drain(..start);
        status.snapshot_rows(done_rows - rows_before);
        status.snapshot_progress(done_rows, estimate_rows);
        if last_log.elapsed() >= PROGRESS_EVERY {
            last_log = Instant::now();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                rows = done_rows,
                estimated_rows = estimate,
                tables_done,
                tables = tables.len(),
                rows_per_s = (done_rows as f64 / secs) as u64,
                "snapshot progress"
            );
        }
    }
    // Stopped half way, the readers are still copying and may wait on the full channel:
    // closing it and aborting them ends their COPY now (their connections close with them), so
    // SIGTERM is not held up by the rest of the table. The next run takes the snapshot again.
    drop(rx);
    for r in readers {
        if stop.is_triggered() {
            r.abort();
        }
        let _ = r.await;
    }
    if stop.is_triggered() {
        return Ok(());
    }
    tracing::info!(
        rows = done_rows,
        tables = tables.len(),
        secs = started.elapsed().as_secs(),
        "snapshot read"
    );
    Ok(())
}

async fn read_table(
    client: &Client,
    idx: usize,
    copy: &str,
    tx: &mpsc::Sender<Chunk>,
) -> Result<(), CopyError> {
    let stream = client
        .copy_out(copy)
        .await
        .map_err(|e| CopyError("start COPY", e))?;
    pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| CopyError("read COPY", e))?;
        if tx.send(Chunk::Data(idx, chunk)).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// A COPY failure with the step it happened in, classified by [`copy_error`] once the table
/// and role are at hand.
pub(super) struct CopyError(pub(super) &'static str, pub(super) tokio_postgres::Error);

/// Classifies a COPY failure. A missing SELECT privilege is the one an operator meets first
/// (a role made for replication only), so it gets the exact GRANT instead of a bare
/// SQLSTATE; everything else keeps the generic transient/definite split.
pub(super) fn copy_error(
    e: CopyError,
    (schema, table): &(String, String),
    role: &str,
) -> SourceError {
    let CopyError(what, e) = e;
    if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
        let message = setup::db_message(&e);
        // Without USAGE on the schema PostgreSQL complains about the schema first; the
        // SELECT grant is needed next, so name both.
        let usage = if message.contains("schema") {
            format!(
                "GRANT USAGE ON SCHEMA {} TO {}; ",
                quote_ident(schema),
                quote_ident(role)
            )
        } else {
            String::new()
        };
        return SourceError::definite(format!(
            "snapshot of {schema}.{table}: {message} (SQLSTATE 42501); fix: grant SELECT on \
             {schema}.{table} to {role}: {usage}GRANT SELECT ON {}.{} TO {};",
            quote_ident(schema),
            quote_ident(table),
            quote_ident(role)
        ));
    }
    SourceError::sql(what)(e)
}

/// Splits one line of COPY text format into fields, undoing its backslash escapes. Fields
/// without escapes are borrowed; the NULL marker `\N` is `None`. The check is made on the
/// raw field, before unescaping: a text value `\N` arrives as `\\N` and is not NULL.
pub fn split_copy_line<'a>(line: &'a [u8], out: &mut Vec<Option<Cow<'a, [u8]>>>) {
    out.clear();
    for field in line.split(|&b| b == b'\t') {
        if field == b"\\N" {
            out.push(None);
            continue;
        }
        if !field.contains(&b'\\') {
            out.push(Some(Cow::Borrowed(field)));
            continue;
        }
        let mut v = Vec::with_capacity(field.len());
        let mut i = 0;
        while i < field.len() {
            let b = field[i];
            if b != b'\\' || i + 1 >= field.len() {
                v.push(b);
                i += 1;
                continue;
            }
            let e = field[i + 1];
            i += 2;
            match e {
                b'b' => v.push(8),
                b'f' => v.push(12),
                b'n' => v.push(b'\n'),
                b'r' => v.push(b'\r'),
                b't' => v.push(b'\t'),
                b'v' => v.push(11),
                b'0'..=b'7' => {
                    let mut n = u32::from(e - b'0');
                    let mut k = 0;
                    while k < 2 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                        n = n * 8 + u32::from(field[i] - b'0');
                        i += 1;
                        k += 1;
                    }
                    v.push((n & 0xff) as u8);
                }
                b'x' => {
                    let mut n = 0u32;
                    let mut k = 0;
                    while k < 2 && i < field.len() && field[i].is_ascii_hexdigit() {
                        n = n * 16 + (field[i] as char).to_digit(16).unwrap_or(0);
                        i += 1;
                        k += 1;
                    }
                    v.push(n as u8);
                }
                other => v.push(other),
            }
        }
        out.push(Some(Cow::Owned(v)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        split_copy_line(line, &mut out);
        out.into_iter().map(|c| c.map(Cow::into_owned)).collect()
    }

    #[test]
    fn copy_fields_without_escapes_are_split_on_tabs() {
        assert_eq!(
            split(b"1\tabc\t\\N"),
            vec![Some(b"1".to_vec()), Some(b"abc".to_vec()), None]
        );
    }

    #[test]
    fn copy_escapes_are_undone() {
        assert_eq!(
            split(b"a\\tb\\nc\\\\d\\101\\x42"),
            vec![Some(b"a\tb\nc\\dAB".to_vec())]
        );
    }

    #[test]
    fn the_text_backslash_n_is_not_the_null_marker() {
        assert_eq!(split(b"\\\\N\t\\N"), vec![Some(b"\\N".to_vec()), None]);
    }

    #[test]
    fn an_empty_line_is_one_empty_field() {
        assert_eq!(split(b""), vec![Some(Vec::<u8>::new())]);
    }
}
