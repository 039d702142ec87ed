//! [`RowLayout`]: one decoder per column, built once per table map from the table definition
//! and checked against the map, so that decoding a row is one match per value.

use crate::event::{ColumnType, Datum};
use crate::mysql::catalog::{ColumnDef, TableDef};
use crate::mysql::error::DecodeError;
use crate::mysql::events::{mysql_type, MapColumn, TableMapInfo};

use super::charset::{charset_of_collation, Text};
use super::dec::{Dec, FixedText};
use super::value::{decode_value, ValueError};
use super::{column_type, BigintUnsigned, TypeOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColDec {
    name: String,
    dec: Dec,
    /// Zero dates become NULL when the column is nullable, the epoch otherwise.
    nullable: bool,
}

/// Decoders of one table map + definition; built once per table-map change, reused for every
/// row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLayout {
    pub(super) table: String,
    pub(super) cols: Vec<ColDec>,
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

pub(super) fn bit(bitmap: &[u8], i: usize) -> bool {
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
