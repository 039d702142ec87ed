//! Acknowledgement tracking without a future per record.
//!
//! ```text
//!  pipeline task                          librdkafka's polling thread(s)
//!  ─────────────                          ──────────────────────────────
//!  send: opaque = seq n, n+1, …  ──────▶  DeliveryContext::delivery(result, seq)
//!  mark(position) after seq n               │ set seq's bit, move the watermark,
//!  wait until watermark ≥ target  ◀─────── │ wake the task only when it reaches the target
//!  (a mark, room, everything)               │ (or a record failed)
//! ```
//!
//! Every record the sink sends carries its sequence number as librdkafka's delivery opaque.
//! Deliveries come back in send order per partition but in any order across partitions;
//! [`Deliveries`] keeps the *watermark*: the lowest sequence number not yet delivered. A
//! position marked after record `n` is acknowledged once the watermark passes `n`, which is what
//! makes "acknowledged position" mean "everything before it is in Kafka".
//!
//! Why not rdkafka's `FutureProducer`: it allocates a oneshot channel per record and resolves
//! each one by waking the waiting task, and the pipeline then took one loop turn per record.
//! Here a delivery costs a bit set under an uncontended lock, and the task wakes once per
//! target reached (bench/RESULTS.md, issue 16).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{ProducerContext, ThreadedProducer};
use rdkafka::Message;
use tokio::sync::Notify;

use super::client::AgentContext;
use super::error::{produce_error, SinkError};
use crate::ops::status::SourceStatus;

/// One in this many records has its send instant kept, for the produce-latency histogram:
/// a per-record `Instant` and histogram update cost more than the metric is worth.
const LATENCY_SAMPLE_EVERY: usize = 64;

/// Sequence numbers a delivery may run ahead of the watermark, at most. The sink never has
/// more than `max_in_flight` records unacknowledged, so this only has to exceed that bound.
fn window_bits(max_in_flight: usize) -> usize {
    (max_in_flight + 1).next_power_of_two().max(64) * 2
}

/// The sink's producers: librdkafka's polling thread reports deliveries into the sink's
/// [`Deliveries`], no future per record.
pub(crate) type Producer = ThreadedProducer<DeliveryContext>;

/// Delivery state shared by the sink and the delivery callbacks of its producers.
pub(crate) struct Deliveries {
    book: Mutex<Book>,
    /// Wakes the pipeline's task when the watermark reaches [`Book::want`] or a record fails.
    wake: Notify,
}

struct Book {
    /// The lowest sequence number not yet delivered.
    low: usize,
    /// Delivered ahead of the watermark: bit `s % bits` for sequence number `s`.
    ahead: Vec<u64>,
    /// The watermark the waiting task wants; [`usize::MAX`]: nobody waits.
    want: usize,
    /// The first record that failed; the sink fails with it.
    failed: Option<SinkError>,
    /// A failure was reported already (later calls fail too).
    poisoned: bool,
    /// Sampled send instants, in sequence order.
    sent_at: VecDeque<(usize, Instant)>,
    /// Where sampled produce latencies go (the source's histogram once it is known).
    latency: Option<Histogram>,
}

impl Book {
    fn bit(&self, seq: usize) -> (usize, u64) {
        let i = seq & (self.ahead.len() * 64 - 1);
        (i / 64, 1u64 << (i % 64))
    }

    /// Records `seq` as delivered and moves the watermark over every delivered number.
    fn delivered(&mut self, seq: usize) {
        if seq < self.low {
            return;
        }
        if seq != self.low {
            let (w, b) = self.bit(seq);
            self.ahead[w] |= b;
            return;
        }
        self.low += 1;
        loop {
            let (w, b) = self.bit(self.low);
            if self.ahead[w] & b == 0 {
                break;
            }
            self.ahead[w] &= !b;
            self.low += 1;
        }
    }
}

impl Deliveries {
    fn new(max_in_flight: usize) -> Arc<Self> {
        Arc::new(Self {
            book: Mutex::new(Book {
                low: 0,
                ahead: vec![0; window_bits(max_in_flight) / 64],
                want: usize::MAX,
                failed: None,
                poisoned: false,
                sent_at: VecDeque::new(),
                latency: None,
            }),
            wake: Notify::new(),
        })
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // The book's invariants hold between statements: a panic elsewhere cannot leave it
        // half-updated in a way that matters more than the panic itself.
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn report(&self, seq: usize, result: Result<(), SinkError>) {
        let mut book = self.book();
        match result {
            Ok(()) => {
                if seq % LATENCY_SAMPLE_EVERY == 0 {
                    if let Some(i) = book.sent_at.iter().position(|(s, _)| *s == seq) {
                        let (_, at) = book.sent_at.remove(i).expect("found");
                        if let Some(h) = &book.latency {
                            h.observe(at.elapsed().as_secs_f64());
                        }
                    }
                }
                book.delivered(seq);
                if book.low < book.want {
                    return;
                }
            }
            Err(e) => {
                if book.failed.is_none() && !book.poisoned {
                    book.failed = Some(e);
                }
            }
        }
        book.want = usize::MAX;
        drop(book);
        self.wake.notify_one();
    }
}

/// The producers' librdkafka context: the agent's client context (logged errors, refused
/// logins) plus delivery reports counted into the sink's [`Deliveries`].
#[derive(Clone)]
pub struct DeliveryContext {
    agent: AgentContext,
    deliveries: Arc<Deliveries>,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.agent.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    /// The record's sequence number.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, msg)) => {
                let size = msg.key().map_or(0, <[u8]>::len) + msg.payload().map_or(0, <[u8]>::len);
                Err(produce_error(msg.topic(), size, e.clone()))
            }
        };
        self.deliveries.report(seq, outcome);
    }
}

/// The sink's side: sequence numbers handed out, position marks in send order, and the newest
/// position whose records are all delivered.
pub(super) struct AckQueue<P> {
    deliveries: Arc<Deliveries>,
    /// The next record's sequence number (= records sent).
    sent: usize,
    /// The watermark as last seen.
    low: usize,
    /// Positions and the number of records sent before each.
    marks: VecDeque<(usize, P)>,
    acked: Option<P>,
}

impl<P: Clone> AckQueue<P> {
    /// A queue for at most `max_in_flight` unacknowledged records, and the context its
    /// producers report deliveries through.
    pub(super) fn new(agent: &AgentContext, max_in_flight: usize) -> (Self, DeliveryContext) {
        let deliveries = Deliveries::new(max_in_flight);
        let context = DeliveryContext {
            agent: agent.clone(),
            deliveries: Arc::clone(&deliveries),
        };
        let queue = Self {
            deliveries,
            sent: 0,
            low: 0,
            marks: VecDeque::new(),
            acked: None,
        };
        (queue, context)
    }

    /// Where sampled produce latencies go from now on.
    pub(super) fn set_latency(&self, histogram: Histogram) {
        self.deliveries.book().latency = Some(histogram);
    }

    /// The sequence number the next record carries.
    pub(super) fn next_seq(&self) -> usize {
        self.sent
    }

    /// The record carrying [`AckQueue::next_seq`] was handed to the producer.
    pub(super) fn sent_one(&mut self) {
        if self.sent % LATENCY_SAMPLE_EVERY == 0 {
            self.deliveries
                .book()
                .sent_at
                .push_back((self.sent, Instant::now()));
        }
        self.sent += 1;
    }

    /// Records not yet delivered, as last seen.
    pub(super) fn len(&self) -> usize {
        self.sent - self.low
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sent == self.low
    }

    /// The newest acknowledged position.
    pub(super) fn acked(&self) -> Option<P> {
        self.acked.clone()
    }

    /// A position made durable by other means (a committed transaction).
    pub(super) fn set_acked(&mut self, p: P) {
        self.acked = Some(p);
    }

    /// Marks `p`: acknowledged once every record sent so far is delivered.
    pub(super) fn push_mark(&mut self, p: P) {
        if self.is_empty() && self.marks.is_empty() {
            self.acked = Some(p);
        } else {
            self.marks.push_back((self.sent, p));
        }
    }

    /// Takes in what the callbacks recorded, without waiting.
    pub(super) fn poll_ready(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        status.kafka_looked();
        let low = {
            let mut book = self.deliveries.book();
            take_failure(&mut book)?;
            book.low
        };
        self.seen(low, status);
        Ok(())
    }

    /// Waits until the watermark reaches `target` (or a record fails). Cancel-safe: nothing
    /// is taken until the wait ends.
    async fn reach(&mut self, target: usize, status: &SourceStatus) -> Result<(), SinkError> {
        status.kafka_looked();
        let deliveries = Arc::clone(&self.deliveries);
        loop {
            let notified = deliveries.wake.notified();
            let low = {
                let mut book = deliveries.book();
                take_failure(&mut book)?;
                if book.low < target {
                    book.want = target;
                }
                book.low
            };
            self.seen(low, status);
            if low >= target {
                return Ok(());
            }
            notified.await;
        }
    }

    /// Applies a watermark seen: marks it passed are acknowledged, the status hears from
    /// Kafka.
    fn seen(&mut self, low: usize, status: &SourceStatus) {
        if low != self.low {
            status
                .metrics()
                .acked_records
                .inc_by((low - self.low) as u64);
            self.low = low;
            status.kafka_answered();
        }
        while let Some((n, _)) = self.marks.front() {
            if *n > low {
                break;
            }
            let (_, p) = self.marks.pop_front().expect("front exists");
            self.acked = Some(p);
        }
        status.metrics().in_flight.set(self.len() as i64);
    }

    /// Waits until fewer than `max` records are unacknowledged, with room to spare: the wait
    /// ends when a quarter of the bound is free, so a full queue wakes the task once per
    /// quarter rather than once per delivery.
    pub(super) async fn make_room(
        &mut self,
        max: usize,
        status: &SourceStatus,
    ) -> Result<(), SinkError> {
        self.poll_ready(status)?;
        if self.len() < max {
            return Ok(());
        }
        let target = self.sent - max * 3 / 4;
        status
            .while_waiting_for_kafka(self.reach(target, status))
            .await
    }

    /// Waits until the oldest mark is acknowledged, or everything sent is delivered when no
    /// mark waits, without beating: raced against the pipeline's own loop (which beats) and
    /// re-created on every turn of it. Cancel-safe.
    pub(super) async fn next(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        let target = self.marks.front().map_or(self.sent, |(n, _)| *n);
        self.reach(target, status).await
    }

    /// Waits until a record fails: with every position acknowledged by transaction commits
    /// (exactly-once), deliveries matter only when they fail. Cancel-safe.
    pub(super) async fn failure(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        self.reach(usize::MAX, status).await
    }

    /// Waits for every record sent.
    pub(super) async fn drain(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        self.poll_ready(status)?;
        if self.is_empty() {
            return Ok(());
        }
        let target = self.sent;
        status
            .while_waiting_for_kafka(self.reach(target, status))
            .await
    }
}

/// The first failure, once; after it every call fails.
fn take_failure(book: &mut Book) -> Result<(), SinkError> {
    if let Some(e) = book.failed.take() {
        book.poisoned = true;
        return Err(e);
    }
    if book.poisoned {
        return Err(SinkError::Client(
            "an earlier record failed (reported before)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(max: usize) -> Book {
        Book {
            low: 0,
            ahead: vec![0; window_bits(max) / 64],
            want: usize::MAX,
            failed: None,
            poisoned: false,
            sent_at: VecDeque::new(),
            latency: None,
        }
    }

    #[test]
    fn the_delivery_window_covers_the_largest_in_flight_bound_a_sink_may_be_given() {
        // A sink's tracking is sized once, for `MOST_IN_FLIGHT`; a delivery may run that far
        // ahead of the watermark without its bit aliasing the watermark's own.
        assert!(window_bits(super::super::MOST_IN_FLIGHT) > super::super::MOST_IN_FLIGHT);
    }

    #[test]
    fn the_watermark_waits_for_the_oldest_record_and_then_jumps_over_everything_delivered() {
        let mut b = book(100);
        for s in [1, 2, 3, 5] {
            b.delivered(s);
        }
        assert_eq!(b.low, 0);
        b.delivered(0);
        assert_eq!(b.low, 4);
        b.delivered(4);
        assert_eq!(b.low, 6);
    }

    #[test]
    fn the_watermark_wraps_around_its_window_without_losing_a_bit() {
        let max = 100;
        let mut b = book(max);
        let span = b.ahead.len() * 64;
        // Many windows' worth of sequence numbers, each window's worth delivered in reverse.
        let mut next = 0;
        for _ in 0..10 {
            let batch: Vec<usize> = (next..next + max).collect();
            for s in batch.iter().rev() {
                b.delivered(*s);
            }
            next += max;
            assert_eq!(b.low, next, "span {span}");
        }
    }

    #[test]
    fn a_delivery_reported_twice_or_late_changes_nothing() {
        let mut b = book(10);
        b.delivered(0);
        b.delivered(0);
        assert_eq!(b.low, 1);
        b.delivered(1);
        assert_eq!(b.low, 2);
        assert!(b.ahead.iter().all(|w| *w == 0));
    }
}
