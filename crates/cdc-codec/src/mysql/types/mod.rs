//! MySQL/MariaDB column types → Debezium's representation, and the row-image decoder.
//!
//! The mapping is the Debezium MySQL connector's with its defaults
//! (`decimal.handling.mode = precise`, `time.precision.mode = adaptive_time_microseconds`,
//! `bigint.unsigned.handling.mode = long`, `binary.handling.mode = bytes`); `docs/mysql-types.md`
//! is the full statement, and the tests assert against it.
//!
//! Row values are decoded here rather than by mysql_common because this is the hot path: a
//! [`RowLayout`] is built once per table map, and [`RowLayout::decode_row`] turns each value of
//! a row image straight into a [`Datum`](crate::event::Datum) in its final representation, borrowing strings and
//! bytes from the event buffer (mysql_common would first build its own `Value`s, one
//! allocation per string, which we would then convert again). See
//! `docs/decisions/0004-mysql-binlog-decoding.md`.
//!
//! Nothing here panics on any input: every read is bounds-checked and a malformed value is a
//! [`DecodeError`] naming the column.

#![forbid(unsafe_code)]

mod charset;
mod clock;
mod dec;
mod decimal;
mod json;
mod layout;
mod rows;
mod table_map;
mod text;
mod value;

pub use charset::{charset_of_collation, cp1252_to_utf8, Text};
pub use decimal::decimal_text_to_unscaled;
pub use layout::RowLayout;
pub use rows::{decode_stream, fuzz_one};
pub use table_map::table_def_from_map;
pub use text::{fuzz_text, parse_datetime_text, parse_int_text, parse_time_text, snap_err};
pub use value::{
    date_value, datetime_datum, epoch_zoned, format_zoned, geometry_datum, zero_date, zoned,
    MICROS_PER_SEC,
};

use super::catalog::{ColumnDef, TableDef};
pub use super::error::DecodeError;
use super::events::mysql_type;
pub use super::events::TableMapInfo;
use crate::event::{Column, ColumnType, TableId, TableSchema};

/// `bigint.unsigned.handling.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BigintUnsigned {
    /// Debezium's default: `int64`; values of 2^63 and above wrap to negative (value − 2^64),
    /// as Java's `long` does.
    #[default]
    Long,
    /// `Decimal` with scale 0 (precision 20): every value exact.
    Precise,
}

/// Options of the type mapping. `Default` is Debezium's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TypeOptions {
    /// How BIGINT UNSIGNED is represented.
    pub bigint_unsigned: BigintUnsigned,
}

// ---------------------------------------------------------------------------------------
// mapping

/// Whether a data type is one of the spatial types.
fn is_spatial(data_type: &str) -> bool {
    matches!(
        data_type,
        "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
            | "geomcollection"
    )
}

fn is_binary_charset(col: &ColumnDef) -> bool {
    col.charset.as_deref() == Some("binary")
}

/// `FLOAT(M,D)` (deprecated syntax) is a double in Debezium's mapping.
fn float_has_m_d(column_type: &str) -> bool {
    column_type
        .split_once('(')
        .is_some_and(|(_, rest)| rest.contains(','))
}

/// The Debezium type of one column. Types this version does not know map to `String` (their
/// text, as the server prints it) — see the fallback in `docs/mysql-types.md`.
pub fn column_type(col: &ColumnDef, opts: &TypeOptions) -> ColumnType {
    let dt = col.data_type.as_str();
    match dt {
        // BOOLEAN is TINYINT(1) to the server (information_schema says `tinyint`); DDL that
        // spells it BOOLEAN must not give another type than the snapshot did (Debezium's
        // DBZ-6225 fix).
        "bool" | "boolean" | "tinyint" => ColumnType::Int16,
        "smallint" if col.unsigned => ColumnType::Int32,
        "smallint" => ColumnType::Int16,
        "mediumint" | "middleint" => ColumnType::Int32,
        "int" | "integer" if col.unsigned => ColumnType::Int64,
        "int" | "integer" => ColumnType::Int32,
        "bigint" if col.unsigned && opts.bigint_unsigned == BigintUnsigned::Precise => {
            ColumnType::Decimal {
                precision: Some(20),
                scale: 0,
            }
        }
        "bigint" => ColumnType::Int64,
        "float" if float_has_m_d(&col.column_type) => ColumnType::Float64,
        "float" => ColumnType::Float32,
        "double" | "double precision" | "real" => ColumnType::Float64,
        "decimal" | "numeric" | "dec" | "fixed" => ColumnType::Decimal {
            precision: col.numeric_precision,
            scale: col.numeric_scale.unwrap_or(0),
        },
        "bit" => match col.numeric_precision.unwrap_or(1) {
            1 => ColumnType::Boolean,
            n => ColumnType::Bits { length: n },
        },
        "year" => ColumnType::Year,
        "date" => ColumnType::Date,
        "time" => ColumnType::MicroTime,
        "datetime" if col.datetime_precision.unwrap_or(0) <= 3 => ColumnType::Timestamp,
        "datetime" => ColumnType::MicroTimestamp,
        "timestamp" => ColumnType::ZonedTimestamp,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "long"
        | "long varchar" | "nchar" | "nvarchar"
            if !is_binary_charset(col) =>
        {
            ColumnType::String
        }
        "char" | "varchar" | "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" | "tinytext" | "text" | "mediumtext" | "longtext" | "long varbinary" => {
            ColumnType::Bytes
        }
        "enum" => ColumnType::Enum(col.enum_values.clone()),
        "set" => ColumnType::EnumSet(col.enum_values.clone()),
        "json" => ColumnType::Json,
        "point" => ColumnType::Point,
        _ if is_spatial(dt) => ColumnType::Geometry,
        _ => ColumnType::String,
    }
}

/// The Avro JSON default of a NOT NULL column with a constant default (numbers bare, strings
/// quoted; a `tinyint(1)` read as boolean becomes `true`/`false`), `None` otherwise.
fn avro_default(c: &ColumnDef, ty: &ColumnType) -> Option<String> {
    if c.nullable {
        return None;
    }
    let d = c.default.as_deref()?;
    match ty {
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            d.parse::<i64>().ok().map(|i| i.to_string())
        }
        ColumnType::Float32 | ColumnType::Float64 => Some(d.to_owned()),
        ColumnType::Boolean => d.parse::<i64>().ok().map(|i| (i != 0).to_string()),
        ColumnType::String | ColumnType::Enum(_) | ColumnType::EnumSet(_) => {
            let mut out = String::with_capacity(d.len() + 2);
            crate::json::json_string(&mut out, d);
            Some(out)
        }
        _ => None,
    }
}

/// The event schema of a table: columns in table order, key = primary-key columns,
/// optional = nullable.
pub fn table_schema(def: &TableDef, opts: &TypeOptions) -> TableSchema {
    let columns: Vec<Column> = def
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            ty: column_type(c, opts),
            optional: c.nullable,
            source_type: c.column_type.clone(),
            default: avro_default(c, &column_type(c, opts)),
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

#[cfg(test)]
mod tests;
