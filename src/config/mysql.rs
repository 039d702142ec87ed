//! `[mysql]` of a source file and MySQL's TLS keys.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::*;

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

pub(super) fn default_include_query() -> bool {
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

/// Checks a MySQL source's TLS keys.
pub(super) fn validate_mysql_tls(my: &MysqlOptions, origin: &str) -> Result<(), ConfigError> {
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
