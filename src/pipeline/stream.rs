//! The contract between a database's change stream and the pipeline.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::snapshot::{Chunk, ChunkRequest, Watermark};
use super::Pipeline;
use crate::checkpoint::Checkpoint;
use crate::error::SourceError;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// A database's change stream as the pipeline drives it ([`Pipeline::stream`]).
///
/// ## Contract
/// - **Reading**: [`ChangeStream::recv`] returns the next unit read from the database (a
///   replication frame, a binlog event). It must be *cancel-safe*: the driver races it against
///   shutdown, acknowledgements and its timer, and peeks at it without waiting while it decides
///   whether to commit (group commit). A stream that ends is an error (transient: the source
///   restarts from its last durable position).
/// - **Handling**: [`ChangeStream::handle`] decodes the unit and publishes its events through
///   the pipeline, in source order, and marks a position ([`Pipeline::mark`]) at the end of
///   every source transaction. A source transaction is never buffered: its rows are published
///   as they arrive, so memory does not grow with its size (the sink's backpressure stops
///   `handle`, and so the reading, while Kafka is behind).
/// - **When a position may be acknowledged**: only what the driver hands to
///   [`ChangeStream::durable`] — positions whose every event Kafka holds (acknowledged with
///   acks=all, or in a committed transaction). The stream tells the database about them in
///   [`ChangeStream::report`] and nothing earlier, so a crash loses nothing.
/// - **Exactly-once**: every Kafka transaction carries, as its last record, the checkpoint
///   [`ChangeStream::checkpoint`] returns at that moment: what the transaction holds, including
///   how much of a source transaction that is still open (partial resume). A restart replays
///   from the database's position and skips what that checkpoint says is already in Kafka.
/// - **What a restart replays**: at least once, everything after the last acknowledged
///   position (duplicates possible, nothing missing); exactly once, the same, minus what
///   committed Kafka transactions already hold.
/// - **Calls** come from one task, one at a time; none is made after the driver returns.
pub trait ChangeStream: Send {
    /// The position the source marks at the end of its transactions.
    type Position: Clone + Send;
    /// The source's part of its checkpoint.
    type Checkpoint: Serialize + Send + Sync;
    /// One unit read from the database.
    type Item: Send;

    /// Exactly-once: after a quiet moment this long, a checkpoint that moved (past source
    /// transactions with nothing captured) is written in a transaction of its own, so a restart
    /// does not re-read them. `None` when the database keeps the position (a PostgreSQL slot).
    const IDLE_CHECKPOINT: Option<Duration> = None;

    /// Reads the next unit (cancel-safe).
    fn recv(&mut self) -> impl Future<Output = Result<Self::Item, SourceError>> + Send;

    /// Decodes `item` and publishes its events through `out`.
    fn handle<S: Sink<Position = Self::Position>>(
        &mut self,
        item: Self::Item,
        out: &mut Pipeline<S>,
        stop: &mut Shutdown,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Exactly-once: the checkpoint a Kafka transaction closed now would carry.
    fn checkpoint(&self) -> Checkpoint<Self::Checkpoint>;

    /// At-least-once: the checkpoint for an acknowledged position, or `None` when the database
    /// keeps the position itself.
    fn checkpoint_at(&self, acked: &Self::Position) -> Option<Checkpoint<Self::Checkpoint>>;

    /// Kafka holds every event up to `position` durably.
    fn durable(&mut self, position: Self::Position);

    /// Tells the database (and the source's status) how far the pipeline is: called after
    /// every commit, on every tick and once after the shutdown drain.
    fn report(&mut self) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Periodic chores of the source (ownership checks), once per tick.
    fn tick(&mut self) -> impl Future<Output = Result<(), SourceError>> + Send {
        async { Ok(()) }
    }

    /// At every heartbeat (`[heartbeat] interval_ms`), before its record is sent: the
    /// source's own heartbeat work (PostgreSQL: `action_query`).
    fn heartbeat(&mut self) -> impl Future<Output = Result<(), SourceError>> + Send {
        async { Ok(()) }
    }

    /// Deletes outbox rows whose events are durable (`[outbox] delete_after_capture`).
    fn delete_outbox(
        &mut self,
        deletes: &crate::outbox::OutboxDeletes,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Whether the stream is between source transactions.
    fn between_transactions(&self) -> bool;

    /// Called once the shutdown drain finished and the final position was reported.
    fn stopped(&self);

    /// Snapshots: commits `watermark` to the database so that the stream brings it back, in
    /// commit order with the changes around it, to [`Pipeline::snapshot_watermark`]. Sources
    /// that take snapshots while streaming implement it with [`ChangeStream::read_chunk`].
    fn write_watermark(
        &mut self,
        watermark: &Watermark,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let _ = watermark;
        async {
            Err(SourceError::definite(
                "this source does not take snapshots while streaming".into(),
            ))
        }
    }

    /// Snapshots: whether `table` (`schema.table` / `database.table`, as a chunk request
    /// names it) still exists. Asked only after reading a chunk of it failed, so that a table
    /// dropped during its snapshot is left out of it instead of failing the source on every
    /// retry.
    fn table_exists(
        &mut self,
        table: &str,
    ) -> impl Future<Output = Result<bool, SourceError>> + Send {
        let _ = table;
        async { Ok(true) }
    }

    /// Snapshots: reads the chunk `req` asks for, in key order, with a fresh view of the
    /// database (not inside an older snapshot: the watermarks bracket it), and sets the
    /// table's schema on `out`. Reads `limit + 1` rows to tell whether more follow.
    fn read_chunk<S: Sink<Position = Self::Position>>(
        &mut self,
        req: &ChunkRequest,
        out: &mut Pipeline<S>,
        stop: &mut Shutdown,
    ) -> impl Future<Output = Result<Chunk, SourceError>> + Send {
        let _ = (req, out, stop);
        async {
            Err(SourceError::definite(
                "this source does not take snapshots while streaming".into(),
            ))
        }
    }
}
