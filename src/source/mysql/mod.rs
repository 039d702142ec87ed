//! MySQL/MariaDB source: row-based binlog replication.
//!
//! ```text
//!             ┌─────────────── setup.rs ───────────────┐
//!  SQL conn ─▶│ log_bin, binlog_format, row image,     │
//!             │ privileges, server_id                  │
//!             └──────────────────┬─────────────────────┘
//!                                ▼
//!  lock conn ─▶ lock.rs: GET_LOCK('cdc-agent:<source>', 0), held while running
//!                                │   (only then: init the Kafka transactional id)
//!                                ▼
//!  checkpoint (Kafka offsets topic) ── none / snapshot unfinished?
//!                                │
//!                                ▼
//!                  snapshot.rs: N connections, START TRANSACTION WITH CONSISTENT SNAPSHOT,
//!                                │  one shared binlog_snapshot_file/position (+ BINLOG_GTID_POS)
//!                                │  rows → op "r" events → Publisher → Kafka;
//!                                │  checkpoint {snapshot_done, file, pos} after Kafka has them
//!                                ▼
//!                  stream.rs: COM_BINLOG_DUMP from the checkpoint's file/pos
//!                                │  GTID … rows … XID → events (c/u/d), schema.rs catalog
//!                                │  → Publisher (Avro, registry, table topic + ledger)
//!                                ▼
//!                  checkpoint ◀── only positions whose events Kafka acknowledged
//!                                 (exactly-once: inside the same Kafka transaction)
//! ```
//!
//! The server keeps no position for a binlog reader, so the checkpoint in Kafka *is* the
//! position. This file wires the stages and decides between *definite* errors (stop and tell
//! the operator) and *transient* ones (retry from the checkpoint with backoff).

pub use cdc_codec::mysql::catalog;
pub use cdc_codec::mysql::ddl;
pub mod chunk;
pub mod events;
pub mod gtid;
pub mod history;
pub mod lock;
pub mod position;
pub mod schema;
pub mod setup;
pub mod signal;
pub mod snapshot;
pub mod stream;
pub mod types;

pub use signal::send_signal;

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::source::Dependency;
pub use crate::source::SourceError;

use crate::checkpoint::{Checkpoint, KeyValue, SnapshotKind, SnapshotState, TableProgress};
use crate::config::{
    MainConfig, OnMissingPosition, SchemaHistoryRecovery, SnapshotMode, SourceConfig,
};
use crate::ops::status::SourceState;
use crate::pipeline::snapshot::joined_tables;
use crate::pipeline::{Pipeline, Snapshots};
use crate::sink::{OutRecord, Sink};
use crate::source::supervise::{Attempt, Source};
use crate::topics;
use catalog::{BinlogPosition, Catalog};
use chunk::SignalTable;
use events::Flavor;
use history::SchemaHistory;
use position::{MyCheckpoint, MysqlCheckpoint};
use types::TypeOptions;

/// Default heartbeat period asked of the server while the binlog is idle.
pub const DEFAULT_HEARTBEAT_MS: u64 = 5000;
/// MariaDB/MySQL error: the binlog position asked for is not (or no longer) on the server.
pub const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;

/// Session settings of every SQL connection: values in UTC and UTF-8.
pub const SESSION_SETTINGS: &str = "SET time_zone = '+00:00', NAMES utf8mb4";

/// Everything a MySQL source needs, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct MySourceSettings {
    /// The source's configuration.
    pub source: SourceConfig,
    /// The main configuration.
    pub main: MainConfig,
    /// Server id the agent registers with as a replica.
    pub server_id: u32,
    /// Databases captured; empty = every non-system database.
    pub databases: Vec<String>,
    /// Snapshot reader connections.
    pub snapshot_parallelism: usize,
    /// Heartbeat period asked of the server.
    pub heartbeat: Duration,
    /// Fill `source.query` from the statement events (`[mysql] include_query`).
    pub include_query: bool,
    /// `[tables]`: the tables of the captured databases that are captured.
    pub selection: std::sync::Arc<crate::select::Selection>,
}

/// Databases never captured.
pub const SYSTEM_DATABASES: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

impl MySourceSettings {
    /// Resolves defaults from the source configuration.
    pub fn new(source: SourceConfig, main: MainConfig) -> Self {
        let my = source.mysql.clone().unwrap_or_default();
        let server_id = my
            .server_id
            .unwrap_or_else(|| default_server_id(&source.name));
        let mut databases = my.databases.clone();
        if databases.is_empty() {
            if let Some(db) = &source.database {
                databases.push(db.clone());
            }
        }
        Self {
            server_id,
            databases,
            snapshot_parallelism: my
                .snapshot_parallelism
                .unwrap_or(snapshot::DEFAULT_PARALLELISM)
                .max(1),
            heartbeat: Duration::from_millis(
                my.heartbeat_ms.unwrap_or(DEFAULT_HEARTBEAT_MS).max(100),
            ),
            include_query: my.include_query,
            selection: std::sync::Arc::new(crate::select::Selection::of(&source)),
            source,
            main,
        }
    }

    /// Connection options of the SQL and binlog connections: host, credentials and TLS
    /// (`[mysql] ssl_mode`, `ssl_ca`; see docs/security.md).
    pub fn opts(&self) -> Result<mysql_async::OptsBuilder, SourceError> {
        let b = crate::net::mysql::mysql_opts_builder(&self.source).map_err(|e| {
            SourceError::definite(format!("{}: {e}", self.source.file.display()))
                .concerning(Dependency::Configuration)
        })?;
        Ok(b.conn_ttl(None::<Duration>).wait_timeout(Some(28800)))
    }

    /// Whether `db` is captured.
    pub fn captures(&self, db: &str) -> bool {
        if self.databases.is_empty() {
            !SYSTEM_DATABASES.contains(&db.to_ascii_lowercase().as_str())
        } else {
            self.databases.iter().any(|d| d == db)
        }
    }
}

/// A server id derived from the source name (FNV-1a), in a range replicas rarely use.
fn default_server_id(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    1_000_000_000 + h % 1_000_000_000
}

/// Maps a mysql_async error in the context of `what`: lost connections are transient, errors
/// the server reports (access denied, unknown database, …) are definite.
pub fn my_error(what: &'static str) -> impl Fn(mysql_async::Error) -> SourceError {
    move |e| {
        let text = format!("{what}: {}", error_text(&e));
        let error = match &e {
            mysql_async::Error::Server(s) if is_transient_code(s.code) => {
                SourceError::transient(text)
            }
            mysql_async::Error::Server(_) => SourceError::definite(text),
            mysql_async::Error::Url(_) => SourceError::definite(text),
            _ => SourceError::transient(text),
        };
        error.caused_by(e)
    }
}

/// Server errors that mean "going away or busy", not "you did something wrong".
fn is_transient_code(code: u16) -> bool {
    // 1040 too many connections, 1053 shutdown in progress, 1205 lock wait timeout,
    // 1213 deadlock, 1927 connection killed, 2006/2013 gone away / lost.
    matches!(code, 1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013)
}

fn error_text(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => {
            format!("{} (error {}, SQLSTATE {})", s.message, s.code, s.state)
        }
        other => other.to_string(),
    }
}

/// Connects a SQL session in UTC and UTF-8.
pub async fn connect_sql(settings: &MySourceSettings) -> Result<mysql_async::Conn, SourceError> {
    let mode = crate::net::mysql::ssl_mode(&settings.source);
    let mut conn = crate::net::mysql::connect(settings.opts()?, mode)
        .await
        .map_err(|e| {
            let text = e.to_string();
            if crate::net::tls::is_certificate_failure(&text) {
                let target = format!("{}:{}", settings.source.host, settings.source.port());
                SourceError::definite(crate::net::mysql::tls_failure(mode, &target, &text))
            } else {
                my_error("connect to MySQL")(e)
            }
        })?;
    conn.query_drop(SESSION_SETTINGS)
        .await
        .map_err(my_error("session settings"))?;
    Ok(conn)
}

impl Source for MySourceSettings {
    async fn attempt(&self, run: Attempt<'_>) -> Result<(), SourceError> {
        let (registry, status, stop) = (run.registry, run.status, run.stop);
        let (settings, src) = (self, &self.source);
        let mut sql = connect_sql(settings).await?;
        let server = setup::check_prerequisites(&mut sql, settings).await?;

        if settings.include_query {
            if let Some(finding) = setup::check_statement_events(&mut sql, server.mariadb).await? {
                tracing::warn!(
                    source = %src.name,
                    "include_query = true, but the server writes no statements into the binlog, so \
                     source.query stays null for changes made while it is off: {finding}"
                );
            }
        }

        // Ownership first: only the agent holding the lock may register the transactional id
        // (which fences every other producer of this source), so a resumed zombie can never fence
        // the agent that took over from it.
        let mut lock = lock::SourceLock::acquire(settings).await?;

        let mut pipeline = Pipeline::connect(
            src,
            &settings.main,
            crate::encode::avro::ConnectorKind::Mysql,
            registry.clone(),
            status,
        )
        .await?;
        pipeline.init_transactions().await?;

        // Before the start position is taken: a table created later would be a schema change
        // the stream has to read.
        let signal = chunk::ensure_signal_table(&mut sql, settings).await?;

        // Every checkpoint with a binlog position is a place to stream from: one whose initial
        // snapshot is unfinished says which chunks remain (earlier versions wrote checkpoints
        // only once their one-shot snapshot was done).
        let mut saved_cp: Option<MyCheckpoint> =
            pipeline.load_checkpoint(&settings.main.kafka).await?;
        let mut saved = saved_cp.as_ref().and_then(|c| c.source.binlog.clone());
        let resume = match &saved {
            Some(cp) => resume_mode(settings, &mut sql, &server, cp).await?,
            None => stream::Resume::Position,
        };
        if let Some(cp) = &saved {
            if matches!(resume, stream::Resume::Position)
                && src.on_missing_position == OnMissingPosition::Snapshot
                && !setup::binlog_files(&mut sql).await?.contains(&cp.file)
            {
                // The operator's decision, taken in advance: a purged position is given up
                // for a new one with a new snapshot. Without it the stream stops at the
                // position with the fix (stream::purged_error).
                tracing::warn!(
                    source = %src.name,
                    file = %cp.file,
                    pos = cp.pos,
                    "position lost: the binlog at the checkpoint was purged; on_missing_position = \"snapshot\" (operator decision): accepting a gap, the changes between the checkpoint and the new position are not captured; starting over with a new snapshot"
                );
                saved = None;
                saved_cp = None;
            }
        }
        let by_gtid = !matches!(resume, stream::Resume::Position);

        let history_topic = topics::schema_history_topic(&src.topic_prefix);
        pipeline
            .ensure_topic(&history_topic, history::HISTORY_TOPIC_CONFIGS)
            .await?;
        let kafka = settings.main.kafka.clone();
        let (topic, name) = (history_topic.clone(), src.name.clone());
        let mut history =
            tokio::task::spawn_blocking(move || SchemaHistory::load(&kafka, &topic, &name))
                .await
                .map_err(|e| SourceError::transient(format!("schema history load task: {e}")))??;
        history.set_server(server.identity.clone());
        if saved_cp.is_none()
            && pipeline.offsets_topic_was_missing()
            && !history.records().is_empty()
        {
            // The offsets topic is created before the first history record is written, so a
            // history without it means the topic (and the binlog position in it) was deleted,
            // or topic_prefix changed: a fresh start would begin at a new position.
            let offsets = pipeline.offsets_topic().to_string();
            match src.on_missing_position {
                OnMissingPosition::Stop => {
                    return Err(SourceError::definite(format!(
                        "source `{name}` has a schema history in `{history_topic}` but its \
                         offsets topic `{offsets}` does not exist: it was deleted (or \
                         topic_prefix changed), and the binlog position with it; going on would \
                         start at a new position and leave a gap; fix: restore the topic (or \
                         the old topic_prefix), or set on_missing_position = \"snapshot\" in \
                         {file} to accept the gap and snapshot again (see docs/operations.md, \
                         \"Deleted topics\")",
                        name = src.name,
                        file = src.file.display(),
                    )))
                }
                OnMissingPosition::Snapshot => tracing::warn!(
                    source = %src.name,
                    offsets_topic = %offsets,
                    "position lost: the offsets topic with the checkpoint was deleted; on_missing_position = \"snapshot\" (operator decision): accepting a gap, the changes between the checkpoint and the new position are not captured; starting over with a new snapshot"
                ),
            }
        }
        // Before anything is written to the history (see above).
        pipeline.ensure_offsets_topic().await?;
        let types = TypeOptions::default();

        let mode = src.snapshot.mode;
        let (start, catalog, snapshots) = match saved {
            Some(mut cp) => {
                let at = BinlogPosition {
                    file: cp.file.clone(),
                    pos: cp.pos,
                };
                let verified = history
                    .verify(cp.history_seq, &history_topic)
                    .and_then(|()| match &server.identity {
                        // A failover: the checkpoint's epoch is the old server's, by design.
                        Some(_) if by_gtid => Ok(()),
                        Some(id) => history.verify_server(id, cp.history_seq, &history_topic),
                        None => Ok(()),
                    });
                let catalog = match verified {
                    Ok(())
                        if by_gtid
                            && (cp.history_seq.is_some() || history.last_seq().is_some()) =>
                    {
                        // The definitions at the resume point are the old server's at the
                        // checkpoint's position; the stream starts the new server's epoch with
                        // them once it knows its first position there.
                        history.set_server(cp.server.clone());
                        let catalog = history.catalog_at(&at);
                        history.set_server(server.identity.clone());
                        catalog
                    }
                    Ok(()) if cp.history_seq.is_some() || history.last_seq().is_some() => {
                        history.catalog_at(&at)
                    }
                    _ if by_gtid => {
                        // Rebuilding needs the binlog at the checkpoint's position, which is on
                        // the old server.
                        return Err(SourceError::definite(format!(
                            "source `{}` resumes on another server by GTID, but the schema history \
                             topic `{history_topic}` is missing or damaged and can only be rebuilt \
                             on the server the checkpoint was taken on; fix: point the source at \
                             that server once, or take a new snapshot (see docs/mysql-source.md, \
                             \"Starting over\")",
                            src.name
                        )));
                    }
                    Ok(()) => {
                        // A checkpoint from before the history existed: nothing to verify against.
                        rebuild_history(
                            settings,
                            &mut sql,
                            &mut history,
                            &mut pipeline,
                            &history_topic,
                            &at,
                            &cp,
                            &server,
                        )
                        .await?
                    }
                    Err(e) => {
                        let recovery = src
                            .mysql
                            .as_ref()
                            .map(|m| m.schema_history_recovery)
                            .unwrap_or_default();
                        if recovery != SchemaHistoryRecovery::Rebuild {
                            return Err(SourceError::definite(format!(
                                "source `{}`: {e}",
                                src.name
                            )));
                        }
                        tracing::warn!(source = %src.name, error = %e, "schema history damaged; rebuilding it from information_schema");
                        history = SchemaHistory::empty(&src.name);
                        history.set_server(server.identity.clone());
                        if let Some(seq) = cp.history_seq {
                            history.continue_after(seq);
                        }
                        rebuild_history(
                            settings,
                            &mut sql,
                            &mut history,
                            &mut pipeline,
                            &history_topic,
                            &at,
                            &cp,
                            &server,
                        )
                        .await?
                    }
                };
                cp.history_seq = history.last_seq();
                let tables = captured_tables(&catalog, settings, signal.as_ref());
                let snapshots = plan_snapshots(settings, tables, None, saved_cp.as_ref());
                (cp, catalog, snapshots)
            }
            None if mode == SnapshotMode::Never => {
                let pos = setup::current_position(&mut sql).await?;
                let catalog = schema::load_catalog(&mut sql, settings).await?;
                let gtid_state = setup::gtid_state_at(&mut sql, &pos).await.ok().flatten();
                send_history_snapshot(
                    &mut history,
                    &mut pipeline,
                    &history_topic,
                    &pos,
                    gtid_state.clone(),
                    &catalog,
                )
                .await?;
                let cp = MysqlCheckpoint {
                    file: pos.file,
                    pos: pos.pos,
                    gtid_state,
                    partial_rows: 0,
                    partial_gtid: None,
                    history_seq: history.last_seq(),
                    server: server.identity.clone(),
                };
                let tables = captured_tables(&catalog, settings, signal.as_ref());
                let snapshots = plan_snapshots(settings, tables, None, None);
                pipeline
                    .write_checkpoint(&with_snapshots(&cp, &snapshots))
                    .await?;
                pipeline.drain().await?;
                (cp, catalog, snapshots)
            }
            None => {
                // A new source streams from the current position; the initial snapshot runs
                // in chunks while it does, up to each table's greatest key there.
                let taken = snapshot::start(settings, server.mariadb, signal.as_ref()).await?;
                send_history_snapshot(
                    &mut history,
                    &mut pipeline,
                    &history_topic,
                    &taken.position,
                    taken.gtid_state.clone(),
                    &taken.catalog,
                )
                .await?;
                let cp = MysqlCheckpoint {
                    file: taken.position.file.clone(),
                    pos: taken.position.pos,
                    gtid_state: taken.gtid_state.clone(),
                    partial_rows: 0,
                    partial_gtid: None,
                    history_seq: history.last_seq(),
                    server: server.identity.clone(),
                };
                let tables = captured_tables(&taken.catalog, settings, signal.as_ref());
                let snapshots = plan_snapshots(settings, tables, Some(&taken.bounds), None);
                pipeline
                    .write_checkpoint(&with_snapshots(&cp, &snapshots))
                    .await?;
                pipeline.drain().await?;
                tracing::info!(source = %src.name, position = %taken.position, gtid = ?taken.gtid_state, "start position taken");
                (cp, taken.catalog, snapshots)
            }
        };
        if signal.is_some() {
            pipeline.set_snapshots(snapshots);
        }
        status.set_state(SourceState::Streaming);
        tracing::info!(source = %src.name, file = %start.file, pos = start.pos, "streaming");
        let mut stream = stream::MyStream::open(
            stream::StreamContext {
                settings,
                server_identity: server.identity.clone(),
                resume,
                flavor: Flavor::from_server_version(&server.version),
                history_topic: &history_topic,
                types,
                signal,
            },
            start,
            catalog,
            history,
            sql,
            &mut lock,
            status,
        )
        .await?;
        pipeline.stream(&mut stream, stop).await
    }
}

/// The captured tables of `catalog` as snapshots name them (`db.table`), the signal table
/// left out.
pub fn captured_tables(
    catalog: &Catalog,
    settings: &MySourceSettings,
    signal: Option<&SignalTable>,
) -> Vec<String> {
    catalog
        .tables
        .keys()
        .filter(|(d, t)| {
            settings.captures(d)
                && settings.selection.captures(d, t)
                && !signal.is_some_and(|s| s.is(d, t))
        })
        .map(|(d, t)| format!("{d}.{t}"))
        .collect()
}

/// The checkpoint at `cp` with the snapshot part `snapshots` starts from (the driver keeps
/// it current from there on).
fn with_snapshots(cp: &MysqlCheckpoint, snapshots: &Snapshots) -> MyCheckpoint {
    Checkpoint {
        snapshot_done: snapshots.initial_done(),
        snapshot: snapshots.state().clone(),
        transaction: None,
        ..MyCheckpoint::at(cp)
    }
}

/// What remains to snapshot: a new source snapshots every captured table up to its greatest
/// key at the start position (`bounds`; an empty table needs nothing); a resumed snapshot goes
/// on after its last committed chunk; a table captured since the last run (a database added
/// to the capture) is snapshotted alone. Tables created while the stream runs are not: the
/// stream records them as captured (their every row streams).
fn plan_snapshots(
    settings: &MySourceSettings,
    tables: Vec<String>,
    bounds: Option<&std::collections::BTreeMap<String, Option<Vec<KeyValue>>>>,
    saved: Option<&MyCheckpoint>,
) -> Snapshots {
    let mode = settings.source.snapshot.mode;
    let (state, mut initial_done) = match saved {
        Some(c) => (c.snapshot.clone(), c.snapshot_done),
        None => (SnapshotState::default(), false),
    };
    if mode == SnapshotMode::Never {
        initial_done = true;
    }
    let captured = state.captured.clone();
    let resumed = !state.tables.is_empty();
    let mut queue = Vec::new();
    if !initial_done && !resumed {
        for t in &tables {
            let until = match bounds.map(|b| b.get(t)) {
                // Empty at the start position: every row it gets streams.
                Some(Some(None)) => continue,
                Some(Some(Some(max))) => Some(max.clone()),
                _ => None,
            };
            queue.push(TableProgress {
                until,
                ..TableProgress::new(t.clone(), SnapshotKind::Initial, None)
            });
        }
        if queue.is_empty() {
            initial_done = true;
        }
    } else if mode != SnapshotMode::Never {
        if let Some(known) = &captured {
            queue.extend(joined_tables(&tables, known, initial_done));
        }
    }
    let mut snapshots = Snapshots::new(
        &settings.source.name,
        state,
        initial_done,
        settings.source.snapshot.chunk_size,
    );
    snapshots.log_resuming();
    snapshots.add(queue);
    snapshots.set_captured(tables);
    // initial_only: a new source stops once its snapshot is done, even an empty one.
    snapshots.stop_when_done =
        mode == SnapshotMode::InitialOnly && (saved.is_none() || !snapshots.initial_done());
    snapshots
}

/// How the stream resumes from checkpoint `cp` on the connected server: by file/position on
/// the server that wrote the checkpoint (exact, and what the crash tests cover); by GTID on
/// another one (a failover to a replica or a promoted server, whose binlog files differ).
async fn resume_mode(
    settings: &MySourceSettings,
    sql: &mut mysql_async::Conn,
    server: &setup::ServerInfo,
    cp: &MysqlCheckpoint,
) -> Result<stream::Resume, SourceError> {
    let name = &settings.source.name;
    let (Some(was), Some(now)) = (cp.server.as_deref(), server.identity.as_deref()) else {
        return Ok(stream::Resume::Position);
    };
    if was == now {
        return Ok(stream::Resume::Position);
    }
    let state = cp.gtid_state.as_deref().unwrap_or("").trim();
    let no_gtid = || {
        SourceError::definite(format!(
            "the checkpoint of source `{name}` was taken on server `{was}`, but this is server \
             `{now}`, and the checkpoint holds no GTID state to find its place here (binlog \
             positions of one server mean nothing on another); fix: point the source back at \
             the original server, or start over with a new snapshot by deleting the checkpoint \
             (see docs/mysql-source.md, \"Starting over\")"
        ))
    };
    if state.is_empty() {
        return Err(no_gtid());
    }
    if cp.partial_rows > 0 && cp.partial_gtid.is_none() {
        return Err(SourceError::definite(format!(
            "the checkpoint of source `{name}` (server `{was}`) lies inside a source transaction \
             and was written before checkpoints named that transaction's GTID, so it cannot be \
             found on server `{now}`; fix: start the agent once against server `{was}` so it \
             moves past the transaction, or take a new snapshot (see docs/mysql-source.md, \
             \"Starting over\")"
        )));
    }
    if !server.mariadb {
        let set = gtid::MysqlGtidSet::parse(state)
            .map_err(|e| SourceError::definite(format!("source `{name}`: checkpoint: {e}")))?;
        if set.is_empty() {
            return Err(no_gtid());
        }
        let have_text: Option<String> = sql
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .await
            .map_err(my_error("read @@gtid_executed"))?;
        let have_text = have_text.unwrap_or_default();
        let have = gtid::MysqlGtidSet::parse(&have_text)
            .map_err(|e| SourceError::definite(format!("source `{name}`: @@gtid_executed: {e}")))?;
        if let Some(missing) = set.first_missing_on(&have) {
            return Err(stream::gtid_missing_error(
                name,
                state,
                now,
                &format!("its @@gtid_executed does not contain {missing}"),
            ));
        }
        tracing::info!(source = %name, from_server = %was, server = %now, gtid_set = %set, "resuming on another server by GTID (auto-positioning)");
        return Ok(stream::Resume::MysqlGtid {
            from_server: cp.server.clone(),
            set,
        });
    }
    let wanted = gtid::MariadbState::parse(state)
        .map_err(|e| SourceError::definite(format!("source `{name}`: checkpoint: {e}")))?;
    let have_text = setup::current_gtid_state(sql).await?.unwrap_or_default();
    let have = gtid::MariadbState::parse(&have_text)
        .map_err(|e| SourceError::definite(format!("source `{name}`: @@gtid_binlog_pos: {e}")))?;
    if let Some(missing) = wanted.first_missing_on(&have) {
        return Err(stream::gtid_missing_error(
            name,
            state,
            now,
            &format!("its @@gtid_binlog_pos `{have_text}` does not reach {missing}"),
        ));
    }
    tracing::info!(source = %name, from_server = %was, server = %now, gtid_state = %state, "resuming on another server by GTID");
    Ok(stream::Resume::MariadbGtid {
        from_server: cp.server.clone(),
        state: wanted.to_string(),
    })
}

/// Records the catalog at `pos` as a snapshot epoch of the schema history (sent through the
/// source's producer: in exactly-once mode it commits with the checkpoint that follows).
async fn send_history_snapshot(
    history: &mut SchemaHistory,
    pipeline: &mut Pipeline<impl Sink>,
    topic: &str,
    pos: &BinlogPosition,
    gtid: Option<String>,
    catalog: &Catalog,
) -> Result<(), SourceError> {
    for rec in history.record_snapshot(pos.clone(), gtid, catalog) {
        let (key, value) = history.encode(&rec);
        pipeline
            .send(OutRecord {
                topic,
                key: Some(&key),
                value: Some(&value),
                headers: &[],
            })
            .await?;
    }
    Ok(())
}

/// `schema_history_recovery = "rebuild"` (or a checkpoint older than the history): the
/// catalog from information_schema describes the tables at the resume position only if no
/// DDL touched the captured databases since; the binlog is scanned to make sure, and the
/// source stops when it finds one.
#[allow(clippy::too_many_arguments)]
async fn rebuild_history(
    settings: &MySourceSettings,
    sql: &mut mysql_async::Conn,
    history: &mut SchemaHistory,
    pipeline: &mut Pipeline<impl Sink>,
    topic: &str,
    at: &BinlogPosition,
    cp: &MysqlCheckpoint,
    _server: &setup::ServerInfo,
) -> Result<Catalog, SourceError> {
    let catalog = schema::load_catalog(sql, settings).await?;
    let scan = connect_sql(settings).await?;
    let found = history::ddl_since(scan, settings.server_id, at, |d| settings.captures(d)).await?;
    if let Some(first) = found.first() {
        // Worded as docs/mysql-schema-history.md ("rebuild") promises: the topic, how many
        // statements, the first one and where, and the only way out.
        let source = &settings.source.name;
        return Err(SourceError::definite(format!(
            "source `{source}`: schema history topic `{topic}` cannot be rebuilt from \
             information_schema: {} statement(s) changed captured tables since the resume \
             position {at}, the first at {}: `{}`. Fix: take a new snapshot — produce a \
             tombstone for key `{source}` to the offsets topic `{}` (or use a new \
             topic_prefix); see docs/mysql-schema-history.md, \"Recovery\"",
            found.len(),
            first.position,
            first.statement,
            topics::offsets_topic(&settings.source.topic_prefix),
        )));
    }
    send_history_snapshot(
        history,
        pipeline,
        topic,
        at,
        cp.gtid_state.clone(),
        &catalog,
    )
    .await?;
    let rebuilt = MysqlCheckpoint {
        history_seq: history.last_seq(),
        ..cp.clone()
    };
    pipeline
        .write_checkpoint(&MyCheckpoint::at(&rebuilt))
        .await?;
    pipeline.drain().await?;
    tracing::info!(source = %settings.source.name, position = %at, "schema history rebuilt");
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_server_ids_are_stable_and_out_of_the_usual_range() {
        let a = default_server_id("orders");
        assert_eq!(a, default_server_id("orders"));
        assert_ne!(a, default_server_id("orders2"));
        assert!(a >= 1_000_000_000);
    }
}
