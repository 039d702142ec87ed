//! Snapshot chunks: the next rows of a table in primary-key order, read with COPY (the
//! fastest way out of PostgreSQL) under a fresh statement snapshot, between two watermarks
//! written with `pg_logical_emit_message` (see `crate::pipeline::snapshot`).

use std::borrow::Cow;

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::Client;

use super::schema::SchemaLoader;
use super::setup::{quote_ident, quote_literal};
use super::snapshot::{copy_error, split_copy_line, CopyError};
use super::SourceError;
use crate::checkpoint::KeyValue;
use crate::event::Datum;
use crate::pipeline::snapshot::{Chunk, ChunkRequest, Watermark, WATERMARK_PREFIX};
use crate::pipeline::Pipeline;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// Writes a watermark into the WAL as a transactional logical decoding message: it comes
/// back through the slot in commit order, between the changes committed before and after.
pub async fn write_watermark(sql: &Client, wm: &Watermark) -> Result<(), SourceError> {
    sql.execute(
        "SELECT pg_logical_emit_message(true, $1, $2)",
        &[&WATERMARK_PREFIX, &wm.text()],
    )
    .await
    .map_err(SourceError::sql(
        "write a snapshot watermark (pg_logical_emit_message)",
    ))?;
    Ok(())
}

/// Splits `schema.table` at the first dot.
pub fn split_table(name: &str) -> Result<(&str, &str), SourceError> {
    name.split_once('.').ok_or_else(|| {
        SourceError::definite(format!(
            "snapshot table `{name}`: expected schema.table; fix: name the table with its schema"
        ))
    })
}

/// Which transactions a snapshot sees, from `pg_current_snapshot()` (`xmin:xmax:xip,…`).
///
/// Why the chunk reader needs it: PostgreSQL writes a transaction's commit record to the WAL
/// before the transaction becomes visible to new snapshots (the flush, then the commit log,
/// then the process array). A transaction whose commit precedes the low watermark in the WAL
/// can therefore still be invisible to the chunk's read; its change then goes by in the
/// stream *before* the window opens, and the chunk would emit the row as it was before that
/// change (a deleted row brought back). The stream compares the transactions it delivered
/// before the low watermark with this snapshot and has the chunk read again when one of them
/// was not visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidSnapshot {
    xmin: u64,
    xmax: u64,
    xip: Vec<u64>,
}

impl XidSnapshot {
    /// Parses `pg_current_snapshot()`'s text.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(3, ':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let xip = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        Some(Self { xmin, xmax, xip })
    }

    /// Whether the snapshot sees the (committed) transaction `xid`, as pgoutput sends it:
    /// 32 bits, widened with the epoch of `xmax`.
    pub fn sees(&self, xid: u32) -> bool {
        let mut full = (self.xmax & !0xFFFF_FFFF) | u64::from(xid);
        if full > self.xmax.saturating_add(1 << 31) {
            full = full.saturating_sub(1 << 32);
        }
        full < self.xmin || (full < self.xmax && !self.xip.contains(&full))
    }
}

/// Whether `table` (`schema.table`) exists.
pub async fn table_exists(sql: &Client, table: &str) -> Result<bool, SourceError> {
    let (schema, name) = split_table(table)?;
    let row = sql
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = \
             c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
            &[&schema, &name],
        )
        .await
        .map_err(SourceError::sql("look up a snapshot table"))?;
    Ok(row.get(0))
}

/// Reads the chunk `req` asks for (see [`crate::pipeline::ChangeStream::read_chunk`]), in
/// one repeatable-read transaction whose snapshot is returned with it.
pub async fn read_chunk<S: Sink>(
    sql: &Client,
    loader: &mut SchemaLoader<'_>,
    role: &str,
    req: &ChunkRequest,
    out: &mut Pipeline<S>,
    stop: &mut Shutdown,
) -> Result<(Chunk, XidSnapshot), SourceError> {
    let begin = sql
        .simple_query(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
             SELECT pg_current_snapshot()::text",
        )
        .await
        .map_err(SourceError::sql("start a snapshot chunk transaction"));
    let snapshot = begin.and_then(|msgs| {
        msgs.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .and_then(|t| XidSnapshot::parse(&t))
            .ok_or_else(|| SourceError::transient("pg_current_snapshot() gave no snapshot".into()))
    });
    let read = match snapshot {
        Ok(snapshot) => read_in_transaction(sql, loader, role, req, out, stop)
            .await
            .map(|chunk| (chunk, snapshot)),
        Err(e) => Err(e),
    };
    // Ended on every path: the same connection writes the next watermark, which must not be
    // part of this transaction.
    let end = sql
        .batch_execute("ROLLBACK")
        .await
        .map_err(SourceError::sql("end a snapshot chunk transaction"));
    let read = read?;
    end?;
    Ok(read)
}

async fn read_in_transaction<S: Sink>(
    sql: &Client,
    loader: &mut SchemaLoader<'_>,
    role: &str,
    req: &ChunkRequest,
    out: &mut Pipeline<S>,
    stop: &mut Shutdown,
) -> Result<Chunk, SourceError> {
    let (schema_name, table_name) = split_table(&req.table)?;
    let (state, oid) = loader.load_table(schema_name, table_name).await?;
    let shared = out.set_table(state.schema_owned(), stop).await?;
    let state = state.with_schema(shared.clone());
    let schema = state.schema();
    if schema.key.is_empty() {
        return Err(SourceError::definite(format!(
            "snapshot of {}: the table has no primary key, and chunked snapshots read in key \
             order and match changes by key; fix: ALTER TABLE {}.{} ADD PRIMARY KEY (…), or \
             leave the table out of the publication, or set [snapshot] mode = \"never\"",
            req.table,
            quote_ident(schema_name),
            quote_ident(table_name)
        )));
    }
    let cols: Vec<String> = schema
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    let keys: Vec<String> = schema
        .key
        .iter()
        .map(|&i| quote_ident(&schema.columns[i].name))
        .collect();
    let mut conditions = Vec::new();
    if let Some(after) = &req.after {
        if after.len() != keys.len() {
            return Err(SourceError::definite(format!(
                "snapshot of {}: the checkpoint's resume key has {} columns, the primary key \
                 now {}; fix: restart the table's snapshot (cdc-agent snapshot --table {})",
                req.table,
                after.len(),
                keys.len(),
                req.table
            )));
        }
        let lits: Vec<String> = after
            .iter()
            .map(|k| match k {
                KeyValue::Text(t) => quote_literal(t),
                KeyValue::Hex { hex } => format!("'\\x{hex}'"),
            })
            .collect();
        conditions.push(format!("({}) > ({})", keys.join(", "), lits.join(", ")));
    }
    if let Some(f) = &req.filter {
        conditions.push(format!("({f})"));
    }
    let copy = format!(
        "COPY (SELECT {} FROM {}.{}{} ORDER BY {} LIMIT {}) TO STDOUT",
        cols.join(", "),
        quote_ident(schema_name),
        quote_ident(table_name),
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        },
        keys.join(", "),
        req.limit + 1
    );
    let table = (schema_name.to_string(), table_name.to_string());
    let fail = |e| copy_error(e, &table, role);
    let stream = sql
        .copy_out(copy.as_str())
        .await
        .map_err(|e| fail(CopyError("start COPY", e)))?;
    pin_mut!(stream);
    let mut rows: Vec<Vec<Datum<'static>>> = Vec::with_capacity(req.limit.min(100_000) + 1);
    // The key fields of the newest row, as COPY wrote them: only the last row's key is needed
    // (where the next chunk starts), so it is made into `KeyValue`s once, after the read.
    let mut last_key_raw: Vec<Vec<u8>> = vec![Vec::new(); schema.key.len()];
    let mut more = false;
    let mut carry: Vec<u8> = Vec::new();
    while let Some(data) = stream.next().await {
        let data = data.map_err(|e| fail(CopyError("read COPY", e)))?;
        carry.extend_from_slice(&data);
        let mut fields: Vec<Option<Cow<'_, [u8]>>> = Vec::with_capacity(state.width());
        let mut start = 0;
        while let Some(nl) = carry[start..].iter().position(|&b| b == b'\n') {
            let line = &carry[start..start + nl];
            start += nl + 1;
            if rows.len() == req.limit {
                // The extra row only tells that more follow.
                more = true;
                continue;
            }
            split_copy_line(line, &mut fields);
            if fields.len() != state.width() {
                return Err(SourceError::definite(format!(
                    "snapshot of {}: COPY row has {} fields, expected {}",
                    req.table,
                    fields.len(),
                    state.width()
                )));
            }
            let mut row = Vec::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                row.push(match f {
                    None => Datum::Null,
                    Some(f) => state.decode_text(i, f)?.into_owned(),
                });
            }
            for (raw, &i) in last_key_raw.iter_mut().zip(&schema.key) {
                let Some(f) = &fields[i] else {
                    return Err(SourceError::definite(format!(
                        "snapshot of {}: NULL in key column `{}`",
                        req.table, schema.columns[i].name
                    )));
                };
                raw.clear();
                raw.extend_from_slice(f);
            }
            rows.push(row);
            fields.clear();
        }
        carry.drain(..start);
    }
    if !carry.is_empty() {
        return Err(SourceError::transient(format!(
            "COPY of {} ended in the middle of a row",
            req.table
        )));
    }
    let last_key = (!rows.is_empty()).then(|| {
        last_key_raw
            .iter()
            .map(|raw| KeyValue::from_bytes(raw))
            .collect::<Vec<_>>()
    });
    let estimate = if req.first {
        let rows: f32 = sql
            .query_one("SELECT reltuples FROM pg_class WHERE oid = $1", &[&oid])
            .await
            .map_err(SourceError::sql("estimate rows"))?
            .get(0);
        Some(rows.max(0.0) as u64)
    } else {
        None
    };
    Ok(Chunk {
        schema: shared,
        rows,
        last_key,
        more,
        estimate,
    })
}

#[cfg(test)]
mod tests {
    use super::XidSnapshot;

    #[test]
    fn a_snapshot_sees_what_committed_before_it_and_not_what_was_running_or_came_after() {
        let s = XidSnapshot::parse("100:105:101,103").unwrap();
        assert!(s.sees(99));
        assert!(s.sees(100), "below xmax and not listed as running");
        assert!(!s.sees(101), "running when the snapshot was taken");
        assert!(s.sees(102));
        assert!(!s.sees(103));
        assert!(s.sees(104));
        assert!(!s.sees(105), "at or after xmax");
        assert_eq!(
            XidSnapshot::parse("7:7:").unwrap(),
            XidSnapshot {
                xmin: 7,
                xmax: 7,
                xip: vec![]
            }
        );
        assert!(XidSnapshot::parse("x:1:").is_none());
        assert!(XidSnapshot::parse("1:2").is_none());
    }

    #[test]
    fn thirty_two_bit_xids_are_widened_with_the_snapshot_epoch() {
        let epoch = 3u64 << 32;
        let s =
            XidSnapshot::parse(&format!("{}:{}:{}", epoch + 10, epoch + 20, epoch + 15)).unwrap();
        assert!(s.sees(5));
        assert!(!s.sees(15));
        assert!(!s.sees(25));
        // Just before an epoch boundary, a 32-bit xid near u32::MAX is from the previous epoch.
        let s = XidSnapshot::parse(&format!("{}:{}:", epoch + 2, epoch + 4)).unwrap();
        assert!(s.sees(u32::MAX - 1));
        assert!(!s.sees(4));
    }
}
