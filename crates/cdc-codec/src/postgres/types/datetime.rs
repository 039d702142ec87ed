//! Dates, times and timestamps in `DateStyle=ISO` text (proleptic Gregorian, astronomical
//! years: 1 BC is year 0).

use crate::civil::{civil_from_days, days_from_civil, days_in_month};

use super::MICROS_PER_DAY;

pub(super) fn strip_bc(s: &str) -> (&str, bool) {
    match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

pub(super) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn number(s: &str) -> Option<i64> {
    if all_digits(s) && s.len() <= 18 {
        s.parse().ok()
    } else {
        None
    }
}

/// `YYYY-MM-DD` (year of 4+ digits) to epoch days.
pub(super) fn parse_date(s: &str, bc: bool) -> Option<i64> {
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
pub(super) fn parse_time(s: &str) -> Option<i64> {
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
pub(super) fn parse_timestamp(s: &str, zoned: bool) -> Option<i128> {
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
pub(super) fn parse_timetz(s: &str) -> Option<i64> {
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
pub(super) fn push_time(out: &mut String, micros_of_day: i64) {
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
pub(super) fn format_zoned_timestamp(micros: i128) -> Option<String> {
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
