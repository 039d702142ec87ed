//! Debezium-compatible Avro schemas and hand-written Avro binary encoding.
//!
//! The schema JSON is what Confluent's `AvroData` (default settings: `connect.meta.data=true`,
//! no enhanced schema support) produces for the Connect schemas of Debezium 3.1+: the same
//! property order, union order and defaults, so that the registry stores the same schema a
//! Debezium connector would register and identical tables always yield identical text.
//!
//! The binary encoding writes straight from [`Datum`]s into the caller's buffer instead of
//! building `apache_avro::Value` trees, which allocate per field and validate per datum; see
//! `docs/decisions/0003-avro-encoding.md`. The schema is still parsed by `apache-avro` in the
//! tests, which decode everything this module writes.
//!
//! Value rules that are not plain type mappings:
//! * `Datum::Null` in an optional column is the union's null branch. In a non-optional column
//!   it is written as the type's zero value (`0`, `false`, `""`, empty bytes, empty array,
//!   `"1970-01-01T00:00:00Z"` for zoned timestamps, `"00:00:00Z"` for zoned times), which is
//!   what Debezium's converters emit for absent values, e.g. the non-key columns of a delete's
//!   before-image under `REPLICA IDENTITY DEFAULT`.
//! * `Datum::Unchanged` (a TOASTed value PostgreSQL did not send) becomes the unavailable-value
//!   placeholder: the placeholder text for string-typed columns, the placeholder bytes for
//!   `Bytes`/`Bits` columns, `[placeholder]` for arrays of strings and the placeholder bytes
//!   as numbers for arrays of integers (as Debezium does). For every other type it is null
//!   when the column is optional and an [`EncodeError::Unchanged`] otherwise.
//! * A datum of the wrong shape, an integer outside its Avro type or a decimal with another
//!   scale than the column's is an [`EncodeError`] naming table and column; nothing panics.

#![warn(missing_docs)]

use std::borrow::Cow;
use std::collections::HashMap;

use crate::event::{ChangeEvent, ColumnType, Datum, SourceBlock, TableId, TableSchema};
use cdc_codec::json::json_string;

/// The Avro JSON default of a column of type `ty` whose default value is `value` (decoded as
/// any value of the column), for the types whose Avro form is a JSON number, boolean or
/// string. `None` for the others (bytes, decimals, records): such a column gets no default.
pub fn avro_default(ty: &ColumnType, value: &Datum<'_>) -> Option<String> {
    use ColumnType as T;
    match (ty, value) {
        (T::Boolean, Datum::Bool(b)) => Some(b.to_string()),
        (
            T::Int16
            | T::Int32
            | T::Int64
            | T::Date
            | T::Time
            | T::MicroTime
            | T::Timestamp
            | T::MicroTimestamp
            | T::MicroDuration
            | T::Year,
            Datum::Int(i),
        ) => Some(i.to_string()),
        (T::Float32 | T::Float64, Datum::Float(f)) if f.is_finite() => Some(format!("{f:?}")),
        (
            T::String
            | T::Json
            | T::Uuid
            | T::Enum(_)
            | T::EnumSet(_)
            | T::ZonedTimestamp
            | T::ZonedTime,
            Datum::Str(s),
        ) => {
            let mut out = String::with_capacity(s.len() + 2);
            json_string(&mut out, s);
            Some(out)
        }
        _ => None,
    }
}
/// First byte of every Confluent-framed message.
pub const MAGIC_BYTE: u8 = 0;

/// Debezium's default `unavailable.value.placeholder`.
pub const DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER: &[u8] = b"__debezium_unavailable_value";

/// What the `source.version` field says by default. Debezium writes its own release there;
/// we name ourselves so nobody mistakes our events for a Debezium connector's.
pub const DEFAULT_SOURCE_VERSION: &str = concat!("cdc-agent-", env!("CARGO_PKG_VERSION"));

/// `Envelope.SCHEMA_VERSION` of Debezium 3.x.
const ENVELOPE_VERSION: u32 = 2;

/// Which connector's `source` block the events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorKind {
    /// `io.debezium.connector.postgresql.Source`.
    Postgres,
    /// `io.debezium.connector.mysql.Source` (MySQL and MariaDB).
    Mysql,
}

impl ConnectorKind {
    /// The `source.connector` value.
    fn connector(self) -> &'static str {
        match self {
            ConnectorKind::Postgres => "postgresql",
            ConnectorKind::Mysql => "mysql",
        }
    }
}

/// Settings of a codec that Debezium makes configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecOptions {
    /// Value of `source.version`.
    pub source_version: String,
    /// Debezium's `unavailable.value.placeholder`: what unchanged TOASTed values become.
    pub unavailable_value_placeholder: Vec<u8>,
}

impl Default for CodecOptions {
    fn default() -> Self {
        Self {
            source_version: DEFAULT_SOURCE_VERSION.to_owned(),
            unavailable_value_placeholder: DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER.to_vec(),
        }
    }
}

/// Why a schema could not be built or an event could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The datum's shape does not match the column's type.
    #[error("{table}.{column}: a {datum} datum does not fit column type {expected}")]
    TypeMismatch {
        /// `schema.table`.
        table: String,
        /// Column name.
        column: String,
        /// The column's type.
        expected: &'static str,
        /// The datum's shape.
        datum: &'static str,
    },
    /// An integer does not fit the column's Avro type (`int` for int16/int32/dates/times).
    #[error("{table}.{column}: value out of range for {expected}")]
    OutOfRange {
        /// `schema.table`.
        table: String,
        /// Column name.
        column: String,
        /// The column's type.
        expected: &'static str,
    },
    /// A decimal's scale differs from the column's fixed scale, or its bytes are empty.
    #[error(
        "{table}.{column}: decimal with scale {got} (or no digits) in a column of scale {expected}"
    )]
    DecimalScale {
        /// `schema.table`.
        table: String,
        /// Column name.
        column: String,
        /// The column's scale.
        expected: u32,
        /// The datum's scale.
        got: u32,
    },
    /// An unchanged TOASTed value in a non-optional column whose type has no placeholder.
    #[error(
        "{table}.{column}: unchanged TOASTed value has no placeholder for type {expected} \
         and the column is not optional"
    )]
    Unchanged {
        /// `schema.table`.
        table: String,
        /// Column name.
        column: String,
        /// The column's type.
        expected: &'static str,
    },
    /// A row does not have one datum per column.
    #[error("{table}: row has {got} values but the table has {expected} columns")]
    RowLength {
        /// `schema.table`.
        table: String,
        /// Number of columns.
        expected: usize,
        /// Number of datums.
        got: usize,
    },
    /// The event belongs to another table than the codec.
    #[error("codec for {table} got an event of {got}")]
    WrongTable {
        /// The codec's `schema.table`.
        table: String,
        /// The event's `schema.table`.
        got: String,
    },
    /// The table has no key columns, so its events have a null key.
    #[error("{table}: the table has no key columns")]
    NoKey {
        /// `schema.table`.
        table: String,
    },
    /// A key index points past the columns.
    #[error("{table}: key column index {index} is out of range")]
    BadKeyIndex {
        /// `schema.table`.
        table: String,
        /// The bad index.
        index: usize,
    },
    /// Two columns map to the same Avro field name after invalid characters were replaced.
    #[error("{table}: columns {first} and {second} both become Avro field {field}")]
    NameCollision {
        /// `schema.table`.
        table: String,
        /// First column.
        first: String,
        /// Second column.
        second: String,
        /// The shared Avro name.
        field: String,
    },
}

/// Schemas and encoders of one table's key and change events.
///
/// Built once per (topic prefix, table shape, connector kind); cheap to share between
/// threads since it is immutable.
#[derive(Debug, Clone)]
pub struct TableCodec {
    kind: ConnectorKind,
    table_id: TableId,
    table: String,
    key_schema: Option<String>,
    value_schema: String,
    columns: Vec<FieldEnc>,
    key: Vec<usize>,
    source_version: String,
    placeholder: Vec<u8>,
    placeholder_str: String,
}

impl TableCodec {
    /// A codec with Debezium's default options.
    pub fn new(
        topic_prefix: &str,
        table: &TableSchema,
        kind: ConnectorKind,
    ) -> Result<Self, EncodeError> {
        Self::with_options(topic_prefix, table, kind, &CodecOptions::default())
    }

    /// A codec with explicit options.
    pub fn with_options(
        topic_prefix: &str,
        table: &TableSchema,
        kind: ConnectorKind,
        options: &CodecOptions,
    ) -> Result<Self, EncodeError> {
        let label = table.id.to_string();
        let namespace = format!(
            "{}.{}.{}",
            avro_fullname(topic_prefix),
            avro_name(&table.id.schema),
            avro_name(&table.id.table)
        );

        // Field name -> the column it came from, to report collisions created by adjustment.
        let mut seen: HashMap<String, &str> = HashMap::with_capacity(table.columns.len());
        let mut field_names = Vec::with_capacity(table.columns.len());
        for column in &table.columns {
            let name = avro_name(&column.name).into_owned();
            if let Some(first) = seen.insert(name.clone(), &column.name) {
                return Err(EncodeError::NameCollision {
                    table: label,
                    first: first.to_owned(),
                    second: column.name.clone(),
                    field: name,
                });
            }
            field_names.push(name);
        }
        for &index in &table.key {
            if index >= table.columns.len() {
                return Err(EncodeError::BadKeyIndex {
                    table: label,
                    index,
                });
            }
        }

        let key_schema = if table.key.is_empty() {
            None
        } else {
            let mut w = SchemaWriter::new(&namespace);
            w.out
                .push_str("{\"type\":\"record\",\"name\":\"Key\",\"namespace\":");
            json_string(&mut w.out, &namespace);
            w.out.push_str(",\"fields\":[");
            for (i, &index) in table.key.iter().enumerate() {
                if i > 0 {
                    w.out.push(',');
                }
                let column = &table.columns[index];
                w.field(&field_names[index], &column.ty, column.optional, None);
            }
            w.out.push_str("],\"connect.name\":");
            json_string(&mut w.out, &format!("{namespace}.Key"));
            w.out.push('}');
            Some(w.out)
        };

        let mut w = SchemaWriter::new(&namespace);
        w.out
            .push_str("{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":");
        json_string(&mut w.out, &namespace);
        w.out.push_str(
            ",\"fields\":[{\"name\":\"before\",\"type\":[\"null\",{\"type\":\"record\",\
             \"name\":\"Value\",\"fields\":[",
        );
        for (i, column) in table.columns.iter().enumerate() {
            if i > 0 {
                w.out.push(',');
            }
            w.field(
                &field_names[i],
                &column.ty,
                column.optional,
                column.default.as_deref(),
            );
        }
        w.out.push_str("],\"connect.name\":");
        json_string(&mut w.out, &format!("{namespace}.Value"));
        w.out.push_str(
            "}],\"default\":null},{\"name\":\"after\",\"type\":[\"null\",\"Value\"],\
             \"default\":null},{\"name\":\"source\",\"type\":",
        );
        match kind {
            ConnectorKind::Postgres => w.out.push_str(POSTGRES_SOURCE_SCHEMA),
            ConnectorKind::Mysql => w.out.push_str(MYSQL_SOURCE_SCHEMA),
        }
        w.out.push_str(TRANSACTION_AND_TAIL_FIELDS);
        w.out.push_str("],\"connect.version\":");
        w.out.push_str(&ENVELOPE_VERSION.to_string());
        w.out.push_str(",\"connect.name\":");
        json_string(&mut w.out, &format!("{namespace}.Envelope"));
        w.out.push('}');
        let value_schema = w.out;

        let columns = table
            .columns
            .iter()
            .map(|c| FieldEnc {
                name: c.name.clone(),
                optional: c.optional,
                kind: Kind::of(&c.ty),
            })
            .collect();

        Ok(Self {
            kind,
            table_id: table.id.clone(),
            table: label,
            key_schema,
            value_schema,
            columns,
            key: table.key.clone(),
            source_version: options.source_version.clone(),
            placeholder_str: String::from_utf8_lossy(&options.unavailable_value_placeholder)
                .into_owned(),
            placeholder: options.unavailable_value_placeholder.clone(),
        })
    }

    /// The key schema to register (`<prefix>.<schema>.<table>.Key`), or `None` when the
    /// table has no key columns and its events carry a null key, as Debezium's do.
    pub fn key_schema(&self) -> Option<&str> {
        self.key_schema.as_deref()
    }

    /// The value (envelope) schema to register (`<prefix>.<schema>.<table>.Envelope`).
    pub fn value_schema(&self) -> &str {
        &self.value_schema
    }

    /// Appends the Confluent-framed key record of `row` (a full row in table order; the key
    /// columns are picked from it) to `out`. On error `out` is left as it was.
    pub fn encode_key(
        &self,
        row: &[Datum<'_>],
        schema_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.key.is_empty() {
            return Err(EncodeError::NoKey {
                table: self.table.clone(),
            });
        }
        self.check_row(row)?;
        let start = out.len();
        write_header(schema_id, out);
        for &index in &self.key {
            let result = match row.get(index) {
                Some(datum) => self.encode_column(index, datum, out),
                None => Err(EncodeError::BadKeyIndex {
                    table: self.table.clone(),
                    index,
                }),
            };
            if let Err(e) = result {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Appends the Confluent-framed envelope of `ev` to `out`. On error `out` is left as it
    /// was.
    pub fn encode_value(
        &self,
        ev: &ChangeEvent<'_>,
        schema_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if ev.table.id != self.table_id {
            return Err(EncodeError::WrongTable {
                table: self.table.clone(),
                got: ev.table.id.to_string(),
            });
        }
        if let Some(row) = ev.before {
            self.check_row(row)?;
        }
        if let Some(row) = ev.after {
            self.check_row(row)?;
        }
        let start = out.len();
        let result = self.write_envelope(ev, schema_id, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write_envelope(
        &self,
        ev: &ChangeEvent<'_>,
        schema_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        write_header(schema_id, out);
        for row in [ev.before, ev.after] {
            match row {
                None => write_long(0, out),
                Some(row) => {
                    write_long(1, out);
                    for (index, datum) in row.iter().enumerate() {
                        self.encode_column(index, datum, out)?;
                    }
                }
            }
        }
        match &ev.source {
            SourceBlock::Postgres(src) => {
                write_str(&self.source_version, out);
                write_str(self.kind.connector(), out);
                write_str(src.name, out);
                write_long(src.ts_us.div_euclid(1000), out);
                // The snapshot union is ["string", "null"] because its default is "false".
                write_long(0, out);
                write_str(
                    if src.snapshot.is_empty() {
                        "false"
                    } else {
                        src.snapshot
                    },
                    out,
                );
                write_str(src.db, out);
                write_opt_str(src.sequence.as_deref(), out);
                write_opt_long(Some(src.ts_us), out);
                write_opt_long(src.ts_us.checked_mul(1000), out);
                write_str(src.schema, out);
                write_str(src.table, out);
                write_opt_long(src.tx_id, out);
                write_opt_long(src.lsn, out);
                write_opt_long(src.xmin, out);
            }
            SourceBlock::Mysql(src) => {
                write_str(&self.source_version, out);
                write_str(self.kind.connector(), out);
                write_str(src.name, out);
                write_long(src.ts_us.div_euclid(1000), out);
                write_long(0, out);
                write_str(
                    if src.snapshot.is_empty() {
                        "false"
                    } else {
                        src.snapshot
                    },
                    out,
                );
                write_str(src.db, out);
                write_opt_str(None, out);
                write_opt_long(Some(src.ts_us), out);
                write_opt_long(src.ts_us.checked_mul(1000), out);
                write_opt_str(Some(src.table), out);
                write_long(src.server_id, out);
                write_opt_str(src.gtid, out);
                write_str(src.file, out);
                write_long(src.pos, out);
                write_long(i64::from(src.row), out);
                write_opt_long(src.thread, out);
                write_opt_str(src.query, out);
            }
        }
        match &ev.transaction {
            None => write_long(0, out),
            Some(tx) => {
                write_long(1, out);
                write_str(&tx.id, out);
                write_long(tx.total_order, out);
                write_long(tx.data_collection_order, out);
            }
        }
        write_str(ev.op.code(), out);
        write_opt_long(Some(ev.processed_us.div_euclid(1000)), out);
        write_opt_long(Some(ev.processed_us), out);
        write_opt_long(ev.processed_us.checked_mul(1000), out);
        Ok(())
    }

    fn check_row(&self, row: &[Datum<'_>]) -> Result<(), EncodeError> {
        if row.len() == self.columns.len() {
            Ok(())
        } else {
            Err(EncodeError::RowLength {
                table: self.table.clone(),
                expected: self.columns.len(),
                got: row.len(),
            })
        }
    }

    fn encode_column(
        &self,
        index: usize,
        datum: &Datum<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let Some(field) = self.columns.get(index) else {
            return Err(EncodeError::BadKeyIndex {
                table: self.table.clone(),
                index,
            });
        };
        let result = match datum {
            Datum::Null => {
                if field.optional {
                    write_long(0, out);
                } else {
                    field.kind.write_zero(out);
                }
                Ok(())
            }
            Datum::Unchanged => self.write_unchanged(field, out),
            _ => {
                if field.optional {
                    write_long(1, out);
                }
                field.kind.write(datum, out)
            }
        };
        result.map_err(|fault| fault.into_error(&self.table, &field.name))
    }

    fn write_unchanged(&self, field: &FieldEnc, out: &mut Vec<u8>) -> Result<(), Fault> {
        let branch = |out: &mut Vec<u8>| {
            if field.optional {
                write_long(1, out);
            }
        };
        match &field.kind {
            Kind::Str { .. } => {
                branch(out);
                write_str(&self.placeholder_str, out);
            }
            Kind::Bytes { .. } => {
                branch(out);
                write_bytes(&self.placeholder, out);
            }
            Kind::Array(elem) if matches!(**elem, Kind::Str { .. }) => {
                branch(out);
                write_long(1, out);
                write_long(1, out);
                write_str(&self.placeholder_str, out);
                write_long(0, out);
            }
            Kind::Array(elem) if matches!(**elem, Kind::Int { .. } | Kind::Long { .. }) => {
                branch(out);
                if !self.placeholder.is_empty() {
                    write_len(self.placeholder.len(), out);
                    for &b in &self.placeholder {
                        write_long(1, out);
                        // Java widens the signed byte.
                        write_long(i64::from(b as i8), out);
                    }
                }
                write_long(0, out);
            }
            _ if field.optional => write_long(0, out),
            kind => {
                return Err(Fault::Unchanged {
                    expected: kind.label(),
                })
            }
        }
        Ok(())
    }
}

/// Magic byte and big-endian schema id.
pub(crate) fn write_header(schema_id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Avro `long`/`int`: zigzag, then base-128 little-endian groups.
#[inline]
pub(crate) fn write_long(value: i64, out: &mut Vec<u8>) {
    let mut z = ((value << 1) ^ (value >> 63)) as u64;
    if z < 0x80 {
        // Union branches, booleans-as-ints, small lengths: one byte.
        out.push(z as u8);
        return;
    }
    let mut buf = [0u8; 10];
    let mut n = 0;
    while z >= 0x80 {
        buf[n] = (z as u8) | 0x80;
        z >>= 7;
        n += 1;
    }
    buf[n] = z as u8;
    out.extend_from_slice(&buf[..=n]);
}

/// A length or count as an Avro long; lengths beyond `i64::MAX` cannot exist in memory.
#[inline]
fn write_len(len: usize, out: &mut Vec<u8>) {
    write_long(i64::try_from(len).unwrap_or(i64::MAX), out);
}

#[inline]
fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    write_len(bytes.len(), out);
    out.extend_from_slice(bytes);
}

#[inline]
fn write_str(s: &str, out: &mut Vec<u8>) {
    write_bytes(s.as_bytes(), out);
}

/// `["null","long"]`.
#[inline]
fn write_opt_long(value: Option<i64>, out: &mut Vec<u8>) {
    match value {
        None => write_long(0, out),
        Some(v) => {
            write_long(1, out);
            write_long(v, out);
        }
    }
}

/// `["null","string"]`.
#[inline]
fn write_opt_str(value: Option<&str>, out: &mut Vec<u8>) {
    match value {
        None => write_long(0, out),
        Some(v) => {
            write_long(1, out);
            write_str(v, out);
        }
    }
}

/// Precomputed encoder of one column.
#[derive(Debug, Clone)]
struct FieldEnc {
    name: String,
    optional: bool,
    kind: Kind,
}

/// How a column type is written in Avro binary.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Boolean,
    /// Avro `int`: Connect int16/int32 and Debezium's int-based temporal types.
    Int {
        min: i64,
        max: i64,
        label: &'static str,
    },
    /// Avro `long`.
    Long {
        label: &'static str,
    },
    Float,
    Double,
    /// Avro `string`; `zero` is what a null in a non-optional column becomes.
    Str {
        zero: &'static str,
        label: &'static str,
    },
    /// Avro `bytes` (plain bytes and Debezium bits).
    Bytes {
        label: &'static str,
    },
    /// Connect Decimal: bytes with the column's fixed scale.
    Decimal {
        scale: u32,
    },
    /// Debezium VariableScaleDecimal record.
    VarDecimal,
    /// Debezium Geometry record `{wkb: bytes, srid: ["null", int]}`.
    Geometry,
    /// Debezium Point record `{x: double, y: double, wkb: ["null", bytes], srid: ["null", int]}`.
    Point,
    /// Avro array whose items are `["null", T]`.
    Array(Box<Kind>),
}

impl Kind {
    fn of(ty: &ColumnType) -> Kind {
        let int32 = |label| Kind::Int {
            min: i64::from(i32::MIN),
            max: i64::from(i32::MAX),
            label,
        };
        let string = |label| Kind::Str { zero: "", label };
        match ty {
            ColumnType::Boolean => Kind::Boolean,
            ColumnType::Int16 => Kind::Int {
                min: i64::from(i16::MIN),
                max: i64::from(i16::MAX),
                label: "int16",
            },
            ColumnType::Int32 => int32("int32"),
            ColumnType::Int64 => Kind::Long { label: "int64" },
            ColumnType::Float32 => Kind::Float,
            ColumnType::Float64 => Kind::Double,
            ColumnType::String => string("string"),
            ColumnType::Bytes => Kind::Bytes { label: "bytes" },
            ColumnType::Decimal { scale, .. } => Kind::Decimal { scale: *scale },
            ColumnType::VariableScaleDecimal => Kind::VarDecimal,
            ColumnType::Geometry => Kind::Geometry,
            ColumnType::Point => Kind::Point,
            ColumnType::Date => int32("io.debezium.time.Date"),
            ColumnType::Time => int32("io.debezium.time.Time"),
            ColumnType::MicroTime => Kind::Long {
                label: "io.debezium.time.MicroTime",
            },
            ColumnType::Timestamp => Kind::Long {
                label: "io.debezium.time.Timestamp",
            },
            ColumnType::MicroTimestamp => Kind::Long {
                label: "io.debezium.time.MicroTimestamp",
            },
            ColumnType::ZonedTimestamp => Kind::Str {
                zero: "1970-01-01T00:00:00Z",
                label: "io.debezium.time.ZonedTimestamp",
            },
            ColumnType::ZonedTime => Kind::Str {
                zero: "00:00:00Z",
                label: "io.debezium.time.ZonedTime",
            },
            ColumnType::MicroDuration => Kind::Long {
                label: "io.debezium.time.MicroDuration",
            },
            ColumnType::Year => int32("io.debezium.time.Year"),
            ColumnType::Json => string("io.debezium.data.Json"),
            ColumnType::Uuid => string("io.debezium.data.Uuid"),
            ColumnType::Enum(_) => string("io.debezium.data.Enum"),
            ColumnType::EnumSet(_) => string("io.debezium.data.EnumSet"),
            ColumnType::Bits { .. } => Kind::Bytes {
                label: "io.debezium.data.Bits",
            },
            ColumnType::Array(elem) => Kind::Array(Box::new(Kind::of(elem))),
            ColumnType::Xml => string("io.debezium.data.Xml"),
            ColumnType::Ltree => string("io.debezium.data.Ltree"),
            ColumnType::TsVector => string("io.debezium.data.Tsvector"),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Kind::Boolean => "boolean",
            Kind::Int { label, .. }
            | Kind::Long { label }
            | Kind::Str { label, .. }
            | Kind::Bytes { label } => label,
            Kind::Float => "float32",
            Kind::Double => "float64",
            Kind::Decimal { .. } => "org.apache.kafka.connect.data.Decimal",
            Kind::VarDecimal => "io.debezium.data.VariableScaleDecimal",
            Kind::Geometry => "io.debezium.data.geometry.Geometry",
            Kind::Point => "io.debezium.data.geometry.Point",
            Kind::Array(_) => "array",
        }
    }

    /// The value Debezium's converters fall back to for a null in a non-optional column.
    fn write_zero(&self, out: &mut Vec<u8>) {
        match self {
            Kind::Boolean => out.push(0),
            Kind::Int { .. } | Kind::Long { .. } => write_long(0, out),
            Kind::Float => out.extend_from_slice(&0f32.to_le_bytes()),
            Kind::Double => out.extend_from_slice(&0f64.to_le_bytes()),
            Kind::Str { zero, .. } => write_str(zero, out),
            Kind::Bytes { .. } => write_long(0, out),
            Kind::Decimal { .. } => write_bytes(&[0], out),
            Kind::VarDecimal => {
                write_long(0, out);
                write_bytes(&[0], out);
            }
            // Debezium's converters have no zero geometry; an empty WKB without SRID is the
            // closest to "no value" a required field can hold.
            Kind::Geometry => {
                write_long(0, out);
                write_long(0, out);
            }
            Kind::Point => {
                out.extend_from_slice(&0f64.to_le_bytes());
                out.extend_from_slice(&0f64.to_le_bytes());
                write_long(0, out);
                write_long(0, out);
            }
            Kind::Array(_) => write_long(0, out),
        }
    }

    /// Writes a non-null, non-placeholder datum (without the optional union branch).
    fn write(&self, datum: &Datum<'_>, out: &mut Vec<u8>) -> Result<(), Fault> {
        match (self, datum) {
            (Kind::Boolean, Datum::Bool(b)) => out.push(u8::from(*b)),
            (Kind::Int { min, max, label }, Datum::Int(v)) => {
                if v < min || v > max {
                    return Err(Fault::OutOfRange { expected: label });
                }
                write_long(*v, out);
            }
            (Kind::Long { .. }, Datum::Int(v)) => write_long(*v, out),
            // Sources parse float4 into f32 first, so narrowing back is exact.
            (Kind::Float, Datum::Float(v)) => out.extend_from_slice(&(*v as f32).to_le_bytes()),
            (Kind::Double, Datum::Float(v)) => out.extend_from_slice(&v.to_le_bytes()),
            (Kind::Str { .. }, Datum::Str(s)) => write_str(s, out),
            (Kind::Bytes { .. }, Datum::Bytes(b)) => write_bytes(b, out),
            (
                Kind::Decimal { scale },
                Datum::Decimal {
                    unscaled,
                    scale: got,
                },
            ) => {
                if got != scale || unscaled.is_empty() {
                    return Err(Fault::Scale {
                        expected: *scale,
                        got: *got,
                    });
                }
                write_bytes(unscaled, out);
            }
            (Kind::VarDecimal, Datum::Decimal { unscaled, scale }) => {
                let Ok(scale) = i32::try_from(*scale) else {
                    return Err(Fault::OutOfRange {
                        expected: "io.debezium.data.VariableScaleDecimal",
                    });
                };
                if unscaled.is_empty() {
                    return Err(Fault::Scale {
                        expected: 0,
                        got: scale.unsigned_abs(),
                    });
                }
                write_long(i64::from(scale), out);
                write_bytes(unscaled, out);
            }
            (Kind::Geometry, Datum::Geometry { wkb, srid }) => {
                write_bytes(wkb, out);
                match srid {
                    None => write_long(0, out),
                    Some(srid) => {
                        write_long(1, out);
                        write_long(i64::from(*srid), out);
                    }
                }
            }
            (Kind::Point, Datum::Geometry { wkb, srid }) => {
                let Some((x, y)) = wkb_point(wkb) else {
                    return Err(Fault::Mismatch {
                        expected: "io.debezium.data.geometry.Point",
                        datum: "non-point geometry",
                    });
                };
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
                write_long(1, out);
                write_bytes(wkb, out);
                match srid {
                    None => write_long(0, out),
                    Some(srid) => {
                        write_long(1, out);
                        write_long(i64::from(*srid), out);
                    }
                }
            }
            (Kind::Array(elem), Datum::Array(items)) => {
                if !items.is_empty() {
                    write_len(items.len(), out);
                    for item in items {
                        if let Datum::Null = item {
                            write_long(0, out);
                        } else {
                            write_long(1, out);
                            elem.write(item, out)?;
                        }
                    }
                }
                write_long(0, out);
            }
            (kind, datum) => {
                return Err(Fault::Mismatch {
                    expected: kind.label(),
                    datum: datum_shape(datum),
                })
            }
        }
        Ok(())
    }
}

/// x and y of a 2D well-known-binary point (byte order, type 1, two doubles).
fn wkb_point(wkb: &[u8]) -> Option<(f64, f64)> {
    if wkb.len() != 21 {
        return None;
    }
    let little = match wkb[0] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let word = |b: &[u8]| -> [u8; 4] { [b[0], b[1], b[2], b[3]] };
    let ty = if little {
        u32::from_le_bytes(word(&wkb[1..5]))
    } else {
        u32::from_be_bytes(word(&wkb[1..5]))
    };
    if ty != 1 {
        return None;
    }
    let double = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        if little {
            f64::from_le_bytes(a)
        } else {
            f64::from_be_bytes(a)
        }
    };
    Some((double(&wkb[5..13]), double(&wkb[13..21])))
}

fn datum_shape(datum: &Datum<'_>) -> &'static str {
    match datum {
        Datum::Null => "null",
        Datum::Bool(_) => "bool",
        Datum::Int(_) => "int",
        Datum::Float(_) => "float",
        Datum::Str(_) => "string",
        Datum::Bytes(_) => "bytes",
        Datum::Decimal { .. } => "decimal",
        Datum::Array(_) => "array",
        Datum::Geometry { .. } => "geometry",
        Datum::Unchanged => "unchanged-TOAST",
    }
}

/// An encoding failure before the table and column are attached (kept allocation-free).
#[derive(Debug)]
enum Fault {
    Mismatch {
        expected: &'static str,
        datum: &'static str,
    },
    OutOfRange {
        expected: &'static str,
    },
    Scale {
        expected: u32,
        got: u32,
    },
    Unchanged {
        expected: &'static str,
    },
}

impl Fault {
    #[cold]
    fn into_error(self, table: &str, column: &str) -> EncodeError {
        let (table, column) = (table.to_owned(), column.to_owned());
        match self {
            Fault::Mismatch { expected, datum } => EncodeError::TypeMismatch {
                table,
                column,
                expected,
                datum,
            },
            Fault::OutOfRange { expected } => EncodeError::OutOfRange {
                table,
                column,
                expected,
            },
            Fault::Scale { expected, got } => EncodeError::DecimalScale {
                table,
                column,
                expected,
                got,
            },
            Fault::Unchanged { expected } => EncodeError::Unchanged {
                table,
                column,
                expected,
            },
        }
    }
}

/// `io.debezium.connector.postgresql.Source` (Debezium 3.1+, which versions the source
/// schema), rendered by AvroData. `snapshot` is an optional Enum with a default, hence the
/// `[type, "null"]` union with `connect.default`.
const POSTGRES_SOURCE_SCHEMA: &str = concat!(
    "{\"type\":\"record\",\"name\":\"Source\",\"namespace\":\"io.debezium.connector.postgresql\",",
    "\"fields\":[",
    "{\"name\":\"version\",\"type\":\"string\"},",
    "{\"name\":\"connector\",\"type\":\"string\"},",
    "{\"name\":\"name\",\"type\":\"string\"},",
    "{\"name\":\"ts_ms\",\"type\":\"long\"},",
    "{\"name\":\"snapshot\",\"type\":[{\"type\":\"string\",\"connect.version\":1,",
    "\"connect.parameters\":{\"allowed\":",
    "\"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental\"},",
    "\"connect.default\":\"false\",\"connect.name\":\"io.debezium.data.Enum\"},\"null\"],",
    "\"default\":\"false\"},",
    "{\"name\":\"db\",\"type\":\"string\"},",
    "{\"name\":\"sequence\",\"type\":[\"null\",\"string\"],\"default\":null},",
    "{\"name\":\"ts_us\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"ts_ns\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"schema\",\"type\":\"string\"},",
    "{\"name\":\"table\",\"type\":\"string\"},",
    "{\"name\":\"txId\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"lsn\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"xmin\",\"type\":[\"null\",\"long\"],\"default\":null}],",
    "\"connect.version\":1,\"connect.name\":\"io.debezium.connector.postgresql.Source\"}"
);

/// `io.debezium.connector.mysql.Source` as Debezium 3.x's MySQL connector renders it: the
/// common fields, then `table` (optional), `server_id`, `gtid`, `file`, `pos`, `row`,
/// `thread`, `query`.
const MYSQL_SOURCE_SCHEMA: &str = concat!(
    "{\"type\":\"record\",\"name\":\"Source\",\"namespace\":\"io.debezium.connector.mysql\",",
    "\"fields\":[",
    "{\"name\":\"version\",\"type\":\"string\"},",
    "{\"name\":\"connector\",\"type\":\"string\"},",
    "{\"name\":\"name\",\"type\":\"string\"},",
    "{\"name\":\"ts_ms\",\"type\":\"long\"},",
    "{\"name\":\"snapshot\",\"type\":[{\"type\":\"string\",\"connect.version\":1,",
    "\"connect.parameters\":{\"allowed\":",
    "\"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental\"},",
    "\"connect.default\":\"false\",\"connect.name\":\"io.debezium.data.Enum\"},\"null\"],",
    "\"default\":\"false\"},",
    "{\"name\":\"db\",\"type\":\"string\"},",
    "{\"name\":\"sequence\",\"type\":[\"null\",\"string\"],\"default\":null},",
    "{\"name\":\"ts_us\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"ts_ns\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"table\",\"type\":[\"null\",\"string\"],\"default\":null},",
    "{\"name\":\"server_id\",\"type\":\"long\"},",
    "{\"name\":\"gtid\",\"type\":[\"null\",\"string\"],\"default\":null},",
    "{\"name\":\"file\",\"type\":\"string\"},",
    "{\"name\":\"pos\",\"type\":\"long\"},",
    "{\"name\":\"row\",\"type\":\"int\"},",
    "{\"name\":\"thread\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"query\",\"type\":[\"null\",\"string\"],\"default\":null}],",
    "\"connect.version\":1,\"connect.name\":\"io.debezium.connector.mysql.Source\"}"
);

/// Everything after `source`: the `event.block` transaction record, `op` and the
/// processing timestamps.
const TRANSACTION_AND_TAIL_FIELDS: &str = concat!(
    "},{\"name\":\"transaction\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"block\",",
    "\"namespace\":\"event\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},",
    "{\"name\":\"total_order\",\"type\":\"long\"},",
    "{\"name\":\"data_collection_order\",\"type\":\"long\"}],",
    "\"connect.version\":1,\"connect.name\":\"event.block\"}],\"default\":null},",
    "{\"name\":\"op\",\"type\":\"string\"},",
    "{\"name\":\"ts_ms\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"ts_us\",\"type\":[\"null\",\"long\"],\"default\":null},",
    "{\"name\":\"ts_ns\",\"type\":[\"null\",\"long\"],\"default\":null}"
);

/// Writes one schema document. Named types other than the table's own records appear once
/// per document (later uses are name references), as Avro's JSON writer does.
struct SchemaWriter {
    out: String,
    variable_scale_decimal_defined: bool,
    geometry_defined: bool,
    point_defined: bool,
}

impl SchemaWriter {
    fn new(namespace: &str) -> Self {
        Self {
            out: String::with_capacity(1024 + namespace.len() * 4),
            variable_scale_decimal_defined: false,
            geometry_defined: false,
            point_defined: false,
        }
    }

    /// A record field: optional columns are `["null", T]` with a null default; others carry
    /// `default` (Avro JSON) when the column has a constant one.
    fn field(&mut self, name: &str, ty: &ColumnType, optional: bool, default: Option<&str>) {
        self.out.push_str("{\"name\":");
        json_string(&mut self.out, name);
        self.out.push_str(",\"type\":");
        if optional {
            self.out.push_str("[\"null\",");
            self.ty(ty);
            self.out.push_str("],\"default\":null}");
        } else {
            self.ty(ty);
            if let Some(d) = default {
                self.out.push_str(",\"default\":");
                self.out.push_str(d);
            }
            self.out.push('}');
        }
    }

    /// A semantic primitive: `{"type":T,"connect.version":1,"connect.name":N}`.
    fn semantic(&mut self, avro: &str, name: &str) {
        self.out.push_str("{\"type\":\"");
        self.out.push_str(avro);
        self.out
            .push_str("\",\"connect.version\":1,\"connect.name\":\"");
        self.out.push_str(name);
        self.out.push_str("\"}");
    }

    /// A semantic primitive with one `connect.parameters` entry.
    fn semantic_with_parameter(&mut self, avro: &str, name: &str, key: &str, value: &str) {
        self.out.push_str("{\"type\":\"");
        self.out.push_str(avro);
        self.out
            .push_str("\",\"connect.version\":1,\"connect.parameters\":{");
        json_string(&mut self.out, key);
        self.out.push(':');
        json_string(&mut self.out, value);
        self.out.push_str("},\"connect.name\":\"");
        self.out.push_str(name);
        self.out.push_str("\"}");
    }

    fn ty(&mut self, ty: &ColumnType) {
        match ty {
            ColumnType::Boolean => self.out.push_str("\"boolean\""),
            ColumnType::Int16 => self
                .out
                .push_str("{\"type\":\"int\",\"connect.type\":\"int16\"}"),
            ColumnType::Int32 => self.out.push_str("\"int\""),
            ColumnType::Int64 => self.out.push_str("\"long\""),
            ColumnType::Float32 => self.out.push_str("\"float\""),
            ColumnType::Float64 => self.out.push_str("\"double\""),
            ColumnType::String => self.out.push_str("\"string\""),
            ColumnType::Bytes => self.out.push_str("\"bytes\""),
            ColumnType::Decimal { precision, scale } => {
                // AvroData: scale and precision (64 when Connect has none) as properties,
                // then the connect.* metadata, then the logical type.
                let avro_precision = precision.unwrap_or(64);
                self.out.push_str("{\"type\":\"bytes\",\"scale\":");
                self.out.push_str(&scale.to_string());
                self.out.push_str(",\"precision\":");
                self.out.push_str(&avro_precision.to_string());
                self.out
                    .push_str(",\"connect.version\":1,\"connect.parameters\":{\"scale\":\"");
                self.out.push_str(&scale.to_string());
                self.out.push('"');
                if let Some(p) = precision {
                    self.out.push_str(",\"connect.decimal.precision\":\"");
                    self.out.push_str(&p.to_string());
                    self.out.push('"');
                }
                self.out.push_str(
                    "},\"connect.name\":\"org.apache.kafka.connect.data.Decimal\",\
                     \"logicalType\":\"decimal\"}",
                );
            }
            ColumnType::VariableScaleDecimal => {
                if self.variable_scale_decimal_defined {
                    self.out
                        .push_str("\"io.debezium.data.VariableScaleDecimal\"");
                } else {
                    self.variable_scale_decimal_defined = true;
                    self.out.push_str(
                        "{\"type\":\"record\",\"name\":\"VariableScaleDecimal\",\
                         \"namespace\":\"io.debezium.data\",\"fields\":[\
                         {\"name\":\"scale\",\"type\":\"int\"},\
                         {\"name\":\"value\",\"type\":\"bytes\"}],\
                         \"connect.doc\":\"Variable scaled decimal\",\"connect.version\":1,\
                         \"connect.name\":\"io.debezium.data.VariableScaleDecimal\"}",
                    );
                }
            }
            ColumnType::Geometry => {
                if self.geometry_defined {
                    self.out.push_str("\"io.debezium.data.geometry.Geometry\"");
                } else {
                    self.geometry_defined = true;
                    self.out.push_str(
                        "{\"type\":\"record\",\"name\":\"Geometry\",\
                         \"namespace\":\"io.debezium.data.geometry\",\"fields\":[\
                         {\"name\":\"wkb\",\"type\":\"bytes\"},\
                         {\"name\":\"srid\",\"type\":[\"null\",\"int\"],\"default\":null}],\
                         \"connect.doc\":\"Geometry\",\"connect.version\":1,\
                         \"connect.name\":\"io.debezium.data.geometry.Geometry\"}",
                    );
                }
            }
            ColumnType::Point => {
                if self.point_defined {
                    self.out.push_str("\"io.debezium.data.geometry.Point\"");
                } else {
                    self.point_defined = true;
                    self.out.push_str(
                        "{\"type\":\"record\",\"name\":\"Point\",\
                         \"namespace\":\"io.debezium.data.geometry\",\"fields\":[\
                         {\"name\":\"x\",\"type\":\"double\"},\
                         {\"name\":\"y\",\"type\":\"double\"},\
                         {\"name\":\"wkb\",\"type\":[\"null\",\"bytes\"],\"default\":null},\
                         {\"name\":\"srid\",\"type\":[\"null\",\"int\"],\"default\":null}],\
                         \"connect.doc\":\"Geometry (POINT)\",\"connect.version\":1,\
                         \"connect.name\":\"io.debezium.data.geometry.Point\"}",
                    );
                }
            }
            ColumnType::Date => self.semantic("int", "io.debezium.time.Date"),
            ColumnType::Time => self.semantic("int", "io.debezium.time.Time"),
            ColumnType::MicroTime => self.semantic("long", "io.debezium.time.MicroTime"),
            ColumnType::Timestamp => self.semantic("long", "io.debezium.time.Timestamp"),
            ColumnType::MicroTimestamp => self.semantic("long", "io.debezium.time.MicroTimestamp"),
            ColumnType::ZonedTimestamp => {
                self.semantic("string", "io.debezium.time.ZonedTimestamp")
            }
            ColumnType::ZonedTime => self.semantic("string", "io.debezium.time.ZonedTime"),
            ColumnType::MicroDuration => self.semantic("long", "io.debezium.time.MicroDuration"),
            ColumnType::Year => self.semantic("int", "io.debezium.time.Year"),
            ColumnType::Json => self.semantic("string", "io.debezium.data.Json"),
            ColumnType::Uuid => self.semantic("string", "io.debezium.data.Uuid"),
            ColumnType::Xml => self.semantic("string", "io.debezium.data.Xml"),
            ColumnType::Ltree => self.semantic("string", "io.debezium.data.Ltree"),
            ColumnType::TsVector => self.semantic("string", "io.debezium.data.Tsvector"),
            ColumnType::Enum(values) => self.semantic_with_parameter(
                "string",
                "io.debezium.data.Enum",
                "allowed",
                &values.join(","),
            ),
            ColumnType::EnumSet(values) => self.semantic_with_parameter(
                "string",
                "io.debezium.data.EnumSet",
                "allowed",
                &values.join(","),
            ),
            ColumnType::Bits { length } => self.semantic_with_parameter(
                "bytes",
                "io.debezium.data.Bits",
                "length",
                &length.to_string(),
            ),
            ColumnType::Array(elem) => {
                self.out
                    .push_str("{\"type\":\"array\",\"items\":[\"null\",");
                self.ty(elem);
                self.out.push_str("]}");
            }
        }
    }
}

/// An Avro name: characters outside `[A-Za-z0-9_]`, and a leading digit, become `_`, as
/// Debezium's `avro` name adjustment does. Valid names come back borrowed and unchanged.
pub(super) fn avro_name(s: &str) -> Cow<'_, str> {
    let valid = !s.is_empty()
        && s.bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if valid {
        return Cow::Borrowed(s);
    }
    if s.is_empty() {
        return Cow::Borrowed("_");
    }
    let mut name = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()) {
            name.push(c);
        } else {
            name.push('_');
        }
    }
    Cow::Owned(name)
}

/// A dotted Avro full name (the topic prefix may contain dots): each part adjusted.
fn avro_fullname(s: &str) -> String {
    s.split('.').map(avro_name).collect::<Vec<_>>().join(".")
}
