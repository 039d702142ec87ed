//! One binlog value → its [`Datum`]: integers, floats, temporal types, strings, bits, enums,
//! sets, geometry and JSON, bounds-checked so that malformed bytes are an error, never a panic.

use std::borrow::Cow;

use crate::civil::{civil_from_days, days_from_civil};
use crate::event::Datum;

use super::charset::{cp1252_to_utf8, Text};
use super::clock::push_time_of_day;
use super::dec::{Dec, FixedText};
use super::decimal::{decimal_bin_size, decode_binary_decimal, unsigned_decimal_bytes};
use super::json;

/// A value-level failure, turned into a [`DecodeError::Value`] by the caller (which knows the
/// column).
pub(super) enum ValueError {
    Truncated,
    Invalid(String),
}

pub(super) fn take<'a>(data: &'a [u8], p: &mut usize, n: usize) -> Result<&'a [u8], ValueError> {
    let end = p.checked_add(n).ok_or(ValueError::Truncated)?;
    let s = data.get(*p..end).ok_or(ValueError::Truncated)?;
    *p = end;
    Ok(s)
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

pub(super) fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

fn sign_extend(v: u64, bytes: u8) -> i64 {
    let shift = 64 - u32::from(bytes) * 8;
    ((v << shift) as i64) >> shift
}

pub use super::clock::MICROS_PER_SEC;
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

/// The last year a DATETIME holds (MySQL and MariaDB: `9999-12-31 23:59:59`).
pub(super) const MAX_DATETIME_YEAR: i64 = 9999;

/// A DATETIME/DATE as Debezium's epoch milliseconds (`micros_mode`: microseconds) from its
/// calendar parts; zero dates follow [`zero_date`]. `None` when the year lies outside
/// 0..=9999: no server writes such a value, so the bytes are damaged, and the
/// microsecond count could overflow. The time parts must be at most two digits each.
pub fn datetime_datum(
    nullable: bool,
    micros_mode: bool,
    (y, mo, d, h, mi, s, us): (i64, i64, i64, i64, i64, i64, i64),
) -> Option<Datum<'static>> {
    if !(0..=MAX_DATETIME_YEAR).contains(&y) {
        return None;
    }
    Some(match date_value(y, mo, d) {
        None => zero_date(nullable, Datum::Int(0)),
        Some(days) => {
            let micros = days * MICROS_PER_DAY + ((h * 60 + mi) * 60 + s) * MICROS_PER_SEC + us;
            Datum::Int(if micros_mode {
                micros
            } else {
                micros.div_euclid(1000)
            })
        }
    })
}

/// What a DATETIME whose year [`datetime_datum`] refuses is reported as.
fn datetime_out_of_range() -> ValueError {
    ValueError::Invalid(format!(
        "DATETIME with a year outside 0..={MAX_DATETIME_YEAR} (damaged row image)"
    ))
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

pub(super) fn decode_value<'a>(
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
            if v < 0 {
                return Err(ValueError::Invalid("negative DATETIME".into()));
            }
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
            .ok_or_else(datetime_out_of_range)?
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
            .ok_or_else(datetime_out_of_range)?
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

pub(super) fn hex(b: &[u8]) -> String {
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

pub(super) fn geometry(b: &[u8]) -> Result<Datum<'_>, ValueError> {
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
