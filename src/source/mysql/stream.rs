//! The streaming phase: binlog events from the checkpoint's position → change events →
//! Kafka, and the checkpoint moved only as far as Kafka has acknowledged.
//!
//! Transactions run from a GTID event (MariaDB, MySQL) or a `BEGIN` query to an XID event or
//! a `COMMIT` query; DDL arrives as a standalone query. One task decodes, encodes and sends,
//! so backpressure is end to end: when the sink has its maximum of unacknowledged records,
//! `send` waits, the socket is not read, and the server stops sending. A source transaction is
//! never buffered: its rows are forwarded as they arrive.
//!
//! Exactly-once: a Kafka transaction closes when nothing more is waiting or at the bounds,
//! with a checkpoint saying what it holds. Between source transactions that is the end of the
//! newest one; inside a large one, its start plus the number of its rows already sent, so a
//! restart asks the server for the binlog at that start and skips exactly those rows.
//! At-least-once: positions are marked at every source commit and the newest acknowledged one
//! is written to the offsets topic every second.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt, StreamExt};
use mysql_async::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Value};

use super::catalog::{BinlogPosition, Catalog};
use super::lock::SourceLock;
use super::{
    connect_sql, my_error, publish_checkpoint, schema, stub, MySourceSettings, SourceError,
    ER_MASTER_FATAL_ERROR_READING_BINLOG,
};
use crate::checkpoint::MysqlCheckpoint;
use crate::event::{ChangeEvent, Datum, MysqlSource, Op, SourceBlock, TableId, TableSchema, TransactionInfo};
use crate::publish::{EventMeta, Publisher};
use crate::shutdown::Shutdown;

/// How often acknowledged positions are written (at-least-once) and the lock is checked.
pub const TICK: Duration = Duration::from_secs(1);
/// Exactly-once: how long an idle stream waits before recording a position that moved past
/// transactions with nothing captured (so a restart does not re-read them, and purging old
/// binlogs does not catch up with the checkpoint).
pub const IDLE_CHECKPOINT: Duration = Duration::from_secs(10);
/// How often the source lock is verified.
const LOCK_CHECK: Duration = Duration::from_secs(5);

const ROTATE: u8 = 0x04;
const QUERY: u8 = 0x02;
const XID: u8 = 0x10;
const TABLE_MAP: u8 = 0x13;
const MYSQL_GTID: u8 = 0x21;
const MARIADB_GTID: u8 = 0xa2;
/// MariaDB GTID flag: the group is a single statement without BEGIN/COMMIT (DDL).
const FL_STANDALONE: u8 = 1;

/// Bounds of one Kafka transaction in exactly-once mode.
#[derive(Debug, Clone, Copy)]
pub struct TxnBounds {
    /// Commit after this many records.
    pub max_records: usize,
    /// Commit after this long under load.
    pub max_age: Duration,
}

/// What the loop needs besides the connections.
pub struct StreamContext<'a> {
    /// The source's settings.
    pub settings: &'a MySourceSettings,
    /// Offsets topic.
    pub offsets_topic: &'a str,
    /// Kafka transactions with checkpoints inside them.
    pub exactly_once: bool,
    /// Kafka transaction bounds (exactly-once).
    pub bounds: TxnBounds,
    /// Identity of the server, recorded in checkpoints.
    pub server_identity: Option<String>,
}

struct Tx {
    /// Where the transaction starts (its GTID or BEGIN event).
    start: BinlogPosition,
    /// Rows of this transaction seen so far (the partial-resume index).
    rows: u64,
    /// Rows up to this index are already in Kafka.
    skip_until: u64,
    gtid: Option<String>,
    /// `(domain, gtid)` to fold into the GTID state at commit.
    domain: Option<u32>,
    standalone: bool,
    id: String,
    total_order: i64,
    per_table: HashMap<TableId, i64>,
    ts_us: i64,
    thread: Option<i64>,
    server_id: u32,
    position: String,
}

struct Mapped {
    tme: TableMapEvent<'static>,
    schema: Arc<TableSchema>,
}

struct State {
    file: String,
    tx: Option<Tx>,
    /// Everything before this position is in Kafka (or marked for it).
    committed: MysqlCheckpoint,
    gtids: std::collections::BTreeMap<u32, String>,
    /// Resume: rows of the transaction at this start already in Kafka.
    resume_partial: Option<(BinlogPosition, u64)>,
    mapped: HashMap<u64, Mapped>,
    catalog: Catalog,
}

/// Streams until shutdown or error.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: StreamContext<'_>,
    start: MysqlCheckpoint,
    catalog: Catalog,
    mut sql: Conn,
    lock: &mut SourceLock,
    publisher: &mut Publisher<MysqlCheckpoint>,
    stop: &mut Shutdown,
) -> Result<(), SourceError> {
    let settings = ctx.settings;
    check_position_exists(&mut sql, &start, &settings.source.name).await?;
    let mut stream = open_stream(settings, &start).await?;
    let gtids = start
        .gtid_state
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|g| {
            let d: u32 = g.trim().split('-').next()?.parse().ok()?;
            Some((d, g.trim().to_string()))
        })
        .collect();
    let mut st = State {
        file: start.file.clone(),
        tx: None,
        resume_partial: (start.partial_rows > 0).then(|| {
            (
                BinlogPosition {
                    file: start.file.clone(),
                    pos: start.pos,
                },
                start.partial_rows,
            )
        }),
        committed: MysqlCheckpoint {
            partial_rows: 0,
            server: ctx.server_identity.clone(),
            ..start.clone()
        },
        gtids,
        mapped: HashMap::new(),
        catalog,
    };
    let mut before: Vec<Datum<'static>> = Vec::new();
    let mut after: Vec<Datum<'static>> = Vec::new();
    let mut timer = tokio::time::interval(TICK);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut written: Option<MysqlCheckpoint> = Some(start.clone());
    let mut last_write = Instant::now();
    let mut last_lock_check = Instant::now();

    loop {
        let mut ready = None;
        if ctx.exactly_once && publisher.sink().txn_open() {
            let sink = publisher.sink();
            let full = sink.txn_records() >= ctx.bounds.max_records
                || sink.txn_age() >= ctx.bounds.max_age;
            if !full {
                ready = stream.next().now_or_never();
            }
            if ready.is_none() {
                commit_txn(&ctx, publisher, &st).await?;
                written = Some(st.committed.clone());
                last_write = Instant::now();
            }
        }
        let event = if let Some(e) = ready {
            e
        } else {
            tokio::select! {
                biased;
                _ = stop.wait() => break,
                r = publisher.sink().progress(), if publisher.sink().in_flight() > 0 => {
                    r?;
                    publisher.sink().acked()?;
                    continue;
                }
                _ = timer.tick() => {
                    if last_lock_check.elapsed() >= LOCK_CHECK {
                        lock.check().await?;
                        last_lock_check = Instant::now();
                    }
                    if ctx.exactly_once {
                        let idle = st.tx.is_none() && !publisher.sink().txn_open();
                        if idle && written.as_ref() != Some(&st.committed) && last_write.elapsed() >= IDLE_CHECKPOINT {
                            publish_checkpoint(publisher, ctx.offsets_topic, &settings.source.name, &st.committed).await?;
                            publisher.sink().commit().await?;
                            written = Some(st.committed.clone());
                            last_write = Instant::now();
                        }
                    } else if let Some(acked) = publisher.sink().acked()? {
                        if written.as_ref() != Some(&acked) {
                            publish_checkpoint(publisher, ctx.offsets_topic, &settings.source.name, &acked).await?;
                            written = Some(acked);
                        }
                    }
                    continue;
                }
                e = stream.next() => e,
            }
        };
        let Some(event) = event else {
            return Err(SourceError::Transient(
                "server ended the binlog stream".into(),
            ));
        };
        let event = event.map_err(|e| stream_error(e, &st, &settings.source.name))?;
        handle(
            &ctx,
            &event,
            &mut st,
            &mut sql,
            publisher,
            stop,
            &mut before,
            &mut after,
        )
        .await?;
    }

    // Shutdown: stop reading, wait for Kafka (commit), record the final position.
    if ctx.exactly_once {
        if publisher.sink().txn_open() || written.as_ref() != Some(&st.committed) {
            if !publisher.sink().txn_open() {
                publish_checkpoint(publisher, ctx.offsets_topic, &settings.source.name, &st.committed).await?;
            }
            commit_txn(&ctx, publisher, &st).await?;
        }
    } else {
        let acked = publisher.sink().drain().await?;
        if let Some(acked) = acked {
            if written.as_ref() != Some(&acked) {
                publish_checkpoint(publisher, ctx.offsets_topic, &settings.source.name, &acked).await?;
                publisher.sink().drain().await?;
            }
        }
    }
    tracing::info!(file = %st.committed.file, pos = st.committed.pos, "stream stopped, position acknowledged");
    Ok(())
}

/// Refuses, with the way out, a resume position the server no longer has.
async fn check_position_exists(
    sql: &mut Conn,
    start: &MysqlCheckpoint,
    source: &str,
) -> Result<(), SourceError> {
    let files = super::setup::binlog_files(sql).await?;
    if !files.iter().any(|f| f == &start.file) {
        return Err(purged_error(&start.file, start.pos, source, "not in SHOW BINARY LOGS"));
    }
    Ok(())
}

fn purged_error(file: &str, pos: u64, source: &str, detail: &str) -> SourceError {
    SourceError::Definite(format!(
        "the binlog position {file}:{pos} where source `{source}` resumes is no longer on the \
         server ({detail}): the binlogs were purged (binlog_expire_logs_seconds, PURGE BINARY \
         LOGS) before the agent read them, so changes in between are lost to it; fix: take a \
         new snapshot by deleting the source's checkpoint — `cdc-agent reset-offsets` is not \
         available yet, so produce a tombstone for key `{source}` to the offsets topic (see \
         docs/mysql-source.md, \"Starting over\") — and keep binlogs longer than the agent \
         may be down"
    ))
}

fn stream_error(e: mysql_async::Error, st: &State, source: &str) -> SourceError {
    if let mysql_async::Error::Server(s) = &e {
        if s.code == ER_MASTER_FATAL_ERROR_READING_BINLOG {
            return purged_error(&st.committed.file, st.committed.pos, source, &s.message);
        }
    }
    my_error("binlog stream")(e)
}

/// Opens the binlog connection at `start`.
async fn open_stream(
    settings: &MySourceSettings,
    start: &MysqlCheckpoint,
) -> Result<BinlogStream, SourceError> {
    let mut conn = connect_sql(settings).await?;
    let heartbeat_ns = settings.heartbeat.as_nanos().min(u128::from(u64::MAX)) as u64;
    // MariaDB: GTID events instead of fake BEGIN queries (capability 4 = GTID); the heartbeat
    // keeps an idle connection visibly alive. MySQL ignores the MariaDB variable.
    conn.query_drop(format!(
        "SET @mariadb_slave_capability = 4, @master_heartbeat_period = {heartbeat_ns}"
    ))
    .await
    .map_err(my_error("binlog session settings"))?;
    let request = BinlogStreamRequest::new(settings.server_id)
        .with_filename(start.file.as_bytes())
        .with_pos(start.pos);
    conn.get_binlog_stream(request).await.map_err(|e| {
        if let mysql_async::Error::Server(s) = &e {
            if s.code == ER_MASTER_FATAL_ERROR_READING_BINLOG {
                return purged_error(&start.file, start.pos, &settings.source.name, &s.message);
            }
        }
        my_error("request the binlog")(e)
    })
}

/// Commits the open Kafka transaction together with the checkpoint of what it holds.
async fn commit_txn(
    ctx: &StreamContext<'_>,
    publisher: &mut Publisher<MysqlCheckpoint>,
    st: &State,
) -> Result<(), SourceError> {
    let cp = match &st.tx {
        Some(t) if t.rows > 0 => MysqlCheckpoint {
            file: t.start.file.clone(),
            pos: t.start.pos,
            partial_rows: t.rows,
            ..st.committed.clone()
        },
        _ => st.committed.clone(),
    };
    publish_checkpoint(publisher, ctx.offsets_topic, &ctx.settings.source.name, &cp).await?;
    publisher.sink().commit().await?;
    Ok(())
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn malformed(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Transient(format!("malformed binlog event ({what}): {e}; restarting the stream"))
}

#[allow(clippy::too_many_arguments)]
fn begin(
    st: &mut State,
    start: BinlogPosition,
    gtid: Option<String>,
    domain: Option<u32>,
    standalone: bool,
    ts_us: i64,
    thread: Option<i64>,
    server_id: u32,
) {
    let skip_until = match &st.resume_partial {
        Some((pos, n)) if *pos == start => *n,
        _ => 0,
    };
    if skip_until > 0 {
        tracing::debug!(%start, skip_until, "skipping rows a committed Kafka transaction already holds");
    }
    let id = gtid.clone().unwrap_or_else(|| start.to_string());
    let position = start.to_string();
    st.tx = Some(Tx {
        start,
        rows: 0,
        skip_until,
        gtid,
        domain,
        standalone,
        id,
        total_order: 0,
        per_table: HashMap::new(),
        ts_us,
        thread,
        server_id,
        position,
    });
}

fn end(st: &mut State, publisher: &mut Publisher<MysqlCheckpoint>, end_pos: u64) {
    if let Some(t) = st.tx.take() {
        if let (Some(d), Some(g)) = (t.domain, t.gtid) {
            st.gtids.insert(d, g);
        }
    }
    st.resume_partial = None;
    st.committed.file.clone_from(&st.file);
    st.committed.pos = end_pos;
    st.committed.partial_rows = 0;
    if !st.gtids.is_empty() {
        let state = st.gtids.values().cloned().collect::<Vec<_>>().join(",");
        st.committed.gtid_state = Some(state);
    }
    publisher.mark(st.committed.clone());
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    ctx: &StreamContext<'_>,
    event: &Event,
    st: &mut State,
    sql: &mut Conn,
    publisher: &mut Publisher<MysqlCheckpoint>,
    stop: &mut Shutdown,
    before: &mut Vec<Datum<'static>>,
    after: &mut Vec<Datum<'static>>,
) -> Result<(), SourceError> {
    let h = event.header();
    let end_pos = u64::from(h.log_pos());
    let start_pos = end_pos.saturating_sub(u64::from(h.event_size()));
    let ts_us = i64::from(h.timestamp()) * 1_000_000;
    match h.event_type_raw() {
        ROTATE => {
            if let Ok(Some(EventData::RotateEvent(r))) = event.read_data() {
                st.file = r.name().into_owned();
                if st.tx.is_none() && !r.is_fake() {
                    st.committed.file.clone_from(&st.file);
                    st.committed.pos = r.position();
                }
            }
        }
        MARIADB_GTID => {
            let (seq, domain, flags) = stub::mariadb_gtid(event.data())
                .ok_or_else(|| malformed("GTID", "short body"))?;
            let gtid = format!("{domain}-{}-{seq}", h.server_id());
            let start = BinlogPosition { file: st.file.clone(), pos: start_pos };
            begin(st, start, Some(gtid), Some(domain), flags & FL_STANDALONE != 0, ts_us, None, h.server_id());
        }
        MYSQL_GTID => {
            if let Ok(Some(EventData::GtidEvent(g))) = event.read_data() {
                let sid = g.sid();
                let mut uuid = String::with_capacity(36);
                for (i, b) in sid.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        uuid.push('-');
                    }
                    let _ = write!(uuid, "{b:02x}");
                }
                let gtid = format!("{uuid}:{}", g.gno());
                let start = BinlogPosition { file: st.file.clone(), pos: start_pos };
                begin(st, start, Some(gtid), None, false, ts_us, None, h.server_id());
            }
        }
        QUERY => {
            let Ok(Some(EventData::QueryEvent(q))) = event.read_data() else {
                return Err(malformed("QUERY", "unreadable"));
            };
            let text = q.query();
            let trimmed = text.trim();
            if trimmed.eq_ignore_ascii_case("BEGIN") {
                if let Some(t) = &mut st.tx {
                    t.thread = Some(i64::from(q.thread_id()));
                } else {
                    let start = BinlogPosition { file: st.file.clone(), pos: start_pos };
                    begin(st, start, None, None, false, ts_us, Some(i64::from(q.thread_id())), h.server_id());
                }
            } else if trimmed.eq_ignore_ascii_case("COMMIT") || trimmed.eq_ignore_ascii_case("ROLLBACK") {
                end(st, publisher, end_pos);
            } else {
                // DDL (or another statement logged as text). Interim: the definitions are read
                // again from information_schema; the schema history replaces this.
                tracing::info!(query = %trimmed.chars().take(200).collect::<String>(), "statement in the binlog; reloading table definitions");
                st.catalog = schema::load_catalog(sql, ctx.settings).await?;
                st.mapped.clear();
                if st.tx.as_ref().is_none_or(|t| t.standalone) {
                    end(st, publisher, end_pos);
                }
            }
        }
        XID => end(st, publisher, end_pos),
        TABLE_MAP => {
            let Ok(Some(EventData::TableMapEvent(tme))) = event.read_data() else {
                return Err(malformed("TABLE_MAP", "unreadable"));
            };
            let (db, table) = (tme.database_name().into_owned(), tme.table_name().into_owned());
            if !ctx.settings.captures(&db) {
                st.mapped.remove(&tme.table_id());
                return Ok(());
            }
            if let Some(m) = st.mapped.get(&tme.table_id()) {
                if *m.schema.id.schema == *db && *m.schema.id.table == *table
                    && m.tme.columns_count() == tme.columns_count()
                {
                    return Ok(());
                }
            }
            let width = tme.columns_count() as usize;
            let known = st
                .catalog
                .get(&db, &table)
                .is_some_and(|d| d.columns.len() == width);
            if !known {
                let fresh = schema::load_tables(sql, ctx.settings, Some((&db, &table))).await?;
                for def in fresh.tables.into_values() {
                    st.catalog.put(def);
                }
            }
            let Some(def) = st.catalog.get(&db, &table).filter(|d| d.columns.len() == width) else {
                return Err(SourceError::Definite(format!(
                    "table {db}.{table}: the binlog has {width} columns but no matching definition \
                     is known"
                )));
            };
            let schema = publisher.set_table(stub::table_schema(def), stop).await?;
            st.mapped.insert(
                tme.table_id(),
                Mapped { tme: tme.into_owned(), schema },
            );
        }
        23..=25 | 30..=32 => {
            let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
                return Err(malformed("ROWS", "unreadable"));
            };
            let Some(m) = st.mapped.get(&rows.table_id()) else {
                return Ok(());
            };
            let op = match &rows {
                RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Op::Create,
                RowsEventData::UpdateRowsEventV1(_) | RowsEventData::UpdateRowsEvent(_) => Op::Update,
                RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Op::Delete,
                _ => return Ok(()),
            };
            let schema = m.schema.clone();
            let Some(tx) = st.tx.as_mut() else {
                return Err(SourceError::Transient(
                    "row event outside a transaction; restarting the stream".into(),
                ));
            };
            for (row_index, row) in rows.rows(&m.tme).enumerate() {
                let (b, a) = row.map_err(|e| malformed("row", e))?;
                tx.rows += 1;
                if tx.rows <= tx.skip_until {
                    continue;
                }
                fill(&schema, b, before);
                fill(&schema, a, after);
                match op {
                    Op::Create => emit(ctx, publisher, &schema, tx, Op::Create, None, Some(after), ts_us, row_index).await?,
                    Op::Delete => emit(ctx, publisher, &schema, tx, Op::Delete, Some(before), None, ts_us, row_index).await?,
                    _ => {
                        let key_changed = schema.key.iter().any(|&k| before.get(k) != after.get(k));
                        if key_changed {
                            // Debezium's contract for a primary-key change: delete (and
                            // tombstone) on the old key, create on the new one.
                            emit(ctx, publisher, &schema, tx, Op::Delete, Some(before), None, ts_us, row_index).await?;
                            emit(ctx, publisher, &schema, tx, Op::Create, None, Some(after), ts_us, row_index).await?;
                        } else {
                            emit(ctx, publisher, &schema, tx, Op::Update, Some(before), Some(after), ts_us, row_index).await?;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn fill(schema: &TableSchema, row: Option<mysql_async::binlog::row::BinlogRow>, out: &mut Vec<Datum<'static>>) {
    out.clear();
    let Some(mut row) = row else { return };
    for (i, col) in schema.columns.iter().enumerate() {
        let d = match row.take(i) {
            Some(BinlogValue::Value(v)) => stub::value_datum(&col.ty, v),
            Some(BinlogValue::Jsonb(j)) => stub::value_datum(&col.ty, Value::Bytes(format!("{j:?}").into_bytes())),
            _ => Datum::Null,
        };
        out.push(d);
    }
}

#[allow(clippy::too_many_arguments)]
async fn emit(
    ctx: &StreamContext<'_>,
    publisher: &mut Publisher<MysqlCheckpoint>,
    table: &TableSchema,
    tx: &mut Tx,
    op: Op,
    before: Option<&[Datum<'_>]>,
    after: Option<&[Datum<'_>]>,
    ts_us: i64,
    row: usize,
) -> Result<(), SourceError> {
    tx.total_order += 1;
    let per = match tx.per_table.get_mut(&table.id) {
        Some(n) => {
            *n += 1;
            *n
        }
        None => {
            tx.per_table.insert(table.id.clone(), 1);
            1
        }
    };
    let ts = if ts_us > 0 { ts_us } else { tx.ts_us };
    let ev = ChangeEvent {
        table,
        op,
        before,
        after,
        source: SourceBlock::Mysql(MysqlSource {
            name: &ctx.settings.source.topic_prefix,
            ts_us: ts,
            snapshot: "false",
            db: &table.id.schema,
            table: &table.id.table,
            server_id: i64::from(tx.server_id),
            gtid: tx.gtid.as_deref(),
            file: &tx.start.file,
            pos: tx.start.pos as i64,
            row: row as i32,
            thread: tx.thread,
            query: None,
        }),
        processed_us: now_us(),
        transaction: Some(TransactionInfo {
            id: tx.id.as_str().into(),
            total_order: tx.total_order,
            data_collection_order: per,
        }),
    };
    publisher
        .publish(
            &ev,
            EventMeta {
                position: &tx.position,
                txid: Some(&tx.id),
                commit_ms: ts.div_euclid(1000),
            },
        )
        .await
}
