//! Values in the server's text form, as a snapshot `SELECT` returns them: the parsers the
//! agent's `snapshot_datum` uses to give the same datum a binlog row gives.

use crate::mysql::catalog::ColumnDef;
use crate::mysql::error::DecodeError;

use super::value::MICROS_PER_SEC;

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
