//! MySQL/MariaDB column types. The mapping and the row-image decoder are the codec's
//! ([`cdc_codec::mysql::types`], re-exported here); what stays in the agent is
//! [`snapshot_datum`], which reads the client library's `mysql_async::Value`s of a snapshot
//! `SELECT` with the codec's text parsers.

use std::borrow::Cow;

pub use cdc_codec::mysql::types::*;

use crate::event::{ColumnType, Datum};
use cdc_codec::mysql::catalog::ColumnDef;

fn value_text(value: &mysql_async::Value) -> Option<Cow<'_, str>> {
    match value {
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b)),
        _ => None,
    }
}

/// Snapshot: a value read with the text or binary protocol of `SELECT` → the same datum a
/// binlog row gives. The connection must use `utf8mb4` (strings arrive as UTF-8 whatever the
/// column charset) and `time_zone = '+00:00'` (TIMESTAMP values arrive in UTC).
pub fn snapshot_datum(
    col: &ColumnDef,
    ty: &ColumnType,
    value: mysql_async::Value,
) -> Result<Datum<'static>, DecodeError> {
    use mysql_async::Value as V;
    if let V::NULL = value {
        return Ok(Datum::Null);
    }
    let bad = |v: &V| {
        snap_err(
            col,
            format!("unexpected value {v:?} for {}", col.column_type),
        )
    };
    Ok(match ty {
        ColumnType::Boolean => match &value {
            V::Bytes(b) if col.data_type == "bit" => Datum::Bool(b.iter().any(|&x| x != 0)),
            V::Int(i) => Datum::Bool(*i != 0),
            V::UInt(u) => Datum::Bool(*u != 0),
            V::Bytes(b) => Datum::Bool(parse_int_text(b).ok_or_else(|| bad(&value))? != 0),
            _ => return Err(bad(&value)),
        },
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 | ColumnType::Year => {
            let v: i128 = match &value {
                V::Int(i) => i128::from(*i),
                V::UInt(u) => i128::from(*u),
                V::Bytes(b) => parse_int_text(b).ok_or_else(|| bad(&value))?,
                _ => return Err(bad(&value)),
            };
            // BIGINT UNSIGNED above i64::MAX wraps as in the binlog (bigint.unsigned=long)
            Datum::Int(if v > i128::from(i64::MAX) {
                v as u64 as i64
            } else {
                v as i64
            })
        }
        ColumnType::Float32 | ColumnType::Float64 => match &value {
            V::Float(f) => Datum::Float(f64::from(*f)),
            V::Double(d) if matches!(ty, ColumnType::Float32) => Datum::Float(f64::from(*d as f32)),
            V::Double(d) => Datum::Float(*d),
            V::Bytes(b) => {
                let s = std::str::from_utf8(b).map_err(|_| bad(&value))?;
                if matches!(ty, ColumnType::Float32) {
                    Datum::Float(f64::from(s.trim().parse::<f32>().map_err(|_| bad(&value))?))
                } else {
                    Datum::Float(s.trim().parse::<f64>().map_err(|_| bad(&value))?)
                }
            }
            _ => return Err(bad(&value)),
        },
        ColumnType::Decimal { scale, .. } => {
            let text = match &value {
                V::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                V::Int(i) => i.to_string(),
                V::UInt(u) => u.to_string(),
                _ => return Err(bad(&value)),
            };
            let unscaled = decimal_text_to_unscaled(&text, *scale).ok_or_else(|| bad(&value))?;
            Datum::Decimal {
                unscaled: Cow::Owned(unscaled),
                scale: *scale,
            }
        }
        ColumnType::Date | ColumnType::Timestamp | ColumnType::MicroTimestamp => {
            let parts = match &value {
                V::Date(y, mo, d, h, mi, s, us) => (
                    i64::from(*y),
                    i64::from(*mo),
                    i64::from(*d),
                    i64::from(*h),
                    i64::from(*mi),
                    i64::from(*s),
                    i64::from(*us),
                ),
                V::Bytes(_) => parse_datetime_text(&value_text(&value).unwrap_or_default())
                    .ok_or_else(|| bad(&value))?,
                _ => return Err(bad(&value)),
            };
            if matches!(ty, ColumnType::Date) {
                match date_value(parts.0, parts.1, parts.2) {
                    Some(days) => Datum::Int(days),
                    None => zero_date(col.nullable, Datum::Int(0)),
                }
            } else {
                datetime_datum(
                    col.nullable,
                    matches!(ty, ColumnType::MicroTimestamp),
                    parts,
                )
                .ok_or_else(|| bad(&value))?
            }
        }
        ColumnType::ZonedTimestamp => {
            let (y, mo, d, h, mi, s, us) = match &value {
                V::Date(y, mo, d, h, mi, s, us) => (
                    i64::from(*y),
                    i64::from(*mo),
                    i64::from(*d),
                    i64::from(*h),
                    i64::from(*mi),
                    i64::from(*s),
                    i64::from(*us),
                ),
                V::Bytes(_) => parse_datetime_text(&value_text(&value).unwrap_or_default())
                    .ok_or_else(|| bad(&value))?,
                _ => return Err(bad(&value)),
            };
            match date_value(y, mo, d) {
                None => zero_date(col.nullable, epoch_zoned()),
                Some(days) => {
                    let secs = days * 86_400 + (h * 60 + mi) * 60 + s;
                    zoned(col.nullable, secs, us)
                }
            }
        }
        ColumnType::MicroTime => match &value {
            V::Time(neg, days, h, m, s, us) => {
                let micros = (((i64::from(*days) * 24 + i64::from(*h)) * 60 + i64::from(*m)) * 60
                    + i64::from(*s))
                    * MICROS_PER_SEC
                    + i64::from(*us);
                Datum::Int(if *neg { -micros } else { micros })
            }
            V::Bytes(_) => {
                let (neg, micros) = parse_time_text(&value_text(&value).unwrap_or_default())
                    .ok_or_else(|| bad(&value))?;
                Datum::Int(if neg { -micros } else { micros })
            }
            _ => return Err(bad(&value)),
        },
        ColumnType::Bits { length } => match value {
            V::Bytes(b) => {
                let want = (*length as usize).div_ceil(8);
                let mut v: Vec<u8> = b.into_iter().rev().collect();
                v.resize(want.max(1), 0);
                v.truncate(want.max(1));
                Datum::Bytes(Cow::Owned(v))
            }
            V::UInt(u) => {
                let want = (*length as usize).div_ceil(8).clamp(1, 8);
                Datum::Bytes(Cow::Owned(u.to_le_bytes()[..want].to_vec()))
            }
            V::Int(i) => {
                let want = (*length as usize).div_ceil(8).clamp(1, 8);
                Datum::Bytes(Cow::Owned(i.to_le_bytes()[..want].to_vec()))
            }
            other => return Err(bad(&other)),
        },
        ColumnType::Bytes => match value {
            V::Bytes(b) => Datum::Bytes(Cow::Owned(b)),
            other => return Err(bad(&other)),
        },
        ColumnType::Geometry | ColumnType::Point => match value {
            V::Bytes(b) => geometry_datum(&b)
                .ok_or_else(|| snap_err(col, "GEOMETRY value shorter than its SRID"))?
                .into_owned(),
            other => return Err(bad(&other)),
        },
        // String, Json, Enum, EnumSet and the fallback: the server's text
        _ => match value {
            V::Bytes(b) => Datum::Str(Cow::Owned(
                String::from_utf8(b).map_err(|_| snap_err(col, "text is not valid UTF-8"))?,
            )),
            V::Int(i) => Datum::Str(Cow::Owned(i.to_string())),
            V::UInt(u) => Datum::Str(Cow::Owned(u.to_string())),
            V::Float(f) => Datum::Str(Cow::Owned(f.to_string())),
            V::Double(d) => Datum::Str(Cow::Owned(d.to_string())),
            other => return Err(bad(&other)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::mysql::events::{event_type, EventSplitter};
    use cdc_codec::civil::days_from_civil;

    const DAY_US: i64 = 86_400_000_000;

    fn corpus(name: &str) -> Vec<u8> {
        let path = format!("{}/fuzz/corpus/binlog/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn col(name: &str, data_type: &str, column_type: &str) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            unsigned: column_type.contains("unsigned"),
            nullable: true,
            char_max_length: None,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            charset: None,
            enum_values: Vec::new(),
            default: None,
        }
    }

    fn s(v: &str) -> Datum<'static> {
        Datum::Str(Cow::Owned(v.to_owned()))
    }

    /// Unscaled bytes of a decimal as text, for readable assertions.
    fn dec_text(d: &Datum<'_>) -> String {
        let Datum::Decimal { unscaled, scale } = d else {
            panic!("not a decimal: {d:?}")
        };
        let mut v: i128 = if unscaled.first().is_some_and(|b| b & 0x80 != 0) {
            -1
        } else {
            0
        };
        for &b in unscaled.iter() {
            v = (v << 8) | i128::from(b);
        }
        let neg = v < 0;
        let digits = v.unsigned_abs().to_string();
        let scale = *scale as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (i, f) = padded.split_at(padded.len() - scale);
        format!(
            "{}{}{}{}",
            if neg { "-" } else { "" },
            i,
            if scale > 0 { "." } else { "" },
            f
        )
    }

    fn decimal_col(p: u32, s: u32) -> ColumnDef {
        ColumnDef {
            numeric_precision: Some(p),
            numeric_scale: Some(s),
            ..col("c", "decimal", &format!("decimal({p},{s})"))
        }
    }

    fn with_fsp(mut c: ColumnDef, fsp: u32) -> ColumnDef {
        c.datetime_precision = Some(fsp);
        c
    }

    fn not_null(mut c: ColumnDef) -> ColumnDef {
        c.nullable = false;
        c
    }

    fn bit_col(n: u32) -> ColumnDef {
        ColumnDef {
            numeric_precision: Some(n),
            ..col("c", "bit", &format!("bit({n})"))
        }
    }

    fn labelled(dt: &str, labels: &[&str]) -> ColumnDef {
        ColumnDef {
            enum_values: labels.iter().map(|l| l.to_string()).collect(),
            default: None,
            ..col("c", dt, dt)
        }
    }

    fn text_col(dt: &str, charset: &str) -> ColumnDef {
        ColumnDef {
            charset: Some(charset.into()),
            ..col("c", dt, dt)
        }
    }

    #[test]
    fn snapshot_values_equal_what_the_binlog_gives() {
        use mysql_async::Value as V;
        let o = TypeOptions::default();
        let snap = |c: &ColumnDef, v: V| snapshot_datum(c, &column_type(c, &o), v).unwrap();
        let text = |x: &str| V::Bytes(x.as_bytes().to_vec());
        // integers, text and binary protocol
        let biu = col("c", "bigint", "bigint(20) unsigned");
        assert_eq!(snap(&biu, text("18446744073709551615")), Datum::Int(-1));
        assert_eq!(snap(&biu, V::UInt(u64::MAX)), Datum::Int(-1));
        assert_eq!(
            snap(&col("c", "tinyint", "tinyint(4)"), V::Int(-5)),
            Datum::Int(-5)
        );
        assert_eq!(
            snap(&col("c", "float", "float"), text("1.1")),
            Datum::Float(f64::from(1.1f32))
        );
        assert_eq!(
            snap(&col("c", "double", "double"), V::Double(-2.25)),
            Datum::Float(-2.25)
        );
        assert_eq!(
            dec_text(&snap(&decimal_col(10, 2), text("-12345678.91"))),
            "-12345678.91"
        );
        assert_eq!(snap(&bit_col(1), V::Bytes(vec![1])), Datum::Bool(true));
        assert_eq!(
            snap(&bit_col(10), V::Bytes(vec![0x02, 0x01])),
            Datum::Bytes(Cow::Owned(vec![1, 2]))
        );
        assert_eq!(
            snap(&col("c", "year", "year(4)"), text("2024")),
            Datum::Int(2024)
        );
        // temporal, text and binary protocol
        let date = col("c", "date", "date");
        assert_eq!(snap(&date, text("2024-02-29")), Datum::Int(19782));
        assert_eq!(
            snap(&date, V::Date(2024, 2, 29, 0, 0, 0, 0)),
            Datum::Int(19782)
        );
        assert_eq!(snap(&date, text("0000-00-00")), Datum::Null);
        assert_eq!(
            snap(&not_null(date.clone()), text("0000-00-00")),
            Datum::Int(0)
        );
        let t6 = with_fsp(col("c", "time", "time(6)"), 6);
        assert_eq!(
            snap(&t6, text("-01:02:03.000004")),
            Datum::Int(-3_723_000_004)
        );
        assert_eq!(
            snap(&t6, text("-838:59:59")),
            Datum::Int(-3_020_399_000_000)
        );
        assert_eq!(
            snap(&t6, V::Time(true, 0, 1, 2, 3, 4)),
            Datum::Int(-3_723_000_004)
        );
        assert_eq!(
            snap(&t6, V::Time(false, 34, 22, 59, 59, 0)),
            Datum::Int(838 * 3600 * 1_000_000 + 3_599_000_000)
        );
        let dt3 = with_fsp(col("c", "datetime", "datetime(3)"), 3);
        let want = (days_from_civil(2024, 1, 2) * DAY_US + 11_045_678_000) / 1000;
        assert_eq!(
            snap(&dt3, text("2024-01-02 03:04:05.678")),
            Datum::Int(want)
        );
        assert_eq!(
            snap(&dt3, V::Date(2024, 1, 2, 3, 4, 5, 678_000)),
            Datum::Int(want)
        );
        let dt6 = with_fsp(col("c", "datetime", "datetime(6)"), 6);
        assert_eq!(
            snap(&dt6, text("1969-12-31 23:59:59.999999")),
            Datum::Int(-1)
        );
        assert_eq!(snap(&dt6, text("0000-00-00 00:00:00")), Datum::Null);
        let ts = col("c", "timestamp", "timestamp(6)");
        assert_eq!(
            snap(&ts, text("2038-01-19 03:14:07.123456")),
            s("2038-01-19T03:14:07.123456Z")
        );
        assert_eq!(
            snap(&ts, V::Date(2024, 1, 2, 3, 4, 5, 0)),
            s("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            snap(&not_null(ts), text("0000-00-00 00:00:00")),
            s("1970-01-01T00:00:00Z")
        );
        // strings, enums, sets, JSON arrive as UTF-8 text on a utf8mb4 connection
        assert_eq!(
            snap(&text_col("varchar", "latin1"), text("café €")),
            s("café €")
        );
        assert_eq!(
            snap(&labelled("set", &["a", "b", "c"]), text("a,c")),
            s("a,c")
        );
        assert_eq!(
            snap(&col("c", "json", "json"), text(r#"{"a": 1}"#)),
            s(r#"{"a": 1}"#)
        );
        assert_eq!(
            snap(
                &col("c", "binary", "binary(4)"),
                V::Bytes(b"ab\0\0".to_vec())
            ),
            Datum::Bytes(Cow::Owned(b"ab\0\0".to_vec()))
        );
        let mut g = 4326u32.to_le_bytes().to_vec();
        g.extend_from_slice(&[1, 1, 0, 0, 0]);
        assert_eq!(
            snap(&col("c", "point", "point"), V::Bytes(g)),
            Datum::Geometry {
                wkb: Cow::Owned(vec![1, 1, 0, 0, 0]),
                srid: Some(4326)
            }
        );
        assert_eq!(snap(&date, V::NULL), Datum::Null);
        // a value that cannot be the column's is an error, not a guess
        assert!(snapshot_datum(&date, &ColumnType::Date, text("yesterday")).is_err());
    }

    #[test]
    fn checksums_of_events_split_by_mysql_common_are_verified() {
        use crate::source::mysql::events::verify_checksum;
        use mysql_async::binlog::events::{Event, FormatDescriptionEvent};
        use mysql_async::binlog::BinlogVersion;
        let data = corpus("mariadb_10_11_all_types");
        let read_all = |bytes: &[u8]| -> Vec<Event> {
            let mut fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
            let mut input = &bytes[4..];
            let mut events = Vec::new();
            while !input.is_empty() {
                let ev = Event::read(&fde, &mut input).unwrap();
                if ev.header().event_type_raw() == event_type::FORMAT_DESCRIPTION {
                    let f: FormatDescriptionEvent<'_> = ev.read_event().unwrap();
                    fde = f.into_owned().with_footer(ev.footer());
                }
                events.push(ev);
            }
            events
        };
        let events = read_all(&data);
        assert!(events.len() > 20);
        for ev in &events {
            verify_checksum(ev).unwrap();
        }
        // one flipped bit in the first rows event's body
        let at = EventSplitter::new(&data, true)
            .map(Result::unwrap)
            .find(|e| e.event_type == event_type::WRITE_ROWS_V1)
            .map(|e| e.raw.as_ptr() as usize - data.as_ptr() as usize)
            .unwrap();
        let mut bad = data.clone();
        bad[at + 40] ^= 0x10;
        let failures: Vec<_> = read_all(&bad)
            .iter()
            .filter_map(|e| verify_checksum(e).err())
            .collect();
        assert_eq!(failures.len(), 1);
        assert!(matches!(
            failures[0],
            DecodeError::Checksum { event_type: 23, .. }
        ));
    }
}
