//! Array text (`{a,"b c",NULL}`, nested and with bounds) as a list of element datums.

use crate::event::Datum;

use super::{malformed, Dec, TypeError, MAX_ARRAY_DEPTH};

/// Array text (`{1,NULL,"a,b"}`, `[0:1]={…}`, `{{1,2},{3,4}}`) into `out`. Multi-dimensional
/// arrays are flattened in row-major order, because a Connect array column has one element
/// type and cannot nest a variable number of levels.
pub(super) fn parse_array<'a>(
    text: &'a [u8],
    delimiter: u8,
    elem: &Dec,
    out: &mut Vec<Datum<'a>>,
) -> Result<(), TypeError> {
    let bad = |reason| malformed("array", text, reason);
    let mut i = 0;
    if text.first() == Some(&b'[') {
        // Dimension decoration of arrays with non-default bounds.
        i = text
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("dimension decoration without ="))?
            + 1;
    }
    let skip_ws = |i: &mut usize| {
        while text.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if text.get(i) != Some(&b'{') {
        return Err(bad("expected {"));
    }
    let mut depth = 0usize;
    // After `{` or a delimiter an element (or a nested `{`) is expected.
    let mut expect_element = true;
    loop {
        skip_ws(&mut i);
        let Some(&c) = text.get(i) else {
            return Err(bad("unterminated array"));
        };
        match c {
            b'{' if expect_element => {
                depth += 1;
                if depth > MAX_ARRAY_DEPTH {
                    return Err(bad("too deeply nested"));
                }
                i += 1;
            }
            b'}' => {
                depth = depth.checked_sub(1).ok_or_else(|| bad("unbalanced }"))?;
                i += 1;
                expect_element = false;
                if depth == 0 {
                    skip_ws(&mut i);
                    return if i == text.len() {
                        Ok(())
                    } else {
                        Err(bad("trailing characters"))
                    };
                }
            }
            c if c == delimiter && !expect_element => {
                expect_element = true;
                i += 1;
            }
            b'"' if expect_element => {
                let start = i + 1;
                let mut j = start;
                let mut escaped = false;
                loop {
                    match text.get(j) {
                        None => return Err(bad("unterminated quoted element")),
                        Some(b'\\') => {
                            escaped = true;
                            j += 2;
                        }
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                let raw = text
                    .get(start..j)
                    .ok_or_else(|| bad("unterminated escape"))?;
                out.push(decode_element(elem, raw, escaped)?);
                i = j + 1;
                expect_element = false;
            }
            _ if expect_element => {
                let start = i;
                let mut j = i;
                let mut escaped = false;
                while let Some(&b) = text.get(j) {
                    if b == delimiter || b == b'}' {
                        break;
                    }
                    if b == b'\\' {
                        escaped = true;
                        j += 1;
                    }
                    j += 1;
                }
                let raw = text
                    .get(start..j)
                    .ok_or_else(|| bad("unterminated escape"))?;
                let raw = raw.trim_ascii_end();
                if !escaped && raw.eq_ignore_ascii_case(b"NULL") {
                    out.push(Datum::Null);
                } else {
                    out.push(decode_element(elem, raw, escaped)?);
                }
                i = j;
                expect_element = false;
            }
            _ => return Err(bad("unexpected character")),
        }
    }
}

/// One array element; elements are always optional, so NaN numerics become null.
fn decode_element<'a>(elem: &Dec, raw: &'a [u8], escaped: bool) -> Result<Datum<'a>, TypeError> {
    if !escaped {
        return elem.decode(raw, true);
    }
    let mut unescaped = Vec::with_capacity(raw.len());
    let mut k = 0;
    while k < raw.len() {
        if raw[k] == b'\\' {
            k += 1;
        }
        if let Some(&b) = raw.get(k) {
            unescaped.push(b);
        }
        k += 1;
    }
    elem.decode(&unescaped, true).map(Datum::into_owned)
}
