//! TEMPORARY stand-ins for the decoders of `types.rs` / `events.rs` (another branch), so the
//! wiring can run before they are merged. Deleted at the merge: nothing here is the promised
//! type mapping (docs/mysql-types.md is).

use std::borrow::Cow;

use mysql_async::Value;

use super::catalog::{ColumnDef, TableDef};
use crate::event::{Column, ColumnType, Datum, TableId, TableSchema};

/// A rough Connect type per column.
pub fn column_type(col: &ColumnDef) -> ColumnType {
    match col.data_type.as_str() {
        "tinyint" | "smallint" => ColumnType::Int16,
        "mediumint" => ColumnType::Int32,
        "int" | "integer" if !col.unsigned => ColumnType::Int32,
        "int" | "integer" | "bigint" => ColumnType::Int64,
        "float" => ColumnType::Float32,
        "double" | "real" => ColumnType::Float64,
        "decimal" | "numeric" => ColumnType::Decimal {
            precision: col.numeric_precision,
            scale: col.numeric_scale.unwrap_or(0),
        },
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            ColumnType::Bytes
        }
        _ => ColumnType::String,
    }
}

/// The event schema of a table.
pub fn table_schema(def: &TableDef) -> TableSchema {
    let columns: Vec<Column> = def
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            ty: column_type(c),
            optional: c.nullable,
            source_type: c.column_type.clone(),
        })
        .collect();
    let key = def
        .primary_key
        .iter()
        .filter_map(|k| def.columns.iter().position(|c| &c.name == k))
        .collect();
    TableSchema {
        id: TableId::new(&def.database, &def.name),
        columns,
        key,
    }
}

/// A value (text protocol or binlog) as a datum of `ty`.
pub fn value_datum(ty: &ColumnType, v: Value) -> Datum<'static> {
    let text = |v: &Value| -> String {
        match v {
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Double(f) => f.to_string(),
            other => other.as_sql(true).trim_matches('\'').to_string(),
        }
    };
    if v == Value::NULL {
        return Datum::Null;
    }
    match ty {
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => match v {
            Value::Int(i) => Datum::Int(i),
            Value::UInt(u) => Datum::Int(u as i64),
            other => Datum::Int(text(&other).parse().unwrap_or(0)),
        },
        ColumnType::Float32 | ColumnType::Float64 => match v {
            Value::Float(f) => Datum::Float(f64::from(f)),
            Value::Double(f) => Datum::Float(f),
            other => Datum::Float(text(&other).parse().unwrap_or(0.0)),
        },
        ColumnType::Decimal { scale, .. } => {
            let t = text(&v);
            let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
            let mut digits = format!("{int}{frac}");
            for _ in frac.len()..*scale as usize {
                digits.push('0');
            }
            let n: i128 = digits.parse().unwrap_or(0);
            let bytes = n.to_be_bytes();
            let skip = bytes
                .windows(2)
                .take_while(|w| (w[0] == 0 && w[1] < 0x80) || (w[0] == 0xff && w[1] >= 0x80))
                .count();
            Datum::Decimal {
                unscaled: Cow::Owned(bytes[skip..].to_vec()),
                scale: *scale,
            }
        }
        ColumnType::Bytes => match v {
            Value::Bytes(b) => Datum::Bytes(Cow::Owned(b)),
            other => Datum::Bytes(Cow::Owned(text(&other).into_bytes())),
        },
        _ => Datum::Str(Cow::Owned(text(&v))),
    }
}

/// A MariaDB GTID event's body: `(seq_no, domain_id, flags)`.
pub fn mariadb_gtid(data: &[u8]) -> Option<(u64, u32, u8)> {
    if data.len() < 13 {
        return None;
    }
    let seq = u64::from_le_bytes(data[0..8].try_into().ok()?);
    let domain = u32::from_le_bytes(data[8..12].try_into().ok()?);
    Some((seq, domain, data[12]))
}
