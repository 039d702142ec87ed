//! The transaction metadata topic's records (`provide_transaction_metadata`), in the shape of
//! Debezium's `TransactionMetadataKey` / `TransactionMetadataValue`: a BEGIN when a source
//! transaction's first event is published, an END after its last, with the number of events
//! in all and per table (`data_collections`). One record per transaction, not per row, so
//! they go through `apache_avro`'s own writer.

use apache_avro::types::Value;
use apache_avro::Schema;

use super::framed_datum as framed;

/// Key schema: the transaction id.
pub const KEY_SCHEMA: &str = r#"{"type":"record","name":"TransactionMetadataKey","namespace":"io.debezium.connector.common","fields":[{"name":"id","type":"string"}],"connect.name":"io.debezium.connector.common.TransactionMetadataKey"}"#;

/// Value schema: status, id, counts (END only) and time.
pub const VALUE_SCHEMA: &str = r#"{"type":"record","name":"TransactionMetadataValue","namespace":"io.debezium.connector.common","fields":[{"name":"status","type":"string"},{"name":"id","type":"string"},{"name":"event_count","type":["null","long"],"default":null},{"name":"data_collections","type":["null",{"type":"array","items":{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"data_collection","type":"string"},{"name":"event_count","type":"long"}]}}],"default":null},{"name":"ts_ms","type":"long"}],"connect.name":"io.debezium.connector.common.TransactionMetadataValue"}"#;

/// BEGIN or END.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The transaction's first published event follows.
    Begin,
    /// Every event of the transaction has been published.
    End,
}

/// Encodes transaction metadata records with their registered schema ids.
#[derive(Debug)]
pub struct TxnCodec {
    key: Schema,
    value: Schema,
}

impl Default for TxnCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl TxnCodec {
    /// Parses the two fixed schemas.
    pub fn new() -> Self {
        Self {
            key: Schema::parse_str(KEY_SCHEMA).expect("the fixed key schema parses"),
            value: Schema::parse_str(VALUE_SCHEMA).expect("the fixed value schema parses"),
        }
    }

    /// The Confluent-framed key of transaction `id`.
    pub fn key(&self, id: &str, schema_id: u32) -> Result<Vec<u8>, apache_avro::Error> {
        let v = Value::Record(vec![("id".into(), Value::String(id.into()))]);
        framed(&self.key, v, schema_id)
    }

    /// The Confluent-framed value: `counts` per table (END only; BEGIN carries none).
    pub fn value(
        &self,
        status: Status,
        id: &str,
        ts_ms: i64,
        counts: &[(String, i64)],
        schema_id: u32,
    ) -> Result<Vec<u8>, apache_avro::Error> {
        let (status, event_count, collections) = match status {
            Status::Begin => (
                "BEGIN",
                Value::Union(0, Box::new(Value::Null)),
                Value::Union(0, Box::new(Value::Null)),
            ),
            Status::End => (
                "END",
                Value::Union(
                    1,
                    Box::new(Value::Long(counts.iter().map(|(_, n)| n).sum())),
                ),
                Value::Union(
                    1,
                    Box::new(Value::Array(
                        counts
                            .iter()
                            .map(|(t, n)| {
                                Value::Record(vec![
                                    ("data_collection".into(), Value::String(t.clone())),
                                    ("event_count".into(), Value::Long(*n)),
                                ])
                            })
                            .collect(),
                    )),
                ),
            ),
        };
        let v = Value::Record(vec![
            ("status".into(), Value::String(status.into())),
            ("id".into(), Value::String(id.into())),
            ("event_count".into(), event_count),
            ("data_collections".into(), collections),
            ("ts_ms".into(), Value::Long(ts_ms)),
        ]);
        framed(&self.value, v, schema_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_record_decodes_with_its_counts_per_table_and_in_all() {
        let c = TxnCodec::new();
        let bytes = c
            .value(
                Status::End,
                "571:33816024",
                1_700_000_000_000,
                &[("public.a".into(), 2), ("public.b".into(), 3)],
                7,
            )
            .unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 7]);
        let v = apache_avro::from_avro_datum(&c.value, &mut &bytes[5..], None).unwrap();
        let Value::Record(fields) = v else { panic!() };
        assert_eq!(fields[0].1, Value::String("END".into()));
        assert_eq!(fields[2].1, Value::Union(1, Box::new(Value::Long(5))));
        let begin = c.value(Status::Begin, "x", 1, &[], 7).unwrap();
        let v = apache_avro::from_avro_datum(&c.value, &mut &begin[5..], None).unwrap();
        let Value::Record(fields) = v else { panic!() };
        assert_eq!(fields[3].1, Value::Union(0, Box::new(Value::Null)));
    }
}
