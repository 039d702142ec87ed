//! SQLite as a target: a local read model in one file (rusqlite, SQLite bundled).
//!
//! Same contract as PostgreSQL: a batch's rows and offsets in one `IMMEDIATE` transaction.
//! Types follow SQLite's storage classes; decimals, dates and times are stored as TEXT (exact
//! decimal strings, ISO 8601) because a NUMERIC column would round decimals through a double.
//! SQLite calls block, so they run under `block_in_place` on the multi-threaded runtime.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, TransactionBehavior};

use super::postgres::fenced;
use super::{type_change, Batch, Change, Offsets, TableInfo, Target};
use crate::apply::config::SchemaEvolution;
use crate::apply::error::ApplyError;
use crate::apply::schema::{self, Cell, ColType};

/// How long a statement waits for a lock another connection holds (a reader of the read
/// model, usually) before it fails.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An SQLite target.
pub struct SqliteTarget {
    conn: Connection,
    offsets_table: String,
    evolution: SchemaEvolution,
    tables: HashMap<String, HashMap<String, String>>,
    checked: HashSet<(String, u32)>,
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The declared type of a column (as `PRAGMA table_info` gives it back).
pub fn sqlite_type(ty: &ColType) -> &'static str {
    match ty {
        ColType::Bool => "BOOLEAN",
        ColType::Int16 | ColType::Int32 | ColType::Int64 | ColType::Interval => "INTEGER",
        ColType::Float32 | ColType::Float64 => "REAL",
        ColType::Bytes => "BLOB",
        _ => "TEXT",
    }
}

fn sqlite_value(cell: &Cell) -> Sql {
    match cell {
        Cell::Null | Cell::Unavailable => Sql::Null,
        Cell::Bool(b) => Sql::Integer(i64::from(*b)),
        Cell::Int(i) | Cell::Interval(i) => Sql::Integer(*i),
        Cell::Float(f) => Sql::Real(*f),
        Cell::Text(s) | Cell::Decimal(s) => Sql::Text(s.clone()),
        Cell::Bytes(b) => Sql::Blob(b.clone()),
        Cell::Date(d) => Sql::Text(schema::date_text(*d)),
        Cell::Time(t) => Sql::Text(schema::time_text(*t)),
        Cell::Timestamp(t) => Sql::Text(schema::timestamp_text(*t)),
    }
}

fn sq_error(what: &str, e: rusqlite::Error) -> ApplyError {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        ApplyError::transient(format!("{what}: {e}"))
    } else {
        ApplyError::definite(format!("{what}: {e}"))
    }
}

impl SqliteTarget {
    /// Opens (creating when missing) the database file at `path`.
    pub fn open(
        path: &Path,
        offsets_table: &str,
        evolution: SchemaEvolution,
    ) -> Result<Self, ApplyError> {
        let conn =
            Connection::open(path).map_err(|e| sq_error(&format!("open {}", path.display()), e))?;
        // WAL: readers of the read model never block apply, nor apply them.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sq_error("set journal_mode", e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| sq_error("set synchronous", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sq_error("set busy_timeout", e))?;
        Ok(Self {
            conn,
            offsets_table: offsets_table.to_string(),
            evolution,
            tables: HashMap::new(),
            checked: HashSet::new(),
        })
    }

    fn columns(
        conn: &Connection,
        table: &str,
    ) -> Result<Option<HashMap<String, String>>, ApplyError> {
        let mut st = conn
            .prepare(&format!("PRAGMA table_info({})", ident(table)))
            .map_err(|e| sq_error("read the target table's columns", e))?;
        let cols: HashMap<String, String> = st
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(|e| sq_error("read the target table's columns", e))?
            .collect::<Result<_, _>>()
            .map_err(|e| sq_error("read the target table's columns", e))?;
        Ok((!cols.is_empty()).then_some(cols))
    }

    fn ensure(
        conn: &Connection,
        tables: &mut HashMap<String, HashMap<String, String>>,
        checked: &mut HashSet<(String, u32)>,
        evolution: SchemaEvolution,
        info: &TableInfo,
    ) -> Result<(), ApplyError> {
        if checked.contains(&(info.name.clone(), info.schema_id)) {
            return Ok(());
        }
        let table = ident(&info.name);
        let existing = match tables.get(&info.name) {
            Some(c) => Some(c.clone()),
            None => Self::columns(conn, &info.name)?,
        };
        let mut cols = match existing {
            Some(c) => c,
            None => {
                let defs: Vec<String> = info
                    .shape
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let nn = if info.key.contains(&i) {
                            " NOT NULL"
                        } else {
                            ""
                        };
                        format!("{} {}{nn}", ident(&c.name), sqlite_type(&c.ty))
                    })
                    .collect();
                let keys: Vec<String> = info
                    .key
                    .iter()
                    .map(|&i| ident(&info.shape.columns[i].name))
                    .collect();
                let sql = format!(
                    "CREATE TABLE {table} ({}, PRIMARY KEY ({}))",
                    defs.join(", "),
                    keys.join(", ")
                );
                conn.execute_batch(&sql)
                    .map_err(|e| sq_error(&format!("create table {table}"), e))?;
                tracing::info!(table = %info.name, "target table created");
                info.shape
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), sqlite_type(&c.ty).to_string()))
                    .collect()
            }
        };
        for c in &info.shape.columns {
            let wanted = sqlite_type(&c.ty);
            match cols.get(&c.name) {
                Some(have) if have.eq_ignore_ascii_case(wanted) => {}
                Some(have) => {
                    return Err(type_change(
                        &info.name,
                        &c.name,
                        have,
                        wanted,
                        "SQLite cannot alter a column's type: create the table anew with the new type and copy the rows",
                    ))
                }
                None if evolution == SchemaEvolution::Basic => {
                    conn.execute_batch(&format!(
                        "ALTER TABLE {table} ADD COLUMN {} {wanted}",
                        ident(&c.name)
                    ))
                    .map_err(|e| sq_error(&format!("add column to {table}"), e))?;
                    tracing::info!(table = %info.name, column = %c.name, r#type = wanted, "target column added");
                    cols.insert(c.name.clone(), wanted.to_string());
                }
                None => {
                    return Err(ApplyError::definite(format!(
                        "the source's table `{}` gained column `{}`, which the SQLite target \
                         lacks; fix: set [apply] schema_evolution = \"basic\", or run ALTER \
                         TABLE {table} ADD COLUMN {} {wanted}",
                        info.name,
                        c.name,
                        ident(&c.name)
                    )))
                }
            }
        }
        tables.insert(info.name.clone(), cols);
        checked.insert((info.name.clone(), info.schema_id));
        Ok(())
    }

    fn apply_blocking(&mut self, name: &str, batch: &Batch) -> Result<(), ApplyError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sq_error("begin", e))?;
        for change in &batch.changes {
            match change {
                Change::Upsert { table, row, .. } => {
                    Self::ensure(
                        &tx,
                        &mut self.tables,
                        &mut self.checked,
                        self.evolution,
                        table,
                    )?;
                    let mut names = Vec::new();
                    let mut values = Vec::new();
                    let mut sets = Vec::new();
                    for (i, (c, cell)) in table.shape.columns.iter().zip(row).enumerate() {
                        if *cell == Cell::Unavailable {
                            continue; // the stored value stays
                        }
                        let n = ident(&c.name);
                        values.push(sqlite_value(cell));
                        if !table.key.contains(&i) {
                            sets.push(format!("{n} = excluded.{n}"));
                        }
                        names.push(n);
                    }
                    let keys: Vec<String> = table
                        .key
                        .iter()
                        .map(|&i| ident(&table.shape.columns[i].name))
                        .collect();
                    let action = if sets.is_empty() {
                        "NOTHING".to_string()
                    } else {
                        format!("UPDATE SET {}", sets.join(", "))
                    };
                    let marks: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
                    let sql = format!(
                        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO {action}",
                        ident(&table.name),
                        names.join(", "),
                        marks.join(", "),
                        keys.join(", ")
                    );
                    tx.prepare_cached(&sql)
                        .and_then(|mut st| st.execute(params_from_iter(values)))
                        .map_err(|e| sq_error("apply a change", e))?;
                }
                Change::Delete { table, key } => {
                    Self::ensure(
                        &tx,
                        &mut self.tables,
                        &mut self.checked,
                        self.evolution,
                        table,
                    )?;
                    let conds: Vec<String> = table
                        .key
                        .iter()
                        .enumerate()
                        .map(|(n, &i)| {
                            format!("{} = ?{}", ident(&table.shape.columns[i].name), n + 1)
                        })
                        .collect();
                    let sql = format!(
                        "DELETE FROM {} WHERE {}",
                        ident(&table.name),
                        conds.join(" AND ")
                    );
                    tx.prepare_cached(&sql)
                        .and_then(|mut st| {
                            st.execute(params_from_iter(key.iter().map(sqlite_value)))
                        })
                        .map_err(|e| sq_error("apply a change", e))?;
                }
                Change::Truncate { table } => {
                    if self.tables.contains_key(table) || Self::columns(&tx, table)?.is_some() {
                        tx.execute_batch(&format!("DELETE FROM {}", ident(table)))
                            .map_err(|e| sq_error("truncate", e))?;
                    }
                }
            }
        }
        let t = ident(&self.offsets_table);
        for m in &batch.offsets {
            let n = match m.from {
                Some(from) => tx.execute(
                    &format!(
                        "UPDATE {t} SET next_offset = ?4, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ')
                         WHERE consumer = ?1 AND topic = ?2 AND partition = ?3 AND next_offset = ?5"
                    ),
                    rusqlite::params![name, &*m.topic, m.partition, m.to, from],
                ),
                None => tx.execute(
                    &format!(
                        "INSERT INTO {t} (consumer, topic, partition, next_offset)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"
                    ),
                    rusqlite::params![name, &*m.topic, m.partition, m.to],
                ),
            }
            .map_err(|e| sq_error("store offsets", e))?;
            if n != 1 {
                return Err(fenced(name, &m.topic, m.partition));
            }
        }
        tx.commit().map_err(|e| sq_error("commit", e))
    }
}

impl Target for SqliteTarget {
    /// Nothing to claim: SQLite commits inside this process, so a killed predecessor's
    /// transaction either committed before it died or is rolled back from the journal when
    /// the file is opened; none can land later. Two processes on one file are serialized by
    /// SQLite's lock and fenced by the offsets.
    async fn claim(&mut self, _name: &str) -> Result<(), ApplyError> {
        Ok(())
    }

    async fn prepare(&mut self) -> Result<(), ApplyError> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (
                 consumer TEXT NOT NULL,
                 topic TEXT NOT NULL,
                 partition INTEGER NOT NULL,
                 next_offset INTEGER NOT NULL,
                 updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')),
                 PRIMARY KEY (consumer, topic, partition))",
            ident(&self.offsets_table)
        );
        tokio::task::block_in_place(|| self.conn.execute_batch(&sql))
            .map_err(|e| sq_error("create the offsets table", e))
    }

    async fn offsets(&mut self, name: &str) -> Result<Offsets, ApplyError> {
        tokio::task::block_in_place(|| {
            let mut st = self.conn.prepare(&format!(
                "SELECT topic, partition, next_offset FROM {} WHERE consumer = ?1",
                ident(&self.offsets_table)
            ))?;
            let rows = st.query_map([name], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
            rows.collect::<Result<Offsets, _>>()
        })
        .map_err(|e| sq_error("read the stored offsets", e))
    }

    async fn apply(&mut self, name: &str, batch: &Batch) -> Result<(), ApplyError> {
        tokio::task::block_in_place(|| self.apply_blocking(name, batch))
    }
}
