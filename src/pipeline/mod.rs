//! The pipeline every source feeds: encoding, delivery and checkpoints, written once.
//!
//! ```text
//!                 ┌──────────────────────────── Pipeline ─────────────────────────────┐
//!  database ─▶ ChangeStream::recv ─▶ ChangeStream::handle ─▶ Publisher ─▶ Sink (Kafka) │──▶ table topics
//!  (source/*)   (cancel-safe)         (decode, emit events,  (Avro,      (group commit,│──▶ event store
//!                                      mark positions)        registry)   acks)        │──▶ offsets topic
//!     ▲           └──────────────── driver.rs: one loop for every source ─────────────┘
//!     │                                   │ stop · acknowledgements · 1 s tick · receive
//!     └── ChangeStream::durable/report ◀──┘ only positions Kafka holds durably
//! ```
//!
//! A source contributes only what is specific to its database: the setup (connections,
//! prerequisites, ownership), its snapshot, and a [`ChangeStream`] (reading, decoding, its
//! position). Everything about delivery — the group-commit rule and transaction bounds, the
//! event loop, checkpoint writes, acknowledging positions only after Kafka has them, the
//! shutdown drain, beats and in-flight metrics — lives here, so it is the same for every
//! source and is unit-tested once against an in-memory sink (`tests.rs`).

mod driver;
mod order;
pub mod snapshot;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use driver::TICK;
pub use order::TxOrder;
pub use snapshot::{Chunk, ChunkRequest, Snapshots, Watermark};
pub use stream::ChangeStream;

use crate::checkpoint::{self, Checkpoint};
use crate::config::{Delivery, MainConfig, SourceConfig};
use crate::encode::avro::ConnectorKind;
use crate::error::{Dependency, SourceError};
use crate::event::{ChangeEvent, TableSchema};
use crate::ops::status::SourceStatus;
use crate::publish::{EventMeta, PublishConfig, Publisher};
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::sink::kafka::KafkaSink;
use crate::sink::{OutRecord, Sink, TxnBounds};
use crate::topics::{self, OFFSETS_TOPIC_CONFIGS};

/// One source's way to Kafka: its publisher (encoding, topics, event store), its sink and its
/// checkpoints in the offsets topic. `S` is the sink ([`KafkaSink`] outside unit tests).
pub struct Pipeline<S: Sink> {
    publisher: Publisher<S>,
    /// `<prefix>.offsets`.
    offsets_topic: String,
    /// Source name: the key of its checkpoints.
    source: String,
    /// Exactly-once transaction bounds; `None` at least once.
    bounds: Option<TxnBounds>,
    /// The newest checkpoint written (or loaded), serialized: a checkpoint equal to it is not
    /// written again.
    written: Option<Vec<u8>>,
    /// When a checkpoint was last written (idle rewrites wait for a quiet moment).
    last_write: std::time::Instant,
    /// Snapshots taken while streaming, when the source takes them.
    snapshots: Option<Snapshots>,
    /// Whether the offsets topic was made sure of (created, or found) in this attempt; it is
    /// created only when first needed, see [`Pipeline::offsets_topic_was_missing`].
    offsets_ready: bool,
    /// Whether the offsets topic did not exist when this attempt started.
    offsets_missing: bool,
    /// `[heartbeat] interval_ms`, when on.
    heartbeat_every: Option<Duration>,
    /// When the last heartbeat was sent.
    last_heartbeat: std::time::Instant,
    /// Exactly once: the snapshot state moved while no commit could carry it (a pause or stop
    /// signal arrives inside its own source transaction, which holds no event); it is
    /// committed at the next point between source transactions.
    snapshot_unsaved: bool,
}

impl<P: Unpin + Clone + Send + Sync + 'static> Pipeline<KafkaSink<P>> {
    /// The pipeline of `source` (events carrying `connector`'s `source` block): a Kafka sink (transactional in exactly-once mode, with the
    /// source's transactional id), its publisher, the event-store and offsets topics.
    /// Transactions are not registered yet: [`Pipeline::init_transactions`] fences other
    /// writers, which only the owner of the source may do.
    pub async fn connect(
        source: &SourceConfig,
        main: &MainConfig,
        connector: ConnectorKind,
        registry: Arc<Registry>,
        status: &SourceStatus,
    ) -> Result<Self, SourceError> {
        let exactly_once = source.delivery == Delivery::ExactlyOnce;
        // One transactional id per source: a second agent on the same source fences the first
        // at init, and a paused zombie is refused at its next commit.
        let txn_id = format!("cdc-agent-{}", source.name);
        let sink = KafkaSink::new(
            &main.kafka,
            &format!("cdc-agent-{}", source.name),
            exactly_once.then_some(txn_id.as_str()),
        )?;
        let publish =
            PublishConfig {
                source: source.name.clone(),
                topic_prefix: source.topic_prefix.clone(),
                event_store_topic: topics::event_store_mirror(&main.event_store).map(str::to_owned),
                event_store_headers: main.event_store.headers,
                tombstones: source.tombstones_on_delete,
                connector,
                unavailable_value_placeholder: source.unavailable_value_placeholder.clone(),
                topic_routes: source.topic_routes.clone(),
                dead_letter_topic: main.kafka.dead_letter_topic.clone(),
                table_topic_config: main
                    .kafka
                    .topic_config
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                event_store_topic_config: topics::event_store_topic_config(&main.event_store),
                heartbeat_topic: crate::config::heartbeat_topic(source),
                json: (source.format == crate::config::OutputFormat::Json)
                    .then_some(source.json_schemas),
                outbox: source
                    .outbox
                    .clone()
                    .map(|o| Arc::new(crate::outbox::Outbox::new(o))),
                transaction_topic: source
                    .provide_transaction_metadata
                    .then(|| topics::transaction_topic(&source.topic_prefix)),
                selection: Arc::new(crate::select::Selection::from_config(source).map_err(
                    |e| SourceError::definite(format!("{}: {e}", source.file.display())),
                )?),
            };
        let bounds = exactly_once.then(|| TxnBounds {
            max_records: main.kafka.transaction_max_records.max(1),
            max_age: Duration::from_millis(main.kafka.transaction_max_ms),
        });
        let mut pipeline = Self::with_sink(
            Publisher::new(publish, sink, registry),
            topics::offsets_topic(&source.topic_prefix),
            &source.name,
            bounds,
            status,
        );
        pipeline.heartbeat_every = (source.heartbeat.interval_ms > 0)
            .then(|| Duration::from_millis(source.heartbeat.interval_ms));
        pipeline.publisher.prepare().await?;
        // A missing offsets topic is not created here: whether it existed is evidence the
        // source reads before it creates anything (a replication slot without an offsets
        // topic means the topic and the checkpoint in it were deleted). It is created before
        // the first checkpoint is written, or by the source before it takes a new position.
        let offsets = pipeline.offsets_topic.clone();
        let present = pipeline.publisher.sink().topic_exists(&offsets).await?;
        pipeline.offsets_missing = !present;
        pipeline.offsets_ready = false;
        if present {
            pipeline.ensure_offsets_topic().await?;
        }
        Ok(pipeline)
    }

    /// The newest checkpoint of this source in the offsets topic (read_committed), or `None`.
    /// It also counts as written: an equal checkpoint is not written again.
    pub async fn load_checkpoint<T>(
        &mut self,
        kafka: &crate::config::KafkaConfig,
    ) -> Result<Option<Checkpoint<T>>, SourceError>
    where
        T: DeserializeOwned + Serialize + Send + 'static,
    {
        let (kafka, topic, name) = (
            kafka.clone(),
            self.offsets_topic.clone(),
            self.source.clone(),
        );
        let loaded = self
            .publisher
            .status()
            .while_waiting(tokio::task::spawn_blocking(move || {
                checkpoint::load::<T>(&kafka, &topic, &name)
            }))
            .await
            .map_err(|e| {
                SourceError::transient(format!("checkpoint load task: {e}"))
                    .concerning(Dependency::Kafka)
            })??;
        if let Some(cp) = &loaded {
            self.written = Some(encode_checkpoint(cp)?);
            self.publisher.restore_transaction(cp.transaction.clone());
        }
        Ok(loaded)
    }

    /// The newest committed checkpoint of this source, read *before* this agent owns the
    /// source (no fencing): what it finds is committed and stays so, but it sees only what
    /// lies before the first open transaction (read_committed stops at the last stable
    /// offset), and a read that does not finish within `timeout` is [`Peeked::HeldBack`].
    /// Nothing counts as written.
    pub async fn peek_checkpoint<T>(
        &self,
        kafka: &crate::config::KafkaConfig,
        timeout: Duration,
    ) -> Result<Peeked<T>, SourceError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let (kafka, topic, name) = (
            kafka.clone(),
            self.offsets_topic.clone(),
            self.source.clone(),
        );
        match self
            .publisher
            .status()
            .while_waiting(tokio::task::spawn_blocking(move || {
                checkpoint::load_within::<T>(&kafka, &topic, &name, timeout)
            }))
            .await
            .map_err(|e| {
                SourceError::transient(format!("checkpoint load task: {e}"))
                    .concerning(Dependency::Kafka)
            })? {
            Ok(cp) => Ok(Peeked::Found(cp)),
            Err(crate::sink::SinkError::Stalled(why)) => {
                tracing::debug!(reason = %why, "checkpoint read held back");
                Ok(Peeked::HeldBack)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What [`Pipeline::peek_checkpoint`] found.
#[derive(Debug)]
pub enum Peeked<T> {
    /// The newest committed checkpoint, or `None` when the source has none.
    Found(Option<Checkpoint<T>>),
    /// The read did not finish in time: unknown for now.
    HeldBack,
}

impl<S: Sink> Pipeline<S> {
    /// A pipeline over an existing publisher (and so sink): the constructor behind
    /// [`Pipeline::connect`], and the one unit tests use with an in-memory sink.
    pub fn with_sink(
        mut publisher: Publisher<S>,
        offsets_topic: String,
        source: &str,
        bounds: Option<TxnBounds>,
        status: &SourceStatus,
    ) -> Self {
        publisher.set_status(status);
        Self {
            publisher,
            offsets_topic,
            source: source.to_string(),
            bounds,
            written: None,
            last_write: std::time::Instant::now(),
            snapshots: None,
            offsets_ready: true,
            offsets_missing: false,
            heartbeat_every: None,
            last_heartbeat: std::time::Instant::now(),
            snapshot_unsaved: false,
        }
    }

    /// Whether the offsets topic did not exist when this attempt started (the pipeline did
    /// not create it yet). With a replication slot present, it proves the checkpoint was lost
    /// with the topic: the source must not start over without `on_missing_position`.
    pub fn offsets_topic_was_missing(&self) -> bool {
        self.offsets_missing
    }

    /// The offsets topic's name (`<topic_prefix>.offsets`).
    pub fn offsets_topic(&self) -> &str {
        &self.offsets_topic
    }

    /// Creates the offsets topic if needed (`create_topics = false`: checks it exists). Done
    /// before the first checkpoint is written, and by a source before it takes a new position
    /// (so that a slot never exists without the topic that records it).
    pub async fn ensure_offsets_topic(&mut self) -> Result<(), SourceError> {
        if !self.offsets_ready {
            let topic = self.offsets_topic.clone();
            self.ensure_topic(&topic, OFFSETS_TOPIC_CONFIGS).await?;
            self.offsets_ready = true;
        }
        Ok(())
    }

    /// Where the source reports state, beats and lag.
    pub fn status(&self) -> &SourceStatus {
        self.publisher.status()
    }

    /// Whether events go into Kafka transactions with their checkpoints (exactly-once).
    pub fn exactly_once(&self) -> bool {
        self.bounds.is_some()
    }

    /// Creates a topic the source writes to besides table topics (schema history, messages).
    pub async fn ensure_topic(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
    ) -> Result<(), SourceError> {
        Ok(self.publisher.sink().ensure_topic(topic, configs).await?)
    }

    /// Registers the transactional ids, fencing every older writer of this source. Only the
    /// agent that owns the source (holds its slot or lock) may call it.
    pub async fn init_transactions(&mut self) -> Result<(), SourceError> {
        Ok(self.publisher.sink().init_transactions().await?)
    }

    /// Makes `schema` the table's current schema (registry subjects, topic) before any event
    /// of it is published.
    pub async fn set_table(
        &mut self,
        schema: TableSchema,
        stop: &mut Shutdown,
    ) -> Result<Arc<TableSchema>, SourceError> {
        self.publisher.set_table(schema, stop).await
    }

    /// Whether `[tables]` captures `table`: a table it leaves out is neither published nor
    /// snapshotted.
    pub fn captures(&self, table: &crate::event::TableId) -> bool {
        self.publisher.captures(table)
    }

    /// Publishes one event (table topic, tombstone, event store).
    pub async fn publish(
        &mut self,
        ev: &ChangeEvent<'_>,
        meta: EventMeta<'_>,
    ) -> Result<(), SourceError> {
        if let Some(s) = &mut self.snapshots {
            s.cover(ev);
        }
        self.publisher.publish(ev, meta).await
    }

    /// Sends a record of the source's own (schema history, logical decoding messages): in
    /// exactly-once mode it commits with the events around it.
    pub async fn send(&mut self, rec: OutRecord<'_>) -> Result<(), SourceError> {
        Ok(self.publisher.sink().send(rec).await?)
    }

    /// Marks a source position at the commit of source transaction `transaction` (its id as
    /// events carry it): acknowledged once everything sent before it is durable. The
    /// transaction's END record (`provide_transaction_metadata`) is sent first, so the
    /// position covers it.
    pub async fn mark(
        &mut self,
        position: S::Position,
        transaction: Option<&str>,
    ) -> Result<(), SourceError> {
        self.publisher.end_transaction(transaction).await?;
        self.publisher.outbox_transaction_ended();
        self.publisher.sink().mark(position);
        Ok(())
    }

    /// The newest durable position, without waiting.
    pub fn acked(&mut self) -> Result<Option<S::Position>, SourceError> {
        Ok(self.publisher.sink().acked()?)
    }

    /// Records (and commits) not yet durable.
    pub fn in_flight(&self) -> usize {
        self.publisher.sink_ref().in_flight()
    }

    /// Whether nothing sent is waiting to become durable: no record in flight, no transaction
    /// open. A position the source reaches now holds nothing unsent.
    pub fn settled(&self) -> bool {
        self.in_flight() == 0 && !self.publisher.sink_ref().txn_open()
    }

    /// Writes `cp` to the offsets topic (inside the open transaction in exactly-once mode) and
    /// remembers it as written.
    pub async fn write_checkpoint<T: Serialize>(
        &mut self,
        cp: &Checkpoint<T>,
    ) -> Result<(), SourceError> {
        let open = if self.exactly_once() {
            self.publisher.open_transaction()
        } else {
            None
        };
        let value = if open != cp.transaction {
            // The publisher, not the source, knows the open transaction's counts.
            let fail =
                |e: serde_json::Error| SourceError::definite(format!("encode checkpoint: {e}"));
            let mut v = serde_json::to_value(cp).map_err(fail)?;
            if let serde_json::Value::Object(m) = &mut v {
                match &open {
                    Some(o) => {
                        m.insert("transaction".into(), serde_json::to_value(o).map_err(fail)?);
                    }
                    None => {
                        m.remove("transaction");
                    }
                }
            }
            serde_json::to_vec(&v).map_err(fail)?
        } else {
            encode_checkpoint(cp)?
        };
        self.write_encoded(value).await
    }

    async fn write_encoded(&mut self, value: Vec<u8>) -> Result<(), SourceError> {
        self.ensure_offsets_topic().await?;
        self.publisher
            .sink()
            .send(OutRecord {
                topic: &self.offsets_topic,
                key: Some(self.source.as_bytes()),
                value: Some(&value),
                headers: &[],
            })
            .await?;
        self.written = Some(value);
        self.last_write = std::time::Instant::now();
        Ok(())
    }

    /// Waits until everything sent is durable (committing the open transaction); returns the
    /// newest durable position.
    pub async fn drain(&mut self) -> Result<Option<S::Position>, SourceError> {
        Ok(self.publisher.sink().drain().await?)
    }
}

/// A checkpoint as the offsets topic stores it.
fn encode_checkpoint<T: Serialize>(cp: &Checkpoint<T>) -> Result<Vec<u8>, SourceError> {
    serde_json::to_vec(cp).map_err(|e| SourceError::definite(format!("encode checkpoint: {e}")))
}
