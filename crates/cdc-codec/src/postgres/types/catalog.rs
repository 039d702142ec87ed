//! The type catalog: built-in oids known without a query, and [`TypeCatalog`], the types a
//! database defines (domains, enums, arrays, extension types) loaded from its catalog rows.

use std::collections::HashMap;

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
pub(super) const BUILTIN_ARRAYS: &[(u32, u32, &str, u8)] = &[
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
