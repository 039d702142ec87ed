//! Snapshot chunks on MySQL/MariaDB: the signal table that carries watermarks and signals
//! through the binlog, and the next rows of a table in primary-key order (see
//! `crate::pipeline::snapshot`).
//!
//! A watermark is an autocommitted `INSERT` into the signal table. The binlog brings it back
//! in commit order, and the storage engine commits in that same order (MySQL
//! `binlog_order_commits = ON`, its default; MariaDB's group commit always does): once the
//! low watermark's `INSERT` returns, every transaction the binlog holds before it is visible,
//! so the chunk's `SELECT` (autocommit, a fresh read view) sees at least all of them, and
//! whatever it sees beyond them commits after the low watermark, inside the window, where
//! its change replaces the row read.
//!
//! Watermark rows are left in the table: deleting them would need the DELETE privilege and
//! a third binlog transaction per chunk, for two rows of under 200 bytes each per chunk. The
//! agent never reads the table itself (only its binlog events), so an operator may delete
//! rows of type `cdc-agent-watermark` at any time.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use futures_util::StreamExt;

use super::catalog::{ColumnDef, TableDef};
use super::setup::quote_ident;
use super::types::{self, TypeOptions};
use super::{my_error, MySourceSettings, SourceError};
use crate::checkpoint::KeyValue;
use crate::config::{SnapshotMode, SourceConfig};
use crate::event::Datum;
use crate::pipeline::snapshot::{Chunk, ChunkRequest, Mark, Watermark, WATERMARK_PREFIX};
use crate::pipeline::Pipeline;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// Default name of the signal table, in the first captured database.
pub const DEFAULT_SIGNAL_TABLE: &str = "cdc_signal";
/// MySQL/MariaDB error: a command denied on a table (`ER_TABLEACCESS_DENIED_ERROR`).
const ER_TABLEACCESS_DENIED: u16 = 1142;
/// MySQL/MariaDB error: access denied to a database (`ER_DBACCESS_DENIED_ERROR`).
const ER_DBACCESS_DENIED: u16 = 1044;

/// The table that carries a source's watermarks and signals, and who writes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalTable {
    /// Its database.
    pub database: String,
    /// Its name.
    pub table: String,
    /// The agent's account as GRANT names it (`'cdc'@'%'`), for fixes.
    pub grantee: String,
}

impl SignalTable {
    /// Whether binlog table `database.table` is this one.
    pub fn is(&self, database: &str, table: &str) -> bool {
        self.database == database && self.table == table
    }

    /// `` `db`.`t` ``.
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.database),
            quote_ident(&self.table)
        )
    }

    /// `db.t`, as captured tables are named.
    pub fn name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// The statement that creates it (Debezium's signal-table shape).
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT \
             NULL, data TEXT)",
            self.quoted()
        )
    }

    /// The grant the agent needs on it.
    pub fn grant_sql(&self) -> String {
        format!(
            "GRANT INSERT, SELECT ON {} TO {}",
            self.quoted(),
            self.grantee
        )
    }

    /// The definite error for a missing privilege on the table, with both ways out.
    fn privilege_error(&self, what: &str, e: &mysql_async::Error) -> SourceError {
        SourceError::definite(format!(
            "cannot {what} the snapshot signal table {} ([snapshot] signal_table): {}; \
             fix: as an administrator run `{};` and `{};`, or set [snapshot] signal_table \
             = \"database.table\" to a table the agent may write",
            self.name(),
            error_text(e),
            self.create_sql(),
            self.grant_sql(),
        ))
    }
}

fn error_text(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("{} (error {})", s.message, s.code),
        other => other.to_string(),
    }
}

fn denied(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s)
        if s.code == ER_TABLEACCESS_DENIED || s.code == ER_DBACCESS_DENIED)
}

/// `[snapshot] signal_table` (`database.table`), or `cdc_signal` in the first captured
/// database (the source's `database` when the capture lists none). `None` when neither names
/// a database.
pub fn signal_table_name(settings: &MySourceSettings) -> Option<(String, String)> {
    signal_table_of(&settings.source)
}

/// [`signal_table_name`] from a source's configuration alone (`cdc-agent check`).
pub fn signal_table_of(source: &SourceConfig) -> Option<(String, String)> {
    if let Some(t) = &source.snapshot.signal_table {
        return t
            .split_once('.')
            .map(|(d, t)| (d.to_string(), t.to_string()));
    }
    let db = source
        .mysql
        .as_ref()
        .and_then(|m| m.databases.first().cloned())
        .or_else(|| source.database.clone())?;
    Some((db, DEFAULT_SIGNAL_TABLE.to_string()))
}

/// The agent's account as GRANT names it.
pub async fn grantee(conn: &mut Conn) -> Result<String, SourceError> {
    let user: String = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .map_err(my_error("read the current user"))?
        .unwrap_or_default();
    Ok(match user.rsplit_once('@') {
        Some((u, h)) => format!("'{u}'@'{h}'"),
        None => format!("'{user}'"),
    })
}

/// Whether `db.t` is visible to the agent (it exists and the agent has a privilege on it).
pub async fn table_exists(conn: &mut Conn, db: &str, table: &str) -> Result<bool, SourceError> {
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND \
             TABLE_NAME = ?",
            (db, table),
        )
        .await
        .map_err(my_error("look up the signal table"))?;
    Ok(n.unwrap_or(0) > 0)
}

/// Resolves the source's signal table and creates it when missing. `None` when no database
/// names it and `snapshot.mode = never` (no snapshot needs watermarks, and signals have
/// nowhere to come from).
pub async fn ensure_signal_table(
    conn: &mut Conn,
    settings: &MySourceSettings,
) -> Result<Option<SignalTable>, SourceError> {
    let Some((database, table)) = signal_table_name(settings) else {
        if settings.source.snapshot.mode == SnapshotMode::Never {
            return Ok(None);
        }
        return Err(SourceError::definite(format!(
            "{}: no database for the snapshot signal table (the capture lists no database and \
             the source sets none); fix: set [snapshot] signal_table = \"database.table\"",
            settings.source.file.display()
        )));
    };
    let signal = SignalTable {
        grantee: grantee(conn).await?,
        database,
        table,
    };
    // Only a missing table is created: CREATE TABLE IF NOT EXISTS is written to the binlog
    // even when the table exists, and would be a schema change at every start.
    if !table_exists(conn, &signal.database, &signal.table).await? {
        conn.query_drop(signal.create_sql()).await.map_err(|e| {
            if denied(&e) {
                signal.privilege_error("create", &e)
            } else {
                my_error("create the snapshot signal table")(e)
            }
        })?;
        tracing::info!(table = %signal.name(), "created the snapshot signal table");
    }
    Ok(Some(signal))
}

/// The row id of a watermark: its chunk id and mark, within the column's 64 characters.
fn row_id(wm: &Watermark) -> String {
    let mark = match wm.mark {
        Mark::Low => "low",
        Mark::High => "high",
    };
    let id = format!("{}-{mark}", wm.id);
    if id.len() <= 64 {
        return id;
    }
    // A long source name: FNV-1a of the chunk id keeps it unique enough and short.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in wm.id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("wm-{h:016x}-{mark}")
}

/// Commits `wm` as a row of the signal table (autocommit: its own binlog transaction).
pub async fn write_watermark(
    conn: &mut Conn,
    signal: &SignalTable,
    wm: &Watermark,
) -> Result<(), SourceError> {
    conn.exec_drop(
        format!(
            "INSERT INTO {} (id, type, data) VALUES (?, ?, ?)",
            signal.quoted()
        ),
        (row_id(wm), WATERMARK_PREFIX, wm.text()),
    )
    .await
    .map_err(|e| {
        if denied(&e) {
            signal.privilege_error("insert a watermark into", &e)
        } else {
            my_error("write a snapshot watermark")(e)
        }
    })
}

/// A key value as an SQL literal of the column's type: numbers bare (an INT key compares
/// numerically, a DECIMAL one exactly), binary strings as hex, other strings as UTF-8 hex
/// with an introducer (no escaping to get wrong; compared in the column's collation).
fn key_literal(col: &ColumnDef, k: &KeyValue) -> Result<String, SourceError> {
    let bytes: Vec<u8> = match k {
        KeyValue::Text(t) => t.as_bytes().to_vec(),
        KeyValue::Hex { hex } => (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad_key(col, k))?,
    };
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let numeric = |text: &str, fraction: bool| {
        let t = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) if fraction => (i, Some(f)),
            _ => (t, None),
        };
        !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    };
    match col.data_type.as_str() {
        // ORDER BY sorts ENUM and SET by their number (declaration index, bit set), not by
        // label, and a comparison with a number compares that number: the resume key must be
        // the number too, or chunks would skip or repeat rows.
        "enum" | "set" => match k {
            KeyValue::Text(t) => label_number(col, t)
                .map(|n| n.to_string())
                .ok_or_else(|| bad_key(col, k)),
            KeyValue::Hex { .. } => Err(bad_key(col, k)),
        },
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => match k {
            KeyValue::Text(t) if numeric(t, false) => Ok(t.clone()),
            _ => Err(bad_key(col, k)),
        },
        "decimal" | "numeric" => match k {
            KeyValue::Text(t) if numeric(t, true) => Ok(t.clone()),
            _ => Err(bad_key(col, k)),
        },
        "float" | "double" | "real" => match k {
            KeyValue::Text(t) if t.parse::<f64>().is_ok_and(f64::is_finite) => {
                Ok(format!("CAST({t} AS DOUBLE)"))
            }
            _ => Err(bad_key(col, k)),
        },
        _ if col.charset.as_deref() == Some("binary")
            || matches!(
                col.data_type.as_str(),
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit"
            ) =>
        {
            Ok(format!("X'{hex}'"))
        }
        _ => Ok(format!("_utf8mb4 X'{hex}'")),
    }
}

/// The number MySQL stores for an ENUM label (1-based index; 0 for the empty error value) or
/// a SET value (bit `i` for label `i`).
fn label_number(col: &ColumnDef, text: &str) -> Option<u64> {
    let index = |label: &str| col.enum_values.iter().position(|v| v == label);
    if col.data_type == "enum" {
        return match text {
            "" => Some(0),
            t => index(t).map(|i| i as u64 + 1),
        };
    }
    if text.is_empty() {
        return Some(0);
    }
    text.split(',')
        .map(|label| index(label).filter(|&i| i < 64).map(|i| 1u64 << i))
        .sum()
}

fn bad_key(col: &ColumnDef, k: &KeyValue) -> SourceError {
    SourceError::definite(format!(
        "snapshot resume key `{k}` is not a value of key column `{}` ({}); fix: restart the \
         table's snapshot (stop-snapshot, then execute-snapshot)",
        col.name, col.column_type
    ))
}

/// `key > after` (`strict`) or `key <= after` (`!strict`, the upper bound) over the key
/// columns, as ORs of equalities: `a > x OR (a = x AND b > y)`, which MariaDB turns into a
/// range on the primary key (a row comparison `(a, b) > (x, y)` it would scan).
fn key_condition(
    cols: &[(String, &ColumnDef)],
    values: &[KeyValue],
    after: bool,
) -> Result<String, SourceError> {
    let lits: Vec<String> = cols
        .iter()
        .zip(values)
        .map(|((_, c), v)| key_literal(c, v))
        .collect::<Result<_, _>>()?;
    let n = cols.len();
    let mut ors = Vec::with_capacity(n);
    for i in 0..n {
        let mut ands: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", cols[j].0, lits[j]))
            .collect();
        let op = match (after, i + 1 == n) {
            (true, _) => ">",
            (false, false) => "<",
            (false, true) => "<=",
        };
        ands.push(format!("{} {op} {}", cols[i].0, lits[i]));
        ors.push(if ands.len() == 1 {
            ands.pop().unwrap_or_default()
        } else {
            format!("({})", ands.join(" AND "))
        });
    }
    Ok(format!("({})", ors.join(" OR ")))
}

/// `db.t` → (`db`, `t`).
pub fn split_table(name: &str) -> Result<(&str, &str), SourceError> {
    name.split_once('.').ok_or_else(|| {
        SourceError::definite(format!(
            "snapshot table `{name}`: expected database.table; fix: name the table with its \
             database"
        ))
    })
}

/// The error for a table without a primary key.
pub fn no_key_error(table: &str, def: &TableDef) -> SourceError {
    SourceError::definite(format!(
        "snapshot of {table}: the table has no primary key, and chunked snapshots read in key \
         order and match changes by key; fix: ALTER TABLE {}.{} ADD PRIMARY KEY (…), or leave \
         the table out of the capture, or set [snapshot] mode = \"never\"",
        quote_ident(&def.database),
        quote_ident(&def.name)
    ))
}

/// The key columns of `def`, quoted, with their definitions.
fn key_columns(def: &TableDef) -> Vec<(String, &ColumnDef)> {
    def.primary_key
        .iter()
        .filter_map(|k| def.columns.iter().find(|c| &c.name == k))
        .map(|c| (quote_ident(&c.name), c))
        .collect()
}

/// The key of the text-protocol row `values` (`key` = column indexes).
fn row_key(
    table: &str,
    def: &TableDef,
    key: &[usize],
    values: &[Value],
) -> Result<Vec<KeyValue>, SourceError> {
    key.iter()
        .map(|&i| match &values[i] {
            Value::Bytes(b) => Ok(KeyValue::from_bytes(b)),
            Value::NULL => Err(SourceError::definite(format!(
                "snapshot of {table}: NULL in key column `{}`",
                def.columns[i].name
            ))),
            other => Ok(KeyValue::Text(
                other.as_sql(true).trim_matches('\'').to_string(),
            )),
        })
        .collect()
}

/// The greatest key of `def` now (in the caller's transaction), `None` when the table is
/// empty. Tables without a primary key have none (their snapshot stops with
/// [`no_key_error`]).
pub async fn max_key(
    conn: &mut Conn,
    def: &TableDef,
) -> Result<Option<Vec<KeyValue>>, SourceError> {
    let keys = key_columns(def);
    if keys.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {} FROM {}.{} ORDER BY {} LIMIT 1",
        keys.iter()
            .map(|k| k.0.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        quote_ident(&def.database),
        quote_ident(&def.name),
        keys.iter()
            .map(|k| format!("{} DESC", k.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let row: Option<Row> = conn
        .query_first(sql)
        .await
        .map_err(my_error("read the greatest key of a table to snapshot"))?;
    let Some(row) = row else { return Ok(None) };
    let values = row.unwrap();
    let idx: Vec<usize> = (0..values.len()).collect();
    let name = format!("{}.{}", def.database, def.name);
    row_key(&name, def, &idx, &values).map(Some)
}

/// Reads the chunk `req` asks for (see [`crate::pipeline::ChangeStream::read_chunk`]): one
/// autocommitted `SELECT … ORDER BY key LIMIT n + 1` over the text protocol, decoded as the
/// binlog rows are, with the table's definition as the server has it now.
pub async fn read_chunk<S: Sink>(
    conn: &mut Conn,
    settings: &MySourceSettings,
    opts: &TypeOptions,
    signal: Option<&SignalTable>,
    req: &ChunkRequest,
    out: &mut Pipeline<S>,
    stop: &mut Shutdown,
) -> Result<Chunk, SourceError> {
    let (db, table) = split_table(&req.table)?;
    let catalog = super::schema::load_tables(conn, settings, Some((db, table))).await?;
    let def = catalog.get(db, table).cloned().ok_or_else(|| {
        SourceError::definite(format!(
            "snapshot of {}: the table does not exist (or the agent may not read it); fix: \
             send a stop-snapshot signal for it{}, or GRANT SELECT ON {}.{} TO the agent",
            req.table,
            signal.map_or(String::new(), |s| format!(" (a row in {})", s.name())),
            quote_ident(db),
            quote_ident(table)
        ))
    })?;
    let keys = key_columns(&def);
    if keys.is_empty() {
        return Err(no_key_error(&req.table, &def));
    }
    let schema = out.set_table(types::table_schema(&def, opts), stop).await?;
    let mut conditions = Vec::new();
    for (bound, after) in [(&req.after, true), (&req.until, false)] {
        if let Some(values) = bound {
            if values.len() != keys.len() {
                return Err(SourceError::definite(format!(
                    "snapshot of {}: the checkpoint's key has {} columns, the primary key \
                     now {}; fix: restart the table's snapshot (stop-snapshot, then \
                     execute-snapshot)",
                    req.table,
                    values.len(),
                    keys.len()
                )));
            }
            conditions.push(key_condition(&keys, values, after)?);
        }
    }
    if let Some(f) = &req.filter {
        conditions.push(format!("({f})"));
    }
    let sql = format!(
        "SELECT {} FROM {}.{}{} ORDER BY {} LIMIT {}",
        def.columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", "),
        quote_ident(db),
        quote_ident(table),
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        },
        keys.iter()
            .map(|k| k.0.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        req.limit + 1
    );
    let select_error = |e: mysql_async::Error| {
        if denied(&e) {
            SourceError::definite(format!(
                "snapshot of {}: {}; fix: GRANT SELECT ON {}.{} TO the agent's user",
                req.table,
                error_text(&e),
                quote_ident(db),
                quote_ident(table)
            ))
        } else {
            my_error("snapshot chunk SELECT")(e)
        }
    };
    let mut rows: Vec<Vec<Datum<'static>>> = Vec::with_capacity(req.limit.min(100_000) + 1);
    let mut last_key = None;
    let mut more = false;
    {
        let mut result = conn.query_iter(sql).await.map_err(select_error)?;
        let stream = result.stream::<Row>().await.map_err(select_error)?;
        if let Some(mut stream) = stream {
            while let Some(row) = stream.next().await {
                let values = row.map_err(my_error("snapshot chunk read"))?.unwrap();
                if rows.len() == req.limit {
                    // The extra row only tells that more follow.
                    more = true;
                    continue;
                }
                if rows.len() % 1024 == 0 {
                    out.status().beat();
                }
                last_key = Some(row_key(&req.table, &def, &schema.key, &values)?);
                let mut row = Vec::with_capacity(values.len());
                for ((col, def), v) in schema.columns.iter().zip(&def.columns).zip(values) {
                    row.push(types::snapshot_datum(def, &col.ty, v).map_err(|e| {
                        SourceError::definite(format!("snapshot of {}: {e}", req.table))
                    })?);
                }
                rows.push(row);
            }
        }
    }
    let estimate = if req.first {
        let n: Option<Option<u64>> = conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND \
                 TABLE_NAME = ?",
                (db, table),
            )
            .await
            .map_err(my_error("estimate rows (information_schema.TABLES)"))?;
        Some(n.flatten().unwrap_or(0))
    } else {
        None
    };
    Ok(Chunk {
        schema,
        rows,
        last_key,
        more,
        estimate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, data_type: &str, charset: Option<&str>) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            unsigned: false,
            nullable: false,
            char_max_length: None,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            charset: charset.map(Into::into),
            enum_values: Vec::new(),
            default: None,
        }
    }

    #[test]
    fn a_composite_key_condition_is_written_as_ors_of_equalities() {
        let (a, b) = (col("a", "int", None), col("b", "varchar", Some("utf8mb4")));
        let cols = vec![("`a`".to_string(), &a), ("`b`".to_string(), &b)];
        let values = vec![KeyValue::Text("7".into()), KeyValue::Text("x'y".into())];
        assert_eq!(
            key_condition(&cols, &values, true).unwrap(),
            "(`a` > 7 OR (`a` = 7 AND `b` > _utf8mb4 X'782779'))"
        );
        assert_eq!(
            key_condition(&cols, &values, false).unwrap(),
            "(`a` < 7 OR (`a` = 7 AND `b` <= _utf8mb4 X'782779'))"
        );
        assert_eq!(
            key_condition(&cols[..1], &values[..1], true).unwrap(),
            "(`a` > 7)"
        );
    }

    #[test]
    fn key_literals_keep_numbers_numeric_and_refuse_what_is_not_a_value_of_the_column() {
        let int = col("id", "bigint", None);
        assert_eq!(
            key_literal(&int, &KeyValue::Text("-42".into())).unwrap(),
            "-42"
        );
        assert!(key_literal(&int, &KeyValue::Text("1 OR 1=1".into())).is_err());
        let dec = col("d", "decimal", None);
        assert_eq!(
            key_literal(&dec, &KeyValue::Text("10.50".into())).unwrap(),
            "10.50"
        );
        assert!(key_literal(&dec, &KeyValue::Text("1e5".into())).is_err());
        let bin = col("b", "varbinary", Some("binary"));
        assert_eq!(
            key_literal(&bin, &KeyValue::Hex { hex: "ff00".into() }).unwrap(),
            "X'ff00'"
        );
    }

    #[test]
    fn enum_and_set_keys_resume_at_the_number_mysql_orders_them_by() {
        let mut kind = col("kind", "enum", Some("utf8mb4"));
        kind.enum_values = vec!["zebra".into(), "apple".into(), "mango".into()];
        let lit = |c: &ColumnDef, t: &str| key_literal(c, &KeyValue::Text(t.into()));
        assert_eq!(lit(&kind, "apple").unwrap(), "2");
        assert_eq!(lit(&kind, "zebra").unwrap(), "1");
        assert_eq!(lit(&kind, "").unwrap(), "0");
        assert!(lit(&kind, "pear").is_err());
        let mut flags = col("flags", "set", Some("utf8mb4"));
        flags.enum_values = vec!["a".into(), "b".into(), "c".into()];
        assert_eq!(lit(&flags, "a,c").unwrap(), "5");
        assert_eq!(lit(&flags, "").unwrap(), "0");
        assert!(lit(&flags, "a,x").is_err());
    }

    #[test]
    fn watermark_row_ids_fit_the_id_column() {
        let short = Watermark {
            mark: Mark::Low,
            id: "src-1700000000000-3".into(),
        };
        assert_eq!(row_id(&short), "src-1700000000000-3-low");
        let long = Watermark {
            mark: Mark::High,
            id: format!("{}-1700000000000-3", "s".repeat(60)),
        };
        let id = row_id(&long);
        assert!(id.len() <= 64 && id.ends_with("-high"), "{id}");
    }
}
