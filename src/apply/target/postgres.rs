//! PostgreSQL as a target (tokio-postgres).
//!
//! Every value is bound as text and cast in SQL to the column's type (`$1::numeric`), so one
//! rendering serves every type exactly (decimals as decimal strings, bytes as `\x` hex) and
//! statements are prepared once per (table, columns) and reused. A run of consecutive upserts
//! of one table is one `INSERT … SELECT … FROM unnest($1::text[], …)` (arrays of the same
//! texts), so a batch costs a few statements rather than one per row. A batch's statements
//! are sent pipelined, in order, inside one transaction that also moves the offsets.
//!
//! A long run of inserts (source inserts and snapshot reads, every column sent, distinct keys)
//! is first tried as a `COPY … FROM STDIN` inside a savepoint: the server's upsert costs about
//! 1.6 times a COPY of the same rows, and such rows are usually new to the target. A key the
//! target already holds (a replay, rows written there by others) makes the COPY fail with
//! `unique_violation`; the savepoint is rolled back and the run goes through the upsert as
//! any other, and that table's inserts skip the COPY for a while (see `CopyPause`).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use std::hash::{Hash, Hasher};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::{type_change, Batch, Change, Offsets, TableInfo, Target};
use crate::apply::config::SchemaEvolution;
use crate::apply::error::ApplyError;
use crate::apply::schema::{self, Cell, ColType};

/// Consecutive upserts of one table from which on they go as one `unnest` statement: below,
/// the per-row statement (already prepared for the common single-row case) is as cheap.
const BULK_MIN_ROWS: usize = 2;

/// Inserts of one table from which on a run is tried as a `COPY` first: a COPY costs a
/// savepoint (a subtransaction) and four round trips of its own (savepoint, start, end,
/// release) where the upsert rides the pipeline, which a short run does not earn back.
const COPY_MIN_ROWS: usize = 64;

/// COPY runs per transaction at most. Each is a subtransaction that stays in the
/// transaction's list of subtransaction ids until it commits; past 64 of them the server's
/// per-backend cache of that list overflows, and every other session's snapshot then has to
/// look subtransactions up on disk (`pg_subtrans`) while the batch runs.
const COPY_MAX_PER_BATCH: usize = 32;

/// Batches a table's inserts skip the COPY after a conflict; doubled at each further
/// conflict up to [`COPY_PAUSE_MAX`], forgotten after a COPY of the table succeeds.
const COPY_PAUSE_FIRST: u64 = 4;

/// The longest pause, in batches: a replay of a topic the target already holds tries (and
/// fails) a COPY about once every this many batches.
const COPY_PAUSE_MAX: u64 = 1024;

/// COPY data goes to the connection in chunks of about this size, so a run's text is never
/// held whole.
const COPY_CHUNK: usize = 64 * 1024;

/// The savepoint a COPY runs in.
const COPY_SAVEPOINT: &str = "cdc_apply_copy";

/// The parameters of one statement: one text per column, or one text array per column.
enum Params<'a> {
    Scalars(Vec<Option<String>>),
    Arrays(Vec<TextColumn<'a>>),
}

impl Params<'_> {
    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        match self {
            Params::Scalars(p) => p.iter().map(|p| p as &(dyn ToSql + Sync)).collect(),
            Params::Arrays(p) => p.iter().map(|p| p as &(dyn ToSql + Sync)).collect(),
        }
    }
}

/// One step of a batch, in change order.
enum Work<'a> {
    /// A statement, sent pipelined with its neighbours.
    Statement(Statement, Params<'a>),
    /// A run of inserts of one table tried as a COPY first, with the bulk upsert of the same
    /// rows to fall back to.
    Copy {
        table: &'a TableInfo,
        rows: &'a [Change],
        copy: Statement,
        upsert: Statement,
        columns: Params<'a>,
    },
}

/// How long a table's inserts skip the COPY after it met keys the target held.
#[derive(Debug, Clone, Copy)]
struct CopyPause {
    /// The last batch (by [`PgTarget::batches`]) that skips it.
    until: u64,
    /// This pause's length, doubled at the next conflict.
    batches: u64,
}

/// Column `col` of a run of upserts as one `text[]` parameter, written straight from the
/// cells into the wire buffer: no text per cell is kept, which is most of a bulk upsert's
/// client cost otherwise.
#[derive(Debug)]
struct TextColumn<'a> {
    rows: &'a [Change],
    col: usize,
}

impl ToSql for TextColumn<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let count = i32::try_from(self.rows.len())?;
        // array_recv's layout: dimensions, has-nulls flag, element type, then per dimension
        // its length and lower bound; then each element as a length (-1: NULL) and its bytes.
        out.put_i32(1);
        let flags_at = out.len();
        out.put_i32(0);
        out.put_u32(Type::TEXT.oid());
        out.put_i32(count);
        out.put_i32(1);
        let mut nulls = false;
        for change in self.rows {
            let Change::Upsert { row, .. } = change else {
                return Err("a bulk upsert run holds a change that is not an upsert".into());
            };
            let len_at = out.len();
            out.put_i32(0);
            if write_pg_text(&row[self.col], out) {
                let len = i32::try_from(out.len() - len_at - 4)?;
                out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            } else {
                nulls = true;
                out[len_at..len_at + 4].copy_from_slice(&(-1i32).to_be_bytes());
            }
        }
        if nulls {
            out[flags_at..flags_at + 4].copy_from_slice(&1i32.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT_ARRAY
    }

    to_sql_checked!();
}

/// Appends the text [`pg_text`] gives `cell` to `out`; `false` (nothing written) for NULL.
fn write_pg_text(cell: &Cell, out: &mut BytesMut) -> bool {
    match cell {
        Cell::Null | Cell::Unavailable => return false,
        Cell::Text(s) | Cell::Decimal(s) => out.extend_from_slice(s.as_bytes()),
        Cell::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Cell::Bytes(b) => {
            out.extend_from_slice(b"\\x");
            write_hex(b, out);
        }
        other => match pg_text(other) {
            Some(s) => out.extend_from_slice(s.as_bytes()),
            None => return false,
        },
    }
    true
}

/// Appends `bytes` as lowercase hex digits.
fn write_hex(bytes: &[u8], out: &mut BytesMut) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.put_u8(DIGITS[usize::from(b >> 4)]);
        out.put_u8(DIGITS[usize::from(b & 0xf)]);
    }
}

/// Appends `text` as a field of COPY's text format: the characters it reads as escapes or
/// separators (backslash, tab, newline, carriage return) backslash-escaped, the rest as is.
fn copy_escape(text: &[u8], out: &mut BytesMut) {
    let mut from = 0;
    for (i, &b) in text.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&text[from..i]);
        out.extend_from_slice(escaped);
        from = i + 1;
    }
    out.extend_from_slice(&text[from..]);
}

/// Appends `cell` as a field of COPY's text format: the text the upsert binds for it
/// ([`write_pg_text`]), escaped, so the column's input function reads the same value either
/// way; NULL as `\N`. `Unavailable` never reaches a COPY (a run sends every column).
fn write_copy_cell(cell: &Cell, out: &mut BytesMut) {
    match cell {
        Cell::Text(s) => copy_escape(s.as_bytes(), out),
        // `\x…`: the one backslash is the only character to escape.
        Cell::Bytes(b) => {
            out.extend_from_slice(b"\\\\x");
            write_hex(b, out);
        }
        other => {
            let start = out.len();
            if !write_pg_text(other, out) {
                out.extend_from_slice(b"\\N");
            } else if out[start..]
                .iter()
                .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
            {
                // No other cell's text holds one today; escaped all the same if one ever does.
                let raw = out[start..].to_vec();
                out.truncate(start);
                copy_escape(&raw, out);
            }
        }
    }
}

/// Appends one upsert's row as a line of COPY's text format, columns in shape order.
fn write_copy_row(row: &[Cell], out: &mut BytesMut) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.put_u8(b'\t');
        }
        write_copy_cell(cell, out);
    }
    out.put_u8(b'\n');
}

/// Streams `rows` (upserts) into `copy`, a prepared `COPY … FROM STDIN`; the rows written.
async fn copy_rows(
    client: &Client,
    copy: &Statement,
    rows: &[Change],
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, bytes::Bytes>(copy).await?;
    futures_util::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(COPY_CHUNK + COPY_CHUNK / 4);
    for change in rows {
        if let Change::Upsert { row, .. } = change {
            write_copy_row(row, &mut buf);
        }
        if buf.len() >= COPY_CHUNK {
            sink.as_mut().send(buf.split().freeze()).await?;
        }
    }
    if !buf.is_empty() {
        sink.as_mut().send(buf.freeze()).await?;
    }
    sink.as_mut().finish().await
}

/// Runs `work` (statements only) pipelined: tokio-postgres sends the statements in the order
/// they are first polled, which `try_join_all` does in order, without waiting for each answer.
async fn pipelined(client: &Client, work: &[Work<'_>]) -> Result<(), ApplyError> {
    let runs = work.iter().filter_map(|w| match w {
        Work::Statement(st, params) => {
            let refs = params.refs();
            Some(async move { client.execute(st, &refs).await })
        }
        Work::Copy { .. } => None,
    });
    futures_util::future::try_join_all(runs)
        .await
        .map_err(|e| pg_error("apply a change", e))?;
    Ok(())
}

/// The end of the run of upserts that starts at `changes[start]`, an upsert: the upserts
/// after it of the same table for which `fits(row, insert)` holds, up to a key seen again
/// (ON CONFLICT may touch a row once per statement, and a COPY would refuse it).
fn run_end(changes: &[Change], start: usize, fits: impl Fn(&[Cell], bool) -> bool) -> usize {
    let Some(Change::Upsert { table, row, .. }) = changes.get(start) else {
        return start;
    };
    let mut seen: HashSet<u64> = HashSet::new();
    seen.insert(key_hash(&table.key, row));
    let mut end = start + 1;
    while let Some(Change::Upsert {
        table: t,
        row: r,
        insert,
    }) = changes.get(end)
    {
        if !Arc::ptr_eq(t, table) || !fits(r, *insert) || !seen.insert(key_hash(&table.key, r)) {
            break;
        }
        end += 1;
    }
    end
}

/// A hash of an upsert's key cells, to end a run at a key seen again in it. Equal keys hash
/// equal; a collision only ends a run early, which costs a statement and nothing else.
fn key_hash(key: &[usize], row: &[Cell]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for &k in key {
        match &row[k] {
            Cell::Null | Cell::Unavailable => 0u8.hash(&mut h),
            Cell::Bool(b) => (1u8, b).hash(&mut h),
            Cell::Int(i) => (2u8, i).hash(&mut h),
            // PostgreSQL's float equality: every NaN is one value, and -0 equals 0.
            Cell::Float(f) if f.is_nan() => (3u8, f64::NAN.to_bits()).hash(&mut h),
            Cell::Float(f) if *f == 0.0 => (3u8, 0u64).hash(&mut h),
            Cell::Float(f) => (3u8, f.to_bits()).hash(&mut h),
            Cell::Text(s) | Cell::Decimal(s) => (4u8, s).hash(&mut h),
            Cell::Bytes(b) => (5u8, b).hash(&mut h),
            Cell::Date(d) => (6u8, d).hash(&mut h),
            Cell::Time(t) | Cell::Timestamp(t) | Cell::Interval(t) => (7u8, t).hash(&mut h),
        }
    }
    h.finish()
}

/// A PostgreSQL target.
pub struct PgTarget {
    client: Client,
    schema: String,
    offsets_table: String,
    evolution: SchemaEvolution,
    /// Columns (name → `format_type`) of the tables known to exist.
    tables: HashMap<String, HashMap<String, String>>,
    /// (table, value schema id) checked against the target.
    checked: HashSet<(String, u32)>,
    statements: HashMap<String, Statement>,
    /// Batches applied (or tried) so far: the clock of [`CopyPause`].
    batches: u64,
    /// Tables whose inserts skip the COPY for now, by target table name.
    copy_paused: HashMap<String, CopyPause>,
    /// Tables the server refuses this session `COPY FROM` on (row-level security applies
    /// to it): their inserts are always upserted. Learnt by [`PgTarget::ensure`].
    copy_refused: HashSet<String>,
    /// Connection task; aborted when the target is dropped.
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for PgTarget {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Quotes an identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The column type in PostgreSQL, spelt as `format_type` prints it (so an existing column
/// can be compared as text).
pub fn pg_type(ty: &ColType) -> String {
    match ty {
        ColType::Bool => "boolean".into(),
        ColType::Int16 => "smallint".into(),
        ColType::Int32 => "integer".into(),
        ColType::Int64 => "bigint".into(),
        ColType::Float32 => "real".into(),
        ColType::Float64 => "double precision".into(),
        ColType::Text => "text".into(),
        ColType::Bytes => "bytea".into(),
        ColType::Decimal {
            precision: Some(p),
            scale,
        } => format!("numeric({p},{scale})"),
        ColType::Decimal { .. } | ColType::VarDecimal => "numeric".into(),
        ColType::Date => "date".into(),
        ColType::Time { .. } => "time without time zone".into(),
        ColType::Timestamp { .. } => "timestamp without time zone".into(),
        ColType::ZonedTimestamp => "timestamp with time zone".into(),
        ColType::ZonedTime => "time with time zone".into(),
        ColType::Interval => "interval".into(),
        ColType::Json => "jsonb".into(),
        ColType::Uuid => "uuid".into(),
    }
}

/// A cell as the text PostgreSQL's input function of `ty` reads.
fn pg_text(cell: &Cell) -> Option<String> {
    Some(match cell {
        Cell::Null | Cell::Unavailable => return None,
        Cell::Bool(b) => b.to_string(),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) if f.is_nan() => "NaN".into(),
        Cell::Float(f) if f.is_infinite() => if *f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Cell::Float(f) => f.to_string(),
        Cell::Text(s) => s.clone(),
        Cell::Bytes(b) => {
            let mut s = String::with_capacity(2 + b.len() * 2);
            s.push_str("\\x");
            for byte in b {
                let _ = write!(s, "{byte:02x}");
            }
            s
        }
        Cell::Decimal(d) => d.clone(),
        Cell::Date(d) => schema::date_text(*d),
        Cell::Time(t) => schema::time_text(*t),
        Cell::Timestamp(t) => schema::timestamp_text(*t),
        Cell::Interval(us) => format!("{us} microseconds"),
    })
}

fn pg_error(what: &str, e: tokio_postgres::Error) -> ApplyError {
    // A closed connection or a server going away is worth a retry; a refused statement
    // (a constraint, a type the input function rejects) is not.
    let transient = e.is_closed()
        || e.code().is_none()
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P") || c == "40001" || c == "40P01"
        });
    let text = match e.as_db_error() {
        Some(db) => format!("{what}: {} ({})", db.message(), db.code().code()),
        None => format!("{what}: {e}"),
    };
    if transient {
        ApplyError::transient(text)
    } else {
        ApplyError::definite(text)
    }
}

impl PgTarget {
    /// Connects to `url`.
    pub async fn connect(
        url: &str,
        schema: &str,
        offsets_table: &str,
        evolution: SchemaEvolution,
    ) -> Result<Self, ApplyError> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| pg_error("connect to the target database", e))?;
        let conn = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "target database connection ended");
            }
        });
        Ok(Self {
            client,
            schema: schema.to_string(),
            offsets_table: offsets_table.to_string(),
            evolution,
            tables: HashMap::new(),
            checked: HashSet::new(),
            statements: HashMap::new(),
            batches: 0,
            copy_paused: HashMap::new(),
            copy_refused: HashSet::new(),
            conn,
        })
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", ident(&self.schema), ident(table))
    }

    async fn statement(&mut self, sql: &str, params: usize) -> Result<Statement, ApplyError> {
        self.statement_typed(sql, params, Type::TEXT).await
    }

    async fn statement_typed(
        &mut self,
        sql: &str,
        params: usize,
        ty: Type,
    ) -> Result<Statement, ApplyError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let types = vec![ty; params];
        let s = self
            .client
            .prepare_typed(sql, &types)
            .await
            .map_err(|e| pg_error("prepare", e))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// The columns of `table` in the target (`None`: no such table).
    async fn columns(&self, table: &str) -> Result<Option<HashMap<String, String>>, ApplyError> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
                   AND a.attnum > 0 AND NOT a.attisdropped",
                &[&self.schema, &table],
            )
            .await
            .map_err(|e| pg_error("read the target table's columns", e))?;
        let exists = !rows.is_empty()
            || self
                .client
                .query_opt(
                    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relname = $2",
                    &[&self.schema, &table],
                )
                .await
                .map_err(|e| pg_error("look up the target table", e))?
                .is_some();
        Ok(exists.then(|| rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
    }

    /// Makes the target table fit `info` (inside the caller's transaction).
    async fn ensure(&mut self, info: &TableInfo) -> Result<(), ApplyError> {
        if self.checked.contains(&(info.name.clone(), info.schema_id)) {
            return Ok(());
        }
        let table = self.qualified(&info.name);
        let existing = match self.tables.get(&info.name) {
            Some(cols) => Some(cols.clone()),
            None => self.columns(&info.name).await?,
        };
        let mut cols = match existing {
            None => {
                let mut sql = format!("CREATE TABLE {table} (");
                for (i, c) in info.shape.columns.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    let _ = write!(sql, "{} {}", ident(&c.name), pg_type(&c.ty));
                    if info.key.contains(&i) {
                        sql.push_str(" NOT NULL");
                    }
                }
                let keys: Vec<String> = info
                    .key
                    .iter()
                    .map(|&i| ident(&info.shape.columns[i].name))
                    .collect();
                let _ = write!(sql, ", PRIMARY KEY ({}))", keys.join(", "));
                self.client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| pg_error(&format!("create table {table}"), e))?;
                tracing::info!(table = %table, columns = info.shape.columns.len(), "target table created");
                info.shape
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), pg_type(&c.ty)))
                    .collect()
            }
            Some(cols) => cols,
        };
        for c in &info.shape.columns {
            let wanted = pg_type(&c.ty);
            match cols.get(&c.name) {
                Some(have) if *have == wanted => {}
                Some(have) => {
                    return Err(type_change(
                        &table,
                        &c.name,
                        have,
                        &wanted,
                        &format!(
                            "ALTER TABLE {table} ALTER COLUMN {} TYPE {wanted}",
                            ident(&c.name)
                        ),
                    ))
                }
                None if self.evolution == SchemaEvolution::Basic => {
                    let sql = format!("ALTER TABLE {table} ADD COLUMN {} {wanted}", ident(&c.name));
                    self.client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| pg_error(&format!("add column to {table}"), e))?;
                    tracing::info!(table = %table, column = %c.name, r#type = %wanted, "target column added");
                    cols.insert(c.name.clone(), wanted);
                }
                None => {
                    return Err(ApplyError::definite(format!(
                        "the source's table `{}` gained column `{}` ({wanted}), which target \
                         table {table} lacks; fix: set [apply] schema_evolution = \"basic\", or \
                         add it yourself: ALTER TABLE {table} ADD COLUMN {} {wanted}",
                        info.name,
                        c.name,
                        ident(&c.name)
                    )))
                }
            }
        }
        self.tables.insert(info.name.clone(), cols);
        self.check_copy(&info.name).await?;
        self.checked.insert((info.name.clone(), info.schema_id));
        Ok(())
    }

    /// Notes whether the server lets this session `COPY FROM` into `table`. Under row-level
    /// security it does not ("COPY FROM not supported with row-level security") while the
    /// upsert goes through the policies; the COPY must not be tried then, rather than tried
    /// and fallen back from: that error comes before the COPY starts, and tokio-postgres's
    /// `copy_in` answers it with a second Sync whose stray ReadyForQuery leaves the
    /// connection out of step (rust-postgres#789), so only an attempt's end recovers.
    async fn check_copy(&mut self, table: &str) -> Result<(), ApplyError> {
        let row = self
            .client
            .query_one(
                "SELECT row_security_active($1::text::regclass)",
                &[&self.qualified(table)],
            )
            .await
            .map_err(|e| pg_error("read the target table's row-level security", e))?;
        if row.get::<_, bool>(0) {
            if self.copy_refused.insert(table.to_string()) {
                tracing::info!(
                    table = %table,
                    "row-level security applies to the target table: its inserts are upserted, not copied"
                );
            }
        } else {
            self.copy_refused.remove(table);
        }
        Ok(())
    }

    /// One `INSERT … SELECT … FROM unnest(…) ON CONFLICT` for upserts of `table` that send
    /// the columns `sent` (the others carry the TOAST placeholder): one array parameter per
    /// column, so the statement is prepared once and a run of any length is one round trip.
    fn upsert_many_sql(&self, table: &TableInfo, sent: &[bool]) -> String {
        let (mut names, mut casts, mut params, mut sets) = (vec![], vec![], vec![], vec![]);
        for (i, c) in table.shape.columns.iter().enumerate() {
            if !sent[i] {
                continue;
            }
            let n = ident(&c.name);
            let p = format!("p{}", names.len() + 1);
            params.push(format!("${}::text[]", names.len() + 1));
            casts.push(format!("{p}::{}", pg_type(&c.ty)));
            if !table.key.contains(&i) {
                sets.push(format!("{n} = EXCLUDED.{n}"));
            }
            names.push(n);
        }
        let aliases: Vec<String> = (1..=names.len()).map(|i| format!("p{i}")).collect();
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
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}) ON CONFLICT ({}) DO {action}",
            self.qualified(&table.name),
            names.join(", "),
            casts.join(", "),
            params.join(", "),
            aliases.join(", "),
            keys.join(", ")
        )
    }

    /// The bulk upsert of `rows` (upserts of `table` sending the columns `sent`) and its
    /// parameters.
    async fn upsert_statement<'a>(
        &mut self,
        table: &TableInfo,
        sent: &[bool],
        rows: &'a [Change],
    ) -> Result<(Statement, Params<'a>), ApplyError> {
        let columns: Vec<TextColumn<'a>> = sent
            .iter()
            .enumerate()
            .filter(|(_, s)| **s)
            .map(|(col, _)| TextColumn { rows, col })
            .collect();
        let sql = self.upsert_many_sql(table, sent);
        let st = self
            .statement_typed(&sql, columns.len(), Type::TEXT_ARRAY)
            .await?;
        Ok((st, Params::Arrays(columns)))
    }

    /// The `COPY` of a run of inserts of `table` (every column), and the bulk upsert of the
    /// same `rows` with its parameters to fall back to.
    async fn copy_statements<'a>(
        &mut self,
        table: &TableInfo,
        rows: &'a [Change],
    ) -> Result<(Statement, Statement, Params<'a>), ApplyError> {
        let names: Vec<String> = table.shape.columns.iter().map(|c| ident(&c.name)).collect();
        let sql = format!(
            "COPY {} ({}) FROM STDIN",
            self.qualified(&table.name),
            names.join(", ")
        );
        let copy = self.statement(&sql, 0).await?;
        let sent = vec![true; table.shape.columns.len()];
        let (upsert, columns) = self.upsert_statement(table, &sent, rows).await?;
        Ok((copy, upsert, columns))
    }

    /// Whether `table`'s inserts may try a COPY in this batch.
    fn copy_allowed(&self, table: &str) -> bool {
        !self.copy_refused.contains(table)
            && self
                .copy_paused
                .get(table)
                .is_none_or(|p| self.batches > p.until)
    }

    /// Applies a run of inserts with `copy` inside a savepoint, or, when that meets a key the
    /// target holds (or the table's COPY is paused), with `upsert` and its `columns`.
    async fn copy_or_upsert(
        &mut self,
        table: &TableInfo,
        rows: &[Change],
        copy: &Statement,
        upsert: &Statement,
        columns: &Params<'_>,
    ) -> Result<(), ApplyError> {
        // A conflict earlier in this batch may have paused it since the batch was planned.
        if self.copy_allowed(&table.name) {
            self.client
                .batch_execute(&format!("SAVEPOINT {COPY_SAVEPOINT}"))
                .await
                .map_err(|e| pg_error("savepoint before a copy", e))?;
            match copy_rows(&self.client, copy, rows).await {
                Ok(n) => {
                    self.client
                        .batch_execute(&format!("RELEASE SAVEPOINT {COPY_SAVEPOINT}"))
                        .await
                        .map_err(|e| pg_error("release the copy's savepoint", e))?;
                    self.copy_paused.remove(&table.name);
                    tracing::debug!(table = %table.name, rows = n, "rows copied");
                    return Ok(());
                }
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    self.client
                        .batch_execute(&format!(
                            "ROLLBACK TO SAVEPOINT {COPY_SAVEPOINT}; \
                             RELEASE SAVEPOINT {COPY_SAVEPOINT}"
                        ))
                        .await
                        .map_err(|e| pg_error("roll back the copy's savepoint", e))?;
                    let batches = self
                        .copy_paused
                        .get(&table.name)
                        .map_or(COPY_PAUSE_FIRST, |p| (p.batches * 2).min(COPY_PAUSE_MAX));
                    self.copy_paused.insert(
                        table.name.clone(),
                        CopyPause {
                            until: self.batches + batches,
                            batches,
                        },
                    );
                    tracing::debug!(
                        table = %table.name,
                        rows = rows.len(),
                        pause_batches = batches,
                        "copy met a key the target holds: the run is upserted"
                    );
                }
                // Anything else ends the attempt, and with it this connection: an error the
                // server raised before the COPY started leaves tokio-postgres's pairing of
                // answers to requests one ReadyForQuery off (see `check_copy`), so nothing
                // more is sent on it. The one above is raised by a row, after the server
                // consumed (and ignored) the Sync sent with the COPY: the pairing holds.
                Err(e) => return Err(pg_error("apply a change (copy)", e)),
            }
        }
        self.client
            .execute(upsert, &columns.refs())
            .await
            .map_err(|e| pg_error("apply a change", e))?;
        Ok(())
    }

    /// The SQL and parameters of one change.
    fn sql_of(&self, change: &Change) -> (String, Vec<Option<String>>) {
        match change {
            Change::Upsert { table, row, .. } => {
                let mut names = Vec::new();
                let mut values = Vec::new();
                let mut params = Vec::new();
                let mut sets = Vec::new();
                for (i, (c, cell)) in table.shape.columns.iter().zip(row).enumerate() {
                    if *cell == Cell::Unavailable {
                        continue; // the stored value stays
                    }
                    let n = ident(&c.name);
                    params.push(pg_text(cell));
                    values.push(format!("${}::{}", params.len(), pg_type(&c.ty)));
                    if !table.key.contains(&i) {
                        sets.push(format!("{n} = EXCLUDED.{n}"));
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
                (
                    format!(
                        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO {action}",
                        self.qualified(&table.name),
                        names.join(", "),
                        values.join(", "),
                        keys.join(", ")
                    ),
                    params,
                )
            }
            Change::Delete { table, key } => {
                let mut conds = Vec::new();
                let mut params = Vec::new();
                for (&i, cell) in table.key.iter().zip(key) {
                    let c = &table.shape.columns[i];
                    params.push(pg_text(cell));
                    conds.push(format!(
                        "{} = ${}::{}",
                        ident(&c.name),
                        params.len(),
                        pg_type(&c.ty)
                    ));
                }
                (
                    format!(
                        "DELETE FROM {} WHERE {}",
                        self.qualified(&table.name),
                        conds.join(" AND ")
                    ),
                    params,
                )
            }
            Change::Truncate { table } => {
                (format!("DELETE FROM {}", self.qualified(table)), vec![])
            }
        }
    }
}

impl Target for PgTarget {
    async fn prepare(&mut self) -> Result<(), ApplyError> {
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.{table} (
                 consumer text NOT NULL,
                 topic text NOT NULL,
                 partition integer NOT NULL,
                 next_offset bigint NOT NULL,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (consumer, topic, partition))",
            schema = ident(&self.schema),
            table = ident(&self.offsets_table)
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| pg_error("create the offsets table", e))
    }

    /// A session-level advisory lock on (offsets table, name). It is what makes a kill -9
    /// safe to restart from at once: the killed process's server session may still be
    /// committing its last batch (the server learns of the client's death only when it next
    /// reads or writes the socket), and offsets read before that commit lands would be read
    /// again and then refused by the fence. The session holds its lock until it ends, which is
    /// after that commit; so once the lock is ours, the offsets are final.
    async fn claim(&mut self, name: &str) -> Result<(), ApplyError> {
        let key = claim_key(&self.schema, &self.offsets_table, name);
        let row = self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .await
            .map_err(|e| pg_error("claim the consumer (pg_try_advisory_lock)", e))?;
        if row.get::<_, bool>(0) {
            return Ok(());
        }
        Err(ApplyError::transient(format!(
            "another database session holds apply `{name}`'s claim on the target (the session \
             of a previous apply process that has not ended yet, or a second apply with the \
             same name); fix, if it lasts: run one apply per [apply] name and target; the \
             holder: SELECT pid, application_name, client_addr, state FROM pg_stat_activity \
             JOIN pg_locks USING (pid) WHERE locktype = 'advisory' AND \
             (classid::bigint << 32 | objid::bigint) = hashtextextended('{}', 0)",
            key.replace('\'', "''")
        )))
    }

    async fn offsets(&mut self, name: &str) -> Result<Offsets, ApplyError> {
        let sql = format!(
            "SELECT topic, partition, next_offset FROM {}.{} WHERE consumer = $1",
            ident(&self.schema),
            ident(&self.offsets_table)
        );
        let rows = self
            .client
            .query(&sql, &[&name])
            .await
            .map_err(|e| pg_error("read the stored offsets", e))?;
        Ok(rows
            .iter()
            .map(|r| ((r.get::<_, String>(0), r.get::<_, i32>(1)), r.get(2)))
            .collect())
    }

    async fn apply(&mut self, name: &str, batch: &Batch) -> Result<(), ApplyError> {
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| pg_error("begin", e))?;
        let result = self.apply_in_transaction(name, batch).await;
        match result {
            Ok(()) => self
                .client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| pg_error("commit", e)),
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
}

impl PgTarget {
    async fn apply_in_transaction(&mut self, name: &str, batch: &Batch) -> Result<(), ApplyError> {
        // DDL first: it only creates tables and adds nullable columns, which no earlier
        // change of the batch can tell apart.
        for change in &batch.changes {
            match change {
                Change::Upsert { table, .. } | Change::Delete { table, .. } => {
                    self.ensure(table).await?
                }
                Change::Truncate { .. } => {}
            }
        }
        self.batches += 1;
        let mut work: Vec<Work<'_>> = Vec::with_capacity(batch.changes.len());
        let mut copies = 0;
        let mut i = 0;
        while i < batch.changes.len() {
            let change = &batch.changes[i];
            if let Change::Upsert { table, row, insert } = change {
                // A long run of inserts sending every column, distinct keys: a COPY first.
                if *insert
                    && copies < COPY_MAX_PER_BATCH
                    && self.copy_allowed(&table.name)
                    && !row.contains(&Cell::Unavailable)
                {
                    let end = run_end(&batch.changes, i, |r, insert| {
                        insert && !r.contains(&Cell::Unavailable)
                    });
                    if end - i >= COPY_MIN_ROWS {
                        let rows = &batch.changes[i..end];
                        let (copy, upsert, columns) = self.copy_statements(table, rows).await?;
                        work.push(Work::Copy {
                            table,
                            rows,
                            copy,
                            upsert,
                            columns,
                        });
                        copies += 1;
                        i = end;
                        continue;
                    }
                }
                // A run of upserts of one table sending the same columns becomes one
                // statement. ON CONFLICT may touch a row once per statement, so a key seen
                // again ends the run: every upsert is still applied, in order (row triggers
                // on the target see every version).
                let sent: Vec<bool> = row.iter().map(|c| *c != Cell::Unavailable).collect();
                let end = run_end(&batch.changes, i, |r, _| {
                    r.iter()
                        .zip(&sent)
                        .all(|(c, s)| (*c != Cell::Unavailable) == *s)
                });
                if end - i >= BULK_MIN_ROWS {
                    let rows = &batch.changes[i..end];
                    let (st, columns) = self.upsert_statement(table, &sent, rows).await?;
                    work.push(Work::Statement(st, columns));
                    i = end;
                    continue;
                }
            }
            if let Change::Truncate { table } = change {
                let known = self.tables.contains_key(table) || self.columns(table).await?.is_some();
                if !known {
                    i += 1;
                    continue; // nothing to empty
                }
            }
            let (sql, params) = self.sql_of(change);
            let st = self.statement(&sql, params.len()).await?;
            work.push(Work::Statement(st, Params::Scalars(params)));
            i += 1;
        }
        // Statements go pipelined up to each COPY; their answers are awaited before it starts
        // and its own before the next statements go: change order throughout, at the cost of
        // a round trip per COPY.
        let mut from = 0;
        for (at, step) in work.iter().enumerate() {
            if let Work::Copy {
                table,
                rows,
                copy,
                upsert,
                columns,
            } = step
            {
                pipelined(&self.client, &work[from..at]).await?;
                self.copy_or_upsert(table, rows, copy, upsert, columns)
                    .await?;
                from = at + 1;
            }
        }
        pipelined(&self.client, &work[from..]).await?;
        let table = format!("{}.{}", ident(&self.schema), ident(&self.offsets_table));
        let update = self
            .statement(
                &format!(
                    "UPDATE {table} SET next_offset = $4::bigint, updated_at = now()
                     WHERE consumer = $1 AND topic = $2 AND partition = $3::integer
                       AND next_offset = $5::bigint"
                ),
                5,
            )
            .await?;
        let insert = self
            .statement(
                &format!(
                    "INSERT INTO {table} (consumer, topic, partition, next_offset)
                     VALUES ($1, $2, $3::integer, $4::bigint) ON CONFLICT DO NOTHING"
                ),
                4,
            )
            .await?;
        for m in &batch.offsets {
            let (p, to) = (m.partition.to_string(), m.to.to_string());
            let n = match m.from {
                Some(from) => {
                    let from = from.to_string();
                    self.client
                        .execute(&update, &[&name, &&*m.topic, &p, &to, &from])
                        .await
                }
                None => {
                    self.client
                        .execute(&insert, &[&name, &&*m.topic, &p, &to])
                        .await
                }
            }
            .map_err(|e| pg_error("store offsets", e))?;
            if n != 1 {
                return Err(fenced(name, &m.topic, m.partition));
            }
        }
        Ok(())
    }
}

/// The text whose hash keys consumer `name`'s advisory lock: the offsets table is part of
/// it, so consumers of one name in different offsets tables do not exclude each other.
fn claim_key(schema: &str, offsets_table: &str, name: &str) -> String {
    format!("cdc-agent apply {schema}.{offsets_table} {name}")
}

/// Another writer moved this consumer's offsets.
pub fn fenced(name: &str, topic: &str, partition: i32) -> ApplyError {
    ApplyError::definite(format!(
        "the stored offset of {topic}/{partition} for apply `{name}` is not the one this \
         process read: another apply with the same name writes to this target; fix: run one \
         apply per [apply] name and target (give each its own name)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::schema::{Column, Shape};

    fn upsert(table: &Arc<TableInfo>, row: Vec<Cell>) -> Change {
        Change::Upsert {
            table: table.clone(),
            row,
            insert: true,
        }
    }

    fn copy_line(row: &[Cell]) -> String {
        let mut out = BytesMut::new();
        write_copy_row(row, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn copy_text_escapes_backslash_tab_newline_and_carriage_return() {
        assert_eq!(
            copy_line(&[Cell::Text("a\\b\tc\nd\re".into())]),
            "a\\\\b\\tc\\nd\\re\n"
        );
        assert_eq!(
            copy_line(&[Cell::Text("plain text, é".into())]),
            "plain text, é\n"
        );
    }

    #[test]
    fn copy_text_keeps_the_end_marker_and_a_literal_backslash_n_from_reading_as_such() {
        // `\.` alone ends COPY data and `\N` is NULL: escaped, both stay text.
        assert_eq!(copy_line(&[Cell::Text("\\.".into())]), "\\\\.\n");
        assert_eq!(copy_line(&[Cell::Text("\\N".into())]), "\\\\N\n");
        assert_eq!(copy_line(&[Cell::Text(String::new())]), "\n");
    }

    #[test]
    fn copy_text_writes_null_as_backslash_n_and_separates_columns_by_tabs() {
        assert_eq!(
            copy_line(&[Cell::Int(7), Cell::Null, Cell::Text("x".into())]),
            "7\t\\N\tx\n"
        );
    }

    #[test]
    fn copy_text_of_bytea_is_the_escaped_hex_form() {
        assert_eq!(
            copy_line(&[Cell::Bytes(vec![0x00, 0x5c, 0x09, 0xff])]),
            "\\\\x005c09ff\n"
        );
        assert_eq!(copy_line(&[Cell::Bytes(vec![])]), "\\\\x\n");
    }

    #[test]
    fn copy_text_is_the_upsert_text_of_every_other_cell() {
        let cells = [
            Cell::Bool(true),
            Cell::Int(-42),
            Cell::Float(1.5),
            Cell::Float(f64::NAN),
            Cell::Float(f64::NEG_INFINITY),
            Cell::Decimal("-12.340".into()),
            Cell::Date(19_723),
            Cell::Time(3_723_000_001),
            Cell::Timestamp(1_704_067_200_000_001),
            Cell::Interval(-90_000_000),
        ];
        for cell in cells {
            let mut out = BytesMut::new();
            write_copy_cell(&cell, &mut out);
            assert_eq!(
                Some(String::from_utf8(out.to_vec()).unwrap()),
                pg_text(&cell),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn copy_text_of_json_escapes_the_json_escapes() {
        // JSON's own `\"` and `\n` reach the server as two characters each.
        assert_eq!(
            copy_line(&[Cell::Text(r#"{"a":"x\"y\nz","b":[1,null]}"#.into())]),
            "{\"a\":\"x\\\\\"y\\\\nz\",\"b\":[1,null]}\n"
        );
    }

    #[test]
    fn bytea_text_is_the_hex_form_either_way() {
        let cell = Cell::Bytes(vec![0xde, 0xad, 0x01]);
        let mut out = BytesMut::new();
        assert!(write_pg_text(&cell, &mut out));
        assert_eq!(&out[..], b"\\xdead01");
        assert_eq!(pg_text(&cell).as_deref(), Some("\\xdead01"));
    }

    #[test]
    fn a_run_ends_at_another_table_a_key_seen_again_or_a_change_that_does_not_fit() {
        let key = |id: i64| vec![Cell::Int(id)];
        let t = Arc::new(TableInfo {
            name: "t".into(),
            schema_id: 1,
            shape: Shape {
                columns: vec![Column {
                    name: "id".into(),
                    ty: ColType::Int64,
                }],
            },
            key: vec![0],
        });
        let u = Arc::new(TableInfo {
            name: "u".into(),
            schema_id: 1,
            shape: t.shape.clone(),
            key: vec![0],
        });
        let all = |_: &[Cell], _: bool| true;
        let changes = vec![
            upsert(&t, key(1)),
            upsert(&t, key(2)),
            upsert(&t, key(1)),
            upsert(&t, key(3)),
            upsert(&u, key(4)),
        ];
        assert_eq!(run_end(&changes, 0, all), 2, "key 1 again");
        assert_eq!(run_end(&changes, 2, all), 4, "table u");
        let mut updated = upsert(&t, key(5));
        if let Change::Upsert { insert, .. } = &mut updated {
            *insert = false;
        }
        let changes = vec![upsert(&t, key(1)), upsert(&t, key(2)), updated];
        assert_eq!(run_end(&changes, 0, |_, insert| insert), 2, "an update");
        assert_eq!(run_end(&changes, 0, all), 3);
    }

    #[test]
    fn a_text_column_is_the_binary_text_array_of_the_cells() {
        let table = Arc::new(TableInfo {
            name: "t".into(),
            schema_id: 1,
            shape: Shape {
                columns: vec![Column {
                    name: "v".into(),
                    ty: ColType::Text,
                }],
            },
            key: vec![0],
        });
        let rows = vec![
            upsert(&table, vec![Cell::Text("ab".into())]),
            upsert(&table, vec![Cell::Null]),
            upsert(&table, vec![Cell::Int(-7)]),
        ];
        let mut out = BytesMut::new();
        let col = TextColumn {
            rows: &rows,
            col: 0,
        };
        assert!(matches!(
            col.to_sql(&Type::TEXT_ARRAY, &mut out),
            Ok(IsNull::No)
        ));
        let mut want: Vec<u8> = Vec::new();
        for n in [1i32, 1] {
            want.extend(n.to_be_bytes());
        }
        want.extend(Type::TEXT.oid().to_be_bytes());
        for n in [3i32, 1, 2] {
            want.extend(n.to_be_bytes());
        }
        want.extend(b"ab");
        want.extend((-1i32).to_be_bytes());
        want.extend(2i32.to_be_bytes());
        want.extend(b"-7");
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn keys_postgres_finds_equal_hash_equal() {
        let k = |c: Cell| key_hash(&[0], &[c]);
        assert_eq!(k(Cell::Float(0.0)), k(Cell::Float(-0.0)));
        assert_eq!(k(Cell::Float(f64::NAN)), k(Cell::Float(-f64::NAN)));
        assert_eq!(k(Cell::Text("a".into())), k(Cell::Text("a".into())));
        assert_ne!(k(Cell::Int(1)), k(Cell::Int(2)));
    }
}
