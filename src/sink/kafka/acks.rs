//! Acknowledgement tracking: records handed to the producer and position marks, in send
//! order, resolved oldest first. A mark resolves once every record before it did, which is
//! what makes "acknowledged position" mean "everything before it is in Kafka".
//!
//! The queue is a plain `VecDeque` polled from its front, not a `FuturesOrdered`: entries
//! resolve strictly oldest first either way, and `FuturesOrdered` spends an `Arc`'d task, a
//! waker and its wake-ups on every record (about a tenth of the agent's CPU in a snapshot,
//! bench/profiles). Only the oldest entry registers a waker; a later delivery that completes
//! first is found ready when the front reaches it.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::FutureExt;
use rdkafka::producer::DeliveryFuture;
use rdkafka::Message;

use super::error::produce_error;
use super::error::SinkError;
use crate::ops::status::SourceStatus;

enum Pending<P> {
    /// The topic for an error message comes back with a failed record, so a delivery costs
    /// no allocation of ours. The instant it was handed to the producer gives the produce
    /// latency.
    Delivery(DeliveryFuture, Instant),
    Mark(Option<P>),
}

/// What one queue entry resolves to: a delivery result or a position mark, and for a
/// successful delivery the instant its record was sent.
type Resolved<P> = (Result<Option<P>, SinkError>, Option<Instant>);

impl<P: Unpin> Future for Pending<P> {
    type Output = Resolved<P>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Pending::Mark(p) => Poll::Ready((Ok(p.take()), None)),
            Pending::Delivery(fut, sent) => match Pin::new(fut).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(Ok(_))) => Poll::Ready((Ok(None), Some(*sent))),
                Poll::Ready(Ok(Err((e, msg)))) => {
                    let size =
                        msg.key().map_or(0, <[u8]>::len) + msg.payload().map_or(0, <[u8]>::len);
                    Poll::Ready((Err(produce_error(msg.topic(), size, e)), None))
                }
                Poll::Ready(Err(_canceled)) => Poll::Ready((
                    Err(SinkError::Client(
                        "producer dropped an in-flight record".into(),
                    )),
                    None,
                )),
            },
        }
    }
}

/// Deliveries and marks in send order, and the newest position whose records all resolved.
pub(super) struct AckQueue<P: Unpin> {
    queue: VecDeque<Pending<P>>,
    acked: Option<P>,
}

impl<P: Unpin + Clone> AckQueue<P> {
    pub(super) fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            acked: None,
        }
    }

    /// Polls the oldest entry; when it resolved, removes it and returns what it resolved to.
    /// `Ready(None)` when the queue is empty.
    fn poll_front(&mut self, cx: &mut Context<'_>) -> Poll<Option<Resolved<P>>> {
        let Some(front) = self.queue.front_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(front).poll(cx) {
            Poll::Ready(r) => {
                self.queue.pop_front();
                Poll::Ready(Some(r))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Waits until the oldest entry resolves (`None` at once when the queue is empty).
    /// Cancel-safe: an entry is removed only in the poll that returns it.
    async fn next_resolved(&mut self) -> Option<Resolved<P>> {
        poll_fn(|cx| self.poll_front(cx)).await
    }

    /// Entries not yet resolved.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The newest acknowledged position.
    pub(super) fn acked(&self) -> Option<P> {
        self.acked.clone()
    }

    /// A position made durable by other means (a committed transaction).
    pub(super) fn set_acked(&mut self, p: P) {
        self.acked = Some(p);
    }

    pub(super) fn push_delivery(&mut self, fut: DeliveryFuture) {
        self.queue.push_back(Pending::Delivery(fut, Instant::now()));
    }

    pub(super) fn push_mark(&mut self, p: P) {
        self.queue.push_back(Pending::Mark(Some(p)));
    }

    /// Resolves every entry that is already resolved, without waiting.
    pub(super) fn poll_ready(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        status.kafka_looked();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        while let Poll::Ready(Some(r)) = self.poll_front(&mut cx) {
            self.resolved(r, status)?;
        }
        status.metrics().in_flight.set(self.queue.len() as i64);
        Ok(())
    }

    /// Waits until the oldest entry resolves, beating while Kafka takes its time.
    pub(super) async fn settle_one(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        // The common case (under backpressure the oldest record is usually acknowledged
        // already) costs no timer; only a real wait goes through the beating one.
        let next = match self.next_resolved().now_or_never() {
            Some(r) => r,
            None => status.while_waiting_for_kafka(self.next_resolved()).await,
        };
        if let Some(r) = next {
            self.resolved(r, status)?;
        }
        status.metrics().in_flight.set(self.queue.len() as i64);
        Ok(())
    }

    /// Waits until the oldest entry resolves, without beating: raced against the pipeline's
    /// own loop (which beats) and re-created on every turn of it. Cancel-safe.
    pub(super) async fn next(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        status.kafka_looked();
        if let Some(r) = self.next_resolved().await {
            self.resolved(r, status)?;
        }
        status.metrics().in_flight.set(self.queue.len() as i64);
        Ok(())
    }

    /// Waits for every entry.
    pub(super) async fn drain(&mut self, status: &SourceStatus) -> Result<(), SinkError> {
        while !self.queue.is_empty() {
            self.settle_one(status).await?;
        }
        Ok(())
    }

    fn resolved(&mut self, (r, sent): Resolved<P>, status: &SourceStatus) -> Result<(), SinkError> {
        if sent.is_some() {
            // A delivery report (not a mark): Kafka answered.
            status.kafka_answered();
        }
        if let Some(sent) = sent {
            status
                .metrics()
                .produce_latency
                .observe(sent.elapsed().as_secs_f64());
        }
        if let Some(p) = r? {
            self.acked = Some(p);
        }
        Ok(())
    }
}
