//! Exactly-once: Kafka transactions on a ring of two transactional producers.
//!
//! While one producer commits (on a blocking thread), the next transaction fills on the
//! other, so the source is read during the commit round trip and the coordinator never sees a
//! transaction start while the previous one's markers are still being written (which it
//! answers with `CONCURRENT_TRANSACTIONS` and a 20 ms client back-off). Commits stay in order:
//! the next one starts only after this one succeeded, and if this one fails the next is
//! aborted with it.

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};

use super::client::AgentContext;
use super::error::txn_error;
use super::{KafkaSink, SinkError};

/// Suffix of the second transactional id of a source's producer ring.
pub(super) const SPARE_TXN_ID_SUFFIX: &str = ".1";
/// How long transactional calls (init, commit, abort) may take before they count as failed.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait in [`settle_out_queue`] before committing anyway.
const OUT_QUEUE_SETTLE: Duration = Duration::from_millis(20);

/// Bookkeeping of the open Kafka transaction (exactly-once mode).
pub(super) struct TxnState<P> {
    pub(super) open: bool,
    pub(super) records: usize,
    pub(super) opened_at: Instant,
    /// The newest position marked inside the open transaction; acknowledged at commit.
    pub(super) pending: Option<P>,
}

impl<P> TxnState<P> {
    pub(super) fn new() -> Self {
        Self {
            open: false,
            records: 0,
            opened_at: Instant::now(),
            pending: None,
        }
    }
}

/// A commit running on a blocking thread while the next transaction fills.
pub(super) struct Committing<P> {
    handle: tokio::task::JoinHandle<Result<(), KafkaError>>,
    /// Acknowledged when the commit succeeds.
    position: Option<P>,
    /// The producer committing, to abort its transaction if the commit fails.
    producer: FutureProducer<AgentContext>,
}

impl<P: Unpin + Clone + Send + 'static> KafkaSink<P> {
    /// Registers the transactional ids with the broker, fencing any older producer that used
    /// them (a zombie agent) and aborting what it left open.
    pub(super) async fn init_ring(&self) -> Result<(), SinkError> {
        if self.txn.is_none() {
            return Ok(());
        }
        for producer in std::iter::once(&self.producer).chain(self.spare.as_ref()) {
            let producer = producer.clone();
            self.status
                .while_waiting(tokio::task::spawn_blocking(move || {
                    producer.init_transactions(TXN_TIMEOUT)
                }))
                .await
                .map_err(|e| SinkError::Client(format!("init transactions task: {e}")))?
                .map_err(|e| txn_error("init transactions", e))?;
        }
        Ok(())
    }

    /// Opens a transaction for the next record if none is open, and counts the record.
    pub(super) fn ensure_txn(&mut self) -> Result<(), SinkError> {
        if let Some(t) = &mut self.txn {
            if !t.open {
                self.producer
                    .begin_transaction()
                    .map_err(|e| txn_error("begin transaction", e))?;
                t.open = true;
                t.records = 0;
                t.opened_at = Instant::now();
            }
            t.records += 1;
        }
        Ok(())
    }

    /// Commits the open transaction and returns the newest acknowledged position.
    ///
    /// Waits for every record's delivery (so the next transaction's records land after
    /// these in every partition), then hands the commit to a blocking thread and switches to
    /// the other producer of the ring. The marked position is acknowledged once the commit
    /// succeeds.
    pub(super) async fn commit_ring(&mut self) -> Result<Option<P>, SinkError> {
        let Some(t) = &self.txn else {
            self.acks.drain(&self.status).await?;
            return Ok(self.acks.acked());
        };
        if !t.open {
            return Ok(self.acks.acked());
        }
        let started = Instant::now();
        if let Err(e) = self.acks.drain(&self.status).await {
            self.abort_open().await;
            return Err(e);
        }
        let drained = started.elapsed();
        // The previous commit must have succeeded before this one may start.
        self.finish_commit().await?;
        let t = self.txn.as_mut().expect("checked above");
        tracing::debug!(
            records = t.records,
            open_us = t.opened_at.elapsed().as_micros() as u64,
            drain_us = drained.as_micros() as u64,
            previous_commit_wait_us = (started.elapsed() - drained).as_micros() as u64,
            "committing kafka transaction"
        );
        t.open = false;
        let position = t.pending.take();
        let producer = self.producer.clone();
        let committing = producer.clone();
        let handle = tokio::task::spawn_blocking(move || {
            settle_out_queue(&producer);
            producer.commit_transaction(TXN_TIMEOUT)
        });
        self.committing = Some(Committing {
            handle,
            position,
            producer: committing,
        });
        if let Some(spare) = &mut self.spare {
            std::mem::swap(&mut self.producer, spare);
        }
        Ok(self.acks.acked())
    }

    /// Looks at the background commit without waiting and applies its outcome if it is done.
    pub(super) fn poll_commit(&mut self) -> Result<(), SinkError> {
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        if let Some(c) = &mut self.committing {
            if let std::task::Poll::Ready(joined) = std::pin::Pin::new(&mut c.handle).poll(&mut cx)
            {
                self.complete_commit(joined)?;
            }
        }
        Ok(())
    }

    /// Waits until the next delivery or the background commit resolves (cancel-safe).
    pub(super) async fn next_commit_or_ack(&mut self) -> Result<(), SinkError> {
        let Some(c) = &mut self.committing else {
            return self.acks.next(&self.status).await;
        };
        let joined = if self.acks.is_empty() {
            Some((&mut c.handle).await)
        } else {
            tokio::select! {
                j = &mut c.handle => Some(j),
                r = self.acks.next(&self.status) => {
                    r?;
                    None
                }
            }
        };
        if let Some(j) = joined {
            self.complete_commit(j)?;
        }
        Ok(())
    }

    /// Whether a commit runs in the background.
    pub(super) fn committing(&self) -> bool {
        self.committing.is_some()
    }

    /// Waits for the commit running in the background, if any, and applies its outcome.
    pub(super) async fn finish_commit(&mut self) -> Result<(), SinkError> {
        let Some(c) = &mut self.committing else {
            return Ok(());
        };
        let status = self.status.clone();
        let joined = status.while_waiting(&mut c.handle).await;
        self.complete_commit(joined)
    }

    /// Aborts the open transaction, if any (after a failure: nothing of it becomes visible).
    async fn abort_open(&mut self) {
        let Some(t) = &mut self.txn else { return };
        if !t.open {
            return;
        }
        t.open = false;
        t.pending = None;
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.abort_transaction(TXN_TIMEOUT)).await;
    }

    /// Applies a finished background commit: acknowledges its position, or aborts it and the
    /// transaction opened after it. The aborts run in the background: the error restarts the
    /// pipeline, which aborts anyway when it registers the transactional ids again.
    fn complete_commit(
        &mut self,
        joined: Result<Result<(), KafkaError>, tokio::task::JoinError>,
    ) -> Result<(), SinkError> {
        let c = self.committing.take().expect("a commit is running");
        let result = joined
            .map_err(|e| SinkError::Client(format!("commit task: {e}")))
            .and_then(|r| r.map_err(|e| txn_error("commit transaction", e)));
        match result {
            Ok(()) => {
                self.status.metrics().txn_committed.inc();
                if let Some(p) = c.position {
                    self.acks.set_acked(p);
                }
                Ok(())
            }
            Err(e) => {
                self.status.metrics().txn_aborted.inc();
                if !matches!(e, SinkError::Fenced(_)) {
                    let failed = c.producer;
                    let open = self.txn.as_mut().filter(|t| t.open).map(|t| {
                        t.open = false;
                        t.pending = None;
                        self.producer.clone()
                    });
                    tokio::task::spawn_blocking(move || {
                        let _ = failed.abort_transaction(TXN_TIMEOUT);
                        if let Some(p) = open {
                            let _ = p.abort_transaction(TXN_TIMEOUT);
                        }
                    });
                }
                Err(match e {
                    SinkError::Fenced(_) => e,
                    other => SinkError::Aborted(other.to_string()),
                })
            }
        }
    }
}

/// Waits (briefly) until librdkafka counts no outstanding message or delivery report.
///
/// When a commit gets here every delivery of the transaction has resolved, but librdkafka
/// still counts a delivery report until the producer's polling thread has released it.
/// rdkafka's `commit_transaction` flushes first, and a flush that finds any count left polls
/// for a full 100 ms: measured, that stalled about one commit in three by exactly 100 ms and
/// made it most of the exactly-once commit→visible latency (bench/pg-e2e). The count reaches
/// zero within microseconds; then the flush returns at once.
fn settle_out_queue(producer: &FutureProducer<AgentContext>) {
    let start = Instant::now();
    while producer.in_flight_count() > 0 && start.elapsed() < OUT_QUEUE_SETTLE {
        std::thread::sleep(Duration::from_micros(50));
    }
}
