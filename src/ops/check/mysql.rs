//! Preflight of a MySQL/MariaDB source: connection, binary log on, row format, full row
//! images, row metadata, GTIDs, commit order, binlog retention, the agent's privileges and
//! its snapshot signal table.
//!
//! Server-wide settings are fixed in two places at once: `SET GLOBAL` for the running server
//! and the `[mysqld]` section of my.cnf so a restart keeps them; each fix says both.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use super::Finding;
use crate::config::{SnapshotMode, SourceConfig};
use crate::source::mysql::chunk::{signal_table_of, SignalTable};

/// Binlog retention below which an agent outage of a day would lose its position.
const MIN_RETENTION_SECS: u64 = 24 * 3600;
/// Retention the fixes propose: a week of agent downtime can be bridged.
const PROPOSED_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// Checks one MySQL/MariaDB source.
pub async fn check(src: &SourceConfig) -> Vec<Finding> {
    let target = format!("source {}", src.name);
    let mut out = Vec::new();
    let opts = OptsBuilder::default()
        .ip_or_hostname(src.host.clone())
        .tcp_port(src.port())
        .user(Some(src.user.clone()))
        .pass(src.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(src.database.clone());
    let mut conn = match Conn::new(opts).await {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding::fail(
                &target,
                "connect",
                format!("{}:{} as {}: {e}", src.host, src.port(), src.user),
                format!(
                    "check host, port, user and password in {}; the user must exist for the \
                     agent's host: CREATE USER '{}'@'%' IDENTIFIED BY '…'; (docs/mariadb-setup.md)",
                    src.file.display(),
                    src.user
                ),
            ));
            return out;
        }
    };
    if let Err(e) = checks(&mut conn, src, &target, &mut out).await {
        out.push(Finding::fail(
            &target,
            "server query",
            e.to_string(),
            "the user needs to read server variables and its own grants",
        ));
    }
    let _ = conn.disconnect().await;
    out
}

/// A global variable, `None` when the server has no such variable.
async fn var(conn: &mut Conn, name: &str) -> Result<Option<String>, mysql_async::Error> {
    let row: Option<(String, Option<String>)> = conn
        .exec_first("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,))
        .await?;
    Ok(row.and_then(|(_, v)| v))
}

/// The fix for a server-wide setting: at run time and in my.cnf.
fn set_global(name: &str, value: &str) -> String {
    // Numeric variables refuse a quoted value.
    let sql_value = if value.parse::<u64>().is_ok() {
        value.to_string()
    } else {
        format!("'{value}'")
    };
    format!("SET GLOBAL {name} = {sql_value}; and `{name} = {value}` under [mysqld] in my.cnf")
}

async fn checks(
    conn: &mut Conn,
    src: &SourceConfig,
    target: &str,
    out: &mut Vec<Finding>,
) -> Result<(), mysql_async::Error> {
    let version = var(conn, "version").await?.unwrap_or_default();
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    out.push(Finding::pass(
        target,
        "connect",
        format!(
            "{} {version} at {}:{} as {}",
            if mariadb { "MariaDB" } else { "MySQL" },
            src.host,
            src.port(),
            src.user
        ),
    ));

    let log_bin = var(conn, "log_bin").await?.unwrap_or_default();
    out.push(if log_bin.eq_ignore_ascii_case("ON") || log_bin == "1" {
        Finding::pass(target, "log_bin", "ON")
    } else {
        Finding::fail(
            target,
            "log_bin",
            format!("binary log is `{log_bin}`"),
            "`log_bin = mysql-bin` under [mysqld] in my.cnf, then restart the server",
        )
    });

    for (name, want) in [("binlog_format", "ROW"), ("binlog_row_image", "FULL")] {
        let have = var(conn, name).await?.unwrap_or_default();
        out.push(if have.eq_ignore_ascii_case(want) {
            Finding::pass(target, name, want)
        } else {
            Finding::fail(
                target,
                name,
                format!("is `{have}`, the agent needs `{want}`"),
                format!(
                    "{} (sessions opened before keep the old value: restart the writers or the server)",
                    set_global(name, want)
                ),
            )
        });
    }

    out.push(match var(conn, "binlog_row_metadata").await? {
        Some(v) if v.eq_ignore_ascii_case("FULL") => {
            Finding::pass(target, "binlog_row_metadata", "FULL")
        }
        Some(v) => Finding::warn(
            target,
            "binlog_row_metadata",
            format!("is `{v}`: column names come from the agent's schema history, not the binlog"),
            set_global("binlog_row_metadata", "FULL"),
        ),
        None => Finding::warn(
            target,
            "binlog_row_metadata",
            "not supported by this server: column names come from the agent's schema history",
            "MySQL 8.0.14+ or MariaDB 10.5+ with binlog_row_metadata = FULL",
        ),
    });

    if mariadb {
        let strict = var(conn, "gtid_strict_mode").await?.unwrap_or_default();
        out.push(if strict.eq_ignore_ascii_case("ON") || strict == "1" {
            Finding::pass(target, "GTID", "MariaDB GTIDs, gtid_strict_mode ON")
        } else {
            Finding::warn(
                target,
                "GTID",
                "gtid_strict_mode is OFF: an out-of-order GTID would not be refused",
                set_global("gtid_strict_mode", "ON"),
            )
        });
    } else {
        let mode = var(conn, "gtid_mode").await?.unwrap_or_default();
        out.push(if mode.eq_ignore_ascii_case("ON") {
            Finding::pass(target, "GTID", "gtid_mode ON")
        } else {
            Finding::warn(
                target,
                "GTID",
                format!("gtid_mode is `{mode}`: positions are file/offset and do not survive a failover"),
                "SET GLOBAL enforce_gtid_consistency = ON; then step gtid_mode through \
                 OFF_PERMISSIVE, ON_PERMISSIVE to ON (SET GLOBAL gtid_mode = …), and set both in my.cnf",
            )
        });
    }

    if !mariadb {
        // MariaDB always commits in binlog order; MySQL only with binlog_order_commits, which
        // snapshot watermarks rely on (src/source/mysql/chunk.rs).
        let order = var(conn, "binlog_order_commits").await?.unwrap_or_default();
        out.push(if order.eq_ignore_ascii_case("ON") || order == "1" {
            Finding::pass(target, "binlog_order_commits", "ON")
        } else {
            Finding::fail(
                target,
                "binlog_order_commits",
                format!(
                    "is `{order}`: transactions may become visible out of binlog order, and a \
                     snapshot chunk could miss a change its low watermark follows"
                ),
                set_global("binlog_order_commits", "ON"),
            )
        });
    }

    retention(conn, target, out).await?;
    privileges(conn, src, mariadb, target, out).await?;
    signal_table(conn, src, target, out).await?;
    Ok(())
}

/// Whether a `SHOW GRANTS` line grants `privilege` on `db`.`table` (globally, on the
/// database or on the table).
fn grants_on(grant: &str, privilege: &str, db: &str, table: &str) -> bool {
    let g = grant.to_ascii_uppercase();
    let Some((privs, rest)) = g.strip_prefix("GRANT ").and_then(|g| g.split_once(" ON ")) else {
        return false;
    };
    let (db, table) = (db.to_ascii_uppercase(), table.to_ascii_uppercase());
    let scope = rest.split(" TO ").next().unwrap_or("").trim();
    let covers =
        scope == "*.*" || scope == format!("`{db}`.*") || scope == format!("`{db}`.`{table}`");
    covers
        && privs
            .split(',')
            .any(|p| p.trim() == "ALL PRIVILEGES" || p.trim() == privilege)
}

/// The snapshot signal table: it exists and the agent may insert into it, or the agent may
/// create it.
async fn signal_table(
    conn: &mut Conn,
    src: &SourceConfig,
    target: &str,
    out: &mut Vec<Finding>,
) -> Result<(), mysql_async::Error> {
    let Some((database, table)) = signal_table_of(src) else {
        if src.snapshot.mode != SnapshotMode::Never {
            out.push(Finding::fail(
                target,
                "signal table",
                "no database names it (the capture lists none and the source sets none)",
                format!(
                    "set [snapshot] signal_table = \"database.table\" in {}",
                    src.file.display()
                ),
            ));
        }
        return Ok(());
    };
    let who: String = conn
        .query_first("SELECT CURRENT_USER()")
        .await?
        .unwrap_or_else(|| src.user.clone());
    let grantee = match who.rsplit_once('@') {
        Some((u, h)) => format!("'{u}'@'{h}'"),
        None => format!("'{who}'"),
    };
    let signal = SignalTable {
        database,
        table,
        grantee,
    };
    let grants: Vec<String> = conn.query("SHOW GRANTS FOR CURRENT_USER()").await?;
    let may = |p: &str| {
        grants
            .iter()
            .any(|g| grants_on(g, p, &signal.database, &signal.table))
    };
    let exists: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND \
             TABLE_NAME = ?",
            (&signal.database, &signal.table),
        )
        .await?;
    let exists = exists.unwrap_or(0) > 0;
    let fix = format!("{}; and {};", signal.create_sql(), signal.grant_sql());
    out.push(match (exists, may("INSERT"), may("CREATE")) {
        (true, true, _) => Finding::pass(
            target,
            "signal table",
            format!("{} (snapshot watermarks and signals)", signal.name()),
        ),
        (true, false, _) => Finding::fail(
            target,
            "signal table",
            format!(
                "{} exists but {} may not insert into it ([snapshot] signal_table)",
                signal.name(),
                signal.grantee
            ),
            format!("{};", signal.grant_sql()),
        ),
        (false, true, true) => Finding::pass(
            target,
            "signal table",
            format!(
                "{} is missing; the agent creates it at start",
                signal.name()
            ),
        ),
        (false, _, _) => Finding::fail(
            target,
            "signal table",
            format!(
                "{} is missing and {} may not create it and insert into it \
                 ([snapshot] signal_table)",
                signal.name(),
                signal.grantee
            ),
            fix,
        ),
    });
    Ok(())
}

async fn retention(
    conn: &mut Conn,
    target: &str,
    out: &mut Vec<Finding>,
) -> Result<(), mysql_async::Error> {
    // binlog_expire_logs_seconds (MySQL 8, MariaDB 10.6+) wins; older MariaDB: expire_logs_days.
    let secs: Option<u64> = match var(conn, "binlog_expire_logs_seconds").await? {
        Some(s) => s.parse().ok(),
        None => var(conn, "expire_logs_days")
            .await?
            .and_then(|d| d.parse::<f64>().ok())
            .map(|d| (d * 86400.0) as u64),
    };
    let fix = format!(
        "{} (or expire_logs_days = 7 on servers without it)",
        set_global(
            "binlog_expire_logs_seconds",
            &PROPOSED_RETENTION_SECS.to_string()
        )
    );
    out.push(match secs {
        Some(0) => Finding::warn(
            target,
            "binlog retention",
            "binary logs are never purged: the disk fills up",
            fix,
        ),
        Some(s) if s < MIN_RETENTION_SECS => Finding::warn(
            target,
            "binlog retention",
            format!(
                "{s} s: an agent down longer than that loses its position and must snapshot again"
            ),
            fix,
        ),
        Some(s) => Finding::pass(
            target,
            "binlog retention",
            format!("{:.1} days", s as f64 / 86400.0),
        ),
        None => Finding::warn(target, "binlog retention", "unknown", fix),
    });
    Ok(())
}

async fn privileges(
    conn: &mut Conn,
    src: &SourceConfig,
    mariadb: bool,
    target: &str,
    out: &mut Vec<Finding>,
) -> Result<(), mysql_async::Error> {
    let grants: Vec<String> = conn.query("SHOW GRANTS FOR CURRENT_USER()").await?;
    let global: Vec<String> = grants
        .iter()
        .filter(|g| g.to_ascii_uppercase().contains(" ON *.* "))
        .map(|g| g.to_ascii_uppercase())
        .collect();
    let has = |p: &str| {
        global
            .iter()
            .any(|g| g.contains("ALL PRIVILEGES") || g.contains(p))
    };
    let databases = src
        .mysql
        .as_ref()
        .map(|m| m.databases.clone())
        .unwrap_or_default();
    // SELECT per captured database is enough; without a list the agent reads every database.
    let select_ok = has("SELECT")
        || (!databases.is_empty()
            && databases.iter().all(|db| {
                grants.iter().any(|g| {
                    let g = g.to_ascii_uppercase();
                    (g.contains("ALL PRIVILEGES") || g.contains("SELECT"))
                        && g.contains(&format!(" ON `{}`.* ", db.to_ascii_uppercase()))
                })
            }));
    let monitor = if mariadb {
        "BINLOG MONITOR"
    } else {
        "REPLICATION CLIENT"
    };
    let mut missing = Vec::new();
    if !(has("REPLICATION SLAVE") || has("REPLICATION REPLICA")) {
        missing.push("REPLICATION SLAVE");
    }
    if !(has("BINLOG MONITOR") || has("REPLICATION CLIENT") || has("SUPER")) {
        missing.push(monitor);
    }
    if !select_ok {
        missing.push("SELECT");
    }
    let who: String = conn
        .query_first("SELECT CURRENT_USER()")
        .await?
        .unwrap_or_else(|| src.user.clone());
    let who = match who.split_once('@') {
        Some((u, h)) => format!("'{u}'@'{h}'"),
        None => format!("'{who}'"),
    };
    out.push(if missing.is_empty() {
        Finding::pass(
            target,
            "privileges",
            format!("REPLICATION SLAVE, {monitor}, SELECT"),
        )
    } else {
        Finding::fail(
            target,
            "privileges",
            format!("{who} lacks {}", missing.join(", ")),
            if missing == ["SELECT"] {
                format!(
                    "GRANT SELECT ON *.* TO {who}; (or list the captured databases in [mysql] \
                     databases and GRANT SELECT ON `<database>`.* TO {who}; for each)"
                )
            } else {
                format!("GRANT {} ON *.* TO {who};", missing.join(", "))
            },
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_covers_a_table_globally_by_database_or_by_table() {
        let g = "GRANT CREATE, INSERT ON `shop`.`cdc_signal` TO `cdc`@`%`";
        assert!(grants_on(g, "INSERT", "shop", "cdc_signal"));
        assert!(!grants_on(g, "INSERT", "shop", "orders"));
        assert!(!grants_on(g, "SELECT", "shop", "cdc_signal"));
        let g = "GRANT SELECT, INSERT ON `shop`.* TO `cdc`@`%`";
        assert!(grants_on(g, "INSERT", "shop", "cdc_signal"));
        let g = "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION";
        assert!(grants_on(g, "CREATE", "shop", "cdc_signal"));
        let g = "GRANT REPLICATION SLAVE ON *.* TO `cdc`@`%`";
        assert!(!grants_on(g, "INSERT", "shop", "cdc_signal"));
    }
}
