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
use rdkafka::producer::Producer as _;

use super::acks::AckQueue;
use super::acks::Producer;
use super::error::{txn_error, SinkError};
use crate::ops::status::SourceStatus;

/// Suffix of the second transactional id of a source's producer ring.
pub(super) const SPARE_TXN_ID_SUFFIX: &str = ".1";
/// How long transactional calls (init, commit, abort) may take before they count as failed.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait in [`settle_out_queue`] before committing anyway.
const OUT_QUEUE_SETTLE: Duration = Duration::from_millis(20);

/// Bookkeeping of the open Kafka transaction.
struct TxnState<P> {
    open: bool,
    records: usize,
    opened_at: Instant,
    /// The newest position marked inside the open transaction; acknowledged at commit.
    pending: Option<P>,
}

/// A commit running on a blocking thread while the next transaction fills.
struct Committing<P> {
    handle: tokio::task::JoinHandle<Result<(), KafkaError>>,
    /// Acknowledged when the commit succeeds.
    position: Option<P>,
    /// The producer committing, to abort its transaction if the commit fails.
    producer: Producer,
    /// When the transaction opened, and its records (metrics).
    opened_at: Instant,
    records: u64,
}

/// The exactly-once half of the Kafka sink: the spare producer, the open transaction and the
/// commit running in the background. The producer records are sent with is the sink's; the
/// ring swaps it with the spare at every commit.
pub(super) struct Ring<P> {
    spare: Producer,
    txn: TxnState<P>,
    committing: Option<Committing<P>>,
}

impl<P: Unpin + Clone + Send + 'static> Ring<P> {
    /// A ring whose second producer is `spare`.
    pub(super) fn new(spare: Producer) -> Self {
        Self {
            spare,
            txn: TxnState {
                open: false,
                records: 0,
                opened_at: Instant::now(),
                pending: None,
            },
            committing: None,
        }
    }

    /// Registers both transactional ids with the broker, fencing any older producer that used
    /// them (a zombie agent) and aborting what it left open.
    pub(super) async fn init(
        &self,
        producer: &Producer,
        status: &SourceStatus,
    ) -> Result<(), SinkError> {
        for producer in [producer, &self.spare] {
            let producer = producer.clone();
            status
                .while_waiting(tokio::task::spawn_blocking(move || {
                    producer.init_transactions(TXN_TIMEOUT)
                }))
                .await
                .map_err(|e| SinkError::Client(format!("init transactions task: {e}")))?
                .map_err(|e| txn_error("init transactions", e))?;
        }
        Ok(())
    }

    /// Whether a transaction is open.
    pub(super) fn is_open(&self) -> bool {
        self.txn.open
    }

    /// Records in the open transaction (0 when none is open).
    pub(super) fn records(&self) -> usize {
        if self.txn.open {
            self.txn.records
        } else {
            0
        }
    }

    /// Age of the open transaction.
    pub(super) fn age(&self) -> Duration {
        if self.txn.open {
            self.txn.opened_at.elapsed()
        } else {
            Duration::ZERO
        }
    }

    /// Marks the position the open transaction reaches; acknowledged when it commits.
    pub(super) fn mark(&mut self, position: P) {
        self.txn.pending = Some(position);
    }

    /// Whether a commit runs in the background.
    pub(super) fn committing(&self) -> bool {
        self.committing.is_some()
    }

    /// Opens a transaction on `producer` for the next record if none is open, and counts the
    /// record.
    pub(super) fn ensure_txn(&mut self, producer: &Producer) -> Result<(), SinkError> {
        let t = &mut self.txn;
        if !t.open {
            producer
                .begin_transaction()
                .map_err(|e| txn_error("begin transaction", e))?;
            t.open = true;
            t.records = 0;
            t.opened_at = Instant::now();
        }
        t.records += 1;
        Ok(())
    }

    /// Commits the open transaction of `producer`.
    ///
    /// Waits for every record's delivery (so the next transaction's records land after
    /// these in every partition), then hands the commit to a blocking thread and swaps
    /// `producer` with the spare: the next transaction fills while this one commits. The
    /// marked position is acknowledged once the commit succeeds.
    pub(super) async fn commit(
        &mut self,
        producer: &mut Producer,
        acks: &mut AckQueue<P>,
        status: &SourceStatus,
    ) -> Result<(), SinkError> {
        if !self.txn.open {
            return Ok(());
        }
        let started = Instant::now();
        if let Err(e) = acks.drain(status).await {
            self.abort_open(producer).await;
            return Err(e);
        }
        let drained = started.elapsed();
        // The previous commit must have succeeded before this one may start.
        self.finish(producer, acks, status).await?;
        let t = &mut self.txn;
        tracing::debug!(
            records = t.records,
            open_us = t.opened_at.elapsed().as_micros() as u64,
            drain_us = drained.as_micros() as u64,
            previous_commit_wait_us = (started.elapsed() - drained).as_micros() as u64,
            "committing kafka transaction"
        );
        t.open = false;
        let position = t.pending.take();
        let committer = producer.clone();
        let committing = producer.clone();
        let handle = tokio::task::spawn_blocking(move || {
            settle_out_queue(&committer);
            committer.commit_transaction(TXN_TIMEOUT)
        });
        status.kafka_owed();
        self.committing = Some(Committing {
            handle,
            position,
            producer: committing,
            opened_at: t.opened_at,
            records: t.records as u64,
        });
        std::mem::swap(producer, &mut self.spare);
        Ok(())
    }

    /// Looks at the background commit without waiting and applies its outcome if it is done.
    pub(super) fn poll(
        &mut self,
        producer: &Producer,
        acks: &mut AckQueue<P>,
        status: &SourceStatus,
    ) -> Result<(), SinkError> {
        status.kafka_looked();
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        if let Some(c) = &mut self.committing {
            if let std::task::Poll::Ready(joined) = std::pin::Pin::new(&mut c.handle).poll(&mut cx)
            {
                self.complete(joined, producer, acks, status)?;
            }
        }
        Ok(())
    }

    /// Waits until the background commit resolves or a record fails (cancel-safe).
    pub(super) async fn next(
        &mut self,
        producer: &Producer,
        acks: &mut AckQueue<P>,
        status: &SourceStatus,
    ) -> Result<(), SinkError> {
        // Positions are acknowledged by commits: deliveries matter here only when one fails.
        let Some(c) = &mut self.committing else {
            return acks.failure(status).await;
        };
        status.kafka_looked();
        let joined = tokio::select! {
            j = &mut c.handle => Some(j),
            r = acks.failure(status) => {
                r?;
                None
            }
        };
        if let Some(j) = joined {
            self.complete(j, producer, acks, status)?;
        }
        Ok(())
    }

    /// Waits for the commit running in the background, if any, and applies its outcome.
    pub(super) async fn finish(
        &mut self,
        producer: &Producer,
        acks: &mut AckQueue<P>,
        status: &SourceStatus,
    ) -> Result<(), SinkError> {
        let Some(c) = &mut self.committing else {
            return Ok(());
        };
        let joined = status.while_waiting_for_kafka(&mut c.handle).await;
        self.complete(joined, producer, acks, status)
    }

    /// Aborts the open transaction, if any (after a failure: nothing of it becomes visible).
    async fn abort_open(&mut self, producer: &Producer) {
        let t = &mut self.txn;
        if !t.open {
            return;
        }
        t.open = false;
        t.pending = None;
        let producer = producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.abort_transaction(TXN_TIMEOUT)).await;
    }

    /// Applies a finished background commit: acknowledges its position, or aborts it and the
    /// transaction opened after it on `producer`. The aborts run in the background: the error
    /// restarts the pipeline, which aborts anyway when it registers the transactional ids
    /// again.
    fn complete(
        &mut self,
        joined: Result<Result<(), KafkaError>, tokio::task::JoinError>,
        producer: &Producer,
        acks: &mut AckQueue<P>,
        status: &SourceStatus,
    ) -> Result<(), SinkError> {
        let c = self.committing.take().expect("a commit is running");
        status.kafka_answered();
        let result = joined
            .map_err(|e| SinkError::Client(format!("commit task: {e}")))
            .and_then(|r| r.map_err(|e| txn_error("commit transaction", e)));
        match result {
            Ok(()) => {
                let m = status.metrics();
                m.txn_committed.inc();
                m.txn_duration.observe(c.opened_at.elapsed().as_secs_f64());
                m.txn_records.observe(c.records as f64);
                if let Some(p) = c.position {
                    acks.set_acked(p);
                }
                Ok(())
            }
            Err(e) => {
                status.metrics().txn_aborted.inc();
                if !matches!(e, SinkError::Fenced(_)) {
                    let failed = c.producer;
                    let t = &mut self.txn;
                    let open = t.open.then(|| {
                        t.open = false;
                        t.pending = None;
                        producer.clone()
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
fn settle_out_queue(producer: &Producer) {
    let start = Instant::now();
    while producer.in_flight_count() > 0 && start.elapsed() < OUT_QUEUE_SETTLE {
        std::thread::sleep(Duration::from_micros(50));
    }
}
