//! Encoding of [`crate::event::ChangeEvent`]s into the bytes that go to Kafka.
//!
//! Consumers built for Debezium 3.x with Confluent's `AvroConverter` must read our topics
//! unchanged, so this module reproduces two things exactly: the Avro schemas that Connect's
//! `AvroData` derives from Debezium's Connect schemas (names, `connect.*` properties, unions,
//! defaults, field order), and the Confluent wire format (magic byte, schema id, Avro binary).
//!
//! [`TableCodec`] is built once per table (and rebuilt when the table's shape changes); it
//! holds the schema JSON to register and precomputed per-column encoders, so encoding an
//! event is a straight walk over its datums into the output buffer. See
//! `docs/decisions/0003-avro-encoding.md` for why the binary encoding is hand-written.

#![warn(missing_docs)]

pub mod avro;
pub mod heartbeat;
pub mod json;
pub mod txn;

#[cfg(test)]
mod tests;

/// A value of `schema` in Confluent framing, through `apache_avro`'s own writer: for the
/// agent's few fixed-schema records (transaction metadata, heartbeats), not rows.
pub(crate) fn framed_datum(
    schema: &apache_avro::Schema,
    v: apache_avro::types::Value,
    schema_id: u32,
) -> Result<Vec<u8>, apache_avro::Error> {
    let mut out = Vec::with_capacity(64);
    avro::write_header(schema_id, &mut out);
    out.extend_from_slice(&apache_avro::to_avro_datum(schema, v)?);
    Ok(out)
}

pub use avro::{
    CodecOptions, ConnectorKind, EncodeError, TableCodec, DEFAULT_SOURCE_VERSION,
    DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER, MAGIC_BYTE,
};

/// The fixed parts of every envelope (the `source` block, the `transaction` block) are kept
/// as files in `schemas/`, so consumers and reviewers can read them without running the
/// agent; this test keeps the files and the codec in step (`UPDATE_SCHEMAS=1` rewrites them).
#[cfg(test)]
mod fixed_schemas {
    use super::*;
    use crate::event::{Column, ColumnType, TableId, TableSchema};

    fn envelope_field(name: &str) -> serde_json::Value {
        kind_envelope_field(name, ConnectorKind::Postgres)
    }

    fn mysql_envelope_field(name: &str) -> serde_json::Value {
        kind_envelope_field(name, ConnectorKind::Mysql)
    }

    fn kind_envelope_field(name: &str, kind: ConnectorKind) -> serde_json::Value {
        let table = TableSchema {
            id: TableId::new("public", "t"),
            columns: vec![Column {
                name: "id".into(),
                ty: ColumnType::Int32,
                optional: false,
                source_type: "int4".into(),
                default: None,
            }],
            key: vec![0],
        };
        let codec = TableCodec::new("prefix", &table, kind).unwrap();
        let value: serde_json::Value = serde_json::from_str(codec.value_schema()).unwrap();
        let field = value["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no field {name}"))
            .clone();
        field["type"].clone()
    }

    fn check(file: &str, schema: serde_json::Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(file);
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&schema).unwrap() + "\n").unwrap();
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SCHEMAS=1 writes it)", path.display()));
        let on_disk: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            on_disk, schema,
            "{file} differs from what the codec registers"
        );
        apache_avro::Schema::parse_str(&text).unwrap();
    }

    #[test]
    fn the_postgres_source_block_matches_schemas_postgres_source_avsc() {
        check("postgres-source.avsc", envelope_field("source"));
    }

    #[test]
    fn the_mysql_source_block_matches_schemas_mysql_source_avsc() {
        check("mysql-source.avsc", mysql_envelope_field("source"));
    }

    #[test]
    fn the_transaction_block_matches_schemas_transaction_block_avsc() {
        check("transaction-block.avsc", envelope_field("transaction"));
    }
}
