//! A connector file: one source, with the settings every kind of source shares.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::*;

/// The database a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// PostgreSQL logical replication (pgoutput).
    Postgres,
    /// MySQL or MariaDB row binlog.
    Mysql,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
        })
    }
}

/// How an initial snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Snapshot existing rows once, then stream changes.
    #[default]
    Initial,
    /// Stream changes only, from the slot's or binlog's current position.
    Never,
    /// Snapshot existing rows, then stop.
    InitialOnly,
}

/// How a source's records are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Avro in Confluent framing, schemas in the registry (as Confluent's `AvroConverter`).
    #[default]
    Avro,
    /// JSON as Kafka Connect's `JsonConverter` writes it; no registry.
    Json,
}

/// Delivery guarantee of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Table topics, event store and source offsets are written in one Kafka transaction; a
    /// read_committed consumer sees every change exactly once.
    #[default]
    ExactlyOnce,
    /// Idempotent producer, no transactions: after a crash some changes may appear twice.
    AtLeastOnce,
}

/// What an agent does when another agent already owns its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenTaken {
    /// Exit with code 3 (`SOURCE_TAKEN`).
    #[default]
    Exit,
    /// Wait as a hot standby and take over when the owner dies.
    Standby,
}

/// What a source does when the position its checkpoint records is gone from the database: a
/// PostgreSQL slot that was dropped or invalidated (`max_slot_wal_keep_size`), a server with
/// another system identifier than the one the checkpoint was taken on, MySQL/MariaDB binlogs
/// purged before the agent read them. The changes between the checkpoint and now cannot be
/// read any more: going on means a gap in the history (the event store and the table topics
/// never see them), so it needs an operator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingPosition {
    /// Stop (exit 1) with one line naming what was lost and how to go on.
    #[default]
    Stop,
    /// Accept the gap: log it as the operator's decision, take a new position (a new slot)
    /// and snapshot every captured table again (unless `snapshot.mode = "never"`).
    Snapshot,
}

/// `[snapshot]` of a source file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// `initial` (default), `never` or `initial_only`.
    #[serde(default)]
    pub mode: SnapshotMode,
    /// Rows read per chunk: each chunk's events commit with a checkpoint of where the
    /// snapshot stands, so a restart re-reads at most one chunk per table and no Kafka
    /// transaction holds more than the transaction bounds plus one chunk.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// The signal table, in Debezium's shape (`id`, `type`, `data`). MySQL/MariaDB
    /// (`database.table`): it carries snapshot watermarks and signals; default `cdc_signal` in
    /// the first captured database. PostgreSQL (`schema.table`, opt-in): rows inserted into it
    /// are signals, as with Debezium; it must be in the publication and is never published;
    /// default: none (signals come as `pg_logical_emit_message`, watermarks always do).
    #[serde(default)]
    pub signal_table: Option<String>,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            mode: SnapshotMode::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            signal_table: None,
        }
    }
}

/// Rows per snapshot chunk by default.
pub const DEFAULT_CHUNK_SIZE: usize = 10_000;

fn default_chunk_size() -> usize {
    DEFAULT_CHUNK_SIZE
}

/// One connector file: a single database source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique source name; part of slot, transactional id and offset keys. Required.
    pub name: String,
    /// `postgres` or `mysql` (MySQL and MariaDB). Required.
    pub kind: SourceKind,
    /// Prefix of every table topic: `<topic_prefix>.<schema>.<table>`. Required.
    pub topic_prefix: String,
    /// Database host. Default: `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Database port. Default: 5432 for postgres, 3306 for mysql.
    #[serde(default)]
    pub port: Option<u16>,
    /// User the agent connects as. Required.
    pub user: String,
    /// Password. Prefer `password_file` or the environment override. Default: none.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File whose first line is the password; wins over `password`. Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Database to connect to. Required for postgres; optional for mysql.
    #[serde(default)]
    pub database: Option<String>,
    /// `exactly-once` (default) or `at-least-once`.
    #[serde(default)]
    pub delivery: Delivery,
    /// When another agent owns this source: `exit` (default, exit code 3) or `standby` (wait
    /// and take over when it dies).
    #[serde(default)]
    pub when_taken: WhenTaken,
    /// When the position the checkpoint records is gone from the database: `stop` (default,
    /// exit 1 naming the fix) or `snapshot` (accept the gap, new position, new snapshot). See
    /// docs/operations.md, "When the position is lost".
    #[serde(default)]
    pub on_missing_position: OnMissingPosition,
    /// Topic overrides: `"<schema>.<table>" = "<topic>"`. Tables not listed go to
    /// `<topic_prefix>.<schema>.<table>`. Default: none.
    #[serde(default)]
    pub topic_routes: BTreeMap<String, String>,
    /// Follow every delete with a tombstone (null value) in the table topic, so compaction can
    /// forget the row. Default: true.
    #[serde(default = "default_true")]
    pub tombstones_on_delete: bool,
    /// What an unchanged TOASTed value the database did not send becomes (strings; bytes get
    /// its UTF-8 bytes). Default: `__debezium_unavailable_value`, as Debezium.
    #[serde(default = "default_placeholder")]
    pub unavailable_value_placeholder: String,
    /// `avro` (default; Confluent framing, schemas in the registry) or `json` (Kafka
    /// Connect's JsonConverter format, no registry needed). The event store mirrors the
    /// table topics' records, so it follows each source's format.
    #[serde(default)]
    pub format: OutputFormat,
    /// With `format = "json"`: embed each record's Connect schema (`{"schema":…,
    /// "payload":…}`, JsonConverter's `schemas.enable`). Default: true, as JsonConverter.
    #[serde(default = "default_true")]
    pub json_schemas: bool,
    /// Publish a BEGIN and an END record per source transaction to
    /// `<topic_prefix>.transaction`, with the END's event counts in all and per table
    /// (Debezium's `provide.transaction.metadata`). Default: false.
    #[serde(default)]
    pub provide_transaction_metadata: bool,
    /// The outbox table whose inserts are routed as events (docs/outbox.md). Default: none.
    #[serde(default)]
    pub outbox: Option<OutboxConfig>,
    /// Heartbeat records and the PostgreSQL heartbeat action query.
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    /// Initial snapshot settings.
    #[serde(default)]
    pub snapshot: SnapshotConfig,
    /// Which tables are captured (`include` / `exclude` regular expressions).
    #[serde(default)]
    pub tables: TablesConfig,
    /// Columns left out or masked.
    #[serde(default)]
    pub columns: ColumnsConfig,
    /// Message keys other than the primary key, by table pattern.
    #[serde(default)]
    pub message_key_columns: MessageKeyColumns,
    /// PostgreSQL-only settings (only with `kind = "postgres"`).
    #[serde(default)]
    pub postgres: Option<PostgresOptions>,
    /// MySQL/MariaDB-only settings (only with `kind = "mysql"`).
    #[serde(default)]
    pub mysql: Option<MysqlOptions>,
    /// The file this source was loaded from.
    #[serde(skip)]
    pub file: PathBuf,
}

impl SourceConfig {
    /// The port, defaulted by kind.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.kind {
            SourceKind::Postgres => DEFAULT_POSTGRES_PORT,
            SourceKind::Mysql => DEFAULT_MYSQL_PORT,
        })
    }

    /// The environment-variable prefix that overrides this source's keys.
    pub fn env_prefix(&self) -> String {
        source_env_prefix(&self.name)
    }
}

pub(super) fn validate_source(mut s: SourceConfig) -> Result<SourceConfig, ConfigError> {
    let origin = s.file.display().to_string();
    let bad = |key: &str, problem: String, fix: &str| {
        Err(ConfigError::new(&origin, Some(key.into()), problem, fix))
    };
    if s.name.is_empty()
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad(
            "name",
            format!("`{}` is not a valid source name", s.name),
            "use letters, digits, `-` and `_` only",
        );
    }
    if s.topic_prefix.is_empty()
        || !s
            .topic_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad(
            "topic_prefix",
            format!("`{}` is not a valid Kafka topic prefix", s.topic_prefix),
            "use letters, digits, `.`, `-` and `_` only",
        );
    }
    match s.kind {
        SourceKind::Postgres => {
            if s.mysql.is_some() {
                return bad(
                    "mysql",
                    "a [mysql] section in a postgres source".into(),
                    "remove the [mysql] section or set kind = \"mysql\"",
                );
            }
            if s.database.is_none() {
                return bad(
                    "database",
                    "missing database for a postgres source".into(),
                    "add `database = \"<database name>\"`",
                );
            }
        }
        SourceKind::Mysql => {
            if s.postgres.is_some() {
                return bad(
                    "postgres",
                    "a [postgres] section in a mysql source".into(),
                    "remove the [postgres] section or set kind = \"postgres\"",
                );
            }
        }
    }
    if let Some(pg) = &s.postgres {
        validate_pg_tls(pg, &origin)?;
    }
    if let Some(my) = &s.mysql {
        validate_mysql_tls(my, &origin)?;
    }
    validate_selection(&s, &origin)?;
    if s.heartbeat.action_query.is_some() {
        if s.kind != SourceKind::Postgres {
            return bad(
                "heartbeat.action_query",
                "a heartbeat action query on a mysql source".into(),
                "remove it: MySQL/MariaDB binlogs hold every database's changes, so an idle table never holds the position back",
            );
        }
        if s.heartbeat.interval_ms == 0 {
            return bad(
                "heartbeat.action_query",
                "a heartbeat action query without heartbeats".into(),
                "set heartbeat.interval_ms (e.g. 10000) to run it",
            );
        }
    }
    if let Some(o) = &s.outbox {
        if !o.table.contains('.') {
            return bad(
                "outbox.table",
                format!("`{}` is not a qualified table name", o.table),
                "write it as schema.table (PostgreSQL) or database.table (MySQL)",
            );
        }
    }
    if let Some(t) = &s.heartbeat.topic {
        if t.is_empty()
            || t.len() > 249
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return bad(
                "heartbeat.topic",
                format!("`{t}` is not a valid Kafka topic name"),
                "use at most 249 letters, digits, `.`, `-` and `_`",
            );
        }
    }
    if let Some(path) = &s.password_file {
        s.password = Some(read_secret_file(path, &origin, "password_file")?);
    }
    Ok(s)
}

/// `[heartbeat]` of a source file (Debezium's `heartbeat.interval.ms`,
/// `heartbeat.action.query`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Milliseconds between heartbeat records; each commits the source's checkpoint with it,
    /// so a source whose captured tables are idle still shows it is alive and moves its
    /// position. Default: 0, no heartbeats.
    #[serde(default)]
    pub interval_ms: u64,
    /// Topic of the heartbeat records. Default: `__debezium-heartbeat.<topic_prefix>`, as
    /// Debezium names it.
    #[serde(default)]
    pub topic: Option<String>,
    /// PostgreSQL only: a statement run on the source database at every heartbeat, e.g. an
    /// update of a small table in the publication, so that a database whose captured tables
    /// are idle while others are busy still sends changes and the slot's WAL is released.
    /// Default: none.
    #[serde(default)]
    pub action_query: Option<String>,
}

/// The heartbeat topic of a source, when heartbeats are on.
pub fn heartbeat_topic(s: &SourceConfig) -> Option<String> {
    (s.heartbeat.interval_ms > 0).then(|| {
        s.heartbeat
            .topic
            .clone()
            .unwrap_or_else(|| format!("__debezium-heartbeat.{}", s.topic_prefix))
    })
}
