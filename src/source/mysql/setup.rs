//! Prerequisites checked at start: binary log on, row format, full row images, the agent's
//! privileges, a server id of its own.
//!
//! Each check returns structured [`Finding`]s (setting, actual, expected, the SQL that fixes
//! it) so the `check` preflight command can list them all; [`check_prerequisites`] turns the
//! first one into a definite error.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::catalog::BinlogPosition;
use super::{my_error, MySourceSettings, SourceError};

/// One unmet prerequisite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The server setting or privilege (`binlog_format`, `REPLICATION SLAVE`, …).
    pub setting: String,
    /// What the server has.
    pub actual: String,
    /// What the agent needs.
    pub expected: String,
    /// SQL (or configuration) that fixes it.
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {}, the agent needs {}; fix: {}",
            self.setting, self.actual, self.expected, self.fix
        )
    }
}

/// What the agent learned about the server while checking.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `@@version`.
    pub version: String,
    /// MariaDB rather than MySQL.
    pub mariadb: bool,
    /// `@@server_id` of the server.
    pub server_id: u32,
    /// What identifies the server's binlog positions: `@@server_uuid` on MySQL, the server id
    /// on MariaDB (which has no UUID).
    pub identity: Option<String>,
}

async fn variable(conn: &mut Conn, name: &str) -> Result<Option<String>, SourceError> {
    let row: Option<(String, Option<String>)> = conn
        .exec_first("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,))
        .await
        .map_err(my_error("read server variables"))?;
    Ok(row.and_then(|(_, v)| v))
}

/// Reads version and identity.
pub async fn server_info(conn: &mut Conn) -> Result<ServerInfo, SourceError> {
    let version = variable(conn, "version").await?.unwrap_or_default();
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let server_id: u32 = variable(conn, "server_id")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let identity = if mariadb {
        Some(format!("server_id={server_id}"))
    } else {
        variable(conn, "server_uuid").await?
    };
    Ok(ServerInfo {
        version,
        mariadb,
        server_id,
        identity,
    })
}

/// `log_bin`, `binlog_format`, `binlog_row_image`.
pub async fn check_binlog(conn: &mut Conn) -> Result<Vec<Finding>, SourceError> {
    let mut out = Vec::new();
    let log_bin = variable(conn, "log_bin").await?.unwrap_or_default();
    if !log_bin.eq_ignore_ascii_case("ON") && log_bin != "1" {
        out.push(Finding {
            setting: "log_bin".into(),
            actual: if log_bin.is_empty() {
                "OFF".into()
            } else {
                log_bin
            },
            expected: "ON".into(),
            fix: "add `log_bin = <path>/mysql-bin` and a `server_id` under [mysqld] in my.cnf and \
                  restart the server (log_bin cannot be changed at run time)"
                .into(),
        });
        // Without a binary log the other settings do not matter.
        return Ok(out);
    }
    let format = variable(conn, "binlog_format").await?.unwrap_or_default();
    if !format.eq_ignore_ascii_case("ROW") {
        out.push(Finding {
            setting: "binlog_format".into(),
            actual: format,
            expected: "ROW".into(),
            fix: "SET GLOBAL binlog_format = 'ROW'; and `binlog_format = ROW` under [mysqld] in \
                  my.cnf so it survives a restart (sessions already open keep their format)"
                .into(),
        });
    }
    let image = variable(conn, "binlog_row_image")
        .await?
        .unwrap_or_default();
    if !image.eq_ignore_ascii_case("FULL") {
        out.push(Finding {
            setting: "binlog_row_image".into(),
            actual: image,
            expected: "FULL".into(),
            fix: "SET GLOBAL binlog_row_image = 'FULL'; and `binlog_row_image = FULL` under \
                  [mysqld] in my.cnf so it survives a restart"
                .into(),
        });
    }
    Ok(out)
}

/// `[mysql] include_query`: whether the server writes the statement behind row events into
/// the binlog (`binlog_annotate_row_events` on MariaDB, `binlog_rows_query_log_events` on
/// MySQL). Not a prerequisite: without it `source.query` stays null, so the caller warns.
pub async fn check_statement_events(
    conn: &mut Conn,
    mariadb: bool,
) -> Result<Option<Finding>, SourceError> {
    let setting = if mariadb {
        "binlog_annotate_row_events"
    } else {
        "binlog_rows_query_log_events"
    };
    let value = variable(conn, setting).await?.unwrap_or_default();
    if value.eq_ignore_ascii_case("ON") || value == "1" {
        return Ok(None);
    }
    Ok(Some(Finding {
        setting: setting.into(),
        actual: if value.is_empty() {
            "OFF".into()
        } else {
            value
        },
        expected: "ON".into(),
        fix: format!(
            "SET GLOBAL {setting} = ON; and `{setting} = ON` under [mysqld] in my.cnf so it \
             survives a restart (sessions already open keep writing without statements)"
        ),
    }))
}

/// The current user's global privileges, upper case (`REPLICATION SLAVE`, …).
async fn global_privileges(conn: &mut Conn) -> Result<Vec<String>, SourceError> {
    let rows: Vec<String> = conn
        .query(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES \
             WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
             SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
        )
        .await
        .map_err(my_error("read the agent's privileges"))?;
    Ok(rows.into_iter().map(|p| p.to_ascii_uppercase()).collect())
}

/// `REPLICATION SLAVE`, `BINLOG MONITOR` (MariaDB) / `REPLICATION CLIENT` (MySQL), and
/// `SELECT` on every captured database.
pub async fn check_privileges(
    conn: &mut Conn,
    settings: &MySourceSettings,
    mariadb: bool,
) -> Result<Vec<Finding>, SourceError> {
    let user: String = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .map_err(my_error("read the current user"))?
        .unwrap_or_default();
    let grantee = match user.rsplit_once('@') {
        Some((u, h)) => format!("'{u}'@'{h}'"),
        None => format!("'{user}'"),
    };
    let privs = global_privileges(conn).await?;
    let has = |p: &str| {
        privs
            .iter()
            .any(|x| x == p || x == "ALL PRIVILEGES" || x == "SUPER")
    };
    let mut out = Vec::new();
    if !has("REPLICATION SLAVE") {
        out.push(Finding {
            setting: "privilege REPLICATION SLAVE".into(),
            actual: "not granted".into(),
            expected: "granted (to read the binary log)".into(),
            fix: format!("GRANT REPLICATION SLAVE ON *.* TO {grantee};"),
        });
    }
    let monitor = if mariadb {
        "BINLOG MONITOR"
    } else {
        "REPLICATION CLIENT"
    };
    let monitor_granted = has(monitor) || (mariadb && has("REPLICATION CLIENT"));
    if !monitor_granted {
        out.push(Finding {
            setting: format!("privilege {monitor}"),
            actual: "not granted".into(),
            expected: "granted (to read the binlog position)".into(),
            fix: format!("GRANT {monitor} ON *.* TO {grantee};"),
        });
    }
    if !has("SELECT") {
        let dbs: Vec<String> = conn
            .query(
                "SELECT DISTINCT TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES \
                 WHERE PRIVILEGE_TYPE = 'SELECT' AND GRANTEE = CONCAT('''', \
                 SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                 SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
            )
            .await
            .map_err(my_error("read the agent's database privileges"))?;
        for db in &settings.databases {
            if !dbs.iter().any(|d| d == db || d == "%") {
                out.push(Finding {
                    setting: format!("privilege SELECT on `{db}`"),
                    actual: "not granted".into(),
                    expected: "granted (to snapshot the tables and read their definitions)".into(),
                    fix: format!("GRANT SELECT ON `{db}`.* TO {grantee};"),
                });
            }
        }
    }
    Ok(out)
}

/// The agent's replica `server_id` must differ from the server's own.
pub fn check_server_id(server: &ServerInfo, ours: u32) -> Vec<Finding> {
    if server.server_id == ours || ours == 0 {
        vec![Finding {
            setting: "[mysql] server_id of the source".into(),
            actual: ours.to_string(),
            expected: format!(
                "non-zero and different from the server's own ({})",
                server.server_id
            ),
            fix: "set `server_id = <a number no other replica of this server uses>` under [mysql] \
                  in the source file"
                .into(),
        }]
    } else {
        Vec::new()
    }
}

/// Every check; the first finding becomes a definite error. Returns what was learned.
pub async fn check_prerequisites(
    conn: &mut Conn,
    settings: &MySourceSettings,
) -> Result<ServerInfo, SourceError> {
    let server = server_info(conn).await?;
    let mut findings = check_binlog(conn).await?;
    findings.extend(check_privileges(conn, settings, server.mariadb).await?);
    findings.extend(check_server_id(&server, settings.server_id));
    if let Some(f) = findings.first() {
        let more = if findings.len() > 1 {
            format!(
                " (and {} more: {})",
                findings.len() - 1,
                findings[1..]
                    .iter()
                    .map(|f| f.setting.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        return Err(SourceError::definite(format!(
            "source `{}`: {f}{more}",
            settings.source.name
        )));
    }
    tracing::debug!(version = %server.version, server_id = server.server_id, "mysql prerequisites met");
    Ok(server)
}

/// The server's current binlog end (`SHOW MASTER STATUS`).
pub async fn current_position(conn: &mut Conn) -> Result<BinlogPosition, SourceError> {
    let row: Option<mysql_async::Row> = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .map_err(my_error("SHOW MASTER STATUS"))?;
    let row = row.ok_or_else(|| {
        SourceError::definite("SHOW MASTER STATUS returned nothing: is log_bin on?".into())
    })?;
    let file: String = row
        .get(0)
        .ok_or_else(|| SourceError::definite("SHOW MASTER STATUS: no file".into()))?;
    let pos: u64 = row
        .get(1)
        .ok_or_else(|| SourceError::definite("SHOW MASTER STATUS: no position".into()))?;
    Ok(BinlogPosition { file, pos })
}

/// MariaDB's GTID state at `pos` (`BINLOG_GTID_POS`), `None` on MySQL or when the server
/// cannot tell. Read for the position itself, not for "now": writes between reading the
/// position and the state would otherwise put GTIDs of unread transactions in the state.
pub async fn gtid_state_at(
    conn: &mut Conn,
    pos: &BinlogPosition,
) -> Result<Option<String>, SourceError> {
    let v: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&pos.file, pos.pos))
        .await
        .ok();
    Ok(v.flatten().filter(|s| !s.is_empty()))
}

/// MariaDB's `@@gtid_binlog_pos` (the GTID state at the binlog's end), `None` on MySQL.
pub async fn current_gtid_state(conn: &mut Conn) -> Result<Option<String>, SourceError> {
    let v: Option<Option<String>> = conn
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await
        .ok();
    Ok(v.flatten().filter(|s| !s.is_empty()))
}

/// The binlog files the server still has.
pub async fn binlog_files(conn: &mut Conn) -> Result<Vec<String>, SourceError> {
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(my_error("SHOW BINARY LOGS"))?;
    Ok(rows.iter().filter_map(|r| r.get::<String, _>(0)).collect())
}

/// Quotes an identifier with backticks.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}
