//! `apply.toml`: what `cdc-agent apply` reads, where from, and where it writes.
//!
//! A file of its own (a read model's service rarely has the agent's file), with the same rules
//! as the agent's: unknown keys are errors, every error is one line naming file, key and fix,
//! and `CDC_APPLY__SECTION__KEY` environment variables override keys (secrets).
//!
//! ```text
//! [kafka]            brokers and security (the agent's [kafka] keys that concern a consumer)
//! [schema_registry]  the registry the agent registers its schemas in (same keys as the agent's)
//! [source]           topics = [..] or topic_regex = "..": the table topics to apply
//! [target]           kind = "postgres" (url) or "sqlite" (path); schema; offsets_table
//! [apply]            name, schema_evolution, batch bounds, the TOAST placeholder
//! [tables."s.t"]     per source table (or topic): target name, column renames and exclusions
//! [http]             /healthz, /readyz, /metrics (off unless `listen` is set)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::Figment;
use serde::Deserialize;

use crate::config::{
    check_readable, check_toml_file, env_provider, extract, read_secret_file,
    resolve_kafka_security, ConfigError, KafkaConfig, KafkaSecurityProtocol, SaslMechanism,
    SchemaRegistryConfig, Secret,
};

/// Prefix of the environment overrides of `apply.toml`.
pub const APPLY_ENV_PREFIX: &str = "CDC_APPLY__";

/// Default `[apply] name`: the key of this consumer's rows in the offsets table.
pub const DEFAULT_APPLY_NAME: &str = "apply";

/// Default bound of events per target transaction. Large enough that a commit's fsync is
/// shared by thousands of rows, small enough that a transaction stays short.
pub const DEFAULT_BATCH_MAX_EVENTS: usize = 5_000;

/// Default bound of how long a target transaction may wait for more events after its first
/// one: the latency a read model adds on top of the agent's.
pub const DEFAULT_BATCH_MAX_MS: u64 = 200;

/// Default offsets table in the target.
pub const DEFAULT_OFFSETS_TABLE: &str = "cdc_apply_offsets";

/// Default target schema (PostgreSQL).
pub const DEFAULT_TARGET_SCHEMA: &str = "public";

/// The whole of `apply.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyConfig {
    /// The file it was loaded from (not a key).
    #[serde(skip)]
    pub path: PathBuf,
    /// The brokers.
    pub kafka: ApplyKafka,
    /// The schema registry.
    pub schema_registry: SchemaRegistryConfig,
    /// Which topics to read.
    pub source: ApplySource,
    /// Where to write.
    pub target: ApplyTarget,
    /// How to apply.
    #[serde(default)]
    pub apply: ApplyOptions,
    /// Per-table mapping, keyed by the source's `schema.table` or by a table topic's name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableMapping>,
    /// The health and metrics endpoint.
    #[serde(default)]
    pub http: ApplyHttp,
    /// Where partitions the target holds no offset for start (`--from`; not a key).
    #[serde(skip)]
    pub start: StartAt,
}

/// `[tables."<schema>.<table>"]` (or `[tables."<topic>"]`): how one source table lands in the
/// target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    /// Target table name. Default: the source table's name (without its schema).
    #[serde(default)]
    pub target: Option<String>,
    /// Source column → target column renames. Default: none.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Source columns left out of the target (never key columns). Default: none.
    #[serde(default)]
    pub exclude_columns: Vec<String>,
}

/// `[http]`: the health and metrics endpoint of `apply`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyHttp {
    /// `host:port` to serve `/healthz`, `/readyz` and `/metrics` on (port 0: any free port).
    /// Default: none (no endpoint), so several applies on a host never collide by default.
    #[serde(default)]
    pub listen: Option<String>,
    /// `/readyz` answers 503 while a partition is more than this many records behind its high
    /// watermark. Default: 1000.
    #[serde(default = "default_ready_max_lag_records")]
    pub ready_max_lag_records: u64,
}

impl Default for ApplyHttp {
    fn default() -> Self {
        Self {
            listen: None,
            ready_max_lag_records: DEFAULT_READY_MAX_LAG_RECORDS,
        }
    }
}

/// Default `[http] ready_max_lag_records`: about one default batch's worth, so a read model
/// that keeps up is ready and one that replays a backlog is not.
pub const DEFAULT_READY_MAX_LAG_RECORDS: u64 = 1_000;

fn default_ready_max_lag_records() -> u64 {
    DEFAULT_READY_MAX_LAG_RECORDS
}

/// `--from`: where a partition the target holds no offset for starts. Stored offsets always
/// win (a restart continues where the target is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StartAt {
    /// The partition's first offset.
    #[default]
    Earliest,
    /// The partition's end: only events produced from now on.
    Latest,
    /// The first record with a timestamp at or after this many milliseconds since the epoch.
    Time(i64),
    /// Explicit next offsets by (topic, partition); partitions not listed start at the
    /// earliest offset.
    Offsets(BTreeMap<(String, i32), i64>),
}

impl std::str::FromStr for StartAt {
    type Err = String;

    /// `earliest`, `latest`, an RFC 3339 UTC time (`2026-12-01T00:00:00Z`), or offsets
    /// `topic:partition=offset[,…]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" => return Ok(StartAt::Earliest),
            "latest" => return Ok(StartAt::Latest),
            _ => {}
        }
        if let Some(ms) = crate::ledger::parse_rfc3339_ms(s) {
            return Ok(StartAt::Time(ms));
        }
        let bad = || {
            format!(
                "`{s}` is neither `earliest`, `latest`, an RFC 3339 UTC time \
                 (2026-12-01T00:00:00Z) nor offsets `topic:partition=offset[,…]`"
            )
        };
        let mut out = BTreeMap::new();
        for part in s.split(',') {
            let (tp, offset) = part.trim().rsplit_once('=').ok_or_else(bad)?;
            let (topic, partition) = tp.rsplit_once(':').ok_or_else(bad)?;
            let partition: i32 = partition.parse().map_err(|_| bad())?;
            let offset: i64 = offset.parse().map_err(|_| bad())?;
            if topic.is_empty() || offset < 0 || partition < 0 {
                return Err(bad());
            }
            out.insert((topic.to_string(), partition), offset);
        }
        Ok(StartAt::Offsets(out))
    }
}

/// `[kafka]`: the agent's `[kafka]` keys that a consumer uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyKafka {
    /// Comma-separated `host:port` list. Required.
    pub bootstrap_servers: String,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`. Default: `PLAINTEXT`.
    #[serde(default)]
    pub security_protocol: KafkaSecurityProtocol,
    /// SASL mechanism with `SASL_*`. Default: none.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name. Default: none.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password (prefer `sasl_password_file` or `CDC_APPLY__KAFKA__SASL_PASSWORD`).
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// File whose first line is the SASL password. Default: none.
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// PEM CA file for `SSL`/`SASL_SSL`. Default: the system's roots.
    #[serde(default)]
    pub ssl_ca_location: Option<PathBuf>,
    /// PEM client certificate. Default: none.
    #[serde(default)]
    pub ssl_certificate_location: Option<PathBuf>,
    /// PEM client key. Default: none.
    #[serde(default)]
    pub ssl_key_location: Option<PathBuf>,
    /// Password of an encrypted client key. Default: none.
    #[serde(default)]
    pub ssl_key_password: Option<Secret>,
    /// Extra librdkafka consumer properties (win over the keys above). Default: none.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

impl ApplyKafka {
    /// The agent's client settings with these keys, so the consumer is configured by the
    /// same code as every other client of the agent.
    pub fn client(&self) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: self.bootstrap_servers.clone(),
            compression: crate::config::DEFAULT_COMPRESSION.into(),
            topic_partitions: crate::config::DEFAULT_TOPIC_PARTITIONS,
            topic_replication_factor: crate::config::DEFAULT_TOPIC_REPLICATION,
            create_topics: false,
            transaction_max_records: crate::config::DEFAULT_TXN_MAX_RECORDS,
            transaction_max_ms: crate::config::DEFAULT_TXN_MAX_MS,
            security_protocol: self.security_protocol,
            sasl_mechanism: self.sasl_mechanism,
            sasl_username: self.sasl_username.clone(),
            sasl_password: self.sasl_password.clone(),
            sasl_password_file: self.sasl_password_file.clone(),
            ssl_ca_location: self.ssl_ca_location.clone(),
            ssl_certificate_location: self.ssl_certificate_location.clone(),
            ssl_key_location: self.ssl_key_location.clone(),
            ssl_key_password: self.ssl_key_password.clone(),
            dead_letter_topic: None,
            topic_config: BTreeMap::new(),
            partitions_by_topic: BTreeMap::new(),
            properties: self.properties.clone(),
        }
    }
}

/// `[source]`: the table topics to apply (one of `topics` or `topic_regex`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplySource {
    /// Table topics by name, e.g. `["shop.public.orders"]`. Default: none.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression every table topic to apply matches in full, e.g.
    /// `^shop\.public\..*`. Checked against the cluster's topics at start and every
    /// `[apply] topic_refresh_seconds`, so a table added later is applied too. Default: none.
    #[serde(default)]
    pub topic_regex: Option<String>,
    /// The agent's event-store topic (`[event_store] topic`, e.g. `cdc.events`), read instead
    /// of table topics: its records are routed to tables by their envelope's source block.
    /// Default: none.
    #[serde(default)]
    pub event_store: Option<String>,
    /// Regular expressions a source table's `schema.table` must match in full for its events
    /// to be applied. Default: none (every table).
    #[serde(default)]
    pub include_tables: Vec<String>,
    /// Regular expressions on `schema.table`: matching tables are skipped (their offsets still
    /// move). Wins over `include_tables`. Default: none.
    #[serde(default)]
    pub exclude_tables: Vec<String>,
}

/// `[target]`: the database the read model lives in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyTarget {
    /// `postgres` or `sqlite`. Required.
    pub kind: TargetKind,
    /// PostgreSQL connection string (`postgres://user:pass@host:port/db` or `host=… dbname=…`).
    /// Required with `kind = "postgres"`; prefer `CDC_APPLY__TARGET__URL` for the password.
    #[serde(default)]
    pub url: Option<Secret>,
    /// SQLite database file, created when missing. Required with `kind = "sqlite"`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// PostgreSQL schema the tables (and the offsets table) are created in. Default: `public`.
    #[serde(default = "default_target_schema")]
    pub schema: String,
    /// Table holding the consumed offsets, written in the same transaction as the rows.
    /// Default: `cdc_apply_offsets`.
    #[serde(default = "default_offsets_table")]
    pub offsets_table: String,
}

/// `[target] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// PostgreSQL through tokio-postgres.
    Postgres,
    /// An SQLite file (a local read model).
    Sqlite,
}

/// `[apply] schema_evolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaEvolution {
    /// Tables are created when missing; a new field stops apply with the fix.
    #[default]
    None,
    /// Also add a nullable column for every field a table's schema gains.
    Basic,
}

/// `[apply]`: how events become rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyOptions {
    /// This consumer's name: the key of its rows in the offsets table, so several `apply`s
    /// can share a target. Default: `apply`.
    #[serde(default = "default_apply_name")]
    pub name: String,
    /// `none` or `basic` (add new columns). Default: `none`.
    #[serde(default)]
    pub schema_evolution: SchemaEvolution,
    /// Close a target transaction after this many events. Default: 5000.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// Close a target transaction this many milliseconds after its first event. Default: 200.
    #[serde(default = "default_batch_max_ms")]
    pub batch_max_ms: u64,
    /// The agent's `unavailable_value_placeholder` (Debezium's): a column carrying it kept
    /// its value at the source, so the target keeps its own. Default:
    /// `__debezium_unavailable_value`.
    #[serde(default = "default_placeholder")]
    pub unavailable_value_placeholder: String,
    /// How often `topic_regex` is matched again against the cluster's topics. Default: 30.
    #[serde(default = "default_topic_refresh_seconds")]
    pub topic_refresh_seconds: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            name: default_apply_name(),
            schema_evolution: SchemaEvolution::None,
            batch_max_events: DEFAULT_BATCH_MAX_EVENTS,
            batch_max_ms: DEFAULT_BATCH_MAX_MS,
            unavailable_value_placeholder: default_placeholder(),
            topic_refresh_seconds: default_topic_refresh_seconds(),
        }
    }
}

fn default_apply_name() -> String {
    DEFAULT_APPLY_NAME.into()
}
fn default_batch_max_events() -> usize {
    DEFAULT_BATCH_MAX_EVENTS
}
fn default_batch_max_ms() -> u64 {
    DEFAULT_BATCH_MAX_MS
}
fn default_placeholder() -> String {
    crate::config::DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER.into()
}
fn default_topic_refresh_seconds() -> u64 {
    30
}
fn default_target_schema() -> String {
    DEFAULT_TARGET_SCHEMA.into()
}
fn default_offsets_table() -> String {
    DEFAULT_OFFSETS_TABLE.into()
}

/// Loads `apply.toml` with the process environment's `CDC_APPLY__*` overrides.
pub fn load(path: &Path) -> Result<ApplyConfig, ConfigError> {
    load_with_env(path, std::env::vars())
}

/// [`load`] with an explicit environment.
pub fn load_with_env(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<ApplyConfig, ConfigError> {
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(APPLY_ENV_PREFIX))
        .collect();
    check_toml_file(path)?;
    let cfg: ApplyConfig = extract(
        Figment::from(Toml::file(path)).merge(env_provider(APPLY_ENV_PREFIX, &env)),
        path,
        APPLY_ENV_PREFIX,
    )?;
    validate(cfg, path)
}

fn validate(mut c: ApplyConfig, path: &Path) -> Result<ApplyConfig, ConfigError> {
    let origin = path.display().to_string();
    c.path = path.to_path_buf();
    let err = |key: &str, problem: String, fix: &str| {
        Err(ConfigError::new(
            &origin,
            Some(key.to_string()),
            problem,
            fix.to_string(),
        ))
    };
    if c.kafka.bootstrap_servers.trim().is_empty() {
        return err(
            "kafka.bootstrap_servers",
            "empty bootstrap server list".into(),
            "set it to `host:port[,host:port…]`",
        );
    }
    // The agent's checks of the security keys, on the same struct.
    let mut client = c.kafka.client();
    resolve_kafka_security(&mut client, &origin)?;
    c.kafka.sasl_password = client.sasl_password;
    if !(c.schema_registry.url.starts_with("http://")
        || c.schema_registry.url.starts_with("https://"))
    {
        return err(
            "schema_registry.url",
            format!("`{}` is not an http(s) URL", c.schema_registry.url),
            "set it to the registry's base URL, e.g. http://127.0.0.1:8081",
        );
    }
    if let Some(ca) = &c.schema_registry.ca_file {
        check_readable(ca, &origin, "schema_registry.ca_file")?;
    }
    if let Some(file) = &c.schema_registry.password_file {
        c.schema_registry.password = Some(read_secret_file(
            file,
            &origin,
            "schema_registry.password_file",
        )?);
    }
    let chosen = [
        !c.source.topics.is_empty(),
        c.source.topic_regex.is_some(),
        c.source.event_store.is_some(),
    ];
    match chosen.iter().filter(|x| **x).count() {
        0 => {
            return err(
                "source.topics",
                "no topics to apply".into(),
                "set `topics = [\"<prefix>.<schema>.<table>\", …]`, `topic_regex = \"^<prefix>\\\\..*\"` or `event_store = \"cdc.events\"`",
            )
        }
        1 => {}
        _ => {
            let key = if c.source.event_store.is_some() {
                "source.event_store"
            } else {
                "source.topic_regex"
            };
            return err(
                key,
                "more than one of `topics`, `topic_regex` and `event_store` is set".into(),
                "keep one of them",
            );
        }
    }
    if let Some(re) = &c.source.topic_regex {
        if let Err(e) = regex::Regex::new(&format!("^(?:{re})$")) {
            return err(
                "source.topic_regex",
                format!("not a regular expression: {e}"),
                "correct the expression (Rust regex syntax; it must match a whole topic name)",
            );
        }
    }
    if c.source.event_store.as_deref() == Some("") {
        return err(
            "source.event_store",
            "empty topic name".into(),
            "set it to the agent's [event_store] topic (default `cdc.events`)",
        );
    }
    for (key, list) in [
        ("source.include_tables", &c.source.include_tables),
        ("source.exclude_tables", &c.source.exclude_tables),
    ] {
        for re in list {
            if let Err(e) = regex::Regex::new(&format!("^(?:{re})$")) {
                return err(
                    key,
                    format!("`{re}` is not a regular expression: {e}"),
                    "correct it (Rust regex syntax; it must match a whole `schema.table`)",
                );
            }
        }
    }
    for (name, m) in &c.tables {
        let key = format!("tables.\"{name}\"");
        if m.target
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.contains('\0'))
        {
            return err(
                &format!("{key}.target"),
                "empty table name".into(),
                "set a non-empty target table name, or remove the key",
            );
        }
        if let Some((from, _)) = m.columns.iter().find(|(_, to)| to.is_empty()) {
            return err(
                &format!("{key}.columns"),
                format!("column `{from}` is renamed to an empty name"),
                "give it a non-empty target name",
            );
        }
        if let Some(c) = m
            .exclude_columns
            .iter()
            .find(|c| m.columns.contains_key(*c))
        {
            return err(
                &format!("{key}.exclude_columns"),
                format!("column `{c}` is both renamed and excluded"),
                "keep one of the two",
            );
        }
    }
    if c.http.listen.as_deref() == Some("") {
        return err(
            "http.listen",
            "empty address".into(),
            "set `host:port` (e.g. 127.0.0.1:9746), or remove the key to serve nothing",
        );
    }
    match c.target.kind {
        TargetKind::Postgres if c.target.url.is_none() => {
            return err(
                "target.url",
                "kind = \"postgres\" needs `url`".into(),
                "add `url = \"postgres://user@host:5432/db\"` (or set CDC_APPLY__TARGET__URL)",
            )
        }
        TargetKind::Sqlite if c.target.path.is_none() => {
            return err(
                "target.path",
                "kind = \"sqlite\" needs `path`".into(),
                "add `path = \"/var/lib/<service>/read-model.db\"`",
            )
        }
        _ => {}
    }
    for (key, name) in [
        ("target.schema", &c.target.schema),
        ("target.offsets_table", &c.target.offsets_table),
        ("apply.name", &c.apply.name),
    ] {
        if name.is_empty() || name.contains('\0') {
            return err(key, "empty name".into(), "set a non-empty name");
        }
    }
    if c.apply.batch_max_events == 0 {
        return err(
            "apply.batch_max_events",
            "0 events per transaction".into(),
            "set it to at least 1 (default 5000)",
        );
    }
    if c.apply.topic_refresh_seconds == 0 {
        return err(
            "apply.topic_refresh_seconds",
            "0 seconds".into(),
            "set it to at least 1 (default 30)",
        );
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<ApplyConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("apply.toml");
        std::fs::write(&p, text).unwrap();
        load_with_env(&p, Vec::new())
    }

    const MINIMAL: &str = "[kafka]\nbootstrap_servers = \"127.0.0.1:9092\"\n\
        [schema_registry]\nurl = \"http://127.0.0.1:8081\"\n\
        [source]\ntopics = [\"shop.public.orders\"]\n\
        [target]\nkind = \"postgres\"\nurl = \"postgres://u@127.0.0.1/db\"\n";

    #[test]
    fn a_minimal_file_loads_with_the_documented_defaults() {
        let c = load_text(MINIMAL).unwrap();
        assert_eq!(c.apply.name, "apply");
        assert_eq!(c.apply.batch_max_events, DEFAULT_BATCH_MAX_EVENTS);
        assert_eq!(c.apply.schema_evolution, SchemaEvolution::None);
        assert_eq!(c.target.offsets_table, "cdc_apply_offsets");
        assert_eq!(c.target.schema, "public");
    }

    #[test]
    fn the_shipped_example_loads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("apply.toml.example");
        let c = load_with_env(&p, Vec::new()).unwrap();
        assert_eq!(c.target.kind, TargetKind::Postgres);
        assert_eq!(c.apply.schema_evolution, SchemaEvolution::Basic);
    }

    #[test]
    fn an_unknown_key_names_the_file_the_key_and_the_fix() {
        let e = load_text(&format!("{MINIMAL}[apply]\nbatch_max_event = 3\n")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("apply.toml"), "{text}");
        assert!(text.contains("batch_max_event"), "{text}");
        assert!(text.contains("fix:"), "{text}");
    }

    #[test]
    fn a_postgres_target_without_url_is_refused_with_the_fix() {
        let text = MINIMAL.replace("url = \"postgres://u@127.0.0.1/db\"\n", "");
        let e = load_text(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("target.url"));
    }

    #[test]
    fn topics_and_a_regex_together_are_refused() {
        let text = MINIMAL.replace(
            "[source]\n",
            "[source]\ntopic_regex = \"shop\\\\.public\\\\..*\"\n",
        );
        let e = load_text(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("source.topic_regex"));
    }

    #[test]
    fn an_invalid_regex_is_refused_before_anything_starts() {
        let text = MINIMAL.replace("topics = [\"shop.public.orders\"]", "topic_regex = \"(\"");
        let e = load_text(&text).unwrap_err();
        assert!(e.problem.contains("regular expression"), "{e}");
    }

    #[test]
    fn from_reads_earliest_latest_a_time_and_explicit_offsets() {
        assert_eq!("earliest".parse::<StartAt>(), Ok(StartAt::Earliest));
        assert_eq!("latest".parse::<StartAt>(), Ok(StartAt::Latest));
        assert_eq!(
            "1970-01-01T00:00:01.5Z".parse::<StartAt>(),
            Ok(StartAt::Time(1500))
        );
        let want: BTreeMap<(String, i32), i64> = [
            (("shop.public.orders".to_string(), 0), 120),
            (("shop.public.orders".to_string(), 1), 7),
        ]
        .into();
        assert_eq!(
            "shop.public.orders:0=120, shop.public.orders:1=7".parse::<StartAt>(),
            Ok(StartAt::Offsets(want))
        );
        for bad in ["", "yesterday", "t:x=1", "t:0=-1", ":0=1"] {
            let e = bad.parse::<StartAt>().unwrap_err();
            assert!(
                e.contains("earliest") && e.contains("RFC 3339"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_event_store_excludes_topics_and_a_regex() {
        let text = MINIMAL.replace("[source]\n", "[source]\nevent_store = \"cdc.events\"\n");
        let e = load_text(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("source.event_store"));
        let text = MINIMAL.replace(
            "topics = [\"shop.public.orders\"]",
            "event_store = \"cdc.events\"",
        );
        let c = load_text(&text).unwrap();
        assert_eq!(c.source.event_store.as_deref(), Some("cdc.events"));
    }

    #[test]
    fn table_mappings_and_table_regexes_are_checked_when_loaded() {
        let c = load_text(&format!(
            "{MINIMAL}[tables.\"public.orders\"]\ntarget = \"orders_view\"\n\
             columns = {{ customer_id = \"customer\" }}\nexclude_columns = [\"note\"]\n"
        ))
        .unwrap();
        let m = &c.tables["public.orders"];
        assert_eq!(m.target.as_deref(), Some("orders_view"));
        assert_eq!(m.columns["customer_id"], "customer");
        let e = load_text(&format!(
            "{MINIMAL}[tables.\"public.orders\"]\ncolumns = {{ note = \"n\" }}\n\
             exclude_columns = [\"note\"]\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("tables.\"public.orders\".exclude_columns")
        );
        let text = MINIMAL.replace("[source]\n", "[source]\ninclude_tables = [\"(\"]\n");
        let e = load_text(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("source.include_tables"));
    }

    #[test]
    fn the_endpoint_is_off_unless_listen_is_set() {
        let c = load_text(MINIMAL).unwrap();
        assert_eq!(c.http.listen, None);
        assert_eq!(c.http.ready_max_lag_records, DEFAULT_READY_MAX_LAG_RECORDS);
    }
}
