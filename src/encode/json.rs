//! JSON output (`format = "json"`): the records Kafka Connect's `JsonConverter` writes for the
//! same Connect data, with (`json_schemas = true`, its `schemas.enable` default) or without the
//! embedded schema, so consumers configured for Debezium with the JSON converter read them
//! unchanged, and no schema registry is needed.
//!
//! The Avro schema a [`super::TableCodec`] builds is Confluent's `AvroData` image of the
//! Connect schema (`connect.name`, `connect.type`, `connect.parameters`, …), so the Connect
//! schema is read back from it here instead of being derived a second time from the event
//! model, and a row's Avro bytes are decoded into the Connect JSON value: one mapping of
//! types to keep right, not two. Values follow `JsonConverter`'s defaults: bytes and
//! decimals (`decimal.format = BASE64`) as base64 of their bytes, everything else as its
//! JSON number, string, boolean, object or array.

use std::io::Write;

use apache_avro::types::Value;
use apache_avro::Schema;
use base64::Engine;
use serde_json::{json, Map, Value as Json};

/// Encodes one table's keys and values as Connect JSON.
#[derive(Debug)]
pub struct JsonCodec {
    key: Option<Side>,
    value: Side,
}

#[derive(Debug)]
struct Side {
    avro: Schema,
    /// The Connect schema, serialized, when schemas are embedded.
    connect: Option<String>,
}

impl Side {
    fn new(avro_json: &str, schemas: bool) -> Result<Self, String> {
        let avro = Schema::parse_str(avro_json).map_err(|e| format!("avro schema: {e}"))?;
        let connect = if schemas {
            let parsed: Json =
                serde_json::from_str(avro_json).map_err(|e| format!("avro schema: {e}"))?;
            let mut names = Names::new();
            collect_names(&parsed, None, &mut names);
            Some(connect_schema(&parsed, "", false, &names).to_string())
        } else {
            None
        };
        Ok(Self { avro, connect })
    }

    /// Appends the JSON of the Confluent-framed Avro datum `framed`.
    fn encode(&self, framed: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let body = framed
            .get(5..)
            .ok_or("a framed datum shorter than its header")?;
        let v = apache_avro::from_avro_datum(&self.avro, &mut &body[..], None)
            .map_err(|e| format!("re-reading the avro datum: {e}"))?;
        if let Some(schema) = &self.connect {
            out.extend_from_slice(b"{\"schema\":");
            out.extend_from_slice(schema.as_bytes());
            out.extend_from_slice(b",\"payload\":");
            write_payload(&v, out);
            out.push(b'}');
        } else {
            write_payload(&v, out);
        }
        Ok(())
    }
}

impl JsonCodec {
    /// A codec for the Avro key schema (when the table has a key) and value schema of a table,
    /// embedding Connect schemas when `schemas`.
    pub fn new(key_avro: Option<&str>, value_avro: &str, schemas: bool) -> Result<Self, String> {
        Ok(Self {
            key: key_avro.map(|k| Side::new(k, schemas)).transpose()?,
            value: Side::new(value_avro, schemas)?,
        })
    }

    /// Appends the JSON key of a framed Avro key.
    pub fn key(&self, framed: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        match &self.key {
            Some(k) => k.encode(framed, out),
            None => Err("the table has no key".into()),
        }
    }

    /// Appends the JSON value of a framed Avro value.
    pub fn value(&self, framed: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.value.encode(framed, out)
    }
}

/// Named Avro types by full and by short name: a record defined once (`before`) is
/// referenced by name after that (`after`).
type Names = std::collections::HashMap<String, Json>;

fn collect_names(avro: &Json, namespace: Option<&str>, names: &mut Names) {
    match avro {
        Json::Array(branches) => {
            for b in branches {
                collect_names(b, namespace, names);
            }
        }
        Json::Object(o) => {
            let ns = o.get("namespace").and_then(Json::as_str).or(namespace);
            if let Some(n) = o.get("name").and_then(Json::as_str) {
                if matches!(
                    o.get("type").and_then(Json::as_str),
                    Some("record" | "enum" | "fixed")
                ) {
                    let full = match ns {
                        Some(ns) if !n.contains('.') => format!("{ns}.{n}"),
                        _ => n.to_string(),
                    };
                    names.insert(full, avro.clone());
                    names.entry(n.to_string()).or_insert_with(|| avro.clone());
                }
            }
            if let Some(fs) = o.get("fields").and_then(Json::as_array) {
                for f in fs {
                    if let Some(t) = f.get("type") {
                        collect_names(t, ns, names);
                    }
                }
            }
            for k in ["items", "values"] {
                if let Some(t) = o.get(k) {
                    collect_names(t, ns, names);
                }
            }
            if let Some(t @ (Json::Object(_) | Json::Array(_))) = o.get("type") {
                collect_names(t, ns, names);
            }
        }
        _ => {}
    }
}

const AVRO_PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Connect schema (as `JsonConverter` writes it) of an Avro schema made by `AvroData`.
fn connect_schema(avro: &Json, field: &str, optional: bool, names: &Names) -> Json {
    match avro {
        Json::String(t) if !AVRO_PRIMITIVES.contains(&t.as_str()) => match names.get(t) {
            Some(def) => connect_schema(def, field, optional, names),
            None => primitive("string", None, field, optional),
        },
        Json::String(t) => primitive(t, None, field, optional),
        Json::Array(branches) => {
            // Optional X: ["null", X].
            let inner = branches
                .iter()
                .find(|b| b.as_str() != Some("null"))
                .cloned()
                .unwrap_or(Json::Null);
            let nullable = branches.iter().any(|b| b.as_str() == Some("null"));
            connect_schema(&inner, field, optional || nullable, names)
        }
        Json::Object(o) => match o.get("type") {
            Some(Json::String(t)) if t == "record" => {
                let fields: Vec<Json> = o
                    .get("fields")
                    .and_then(Json::as_array)
                    .map(|fs| {
                        fs.iter()
                            .map(|f| {
                                let name = f.get("name").and_then(Json::as_str).unwrap_or("");
                                let mut s = connect_schema(
                                    f.get("type").unwrap_or(&Json::Null),
                                    name,
                                    false,
                                    names,
                                );
                                if let (Some(d), Json::Object(m)) = (f.get("default"), &mut s) {
                                    if !d.is_null() {
                                        m.insert("default".into(), d.clone());
                                    }
                                }
                                s
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut m = Map::new();
                m.insert("type".into(), json!("struct"));
                m.insert("fields".into(), Json::Array(fields));
                m.insert("optional".into(), json!(optional));
                let name = o
                    .get("connect.name")
                    .and_then(Json::as_str)
                    .map(str::to_owned)
                    .or_else(|| {
                        let n = o.get("name")?.as_str()?;
                        Some(match o.get("namespace").and_then(Json::as_str) {
                            Some(ns) if !n.contains('.') => format!("{ns}.{n}"),
                            _ => n.to_string(),
                        })
                    });
                if let Some(n) = name {
                    m.insert("name".into(), json!(n));
                }
                props(o, &mut m);
                if !field.is_empty() {
                    m.insert("field".into(), json!(field));
                }
                Json::Object(m)
            }
            Some(Json::String(t)) if t == "array" => {
                let mut m = Map::new();
                m.insert("type".into(), json!("array"));
                m.insert(
                    "items".into(),
                    connect_schema(o.get("items").unwrap_or(&Json::Null), "", false, names),
                );
                m.insert("optional".into(), json!(optional));
                props(o, &mut m);
                if !field.is_empty() {
                    m.insert("field".into(), json!(field));
                }
                Json::Object(m)
            }
            Some(Json::String(t)) => primitive(t, Some(o), field, optional),
            Some(inner) => connect_schema(inner, field, optional, names),
            None => json!({}),
        },
        _ => json!({}),
    }
}

/// A primitive Connect schema, with the `connect.*` properties of `props`.
fn primitive(
    avro_type: &str,
    props_of: Option<&Map<String, Json>>,
    field: &str,
    optional: bool,
) -> Json {
    let connect_type = props_of
        .and_then(|o| o.get("connect.type"))
        .and_then(Json::as_str);
    let ty = match (avro_type, connect_type) {
        (_, Some(t)) => t,
        ("int", _) => "int32",
        ("long", _) => "int64",
        ("float", _) => "float",
        ("double", _) => "float64",
        ("bytes", _) | ("fixed", _) => "bytes",
        ("boolean", _) => "boolean",
        _ => "string",
    };
    let mut m = Map::new();
    m.insert("type".into(), json!(ty));
    m.insert("optional".into(), json!(optional));
    if let Some(o) = props_of {
        if let Some(n) = o.get("connect.name") {
            m.insert("name".into(), n.clone());
        }
        props(o, &mut m);
    }
    if !field.is_empty() {
        m.insert("field".into(), json!(field));
    }
    Json::Object(m)
}

/// `version`, `doc` and `parameters` from `AvroData`'s properties.
fn props(o: &Map<String, Json>, m: &mut Map<String, Json>) {
    if let Some(v) = o.get("connect.version") {
        m.insert("version".into(), v.clone());
    }
    if let Some(d) = o.get("connect.doc") {
        m.insert("doc".into(), d.clone());
    }
    if let Some(p) = o.get("connect.parameters") {
        m.insert("parameters".into(), p.clone());
    }
}

/// Writes name/value pairs as a JSON object, in the order given.
fn write_object<'a>(pairs: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
        write_payload(v, out);
    }
    out.push(b'}');
}

/// Writes a decoded Avro value as the Connect JSON payload, record fields in order.
fn write_payload(v: &Value, out: &mut Vec<u8>) {
    let b64 = |b: &[u8], out: &mut Vec<u8>| {
        out.push(b'"');
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(b)
                .as_bytes(),
        );
        out.push(b'"');
    };
    let string = |s: &str, out: &mut Vec<u8>| {
        let _ = serde_json::to_writer(&mut *out, s);
    };
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Long(i)
        | Value::TimeMicros(i)
        | Value::TimestampMillis(i)
        | Value::TimestampMicros(i)
        | Value::TimestampNanos(i)
        | Value::LocalTimestampMillis(i)
        | Value::LocalTimestampMicros(i)
        | Value::LocalTimestampNanos(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        Value::Double(f) => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        Value::Bytes(b) | Value::Fixed(_, b) => b64(b, out),
        Value::String(s) | Value::Enum(_, s) => string(s, out),
        Value::Uuid(u) => string(&u.to_string(), out),
        Value::Decimal(d) => {
            let bytes: Vec<u8> = Vec::try_from(d).unwrap_or_default();
            b64(&bytes, out)
        }
        Value::BigDecimal(d) => string(&d.to_string(), out),
        Value::Union(_, inner) => write_payload(inner, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_payload(it, out);
            }
            out.push(b']');
        }
        Value::Map(m) => write_object(m.iter(), out),
        Value::Record(fields) => write_object(fields.iter().map(|(k, v)| (k, v)), out),
        Value::Duration(_) => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{ConnectorKind, TableCodec};
    use crate::event::{Column, ColumnType, TableId, TableSchema};

    fn table() -> TableSchema {
        let col = |name: &str, ty, optional| Column {
            name: name.into(),
            ty,
            optional,
            source_type: "x".into(),
            default: None,
        };
        TableSchema {
            id: TableId::new("public", "t"),
            columns: vec![
                col("id", ColumnType::Int32, false),
                col("small", ColumnType::Int16, true),
                col(
                    "amount",
                    ColumnType::Decimal {
                        precision: Some(10),
                        scale: 2,
                    },
                    true,
                ),
                col("ts", ColumnType::MicroTimestamp, true),
                col("note", ColumnType::String, true),
            ],
            key: vec![0],
        }
    }

    #[test]
    fn the_connect_schema_carries_types_names_parameters_and_optionality() {
        let codec = TableCodec::new("srv", &table(), ConnectorKind::Postgres).unwrap();
        let value: Json = serde_json::from_str(codec.value_schema()).unwrap();
        let mut names = Names::new();
        collect_names(&value, None, &mut names);
        let s = connect_schema(&value, "", false, &names);
        assert_eq!(s["type"], "struct");
        assert_eq!(s["name"], "srv.public.t.Envelope");
        let after = s["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == "after")
            .unwrap();
        assert_eq!(after["optional"], true);
        assert_eq!(after["name"], "srv.public.t.Value");
        let cols = after["fields"].as_array().unwrap();
        assert_eq!(
            cols[0],
            json!({"type": "int32", "optional": false, "field": "id"})
        );
        assert_eq!(cols[1]["type"], "int16");
        assert_eq!(cols[2]["name"], "org.apache.kafka.connect.data.Decimal");
        assert_eq!(cols[2]["parameters"]["scale"], "2");
        assert_eq!(cols[3]["name"], "io.debezium.time.MicroTimestamp");
        assert_eq!(cols[3]["type"], "int64");
    }
}
