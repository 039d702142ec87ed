//! Where a snapshot stands, as checkpoints record it: per table, the key of the last row
//! whose event is in Kafka. A restart reads on from the next key, so at most one chunk per
//! table is read twice (the one in flight when the process died), and its events are not
//! duplicated: they were never committed.

use serde::{Deserialize, Serialize};

/// One key column's value as the chunk query reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    /// The database's text form of the value: a literal it parses back to the same value.
    Text(String),
    /// A binary value that is not UTF-8 (MySQL `BINARY`/`VARBINARY` keys), hex-encoded.
    Hex {
        /// Lower-case hex digits.
        hex: String,
    },
}

impl KeyValue {
    /// The value of raw key bytes: text when they are UTF-8, hex otherwise.
    pub fn from_bytes(b: &[u8]) -> Self {
        match std::str::from_utf8(b) {
            Ok(s) => KeyValue::Text(s.to_owned()),
            Err(_) => KeyValue::Hex {
                hex: b.iter().map(|x| format!("{x:02x}")).collect(),
            },
        }
    }
}

impl std::fmt::Display for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::Text(s) => write!(f, "{s}"),
            KeyValue::Hex { hex } => write!(f, "x'{hex}'"),
        }
    }
}

/// Why a table is snapshotted, which decides the `source.snapshot` marker of its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// Part of the source's initial snapshot: `first`, `true`, `last`.
    #[default]
    Initial,
    /// Asked for later (signal, `cdc-agent snapshot`, a table added to the capture):
    /// `incremental`.
    Incremental,
}

impl SnapshotKind {
    /// `initial` or `incremental`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Initial => "initial",
            SnapshotKind::Incremental => "incremental",
        }
    }
}

/// One table of a running snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProgress {
    /// `schema.table` (MySQL: `database.table`).
    pub table: String,
    /// Initial or incremental.
    #[serde(default)]
    pub kind: SnapshotKind,
    /// An extra SQL condition on the rows read (`cdc-agent snapshot --where`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Key of the last row whose event is committed; `None` before the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<KeyValue>>,
    /// Read no key beyond this one (inclusive); `None` reads to the end of the table. A
    /// source sets it to the table's greatest key at the position its stream starts from:
    /// rows inserted later come through the stream alone, so their changes are not followed
    /// by a snapshot read of a state the stream already delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Vec<KeyValue>>,
    /// Rows emitted so far.
    #[serde(default)]
    pub rows: u64,
    /// The database's row estimate, taken when the table's first chunk was read.
    #[serde(default)]
    pub estimate: u64,
    /// Every row is emitted.
    #[serde(default)]
    pub done: bool,
}

impl TableProgress {
    /// A table not read yet.
    pub fn new(table: impl Into<String>, kind: SnapshotKind, filter: Option<String>) -> Self {
        Self {
            table: table.into(),
            kind,
            filter,
            ..Self::default()
        }
    }
}

/// What a checkpoint records about snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// Tables being snapshotted, in order; done ones stay until every table is done, for
    /// progress reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableProgress>,
    /// Paused by a signal: no chunk is read until it is resumed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Every table the capture covered when this was written: a table configured or
    /// published later is new, and is snapshotted alone. `None` in checkpoints of versions
    /// that did not record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Vec<String>>,
}

impl SnapshotState {
    /// Nothing to record: no table in progress, not paused, no captured set.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && !self.paused && self.captured.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_are_text_when_utf8_and_hex_otherwise() {
        assert_eq!(KeyValue::from_bytes(b"42"), KeyValue::Text("42".into()));
        assert_eq!(
            KeyValue::from_bytes(&[0xff, 0x00]),
            KeyValue::Hex { hex: "ff00".into() }
        );
    }

    #[test]
    fn progress_round_trips_through_json() {
        let state = SnapshotState {
            tables: vec![TableProgress {
                after: Some(vec![
                    KeyValue::Text("7".into()),
                    KeyValue::Hex { hex: "ff".into() },
                ]),
                rows: 10,
                ..TableProgress::new("public.t", SnapshotKind::Incremental, None)
            }],
            paused: false,
            captured: Some(vec!["public.t".into()]),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(
            json,
            r#"{"tables":[{"table":"public.t","kind":"incremental","after":["7",{"hex":"ff"}],"rows":10,"estimate":0,"done":false}],"captured":["public.t"]}"#
        );
        assert_eq!(serde_json::from_str::<SnapshotState>(&json).unwrap(), state);
    }
}
