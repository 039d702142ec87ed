//! Schema history of a MySQL/MariaDB source, persisted in Kafka.
//!
//! The [`Catalog`] must be right *at the binlog position being decoded*: a restart at an
//! older position (a crash, a replay) decodes rows written before an `ALTER TABLE` with the
//! columns they were written with. So every change to the catalog is a record in the topic
//! `<topic_prefix>.schema-history` (key = source name, value = JSON), written through the
//! source's transactional producer in the same Kafka transaction as the events that follow it
//! and the checkpoint that records its sequence number. The topic is never compacted and never
//! expires: the records are the only copy of past definitions.
//!
//! ## Records
//! - A **snapshot** record carries every table definition at the snapshot's position (large
//!   catalogs are split in several records, [`HistoryRecord::continues`] marking the parts
//!   after the first). It starts a new *epoch*: the catalog is replaced, not amended.
//! - A **DDL** record carries the statement, the new definitions of the tables it changed and
//!   the tables it dropped, at the position of the statement's binlog event.
//!
//! Sequence numbers start after the previous record's and have no gaps, so a checkpoint's
//! `history_seq` says exactly how much history must exist.
//!
//! ## Catalog at a position
//! [`SchemaHistory::catalog_at`] takes the newest epoch whose snapshot position is `<= pos`
//! and applies its DDL records whose position is `< pos`: a snapshot describes the tables *at*
//! its position (before any event there), a DDL record the state *after* its event.
//!
//! ## Damage
//! [`SchemaHistory::verify`] finds a missing topic, missing records (a gap, or fewer records
//! than the checkpoint says were committed), unreadable records and records of another source
//! or server. Recovery is documented in `docs/mysql-schema-history.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::Message;
use serde::{Deserialize, Serialize};

use super::catalog::{BinlogPosition, Catalog, TableDef};
use super::ddl::DdlOutcome;
use crate::config::KafkaConfig;
use crate::sink::kafka::SinkError;
use crate::sink::read::{read_to_end, TopicRead};

pub use crate::topics::SCHEMA_HISTORY_TOPIC_CONFIGS as HISTORY_TOPIC_CONFIGS;
/// How long loading may wait for the broker.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Snapshot records are split so that one record's JSON stays below this size, well under
/// Kafka's default 1 MiB `message.max.bytes`.
const SNAPSHOT_RECORD_MAX_BYTES: usize = 512 * 1024;
/// The documentation an operator is pointed to.
const RECOVERY_DOC: &str = "docs/mysql-schema-history.md";

pub use crate::topics::schema_history_topic as history_topic;

/// One record of the history topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Source name; equals the record's key. A record of another source in the key's place
    /// means the topic was tampered with or shared by mistake.
    #[serde(default)]
    pub source: String,
    /// Identity of the server whose binlog positions these are (`@@server_id` or
    /// `@@server_uuid`), when the source knows it.
    #[serde(default)]
    pub server: Option<String>,
    /// 1, 2, 3, … without gaps within a source.
    pub seq: u64,
    /// Binlog position of the DDL event, or of the snapshot.
    pub position: BinlogPosition,
    /// GTID of the DDL's event group (or the GTID state of the snapshot), when known.
    pub gtid: Option<String>,
    /// The DDL statement as the binlog carries it; `None` for snapshot records.
    pub ddl: Option<String>,
    /// The default database the statement ran in.
    pub database: Option<String>,
    /// New definitions (DDL record) or every definition (snapshot record).
    pub tables: Vec<TableDef>,
    /// Tables the DDL dropped (or renamed away).
    pub dropped: Vec<(String, String)>,
    /// Default character set of every known database after this record (small; kept whole
    /// so no record depends on another for it).
    #[serde(default)]
    pub databases: BTreeMap<String, String>,
    /// The server's default character set, when known.
    #[serde(default)]
    pub server_charset: Option<String>,
    /// Default character set of each table in `tables`, as `(database, table, charset)`.
    #[serde(default)]
    pub table_charsets: Vec<(String, String, String)>,
    /// A snapshot record: replaces the catalog instead of amending it.
    pub snapshot: bool,
    /// A later part of a snapshot split over several records (adds to the first part's
    /// catalog instead of replacing it).
    #[serde(default)]
    pub continues: bool,
}

impl HistoryRecord {
    /// Whether this record starts an epoch (a snapshot's first part).
    pub fn starts_epoch(&self) -> bool {
        self.snapshot && !self.continues
    }
}

/// A problem with the stored history that makes decoding unsafe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The checkpoint says history was committed, but the topic does not exist or has no
    /// record of this source.
    #[error(
        "schema history topic `{topic}` is missing or holds no record of source `{source_name}`, \
         but the checkpoint says {expected} record(s) were committed; {RECOVERY}"
    )]
    Missing {
        /// History topic.
        topic: String,
        /// Source name.
        source_name: String,
        /// The checkpoint's sequence number.
        expected: u64,
    },
    /// Fewer records than the checkpoint says were committed.
    #[error(
        "schema history topic `{topic}` ends at record {have} but the checkpoint says {expected} \
         were committed (records were deleted); {RECOVERY}"
    )]
    Truncated {
        /// History topic.
        topic: String,
        /// Last sequence number found.
        have: u64,
        /// The checkpoint's sequence number.
        expected: u64,
    },
    /// Records are missing in the middle or at the start.
    #[error(
        "schema history topic `{topic}` has a gap: record {missing} is missing (found {found} \
         after {after}); {RECOVERY}"
    )]
    Gap {
        /// History topic.
        topic: String,
        /// The record before the gap (0 = none).
        after: u64,
        /// The first missing sequence number.
        missing: u64,
        /// The record found instead.
        found: u64,
    },
    /// A record of this source cannot be read, or contradicts another.
    #[error("schema history topic `{topic}` has a damaged record ({detail}); {RECOVERY}")]
    Damaged {
        /// History topic.
        topic: String,
        /// Partition, offset and what is wrong.
        detail: String,
    },
    /// A record names another source or another server.
    #[error(
        "schema history topic `{topic}` holds a record of another {what} ({detail}); {RECOVERY}"
    )]
    Foreign {
        /// History topic.
        topic: String,
        /// `source` or `server`.
        what: &'static str,
        /// Offset and the names found.
        detail: String,
    },
}

/// The recovery advice every [`HistoryError`] ends with.
const RECOVERY: &str = "the binlog cannot be decoded safely without it. Fix: either take a new \
    snapshot (delete this source's key from the offsets topic, or use a new topic_prefix), or set \
    [mysql] schema_history_recovery = \"rebuild\" to rebuild the history from information_schema \
    when no DDL touched the captured tables since the resume position (see \
    docs/mysql-schema-history.md)";

impl HistoryError {
    /// The documentation page describing the recovery.
    pub fn recovery_doc(&self) -> &'static str {
        RECOVERY_DOC
    }
}

/// A record read from the topic, or why it could not be read.
#[derive(Debug, Clone)]
enum Loaded {
    Record(Box<HistoryRecord>),
    Damaged(String),
    Foreign { what: &'static str, detail: String },
}

/// The schema history of one source: every record, in sequence order.
#[derive(Debug, Clone)]
pub struct SchemaHistory {
    source: String,
    server: Option<String>,
    topic_existed: bool,
    records: Vec<HistoryRecord>,
    /// Unreadable or foreign values, each with the sequence number of the last good record
    /// read before it (0 = none): damage before the epoch in use does not matter.
    problems: Vec<(u64, Loaded)>,
    next_seq: u64,
}

impl SchemaHistory {
    /// Reads every committed record of `source` from `topic` (read_committed). Blocking.
    ///
    /// Unreadable or foreign records do not fail the load: they are kept as problems that
    /// [`SchemaHistory::verify`] reports with the recovery advice. Only Kafka failures are
    /// errors here.
    pub fn load(
        kafka: &KafkaConfig,
        topic: &str,
        source: &str,
    ) -> Result<SchemaHistory, SinkError> {
        let mut loaded = Vec::new();
        let read = read_to_end(
            kafka,
            topic,
            &format!("cdc-agent-schema-history-{source}"),
            "schema history",
            LOAD_TIMEOUT,
            |msg| {
                if msg.key() != Some(source.as_bytes()) {
                    return Ok(());
                }
                let at = format!("partition {} offset {}", msg.partition(), msg.offset());
                loaded.push(decode_value(source, msg.payload(), &at));
                Ok(())
            },
        )?;
        let mut h = SchemaHistory::from_loaded(source, loaded);
        h.topic_existed = read == TopicRead::Read;
        Ok(h)
    }

    /// A history with no record (a source that has not taken its snapshot yet, or a rebuild).
    pub fn empty(source: &str) -> SchemaHistory {
        SchemaHistory {
            source: source.to_owned(),
            server: None,
            topic_existed: false,
            records: Vec::new(),
            problems: Vec::new(),
            next_seq: 1,
        }
    }

    /// Decodes the values of this source's records, in topic order (pure: the loading half
    /// of [`SchemaHistory::load`] without Kafka; `at` names each value's place for errors).
    pub fn from_values<'a>(
        source: &str,
        values: impl IntoIterator<Item = (String, Option<&'a [u8]>)>,
    ) -> SchemaHistory {
        let loaded = values
            .into_iter()
            .map(|(at, v)| decode_value(source, v, &at))
            .collect();
        let mut h = SchemaHistory::from_loaded(source, loaded);
        h.topic_existed = true;
        h
    }

    fn from_loaded(source: &str, loaded: Vec<Loaded>) -> SchemaHistory {
        let mut h = SchemaHistory::empty(source);
        let mut last_good = 0u64;
        for l in loaded {
            match l {
                Loaded::Record(r) => {
                    // At-least-once delivery may write a record twice: an identical copy is
                    // harmless, a different record under the same number is damage.
                    if let Some(prev) = h.records.iter().find(|p| p.seq == r.seq) {
                        if *prev != *r {
                            h.problems.push((
                                r.seq,
                                Loaded::Damaged(format!(
                                    "two different records with seq {}",
                                    r.seq
                                )),
                            ));
                        }
                        continue;
                    }
                    if h.server.is_none() {
                        h.server = r.server.clone();
                    }
                    h.next_seq = h.next_seq.max(r.seq + 1);
                    last_good = r.seq;
                    h.records.push(*r);
                }
                other => h.problems.push((last_good, other)),
            }
        }
        h.records.sort_by_key(|r| r.seq);
        h
    }

    /// Sets the identity of the server whose positions this history holds. New records carry
    /// it; [`SchemaHistory::verify_server`] compares it with stored records.
    pub fn set_server(&mut self, server: Option<String>) {
        self.server = server;
    }

    /// Makes the next record's sequence number `after + 1` (a history rebuilt after the
    /// topic was lost continues the numbering the checkpoint knows).
    pub fn continue_after(&mut self, after: u64) {
        self.next_seq = self.next_seq.max(after + 1);
    }

    /// Whether the topic existed when loading.
    pub fn topic_existed(&self) -> bool {
        self.topic_existed
    }

    /// Every record, in sequence order.
    pub fn records(&self) -> &[HistoryRecord] {
        &self.records
    }

    /// The catalog as it was at `pos`: the newest snapshot at or before `pos`, plus the DDL
    /// records after it whose position is before `pos`. Empty when no snapshot is that old.
    /// Only records of the server set with [`SchemaHistory::set_server`] count: after a
    /// failover the history holds epochs of several servers, whose positions do not compare.
    pub fn catalog_at(&self, pos: &BinlogPosition) -> Catalog {
        let mut cat = Catalog::default();
        let Some(start) = self.epoch_start(pos) else {
            return cat;
        };
        apply_record(&mut cat, &self.records[start]);
        for r in self.epoch_rest(start) {
            let applies = if r.snapshot {
                r.position <= *pos
            } else {
                r.position < *pos
            };
            if !applies {
                // Positions only grow within an epoch (verify checks it).
                break;
            }
            apply_record(&mut cat, r);
        }
        cat
    }

    /// The records after the epoch's first one, up to the next epoch.
    fn epoch_rest(&self, start: usize) -> impl Iterator<Item = &HistoryRecord> {
        // Records of another server (an epoch a failover wrote, left behind when the source
        // went back to this server) neither belong to this epoch nor end it.
        self.records[start + 1..]
            .iter()
            .filter(|r| self.of_this_server(r))
            .take_while(|r| !r.starts_epoch())
    }

    /// Whether `r`'s positions are positions of the server this history is set to (records
    /// or histories without a server identity match any).
    fn of_this_server(&self, r: &HistoryRecord) -> bool {
        match (&self.server, &r.server) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Index of the first record of the newest epoch whose snapshot is at or before `pos`.
    fn epoch_start(&self, pos: &BinlogPosition) -> Option<usize> {
        self.records
            .iter()
            .enumerate()
            .rev()
            .find(|(_, r)| r.starts_epoch() && self.of_this_server(r) && r.position <= *pos)
            .map(|(i, _)| i)
    }

    /// The newest record's sequence number.
    pub fn last_seq(&self) -> Option<u64> {
        self.records.last().map(|r| r.seq)
    }

    /// Checks the history is whole: it holds every record up to the checkpoint's
    /// `expected_last_seq`, without gaps, readable, of this source, starting with a snapshot.
    ///
    /// Only the epoch the checkpoint is in matters (the newest snapshot numbered at or below
    /// `expected_last_seq`, or the newest one): damage in older epochs, left behind by a
    /// re-snapshot, does not block. More records than expected are fine (at-least-once
    /// writes history before the checkpoint; a replayed DDL is recognised with
    /// [`SchemaHistory::contains`]). A source without a checkpoint takes a snapshot, which
    /// starts a new epoch: it need not verify.
    pub fn verify(&self, expected_last_seq: Option<u64>, topic: &str) -> Result<(), HistoryError> {
        let expected = expected_last_seq.filter(|e| *e > 0);
        let start = self
            .records
            .iter()
            .rposition(|r| r.starts_epoch() && expected.is_none_or(|e| r.seq <= e))
            .or_else(|| {
                // A history rebuilt after the old one was lost starts after the checkpoint's
                // number (at-least-once: its checkpoint may not be written yet). Safe: only the
                // agent writes snapshots, each describing the tables at its position.
                let e = expected?;
                let first = self.records.first()?;
                (first.seq > e && first.starts_epoch()).then_some(0)
            });
        let from_seq = start.map_or(0, |i| self.records[i].seq);
        for (after, p) in &self.problems {
            if *after < from_seq {
                continue;
            }
            match p {
                Loaded::Damaged(detail) => {
                    return Err(HistoryError::Damaged {
                        topic: topic.into(),
                        detail: detail.clone(),
                    })
                }
                Loaded::Foreign { what, detail } => {
                    return Err(HistoryError::Foreign {
                        topic: topic.into(),
                        what,
                        detail: detail.clone(),
                    })
                }
                Loaded::Record(_) => {}
            }
        }
        let Some(start) = start else {
            return match (self.records.first(), expected) {
                (None, None) => Ok(()),
                (None, Some(expected)) => Err(HistoryError::Missing {
                    topic: topic.into(),
                    source_name: self.source.clone(),
                    expected,
                }),
                (Some(first), _) => Err(HistoryError::Gap {
                    topic: topic.into(),
                    after: 0,
                    missing: first.seq.saturating_sub(1).max(1),
                    found: first.seq,
                }),
            };
        };
        let epoch = &self.records[start..];
        for w in epoch.windows(2) {
            let (p, r) = (&w[0], &w[1]);
            if r.seq != p.seq + 1 {
                return Err(HistoryError::Gap {
                    topic: topic.into(),
                    after: p.seq,
                    missing: p.seq + 1,
                    found: r.seq,
                });
            }
            if !r.starts_epoch() && r.server == p.server && r.position < p.position {
                return Err(HistoryError::Damaged {
                    topic: topic.into(),
                    detail: format!(
                        "record {} at {} comes after record {} at {}: positions go back \
                         without a new snapshot",
                        r.seq, r.position, p.seq, p.position
                    ),
                });
            }
        }
        let last = epoch.last().map_or(0, |r| r.seq);
        if let Some(expected) = expected {
            if last < expected {
                return Err(HistoryError::Truncated {
                    topic: topic.into(),
                    have: last,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Checks the epoch a checkpoint is in (the newest snapshot numbered at or below
    /// `expected_last_seq`, or the newest one) was written for `server` (when both are known):
    /// positions of another server (a failover to a replica with other binlog files) would
    /// select wrong definitions. Older epochs of other servers (the source failed over
    /// before) do not matter: [`SchemaHistory::catalog_at`] only looks at this server's.
    pub fn verify_server(
        &self,
        server: &str,
        expected_last_seq: Option<u64>,
        topic: &str,
    ) -> Result<(), HistoryError> {
        let expected = expected_last_seq.filter(|e| *e > 0);
        match self
            .records
            .iter()
            .rev()
            .find(|r| r.starts_epoch() && expected.is_none_or(|e| r.seq <= e))
            .filter(|r| r.server.as_deref().is_some_and(|s| s != server))
        {
            Some(r) => Err(HistoryError::Foreign {
                topic: topic.into(),
                what: "server",
                detail: format!(
                    "record {} was written for server `{}`, this is `{server}`",
                    r.seq,
                    r.server.as_deref().unwrap_or_default()
                ),
            }),
            None => Ok(()),
        }
    }

    /// Whether a DDL record exists at exactly `pos` in the epoch that covers it: a DDL event
    /// the stream replays after a restart is applied to the catalog but not recorded again.
    pub fn contains(&self, pos: &BinlogPosition) -> bool {
        let Some(start) = self.epoch_start(pos) else {
            return false;
        };
        self.epoch_rest(start)
            .any(|r| !r.snapshot && r.position == *pos)
    }

    /// Appends a record describing `catalog` after `outcome` (a DDL record), or the whole
    /// `catalog` (`snapshot = true`), and returns it for [`SchemaHistory::encode`].
    ///
    /// A snapshot of a large catalog can exceed Kafka's record size: use
    /// [`SchemaHistory::record_snapshot`], which splits it.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        position: BinlogPosition,
        gtid: Option<String>,
        ddl: Option<String>,
        database: Option<String>,
        catalog: &Catalog,
        outcome: &DdlOutcome,
        snapshot: bool,
    ) -> HistoryRecord {
        let (tables, dropped) = if snapshot {
            (catalog.tables.values().cloned().collect(), Vec::new())
        } else {
            match outcome {
                DdlOutcome::Changed { tables, dropped } => (
                    tables
                        .iter()
                        .filter_map(|(d, t)| catalog.get(d, t).cloned())
                        .collect(),
                    dropped.clone(),
                ),
                DdlOutcome::NotSchema => (Vec::new(), Vec::new()),
            }
        };
        let table_charsets = charsets_of(catalog, &tables);
        self.push(HistoryRecord {
            source: self.source.clone(),
            server: self.server.clone(),
            seq: 0,
            position,
            gtid,
            ddl,
            database,
            tables,
            dropped,
            databases: catalog.databases.clone(),
            server_charset: catalog.server_charset.clone(),
            table_charsets,
            snapshot,
            continues: false,
        })
    }

    /// Appends the snapshot of `catalog` at `position`, split into records of at most
    /// ~512 KiB of JSON each, and returns them in order (all must be written).
    pub fn record_snapshot(
        &mut self,
        position: BinlogPosition,
        gtid: Option<String>,
        catalog: &Catalog,
    ) -> Vec<HistoryRecord> {
        let mut parts: Vec<Vec<TableDef>> = vec![Vec::new()];
        let mut size = 0usize;
        for t in catalog.tables.values() {
            let n = serde_json::to_vec(t).map(|v| v.len()).unwrap_or(0);
            if size + n > SNAPSHOT_RECORD_MAX_BYTES && !parts.last().is_some_and(Vec::is_empty) {
                parts.push(Vec::new());
                size = 0;
            }
            size += n;
            if let Some(last) = parts.last_mut() {
                last.push(t.clone());
            }
        }
        parts
            .into_iter()
            .enumerate()
            .map(|(i, tables)| {
                let table_charsets = charsets_of(catalog, &tables);
                self.push(HistoryRecord {
                    source: self.source.clone(),
                    server: self.server.clone(),
                    seq: 0,
                    position: position.clone(),
                    gtid: gtid.clone(),
                    ddl: None,
                    database: None,
                    tables,
                    dropped: Vec::new(),
                    databases: catalog.databases.clone(),
                    server_charset: catalog.server_charset.clone(),
                    table_charsets,
                    snapshot: true,
                    continues: i > 0,
                })
            })
            .collect()
    }

    fn push(&mut self, mut rec: HistoryRecord) -> HistoryRecord {
        rec.seq = self.next_seq;
        self.next_seq += 1;
        self.records.push(rec.clone());
        rec
    }

    /// The record's Kafka key and value.
    pub fn encode(&self, rec: &HistoryRecord) -> (Vec<u8>, Vec<u8>) {
        let value = serde_json::to_vec(rec).expect("history records serialize");
        (self.source.as_bytes().to_vec(), value)
    }
}

/// The default character sets of `tables`, as a record carries them.
fn charsets_of(catalog: &Catalog, tables: &[TableDef]) -> Vec<(String, String, String)> {
    tables
        .iter()
        .filter_map(|t| {
            catalog
                .table_charsets
                .get(&(t.database.clone(), t.name.clone()))
                .map(|cs| (t.database.clone(), t.name.clone(), cs.clone()))
        })
        .collect()
}

/// Applies one record to a catalog.
fn apply_record(cat: &mut Catalog, r: &HistoryRecord) {
    if r.starts_epoch() {
        *cat = Catalog::default();
    }
    for (d, t) in &r.dropped {
        cat.remove(d, t);
        cat.table_charsets.remove(&(d.clone(), t.clone()));
    }
    for t in &r.tables {
        cat.put(t.clone());
    }
    for (d, t, cs) in &r.table_charsets {
        cat.table_charsets
            .insert((d.clone(), t.clone()), cs.clone());
    }
    cat.databases = r.databases.clone();
    if r.server_charset.is_some() {
        cat.server_charset = r.server_charset.clone();
    }
}

fn decode_value(source: &str, payload: Option<&[u8]>, at: &str) -> Loaded {
    let Some(p) = payload else {
        return Loaded::Damaged(format!(
            "{at}: a tombstone (null value) under the source's key"
        ));
    };
    match serde_json::from_slice::<HistoryRecord>(p) {
        Ok(r) if !r.source.is_empty() && r.source != source => Loaded::Foreign {
            what: "source",
            detail: format!("{at}: record {} names source `{}`", r.seq, r.source),
        },
        Ok(r) if r.seq == 0 => Loaded::Damaged(format!("{at}: sequence number 0")),
        Ok(r) => Loaded::Record(Box::new(r)),
        Err(e) => Loaded::Damaged(format!("{at}: unreadable JSON: {e}")),
    }
}

/// A statement in the binlog that changes table definitions of captured databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogDdl {
    /// Where its QUERY event starts.
    pub position: BinlogPosition,
    /// The event's default database.
    pub database: Option<String>,
    /// The statement (shortened to 300 characters).
    pub statement: String,
}

/// Event type of a QUERY event.
const QUERY_EVENT: u8 = 0x02;
/// Event type of a ROTATE event.
const ROTATE_EVENT: u8 = 0x04;
/// Event type of a FORMAT_DESCRIPTION event.
const FORMAT_DESCRIPTION_EVENT: u8 = 0x0f;

/// Reads the binlog from `from` to its current end (a non-blocking dump, as replica
/// `server_id`, which must not be in use by a running stream) and returns every statement
/// that changes table definitions in a database `captures` accepts, or whose databases cannot
/// be told.
///
/// This is what makes `[mysql] schema_history_recovery = "rebuild"` safe: a catalog loaded
/// from information_schema *before* this scan describes the tables at `from` exactly when the
/// scan finds nothing.
pub async fn ddl_since(
    mut conn: mysql_async::Conn,
    server_id: u32,
    from: &BinlogPosition,
    captures: impl Fn(&str) -> bool,
) -> Result<Vec<BinlogDdl>, crate::source::SourceError> {
    use futures_util::StreamExt;
    use mysql_async::binlog::events::EventData;
    use mysql_async::prelude::Queryable;

    use crate::source::SourceError;

    let sql_err = |what: &'static str| {
        move |e: mysql_async::Error| match e {
            mysql_async::Error::Server(s) => {
                let text = format!("{what}: {s}");
                SourceError::definite(text).caused_by(mysql_async::Error::Server(s))
            }
            other => SourceError::transient(format!("{what}: {other}")).caused_by(other),
        }
    };
    conn.query_drop("SET @mariadb_slave_capability = 4")
        .await
        .map_err(sql_err("binlog session settings"))?;
    let request = mysql_async::BinlogStreamRequest::new(server_id)
        .with_filename(from.file.as_bytes())
        .with_pos(from.pos)
        .with_non_blocking();
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(sql_err("read the binlog for DDL since the resume position"))?;
    let mut file = from.file.clone();
    let mut seen_fde = false;
    let mut found = Vec::new();
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(sql_err("read the binlog for DDL since the resume position"))?;
        let h = ev.header();
        match h.event_type_raw() {
            FORMAT_DESCRIPTION_EVENT => seen_fde = true,
            ROTATE_EVENT if seen_fde => {
                if let Ok(Some(EventData::RotateEvent(r))) = ev.read_data() {
                    file = r.name().into_owned();
                }
            }
            // The server's first (fake) ROTATE comes before any FORMAT_DESCRIPTION, so the
            // parser does not know yet that events end in a CRC32 and reads those 4 bytes as
            // part of the file name. It names the file we asked for anyway.
            ROTATE_EVENT => {}
            QUERY_EVENT => {
                let Ok(Some(EventData::QueryEvent(q))) = ev.read_data() else {
                    continue;
                };
                let db = q.schema();
                let db = (!db.is_empty()).then(|| db.into_owned());
                let text = q.query();
                let Some(dbs) = super::ddl::schema_targets(db.as_deref(), &text) else {
                    continue;
                };
                if dbs.is_empty() || dbs.iter().any(|d| captures(d)) {
                    let end = u64::from(h.log_pos());
                    found.push(BinlogDdl {
                        position: BinlogPosition {
                            file: file.clone(),
                            pos: end.saturating_sub(u64::from(h.event_size())),
                        },
                        database: db,
                        statement: text.chars().take(300).collect(),
                    });
                }
            }
            _ => {}
        }
    }
    let _ = stream.close().await;
    Ok(found)
}

/// `[mysql] schema_history_recovery = "rebuild"`: a new history for a source whose history
/// is missing or damaged, when that is safe.
///
/// `catalog_now` must have been loaded from information_schema *before* this call: the scan
/// then covers every DDL that could make it differ from the tables at `resume`. When the scan
/// finds none, the returned history holds one new epoch — a snapshot of `catalog_now` at
/// `resume`, numbered after `after_seq` (the checkpoint's) — and the records to write in the
/// source's next Kafka transaction. Otherwise the error names the first such statement and the
/// way out (a new snapshot).
#[allow(clippy::too_many_arguments)]
pub async fn rebuild_if_safe(
    conn: mysql_async::Conn,
    server_id: u32,
    source: &str,
    topic: &str,
    resume: &BinlogPosition,
    gtid: Option<String>,
    catalog_now: &Catalog,
    after_seq: Option<u64>,
    captures: impl Fn(&str) -> bool,
) -> Result<(SchemaHistory, Vec<HistoryRecord>), crate::source::SourceError> {
    let ddl = ddl_since(conn, server_id, resume, captures).await?;
    if let Some(first) = ddl.first() {
        return Err(crate::source::SourceError::definite(format!(
            "schema history topic `{topic}` cannot be rebuilt from information_schema: {} \
             statement(s) changed captured tables since the resume position {resume}, the \
             first at {}: `{}`. Fix: take a new snapshot (delete source `{source}`'s key from \
             the offsets topic, or use a new topic_prefix); see {RECOVERY_DOC}",
            ddl.len(),
            first.position,
            first.statement
        )));
    }
    let mut h = SchemaHistory::empty(source);
    if let Some(seq) = after_seq {
        h.continue_after(seq);
    }
    let records = h.record_snapshot(resume.clone(), gtid, catalog_now);
    tracing::warn!(
        source,
        topic,
        position = %resume,
        tables = catalog_now.tables.len(),
        "schema history rebuilt from information_schema: no DDL on captured tables since the resume position"
    );
    Ok((h, records))
}

#[cfg(test)]
mod tests;
