//! Where events go, behind one contract: [`Sink`]. Kafka ([`kafka::KafkaSink`]) is the only
//! production sink (table topics, the event-store mirror, the offsets topic); an in-memory
//! sink (`memory::MemorySink`, tests only) lets the pipeline's delivery rules be unit-tested
//! without a broker.

use std::future::Future;
use std::time::Duration;

use crate::ops::status::SourceStatus;

pub mod kafka;
#[cfg(test)]
pub mod memory;
pub mod read;

pub use kafka::{OutRecord, SinkError};

/// Bounds of one Kafka transaction in exactly-once mode (`[kafka] transaction_max_records`,
/// `transaction_max_ms`).
#[derive(Debug, Clone, Copy)]
pub struct TxnBounds {
    /// Commit after this many records.
    pub max_records: usize,
    /// Commit after this long under load.
    pub max_age: Duration,
}

/// What the pipeline needs from a destination.
///
/// ## Contract
/// - **Delivery**: a position handed to [`Sink::mark`] is reported by [`Sink::acked`],
///   [`Sink::progress`], [`Sink::commit`] or [`Sink::drain`] only once every record sent
///   before it is durable (at-least-once: acknowledged with acks=all; transactional: its
///   transaction committed). The pipeline acknowledges that position to the database and
///   nothing earlier, so a crash replays from the last durable point: nothing is lost.
/// - **Ordering**: records of one key stay in send order, across transactions too (a
///   transaction's records are all acknowledged before the next one's are sent).
/// - **Transactions** (exactly-once sinks): the first [`Sink::send`] opens a
///   transaction; [`Sink::commit`] closes it; a later commit starts only after the earlier one
///   succeeded, and when one fails, every later one is aborted with it. Nothing of an aborted
///   transaction becomes visible to read_committed readers.
/// - **Backpressure**: `send` waits while the sink holds its maximum of unacknowledged
///   records, so memory stays bounded whatever the source transaction's size. The maximum
///   may be raised for a burst of known size ([`Sink::set_in_flight_bound`]), never beyond a
///   fixed bound of the sink's.
/// - **When the next call may come**: any time; the methods are not re-entrant (`&mut self`).
///   [`Sink::progress`] and a source's receive are raced in one `select!`, so `progress` must
///   be cancel-safe.
/// - **Failures**: a record the sink refuses fails the sink ([`SinkError`]); the pipeline
///   stops and restarts from the last durable position. Nothing is dropped silently.
pub trait Sink: Send {
    /// The source's position type: what [`Sink::mark`] takes and the acknowledgements return.
    type Position: Clone + Send;

    /// Reports into `status`: produce latency, in-flight records, transactions, and beats
    /// while waiting (an outage is waited out, not a stalled pipeline).
    fn set_status(&mut self, status: SourceStatus);

    /// Creates `topic` unless it exists, with the given topic configs.
    fn ensure_topic(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Registers the transactional identity, fencing any older writer with it and aborting
    /// what that writer left open. Call once before the first send.
    fn init_transactions(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// The largest record `topic` takes, when the sink knows it before sending (the Kafka
    /// sink asks the brokers for each topic's `max.message.bytes`). `None`: unknown, a record
    /// too large fails at [`Sink::send`] or its delivery.
    fn record_limit(&self, _topic: &str) -> Option<usize> {
        None
    }

    /// Queues one record; waits while the sink is full.
    fn send(&mut self, rec: OutRecord<'_>) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Marks `position`: reported as acknowledged once every record sent before it is durable.
    fn mark(&mut self, position: Self::Position);

    /// The newest durable position, without waiting.
    fn acked(&mut self) -> Result<Option<Self::Position>, SinkError>;

    /// Waits until the next pending record or commit resolves (cancel-safe); returns the
    /// newest durable position.
    fn progress(
        &mut self,
    ) -> impl Future<Output = Result<Option<Self::Position>, SinkError>> + Send;

    /// Lets up to `records` (clamped to the sink's own bounds) wait for acknowledgement before
    /// `send` waits, until called again with `None` (the default bound). For a burst of known
    /// size whose source then goes quiet for a while (a snapshot chunk, followed by the read of
    /// the next one): queued whole, it is sent while the source reads. Sinks without such a
    /// bound ignore it.
    fn set_in_flight_bound(&mut self, _records: Option<usize>) {}

    /// Records (and commits) not yet durable.
    fn in_flight(&self) -> usize;

    /// Whether a transaction is open.
    fn txn_open(&self) -> bool;

    /// Records in the open transaction (0 when none is open).
    fn txn_records(&self) -> usize;

    /// Age of the open transaction.
    fn txn_age(&self) -> Duration;

    /// Whether an earlier transaction's commit is still running (looked at without waiting).
    fn commit_running(&mut self) -> Result<bool, SinkError>;

    /// Closes the open transaction (at-least-once: waits for every record); returns the
    /// newest durable position. The commit may finish in the background: its position is
    /// reported by later calls.
    fn commit(&mut self) -> impl Future<Output = Result<Option<Self::Position>, SinkError>> + Send;

    /// Waits until everything sent is durable (committing the open transaction); returns
    /// the newest durable position.
    fn drain(&mut self) -> impl Future<Output = Result<Option<Self::Position>, SinkError>> + Send;

    /// The group-commit rule, asked once per turn of the pipeline's loop.
    ///
    /// With a transaction open and within `bounds`, `peek` looks for the next source item
    /// without waiting (it must be cancel-safe). The answer is that item, if one was waiting,
    /// and whether to commit now: when the bounds are reached, or when nothing more is waiting
    /// and no earlier commit still runs. While an earlier commit runs, the open transaction
    /// keeps filling instead: that is what lets transactions grow with the load (with a ring
    /// of producers, a commit per quiet moment would make them a few records each), and a
    /// quiet system still sees its changes within milliseconds.
    fn group_commit<T>(
        &mut self,
        bounds: TxnBounds,
        peek: impl FnOnce() -> Option<T>,
    ) -> Result<(Option<T>, bool), SinkError> {
        if !self.txn_open() {
            return Ok((None, false));
        }
        let full = self.txn_records() >= bounds.max_records || self.txn_age() >= bounds.max_age;
        let ready = if full { None } else { peek() };
        let commit = ready.is_none() && (full || !self.commit_running()?);
        Ok((ready, commit))
    }
}
