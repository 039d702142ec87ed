//! Configuration: one main TOML file, one TOML file per source in a connectors directory, and
//! environment overrides on top of both.
//!
//! ```text
//! cdc-agent.toml                 [kafka] [schema_registry] [event_store] [agent]
//! connectors/*.toml              one source each: name, kind, connection, topic_prefix, …
//! CDC_AGENT__KAFKA__BOOTSTRAP_SERVERS=…           overrides a main-file key
//! CDC_AGENT__SOURCES__DEMO_PG__PASSWORD=…         overrides a key of source `demo-pg`
//! ```
//!
//! Every error is one line that names the file (or environment variable), the key and the fix:
//! an operator reading a journal at 3 a.m. should not need the source code to repair a typo.
//! Unknown keys are errors, never ignored: a misspelt `slot_nmae` silently falling back to a
//! default is how CDC pipelines end up on the wrong slot.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::Figment;
use serde::Deserialize;

/// Prefix of every environment override; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "CDC_AGENT__";
/// Default connectors directory, relative to the main file's directory.
pub const DEFAULT_CONNECTORS_DIR: &str = "connectors";
/// Default directory for local state (spool files, standby markers).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cdc-agent";
/// Default event-store (ledger) topic.
pub const DEFAULT_EVENT_STORE_TOPIC: &str = "cdc.events";
/// Default PostgreSQL port.
pub const DEFAULT_POSTGRES_PORT: u16 = 5432;
/// Default MySQL/MariaDB port.
pub const DEFAULT_MYSQL_PORT: u16 = 3306;
/// Default of `[mysql] include_query` (Debezium's `include.query`): off, as statements may
/// carry values the row events do not.
pub const DEFAULT_MYSQL_INCLUDE_QUERY: bool = false;
/// Default compression codec for produced batches.
pub const DEFAULT_COMPRESSION: &str = "zstd";
/// Default partitions of topics the agent creates.
pub const DEFAULT_TOPIC_PARTITIONS: i32 = 1;
/// Debezium's default `unavailable.value.placeholder`.
pub const DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER: &str = "__debezium_unavailable_value";
/// Default bound of records per Kafka transaction.
pub const DEFAULT_TXN_MAX_RECORDS: usize = 50_000;
/// Default bound of a Kafka transaction's duration under load, in milliseconds.
pub const DEFAULT_TXN_MAX_MS: u64 = 250;
/// Default replication factor of topics the agent creates.
pub const DEFAULT_TOPIC_REPLICATION: i32 = 1;
/// `sslrootcert` value that selects the operating system's trusted roots, as in libpq.
pub const SYSTEM_ROOTS: &str = "system";
/// Default listen address of the HTTP endpoint (`/healthz`, `/readyz`, `/metrics`): loopback
/// only, so nothing is exposed unless the operator says so.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9745";
/// Default lag (seconds) above which `/readyz` answers 503.
pub const DEFAULT_READY_MAX_LAG_SECONDS: u64 = 60;

/// The whole configuration after loading: the main file plus every source.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file this configuration was loaded from.
    pub path: PathBuf,
    /// The main file's settings.
    pub main: MainConfig,
    /// One entry per connector file, sorted by file name.
    pub sources: Vec<SourceConfig>,
}

/// The main file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainConfig {
    /// Agent-wide settings.
    #[serde(default)]
    pub agent: AgentConfig,
    /// Kafka connection and producer settings.
    pub kafka: KafkaConfig,
    /// The Confluent-compatible schema registry.
    pub schema_registry: SchemaRegistryConfig,
    /// The long-term event store (ledger) topic.
    #[serde(default)]
    pub event_store: EventStoreConfig,
    /// The HTTP endpoint: health, readiness, metrics.
    #[serde(default)]
    pub http: HttpConfig,
}

/// `[http]`: the health, readiness and Prometheus endpoint (docs/operations.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve `/healthz`, `/readyz` and `/metrics`. Default: true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `host:port` to listen on. Port 0 picks a free port (logged at start). Use
    /// `0.0.0.0:<port>` only where the network is trusted (e.g. a pod). Default:
    /// `127.0.0.1:9745`.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// `/readyz` answers 503 while a source's lag (age of its oldest change not yet
    /// acknowledged by Kafka) is above this many seconds. Default: 60.
    #[serde(default = "default_ready_max_lag_seconds")]
    pub ready_max_lag_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: default_http_listen(),
            ready_max_lag_seconds: DEFAULT_READY_MAX_LAG_SECONDS,
        }
    }
}

/// `[agent]`: settings of the daemon itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Directory holding one TOML file per source. Relative paths are resolved against the
    /// main file's directory. Default: `connectors`.
    #[serde(default = "default_connectors_dir")]
    pub connectors_dir: PathBuf,
    /// Directory for local state. Default: `/var/lib/cdc-agent` (systemd's `StateDirectory`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            connectors_dir: default_connectors_dir(),
            state_dir: default_state_dir(),
        }
    }
}

/// `[kafka]`: where events are published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list. Required.
    pub bootstrap_servers: String,
    /// Compression codec: `none`, `gzip`, `snappy`, `lz4` or `zstd`. Default: `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Partitions of topics the agent creates. Default: 1.
    #[serde(default = "default_topic_partitions")]
    pub topic_partitions: i32,
    /// Replication factor of topics the agent creates. Default: 1.
    #[serde(default = "default_topic_replication")]
    pub topic_replication_factor: i32,
    /// Create missing topics (table topics, event store, offsets) with the settings above.
    /// With `false` every topic must exist: a missing one stops the source with its name.
    /// Default: true.
    #[serde(default = "default_true")]
    pub create_topics: bool,
    /// Exactly-once: close a Kafka transaction after this many records. Default: 50000.
    #[serde(default = "default_txn_max_records")]
    pub transaction_max_records: usize,
    /// Exactly-once: close a Kafka transaction after this many milliseconds under load (it
    /// closes at once when nothing more is waiting). Default: 250.
    #[serde(default = "default_txn_max_ms")]
    pub transaction_max_ms: u64,
    /// How clients reach the brokers: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    /// Default: `PLAINTEXT`.
    #[serde(default)]
    pub security_protocol: KafkaSecurityProtocol,
    /// SASL mechanism with `SASL_*`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`. Required
    /// with `SASL_PLAINTEXT`/`SASL_SSL` (unless `properties` set `sasl.mechanism` for another
    /// mechanism such as OAUTHBEARER). Default: none.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name. Default: none.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password. Prefer `sasl_password_file` or the environment override
    /// `CDC_AGENT__KAFKA__SASL_PASSWORD`. Default: none.
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// File whose first line is the SASL password; wins over `sasl_password`. Default: none.
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// PEM file of the CA certificate(s) that signed the brokers' certificates, with `SSL` or
    /// `SASL_SSL`. Default: none (the system's trusted roots).
    #[serde(default)]
    pub ssl_ca_location: Option<PathBuf>,
    /// PEM file of a client certificate, for brokers that authenticate clients by TLS
    /// (`ssl.client.auth=required`). Needs `ssl_key_location`. Default: none.
    #[serde(default)]
    pub ssl_certificate_location: Option<PathBuf>,
    /// PEM file of the client certificate's private key. Default: none.
    #[serde(default)]
    pub ssl_key_location: Option<PathBuf>,
    /// Password of an encrypted `ssl_key_location`. Default: none.
    #[serde(default)]
    pub ssl_key_password: Option<Secret>,
    /// Extra librdkafka properties passed to every client after the keys above, so they win,
    /// e.g. `"ssl.endpoint.identification.algorithm" = "none"`. Values are treated as secrets
    /// (never logged). Default: none.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

/// `[schema_registry]`: a Confluent-compatible registry (Confluent, Apicurio ccompat, Karapace,
/// Redpanda).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the Confluent REST API, e.g. `http://127.0.0.1:8081` or Apicurio's
    /// `http://host:8080/apis/ccompat/v7`. Required.
    pub url: String,
    /// Basic-auth user name. Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password. Default: none.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File whose first line is the basic-auth password; wins over `password`. Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM file of CA certificate(s) trusted for an `https://` registry, in addition to the
    /// system's roots. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[kafka] security_protocol`, as librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum KafkaSecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    #[serde(rename = "PLAINTEXT", alias = "plaintext")]
    Plaintext,
    /// TLS.
    #[serde(rename = "SSL", alias = "ssl")]
    Ssl,
    /// SASL authentication without TLS.
    #[serde(rename = "SASL_PLAINTEXT", alias = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL authentication over TLS.
    #[serde(rename = "SASL_SSL", alias = "sasl_ssl")]
    SaslSsl,
}

impl KafkaSecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Whether the protocol uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// `[kafka] sasl_mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// User name and password in clear (use it only with `SASL_SSL`).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `[event_store]`: the ledger topic every event is mirrored into.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventStoreConfig {
    /// Topic name. Default: `cdc.events`.
    #[serde(default = "default_event_store_topic")]
    pub topic: String,
    /// Mirror events into the event store at all. Default: true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for EventStoreConfig {
    fn default() -> Self {
        Self {
            topic: default_event_store_topic(),
            enabled: true,
        }
    }
}

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

/// `[snapshot]` of a source file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// `initial` (default), `never` or `initial_only`.
    #[serde(default)]
    pub mode: SnapshotMode,
}

/// `[postgres]` of a source file: PostgreSQL-only settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresOptions {
    /// Replication slot name. Default: the source name with `-` replaced by `_`.
    #[serde(default)]
    pub slot_name: Option<String>,
    /// Publication name. Default: `cdc_<source name>`.
    #[serde(default)]
    pub publication: Option<String>,
    /// Tables (`schema.table`) of a publication the agent creates; empty means all tables.
    /// Ignored when the publication already exists. Default: all tables.
    #[serde(default)]
    pub tables: Vec<String>,
    /// TLS on both the SQL and the replication connection, as libpq's `sslmode`: `disable`,
    /// `prefer` (TLS when the server offers it), `require` (TLS, certificate not checked unless
    /// `sslrootcert` is set), `verify-ca` (the certificate chains to `sslrootcert`) or
    /// `verify-full` (that, and `host` is a name in the certificate). Default: `prefer`.
    #[serde(default)]
    pub sslmode: PgSslMode,
    /// PEM file of the CA certificate(s) that signed the server's certificate, or `system` for
    /// the operating system's trusted roots. Required by `verify-ca` and `verify-full`; with
    /// `prefer` or `require` it turns on chain verification, as in libpq. Default: none.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// PEM file of a client certificate, for servers that authenticate clients by certificate
    /// (`hostssl … cert` in pg_hba.conf). Needs `sslkey`. Default: none.
    #[serde(default)]
    pub sslcert: Option<PathBuf>,
    /// PEM file of the client certificate's private key, unencrypted PKCS#8 (`BEGIN PRIVATE
    /// KEY`; convert others with `openssl pkcs8 -topk8 -nocrypt`). Default: none.
    #[serde(default)]
    pub sslkey: Option<PathBuf>,
    /// Topic for logical decoding messages (`pg_logical_emit_message`): key = prefix, value =
    /// content, headers with source, position, transaction. Default: none (not published).
    #[serde(default)]
    pub messages_topic: Option<String>,
}

/// `[mysql] schema_history_recovery`: what a damaged or missing schema history leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaHistoryRecovery {
    /// Stop with an error naming the topic and the two ways out.
    #[default]
    Stop,
    /// Rebuild from information_schema when no DDL ran since the resume position.
    Rebuild,
}

/// PostgreSQL `sslmode`, with libpq's names and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgSslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, plain otherwise.
    #[default]
    Prefer,
    /// TLS or fail; the certificate is checked only when `sslrootcert` is set.
    Require,
    /// TLS, and the server certificate must chain to `sslrootcert`.
    VerifyCa,
    /// As `verify-ca`, and the configured `host` must be a name (or IP address) of the
    /// certificate.
    VerifyFull,
}

impl fmt::Display for PgSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PgSslMode::Disable => "disable",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        })
    }
}

/// MySQL/MariaDB `ssl_mode`, with the MySQL client's names and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MysqlSslMode {
    /// Never TLS.
    Disabled,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    #[default]
    Preferred,
    /// TLS or fail; the certificate is checked only when `ssl_ca` is set.
    Required,
    /// TLS, and the server certificate must chain to `ssl_ca`.
    VerifyCa,
    /// As `verify_ca`, and the configured `host` must be a name of the certificate.
    VerifyIdentity,
}

impl fmt::Display for MysqlSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MysqlSslMode::Disabled => "disabled",
            MysqlSslMode::Preferred => "preferred",
            MysqlSslMode::Required => "required",
            MysqlSslMode::VerifyCa => "verify_ca",
            MysqlSslMode::VerifyIdentity => "verify_identity",
        })
    }
}

fn default_include_query() -> bool {
    DEFAULT_MYSQL_INCLUDE_QUERY
}

/// `[mysql]` of a source file: MySQL/MariaDB-only settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlOptions {
    /// What to do when the schema history topic (`<topic_prefix>.schema-history`) is missing
    /// or damaged: `stop` (default: exit with an error naming the topic and the recovery) or
    /// `rebuild` (rebuild it from information_schema, only when no DDL touched the captured
    /// databases between the resume position and now; otherwise stop as with `stop`). See
    /// docs/mysql-schema-history.md.
    #[serde(default)]
    pub schema_history_recovery: SchemaHistoryRecovery,
    /// Server id the agent uses as a replica; must be unique among the server's replicas.
    /// Default: derived from the source name.
    #[serde(default)]
    pub server_id: Option<u32>,
    /// Databases to capture; empty means all but the system schemas. Default: all.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Connections reading tables in parallel during the snapshot. Default: 2.
    #[serde(default)]
    pub snapshot_parallelism: Option<usize>,
    /// Heartbeat period the server is asked for while the binlog is idle, in milliseconds.
    /// Default: 5000.
    #[serde(default)]
    pub heartbeat_ms: Option<u64>,
    /// Put the SQL statement behind each row change in `source.query` (Debezium's
    /// `include.query`); snapshot rows carry null. The server must write the statements into
    /// the binlog: MariaDB when `binlog_annotate_row_events = ON` (its default), MySQL when
    /// `binlog_rows_query_log_events = ON` (default OFF); the agent warns at start when it is
    /// off. Costs the statement text in every row event. Statements may contain values (also
    /// of columns not captured): enable only where that is acceptable. Default: false.
    #[serde(default = "default_include_query")]
    pub include_query: bool,
    /// TLS to the server: `disabled`, `preferred` (TLS when offered, unverified), `required`
    /// (TLS, certificate checked only with `ssl_ca`), `verify_ca` (chains to `ssl_ca`) or
    /// `verify_identity` (that, and `host` is a name in the certificate). Default: `preferred`.
    #[serde(default)]
    pub ssl_mode: MysqlSslMode,
    /// PEM file of the CA certificate(s) that signed the server's certificate. Required by
    /// `verify_ca` and `verify_identity`. Default: none.
    #[serde(default)]
    pub ssl_ca: Option<PathBuf>,
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
    /// Initial snapshot settings.
    #[serde(default)]
    pub snapshot: SnapshotConfig,
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

/// A secret string: deserialized like a string, never printed.
///
/// Numbers and booleans are taken as their text, because an environment override such as
/// `CDC_AGENT__SOURCES__X__PASSWORD=0123` reaches us parsed as a number.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        // Asked for as a string (so schema tracers such as the example-config test can
        // follow it); figment still hands numbers and booleans to the visitor as they are.
        d.deserialize_string(V)
    }
}

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is handed to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A configuration error: where it is, which key, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {}{problem}; fix: {fix}", key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (or environment variable family) the bad value came from.
    pub origin: String,
    /// Dotted key path, when the error concerns one key.
    pub key: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl ConfigError {
    fn new(
        origin: impl fmt::Display,
        key: Option<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            origin: origin.to_string(),
            key,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Loads the main file, every `*.toml` in the connectors directory, and the environment.
pub fn load(main_path: &Path) -> Result<Config, ConfigError> {
    load_with_env(main_path, std::env::vars())
}

/// [`load`] with an explicit environment, so tests need not mutate the process environment.
pub fn load_with_env(
    main_path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    load_selected(main_path, None, env)
}

/// Loads the main file and, when `source_file` is given, that one source file instead of the
/// connectors directory: the way one systemd instance (`cdc-agent@NAME`) runs one source while
/// sharing the main file with the others.
pub fn load_selected(
    main_path: &Path,
    source_file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    check_toml_file(main_path)?;
    let main_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| {
            !k[ENV_PREFIX.len()..]
                .to_ascii_uppercase()
                .starts_with("SOURCES__")
        })
        .cloned()
        .collect();
    let main: MainConfig = extract(
        Figment::from(Toml::file(main_path)).merge(env_provider(ENV_PREFIX, &main_env)),
        main_path,
        ENV_PREFIX,
    )?;
    let main = resolve_main(main, main_path)?;

    if let Some(file) = source_file {
        let source = load_source(file, &env)?;
        return Ok(Config {
            path: main_path.to_path_buf(),
            main,
            sources: vec![source],
        });
    }
    let dir = if main.agent.connectors_dir.is_absolute() {
        main.agent.connectors_dir.clone()
    } else {
        main_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&main.agent.connectors_dir)
    };
    let mut files = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
                    files.push(p);
                }
            }
        }
        Err(e) => {
            return Err(ConfigError::new(
                main_path.display(),
                Some("agent.connectors_dir".into()),
                format!("cannot read directory {}: {e}", dir.display()),
                "create the directory or point agent.connectors_dir at the folder of source files",
            ))
        }
    }
    files.sort();

    let mut sources: Vec<SourceConfig> = Vec::with_capacity(files.len());
    for file in files {
        let source = load_source(&file, &env)?;
        if let Some(other) = sources.iter().find(|s| s.name == source.name) {
            return Err(ConfigError::new(
                file.display(),
                Some("name".into()),
                format!(
                    "source name `{}` is already used by {}",
                    source.name,
                    other.file.display()
                ),
                "give every source a unique name",
            ));
        }
        sources.push(source);
    }
    Ok(Config {
        path: main_path.to_path_buf(),
        main,
        sources,
    })
}

fn load_source(file: &Path, env: &[(String, String)]) -> Result<SourceConfig, ConfigError> {
    let text = check_toml_file(file)?;
    // The name selects the environment overrides, so read it before the full extraction.
    let name = text
        .get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            ConfigError::new(
                file.display(),
                Some("name".into()),
                "missing string `name`",
                "add `name = \"<unique source name>\"` at the top of the file",
            )
        })?
        .to_owned();
    let prefix = source_env_prefix(&name);
    let mut source: SourceConfig = extract(
        Figment::from(Toml::file(file)).merge(env_provider(&prefix, env)),
        file,
        &prefix,
    )?;
    source.file = file.to_path_buf();
    validate_source(source)
}

fn validate_source(mut s: SourceConfig) -> Result<SourceConfig, ConfigError> {
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
    if let Some(path) = &s.password_file {
        s.password = Some(read_secret_file(path, &origin, "password_file")?);
    }
    Ok(s)
}

fn resolve_main(mut m: MainConfig, path: &Path) -> Result<MainConfig, ConfigError> {
    let origin = path.display().to_string();
    const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
    if !CODECS.contains(&m.kafka.compression.as_str()) {
        return Err(ConfigError::new(
            origin,
            Some("kafka.compression".into()),
            format!("unknown codec `{}`", m.kafka.compression),
            "use one of none, gzip, snappy, lz4, zstd",
        ));
    }
    if m.kafka.bootstrap_servers.trim().is_empty() {
        return Err(ConfigError::new(
            origin,
            Some("kafka.bootstrap_servers".into()),
            "empty bootstrap server list",
            "set it to `host:port[,host:port…]`",
        ));
    }
    if !(m.schema_registry.url.starts_with("http://")
        || m.schema_registry.url.starts_with("https://"))
    {
        return Err(ConfigError::new(
            origin,
            Some("schema_registry.url".into()),
            format!("`{}` is not an http(s) URL", m.schema_registry.url),
            "set it to the registry's base URL, e.g. http://127.0.0.1:8081",
        ));
    }
    resolve_kafka_security(&mut m.kafka, &origin)?;
    if let Some(ca) = &m.schema_registry.ca_file {
        check_readable(ca, &origin, "schema_registry.ca_file")?;
    }
    if m.http.enabled && m.http.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(ConfigError::new(
            origin,
            Some("http.listen".into()),
            format!("`{}` is not an address with a port", m.http.listen),
            "set it to `host:port` with an IP address, e.g. 127.0.0.1:9745 (or [::1]:9745)",
        ));
    }
    if let Some(file) = &m.schema_registry.password_file {
        m.schema_registry.password = Some(read_secret_file(
            file,
            &origin,
            "schema_registry.password_file",
        )?);
    }
    Ok(m)
}

/// Reads a `*_file` secret: its first line, without the line break.
fn read_secret_file(path: &Path, origin: &str, key: &str) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            origin,
            Some(key.into()),
            format!("cannot read {}: {e}", path.display()),
            "point it at a readable file whose first line is the secret",
        )
    })?;
    let first = text.lines().next().unwrap_or_default();
    if first.is_empty() {
        return Err(ConfigError::new(
            origin,
            Some(key.into()),
            format!("{} is empty", path.display()),
            "write the secret on the file's first line",
        ));
    }
    Ok(Secret::new(first))
}

/// A certificate or key file must be readable now, not at the first connection hours later.
fn check_readable(path: &Path, origin: &str, key: &str) -> Result<(), ConfigError> {
    std::fs::File::open(path).map(drop).map_err(|e| {
        ConfigError::new(
            origin,
            Some(key.into()),
            format!("cannot read {}: {e}", path.display()),
            "point it at a readable PEM file",
        )
    })
}

/// Checks that the `[kafka]` security keys fit together and reads `sasl_password_file`.
fn resolve_kafka_security(k: &mut KafkaConfig, origin: &str) -> Result<(), ConfigError> {
    let bad = |key: &str, problem: String, fix: String| {
        Err(ConfigError::new(
            origin,
            Some(format!("kafka.{key}")),
            problem,
            fix,
        ))
    };
    if let Some(file) = &k.sasl_password_file {
        k.sasl_password = Some(read_secret_file(file, origin, "kafka.sasl_password_file")?);
    }
    let protocol = k.security_protocol;
    let sasl_keys = [
        ("sasl_mechanism", k.sasl_mechanism.is_some()),
        ("sasl_username", k.sasl_username.is_some()),
        ("sasl_password", k.sasl_password.is_some()),
    ];
    if protocol.is_sasl() {
        let custom = k.properties.contains_key("sasl.mechanism")
            || k.properties.contains_key("sasl.mechanisms");
        if !custom {
            for (key, set) in sasl_keys {
                if !set {
                    return bad(
                        key,
                        format!("security_protocol = {} needs `{key}`", protocol.as_str()),
                        format!("add `{key} = …` to [kafka] (a password may come from sasl_password_file or CDC_AGENT__KAFKA__SASL_PASSWORD)"),
                    );
                }
            }
        }
    } else if let Some((key, _)) = sasl_keys.iter().find(|(_, set)| *set) {
        return bad(
            key,
            format!(
                "`{key}` is set but security_protocol = {} does not use SASL",
                protocol.as_str()
            ),
            "set security_protocol = \"SASL_SSL\" (or SASL_PLAINTEXT), or remove the sasl_* keys"
                .into(),
        );
    }
    let tls_files = [
        ("ssl_ca_location", &k.ssl_ca_location),
        ("ssl_certificate_location", &k.ssl_certificate_location),
        ("ssl_key_location", &k.ssl_key_location),
    ];
    for (key, path) in tls_files {
        let Some(path) = path else { continue };
        if !protocol.is_tls() {
            return bad(
                key,
                format!(
                    "`{key}` is set but security_protocol = {} does not use TLS",
                    protocol.as_str()
                ),
                "set security_protocol = \"SSL\" (or SASL_SSL), or remove the ssl_* keys".into(),
            );
        }
        check_readable(path, origin, &format!("kafka.{key}"))?;
    }
    if k.ssl_certificate_location.is_some() != k.ssl_key_location.is_some() {
        return bad(
            "ssl_key_location",
            "a client certificate needs both ssl_certificate_location and ssl_key_location".into(),
            "set both keys, or neither".into(),
        );
    }
    Ok(())
}

/// Checks a PostgreSQL source's TLS keys.
fn validate_pg_tls(pg: &PostgresOptions, origin: &str) -> Result<(), ConfigError> {
    let bad = |key: &str, problem: String, fix: &str| {
        Err(ConfigError::new(
            origin,
            Some(format!("postgres.{key}")),
            problem,
            fix,
        ))
    };
    let needs_root = matches!(pg.sslmode, PgSslMode::VerifyCa | PgSslMode::VerifyFull);
    if needs_root && pg.sslrootcert.is_none() {
        return bad(
            "sslrootcert",
            format!("sslmode = {} checks the server certificate but no CA is given", pg.sslmode),
            "set sslrootcert to the PEM file of the CA that signed the server certificate (or \"system\" for the system's trusted roots), or lower sslmode to require",
        );
    }
    if pg.sslmode == PgSslMode::Disable && (pg.sslrootcert.is_some() || pg.sslcert.is_some()) {
        return bad(
            "sslmode",
            "sslmode = disable but TLS files are configured".into(),
            "remove sslrootcert/sslcert/sslkey or set sslmode to require, verify-ca or verify-full",
        );
    }
    if pg.sslcert.is_some() != pg.sslkey.is_some() {
        return bad(
            "sslkey",
            "a client certificate needs both sslcert and sslkey".into(),
            "set both keys, or neither",
        );
    }
    for (key, path) in [
        ("sslrootcert", &pg.sslrootcert),
        ("sslcert", &pg.sslcert),
        ("sslkey", &pg.sslkey),
    ] {
        match path {
            Some(p) if !(key == "sslrootcert" && p == Path::new(SYSTEM_ROOTS)) => {
                check_readable(p, origin, &format!("postgres.{key}"))?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a MySQL source's TLS keys.
fn validate_mysql_tls(my: &MysqlOptions, origin: &str) -> Result<(), ConfigError> {
    let needs_ca = matches!(
        my.ssl_mode,
        MysqlSslMode::VerifyCa | MysqlSslMode::VerifyIdentity
    );
    if needs_ca && my.ssl_ca.is_none() {
        return Err(ConfigError::new(
            origin,
            Some("mysql.ssl_ca".into()),
            format!("ssl_mode = {} checks the server certificate but no CA is given", my.ssl_mode),
            "set ssl_ca to the PEM file of the CA that signed the server certificate, or lower ssl_mode to required",
        ));
    }
    if let Some(ca) = &my.ssl_ca {
        if my.ssl_mode == MysqlSslMode::Disabled {
            return Err(ConfigError::new(
                origin,
                Some("mysql.ssl_mode".into()),
                "ssl_mode = disabled but ssl_ca is set",
                "remove ssl_ca or set ssl_mode to required, verify_ca or verify_identity",
            ));
        }
        check_readable(ca, origin, "mysql.ssl_ca")?;
    }
    Ok(())
}

/// Reads and syntax-checks a TOML file, so a missing file or a syntax error is reported with
/// its line instead of being treated as an empty file.
fn check_toml_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path.display(),
            None,
            format!("cannot read config file: {e}"),
            "check the path given with --config (or the connectors directory)",
        )
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        ConfigError::new(
            format!("{}:{line}", path.display()),
            None,
            format!("TOML syntax error: {}", e.message().trim()),
            "correct the TOML syntax on that line",
        )
    })
}

/// Environment overrides as a figment provider. figment's own `Env` reads the process
/// environment; this one takes the variables as data so that loading is a pure function of
/// (files, environment) and tests need not mutate global state.
struct EnvOverrides {
    prefix: String,
    vars: Vec<(String, String)>,
}

impl figment::Provider for EnvOverrides {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variables {}*", self.prefix))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        fn merge(into: &mut Dict, from: Dict) {
            for (k, v) in from {
                match (into.get_mut(&k), v) {
                    (Some(Value::Dict(_, a)), Value::Dict(_, b)) => merge(a, b),
                    (_, v) => {
                        into.insert(k, v);
                    }
                }
            }
        }
        let mut dict = Dict::new();
        for (k, v) in &self.vars {
            let Some(rest) = strip_prefix_ci(k, &self.prefix) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if key.is_empty() {
                continue;
            }
            let value: Value = match v.parse::<Value>() {
                // "0123" is text (a PIN, a password), not the number 123.
                Ok(Value::Num(..)) if keeps_text(v) => Value::from(v.clone()),
                Ok(parsed) => parsed,
                Err(_) => Value::from(v.clone()),
            };
            if let Some(nested) = figment::util::nest(&key, value).into_dict() {
                merge(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Whether a numeric-looking environment value would lose characters as a number (a leading
/// zero or sign).
fn keeps_text(v: &str) -> bool {
    let digits = v.trim_start_matches('-');
    v.starts_with('+') || (digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0."))
}

fn strip_prefix_ci<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    (key.len() >= prefix.len() && key[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &key[prefix.len()..])
}

fn env_provider(prefix: &str, env: &[(String, String)]) -> EnvOverrides {
    EnvOverrides {
        prefix: prefix.to_string(),
        vars: env.to_vec(),
    }
}

fn extract<T: serde::de::DeserializeOwned>(
    figment: Figment,
    file: &Path,
    env_prefix: &str,
) -> Result<T, ConfigError> {
    figment.extract().map_err(|e| explain(e, file, env_prefix))
}

/// Turns a figment error into one line with origin, key and fix.
fn explain(e: figment::Error, file: &Path, env_prefix: &str) -> ConfigError {
    use figment::error::Kind;
    let origin = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
        Some(figment::Source::File(p)) => p.display().to_string(),
        _ => match &e.metadata {
            Some(m) if m.name.starts_with("environment") => {
                format!(
                    "environment variable {env_prefix}{}",
                    e.path.join("__").to_ascii_uppercase()
                )
            }
            _ => file.display().to_string(),
        },
    };
    let key = (!e.path.is_empty()).then(|| e.path.join("."));
    let (problem, fix) = match &e.kind {
        Kind::UnknownField(field, expected) => (
            format!("unknown key `{field}`"),
            if expected.is_empty() {
                "remove it: this section takes no keys".to_string()
            } else {
                format!("remove it or use one of: {}", expected.join(", "))
            },
        ),
        Kind::MissingField(field) => (
            format!("missing required key `{field}`"),
            format!("add `{field} = …` to this section"),
        ),
        Kind::InvalidType(actual, expected) => (
            format!("wrong type: found {actual}, expected {expected}"),
            format!("set it to {expected}"),
        ),
        Kind::InvalidValue(actual, expected) => (
            format!("invalid value {actual}, expected {expected}"),
            format!("set it to {expected}"),
        ),
        Kind::UnknownVariant(v, expected) => (
            format!("unknown value `{v}`"),
            format!("use one of: {}", expected.join(", ")),
        ),
        other => (other.to_string(), "see config.example.toml".to_string()),
    };
    // For a missing field the path names the section; put the field into the key.
    let key = match (&e.kind, key) {
        (Kind::MissingField(f), Some(k)) => Some(format!("{k}.{f}")),
        (Kind::MissingField(f), None) => Some(f.to_string()),
        (Kind::UnknownField(f, _), Some(k)) if !k.ends_with(f.as_str()) => Some(format!("{k}.{f}")),
        (Kind::UnknownField(f, _), None) => Some(f.clone()),
        (_, k) => k,
    };
    ConfigError::new(origin, key, problem, fix)
}

/// `CDC_AGENT__SOURCES__<NAME>__` with the name upper-cased and `-` turned into `_`.
pub fn source_env_prefix(name: &str) -> String {
    let norm: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{ENV_PREFIX}SOURCES__{norm}__")
}

fn default_connectors_dir() -> PathBuf {
    PathBuf::from(DEFAULT_CONNECTORS_DIR)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_event_store_topic() -> String {
    DEFAULT_EVENT_STORE_TOPIC.to_string()
}
fn default_compression() -> String {
    DEFAULT_COMPRESSION.to_string()
}
fn default_topic_partitions() -> i32 {
    DEFAULT_TOPIC_PARTITIONS
}
fn default_topic_replication() -> i32 {
    DEFAULT_TOPIC_REPLICATION
}
fn default_txn_max_records() -> usize {
    DEFAULT_TXN_MAX_RECORDS
}
fn default_txn_max_ms() -> u64 {
    DEFAULT_TXN_MAX_MS
}
fn default_http_listen() -> String {
    DEFAULT_HTTP_LISTEN.to_string()
}
fn default_ready_max_lag_seconds() -> u64 {
    DEFAULT_READY_MAX_LAG_SECONDS
}
fn default_placeholder() -> String {
    DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER.to_string()
}
fn default_host() -> String {
    "127.0.0.1".to_string()
}
fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests;
