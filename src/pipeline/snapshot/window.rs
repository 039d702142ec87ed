//! One chunk between its watermarks.
//!
//! DBLog: the chunk's rows were selected after the low watermark was committed and before the
//! high one. A change the stream shows between the two watermarks happened around the select,
//! so for its key the stream's event is at least as new as the selected row: the row is
//! dropped. What remains at the high watermark is emitted there, as new as the stream at that
//! point. A deleted row can never come back: its delete either precedes the select (the row
//! is not selected) or falls in the window (the row is dropped).

use std::collections::HashMap;
use std::sync::Arc;

use crate::checkpoint::KeyValue;
use crate::event::{Datum, TableSchema};
use crate::publish::key_json;

/// The selected rows of one chunk, waiting for the stream to reach its high watermark.
pub struct Window {
    /// Watermark id of this chunk.
    pub id: String,
    /// Index of the table in the snapshot's table list.
    pub table: usize,
    /// The schema the rows were read with.
    pub schema: Arc<TableSchema>,
    /// Selected rows in key order; `None` once a change in the window replaced one.
    rows: Vec<Option<Vec<Datum<'static>>>>,
    /// Key (as [`key_json`]) → index in `rows`; built at the first change the window sees,
    /// so a chunk no change touches (most of them) costs no key encoding and no map.
    index: Option<HashMap<Vec<u8>, usize>>,
    /// The low watermark was seen: changes of the table now replace rows.
    pub open: bool,
    /// Key of the last row selected: where the next chunk starts.
    pub last_key: Option<Vec<KeyValue>>,
    /// The table has rows after this chunk.
    pub more: bool,
    /// Rows the window dropped (replaced by a change).
    pub dropped: u64,
    /// When the rows were read (debug timings: how long the stream took to close the window).
    pub held_at: std::time::Instant,
    key_buf: Vec<u8>,
}

impl Window {
    /// A window over the selected rows of a chunk.
    pub fn new(
        id: String,
        table: usize,
        schema: Arc<TableSchema>,
        rows: Vec<Vec<Datum<'static>>>,
        last_key: Option<Vec<KeyValue>>,
        more: bool,
    ) -> Self {
        Self {
            id,
            table,
            schema,
            rows: rows.into_iter().map(Some).collect(),
            index: None,
            open: false,
            last_key,
            more,
            dropped: 0,
            held_at: std::time::Instant::now(),
            key_buf: Vec::with_capacity(64),
        }
    }

    /// The key index over the rows still selected (built once, then kept up to date).
    fn index(&mut self) -> &mut HashMap<Vec<u8>, usize> {
        let (schema, rows, buf) = (&self.schema, &self.rows, &mut self.key_buf);
        self.index.get_or_insert_with(|| {
            let mut index = HashMap::with_capacity(rows.len());
            for (i, row) in rows.iter().enumerate() {
                if let Some(row) = row {
                    buf.clear();
                    key_json(schema, row, buf);
                    index.insert(buf.clone(), i);
                }
            }
            index
        })
    }

    /// A change of the window's table with this row image (the key's row: `before` of a
    /// delete, `after` otherwise) was seen in the window: the selected row of that key, if
    /// any, is older and is dropped.
    pub fn cover(&mut self, row: &[Datum<'_>]) {
        self.index();
        self.key_buf.clear();
        key_json(&self.schema, row, &mut self.key_buf);
        let found = self
            .index
            .as_mut()
            .and_then(|index| index.remove(&self.key_buf));
        if let Some(i) = found {
            if self.rows[i].take().is_some() {
                self.dropped += 1;
            }
        }
    }

    /// The table was truncated in the window: every selected row is gone (a row inserted
    /// after the truncate has its own insert in the window).
    pub fn truncate(&mut self) {
        for r in &mut self.rows {
            if r.take().is_some() {
                self.dropped += 1;
            }
        }
        self.index = Some(HashMap::new());
    }

    /// The rows still to emit, in key order.
    pub fn into_rows(self) -> impl Iterator<Item = Vec<Datum<'static>>> {
        self.rows.into_iter().flatten()
    }

    /// How many rows are still to emit.
    pub fn remaining(&self) -> usize {
        self.rows.len() - self.dropped as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Column, ColumnType, TableId};
    use std::borrow::Cow;

    fn schema() -> Arc<TableSchema> {
        Arc::new(TableSchema {
            id: TableId::new("public", "t"),
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::Int64,
                    optional: false,
                    source_type: "int8".into(),
                    default: None,
                },
                Column {
                    name: "v".into(),
                    ty: ColumnType::String,
                    optional: true,
                    source_type: "text".into(),
                    default: None,
                },
            ],
            key: vec![0],
        })
    }

    fn row(id: i64, v: &str) -> Vec<Datum<'static>> {
        vec![Datum::Int(id), Datum::Str(Cow::Owned(v.into()))]
    }

    #[test]
    fn a_change_in_the_window_replaces_the_selected_row_of_its_key() {
        let mut w = Window::new(
            "w".into(),
            0,
            schema(),
            vec![row(1, "a"), row(2, "b"), row(3, "c")],
            None,
            false,
        );
        w.cover(&row(2, "changed"));
        w.cover(&row(9, "not selected"));
        assert_eq!(w.remaining(), 2);
        let left: Vec<_> = w.into_rows().collect();
        assert_eq!(left, vec![row(1, "a"), row(3, "c")]);
    }

    #[test]
    fn a_window_no_change_reaches_builds_no_key_index() {
        let mut w = Window::new(
            "w".into(),
            0,
            schema(),
            vec![row(1, "a"), row(2, "b")],
            None,
            true,
        );
        assert!(w.index.is_none());
        w.cover(&row(2, "changed"));
        assert_eq!(
            w.index.as_ref().map(HashMap::len),
            Some(1),
            "the dropped key left the index"
        );
        w.cover(&row(2, "changed again"));
        assert_eq!(w.remaining(), 1);
        assert_eq!(w.dropped, 1);
    }

    #[test]
    fn a_truncate_in_the_window_drops_every_selected_row() {
        let mut w = Window::new("w".into(), 0, schema(), vec![row(1, "a")], None, false);
        w.truncate();
        assert_eq!(w.remaining(), 0);
        assert_eq!(w.into_rows().count(), 0);
    }
}
