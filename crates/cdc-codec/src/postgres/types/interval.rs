//! `interval` text (`iso_8601` and the default `postgres` style) as microseconds.

use super::datetime::{all_digits, number};
use super::DAYS_PER_MONTH_AVG;

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
pub(super) fn parse_interval(s: &str) -> Option<i64> {
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
