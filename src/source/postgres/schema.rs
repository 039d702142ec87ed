//! Table schemas: from a pgoutput Relation message (streaming) or the catalog (snapshot) to
//! the event model's [`TableSchema`], plus the per-column decoders that turn PostgreSQL's text
//! format into [`Datum`]s.
//!
//! Both paths go through [`SchemaLoader::build`] with the same catalog facts (nullability,
//! primary key, types), so the snapshot and the stream register the same Avro schema and a
//! table's topic does not get a spurious new version at the switch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_postgres::Client;

use super::pgoutput::{Column as PgCol, Relation, TupleData};
use super::types::{self, CatalogRow, PgColumnDecoder, TypeCatalog};
use super::SourceError;
use crate::encode::avro::avro_default;
use crate::event::{Column, Datum, TableId, TableSchema};

/// Nullability, primary-key position and default expression of every column of a table.
const FACTS_QUERY: &str = "SELECT a.attname::text, a.attnotnull, \
        COALESCE(a.attnum = ANY (i.indkey::int2[]), false) AS in_pk, \
        array_position(i.indkey::int2[], a.attnum) AS pk_pos, \
        CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default_expr \
     FROM pg_attribute a \
     LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped";
/// How often (every 20 ms) the catalog is asked for a table that is not visible yet.
const CATALOG_WAIT_ATTEMPTS: u32 = 250;

/// One column as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawColumn {
    /// Name.
    pub name: String,
    /// Type oid.
    pub type_oid: u32,
    /// Type modifier (`-1` when none).
    pub type_modifier: i32,
}

/// A table ready for decoding rows: its event schema and one decoder per column.
#[derive(Debug)]
pub struct RelationState {
    schema: Arc<TableSchema>,
    decoders: Vec<PgColumnDecoder>,
    /// Whether the unchanged-TOAST hint was logged for this table (once is enough).
    toast_hinted: AtomicBool,
}

impl RelationState {
    /// A state from a schema and one decoder per column, in column order: what
    /// [`SchemaLoader`] builds from the catalog, for callers that know the columns already
    /// (the `encode` benchmark decodes captured pgoutput bytes without a server).
    pub fn new(schema: TableSchema, decoders: Vec<PgColumnDecoder>) -> Self {
        Self {
            schema: Arc::new(schema),
            decoders,
            toast_hinted: AtomicBool::new(false),
        }
    }

    /// The event schema.
    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    /// A copy of the event schema, to hand to the publisher.
    pub fn schema_owned(&self) -> TableSchema {
        (*self.schema).clone()
    }

    /// The same state with the publisher's shared schema (saves a copy per table).
    pub fn with_schema(mut self, schema: Arc<TableSchema>) -> Self {
        self.schema = schema;
        self
    }

    /// Decodes one pgoutput tuple into `out` (cleared first), in column order.
    pub fn decode<'a>(
        &self,
        tuple: TupleData<'a>,
        out: &mut Vec<Datum<'a>>,
    ) -> Result<(), SourceError> {
        out.clear();
        if tuple.len() != self.decoders.len() {
            return Err(SourceError::transient(format!(
                "table {}: tuple has {} columns, schema has {}; reloading the schema",
                self.schema.id,
                tuple.len(),
                self.decoders.len()
            )));
        }
        for (i, col) in tuple.iter().enumerate() {
            let d = match col {
                PgCol::Null => Datum::Null,
                PgCol::UnchangedToast => {
                    if !self.toast_hinted.swap(true, Ordering::Relaxed) {
                        let t = &self.schema.id;
                        tracing::warn!(
                            table = %t,
                            "unchanged TOAST values are sent as the placeholder \
                             __debezium_unavailable_value; for full values run: \
                             ALTER TABLE {t} REPLICA IDENTITY FULL;"
                        );
                    }
                    Datum::Unchanged
                }
                PgCol::Text(t) | PgCol::Binary(t) => self.decode_text(i, t)?,
            };
            out.push(d);
        }
        Ok(())
    }

    /// Decodes column `i` from its text form.
    pub fn decode_text<'a>(&self, i: usize, text: &'a [u8]) -> Result<Datum<'a>, SourceError> {
        let Some(dec) = self.decoders.get(i) else {
            return Err(SourceError::transient(format!(
                "table {}: column {i} beyond the schema",
                self.schema.id
            )));
        };
        dec.decode(text).map_err(|e| {
            let col = self.schema.columns.get(i).map_or("?", |c| c.name.as_str());
            SourceError::definite(format!(
                "table {}: column `{col}`: cannot decode value: {e}",
                self.schema.id
            ))
        })
    }

    /// Whether the key columns differ between two full rows.
    pub fn key_differs(&self, a: &[Datum<'_>], b: &[Datum<'_>]) -> bool {
        self.schema.key.iter().any(|&i| a.get(i) != b.get(i))
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.decoders.len()
    }
}

/// Loads the catalog facts a schema needs. Keeps the type catalog across tables.
pub struct SchemaLoader<'c> {
    sql: &'c Client,
    types: TypeCatalog,
}

impl<'c> SchemaLoader<'c> {
    /// A loader on an SQL connection (with the source's session settings).
    pub fn new(sql: &'c Client) -> Self {
        Self {
            sql,
            types: TypeCatalog::default(),
        }
    }

    /// The state of the table a Relation message describes, sent inside the source
    /// transaction `xid` (its Begin message's): the columns, their types and type modifiers are
    /// the message's, so rows written before a later `ALTER TABLE` decode with the column set
    /// they were written with. The catalog adds only nullability and the primary key.
    pub async fn load(
        &mut self,
        rel: &Relation<'_>,
        xid: Option<u32>,
    ) -> Result<RelationState, SourceError> {
        let columns: Vec<RawColumn> = rel
            .columns
            .iter()
            .map(|c| RawColumn {
                name: c.name.to_string(),
                type_oid: c.type_oid,
                type_modifier: c.type_modifier,
            })
            .collect();
        let key_flags: Vec<bool> = rel.columns.iter().map(|c| c.is_key()).collect();
        self.build_at(
            rel.oid,
            TableId::new(rel.schema(), rel.name),
            columns,
            Some(key_flags),
            xid,
        )
        .await
    }

    /// The state of a table by name, for the snapshot: the columns pgoutput would send
    /// (generated columns excluded, as PostgreSQL 15 does not publish them).
    pub async fn load_table(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<(RelationState, u32), SourceError> {
        let oid: u32 = self
            .sql
            .query_one(
                "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &table],
            )
            .await
            .map_err(SourceError::sql("look up table"))?
            .get(0);
        let rows = self
            .sql
            .query(
                "SELECT attname::text, atttypid, atttypmod FROM pg_attribute \
                 WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' \
                 ORDER BY attnum",
                &[&oid],
            )
            .await
            .map_err(SourceError::sql("list table columns"))?;
        let columns = rows
            .iter()
            .map(|r| RawColumn {
                name: r.get(0),
                type_oid: r.get(1),
                type_modifier: r.get(2),
            })
            .collect();
        let state = self
            .build(oid, TableId::new(schema, table), columns, None)
            .await?;
        Ok((state, oid))
    }

    /// Whether source transaction `xid` is visible to a new snapshot of this session
    /// (committed and no longer running): `txid_visible_in_snapshot` on the 64-bit form of the
    /// 32-bit xid a Begin message carries (available from PostgreSQL 8.3 on).
    async fn tx_visible(&self, xid: u32) -> Result<bool, SourceError> {
        let xmax: i64 = self
            .sql
            .query_one("SELECT txid_snapshot_xmax(txid_current_snapshot())", &[])
            .await
            .map_err(SourceError::sql("read the current snapshot"))?
            .get(0);
        let full = widen_xid(xid, xmax);
        self.sql
            .query_one(
                "SELECT txid_visible_in_snapshot($1, txid_current_snapshot())",
                &[&full],
            )
            .await
            .map(|r| r.get(0))
            .map_err(SourceError::sql("check a transaction's visibility"))
    }

    /// Loads the catalog entries of `oids` not loaded yet (with their element and base types).
    async fn load_types(&mut self, oids: &[u32]) -> Result<(), SourceError> {
        let missing: Vec<u32> = oids
            .iter()
            .copied()
            .filter(|o| self.types.get(*o).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let rows = self
            .sql
            .query(types::CATALOG_QUERY, &[&missing])
            .await
            .map_err(SourceError::sql("read type catalog"))?;
        for r in rows {
            self.types.insert_row(CatalogRow {
                oid: r.get(0),
                name: r.get(1),
                schema: r.get(2),
                typtype: r.get(3),
                category: r.get(4),
                elem: r.get(5),
                base: r.get(6),
                typmod: r.get(7),
                delimiter: r.get(8),
                enum_labels: r.get(9),
            });
        }
        Ok(())
    }

    /// Builds the state from raw columns and catalog facts (columns read from the catalog
    /// itself: the snapshot). The event key is the primary key; without one, the
    /// replica-identity columns flagged in the Relation message.
    pub async fn build(
        &mut self,
        oid: u32,
        id: TableId,
        columns: Vec<RawColumn>,
        identity_flags: Option<Vec<bool>>,
    ) -> Result<RelationState, SourceError> {
        self.build_at(oid, id, columns, identity_flags, None).await
    }

    /// [`SchemaLoader::build`] for columns a Relation message of transaction `xid` described.
    async fn build_at(
        &mut self,
        oid: u32,
        id: TableId,
        columns: Vec<RawColumn>,
        identity_flags: Option<Vec<bool>>,
        xid: Option<u32>,
    ) -> Result<RelationState, SourceError> {
        // The walsender may send a transaction's Relation message a moment before that
        // transaction is visible to other sessions (its commit record is decoded before the
        // committing backend leaves the proc array): a table created in it can be missing from
        // the catalog for a few milliseconds. Wait until every column is there — or until the
        // transaction is visible and a column is still missing: then the table changed after
        // it (a column dropped or renamed while the agent lagged behind), and waiting longer
        // would never end. Its rows are decoded with the message's columns; the catalog's
        // facts apply to the columns it still has.
        let mut attempt = 0;
        let facts = loop {
            // Asked before the facts: when the transaction is visible here, the facts read
            // next (a later snapshot) include everything it did.
            let settled = match xid {
                Some(xid) => self.tx_visible(xid).await?,
                None => false,
            };
            let facts = self
                .sql
                .query(FACTS_QUERY, &[&oid])
                .await
                .map_err(SourceError::sql("read column facts"))?;
            let missing: Vec<&str> = columns
                .iter()
                .filter(|c| !facts.iter().any(|r| r.get::<_, String>(0) == c.name))
                .map(|c| c.name.as_str())
                .collect();
            if missing.is_empty() {
                break facts;
            }
            if settled {
                tracing::warn!(
                    table = %id,
                    columns = ?missing,
                    "table changed since these changes were written (columns dropped or \
                     renamed); decoding them with the columns their Relation message carries, \
                     those columns as optional"
                );
                break facts;
            }
            attempt += 1;
            if attempt >= CATALOG_WAIT_ATTEMPTS {
                return Err(SourceError::transient(format!(
                    "table {id}: its columns are not visible in the catalog; restarting the stream"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let oids: Vec<u32> = columns.iter().map(|c| c.type_oid).collect();
        self.load_types(&oids).await?;

        let mut out_cols = Vec::with_capacity(columns.len());
        let mut decoders = Vec::with_capacity(columns.len());
        let mut pk: Vec<(i32, usize)> = Vec::new();
        for (idx, c) in columns.iter().enumerate() {
            let fact = facts.iter().find(|r| r.get::<_, String>(0) == c.name);
            let not_null = fact.is_some_and(|r| r.get::<_, bool>(1));
            if let Some(pos) = fact.and_then(|r| r.get::<_, Option<i32>>(3)) {
                pk.push((pos, idx));
            }
            let dec = PgColumnDecoder::new(&self.types, c.type_oid, c.type_modifier, !not_null);
            // A constant default becomes the Avro field's; an expression (now(), nextval…)
            // gives none, as with Debezium.
            let default = fact
                .and_then(|r| r.get::<_, Option<String>>(4))
                .filter(|_| not_null)
                .and_then(|expr| constant_text(&expr))
                .and_then(|text| {
                    let value = dec.decode(text.as_bytes()).ok()?;
                    avro_default(dec.column_type(), &value)
                });
            out_cols.push(Column {
                name: c.name.clone(),
                ty: dec.column_type().clone(),
                optional: !not_null,
                source_type: dec.source_type().to_string(),
                default,
            });
            decoders.push(dec);
        }
        pk.sort();
        // A primary-key column renamed or dropped since: the catalog's key is not the one
        // these rows were written with; the replica identity flags of the message are.
        let catalog_pk = facts
            .iter()
            .filter(|r| r.get::<_, Option<i32>>(3).is_some())
            .count();
        if pk.len() != catalog_pk {
            pk.clear();
        }
        let key: Vec<usize> = if !pk.is_empty() {
            pk.into_iter().map(|(_, i)| i).collect()
        } else if let Some(flags) = identity_flags {
            // Without a primary key the replica identity index identifies rows; with
            // REPLICA IDENTITY FULL every column is flagged, which would make the whole row the
            // key: Debezium then emits no key, and so do we.
            let flagged: Vec<usize> = flags
                .iter()
                .enumerate()
                .filter(|(_, f)| **f)
                .map(|(i, _)| i)
                .collect();
            if flagged.len() == columns.len() {
                Vec::new()
            } else {
                flagged
            }
        } else {
            Vec::new()
        };
        Ok(RelationState::new(
            TableSchema {
                id,
                columns: out_cols,
                key,
            },
            decoders,
        ))
    }
}

/// The 64-bit transaction id (epoch and xid) of a 32-bit `xid` assigned before `xmax` (a
/// snapshot's first unassigned 64-bit id): the newest id below `xmax` with those low bits.
fn widen_xid(xid: u32, xmax: i64) -> i64 {
    const EPOCH: i64 = 1 << 32;
    let candidate = (xmax & !(EPOCH - 1)) | i64::from(xid);
    if candidate >= xmax {
        (candidate - EPOCH).max(0)
    } else {
        candidate
    }
}

/// The text of a constant default as `pg_get_expr` shows it (`5`, `'-3'::integer`,
/// `'open'::character varying`, `true`), as the column's text format; `None` for anything
/// else (a function call, an operator, an escape string).
fn constant_text(expr: &str) -> Option<String> {
    let e = expr.trim();
    if let Some(rest) = e.strip_prefix('\'') {
        let mut text = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, ch)) = chars.next() {
            if ch != '\'' {
                text.push(ch);
                continue;
            }
            if chars.peek().is_some_and(|(_, c)| *c == '\'') {
                chars.next();
                text.push('\'');
                continue;
            }
            // The literal ends here: only a cast to a type may follow.
            let tail = &rest[i + 1..];
            let cast_only = tail.is_empty()
                || tail.strip_prefix("::").is_some_and(|t| {
                    !t.is_empty()
                        && t.chars()
                            .all(|c| c.is_ascii_alphanumeric() || " _.\"()[],".contains(c))
                        && !t.contains("::")
                });
            return cast_only.then_some(text);
        }
        return None;
    }
    let numeric = {
        let t = e.strip_prefix('-').unwrap_or(e);
        let (mantissa, exp) = match t.split_once(['e', 'E']) {
            Some((m, x)) => (m, Some(x.strip_prefix(['+', '-']).unwrap_or(x))),
            None => (t, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits(int) && digits(frac) && exp.is_none_or(digits)
    };
    (numeric || e == "true" || e == "false").then(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::widen_xid;

    #[test]
    fn a_32_bit_xid_widens_to_the_newest_64_bit_id_below_the_snapshot_xmax() {
        // Same epoch.
        assert_eq!(widen_xid(1000, 2000), 1000);
        assert_eq!(widen_xid(1000, (3 << 32) + 2000), (3 << 32) + 1000);
        // The xid is from the previous epoch (the counter wrapped since).
        assert_eq!(
            widen_xid(u32::MAX - 5, (3 << 32) + 10),
            (2 << 32) + i64::from(u32::MAX - 5)
        );
        // Never negative, even for an id xmax cannot have passed yet.
        assert_eq!(widen_xid(5000, 2000), 0);
    }
}

#[cfg(test)]
mod default_tests {
    use super::constant_text;

    #[test]
    fn constant_defaults_read_as_their_text_and_expressions_as_none() {
        let t = |e: &str| constant_text(e);
        assert_eq!(t("5").as_deref(), Some("5"));
        assert_eq!(t("-1.5e3").as_deref(), Some("-1.5e3"));
        assert_eq!(t("true").as_deref(), Some("true"));
        assert_eq!(t("'-3'::integer").as_deref(), Some("-3"));
        assert_eq!(t("'open'::character varying").as_deref(), Some("open"));
        assert_eq!(t("'it''s'::text").as_deref(), Some("it's"));
        assert_eq!(t("'2020-01-01'::date").as_deref(), Some("2020-01-01"));
        assert_eq!(t("now()"), None);
        assert_eq!(t("CURRENT_TIMESTAMP"), None);
        assert_eq!(t("nextval('t_id_seq'::regclass)"), None);
        assert_eq!(t("('a'::text || 'b'::text)"), None);
        assert_eq!(t("'a'::text || 'b'::text"), None);
        assert_eq!(t("'unterminated"), None);
        assert_eq!(t("1.2.3"), None);
    }
}
