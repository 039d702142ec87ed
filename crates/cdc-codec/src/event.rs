//! The event model every source produces and every encoder consumes.
//!
//! It is shaped after Kafka Connect's schemas as Debezium 3.x uses them, because the goal is
//! that Debezium consumers read our events unchanged: a [`ColumnType`] names the Connect type
//! and semantic name (`io.debezium.time.MicroTimestamp`, …) a column gets, and a [`Datum`] is
//! one value already converted to that representation (days, microseconds, unscaled decimal
//! bytes, …). Sources decide the mapping (PostgreSQL and MySQL differ); the encoder only
//! serializes.
//!
//! Datums borrow from the source's receive buffer where they can, so a row is converted
//! without copying its strings.

use std::borrow::Cow;
use std::sync::Arc;

/// `<schema>.<table>` (PostgreSQL) or `<database>.<table>` (MySQL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    /// PostgreSQL schema, or MySQL database.
    pub schema: Arc<str>,
    /// Table name.
    pub table: Arc<str>,
}

impl TableId {
    /// A table id from its parts.
    pub fn new(schema: &str, table: &str) -> Self {
        Self {
            schema: schema.into(),
            table: table.into(),
        }
    }
}

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// The Connect type (and Debezium semantic type) of a column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// `boolean`.
    Boolean,
    /// Connect `int16`: Avro `int` with `connect.type = int16`.
    Int16,
    /// Connect `int32`: Avro `int`.
    Int32,
    /// Connect `int64`: Avro `long`.
    Int64,
    /// Connect `float32`: Avro `float`.
    Float32,
    /// Connect `float64`: Avro `double`.
    Float64,
    /// Avro `string`.
    String,
    /// Avro `bytes`.
    Bytes,
    /// `org.apache.kafka.connect.data.Decimal`: bytes, big-endian two's complement unscaled
    /// value, fixed scale.
    Decimal {
        /// Declared precision, when the column has one.
        precision: Option<u32>,
        /// Fixed scale.
        scale: u32,
    },
    /// `io.debezium.data.VariableScaleDecimal`: record `{scale: int, value: bytes}` for
    /// numerics declared without precision.
    VariableScaleDecimal,
    /// `io.debezium.time.Date`: int, days since the epoch.
    Date,
    /// `io.debezium.time.Time`: int, milliseconds of the day (time(0..3)).
    Time,
    /// `io.debezium.time.MicroTime`: long, microseconds of the day.
    MicroTime,
    /// `io.debezium.time.Timestamp`: long, milliseconds since the epoch, no time zone.
    Timestamp,
    /// `io.debezium.time.MicroTimestamp`: long, microseconds since the epoch, no time zone.
    MicroTimestamp,
    /// `io.debezium.time.ZonedTimestamp`: string, ISO-8601 in UTC.
    ZonedTimestamp,
    /// `io.debezium.time.ZonedTime`: string, ISO-8601 time with offset.
    ZonedTime,
    /// `io.debezium.time.MicroDuration`: long, microseconds (a month counts 365.25 / 12 days,
    /// as Debezium's `MicroDuration.DAYS_PER_MONTH_AVG`).
    MicroDuration,
    /// `io.debezium.time.Year`: int.
    Year,
    /// `io.debezium.data.Json`: string.
    Json,
    /// `io.debezium.data.Uuid`: string.
    Uuid,
    /// `io.debezium.data.Enum`: string, with the allowed values.
    Enum(Vec<String>),
    /// `io.debezium.data.EnumSet`: string, comma-separated, with the allowed values.
    EnumSet(Vec<String>),
    /// `io.debezium.data.Bits`: bytes, the bit string as a little-endian integer (the last bit
    /// of the string is bit 0), without high zero bytes, as Debezium writes it.
    Bits {
        /// Declared bit length.
        length: u32,
    },
    /// Connect `array` of the element type; elements are optional.
    Array(Box<ColumnType>),
    /// `io.debezium.data.Xml`: string (PostgreSQL `xml`).
    Xml,
    /// `io.debezium.data.Ltree`: string (PostgreSQL `ltree` extension type).
    Ltree,
    /// `io.debezium.data.Tsvector`: string (PostgreSQL `tsvector`).
    TsVector,
    /// `io.debezium.data.geometry.Geometry`: record `{wkb: bytes, srid: optional int}`
    /// (MySQL spatial types other than POINT).
    Geometry,
    /// `io.debezium.data.geometry.Point`: record `{x: double, y: double, wkb: optional bytes,
    /// srid: optional int}` (MySQL POINT); its datum is a [`Datum::Geometry`] holding a WKB
    /// point, from which the encoder takes x and y.
    Point,
}

/// One column of a table as the event schemas show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Connect type.
    pub ty: ColumnType,
    /// Whether NULL is allowed (Avro union with null).
    pub optional: bool,
    /// The database's own type name (`int4`, `varchar`, …), for docs and logs.
    pub source_type: String,
    /// The column's constant default as the Avro JSON of its type (`5`, `"open"`, `true`),
    /// written as the field's default so that a column added with `NOT NULL DEFAULT x` stays
    /// backward compatible in the registry. `None`: no default, or one that is not a constant
    /// (`now()`, `nextval(…)`).
    pub default: Option<String>,
}

/// The shape of a table's events: columns in table order and the key columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableSchema {
    /// Which table.
    pub id: TableId,
    /// Every captured column, in table order.
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary-key (or replica-identity) columns, in key order.
    pub key: Vec<usize>,
}

/// One value, already in the representation its [`ColumnType`] prescribes.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum<'a> {
    /// SQL NULL.
    Null,
    /// `Boolean`.
    Bool(bool),
    /// `Int16`, `Int32`, `Int64`, `Date`, `Time`, `MicroTime`, `Timestamp`, `MicroTimestamp`,
    /// `MicroDuration`, `Year`: the integer the Connect type stores.
    Int(i64),
    /// `Float32`, `Float64`.
    Float(f64),
    /// Every string-shaped type.
    Str(Cow<'a, str>),
    /// `Bytes`, `Bits`.
    Bytes(Cow<'a, [u8]>),
    /// `Decimal` and `VariableScaleDecimal`: unscaled big-endian two's-complement bytes.
    Decimal {
        /// Unscaled value.
        unscaled: Cow<'a, [u8]>,
        /// Scale of this value.
        scale: u32,
    },
    /// `Array`.
    Array(Vec<Datum<'a>>),
    /// `Geometry`: well-known binary and the spatial reference id.
    Geometry {
        /// The geometry as OGC well-known binary.
        wkb: Cow<'a, [u8]>,
        /// Spatial reference system id, when known.
        srid: Option<i32>,
    },
    /// A TOASTed value the database did not send because it did not change. The encoder
    /// writes the configured placeholder; it is never silently null.
    Unchanged,
}

impl Datum<'_> {
    /// The same value with every borrow copied, for values that must outlive the buffer they
    /// were parsed from (array elements unescaped into a temporary, values kept across events).
    pub fn into_owned(self) -> Datum<'static> {
        match self {
            Datum::Null => Datum::Null,
            Datum::Bool(b) => Datum::Bool(b),
            Datum::Int(i) => Datum::Int(i),
            Datum::Float(f) => Datum::Float(f),
            Datum::Str(s) => Datum::Str(Cow::Owned(s.into_owned())),
            Datum::Bytes(b) => Datum::Bytes(Cow::Owned(b.into_owned())),
            Datum::Decimal { unscaled, scale } => Datum::Decimal {
                unscaled: Cow::Owned(unscaled.into_owned()),
                scale,
            },
            Datum::Array(items) => Datum::Array(items.into_iter().map(Datum::into_owned).collect()),
            Datum::Geometry { wkb, srid } => Datum::Geometry {
                wkb: Cow::Owned(wkb.into_owned()),
                srid,
            },
            Datum::Unchanged => Datum::Unchanged,
        }
    }
}

/// What happened to a row. The single letters are Debezium's `op` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `c`: insert.
    Create,
    /// `u`: update.
    Update,
    /// `d`: delete.
    Delete,
    /// `r`: a row read by the snapshot.
    Read,
    /// `t`: table truncated.
    Truncate,
}

impl Op {
    /// Debezium's one-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }
}

/// Debezium's `transaction` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo<'a> {
    /// Transaction id as Debezium writes it (`<txId>:<lsn>` for PostgreSQL).
    pub id: Cow<'a, str>,
    /// Position of the event among all events of the transaction, from 1.
    pub total_order: i64,
    /// Position of the event among the transaction's events of the same table, from 1.
    pub data_collection_order: i64,
}

/// The `source` block of a PostgreSQL event (`io.debezium.connector.postgresql.Source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSource<'a> {
    /// Logical name of the source (the `topic_prefix`).
    pub name: &'a str,
    /// Commit time in microseconds since the epoch (ts_ms/ts_us/ts_ns are derived).
    pub ts_us: i64,
    /// `true`, `first`, `last`, `false`, …
    pub snapshot: &'a str,
    /// Database name.
    pub db: &'a str,
    /// `["<last commit lsn>","<lsn>"]` as Debezium writes it.
    pub sequence: Option<Cow<'a, str>>,
    /// Schema.
    pub schema: &'a str,
    /// Table.
    pub table: &'a str,
    /// Transaction id.
    pub tx_id: Option<i64>,
    /// LSN of the change.
    pub lsn: Option<i64>,
    /// `xmin` (not sent by pgoutput; always null, as in Debezium without xmin tracking).
    pub xmin: Option<i64>,
}

/// The `source` block of a MySQL/MariaDB event (`io.debezium.connector.mysql.Source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlSource<'a> {
    /// Logical name of the source (the `topic_prefix`).
    pub name: &'a str,
    /// Event time in microseconds since the epoch (binlog timestamps have whole seconds;
    /// snapshot reads carry the snapshot's start).
    pub ts_us: i64,
    /// `true`, `last`, `false`, …
    pub snapshot: &'a str,
    /// Database name.
    pub db: &'a str,
    /// Table name.
    pub table: &'a str,
    /// `server_id` of the server that wrote the event (0 for snapshot reads).
    pub server_id: i64,
    /// GTID of the transaction (`domain-server-seq` on MariaDB).
    pub gtid: Option<&'a str>,
    /// Binlog file of the event.
    pub file: &'a str,
    /// Position of the event in that file (of the transaction's start for rows events, as
    /// Debezium writes it).
    pub pos: i64,
    /// Index of the row within its rows event, from 0.
    pub row: i32,
    /// Thread (connection) id that made the change, when known.
    pub thread: Option<i64>,
    /// The statement (`binlog_annotate_row_events`), when query inclusion is on.
    pub query: Option<&'a str>,
}

/// The `source` block, per connector kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceBlock<'a> {
    /// PostgreSQL.
    Postgres(PostgresSource<'a>),
    /// MySQL / MariaDB.
    Mysql(MysqlSource<'a>),
}

impl<'a> SourceBlock<'a> {
    /// Sets `snapshot` (`true`, `first`, `last`, `incremental`, `false`).
    pub fn set_snapshot(&mut self, marker: &'a str) {
        match self {
            SourceBlock::Postgres(p) => p.snapshot = marker,
            SourceBlock::Mysql(m) => m.snapshot = marker,
        }
    }
}

/// One change, borrowed from the source's buffers for the time it takes to encode it.
#[derive(Debug, Clone)]
pub struct ChangeEvent<'a> {
    /// The table's schema (columns of `before` and `after` are in this order).
    pub table: &'a TableSchema,
    /// What happened.
    pub op: Op,
    /// The row before the change (update with old values, delete).
    pub before: Option<&'a [Datum<'a>]>,
    /// The row after the change (insert, update, snapshot read).
    pub after: Option<&'a [Datum<'a>]>,
    /// Where the change comes from.
    pub source: SourceBlock<'a>,
    /// When the agent processed the change, microseconds since the epoch (`ts_ms`, `ts_us`,
    /// `ts_ns` of the envelope).
    pub processed_us: i64,
    /// Transaction metadata, when the change belongs to a transaction.
    pub transaction: Option<TransactionInfo<'a>>,
}
