//! Heartbeat records (`[heartbeat] interval_ms`), in the shape of Debezium's: key
//! `ServerNameKey {serverName}`, value `Heartbeat {ts_ms}`. One record per interval, so
//! they go through `apache_avro`'s own writer.

use apache_avro::types::Value;
use apache_avro::Schema;

use super::framed_datum as framed;

/// Key schema: the logical server name (the topic prefix).
pub const KEY_SCHEMA: &str = r#"{"type":"record","name":"ServerNameKey","namespace":"io.debezium.connector.common","fields":[{"name":"serverName","type":"string"}],"connect.name":"io.debezium.connector.common.ServerNameKey"}"#;

/// Value schema: when the heartbeat was sent.
pub const VALUE_SCHEMA: &str = r#"{"type":"record","name":"Heartbeat","namespace":"io.debezium.connector.common","fields":[{"name":"ts_ms","type":"long"}],"connect.name":"io.debezium.connector.common.Heartbeat"}"#;

/// The Confluent-framed key of `server_name`.
pub fn key(server_name: &str, schema_id: u32) -> Result<Vec<u8>, apache_avro::Error> {
    let schema = Schema::parse_str(KEY_SCHEMA)?;
    let v = Value::Record(vec![(
        "serverName".into(),
        Value::String(server_name.into()),
    )]);
    framed(&schema, v, schema_id)
}

/// The Confluent-framed value of a heartbeat sent at `ts_ms`.
pub fn value(ts_ms: i64, schema_id: u32) -> Result<Vec<u8>, apache_avro::Error> {
    let schema = Schema::parse_str(VALUE_SCHEMA)?;
    let v = Value::Record(vec![("ts_ms".into(), Value::Long(ts_ms))]);
    framed(&schema, v, schema_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_value_decodes_with_the_avro_library() {
        let schema = Schema::parse_str(VALUE_SCHEMA).unwrap();
        for ts in [0, 1, -1, 1_733_400_000_123, i64::MAX, i64::MIN] {
            let bytes = value(ts, 3).unwrap();
            assert_eq!(&bytes[..5], &[0, 0, 0, 0, 3]);
            let v = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
            assert_eq!(v, Value::Record(vec![("ts_ms".into(), Value::Long(ts))]));
        }
        let k = key("shop", 4).unwrap();
        assert_eq!(&k[..5], &[0, 0, 0, 0, 4]);
    }
}
