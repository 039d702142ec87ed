//! The one event loop of every source: read, hand to the source, commit by the group-commit
//! rule, feed acknowledgements back, tick, and drain on shutdown.

use std::time::Duration;

use futures_util::FutureExt;

use super::snapshot::{Mark, Watermark};
use super::{encode_checkpoint, ChangeStream, Pipeline};
use crate::checkpoint::Checkpoint;
use crate::error::SourceError;
use crate::ops::status::SourceState;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// How often the driver acknowledges to the database, writes at-least-once checkpoints and
/// runs the source's chores. Short, because the position reported is what a restart replays
/// from: in at-least-once mode every second of delay is a second of duplicates after a crash.
pub const TICK: Duration = Duration::from_secs(1);

impl<S: Sink> Pipeline<S> {
    /// Streams `source` until shutdown or error. Returns after everything read was made
    /// durable and the final position was reported to the database.
    pub async fn stream<C>(
        &mut self,
        source: &mut C,
        stop: &mut Shutdown,
    ) -> Result<(), SourceError>
    where
        C: ChangeStream<Position = S::Position>,
    {
        let mut timer = tokio::time::interval(TICK);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.status().beat();
            if self
                .snapshots
                .as_ref()
                .is_some_and(|s| s.stop_when_done && s.idle())
            {
                tracing::info!(
                    "initial snapshot done; stopping as snapshot.mode = initial_only asks"
                );
                break;
            }
            let next = self.snapshots.as_mut().and_then(|s| s.next_request());
            if let Some((low, req)) = next {
                if stop.is_triggered() {
                    break;
                }
                self.read_chunk(source, low, req, stop).await?;
                self.snapshot_moved(source).await?;
            }
            // Exactly-once: close the open Kafka transaction by the group-commit rule (none is
            // ever open at least once). `recv` is cancel-safe, so peeking loses nothing.
            let (ready, commit) = match self.bounds {
                Some(bounds) => self
                    .publisher
                    .sink()
                    .group_commit(bounds, || source.recv().now_or_never())?,
                None => (None, false),
            };
            if commit {
                self.commit_with(source).await?;
            }
            let item = match ready {
                Some(item) => item?,
                None => {
                    tokio::select! {
                        biased;
                        _ = stop.wait() => break,
                        r = self.publisher.sink().progress(), if self.in_flight() > 0 => {
                            if let Some(p) = r? {
                                source.durable(p);
                            }
                            // Take every other acknowledgement that is already in, in one go
                            // rather than one loop turn each.
                            if let Some(p) = self.acked()? {
                                source.durable(p);
                            }
                            continue;
                        }
                        _ = timer.tick() => {
                            self.on_tick(source).await?;
                            continue;
                        }
                        item = source.recv() => item?,
                    }
                }
            };
            source.handle(item, self, stop).await?;
            self.snapshot_moved(source).await?;
        }
        self.drain_stream(source).await
    }

    /// Reads one snapshot chunk between its watermarks and holds it until the stream brings
    /// them back.
    async fn read_chunk<C>(
        &mut self,
        source: &mut C,
        low: Watermark,
        req: super::ChunkRequest,
        stop: &mut Shutdown,
    ) -> Result<(), SourceError>
    where
        C: ChangeStream<Position = S::Position>,
    {
        let started = std::time::Instant::now();
        source.write_watermark(&low).await?;
        let chunk = match source.read_chunk(&req, self, stop).await {
            Ok(chunk) => chunk,
            Err(e) => {
                // A table dropped during its snapshot has nothing left to read; any failure
                // to read it is explained by that. Its low watermark comes back unmatched.
                if matches!(source.table_exists(&req.table).await, Ok(false)) {
                    if let Some(s) = self.snapshots.as_mut() {
                        s.table_gone(&req.table, &e);
                    }
                    return Ok(());
                }
                return Err(e);
            }
        };
        if !chunk.rows.is_empty() {
            let high = Watermark {
                mark: Mark::High,
                id: low.id.clone(),
            };
            source.write_watermark(&high).await?;
        }
        tracing::debug!(
            table = %req.table,
            rows = chunk.rows.len(),
            read_us = started.elapsed().as_micros() as u64,
            "snapshot chunk read"
        );
        if let Some(s) = self.snapshots.as_mut() {
            s.hold(low.id, &req, chunk);
        }
        Ok(())
    }

    /// After a snapshot moved (a chunk emitted, a table done): exactly once, the next commit
    /// carries it, and a commit is made now if none is open; at least once, its rows are
    /// drained first, so the checkpoint never runs ahead of what Kafka holds.
    async fn snapshot_moved<C>(&mut self, source: &mut C) -> Result<(), SourceError>
    where
        C: ChangeStream<Position = S::Position>,
    {
        let Some(s) = self.snapshots.as_mut() else {
            return Ok(());
        };
        if s.take_dirty() {
            if s.idle() {
                self.status().set_state(SourceState::Streaming);
            } else {
                let (done, estimate) = s.progress();
                self.status().snapshot_progress(done, estimate);
            }
            self.snapshot_unsaved = true;
        }
        if !self.snapshot_unsaved {
            return Ok(());
        }
        if self.exactly_once() {
            if self.publisher.sink_ref().txn_open() {
                // The open transaction's commit carries the state.
                self.snapshot_unsaved = false;
            } else if source.between_transactions() {
                self.snapshot_unsaved = false;
                self.commit_with(source).await?;
            }
            // Else inside a source transaction that sent nothing yet (the pause or stop
            // signal's own): its end comes through here again and commits then; without
            // this, an idle source would show the old state until its next change.
            return Ok(());
        }
        self.snapshot_unsaved = false;
        let acked = self.drain().await?;
        if let Some(s) = self.snapshots.as_mut() {
            s.durable = s.state().clone();
        }
        let cp = match &acked {
            Some(p) => source.checkpoint_at(p),
            None => None,
        };
        let cp = match cp {
            Some(cp) => Some(cp),
            // The database keeps the position (PostgreSQL): only the snapshot part matters.
            None if C::IDLE_CHECKPOINT.is_none() => Some(source.checkpoint()),
            None => None,
        };
        if let Some(cp) = cp {
            let cp = self.with_snapshot(cp);
            let value = encode_checkpoint(&cp)?;
            if self.written.as_deref() != Some(&value[..]) {
                self.write_encoded(value).await?;
            }
        }
        if let Some(p) = acked {
            source.durable(p);
        }
        Ok(())
    }

    /// `cp` with the snapshot part: the current state exactly once (the transaction holds
    /// the rows), the drained one at least once.
    pub(super) fn with_snapshot<T>(&self, mut cp: Checkpoint<T>) -> Checkpoint<T> {
        if let Some(s) = &self.snapshots {
            cp.snapshot_done = s.initial_done();
            cp.snapshot = if self.exactly_once() {
                s.state().clone()
            } else {
                s.durable.clone()
            };
        }
        if self.exactly_once() {
            // At least once restarts at a source commit: nothing to carry over.
            cp.transaction = self.publisher.open_transaction();
        }
        cp
    }

    /// Writes the source's checkpoint into the open transaction and commits it.
    async fn commit_with<C>(&mut self, source: &mut C) -> Result<(), SourceError>
    where
        C: ChangeStream<Position = S::Position>,
    {
        let cp = self.with_snapshot(source.checkpoint());
        self.write_checkpoint(&cp).await?;
        if let Some(p) = self.publisher.sink().commit().await? {
            source.durable(p);
        }
        // Everything sent is committed: the routed outbox rows can go.
        self.delete_outbox(source).await;
        source.report().await
    }

    /// Deletes the outbox rows whose events are durable (`delete_after_capture`). A failure
    /// is logged, not fatal: the events are in Kafka; the rows stay in the table.
    async fn delete_outbox<C: ChangeStream>(&mut self, source: &mut C) {
        let Some(deletes) = self.publisher.take_outbox_deletes() else {
            return;
        };
        if let Err(e) = source.delete_outbox(&deletes).await {
            tracing::warn!(
                table = %format!("{}.{}", deletes.schema, deletes.table),
                rows = deletes.ids.len(),
                error = %e,
                "cannot delete captured outbox rows; they stay in the table (their events are in kafka)"
            );
        }
    }

    async fn on_tick<C>(&mut self, source: &mut C) -> Result<(), SourceError>
    where
        C: ChangeStream<Position = S::Position>,
    {
        let acked = self.acked()?;
        source.tick().await?;
        if !self.exactly_once() && self.in_flight() == 0 {
            // At least once, nothing in flight: every routed outbox row's event is acked.
            self.delete_outbox(source).await;
        }
        if self
            .heartbeat_every
            .is_some_and(|every| self.last_heartbeat.elapsed() >= every)
        {
            self.last_heartbeat = std::time::Instant::now();
            source.heartbeat().await?;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            self.publisher.heartbeat(now_ms).await?;
            // Exactly once: between source transactions the heartbeat commits with the
            // checkpoint at once (an idle source's position moves with it); inside one it
            // joins the open Kafka transaction.
            if self.exactly_once()
                && source.between_transactions()
                && self.publisher.sink_ref().txn_open()
            {
                self.commit_with(source).await?;
            }
        }
        if self.exactly_once() {
            if let Some(after) = C::IDLE_CHECKPOINT {
                if source.between_transactions()
                    && !self.publisher.sink_ref().txn_open()
                    && self.last_write.elapsed() >= after
                    && self.checkpoint_moved(source)?
                {
                    self.commit_with(source).await?;
                }
            }
        } else if let Some(p) = &acked {
            self.write_acked_checkpoint(source, p).await?;
        }
        if let Some(p) = acked {
            source.durable(p);
        }
        source.report().await
    }

    /// Whether the source's checkpoint differs from the newest one written.
    fn checkpoint_moved<C: ChangeStream>(&self, source: &C) -> Result<bool, SourceError> {
        let cp = self.with_snapshot(source.checkpoint());
        Ok(self.written.as_deref() != Some(&encode_checkpoint(&cp)?[..]))
    }

    /// At least once: writes the checkpoint of an acknowledged position, if the source keeps
    /// its position in Kafka and it moved.
    async fn write_acked_checkpoint<C: ChangeStream>(
        &mut self,
        source: &C,
        acked: &C::Position,
    ) -> Result<bool, SourceError> {
        let Some(cp) = source.checkpoint_at(acked) else {
            return Ok(false);
        };
        let cp = self.with_snapshot(cp);
        let value = encode_checkpoint(&cp)?;
        if self.written.as_deref() == Some(&value[..]) {
            return Ok(false);
        }
        self.write_encoded(value).await?;
        Ok(true)
    }

    /// Shutdown: stop reading, make everything durable (commit), acknowledge the final
    /// position.
    async fn drain_stream<C>(&mut self, source: &mut C) -> Result<(), SourceError>
    where
        C: ChangeStream<Position = S::Position>,
    {
        if self.exactly_once() {
            // A snapshot state no commit carried yet (see `snapshot_unsaved`) is saved too.
            let moved = (C::IDLE_CHECKPOINT.is_some() || self.snapshot_unsaved)
                && self.checkpoint_moved(source)?;
            if self.publisher.sink_ref().txn_open() || moved {
                let cp = self.with_snapshot(source.checkpoint());
                self.write_checkpoint(&cp).await?;
                self.publisher.sink().commit().await?;
            }
        }
        if let Some(p) = self.drain().await? {
            if !self.exactly_once() && self.write_acked_checkpoint(source, &p).await? {
                self.drain().await?;
            }
            source.durable(p);
        }
        source.report().await?;
        source.stopped();
        Ok(())
    }
}
