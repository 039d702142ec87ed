//! PostgreSQL source: logical replication with the pgoutput plugin.
//!
//! ```text
//!             ┌────────── setup.rs ──────────┐
//!  SQL conn ─▶│ wal_level, role, publication │
//!             └──────────────┬───────────────┘
//!                            ▼
//!  slot missing? ── replication.rs: CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT
//!                            │
//!                            ▼
//!                  snapshot.rs: COPY every table under SET TRANSACTION SNAPSHOT (parallel)
//!                            │        rows → op "r" events → Publisher → Kafka
//!                            ▼        checkpoint {snapshot_done} after Kafka acked them all
//!                  stream.rs: START_REPLICATION → wire.rs → pgoutput.rs → schema.rs (Datums)
//!                            │        → Publisher (Avro, registry, table topic + ledger)
//!                            ▼
//!                  flush LSN ◀── only positions whose events Kafka acknowledged
//! ```
//!
//! This file only wires the stages and decides between *definite* errors (stop and tell the
//! operator) and *transient* ones (retry from the slot's confirmed position with backoff).
//! The protocol layers are pure and fuzzable: [`wire`] frames the streaming-replication
//! CopyData messages, [`pgoutput`] decodes the logical messages inside them.

pub use cdc_codec::postgres::pgoutput;
pub mod chunk;
pub mod position;
pub mod replication;
pub mod schema;
pub mod setup;
pub mod snapshot;
pub mod stream;
pub mod tail;
pub mod types;
pub use cdc_codec::postgres::wire;

use std::time::Duration;

use crate::source::supervise::{Attempt, Source};
use crate::source::{Dependency, SourceError};

use crate::checkpoint::{SnapshotKind, SnapshotState, TableProgress};
use crate::config::{Delivery, MainConfig, OnMissingPosition, SnapshotMode, SourceConfig};
use crate::net::tls::PgTls;
use crate::ops::status::SourceState;
use crate::pipeline::snapshot::joined_tables;
use crate::pipeline::{Peeked, Pipeline, Snapshots};
use position::{PgCheckpoint, PgPosition};
use replication::{ReplicationClient, ReplicationConfig};
use setup::SlotState;
use stream::PgStream;
use wire::Lsn;

/// Session settings that make PostgreSQL's text output what [`types`] parses, on both the SQL
/// (snapshot) and the replication connection.
pub const SESSION_SETTINGS: &str = "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; \
     SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; SET lc_monetary = 'C'; \
     SET bytea_output = 'hex'";

/// [`SESSION_SETTINGS`] as a startup `options` parameter, for the replication connection
/// (whose walsender renders the values pgoutput sends).
pub const REPLICATION_OPTIONS: &str = "-c DateStyle=ISO,YMD -c TimeZone=UTC \
     -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c lc_monetary=C -c bytea_output=hex";

/// Everything a PostgreSQL source needs, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct PgSourceSettings {
    /// The source's configuration.
    pub source: SourceConfig,
    /// The main configuration.
    pub main: MainConfig,
    /// Slot name.
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// `[snapshot] signal_table` as (schema, table): a table whose inserted rows are snapshot
    /// signals (Debezium's shape), read from the stream and never published. `None`: signals
    /// come only as logical decoding messages.
    pub signal_table: Option<(String, String)>,
    /// `[tables]`: the published tables that are captured.
    pub selection: std::sync::Arc<crate::select::Selection>,
}

impl PgSourceSettings {
    /// Resolves defaults (slot and publication names) from the source configuration.
    pub fn new(source: SourceConfig, main: MainConfig) -> Self {
        let pg = source.postgres.clone().unwrap_or_default();
        let slot = pg
            .slot_name
            .unwrap_or_else(|| source.name.replace('-', "_"));
        let publication = pg
            .publication
            .unwrap_or_else(|| format!("cdc_{}", source.name.replace('-', "_")));
        let signal_table =
            source
                .snapshot
                .signal_table
                .as_deref()
                .map(|t| match t.split_once('.') {
                    Some((s, t)) => (s.to_string(), t.to_string()),
                    None => ("public".to_string(), t.to_string()),
                });
        Self {
            selection: std::sync::Arc::new(crate::select::Selection::of(&source)),
            source,
            main,
            slot,
            publication,
            signal_table,
        }
    }

    /// Whether `schema.table` is the source's signal table.
    pub fn is_signal_table(&self, schema: &str, table: &str) -> bool {
        self.signal_table
            .as_ref()
            .is_some_and(|(s, t)| s == schema && t == table)
    }

    /// The published tables the source captures: the publication's, less the signal table
    /// and what `[tables]` leaves out.
    pub async fn captured_tables(
        &self,
        sql: &tokio_postgres::Client,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let mut tables = setup::publication_tables(sql, &self.publication).await?;
        tables.retain(|(s, t)| !self.is_signal_table(s, t) && self.selection.captures(s, t));
        Ok(tables)
    }

    fn database(&self) -> &str {
        self.source.database.as_deref().unwrap_or("postgres")
    }

    /// tokio-postgres configuration of the SQL connection.
    pub fn sql_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.source.host)
            .port(self.source.port())
            .user(&self.source.user)
            .dbname(self.database())
            .application_name("cdc-agent")
            .connect_timeout(Duration::from_secs(10));
        if let Some(p) = &self.source.password {
            c.password(p.expose());
        }
        c.ssl_mode(self.tls().tokio_postgres_mode());
        c
    }

    /// TLS settings of both connections.
    pub fn tls(&self) -> PgTls {
        PgTls::from_options(self.source.postgres.as_ref())
    }

    /// Configuration of the replication connection.
    pub fn replication_config(&self) -> ReplicationConfig {
        let mut c = ReplicationConfig::new(
            &self.source.host,
            self.source.port(),
            &self.source.user,
            self.database(),
        );
        c.password = self
            .source
            .password
            .as_ref()
            .map(|p| p.expose().to_string());
        c.tls = self.tls();
        c.allow_cleartext_password = self
            .source
            .postgres
            .as_ref()
            .is_some_and(|p| p.allow_cleartext_password);
        c
    }
}

/// Before `tokio-postgres` logs in (it answers a cleartext password request on any
/// connection), logs in once with our own client to see how the server authenticates this
/// role: a cleartext request over a connection without TLS stops the source. Done once per
/// process and server/database/role; the answer depends on pg_hba.conf, which does not
/// change between two connections.
async fn check_login(settings: &PgSourceSettings) -> Result<(), SourceError> {
    static CHECKED: crate::net::once::Once = crate::net::once::Once::new();
    let cfg = settings.replication_config();
    if cfg.tls.requires_tls() {
        return Ok(());
    }
    let key = format!("{}:{}/{}/{}", cfg.host, cfg.port, cfg.database, cfg.user);
    if CHECKED.done(&key) {
        return Ok(());
    }
    match replication::probe_login(&cfg).await {
        Err(e @ replication::ReplError::CleartextRefused) => {
            return Err(SourceError::definite(e.to_string()).concerning(Dependency::Database))
        }
        // Anything else shows again, better worded, on the real connection.
        Err(_) => return Ok(()),
        Ok(_) => {}
    }
    CHECKED.mark(&key);
    Ok(())
}

/// Connects the SQL session with the settings [`types`] expects.
pub async fn connect_sql(
    settings: &PgSourceSettings,
) -> Result<tokio_postgres::Client, SourceError> {
    check_login(settings).await?;
    let tls = settings.tls();
    let connector = tls.connector().map_err(|e| {
        SourceError::definite(format!("{}: {e}", settings.source.file.display()))
            .concerning(Dependency::Configuration)
    })?;
    let (client, conn) = settings
        .sql_config()
        .connect(postgres_native_tls::MakeTlsConnector::new(connector))
        .await
        .map_err(|e| match tls_error_text(&e) {
            Some(cause) if crate::net::tls::is_certificate_failure(&cause) => {
                SourceError::definite(tls.failure(
                    &format!("{}:{}", settings.source.host, settings.source.port()),
                    &cause,
                ))
            }
            _ => SourceError::sql("connect to PostgreSQL")(e),
        })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "sql connection ended");
        }
    });
    client
        .batch_execute(SESSION_SETTINGS)
        .await
        .map_err(SourceError::sql("session settings"))?;
    Ok(client)
}

/// The text of a TLS failure inside a tokio-postgres error (the error's own text is only
/// "error performing TLS handshake"; the reason is in its source chain).
fn tls_error_text(e: &tokio_postgres::Error) -> Option<String> {
    use std::error::Error as _;
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.downcast_ref::<native_tls::Error>().is_some() {
            return Some(c.to_string());
        }
        cause = c.source();
    }
    // "server does not support TLS" has no source.
    let text = e.to_string();
    text.contains("TLS").then_some(text)
}

impl Source for PgSourceSettings {
    async fn attempt(&self, run: Attempt<'_>) -> Result<(), SourceError> {
        let (registry, status, stop) = (run.registry, run.status, run.stop);
        let (settings, src) = (self, &self.source);
        let sql = connect_sql(settings).await?;
        setup::check_prerequisites(&sql).await?;
        let mut tables = src
            .postgres
            .as_ref()
            .map(|p| p.tables.clone())
            .unwrap_or_default();
        if let (Some((s, t)), false) = (&settings.signal_table, tables.is_empty()) {
            // A publication the agent creates for listed tables carries the signal table too.
            tables.push(format!("{s}.{t}"));
        }
        let via_root = src
            .postgres
            .as_ref()
            .is_some_and(|p| p.publish_via_partition_root);
        setup::ensure_publication(&sql, &settings.publication, &tables, via_root).await?;
        setup::check_replica_identity(&sql, &settings.publication).await?;
        if let Some((s, t)) = &settings.signal_table {
            setup::check_signal_table(&sql, Some(&settings.publication), s, t).await?;
        }

        let exactly_once = src.delivery == Delivery::ExactlyOnce;
        let mut pipeline = Pipeline::connect(
            src,
            &settings.main,
            crate::encode::avro::ConnectorKind::Postgres,
            registry.clone(),
            status,
        )
        .await?;
        if let Some(topic) = src
            .postgres
            .as_ref()
            .and_then(|p| p.messages_topic.as_deref())
        {
            pipeline.ensure_topic(topic, &[]).await?;
        }

        // Ownership first: the slot is the source's lock. Only the agent holding it may
        // register the transactional id (which fences every other producer of this source), so a
        // resumed zombie can never fence the agent that took over from it.
        let mode = src.snapshot.mode;
        let mut slot = setup::slot_state(&sql, &settings.slot).await?;
        if let SlotState::Present {
            active_pid: Some(pid),
            ..
        } = slot
        {
            return Err(slot_taken(&settings.slot, Some(pid)));
        }
        let mut repl = ReplicationClient::connect(&settings.replication_config())
            .await
            .map_err(stream::repl_error)?;
        let server = repl.identify_system().await.map_err(stream::repl_error)?;
        let server_version: u32 = repl
            .parameter("server_version")
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let options = replication_options(server_version, &settings.publication);
        let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();

        // PostgreSQL 14+ sends logical decoding messages through pgoutput: snapshots are
        // taken in chunks while streaming, with watermark messages. Older servers take the
        // initial snapshot in one piece under the slot's exported snapshot.
        let chunked = server_version >= 14;
        if let (Some((s, t)), false) = (&settings.signal_table, chunked) {
            return Err(SourceError::definite(format!(
                "[snapshot] signal_table = \"{s}.{t}\" asks for on-demand snapshots, which need \
                 PostgreSQL 14 or later (their watermarks are logical decoding messages, which \
                 pgoutput carries since 14) but the server is PostgreSQL {server_version}; fix: \
                 remove signal_table from {}, or upgrade the server",
                src.file.display()
            )));
        }
        if let (Some(topic), false) = (
            src.postgres
                .as_ref()
                .and_then(|p| p.messages_topic.as_deref()),
            chunked,
        ) {
            return Err(SourceError::definite(format!(
                "postgres.messages_topic = \"{topic}\" needs PostgreSQL 14 or later (pgoutput \
                 carries logical decoding messages since 14) but the server is PostgreSQL \
                 {server_version}; fix: remove messages_topic from {}, or upgrade the server",
                src.file.display()
            )));
        }
        let failover = src.postgres.as_ref().is_some_and(|p| p.failover_slot);
        if failover && server_version < 17 {
            return Err(SourceError::definite(format!(
                "postgres.failover_slot = true needs PostgreSQL 17 or later (failover slots are \
                 new in 17) but the server is PostgreSQL {server_version}; fix: set \
                 failover_slot = false in {}, or upgrade the server",
                src.file.display()
            )));
        }
        let check = PositionCheck {
            settings,
            server: &server,
            chunked,
        };
        // Set once the operator's on_missing_position = "snapshot" accepted a gap in this
        // attempt: the checkpoint's position is given up, a new one starts with a snapshot.
        let mut gap_accepted = false;
        if let SlotState::Present {
            invalidated: Some(reason),
            ..
        } = &slot
        {
            check.decide(&PositionLost::Invalidated(reason.clone()))?;
            setup::drop_slot(&sql, &settings.slot)
                .await
                .map_err(|e| e.concerning(Dependency::Database))?;
            slot = SlotState::Missing;
            gap_accepted = true;
        }
        let (mut stream_conn, saved) = if matches!(slot, SlotState::Missing) {
            // Before anything is created: a committed checkpoint taken from this slot proves
            // the slot existed and is gone. Committed checkpoints stay committed, so reading
            // them before this agent owns the source is enough to decide when one is found.
            // Finding none proves nothing yet: read_committed stops at the first open
            // transaction (a dead agent's), and what was committed after it shows only once it
            // is fenced; the read after taking the slot (take_new_slot) decides then.
            if !gap_accepted {
                match pipeline
                    .peek_checkpoint::<PgPosition>(&settings.main.kafka, PEEK_TIMEOUT)
                    .await?
                {
                    Peeked::Found(Some(cp)) => {
                        if let Some(lost) = check.lost_slot(&cp) {
                            check.decide(&lost)?;
                            gap_accepted = true;
                        }
                    }
                    Peeked::Found(None) => {}
                    Peeked::HeldBack => {
                        tracing::info!(source = %src.name, "the checkpoint read timed out; reading it again after taking the slot");
                    }
                }
            }
            // The offsets topic exists before any slot does, so that a slot present without
            // it later proves the topic was deleted (see PositionLost::CheckpointGone).
            pipeline.ensure_offsets_topic().await?;
            let exported = mode != SnapshotMode::Never && !chunked;
            let created = repl
                .create_logical_slot_with(&settings.slot, exported, false, failover)
                .await
                .map_err(|e| match e.sqlstate() {
                    // Another agent created it between our look-up and now.
                    Some("42710") => slot_taken(&settings.slot, None),
                    _ => stream::repl_error(e),
                })?;
            tracing::info!(slot = %settings.slot, consistent_point = %created.consistent_point, "created replication slot");
            // Until this start's first checkpoint names the new slot, a slot left behind would
            // pass for the one the old checkpoint was taken from: any failure drops it again.
            let owned = check
                .take_new_slot(&mut pipeline, &created, gap_accepted)
                .await;
            if let Err(e) = owned {
                if let Err(d) = repl.drop_slot(&settings.slot, false).await {
                    tracing::warn!(slot = %settings.slot, error = %d, "could not drop the slot just created");
                }
                return Err(e);
            }
            let mut saved = None;
            if exported {
                let snapshot_name = created.snapshot_name.clone().ok_or_else(|| {
                    SourceError::definite("server did not export a snapshot".into())
                })?;
                snapshot::run(
                    settings,
                    &sql,
                    &snapshot_name,
                    created.consistent_point,
                    &mut pipeline,
                    status,
                    stop,
                )
                .await?;
                if stop.is_triggered() {
                    return Ok(());
                }
                let done = PgCheckpoint {
                    snapshot_done: true,
                    position: Some(created.consistent_point.to_string()),
                    source: check.position(),
                    snapshot: Default::default(),
                    transaction: None,
                };
                pipeline.write_checkpoint(&done).await?;
                pipeline.drain().await?;
                tracing::info!(source = %src.name, "snapshot complete");
                if mode == SnapshotMode::InitialOnly {
                    drop(repl);
                    return release_slot(settings, &sql, &mut pipeline).await;
                }
                saved = Some(done);
            }
            let stream = repl
                .start_replication(&settings.slot, Lsn(0), &options)
                .await
                .map_err(|e| check.start_error(e))?;
            (stream, saved)
        } else {
            let stream = repl
                .start_replication(&settings.slot, Lsn(0), &options)
                .await
                .map_err(|e| check.start_error(e))?;
            pipeline.init_transactions().await?;
            let mut saved: Option<PgCheckpoint> =
                pipeline.load_checkpoint(&settings.main.kafka).await?;
            // Set when the operator's decision kept this slot's position although the
            // checkpoint that recorded the snapshot's end is gone.
            let mut checkpoint_gone = false;
            if saved.is_none() && pipeline.offsets_topic_was_missing() {
                check.decide(&PositionLost::CheckpointGone {
                    offsets_topic: pipeline.offsets_topic().to_string(),
                })?;
                checkpoint_gone = true;
            }
            if let Some(lost) = saved.as_ref().and_then(|cp| check.foreign_slot(cp)) {
                check.decide(&lost)?;
                // The slot of this name belongs to another history: start over on this
                // server, recording it before anything else so a crash does not resume the old
                // checkpoint's snapshot state on the new history.
                let fresh = check.fresh_checkpoint(None);
                pipeline.write_checkpoint(&fresh).await?;
                pipeline.drain().await?;
                saved = Some(fresh);
            } else if let Some(cp) = saved
                .as_mut()
                .filter(|cp| check.records_another_identity(cp))
            {
                // A checkpoint from before identities were recorded, or from before a new
                // timeline: record this server's now (at least once, only snapshots write
                // checkpoints, so waiting for the next one could take forever).
                cp.source.system_id = Some(server.system_id.clone());
                cp.source.timeline = Some(server.timeline);
                pipeline.write_checkpoint(cp).await?;
                pipeline.drain().await?;
            }
            let snapshot_done = saved.as_ref().is_some_and(|c| {
                c.snapshot_done && c.source.slot.as_deref() == Some(settings.slot.as_str())
            });
            if mode != SnapshotMode::Never && !snapshot_done && !chunked && checkpoint_gone {
                // Before 14, with the checkpoint gone but the slot kept: the slot's position is
                // still exact, so no change may be skipped by recreating it. The tables are read
                // in one piece under a snapshot taken now, then the stream resumes from the
                // slot; changes between the slot's position and that snapshot arrive again
                // after their rows' reads, so every row ends in its latest state.
                drop(stream);
                let done =
                    snapshot_beside_slot(settings, &sql, &check, &mut pipeline, status, stop)
                        .await?;
                if stop.is_triggered() {
                    return Ok(());
                }
                if mode == SnapshotMode::InitialOnly {
                    return release_slot(settings, &sql, &mut pipeline).await;
                }
                let repl = ReplicationClient::connect(&settings.replication_config())
                    .await
                    .map_err(stream::repl_error)?;
                let stream = repl
                    .start_replication(&settings.slot, Lsn(0), &options)
                    .await
                    .map_err(|e| check.start_error(e))?;
                (stream, Some(done))
            } else if mode != SnapshotMode::Never && !snapshot_done && !chunked {
                // The slot exists but its snapshot never finished: the snapshot it exported is
                // gone, so start over from a new slot (the retry takes the path above).
                tracing::warn!(slot = %settings.slot, "snapshot did not finish before; recreating the slot and snapshotting again");
                drop(stream);
                drop_slot_when_released(&sql, &settings.slot).await?;
                return Err(SourceError::transient(
                    "restarting with a new slot and snapshot".into(),
                ));
            } else {
                (stream, saved)
            }
        };
        if chunked {
            let snapshots = plan_snapshots(settings, &sql, saved.as_ref()).await?;
            pipeline.set_snapshots(snapshots);
        }
        tracing::info!(source = %src.name, slot = %settings.slot, "streaming");
        status.set_state(SourceState::Streaming);
        let mut stream = PgStream::new(
            stream::StreamContext {
                server_name: &src.topic_prefix,
                database: settings.database(),
                sql: &sql,
                source_name: &src.name,
                slot: &settings.slot,
                server: &server,
                resume: match (&saved, exactly_once) {
                    (Some(cp), true)
                        if cp.source.slot.as_deref() == Some(settings.slot.as_str()) =>
                    {
                        stream::Resume {
                            last_tx_lsn: cp.source.last_tx_lsn.map(Lsn),
                            partial: cp.source.partial.map(|p| (Lsn(p.tx_lsn), p.messages)),
                        }
                    }
                    _ => stream::Resume::default(),
                },
                messages_topic: src
                    .postgres
                    .as_ref()
                    .and_then(|p| p.messages_topic.as_deref()),
                role: &src.user,
                signal_table: settings
                    .signal_table
                    .as_ref()
                    .map(|(s, t)| (s.as_str(), t.as_str())),
                heartbeat_action: src.heartbeat.action_query.as_deref(),
            },
            &mut stream_conn,
            status,
        );
        pipeline.stream(&mut stream, stop).await?;
        drop(stream);
        let initial_only_done = pipeline
            .snapshots()
            .is_some_and(|s| s.stop_when_done && s.idle());
        if initial_only_done {
            drop(stream_conn);
            release_slot(settings, &sql, &mut pipeline).await?;
        }
        Ok(())
    }
}

/// The one-piece snapshot (before PostgreSQL 14) of a slot that is kept: a snapshot exported
/// now by a session of its own stands in for the one the slot exported when it was created.
/// The rows' reads carry the slot's confirmed position, where the stream resumes. Returns the
/// checkpoint written once Kafka acked every read (nothing is written when `stop` fired).
async fn snapshot_beside_slot<S: crate::sink::Sink<Position = Lsn>>(
    settings: &PgSourceSettings,
    sql: &tokio_postgres::Client,
    check: &PositionCheck<'_>,
    pipeline: &mut Pipeline<S>,
    status: &crate::ops::status::SourceStatus,
    stop: &mut crate::shutdown::Shutdown,
) -> Result<PgCheckpoint, SourceError> {
    let resume_at: i64 = sql
        .query_opt(
            "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots \
             WHERE slot_name = $1",
            &[&settings.slot],
        )
        .await
        .map_err(SourceError::sql("read the slot's confirmed position"))?
        .and_then(|r| r.get::<_, Option<i64>>(0))
        .ok_or_else(|| {
            SourceError::transient(format!(
                "replication slot `{}` has no confirmed position; retrying",
                settings.slot
            ))
        })?;
    let resume_at = Lsn(resume_at as u64);
    // The exporting transaction stays open until every reader imported its snapshot.
    let exporter = connect_sql(settings).await?;
    exporter
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(SourceError::sql("export a snapshot"))?;
    let snapshot_name: String = exporter
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(SourceError::sql("export a snapshot"))?
        .get(0);
    tracing::info!(slot = %settings.slot, resume_at = %resume_at, "snapshotting every table again beside the kept slot");
    snapshot::run(
        settings,
        sql,
        &snapshot_name,
        resume_at,
        pipeline,
        status,
        stop,
    )
    .await?;
    drop(exporter);
    let done = PgCheckpoint {
        snapshot_done: true,
        position: Some(resume_at.to_string()),
        source: check.position(),
        snapshot: Default::default(),
        transaction: None,
    };
    if !stop.is_triggered() {
        pipeline.write_checkpoint(&done).await?;
        pipeline.drain().await?;
        tracing::info!(source = %settings.source.name, "snapshot complete");
    }
    Ok(done)
}

/// `snapshot.mode = initial_only` is done: nothing will read the slot again, and a slot nobody
/// reads holds WAL until the disk fills. The final checkpoint names no slot, so a later run in
/// another mode starts over with a new slot and snapshot instead of taking the missing slot for
/// a lost position.
async fn release_slot<S: crate::sink::Sink<Position = Lsn>>(
    settings: &PgSourceSettings,
    sql: &tokio_postgres::Client,
    pipeline: &mut Pipeline<S>,
) -> Result<(), SourceError> {
    let released = PgCheckpoint {
        snapshot_done: true,
        position: None,
        source: PgPosition::default(),
        snapshot: Default::default(),
        transaction: None,
    };
    pipeline.write_checkpoint(&released).await?;
    pipeline.drain().await?;
    drop_slot_when_released(sql, &settings.slot).await?;
    tracing::info!(slot = %settings.slot, "initial_only snapshot done; dropped the replication slot so it holds no WAL");
    Ok(())
}

/// What remains to snapshot, from the checkpoint: a resumed snapshot goes on after its last
/// committed chunk; a new source snapshots every published table; a table published since
/// the last run is snapshotted alone.
async fn plan_snapshots(
    settings: &PgSourceSettings,
    sql: &tokio_postgres::Client,
    saved: Option<&PgCheckpoint>,
) -> Result<Snapshots, SourceError> {
    let mode = settings.source.snapshot.mode;
    let tables: Vec<String> = settings
        .captured_tables(sql)
        .await?
        .into_iter()
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    let ours = saved.filter(|c| c.source.slot.as_deref() == Some(settings.slot.as_str()));
    let (state, mut initial_done) = match ours {
        Some(c) => (c.snapshot.clone(), c.snapshot_done),
        None => (SnapshotState::default(), false),
    };
    if mode == SnapshotMode::Never {
        initial_done = true;
    }
    let captured = state.captured.clone();
    let resumed = !state.tables.is_empty();
    let mut snapshots = Snapshots::new(
        &settings.source.name,
        state,
        initial_done,
        settings.source.snapshot.chunk_size,
    );
    snapshots.log_resuming();
    if !initial_done && !resumed {
        snapshots.add(
            tables
                .iter()
                .map(|t| TableProgress::new(t.clone(), SnapshotKind::Initial, None)),
        );
    } else if mode != SnapshotMode::Never {
        if let Some(known) = &captured {
            snapshots.add(joined_tables(&tables, known, initial_done));
        }
    }
    snapshots.set_captured(tables);
    snapshots.stop_when_done = mode == SnapshotMode::InitialOnly && !initial_done;
    snapshots.auto_snapshot_new_tables = mode != SnapshotMode::Never;
    Ok(snapshots)
}

/// pgoutput options for the server's version. Streaming of in-progress transactions is not
/// requested: the server spills large transactions to disk and sends them at commit.
fn replication_options(server_version: u32, publication: &str) -> Vec<(&'static str, String)> {
    let proto = match server_version {
        v if v >= 16 => "4",
        v if v >= 15 => "3",
        v if v >= 14 => "2",
        _ => "1",
    };
    let mut options = vec![
        ("proto_version", proto.to_string()),
        (
            "publication_names",
            format!("\"{}\"", publication.replace('"', "\"\"")),
        ),
    ];
    if server_version >= 14 {
        options.push(("messages", "true".to_string()));
    }
    options
}

fn slot_taken(slot: &str, pid: Option<i32>) -> SourceError {
    let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    let kill = pid
        .map(|p| format!(", or terminate it with SELECT pg_terminate_backend({p});"))
        .unwrap_or_default();
    SourceError::taken(format!(
        "replication slot `{slot}` is active in another process{who}; another agent owns this \
         source; fix: stop the other agent{kill} or give this source another slot_name, or set \
         when_taken = \"standby\" to wait and take over"
    ))
}

/// How long the start reads the checkpoint before it owns the source (see
/// [`Pipeline::peek_checkpoint`]); past it, the read after fencing decides.
const PEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the position a checkpoint records cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PositionLost {
    /// The slot the checkpoint was taken from is not on the server.
    Missing {
        /// The checkpoint's position, as text.
        position: Option<String>,
        /// The system the checkpoint was taken on, when it recorded one.
        system_id: Option<String>,
    },
    /// A slot of that name is on another database system than the checkpoint's.
    Foreign {
        /// The checkpoint's system identifier.
        was: String,
    },
    /// The server invalidated the slot (the reason, from [`setup::slot_state`]).
    Invalidated(String),
    /// The slot is present but the offsets topic was not (it is created before any slot is,
    /// so it was deleted, or `topic_prefix` changed): the checkpoint is gone. The slot still
    /// holds the position; what the checkpoint alone knew (whether the snapshot finished,
    /// where each table's snapshot stands, the exactly-once resume marks) is lost.
    CheckpointGone {
        /// The offsets topic that did not exist.
        offsets_topic: String,
    },
}

/// The start's checks of the position: the slot, the server's identity and the checkpoint.
struct PositionCheck<'a> {
    settings: &'a PgSourceSettings,
    server: &'a replication::SystemIdentity,
    chunked: bool,
}

impl PositionCheck<'_> {
    /// The checkpoint's own part for this slot on this server.
    fn position(&self) -> PgPosition {
        PgPosition {
            slot: Some(self.settings.slot.clone()),
            system_id: Some(self.server.system_id.clone()),
            timeline: Some(self.server.timeline),
            ..PgPosition::default()
        }
    }

    /// The checkpoint of a new position on this server (a new slot, or a slot the operator
    /// chose to start over on): nothing snapshotted, nothing streamed yet.
    fn fresh_checkpoint(&self, at: Option<Lsn>) -> PgCheckpoint {
        PgCheckpoint {
            snapshot_done: false,
            position: at.map(|l| l.to_string()),
            source: self.position(),
            snapshot: Default::default(),
            transaction: None,
        }
    }

    /// Whether `cp`, read while the slot is missing, proves the slot existed: it was taken
    /// from this slot, and something was read from it (a snapshot in one piece that never
    /// finished, before PostgreSQL 14, streamed nothing yet: its slot is recreated on purpose).
    fn lost_slot(&self, cp: &PgCheckpoint) -> Option<PositionLost> {
        if cp.source.slot.as_deref() != Some(self.settings.slot.as_str()) {
            return None;
        }
        let unfinished_one_piece = !self.chunked
            && self.settings.source.snapshot.mode != SnapshotMode::Never
            && !cp.snapshot_done;
        (!unfinished_one_piece).then(|| PositionLost::Missing {
            position: cp.position.clone(),
            system_id: cp.source.system_id.clone(),
        })
    }

    /// Whether the slot present under this name is another system's: the checkpoint of this
    /// slot names another system identifier. A new timeline of the same system (a promoted
    /// replica that kept the slot, e.g. a PostgreSQL 17 failover slot) is logged and resumed.
    fn foreign_slot(&self, cp: &PgCheckpoint) -> Option<PositionLost> {
        if cp.source.slot.as_deref() != Some(self.settings.slot.as_str()) {
            return None;
        }
        match (&cp.source.system_id, cp.source.timeline) {
            (Some(was), _) if *was != self.server.system_id => {
                Some(PositionLost::Foreign { was: was.clone() })
            }
            (Some(_), Some(was)) if was != self.server.timeline => {
                tracing::warn!(
                    source = %self.settings.source.name,
                    slot = %self.settings.slot,
                    checkpoint_timeline = was,
                    timeline = self.server.timeline,
                    "the server's timeline changed since the checkpoint (a promotion or a point-in-time recovery); the slot is present, resuming from it"
                );
                None
            }
            _ => None,
        }
    }

    /// Whether `cp`, this slot's checkpoint on this system, lacks this server's identity (it
    /// was written before identities were recorded, or on another timeline).
    fn records_another_identity(&self, cp: &PgCheckpoint) -> bool {
        cp.source.slot.as_deref() == Some(self.settings.slot.as_str())
            && (cp.source.system_id.as_deref() != Some(self.server.system_id.as_str())
                || cp.source.timeline != Some(self.server.timeline))
    }

    /// The operator's decision on a lost position: `stop` is the definite error naming the
    /// fix; `snapshot` is logged as the decision it is, and the caller starts over.
    fn decide(&self, lost: &PositionLost) -> Result<(), SourceError> {
        let (src, slot) = (&self.settings.source, &self.settings.slot);
        match src.on_missing_position {
            OnMissingPosition::Stop => Err(self.lost_error(lost)),
            OnMissingPosition::Snapshot => {
                let what = match lost {
                    PositionLost::Missing { position, .. } => format!(
                        "the slot is missing (checkpoint at {})",
                        position.as_deref().unwrap_or("its start")
                    ),
                    PositionLost::Foreign { was } => format!(
                        "the slot is on system {} but the checkpoint was taken on system {was}",
                        self.server.system_id
                    ),
                    PositionLost::Invalidated(reason) => {
                        format!("the slot was invalidated: {reason}")
                    }
                    PositionLost::CheckpointGone { offsets_topic } => format!(
                        "the slot is present but the offsets topic `{offsets_topic}` with the \
                         checkpoint was deleted"
                    ),
                };
                if let PositionLost::CheckpointGone { .. } = lost {
                    // The slot kept the position: no change is skipped, the tables are read
                    // again (their rows repeat as snapshot reads).
                    tracing::warn!(
                        source = %src.name,
                        slot = %slot,
                        system_id = %self.server.system_id,
                        "position lost: {what}; on_missing_position = \"snapshot\" (operator decision): accepting a gap in what the checkpoint recorded; resuming from the slot and snapshotting every table again"
                    );
                    return Ok(());
                }
                tracing::warn!(
                    source = %src.name,
                    slot = %slot,
                    system_id = %self.server.system_id,
                    "position lost: {what}; on_missing_position = \"snapshot\" (operator decision): accepting a gap, the changes between the checkpoint and the new position are not captured; starting over with a new slot and a new snapshot"
                );
                Ok(())
            }
        }
    }

    fn lost_error(&self, lost: &PositionLost) -> SourceError {
        let (src, slot) = (&self.settings.source, &self.settings.slot);
        let file = src.file.display();
        let now = &self.server.system_id;
        let fix_tail = format!(
            "set on_missing_position = \"snapshot\" in {file} to accept the gap and snapshot \
             again (see docs/operations.md, \"When the position is lost\")"
        );
        match lost {
            PositionLost::Missing {
                position,
                system_id,
            } => {
                let taken = match (position, system_id) {
                    (Some(p), Some(s)) => format!(" at {p} on system {s}"),
                    (Some(p), None) => format!(" at {p}"),
                    (None, Some(s)) => format!(" on system {s}"),
                    (None, None) => String::new(),
                };
                SourceError::definite(format!(
                    "replication slot `{slot}` is missing on the server (system {now}, timeline \
                     {tl}), but source `{name}` has a checkpoint taken from it{taken}: the \
                     changes since then can no longer be read (the slot was dropped, or this is a \
                     promoted replica or a restored backup without it), and a new slot would \
                     leave a gap; fix: point the source back at the server that has the slot, or \
                     {fix_tail}",
                    tl = self.server.timeline,
                    name = src.name,
                ))
            }
            PositionLost::Foreign { was } => SourceError::definite(format!(
                "replication slot `{slot}` is on database system {now}, but source `{name}`'s \
                 checkpoint was taken on system {was}: this is another cluster (a new or restored \
                 one, or a failover without the slot) whose slot of the same name holds another \
                 history; fix: point the source back at system {was}, or {fix_tail}",
                name = src.name,
            )),
            PositionLost::Invalidated(reason) => {
                setup::invalidated_slot_error(slot, reason, &file.to_string())
            }
            PositionLost::CheckpointGone { offsets_topic } => SourceError::definite(format!(
                "replication slot `{slot}` exists (system {now}) but the offsets topic \
                 `{offsets_topic}` does not: it was deleted (or topic_prefix changed), and \
                 source `{name}`'s checkpoint with it — whether its snapshot finished, where \
                 each table's snapshot stands, its exactly-once resume marks; going on would \
                 start over unseen; fix: restore the topic (or the old topic_prefix), or set \
                 on_missing_position = \"snapshot\" in {file} to resume from the slot and \
                 snapshot every table again (see docs/operations.md, \"Deleted topics\")",
                name = src.name,
            )),
        }
    }

    /// A new slot was just created: fence, read the checkpoint as it stands once no other
    /// writer can add to it, and record the new slot. An error leaves the slot to the
    /// caller to drop.
    async fn take_new_slot(
        &self,
        pipeline: &mut Pipeline<crate::sink::kafka::KafkaSink<Lsn>>,
        created: &replication::SlotCreated,
        gap_accepted: bool,
    ) -> Result<(), SourceError> {
        pipeline.init_transactions().await?;
        let loaded: Option<PgCheckpoint> =
            pipeline.load_checkpoint(&self.settings.main.kafka).await?;
        if !gap_accepted {
            if let Some(lost) = loaded.as_ref().and_then(|cp| self.lost_slot(cp)) {
                self.decide(&lost)?;
            }
        }
        pipeline
            .write_checkpoint(&self.fresh_checkpoint(Some(created.consistent_point)))
            .await?;
        pipeline.drain().await?;
        Ok(())
    }

    /// `START_REPLICATION` failed: a slot active elsewhere is taken, an invalidated one is
    /// lost (stop, or with on_missing_position = "snapshot" retry, which drops it).
    fn start_error(&self, e: replication::ReplError) -> SourceError {
        let slot = &self.settings.slot;
        match e.server_error() {
            Some(s) if s.code == "55006" => slot_taken(slot, None),
            // "can no longer get changes from replication slot" (PostgreSQL 16+), "cannot read
            // from logical replication slot" with an "invalidated" detail (13 to 15).
            Some(s)
                if s.code == "55000"
                    && (s.message.contains("can no longer get changes")
                        || s.detail
                            .as_deref()
                            .is_some_and(|d| d.contains("invalidated"))) =>
            {
                let reason = match &s.detail {
                    Some(d) if d.contains("maximum reserved size") => {
                        setup::WAL_REMOVED.to_string()
                    }
                    Some(d) => format!("{} ({d})", s.message),
                    None => s.message.clone(),
                };
                match self.settings.source.on_missing_position {
                    OnMissingPosition::Stop => self.lost_error(&PositionLost::Invalidated(reason)),
                    OnMissingPosition::Snapshot => SourceError::transient(format!(
                        "replication slot `{slot}` was invalidated: {reason}; the next attempt \
                         drops it (on_missing_position = \"snapshot\")"
                    )),
                }
            }
            _ => stream::repl_error(e),
        }
    }
}

/// Drops the slot once our own walsender has let go of it.
async fn drop_slot_when_released(
    sql: &tokio_postgres::Client,
    slot: &str,
) -> Result<(), SourceError> {
    for _ in 0..100 {
        match setup::slot_state(sql, slot).await? {
            SlotState::Present {
                active_pid: Some(_),
                ..
            } => tokio::time::sleep(Duration::from_millis(100)).await,
            SlotState::Present { .. } => return setup::drop_slot(sql, slot).await,
            SlotState::Missing => return Ok(()),
        }
    }
    Err(SourceError::transient(format!(
        "replication slot `{slot}` still active; retrying"
    )))
}
