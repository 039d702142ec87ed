//! Whole rows events and binlog streams: row images of an event, and [`decode_stream`] for the
//! fuzz target and the corpus replay test.

use crate::event::Datum;
use crate::mysql::error::DecodeError;
use crate::mysql::events::{RowsEventView, RowsKind, TableMapInfo};

use super::layout::RowLayout;
use super::table_map::table_def_from_map;
use super::{json, table_schema, TypeOptions};

impl RowLayout {
    /// Decodes every row image of a rows event, calling `f` with the before and after image
    /// of each row (`None` where the kind has none). `buf` is reused between rows.
    pub fn for_each_row<'a>(
        &self,
        ev: &RowsEventView<'a>,
        buf: &mut Vec<Datum<'a>>,
        mut f: impl FnMut(Option<&[Datum<'a>]>, Option<&[Datum<'a>]>),
    ) -> Result<usize, DecodeError> {
        if ev.column_count != self.cols.len() {
            return Err(DecodeError::SchemaMismatch {
                table: self.table.clone(),
                detail: format!(
                    "rows event has {} columns, the table map {}",
                    ev.column_count,
                    self.cols.len()
                ),
            });
        }
        let mut pos = 0;
        let mut rows = 0;
        while pos < ev.rows.len() {
            let row_start = pos;
            buf.clear();
            match ev.kind {
                RowsKind::Write => {
                    self.decode_row(ev.rows, &mut pos, ev.present_after, buf)?;
                    f(None, Some(buf));
                }
                RowsKind::Delete => {
                    self.decode_row(ev.rows, &mut pos, ev.present_before, buf)?;
                    f(Some(buf), None);
                }
                RowsKind::Update => {
                    self.decode_row(ev.rows, &mut pos, ev.present_before, buf)?;
                    let split = buf.len();
                    self.decode_row(ev.rows, &mut pos, ev.present_after, buf)?;
                    let (before, after) = buf.split_at(split);
                    f(Some(before), Some(after));
                }
            }
            // A row of a table without columns takes no bytes: a damaged event that names
            // zero columns but carries row data would otherwise be read forever (found by
            // mutating the fuzz corpus). Tables have at least one column.
            if pos == row_start {
                return Err(DecodeError::Malformed {
                    what: "rows event",
                    reason: "rows of zero bytes (no columns) with row data left",
                });
            }
            rows += 1;
        }
        Ok(rows)
    }
}

/// Decodes every row of a binlog file or captured run of events whose table maps carry
/// column names (`binlog_row_metadata = FULL`), calling `f(table map, before, after)` per row;
/// returns the number of rows. Used by the fuzz target, the decoder tests on captured bytes,
/// and as the decode-only reference of the benchmark. Rows of tables whose map has no names
/// are skipped.
pub fn decode_stream(
    stream: &[u8],
    opts: &TypeOptions,
    mut f: impl FnMut(&TableMapInfo, Option<&[Datum<'_>]>, Option<&[Datum<'_>]>),
) -> Result<usize, DecodeError> {
    use crate::mysql::events::{
        event_type as et, EventSplitter, Flavor, MariadbGtidEvent, MariadbGtidList, MysqlGtidEvent,
    };
    use std::collections::HashMap;
    let mut maps: HashMap<u64, (TableMapInfo, Option<RowLayout>)> = HashMap::new();
    let mut rows = 0;
    let mut buf = Vec::new();
    let mut flavor = Flavor::MySql;
    for ev in EventSplitter::new(stream, true) {
        let ev = ev?;
        crate::mysql::events::check_supported(ev.event_type)?;
        match ev.event_type {
            et::FORMAT_DESCRIPTION => flavor = Flavor::from_format_description(ev.body),
            et::TABLE_MAP => {
                let map = TableMapInfo::parse(ev.body, flavor)?;
                let layout = match table_def_from_map(&map.database, &map.table, &map) {
                    Some(def) => Some(RowLayout::new(&def, &map, opts)?),
                    None => None,
                };
                maps.insert(map.table_id, (map, layout));
            }
            et::MARIADB_GTID => {
                MariadbGtidEvent::parse(ev.body, ev.server_id)?;
            }
            et::MARIADB_GTID_LIST => {
                MariadbGtidList::parse(ev.body)?;
            }
            et::MARIADB_BINLOG_CHECKPOINT => {
                crate::mysql::events::parse_binlog_checkpoint(ev.body)?;
            }
            et::MYSQL_GTID => {
                MysqlGtidEvent::parse(ev.body)?;
            }
            t if RowsEventView::kind_of(t).is_some() => {
                let view = RowsEventView::parse(t, ev.body)?;
                let Some((map, Some(layout))) = maps.get(&view.table_id) else {
                    continue;
                };
                rows += layout.for_each_row(&view, &mut buf, |b, a| f(map, b, a))?;
            }
            _ => {}
        }
    }
    Ok(rows)
}

/// Feeds arbitrary bytes to every parser of this layer; the `binlog` fuzz target and the
/// corpus replay test call it. Must never panic.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    use crate::mysql::events::{
        parse_annotate_rows, parse_binlog_checkpoint, EventSplitter, Flavor, MariadbGtidEvent,
        MariadbGtidList, MysqlGtidEvent,
    };
    let opts = TypeOptions::default();
    // as a binlog file or run of events
    let _ = decode_stream(data, &opts, |_, _, _| {});
    // every event body through every parser, with the last table map used for rows events
    let mut layout: Option<RowLayout> = None;
    let mut buf = Vec::new();
    for ev in EventSplitter::new(data, false)
        .without_verification()
        .take(64)
    {
        let Ok(ev) = ev else { break };
        let body = ev.body;
        let _ = MariadbGtidEvent::parse(body, ev.server_id);
        let _ = MariadbGtidList::parse(body);
        let _ = parse_binlog_checkpoint(body);
        let _ = parse_annotate_rows(body);
        let _ = MysqlGtidEvent::parse(body).map(|g| g.gtid());
        for flavor in [Flavor::MySql, Flavor::MariaDb] {
            if let Ok(map) = TableMapInfo::parse(body, flavor) {
                if let Some(def) = table_def_from_map("db", "t", &map) {
                    let _ = table_schema(&def, &opts);
                    if let Ok(l) = RowLayout::new(&def, &map, &opts) {
                        layout = Some(l);
                    }
                }
            }
        }
        for t in [23u8, 24, 25, 30, 31, 32] {
            if let (Ok(view), Some(l)) = (RowsEventView::parse(t, body), &layout) {
                let _ = l.for_each_row(&view, &mut buf, |_, _| {});
            }
        }
    }
    // as a binary JSON document
    let _ = json::to_text(data);
}
