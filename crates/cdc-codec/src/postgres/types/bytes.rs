//! `bytea` (hex and escape output) and `bit`/`varbit` text as bytes.

use super::{malformed, TypeError};

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `\x` hex format (the default `bytea_output`), or the legacy escape format.
pub(super) fn parse_bytea(text: &[u8]) -> Result<Vec<u8>, TypeError> {
    if let Some(hex) = text.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(malformed("bytea", text, "odd number of hex digits"));
        }
        return hex
            .chunks_exact(2)
            .map(|pair| match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(h), Some(l)) => Ok((h << 4) | l),
                _ => Err(malformed("bytea", text, "not a hex digit")),
            })
            .collect();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => match text.get(i + 1..i + 4) {
                _ if text.get(i + 1) == Some(&b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                Some(&[a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7']) => {
                    out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                    i += 4;
                }
                _ => return Err(malformed("bytea", text, "bad escape")),
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A bit string as Debezium's `Bits`: the string read as a binary number (last character is
/// bit 0), little-endian, without high zero bytes (`'0000'` is empty).
pub(super) fn parse_bits(text: &[u8]) -> Result<Vec<u8>, TypeError> {
    let mut out = vec![0u8; text.len().div_ceil(8)];
    for (i, &c) in text.iter().rev().enumerate() {
        match c {
            b'0' => {}
            b'1' => out[i / 8] |= 1 << (i % 8),
            _ => return Err(malformed("bit", text, "expected 0 and 1 only")),
        }
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}
