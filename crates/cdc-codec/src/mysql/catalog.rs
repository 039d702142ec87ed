//! What the MySQL/MariaDB source knows about its tables' definitions at one binlog position.
//!
//! A row event names its table only through a table map, which carries column *types* (and
//! their binary metadata) but, unless the server writes `binlog_row_metadata = FULL`, no
//! column names, key, nullability or ENUM/SET labels. The [`Catalog`] supplies those: it is
//! loaded from `information_schema` at snapshot time and then changed by every DDL statement
//! the binlog carries (see `ddl.rs`), and persisted in Kafka (see `history.rs`) so a restart at
//! an older position decodes with the definitions of that position, not today's.
//!
//! These types are plain data, serializable, so the history topic can store them as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A position in the server's binlog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// Binlog file name (`mariadb-bin.000042`).
    pub file: String,
    /// Byte offset in that file.
    pub pos: u64,
}

impl BinlogPosition {
    /// The sequence number of the file (the digits after the last dot), which orders files.
    pub fn file_seq(&self) -> u64 {
        self.file
            .rsplit('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinlogPosition {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.file_seq(), &self.file, self.pos).cmp(&(other.file_seq(), &other.file, other.pos))
    }
}

impl std::fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// One column as `information_schema.COLUMNS` describes it (or as a DDL statement declares
/// it, normalized to the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name, as declared.
    pub name: String,
    /// `DATA_TYPE`, lower case: `int`, `varchar`, `decimal`, `enum`, `datetime`, …
    pub data_type: String,
    /// `COLUMN_TYPE`, lower case: `int(10) unsigned`, `enum('a','b')`, `tinyint(1)`, …
    pub column_type: String,
    /// Whether the integer type is UNSIGNED.
    pub unsigned: bool,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// `CHARACTER_MAXIMUM_LENGTH` (characters for strings, bytes for binary), when it applies.
    pub char_max_length: Option<u64>,
    /// `NUMERIC_PRECISION` (DECIMAL precision, BIT length), when it applies.
    pub numeric_precision: Option<u32>,
    /// `NUMERIC_SCALE`, when it applies.
    pub numeric_scale: Option<u32>,
    /// `DATETIME_PRECISION` (fractional-second digits of TIME/DATETIME/TIMESTAMP).
    pub datetime_precision: Option<u32>,
    /// `CHARACTER_SET_NAME` of string columns (`utf8mb4`, `latin1`, `binary`, …).
    pub charset: Option<String>,
    /// ENUM or SET labels, in declaration order (their 1-based index is what the binlog
    /// carries).
    pub enum_values: Vec<String>,
    /// The constant default, as [`canonical_default`] writes it; `None` without a default,
    /// with NULL, an expression (`current_timestamp()`), or a type whose default the event
    /// schema does not carry. Absent from schema-history records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A constant default of a column of `data_type`, from the literal's text (unquoted), in one
/// canonical form for both ways a definition is learnt (information_schema and DDL): integers
/// and floats as their number (`'05'` → `5`, `1.50` → `1.5`), strings, ENUM and SET as they
/// are. `None` for the types whose event schema takes no default (decimals, dates, binary…)
/// and for text that is not a value of the type.
pub fn canonical_default(data_type: &str, text: &str) -> Option<String> {
    match data_type {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            text.trim().parse::<i64>().ok().map(|i| i.to_string())
        }
        "float" | "double" | "real" => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| format!("{f:?}")),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            Some(text.to_owned())
        }
        _ => None,
    }
}

/// [`canonical_default`] of `information_schema.COLUMNS.COLUMN_DEFAULT` as MariaDB 10.2.7+
/// shows it: literals quoted (`'open'`, `''` for a quote inside), numbers bare, `NULL`, and
/// expressions bare (`current_timestamp()`), which have no constant value.
pub fn default_from_information_schema(data_type: &str, raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    let text = match raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None if raw.parse::<f64>().is_ok() => raw.to_owned(),
        None => return None,
    };
    canonical_default(data_type, &text)
}

/// One table's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Database (schema) name.
    pub database: String,
    /// Table name.
    pub name: String,
    /// Columns in table order (the order row events use).
    pub columns: Vec<ColumnDef>,
    /// Primary-key column names, in key order; empty when the table has none.
    pub primary_key: Vec<String>,
}

/// Every known table definition, by `(database, table)`.
///
/// Build it with `Catalog::default()` and [`Catalog::put`]: fields may be added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Definitions by `(database, table)`.
    pub tables: BTreeMap<(String, String), TableDef>,
    /// Default character set of each database (`information_schema.SCHEMATA.
    /// DEFAULT_CHARACTER_SET_NAME`): what a `CREATE TABLE` without one inherits.
    #[serde(default)]
    pub databases: BTreeMap<String, String>,
    /// Default character set of each table (the part of `information_schema.TABLES.
    /// TABLE_COLLATION` before the first `_`, see [`charset_of_collation`]): what a column
    /// added by `ALTER TABLE` without one gets.
    #[serde(default)]
    pub table_charsets: BTreeMap<(String, String), String>,
    /// `@@character_set_server`: what a `CREATE DATABASE` without a character set gets.
    #[serde(default)]
    pub server_charset: Option<String>,
}

/// The character set a collation belongs to (`utf8mb4_unicode_ci` → `utf8mb4`, `binary` →
/// `binary`), with the server's spelling of the `utf8` alias (`utf8mb3`).
pub fn charset_of_collation(collation: &str) -> String {
    let c = collation.to_ascii_lowercase();
    let cs = c.split('_').next().unwrap_or(&c);
    normalize_charset(cs)
}

/// A character set name as `information_schema` spells it: lower case, `utf8` → `utf8mb3`.
pub fn normalize_charset(charset: &str) -> String {
    let cs = charset.to_ascii_lowercase();
    match cs.as_str() {
        "utf8" => "utf8mb3".to_owned(),
        _ => cs,
    }
}

impl Catalog {
    /// The definition of `database.table`, if known.
    pub fn get(&self, database: &str, table: &str) -> Option<&TableDef> {
        self.tables.get(&(database.to_owned(), table.to_owned()))
    }

    /// Adds or replaces a definition.
    pub fn put(&mut self, def: TableDef) {
        self.tables
            .insert((def.database.clone(), def.name.clone()), def);
    }

    /// Forgets a table; returns its definition.
    pub fn remove(&mut self, database: &str, table: &str) -> Option<TableDef> {
        self.tables.remove(&(database.to_owned(), table.to_owned()))
    }

    /// The default character set a new string column of `database.table` gets: the table's,
    /// else the database's, else the server's.
    pub fn default_charset(&self, database: &str, table: &str) -> Option<&str> {
        self.table_charsets
            .get(&(database.to_owned(), table.to_owned()))
            .or_else(|| self.databases.get(database))
            .or(self.server_charset.as_ref())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_positions_order_by_file_number_then_offset() {
        let p = |f: &str, pos| BinlogPosition {
            file: f.into(),
            pos,
        };
        assert!(p("bin.000002", 4) > p("bin.000001", 9999));
        assert!(p("bin.000010", 4) > p("bin.000009", 4));
        assert!(p("bin.000002", 300) > p("bin.000002", 299));
    }
}
