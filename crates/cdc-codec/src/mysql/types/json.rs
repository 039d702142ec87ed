//! MySQL's binary JSON (column type 245) → JSON text, as MySQL itself prints the value in a
//! `SELECT` (`{"a": 1, "b": [true, null]}`), so a snapshot and the binlog give the same string.
//!
//! Format (MySQL's `json_binary.h`): a type byte, then the value. Objects and arrays come in a
//! small (16-bit offsets) and a large (32-bit) variant: element count, byte size, key entries
//! (offset + 16-bit length), value entries (type + offset, or the value inlined when it fits),
//! then keys and values; offsets count from the start of the object. Scalars: literals
//! (null/true/false), 16/32/64-bit signed and unsigned integers, doubles, strings with a
//! variable-length size, and "opaque" values tagged with a MySQL column type (DECIMAL, DATE,
//! TIME, DATETIME, TIMESTAMP, other binary data).
//!
//! The walk is bounds-checked and depth-limited (MySQL allows 100 levels), so no input panics
//! or overflows the stack. It is also bounded in work: MySQL writes every value once, but an
//! offset may point anywhere in its container, so a crafted document can make several entries
//! point at the same sub-container, level after level — 30 levels of two entries each would
//! print 2^30 values from 300 bytes. A [`Budget`] refuses more values than the document has
//! bytes and more text than [`OUTPUT_PER_INPUT_BYTE`] characters per byte: no valid document
//! comes near either (a value costs at least a 3-byte entry; the most a byte can print is an
//! escaped control character, 6), a bomb hits them within microseconds.

use std::fmt::Write as _;

use super::clock::{push_time_of_day, MICROS_PER_SEC};
use super::decimal::decode_binary_decimal;

const SMALL_OBJECT: u8 = 0x00;
const LARGE_OBJECT: u8 = 0x01;
const SMALL_ARRAY: u8 = 0x02;
const LARGE_ARRAY: u8 = 0x03;
const LITERAL: u8 = 0x04;
const INT16: u8 = 0x05;
const UINT16: u8 = 0x06;
const INT32: u8 = 0x07;
const UINT32: u8 = 0x08;
const INT64: u8 = 0x09;
const UINT64: u8 = 0x0a;
const DOUBLE: u8 = 0x0b;
const STRING: u8 = 0x0c;
const OPAQUE: u8 = 0x0f;

/// Deeper documents are rejected (MySQL's own limit is 100).
const MAX_DEPTH: usize = 150;

/// Most text a valid document can print per byte of it (a control character in a string
/// prints as `\u00XX`: 6), with room to spare; above it the document repeats itself.
pub(super) const OUTPUT_PER_INPUT_BYTE: usize = 16;
/// Text any document may print whatever its size (a small opaque DECIMAL prints 60-odd digits).
const OUTPUT_SLACK: usize = 1024;

/// What is left of a document's allowance: values it may still visit and text it may still
/// print.
struct Budget {
    values_left: usize,
    max_out: usize,
}

impl Budget {
    fn for_document(len: usize) -> Self {
        Self {
            values_left: len.saturating_add(1),
            max_out: len
                .saturating_mul(OUTPUT_PER_INPUT_BYTE)
                .saturating_add(OUTPUT_SLACK),
        }
    }

    /// Counts one value about to be visited; an error once the document has visited more
    /// values than it has bytes or printed more than its allowance.
    fn visit(&mut self, out: &str) -> R<()> {
        if self.values_left == 0 {
            return Err(JsonError(
                "document refers to the same values again and again (more values than bytes); \
                 refusing to expand it",
            ));
        }
        self.values_left -= 1;
        self.check_out(out)
    }

    fn check_out(&self, out: &str) -> R<()> {
        if out.len() > self.max_out {
            return Err(JsonError(
                "document expands to far more text than its size allows; refusing to expand it",
            ));
        }
        Ok(())
    }
}

/// Why a binary JSON value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JsonError(&'static str);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

type R<T> = Result<T, JsonError>;

fn get(data: &[u8], at: usize, n: usize) -> R<&[u8]> {
    at.checked_add(n)
        .and_then(|end| data.get(at..end))
        .ok_or(JsonError("value runs past the end of the document"))
}

fn uint(data: &[u8], at: usize, n: usize) -> R<u64> {
    Ok(get(data, at, n)?
        .iter()
        .rev()
        .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
}

/// The text of a binary JSON document. An empty value is JSON `null` (what MySQL stores when
/// a JSON column gets a value it cannot hold in non-strict mode).
pub(super) fn to_text(data: &[u8]) -> R<String> {
    let mut out = String::with_capacity(data.len() * 2);
    if data.is_empty() {
        out.push_str("null");
        return Ok(out);
    }
    let mut budget = Budget::for_document(data.len());
    value(data[0], &data[1..], 0, &mut out, 0, &mut budget)?;
    budget.check_out(&out)?;
    Ok(out)
}

/// Writes the value of type `ty` stored at `data[at..]`.
fn value(
    ty: u8,
    data: &[u8],
    at: usize,
    out: &mut String,
    depth: usize,
    budget: &mut Budget,
) -> R<()> {
    if depth > MAX_DEPTH {
        return Err(JsonError("document nested too deeply"));
    }
    budget.visit(out)?;
    match ty {
        SMALL_OBJECT | LARGE_OBJECT | SMALL_ARRAY | LARGE_ARRAY => {
            let doc = data
                .get(at..)
                .ok_or(JsonError("container offset past the end of the document"))?;
            container(ty, doc, out, depth + 1, budget)
        }
        LITERAL => literal(uint(data, at, 1)? as u8, out),
        INT16 => {
            let v = uint(data, at, 2)? as u16 as i16;
            write_num(out, v)
        }
        UINT16 => write_num(out, uint(data, at, 2)? as u16),
        INT32 => write_num(out, uint(data, at, 4)? as u32 as i32),
        UINT32 => write_num(out, uint(data, at, 4)? as u32),
        INT64 => write_num(out, uint(data, at, 8)? as i64),
        UINT64 => write_num(out, uint(data, at, 8)?),
        DOUBLE => {
            let d = f64::from_bits(uint(data, at, 8)?);
            write_double(out, d)
        }
        STRING => {
            let (len, n) = varlen(data, at)?;
            let s = get(data, at + n, len)?;
            let s = std::str::from_utf8(s).map_err(|_| JsonError("string is not valid UTF-8"))?;
            write_string(out, s);
            Ok(())
        }
        OPAQUE => {
            let field_type = uint(data, at, 1)? as u8;
            let (len, n) = varlen(data, at + 1)?;
            let payload = get(data, at + 1 + n, len)?;
            opaque(field_type, payload, out)
        }
        _ => Err(JsonError("unknown value type")),
    }
}

fn literal(v: u8, out: &mut String) -> R<()> {
    out.push_str(match v {
        0 => "null",
        1 => "true",
        2 => "false",
        _ => return Err(JsonError("unknown literal")),
    });
    Ok(())
}

fn write_num(out: &mut String, v: impl std::fmt::Display) -> R<()> {
    let _ = write!(out, "{v}");
    Ok(())
}

/// Shortest round-trip form, with `.0` on integral values, as MySQL prints JSON doubles.
fn write_double(out: &mut String, d: f64) -> R<()> {
    if !d.is_finite() {
        return Err(JsonError("double is not finite"));
    }
    match serde_json::Number::from_f64(d) {
        Some(n) => {
            let _ = write!(out, "{n}");
            Ok(())
        }
        None => Err(JsonError("double is not finite")),
    }
}

/// The variable-length size of strings and opaque values: 7 bits per byte, low first,
/// at most 5 bytes. Returns (value, bytes used).
fn varlen(data: &[u8], at: usize) -> R<(usize, usize)> {
    let mut v: u64 = 0;
    for i in 0..5 {
        let b = uint(data, at + i, 1)?;
        v |= (b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = usize::try_from(v).map_err(|_| JsonError("length out of range"))?;
            return Ok((v, i + 1));
        }
    }
    Err(JsonError("variable-length size longer than 5 bytes"))
}

fn container(ty: u8, doc: &[u8], out: &mut String, depth: usize, budget: &mut Budget) -> R<()> {
    let large = ty == LARGE_OBJECT || ty == LARGE_ARRAY;
    let is_object = ty == SMALL_OBJECT || ty == LARGE_OBJECT;
    let w = if large { 4 } else { 2 };
    let count = uint(doc, 0, w)? as usize;
    let size = uint(doc, w, w)? as usize;
    if size > doc.len() {
        return Err(JsonError("container size past the end of the document"));
    }
    let doc = &doc[..size];
    let key_entry = w + 2;
    let value_entry = 1 + w;
    let header = 2 * w;
    let value_entries_at = header + if is_object { count * key_entry } else { 0 };
    // Every entry must fit before anything is written.
    if count
        .checked_mul(if is_object {
            key_entry + value_entry
        } else {
            value_entry
        })
        .and_then(|n| n.checked_add(header))
        .is_none_or(|end| end > size)
    {
        return Err(JsonError("container entries past its size"));
    }
    out.push(if is_object { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push_str(", ");
        }
        if is_object {
            let e = header + i * key_entry;
            let key_at = uint(doc, e, w)? as usize;
            let key_len = uint(doc, e + w, 2)? as usize;
            let key = get(doc, key_at, key_len)?;
            let key = std::str::from_utf8(key).map_err(|_| JsonError("key is not valid UTF-8"))?;
            write_string(out, key);
            out.push_str(": ");
        }
        let e = value_entries_at + i * value_entry;
        let vt = uint(doc, e, 1)? as u8;
        let inlined = match vt {
            LITERAL | INT16 | UINT16 => true,
            INT32 | UINT32 => large,
            _ => false,
        };
        if inlined {
            value(vt, doc, e + 1, out, depth, budget)?;
        } else {
            let off = uint(doc, e + 1, w)? as usize;
            value(vt, doc, off, out, depth, budget)?;
        }
    }
    out.push(if is_object { '}' } else { ']' });
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Opaque values: the MySQL column type they came from, and its bytes.
fn opaque(field_type: u8, b: &[u8], out: &mut String) -> R<()> {
    use super::mysql_type as t;
    match field_type {
        t::NEWDECIMAL => {
            // precision, scale, then the binary decimal
            if b.len() < 2 {
                return Err(JsonError("opaque DECIMAL too short"));
            }
            let (precision, scale) = (b[0], b[1]);
            if precision == 0 || precision > 65 || scale > precision {
                return Err(JsonError("opaque DECIMAL has a bad precision"));
            }
            let unscaled = decode_binary_decimal(&b[2..], precision, scale)
                .ok_or(JsonError("malformed opaque DECIMAL"))?;
            write_decimal(out, &unscaled, u32::from(scale));
            Ok(())
        }
        t::DATE
        | t::TIME
        | t::DATETIME
        | t::TIMESTAMP
        | t::TIME2
        | t::DATETIME2
        | t::TIMESTAMP2
        | t::NEWDATE => {
            let packed = get(b, 0, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(packed);
            let packed = i64::from_le_bytes(a);
            out.push('"');
            temporal(field_type, packed, out)?;
            out.push('"');
            Ok(())
        }
        _ => {
            // MySQL prints other opaque data as base64 with its type
            let _ = write!(out, "\"base64:type{field_type}:");
            base64(b, out);
            out.push('"');
            Ok(())
        }
    }
}

/// MySQL's packed temporal (`TIME_to_longlong_*_packed`): `ymd << 17 | hms` above 24 bits of
/// microseconds; negative for negative TIMEs.
fn temporal(field_type: u8, packed: i64, out: &mut String) -> R<()> {
    use super::mysql_type as t;
    let neg = packed < 0;
    let a = packed.unsigned_abs();
    let us = (a % (1 << 24)) as i64;
    let int = a >> 24;
    if matches!(field_type, t::TIME | t::TIME2) {
        let h = ((int >> 12) & 0x3ff) as i64;
        let m = ((int >> 6) & 0x3f) as i64;
        let s = (int & 0x3f) as i64;
        if neg {
            out.push('-');
        }
        // hours can exceed 24 (TIME is a duration): print them in full
        let _ = write!(out, "{h:02}:{m:02}:{s:02}.{us:06}");
        return Ok(());
    }
    if neg {
        return Err(JsonError("negative date"));
    }
    let ymd = int >> 17;
    let ym = ymd >> 5;
    let (y, mo, d) = (ym / 13, ym % 13, ymd & 31);
    let hms = int & 0x1ffff;
    let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
    if matches!(field_type, t::DATE | t::NEWDATE) {
        return Ok(());
    }
    out.push(' ');
    let micros = (((hms >> 12) as i64 * 60 + ((hms >> 6) & 63) as i64) * 60 + (hms & 63) as i64)
        * MICROS_PER_SEC
        + us;
    push_time_of_day(out, micros, true);
    Ok(())
}

/// Unscaled two's complement bytes + scale → decimal text (`-12.340`).
#[cfg(test)]
pub(super) fn decimal_text(unscaled: &[u8], scale: u32) -> String {
    let mut s = String::new();
    write_decimal(&mut s, unscaled, scale);
    s
}

/// Writes unscaled two's complement bytes + scale as decimal text.
fn write_decimal(out: &mut String, unscaled: &[u8], scale: u32) {
    let negative = unscaled.first().is_some_and(|b| b & 0x80 != 0);
    // magnitude as base-1e9 digits via repeated division of a big-endian byte string
    let mut mag: Vec<u8> = if negative {
        let mut v: Vec<u8> = unscaled.iter().map(|b| !b).collect();
        for b in v.iter_mut().rev() {
            let (x, c) = b.overflowing_add(1);
            *b = x;
            if !c {
                break;
            }
        }
        v
    } else {
        unscaled.to_vec()
    };
    let mut digits = Vec::new();
    while mag.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in mag.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    let scale = scale as usize;
    while digits.len() <= scale {
        digits.push(b'0');
    }
    if negative {
        out.push('-');
    }
    for (i, d) in digits.iter().rev().enumerate() {
        if i == digits.len() - scale {
            out.push('.');
        }
        out.push(char::from(*d));
    }
}

fn base64(b: &[u8], out: &mut String) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_places_the_point_by_scale() {
        let mut s = String::new();
        write_decimal(&mut s, &[0x30, 0x39], 2); // 12345
        assert_eq!(s, "123.45");
        let mut s = String::new();
        write_decimal(&mut s, &[0xff, 0x85], 3); // -123
        assert_eq!(s, "-0.123");
        let mut s = String::new();
        write_decimal(&mut s, &[0], 0);
        assert_eq!(s, "0");
    }

    #[test]
    fn base64_pads_like_rfc4648() {
        for (input, want) in [
            (&b"f"[..], "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"", ""),
        ] {
            let mut s = String::new();
            base64(input, &mut s);
            assert_eq!(s, want);
        }
    }
}
