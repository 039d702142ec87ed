//! MySQL/MariaDB column types → Debezium's representation, and the row-image decoder.
//!
//! The mapping is the Debezium MySQL connector's with its defaults
//! (`decimal.handling.mode = precise`, `time.precision.mode = adaptive_time_microseconds`,
//! `bigint.unsigned.handling.mode = long`, `binary.handling.mode = bytes`); `docs/mysql-types.md`
//! is the full statement, and the tests assert against it.
//!
//! Row values are decoded here rather than by mysql_common because this is the hot path: a
//! [`RowLayout`] is built once per table map, and [`RowLayout::decode_row`] turns each value of
//! a row image straight into a [`Datum`] in its final representation, borrowing strings and
//! bytes from the event buffer (mysql_common would first build its own `Value`s, one
//! allocation per string, which we would then convert again). See
//! `docs/decisions/0004-mysql-binlog-decoding.md`.
//!
//! Nothing here panics on any input: every read is bounds-checked and a malformed value is a
//! [`DecodeError`] naming the column.

#![forbid(unsafe_code)]

mod json;

use std::borrow::Cow;

use super::catalog::{ColumnDef, TableDef};
pub use super::error::DecodeError;
pub use super::events::TableMapInfo;
use super::events::{mysql_type, MapColumn, RowsEventView, RowsKind};
use crate::civil::{civil_from_days, days_from_civil};
use crate::event::{Column, ColumnType, Datum, TableId, TableSchema};

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

// ---------------------------------------------------------------------------------------
// charsets

/// How the bytes of a string column become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Text {
    /// utf8mb4, utf8mb3, ascii and unknown charsets: must be valid UTF-8 (borrowed).
    Utf8,
    /// latin1, which MySQL and MariaDB define as Windows-1252: borrowed when ASCII.
    Cp1252,
    /// The binary charset: bytes.
    Binary,
}

impl Text {
    /// The decoding of a charset name (`CHARACTER_SET_NAME`).
    pub fn of_charset(charset: Option<&str>) -> Text {
        match charset {
            Some("binary") => Text::Binary,
            Some("latin1") => Text::Cp1252,
            _ => Text::Utf8,
        }
    }
}

/// The charset name of a collation id, for the charsets the decoder distinguishes (`None` for
/// the others, which decode as UTF-8 — see `docs/mysql-types.md`).
pub fn charset_of_collation(id: u16) -> Option<&'static str> {
    // MariaDB numbers its NO PAD variants 1024 above the PAD ones.
    let id = if (1024..2048).contains(&id) {
        id - 1024
    } else {
        id
    };
    Some(match id {
        63 => "binary",
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        11 | 65 => "ascii",
        33 | 76 | 83 | 192..=223 => "utf8mb3",
        45 | 46 | 224..=247 | 255..=323 => "utf8mb4",
        _ => return None,
    })
}

/// Windows-1252 bytes 0x80..=0x9f; the undefined ones (0x81, 0x8d, 0x8f, 0x90, 0x9d) map to
/// the C1 control of the same number, as MySQL's latin1 does.
const CP1252_HIGH: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
];

/// latin1 (cp1252) → UTF-8; borrows when every byte is ASCII.
pub fn cp1252_to_utf8(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // ASCII is UTF-8; from_utf8 cannot fail here.
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    let mut s = String::with_capacity(bytes.len() + bytes.len() / 2);
    for &b in bytes {
        s.push(match b {
            0x80..=0x9f => CP1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        });
    }
    Cow::Owned(s)
}

// ---------------------------------------------------------------------------------------
// decoders

/// How one column's value is read from a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dec {
    /// Little-endian integer of `bytes` bytes.
    Int {
        bytes: u8,
        unsigned: bool,
        precise: bool,
    },
    Float,
    Double,
    /// Binary decimal.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Year,
    Date,
    /// Pre-5.6 TIME: 3-byte HHMMSS integer.
    TimeOld,
    Time2 {
        fsp: u8,
    },
    /// Pre-5.6 DATETIME: 8-byte YYYYMMDDhhmmss integer.
    DatetimeOld {
        micros: bool,
    },
    Datetime2 {
        fsp: u8,
        micros: bool,
    },
    TimestampOld,
    Timestamp2 {
        fsp: u8,
    },
    /// BIT(n): `len` big-endian bytes.
    Bit {
        len: u8,
        as_bool: bool,
    },
    Enum {
        width: u8,
        labels: Vec<String>,
    },
    Set {
        width: u8,
        labels: Vec<String>,
    },
    /// CHAR/VARCHAR/BINARY/VARBINARY: 1- or 2-byte length prefix; BINARY(n) is re-padded
    /// with zero bytes to `pad` (the server strips them in the binlog but not in SELECT).
    Str {
        prefix: u8,
        text: Text,
        pad: usize,
    },
    /// BLOB/TEXT: length prefix of `prefix` bytes.
    Blob {
        prefix: u8,
        text: Text,
    },
    /// MySQL binary JSON.
    Json {
        prefix: u8,
    },
    /// SRID + WKB.
    Geometry {
        prefix: u8,
    },
    /// Column types without a known value mapping stored as blobs (MySQL VECTOR): hex text.
    RawBlob {
        prefix: u8,
    },
    /// MariaDB INET4/INET6/UUID: fixed binary in the binlog (trailing zeros stripped), printed
    /// as the server prints them.
    Fixed {
        kind: FixedText,
        len: u8,
    },
    /// An unknown type stored as binary: lowercase hex of its bytes (`prefix`-byte length).
    Hex {
        prefix: u8,
    },
}

/// The text forms of MariaDB's fixed-size binary types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FixedText {
    Inet4,
    Inet6,
    Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ColDec {
    name: String,
    dec: Dec,
    /// Zero dates become NULL when the column is nullable, the epoch otherwise.
    nullable: bool,
}

/// Decoders of one table map + definition; built once per table-map change, reused for every
/// row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLayout {
    table: String,
    cols: Vec<ColDec>,
}

fn mismatch(def: &TableDef, detail: String) -> DecodeError {
    DecodeError::SchemaMismatch {
        table: format!("{}.{}", def.database, def.name),
        detail,
    }
}

impl RowLayout {
    /// Builds the decoders from the table map (how the bytes are laid out) and the table
    /// definition (what they mean: signedness, charset, labels, the Debezium type).
    pub fn new(
        def: &TableDef,
        map: &TableMapInfo,
        opts: &TypeOptions,
    ) -> Result<Self, DecodeError> {
        if def.columns.len() != map.columns.len() {
            return Err(mismatch(
                def,
                format!(
                    "{} columns known, {} in the table map",
                    def.columns.len(),
                    map.columns.len()
                ),
            ));
        }
        // With FULL metadata the server names the columns: a definition whose names differ
        // (a rename the schema history missed) would label values wrongly.
        if map.optional.names.len() == def.columns.len() {
            if let Some((c, n)) = def
                .columns
                .iter()
                .zip(&map.optional.names)
                .find(|(c, n)| !c.name.eq_ignore_ascii_case(n))
            {
                return Err(mismatch(
                    def,
                    format!("column {} is named {n} in the table map", c.name),
                ));
            }
        }
        let mut cols = Vec::with_capacity(def.columns.len());
        for (i, (col, mc)) in def.columns.iter().zip(&map.columns).enumerate() {
            let ty = column_type(col, opts);
            let unsigned = map
                .optional
                .unsigned
                .get(i)
                .copied()
                .flatten()
                .unwrap_or(col.unsigned);
            let text = match map.optional.collation.get(i).copied().flatten() {
                Some(c) => Text::of_charset(charset_of_collation(c)),
                None => Text::of_charset(col.charset.as_deref()),
            };
            let labels = match map.optional.labels.get(i) {
                Some(l) if !l.is_empty() => l.clone(),
                _ => col.enum_values.clone(),
            };
            let dec =
                layout_column(col, &ty, mc, unsigned, text, labels, opts).ok_or_else(|| {
                    mismatch(
                        def,
                        format!(
                            "column {} is {} but the binlog has type code {} (real {})",
                            col.name, col.column_type, mc.binlog_type, mc.real_type
                        ),
                    )
                })?;
            cols.push(ColDec {
                name: col.name.clone(),
                dec,
                nullable: col.nullable,
            });
        }
        Ok(Self {
            table: format!("{}.{}", def.database, def.name),
            cols,
        })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.cols.len()
    }

    /// Whether the table has no columns.
    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    /// Decodes one row image starting at `data[*pos]`, advancing `pos`; `present` is the rows
    /// event's columns-present bitmap. Appends one datum per column to `out`.
    pub fn decode_row<'a>(
        &self,
        data: &'a [u8],
        pos: &mut usize,
        present: &[u8],
        out: &mut Vec<Datum<'a>>,
    ) -> Result<(), DecodeError> {
        let n = self.cols.len();
        let present_count = (0..n).filter(|&i| bit(present, i)).count();
        if present_count != n {
            return Err(DecodeError::PartialRowImage {
                table: self.table.clone(),
                present: present_count,
                total: n,
            });
        }
        let start = *pos;
        let nulls = data
            .get(start..)
            .and_then(|d| d.get(..n.div_ceil(8)))
            .ok_or(DecodeError::truncated("row null bitmap", start))?;
        let mut p = start + nulls.len();
        out.reserve(n);
        for (i, c) in self.cols.iter().enumerate() {
            if bit(nulls, i) {
                out.push(Datum::Null);
                continue;
            }
            let d = decode_value(&c.dec, c.nullable, data, &mut p).map_err(|e| match e {
                ValueError::Truncated => DecodeError::Value {
                    table: self.table.clone(),
                    column: c.name.clone(),
                    reason: format!("value runs past the end of the event (at byte {p})"),
                },
                ValueError::Invalid(reason) => DecodeError::Value {
                    table: self.table.clone(),
                    column: c.name.clone(),
                    reason,
                },
            })?;
            out.push(d);
        }
        *pos = p;
        Ok(())
    }
}

fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn blob_prefix(meta: u16) -> Option<u8> {
    (1..=4).contains(&meta).then_some(meta as u8)
}

/// The decoder for one column, or `None` when the definition and the binlog type disagree.
fn layout_column(
    col: &ColumnDef,
    ty: &ColumnType,
    mc: &MapColumn,
    unsigned: bool,
    text: Text,
    labels: Vec<String>,
    opts: &TypeOptions,
) -> Option<Dec> {
    use mysql_type as t;
    let int = |bytes| Dec::Int {
        bytes,
        unsigned,
        precise: bytes == 8 && unsigned && opts.bigint_unsigned == BigintUnsigned::Precise,
    };
    let fsp = mc.meta.min(6) as u8;
    let micros = matches!(ty, ColumnType::MicroTimestamp);
    let numeric = matches!(
        ty,
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 | ColumnType::Boolean
    ) || matches!(ty, ColumnType::Decimal { .. } if col.data_type == "bigint");
    let stringish = matches!(ty, ColumnType::String | ColumnType::Bytes);
    Some(match mc.real_type {
        t::TINY if numeric => int(1),
        t::SHORT if numeric => int(2),
        t::INT24 if numeric => int(3),
        t::LONG if numeric => int(4),
        t::LONGLONG if numeric => int(8),
        t::FLOAT if matches!(ty, ColumnType::Float32 | ColumnType::Float64) => Dec::Float,
        t::DOUBLE if matches!(ty, ColumnType::Float32 | ColumnType::Float64) => Dec::Double,
        t::NEWDECIMAL if matches!(ty, ColumnType::Decimal { .. }) => {
            let precision = (mc.meta >> 8) as u8;
            let scale = (mc.meta & 0xff) as u8;
            if precision == 0 || precision > 65 || scale > 30 || scale > precision {
                return None;
            }
            Dec::Decimal { precision, scale }
        }
        t::YEAR if matches!(ty, ColumnType::Year) => Dec::Year,
        t::DATE | t::NEWDATE if matches!(ty, ColumnType::Date) => Dec::Date,
        t::TIME if matches!(ty, ColumnType::MicroTime) => Dec::TimeOld,
        t::TIME2 if matches!(ty, ColumnType::MicroTime) => Dec::Time2 { fsp },
        t::DATETIME if matches!(ty, ColumnType::Timestamp | ColumnType::MicroTimestamp) => {
            Dec::DatetimeOld { micros }
        }
        t::DATETIME2 if matches!(ty, ColumnType::Timestamp | ColumnType::MicroTimestamp) => {
            Dec::Datetime2 { fsp, micros }
        }
        t::TIMESTAMP if matches!(ty, ColumnType::ZonedTimestamp) => Dec::TimestampOld,
        t::TIMESTAMP2 if matches!(ty, ColumnType::ZonedTimestamp) => Dec::Timestamp2 { fsp },
        t::BIT if matches!(ty, ColumnType::Boolean | ColumnType::Bits { .. }) => {
            let bytes = (mc.meta >> 8) as u8;
            let bits = (mc.meta & 0xff) as u8;
            let len = bytes.checked_add(u8::from(bits != 0))?;
            if len == 0 || len > 8 {
                return None;
            }
            Dec::Bit {
                len,
                as_bool: matches!(ty, ColumnType::Boolean),
            }
        }
        t::ENUM if matches!(ty, ColumnType::Enum(_)) => Dec::Enum {
            width: match mc.meta {
                1 | 2 => mc.meta as u8,
                _ => return None,
            },
            labels,
        },
        t::SET if matches!(ty, ColumnType::EnumSet(_)) => Dec::Set {
            width: match mc.meta {
                1..=8 => mc.meta as u8,
                _ => return None,
            },
            labels,
        },
        t::STRING if is_unknown(ty, col) && fixed_text(&col.data_type).is_some() => {
            let (kind, len) = fixed_text(&col.data_type)?;
            if usize::from(mc.meta) != usize::from(len) {
                return None;
            }
            Dec::Fixed { kind, len }
        }
        t::STRING | t::VARCHAR | t::VAR_STRING if is_unknown(ty, col) && text == Text::Binary => {
            Dec::Hex {
                prefix: if mc.meta < 256 { 1 } else { 2 },
            }
        }
        t::STRING | t::VARCHAR | t::VAR_STRING if stringish || is_unknown(ty, col) => {
            let prefix = if mc.meta < 256 { 1 } else { 2 };
            let text = if matches!(ty, ColumnType::Bytes) {
                Text::Binary
            } else {
                text
            };
            let pad = if mc.real_type == t::STRING && text == Text::Binary {
                usize::from(mc.meta)
            } else {
                0
            };
            Dec::Str { prefix, text, pad }
        }
        t::BLOB | t::TINY_BLOB | t::MEDIUM_BLOB | t::LONG_BLOB
            if stringish || matches!(ty, ColumnType::Json) || is_unknown(ty, col) =>
        {
            // MariaDB's JSON is LONGTEXT: its text is the value.
            let text = if matches!(ty, ColumnType::Bytes) {
                Text::Binary
            } else {
                text
            };
            Dec::Blob {
                prefix: blob_prefix(mc.meta)?,
                text,
            }
        }
        t::JSON if matches!(ty, ColumnType::Json) => Dec::Json {
            prefix: blob_prefix(mc.meta)?,
        },
        t::GEOMETRY if matches!(ty, ColumnType::Geometry | ColumnType::Point) => Dec::Geometry {
            prefix: blob_prefix(mc.meta)?,
        },
        t::VECTOR if is_unknown(ty, col) => Dec::RawBlob {
            prefix: blob_prefix(mc.meta)?,
        },
        _ => return None,
    })
}

fn fixed_text(data_type: &str) -> Option<(FixedText, u8)> {
    match data_type {
        "inet4" => Some((FixedText::Inet4, 4)),
        "inet6" => Some((FixedText::Inet6, 16)),
        "uuid" => Some((FixedText::Uuid, 16)),
        _ => None,
    }
}

/// A type that fell through [`column_type`] to the `String` fallback.
fn is_unknown(ty: &ColumnType, col: &ColumnDef) -> bool {
    matches!(ty, ColumnType::String)
        && !matches!(
            col.data_type.as_str(),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
        )
}

/// A value-level failure, turned into a [`DecodeError::Value`] by the caller (which knows the
/// column).
enum ValueError {
    Truncated,
    Invalid(String),
}

fn take<'a>(data: &'a [u8], p: &mut usize, n: usize) -> Result<&'a [u8], ValueError> {
    let end = p.checked_add(n).ok_or(ValueError::Truncated)?;
    let s = data.get(*p..end).ok_or(ValueError::Truncated)?;
    *p = end;
    Ok(s)
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

fn sign_extend(v: u64, bytes: u8) -> i64 {
    let shift = 64 - u32::from(bytes) * 8;
    ((v << shift) as i64) >> shift
}

/// Microseconds in a second.
pub const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

/// The fraction of TIME2/DATETIME2/TIMESTAMP2: (fsp+1)/2 big-endian bytes → microseconds.
fn frac_micros(data: &[u8], p: &mut usize, fsp: u8) -> Result<i64, ValueError> {
    Ok(match fsp {
        1 | 2 => be(take(data, p, 1)?) as i64 * 10_000,
        3 | 4 => be(take(data, p, 2)?) as i64 * 100,
        5 | 6 => be(take(data, p, 3)?) as i64,
        _ => 0,
    })
}

/// Days since the epoch of a calendar date, `None` for zero or partial-zero dates.
pub fn date_value(y: i64, m: i64, d: i64) -> Option<i64> {
    if y == 0 || m == 0 || d == 0 || m > 12 || d > 31 {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Zero or partial-zero dates (`0000-00-00`, `2024-00-10`): NULL in a nullable column, the
/// epoch otherwise — Debezium's rule.
pub fn zero_date(nullable: bool, epoch: Datum<'static>) -> Datum<'static> {
    if nullable {
        Datum::Null
    } else {
        epoch
    }
}

/// The zoned-timestamp text of the epoch, what a NOT NULL zero TIMESTAMP becomes.
pub fn epoch_zoned() -> Datum<'static> {
    Datum::Str(Cow::Borrowed("1970-01-01T00:00:00Z"))
}

/// A DATETIME/DATE as Debezium's epoch milliseconds (`micros_mode`: microseconds) from its
/// calendar parts; zero dates follow [`zero_date`].
pub fn datetime_datum(
    nullable: bool,
    micros_mode: bool,
    (y, mo, d, h, mi, s, us): (i64, i64, i64, i64, i64, i64, i64),
) -> Datum<'static> {
    match date_value(y, mo, d) {
        None => zero_date(nullable, Datum::Int(0)),
        Some(days) => {
            let micros = days * MICROS_PER_DAY + ((h * 60 + mi) * 60 + s) * MICROS_PER_SEC + us;
            Datum::Int(if micros_mode {
                micros
            } else {
                micros.div_euclid(1000)
            })
        }
    }
}

fn text_datum<'a>(bytes: &'a [u8], text: Text) -> Result<Datum<'a>, ValueError> {
    Ok(match text {
        Text::Binary => Datum::Bytes(Cow::Borrowed(bytes)),
        Text::Utf8 => {
            Datum::Str(Cow::Borrowed(std::str::from_utf8(bytes).map_err(|e| {
                ValueError::Invalid(format!("text is not valid UTF-8: {e}"))
            })?))
        }
        Text::Cp1252 => Datum::Str(cp1252_to_utf8(bytes)),
    })
}

fn length_prefixed<'a>(data: &'a [u8], p: &mut usize, prefix: u8) -> Result<&'a [u8], ValueError> {
    let len = le(take(data, p, usize::from(prefix))?);
    let len = usize::try_from(len).map_err(|_| ValueError::Truncated)?;
    take(data, p, len)
}

fn decode_value<'a>(
    dec: &Dec,
    nullable: bool,
    data: &'a [u8],
    p: &mut usize,
) -> Result<Datum<'a>, ValueError> {
    Ok(match dec {
        Dec::Int {
            bytes,
            unsigned,
            precise,
        } => {
            let raw = le(take(data, p, usize::from(*bytes))?);
            if *precise {
                let (unscaled, _) = unsigned_decimal_bytes(raw);
                return Ok(Datum::Decimal {
                    unscaled: Cow::Owned(unscaled),
                    scale: 0,
                });
            }
            // bigint.unsigned.handling.mode=long: u64 above i64::MAX wraps, as in Debezium
            Datum::Int(if *unsigned {
                raw as i64
            } else {
                sign_extend(raw, *bytes)
            })
        }
        Dec::Float => {
            let b = take(data, p, 4)?;
            Datum::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        Dec::Double => {
            let b = take(data, p, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Datum::Float(f64::from_le_bytes(a))
        }
        Dec::Decimal { precision, scale } => {
            let len = decimal_bin_size(*precision, *scale);
            let b = take(data, p, len)?;
            let unscaled = decode_binary_decimal(b, *precision, *scale)
                .ok_or_else(|| ValueError::Invalid("malformed binary DECIMAL".into()))?;
            Datum::Decimal {
                unscaled: Cow::Owned(unscaled),
                scale: u32::from(*scale),
            }
        }
        Dec::Year => {
            let y = take(data, p, 1)?[0];
            Datum::Int(if y == 0 { 0 } else { 1900 + i64::from(y) })
        }
        Dec::Date => {
            let v = le(take(data, p, 3)?) as i64;
            match date_value(v >> 9, (v >> 5) & 15, v & 31) {
                Some(days) => Datum::Int(days),
                None => zero_date(nullable, Datum::Int(0)),
            }
        }
        Dec::TimeOld => {
            let v = sign_extend(le(take(data, p, 3)?), 3);
            let (neg, v) = (v < 0, v.abs());
            let micros = ((v / 10_000) * 3600 + (v / 100 % 100) * 60 + v % 100) * MICROS_PER_SEC;
            Datum::Int(if neg { -micros } else { micros })
        }
        Dec::Time2 { fsp } => Datum::Int(time2_micros(data, p, *fsp)?),
        Dec::DatetimeOld { micros } => {
            let v = le(take(data, p, 8)?) as i64;
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            datetime_datum(
                nullable,
                *micros,
                (
                    date / 10_000,
                    date / 100 % 100,
                    date % 100,
                    time / 10_000,
                    time / 100 % 100,
                    time % 100,
                    0,
                ),
            )
        }
        Dec::Datetime2 { fsp, micros } => {
            let int = be(take(data, p, 5)?) as i64 - 0x80_0000_0000;
            let us = frac_micros(data, p, *fsp)?;
            if int < 0 {
                return Err(ValueError::Invalid("negative DATETIME".into()));
            }
            let ymd = int >> 17;
            let ym = ymd >> 5;
            let hms = int & 0x1ffff;
            datetime_datum(
                nullable,
                *micros,
                (
                    ym / 13,
                    ym % 13,
                    ymd & 31,
                    hms >> 12,
                    (hms >> 6) & 63,
                    hms & 63,
                    us,
                ),
            )
        }
        Dec::TimestampOld => {
            let secs = le(take(data, p, 4)?) as i64;
            zoned(nullable, secs, 0)
        }
        Dec::Timestamp2 { fsp } => {
            let secs = be(take(data, p, 4)?) as i64;
            let us = frac_micros(data, p, *fsp)?;
            zoned(nullable, secs, us)
        }
        Dec::Bit { len, as_bool } => {
            let b = take(data, p, usize::from(*len))?;
            if *as_bool {
                Datum::Bool(b.iter().any(|&x| x != 0))
            } else {
                // big-endian in the binlog; Debezium's Bits are little-endian, sized to the
                // declared length
                Datum::Bytes(Cow::Owned(b.iter().rev().copied().collect()))
            }
        }
        Dec::Enum { width, labels } => {
            let idx = le(take(data, p, usize::from(*width))?) as usize;
            // index 0 is the error value '' MySQL stores for invalid input
            match idx.checked_sub(1).and_then(|i| labels.get(i)) {
                Some(l) => Datum::Str(Cow::Owned(l.clone())),
                None if idx == 0 => Datum::Str(Cow::Borrowed("")),
                None => {
                    return Err(ValueError::Invalid(format!(
                        "ENUM index {idx} but {} labels are known",
                        labels.len()
                    )))
                }
            }
        }
        Dec::Set { width, labels } => {
            let bits = le(take(data, p, usize::from(*width))?);
            if labels.len() < 64 && bits >> labels.len() != 0 {
                return Err(ValueError::Invalid(format!(
                    "SET bits {bits:#x} but {} labels are known",
                    labels.len()
                )));
            }
            let mut s = String::new();
            for (i, l) in labels.iter().enumerate().take(64) {
                if bits & (1 << i) != 0 {
                    if !s.is_empty() {
                        s.push(',');
                    }
                    s.push_str(l);
                }
            }
            Datum::Str(Cow::Owned(s))
        }
        Dec::Str { prefix, text, pad } => {
            let b = length_prefixed(data, p, *prefix)?;
            if *pad > b.len() {
                let mut v = b.to_vec();
                v.resize(*pad, 0);
                Datum::Bytes(Cow::Owned(v))
            } else {
                text_datum(b, *text)?
            }
        }
        Dec::Blob { prefix, text } => text_datum(length_prefixed(data, p, *prefix)?, *text)?,
        Dec::Json { prefix } => {
            let b = length_prefixed(data, p, *prefix)?;
            Datum::Str(Cow::Owned(
                json::to_text(b).map_err(|e| ValueError::Invalid(format!("binary JSON: {e}")))?,
            ))
        }
        Dec::Geometry { prefix } => {
            let b = length_prefixed(data, p, *prefix)?;
            geometry(b)?
        }
        // the fallback type is a string: hex keeps it one
        Dec::RawBlob { prefix } => Datum::Str(Cow::Owned(hex(length_prefixed(data, p, *prefix)?))),
        Dec::Fixed { kind, len } => {
            let b = length_prefixed(data, p, 1)?;
            if b.len() > usize::from(*len) {
                return Err(ValueError::Invalid(format!(
                    "{} bytes for a {len}-byte value",
                    b.len()
                )));
            }
            let mut v = [0u8; 16];
            v[..b.len()].copy_from_slice(b);
            Datum::Str(Cow::Owned(match kind {
                FixedText::Inet4 => std::net::Ipv4Addr::new(v[0], v[1], v[2], v[3]).to_string(),
                FixedText::Inet6 => std::net::Ipv6Addr::from(v).to_string(),
                FixedText::Uuid => {
                    let h = hex(&v);
                    format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    )
                }
            }))
        }
        Dec::Hex { prefix } => Datum::Str(Cow::Owned(hex(length_prefixed(data, p, *prefix)?))),
    })
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A GEOMETRY value (4-byte SRID, then WKB) as a [`Datum::Geometry`]; `None` when it is
/// shorter than its SRID.
pub fn geometry_datum(b: &[u8]) -> Option<Datum<'_>> {
    geometry(b).ok()
}

fn geometry(b: &[u8]) -> Result<Datum<'_>, ValueError> {
    if b.len() < 4 {
        return Err(ValueError::Invalid(
            "GEOMETRY value shorter than its SRID".into(),
        ));
    }
    let srid = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    // SRID 0 ("no reference system", MySQL's default) is a null srid, as Debezium writes it
    Ok(Datum::Geometry {
        wkb: Cow::Borrowed(&b[4..]),
        srid: (srid != 0).then_some(srid as i32),
    })
}

/// A TIMESTAMP (seconds and microseconds since the epoch) as Debezium's ISO-8601 UTC text;
/// the zero timestamp follows [`zero_date`].
pub fn zoned(nullable: bool, secs: i64, us: i64) -> Datum<'static> {
    if secs == 0 && us == 0 {
        return zero_date(nullable, epoch_zoned());
    }
    match format_zoned(secs * MICROS_PER_SEC + us) {
        Some(s) => Datum::Str(Cow::Owned(s)),
        None => zero_date(nullable, epoch_zoned()),
    }
}

/// TIME2: packed `sign | hour(10) minute(6) second(6)` big-endian, offset by 0x800000, then the
/// fraction; negative values are stored so that the whole packed number sorts.
fn time2_micros(data: &[u8], p: &mut usize, fsp: u8) -> Result<i64, ValueError> {
    const INT_OFS: i64 = 0x80_0000;
    let packed: i64 = match fsp {
        1 | 2 => {
            let mut int = be(take(data, p, 3)?) as i64 - INT_OFS;
            let mut frac = i64::from(take(data, p, 1)?[0]);
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = be(take(data, p, 3)?) as i64 - INT_OFS;
            let f = take(data, p, 2)?;
            let mut frac = i64::from(u16::from_be_bytes([f[0], f[1]]));
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x10000;
            }
            (int << 24) + frac * 100
        }
        5 | 6 => be(take(data, p, 6)?) as i64 - 0x8000_0000_0000,
        _ => (be(take(data, p, 3)?) as i64 - INT_OFS) << 24,
    };
    let neg = packed < 0;
    let a = packed.abs();
    let int = a >> 24;
    let us = a % (1 << 24);
    let h = (int >> 12) & 0x3ff;
    let m = (int >> 6) & 0x3f;
    let s = int & 0x3f;
    let micros = ((h * 60 + m) * 60 + s) * MICROS_PER_SEC + us;
    Ok(if neg { -micros } else { micros })
}

/// ISO-8601 UTC as Debezium's ZonedTimestamp prints it (Java's `ISO_OFFSET_DATE_TIME`:
/// fraction without trailing zeros, omitted when zero).
pub fn format_zoned(micros: i64) -> Option<String> {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let tod = micros.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut s = format!("{y:04}-{m:02}-{d:02}T");
    push_time_of_day(&mut s, tod, false);
    s.push('Z');
    Some(s)
}

/// `HH:MM:SS` plus the fraction: trimmed (`fixed6 = false`) or always six digits.
fn push_time_of_day(s: &mut String, micros: i64, fixed6: bool) {
    use std::fmt::Write as _;
    let secs = micros / MICROS_PER_SEC;
    let frac = micros % MICROS_PER_SEC;
    let _ = write!(
        s,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if fixed6 {
        let _ = write!(s, ".{frac:06}");
    } else if frac != 0 {
        let digits = format!("{frac:06}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
}

// ---------------------------------------------------------------------------------------
// decimals

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes of a binary DECIMAL(precision, scale).
fn decimal_bin_size(precision: u8, scale: u8) -> usize {
    let intg = usize::from(precision.saturating_sub(scale));
    let frac = usize::from(scale);
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (frac / 9) * 4 + DIG2BYTES[frac % 9]
}

/// A 256-bit magnitude as eight 32-bit limbs, least significant first: room for 65 digits.
#[derive(Default)]
struct Mag([u32; 8]);

impl Mag {
    /// `self = self * mul + add`; false on overflow.
    fn mul_add(&mut self, mul: u32, add: u32) -> bool {
        let mut carry = u64::from(add);
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(mul) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        carry == 0
    }

    /// Minimal big-endian two's complement bytes of `±self`, as Java's
    /// `BigInteger.toByteArray()` (what Connect's Decimal carries).
    fn to_twos_complement(&self, negative: bool) -> Vec<u8> {
        let mut be = [0u8; 33];
        for (i, limb) in self.0.iter().enumerate() {
            let at = 33 - 4 * (i + 1);
            be[at..at + 4].copy_from_slice(&limb.to_be_bytes());
        }
        if negative && self.0.iter().any(|&l| l != 0) {
            // two's complement: invert and add one
            let mut carry = true;
            for b in be.iter_mut().rev() {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        minimal_twos_complement(&be)
    }
}

/// Drops redundant sign bytes.
fn minimal_twos_complement(b: &[u8]) -> Vec<u8> {
    let mut i = 0;
    while i + 1 < b.len()
        && ((b[i] == 0 && b[i + 1] & 0x80 == 0) || (b[i] == 0xff && b[i + 1] & 0x80 != 0))
    {
        i += 1;
    }
    b[i..].to_vec()
}

/// A u64 as Connect Decimal bytes (BIGINT UNSIGNED in `precise` mode).
fn unsigned_decimal_bytes(v: u64) -> (Vec<u8>, u32) {
    let mut b = [0u8; 9];
    b[1..].copy_from_slice(&v.to_be_bytes());
    (minimal_twos_complement(&b), 0)
}

/// MySQL's binary DECIMAL → unscaled two's complement bytes. The format: groups of nine
/// digits in 4 big-endian bytes, a shorter leading integer group and trailing fraction group,
/// the sign in the top bit of the first byte (set = positive), negative values bit-inverted.
fn decode_binary_decimal(b: &[u8], precision: u8, scale: u8) -> Option<Vec<u8>> {
    if b.is_empty() {
        return None;
    }
    let negative = b[0] & 0x80 == 0;
    let mask = if negative { 0xff } else { 0 };
    let intg = usize::from(precision.saturating_sub(scale));
    let frac = usize::from(scale);
    // (bytes, digits) of each group in order
    let mut groups: [(usize, u32); 16] = [(0, 0); 16];
    let mut ng = 0;
    let mut push = |bytes: usize, digits: u32| {
        if bytes > 0 && ng < groups.len() {
            groups[ng] = (bytes, digits);
            ng += 1;
        }
    };
    push(DIG2BYTES[intg % 9], (intg % 9) as u32);
    for _ in 0..intg / 9 {
        push(4, 9);
    }
    for _ in 0..frac / 9 {
        push(4, 9);
    }
    push(DIG2BYTES[frac % 9], (frac % 9) as u32);
    let mut mag = Mag::default();
    let mut at = 0;
    for (i, &(bytes, digits)) in groups[..ng].iter().enumerate() {
        let chunk = b.get(at..at + bytes)?;
        at += bytes;
        let mut v = 0u32;
        for (j, &byte) in chunk.iter().enumerate() {
            let mut byte = byte ^ mask;
            if i == 0 && j == 0 {
                byte ^= 0x80;
            }
            v = (v << 8) | u32::from(byte);
        }
        if v >= 10u32.pow(digits) {
            return None;
        }
        if !mag.mul_add(10u32.pow(digits), v) {
            return None;
        }
    }
    Some(mag.to_twos_complement(negative))
}

/// A decimal's text (`-123.4500`) → unscaled bytes at `scale` (rounding is never needed: the
/// server prints exactly `scale` fraction digits; extra digits are an error).
pub fn decimal_text_to_unscaled(s: &str, scale: u32) -> Option<Vec<u8>> {
    let s = s.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if frac.len() > scale as usize {
        return None;
    }
    let mut mag = Mag::default();
    let digits = int
        .bytes()
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', scale as usize - frac.len()));
    for c in digits {
        if !c.is_ascii_digit() || !mag.mul_add(10, u32::from(c - b'0')) {
            return None;
        }
    }
    Some(mag.to_twos_complement(negative))
}

// ---------------------------------------------------------------------------------------
// snapshot

/// A snapshot value of `col` the decoder cannot convert (`reason` says why).
pub fn snap_err(col: &ColumnDef, reason: impl Into<String>) -> DecodeError {
    DecodeError::Value {
        table: String::from("(snapshot)"),
        column: col.name.clone(),
        reason: reason.into(),
    }
}

/// An integer in the server's text form.
pub fn parse_int_text(b: &[u8]) -> Option<i128> {
    std::str::from_utf8(b).ok()?.trim().parse().ok()
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` → parts.
pub fn parse_datetime_text(s: &str) -> Option<(i64, i64, i64, i64, i64, i64, i64)> {
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = date.splitn(3, '-');
    let y = dp.next()?.parse().ok()?;
    let mo = dp.next()?.parse().ok()?;
    let d = dp.next()?.parse().ok()?;
    let (h, mi, sec, us) = match time {
        Some(t) => {
            let (neg, micros) = parse_time_text(t)?;
            if neg {
                return None;
            }
            let secs = micros / MICROS_PER_SEC;
            (
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                micros % MICROS_PER_SEC,
            )
        }
        None => (0, 0, 0, 0),
    };
    Some((y, mo, d, h, mi, sec, us))
}

/// `[-]HHH:MM:SS[.ffffff]` → (negative, microseconds magnitude).
pub fn parse_time_text(s: &str) -> Option<(bool, i64)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.splitn(3, ':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let sec: i64 = it.next()?.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let us: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    Some((neg, ((h * 60 + m) * 60 + sec) * MICROS_PER_SEC + us))
}

// ---------------------------------------------------------------------------------------
// table definitions from FULL metadata

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

// ---------------------------------------------------------------------------------------
// whole rows events and streams

impl RowLayout {
    /// Decodes every row image of a rows event, calling `f` with the before and after image
    /// of each row (`None` where the kind has none). `buf` is reused between rows.
    pub fn for_each_row<'a>(
        &self,
        ev: &RowsEventView<'a>,
        buf: &mut Vec<Datum<'a>>,
        mut f: impl FnMut(Option<&[Datum<'a>]>, Option<&[Datum<'a>]>),
    ) -> Result<usize, DecodeError> {
        if ev.column_count != self.cols.len() {
            return Err(DecodeError::SchemaMismatch {
                table: self.table.clone(),
                detail: format!(
                    "rows event has {} columns, the table map {}",
                    ev.column_count,
                    self.cols.len()
                ),
            });
        }
        let mut pos = 0;
        let mut rows = 0;
        while pos < ev.rows.len() {
            buf.clear();
            match ev.kind {
                RowsKind::Write => {
                    self.decode_row(ev.rows, &mut pos, ev.present_after, buf)?;
                    f(None, Some(buf));
                }
                RowsKind::Delete => {
                    self.decode_row(ev.rows, &mut pos, ev.present_before, buf)?;
                    f(Some(buf), None);
                }
                RowsKind::Update => {
                    self.decode_row(ev.rows, &mut pos, ev.present_before, buf)?;
                    let split = buf.len();
                    self.decode_row(ev.rows, &mut pos, ev.present_after, buf)?;
                    let (before, after) = buf.split_at(split);
                    f(Some(before), Some(after));
                }
            }
            rows += 1;
        }
        Ok(rows)
    }
}

/// Decodes every row of a binlog file or captured run of events whose table maps carry
/// column names (`binlog_row_metadata = FULL`), calling `f(table map, before, after)` per row;
/// returns the number of rows. Used by the fuzz target, the decoder tests on captured bytes,
/// and as the decode-only reference of the benchmark. Rows of tables whose map has no names
/// are skipped.
pub fn decode_stream(
    stream: &[u8],
    opts: &TypeOptions,
    mut f: impl FnMut(&TableMapInfo, Option<&[Datum<'_>]>, Option<&[Datum<'_>]>),
) -> Result<usize, DecodeError> {
    use super::events::{
        event_type as et, EventSplitter, Flavor, MariadbGtidEvent, MariadbGtidList, MysqlGtidEvent,
    };
    use std::collections::HashMap;
    let mut maps: HashMap<u64, (TableMapInfo, Option<RowLayout>)> = HashMap::new();
    let mut rows = 0;
    let mut buf = Vec::new();
    let mut flavor = Flavor::MySql;
    for ev in EventSplitter::new(stream, true) {
        let ev = ev?;
        super::events::check_supported(ev.event_type)?;
        match ev.event_type {
            et::FORMAT_DESCRIPTION => flavor = Flavor::from_format_description(ev.body),
            et::TABLE_MAP => {
                let map = TableMapInfo::parse(ev.body, flavor)?;
                let layout = match table_def_from_map(&map.database, &map.table, &map) {
                    Some(def) => Some(RowLayout::new(&def, &map, opts)?),
                    None => None,
                };
                maps.insert(map.table_id, (map, layout));
            }
            et::MARIADB_GTID => {
                MariadbGtidEvent::parse(ev.body, ev.server_id)?;
            }
            et::MARIADB_GTID_LIST => {
                MariadbGtidList::parse(ev.body)?;
            }
            et::MARIADB_BINLOG_CHECKPOINT => {
                super::events::parse_binlog_checkpoint(ev.body)?;
            }
            et::MYSQL_GTID => {
                MysqlGtidEvent::parse(ev.body)?;
            }
            t if RowsEventView::kind_of(t).is_some() => {
                let view = RowsEventView::parse(t, ev.body)?;
                let Some((map, Some(layout))) = maps.get(&view.table_id) else {
                    continue;
                };
                rows += layout.for_each_row(&view, &mut buf, |b, a| f(map, b, a))?;
            }
            _ => {}
        }
    }
    Ok(rows)
}

/// Feeds arbitrary bytes to every parser of this layer; the `binlog` fuzz target and the
/// corpus replay test call it. Must never panic.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    use super::events::{
        parse_annotate_rows, parse_binlog_checkpoint, EventSplitter, Flavor, MariadbGtidEvent,
        MariadbGtidList, MysqlGtidEvent,
    };
    let opts = TypeOptions::default();
    // as a binlog file or run of events
    let _ = decode_stream(data, &opts, |_, _, _| {});
    // every event body through every parser, with the last table map used for rows events
    let mut layout: Option<RowLayout> = None;
    let mut buf = Vec::new();
    for ev in EventSplitter::new(data, false)
        .without_verification()
        .take(64)
    {
        let Ok(ev) = ev else { break };
        let body = ev.body;
        let _ = MariadbGtidEvent::parse(body, ev.server_id);
        let _ = MariadbGtidList::parse(body);
        let _ = parse_binlog_checkpoint(body);
        let _ = parse_annotate_rows(body);
        let _ = MysqlGtidEvent::parse(body).map(|g| g.gtid());
        for flavor in [Flavor::MySql, Flavor::MariaDb] {
            if let Ok(map) = TableMapInfo::parse(body, flavor) {
                if let Some(def) = table_def_from_map("db", "t", &map) {
                    let _ = table_schema(&def, &opts);
                    if let Ok(l) = RowLayout::new(&def, &map, &opts) {
                        layout = Some(l);
                    }
                }
            }
        }
        for t in [23u8, 24, 25, 30, 31, 32] {
            if let (Ok(view), Some(l)) = (RowsEventView::parse(t, body), &layout) {
                let _ = l.for_each_row(&view, &mut buf, |_, _| {});
            }
        }
    }
    // as a binary JSON document
    let _ = json::to_text(data);
}

#[cfg(test)]
mod tests;
