//! The streaming phase: pgoutput messages from the slot → change events → Kafka, and the
//! slot's flush position fed back only as far as Kafka has acknowledged.
//!
//! One task does decode, encode and send. Backpressure is end to end without queues of our
//! own: when the sink has its maximum of unacknowledged records, `send` waits, we stop reading
//! the socket, and the server stops sending (TCP). Large transactions are never buffered: the
//! server spills them to disk until commit (streaming of in-progress transactions is not
//! requested), and we forward their rows as they arrive.

use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use bytes::Bytes;

use super::chunk;
use super::pgoutput::{self, LogicalMessage, OldTuple};
use super::position::{PartialTx, PgCheckpoint, PgPosition};
use super::replication::ReplicationStream;
use super::schema::{RelationState, SchemaLoader};
use super::wire::{self, Lsn, ReplicationFrame};
use super::SourceError;
use crate::event::{
    ChangeEvent, Datum, Op, PostgresSource, SourceBlock, TableSchema, TransactionInfo,
};
use crate::ops::status::SourceStatus;
use crate::pipeline::snapshot::{Mark, SIGNAL_PREFIX, WATERMARK_PREFIX};
use crate::pipeline::{ChangeStream, Chunk, ChunkRequest, Pipeline, TxOrder, Watermark};
use crate::publish::EventMeta;
use crate::shutdown::Shutdown;
use crate::sink::{OutRecord, Sink};
use crate::source::silence::{Silence, Verdict};

/// Where a restarted stream picks up in exactly-once mode: what the last committed Kafka
/// transaction already holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resume {
    /// Source transactions with a commit LSN at or below this are already in Kafka.
    pub last_tx_lsn: Option<Lsn>,
    /// The first `messages` row messages of the source transaction committing at `tx_lsn`
    /// are already in Kafka.
    pub partial: Option<(Lsn, u64)>,
}

/// What the loop needs besides the stream.
pub struct StreamContext<'a> {
    /// Logical source name (`source.name`), i.e. the topic prefix.
    pub server_name: &'a str,
    /// Database name (`source.db`).
    pub database: &'a str,
    /// SQL connection for catalog look-ups.
    pub sql: &'a Client,
    /// Source name: key of the offsets record.
    pub source_name: &'a str,
    /// Slot name, recorded in checkpoints.
    pub slot: &'a str,
    /// The server's system identifier and timeline, recorded in checkpoints.
    pub server: &'a super::replication::SystemIdentity,
    /// What is already committed (exactly-once).
    pub resume: Resume,
    /// Where logical decoding messages (`pg_logical_emit_message`) go; `None` drops them.
    pub messages_topic: Option<&'a str>,
    /// The agent's database role (named in privilege fixes).
    pub role: &'a str,
    /// `[snapshot] signal_table` as (schema, table): its inserts are signals, not events.
    pub signal_table: Option<(&'a str, &'a str)>,
    /// `[heartbeat] action_query`: run at every heartbeat.
    pub heartbeat_action: Option<&'a str>,
}

struct Tx {
    /// Row messages of this transaction seen so far (its position for partial resumes).
    messages: u64,
    /// Row messages up to this index are already in Kafka (replayed after a crash).
    skip_until: u64,
    xid: u32,
    final_lsn: Lsn,
    commit_us: i64,
    id: String,
    order: TxOrder,
    /// `source.sequence` of the current event, rebuilt in place for every row.
    sequence: String,
}

/// Committed source transactions whose end Kafka has not acknowledged yet, tracked for the
/// lag in seconds. Bounded: past this many the newest are not recorded, which only makes the
/// lag read low until the backlog clears (the oldest, which defines it, stay).
const LAG_TRACKED_TXS: usize = 4096;

/// What the lag is measured from: the commit times of transactions received but not yet
/// acknowledged by Kafka.
#[derive(Default)]
struct LagTracker {
    unacked: VecDeque<(Lsn, i64)>,
}

impl LagTracker {
    fn committed(&mut self, end_lsn: Lsn, commit_us: i64) {
        if self.unacked.len() < LAG_TRACKED_TXS {
            self.unacked.push_back((end_lsn, commit_us));
        }
    }

    /// Reports the lag: WAL bytes between the server's end and the acknowledged position, and
    /// the commit time of the oldest unacknowledged change (the open transaction's when
    /// every committed one is acknowledged).
    fn report(&mut self, status: &SourceStatus, received: Lsn, acked: Lsn, open: &Option<Tx>) {
        while self.unacked.front().is_some_and(|(lsn, _)| *lsn <= acked) {
            self.unacked.pop_front();
        }
        let oldest = self.unacked.front().map(|(_, us)| *us).or_else(|| {
            open.as_ref()
                .filter(|t| t.messages > 0)
                .map(|t| t.commit_us)
        });
        // Until the first acknowledgement the slot's position is not known here.
        let bytes = (acked.0 > 0).then(|| received.0.saturating_sub(acked.0));
        status.set_lag(bytes, oldest);
    }
}

/// The PostgreSQL change stream: replication frames from the slot, decoded and published;
/// the slot's flush position fed back only as far as Kafka holds the events.
pub struct PgStream<'a> {
    ctx: StreamContext<'a>,
    stream: &'a mut ReplicationStream,
    status: SourceStatus,
    lag: LagTracker,
    loader: SchemaLoader<'a>,
    relations: HashMap<u32, RelationState>,
    /// Relations described but with no row seen yet since: not yet known to be captured.
    uncaptured: std::collections::HashSet<u32>,
    /// The signal table's relation oid and decoder, once its Relation message came.
    signal: Option<(u32, RelationState)>,
    tx: Option<Tx>,
    /// The server's WAL end as last seen.
    received: Lsn,
    /// Everything up to here is durable in Kafka: the slot may advance to it.
    acked: Lsn,
    last_commit_lsn: Lsn,
    /// Commit LSN of the newest source transaction fully published.
    committed_tx_lsn: Option<Lsn>,
    before_buf: Vec<Datum<'static>>,
    after_buf: Vec<Datum<'static>>,
    position: String,
    /// Xids of the newest transactions delivered, to check a chunk's read against
    /// ([`chunk::XidSnapshot`]).
    recent_xids: VecDeque<u32>,
    /// Snapshot of the held chunk's read, until its low watermark comes back.
    chunk_snapshot: Option<chunk::XidSnapshot>,
    /// Ticks without a frame from the server: a half-open connection is noticed here.
    silence: Silence,
}

/// How many delivered transactions [`PgStream`] remembers for the chunk check. A transaction
/// that can be invisible to a chunk's read committed at most moments before its low
/// watermark, so it is among the newest few delivered, even under thousands of commits a
/// second.
const RECENT_XIDS: usize = 8192;

/// Silent ticks after which a status update asks the server for an immediate keepalive.
const PROBE_AFTER_TICKS: u32 = 5;
/// Silent ticks (the probe unanswered) after which the replication connection is taken as
/// dead and the stream reconnects: 15 s at the pipeline's 1 s tick.
const DEAD_AFTER_TICKS: u32 = 15;

impl<'a> PgStream<'a> {
    /// A stream over `stream`, started from the slot's confirmed position.
    pub fn new(
        ctx: StreamContext<'a>,
        stream: &'a mut ReplicationStream,
        status: &SourceStatus,
    ) -> Self {
        Self {
            loader: SchemaLoader::new(ctx.sql),
            committed_tx_lsn: ctx.resume.last_tx_lsn,
            ctx,
            stream,
            status: status.clone(),
            lag: LagTracker::default(),
            relations: HashMap::new(),
            uncaptured: std::collections::HashSet::new(),
            signal: None,
            tx: None,
            received: Lsn(0),
            acked: Lsn(0),
            last_commit_lsn: Lsn(0),
            before_buf: Vec::new(),
            after_buf: Vec::new(),
            position: String::with_capacity(24),
            recent_xids: VecDeque::with_capacity(RECENT_XIDS),
            chunk_snapshot: None,
            silence: Silence::new(PROBE_AFTER_TICKS, DEAD_AFTER_TICKS),
        }
    }

    async fn send_status(&mut self) -> Result<(), SourceError> {
        send_status(self.stream, self.received, self.acked, false).await
    }

    async fn handle_message<S: Sink<Position = Lsn>>(
        &mut self,
        wal_start: Lsn,
        msg: LogicalMessage<'_>,
        out: &mut Pipeline<S>,
        stop: &mut Shutdown,
    ) -> Result<(), SourceError> {
        let ctx = &self.ctx;
        if let LogicalMessage::Message(m) = &msg {
            if m.prefix == WATERMARK_PREFIX {
                return self.watermark(m.lsn, m.content, out).await;
            }
            if m.prefix == SIGNAL_PREFIX {
                // A signal in a source transaction a committed Kafka transaction already
                // holds was acted on before the restart.
                if self.tx.as_ref().is_none_or(|t| t.skip_until != u64::MAX) {
                    tracing::info!(lsn = %m.lsn, "snapshot signal received");
                    out.snapshot_signal_message(m.content);
                }
                return Ok(());
            }
        }
        if !self.uncaptured.is_empty() {
            let oids: &[u32] = match &msg {
                LogicalMessage::Insert(m) => std::slice::from_ref(&m.relation_oid),
                LogicalMessage::Update(m) => std::slice::from_ref(&m.relation_oid),
                LogicalMessage::Delete(m) => std::slice::from_ref(&m.relation_oid),
                LogicalMessage::Truncate(m) => &m.relation_oids,
                _ => &[],
            };
            for oid in oids {
                // A table published while the agent runs: its existing rows are snapshotted
                // alone, as when it is added between two runs.
                if self.uncaptured.remove(oid) {
                    if let (Some(rel), Some(snapshots)) = (self.relations.get(oid), out.snapshots())
                    {
                        snapshots.newly_captured(&rel.schema().id.to_string());
                    }
                }
            }
        }
        let routed_message = ctx.messages_topic.is_some()
            && matches!(&msg, LogicalMessage::Message(m) if m.transactional());
        if routed_message
            || matches!(
                msg,
                LogicalMessage::Insert(_)
                    | LogicalMessage::Update(_)
                    | LogicalMessage::Delete(_)
                    | LogicalMessage::Truncate(_)
            )
        {
            let t = tx_mut(&mut self.tx)?;
            t.messages += 1;
            if t.messages <= t.skip_until {
                return Ok(());
            }
        }
        let last_commit_lsn = self.last_commit_lsn;
        let position = &mut self.position;
        match msg {
            LogicalMessage::Begin(b) => {
                let commit_us = wire::pg_us_to_unix_us(b.commit_time).unwrap_or(0);
                let skip_until = if ctx.resume.last_tx_lsn.is_some_and(|l| b.final_lsn <= l) {
                    u64::MAX
                } else {
                    match ctx.resume.partial {
                        Some((lsn, n)) if lsn == b.final_lsn => n,
                        _ => 0,
                    }
                };
                if skip_until == u64::MAX {
                    tracing::debug!(tx_lsn = %b.final_lsn, "skipping what a committed Kafka transaction already holds");
                } else if skip_until > 0 {
                    tracing::info!(tx_lsn = %b.final_lsn, committed_messages = skip_until, "resuming inside a partly committed source transaction; skipping what a committed Kafka transaction already holds");
                }
                if self.recent_xids.len() == RECENT_XIDS {
                    self.recent_xids.pop_front();
                }
                self.recent_xids.push_back(b.xid);
                self.tx = Some(Tx {
                    messages: 0,
                    skip_until,
                    xid: b.xid,
                    final_lsn: b.final_lsn,
                    commit_us,
                    id: format!("{}:{}", b.xid, b.final_lsn.0),
                    order: TxOrder::default(),
                    sequence: String::with_capacity(48),
                });
            }
            LogicalMessage::Commit(c) => {
                if let Some(t) = &self.tx {
                    self.lag.committed(c.end_lsn, t.commit_us);
                }
                self.last_commit_lsn = c.commit_lsn;
                let tx = self.tx.take();
                self.committed_tx_lsn = Some(c.commit_lsn);
                out.mark(c.end_lsn, tx.as_ref().map(|t| t.id.as_str()))
                    .await?;
            }
            LogicalMessage::Relation(rel) => {
                let state = self
                    .loader
                    .load(&rel, self.tx.as_ref().map(|t| t.xid))
                    .await?;
                if ctx
                    .signal_table
                    .is_some_and(|(s, t)| s == rel.schema() && t == rel.name)
                {
                    // Decoded for its signals only: no topic, no subject, no snapshot.
                    self.relations.remove(&rel.oid);
                    self.signal = Some((rel.oid, state));
                    return Ok(());
                }
                let schema = out.set_table(state.schema_owned(), stop).await?;
                // Whether the table is newly captured is decided by its first row (below), not
                // here: publishing via the partition root, the server describes the partition
                // too, while the partition's rows come as the root's. A table `[tables]` leaves
                // out is in the publication but never captured.
                if out.captures(&schema.id) {
                    self.uncaptured.insert(rel.oid);
                }
                self.relations.insert(rel.oid, state.with_schema(schema));
            }
            LogicalMessage::Insert(ins) => {
                if let Some((_, sig)) = self.signal.as_ref().filter(|(o, _)| *o == ins.relation_oid)
                {
                    let mut row = Vec::with_capacity(sig.width());
                    sig.decode(ins.new, &mut row)?;
                    signal_row(sig.schema(), &row, wal_start, out);
                    return Ok(());
                }
                let rel = relation(&self.relations, ins.relation_oid)?;
                let mut after = recycle(std::mem::take(&mut self.after_buf));
                rel.decode(ins.new, &mut after)?;
                let t = tx_mut(&mut self.tx)?;
                emit(
                    ctx,
                    out,
                    rel,
                    t,
                    Op::Create,
                    None,
                    Some(&after),
                    wal_start,
                    last_commit_lsn,
                    position,
                )
                .await?;
                self.after_buf = recycle(after);
            }
            LogicalMessage::Update(up) if is_signal(&self.signal, up.relation_oid) => {}
            LogicalMessage::Delete(del) if is_signal(&self.signal, del.relation_oid) => {}
            LogicalMessage::Update(up) => {
                let rel = relation(&self.relations, up.relation_oid)?;
                let mut after = recycle(std::mem::take(&mut self.after_buf));
                let mut before = recycle(std::mem::take(&mut self.before_buf));
                rel.decode(up.new, &mut after)?;
                let old = match &up.old {
                    Some(o) => {
                        rel.decode(o.tuple(), &mut before)?;
                        Some(o)
                    }
                    None => None,
                };
                let t = tx_mut(&mut self.tx)?;
                let key_changed = match old {
                    Some(OldTuple::Key(_)) => true,
                    Some(OldTuple::Full(_)) => rel.key_differs(&before, &after),
                    None => false,
                };
                if key_changed {
                    // Debezium's contract for a primary-key change: delete (and tombstone) on
                    // the old key, create on the new one.
                    emit(
                        ctx,
                        out,
                        rel,
                        t,
                        Op::Delete,
                        Some(&before),
                        None,
                        wal_start,
                        last_commit_lsn,
                        position,
                    )
                    .await?;
                    emit(
                        ctx,
                        out,
                        rel,
                        t,
                        Op::Create,
                        None,
                        Some(&after),
                        wal_start,
                        last_commit_lsn,
                        position,
                    )
                    .await?;
                } else {
                    let b = matches!(old, Some(OldTuple::Full(_))).then_some(&before[..]);
                    emit(
                        ctx,
                        out,
                        rel,
                        t,
                        Op::Update,
                        b,
                        Some(&after),
                        wal_start,
                        last_commit_lsn,
                        position,
                    )
                    .await?;
                }
                self.after_buf = recycle(after);
                self.before_buf = recycle(before);
            }
            LogicalMessage::Delete(del) => {
                let rel = relation(&self.relations, del.relation_oid)?;
                let mut before = recycle(std::mem::take(&mut self.before_buf));
                rel.decode(del.old.tuple(), &mut before)?;
                let t = tx_mut(&mut self.tx)?;
                emit(
                    ctx,
                    out,
                    rel,
                    t,
                    Op::Delete,
                    Some(&before),
                    None,
                    wal_start,
                    last_commit_lsn,
                    position,
                )
                .await?;
                self.before_buf = recycle(before);
            }
            LogicalMessage::Truncate(tr) => {
                for oid in &tr.relation_oids {
                    if is_signal(&self.signal, *oid) {
                        continue;
                    }
                    let rel = relation(&self.relations, *oid)?;
                    let t = tx_mut(&mut self.tx)?;
                    emit(
                        ctx,
                        out,
                        rel,
                        t,
                        Op::Truncate,
                        None,
                        None,
                        wal_start,
                        last_commit_lsn,
                        position,
                    )
                    .await?;
                }
            }
            LogicalMessage::Message(m) => {
                if let Some(topic) = ctx.messages_topic {
                    // Routed as is: key = prefix, value = content, position in headers.
                    let lsn = m.lsn.to_string();
                    let flag: &[u8] = if m.transactional() { b"true" } else { b"false" };
                    let txid = self.tx.as_ref().map(|t| t.id.clone()).unwrap_or_default();
                    out.send(OutRecord {
                        topic,
                        key: Some(m.prefix.as_bytes()),
                        value: Some(m.content),
                        headers: &[
                            ("cdc.source", ctx.source_name.as_bytes()),
                            ("cdc.position", lsn.as_bytes()),
                            ("cdc.txid", txid.as_bytes()),
                            ("cdc.transactional", flag),
                        ],
                    })
                    .await?;
                }
            }
            LogicalMessage::Origin(_) | LogicalMessage::Type(_) => {}
            other => {
                return Err(SourceError::definite(format!(
                    "unexpected pgoutput message `{}` (streaming and two-phase are not requested)",
                    other.kind()
                )))
            }
        }
        Ok(())
    }
}

impl PgStream<'_> {
    /// A snapshot watermark came back: the high one of the open window emits the chunk's
    /// remaining rows here, consistent with the stream at this LSN.
    async fn watermark<S: Sink<Position = Lsn>>(
        &mut self,
        lsn: Lsn,
        content: &[u8],
        out: &mut Pipeline<S>,
    ) -> Result<(), SourceError> {
        if let Some(wm) = Watermark::parse(content) {
            let held = out
                .snapshots()
                .and_then(|s| s.window_id().map(|id| id == wm.id))
                .unwrap_or(false);
            if held && wm.mark == Mark::Low {
                if let Some(snap) = self.chunk_snapshot.take() {
                    // Every transaction that committed before the low watermark was delivered
                    // by now; the chunk is good only if its read saw all of them.
                    if let Some(xid) = self.recent_xids.iter().find(|x| !snap.sees(**x)) {
                        tracing::debug!(
                            xid,
                            "transaction before the low watermark not visible to the chunk's read"
                        );
                        if let Some(s) = out.snapshots() {
                            s.discard_window("a transaction committed just before the chunk's read was not yet visible to it");
                        }
                        return Ok(());
                    }
                }
            }
        }
        let Some(table) = out.snapshot_watermark(content) else {
            return Ok(());
        };
        let ctx = &self.ctx;
        let (ts_us, txid, final_lsn) = match &self.tx {
            Some(t) => (t.commit_us, Some(t.id.as_str()), t.final_lsn),
            None => (now_us(), None, lsn),
        };
        let position = final_lsn.to_string();
        let block = SourceBlock::Postgres(PostgresSource {
            name: ctx.server_name,
            ts_us,
            snapshot: "true",
            db: ctx.database,
            sequence: None,
            schema: &table.id.schema,
            table: &table.id.table,
            tx_id: None,
            lsn: Some(lsn.0 as i64),
            xmin: None,
        });
        out.emit_window(
            block,
            EventMeta {
                position: &position,
                txid,
                commit_ms: ts_us.div_euclid(1000),
            },
        )
        .await
    }
}

impl ChangeStream for PgStream<'_> {
    type Position = Lsn;
    type Checkpoint = PgPosition;
    type Item = Bytes;

    async fn recv(&mut self) -> Result<Bytes, SourceError> {
        let frame = self
            .stream
            .recv()
            .await
            .map_err(repl_error)?
            .ok_or_else(|| SourceError::transient("server ended the replication stream".into()))?;
        self.silence.heard();
        Ok(frame)
    }

    async fn handle<S: Sink<Position = Lsn>>(
        &mut self,
        frame: Bytes,
        out: &mut Pipeline<S>,
        stop: &mut Shutdown,
    ) -> Result<(), SourceError> {
        let (wal_start, data) = match wire::decode_frame(&frame)
            .map_err(|e| protocol_error(e, self.received, "replication frame"))?
        {
            ReplicationFrame::XLogData(x) => {
                self.received = self.received.max(Lsn(x.wal_end.0));
                (x.wal_start, x.data)
            }
            ReplicationFrame::PrimaryKeepalive(k) => {
                self.received = self.received.max(k.wal_end);
                if let Some(p) = out.acked()? {
                    self.durable(p);
                }
                // Idle between transactions with everything acknowledged: the server's
                // position holds nothing for us, so the slot may advance to it. This is what
                // keeps the slot moving when only unpublished tables are written.
                if self.tx.is_none() && out.settled() {
                    self.acked = self.acked.max(k.wal_end);
                    self.lag
                        .report(&self.status, self.received, self.acked, &self.tx);
                }
                if k.reply_requested {
                    self.send_status().await?;
                }
                return Ok(());
            }
        };
        let msg = pgoutput::decode(data, false)
            .map_err(|e| protocol_error(e, wal_start, "pgoutput message"))?;
        self.handle_message(wal_start, msg, out, stop).await
    }

    /// What the open Kafka transaction holds: every source transaction up to the newest
    /// commit, plus the messages of the open one.
    fn checkpoint(&self) -> PgCheckpoint {
        let partial = self.tx.as_ref().and_then(|t| {
            (t.messages > 0).then_some(PartialTx {
                tx_lsn: t.final_lsn.0,
                messages: t.messages,
            })
        });
        PgCheckpoint {
            snapshot_done: true,
            position: self.committed_tx_lsn.map(|l| l.to_string()),
            source: PgPosition {
                slot: Some(self.ctx.slot.to_string()),
                last_tx_lsn: self.committed_tx_lsn.map(|l| l.0),
                partial,
                system_id: Some(self.ctx.server.system_id.clone()),
                timeline: Some(self.ctx.server.timeline),
            },
            snapshot: Default::default(),
            transaction: None,
        }
    }

    /// The slot is the position: nothing to write at least once.
    fn checkpoint_at(&self, _acked: &Lsn) -> Option<PgCheckpoint> {
        None
    }

    fn durable(&mut self, position: Lsn) {
        self.acked = self.acked.max(position);
    }

    async fn report(&mut self) -> Result<(), SourceError> {
        self.send_status().await?;
        self.lag
            .report(&self.status, self.received, self.acked, &self.tx);
        Ok(())
    }

    /// A server that streams nothing and leaves a keepalive request unanswered is gone: the
    /// connection is half-open (see [`crate::source::silence`]).
    async fn tick(&mut self) -> Result<(), SourceError> {
        match self.silence.tick() {
            Verdict::Alive => Ok(()),
            Verdict::Probe => send_status(self.stream, self.received, self.acked, true).await,
            Verdict::Dead => Err(self.silence.dead_error("PostgreSQL")),
        }
    }

    fn between_transactions(&self) -> bool {
        self.tx.is_none()
    }

    fn stopped(&self) {
        tracing::info!(flush_lsn = %self.acked, "stream stopped, position acknowledged");
    }

    async fn heartbeat(&mut self) -> Result<(), SourceError> {
        let Some(query) = self.ctx.heartbeat_action else {
            return Ok(());
        };
        // A failing action query leaves the slot's WAL held while the captured tables are
        // idle: said at every heartbeat, not fatal (the database may be read-only for a
        // moment, e.g. during a failover).
        if let Err(e) = self.ctx.sql.batch_execute(query).await {
            tracing::warn!(error = %e, "heartbeat.action_query failed; an idle database keeps WAL in the slot until it runs");
        }
        Ok(())
    }

    async fn delete_outbox(&mut self, d: &crate::outbox::OutboxDeletes) -> Result<(), SourceError> {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        // Compared as text: the id column's type does not matter (a small table, as the
        // deletes keep it).
        let sql = format!(
            "DELETE FROM {}.{} WHERE {}::text = ANY($1)",
            quote(&d.schema),
            quote(&d.table),
            quote(&d.id_column)
        );
        self.ctx
            .sql
            .execute(&sql, &[&d.ids])
            .await
            .map_err(|e| SourceError::transient(format!("delete captured outbox rows: {e}")))?;
        Ok(())
    }

    async fn write_watermark(&mut self, watermark: &Watermark) -> Result<(), SourceError> {
        chunk::write_watermark(self.ctx.sql, watermark).await
    }

    async fn table_exists(&mut self, table: &str) -> Result<bool, SourceError> {
        chunk::table_exists(self.ctx.sql, table).await
    }

    async fn read_chunk<S: Sink<Position = Lsn>>(
        &mut self,
        req: &ChunkRequest,
        out: &mut Pipeline<S>,
        stop: &mut Shutdown,
    ) -> Result<Chunk, SourceError> {
        let (chunk, snapshot) = chunk::read_chunk(
            self.ctx.sql,
            &mut self.loader,
            self.ctx.role,
            req,
            out,
            stop,
        )
        .await?;
        self.chunk_snapshot = Some(snapshot);
        Ok(chunk)
    }
}

#[allow(clippy::too_many_arguments)]
async fn emit<S: Sink>(
    ctx: &StreamContext<'_>,
    out: &mut Pipeline<S>,
    rel: &RelationState,
    tx: &mut Tx,
    op: Op,
    before: Option<&[Datum<'_>]>,
    after: Option<&[Datum<'_>]>,
    lsn: Lsn,
    last_commit_lsn: Lsn,
    position: &mut String,
) -> Result<(), SourceError> {
    use std::fmt::Write;
    let table = rel.schema();
    let (total_order, per) = tx.order.next(&table.id);
    tx.sequence.clear();
    let _ = write!(tx.sequence, "[\"{}\",\"{}\"]", last_commit_lsn.0, lsn.0);
    let ev = ChangeEvent {
        table,
        op,
        before,
        after,
        source: SourceBlock::Postgres(PostgresSource {
            name: ctx.server_name,
            ts_us: tx.commit_us,
            snapshot: "false",
            db: ctx.database,
            sequence: Some(tx.sequence.as_str().into()),
            schema: &table.id.schema,
            table: &table.id.table,
            tx_id: Some(i64::from(tx.xid)),
            lsn: Some(lsn.0 as i64),
            xmin: None,
        }),
        processed_us: now_us(),
        transaction: Some(TransactionInfo {
            id: tx.id.as_str().into(),
            total_order,
            data_collection_order: per,
        }),
    };
    position.clear();
    let _ = write!(position, "{}", tx.final_lsn);
    out.publish(
        &ev,
        EventMeta {
            position,
            txid: Some(&tx.id),
            commit_ms: tx.commit_us.div_euclid(1000),
        },
    )
    .await
}

/// A row inserted into the signal table: `type` and `data` as Debezium's signal table has
/// them. Rows a committed Kafka transaction already holds never get here (the caller skips
/// them like any row), so a signal is not acted on twice after a restart.
fn signal_row<S: Sink<Position = Lsn>>(
    schema: &TableSchema,
    row: &[Datum<'_>],
    lsn: Lsn,
    out: &mut Pipeline<S>,
) {
    fn column<'r>(schema: &TableSchema, row: &'r [Datum<'_>], name: &str) -> &'r str {
        let value = schema
            .columns
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| row.get(i));
        match value {
            Some(Datum::Str(s)) => s.as_ref(),
            _ => "",
        }
    }
    let kind = column(schema, row, "type");
    tracing::info!(kind, lsn = %lsn, "snapshot signal received");
    out.snapshot_signal(kind, column(schema, row, "data").as_bytes());
}

/// Whether `oid` is the signal table's relation.
fn is_signal(signal: &Option<(u32, RelationState)>, oid: u32) -> bool {
    signal.as_ref().is_some_and(|(o, _)| *o == oid)
}

fn relation(map: &HashMap<u32, RelationState>, oid: u32) -> Result<&RelationState, SourceError> {
    map.get(&oid).ok_or_else(|| {
        SourceError::transient(format!(
            "row for relation {oid} arrived before its Relation message; restarting the stream"
        ))
    })
}

fn tx_mut(tx: &mut Option<Tx>) -> Result<&mut Tx, SourceError> {
    tx.as_mut().ok_or_else(|| {
        SourceError::transient("row change outside a transaction; restarting the stream".into())
    })
}

/// Reuses a row buffer's allocation for datums of another lifetime: the buffer is emptied
/// first, so no datum outlives the frame it borrowed from, and the in-place `collect` keeps
/// the capacity (same layout), so rows cost no allocation once the buffer has grown.
fn recycle<'a, 'b>(mut v: Vec<Datum<'a>>) -> Vec<Datum<'b>> {
    v.clear();
    v.into_iter().map(|_| Datum::Null).collect()
}

async fn send_status(
    stream: &mut ReplicationStream,
    received: Lsn,
    flush: Lsn,
    reply: bool,
) -> Result<(), SourceError> {
    stream
        .send_status(received.max(flush), flush, flush, reply)
        .await
        .map_err(repl_error)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub(super) fn repl_error(e: super::replication::ReplError) -> SourceError {
    if e.is_transient() {
        SourceError::transient(format!("replication: {e}"))
    } else {
        SourceError::definite(format!("replication: {e}"))
    }
}

/// Replication data the decoder cannot read. Definite: the server sends the same bytes again
/// after a restart, so retrying would loop forever while WAL piles up behind the slot. `what`
/// names the layer (frame or pgoutput message), `lsn` where it is (for a frame that cannot be
/// read at all, the last WAL position received).
pub(super) fn protocol_error(e: wire::DecodeError, lsn: Lsn, what: &str) -> SourceError {
    SourceError::definite(format!(
        "decode error in the {what} at LSN {lsn}: malformed replication data: {e}; fix: this is \
         a bug of the agent or a damaged WAL: report it with this line; to go on without this \
         change, advance the slot past it (SELECT pg_replication_slot_advance('<slot>', \
         '<next LSN>')), which skips it for good"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_replication_data_is_a_definite_decode_error_naming_its_lsn() {
        // A truncated Begin message: 'B' and too few bytes for its fields.
        let e = pgoutput::decode(b"B\x00\x01", false).unwrap_err();
        let err = protocol_error(e, Lsn(0x1_6B37_4D48), "pgoutput message");
        assert!(!err.is_transient(), "{err}");
        assert_eq!(err.kind(), crate::error::ErrorKind::Definite);
        let text = err.to_string();
        assert!(text.contains("decode error"), "{text}");
        assert!(text.contains("LSN 1/6B374D48"), "{text}");
        assert!(text.contains("pg_replication_slot_advance"), "{text}");
        // A frame of an unknown kind, before any LSN is known.
        let e = wire::decode_frame(b"?junk").unwrap_err();
        let err = protocol_error(e, Lsn(0), "replication frame");
        assert!(!err.is_transient(), "{err}");
        assert!(err.to_string().contains("LSN 0/0"), "{err}");
    }
}
