//! Time-of-day text shared by the row-value and JSON decoders.

/// Microseconds in a second.
pub const MICROS_PER_SEC: i64 = 1_000_000;

/// `HH:MM:SS` plus the fraction: trimmed (`fixed6 = false`) or always six digits.
pub(super) fn push_time_of_day(s: &mut String, micros: i64, fixed6: bool) {
    use std::fmt::Write as _;
    let secs = micros / MICROS_PER_SEC;
    let frac = micros % MICROS_PER_SEC;
    let _ = write!(
        s,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if fixed6 {
        let _ = write!(s, ".{frac:06}");
    } else if frac != 0 {
        let digits = format!("{frac:06}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
}
