//! Character sets: which collation ids the decoder tells apart, and latin1 as Windows-1252.

use std::borrow::Cow;

/// How the bytes of a string column become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Text {
    /// utf8mb4, utf8mb3, ascii and unknown charsets: must be valid UTF-8 (borrowed).
    Utf8,
    /// latin1, which MySQL and MariaDB define as Windows-1252: borrowed when ASCII.
    Cp1252,
    /// The binary charset: bytes.
    Binary,
}

impl Text {
    /// The decoding of a charset name (`CHARACTER_SET_NAME`).
    pub fn of_charset(charset: Option<&str>) -> Text {
        match charset {
            Some("binary") => Text::Binary,
            Some("latin1") => Text::Cp1252,
            _ => Text::Utf8,
        }
    }
}

/// The charset name of a collation id, for the charsets the decoder distinguishes (`None` for
/// the others, which decode as UTF-8 — see `docs/mysql-types.md`).
pub fn charset_of_collation(id: u16) -> Option<&'static str> {
    // MariaDB numbers its NO PAD variants 1024 above the PAD ones.
    let id = if (1024..2048).contains(&id) {
        id - 1024
    } else {
        id
    };
    Some(match id {
        63 => "binary",
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        11 | 65 => "ascii",
        33 | 76 | 83 | 192..=223 => "utf8mb3",
        45 | 46 | 224..=247 | 255..=323 => "utf8mb4",
        _ => return None,
    })
}

/// Windows-1252 bytes 0x80..=0x9f; the undefined ones (0x81, 0x8d, 0x8f, 0x90, 0x9d) map to
/// the C1 control of the same number, as MySQL's latin1 does.
const CP1252_HIGH: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
];

/// latin1 (cp1252) → UTF-8; borrows when every byte is ASCII.
pub fn cp1252_to_utf8(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // ASCII is UTF-8; from_utf8 cannot fail here.
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    let mut s = String::with_capacity(bytes.len() + bytes.len() / 2);
    for &b in bytes {
        s.push(match b {
            0x80..=0x9f => CP1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        });
    }
    Cow::Owned(s)
}
