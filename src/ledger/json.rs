//! Avro values as JSON for people and scripts (`replay`, `history`).
//!
//! apache-avro's own conversion loses what the schema says: a decimal becomes the array of
//! its unscaled bytes (`[4, 26]` for 10.50). This walk follows the writer schema instead:
//!
//! - `decimal` logical types, and Debezium's `VariableScaleDecimal` record `{scale, value}`,
//!   become decimal strings (`"10.50"`), exact at any precision;
//! - `bytes` and `fixed` become base64 strings, as Kafka Connect's JSON converter writes them;
//! - unions become their branch's value (`null` or the value itself), enums their symbol;
//! - floats that JSON cannot hold become the strings `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - everything else as apache-avro converts it (records as objects, logical date/time
//!   types as their numbers).

use apache_avro::schema::{Name, Namespace, Schema};
use apache_avro::types::Value;
use base64::Engine;
use num_bigint::BigInt;
use serde_json::Value as Json;
use std::collections::HashMap;

/// Debezium's record for `numeric` without a fixed scale.
const VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";

/// Named schemas of a writer schema, to follow `Ref`s.
pub struct Names(HashMap<Name, Schema>);

impl Names {
    /// Collects the named schemas (records, enums, fixed) defined in `schema`.
    pub fn of(schema: &Schema) -> Self {
        let mut names = HashMap::new();
        collect(schema, &None, &mut names);
        Names(names)
    }
}

fn collect(schema: &Schema, ns: &Namespace, out: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(r) => {
            let name = r.name.fully_qualified_name(ns);
            let inner_ns = name.namespace.clone();
            out.insert(name, schema.clone());
            for f in &r.fields {
                collect(&f.schema, &inner_ns, out);
            }
        }
        Schema::Enum(e) => {
            out.insert(e.name.fully_qualified_name(ns), schema.clone());
        }
        Schema::Fixed(f) => {
            out.insert(f.name.fully_qualified_name(ns), schema.clone());
        }
        Schema::Array(a) => collect(&a.items, ns, out),
        Schema::Map(m) => collect(&m.types, ns, out),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect(v, ns, out)),
        Schema::Decimal(d) => collect(&d.inner, ns, out),
        _ => {}
    }
}

/// `value`, written with `schema`, as JSON; an error for a value apache-avro cannot convert.
pub fn to_json(value: Value, schema: &Schema, names: &Names) -> Result<Json, apache_avro::Error> {
    let schema = match schema {
        Schema::Ref { name } => match names.0.get(name) {
            Some(s) => s,
            None => return plain(value),
        },
        s => s,
    };
    Ok(match (value, schema) {
        (Value::Union(i, inner), Schema::Union(u)) => match u.variants().get(i as usize) {
            Some(s) => to_json(*inner, s, names)?,
            None => plain(*inner)?,
        },
        (Value::Decimal(d), Schema::Decimal(s)) => Json::String(decimal_string(
            &BigInt::from(d).to_signed_bytes_be(),
            s.scale as u32,
        )),
        (Value::Record(fields), Schema::Record(r)) => {
            if r.name.fullname(None) == VARIABLE_SCALE_DECIMAL {
                if let Some(s) = variable_scale_decimal(&fields) {
                    return Ok(Json::String(s));
                }
            }
            let mut out = serde_json::Map::with_capacity(fields.len());
            for (name, v) in fields {
                let j = match r.lookup.get(&name).and_then(|&i| r.fields.get(i)) {
                    Some(f) => to_json(v, &f.schema, names)?,
                    None => plain(v)?,
                };
                out.insert(name, j);
            }
            Json::Object(out)
        }
        (Value::Array(items), Schema::Array(a)) => Json::Array(
            items
                .into_iter()
                .map(|v| to_json(v, &a.items, names))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(m), Schema::Map(s)) => Json::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, to_json(v, &s.types, names)?)))
                .collect::<Result<_, apache_avro::Error>>()?,
        ),
        (v, _) => plain(v)?,
    })
}

/// Without schema guidance: bytes as base64, non-finite floats as strings, the rest as
/// apache-avro converts it.
fn plain(value: Value) -> Result<Json, apache_avro::Error> {
    Ok(match value {
        Value::Bytes(b) | Value::Fixed(_, b) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::Float(f) if !f.is_finite() => non_finite(f64::from(f)),
        Value::Double(f) if !f.is_finite() => non_finite(f),
        Value::Union(_, inner) => plain(*inner)?,
        Value::Array(items) => Json::Array(items.into_iter().map(plain).collect::<Result<_, _>>()?),
        Value::Map(m) => Json::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, plain(v)?)))
                .collect::<Result<_, apache_avro::Error>>()?,
        ),
        Value::Record(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, plain(v)?)))
                .collect::<Result<_, apache_avro::Error>>()?,
        ),
        other => Json::try_from(other)?,
    })
}

/// NaN and the infinities, which JSON numbers cannot hold, as the strings Java prints.
fn non_finite(f: f64) -> Json {
    Json::String(
        if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .into(),
    )
}

/// Debezium's `{scale: int, value: bytes}` as a decimal string.
fn variable_scale_decimal(fields: &[(String, Value)]) -> Option<String> {
    let mut scale = None;
    let mut bytes = None;
    for (name, v) in fields {
        match (name.as_str(), v) {
            ("scale", Value::Int(s)) => scale = u32::try_from(*s).ok(),
            ("value", Value::Bytes(b)) => bytes = Some(b),
            _ => {}
        }
    }
    Some(decimal_string(bytes?, scale?))
}

/// Big-endian two's-complement `unscaled` × 10^-`scale` as a decimal string.
pub fn decimal_string(unscaled: &[u8], scale: u32) -> String {
    let n = BigInt::from_signed_bytes_be(unscaled);
    let digits = n.magnitude().to_string();
    let sign = if n.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    let scale = scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_with_their_scale_and_sign() {
        assert_eq!(decimal_string(&[0x04, 0x1a], 2), "10.50");
        assert_eq!(decimal_string(&[0xcf, 0xc7], 2), "-123.45");
        assert_eq!(decimal_string(&[0x05], 3), "0.005");
        assert_eq!(decimal_string(&[0xff], 1), "-0.1");
        assert_eq!(decimal_string(&[], 2), "0.00");
        assert_eq!(decimal_string(&[0x30, 0x0c], 0), "12300");
    }

    #[test]
    fn floats_json_cannot_hold_print_as_strings() {
        let schema = Schema::parse_str(r#"{"type":"array","items":["null","double"]}"#).unwrap();
        let value = Value::Array(
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5]
                .into_iter()
                .map(|f| Value::Union(1, Box::new(Value::Double(f))))
                .collect(),
        );
        assert_eq!(
            to_json(value, &schema, &Names::of(&schema)).unwrap(),
            serde_json::json!(["NaN", "Infinity", "-Infinity", 1.5])
        );
    }

    #[test]
    fn an_envelope_renders_decimals_bytes_and_unions_by_its_schema() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"Envelope","namespace":"t","fields":[
                {"name":"after","type":["null",{"type":"record","name":"Value","fields":[
                    {"name":"price","type":["null",{"type":"bytes","logicalType":"decimal",
                        "precision":10,"scale":2}]},
                    {"name":"data","type":"bytes"},
                    {"name":"n","type":["null",{"type":"record",
                        "name":"VariableScaleDecimal","namespace":"io.debezium.data",
                        "fields":[{"name":"scale","type":"int"},{"name":"value","type":"bytes"}]}]},
                    {"name":"tags","type":{"type":"array","items":"string"}}]}]},
                {"name":"before","type":["null","Value"]}]}"#,
        )
        .unwrap();
        let value = Value::Record(vec![
            (
                "after".into(),
                Value::Union(
                    1,
                    Box::new(Value::Record(vec![
                        (
                            "price".into(),
                            Value::Union(1, Box::new(Value::Decimal(vec![0x04, 0x1a].into()))),
                        ),
                        ("data".into(), Value::Bytes(vec![0x00, 0xff])),
                        (
                            "n".into(),
                            Value::Union(
                                1,
                                Box::new(Value::Record(vec![
                                    ("scale".into(), Value::Int(2)),
                                    ("value".into(), Value::Bytes(vec![0x30, 0x39])),
                                ])),
                            ),
                        ),
                        ("tags".into(), Value::Array(vec![Value::String("x".into())])),
                    ])),
                ),
            ),
            ("before".into(), Value::Union(0, Box::new(Value::Null))),
        ]);
        let names = Names::of(&schema);
        assert_eq!(
            to_json(value, &schema, &names).unwrap(),
            serde_json::json!({
                "after": {"price": "10.50", "data": "AP8=", "n": "123.45", "tags": ["x"]},
                "before": null
            })
        );
    }
}
