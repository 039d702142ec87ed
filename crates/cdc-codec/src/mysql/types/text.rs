//! Values in the server's text form, as a snapshot `SELECT` returns them: the parsers the
//! agent's `snapshot_datum` uses to give the same datum a binlog row gives.

use crate::mysql::catalog::ColumnDef;
use crate::mysql::error::DecodeError;

use super::value::{MAX_DATETIME_YEAR, MICROS_PER_SEC};

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

/// The most hours a TIME text may carry (MySQL and MariaDB stop at 838; the slack keeps odd
/// servers readable while no product of the parts can overflow).
const MAX_TIME_HOURS: i64 = 999_999;

/// An unsigned decimal field of at most `max` (`"-5"` and `"+5"` are refused: the servers
/// never write a sign inside a date or time).
fn field(s: &str, max: i64) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|v| *v <= max)
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` → parts; `None` for text no server writes for a DATE,
/// DATETIME or TIMESTAMP (a year above 9999, a month above 12, a day above 31, an hour above
/// 23, a sign inside a part). Zero dates (`0000-00-00`) are parts like any other.
pub fn parse_datetime_text(s: &str) -> Option<(i64, i64, i64, i64, i64, i64, i64)> {
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = date.splitn(3, '-');
    let y = field(dp.next()?, MAX_DATETIME_YEAR)?;
    let mo = field(dp.next()?, 12)?;
    let d = field(dp.next()?, 31)?;
    let (h, mi, sec, us) = match time {
        Some(t) => {
            let (neg, micros) = parse_time_text(t)?;
            if neg || micros >= 24 * 3600 * MICROS_PER_SEC {
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

/// `[-]HHH:MM:SS[.ffffff]` → (negative, microseconds magnitude); `None` for minutes or
/// seconds above 59, hours above 999,999 or a sign inside a part.
pub fn parse_time_text(s: &str) -> Option<(bool, i64)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.splitn(3, ':');
    let h = field(it.next()?, MAX_TIME_HOURS)?;
    let m = field(it.next()?, 59)?;
    let sec = field(it.next()?, 59)?;
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

/// Feeds arbitrary bytes to every snapshot text parser, framed as the `values` fuzz target's
/// inputs are: the first byte picks a DECIMAL scale of 0..=38, the second is unused here, the
/// rest is the text (integer, DATETIME, TIME, DECIMAL). The target and the corpus replay test
/// call it. Must never panic.
#[doc(hidden)]
pub fn fuzz_text(data: &[u8]) {
    let scale = data.first().map_or(0, |b| u32::from(b % 39));
    let text = data.get(2..).unwrap_or_default();
    let _ = parse_int_text(text);
    if let Ok(s) = std::str::from_utf8(text) {
        let _ = parse_datetime_text(s);
        let _ = parse_time_text(s);
        let _ = super::decimal::decimal_text_to_unscaled(s, scale);
    }
}
