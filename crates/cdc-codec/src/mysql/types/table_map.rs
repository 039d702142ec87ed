//! Table definitions from a table map's FULL optional metadata (`binlog_row_metadata = FULL`),
//! for tables the schema history does not know.

use crate::mysql::catalog::{ColumnDef, TableDef};
use crate::mysql::events::{mysql_type, MapColumn, TableMapInfo};

use super::charset::charset_of_collation;

/// The spatial type named by the table map's GEOMETRY_TYPE metadata.
fn geometry_type_name(code: u32) -> &'static str {
    match code {
        1 => "point",
        2 => "linestring",
        3 => "polygon",
        4 => "multipoint",
        5 => "multilinestring",
        6 => "multipolygon",
        7 => "geometrycollection",
        _ => "geometry",
    }
}

/// The `DATA_TYPE` name of a binlog column.
fn data_type_of(mc: &MapColumn, binary: bool) -> &'static str {
    use mysql_type as t;
    match mc.real_type {
        t::TINY => "tinyint",
        t::SHORT => "smallint",
        t::INT24 => "mediumint",
        t::LONG => "int",
        t::LONGLONG => "bigint",
        t::FLOAT => "float",
        t::DOUBLE => "double",
        t::DECIMAL | t::NEWDECIMAL => "decimal",
        t::YEAR => "year",
        t::DATE | t::NEWDATE => "date",
        t::TIME | t::TIME2 => "time",
        t::DATETIME | t::DATETIME2 => "datetime",
        t::TIMESTAMP | t::TIMESTAMP2 => "timestamp",
        t::BIT => "bit",
        t::ENUM => "enum",
        t::SET => "set",
        t::STRING if binary => "binary",
        t::STRING => "char",
        t::VARCHAR | t::VAR_STRING if binary => "varbinary",
        t::VARCHAR | t::VAR_STRING => "varchar",
        t::BLOB | t::TINY_BLOB | t::MEDIUM_BLOB | t::LONG_BLOB => match (mc.meta, binary) {
            (1, true) => "tinyblob",
            (1, false) => "tinytext",
            (3, true) => "mediumblob",
            (3, false) => "mediumtext",
            (4, true) => "longblob",
            (4, false) => "longtext",
            (_, true) => "blob",
            (_, false) => "text",
        },
        t::JSON => "json",
        t::GEOMETRY => "geometry",
        t::VECTOR => "vector",
        _ => "unknown",
    }
}

/// A table definition from a table map that carries column names (`binlog_row_metadata =
/// FULL`); `None` when it does not. The wiring decodes with it when present and falls back to
/// the schema history otherwise. Types are as precise as the table map allows: TINYINT(1) and
/// BOOLEAN are indistinguishable (both map to `Int16` anyway), MariaDB's JSON shows as
/// `longtext` (its text is the JSON), and charsets outside utf8/latin1/ascii/binary are
/// reported as unknown (`None`).
pub fn table_def_from_map(database: &str, table: &str, map: &TableMapInfo) -> Option<TableDef> {
    use mysql_type as t;
    let o = &map.optional;
    if o.names.len() != map.columns.len() {
        return None;
    }
    let columns = map
        .columns
        .iter()
        .enumerate()
        .map(|(i, mc)| {
            let charset = o
                .collation
                .get(i)
                .copied()
                .flatten()
                .and_then(charset_of_collation)
                .map(str::to_owned);
            let binary = charset.as_deref() == Some("binary");
            let data_type = match o.geometry_type.get(i).copied().flatten() {
                Some(code) if mc.real_type == t::GEOMETRY => geometry_type_name(code),
                _ => data_type_of(mc, binary),
            }
            .to_owned();
            let unsigned = o.unsigned.get(i).copied().flatten().unwrap_or(false);
            let (numeric_precision, numeric_scale) = match mc.real_type {
                t::NEWDECIMAL => (
                    Some(u32::from(mc.meta >> 8)),
                    Some(u32::from(mc.meta & 0xff)),
                ),
                t::BIT => (
                    Some(u32::from(mc.meta >> 8) * 8 + u32::from(mc.meta & 0xff)),
                    None,
                ),
                _ => (None, None),
            };
            let datetime_precision = match mc.real_type {
                t::TIME2 | t::DATETIME2 | t::TIMESTAMP2 => Some(u32::from(mc.meta.min(6))),
                t::TIME | t::DATETIME | t::TIMESTAMP => Some(0),
                _ => None,
            };
            let enum_values = o.labels.get(i).cloned().unwrap_or_default();
            let mut column_type = data_type.clone();
            match mc.real_type {
                t::NEWDECIMAL => {
                    column_type = format!(
                        "decimal({},{})",
                        numeric_precision.unwrap_or(10),
                        numeric_scale.unwrap_or(0)
                    )
                }
                t::BIT => column_type = format!("bit({})", numeric_precision.unwrap_or(1)),
                _ => {}
            }
            if unsigned {
                column_type.push_str(" unsigned");
            }
            ColumnDef {
                name: o.names[i].clone(),
                data_type,
                column_type,
                unsigned,
                nullable: map.nullable.get(i).copied().unwrap_or(true),
                char_max_length: None,
                numeric_precision,
                numeric_scale,
                datetime_precision,
                charset,
                enum_values,
                default: None,
            }
        })
        .collect();
    let primary_key = o
        .primary_key
        .iter()
        .filter_map(|&k| o.names.get(k).cloned())
        .collect();
    Some(TableDef {
        database: database.to_owned(),
        name: table.to_owned(),
        columns,
        primary_key,
    })
}
