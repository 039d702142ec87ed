//! The Kafka sink: publishes encoded records and tells the pipeline how far Kafka has
//! acknowledged. It implements [`Sink`] (see the contract there); this file holds the producer
//! and the record path, the rest is split by job:
//!
//! | file | job |
//! |---|---|
//! | `client.rs` | client configuration (every Kafka client of the agent), refused logins |
//! | `error.rs` | error classification: transient or definite, with the fix |
//! | `acks.rs` | acknowledgement tracking: deliveries and position marks in send order |
//! | `ring.rs` | exactly-once: transactions on a ring of two producers, group commit |
//! | `admin.rs` | topic administration |
//!
//! At-least-once: idempotent producer, acks=all; a marked position is acknowledged once every
//! record before it is. Exactly-once: records go into Kafka transactions and a marked position
//! is acknowledged when its transaction commits.

mod acks;
mod admin;
mod client;
mod error;
pub(crate) mod metadata;
mod ring;

use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use self::acks::{AckQueue, Producer};
use self::admin::Topics;
use self::ring::{Ring, SPARE_TXN_ID_SUFFIX};
use super::Sink;
use crate::config::KafkaConfig;
use crate::ops::status::SourceStatus;

pub use client::{base_client_config, producer_config, reach, AgentContext};
pub use error::SinkError;

/// Records waiting for acknowledgement before `send` waits. Bounds memory and keeps
/// librdkafka's own queue from ever filling. 10,000 (the exactly-once transaction bound too)
/// keeps an at-least-once backlog drain at ~55 MiB peak RSS where 50,000 reached ~135 MiB,
/// with no measurable throughput difference (bench/pg-e2e).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

/// The most records [`Sink::set_in_flight_bound`] lets wait for acknowledgement: two default
/// snapshot chunks (10,000 rows, two records a row), the one being handed over and the one
/// before it, still being sent. Queuing a chunk whole lets Kafka send it while the pipeline
/// reads the next chunk from the database: PostgreSQL snapshots ran 7-15 % faster (3M rows
/// 235k → 251k rows/s, 10M rows 206k → 237k) for 7-13 MiB more peak RSS (bench/RESULTS.md,
/// 2026-12-07); backlog drains gained nothing from a higher default and grew by 8-16 MiB, so
/// the default stays where it is.
pub const MOST_IN_FLIGHT: usize = 40_000;

/// One record to publish. Key and value are copied by librdkafka, so callers encode into
/// reusable buffers.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Key bytes; `None` for events without a key (truncate, keyless tables).
    pub key: Option<&'a [u8]>,
    /// Value bytes; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// The Kafka implementation of [`Sink`]. `P` is the source's position type.
pub struct KafkaSink<P: Unpin> {
    /// The producer records are sent with (exactly-once: the one whose transaction is open).
    producer: Producer,
    /// Exactly-once: the other producer, the open transaction, the commit in the background.
    ring: Option<Ring<P>>,
    topics: Topics,
    acks: AckQueue<P>,
    max_in_flight: usize,
    /// Where waits beat and metrics go (detached until [`Sink::set_status`]).
    status: SourceStatus,
}

impl<P: Unpin + Clone + Send + 'static> KafkaSink<P> {
    /// A sink with its own producer(s) and admin client.
    ///
    /// With `transactional_id` the sink is exactly-once: records are written inside Kafka
    /// transactions and positions are acknowledged only when their transaction commits.
    pub fn new(
        cfg: &KafkaConfig,
        client_id: &str,
        transactional_id: Option<&str>,
    ) -> Result<Self, SinkError> {
        let c = producer_config(cfg, client_id, transactional_id.is_some());
        let context = AgentContext::default();
        // Both producers of a ring report into one tracking: sequence numbers run on across
        // transactions, whichever producer sends.
        // Sized for the largest bound the sink may be given, not the default one.
        let (acks, delivery) = AckQueue::new(&context, MOST_IN_FLIGHT);
        let create = |txn_id: Option<String>| -> Result<Producer, SinkError> {
            let mut c = c.clone();
            if let Some(id) = txn_id {
                c.set("transactional.id", id);
            }
            c.create_with_context(delivery.clone())
                .map_err(|e| SinkError::Client(format!("producer: {e}")))
        };
        let producer = create(transactional_id.map(str::to_owned))?;
        let ring = match transactional_id {
            Some(id) => Some(Ring::new(create(Some(format!(
                "{id}{SPARE_TXN_ID_SUFFIX}"
            )))?)),
            None => None,
        };
        Ok(Self {
            producer,
            ring,
            topics: Topics::new(cfg, &context)?,
            acks,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            status: SourceStatus::detached(client_id),
        })
    }

    /// Queues one record. Waits while `max_in_flight` records are unacknowledged.
    async fn send_record(&mut self, rec: OutRecord<'_>) -> Result<(), SinkError> {
        if self.acks.len() >= self.max_in_flight {
            self.acks
                .make_room(self.max_in_flight, &self.status)
                .await?;
        }
        if let Some(ring) = &mut self.ring {
            ring.ensure_txn(&self.producer)?;
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(rec.topic, self.acks.next_seq());
        // Most records (table topics, tombstones, offsets) carry no headers: no header list
        // then, which saves librdkafka an allocation per record.
        if !rec.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(rec.headers.len());
            for (k, v) in rec.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(*v),
                });
            }
            record = record.headers(headers);
        }
        if let Some(k) = rec.key {
            record = record.key(k);
        }
        if let Some(v) = rec.value {
            record = record.payload(v);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.acks.sent_one();
                    self.status.kafka_owed();
                    return Ok(());
                }
                Err((e, back))
                    if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::QueueFull)) =>
                {
                    // librdkafka's queue is full (other records than ours share it only in
                    // theory): wait for deliveries, then retry the same record.
                    record = back;
                    if self.acks.is_empty() {
                        self.status.beat();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        let room = self.acks.len();
                        self.acks.make_room(room, &self.status).await?;
                    }
                }
                Err((e, _)) => {
                    let size = rec.key.map_or(0, <[u8]>::len) + rec.value.map_or(0, <[u8]>::len);
                    return Err(error::produce_error(rec.topic, size, e));
                }
            }
        }
    }
}

impl<P: Unpin + Clone + Send + Sync + 'static> Sink for KafkaSink<P> {
    type Position = P;

    fn set_status(&mut self, status: SourceStatus) {
        self.acks
            .set_latency(status.metrics().produce_latency.clone());
        self.status = status;
    }

    async fn ensure_topic(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
    ) -> Result<(), SinkError> {
        self.topics.ensure(&self.producer, topic, configs).await
    }

    async fn init_transactions(&mut self) -> Result<(), SinkError> {
        match &self.ring {
            Some(ring) => ring.init(&self.producer, &self.status).await,
            None => Ok(()),
        }
    }

    async fn send(&mut self, rec: OutRecord<'_>) -> Result<(), SinkError> {
        self.send_record(rec).await
    }

    fn record_limit(&self, topic: &str) -> Option<usize> {
        self.topics.record_limit(topic)
    }

    fn mark(&mut self, position: P) {
        match &mut self.ring {
            Some(ring) => ring.mark(position),
            None => self.acks.push_mark(position),
        }
    }

    fn acked(&mut self) -> Result<Option<P>, SinkError> {
        self.acks.poll_ready(&self.status)?;
        if let Some(ring) = &mut self.ring {
            ring.poll(&self.producer, &mut self.acks, &self.status)?;
        }
        self.note_settled();
        Ok(self.acks.acked())
    }

    async fn progress(&mut self) -> Result<Option<P>, SinkError> {
        match &mut self.ring {
            Some(ring) => {
                ring.next(&self.producer, &mut self.acks, &self.status)
                    .await?
            }
            None => self.acks.next(&self.status).await?,
        }
        self.note_settled();
        Ok(self.acks.acked())
    }

    fn set_in_flight_bound(&mut self, records: Option<usize>) {
        self.max_in_flight = records.map_or(DEFAULT_MAX_IN_FLIGHT, |n| {
            n.clamp(DEFAULT_MAX_IN_FLIGHT, MOST_IN_FLIGHT)
        });
    }

    fn in_flight(&self) -> usize {
        self.acks.len() + usize::from(self.ring.as_ref().is_some_and(Ring::committing))
    }

    fn txn_open(&self) -> bool {
        self.ring.as_ref().is_some_and(Ring::is_open)
    }

    fn txn_records(&self) -> usize {
        self.ring.as_ref().map_or(0, Ring::records)
    }

    fn txn_age(&self) -> Duration {
        self.ring.as_ref().map_or(Duration::ZERO, Ring::age)
    }

    fn commit_running(&mut self) -> Result<bool, SinkError> {
        self.acked()?;
        Ok(self.ring.as_ref().is_some_and(Ring::committing))
    }

    async fn commit(&mut self) -> Result<Option<P>, SinkError> {
        match &mut self.ring {
            Some(ring) => {
                ring.commit(&mut self.producer, &mut self.acks, &self.status)
                    .await?
            }
            None => self.acks.drain(&self.status).await?,
        }
        self.note_settled();
        Ok(self.acks.acked())
    }

    async fn drain(&mut self) -> Result<Option<P>, SinkError> {
        match &mut self.ring {
            Some(ring) => {
                ring.commit(&mut self.producer, &mut self.acks, &self.status)
                    .await?;
                ring.finish(&self.producer, &mut self.acks, &self.status)
                    .await?;
            }
            None => self.acks.drain(&self.status).await?,
        }
        self.note_settled();
        Ok(self.acks.acked())
    }
}

impl<P: Unpin + Clone + Send + 'static> KafkaSink<P> {
    /// Whether the brokers know `topic` (without creating it): only "unknown topic or
    /// partition" is `false`, other metadata trouble is an error.
    pub async fn topic_exists(&mut self, topic: &str) -> Result<bool, SinkError> {
        self.topics.exists(&self.producer, topic).await
    }

    /// Tells the status that nothing waits on Kafka when no record and no commit does (the
    /// status shows `waiting_for_kafka` while Kafka stays silent with work pending).
    fn note_settled(&self) {
        if self.acks.is_empty() && !self.ring.as_ref().is_some_and(Ring::committing) {
            self.status.kafka_settled();
        }
    }
}

impl<P: Unpin> Drop for KafkaSink<P> {
    fn drop(&mut self) {
        // What this sink waited for is abandoned with it (the attempt failed or stopped): the
        // next attempt's sink starts with nothing owed.
        self.status.kafka_settled();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_may_raise_the_in_flight_bound_only_up_to_the_sinks_own_limit_and_none_restores_it() {
        // librdkafka connects lazily: a sink is made without a broker.
        let cfg: KafkaConfig = toml::from_str(r#"bootstrap_servers = "127.0.0.1:9""#).unwrap();
        let mut sink = KafkaSink::<u64>::new(&cfg, "in-flight-test", None).unwrap();
        assert_eq!(sink.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        sink.set_in_flight_bound(Some(20_000));
        assert_eq!(sink.max_in_flight, 20_000);
        sink.set_in_flight_bound(Some(usize::MAX));
        assert_eq!(sink.max_in_flight, MOST_IN_FLIGHT);
        sink.set_in_flight_bound(Some(10));
        assert_eq!(
            sink.max_in_flight, DEFAULT_MAX_IN_FLIGHT,
            "never below the default"
        );
        sink.set_in_flight_bound(Some(MOST_IN_FLIGHT));
        sink.set_in_flight_bound(None);
        assert_eq!(sink.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    }
}
