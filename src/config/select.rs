//! What a source publishes: `[tables]`, `[columns]` and `[message_key_columns]` of a source
//! file, named after Debezium's `table.include.list`, `column.exclude.list`,
//! `column.mask.*`, `column.truncate.*` and `message.key.columns`, so habits carry over.
//!
//! Every pattern is a regular expression matched against the whole qualified name, ignoring
//! case, as Debezium does: `public\.orders` matches `public.orders` only, never
//! `public.orders_archive`. The rules are compiled in `crate::select`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

/// `[tables]`: which tables of the source are captured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablesConfig {
    /// Regular expressions over `schema.table` (PostgreSQL) or `database.table` (MySQL): only
    /// matching tables are captured. Default: empty, every table the publication (PostgreSQL)
    /// or the captured databases (MySQL) hold.
    #[serde(default)]
    pub include: Vec<String>,
    /// Regular expressions over the same names: matching tables are never captured, even when
    /// `include` matches them. Default: empty.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// `[columns]`: columns left out or masked in every event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsConfig {
    /// Regular expressions over `schema.table.column`: matching columns are left out of the
    /// events, their schemas and the event store. A key column can only be left out when
    /// `[message_key_columns]` gives the table another key. Default: empty.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Masks of string columns, applied before anything leaves the agent. Default: none.
    #[serde(default)]
    pub mask: Vec<MaskConfig>,
}

/// How a masked column's value is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// `length` asterisks, whatever the value (Debezium's `column.mask.with.<length>.chars`).
    Chars,
    /// The lowercase hex SHA-256 of `salt` followed by the value's UTF-8 bytes (the shape of
    /// Debezium's `column.mask.hash.v2.SHA-256.with.salt.<salt>`): equal values stay equal,
    /// so joins and keys still work, without the value being readable.
    Hash,
    /// The first `length` characters (Debezium's `column.truncate.to.<length>.chars`).
    Truncate,
}

/// One `[[columns.mask]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// Regular expressions over `schema.table.column`. Only string columns can be masked.
    pub columns: Vec<String>,
    /// `chars`, `hash` or `truncate`.
    pub with: MaskKind,
    /// Characters of the mask (`chars`) or kept (`truncate`).
    #[serde(default)]
    pub length: Option<usize>,
    /// The salt of `hash`; never logged. Required with `hash`.
    #[serde(default)]
    pub salt: Option<Secret>,
}

/// `[message_key_columns]`: `"<table regex>" = ["col", …]` gives matching tables another
/// message key than their primary key (Debezium's `message.key.columns`). Default: none.
pub type MessageKeyColumns = BTreeMap<String, Vec<String>>;

/// Checks every pattern compiles and every mask has what its kind needs.
pub(super) fn validate_selection(s: &SourceConfig, origin: &str) -> Result<(), ConfigError> {
    let bad_regex = |key: String, pattern: &str, e: regex::Error| {
        Err(ConfigError::new(
            origin,
            Some(key),
            format!("`{pattern}` is not a valid regular expression: {e}"),
            "write a regular expression as Rust's regex crate reads it (escape dots: `public\\\\.orders`)",
        ))
    };
    let lists = [
        ("tables.include", &s.tables.include),
        ("tables.exclude", &s.tables.exclude),
        ("columns.exclude", &s.columns.exclude),
    ];
    for (key, list) in lists {
        for p in list.iter() {
            if let Err(e) = crate::select::pattern(p) {
                return bad_regex(key.to_string(), p, e);
            }
        }
    }
    for (i, m) in s.columns.mask.iter().enumerate() {
        let key = |k: &str| format!("columns.mask[{i}].{k}");
        for p in &m.columns {
            if let Err(e) = crate::select::pattern(p) {
                return bad_regex(key("columns"), p, e);
            }
        }
        match (m.with, m.length, &m.salt) {
            (MaskKind::Hash, _, None) => {
                return Err(ConfigError::new(
                    origin,
                    Some(key("salt")),
                    "a hash mask needs a salt",
                    "add `salt = \"<a long random string>\"` (keep it secret: with it, short values can be guessed back)",
                ))
            }
            (MaskKind::Chars | MaskKind::Truncate, None | Some(0), _) => {
                return Err(ConfigError::new(
                    origin,
                    Some(key("length")),
                    format!("a `{}` mask needs a length of at least 1", mask_name(m.with)),
                    "add `length = <characters>`",
                ))
            }
            _ => {}
        }
    }
    for (table, cols) in &s.message_key_columns {
        let key = format!("message_key_columns.\"{table}\"");
        if let Err(e) = crate::select::pattern(table) {
            return bad_regex(key, table, e);
        }
        if cols.is_empty() {
            return Err(ConfigError::new(
                origin,
                Some(key),
                "an empty list of key columns",
                "list the columns of the message key, or remove the entry to keep the primary key",
            ));
        }
    }
    Ok(())
}

fn mask_name(k: MaskKind) -> &'static str {
    match k {
        MaskKind::Chars => "chars",
        MaskKind::Hash => "hash",
        MaskKind::Truncate => "truncate",
    }
}
