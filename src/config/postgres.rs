//! `[postgres]` of a source file and PostgreSQL's TLS keys.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;

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
    /// Answer a server that asks for the password in clear text (pg_hba.conf method
    /// `password`) over a connection without TLS. Off by default: the password would cross
    /// the network readable by anyone on the path; use `scram-sha-256` or TLS instead.
    /// Default: `false`.
    #[serde(default)]
    pub allow_cleartext_password: bool,
    /// Topic for logical decoding messages (`pg_logical_emit_message`): key = prefix, value =
    /// content, headers with source, position, transaction. Default: none (not published).
    #[serde(default)]
    pub messages_topic: Option<String>,
    /// Create the replication slot as a failover slot (PostgreSQL 17+, `FAILOVER true`), so
    /// that with `sync_replication_slots` on a physical standby the slot, and the agent's
    /// position in it, survives a promotion. Refused on older servers. Only applies when the
    /// agent creates the slot. Default: `false`.
    #[serde(default)]
    pub failover_slot: bool,
    /// Publish a partitioned table's changes as the table's own (PostgreSQL 13+,
    /// `publish_via_partition_root`): events of every partition go to the parent's topic under
    /// the parent's schema, and the snapshot reads the parent. Set on a publication the agent
    /// creates; an existing publication must have it (the agent stops naming the ALTER
    /// PUBLICATION otherwise). Refused on PostgreSQL 12. Default: `false` (one topic per
    /// partition).
    #[serde(default)]
    pub publish_via_partition_root: bool,
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

/// Checks a PostgreSQL source's TLS keys.
pub(super) fn validate_pg_tls(pg: &PostgresOptions, origin: &str) -> Result<(), ConfigError> {
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
