//! PostgreSQL column types: which Connect/Debezium type a column gets, and how pgoutput's
//! text values become [`Datum`]s of that type.
//!
//! The mapping follows the Debezium 3.x PostgreSQL connector with its defaults
//! (`time.precision.mode=adaptive`, `decimal.handling.mode=precise`,
//! `interval.handling.mode=numeric`, `hstore.handling.mode=json`, `binary.handling.mode=bytes`,
//! `money.fraction.digits=2`), because the point of the agent is that Debezium consumers read
//! its events unchanged. `docs/postgres-types.md` lists every type with examples and the rules
//! for values the mapping cannot hold.
//!
//! pgoutput sends values in their text output form, which depends on session settings of the
//! replication connection (and of the snapshot connection, which must read the same text).
//! Both must be opened with:
//!
//! ```text
//! options=-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601
//!         -c extra_float_digits=3 -c bytea_output=hex -c lc_monetary=C
//! ```
//!
//! `DateStyle=ISO` gives `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]`; `TimeZone=UTC`
//! makes `timestamptz` text carry `+00` (other offsets are still converted correctly);
//! `IntervalStyle=iso_8601` gives `P1Y2M3DT4H5M6.5S` (the default `postgres` style is parsed
//! too); `extra_float_digits` ≥ 1 (the default since PostgreSQL 12) makes float text round-trip
//! exactly; `lc_monetary=C` makes money `$1,234.56` / `-$1,234.56`. The database encoding must
//! be UTF-8: text that is not valid UTF-8 is a [`TypeError`].
//!
//! Decoding is done by a [`PgColumnDecoder`] built once per column from the [`TypeCatalog`],
//! so the per-value work is one match and the parse; strings and other text-shaped values
//! borrow from the receive buffer.

#![warn(missing_docs)]

use std::borrow::Cow;
use std::collections::HashMap;

use crate::civil::{civil_from_days, days_from_civil, days_in_month};
use crate::event::{ColumnType, Datum};
use crate::json::json_string;

/// Oids of the built-in types this module knows without a catalog row (stable across
/// PostgreSQL versions: they are fixed in `pg_type.dat`).
pub mod oid {
    /// `bool`.
    pub const BOOL: u32 = 16;
    /// `bytea`.
    pub const BYTEA: u32 = 17;
    /// `"char"`.
    pub const CHAR: u32 = 18;
    /// `name`.
    pub const NAME: u32 = 19;
    /// `int8`.
    pub const INT8: u32 = 20;
    /// `int2`.
    pub const INT2: u32 = 21;
    /// `int4`.
    pub const INT4: u32 = 23;
    /// `text`.
    pub const TEXT: u32 = 25;
    /// `oid`.
    pub const OID: u32 = 26;
    /// `json`.
    pub const JSON: u32 = 114;
    /// `xml`.
    pub const XML: u32 = 142;
    /// `cidr`.
    pub const CIDR: u32 = 650;
    /// `float4`.
    pub const FLOAT4: u32 = 700;
    /// `float8`.
    pub const FLOAT8: u32 = 701;
    /// `macaddr8`.
    pub const MACADDR8: u32 = 774;
    /// `money`.
    pub const MONEY: u32 = 790;
    /// `macaddr`.
    pub const MACADDR: u32 = 829;
    /// `inet`.
    pub const INET: u32 = 869;
    /// `bpchar`.
    pub const BPCHAR: u32 = 1042;
    /// `varchar`.
    pub const VARCHAR: u32 = 1043;
    /// `date`.
    pub const DATE: u32 = 1082;
    /// `time`.
    pub const TIME: u32 = 1083;
    /// `timestamp`.
    pub const TIMESTAMP: u32 = 1114;
    /// `timestamptz`.
    pub const TIMESTAMPTZ: u32 = 1184;
    /// `interval`.
    pub const INTERVAL: u32 = 1186;
    /// `timetz`.
    pub const TIMETZ: u32 = 1266;
    /// `bit`.
    pub const BIT: u32 = 1560;
    /// `varbit`.
    pub const VARBIT: u32 = 1562;
    /// `numeric`.
    pub const NUMERIC: u32 = 1700;
    /// `uuid`.
    pub const UUID: u32 = 2950;
    /// `tsvector`.
    pub const TSVECTOR: u32 = 3614;
    /// `jsonb`.
    pub const JSONB: u32 = 3802;
    /// `int4range`.
    pub const INT4RANGE: u32 = 3904;
    /// `numrange`.
    pub const NUMRANGE: u32 = 3906;
    /// `tsrange`.
    pub const TSRANGE: u32 = 3908;
    /// `tstzrange`.
    pub const TSTZRANGE: u32 = 3910;
    /// `daterange`.
    pub const DATERANGE: u32 = 3912;
    /// `int8range`.
    pub const INT8RANGE: u32 = 3926;
    /// `box`.
    pub const BOX: u32 = 603;
    /// `point`.
    pub const POINT: u32 = 600;
}

/// Built-in array types: (array oid, element oid, array name, element delimiter).
const BUILTIN_ARRAYS: &[(u32, u32, &str, u8)] = &[
    (1000, oid::BOOL, "_bool", b','),
    (1001, oid::BYTEA, "_bytea", b','),
    (1002, oid::CHAR, "_char", b','),
    (1003, oid::NAME, "_name", b','),
    (1005, oid::INT2, "_int2", b','),
    (1007, oid::INT4, "_int4", b','),
    (1009, oid::TEXT, "_text", b','),
    (1014, oid::BPCHAR, "_bpchar", b','),
    (1015, oid::VARCHAR, "_varchar", b','),
    (1016, oid::INT8, "_int8", b','),
    (1017, oid::POINT, "_point", b','),
    (1020, oid::BOX, "_box", b';'),
    (1021, oid::FLOAT4, "_float4", b','),
    (1022, oid::FLOAT8, "_float8", b','),
    (1028, oid::OID, "_oid", b','),
    (1040, oid::MACADDR, "_macaddr", b','),
    (1041, oid::INET, "_inet", b','),
    (1115, oid::TIMESTAMP, "_timestamp", b','),
    (1182, oid::DATE, "_date", b','),
    (1183, oid::TIME, "_time", b','),
    (1185, oid::TIMESTAMPTZ, "_timestamptz", b','),
    (1187, oid::INTERVAL, "_interval", b','),
    (1231, oid::NUMERIC, "_numeric", b','),
    (1270, oid::TIMETZ, "_timetz", b','),
    (1561, oid::BIT, "_bit", b','),
    (1563, oid::VARBIT, "_varbit", b','),
    (143, oid::XML, "_xml", b','),
    (199, oid::JSON, "_json", b','),
    (651, oid::CIDR, "_cidr", b','),
    (775, oid::MACADDR8, "_macaddr8", b','),
    (791, oid::MONEY, "_money", b','),
    (2951, oid::UUID, "_uuid", b','),
    (3643, oid::TSVECTOR, "_tsvector", b','),
    (3807, oid::JSONB, "_jsonb", b','),
    (3905, oid::INT4RANGE, "_int4range", b','),
    (3907, oid::NUMRANGE, "_numrange", b','),
    (3909, oid::TSRANGE, "_tsrange", b','),
    (3911, oid::TSTZRANGE, "_tstzrange", b','),
    (3913, oid::DATERANGE, "_daterange", b','),
    (3927, oid::INT8RANGE, "_int8range", b','),
];

/// One row of the agent's catalog query (`CATALOG_QUERY` in `cdc_agent::source::postgres::types`),
/// as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRow {
    /// `pg_type.oid`.
    pub oid: u32,
    /// `typname`.
    pub name: String,
    /// `nspname` of the type's schema.
    pub schema: String,
    /// `typtype`: `b` base, `c` composite, `d` domain, `e` enum, `p` pseudo, `r` range,
    /// `m` multirange.
    pub typtype: String,
    /// `typcategory`: `A` marks arrays (some base types such as `point` also have a
    /// `typelem` but are not arrays).
    pub category: String,
    /// `typelem`.
    pub elem: u32,
    /// `typbasetype` (domains).
    pub base: u32,
    /// `typtypmod` (domains: the modifier of the base type, e.g. `numeric(10,2)`).
    pub typmod: i32,
    /// `typdelim`: separator of this type's values inside array text.
    pub delimiter: String,
    /// Enum labels in sort order (empty for other types).
    pub enum_labels: Vec<String>,
}

/// What kind of type a catalog entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTypeKind {
    /// A base (scalar) type, built-in or from an extension (`hstore`, `ltree`, `citext`, …).
    Base,
    /// An enum with its labels in sort order.
    Enum(Vec<String>),
    /// A domain over `base`; `typmod` applies when the column itself has none.
    Domain {
        /// Base type oid.
        base: u32,
        /// The domain's type modifier (-1 if none).
        typmod: i32,
    },
    /// An array of `elem`.
    Array {
        /// Element type oid.
        elem: u32,
    },
    /// A composite (row) type.
    Composite,
    /// A range type.
    Range,
    /// A multirange type (PostgreSQL 14+).
    Multirange,
    /// A pseudo-type.
    Pseudo,
}

/// One `pg_type` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgType {
    /// Type oid.
    pub oid: u32,
    /// `typname`.
    pub name: String,
    /// Schema of the type.
    pub schema: String,
    /// Kind and kind-specific data.
    pub kind: PgTypeKind,
    /// Separator of this type's values inside array text (`,` for almost all types).
    pub delimiter: u8,
}

impl From<CatalogRow> for PgType {
    fn from(row: CatalogRow) -> Self {
        let kind = match row.typtype.as_str() {
            "e" => PgTypeKind::Enum(row.enum_labels),
            "d" => PgTypeKind::Domain {
                base: row.base,
                typmod: row.typmod,
            },
            "c" => PgTypeKind::Composite,
            "r" => PgTypeKind::Range,
            "m" => PgTypeKind::Multirange,
            "p" => PgTypeKind::Pseudo,
            _ if row.category == "A" && row.elem != 0 => PgTypeKind::Array { elem: row.elem },
            _ => PgTypeKind::Base,
        };
        PgType {
            oid: row.oid,
            name: row.name,
            schema: row.schema,
            kind,
            delimiter: row.delimiter.bytes().next().unwrap_or(b','),
        }
    }
}

/// The `pg_type` entries the source has loaded, by oid.
#[derive(Debug, Clone, Default)]
pub struct TypeCatalog {
    types: HashMap<u32, PgType>,
}

impl TypeCatalog {
    /// An empty catalog (built-in types still resolve).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an entry (replace after `ALTER TYPE … ADD VALUE`, a pgoutput Type
    /// message, or a reconnect).
    pub fn insert(&mut self, ty: PgType) {
        self.types.insert(ty.oid, ty);
    }

    /// Adds or replaces the entry of one catalog query row.
    pub fn insert_row(&mut self, row: CatalogRow) {
        self.insert(PgType::from(row));
    }

    /// The entry for `oid`, if loaded.
    pub fn get(&self, oid: u32) -> Option<&PgType> {
        self.types.get(&oid)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether no entries are loaded.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// Why a text value could not be turned into a [`Datum`]. Values themselves are never part of
/// the message, so errors can be logged without leaking row data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// The bytes are not UTF-8 (the database encoding must be UTF8).
    #[error("{type_name} value ({len} bytes) is not valid UTF-8")]
    InvalidUtf8 {
        /// Source type.
        type_name: &'static str,
        /// Length of the value.
        len: usize,
    },
    /// The text is not in the output format this parser expects (see the module docs for the
    /// session settings).
    #[error("{type_name} value ({len} bytes) is malformed: {reason}")]
    Malformed {
        /// Source type.
        type_name: &'static str,
        /// Length of the value.
        len: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A timestamp whose microseconds since 1970 do not fit Connect's int64 (after 294247 AD),
    /// in a non-optional column.
    #[error(
        "{type_name} value is beyond the int64 microsecond range and the column is not optional"
    )]
    OutOfRange {
        /// Source type.
        type_name: &'static str,
    },
    /// A value the Debezium mapping cannot hold in a non-optional column (`NaN` or
    /// `±Infinity` in a numeric column, which Debezium's precise decimal mode rejects too).
    #[error(
        "{type_name} special value {value} cannot be represented and the column is not optional"
    )]
    Unrepresentable {
        /// Source type.
        type_name: &'static str,
        /// `NaN`, `Infinity` or `-Infinity`.
        value: &'static str,
    },
}

/// `date 'infinity'`: the epoch day of +5877611-06-21, Debezium's positive-infinity date.
pub const DATE_POSITIVE_INFINITY_DAYS: i64 = 2_146_033_979;
/// `date '-infinity'`: the epoch day of -5877611-06-22, Debezium's negative-infinity date.
pub const DATE_NEGATIVE_INFINITY_DAYS: i64 = -2_147_472_691;
/// `timestamp 'infinity'` as `MicroTimestamp`: pgjdbc's `DATE_POSITIVE_INFINITY` read as
/// microseconds, as Debezium 3.x emits it.
pub const TIMESTAMP_POSITIVE_INFINITY_MICROS: i64 = 9_223_372_036_825_200_000;
/// `timestamp '-infinity'` as `MicroTimestamp`.
pub const TIMESTAMP_NEGATIVE_INFINITY_MICROS: i64 = -9_223_372_036_832_400_000;
/// `timestamp(0..3) 'infinity'` as `Timestamp` (milliseconds).
pub const TIMESTAMP_POSITIVE_INFINITY_MILLIS: i64 = 9_223_372_036_825_200;
/// `timestamp(0..3) '-infinity'` as `Timestamp` (milliseconds).
pub const TIMESTAMP_NEGATIVE_INFINITY_MILLIS: i64 = -9_223_372_036_832_400;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Debezium's `MicroDuration.DAYS_PER_MONTH_AVG`.
const DAYS_PER_MONTH_AVG: f64 = 365.25 / 12.0;
/// Nesting limit of array text (PostgreSQL allows 6 dimensions).
const MAX_ARRAY_DEPTH: usize = 32;
/// Limit of domain-over-domain / array-of-domain chains, against cyclic catalog data.
const MAX_TYPE_DEPTH: usize = 16;

/// The Connect type and source type name of a column of type `type_oid` with modifier
/// `typmod` (`atttypmod`, -1 for none), following Debezium 3.x's defaults. Types without a
/// Debezium mapping (composites, geometric types, unknown extension types, …) become
/// `String` holding the PostgreSQL text form.
pub fn column_type(catalog: &TypeCatalog, type_oid: u32, typmod: i32) -> (ColumnType, String) {
    let resolved = resolve(catalog, type_oid, typmod, 0);
    (resolved.ty, resolved.name)
}

/// Turns one column's pgoutput text values into datums. Build it once per column (on each
/// Relation message) and reuse it for every row.
#[derive(Debug, Clone, PartialEq)]
pub struct PgColumnDecoder {
    ty: ColumnType,
    source_type: String,
    dec: Dec,
    optional: bool,
}

impl PgColumnDecoder {
    /// A decoder for a column of `type_oid`/`typmod`; `optional` is the column's nullability,
    /// which decides whether values the mapping cannot hold become null or an error.
    pub fn new(catalog: &TypeCatalog, type_oid: u32, typmod: i32, optional: bool) -> Self {
        let resolved = resolve(catalog, type_oid, typmod, 0);
        Self {
            ty: resolved.ty,
            source_type: resolved.name,
            dec: resolved.dec,
            optional,
        }
    }

    /// The column's Connect type (the same as [`column_type`] gives).
    pub fn column_type(&self) -> &ColumnType {
        &self.ty
    }

    /// The column's PostgreSQL type name.
    pub fn source_type(&self) -> &str {
        &self.source_type
    }

    /// Parses one text value (pgoutput `'t'` column data; NULL and unchanged-TOAST markers
    /// are the caller's: `Datum::Null`, `Datum::Unchanged`).
    pub fn decode<'a>(&self, text: &'a [u8]) -> Result<Datum<'a>, TypeError> {
        self.dec.decode(text, self.optional)
    }
}

/// Result of resolving a type oid.
struct Resolved {
    ty: ColumnType,
    dec: Dec,
    name: String,
}

/// How a text value is parsed.
#[derive(Debug, Clone, PartialEq)]
enum Dec {
    Bool,
    /// `bit(1)`: `0`/`1` as a boolean.
    BitBool,
    Int {
        min: i64,
        max: i64,
        name: &'static str,
    },
    Float32,
    Float64,
    /// The text itself (strings, json, uuid, enums, network types, fallbacks).
    Text,
    Bytea,
    /// `Some(scale)`: fixed-scale Decimal; `None`: VariableScaleDecimal.
    Numeric(Option<u32>),
    Money,
    Date,
    Time {
        millis: bool,
    },
    Timestamp {
        millis: bool,
    },
    TimestampTz,
    TimeTz,
    Interval,
    Bits,
    Hstore,
    Array {
        elem: Box<Dec>,
        delimiter: u8,
    },
}

fn simple(ty: ColumnType, dec: Dec, name: &str) -> Resolved {
    Resolved {
        ty,
        dec,
        name: name.to_owned(),
    }
}

/// Fractional-second digits of a time/timestamp column: the typmod, or 6 when unset.
fn time_precision(typmod: i32) -> i32 {
    if typmod < 0 {
        6
    } else {
        typmod
    }
}

fn numeric(typmod: i32) -> (ColumnType, Dec) {
    if typmod < 4 {
        return (ColumnType::VariableScaleDecimal, Dec::Numeric(None));
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xFFFF;
    // PostgreSQL 15+ stores the scale as a signed 11-bit field.
    let scale = ((t & 0x7FF) ^ 1024) - 1024;
    if scale >= 0 {
        let scale = scale.unsigned_abs();
        (
            ColumnType::Decimal {
                precision: Some(precision.unsigned_abs()),
                scale,
            },
            Dec::Numeric(Some(scale)),
        )
    } else {
        // A negative scale rounds to tens, hundreds, …; the values are integers with up to
        // precision - scale digits, which Connect's Decimal holds with scale 0.
        (
            ColumnType::Decimal {
                precision: Some(precision.unsigned_abs() + scale.unsigned_abs()),
                scale: 0,
            },
            Dec::Numeric(Some(0)),
        )
    }
}

fn bits(typmod: i32, name: &str) -> Resolved {
    // Debezium: a declared length above 1 is Bits, bit(1) is a boolean. varbit without a
    // length gets the largest length Connect can express.
    let length = if typmod < 0 && name == "varbit" {
        i32::MAX
    } else {
        typmod
    };
    if length > 1 {
        simple(
            ColumnType::Bits {
                length: length.unsigned_abs(),
            },
            Dec::Bits,
            name,
        )
    } else {
        simple(ColumnType::Boolean, Dec::BitBool, name)
    }
}

fn resolve(catalog: &TypeCatalog, type_oid: u32, typmod: i32, depth: usize) -> Resolved {
    if let Some(r) = resolve_builtin(catalog, type_oid, typmod, depth) {
        return r;
    }
    let fallback = |name: String| Resolved {
        ty: ColumnType::String,
        dec: Dec::Text,
        name,
    };
    let Some(pg) = catalog.get(type_oid) else {
        return fallback(format!("oid:{type_oid}"));
    };
    if depth >= MAX_TYPE_DEPTH {
        return fallback(pg.name.clone());
    }
    match &pg.kind {
        PgTypeKind::Enum(labels) => Resolved {
            ty: ColumnType::Enum(labels.clone()),
            dec: Dec::Text,
            name: pg.name.clone(),
        },
        PgTypeKind::Domain {
            base,
            typmod: domain_typmod,
        } => {
            let typmod = if typmod >= 0 { typmod } else { *domain_typmod };
            let inner = resolve(catalog, *base, typmod, depth + 1);
            Resolved {
                name: pg.name.clone(),
                ..inner
            }
        }
        PgTypeKind::Array { elem } => {
            let delimiter = catalog
                .get(*elem)
                .map(|e| e.delimiter)
                .or_else(|| builtin_delimiter(*elem))
                .unwrap_or(b',');
            let inner = resolve(catalog, *elem, typmod, depth + 1);
            Resolved {
                ty: ColumnType::Array(Box::new(inner.ty)),
                dec: Dec::Array {
                    elem: Box::new(inner.dec),
                    delimiter,
                },
                name: pg.name.clone(),
            }
        }
        PgTypeKind::Base => match pg.name.as_str() {
            "hstore" => simple(ColumnType::Json, Dec::Hstore, "hstore"),
            "ltree" => simple(ColumnType::Ltree, Dec::Text, "ltree"),
            _ => fallback(pg.name.clone()),
        },
        PgTypeKind::Composite | PgTypeKind::Range | PgTypeKind::Multirange | PgTypeKind::Pseudo => {
            fallback(pg.name.clone())
        }
    }
}

fn builtin_delimiter(elem: u32) -> Option<u8> {
    if elem == oid::BOX {
        Some(b';')
    } else {
        None
    }
}

fn resolve_builtin(
    catalog: &TypeCatalog,
    type_oid: u32,
    typmod: i32,
    depth: usize,
) -> Option<Resolved> {
    let int = |min: i64, max: i64, name: &'static str| Dec::Int { min, max, name };
    let text = |ty: ColumnType, name: &str| simple(ty, Dec::Text, name);
    let r = match type_oid {
        oid::BOOL => simple(ColumnType::Boolean, Dec::Bool, "bool"),
        oid::INT2 => simple(
            ColumnType::Int16,
            int(i16::MIN.into(), i16::MAX.into(), "int2"),
            "int2",
        ),
        oid::INT4 => simple(
            ColumnType::Int32,
            int(i32::MIN.into(), i32::MAX.into(), "int4"),
            "int4",
        ),
        oid::INT8 => simple(ColumnType::Int64, int(i64::MIN, i64::MAX, "int8"), "int8"),
        oid::OID => simple(ColumnType::Int64, int(0, u32::MAX.into(), "oid"), "oid"),
        oid::FLOAT4 => simple(ColumnType::Float32, Dec::Float32, "float4"),
        oid::FLOAT8 => simple(ColumnType::Float64, Dec::Float64, "float8"),
        oid::TEXT => text(ColumnType::String, "text"),
        oid::VARCHAR => text(ColumnType::String, "varchar"),
        oid::BPCHAR => text(ColumnType::String, "bpchar"),
        oid::NAME => text(ColumnType::String, "name"),
        oid::CHAR => text(ColumnType::String, "char"),
        oid::BYTEA => simple(ColumnType::Bytes, Dec::Bytea, "bytea"),
        oid::NUMERIC => {
            let (ty, dec) = numeric(typmod);
            simple(ty, dec, "numeric")
        }
        oid::MONEY => simple(
            ColumnType::Decimal {
                precision: None,
                scale: 2,
            },
            Dec::Money,
            "money",
        ),
        oid::DATE => simple(ColumnType::Date, Dec::Date, "date"),
        oid::TIME => {
            if time_precision(typmod) <= 3 {
                simple(ColumnType::Time, Dec::Time { millis: true }, "time")
            } else {
                simple(ColumnType::MicroTime, Dec::Time { millis: false }, "time")
            }
        }
        oid::TIMESTAMP => {
            if time_precision(typmod) <= 3 {
                simple(
                    ColumnType::Timestamp,
                    Dec::Timestamp { millis: true },
                    "timestamp",
                )
            } else {
                simple(
                    ColumnType::MicroTimestamp,
                    Dec::Timestamp { millis: false },
                    "timestamp",
                )
            }
        }
        oid::TIMESTAMPTZ => simple(ColumnType::ZonedTimestamp, Dec::TimestampTz, "timestamptz"),
        oid::TIMETZ => simple(ColumnType::ZonedTime, Dec::TimeTz, "timetz"),
        oid::INTERVAL => simple(ColumnType::MicroDuration, Dec::Interval, "interval"),
        oid::JSON => text(ColumnType::Json, "json"),
        oid::JSONB => text(ColumnType::Json, "jsonb"),
        oid::UUID => text(ColumnType::Uuid, "uuid"),
        oid::XML => text(ColumnType::Xml, "xml"),
        oid::TSVECTOR => text(ColumnType::TsVector, "tsvector"),
        oid::INET => text(ColumnType::String, "inet"),
        oid::CIDR => text(ColumnType::String, "cidr"),
        oid::MACADDR => text(ColumnType::String, "macaddr"),
        oid::MACADDR8 => text(ColumnType::String, "macaddr8"),
        oid::INT4RANGE => text(ColumnType::String, "int4range"),
        oid::INT8RANGE => text(ColumnType::String, "int8range"),
        oid::NUMRANGE => text(ColumnType::String, "numrange"),
        oid::TSRANGE => text(ColumnType::String, "tsrange"),
        oid::TSTZRANGE => text(ColumnType::String, "tstzrange"),
        oid::DATERANGE => text(ColumnType::String, "daterange"),
        oid::BIT => bits(typmod, "bit"),
        oid::VARBIT => bits(typmod, "varbit"),
        _ => {
            let &(_, elem, name, delimiter) = BUILTIN_ARRAYS
                .iter()
                .find(|(array, ..)| *array == type_oid)?;
            let inner = resolve(catalog, elem, typmod, depth + 1);
            Resolved {
                ty: ColumnType::Array(Box::new(inner.ty)),
                dec: Dec::Array {
                    elem: Box::new(inner.dec),
                    delimiter,
                },
                name: name.to_owned(),
            }
        }
    };
    Some(r)
}

fn malformed(type_name: &'static str, text: &[u8], reason: &'static str) -> TypeError {
    TypeError::Malformed {
        type_name,
        len: text.len(),
        reason,
    }
}

fn utf8<'a>(type_name: &'static str, text: &'a [u8]) -> Result<&'a str, TypeError> {
    std::str::from_utf8(text).map_err(|_| TypeError::InvalidUtf8 {
        type_name,
        len: text.len(),
    })
}

impl Dec {
    fn decode<'a>(&self, text: &'a [u8], optional: bool) -> Result<Datum<'a>, TypeError> {
        match self {
            Dec::Bool => match text {
                b"t" | b"true" => Ok(Datum::Bool(true)),
                b"f" | b"false" => Ok(Datum::Bool(false)),
                _ => Err(malformed("bool", text, "expected t or f")),
            },
            Dec::BitBool => match text {
                b"1" => Ok(Datum::Bool(true)),
                b"0" => Ok(Datum::Bool(false)),
                _ => Err(malformed("bit", text, "expected 0 or 1")),
            },
            Dec::Int { min, max, name } => {
                let v: i64 = utf8(name, text)?
                    .parse()
                    .map_err(|_| malformed(name, text, "not an integer"))?;
                if v < *min || v > *max {
                    return Err(malformed(name, text, "integer out of range"));
                }
                Ok(Datum::Int(v))
            }
            Dec::Float32 => {
                let v = match text {
                    b"NaN" => f32::NAN,
                    b"Infinity" => f32::INFINITY,
                    b"-Infinity" => f32::NEG_INFINITY,
                    _ => utf8("float4", text)?
                        .parse::<f32>()
                        .map_err(|_| malformed("float4", text, "not a number"))?,
                };
                Ok(Datum::Float(f64::from(v)))
            }
            Dec::Float64 => {
                let v = match text {
                    b"NaN" => f64::NAN,
                    b"Infinity" => f64::INFINITY,
                    b"-Infinity" => f64::NEG_INFINITY,
                    _ => utf8("float8", text)?
                        .parse::<f64>()
                        .map_err(|_| malformed("float8", text, "not a number"))?,
                };
                Ok(Datum::Float(v))
            }
            Dec::Text => Ok(Datum::Str(Cow::Borrowed(utf8("text", text)?))),
            Dec::Bytea => parse_bytea(text).map(|b| Datum::Bytes(Cow::Owned(b))),
            Dec::Numeric(scale) => {
                let special = match text {
                    b"NaN" => Some("NaN"),
                    b"Infinity" => Some("Infinity"),
                    b"-Infinity" => Some("-Infinity"),
                    _ => None,
                };
                if let Some(value) = special {
                    return if optional {
                        Ok(Datum::Null)
                    } else {
                        Err(TypeError::Unrepresentable {
                            type_name: "numeric",
                            value,
                        })
                    };
                }
                let (unscaled, scale) = parse_decimal(text, *scale)?;
                Ok(Datum::Decimal {
                    unscaled: Cow::Owned(unscaled),
                    scale,
                })
            }
            Dec::Money => {
                let unscaled = parse_money(text)?;
                Ok(Datum::Decimal {
                    unscaled: Cow::Owned(unscaled),
                    scale: 2,
                })
            }
            Dec::Date => match text {
                b"infinity" => Ok(Datum::Int(DATE_POSITIVE_INFINITY_DAYS)),
                b"-infinity" => Ok(Datum::Int(DATE_NEGATIVE_INFINITY_DAYS)),
                _ => {
                    let s = utf8("date", text)?;
                    let (date, bc) = strip_bc(s);
                    parse_date(date, bc)
                        .map(Datum::Int)
                        .ok_or_else(|| malformed("date", text, "expected YYYY-MM-DD[ BC]"))
                }
            },
            Dec::Time { millis } => {
                let s = utf8("time", text)?;
                let micros = parse_time(s)
                    .ok_or_else(|| malformed("time", text, "expected HH:MM:SS[.ffffff]"))?;
                Ok(Datum::Int(if *millis { micros / 1000 } else { micros }))
            }
            Dec::Timestamp { millis } => {
                let v = match text {
                    b"infinity" if *millis => TIMESTAMP_POSITIVE_INFINITY_MILLIS,
                    b"infinity" => TIMESTAMP_POSITIVE_INFINITY_MICROS,
                    b"-infinity" if *millis => TIMESTAMP_NEGATIVE_INFINITY_MILLIS,
                    b"-infinity" => TIMESTAMP_NEGATIVE_INFINITY_MICROS,
                    _ => {
                        let s = utf8("timestamp", text)?;
                        let micros = parse_timestamp(s, false).ok_or_else(|| {
                            malformed(
                                "timestamp",
                                text,
                                "expected YYYY-MM-DD HH:MM:SS[.ffffff][ BC]",
                            )
                        })?;
                        let v = if *millis {
                            micros.div_euclid(1000)
                        } else {
                            micros
                        };
                        match i64::try_from(v) {
                            Ok(v) => v,
                            // After 294247 AD microseconds since 1970 overflow Connect's int64.
                            Err(_) if optional => return Ok(Datum::Null),
                            Err(_) => {
                                return Err(TypeError::OutOfRange {
                                    type_name: "timestamp",
                                })
                            }
                        }
                    }
                };
                Ok(Datum::Int(v))
            }
            Dec::TimestampTz => match text {
                b"infinity" => Ok(Datum::Str(Cow::Borrowed("infinity"))),
                b"-infinity" => Ok(Datum::Str(Cow::Borrowed("-infinity"))),
                _ => {
                    let s = utf8("timestamptz", text)?;
                    let micros = parse_timestamp(s, true).ok_or_else(|| {
                        malformed(
                            "timestamptz",
                            text,
                            "expected YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]][ BC]",
                        )
                    })?;
                    format_zoned_timestamp(micros)
                        .map(|s| Datum::Str(Cow::Owned(s)))
                        .ok_or_else(|| malformed("timestamptz", text, "out of range"))
                }
            },
            Dec::TimeTz => {
                let s = utf8("timetz", text)?;
                let micros = parse_timetz(s).ok_or_else(|| {
                    malformed("timetz", text, "expected HH:MM:SS[.ffffff]+HH[:MM[:SS]]")
                })?;
                let mut out = String::with_capacity(16);
                push_time(&mut out, micros);
                out.push('Z');
                Ok(Datum::Str(Cow::Owned(out)))
            }
            Dec::Interval => {
                let s = utf8("interval", text)?;
                parse_interval(s)
                    .map(Datum::Int)
                    .ok_or_else(|| malformed("interval", text, "unsupported interval format"))
            }
            Dec::Bits => parse_bits(text).map(|b| Datum::Bytes(Cow::Owned(b))),
            Dec::Hstore => {
                let s = utf8("hstore", text)?;
                hstore_to_json(s)
                    .map(|j| Datum::Str(Cow::Owned(j)))
                    .ok_or_else(|| malformed("hstore", text, "expected \"k\"=>\"v\", …"))
            }
            Dec::Array { elem, delimiter } => {
                let mut items = Vec::new();
                parse_array(text, *delimiter, elem, &mut items)?;
                Ok(Datum::Array(items))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// bytea, bits

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `\x` hex format (the default `bytea_output`), or the legacy escape format.
fn parse_bytea(text: &[u8]) -> Result<Vec<u8>, TypeError> {
    if let Some(hex) = text.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(malformed("bytea", text, "odd number of hex digits"));
        }
        return hex
            .chunks_exact(2)
            .map(|pair| match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(h), Some(l)) => Ok((h << 4) | l),
                _ => Err(malformed("bytea", text, "not a hex digit")),
            })
            .collect();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => match text.get(i + 1..i + 4) {
                _ if text.get(i + 1) == Some(&b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                Some(&[a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7']) => {
                    out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                    i += 4;
                }
                _ => return Err(malformed("bytea", text, "bad escape")),
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A bit string as Debezium's `Bits`: the string read as a binary number (last character is
/// bit 0), little-endian, without high zero bytes (`'0000'` is empty).
fn parse_bits(text: &[u8]) -> Result<Vec<u8>, TypeError> {
    let mut out = vec![0u8; text.len().div_ceil(8)];
    for (i, &c) in text.iter().rev().enumerate() {
        match c {
            b'0' => {}
            b'1' => out[i / 8] |= 1 << (i % 8),
            _ => return Err(malformed("bit", text, "expected 0 and 1 only")),
        }
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// numeric, money

/// Decimal text (`-123.4500`) to the unscaled big-endian two's-complement bytes Connect's
/// Decimal uses (Java `BigInteger.toByteArray`: minimal, at least one byte) and the scale.
/// `Some(scale)` pads or checks the fraction to that scale; `None` drops trailing fraction
/// zeros as Debezium does for VariableScaleDecimal.
fn parse_decimal(text: &[u8], scale: Option<u32>) -> Result<(Vec<u8>, u32), TypeError> {
    let (negative, body) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[body.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.iter().all(u8::is_ascii_digit)
        || !frac_part.iter().all(u8::is_ascii_digit)
    {
        return Err(malformed("numeric", text, "expected [-]digits[.digits]"));
    }
    let (frac, pad, scale) = match scale {
        Some(scale) => {
            let wanted = usize::try_from(scale).unwrap_or(usize::MAX);
            if frac_part.len() > wanted {
                let (kept, dropped) = frac_part.split_at(wanted);
                if dropped.iter().any(|&d| d != b'0') {
                    return Err(malformed(
                        "numeric",
                        text,
                        "more fraction digits than the scale",
                    ));
                }
                (kept, 0, scale)
            } else {
                (frac_part, wanted - frac_part.len(), scale)
            }
        }
        None => {
            let kept = frac_part.len() - frac_part.iter().rev().take_while(|&&d| d == b'0').count();
            let scale =
                u32::try_from(kept).map_err(|_| malformed("numeric", text, "scale too large"))?;
            (&frac_part[..kept], 0, scale)
        }
    };
    let digits = int_part
        .iter()
        .chain(frac.iter())
        .copied()
        .chain(std::iter::repeat_n(b'0', pad));
    Ok((
        unscaled_bytes(negative, digits, int_part.len() + frac.len() + pad),
        scale,
    ))
}

/// Two's-complement bytes of ±(decimal digits), minimal as Java's `BigInteger.toByteArray`.
fn unscaled_bytes(negative: bool, digits: impl Iterator<Item = u8>, count: usize) -> Vec<u8> {
    if count <= 38 {
        // Fast path: fits an i128 (10^38 - 1 < 2^127).
        let mut v: i128 = 0;
        for d in digits {
            v = v * 10 + i128::from(d - b'0');
        }
        if negative {
            v = -v;
        }
        return minimal_twos_complement(&v.to_be_bytes());
    }
    // Little-endian base-2^32 limbs, multiplied up nine digits at a time.
    let mut limbs: Vec<u32> = Vec::with_capacity(count / 9 + 1);
    let mut chunk: u64 = 0;
    let mut chunk_len = 0u32;
    let push = |limbs: &mut Vec<u32>, chunk: u64, len: u32| {
        let mut carry = chunk;
        let mul = 10u64.pow(len);
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        while carry > 0 {
            limbs.push(carry as u32);
            carry >>= 32;
        }
    };
    for d in digits {
        chunk = chunk * 10 + u64::from(d - b'0');
        chunk_len += 1;
        if chunk_len == 9 {
            push(&mut limbs, chunk, 9);
            chunk = 0;
            chunk_len = 0;
        }
    }
    if chunk_len > 0 {
        push(&mut limbs, chunk, chunk_len);
    }
    // Big-endian magnitude with a spare sign byte, then negate in place if needed.
    let mut bytes = Vec::with_capacity(limbs.len() * 4 + 1);
    bytes.push(0);
    for limb in limbs.iter().rev() {
        bytes.extend_from_slice(&limb.to_be_bytes());
    }
    if negative {
        let mut carry = true;
        for b in bytes.iter_mut().rev() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    minimal_twos_complement(&bytes)
}

/// Drops redundant sign bytes, keeping at least one byte.
fn minimal_twos_complement(bytes: &[u8]) -> Vec<u8> {
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// Money text in any `lc_monetary` that uses `.` as decimal point (`$1,234.56`,
/// `-$1,234.56`, `($1,234.56)`): digits are kept, grouping and currency symbols dropped, and
/// the value is rounded half-up to 2 digits (Debezium's `money.fraction.digits`).
fn parse_money(text: &[u8]) -> Result<Vec<u8>, TypeError> {
    let negative = text.iter().any(|&b| b == b'-' || b == b'(');
    let mut value: i128 = 0;
    let mut digits = 0usize;
    let mut fraction: Option<usize> = None;
    let mut round_up = false;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                match fraction {
                    Some(n) if n >= 2 => {
                        // Half-up on the first dropped digit (BigDecimal.setScale HALF_UP).
                        if n == 2 && b >= b'5' {
                            round_up = true;
                        }
                        fraction = Some(n + 1);
                        continue;
                    }
                    Some(n) => fraction = Some(n + 1),
                    None => {}
                }
                digits += 1;
                if digits > 36 {
                    return Err(malformed("money", text, "too many digits"));
                }
                value = value * 10 + i128::from(b - b'0');
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            b'.' => return Err(malformed("money", text, "two decimal points")),
            _ => {}
        }
    }
    if digits == 0 {
        return Err(malformed("money", text, "no digits"));
    }
    let kept = fraction.unwrap_or(0).min(2);
    for _ in kept..2 {
        value *= 10;
    }
    if round_up {
        value += 1;
    }
    if negative {
        value = -value;
    }
    Ok(minimal_twos_complement(&value.to_be_bytes()))
}

// ---------------------------------------------------------------------------------------
// dates and times (proleptic Gregorian, astronomical years: 1 BC is year 0)

fn strip_bc(s: &str) -> (&str, bool) {
    match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn number(s: &str) -> Option<i64> {
    if all_digits(s) && s.len() <= 18 {
        s.parse().ok()
    } else {
        None
    }
}

/// `YYYY-MM-DD` (year of 4+ digits) to epoch days.
fn parse_date(s: &str, bc: bool) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    // PostgreSQL years have 4 to 7 digits; the bound keeps the day arithmetic far from
    // overflow.
    if m.len() != 2 || d.len() != 2 || !(4..=8).contains(&y.len()) {
        return None;
    }
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    let y = if bc { 1 - y } else { y };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `HH:MM:SS[.ffffff]` to microseconds of the day; `24:00:00` is allowed, as in PostgreSQL.
fn parse_time(s: &str) -> Option<i64> {
    let (hms, frac) = match s.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (h, m, sec) = (number(h)?, number(m)?, number(sec)?);
    let micros = match frac {
        None => 0,
        Some(f) if all_digits(f) && f.len() <= 6 => {
            number(f)? * 10i64.pow(6 - u32::try_from(f.len()).ok()?)
        }
        Some(_) => return None,
    };
    if m > 59 || sec > 60 || h > 24 {
        return None;
    }
    let total = ((h * 60 + m) * 60 + sec) * 1_000_000 + micros;
    (total <= MICROS_PER_DAY).then_some(total)
}

/// `+HH[:MM[:SS]]` / `-…` to seconds east of UTC.
fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let mut secs = 0;
    let mut unit = 3600;
    for part in rest.split(':') {
        if part.len() != 2 || unit == 0 {
            return None;
        }
        secs += number(part)? * unit;
        unit /= 60;
    }
    Some(sign * secs)
}

/// Position where a timezone offset starts (the first sign after the time's digits).
fn offset_start(s: &str) -> Option<usize> {
    s.bytes()
        .enumerate()
        .skip(1)
        .find(|(_, b)| *b == b'+' || *b == b'-')
        .map(|(i, _)| i)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][±offset][ BC]` to microseconds since the epoch (UTC when
/// `zoned`, local otherwise). i128 because PostgreSQL's last years (up to 294276 AD) lie
/// beyond `i64` microseconds since 1970.
fn parse_timestamp(s: &str, zoned: bool) -> Option<i128> {
    let (s, bc) = strip_bc(s);
    let (date, rest) = s.split_once(' ')?;
    let (time, offset) = if zoned {
        let at = offset_start(rest)?;
        (&rest[..at], parse_offset(&rest[at..])?)
    } else {
        (rest, 0)
    };
    let days = parse_date(date, bc)?;
    let tod = parse_time(time)?;
    Some(
        i128::from(days) * i128::from(MICROS_PER_DAY) + i128::from(tod)
            - i128::from(offset) * 1_000_000,
    )
}

/// `HH:MM:SS[.ffffff]±offset` to microseconds of the UTC day (wrapping past midnight, so
/// `24:00:00+00` is `00:00:00Z`).
fn parse_timetz(s: &str) -> Option<i64> {
    let at = offset_start(s)?;
    let tod = parse_time(&s[..at])?;
    let offset = parse_offset(&s[at..])?;
    Some((tod - offset * 1_000_000).rem_euclid(MICROS_PER_DAY))
}

/// Appends `v` (0..=99) as two digits; formatting machinery is avoided on this per-value
/// path.
fn push_2(out: &mut String, v: i64) {
    out.push(char::from(b'0' + (v / 10 % 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// `HH:MM:SS` plus the fraction without trailing zeros, as Java's `ISO_LOCAL_TIME` prints.
fn push_time(out: &mut String, micros_of_day: i64) {
    let secs = micros_of_day / 1_000_000;
    let mut frac = micros_of_day % 1_000_000;
    push_2(out, secs / 3600);
    out.push(':');
    push_2(out, (secs / 60) % 60);
    out.push(':');
    push_2(out, secs % 60);
    if frac != 0 {
        let mut digits = 6;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        out.push('.');
        let mut buf = [b'0'; 6];
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        for &b in &buf[..digits] {
            out.push(char::from(b));
        }
    }
}

/// Microseconds since the epoch (UTC) as Debezium's ZonedTimestamp: Java's
/// `ISO_OFFSET_DATE_TIME` in UTC, e.g. `2024-01-02T03:04:05.123456Z`, `-0043-03-15T10:00:00Z`
/// for 44 BC, `+10000-01-01T00:00:00Z`.
fn format_zoned_timestamp(micros: i128) -> Option<String> {
    use std::fmt::Write as _;
    let day = i128::from(MICROS_PER_DAY);
    let days = i64::try_from(micros.div_euclid(day)).ok()?;
    let tod = i64::try_from(micros.rem_euclid(day)).ok()?;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(32);
    if (0..=9999).contains(&y) {
        push_2(&mut out, y / 100);
        push_2(&mut out, y % 100);
    } else if y > 9999 {
        let _ = write!(out, "+{y}");
    } else {
        let _ = write!(out, "-{:04}", y.checked_neg()?);
    }
    out.push('-');
    push_2(&mut out, m);
    out.push('-');
    push_2(&mut out, d);
    out.push('T');
    push_time(&mut out, tod);
    out.push('Z');
    Some(out)
}

// ---------------------------------------------------------------------------------------
// interval

/// Interval components as pgjdbc's `PGInterval` holds them.
#[derive(Default)]
struct IntervalParts {
    years: i64,
    months: i64,
    days: i64,
    hours: i64,
    minutes: i64,
    whole_seconds: i64,
    micros: i64,
}

impl IntervalParts {
    /// Debezium's `MicroDuration.durationMicros` with `DAYS_PER_MONTH_AVG`, in the same
    /// floating-point steps so the truncation matches.
    fn micro_duration(&self) -> i64 {
        let seconds = self.whole_seconds as f64 + self.micros as f64 / 1_000_000.0;
        // Exact for every interval PostgreSQL can hold (months fit an i32).
        let months = self.years.saturating_mul(12).saturating_add(self.months);
        let number_of_days = months as f64 * DAYS_PER_MONTH_AVG + self.days as f64;
        let number_of_seconds =
            (((number_of_days * 24.0 + self.hours as f64) * 60.0) + self.minutes as f64) * 60.0
                + seconds;
        // `as` saturates like Java's (long) cast.
        (number_of_seconds * 1e6) as i64
    }
}

/// `[-]digits[.digits]` to (whole, micros) with the sign applied to both.
fn signed_seconds(s: &str) -> Option<(i64, i64)> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    let whole = number(whole)?;
    let micros = if frac.is_empty() {
        0
    } else if all_digits(frac) && frac.len() <= 6 {
        number(frac)? * 10i64.pow(6 - u32::try_from(frac.len()).ok()?)
    } else {
        return None;
    };
    Some(if negative {
        (-whole, -micros)
    } else {
        (whole, micros)
    })
}

fn signed_int(s: &str) -> Option<i64> {
    match s.as_bytes().first()? {
        b'-' => number(&s[1..]).map(|v| -v),
        b'+' => number(&s[1..]),
        _ => number(s),
    }
}

/// Interval text to MicroDuration: `iso_8601` style (`P1Y2M3DT4H5M6.5S`) or the default
/// `postgres` style (`1 year 2 mons 3 days 04:05:06.5`). PostgreSQL 17's infinite intervals
/// saturate to `i64::MAX` / `i64::MIN`.
fn parse_interval(s: &str) -> Option<i64> {
    match s {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let parts = if let Some(iso) = s.strip_prefix('P') {
        parse_iso_interval(iso)?
    } else {
        parse_postgres_interval(s)?
    };
    Some(parts.micro_duration())
}

fn parse_iso_interval(s: &str) -> Option<IntervalParts> {
    let mut p = IntervalParts::default();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut start = 0;
    for (i, c) in date.char_indices() {
        if c.is_ascii_alphabetic() {
            let v = signed_int(&date[start..i])?;
            match c {
                'Y' => p.years = v,
                'M' => p.months = v,
                'W' => p.days = v.checked_mul(7)?,
                'D' => p.days = v,
                _ => return None,
            }
            start = i + 1;
        }
    }
    if start != date.len() {
        return None;
    }
    if let Some(time) = time {
        let mut start = 0;
        for (i, c) in time.char_indices() {
            if c.is_ascii_alphabetic() {
                let token = &time[start..i];
                match c {
                    'H' => p.hours = signed_int(token)?,
                    'M' => p.minutes = signed_int(token)?,
                    'S' => (p.whole_seconds, p.micros) = signed_seconds(token)?,
                    _ => return None,
                }
                start = i + 1;
            }
        }
        if start != time.len() || time.is_empty() {
            return None;
        }
    }
    Some(p)
}

fn parse_postgres_interval(s: &str) -> Option<IntervalParts> {
    let mut p = IntervalParts::default();
    let mut tokens = s.split_ascii_whitespace().peekable();
    let mut any = false;
    while let Some(token) = tokens.next() {
        any = true;
        if token.contains(':') {
            let (negative, body) = match token.as_bytes().first()? {
                b'-' => (true, &token[1..]),
                b'+' => (false, &token[1..]),
                _ => (false, token),
            };
            let mut fields = body.split(':');
            let (h, m, sec) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() {
                return None;
            }
            let (h, m) = (number(h)?, number(m)?);
            let (whole, micros) = signed_seconds(sec)?;
            if whole < 0 || micros < 0 {
                return None;
            }
            let sign = if negative { -1 } else { 1 };
            p.hours = sign * h;
            p.minutes = sign * m;
            p.whole_seconds = sign * whole;
            p.micros = sign * micros;
            continue;
        }
        let value = tokens.next()?;
        let v = signed_int(token)?;
        match value {
            "year" | "years" => p.years = v,
            "mon" | "mons" => p.months = v,
            "day" | "days" => p.days = v,
            _ => return None,
        }
    }
    any.then_some(p)
}

// ---------------------------------------------------------------------------------------
// hstore

/// One double-quoted hstore token (`"a\"b"`), returning the unescaped text and the rest.
fn hstore_quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// hstore text (`"a"=>"1", "b"=>NULL`) to the JSON object Debezium's
/// `hstore.handling.mode=json` emits (`{"a":"1","b":null}`), in the text's key order.
fn hstore_to_json(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('{');
    let mut rest = s.trim_start();
    let mut first = true;
    while !rest.is_empty() {
        if !first {
            rest = rest.strip_prefix(',')?.trim_start();
        }
        let (key, after) = hstore_quoted(rest)?;
        rest = after.trim_start().strip_prefix("=>")?.trim_start();
        if !first {
            out.push(',');
        }
        first = false;
        json_string(&mut out, &key);
        out.push(':');
        if let Some(after) = rest.strip_prefix("NULL") {
            out.push_str("null");
            rest = after.trim_start();
        } else {
            let (value, after) = hstore_quoted(rest)?;
            json_string(&mut out, &value);
            rest = after.trim_start();
        }
    }
    out.push('}');
    Some(out)
}

// ---------------------------------------------------------------------------------------
// arrays

/// Array text (`{1,NULL,"a,b"}`, `[0:1]={…}`, `{{1,2},{3,4}}`) into `out`. Multi-dimensional
/// arrays are flattened in row-major order, because a Connect array column has one element
/// type and cannot nest a variable number of levels.
fn parse_array<'a>(
    text: &'a [u8],
    delimiter: u8,
    elem: &Dec,
    out: &mut Vec<Datum<'a>>,
) -> Result<(), TypeError> {
    let bad = |reason| malformed("array", text, reason);
    let mut i = 0;
    if text.first() == Some(&b'[') {
        // Dimension decoration of arrays with non-default bounds.
        i = text
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("dimension decoration without ="))?
            + 1;
    }
    let skip_ws = |i: &mut usize| {
        while text.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if text.get(i) != Some(&b'{') {
        return Err(bad("expected {"));
    }
    let mut depth = 0usize;
    // After `{` or a delimiter an element (or a nested `{`) is expected.
    let mut expect_element = true;
    loop {
        skip_ws(&mut i);
        let Some(&c) = text.get(i) else {
            return Err(bad("unterminated array"));
        };
        match c {
            b'{' if expect_element => {
                depth += 1;
                if depth > MAX_ARRAY_DEPTH {
                    return Err(bad("too deeply nested"));
                }
                i += 1;
            }
            b'}' => {
                depth = depth.checked_sub(1).ok_or_else(|| bad("unbalanced }"))?;
                i += 1;
                expect_element = false;
                if depth == 0 {
                    skip_ws(&mut i);
                    return if i == text.len() {
                        Ok(())
                    } else {
                        Err(bad("trailing characters"))
                    };
                }
            }
            c if c == delimiter && !expect_element => {
                expect_element = true;
                i += 1;
            }
            b'"' if expect_element => {
                let start = i + 1;
                let mut j = start;
                let mut escaped = false;
                loop {
                    match text.get(j) {
                        None => return Err(bad("unterminated quoted element")),
                        Some(b'\\') => {
                            escaped = true;
                            j += 2;
                        }
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                let raw = text
                    .get(start..j)
                    .ok_or_else(|| bad("unterminated escape"))?;
                out.push(decode_element(elem, raw, escaped)?);
                i = j + 1;
                expect_element = false;
            }
            _ if expect_element => {
                let start = i;
                let mut j = i;
                let mut escaped = false;
                while let Some(&b) = text.get(j) {
                    if b == delimiter || b == b'}' {
                        break;
                    }
                    if b == b'\\' {
                        escaped = true;
                        j += 1;
                    }
                    j += 1;
                }
                let raw = text
                    .get(start..j)
                    .ok_or_else(|| bad("unterminated escape"))?;
                let raw = raw.trim_ascii_end();
                if !escaped && raw.eq_ignore_ascii_case(b"NULL") {
                    out.push(Datum::Null);
                } else {
                    out.push(decode_element(elem, raw, escaped)?);
                }
                i = j;
                expect_element = false;
            }
            _ => return Err(bad("unexpected character")),
        }
    }
}

/// One array element; elements are always optional, so NaN numerics become null.
fn decode_element<'a>(elem: &Dec, raw: &'a [u8], escaped: bool) -> Result<Datum<'a>, TypeError> {
    if !escaped {
        return elem.decode(raw, true);
    }
    let mut unescaped = Vec::with_capacity(raw.len());
    let mut k = 0;
    while k < raw.len() {
        if raw[k] == b'\\' {
            k += 1;
        }
        if let Some(&b) = raw.get(k) {
            unescaped.push(b);
        }
        k += 1;
    }
    elem.decode(&unescaped, true).map(Datum::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> TypeCatalog {
        let mut c = TypeCatalog::new();
        let row = |oid: u32, name: &str, typtype: &str, category: &str| CatalogRow {
            oid,
            name: name.to_owned(),
            schema: "public".to_owned(),
            typtype: typtype.to_owned(),
            category: category.to_owned(),
            elem: 0,
            base: 0,
            typmod: -1,
            delimiter: ",".to_owned(),
            enum_labels: Vec::new(),
        };
        c.insert_row(CatalogRow {
            enum_labels: vec!["red".into(), "green".into(), "blue".into()],
            ..row(90001, "color", "e", "E")
        });
        c.insert_row(CatalogRow {
            elem: 90001,
            ..row(90002, "_color", "b", "A")
        });
        c.insert_row(CatalogRow {
            base: oid::NUMERIC,
            typmod: (10 << 16 | 2) + 4,
            ..row(90003, "price", "d", "N")
        });
        c.insert_row(CatalogRow {
            elem: 90003,
            ..row(90004, "_price", "b", "A")
        });
        c.insert_row(row(90005, "hstore", "b", "U"));
        c.insert_row(row(90006, "ltree", "b", "U"));
        c.insert_row(row(90007, "citext", "b", "S"));
        c.insert_row(row(90008, "address", "c", "C"));
        c.insert_row(row(90009, "geometry", "b", "U"));
        c.insert_row(CatalogRow {
            base: 90010,
            ..row(90010, "loop", "d", "N")
        });
        c
    }

    fn dec(oid: u32, typmod: i32) -> PgColumnDecoder {
        PgColumnDecoder::new(&catalog(), oid, typmod, true)
    }

    fn decode(oid: u32, typmod: i32, text: &str) -> Datum<'static> {
        dec(oid, typmod)
            .decode(text.as_bytes())
            .map(Datum::into_owned)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn decimal(unscaled: &[u8], scale: u32) -> Datum<'static> {
        Datum::Decimal {
            unscaled: Cow::Owned(unscaled.to_vec()),
            scale,
        }
    }

    fn s(v: &str) -> Datum<'static> {
        Datum::Str(Cow::Owned(v.to_owned()))
    }

    fn numeric_typmod(p: i32, s: i32) -> i32 {
        ((p << 16) | (s & 0x7ff)) + 4
    }

    #[test]
    fn scalar_types_map_to_debezium_defaults() {
        let c = catalog();
        let ty = |oid, typmod| column_type(&c, oid, typmod).0;
        assert_eq!(ty(oid::BOOL, -1), ColumnType::Boolean);
        assert_eq!(ty(oid::INT2, -1), ColumnType::Int16);
        assert_eq!(ty(oid::INT4, -1), ColumnType::Int32);
        assert_eq!(ty(oid::INT8, -1), ColumnType::Int64);
        assert_eq!(ty(oid::OID, -1), ColumnType::Int64);
        assert_eq!(ty(oid::FLOAT4, -1), ColumnType::Float32);
        assert_eq!(ty(oid::FLOAT8, -1), ColumnType::Float64);
        for o in [
            oid::TEXT,
            oid::VARCHAR,
            oid::BPCHAR,
            oid::NAME,
            oid::CHAR,
            oid::INET,
        ] {
            assert_eq!(ty(o, -1), ColumnType::String);
        }
        for o in [
            oid::CIDR,
            oid::MACADDR,
            oid::MACADDR8,
            oid::INT4RANGE,
            oid::TSTZRANGE,
        ] {
            assert_eq!(ty(o, -1), ColumnType::String);
        }
        assert_eq!(ty(oid::BYTEA, -1), ColumnType::Bytes);
        assert_eq!(ty(oid::JSON, -1), ColumnType::Json);
        assert_eq!(ty(oid::JSONB, -1), ColumnType::Json);
        assert_eq!(ty(oid::UUID, -1), ColumnType::Uuid);
        assert_eq!(ty(oid::XML, -1), ColumnType::Xml);
        assert_eq!(ty(oid::TSVECTOR, -1), ColumnType::TsVector);
        assert_eq!(ty(oid::DATE, -1), ColumnType::Date);
        assert_eq!(ty(oid::TIMESTAMPTZ, 3), ColumnType::ZonedTimestamp);
        assert_eq!(ty(oid::TIMETZ, -1), ColumnType::ZonedTime);
        assert_eq!(ty(oid::INTERVAL, -1), ColumnType::MicroDuration);
        assert_eq!(
            ty(oid::MONEY, -1),
            ColumnType::Decimal {
                precision: None,
                scale: 2
            }
        );
    }

    #[test]
    fn adaptive_precision_picks_milli_or_micro_time_types() {
        let c = catalog();
        let ty = |oid, typmod| column_type(&c, oid, typmod).0;
        assert_eq!(ty(oid::TIME, -1), ColumnType::MicroTime);
        assert_eq!(ty(oid::TIME, 0), ColumnType::Time);
        assert_eq!(ty(oid::TIME, 3), ColumnType::Time);
        assert_eq!(ty(oid::TIME, 4), ColumnType::MicroTime);
        assert_eq!(ty(oid::TIMESTAMP, -1), ColumnType::MicroTimestamp);
        assert_eq!(ty(oid::TIMESTAMP, 3), ColumnType::Timestamp);
        assert_eq!(ty(oid::TIMESTAMP, 6), ColumnType::MicroTimestamp);
    }

    #[test]
    fn numeric_with_precision_is_decimal_and_without_is_variable_scale() {
        let c = catalog();
        let ty = |typmod| column_type(&c, oid::NUMERIC, typmod).0;
        assert_eq!(ty(-1), ColumnType::VariableScaleDecimal);
        assert_eq!(
            ty(numeric_typmod(10, 2)),
            ColumnType::Decimal {
                precision: Some(10),
                scale: 2
            }
        );
        assert_eq!(
            ty(numeric_typmod(7, 0)),
            ColumnType::Decimal {
                precision: Some(7),
                scale: 0
            }
        );
    }

    #[test]
    fn negative_numeric_scale_becomes_scale_zero_with_wider_precision() {
        let c = catalog();
        assert_eq!(
            column_type(&c, oid::NUMERIC, numeric_typmod(5, -2)).0,
            ColumnType::Decimal {
                precision: Some(7),
                scale: 0
            }
        );
        assert_eq!(
            decode(oid::NUMERIC, numeric_typmod(5, -2), "12300"),
            decimal(&[0x30, 0x0C], 0)
        );
    }

    #[test]
    fn bit_one_is_boolean_and_longer_bit_strings_are_bits() {
        let c = catalog();
        assert_eq!(column_type(&c, oid::BIT, 1).0, ColumnType::Boolean);
        assert_eq!(
            column_type(&c, oid::BIT, 8).0,
            ColumnType::Bits { length: 8 }
        );
        assert_eq!(
            column_type(&c, oid::VARBIT, 33).0,
            ColumnType::Bits { length: 33 }
        );
        assert_eq!(
            column_type(&c, oid::VARBIT, -1).0,
            ColumnType::Bits {
                length: i32::MAX as u32
            }
        );
        assert_eq!(decode(oid::BIT, 1, "1"), Datum::Bool(true));
        assert_eq!(decode(oid::BIT, 1, "0"), Datum::Bool(false));
    }

    #[test]
    fn catalog_types_map_enums_domains_arrays_and_extensions() {
        let c = catalog();
        let colors = ColumnType::Enum(vec!["red".into(), "green".into(), "blue".into()]);
        assert_eq!(
            column_type(&c, 90001, -1),
            (colors.clone(), "color".to_owned())
        );
        assert_eq!(
            column_type(&c, 90002, -1).0,
            ColumnType::Array(Box::new(colors))
        );
        let price = ColumnType::Decimal {
            precision: Some(10),
            scale: 2,
        };
        assert_eq!(
            column_type(&c, 90003, -1),
            (price.clone(), "price".to_owned())
        );
        assert_eq!(
            column_type(&c, 90004, -1).0,
            ColumnType::Array(Box::new(price))
        );
        assert_eq!(column_type(&c, 90005, -1).0, ColumnType::Json);
        assert_eq!(column_type(&c, 90006, -1).0, ColumnType::Ltree);
        assert_eq!(column_type(&c, 90007, -1).0, ColumnType::String);
    }

    #[test]
    fn unknown_composite_and_unlisted_types_fall_back_to_text() {
        let c = catalog();
        assert_eq!(
            column_type(&c, 90008, -1),
            (ColumnType::String, "address".into())
        );
        assert_eq!(
            column_type(&c, 90009, -1),
            (ColumnType::String, "geometry".into())
        );
        assert_eq!(
            column_type(&c, 424242, -1),
            (ColumnType::String, "oid:424242".into())
        );
        assert_eq!(column_type(&c, oid::POINT, -1).0, ColumnType::String);
        assert_eq!(decode(90008, -1, "(1,\"Main St\")"), s("(1,\"Main St\")"));
        assert_eq!(decode(oid::POINT, -1, "(1.5,2)"), s("(1.5,2)"));
    }

    #[test]
    fn a_cyclic_domain_does_not_recurse_forever() {
        assert_eq!(column_type(&catalog(), 90010, -1).0, ColumnType::String);
    }

    #[test]
    fn builtin_arrays_map_to_arrays_of_their_element_mapping() {
        let c = catalog();
        let arr = |t| ColumnType::Array(Box::new(t));
        assert_eq!(
            column_type(&c, 1007, -1),
            (arr(ColumnType::Int32), "_int4".into())
        );
        assert_eq!(column_type(&c, 1005, -1).0, arr(ColumnType::Int16));
        assert_eq!(column_type(&c, 1009, -1).0, arr(ColumnType::String));
        assert_eq!(column_type(&c, 1183, 3).0, arr(ColumnType::Time));
        assert_eq!(column_type(&c, 1115, -1).0, arr(ColumnType::MicroTimestamp));
        assert_eq!(
            column_type(&c, 1231, -1).0,
            arr(ColumnType::VariableScaleDecimal)
        );
        assert_eq!(column_type(&c, 1001, -1).0, arr(ColumnType::Bytes));
    }

    #[test]
    fn booleans_are_t_and_f() {
        assert_eq!(decode(oid::BOOL, -1, "t"), Datum::Bool(true));
        assert_eq!(decode(oid::BOOL, -1, "f"), Datum::Bool(false));
        assert!(dec(oid::BOOL, -1).decode(b"yes").is_err());
    }

    #[test]
    fn integers_parse_to_their_limits_and_reject_overflow() {
        assert_eq!(decode(oid::INT2, -1, "-32768"), Datum::Int(-32768));
        assert_eq!(decode(oid::INT2, -1, "32767"), Datum::Int(32767));
        assert!(dec(oid::INT2, -1).decode(b"32768").is_err());
        assert_eq!(
            decode(oid::INT4, -1, "-2147483648"),
            Datum::Int(i32::MIN.into())
        );
        assert!(dec(oid::INT4, -1).decode(b"2147483648").is_err());
        assert_eq!(
            decode(oid::INT8, -1, "9223372036854775807"),
            Datum::Int(i64::MAX)
        );
        assert_eq!(
            decode(oid::INT8, -1, "-9223372036854775808"),
            Datum::Int(i64::MIN)
        );
        assert!(dec(oid::INT8, -1).decode(b"9223372036854775808").is_err());
        assert_eq!(decode(oid::OID, -1, "4294967295"), Datum::Int(4294967295));
        assert!(dec(oid::OID, -1).decode(b"-1").is_err());
        assert!(dec(oid::INT4, -1).decode(b"1.5").is_err());
    }

    #[test]
    fn floats_keep_nan_and_infinities() {
        assert_eq!(
            decode(oid::FLOAT4, -1, "1.1"),
            Datum::Float(f64::from(1.1f32))
        );
        assert_eq!(decode(oid::FLOAT8, -1, "0.1"), Datum::Float(0.1));
        assert_eq!(decode(oid::FLOAT8, -1, "1e+300"), Datum::Float(1e300));
        assert_eq!(
            decode(oid::FLOAT8, -1, "Infinity"),
            Datum::Float(f64::INFINITY)
        );
        assert_eq!(
            decode(oid::FLOAT4, -1, "-Infinity"),
            Datum::Float(f64::NEG_INFINITY)
        );
        let Datum::Float(nan) = decode(oid::FLOAT8, -1, "NaN") else {
            panic!("not a float")
        };
        assert!(nan.is_nan());
        assert!(dec(oid::FLOAT8, -1).decode(b"one").is_err());
    }

    #[test]
    fn strings_borrow_from_the_input() {
        let text = b"h\xC3\xA9llo, world";
        let d = dec(oid::TEXT, -1).decode(text).unwrap();
        assert!(matches!(d, Datum::Str(Cow::Borrowed("héllo, world"))));
        assert!(matches!(
            dec(oid::TEXT, -1).decode(b"\xff"),
            Err(TypeError::InvalidUtf8 { .. })
        ));
        assert_eq!(decode(oid::BPCHAR, -1, "ab  "), s("ab  "));
        assert_eq!(decode(90001, -1, "green"), s("green"));
        assert_eq!(decode(oid::JSONB, -1, "{\"a\": 1}"), s("{\"a\": 1}"));
        assert_eq!(
            decode(oid::UUID, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        );
    }

    #[test]
    fn bytea_hex_and_escape_formats_decode() {
        assert_eq!(
            decode(oid::BYTEA, -1, "\\x00ff10"),
            Datum::Bytes(Cow::Owned(vec![0, 255, 16]))
        );
        assert_eq!(
            decode(oid::BYTEA, -1, "\\x"),
            Datum::Bytes(Cow::Owned(vec![]))
        );
        assert_eq!(
            decode(oid::BYTEA, -1, "a\\\\b\\001"),
            Datum::Bytes(Cow::Owned(b"a\\b\x01".to_vec()))
        );
        assert!(dec(oid::BYTEA, -1).decode(b"\\x0").is_err());
        assert!(dec(oid::BYTEA, -1).decode(b"\\xzz").is_err());
        assert!(dec(oid::BYTEA, -1).decode(b"\\9").is_err());
    }

    #[test]
    fn decimals_become_minimal_twos_complement_at_the_column_scale() {
        let t = numeric_typmod(10, 2);
        assert_eq!(decode(oid::NUMERIC, t, "123.45"), decimal(&[0x30, 0x39], 2));
        assert_eq!(
            decode(oid::NUMERIC, t, "-123.45"),
            decimal(&[0xCF, 0xC7], 2)
        );
        assert_eq!(decode(oid::NUMERIC, t, "0.00"), decimal(&[0], 2));
        assert_eq!(decode(oid::NUMERIC, t, "-0.00"), decimal(&[0], 2));
        assert_eq!(decode(oid::NUMERIC, t, "1.28"), decimal(&[0x00, 0x80], 2));
        assert_eq!(decode(oid::NUMERIC, t, "-1.28"), decimal(&[0x80], 2));
        assert_eq!(decode(oid::NUMERIC, t, "-1.29"), decimal(&[0xFF, 0x7F], 2));
        // Fewer fraction digits than the scale are padded, extra zeros dropped.
        assert_eq!(decode(oid::NUMERIC, t, "5"), decimal(&[0x01, 0xF4], 2));
        assert_eq!(decode(oid::NUMERIC, t, "5.0000"), decimal(&[0x01, 0xF4], 2));
        assert!(dec(oid::NUMERIC, t).decode(b"5.001").is_err());
        assert!(dec(oid::NUMERIC, t).decode(b"1e5").is_err());
        assert!(dec(oid::NUMERIC, t).decode(b"").is_err());
        assert!(dec(oid::NUMERIC, t).decode(b".").is_err());
    }

    #[test]
    fn variable_scale_decimals_drop_trailing_zeros_as_debezium() {
        assert_eq!(
            decode(oid::NUMERIC, -1, "123.4500"),
            decimal(&[0x30, 0x39], 2)
        );
        assert_eq!(decode(oid::NUMERIC, -1, "1000"), decimal(&[0x03, 0xE8], 0));
        assert_eq!(decode(oid::NUMERIC, -1, "0.000"), decimal(&[0], 0));
        assert_eq!(decode(oid::NUMERIC, -1, "0.001"), decimal(&[1], 3));
    }

    /// Reference: two's complement of ±digits computed with a simple, slow method.
    fn reference_bytes(negative: bool, digits: &str) -> Vec<u8> {
        // Repeated division of the decimal string by 256.
        let mut n: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
        let mut le = Vec::new();
        while n.iter().any(|&d| d != 0) {
            let mut rem = 0u32;
            let mut q = Vec::with_capacity(n.len());
            for &d in &n {
                let cur = rem * 10 + u32::from(d);
                q.push((cur / 256) as u8);
                rem = cur % 256;
            }
            le.push(rem as u8);
            n = q;
        }
        le.push(0);
        if negative {
            let mut carry = 1u16;
            for b in le.iter_mut() {
                let v = u16::from(!*b) + carry;
                *b = v as u8;
                carry = v >> 8;
            }
        }
        le.reverse();
        minimal_twos_complement(&le)
    }

    #[test]
    fn big_numerics_of_any_length_convert_exactly() {
        for digits in [
            "99999999999999999999999999999999999999",
            "100000000000000000000000000000000000000",
            "170141183460469231731687303715884105727",
            "170141183460469231731687303715884105728",
            "123456789012345678901234567890123456789012345678901234567890",
            &"9".repeat(500),
            &format!("1{}", "0".repeat(600)),
        ] {
            for negative in [false, true] {
                let text = format!("{}{digits}", if negative { "-" } else { "" });
                let got = decode(oid::NUMERIC, -1, &text);
                assert_eq!(
                    got,
                    decimal(&reference_bytes(negative, digits), 0),
                    "{text:.50}"
                );
            }
        }
        let fraction = format!("0.{}1", "0".repeat(16_382));
        assert_eq!(decode(oid::NUMERIC, -1, &fraction), decimal(&[1], 16_383));
    }

    #[test]
    fn the_longest_postgres_numerics_convert_consistently() {
        // 10^131072 - 1 and 10^131072 must differ by exactly one in their byte form.
        let nines = decode(oid::NUMERIC, -1, &"9".repeat(131_072));
        let power = decode(oid::NUMERIC, -1, &format!("1{}", "0".repeat(131_072)));
        let (
            Datum::Decimal {
                unscaled: nines, ..
            },
            Datum::Decimal {
                unscaled: power, ..
            },
        ) = (nines, power)
        else {
            panic!("not decimals")
        };
        // log2(10^131072) = 435411.8…, so 435412 value bits plus a sign bit.
        assert_eq!(power.len(), 54_427);
        assert_eq!(nines.len(), power.len());
        let mut minus_one = power.to_vec();
        for b in minus_one.iter_mut().rev() {
            let (v, borrow) = b.overflowing_sub(1);
            *b = v;
            if !borrow {
                break;
            }
        }
        assert_eq!(minus_one, nines.to_vec());
    }

    #[test]
    fn numeric_nan_and_infinity_are_null_when_optional_and_errors_otherwise() {
        for special in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(decode(oid::NUMERIC, -1, special), Datum::Null);
            let strict =
                PgColumnDecoder::new(&catalog(), oid::NUMERIC, numeric_typmod(5, 1), false);
            assert!(matches!(
                strict.decode(special.as_bytes()),
                Err(TypeError::Unrepresentable { .. })
            ));
        }
    }

    #[test]
    fn money_in_the_c_locale_is_a_scale_two_decimal() {
        assert_eq!(
            decode(oid::MONEY, -1, "$12,345.68"),
            decimal(&[0x12, 0xD6, 0x88], 2)
        );
        assert_eq!(
            decode(oid::MONEY, -1, "-$12,345.68"),
            decimal(&[0xED, 0x29, 0x78], 2)
        );
        assert_eq!(decode(oid::MONEY, -1, "($1.00)"), decimal(&[0x9C], 2));
        assert_eq!(decode(oid::MONEY, -1, "$0.00"), decimal(&[0], 2));
        assert_eq!(decode(oid::MONEY, -1, "$5"), decimal(&[0x01, 0xF4], 2));
        assert_eq!(decode(oid::MONEY, -1, "$1.005"), decimal(&[0x65], 2));
        assert_eq!(
            decode(oid::MONEY, -1, "-$92,233,720,368,547,758.08"),
            decimal(&(i64::MIN).to_be_bytes(), 2)
        );
        assert!(dec(oid::MONEY, -1).decode(b"$").is_err());
        assert!(dec(oid::MONEY, -1).decode(b"1.2.3").is_err());
    }

    #[test]
    fn dates_count_days_from_the_epoch_including_bc_and_extremes() {
        assert_eq!(decode(oid::DATE, -1, "1970-01-01"), Datum::Int(0));
        assert_eq!(decode(oid::DATE, -1, "2024-02-29"), Datum::Int(19782));
        assert_eq!(decode(oid::DATE, -1, "1969-12-31"), Datum::Int(-1));
        assert_eq!(decode(oid::DATE, -1, "0001-01-01 BC"), Datum::Int(-719528));
        assert_eq!(decode(oid::DATE, -1, "4713-11-24 BC"), Datum::Int(-2440222));
        assert_eq!(
            decode(oid::DATE, -1, "5874897-12-31"),
            Datum::Int(2145042905)
        );
        assert!(dec(oid::DATE, -1).decode(b"2023-02-29").is_err());
        assert!(dec(oid::DATE, -1).decode(b"2023-13-01").is_err());
        assert!(dec(oid::DATE, -1).decode(b"01/02/2023").is_err());
    }

    #[test]
    fn infinite_dates_use_debeziums_sentinel_days() {
        assert_eq!(
            days_from_civil(5_877_611, 6, 21),
            DATE_POSITIVE_INFINITY_DAYS
        );
        assert_eq!(
            days_from_civil(-5_877_611, 6, 22),
            DATE_NEGATIVE_INFINITY_DAYS
        );
        assert_eq!(
            decode(oid::DATE, -1, "infinity"),
            Datum::Int(DATE_POSITIVE_INFINITY_DAYS)
        );
        assert_eq!(
            decode(oid::DATE, -1, "-infinity"),
            Datum::Int(DATE_NEGATIVE_INFINITY_DAYS)
        );
    }

    #[test]
    fn civil_conversion_round_trips_over_the_whole_postgres_range() {
        for days in (-2_500_000..2_500_000).step_by(997).chain([
            -2_440_222,
            0,
            2_145_042_905,
            DATE_NEGATIVE_INFINITY_DAYS,
        ]) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn times_are_micros_or_millis_of_the_day() {
        assert_eq!(decode(oid::TIME, -1, "00:00:00"), Datum::Int(0));
        assert_eq!(
            decode(oid::TIME, -1, "23:59:59.999999"),
            Datum::Int(86_399_999_999)
        );
        assert_eq!(
            decode(oid::TIME, -1, "24:00:00"),
            Datum::Int(86_400_000_000)
        );
        assert_eq!(
            decode(oid::TIME, -1, "12:00:00.5"),
            Datum::Int(43_200_500_000)
        );
        assert_eq!(decode(oid::TIME, 3, "10:00:00.123"), Datum::Int(36_000_123));
        assert_eq!(decode(oid::TIME, 0, "24:00:00"), Datum::Int(86_400_000));
        assert!(dec(oid::TIME, -1).decode(b"24:00:01").is_err());
        assert!(dec(oid::TIME, -1).decode(b"10:00").is_err());
        assert!(dec(oid::TIME, -1).decode(b"10:00:00.1234567").is_err());
    }

    #[test]
    fn timestamps_are_epoch_micros_or_millis_including_bc_and_extremes() {
        assert_eq!(
            decode(oid::TIMESTAMP, -1, "2024-01-02 03:04:05.123456"),
            Datum::Int(1_704_164_645_123_456)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, 3, "2024-01-02 03:04:05.123"),
            Datum::Int(1_704_164_645_123)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, -1, "1969-12-31 23:59:59.5"),
            Datum::Int(-500_000)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, 3, "1969-12-31 23:59:59.5"),
            Datum::Int(-500)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, 3, "294276-12-31 23:59:59.999"),
            Datum::Int(9_224_318_015_999_999)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, -1, "294247-01-10 04:00:54.775807"),
            Datum::Int(i64::MAX)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, -1, "4713-11-24 00:00:00 BC"),
            Datum::Int(-210_835_180_800_000_000)
        );
        assert!(dec(oid::TIMESTAMP, -1)
            .decode(b"2024-01-02T03:04:05")
            .is_err());
    }

    #[test]
    fn timestamps_beyond_int64_micros_are_null_when_optional_and_errors_otherwise() {
        let text = b"294276-12-31 23:59:59.999999";
        assert_eq!(dec(oid::TIMESTAMP, -1).decode(text), Ok(Datum::Null));
        let strict = PgColumnDecoder::new(&catalog(), oid::TIMESTAMP, -1, false);
        assert_eq!(
            strict.decode(text),
            Err(TypeError::OutOfRange {
                type_name: "timestamp"
            })
        );
        assert_eq!(
            decode(oid::TIMESTAMPTZ, -1, "294276-12-31 23:59:59.999999+00"),
            s("+294276-12-31T23:59:59.999999Z")
        );
    }

    #[test]
    fn infinite_timestamps_use_debeziums_sentinels() {
        assert_eq!(
            decode(oid::TIMESTAMP, -1, "infinity"),
            Datum::Int(TIMESTAMP_POSITIVE_INFINITY_MICROS)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, -1, "-infinity"),
            Datum::Int(TIMESTAMP_NEGATIVE_INFINITY_MICROS)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, 2, "infinity"),
            Datum::Int(TIMESTAMP_POSITIVE_INFINITY_MILLIS)
        );
        assert_eq!(
            decode(oid::TIMESTAMP, 2, "-infinity"),
            Datum::Int(TIMESTAMP_NEGATIVE_INFINITY_MILLIS)
        );
        assert_eq!(decode(oid::TIMESTAMPTZ, -1, "infinity"), s("infinity"));
        assert_eq!(decode(oid::TIMESTAMPTZ, -1, "-infinity"), s("-infinity"));
    }

    #[test]
    fn timestamptz_becomes_an_iso_utc_string_like_java_prints_it() {
        let tz = |t| decode(oid::TIMESTAMPTZ, -1, t);
        assert_eq!(
            tz("2024-01-02 03:04:05.123456+00"),
            s("2024-01-02T03:04:05.123456Z")
        );
        assert_eq!(tz("2024-01-02 03:04:05+00"), s("2024-01-02T03:04:05Z"));
        assert_eq!(tz("2024-01-02 03:04:05.1+00"), s("2024-01-02T03:04:05.1Z"));
        assert_eq!(
            tz("2024-01-02 03:04:05.120+00"),
            s("2024-01-02T03:04:05.12Z")
        );
        assert_eq!(tz("2024-01-01 01:30:00+05:30"), s("2023-12-31T20:00:00Z"));
        assert_eq!(
            tz("2024-01-01 00:00:00-03:30:15"),
            s("2024-01-01T03:30:15Z")
        );
        assert_eq!(tz("0044-03-15 10:00:00+00 BC"), s("-0043-03-15T10:00:00Z"));
        assert_eq!(tz("0001-01-01 00:00:00+00 BC"), s("0000-01-01T00:00:00Z"));
        assert_eq!(tz("10000-01-01 00:00:00+00"), s("+10000-01-01T00:00:00Z"));
        assert!(dec(oid::TIMESTAMPTZ, -1)
            .decode(b"2024-01-02 03:04:05")
            .is_err());
    }

    #[test]
    fn timetz_becomes_a_utc_time_string() {
        let tz = |t| decode(oid::TIMETZ, -1, t);
        assert_eq!(tz("10:15:30.123+05:30"), s("04:45:30.123Z"));
        assert_eq!(tz("10:15:30-03:30:15"), s("13:45:45Z"));
        assert_eq!(tz("00:00:00.000001+14"), s("10:00:00.000001Z"));
        assert_eq!(tz("23:00:00-02"), s("01:00:00Z"));
        assert_eq!(tz("24:00:00+00"), s("00:00:00Z"));
        assert!(dec(oid::TIMETZ, -1).decode(b"10:15:30").is_err());
    }

    #[test]
    fn intervals_follow_microduration_with_average_month_length() {
        let iv = |t| decode(oid::INTERVAL, -1, t);
        let day = 86_400_000_000i64;
        assert_eq!(iv("PT0S"), Datum::Int(0));
        assert_eq!(iv("P1D"), Datum::Int(day));
        assert_eq!(iv("P1M"), Datum::Int(2_629_800_000_000));
        assert_eq!(iv("P1Y"), Datum::Int(31_557_600_000_000));
        assert_eq!(iv("PT-0.5S"), Datum::Int(-500_000));
        assert_eq!(iv("P1DT-1S"), Datum::Int(day - 1_000_000));
        assert_eq!(
            iv("P1Y2M3DT4H5M6.5S"),
            Datum::Int(31_557_600_000_000 + 2 * 2_629_800_000_000 + 3 * day + 14_706_500_000)
        );
        // Beyond i64 microseconds the value saturates, like Java's (long) cast.
        assert_eq!(iv("P178000000Y"), Datum::Int(i64::MAX));
        assert_eq!(iv("P-178000000Y"), Datum::Int(i64::MIN));
        assert_eq!(iv("P100000Y"), Datum::Int(3_155_760_000_000_000_000));
        assert_eq!(iv("infinity"), Datum::Int(i64::MAX));
        assert_eq!(iv("-infinity"), Datum::Int(i64::MIN));
        assert!(dec(oid::INTERVAL, -1).decode(b"P1X").is_err());
        assert!(dec(oid::INTERVAL, -1).decode(b"").is_err());
    }

    #[test]
    fn postgres_style_intervals_give_the_same_microseconds() {
        let iv = |t| decode(oid::INTERVAL, -1, t);
        assert_eq!(
            iv("1 year 2 mons 3 days 04:05:06.5"),
            iv("P1Y2M3DT4H5M6.5S")
        );
        assert_eq!(
            iv("-1 years -2 mons +3 days -04:05:06.25"),
            iv("P-1Y-2M3DT-4H-5M-6.25S")
        );
        assert_eq!(iv("1 day -00:00:01"), iv("P1DT-1S"));
        assert_eq!(iv("00:00:00"), Datum::Int(0));
        assert!(dec(oid::INTERVAL, -1).decode(b"1 fortnight").is_err());
    }

    #[test]
    fn bit_strings_become_little_endian_minimal_bytes() {
        let bits = |t| decode(oid::VARBIT, -1, t);
        assert_eq!(bits("101"), Datum::Bytes(Cow::Owned(vec![0b101])));
        assert_eq!(
            bits("1000000001"),
            Datum::Bytes(Cow::Owned(vec![0x01, 0x02]))
        );
        assert_eq!(bits("0000"), Datum::Bytes(Cow::Owned(vec![])));
        assert_eq!(bits("11111111"), Datum::Bytes(Cow::Owned(vec![0xFF])));
        assert!(dec(oid::VARBIT, -1).decode(b"102").is_err());
    }

    #[test]
    fn hstore_becomes_a_json_object() {
        assert_eq!(
            decode(
                90005,
                -1,
                "\"a\"=>\"1\", \"b\"=>NULL, \"c\\\"d\"=>\"x\\\\y\""
            ),
            s("{\"a\":\"1\",\"b\":null,\"c\\\"d\":\"x\\\\y\"}")
        );
        assert_eq!(decode(90005, -1, ""), s("{}"));
        assert!(dec(90005, -1).decode(b"a=>1").is_err());
    }

    #[test]
    fn arrays_handle_nulls_quotes_escapes_and_bounds() {
        let ints = |t| decode(1007, -1, t);
        assert_eq!(
            ints("{1,NULL,3}"),
            Datum::Array(vec![Datum::Int(1), Datum::Null, Datum::Int(3)])
        );
        assert_eq!(ints("{}"), Datum::Array(vec![]));
        assert_eq!(
            ints("[0:1]={1,2}"),
            Datum::Array(vec![Datum::Int(1), Datum::Int(2)])
        );
        assert_eq!(
            decode(1009, -1, r#"{"a,b","c\"d","e\\f","NULL",""," x ",plain}"#),
            Datum::Array(vec![
                s("a,b"),
                s("c\"d"),
                s("e\\f"),
                s("NULL"),
                s(""),
                s(" x "),
                s("plain")
            ])
        );
        assert!(dec(1007, -1).decode(b"{1,2").is_err());
        assert!(dec(1007, -1).decode(b"1,2").is_err());
        assert!(dec(1007, -1).decode(b"{1}}").is_err());
        assert!(dec(1007, -1).decode(b"{\"1}").is_err());
    }

    #[test]
    fn multidimensional_arrays_are_flattened_row_major() {
        assert_eq!(
            decode(1007, -1, "{{1,2},{3,4}}"),
            Datum::Array(vec![
                Datum::Int(1),
                Datum::Int(2),
                Datum::Int(3),
                Datum::Int(4)
            ])
        );
        assert_eq!(
            decode(1007, -1, "{{{1}},{{NULL}}}"),
            Datum::Array(vec![Datum::Int(1), Datum::Null])
        );
        let deep = format!("{}1{}", "{".repeat(40), "}".repeat(40));
        assert!(dec(1007, -1).decode(deep.as_bytes()).is_err());
    }

    #[test]
    fn array_elements_use_the_element_decoder() {
        assert_eq!(
            decode(1231, numeric_typmod(5, 2), "{1.5,NaN,NULL}"),
            Datum::Array(vec![decimal(&[0x00, 0x96], 2), Datum::Null, Datum::Null])
        );
        assert_eq!(
            decode(1185, -1, r#"{"2020-01-01 00:00:00+00",infinity}"#),
            Datum::Array(vec![s("2020-01-01T00:00:00Z"), s("infinity")])
        );
        assert_eq!(
            decode(1001, -1, r#"{"\\x01",NULL}"#),
            Datum::Array(vec![Datum::Bytes(Cow::Owned(vec![1])), Datum::Null])
        );
        assert_eq!(
            decode(90002, -1, "{red,blue}"),
            Datum::Array(vec![s("red"), s("blue")])
        );
        assert_eq!(
            decode(1020, -1, "{(3,4),(1,2);(1,1),(0,0)}"),
            Datum::Array(vec![s("(3,4),(1,2)"), s("(1,1),(0,0)")])
        );
    }

    #[test]
    fn catalog_rows_become_typed_entries() {
        let c = catalog();
        assert_eq!(c.len(), 10);
        assert_eq!(
            c.get(90003).map(|t| &t.kind),
            Some(&PgTypeKind::Domain {
                base: oid::NUMERIC,
                typmod: (10 << 16 | 2) + 4
            })
        );
        assert_eq!(
            c.get(90002).map(|t| &t.kind),
            Some(&PgTypeKind::Array { elem: 90001 })
        );
        assert_eq!(c.get(90008).map(|t| &t.kind), Some(&PgTypeKind::Composite));
    }

    #[test]
    fn garbage_input_never_panics() {
        let c = catalog();
        let oids = [
            oid::BOOL,
            oid::INT2,
            oid::INT8,
            oid::FLOAT4,
            oid::NUMERIC,
            oid::MONEY,
            oid::DATE,
            oid::TIME,
            oid::TIMESTAMP,
            oid::TIMESTAMPTZ,
            oid::TIMETZ,
            oid::INTERVAL,
            oid::BIT,
            oid::VARBIT,
            oid::BYTEA,
            1007,
            1009,
            1185,
            90005,
            90002,
        ];
        let inputs: [&[u8]; 20] = [
            b"",
            b"-",
            b"+",
            b".",
            b"\\",
            b"{",
            b"}",
            b"{\\",
            b"\"",
            b"P",
            b"PT",
            b"--",
            b"99999999999999999999-01-01",
            b"2024-01-01 25:00:00+99:99",
            b"\xff\xfe",
            b"1 year 2",
            b"999999999999999999-01-01",
            b"999999999999999999-01-01 00:00:00+00",
            b"P999999999999999999Y999999999999999999M",
            b"999999999999999999 years 99:99:99",
        ];
        for o in oids {
            for typmod in [-1, 3, numeric_typmod(5, 2)] {
                let d = PgColumnDecoder::new(&c, o, typmod, false);
                for input in inputs {
                    let _ = d.decode(input);
                }
            }
        }
    }

    #[test]
    fn random_text_never_panics_any_decoder() {
        let c = catalog();
        let decoders: Vec<PgColumnDecoder> = [
            (oid::BOOL, -1),
            (oid::INT2, -1),
            (oid::INT8, -1),
            (oid::FLOAT8, -1),
            (oid::NUMERIC, -1),
            (oid::NUMERIC, numeric_typmod(6, 3)),
            (oid::MONEY, -1),
            (oid::DATE, -1),
            (oid::TIME, 2),
            (oid::TIMESTAMP, -1),
            (oid::TIMESTAMP, 3),
            (oid::TIMESTAMPTZ, -1),
            (oid::TIMETZ, -1),
            (oid::INTERVAL, -1),
            (oid::VARBIT, -1),
            (oid::BYTEA, -1),
            (1007, -1),
            (1009, -1),
            (1185, -1),
            (1231, -1),
            (90005, -1),
        ]
        .into_iter()
        .map(|(o, t)| PgColumnDecoder::new(&c, o, t, false))
        .collect();
        let alphabet = b"0123456789-+.:, {}\"\\PYMDTHSBCinfty$()=>NULLax";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as usize
        };
        for _ in 0..20_000 {
            let len = next() % 40;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            for d in &decoders {
                let _ = d.decode(&text);
            }
        }
    }
}
