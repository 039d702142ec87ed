//! The streaming phase: pgoutput messages from the slot → change events → Kafka, and the
//! slot's flush position fed back only as far as Kafka has acknowledged.
//!
//! One task does decode, encode and send. Backpressure is end to end without queues of our
//! own: when the sink has its maximum of unacknowledged records, `send` waits, we stop reading
//! the socket, and the server stops sending (TCP). Large transactions are never buffered: the
//! server spills them to disk until commit (streaming of in-progress transactions is not
//! requested), and we forward their rows as they arrive.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use super::pgoutput::{self, LogicalMessage, OldTuple};
use super::replication::ReplicationStream;
use super::schema::{RelationState, SchemaLoader};
use super::wire::{self, Lsn, ReplicationFrame};
use super::SourceError;
use crate::checkpoint::{Checkpoint, PartialTx};
use crate::event::{ChangeEvent, Datum, Op, PostgresSource, SourceBlock, TableId, TransactionInfo};
use crate::ops::status::SourceStatus;
use crate::publish::{EventMeta, Publisher};
use crate::shutdown::Shutdown;
use crate::sink::kafka::{OutRecord, TxnBounds};
use futures_util::FutureExt;

/// How often a standby status update is sent without being asked. Short, because the
/// position reported is what a restart replays from: in at-least-once mode every second of
/// delay is a second of duplicates after a crash. (Exactly-once also reports after every
/// Kafka commit.)
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Offsets topic.
    pub offsets_topic: &'a str,
    /// What is already committed (exactly-once).
    pub resume: Resume,
    /// Kafka transaction bounds (exactly-once).
    pub bounds: TxnBounds,
    /// Where logical decoding messages (`pg_logical_emit_message`) go; `None` drops them.
    pub messages_topic: Option<&'a str>,
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
    total_order: i64,
    per_table: HashMap<TableId, i64>,
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

/// Streams until shutdown or error. Returns after the last acknowledged position was reported.
pub async fn run(
    ctx: StreamContext<'_>,
    stream: &mut ReplicationStream,
    publisher: &mut Publisher<Lsn>,
    status: &SourceStatus,
    stop: &mut Shutdown,
) -> Result<(), SourceError> {
    let mut lag = LagTracker::default();
    let mut loader = SchemaLoader::new(ctx.sql);
    let mut relations: HashMap<u32, RelationState> = HashMap::new();
    let mut tx: Option<Tx> = None;
    let mut received = Lsn(0);
    let mut acked = Lsn(0);
    let mut last_commit_lsn = Lsn(0);
    let mut committed_tx_lsn: Option<Lsn> = ctx.resume.last_tx_lsn;
    let mut before_buf: Vec<Datum<'static>> = Vec::new();
    let mut after_buf: Vec<Datum<'static>> = Vec::new();
    let mut timer = tokio::time::interval(STATUS_INTERVAL);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut position = String::with_capacity(24);

    loop {
        status.beat();
        // Exactly-once: close the open Kafka transaction by the group-commit rule.
        // `recv` is cancel-safe, so peeking with `now_or_never` loses nothing.
        let (ready, commit) = publisher
            .sink()
            .group_commit(ctx.bounds, || stream.recv().now_or_never())?;
        if commit {
            if let Some(p) = commit_txn(&ctx, publisher, &tx, committed_tx_lsn).await? {
                acked = acked.max(p);
            }
            send_status(stream, received, acked, false).await?;
            lag.report(status, received, acked, &tx);
        }
        let frame = if let Some(f) = ready {
            f.map_err(repl_error)?
        } else {
            tokio::select! {
            biased;
            _ = stop.wait() => break,
            r = publisher.sink().progress(), if publisher.sink().in_flight() > 0 => {
                if let Some(p) = r? { acked = acked.max(p); }
                // Take every other acknowledgement that is already in, in one go rather
                // than one loop turn each (two per row in at-least-once mode).
                if let Some(p) = publisher.sink().acked()? { acked = acked.max(p); }
                continue;
            }
            _ = timer.tick() => {
                if let Some(p) = publisher.sink().acked()? { acked = acked.max(p); }
                send_status(stream, received, acked, false).await?;
                lag.report(status, received, acked, &tx);
                continue;
            }
            f = stream.recv() => f.map_err(repl_error)?,
            }
        };
        let Some(frame) = frame else {
            return Err(SourceError::transient(
                "server ended the replication stream".into(),
            ));
        };
        let (wal_start, data) = match wire::decode_frame(&frame).map_err(protocol_error)? {
            ReplicationFrame::XLogData(x) => {
                received = received.max(Lsn(x.wal_end.0));
                (x.wal_start, x.data)
            }
            ReplicationFrame::PrimaryKeepalive(k) => {
                received = received.max(k.wal_end);
                if let Some(p) = publisher.sink().acked()? {
                    acked = acked.max(p);
                }
                // Idle between transactions with everything acknowledged: the server's
                // position holds nothing for us, so the slot may advance to it. This is what
                // keeps the slot moving when only unpublished tables are written.
                if tx.is_none() && publisher.sink().in_flight() == 0 && !publisher.sink().txn_open()
                {
                    acked = acked.max(k.wal_end);
                    lag.report(status, received, acked, &tx);
                }
                if k.reply_requested {
                    send_status(stream, received, acked, false).await?;
                }
                continue;
            }
        };
        let msg = pgoutput::decode(data, false).map_err(protocol_error)?;
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
            let t = tx_mut(&mut tx)?;
            t.messages += 1;
            if t.messages <= t.skip_until {
                continue;
            }
        }
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
                tx = Some(Tx {
                    messages: 0,
                    skip_until,
                    xid: b.xid,
                    final_lsn: b.final_lsn,
                    commit_us,
                    id: format!("{}:{}", b.xid, b.final_lsn.0),
                    total_order: 0,
                    per_table: HashMap::new(),
                    sequence: String::with_capacity(48),
                });
            }
            LogicalMessage::Commit(c) => {
                if let Some(t) = &tx {
                    lag.committed(c.end_lsn, t.commit_us);
                }
                last_commit_lsn = c.commit_lsn;
                tx = None;
                committed_tx_lsn = Some(c.commit_lsn);
                publisher.mark(c.end_lsn);
            }
            LogicalMessage::Relation(rel) => {
                let state = loader.load(&rel).await?;
                let schema = publisher.set_table(state.schema_owned(), stop).await?;
                relations.insert(rel.oid, state.with_schema(schema));
            }
            LogicalMessage::Insert(ins) => {
                let rel = relation(&relations, ins.relation_oid)?;
                let mut after = recycle(std::mem::take(&mut after_buf));
                rel.decode(ins.new, &mut after)?;
                let t = tx_mut(&mut tx)?;
                emit(
                    &ctx,
                    publisher,
                    rel,
                    t,
                    Op::Create,
                    None,
                    Some(&after),
                    wal_start,
                    last_commit_lsn,
                    &mut position,
                )
                .await?;
                after_buf = recycle(after);
            }
            LogicalMessage::Update(up) => {
                let rel = relation(&relations, up.relation_oid)?;
                let mut after = recycle(std::mem::take(&mut after_buf));
                let mut before = recycle(std::mem::take(&mut before_buf));
                rel.decode(up.new, &mut after)?;
                let old = match &up.old {
                    Some(o) => {
                        rel.decode(o.tuple(), &mut before)?;
                        Some(o)
                    }
                    None => None,
                };
                let t = tx_mut(&mut tx)?;
                let key_changed = match old {
                    Some(OldTuple::Key(_)) => true,
                    Some(OldTuple::Full(_)) => rel.key_differs(&before, &after),
                    None => false,
                };
                if key_changed {
                    // Debezium's contract for a primary-key change: delete (and tombstone) on
                    // the old key, create on the new one.
                    emit(
                        &ctx,
                        publisher,
                        rel,
                        t,
                        Op::Delete,
                        Some(&before),
                        None,
                        wal_start,
                        last_commit_lsn,
                        &mut position,
                    )
                    .await?;
                    emit(
                        &ctx,
                        publisher,
                        rel,
                        t,
                        Op::Create,
                        None,
                        Some(&after),
                        wal_start,
                        last_commit_lsn,
                        &mut position,
                    )
                    .await?;
                } else {
                    let b = matches!(old, Some(OldTuple::Full(_))).then_some(&before[..]);
                    emit(
                        &ctx,
                        publisher,
                        rel,
                        t,
                        Op::Update,
                        b,
                        Some(&after),
                        wal_start,
                        last_commit_lsn,
                        &mut position,
                    )
                    .await?;
                }
                after_buf = recycle(after);
                before_buf = recycle(before);
            }
            LogicalMessage::Delete(del) => {
                let rel = relation(&relations, del.relation_oid)?;
                let mut before = recycle(std::mem::take(&mut before_buf));
                rel.decode(del.old.tuple(), &mut before)?;
                let t = tx_mut(&mut tx)?;
                emit(
                    &ctx,
                    publisher,
                    rel,
                    t,
                    Op::Delete,
                    Some(&before),
                    None,
                    wal_start,
                    last_commit_lsn,
                    &mut position,
                )
                .await?;
                before_buf = recycle(before);
            }
            LogicalMessage::Truncate(tr) => {
                for oid in &tr.relation_oids {
                    let rel = relation(&relations, *oid)?;
                    let t = tx_mut(&mut tx)?;
                    emit(
                        &ctx,
                        publisher,
                        rel,
                        t,
                        Op::Truncate,
                        None,
                        None,
                        wal_start,
                        last_commit_lsn,
                        &mut position,
                    )
                    .await?;
                }
            }
            LogicalMessage::Message(m) => {
                if let Some(topic) = ctx.messages_topic {
                    // Routed as is: key = prefix, value = content, position in headers.
                    let lsn = m.lsn.to_string();
                    let flag: &[u8] = if m.transactional() { b"true" } else { b"false" };
                    let txid = tx.as_ref().map(|t| t.id.clone()).unwrap_or_default();
                    publisher
                        .sink()
                        .send(OutRecord {
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
    }

    // Shutdown: stop reading, wait for Kafka (commit), report the final position.
    if publisher.sink().txn_open() {
        if let Some(p) = commit_txn(&ctx, publisher, &tx, committed_tx_lsn).await? {
            acked = acked.max(p);
        }
    }
    let drained = publisher.sink().drain().await?;
    if let Some(p) = drained {
        acked = acked.max(p);
    }
    send_status(stream, received, acked, false).await?;
    tracing::info!(flush_lsn = %acked, "stream stopped, position acknowledged");
    Ok(())
}

/// Commits the open Kafka transaction together with the offsets record that says what it
/// holds: every source transaction up to `committed_tx_lsn`, plus the messages of the open one.
async fn commit_txn(
    ctx: &StreamContext<'_>,
    publisher: &mut Publisher<Lsn>,
    tx: &Option<Tx>,
    committed_tx_lsn: Option<Lsn>,
) -> Result<Option<Lsn>, SourceError> {
    let partial = tx.as_ref().and_then(|t| {
        (t.messages > 0).then_some(PartialTx {
            tx_lsn: t.final_lsn.0,
            messages: t.messages,
        })
    });
    let cp = Checkpoint {
        snapshot_done: true,
        slot: Some(ctx.slot.to_string()),
        position: committed_tx_lsn.map(|l| l.to_string()),
        last_tx_lsn: committed_tx_lsn.map(|l| l.0),
        partial,
        mysql: None,
    };
    let value = serde_json::to_vec(&cp)
        .map_err(|e| SourceError::definite(format!("encode checkpoint: {e}")))?;
    publisher
        .sink()
        .send(OutRecord {
            topic: ctx.offsets_topic,
            key: Some(ctx.source_name.as_bytes()),
            value: Some(&value),
            headers: &[],
        })
        .await?;
    Ok(publisher.sink().commit().await?)
}

#[allow(clippy::too_many_arguments)]
async fn emit(
    ctx: &StreamContext<'_>,
    publisher: &mut Publisher<Lsn>,
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
    tx.total_order += 1;
    // No allocation per row: the table id is cloned once per transaction and table, the
    // sequence is written into the transaction's buffer.
    let per = match tx.per_table.get_mut(&table.id) {
        Some(n) => {
            *n += 1;
            *n
        }
        None => {
            tx.per_table.insert(table.id.clone(), 1);
            1
        }
    };
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
            total_order: tx.total_order,
            data_collection_order: per,
        }),
    };
    position.clear();
    let _ = write!(position, "{}", tx.final_lsn);
    publisher
        .publish(
            &ev,
            EventMeta {
                position,
                txid: Some(&tx.id),
                commit_ms: tx.commit_us.div_euclid(1000),
            },
        )
        .await
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

fn protocol_error(e: wire::DecodeError) -> SourceError {
    SourceError::transient(format!("malformed replication data: {e}"))
}
