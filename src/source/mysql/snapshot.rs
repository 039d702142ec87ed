//! The initial snapshot: every captured table read at one binlog position, in parallel.
//!
//! MariaDB: each reader connection runs `START TRANSACTION WITH CONSISTENT SNAPSHOT` and
//! then reads `binlog_snapshot_file` / `binlog_snapshot_position`, the binlog position its
//! snapshot corresponds to — no lock at all. Readers started at different moments may see
//! different positions when writes commit in between, so all readers are started together
//! and their positions compared: equal → every table is read at that one position; different
//! → all roll back and start again (up to [`MAX_ALIGN_ATTEMPTS`] times), after which the
//! snapshot falls back to a single reader, which is consistent by construction (slower, never
//! wrong). The GTID state of the position comes from `BINLOG_GTID_POS(file, pos)`.
//!
//! MySQL 8 has no such status values: one connection takes `FLUSH TABLES WITH READ LOCK`
//! (RELOAD privilege), every reader starts its consistent snapshot, the position and
//! `@@gtid_executed` are read, and the lock is released — held only for those few statements.
//!
//! Rows are published as op `r` events; in exactly-once mode they all go into the sink's
//! open Kafka transaction, which commits together with the checkpoint that marks the snapshot
//! done (see `mod.rs`), so a crash mid-snapshot leaves nothing visible and starts over.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tokio::sync::mpsc;

use super::catalog::{BinlogPosition, Catalog};
use super::setup::{self, quote_ident};
use super::types::{self, TypeOptions};
use super::{connect_sql, my_error, MySourceSettings, SourceError};
use crate::event::{ChangeEvent, Datum, MysqlSource, Op, SourceBlock, TableSchema};
use crate::pipeline::Pipeline;
use crate::publish::EventMeta;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// Default reader connections.
pub const DEFAULT_PARALLELISM: usize = 2;
/// How often the readers' snapshots are re-taken when their positions differ, before the
/// snapshot falls back to one reader.
pub const MAX_ALIGN_ATTEMPTS: usize = 5;
/// Rows in flight between the readers and the pipeline.
const CHANNEL_ROWS: usize = 1024;
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What a finished snapshot hands to the stream.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Binlog position every table was read at.
    pub position: BinlogPosition,
    /// GTID state at that position (MariaDB `BINLOG_GTID_POS`, MySQL `gtid_executed`).
    pub gtid_state: Option<String>,
    /// The table definitions read at snapshot time.
    pub catalog: Catalog,
}

enum Msg {
    Row(usize, Vec<Value>),
    Done,
    Failed(SourceError),
}

/// Starts `n` readers at one position (see the module docs).
async fn start_readers(
    settings: &MySourceSettings,
    mariadb: bool,
) -> Result<(Vec<Conn>, BinlogPosition, Option<String>), SourceError> {
    let mut n = settings.snapshot_parallelism.max(1);
    let mut attempt = 0;
    loop {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = connect_sql(settings).await?;
            c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .await
                .map_err(my_error("snapshot isolation level"))?;
            conns.push(c);
        }
        if !mariadb {
            return mysql8_start(conns).await;
        }
        // Start together, so writes rarely fall between the readers' starts.
        let starts = futures_util::future::join_all(
            conns
                .iter_mut()
                .map(|c| c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")),
        )
        .await;
        for r in starts {
            r.map_err(my_error("START TRANSACTION WITH CONSISTENT SNAPSHOT"))?;
        }
        let mut positions = Vec::with_capacity(n);
        for c in conns.iter_mut() {
            positions.push(snapshot_position(c).await?);
        }
        if positions.windows(2).all(|w| w[0] == w[1]) {
            let pos = positions.swap_remove(0);
            let gtid: Option<Option<String>> = conns[0]
                .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&pos.file, pos.pos))
                .await
                .map_err(my_error("BINLOG_GTID_POS"))?;
            return Ok((conns, pos, gtid.flatten().filter(|g| !g.is_empty())));
        }
        attempt += 1;
        tracing::debug!(
            attempt,
            ?positions,
            "snapshot readers started at different binlog positions; starting again"
        );
        for mut c in conns {
            let _ = c.query_drop("ROLLBACK").await;
        }
        if attempt >= MAX_ALIGN_ATTEMPTS && n > 1 {
            tracing::info!(
                readers = n,
                "writes keep separating the readers' snapshots; reading with one connection"
            );
            n = 1;
        }
    }
}

async fn snapshot_position(c: &mut Conn) -> Result<BinlogPosition, SourceError> {
    let rows: Vec<(String, String)> = c
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(my_error("SHOW STATUS LIKE 'binlog_snapshot_%'"))?;
    let mut file = None;
    let mut pos = None;
    for (k, v) in rows {
        match k.to_ascii_lowercase().as_str() {
            "binlog_snapshot_file" => file = Some(v),
            "binlog_snapshot_position" => pos = v.parse().ok(),
            _ => {}
        }
    }
    match (file, pos) {
        (Some(file), Some(pos)) if !file.is_empty() => Ok(BinlogPosition { file, pos }),
        _ => Err(SourceError::definite(
            "the server reports no binlog_snapshot_file/position: is log_bin on?".into(),
        )),
    }
}

/// MySQL 8: a brief global read lock pairs the readers' snapshots with one position.
async fn mysql8_start(
    mut conns: Vec<Conn>,
) -> Result<(Vec<Conn>, BinlogPosition, Option<String>), SourceError> {
    conns[0]
        .query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .map_err(|e| {
            let base = my_error("FLUSH TABLES WITH READ LOCK")(e);
            match base {
                SourceError::Definite(t) => SourceError::definite(format!(
                    "{t}; fix: GRANT RELOAD ON *.* TO the agent's user (the MySQL snapshot \
                     holds a global read lock for a moment)"
                )),
                other => other,
            }
        })?;
    let result = async {
        for c in conns.iter_mut() {
            c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await
                .map_err(my_error("START TRANSACTION WITH CONSISTENT SNAPSHOT"))?;
        }
        let pos = setup::current_position(&mut conns[0]).await?;
        let gtid: Option<Option<String>> = conns[0]
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .await
            .ok();
        Ok::<_, SourceError>((pos, gtid.flatten().filter(|g| !g.is_empty())))
    }
    .await;
    let _ = conns[0].query_drop("UNLOCK TABLES").await;
    let (pos, gtid) = result?;
    Ok((conns, pos, gtid))
}

/// Reads every captured table and publishes its rows. Returns the position to stream from.
pub async fn run<S: Sink>(
    settings: &MySourceSettings,
    mariadb: bool,
    server_id: u32,
    opts: &TypeOptions,
    pipeline: &mut Pipeline<S>,
    stop: &mut Shutdown,
) -> Result<Taken, SourceError> {
    let (mut conns, position, gtid_state) = start_readers(settings, mariadb).await?;
    let catalog = super::schema::load_catalog(&mut conns[0], settings).await?;
    let mut schemas: Vec<std::sync::Arc<TableSchema>> = Vec::with_capacity(catalog.tables.len());
    let defs: Vec<&super::catalog::TableDef> = catalog.tables.values().collect();
    let mut queries = Vec::with_capacity(catalog.tables.len());
    for (i, def) in catalog.tables.values().enumerate() {
        let schema = pipeline
            .set_table(types::table_schema(def, opts), stop)
            .await?;
        let cols: Vec<String> = def.columns.iter().map(|c| quote_ident(&c.name)).collect();
        queries.push((
            i,
            format!(
                "SELECT {} FROM {}.{}",
                cols.join(", "),
                quote_ident(&def.database),
                quote_ident(&def.name)
            ),
        ));
        schemas.push(schema);
    }
    let estimate: Option<u64> = conns[0]
        .query_first(format!(
            "SELECT CAST(COALESCE(SUM(TABLE_ROWS), 0) AS UNSIGNED) FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ({})",
            if catalog.tables.is_empty() {
                "''".to_string()
            } else {
                catalog
                    .tables
                    .keys()
                    .map(|(db, _)| format!("'{}'", db.replace('\'', "''")))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(",")
            }
        ))
        .await
        .ok()
        .flatten();
    tracing::info!(tables = queries.len(), estimated_rows = estimate.unwrap_or(0), %position, gtid = ?gtid_state, readers = conns.len(), "snapshot starting");

    let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL_ROWS);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(queries.into_iter()));
    let mut readers = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let (tx, queue) = (tx.clone(), queue.clone());
        readers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((idx, sql)) = next else { break };
                if let Err(e) = read_table(&mut conn, idx, &sql, &tx).await {
                    let _ = tx.send(Msg::Failed(e)).await;
                    return;
                }
                if tx.send(Msg::Done).await.is_err() {
                    return;
                }
            }
            let _ = conn.query_drop("COMMIT").await;
            let _ = conn.disconnect().await;
        }));
    }
    drop(tx);

    let snapshot_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let pos_text = position.to_string();
    let (mut rows, started, mut last_log, mut tables_done) =
        (0u64, Instant::now(), Instant::now(), 0);
    let mut datums: Vec<Datum<'static>> = Vec::new();
    while let Some(msg) = tokio::select! {
        m = rx.recv() => m,
        _ = stop.wait() => None,
    } {
        let (idx, values) = match msg {
            Msg::Row(i, v) => (i, v),
            Msg::Done => {
                tables_done += 1;
                continue;
            }
            Msg::Failed(e) => return Err(e),
        };
        if rows % 1024 == 0 {
            pipeline.status().beat();
        }
        let table = &*schemas[idx];
        datums.clear();
        for ((col, def), v) in table.columns.iter().zip(&defs[idx].columns).zip(values) {
            datums
                .push(types::snapshot_datum(def, &col.ty, v).map_err(|e| {
                    SourceError::definite(format!("snapshot of {}: {e}", table.id))
                })?);
        }
        let ev = ChangeEvent {
            table,
            op: Op::Read,
            before: None,
            after: Some(&datums),
            source: SourceBlock::Mysql(MysqlSource {
                name: &settings.source.topic_prefix,
                ts_us: snapshot_us,
                snapshot: "true",
                db: &table.id.schema,
                table: &table.id.table,
                server_id: i64::from(server_id),
                gtid: None,
                file: &position.file,
                pos: position.pos as i64,
                row: 0,
                thread: None,
                query: None,
            }),
            processed_us: snapshot_us,
            transaction: None,
        };
        pipeline
            .publish(
                &ev,
                EventMeta {
                    position: &pos_text,
                    txid: None,
                    commit_ms: snapshot_us / 1000,
                },
            )
            .await?;
        rows += 1;
        if last_log.elapsed() >= PROGRESS_EVERY {
            last_log = Instant::now();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                rows,
                estimated_rows = estimate.unwrap_or(0),
                tables_done,
                tables = schemas.len(),
                rows_per_s = (rows as f64 / secs) as u64,
                "snapshot progress"
            );
        }
    }
    for r in readers {
        let _ = r.await;
    }
    if !stop.is_triggered() {
        tracing::info!(
            rows,
            tables = schemas.len(),
            secs = started.elapsed().as_secs(),
            "snapshot read"
        );
    }
    Ok(Taken {
        position,
        gtid_state,
        catalog,
    })
}

async fn read_table(
    conn: &mut Conn,
    idx: usize,
    sql: &str,
    tx: &mpsc::Sender<Msg>,
) -> Result<(), SourceError> {
    let mut result = conn
        .query_iter(sql)
        .await
        .map_err(my_error("snapshot SELECT"))?;
    if let Some(mut rows) = result
        .stream::<Row>()
        .await
        .map_err(my_error("snapshot SELECT"))?
    {
        while let Some(row) = rows.next().await {
            let row = row.map_err(my_error("snapshot read"))?;
            if tx.send(Msg::Row(idx, row.unwrap())).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}
