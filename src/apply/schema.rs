//! What a table looks like according to the writer schema of its events, and the values of one
//! event as cells a target can bind.
//!
//! Column types are read from the writer schema's JSON rather than from apache-avro's parsed
//! schema: Debezium's semantic types (`io.debezium.time.Date`, `…MicroTimestamp`, `…Json`)
//! are `connect.name` properties of primitive types, which apache-avro drops when it parses.
//! The mapping covers every type `src/encode/avro.rs` produces; what has no column type of its
//! own in a target (arrays, geometries) is kept as JSON text.

use apache_avro::types::Value;
use serde_json::Value as Json;

/// A column's type, as the target needs it (each target names it in its own SQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColType {
    /// `boolean`.
    Bool,
    /// Avro `int` with `connect.type = int16`.
    Int16,
    /// Avro `int` (and `io.debezium.time.Year`).
    Int32,
    /// Avro `long`.
    Int64,
    /// Avro `float`.
    Float32,
    /// Avro `double`.
    Float64,
    /// Avro `string` without a semantic type we map more closely (and enums, XML, ltree…).
    Text,
    /// Avro `bytes` (and `io.debezium.data.Bits`).
    Bytes,
    /// `decimal` logical type; `precision` only when the source column had one.
    Decimal {
        /// Digits, when the source fixed them.
        precision: Option<u32>,
        /// Digits after the point.
        scale: u32,
    },
    /// `io.debezium.data.VariableScaleDecimal`: numeric without a fixed scale.
    VarDecimal,
    /// `io.debezium.time.Date`: days since the epoch.
    Date,
    /// `io.debezium.time.Time` (ms) / `MicroTime` (µs) since midnight, as µs.
    Time {
        /// Units per microsecond's inverse: 1000 for milliseconds, 1 for microseconds.
        micros_per_unit: i64,
    },
    /// `io.debezium.time.Timestamp` (ms) / `MicroTimestamp` (µs), no time zone.
    Timestamp {
        /// 1000 for milliseconds, 1 for microseconds.
        micros_per_unit: i64,
    },
    /// `io.debezium.time.ZonedTimestamp`: an ISO-8601 string with offset.
    ZonedTimestamp,
    /// `io.debezium.time.ZonedTime`: an ISO-8601 time with offset.
    ZonedTime,
    /// `io.debezium.time.MicroDuration`: microseconds.
    Interval,
    /// `io.debezium.data.Json`, arrays and records without a mapping: JSON text.
    Json,
    /// `io.debezium.data.Uuid`.
    Uuid,
}

/// One column of a table's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name as the source names it.
    pub name: String,
    /// Its type.
    pub ty: ColType,
}

/// A table's columns according to one writer schema (the `after`/`before` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Columns in the source's order.
    pub columns: Vec<Column>,
}

impl Shape {
    /// The index of column `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// One value ready to bind. `Unavailable` is a TOASTed value the source did not send: the
/// target keeps what it has.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// `float` / `double`.
    Float(f64),
    /// Text (also JSON, UUID, zoned times: the column type says how to read it).
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// An exact decimal as its decimal string.
    Decimal(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01T00:00:00 (no zone).
    Timestamp(i64),
    /// A duration in microseconds.
    Interval(i64),
    /// The unchanged-TOAST placeholder.
    Unavailable,
}

/// Why a writer schema cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// The row shape of a Debezium envelope's writer schema (its `after` field's record).
pub fn envelope_shape(schema_json: &str) -> Result<Shape, SchemaError> {
    let root: Json = serde_json::from_str(schema_json)
        .map_err(|e| SchemaError(format!("writer schema is not JSON: {e}")))?;
    let fields = root
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| SchemaError("writer schema is not a record".into()))?;
    // The agent defines the row record in `before` and names it in `after`.
    let record = ["before", "after"]
        .iter()
        .filter_map(|name| {
            fields
                .iter()
                .find(|f| f.get("name").and_then(Json::as_str) == Some(*name))
        })
        .map(|f| strip_null(f.get("type").unwrap_or(&Json::Null)))
        .find(|t| t.get("fields").is_some())
        .ok_or_else(|| {
            SchemaError(
                "writer schema has no `before`/`after` row record: not a Debezium envelope \
                 (is this a table topic of cdc-agent?)"
                    .into(),
            )
        })?;
    record_shape(record)
}

/// The shape of a record schema (a key schema, or an envelope's row record).
pub fn record_shape(record: &Json) -> Result<Shape, SchemaError> {
    let fields = record
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| SchemaError("row schema is not a record".into()))?;
    let mut columns = Vec::with_capacity(fields.len());
    for f in fields {
        let name = f
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| SchemaError("a field without a name".into()))?;
        let ty = col_type(strip_null(f.get("type").unwrap_or(&Json::Null)));
        columns.push(Column {
            name: name.to_string(),
            ty,
        });
    }
    Ok(Shape { columns })
}

/// The non-null branch of an optional type.
fn strip_null(ty: &Json) -> &Json {
    match ty {
        Json::Array(branches) => branches
            .iter()
            .find(|b| b.as_str() != Some("null"))
            .unwrap_or(ty),
        t => t,
    }
}

fn col_type(ty: &Json) -> ColType {
    match ty {
        Json::String(name) => match name.as_str() {
            "boolean" => ColType::Bool,
            "int" => ColType::Int32,
            "long" => ColType::Int64,
            "float" => ColType::Float32,
            "double" => ColType::Float64,
            "string" => ColType::Text,
            "bytes" => ColType::Bytes,
            // A reference to a named record defined earlier in the schema.
            "io.debezium.data.VariableScaleDecimal" => ColType::VarDecimal,
            _ => ColType::Json,
        },
        Json::Object(o) => {
            let connect = o.get("connect.name").and_then(Json::as_str).unwrap_or("");
            let base = o.get("type").and_then(Json::as_str).unwrap_or("");
            if o.get("logicalType").and_then(Json::as_str) == Some("decimal") {
                let scale = o.get("scale").and_then(Json::as_u64).unwrap_or(0) as u32;
                let precision = o
                    .get("connect.parameters")
                    .and_then(|p| p.get("connect.decimal.precision"))
                    .and_then(Json::as_str)
                    .and_then(|p| p.parse().ok());
                return ColType::Decimal { precision, scale };
            }
            // A record's own name identifies it when connect.name is absent.
            let record_name = match (
                o.get("namespace").and_then(Json::as_str),
                o.get("name").and_then(Json::as_str),
            ) {
                (Some(ns), Some(n)) if base == "record" => format!("{ns}.{n}"),
                _ => String::new(),
            };
            let connect = if connect.is_empty() {
                record_name.as_str()
            } else {
                connect
            };
            match connect {
                "io.debezium.time.Date" => ColType::Date,
                "io.debezium.time.Time" => ColType::Time {
                    micros_per_unit: 1000,
                },
                "io.debezium.time.MicroTime" => ColType::Time { micros_per_unit: 1 },
                "io.debezium.time.Timestamp" => ColType::Timestamp {
                    micros_per_unit: 1000,
                },
                "io.debezium.time.MicroTimestamp" => ColType::Timestamp { micros_per_unit: 1 },
                "io.debezium.time.ZonedTimestamp" => ColType::ZonedTimestamp,
                "io.debezium.time.ZonedTime" => ColType::ZonedTime,
                "io.debezium.time.MicroDuration" => ColType::Interval,
                "io.debezium.data.Json" => ColType::Json,
                "io.debezium.data.Uuid" => ColType::Uuid,
                "io.debezium.data.VariableScaleDecimal" => ColType::VarDecimal,
                _ => match base {
                    "boolean" => ColType::Bool,
                    "int" if o.get("connect.type").and_then(Json::as_str) == Some("int16") => {
                        ColType::Int16
                    }
                    "int" => ColType::Int32,
                    "long" => ColType::Int64,
                    "float" => ColType::Float32,
                    "double" => ColType::Float64,
                    "string" => ColType::Text,
                    "bytes" => ColType::Bytes,
                    _ => ColType::Json,
                },
            }
        }
        _ => ColType::Json,
    }
}

/// A decoded Avro value of column type `ty` as a cell; `placeholder` is the unchanged-TOAST
/// text. A value of a shape the type does not expect becomes JSON text rather than a panic.
///
/// The primitive cases go through the same helpers as the direct decoder (`super::avro`), so
/// both paths give the same cell for the same value by construction.
pub fn cell(value: Value, ty: &ColType, placeholder: &str) -> Cell {
    let value = match value {
        Value::Union(_, inner) => *inner,
        v => v,
    };
    match (value, ty) {
        (Value::Null, _) => Cell::Null,
        (Value::Boolean(b), _) => Cell::Bool(b),
        (Value::Int(i), ty) => int_cell(i, ty),
        (Value::Long(l), ty) => long_cell(l, ty),
        (Value::Float(f), _) => Cell::Float(f64::from(f)),
        (Value::Double(f), _) => Cell::Float(f),
        (Value::String(s), _) => text_cell(s, placeholder),
        (Value::Bytes(b), ty) => bytes_cell(b, ty, placeholder),
        (Value::Decimal(d), ColType::Decimal { scale, .. }) => {
            let n = num_bigint::BigInt::from(d);
            Cell::Decimal(crate::ledger::json::decimal_string(
                &n.to_signed_bytes_be(),
                *scale,
            ))
        }
        (Value::Record(fields), ColType::VarDecimal) => {
            let mut scale = None;
            let mut bytes = None;
            for (name, v) in &fields {
                match (name.as_str(), v) {
                    ("scale", Value::Int(s)) => scale = u32::try_from(*s).ok(),
                    ("value", Value::Bytes(b)) => bytes = Some(b.as_slice()),
                    _ => {}
                }
            }
            var_decimal_cell(scale, bytes)
        }
        (Value::Array(items), _) if placeholder_array(&items, placeholder) => Cell::Unavailable,
        (other, _) => match serde_json::Value::try_from(other) {
            Ok(j) => Cell::Text(j.to_string()),
            Err(_) => Cell::Null,
        },
    }
}

/// Whether an array is the unchanged-TOAST placeholder as the agent writes it for array
/// columns (src/encode/avro.rs, `write_unchanged`): arrays of strings carry it as their one
/// element, arrays of integers as its bytes, each a sign-extended byte (as Java widens them).
/// Items may be bare or (as the agent's `["null", T]` items are) union branches.
fn placeholder_array(items: &[Value], placeholder: &str) -> bool {
    fn bare(v: &Value) -> &Value {
        match v {
            Value::Union(_, inner) => inner,
            other => other,
        }
    }
    match items {
        [item] if matches!(bare(item), Value::String(s) if s == placeholder) => true,
        _ => {
            !placeholder.is_empty()
                && items.len() == placeholder.len()
                && items.iter().zip(placeholder.bytes()).all(|(v, b)| {
                    let want = i64::from(b as i8);
                    match bare(v) {
                        Value::Int(i) => i64::from(*i) == want,
                        Value::Long(l) => *l == want,
                        _ => false,
                    }
                })
        }
    }
}

/// An Avro `int` of column type `ty`: days, times of day, or a plain integer.
pub(crate) fn int_cell(i: i32, ty: &ColType) -> Cell {
    match ty {
        ColType::Date => Cell::Date(i),
        ColType::Time { micros_per_unit } => Cell::Time(i64::from(i) * micros_per_unit),
        _ => Cell::Int(i64::from(i)),
    }
}

/// An Avro `long` of column type `ty`. Out-of-range times saturate (a bad value from the
/// network must not overflow).
pub(crate) fn long_cell(l: i64, ty: &ColType) -> Cell {
    match ty {
        ColType::Time { micros_per_unit } => Cell::Time(l.saturating_mul(*micros_per_unit)),
        ColType::Timestamp { micros_per_unit } => {
            Cell::Timestamp(l.saturating_mul(*micros_per_unit))
        }
        ColType::Interval => Cell::Interval(l),
        _ => Cell::Int(l),
    }
}

/// An Avro `string`: the unchanged-TOAST placeholder, or text.
pub(crate) fn text_cell<S: AsRef<str> + Into<String>>(s: S, placeholder: &str) -> Cell {
    if s.as_ref() == placeholder {
        Cell::Unavailable
    } else {
        Cell::Text(s.into())
    }
}

/// Avro `bytes` (without a logical type) of column type `ty`: the placeholder, a decimal of
/// the column's fixed scale, or bytes.
pub(crate) fn bytes_cell<B: AsRef<[u8]> + Into<Vec<u8>>>(
    b: B,
    ty: &ColType,
    placeholder: &str,
) -> Cell {
    if b.as_ref() == placeholder.as_bytes() {
        return Cell::Unavailable;
    }
    match ty {
        ColType::Decimal { scale, .. } => {
            Cell::Decimal(crate::ledger::json::decimal_string(b.as_ref(), *scale))
        }
        _ => Cell::Bytes(b.into()),
    }
}

/// A VariableScaleDecimal record's cell from its `scale` (an `int` ≥ 0) and `value` (bytes)
/// fields; null when either is missing.
pub(crate) fn var_decimal_cell(scale: Option<u32>, bytes: Option<&[u8]>) -> Cell {
    match (scale, bytes) {
        (Some(s), Some(b)) => Cell::Decimal(crate::ledger::json::decimal_string(b, s)),
        _ => Cell::Null,
    }
}

/// The fields of a decoded record value, by name.
pub fn record_fields(value: Value) -> Option<Vec<(String, Value)>> {
    match value {
        Value::Union(_, inner) => record_fields(*inner),
        Value::Record(fields) => Some(fields),
        _ => None,
    }
}

/// `YYYY-MM-DD` of days since the epoch.
pub fn date_text(days: i32) -> String {
    let (y, m, d) = cdc_codec::civil::civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:MM:SS.ffffff` of microseconds since midnight.
pub fn time_text(micros: i64) -> String {
    let s = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    format!("{:02}:{:02}:{:02}.{us:06}", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch.
pub fn timestamp_text(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rem = micros.rem_euclid(86_400_000_000);
    format!(
        "{} {}",
        date_text(i32::try_from(days).unwrap_or(i32::MAX)),
        time_text(rem)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE: &str = r#"{"type":"record","name":"Envelope","namespace":"p.public.t","fields":[
        {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
            {"name":"id","type":"int"},
            {"name":"small","type":["null",{"type":"int","connect.type":"int16"}],"default":null},
            {"name":"price","type":["null",{"type":"bytes","scale":2,"precision":10,"connect.version":1,
                "connect.parameters":{"scale":"2","connect.decimal.precision":"10"},
                "connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}],"default":null},
            {"name":"n","type":["null",{"type":"record","name":"VariableScaleDecimal","namespace":"io.debezium.data",
                "fields":[{"name":"scale","type":"int"},{"name":"value","type":"bytes"}]}],"default":null},
            {"name":"m","type":["null","io.debezium.data.VariableScaleDecimal"],"default":null},
            {"name":"d","type":["null",{"type":"int","connect.version":1,"connect.name":"io.debezium.time.Date"}],"default":null},
            {"name":"ts","type":["null",{"type":"long","connect.version":1,"connect.name":"io.debezium.time.MicroTimestamp"}],"default":null},
            {"name":"tz","type":["null",{"type":"string","connect.version":1,"connect.name":"io.debezium.time.ZonedTimestamp"}],"default":null},
            {"name":"doc","type":["null",{"type":"string","connect.version":1,"connect.name":"io.debezium.data.Json"}],"default":null},
            {"name":"tags","type":["null",{"type":"array","items":["null","string"]}],"default":null},
            {"name":"body","type":["null","string"],"default":null}
        ],"connect.name":"p.public.t.Value"}],"default":null},
        {"name":"after","type":["null","Value"],"default":null},
        {"name":"op","type":"string"}]}"#;

    #[test]
    fn an_envelope_schema_gives_every_column_its_semantic_type() {
        // `after` refers to `before`'s record by name: the shape comes from the definition.
        let shape = record_shape(strip_null(
            &serde_json::from_str::<Json>(ENVELOPE).unwrap()["fields"][0]["type"],
        ))
        .unwrap();
        let types: Vec<(&str, &ColType)> = shape
            .columns
            .iter()
            .map(|c| (c.name.as_str(), &c.ty))
            .collect();
        assert_eq!(
            types,
            vec![
                ("id", &ColType::Int32),
                ("small", &ColType::Int16),
                (
                    "price",
                    &ColType::Decimal {
                        precision: Some(10),
                        scale: 2
                    }
                ),
                ("n", &ColType::VarDecimal),
                ("m", &ColType::VarDecimal),
                ("d", &ColType::Date),
                ("ts", &ColType::Timestamp { micros_per_unit: 1 }),
                ("tz", &ColType::ZonedTimestamp),
                ("doc", &ColType::Json),
                ("tags", &ColType::Json),
                ("body", &ColType::Text),
            ]
        );
    }

    #[test]
    fn the_after_field_may_name_the_row_record_defined_by_before() {
        // The agent defines the record in `before`, so `after` is a reference; the shape is
        // then taken from `before`.
        assert!(envelope_shape(ENVELOPE).is_ok());
    }

    #[test]
    fn placeholders_become_unavailable_and_values_keep_their_meaning() {
        let p = "__debezium_unavailable_value";
        assert_eq!(
            cell(Value::String(p.into()), &ColType::Text, p),
            Cell::Unavailable
        );
        assert_eq!(
            cell(Value::Bytes(p.as_bytes().to_vec()), &ColType::Bytes, p),
            Cell::Unavailable
        );
        assert_eq!(
            cell(
                Value::Array(vec![Value::String(p.into())]),
                &ColType::Json,
                p
            ),
            Cell::Unavailable
        );
        // As the agent writes them: array items are `["null", T]` union branches, and an
        // integer array carries the placeholder's bytes.
        let some = |v: Value| Value::Union(1, Box::new(v));
        assert_eq!(
            cell(
                Value::Array(vec![some(Value::String(p.into()))]),
                &ColType::Json,
                p
            ),
            Cell::Unavailable
        );
        let bytes = |b: &[u8]| -> Vec<Value> {
            b.iter()
                .map(|&b| some(Value::Int(i32::from(b as i8))))
                .collect()
        };
        assert_eq!(
            cell(Value::Array(bytes(p.as_bytes())), &ColType::Json, p),
            Cell::Unavailable
        );
        assert_eq!(
            cell(Value::Array(bytes(b"__x")), &ColType::Json, p),
            Cell::Text("[95,95,120]".into())
        );
        assert_eq!(
            cell(
                Value::Union(1, Box::new(Value::Int(19_000))),
                &ColType::Date,
                p
            ),
            Cell::Date(19_000)
        );
        assert_eq!(
            cell(
                Value::Decimal(vec![0x04, 0x1a].into()),
                &ColType::Decimal {
                    precision: Some(10),
                    scale: 2
                },
                p
            ),
            Cell::Decimal("10.50".into())
        );
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(timestamp_text(1_500_000), "1970-01-01 00:00:01.500000");
        assert_eq!(time_text(3_723_000_001), "01:02:03.000001");
    }
}
