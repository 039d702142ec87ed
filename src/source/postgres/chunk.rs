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

/// Reads the chunk `req` asks for (see [`crate::pipeline::ChangeStream::read_chunk`]).
pub async fn read_chunk<S: Sink>(
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
    let mut last_key: Option<Vec<KeyValue>> = None;
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
            let key = schema
                .key
                .iter()
                .map(|&i| match &fields[i] {
                    Some(f) => Ok(KeyValue::from_bytes(f)),
                    None => Err(SourceError::definite(format!(
                        "snapshot of {}: NULL in key column `{}`",
                        req.table, schema.columns[i].name
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            last_key = Some(key);
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
