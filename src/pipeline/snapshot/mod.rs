//! Snapshots taken while the change stream runs, in key-ordered chunks (the DBLog watermark
//! method), for every source.
//!
//! ```text
//!  driver: no window open? ─▶ ChangeStream::write_watermark(low)
//!                             ChangeStream::read_chunk  (key > last key, ORDER BY key, LIMIT n)
//!                             ChangeStream::write_watermark(high)
//!                                   │ rows held in a Window (bounded by the chunk size)
//!  stream ── … ── low ── changes ── high ── …
//!                  │        │         └─▶ Pipeline::snapshot_watermark: emit the rows left (op r)
//!                  │        └─▶ Pipeline::publish: a change of a selected key drops that row
//!                  └─▶ window open
//! ```
//!
//! The rows of a chunk are emitted inside the source transaction of its high watermark, in
//! the same Kafka transaction as the stream around them, and the checkpoint that transaction
//! carries says where the snapshot stands ([`SnapshotState`]). A crash loses at most the
//! chunk in flight, which was never committed; the restart reads it again. No Kafka
//! transaction holds more than the group-commit bounds plus one chunk, and no database
//! snapshot or slot is held open for the snapshot's duration.

mod window;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::checkpoint::{KeyValue, SnapshotKind, SnapshotState, TableProgress};
use crate::error::SourceError;
use crate::event::{ChangeEvent, Datum, Op, SourceBlock, TableId, TableSchema};
use crate::publish::EventMeta;
use crate::sink::Sink;
pub use window::Window;

use super::Pipeline;

/// Text that starts every watermark the agent writes (logical message content on
/// PostgreSQL, signal-table row id on MySQL).
pub const WATERMARK_PREFIX: &str = "cdc-agent-watermark";
/// Prefix of signals sent as PostgreSQL logical decoding messages (`cdc-agent snapshot`).
pub const SIGNAL_PREFIX: &str = "cdc-agent-signal";
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Which watermark of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Written before the chunk is selected.
    Low,
    /// Written after the chunk is selected.
    High,
}

/// A watermark as the agent writes it and the stream brings it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// Low or high.
    pub mark: Mark,
    /// Chunk id, unique per source and process.
    pub id: String,
}

impl Watermark {
    /// `cdc-agent-watermark low <id>`.
    pub fn text(&self) -> String {
        let m = match self.mark {
            Mark::Low => "low",
            Mark::High => "high",
        };
        format!("{WATERMARK_PREFIX} {m} {}", self.id)
    }

    /// Parses [`Watermark::text`]; `None` for anything else.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(text).ok()?;
        let mut parts = text.splitn(3, ' ');
        if parts.next()? != WATERMARK_PREFIX {
            return None;
        }
        let mark = match parts.next()? {
            "low" => Mark::Low,
            "high" => Mark::High,
            _ => return None,
        };
        Some(Self {
            mark,
            id: parts.next()?.to_string(),
        })
    }
}

/// What the driver asks a source to read: the next chunk of one table.
#[derive(Debug, Clone)]
pub struct ChunkRequest {
    /// `schema.table` (MySQL `database.table`).
    pub table: String,
    /// Extra SQL condition (`cdc-agent snapshot --where`).
    pub filter: Option<String>,
    /// Read keys strictly after this one; `None` for the table's first chunk.
    pub after: Option<Vec<KeyValue>>,
    /// Read no key beyond this one (inclusive), when the table's progress has a bound
    /// ([`TableProgress::until`]); sources that never set one may ignore it.
    pub until: Option<Vec<KeyValue>>,
    /// At most this many rows.
    pub limit: usize,
    /// The table's first chunk: the source also returns a row estimate.
    pub first: bool,
}

/// A chunk as a source read it.
pub struct Chunk {
    /// The schema the rows were decoded with, already set on the pipeline.
    pub schema: Arc<TableSchema>,
    /// Rows in key order, at most the request's `limit`.
    pub rows: Vec<Vec<Datum<'static>>>,
    /// Key of the last row (the next chunk starts after it).
    pub last_key: Option<Vec<KeyValue>>,
    /// Rows exist after the last one (sources read `limit + 1` to know).
    pub more: bool,
    /// Row estimate of the table, on a first chunk.
    pub estimate: Option<u64>,
}

/// The snapshot part of a pipeline: which tables remain, the open window, progress.
pub struct Snapshots {
    state: SnapshotState,
    chunk_size: usize,
    /// Chunk ids: `<source>-<process start ms>-<n>`, unique across restarts.
    id_base: String,
    seq: u64,
    window: Option<Window>,
    /// The initial snapshot is done (or was never wanted).
    initial_done: bool,
    /// Something changed that the next checkpoint must carry.
    dirty: bool,
    started: Instant,
    rows_since_start: u64,
    last_log: Instant,
    /// "snapshot starting" was logged for the current run of tables.
    announced: bool,
    /// Chunks read again in a row ([`Snapshots::discard_window`]), and when the next read may
    /// start: a read that keeps missing a transaction (one waiting on a synchronous standby
    /// is committed in the WAL but not yet visible) waits longer each time instead of
    /// querying the database in a tight loop.
    rereads: u32,
    not_before: Option<Instant>,
    /// At least once: the state as of the last drain (what Kafka is known to hold).
    pub(super) durable: SnapshotState,
    /// `snapshot.mode = initial_only`: the driver stops once every table is done.
    pub stop_when_done: bool,
    /// Tables that join the capture are snapshotted (not with `snapshot.mode = never`).
    pub auto_snapshot_new_tables: bool,
}

impl Snapshots {
    /// The snapshot state of a source as its checkpoint left it.
    pub fn new(source: &str, state: SnapshotState, initial_done: bool, chunk_size: usize) -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let state_copy = state.clone();
        Self {
            state,
            chunk_size: chunk_size.max(1),
            id_base: format!("{source}-{ms}"),
            seq: 0,
            window: None,
            initial_done,
            dirty: false,
            started: Instant::now(),
            rows_since_start: 0,
            last_log: Instant::now(),
            announced: false,
            rereads: 0,
            not_before: None,
            durable: state_copy,
            stop_when_done: false,
            auto_snapshot_new_tables: true,
        }
    }

    /// Logs where each unfinished table resumes (after a restart).
    pub fn log_resuming(&self) {
        for t in self.state.tables.iter().filter(|t| !t.done) {
            let after: Vec<String> = t.after.iter().flatten().map(ToString::to_string).collect();
            tracing::info!(
                table = %t.table,
                after_key = %after.join(","),
                rows_done = t.rows,
                "snapshot resuming"
            );
        }
    }

    /// Adds tables to snapshot (skipping those already pending).
    pub fn add(&mut self, tables: impl IntoIterator<Item = TableProgress>) {
        for t in tables {
            if self
                .state
                .tables
                .iter()
                .any(|p| !p.done && p.table == t.table && p.filter == t.filter)
            {
                continue;
            }
            tracing::info!(table = %t.table, kind = t.kind.as_str(), filter = t.filter.as_deref().unwrap_or(""), "snapshot of table queued");
            self.state.tables.push(t);
            self.dirty = true;
        }
    }

    /// Records the set of tables the capture covers now.
    pub fn set_captured(&mut self, tables: Vec<String>) {
        if self.state.captured.as_ref() != Some(&tables) {
            self.state.captured = Some(tables);
            self.dirty = true;
        }
    }

    /// A table the stream shows changes of: when the capture did not cover it before, its
    /// existing rows are snapshotted (incrementally) and it joins the captured set.
    pub fn newly_captured(&mut self, table: &str) {
        let Some(captured) = &mut self.state.captured else {
            return;
        };
        if captured.iter().any(|t| t == table) {
            return;
        }
        captured.push(table.to_string());
        self.dirty = true;
        if self.auto_snapshot_new_tables {
            tracing::info!(
                table,
                "table newly captured; snapshotting its existing rows"
            );
            self.add([TableProgress::new(table, SnapshotKind::Incremental, None)]);
        }
    }

    /// Pauses or resumes reading chunks (the open window still completes).
    pub fn set_paused(&mut self, paused: bool) {
        if self.state.paused != paused {
            tracing::info!(
                paused,
                "snapshot {}",
                if paused { "paused" } else { "resumed" }
            );
            self.state.paused = paused;
            self.dirty = true;
        }
    }

    /// Stops snapshots of `tables` (every table when empty): their remaining rows are not read.
    pub fn stop(&mut self, tables: &[String]) {
        for t in self.state.tables.iter_mut().filter(|t| !t.done) {
            if tables.is_empty() || tables.contains(&t.table) {
                tracing::info!(table = %t.table, rows = t.rows, "snapshot of table stopped");
                t.done = true;
                self.dirty = true;
            }
        }
        if let Some(w) = &self.window {
            if self.state.tables.get(w.table).is_some_and(|t| t.done) {
                self.window = None;
            }
        }
        self.finish_if_done();
    }

    /// `table` was dropped while its snapshot ran (reading it failed with `error`): it is
    /// done, with the rows read so far. Its drop reaches consumers as the database reports it
    /// (none on PostgreSQL, a schema change on MySQL); no event is invented here.
    pub fn table_gone(&mut self, table: &str, error: &SourceError) {
        for t in self
            .state
            .tables
            .iter_mut()
            .filter(|t| !t.done && t.table == table)
        {
            tracing::warn!(table, rows = t.rows, error = %error, "snapshot of table ended: the table no longer exists");
            t.done = true;
            self.dirty = true;
        }
        self.finish_if_done();
    }

    /// Acts on a signal (Debezium's shapes): `execute-snapshot` with `data-collections`,
    /// optional `additional-conditions` (`data-collection`, `filter`); `stop-snapshot` with
    /// optional `data-collections`; `pause-snapshot`; `resume-snapshot`. A signal that cannot
    /// be followed is logged and ignored: it comes from the database, and must not stop
    /// the source.
    pub fn signal(&mut self, kind: &str, data: &[u8]) {
        match parse_signal(kind, data, self.state.captured.as_deref()) {
            Ok(Signal::Execute(tables)) => self.add(tables),
            Ok(Signal::Stop(tables)) => self.stop(&tables),
            Ok(Signal::Pause) => self.set_paused(true),
            Ok(Signal::Resume) => self.set_paused(false),
            Ok(Signal::Other) => {
                tracing::debug!(kind, "signal of a kind the agent does not act on");
            }
            Err(e) => tracing::warn!(kind, error = %e, "ignoring a signal that cannot be followed"),
        }
    }

    /// What the checkpoint records.
    pub fn state(&self) -> &SnapshotState {
        &self.state
    }

    /// Whether the initial snapshot is complete.
    pub fn initial_done(&self) -> bool {
        self.initial_done
    }

    /// Whether every queued table is done.
    pub fn idle(&self) -> bool {
        self.window.is_none() && self.state.tables.iter().all(|t| t.done)
    }

    /// Whether the state moved since the last [`Snapshots::take_dirty`].
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The next chunk to read, when no window is open and a table remains.
    pub fn next_request(&mut self) -> Option<(Watermark, ChunkRequest)> {
        if self.window.is_some() || self.state.paused {
            return None;
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let t = self.state.tables.iter().find(|t| !t.done)?;
        if !self.announced {
            self.announced = true;
            let pending = self.state.tables.iter().filter(|t| !t.done).count();
            let (done, estimate) = self.progress();
            tracing::info!(
                tables = pending,
                rows_done = done,
                estimated_rows = estimate,
                chunk_size = self.chunk_size,
                "snapshot starting"
            );
        }
        self.seq += 1;
        Some((
            Watermark {
                mark: Mark::Low,
                id: format!("{}-{}", self.id_base, self.seq),
            },
            ChunkRequest {
                table: t.table.clone(),
                filter: t.filter.clone(),
                after: t.after.clone(),
                until: t.until.clone(),
                limit: self.chunk_size,
                first: t.after.is_none(),
            },
        ))
    }

    /// The chunk of `req` was read between the watermarks `id`: hold it until the stream
    /// brings them back.
    pub fn hold(&mut self, id: String, req: &ChunkRequest, chunk: Chunk) {
        let Some(idx) = self
            .state
            .tables
            .iter()
            .position(|t| !t.done && t.table == req.table && t.filter == req.filter)
        else {
            return;
        };
        let t = &mut self.state.tables[idx];
        if let Some(e) = chunk.estimate {
            if t.estimate == 0 {
                t.estimate = e;
            }
        }
        if chunk.rows.is_empty() {
            // Nothing left: no watermark round trip needed.
            t.done = true;
            self.dirty = true;
            tracing::info!(table = %t.table, rows = t.rows, "snapshot of table complete");
            self.finish_if_done();
            return;
        }
        self.window = Some(Window::new(
            id,
            idx,
            chunk.schema,
            chunk.rows,
            chunk.last_key,
            chunk.more,
        ));
    }

    /// Id of the watermarks of the held chunk, while one is held.
    pub fn window_id(&self) -> Option<&str> {
        self.window.as_ref().map(|w| w.id.as_str())
    }

    /// The source found the held chunk's read inconsistent with the stream (`why`): forget
    /// it. Nothing was emitted from it and the table's position did not move, so the same rows
    /// are read again, under a new pair of watermarks.
    pub fn discard_window(&mut self, why: &str) {
        if let Some(w) = self.window.take() {
            self.rereads = self.rereads.saturating_add(1);
            let wait = reread_backoff(self.rereads);
            self.not_before = Some(Instant::now() + wait);
            tracing::info!(
                table = %self.state.tables[w.table].table,
                reason = why,
                attempt = self.rereads,
                wait_ms = wait.as_millis() as u64,
                "snapshot chunk read again"
            );
        }
    }

    /// A change of `table` went by: in an open window, it replaces the selected row of its key.
    pub fn cover(&mut self, ev: &ChangeEvent<'_>) {
        let Some(w) = &mut self.window else { return };
        if !w.open || w.schema.id != ev.table.id {
            return;
        }
        if ev.op == Op::Truncate {
            w.truncate();
            return;
        }
        let row = match ev.op {
            Op::Delete => ev.before,
            _ => ev.after.or(ev.before),
        };
        if let Some(row) = row {
            w.cover(row);
        }
    }

    /// A watermark came back through the stream. Returns the table whose rows are to be
    /// emitted now, when it closes the open window.
    pub fn watermark(&mut self, wm: &Watermark) -> Option<Arc<TableSchema>> {
        let w = self.window.as_mut()?;
        if w.id != wm.id {
            // Another process's or a replayed one: its chunk is gone.
            return None;
        }
        match wm.mark {
            Mark::Low => {
                w.open = true;
                None
            }
            Mark::High if w.open => {
                self.rereads = 0;
                self.not_before = None;
                Some(w.schema.clone())
            }
            Mark::High => None,
        }
    }

    /// Takes the window the high watermark closed, with the `source.snapshot` marker of
    /// each remaining row.
    fn take_window(&mut self) -> Option<(Window, Vec<&'static str>)> {
        let w = self.window.take()?;
        let t = &self.state.tables[w.table];
        let n = w.remaining();
        let mut markers = vec![
            match t.kind {
                SnapshotKind::Initial => "true",
                SnapshotKind::Incremental => "incremental",
            };
            n
        ];
        if t.kind == SnapshotKind::Initial && n > 0 {
            let first_of_all = self
                .state
                .tables
                .iter()
                .filter(|t| t.kind == SnapshotKind::Initial)
                .all(|t| t.rows == 0);
            if first_of_all {
                markers[0] = "first";
            }
            let last_of_all = !w.more
                && self
                    .state
                    .tables
                    .iter()
                    .enumerate()
                    .all(|(i, t)| i == w.table || t.done || t.kind != SnapshotKind::Initial);
            if last_of_all {
                markers[n - 1] = "last";
            }
        }
        Some((w, markers))
    }

    /// Records that `w`'s rows were emitted.
    fn emitted(&mut self, table: usize, last_key: Option<Vec<KeyValue>>, more: bool, rows: u64) {
        let t = &mut self.state.tables[table];
        t.rows += rows;
        t.after = last_key;
        self.rows_since_start += rows;
        self.dirty = true;
        if !more {
            t.done = true;
            tracing::info!(table = %t.table, rows = t.rows, "snapshot of table complete");
        }
        self.finish_if_done();
    }

    fn finish_if_done(&mut self) {
        if self.window.is_some() || self.state.tables.iter().any(|t| !t.done) {
            return;
        }
        if !self.state.tables.is_empty() {
            let rows: u64 = self.state.tables.iter().map(|t| t.rows).sum();
            tracing::info!(
                tables = self.state.tables.len(),
                rows,
                secs = self.started.elapsed().as_secs(),
                "snapshot complete"
            );
            self.state.tables.clear();
            self.announced = false;
            self.dirty = true;
        }
        if !self.initial_done {
            self.initial_done = true;
            self.dirty = true;
        }
    }

    /// Rows done and estimated over the tables in progress.
    pub fn progress(&self) -> (u64, u64) {
        self.state
            .tables
            .iter()
            .fold((0, 0), |(d, e), t| (d + t.rows, e + t.estimate.max(t.rows)))
    }

    fn log_progress(&mut self) {
        if self.last_log.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last_log = Instant::now();
        let (done, estimate) = self.progress();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.rows_since_start as f64 / secs;
        let eta = (rate > 0.0).then(|| (estimate.saturating_sub(done) as f64 / rate) as u64);
        let table = self
            .window
            .as_ref()
            .and_then(|w| self.state.tables.get(w.table))
            .or_else(|| self.state.tables.iter().find(|t| !t.done));
        tracing::info!(
            table = table.map_or("", |t| t.table.as_str()),
            rows = done,
            estimated_rows = estimate,
            rows_per_s = rate as u64,
            eta_s = eta.unwrap_or(0),
            "snapshot progress"
        );
    }
}

/// How long the `n`th read again in a row of a chunk waits: 10 ms, doubling, at most 1 s.
fn reread_backoff(n: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(10);
    const MOST: Duration = Duration::from_secs(1);
    FIRST
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(MOST)
}

/// Tables captured now that the checkpoint's captured set (`known`) lacks: they joined the
/// capture since the last run and are snapshotted alone — as part of the initial snapshot
/// while that is still running, incrementally after it.
pub fn joined_tables<'a>(
    tables: &'a [String],
    known: &[String],
    initial_done: bool,
) -> impl Iterator<Item = TableProgress> + 'a {
    let kind = if initial_done {
        SnapshotKind::Incremental
    } else {
        SnapshotKind::Initial
    };
    let known = known.to_vec();
    tables
        .iter()
        .filter(move |t| !known.contains(t))
        .map(move |t| TableProgress::new(t.clone(), kind, None))
}

/// A signal, parsed.
#[derive(Debug, PartialEq)]
enum Signal {
    Execute(Vec<TableProgress>),
    Stop(Vec<String>),
    Pause,
    Resume,
    Other,
}

/// The `data` of a signal.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SignalData {
    #[serde(default)]
    data_collections: Vec<String>,
    #[serde(default, rename = "type")]
    snapshot_type: Option<String>,
    #[serde(default)]
    additional_conditions: Vec<Condition>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Condition {
    data_collection: String,
    filter: String,
}

fn parse_signal(kind: &str, data: &[u8], captured: Option<&[String]>) -> Result<Signal, String> {
    let data: SignalData = if data.iter().all(u8::is_ascii_whitespace) {
        SignalData::default()
    } else {
        serde_json::from_slice(data).map_err(|e| format!("data is not the expected JSON: {e}"))?
    };
    match kind {
        "execute-snapshot" => {
            if let Some(t) = data.snapshot_type.as_deref() {
                if !t.eq_ignore_ascii_case("incremental") {
                    return Err(format!(
                        "snapshot type `{t}` is not supported; use \"incremental\""
                    ));
                }
            }
            if data.data_collections.is_empty() {
                return Err("`data-collections` is empty".into());
            }
            let mut out = Vec::with_capacity(data.data_collections.len());
            for table in data.data_collections {
                if let Some(c) = captured {
                    if !c.contains(&table) {
                        return Err(format!(
                            "table `{table}` is not captured by this source (captured: {})",
                            c.join(", ")
                        ));
                    }
                }
                let filter = data
                    .additional_conditions
                    .iter()
                    .find(|c| c.data_collection == table)
                    .map(|c| c.filter.clone());
                out.push(TableProgress::new(table, SnapshotKind::Incremental, filter));
            }
            Ok(Signal::Execute(out))
        }
        "stop-snapshot" => Ok(Signal::Stop(data.data_collections)),
        "pause-snapshot" => Ok(Signal::Pause),
        "resume-snapshot" => Ok(Signal::Resume),
        _ => Ok(Signal::Other),
    }
}

/// A signal as a PostgreSQL logical message carries it: `{"type": …, "data": {…}}`.
#[derive(Debug, serde::Deserialize)]
pub struct SignalMessage {
    /// `execute-snapshot`, `stop-snapshot`, `pause-snapshot`, `resume-snapshot`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The signal's data.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl<S: Sink> Pipeline<S> {
    /// A signal arrived through the stream (see [`Snapshots::signal`]).
    pub fn snapshot_signal(&mut self, kind: &str, data: &[u8]) {
        match self.snapshots.as_mut() {
            Some(s) => s.signal(kind, data),
            None => tracing::warn!(
                kind,
                "ignoring a snapshot signal: this source does not take snapshots while streaming"
            ),
        }
    }

    /// A signal sent as one JSON message (`{"type": …, "data": {…}}`).
    pub fn snapshot_signal_message(&mut self, content: &[u8]) {
        match serde_json::from_slice::<SignalMessage>(content) {
            Ok(m) => {
                let data = serde_json::to_vec(&m.data).unwrap_or_default();
                let data = if m.data.is_null() { Vec::new() } else { data };
                self.snapshot_signal(&m.kind, &data);
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a signal message that is not a JSON object with type and data")
            }
        }
    }

    /// Takes snapshots from here on: `snapshots` says what remains (from the checkpoint, plus
    /// new tables).
    pub fn set_snapshots(&mut self, snapshots: Snapshots) {
        self.snapshots = Some(snapshots);
    }

    /// The snapshot part, when the source takes snapshots while streaming.
    pub fn snapshots(&mut self) -> Option<&mut Snapshots> {
        self.snapshots.as_mut()
    }

    /// A watermark came back through the stream. When it closes the open window, returns the
    /// table whose rows the source must now emit with [`Pipeline::emit_window`], giving the
    /// `source` block they carry (its position: the high watermark's).
    pub fn snapshot_watermark(&mut self, text: &[u8]) -> Option<Arc<TableSchema>> {
        let wm = Watermark::parse(text)?;
        self.snapshots.as_mut()?.watermark(&wm)
    }

    /// Emits the rows left in the window the high watermark closed, as `op = "r"` events
    /// with `source` (its `snapshot` field set per row: `first`, `true`, `last` or
    /// `incremental`).
    pub async fn emit_window(
        &mut self,
        mut source: SourceBlock<'_>,
        meta: EventMeta<'_>,
    ) -> Result<(), SourceError> {
        let Some((w, markers)) = self.snapshots.as_mut().and_then(Snapshots::take_window) else {
            return Ok(());
        };
        let (table, last_key, more, schema) =
            (w.table, w.last_key.clone(), w.more, w.schema.clone());
        let (replaced, stream_wait, started) = (w.dropped, w.held_at.elapsed(), Instant::now());
        let processed_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        // The chunk is queued whole (two records a row with the event store): Kafka sends it
        // while the driver reads the next chunk, instead of the read waiting for the last
        // records to fit under the default bound.
        let records = w.remaining().saturating_mul(2);
        self.publisher.sink().set_in_flight_bound(Some(records));
        let mut n = 0u64;
        let mut emitted = Ok(());
        for (row, marker) in w.into_rows().zip(markers) {
            source.set_snapshot(marker);
            let ev = ChangeEvent {
                table: &schema,
                op: Op::Read,
                before: None,
                after: Some(&row),
                source: source.clone(),
                processed_us,
                transaction: None,
            };
            if let Err(e) = self.publisher.publish(&ev, meta).await {
                emitted = Err(e);
                break;
            }
            n += 1;
        }
        self.publisher.sink().set_in_flight_bound(None);
        emitted?;
        tracing::debug!(
            table = %schema.id,
            rows = n,
            replaced,
            stream_wait_us = stream_wait.as_micros() as u64,
            emit_us = started.elapsed().as_micros() as u64,
            "snapshot chunk emitted"
        );
        let status = self.publisher.status().clone();
        status.snapshot_rows(n);
        if let Some(s) = self.snapshots.as_mut() {
            s.emitted(table, last_key, more, n);
            let (done, estimate) = s.progress();
            status.snapshot_progress(done, estimate);
            s.log_progress();
        }
        Ok(())
    }

    /// The table of `id` if a window over it is open (sources use it to skip work).
    pub fn snapshot_window_table(&self) -> Option<&TableId> {
        self.snapshots
            .as_ref()?
            .window
            .as_ref()
            .filter(|w| w.open)
            .map(|w| &w.schema.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_read_again_and_again_waits_longer_each_time_up_to_a_second() {
        assert_eq!(reread_backoff(1), Duration::from_millis(10));
        assert_eq!(reread_backoff(2), Duration::from_millis(20));
        assert_eq!(reread_backoff(5), Duration::from_millis(160));
        assert_eq!(reread_backoff(8), Duration::from_secs(1));
        assert_eq!(reread_backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn an_execute_snapshot_signal_in_debeziums_shape_queues_its_tables_with_their_filters() {
        let data = br#"{"data-collections": ["public.a", "public.b"], "type": "incremental",
            "additional-conditions": [{"data-collection": "public.b", "filter": "id > 10"}]}"#;
        let captured = vec!["public.a".to_string(), "public.b".to_string()];
        let Ok(Signal::Execute(t)) = parse_signal("execute-snapshot", data, Some(&captured)) else {
            panic!("not parsed");
        };
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].filter, None);
        assert_eq!(t[1].filter.as_deref(), Some("id > 10"));
        assert!(t.iter().all(|t| t.kind == SnapshotKind::Incremental));
    }

    #[test]
    fn signals_that_cannot_be_followed_are_refused_with_the_reason() {
        let captured = vec!["public.a".to_string()];
        let e = parse_signal(
            "execute-snapshot",
            br#"{"data-collections": ["public.x"]}"#,
            Some(&captured),
        )
        .unwrap_err();
        assert!(e.contains("not captured"), "{e}");
        let e = parse_signal(
            "execute-snapshot",
            br#"{"data-collections": ["public.a"], "type": "blocking"}"#,
            None,
        )
        .unwrap_err();
        assert!(e.contains("blocking"), "{e}");
        assert!(parse_signal("execute-snapshot", b"not json", None).is_err());
        assert_eq!(parse_signal("pause-snapshot", b"", None), Ok(Signal::Pause));
        assert_eq!(parse_signal("log", b"{}", None), Ok(Signal::Other));
    }

    #[test]
    fn watermarks_round_trip_through_their_text() {
        let wm = Watermark {
            mark: Mark::High,
            id: "pg-demo-17-3".into(),
        };
        assert_eq!(wm.text(), "cdc-agent-watermark high pg-demo-17-3");
        assert_eq!(Watermark::parse(wm.text().as_bytes()), Some(wm));
        assert_eq!(Watermark::parse(b"something else"), None);
        assert_eq!(Watermark::parse(b"cdc-agent-watermark middle x"), None);
    }
}
