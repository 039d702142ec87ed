//! The outbox event router, for every source: inserts into the configured outbox table
//! become events on the topic their route column names, keyed by the aggregate id, the
//! payload column as the value, the event id as the `id` header, as Debezium's EventRouter
//! makes them (docs/outbox.md).
//!
//! ```text
//! INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
//!   ─▶ topic outbox.event.<aggregatetype>   key = aggregateid   value = payload   header id
//! ```
//!
//! Key and value are Avro `string` (a `bytea`/`BLOB` payload: `bytes`) in Confluent framing,
//! registered under the routed topic's subjects, so Confluent's deserializers read them.
//! The outbox table gets no table topic of its own; its changes stay in the event store.

use crate::config::OutboxConfig;
use crate::event::{ColumnType, Datum, TableId, TableSchema};

/// The configured outbox of a source.
#[derive(Debug, Clone)]
pub struct Outbox {
    cfg: OutboxConfig,
}

/// Where the routed parts of an outbox row are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxColumns {
    id: usize,
    key: usize,
    route: usize,
    payload: usize,
    /// The payload is binary (Avro `bytes`), not text.
    pub payload_is_bytes: bool,
}

/// One routed event, borrowed from the row.
#[derive(Debug, PartialEq, Eq)]
pub struct Routed<'r> {
    /// The topic its route column names.
    pub topic: String,
    /// The aggregate id as text, `None` when NULL.
    pub key: Option<String>,
    /// The payload bytes (UTF-8 text or binary), `None` when NULL: a tombstone.
    pub payload: Option<&'r [u8]>,
    /// The event id as text.
    pub id: String,
}

impl Outbox {
    /// The outbox of a source configuration.
    pub fn new(cfg: OutboxConfig) -> Self {
        Self { cfg }
    }

    /// Whether `table` is the outbox table.
    pub fn is_outbox(&self, table: &TableId) -> bool {
        match self.cfg.table.split_once('.') {
            Some((s, t)) => *table.schema == *s && *table.table == *t,
            None => false,
        }
    }

    /// Whether routed rows are deleted once durable (`delete_after_capture`).
    pub fn deletes_after_capture(&self) -> bool {
        self.cfg.delete_after_capture
    }

    /// The outbox table as (schema or database, table).
    pub fn table(&self) -> (&str, &str) {
        self.cfg
            .table
            .split_once('.')
            .unwrap_or(("", &self.cfg.table))
    }

    /// The id column.
    pub fn id_column(&self) -> &str {
        &self.cfg.id_field
    }

    /// Finds the routed columns in the outbox table's schema; an error names what is
    /// missing and the key that names it.
    pub fn columns(&self, schema: &TableSchema) -> Result<OutboxColumns, String> {
        let find = |key: &str, name: &str| {
            schema
                .columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| {
                    format!(
                        "the outbox table {} has no column `{name}` (outbox.{key}); fix: name one of its columns ({})",
                        schema.id,
                        schema
                            .columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        };
        let payload = find("payload_field", &self.cfg.payload_field)?;
        Ok(OutboxColumns {
            id: find("id_field", &self.cfg.id_field)?,
            key: find("key_field", &self.cfg.key_field)?,
            route: find("route_by_field", &self.cfg.route_by_field)?,
            payload_is_bytes: schema.columns[payload].ty == ColumnType::Bytes,
            payload,
        })
    }

    /// The event of an inserted outbox row. A row whose route column is NULL cannot be
    /// routed: the error names its id.
    pub fn route<'r>(
        &self,
        cols: &OutboxColumns,
        row: &'r [Datum<'r>],
    ) -> Result<Routed<'r>, String> {
        let id = text(row.get(cols.id)).unwrap_or_default();
        let Some(route) = text(row.get(cols.route)) else {
            return Err(format!(
                "outbox event {id}: `{}` is NULL, no topic to route it to; fix: give every outbox row a value in that column",
                self.cfg.route_by_field
            ));
        };
        let topic = crate::topics::sanitize_topic_name(
            &self.cfg.route_topic.replace("${routedByValue}", &route),
        );
        let payload = match row.get(cols.payload) {
            Some(Datum::Str(s)) => Some(s.as_bytes()),
            Some(Datum::Bytes(b)) => Some(&b[..]),
            _ => None,
        };
        Ok(Routed {
            topic,
            key: text(row.get(cols.key)),
            payload,
            id,
        })
    }
}

/// A datum as the text Debezium's router would put in a string (numbers as digits).
fn text(d: Option<&Datum<'_>>) -> Option<String> {
    match d? {
        Datum::Null | Datum::Unchanged => None,
        Datum::Str(s) => Some(s.to_string()),
        Datum::Int(i) => Some(i.to_string()),
        Datum::Bool(b) => Some(b.to_string()),
        Datum::Float(f) => Some(f.to_string()),
        Datum::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(format!("{other:?}")),
    }
}

/// Outbox rows whose events are durable, for the source to delete
/// (`delete_after_capture`).
#[derive(Debug, Clone)]
pub struct OutboxDeletes {
    /// Schema (PostgreSQL) or database (MySQL) of the outbox table.
    pub schema: String,
    /// The outbox table.
    pub table: String,
    /// Its id column.
    pub id_column: String,
    /// The ids, as text.
    pub ids: Vec<String>,
}

/// Appends an Avro `string` or `bytes` value (both a zigzag length, then the bytes) in
/// Confluent framing.
pub fn framed(schema_id: u32, data: &[u8], out: &mut Vec<u8>) {
    crate::encode::avro::write_header(schema_id, out);
    crate::encode::avro::write_long(data.len() as i64, out);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Column;

    fn cfg() -> OutboxConfig {
        toml::from_str("table = 'public.outbox'").unwrap()
    }

    fn schema() -> TableSchema {
        let col = |n: &str, ty| Column {
            name: n.into(),
            ty,
            optional: true,
            source_type: "text".into(),
            default: None,
        };
        TableSchema {
            id: TableId::new("public", "outbox"),
            columns: vec![
                col("id", ColumnType::Uuid),
                col("aggregatetype", ColumnType::String),
                col("aggregateid", ColumnType::Int64),
                col("type", ColumnType::String),
                col("payload", ColumnType::Json),
            ],
            key: vec![0],
        }
    }

    #[test]
    fn an_outbox_row_is_routed_by_its_aggregate_type_and_keyed_by_its_aggregate_id() {
        let o = Outbox::new(cfg());
        assert!(o.is_outbox(&TableId::new("public", "outbox")));
        assert!(!o.is_outbox(&TableId::new("public", "outboxes")));
        let cols = o.columns(&schema()).unwrap();
        let row = [
            Datum::Str("7a1b".into()),
            Datum::Str("Order".into()),
            Datum::Int(42),
            Datum::Str("OrderCreated".into()),
            Datum::Str("{\"total\":10}".into()),
        ];
        let r = o.route(&cols, &row).unwrap();
        assert_eq!(r.topic, "outbox.event.Order");
        assert_eq!(r.key.as_deref(), Some("42"));
        assert_eq!(r.payload, Some(&b"{\"total\":10}"[..]));
        assert_eq!(r.id, "7a1b");
    }

    #[test]
    fn a_missing_column_and_a_null_route_name_the_fix() {
        let o =
            Outbox::new(toml::from_str("table = 'public.outbox'\npayload_field = 'body'").unwrap());
        let e = o.columns(&schema()).unwrap_err();
        assert!(
            e.contains("outbox.payload_field") && e.contains("aggregatetype"),
            "{e}"
        );
        let o = Outbox::new(cfg());
        let cols = o.columns(&schema()).unwrap();
        let row = [
            Datum::Str("e1".into()),
            Datum::Null,
            Datum::Int(1),
            Datum::Null,
            Datum::Null,
        ];
        let e = o.route(&cols, &row).unwrap_err();
        assert!(e.contains("e1") && e.contains("aggregatetype"), "{e}");
    }

    #[test]
    fn a_framed_string_decodes_with_the_avro_library() {
        let mut out = Vec::new();
        framed(9, "héllo".as_bytes(), &mut out);
        let schema = apache_avro::Schema::parse_str("\"string\"").unwrap();
        let v = apache_avro::from_avro_datum(&schema, &mut &out[5..], None).unwrap();
        assert_eq!(v, apache_avro::types::Value::String("héllo".into()));
    }
}
