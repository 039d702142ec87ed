//! Kafka sink: publishes encoded events and tells the source how far Kafka has acknowledged.
//!
//! ## Contract
//! - **Delivery**: at-least-once. A position handed to [`KafkaSink::mark`] is reported by
//!   [`KafkaSink::acked`] only after Kafka acknowledged (acks=all, idempotent producer) every
//!   record sent before it. Sources acknowledge that position to the database and nothing
//!   earlier, so a crash replays from the last fully acknowledged point: nothing is lost.
//! - **Ordering**: records of one key land in one partition in send order (idempotence keeps
//!   order across retries).
//! - **Backpressure**: at most `max_in_flight` records wait for acknowledgement; `send` waits
//!   for the oldest ones beyond that, so memory is bounded whatever the transaction size.
//! - **Failures**: a record Kafka refuses (too large, unauthorized, timed out after the
//!   producer's own retries) fails the sink; the source stops and restarts from its last
//!   acknowledged position. Nothing is dropped silently.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message};

use crate::config::KafkaConfig;
use crate::ops::status::SourceStatus;

/// Records waiting for acknowledgement before `send` waits. Bounds memory and keeps
/// librdkafka's own queue (sized below) from ever filling. 10,000 (the exactly-once
/// transaction bound too) keeps an at-least-once backlog drain at ~55 MiB peak RSS where
/// 50,000 reached ~135 MiB, with no measurable throughput difference (bench/pg-e2e).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// librdkafka's send queue cap in KiB. Its default (1 GiB) would defeat the memory goal.
const QUEUE_MAX_KBYTES: &str = "65536";
/// librdkafka's send queue cap in messages; above [`DEFAULT_MAX_IN_FLIGHT`] with room for the
/// event-store mirror of each record.
const QUEUE_MAX_MESSAGES: &str = "200000";
/// How long librdkafka retries one record before reporting it failed.
const MESSAGE_TIMEOUT_MS: &str = "120000";
/// `linger.ms` at least-once: records wait up to 5 ms to share a request, which keeps
/// requests large under load; nothing waits on the last batch except its own latency.
const LINGER_MS: &str = "5";
/// `linger.ms` exactly-once. Every commit first waits for all its records' acknowledgements,
/// and with a longer linger that wait starts with the last batch of each partition idling out
/// its linger while the source is not read. Measured at 10k rows/s (bench/RESULTS.md,
/// session 4): p50/p99 commit→visible 12–13 / 26–34 ms with 1 ms against 18–19 / 45–60 ms
/// with 5 ms, and the same backlog throughput (transactions of up to 50,000 records fill
/// whole batches); 0 ms sent many tiny requests and was slower on both counts.
const TXN_LINGER_MS: &str = "1";
/// Timeout of admin operations (topic creation).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A sink failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A record is larger than the producer or broker allows. Definite.
    #[error(
        "record for topic `{topic}` is too large ({size} bytes): {source}; fix: raise \
         `message.max.bytes` in [kafka.properties] and the topic's `max.message.bytes`"
    )]
    TooLarge {
        /// Topic.
        topic: String,
        /// Key plus value size.
        size: usize,
        /// Kafka's error.
        source: KafkaError,
    },
    /// Kafka refused or could not take a record.
    #[error("kafka produce to `{topic}` failed: {source}")]
    Produce {
        /// Topic.
        topic: String,
        /// Kafka's error.
        source: KafkaError,
    },
    /// Client creation or an admin operation failed.
    #[error("kafka: {0}")]
    Client(String),
    /// `create_topics = false` and a topic the source needs does not exist. Definite.
    #[error(
        "topic `{0}` does not exist and [kafka] create_topics = false; fix: create it (see \
         docs/event-store.md for the event store's settings) or set create_topics = true"
    )]
    MissingTopic(String),
    /// Another producer with the same `transactional.id` took over: this agent is a zombie
    /// and must stop without writing anything more. Definite.
    #[error(
        "fenced: another cdc-agent took over this source's transactional id ({0}); this \
         process stops without writing"
    )]
    Fenced(String),
    /// The brokers refused our credentials or our TLS handshake (wrong SASL password or
    /// mechanism, untrusted broker certificate). Definite: retrying cannot fix it.
    #[error(
        "kafka refused the connection: {0}; fix: check [kafka] security_protocol, \
         sasl_mechanism, sasl_username and sasl_password (or sasl_password_file) and, with \
         TLS, ssl_ca_location"
    )]
    Auth(String),
    /// A Kafka transaction failed and was aborted; nothing of it is visible to
    /// read_committed consumers. Transient: the source resumes from the last committed offset.
    #[error("kafka transaction aborted: {0}")]
    Aborted(String),
}

impl SinkError {
    /// Whether restarting the pipeline may succeed without operator action.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::TooLarge { .. } => false,
            SinkError::Produce { source, .. } => !matches!(
                source.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed
                        | RDKafkaErrorCode::MessageSizeTooLarge
                        | RDKafkaErrorCode::InvalidRecord
                )
            ),
            SinkError::Client(_) | SinkError::Aborted(_) => true,
            SinkError::Fenced(_) | SinkError::MissingTopic(_) | SinkError::Auth(_) => false,
        }
    }
}

/// The librdkafka settings every client of ours shares (producer, admin, checkpoint loader,
/// ledger tools, tail): bootstrap servers, the `[kafka]` security keys, then the operator's
/// `[kafka.properties]`, which win.
///
/// The returned config holds secrets: never log it (rdkafka's `Debug` prints every value).
pub fn base_client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers);
    c.set("security.protocol", cfg.security_protocol.as_str());
    if let Some(m) = cfg.sasl_mechanism {
        c.set("sasl.mechanism", m.as_str());
    }
    if let Some(u) = &cfg.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &cfg.sasl_password {
        c.set("sasl.password", p.expose());
    }
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    if let Some(p) = &cfg.ssl_ca_location {
        c.set("ssl.ca.location", path(p));
    }
    if let Some(p) = &cfg.ssl_certificate_location {
        c.set("ssl.certificate.location", path(p));
    }
    if let Some(p) = &cfg.ssl_key_location {
        c.set("ssl.key.location", path(p));
    }
    if let Some(p) = &cfg.ssl_key_password {
        c.set("ssl.key.password", p.expose());
    }
    for (k, v) in &cfg.properties {
        c.set(k, v.expose());
    }
    c
}

/// How long one metadata request of [`KafkaSink::reach_brokers`] may take before the
/// client's error callback is consulted again.
const REACH_ATTEMPT: Duration = Duration::from_secs(1);

/// librdkafka client context of the sink's clients: logs client errors through `tracing`
/// and remembers the ones only an operator can fix (authentication, TLS certificates).
#[derive(Clone, Default)]
pub struct AgentContext {
    refused: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl AgentContext {
    /// The first authentication or certificate failure librdkafka reported, if any.
    pub fn refused(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Waits until the brokers answer a metadata request from `client`, for at most `timeout`. A
/// login the brokers refuse is a definite [`SinkError::Auth`] at once, instead of requests that
/// time out (librdkafka reports it only through its error callback and keeps retrying).
/// Blocking: call it from `spawn_blocking` (or `block_in_place`) in async code.
pub fn reach<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    context: &AgentContext,
    timeout: Duration,
) -> Result<(), SinkError> {
    let started = std::time::Instant::now();
    loop {
        let answer = client.fetch_metadata(None, REACH_ATTEMPT).map(drop);
        if let Some(why) = context.refused() {
            return Err(SinkError::Auth(why));
        }
        match answer {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() >= timeout => {
                return Err(SinkError::Client(format!("brokers unreachable: {e}")))
            }
            Err(_) => {}
        }
    }
}

impl ClientContext for AgentContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let definite = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) => true,
            Some(RDKafkaErrorCode::SSL) => crate::net::tls::is_certificate_failure(reason),
            _ => false,
        };
        if definite {
            tracing::error!(error = %error, reason, "kafka refused the connection");
            self.refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| reason.to_string());
        } else {
            tracing::warn!(error = %error, reason, "kafka client error");
        }
    }
}

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

enum Pending<P> {
    /// The topic for an error message comes back with a failed record, so a delivery costs
    /// no allocation of ours. The instant it was handed to the producer gives the produce
    /// latency.
    Delivery(DeliveryFuture, std::time::Instant),
    Mark(Option<P>),
}

/// What one queue entry resolves to: a delivery result or a position mark, and for a
/// successful delivery the instant its record was sent.
type Resolved<P> = (Result<Option<P>, SinkError>, Option<std::time::Instant>);

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

fn produce_error(topic: &str, size: usize, e: KafkaError) -> SinkError {
    if matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
    ) {
        SinkError::TooLarge {
            topic: topic.to_string(),
            size,
            source: e,
        }
    } else {
        SinkError::Produce {
            topic: topic.to_string(),
            source: e,
        }
    }
}

/// At-least-once Kafka publisher with in-order acknowledgement tracking. `P` is the source's
/// position type.
pub struct KafkaSink<P: Unpin> {
    /// The producer records are sent with (exactly-once: the one whose transaction is open).
    producer: FutureProducer<AgentContext>,
    /// Exactly-once: the other producer of a ring of two, see [`KafkaSink::commit`].
    spare: Option<FutureProducer<AgentContext>>,
    /// Exactly-once: the transaction being committed in the background by the spare.
    committing: Option<Committing<P>>,
    admin: AdminClient<AgentContext>,
    /// Authentication/TLS failures seen by any of the clients.
    context: AgentContext,
    /// Whether the brokers accepted a metadata request (credentials checked).
    reached: bool,
    queue: FuturesOrdered<Pending<P>>,
    max_in_flight: usize,
    acked: Option<P>,
    topics_known: HashMap<String, ()>,
    partitions: i32,
    replication: i32,
    create_topics: bool,
    txn: Option<TxnState<P>>,
    /// Where waits beat and metrics go (detached until [`KafkaSink::set_status`]).
    status: SourceStatus,
}

/// Bookkeeping of the open Kafka transaction (exactly-once mode).
struct TxnState<P> {
    open: bool,
    records: usize,
    opened_at: std::time::Instant,
    /// The newest position marked inside the open transaction; acknowledged at commit.
    pending: Option<P>,
}

/// A commit running on a blocking thread while the next transaction fills.
struct Committing<P> {
    handle: tokio::task::JoinHandle<Result<(), KafkaError>>,
    /// Acknowledged when the commit succeeds.
    position: Option<P>,
    /// The producer committing, to abort its transaction if the commit fails.
    producer: FutureProducer<AgentContext>,
}

/// Bounds of one Kafka transaction in exactly-once mode (`[kafka] transaction_max_records`,
/// `transaction_max_ms`).
#[derive(Debug, Clone, Copy)]
pub struct TxnBounds {
    /// Commit after this many records.
    pub max_records: usize,
    /// Commit after this long under load.
    pub max_age: Duration,
}

/// How long transactional calls (init, commit, abort) may take before they count as failed.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

impl<P: Unpin + Clone> KafkaSink<P> {
    /// An idempotent producer (acks=all) configured for bounded memory and Java-compatible
    /// partitioning.
    ///
    /// With `transactional_id` the sink is exactly-once: records are written inside Kafka
    /// transactions and positions are acknowledged only when their transaction commits.
    pub fn new(
        cfg: &KafkaConfig,
        client_id: &str,
        transactional_id: Option<&str>,
    ) -> Result<Self, SinkError> {
        let mut c = base_client_config(cfg);
        c.set("client.id", client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &cfg.compression)
            .set(
                "linger.ms",
                if transactional_id.is_some() {
                    TXN_LINGER_MS
                } else {
                    LINGER_MS
                },
            )
            .set("batch.size", "1000000")
            // Keys land in the partition Java clients (and Debezium) would choose.
            .set("partitioner", "murmur2_random")
            .set("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES)
            .set("queue.buffering.max.messages", QUEUE_MAX_MESSAGES)
            .set("message.timeout.ms", MESSAGE_TIMEOUT_MS);
        if transactional_id.is_some() {
            c.set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
        }
        // Operator properties win over ours (they were set first; set them again).
        for (k, v) in &cfg.properties {
            c.set(k, v.expose());
        }
        let context = AgentContext::default();
        let create = |txn_id: Option<String>| -> Result<FutureProducer<AgentContext>, SinkError> {
            let mut c = c.clone();
            if let Some(id) = txn_id {
                c.set("transactional.id", id);
            }
            c.create_with_context(context.clone())
                .map_err(|e| SinkError::Client(format!("producer: {e}")))
        };
        let producer = create(transactional_id.map(str::to_owned))?;
        let spare = match transactional_id {
            Some(id) => Some(create(Some(format!("{id}{SPARE_TXN_ID_SUFFIX}")))?),
            None => None,
        };
        let admin = base_client_config(cfg)
            .create_with_context(context.clone())
            .map_err(|e| SinkError::Client(format!("admin client: {e}")))?;
        Ok(Self {
            producer,
            spare,
            committing: None,
            admin,
            context,
            reached: false,
            queue: FuturesOrdered::new(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            acked: None,
            topics_known: HashMap::new(),
            partitions: cfg.topic_partitions,
            replication: cfg.topic_replication_factor,
            create_topics: cfg.create_topics,
            txn: transactional_id.map(|_| TxnState {
                open: false,
                records: 0,
                opened_at: std::time::Instant::now(),
                pending: None,
            }),
            status: SourceStatus::detached(client_id),
        })
    }

    /// Reports into `status`: produce latency, in-flight records, transactions, and beats
    /// while waiting for Kafka (a broker outage is waited out, not a stalled pipeline).
    pub fn set_status(&mut self, status: SourceStatus) {
        self.status = status;
    }

    /// Whether this sink writes in Kafka transactions.
    pub fn is_transactional(&self) -> bool {
        self.txn.is_some()
    }

    /// Registers the transactional ids with the broker, fencing any older producer that used
    /// them (a zombie agent) and aborting what it left open. Call once before sending.
    pub async fn init_transactions(&self) -> Result<(), SinkError> {
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

    /// Records in the open transaction (0 when none is open).
    pub fn txn_records(&self) -> usize {
        self.txn
            .as_ref()
            .filter(|t| t.open)
            .map_or(0, |t| t.records)
    }

    /// Age of the open transaction.
    pub fn txn_age(&self) -> Duration {
        self.txn
            .as_ref()
            .filter(|t| t.open)
            .map_or(Duration::ZERO, |t| t.opened_at.elapsed())
    }

    /// Whether a transaction is open.
    pub fn txn_open(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.open)
    }

    fn ensure_txn(&mut self) -> Result<(), SinkError> {
        if let Some(t) = &mut self.txn {
            if !t.open {
                self.producer
                    .begin_transaction()
                    .map_err(|e| txn_error("begin transaction", e))?;
                t.open = true;
                t.records = 0;
                t.opened_at = std::time::Instant::now();
            }
            t.records += 1;
        }
        Ok(())
    }

    /// The group-commit rule of an exactly-once stream loop, asked once per loop turn.
    ///
    /// With a transaction open and within `bounds`, `peek` looks for the next source item
    /// without waiting (it must be cancel-safe). The answer is that item, if one was waiting,
    /// and whether to commit now: when the bounds are reached, or when nothing more is waiting
    /// and no earlier commit still runs. While an earlier commit runs, the open transaction
    /// keeps filling instead: that is what lets transactions grow with the load (with the ring
    /// of two producers, a commit per quiet moment would make them a few records each), and a
    /// quiet system still sees its changes within milliseconds.
    pub fn group_commit<T>(
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

    /// Commits the open transaction and returns the newest acknowledged position.
    ///
    /// Waits for every record's delivery (so the next transaction's records land after
    /// these in every partition), then hands the commit to a blocking thread and switches to
    /// the other producer of the ring: the next transaction fills while this one commits, and
    /// the coordinator never sees it start while this one's markers are still being written
    /// (which it answers with `CONCURRENT_TRANSACTIONS` and a 20 ms client back-off). Commits
    /// stay in order: the next one starts only after this one succeeded, and if this one
    /// fails the next is aborted with it. The marked position is acknowledged once the commit
    /// succeeds ([`KafkaSink::acked`], [`KafkaSink::progress`], [`KafkaSink::drain`]).
    pub async fn commit(&mut self) -> Result<Option<P>, SinkError> {
        let Some(t) = &self.txn else {
            self.drain_queue().await?;
            return Ok(self.acked.clone());
        };
        if !t.open {
            return Ok(self.acked.clone());
        }
        let started = std::time::Instant::now();
        if let Err(e) = self.drain_queue().await {
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
        Ok(self.acked.clone())
    }

    /// Whether the previous transaction's commit is still running (looked at without
    /// waiting). While it runs, a source keeps filling the open transaction instead of
    /// queueing another commit behind it: that is what lets transactions grow with the load
    /// (with the ring, a commit per quiet moment would otherwise make them a few records each).
    pub fn commit_running(&mut self) -> Result<bool, SinkError> {
        self.acked()?;
        Ok(self.committing.is_some())
    }

    /// Waits for the commit running in the background, if any, and applies its outcome.
    async fn finish_commit(&mut self) -> Result<(), SinkError> {
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

    /// Waits until the brokers answer a metadata request, so that a refused login is a
    /// definite [`SinkError::Auth`] at start instead of requests that time out forever
    /// (librdkafka reports it only through its error callback and keeps retrying).
    pub async fn reach_brokers(&mut self) -> Result<(), SinkError> {
        if self.reached {
            return Ok(());
        }
        let (producer, context) = (self.producer.clone(), self.context.clone());
        tokio::task::spawn_blocking(move || reach(producer.client(), &context, ADMIN_TIMEOUT))
            .await
            .map_err(|e| SinkError::Client(format!("metadata task: {e}")))??;
        self.reached = true;
        Ok(())
    }

    /// Creates `topic` unless it exists, with the given topic configs.
    pub async fn ensure_topic(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
    ) -> Result<(), SinkError> {
        if self.topics_known.contains_key(topic) {
            return Ok(());
        }
        self.reach_brokers().await?;
        if !self.create_topics {
            let md = self
                .producer
                .client()
                .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
                .map_err(|e| SinkError::Client(format!("metadata of `{topic}`: {e}")))?;
            let exists = md
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
            if !exists {
                return Err(SinkError::MissingTopic(topic.to_string()));
            }
            self.topics_known.insert(topic.to_string(), ());
            return Ok(());
        }
        let mut new = NewTopic::new(
            topic,
            self.partitions,
            TopicReplication::Fixed(self.replication),
        );
        for (k, v) in configs {
            new = new.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        let res = self
            .admin
            .create_topics(&[new], &opts)
            .await
            .map_err(|e| SinkError::Client(format!("create topic `{topic}`: {e}")))?;
        for r in res {
            match r {
                Ok(_) => tracing::info!(topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(SinkError::Client(format!(
                        "create topic `{topic}`: {code}; fix: create it yourself or grant \
                         CREATE on the cluster to the agent's principal"
                    )))
                }
            }
        }
        self.topics_known.insert(topic.to_string(), ());
        Ok(())
    }

    /// Queues one record. Waits while `max_in_flight` records are unacknowledged.
    pub async fn send(&mut self, rec: OutRecord<'_>) -> Result<(), SinkError> {
        while self.queue.len() >= self.max_in_flight {
            self.settle_one().await?;
        }
        self.ensure_txn()?;
        let size = rec.key.map_or(0, <[u8]>::len) + rec.value.map_or(0, <[u8]>::len);
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(rec.topic);
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
            match self.producer.send_result(record) {
                Ok(fut) => {
                    self.queue
                        .push_back(Pending::Delivery(fut, std::time::Instant::now()));
                    self.status.metrics().in_flight.set(self.queue.len() as i64);
                    return Ok(());
                }
                Err((e, back))
                    if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::QueueFull)) =>
                {
                    // librdkafka's queue is full (other records than ours share it only in
                    // theory): wait for the oldest delivery, then retry the same record.
                    record = back;
                    if self.queue.is_empty() {
                        self.status.beat();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.settle_one().await?;
                    }
                }
                Err((e, _)) => return Err(produce_error(rec.topic, size, e)),
            }
        }
    }

    /// Marks `position`: once every record sent before this call is acknowledged,
    /// [`KafkaSink::acked`] reports it.
    ///
    /// In exactly-once mode the position is acknowledged when the transaction holding the
    /// records before it commits (see [`KafkaSink::commit`]).
    pub fn mark(&mut self, position: P) {
        match &mut self.txn {
            Some(t) => t.pending = Some(position),
            None => self.queue.push_back(Pending::Mark(Some(position))),
        }
    }

    /// The newest position whose preceding records are all acknowledged, without waiting.
    pub fn acked(&mut self) -> Result<Option<P>, SinkError> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        while let Poll::Ready(Some(r)) = self.queue.poll_next_unpin(&mut cx) {
            self.resolved(r)?;
        }
        self.status.metrics().in_flight.set(self.queue.len() as i64);
        if let Some(c) = &mut self.committing {
            if let Poll::Ready(joined) = Pin::new(&mut c.handle).poll(&mut cx) {
                self.complete_commit(joined)?;
            }
        }
        Ok(self.acked.clone())
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
                    self.acked = Some(p);
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

    /// Waits until the oldest queued entry resolves, beating while Kafka takes its time.
    async fn settle_one(&mut self) -> Result<(), SinkError> {
        // The common case (under backpressure the oldest record is usually acknowledged
        // already) costs no timer; only a real wait goes through the beating one.
        let next = match self.queue.next().now_or_never() {
            Some(r) => r,
            None => {
                let status = self.status.clone();
                status.while_waiting(self.queue.next()).await
            }
        };
        if let Some(r) = next {
            self.resolved(r)?;
        }
        self.status.metrics().in_flight.set(self.queue.len() as i64);
        Ok(())
    }

    fn resolved(&mut self, (r, sent): Resolved<P>) -> Result<(), SinkError> {
        if let Some(sent) = sent {
            self.status
                .metrics()
                .produce_latency
                .observe(sent.elapsed().as_secs_f64());
        }
        if let Some(p) = r? {
            self.acked = Some(p);
        }
        Ok(())
    }

    /// Waits until the next queued entry or the background commit resolves; returns at once
    /// when nothing is pending. Used by the source's select loop to learn about
    /// acknowledgements promptly.
    pub async fn progress(&mut self) -> Result<Option<P>, SinkError> {
        if let Some(c) = &mut self.committing {
            let joined = if self.queue.is_empty() {
                Some((&mut c.handle).await)
            } else {
                tokio::select! {
                    j = &mut c.handle => Some(j),
                    r = self.queue.next() => {
                        if let Some(r) = r {
                            self.resolved(r)?;
                        }
                        None
                    }
                }
            };
            if let Some(j) = joined {
                self.complete_commit(j)?;
            }
        } else if let Some(r) = self.queue.next().await {
            // Raced against the source's own loop (which beats), and re-created on every
            // turn of it: no heartbeat timer here.
            self.resolved(r)?;
        }
        self.status.metrics().in_flight.set(self.queue.len() as i64);
        Ok(self.acked.clone())
    }

    /// Records sent but not yet acknowledged (marks and a running commit included).
    pub fn in_flight(&self) -> usize {
        self.queue.len() + usize::from(self.committing.is_some())
    }

    /// Waits for every queued record; returns the newest acknowledged position. In
    /// exactly-once mode this commits the open transaction.
    pub async fn drain(&mut self) -> Result<Option<P>, SinkError> {
        if self.txn.is_some() {
            self.commit().await?;
            self.finish_commit().await?;
            return Ok(self.acked.clone());
        }
        self.drain_queue().await?;
        Ok(self.acked.clone())
    }

    async fn drain_queue(&mut self) -> Result<(), SinkError> {
        while !self.queue.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }

    /// Flushes librdkafka's queue (shutdown path).
    pub fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        self.producer
            .flush(timeout)
            .map_err(|e| SinkError::Client(format!("flush: {e}")))
    }
}

/// Suffix of the second transactional id of a source's producer ring.
const SPARE_TXN_ID_SUFFIX: &str = ".1";

/// Longest wait in [`settle_out_queue`] before committing anyway.
const OUT_QUEUE_SETTLE: Duration = Duration::from_millis(20);

/// Waits (briefly) until librdkafka counts no outstanding message or delivery report.
///
/// When [`KafkaSink::commit`] gets here every delivery of the transaction has resolved, but
/// librdkafka still counts a delivery report until the producer's polling thread has released
/// it. rdkafka's `commit_transaction` flushes first, and a flush that finds any count left
/// polls for a full 100 ms: measured, that stalled about one commit in three by exactly 100 ms
/// and made it most of the exactly-once commit→visible latency (bench/pg-e2e). The count
/// reaches zero within microseconds; then the flush returns at once.
fn settle_out_queue(producer: &FutureProducer<AgentContext>) {
    let start = std::time::Instant::now();
    while producer.in_flight_count() > 0 && start.elapsed() < OUT_QUEUE_SETTLE {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Maps a transactional API error: fencing is definite, everything else aborts the
/// transaction and is retried from the last committed offset.
fn txn_error(what: &str, e: KafkaError) -> SinkError {
    let fenced = match &e {
        KafkaError::Transaction(r) => {
            r.is_fatal()
                || matches!(
                    r.code(),
                    RDKafkaErrorCode::Fenced
                        | RDKafkaErrorCode::ProducerFenced
                        | RDKafkaErrorCode::InvalidProducerEpoch
                )
        }
        _ => matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced)
        ),
    };
    if fenced {
        SinkError::Fenced(format!("{what}: {e}"))
    } else {
        SinkError::Aborted(format!("{what}: {e}"))
    }
}

/// Transaction timeout: the broker aborts a transaction open longer than this, which also
/// bounds how long a snapshot (one transaction in exactly-once mode) may take. Brokers cap it
/// at `transaction.max.timeout.ms` (15 minutes by default).
const TRANSACTION_TIMEOUT_MS: &str = "900000";

/// Topic configs of the event store: history is kept forever.
pub const EVENT_STORE_TOPIC_CONFIGS: &[(&str, &str)] =
    &[("retention.ms", "-1"), ("retention.bytes", "-1")];
