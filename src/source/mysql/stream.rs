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
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use mysql_async::binlog::events::{Event, EventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use mysql_common::packets::BinlogDumpFlags;

use super::catalog::{BinlogPosition, Catalog, TableDef};
use super::chunk::{self, SignalTable};
use super::ddl::{self, DdlOutcome};
use super::events::{
    self, Flavor, MariadbGtidEvent, MysqlGtidEvent, RowsEventView, RowsKind, TableMapInfo,
};
use super::gtid::ToSids;
use super::history::SchemaHistory;
use super::lock::SourceLock;
use super::position::{MyCheckpoint, MyPosition, MysqlCheckpoint};
use super::types::{self, DecodeError, RowLayout, TypeOptions};
use super::{
    connect_sql, my_error, MySourceSettings, SourceError, ER_MASTER_FATAL_ERROR_READING_BINLOG,
};
use crate::event::{
    ChangeEvent, Datum, MysqlSource, Op, SourceBlock, TableSchema, TransactionInfo,
};
use crate::ops::status::SourceStatus;
use crate::pipeline::snapshot::WATERMARK_PREFIX;
use crate::pipeline::{ChangeStream, Chunk, ChunkRequest, Pipeline, TxOrder, Watermark};
use crate::publish::EventMeta;
use crate::shutdown::Shutdown;
use crate::sink::{OutRecord, Sink};
use crate::source::silence::{Silence, Verdict};

/// Exactly-once: how long an idle stream waits before recording a position that moved past
/// transactions with nothing captured (so a restart does not re-read them, and purging old
/// binlogs does not catch up with the checkpoint).
pub const IDLE_CHECKPOINT: Duration = Duration::from_secs(10);
/// How often the source lock is verified.
const LOCK_CHECK: Duration = Duration::from_secs(5);
/// How long a lock check may wait for the server's answer.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

const ROTATE: u8 = 0x04;
const QUERY: u8 = 0x02;
const XID: u8 = 0x10;
const TABLE_MAP: u8 = 0x13;
const MYSQL_GTID: u8 = 0x21;
const MARIADB_GTID: u8 = 0xa2;
const MARIADB_ANNOTATE_ROWS: u8 = events::event_type::MARIADB_ANNOTATE_ROWS;
/// MySQL `ROWS_QUERY_EVENT` (`binlog_rows_query_log_events = ON`).
const MYSQL_ROWS_QUERY: u8 = 29;

/// Where the binlog is requested from.
#[derive(Debug, Clone)]
pub enum Resume {
    /// The checkpoint's file/position, on the server that wrote it.
    Position,
    /// MariaDB, another server (failover): `@slave_connect_state = state`, strict mode.
    MariadbGtid {
        /// Identity of the server the checkpoint was taken on.
        from_server: Option<String>,
        /// The GTID state to connect with.
        state: String,
    },
    /// MySQL, another server (failover): COM_BINLOG_DUMP_GTID with the executed set.
    MysqlGtid {
        /// Identity of the server the checkpoint was taken on.
        from_server: Option<String>,
        /// Every transaction already read.
        set: super::gtid::MysqlGtidSet,
    },
}

/// What the loop needs besides the connections.
pub struct StreamContext<'a> {
    /// The source's settings.
    pub settings: &'a MySourceSettings,
    /// Identity of the server, recorded in checkpoints.
    pub server_identity: Option<String>,
    /// How the binlog is requested.
    pub resume: Resume,
    /// Which server writes the binlog (table-map metadata differs).
    pub flavor: Flavor,
    /// The schema-history topic.
    pub history_topic: &'a str,
    /// Type mapping options.
    pub types: TypeOptions,
    /// The table carrying snapshot watermarks and signals; `None` when the source takes no
    /// snapshots while streaming.
    pub signal: Option<SignalTable>,
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
    order: TxOrder,
    ts_us: i64,
    thread: Option<i64>,
    server_id: u32,
    position: String,
    /// The statement behind the rows that follow (`include_query`): one allocation per
    /// statement, borrowed by every row event of it.
    query: Option<Arc<str>>,
}

struct Mapped {
    map: TableMapInfo,
    layout: RowLayout,
    schema: Arc<TableSchema>,
    /// The signal table: its rows are watermarks and signals, never published.
    signal: bool,
}

/// A source transaction partly in Kafka when the stream (re)started.
#[derive(Debug, Clone)]
struct ResumePartial {
    /// Its start, when resuming by position on the server that wrote it.
    at: Option<BinlogPosition>,
    /// Its GTID, when known.
    gtid: Option<String>,
    /// Rows of it already in Kafka.
    rows: u64,
}

/// How many leading rows of the transaction starting at `start` with `gtid` to skip on
/// resume: by GTID when both sides know it (the only way after a failover, where positions
/// differ), else by position.
fn rows_to_skip(resume: Option<&ResumePartial>, start: &BinlogPosition, gtid: Option<&str>) -> u64 {
    let Some(r) = resume else {
        return 0;
    };
    let same = match (r.gtid.as_deref(), gtid) {
        (Some(a), Some(b)) => a == b,
        _ => r.at.as_ref() == Some(start),
    };
    if same {
        r.rows
    } else {
        0
    }
}

struct State {
    file: String,
    /// Identity of the connected server, which checkpoints carry once the stream has moved
    /// past a transaction on it.
    server: Option<String>,
    /// A resume by GTID has not yet recorded the new server's schema-history epoch.
    epoch_pending: bool,
    /// MySQL: the executed GTID set, kept current for checkpoints (failover resume).
    mysql_gtids: Option<super::gtid::MysqlGtidSet>,
    tx: Option<Tx>,
    /// Everything before this position is in Kafka (or marked for it).
    committed: MysqlCheckpoint,
    gtids: std::collections::BTreeMap<u32, String>,
    /// Resume: rows of the transaction at this start already in Kafka.
    resume_partial: Option<ResumePartial>,
    mapped: HashMap<u64, Mapped>,
    catalog: Catalog,
    history: SchemaHistory,
    /// The signal table's definition as the server had it when the stream opened (used when
    /// the catalog has none: the table is outside the captured databases).
    signal_def: Option<TableDef>,
}

/// The MySQL/MariaDB change stream: binlog events from the checkpoint's position, decoded and
/// published; the checkpoint in Kafka is the position.
pub struct MyStream<'a> {
    ctx: StreamContext<'a>,
    st: State,
    stream: BinlogStream,
    sql: Conn,
    lock: &'a mut SourceLock,
    status: SourceStatus,
    buf: Vec<Datum<'static>>,
    last_lock_check: Instant,
    /// Commit time of the newest event read: "seconds behind" while events wait for Kafka.
    last_ts_us: i64,
    /// Ticks without an event or heartbeat: a half-open connection is noticed here.
    silence: Silence,
}

/// Silent ticks after which the binlog connection is taken as dead, at least: 15 s at the
/// pipeline's 1 s tick; three heartbeat periods when the heartbeat is longer than 5 s.
const DEAD_AFTER_TICKS: u32 = 15;

/// The silence counter of a binlog stream whose server sends a heartbeat every `heartbeat`
/// while idle (MariaDB and MySQL need no probe: the heartbeat is theirs).
fn binlog_silence(heartbeat: Duration) -> Silence {
    let beats = u32::try_from(heartbeat.as_secs().saturating_mul(3)).unwrap_or(u32::MAX - 1);
    let dead = DEAD_AFTER_TICKS.max(beats);
    Silence::new(dead - 1, dead)
}

impl<'a> MyStream<'a> {
    /// Requests the binlog from `start` (by position, or by GTID after a failover).
    pub async fn open(
        ctx: StreamContext<'a>,
        start: MysqlCheckpoint,
        catalog: Catalog,
        history: SchemaHistory,
        mut sql: Conn,
        lock: &'a mut SourceLock,
        status: &SourceStatus,
    ) -> Result<MyStream<'a>, SourceError> {
        let settings = ctx.settings;
        let by_gtid = !matches!(ctx.resume, Resume::Position);
        if !by_gtid {
            check_position_exists(&mut sql, &start, &settings.source.name).await?;
        }
        let stream = open_stream(
            settings,
            &start,
            &ctx.resume,
            ctx.server_identity.as_deref(),
            ctx.flavor,
        )
        .await?;
        let signal_def = match &ctx.signal {
            Some(s) => {
                super::schema::load_tables(&mut sql, settings, Some((&s.database, &s.table)))
                    .await?
                    .remove(&s.database, &s.table)
            }
            None => None,
        };
        let mysql_gtids = match &ctx.resume {
            Resume::MysqlGtid { set, .. } => Some(set.clone()),
            _ if ctx.flavor == Flavor::MySql => start
                .gtid_state
                .as_deref()
                .and_then(|t| super::gtid::MysqlGtidSet::parse(t).ok()),
            _ => None,
        };
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
        let st = State {
            file: start.file.clone(),
            server: ctx.server_identity.clone(),
            epoch_pending: by_gtid,
            tx: None,
            resume_partial: (start.partial_rows > 0).then(|| ResumePartial {
                at: (!by_gtid).then(|| BinlogPosition {
                    file: start.file.clone(),
                    pos: start.pos,
                }),
                gtid: start.partial_gtid.clone(),
                rows: start.partial_rows,
            }),
            // The start itself, partial transaction included, until the stream has moved
            // past something: a checkpoint written before the partial transaction is read
            // again (idle, shutdown) must not forget its rows already in Kafka.
            committed: MysqlCheckpoint {
                // Until a transaction on this server is done, the place to resume is still
                // the old server's (by GTID again).
                server: if by_gtid {
                    start.server.clone()
                } else {
                    ctx.server_identity.clone()
                },
                // MySQL: a GTID set the stream cannot keep current must not be resumed from.
                gtid_state: if ctx.flavor == Flavor::MySql && mysql_gtids.is_none() {
                    None
                } else {
                    start.gtid_state.clone()
                },
                ..start.clone()
            },
            mysql_gtids,
            gtids,
            mapped: HashMap::new(),
            catalog,
            history,
            signal_def,
        };
        Ok(MyStream {
            ctx,
            st,
            stream,
            sql,
            lock,
            status: status.clone(),
            buf: Vec::new(),
            last_lock_check: Instant::now(),
            last_ts_us: 0,
            silence: binlog_silence(settings.heartbeat),
        })
    }
}

impl ChangeStream for MyStream<'_> {
    type Position = MysqlCheckpoint;
    type Checkpoint = MyPosition;
    type Item = Event;

    const IDLE_CHECKPOINT: Option<Duration> = Some(IDLE_CHECKPOINT);

    async fn recv(&mut self) -> Result<Event, SourceError> {
        match self.stream.next().await {
            Some(event) => {
                let event = event.map_err(|e| stream_error(e, &self.st, &self.ctx))?;
                self.silence.heard();
                Ok(event)
            }
            None => Err(SourceError::transient(
                "server ended the binlog stream".into(),
            )),
        }
    }

    async fn handle<S: Sink<Position = MysqlCheckpoint>>(
        &mut self,
        event: Event,
        out: &mut Pipeline<S>,
        stop: &mut Shutdown,
    ) -> Result<(), SourceError> {
        let mut rows = recycle(std::mem::take(&mut self.buf));
        handle(
            &self.ctx,
            &event,
            &mut self.st,
            &mut self.sql,
            out,
            stop,
            &mut rows,
        )
        .await
        .map_err(|e| {
            let h = event.header();
            let start = u64::from(h.log_pos()).saturating_sub(u64::from(h.event_size()));
            at_position(e, &self.st.file, start)
        })?;
        self.buf = recycle(rows);
        // Heartbeats carry no time; an idle, fully acknowledged stream is not behind.
        let ts = event.header().timestamp();
        if ts > 0 {
            self.last_ts_us = i64::from(ts) * 1_000_000;
        }
        let behind = self.st.tx.is_some() || out.in_flight() > 0;
        self.status.set_lag(
            None,
            (behind && self.last_ts_us > 0).then_some(self.last_ts_us),
        );
        Ok(())
    }

    /// What the open Kafka transaction holds.
    fn checkpoint(&self) -> MyCheckpoint {
        let st = &self.st;
        let cp = match &st.tx {
            // Mid-transaction the checkpoint's file/pos is the transaction's start on the
            // connected server (resuming there on this server), while GTID state and server
            // stay those of the last finished one: a checkpoint after a failover names the new
            // server only once a transaction on it is done.
            Some(t) if t.rows > 0 && st.committed.server == st.server => MysqlCheckpoint {
                file: t.start.file.clone(),
                pos: t.start.pos,
                partial_rows: t.rows,
                partial_gtid: t.gtid.clone(),
                ..st.committed.clone()
            },
            // The first transaction after a GTID resume: file/pos stay the old server's (a
            // resume goes by GTID again), the transaction is found by its GTID.
            Some(t) if t.rows > 0 => MysqlCheckpoint {
                partial_rows: t.rows,
                partial_gtid: t.gtid.clone(),
                ..st.committed.clone()
            },
            _ => st.committed.clone(),
        };
        MyCheckpoint::at(&cp)
    }

    fn checkpoint_at(&self, acked: &MysqlCheckpoint) -> Option<MyCheckpoint> {
        Some(MyCheckpoint::at(acked))
    }

    /// The checkpoint is the position: nothing to tell the server.
    fn durable(&mut self, _position: MysqlCheckpoint) {}

    async fn report(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), SourceError> {
        // Neither an event nor a heartbeat for that long: the connection is half-open (see
        // crate::source::silence).
        if self.silence.tick() == Verdict::Dead {
            return Err(self.silence.dead_error("the server's binlog"));
        }
        if self.last_lock_check.elapsed() >= LOCK_CHECK {
            // Bounded: on a half-open connection the query would wait for ever and block the
            // silence check above (fault suite, docs/reliability.md).
            tokio::time::timeout(LOCK_CHECK_TIMEOUT, self.lock.check())
                .await
                .map_err(|_| {
                    SourceError::transient(format!(
                        "the source lock check got no answer in {} s: the connection looks dead \
                         (half-open); reconnecting",
                        LOCK_CHECK_TIMEOUT.as_secs()
                    ))
                })??;
            self.last_lock_check = Instant::now();
        }
        Ok(())
    }

    fn between_transactions(&self) -> bool {
        self.st.tx.is_none()
    }

    fn stopped(&self) {
        tracing::info!(file = %self.st.committed.file, pos = self.st.committed.pos, "stream stopped, position acknowledged");
    }

    async fn delete_outbox(&mut self, d: &crate::outbox::OutboxDeletes) -> Result<(), SourceError> {
        use mysql_async::prelude::Queryable;
        let quote = |s: &str| format!("`{}`", s.replace('`', "``"));
        for ids in d.ids.chunks(500) {
            let marks = vec!["?"; ids.len()].join(",");
            let sql = format!(
                "DELETE FROM {}.{} WHERE {} IN ({marks})",
                quote(&d.schema),
                quote(&d.table),
                quote(&d.id_column)
            );
            self.sql
                .exec_drop(sql, ids.to_vec())
                .await
                .map_err(|e| SourceError::transient(format!("delete captured outbox rows: {e}")))?;
        }
        Ok(())
    }

    async fn write_watermark(&mut self, watermark: &Watermark) -> Result<(), SourceError> {
        let Some(signal) = &self.ctx.signal else {
            return Err(SourceError::definite(
                "snapshot watermark without a signal table".into(),
            ));
        };
        chunk::write_watermark(&mut self.sql, signal, watermark).await
    }

    async fn table_exists(&mut self, table: &str) -> Result<bool, SourceError> {
        match table.split_once('.') {
            Some((db, t)) => chunk::table_exists(&mut self.sql, db, t).await,
            None => Ok(true),
        }
    }

    async fn read_chunk<S: Sink<Position = MysqlCheckpoint>>(
        &mut self,
        req: &ChunkRequest,
        out: &mut Pipeline<S>,
        stop: &mut Shutdown,
    ) -> Result<Chunk, SourceError> {
        chunk::read_chunk(
            &mut self.sql,
            self.ctx.settings,
            &self.ctx.types,
            self.ctx.signal.as_ref(),
            req,
            out,
            stop,
        )
        .await
    }
}

/// Refuses, with the way out, a resume position the server no longer has.
async fn check_position_exists(
    sql: &mut Conn,
    start: &MysqlCheckpoint,
    source: &str,
) -> Result<(), SourceError> {
    let files = super::setup::binlog_files(sql).await?;
    if !files.iter().any(|f| f == &start.file) {
        return Err(purged_error(
            &start.file,
            start.pos,
            source,
            "not in SHOW BINARY LOGS",
        ));
    }
    Ok(())
}

fn purged_error(file: &str, pos: u64, source: &str, detail: &str) -> SourceError {
    SourceError::definite(format!(
        "the binlog position {file}:{pos} where source `{source}` resumes is no longer on the \
         server ({detail}): the binlogs were purged (binlog_expire_logs_seconds, PURGE BINARY \
         LOGS) before the agent read them, so changes in between are lost to it; fix: set \
         on_missing_position = \"snapshot\" in the source's file to accept the gap and take a \
         new snapshot (or delete the source's checkpoint: produce a tombstone for key \
         `{source}` to the offsets topic, see docs/mysql-source.md, \"Starting over\"), and \
         keep binlogs longer than the agent may be down"
    ))
}

fn stream_error(e: mysql_async::Error, st: &State, ctx: &StreamContext<'_>) -> SourceError {
    let source = &ctx.settings.source.name;
    if let mysql_async::Error::Server(s) = &e {
        if s.code == ER_MASTER_FATAL_ERROR_READING_BINLOG {
            if let Some(state) = gtid_request(&ctx.resume) {
                let server = ctx.server_identity.as_deref().unwrap_or("?");
                let detail = format!("the server answers: {} (error {})", s.message, s.code);
                return gtid_missing_error(source, &state, server, &detail);
            }
            return purged_error(&st.committed.file, st.committed.pos, source, &s.message);
        }
    }
    my_error("binlog stream")(e)
}

/// The GTID state or set a GTID resume asks for, as text.
fn gtid_request(resume: &Resume) -> Option<String> {
    match resume {
        Resume::Position => None,
        Resume::MariadbGtid { state, .. } => Some(state.clone()),
        Resume::MysqlGtid { set, .. } => Some(set.to_string()),
    }
}

/// The server a source fails over to lacks transactions the checkpoint has seen (it is
/// behind, or purged them): nothing safe to resume from.
pub fn gtid_missing_error(source: &str, state: &str, server: &str, detail: &str) -> SourceError {
    SourceError::definite(format!(
        "source `{source}` resumes by GTID on server `{server}` (another server than the one \
         its checkpoint was taken on), but that server cannot send the binlog after GTID state \
         `{state}` ({detail}): it is behind the old server or has purged those transactions, \
         so changes would be lost or duplicated; fix: wait until the server has replicated \
         them (compare @@gtid_binlog_pos), point the source at a server that has them, or take \
         a new snapshot by deleting the source's checkpoint — produce a tombstone for key \
         `{source}` to the offsets topic (see docs/mysql-source.md, \"Starting over\")"
    ))
}

/// Opens the binlog connection at `start`.
async fn open_stream(
    settings: &MySourceSettings,
    start: &MysqlCheckpoint,
    resume: &Resume,
    server: Option<&str>,
    flavor: Flavor,
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
    let sids;
    let request = match resume {
        Resume::Position => BinlogStreamRequest::new(settings.server_id)
            .with_filename(start.file.as_bytes())
            .with_pos(start.pos),
        Resume::MariadbGtid { state, .. } => {
            // MariaDB ignores the file name and position when a connect state is set: it
            // finds the file holding the state, sends a ROTATE to it at position 4 and skips
            // every event group up to the state. Strict mode: a state the server's binlog does
            // not hold is an error (1236), not a silent jump.
            conn.exec_drop(
                "SET @slave_connect_state = ?, @slave_gtid_strict_mode = 1",
                (state.as_str(),),
            )
            .await
            .map_err(my_error("binlog GTID connect state"))?;
            BinlogStreamRequest::new(settings.server_id)
                .with_filename(b"")
                .with_pos(4u64)
        }
        Resume::MysqlGtid { set, .. } => {
            sids = set.to_sids();
            BinlogStreamRequest::new(settings.server_id)
                .with_gtid()
                .with_filename(b"")
                .with_pos(4u64)
                .with_gtid_set(sids.iter().cloned())
        }
    };
    // MariaDB sends ANNOTATE_ROWS events only to a reader that asks: dump flag 0x02 is its
    // BINLOG_SEND_ANNOTATE_ROWS_EVENT (mysql_common names the bit after MySQL's
    // BINLOG_THROUGH_POSITION). MySQL sends ROWS_QUERY events unasked.
    let request = if settings.include_query && flavor == Flavor::MariaDb {
        request.with_flags(BinlogDumpFlags::BINLOG_THROUGH_POSITION)
    } else {
        request
    };
    conn.get_binlog_stream(request).await.map_err(|e| {
        if let mysql_async::Error::Server(s) = &e {
            if s.code == ER_MASTER_FATAL_ERROR_READING_BINLOG {
                if let Some(state) = gtid_request(resume) {
                    let server = server.unwrap_or("?");
                    let detail = format!("the server answers: {} (error {})", s.message, s.code);
                    return gtid_missing_error(&settings.source.name, &state, server, &detail);
                }
                return purged_error(&start.file, start.pos, &settings.source.name, &s.message);
            }
        }
        my_error("request the binlog")(e)
    })
}

/// The file name of a ROTATE event. The server's first (artificial) rotate comes before the
/// format description, so the reader cannot know yet that a checksum follows the name: cut
/// after the digits of the `.NNNNNN` suffix every binlog file name ends with.
fn binlog_file_name(raw: &[u8]) -> String {
    let cut = raw
        .iter()
        .rposition(|&b| b == b'.')
        .map_or(raw.len(), |dot| {
            let digits = raw[dot + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 {
                dot + 1 + digits
            } else {
                raw.len()
            }
        });
    String::from_utf8_lossy(&raw[..cut]).into_owned()
}

/// The server's first (artificial) ROTATE comes before the format description, so
/// mysql_common cannot know yet that a CRC32 trails it and leaves those 4 bytes in the file
/// name — bytes that may well be a `.` or digits, so cutting after the `.NNNNNN` suffix alone
/// is not enough. They are recognised by being the CRC32 of the event before them (a false
/// match has a chance of 2^-32) and dropped.
fn strip_unsplit_checksum<'n>(event: &Event, name: &'n [u8]) -> &'n [u8] {
    if event.checksum().is_some() || name.len() < 4 {
        return name;
    }
    let body = event.data();
    let Some(unsplit) = body.len().checked_sub(4) else {
        return name;
    };
    let h = event.header();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h.timestamp().to_le_bytes());
    crc.update(&[h.event_type_raw()]);
    crc.update(&h.server_id().to_le_bytes());
    crc.update(&h.event_size().to_le_bytes());
    crc.update(&h.log_pos().to_le_bytes());
    crc.update(&h.flags_raw().to_le_bytes());
    crc.update(&body[..unsplit]);
    let stored = u32::from_le_bytes([
        body[unsplit],
        body[unsplit + 1],
        body[unsplit + 2],
        body[unsplit + 3],
    ]);
    if crc.finalize() == stored {
        &name[..name.len() - 4]
    } else {
        name
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn malformed(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::definite(format!(
        "{DECODE_ERROR}: malformed binlog event ({what}): {e}; {DECODE_FIX}"
    ))
}

/// How a binlog decode error starts: [`at_position`] finds it by this and adds where.
const DECODE_ERROR: &str = "binlog decode error";
/// What an operator does about bytes the decoder cannot read.
const DECODE_FIX: &str = "fix: this is a bug of the agent or a damaged binlog: report it with \
     this line; the server sends the same bytes after every restart, so the agent stops here \
     instead of retrying (to go on past it, take a new snapshot: docs/mysql-source.md)";

/// A decode error of the event at `file`:`pos`, with that position in its message.
fn at_position(e: SourceError, file: &str, pos: u64) -> SourceError {
    match e.detail().message().strip_prefix(DECODE_ERROR) {
        Some(rest) if e.kind() == crate::error::ErrorKind::Definite => {
            SourceError::definite(format!("{DECODE_ERROR} in the event at {file}:{pos}{rest}"))
        }
        _ => e,
    }
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
    let skip_until = rows_to_skip(st.resume_partial.as_ref(), &start, gtid.as_deref());
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
        order: TxOrder::default(),
        ts_us,
        thread,
        server_id,
        position,
        query: None,
    });
}

async fn end<S: Sink<Position = MysqlCheckpoint>>(
    st: &mut State,
    out: &mut Pipeline<S>,
    end_pos: u64,
) -> Result<(), SourceError> {
    let mut ended = st.tx.take();
    if let Some(t) = ended.as_mut() {
        match (t.domain, t.gtid.take()) {
            (Some(d), Some(g)) => {
                st.gtids.insert(d, g);
            }
            (None, Some(g)) => {
                if let Some(set) = &mut st.mysql_gtids {
                    set.add_text(&g);
                }
            }
            _ => {}
        }
    }
    st.resume_partial = None;
    st.committed.file.clone_from(&st.file);
    st.committed.pos = end_pos;
    st.committed.partial_rows = 0;
    st.committed.partial_gtid = None;
    st.committed.server.clone_from(&st.server);
    if !st.gtids.is_empty() {
        let state = st.gtids.values().cloned().collect::<Vec<_>>().join(",");
        st.committed.gtid_state = Some(state);
    } else if let Some(set) = &st.mysql_gtids {
        st.committed.gtid_state = Some(set.to_string());
    }
    out.mark(st.committed.clone(), ended.as_ref().map(|t| t.id.as_str()))
        .await
}

/// Maps a decoder failure; every one is definite. Damaged bytes (truncated, malformed, a
/// failed checksum) come back the same after a restart — the server reads them from its
/// binlog file again — so retrying would loop forever with the binlog growing behind; a server
/// setting or schema the agent cannot decode needs the operator too.
fn decode_error(e: DecodeError) -> SourceError {
    match e {
        // A value the decoder refuses (a binary JSON bomb among them) is damaged bytes too.
        DecodeError::Truncated { .. }
        | DecodeError::Malformed { .. }
        | DecodeError::Checksum { .. }
        | DecodeError::Value { .. } => {
            SourceError::definite(format!("{DECODE_ERROR}: {e}; {DECODE_FIX}"))
        }
        other => SourceError::definite(other.to_string()),
    }
}

/// Reuses a row buffer's allocation for datums of another lifetime (emptied first, so no
/// datum outlives the event it borrowed from; same layout, so the capacity is kept).
fn recycle<'a, 'b>(mut v: Vec<Datum<'a>>) -> Vec<Datum<'b>> {
    v.clear();
    v.into_iter().map(|_| Datum::Null).collect()
}

/// Applies a DDL statement to the catalog and records it in the schema history (through the
/// source's producer, so in exactly-once mode it commits with the events after it).
async fn apply_ddl<S: Sink<Position = MysqlCheckpoint>>(
    ctx: &StreamContext<'_>,
    st: &mut State,
    out: &mut Pipeline<S>,
    position: BinlogPosition,
    default_db: Option<&str>,
    statement: &str,
) -> Result<(), SourceError> {
    let settings = ctx.settings;
    let outcome = match ddl::apply(&mut st.catalog, default_db, statement) {
        Ok(o) => o,
        Err(e) => {
            let captured = match e.table() {
                Some((db, _)) => settings.captures(&db),
                None => match ddl::schema_targets(default_db, statement) {
                    None => false,
                    Some(dbs) if dbs.is_empty() => true,
                    Some(dbs) => dbs.iter().any(|d| settings.captures(d)),
                },
            };
            if captured {
                return Err(SourceError::definite(format!(
                    "{e} (at {position}); the agent cannot know the captured table's columns \
                     after it; fix: take a new snapshot (see docs/mysql-schema-history.md)"
                )));
            }
            tracing::debug!(error = %e, "ignoring a statement on tables that are not captured");
            return Ok(());
        }
    };
    let DdlOutcome::Changed { tables, dropped } = outcome else {
        return Ok(());
    };
    // Only captured databases belong to the history.
    for (d, t) in &tables {
        if !settings.captures(d) {
            st.catalog.remove(d, t);
        }
    }
    let tables: Vec<_> = tables
        .into_iter()
        .filter(|(d, _)| settings.captures(d))
        .collect();
    let dropped: Vec<_> = dropped
        .into_iter()
        .filter(|(d, _)| settings.captures(d))
        .collect();
    if tables.is_empty() && dropped.is_empty() {
        return Ok(());
    }
    // A table created (or renamed) here streams from its first row: recorded as captured,
    // a restart does not take it for a table added to the capture and snapshot it.
    if let Some(snapshots) = out.snapshots() {
        snapshots.set_captured(super::captured_tables(
            &st.catalog,
            settings,
            ctx.signal.as_ref(),
        ));
    }
    // Table maps of changed tables are rebuilt at their next use.
    st.mapped.retain(|_, m| {
        !tables
            .iter()
            .chain(&dropped)
            .any(|(d, t)| *m.schema.id.schema == **d && *m.schema.id.table == **t)
    });
    if st.history.contains(&position) {
        tracing::debug!(%position, "DDL already in the schema history (replayed)");
        return Ok(());
    }
    let outcome = DdlOutcome::Changed { tables, dropped };
    let gtid = st.tx.as_ref().and_then(|t| t.gtid.clone());
    let rec = st.history.record(
        position,
        gtid,
        Some(statement.to_owned()),
        default_db.map(str::to_owned),
        &st.catalog,
        &outcome,
        false,
    );
    let (key, value) = st.history.encode(&rec);
    out.send(OutRecord {
        topic: ctx.history_topic,
        key: Some(&key),
        value: Some(&value),
        headers: &[],
    })
    .await?;
    st.committed.history_seq = Some(rec.seq);
    tracing::info!(seq = rec.seq, position = %rec.position, statement = %statement.chars().take(200).collect::<String>(), "schema change recorded");
    Ok(())
}

/// The table's definition for a table map: the schema history's (or snapshot's), checked
/// against the map; when the map carries column names (`binlog_row_metadata = FULL`) and they
/// disagree, the map's own.
fn definition_for(st: &State, map: &TableMapInfo) -> Option<super::catalog::TableDef> {
    let from_map = types::table_def_from_map(&map.database, &map.table, map);
    match st.catalog.get(&map.database, &map.table) {
        Some(def) if def.columns.len() == map.columns.len() => {
            let names_agree = from_map.as_ref().is_none_or(|m| {
                m.columns
                    .iter()
                    .zip(&def.columns)
                    .all(|(a, b)| a.name.eq_ignore_ascii_case(&b.name))
            });
            if names_agree {
                return Some(def.clone());
            }
            from_map
        }
        _ => from_map,
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle<'e, S: Sink<Position = MysqlCheckpoint>>(
    ctx: &StreamContext<'_>,
    event: &'e Event,
    st: &mut State,
    _sql: &mut Conn,
    out: &mut Pipeline<S>,
    stop: &mut Shutdown,
    buf: &mut Vec<Datum<'e>>,
) -> Result<(), SourceError> {
    events::verify_checksum(event).map_err(decode_error)?;
    let h = event.header();
    let ty = h.event_type_raw();
    events::check_supported(ty).map_err(decode_error)?;
    let end_pos = u64::from(h.log_pos());
    let start_pos = end_pos.saturating_sub(u64::from(h.event_size()));
    let ts_us = i64::from(h.timestamp()) * 1_000_000;
    match ty {
        ROTATE => {
            if let Ok(Some(EventData::RotateEvent(r))) = event.read_data() {
                st.file = binlog_file_name(strip_unsplit_checksum(event, r.name_raw()));
                if st.epoch_pending {
                    // The first event of a GTID resume names the new server's file: its
                    // schema-history epoch starts there, with the definitions at the resume
                    // point (nothing before the state is sent, so nothing earlier is decoded).
                    st.epoch_pending = false;
                    let at = BinlogPosition {
                        file: st.file.clone(),
                        pos: r.position(),
                    };
                    let gtid = st.committed.gtid_state.clone();
                    super::send_history_snapshot(
                        &mut st.history,
                        out,
                        ctx.history_topic,
                        &at,
                        gtid,
                        &st.catalog,
                    )
                    .await?;
                    st.committed.history_seq = st.history.last_seq();
                    tracing::info!(file = %st.file, pos = r.position(), server = ?st.server, "resumed by GTID; schema history continues on this server");
                }
                if st.tx.is_none()
                    && !r.is_fake()
                    && st.committed.server == st.server
                    && st.committed.partial_rows == 0
                {
                    st.committed.file.clone_from(&st.file);
                    st.committed.pos = r.position();
                }
            }
        }
        MARIADB_GTID => {
            let g = MariadbGtidEvent::parse(event.data(), h.server_id()).map_err(decode_error)?;
            let start = BinlogPosition {
                file: st.file.clone(),
                pos: start_pos,
            };
            begin(
                st,
                start,
                Some(g.gtid.to_string()),
                Some(g.gtid.domain_id),
                g.standalone(),
                ts_us,
                None,
                h.server_id(),
            );
        }
        MYSQL_GTID => {
            let g = MysqlGtidEvent::parse(event.data()).map_err(decode_error)?;
            let start = BinlogPosition {
                file: st.file.clone(),
                pos: start_pos,
            };
            begin(
                st,
                start,
                Some(g.gtid()),
                None,
                false,
                ts_us,
                None,
                h.server_id(),
            );
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
                    let start = BinlogPosition {
                        file: st.file.clone(),
                        pos: start_pos,
                    };
                    begin(
                        st,
                        start,
                        None,
                        None,
                        false,
                        ts_us,
                        Some(i64::from(q.thread_id())),
                        h.server_id(),
                    );
                }
            } else if trimmed.eq_ignore_ascii_case("COMMIT")
                || trimmed.eq_ignore_ascii_case("ROLLBACK")
            {
                end(st, out, end_pos).await?;
            } else {
                let schema = q.schema();
                let default_db = (!schema.is_empty()).then_some(schema.as_ref());
                let position = BinlogPosition {
                    file: st.file.clone(),
                    pos: start_pos,
                };
                apply_ddl(ctx, st, out, position, default_db, trimmed).await?;
                if st.tx.as_ref().is_none_or(|t| t.standalone) {
                    end(st, out, end_pos).await?;
                }
            }
        }
        XID => end(st, out, end_pos).await?,
        MARIADB_ANNOTATE_ROWS | MYSQL_ROWS_QUERY if ctx.settings.include_query => {
            if let Some(tx) = st.tx.as_mut() {
                let text: Arc<str> = if ty == MARIADB_ANNOTATE_ROWS {
                    Arc::from(events::parse_annotate_rows(event.data()))
                } else {
                    match event.read_data() {
                        Ok(Some(EventData::RowsQueryEvent(q))) => Arc::from(q.query()),
                        _ => return Err(malformed("ROWS_QUERY", "unreadable")),
                    }
                };
                tx.query = Some(text);
            }
        }
        TABLE_MAP => {
            let map = TableMapInfo::parse(event.data(), ctx.flavor).map_err(decode_error)?;
            if ctx
                .signal
                .as_ref()
                .is_some_and(|s| s.is(&map.database, &map.table))
            {
                return map_signal_table(ctx, st, map);
            }
            if !ctx.settings.captures(&map.database) {
                st.mapped.remove(&map.table_id);
                return Ok(());
            }
            if let Some(m) = st.mapped.get(&map.table_id) {
                if m.map == map {
                    return Ok(());
                }
            }
            let Some(def) = definition_for(st, &map) else {
                return Err(SourceError::definite(format!(
                    "table {}.{} at {}:{start_pos}: the binlog has {} columns and the schema \
                     history knows no matching definition (and the table map carries no column \
                     names); fix: take a new snapshot (see docs/mysql-schema-history.md)",
                    map.database,
                    map.table,
                    st.file,
                    map.columns.len()
                )));
            };
            let layout = RowLayout::new(&def, &map, &ctx.types).map_err(decode_error)?;
            let schema = out
                .set_table(types::table_schema(&def, &ctx.types), stop)
                .await?;
            st.mapped.insert(
                map.table_id,
                Mapped {
                    map,
                    layout,
                    schema,
                    signal: false,
                },
            );
        }
        _ if RowsEventView::kind_of(ty).is_some() => {
            let view = RowsEventView::parse(ty, event.data()).map_err(decode_error)?;
            let Some(m) = st.mapped.get(&view.table_id) else {
                return Ok(());
            };
            let Some(tx) = st.tx.as_mut() else {
                return Err(SourceError::transient(
                    "row event outside a transaction; restarting the stream".into(),
                ));
            };
            let schema = &*m.schema;
            let mut pos = 0;
            let mut row_index = 0usize;
            while pos < view.rows.len() {
                buf.clear();
                let split = match view.kind {
                    RowsKind::Write => {
                        m.layout
                            .decode_row(view.rows, &mut pos, view.present_after, buf)
                            .map_err(decode_error)?;
                        0
                    }
                    RowsKind::Delete => {
                        m.layout
                            .decode_row(view.rows, &mut pos, view.present_before, buf)
                            .map_err(decode_error)?;
                        buf.len()
                    }
                    RowsKind::Update => {
                        m.layout
                            .decode_row(view.rows, &mut pos, view.present_before, buf)
                            .map_err(decode_error)?;
                        let split = buf.len();
                        m.layout
                            .decode_row(view.rows, &mut pos, view.present_after, buf)
                            .map_err(decode_error)?;
                        split
                    }
                };
                row_index += 1;
                tx.rows += 1;
                if tx.rows <= tx.skip_until {
                    continue;
                }
                let (before, after) = buf.split_at(split);
                let row = row_index - 1;
                if m.signal {
                    if view.kind == RowsKind::Write {
                        signal_row(ctx, out, schema, tx, after).await?;
                    }
                    continue;
                }
                match view.kind {
                    RowsKind::Write => {
                        emit(
                            ctx,
                            out,
                            schema,
                            tx,
                            Op::Create,
                            None,
                            Some(after),
                            ts_us,
                            row,
                        )
                        .await?
                    }
                    RowsKind::Delete => {
                        emit(
                            ctx,
                            out,
                            schema,
                            tx,
                            Op::Delete,
                            Some(before),
                            None,
                            ts_us,
                            row,
                        )
                        .await?
                    }
                    RowsKind::Update => {
                        let key_changed = schema.key.iter().any(|&k| before.get(k) != after.get(k));
                        if key_changed {
                            // Debezium's contract for a primary-key change: delete (and
                            // tombstone) on the old key, create on the new one.
                            emit(
                                ctx,
                                out,
                                schema,
                                tx,
                                Op::Delete,
                                Some(before),
                                None,
                                ts_us,
                                row,
                            )
                            .await?;
                            emit(
                                ctx,
                                out,
                                schema,
                                tx,
                                Op::Create,
                                None,
                                Some(after),
                                ts_us,
                                row,
                            )
                            .await?;
                        } else {
                            emit(
                                ctx,
                                out,
                                schema,
                                tx,
                                Op::Update,
                                Some(before),
                                Some(after),
                                ts_us,
                                row,
                            )
                            .await?;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A table map of the signal table: mapped to decode its rows, never published (no table
/// schema is set on the pipeline, so no topic or subject exists for it).
fn map_signal_table(
    ctx: &StreamContext<'_>,
    st: &mut State,
    map: TableMapInfo,
) -> Result<(), SourceError> {
    if st.mapped.get(&map.table_id).is_some_and(|m| m.map == map) {
        return Ok(());
    }
    let width = map.columns.len();
    let def = match st.catalog.get(&map.database, &map.table) {
        Some(d) if d.columns.len() == width => Some(d.clone()),
        _ => st.signal_def.clone().filter(|d| d.columns.len() == width),
    }
    .or_else(|| types::table_def_from_map(&map.database, &map.table, &map));
    let Some(def) = def else {
        return Err(SourceError::definite(format!(
            "snapshot signal table {}.{}: the binlog has {width} columns and the agent knows \
             no matching definition; fix: give it Debezium's shape (id VARCHAR(64) PRIMARY \
             KEY, type VARCHAR(32) NOT NULL, data TEXT)",
            map.database, map.table
        )));
    };
    let layout = RowLayout::new(&def, &map, &ctx.types).map_err(decode_error)?;
    let schema = Arc::new(types::table_schema(&def, &ctx.types));
    st.mapped.insert(
        map.table_id,
        Mapped {
            map,
            layout,
            schema,
            signal: true,
        },
    );
    Ok(())
}

/// A row inserted into the signal table: a watermark (the high one of the open window emits
/// the chunk's remaining rows here, consistent with the stream at this transaction) or a
/// signal. Rows a committed Kafka transaction already holds never get here (the caller
/// skips them like any row), so a signal is not acted on twice after a restart.
async fn signal_row<S: Sink<Position = MysqlCheckpoint>>(
    ctx: &StreamContext<'_>,
    out: &mut Pipeline<S>,
    schema: &TableSchema,
    tx: &Tx,
    row: &[Datum<'_>],
) -> Result<(), SourceError> {
    let column = |name: &str| -> Vec<u8> {
        let value = schema
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .and_then(|i| row.get(i));
        match value {
            Some(Datum::Str(s)) => s.as_bytes().to_vec(),
            Some(Datum::Bytes(b)) => b.to_vec(),
            _ => Vec::new(),
        }
    };
    let (kind, data) = (column("type"), column("data"));
    if kind != WATERMARK_PREFIX.as_bytes() {
        let kind = String::from_utf8_lossy(&kind);
        tracing::info!(kind = %kind, position = %tx.position, "snapshot signal received");
        out.snapshot_signal(&kind, &data);
        return Ok(());
    }
    let Some(table) = out.snapshot_watermark(&data) else {
        return Ok(());
    };
    let block = SourceBlock::Mysql(MysqlSource {
        name: &ctx.settings.source.topic_prefix,
        ts_us: tx.ts_us,
        snapshot: "true",
        db: &table.id.schema,
        table: &table.id.table,
        server_id: i64::from(tx.server_id),
        gtid: None,
        file: &tx.start.file,
        pos: tx.start.pos as i64,
        row: 0,
        thread: None,
        query: None,
    });
    out.emit_window(
        block,
        EventMeta {
            position: &tx.position,
            txid: Some(&tx.id),
            commit_ms: tx.ts_us.div_euclid(1000),
        },
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn emit<S: Sink>(
    ctx: &StreamContext<'_>,
    out: &mut Pipeline<S>,
    table: &TableSchema,
    tx: &mut Tx,
    op: Op,
    before: Option<&[Datum<'_>]>,
    after: Option<&[Datum<'_>]>,
    ts_us: i64,
    row: usize,
) -> Result<(), SourceError> {
    let (total_order, per) = tx.order.next(&table.id);
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
            query: tx.query.as_deref(),
        }),
        processed_us: now_us(),
        transaction: Some(TransactionInfo {
            id: tx.id.as_str().into(),
            total_order,
            data_collection_order: per,
        }),
    };
    out.publish(
        &ev,
        EventMeta {
            position: &tx.position,
            txid: Some(&tx.id),
            commit_ms: ts.div_euclid(1000),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_binlog_bytes_are_a_definite_decode_error_naming_the_event_position() {
        for e in [
            DecodeError::Truncated {
                what: "rows",
                at: 12,
            },
            DecodeError::Malformed {
                what: "table map",
                reason: "bad column count",
            },
            DecodeError::Checksum {
                event_type: 30,
                stored: 1,
                computed: 2,
            },
            DecodeError::Value {
                table: "shop.docs".into(),
                column: "body".into(),
                reason: "binary JSON: document refers to the same values again and again".into(),
            },
        ] {
            let err = at_position(decode_error(e.clone()), "mariadb-bin.000007", 4242);
            assert_eq!(err.kind(), crate::error::ErrorKind::Definite, "{e}");
            let text = err.to_string();
            assert!(
                text.starts_with("binlog decode error in the event at mariadb-bin.000007:4242: "),
                "{text}"
            );
            assert!(text.contains(&e.to_string()), "{text}");
            assert!(text.contains("fix:"), "{text}");
        }
        let err = at_position(malformed("QUERY", "unreadable"), "b.000001", 4);
        assert_eq!(err.kind(), crate::error::ErrorKind::Definite);
        assert!(err.to_string().contains("at b.000001:4"), "{err}");
        // Other errors pass through unchanged.
        let other = at_position(SourceError::transient("lost connection".into()), "b", 4);
        assert!(other.is_transient());
        assert_eq!(other.to_string(), "lost connection");
    }

    #[test]
    fn a_partial_transaction_is_recognised_by_gtid_else_by_position() {
        let at = |f: &str, p| BinlogPosition {
            file: f.into(),
            pos: p,
        };
        let same_server = ResumePartial {
            at: Some(at("a-bin.000003", 900)),
            gtid: Some("0-1-42".into()),
            rows: 7,
        };
        assert_eq!(
            rows_to_skip(Some(&same_server), &at("a-bin.000003", 900), Some("0-1-42")),
            7
        );
        assert_eq!(
            rows_to_skip(
                Some(&same_server),
                &at("a-bin.000003", 1200),
                Some("0-1-43")
            ),
            0
        );
        // After a failover the same transaction starts elsewhere: its GTID decides.
        let failover = ResumePartial {
            at: None,
            ..same_server.clone()
        };
        assert_eq!(
            rows_to_skip(Some(&failover), &at("b-bin.000001", 4711), Some("0-1-42")),
            7
        );
        assert_eq!(
            rows_to_skip(Some(&failover), &at("b-bin.000001", 4711), Some("1-1-42")),
            0
        );
        assert_eq!(
            rows_to_skip(Some(&failover), &at("b-bin.000001", 4711), None),
            0
        );
        // A checkpoint from before GTIDs were recorded: by position only.
        let old = ResumePartial {
            gtid: None,
            ..same_server
        };
        assert_eq!(
            rows_to_skip(Some(&old), &at("a-bin.000003", 900), Some("0-1-42")),
            7
        );
        assert_eq!(
            rows_to_skip(None, &at("a-bin.000003", 900), Some("0-1-42")),
            0
        );
    }

    #[test]
    fn a_rotate_name_followed_by_checksum_bytes_is_cut_after_its_number() {
        assert_eq!(
            binlog_file_name(b"mariadb-bin.000004~\x01\xff\x07"),
            "mariadb-bin.000004"
        );
        assert_eq!(
            binlog_file_name(b"mariadb-bin.000004"),
            "mariadb-bin.000004"
        );
        assert_eq!(binlog_file_name(b"weird"), "weird");
    }
}
