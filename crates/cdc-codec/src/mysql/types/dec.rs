//! How one column's value is read from a row image: what the layout builds per column and
//! the value decoder dispatches on (kept apart from both so neither depends on the other).

use super::charset::Text;

/// How one column's value is read from a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dec {
    /// Little-endian integer of `bytes` bytes.
    Int {
        bytes: u8,
        unsigned: bool,
        precise: bool,
    },
    Float,
    Double,
    /// Binary decimal.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Year,
    Date,
    /// Pre-5.6 TIME: 3-byte HHMMSS integer.
    TimeOld,
    Time2 {
        fsp: u8,
    },
    /// Pre-5.6 DATETIME: 8-byte YYYYMMDDhhmmss integer.
    DatetimeOld {
        micros: bool,
    },
    Datetime2 {
        fsp: u8,
        micros: bool,
    },
    TimestampOld,
    Timestamp2 {
        fsp: u8,
    },
    /// BIT(n): `len` big-endian bytes.
    Bit {
        len: u8,
        as_bool: bool,
    },
    Enum {
        width: u8,
        labels: Vec<String>,
    },
    Set {
        width: u8,
        labels: Vec<String>,
    },
    /// CHAR/VARCHAR/BINARY/VARBINARY: 1- or 2-byte length prefix; BINARY(n) is re-padded
    /// with zero bytes to `pad` (the server strips them in the binlog but not in SELECT).
    Str {
        prefix: u8,
        text: Text,
        pad: usize,
    },
    /// BLOB/TEXT: length prefix of `prefix` bytes.
    Blob {
        prefix: u8,
        text: Text,
    },
    /// MySQL binary JSON.
    Json {
        prefix: u8,
    },
    /// SRID + WKB.
    Geometry {
        prefix: u8,
    },
    /// Column types without a known value mapping stored as blobs (MySQL VECTOR): hex text.
    RawBlob {
        prefix: u8,
    },
    /// MariaDB INET4/INET6/UUID: fixed binary in the binlog (trailing zeros stripped), printed
    /// as the server prints them.
    Fixed {
        kind: FixedText,
        len: u8,
    },
    /// An unknown type stored as binary: lowercase hex of its bytes (`prefix`-byte length).
    Hex {
        prefix: u8,
    },
}

/// The text forms of MariaDB's fixed-size binary types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FixedText {
    Inet4,
    Inet6,
    Uuid,
}
