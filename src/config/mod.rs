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
//!
//! One file per section (`kafka.rs`, `schema_registry.rs`, `event_store.rs`, `http.rs`,
//! `agent.rs`, `source.rs`, `postgres.rs`, `mysql.rs`), plus `secret.rs`, `error.rs` and
//! `load.rs`; every item is re-exported here, so paths are `crate::config::Name`. The
//! defaults stay here, in one list.

use std::path::PathBuf;

use serde::Deserialize;

mod agent;
mod error;
mod event_store;
mod http;
mod kafka;
mod load;
mod mysql;
mod outbox;
mod postgres;
mod schema_registry;
mod secret;
mod select;
mod source;

pub use agent::*;
pub use error::*;
pub use event_store::*;
pub use http::*;
pub use kafka::*;
pub use load::*;
pub use mysql::*;
pub use outbox::*;
pub use postgres::*;
pub use schema_registry::*;
pub use secret::*;
pub use select::*;
pub use source::*;

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

/// Default compression codec for produced batches: lz4, measured cheapest in agent CPU per
/// row of the codecs that compress (bench/RESULTS.md, issue 16: about 1 µs a row less than
/// zstd, 10 MiB less peak RSS); zstd packs tighter when disk or network cost more than CPU.
pub const DEFAULT_COMPRESSION: &str = "lz4";

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
    /// The Confluent-compatible schema registry; not needed when every source writes JSON.
    #[serde(default)]
    pub schema_registry: SchemaRegistryConfig,
    /// The long-term event store (ledger) topic.
    #[serde(default)]
    pub event_store: EventStoreConfig,
    /// The HTTP endpoint: health, readiness, metrics.
    #[serde(default)]
    pub http: HttpConfig,
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
