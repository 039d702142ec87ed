//! From change events to Kafka records, for any source: schema registration, Avro encoding,
//! the table topic, the tombstone after a delete, and the event-store (ledger) mirror.
//!
//! ```text
//! ChangeEvent ─▶ TableCodec (Avro, Confluent framing) ─▶ <prefix>.<schema>.<table>   key = primary key
//!                                                    └─▶ event store                key = source/table/key
//! ```
//!
//! Event-store records carry the same Avro bytes as the table topic, so a ledger reader
//! decodes them with the same registry schemas. Their key is
//! `<source>/<schema>.<table>/<key JSON>` (see docs/event-store.md): one row's history stays in
//! one partition, in order, whatever the key schema's id. Tombstones are not mirrored: the
//! ledger keeps history.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use crate::checkpoint::OpenTransaction;
use crate::encode::avro::{CodecOptions, ConnectorKind, TableCodec};
use crate::encode::json::JsonCodec;
use crate::error::SourceError;
use crate::event::{ChangeEvent, Datum, Op, TableId, TableSchema};
use crate::ops::metrics::{DeadReason, TableMetrics};
use crate::ops::status::SourceStatus;
use crate::outbox::{Outbox, OutboxColumns};
use crate::registry::Registry;
use crate::select::{Projection, Selection};
use crate::shutdown::Shutdown;
use crate::sink::{OutRecord, Sink};
use crate::topics;

mod dead_letter;
mod fixed;
mod key;

pub use dead_letter::record_size;
use dead_letter::{send_or_divert, DeadLetter, Diverted};
use fixed::{as_json, register_fixed, HeartbeatTopic, TxnTopic};
pub use key::{datum_json, key_json};

/// Separator inside event-store keys. `/` cannot appear in a source name and is rare in
/// identifiers; the key JSON comes last, so it may contain anything.
const KEY_SEP: u8 = b'/';

/// Settings of a publisher, taken from the source and main configuration.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Source name (event-store keys, headers).
    pub source: String,
    /// Topic prefix: `<prefix>.<schema>.<table>`, also the Avro namespace prefix.
    pub topic_prefix: String,
    /// Event-store topic, when mirroring is on.
    pub event_store_topic: Option<String>,
    /// Event-store records carry the six `cdc.*` headers (`[event_store] headers`).
    pub event_store_headers: bool,
    /// Emit a tombstone after every delete.
    pub tombstones: bool,
    /// Which connector's `source` block events carry.
    pub connector: ConnectorKind,
    /// Placeholder of unchanged TOASTed values.
    pub unavailable_value_placeholder: String,
    /// Topic overrides by `schema.table`.
    pub topic_routes: std::collections::BTreeMap<String, String>,
    /// Where events Kafka cannot take go (`[kafka] dead_letter_topic`); `None`: they stop the
    /// source.
    pub dead_letter_topic: Option<String>,
    /// Topic configs of the table topics it creates (`[kafka.topic_config]`).
    pub table_topic_config: Vec<(String, String)>,
    /// Topic configs of the event store when it creates it: kept forever, then
    /// `[event_store.topic_config]`.
    pub event_store_topic_config: Vec<(String, String)>,
    /// Which tables are published, and how their rows and keys look (`[tables]`,
    /// `[columns]`, `[message_key_columns]`).
    pub selection: Arc<Selection>,
    /// The transaction metadata topic (`provide_transaction_metadata`), when on.
    pub transaction_topic: Option<String>,
    /// The heartbeat topic (`[heartbeat] interval_ms`), when on.
    pub heartbeat_topic: Option<String>,
    /// The outbox table whose inserts are routed (`[outbox]`), when there is one.
    pub outbox: Option<Arc<Outbox>>,
    /// `format = "json"`: `Some(json_schemas)`; `None`: Avro through the registry.
    pub json: Option<bool>,
}

/// Topic configs as the sink takes them.
fn config_refs(configs: &[(String, String)]) -> Vec<(&str, &str)> {
    configs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// What Kafka adds around a record's key, value and headers (batch and record headers,
/// varints), counted generously: a record this close to its topic's limit is diverted rather
/// than risked.
pub const RECORD_FRAMING_BYTES: usize = 256;

struct TableEntry {
    /// The schema the source gave, returned to it.
    source_schema: Arc<TableSchema>,
    /// The published schema: the source's, or its projection.
    schema: Arc<TableSchema>,
    /// Columns left out or masked, another key; `None`: rows are published as they come.
    projection: Option<Projection>,
    /// The outbox table: its inserts are routed instead of going to a table topic.
    outbox: Option<OutboxColumns>,
    /// `format = "json"`: the Connect JSON of the Avro records.
    json: Option<JsonCodec>,
    codec: TableCodec,
    topic: String,
    key_id: Option<u32>,
    value_id: u32,
    table_header: String,
    metrics: TableMetrics,
    /// Why the registry refused this schema, when it did and a dead-letter topic takes the
    /// table's events instead.
    rejected: Option<String>,
}

/// Positions and context the source attaches to each event's headers.
#[derive(Debug, Clone, Copy)]
pub struct EventMeta<'a> {
    /// Source position, e.g. the LSN as `X/X`.
    pub position: &'a str,
    /// Source transaction id, when there is one.
    pub txid: Option<&'a str>,
    /// Commit time in milliseconds since the epoch.
    pub commit_ms: i64,
}

/// Encodes and publishes events. One per source, inside its [`crate::pipeline::Pipeline`];
/// owns the source's sink.
pub struct Publisher<S> {
    cfg: PublishConfig,
    sink: S,
    registry: Arc<Registry>,
    tables: HashMap<TableId, TableEntry>,
    /// Tables `[tables]` leaves out: their events are not published.
    skipped: HashMap<TableId, Arc<TableSchema>>,
    /// `provide_transaction_metadata`: set up by [`Publisher::prepare`].
    txn: Option<TxnTopic>,
    /// A transaction a checkpoint recorded as open, until `prepare` sets the topic up.
    restored_txn: Option<OpenTransaction>,
    /// `[heartbeat]`: set up by [`Publisher::prepare`].
    heartbeat: Option<HeartbeatTopic>,
    /// Outbox topics made sure of, with their key and value schema ids.
    outbox_topics: HashMap<String, (u32, u32)>,
    /// The JSON of a record being built (`format = "json"`).
    json_buf: Vec<u8>,
    /// Ids of outbox rows routed in the source transaction being published
    /// (`delete_after_capture`).
    outbox_sent: Vec<String>,
    /// Ids of outbox rows routed in source transactions already marked: durable at the next
    /// commit.
    outbox_marked: Vec<String>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    store_key_buf: Vec<u8>,
    num_buf: String,
    /// The dead-letter record being built (key, then value).
    dead_key_buf: Vec<u8>,
    dead_value_buf: Vec<u8>,
    status: SourceStatus,
}

impl<S: Sink> Publisher<S> {
    /// A publisher over `sink`.
    pub fn new(cfg: PublishConfig, sink: S, registry: Arc<Registry>) -> Self {
        Self {
            cfg,
            sink,
            registry,
            tables: HashMap::new(),
            skipped: HashMap::new(),
            txn: None,
            restored_txn: None,
            heartbeat: None,
            outbox_topics: HashMap::new(),
            json_buf: Vec::new(),
            outbox_sent: Vec::new(),
            outbox_marked: Vec::new(),
            key_buf: Vec::with_capacity(256),
            value_buf: Vec::with_capacity(4096),
            store_key_buf: Vec::with_capacity(256),
            num_buf: String::new(),
            dead_key_buf: Vec::new(),
            dead_value_buf: Vec::new(),
            status: SourceStatus::detached(""),
        }
    }

    /// Reports into `status` (and so into the metrics): events by table and op, bytes, and
    /// the sink's produce latency, in-flight records and transactions. Call before the first
    /// [`Publisher::set_table`], so every table's counters are registered.
    pub fn set_status(&mut self, status: &SourceStatus) {
        self.status = status.clone();
        self.sink.set_status(status.clone());
    }

    /// Where the source reports state, beats and lag.
    pub fn status(&self) -> &SourceStatus {
        &self.status
    }

    /// The sink, for the pipeline's delivery rules.
    pub fn sink(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The sink, read-only.
    pub fn sink_ref(&self) -> &S {
        &self.sink
    }

    /// Creates the event-store and dead-letter topics if needed.
    pub async fn prepare(&mut self) -> Result<(), SourceError> {
        if let Some(t) = &self.cfg.event_store_topic {
            self.sink
                .ensure_topic(t, &config_refs(&self.cfg.event_store_topic_config))
                .await?;
        }
        if let Some(t) = self.cfg.dead_letter_topic.clone() {
            self.sink.ensure_topic(&t, &[]).await?;
        }
        if let Some(topic) = self.cfg.transaction_topic.clone() {
            self.sink
                .ensure_topic(&topic, &config_refs(&self.cfg.table_topic_config))
                .await?;
            let (key_id, value_id, json) = self
                .fixed_schemas(
                    &topic,
                    crate::encode::txn::KEY_SCHEMA,
                    crate::encode::txn::VALUE_SCHEMA,
                )
                .await?;
            self.txn = Some(TxnTopic {
                topic,
                codec: crate::encode::txn::TxnCodec::new(),
                key_id,
                value_id,
                open: self.restored_txn.take(),
                json,
            });
        }
        if let Some(topic) = self.cfg.heartbeat_topic.clone() {
            self.sink.ensure_topic(&topic, &[]).await?;
            let (key_id, value_id, json) = self
                .fixed_schemas(
                    &topic,
                    crate::encode::heartbeat::KEY_SCHEMA,
                    crate::encode::heartbeat::VALUE_SCHEMA,
                )
                .await?;
            let key = crate::encode::heartbeat::key(&self.cfg.topic_prefix, key_id)
                .map_err(|e| SourceError::definite(format!("heartbeat key: {e}")))?;
            self.heartbeat = Some(HeartbeatTopic {
                topic,
                key,
                value_id,
                json,
            });
        }
        Ok(())
    }

    /// The schema ids of one of the agent's fixed-schema topics: registered (Avro), or none
    /// and a JSON codec (`format = "json"`).
    async fn fixed_schemas(
        &self,
        topic: &str,
        key: &str,
        value: &str,
    ) -> Result<(u32, u32, Option<JsonCodec>), SourceError> {
        match self.cfg.json {
            Some(schemas) => {
                let codec = JsonCodec::new(Some(key), value, schemas)
                    .map_err(|e| SourceError::definite(format!("{topic}: JSON encoding: {e}")))?;
                Ok((0, 0, Some(codec)))
            }
            None => Ok((
                register_fixed(&self.registry, topic, "key", key).await?,
                register_fixed(&self.registry, topic, "value", value).await?,
                None,
            )),
        }
    }

    /// Sends a heartbeat record stamped `ts_ms`, when heartbeats are on.
    pub async fn heartbeat(&mut self, ts_ms: i64) -> Result<(), SourceError> {
        let Some(h) = &self.heartbeat else {
            return Ok(());
        };
        let (key, value) = as_json(
            h.json.as_ref(),
            h.key.clone(),
            crate::encode::heartbeat::value(ts_ms, h.value_id)
                .map_err(|e| SourceError::definite(format!("heartbeat: {e}")))?,
        )
        .map_err(|e| SourceError::definite(format!("heartbeat: {e}")))?;
        self.sink
            .send(OutRecord {
                topic: &h.topic,
                key: Some(&key),
                value: Some(&value),
                headers: &[],
            })
            .await?;
        Ok(())
    }

    /// The source transaction being published ended (its position is being marked): its
    /// routed outbox rows are durable with everything sent before the next commit.
    pub fn outbox_transaction_ended(&mut self) {
        if !self.outbox_sent.is_empty() {
            self.outbox_marked.append(&mut self.outbox_sent);
        }
    }

    /// Outbox rows of ended transactions, once everything sent is durable: the caller
    /// deletes them (`delete_after_capture`).
    pub fn take_outbox_deletes(&mut self) -> Option<crate::outbox::OutboxDeletes> {
        if self.outbox_marked.is_empty() {
            return None;
        }
        let outbox = self.cfg.outbox.as_ref()?;
        let (schema, table) = outbox.table();
        Some(crate::outbox::OutboxDeletes {
            schema: schema.to_string(),
            table: table.to_string(),
            id_column: outbox.id_column().to_string(),
            ids: std::mem::take(&mut self.outbox_marked),
        })
    }

    /// Whether `[tables]` captures `table`.
    pub fn captures(&self, table: &TableId) -> bool {
        self.cfg.selection.captures_table(table)
    }

    /// The transaction whose BEGIN is sent and whose END is not, for the checkpoint.
    pub fn open_transaction(&self) -> Option<OpenTransaction> {
        match &self.txn {
            Some(t) => t.open.clone(),
            None => self.restored_txn.clone(),
        }
    }

    /// Takes up a transaction a checkpoint recorded as open (a restart inside it).
    pub fn restore_transaction(&mut self, open: Option<OpenTransaction>) {
        match &mut self.txn {
            Some(t) => t.open = open,
            None => self.restored_txn = open,
        }
    }

    /// Sends the END of the transaction being published when `committed` is it: the source
    /// calls it (through `Pipeline::mark`) at each commit, before the commit's position is
    /// marked, so the position covers the END. A commit of another transaction (one replayed
    /// after a restart and skipped whole, before the one a checkpoint recorded as open comes
    /// again) ends nothing.
    pub async fn end_transaction(&mut self, committed: Option<&str>) -> Result<(), SourceError> {
        let Some(t) = &mut self.txn else {
            return Ok(());
        };
        if t.open.as_ref().map(|o| o.id.as_str()) != committed {
            return Ok(());
        }
        let Some(open) = t.open.take() else {
            return Ok(());
        };

        t.send(
            &mut self.sink,
            crate::encode::txn::Status::End,
            &open.id,
            open.ts_ms,
            &open.counts,
        )
        .await
    }

    /// Makes `schema` the table's current schema: registers its key and value schemas (a new
    /// version when it changed) and creates its topic, before any event needs them.
    pub async fn set_table(
        &mut self,
        schema: TableSchema,
        stop: &mut Shutdown,
    ) -> Result<Arc<TableSchema>, SourceError> {
        if let Some(e) = self.tables.get(&schema.id) {
            if *e.source_schema == schema {
                return Ok(e.source_schema.clone());
            }
        }
        if !self.cfg.selection.captures_table(&schema.id) {
            if let Some(known) = self.skipped.get(&schema.id) {
                if **known == schema {
                    return Ok(known.clone());
                }
            } else {
                tracing::info!(table = %schema.id, "table not captured: [tables] leaves it out");
            }
            let schema = Arc::new(schema);
            self.skipped.insert(schema.id.clone(), schema.clone());
            return Ok(schema);
        }
        let source_schema = Arc::new(schema);
        let projection = self
            .cfg
            .selection
            .project(&source_schema)
            .map_err(|e| SourceError::definite(format!("{}: {e}", self.cfg.source)))?;
        let schema = match &projection {
            Some(p) => p.schema.clone(),
            None => (*source_schema).clone(),
        };
        let options = CodecOptions {
            unavailable_value_placeholder: self
                .cfg
                .unavailable_value_placeholder
                .as_bytes()
                .to_vec(),
            ..CodecOptions::default()
        };
        let codec = TableCodec::with_options(
            &self.cfg.topic_prefix,
            &schema,
            self.cfg.connector,
            &options,
        )
        .map_err(|e| {
            SourceError::definite(format!(
                "table {}: cannot build Avro schema: {e}",
                schema.id
            ))
        })?;
        let topic = topics::table_topic(&self.cfg.topic_prefix, &self.cfg.topic_routes, &schema.id);
        let outbox = match &self.cfg.outbox {
            Some(o) if o.is_outbox(&schema.id) => Some(
                o.columns(&schema)
                    .map_err(|e| SourceError::definite(format!("{}: {e}", self.cfg.source)))?,
            ),
            _ => None,
        };
        // The outbox table has no topic of its own; its schemas are still registered under
        // the name, for its changes in the event store.
        if outbox.is_none() {
            self.sink
                .ensure_topic(&topic, &config_refs(&self.cfg.table_topic_config))
                .await?;
        }
        let json = match self.cfg.json {
            Some(schemas) => Some(
                JsonCodec::new(codec.key_schema(), codec.value_schema(), schemas).map_err(|e| {
                    SourceError::definite(format!("table {}: JSON encoding: {e}", schema.id))
                })?,
            ),
            None => None,
        };
        // JSON records carry their schema (or none): nothing to register.
        let registered = match json {
            Some(_) => Ok((codec.key_schema().map(|_| 0), 0)),
            None => register(&self.status, &self.registry, &topic, &codec, stop).await,
        };
        let (key_id, value_id, rejected) = match registered {
            Ok((key_id, value_id)) => {
                tracing::info!(table = %schema.id, topic, ?key_id, value_id, "table schema registered");
                (key_id, value_id, None)
            }
            Err(e) if self.cfg.dead_letter_topic.is_some() && schema_rejected(&e) => {
                let why = format!("table {}: {e}", schema.id);
                tracing::warn!(
                    table = %schema.id,
                    topic,
                    dead_letter_topic = self.cfg.dead_letter_topic.as_deref(),
                    error = %e,
                    "the schema registry rejected the table's schema; its events go to the \
                     dead-letter topic until its schema changes"
                );
                (None, 0, Some(why))
            }
            Err(e) => return Err(table_registry_error(&schema.id, e)),
        };
        let schema = Arc::new(schema);
        let table_header = schema.id.to_string();
        self.tables.insert(
            schema.id.clone(),
            TableEntry {
                source_schema: source_schema.clone(),
                schema,
                projection,
                outbox,
                json,
                codec,
                metrics: self.status.metrics().table(&table_header),
                table_header,
                topic,
                key_id,
                value_id,
                rejected,
            },
        );
        Ok(source_schema)
    }

    /// Publishes one event (and its tombstone and ledger copy). The table must have been set
    /// with [`Publisher::set_table`].
    pub async fn publish(
        &mut self,
        ev: &ChangeEvent<'_>,
        meta: EventMeta<'_>,
    ) -> Result<(), SourceError> {
        let Some(entry) = self.tables.get(&ev.table.id) else {
            if self.skipped.contains_key(&ev.table.id) {
                return Ok(());
            }
            return Err(SourceError::definite(format!(
                "internal: event for unregistered table {}",
                ev.table.id
            )));
        };
        if let (Some(txn), Some(t)) = (&mut self.txn, &ev.transaction) {
            txn.event(&mut self.sink, &t.id, &entry.table_header, meta.commit_ms)
                .await?;
        }
        // Columns left out or masked: the published rows are built here, so nothing after
        // this point (topic, event store, dead letters) sees the source's own values.
        let (before, after);
        let projected;
        let ev = match &entry.projection {
            Some(p) if !p.rows_unchanged() || p.hides_values => {
                before = ev.before.map(|r| p.row(r));
                after = ev.after.map(|r| p.row(r));
                let mut source = ev.source.clone();
                if p.hides_values {
                    // The statement would show the values the selection hides.
                    if let crate::event::SourceBlock::Mysql(m) = &mut source {
                        m.query = None;
                    }
                }
                projected = ChangeEvent {
                    table: &entry.schema,
                    op: ev.op,
                    before: before.as_deref(),
                    after: after.as_deref(),
                    source,
                    processed_us: ev.processed_us,
                    transaction: ev.transaction.clone(),
                };
                &projected
            }
            Some(_) => {
                projected = ChangeEvent {
                    table: &entry.schema,
                    ..ev.clone()
                };
                &projected
            }
            None => ev,
        };
        let row = match ev.op {
            Op::Delete => ev.before,
            _ => ev.after.or(ev.before),
        };
        if let Some(why) = &entry.rejected {
            let dead = DeadLetter {
                topic: self.cfg.dead_letter_topic.as_deref().unwrap_or_default(),
                original_topic: &entry.topic,
                error: why.clone(),
                reason: DeadReason::SchemaRejected,
                size: 0,
            };
            return dead
                .send(
                    &mut self.sink,
                    &self.cfg.source,
                    entry,
                    ev,
                    meta,
                    &mut self.dead_key_buf,
                    &mut self.dead_value_buf,
                )
                .await;
        }
        self.key_buf.clear();
        self.value_buf.clear();
        let keyed = match (row, entry.key_id) {
            (Some(row), Some(key_id)) => {
                entry
                    .codec
                    .encode_key(row, key_id, &mut self.key_buf)
                    .map_err(|e| {
                        let hint = if entry.projection.as_ref().is_some_and(|p| p.key_overridden) {
                            "; [message_key_columns] names a column this change does not \
                             carry: on PostgreSQL a delete's old row holds the replica \
                             identity only; fix: ALTER TABLE … REPLICA IDENTITY FULL"
                        } else {
                            ""
                        };
                        SourceError::definite(format!("table {}: {e}{hint}", ev.table.id))
                    })?;
                true
            }
            _ => false,
        };
        entry
            .codec
            .encode_value(ev, entry.value_id, &mut self.value_buf)
            .map_err(|e| SourceError::definite(format!("table {}: {e}", ev.table.id)))?;
        if let Some(j) = &entry.json {
            let fail =
                |e: String| SourceError::definite(format!("table {}: JSON: {e}", ev.table.id));
            if keyed {
                self.json_buf.clear();
                j.key(&self.key_buf, &mut self.json_buf).map_err(fail)?;
                std::mem::swap(&mut self.key_buf, &mut self.json_buf);
            }
            self.json_buf.clear();
            j.value(&self.value_buf, &mut self.json_buf).map_err(fail)?;
            std::mem::swap(&mut self.value_buf, &mut self.json_buf);
        }
        entry
            .metrics
            .event(ev.op, self.key_buf.len() + self.value_buf.len());

        // The commit time is text only in the event store's headers.
        self.num_buf.clear();
        if self.cfg.event_store_topic.is_some() && self.cfg.event_store_headers {
            let _ =
                std::fmt::Write::write_fmt(&mut self.num_buf, format_args!("{}", meta.commit_ms));
        }
        let headers: [(&str, &[u8]); 6] = [
            ("cdc.source", self.cfg.source.as_bytes()),
            ("cdc.table", entry.table_header.as_bytes()),
            ("cdc.op", ev.op.code().as_bytes()),
            ("cdc.position", meta.position.as_bytes()),
            ("cdc.txid", meta.txid.unwrap_or("").as_bytes()),
            ("cdc.commit_ts_ms", self.num_buf.as_bytes()),
        ];
        let table_record = OutRecord {
            topic: &entry.topic,
            key: keyed.then_some(&self.key_buf[..]),
            value: Some(&self.value_buf),
            headers: &[],
        };
        let event = Diverted {
            source: &self.cfg.source,
            entry,
            ev,
            meta,
        };
        match (&entry.outbox, &self.cfg.outbox) {
            (Some(cols), Some(outbox)) => {
                if let (Op::Create, Some(row)) = (ev.op, ev.after) {
                    let routed = outbox
                        .route(cols, row)
                        .map_err(|e| SourceError::definite(format!("{}: {e}", self.cfg.source)))?;
                    let (key_id, value_id) = match self.outbox_topics.get(&routed.topic) {
                        Some(ids) => *ids,
                        None => {
                            self.sink
                                .ensure_topic(
                                    &routed.topic,
                                    &config_refs(&self.cfg.table_topic_config),
                                )
                                .await?;
                            let value_schema = if cols.payload_is_bytes {
                                "\"bytes\""
                            } else {
                                "\"string\""
                            };
                            let ids = match self.cfg.json {
                                Some(_) => (0, 0),
                                None => (
                                    register_fixed(
                                        &self.registry,
                                        &routed.topic,
                                        "key",
                                        "\"string\"",
                                    )
                                    .await?,
                                    register_fixed(
                                        &self.registry,
                                        &routed.topic,
                                        "value",
                                        value_schema,
                                    )
                                    .await?,
                                ),
                            };
                            self.outbox_topics.insert(routed.topic.clone(), ids);
                            ids
                        }
                    };
                    self.dead_key_buf.clear();
                    self.dead_value_buf.clear();
                    if let Some(k) = &routed.key {
                        crate::outbox::framed(key_id, k.as_bytes(), &mut self.dead_key_buf);
                    }
                    if let Some(p) = routed.payload {
                        crate::outbox::framed(value_id, p, &mut self.dead_value_buf);
                    }
                    if let Some(schemas) = self.cfg.json {
                        // Outbox events are few: a codec per event costs nothing that counts.
                        let value_schema = if cols.payload_is_bytes {
                            "\"bytes\""
                        } else {
                            "\"string\""
                        };
                        let fail = |e: String| {
                            SourceError::definite(format!("outbox event {}: JSON: {e}", routed.id))
                        };
                        let j = JsonCodec::new(Some("\"string\""), value_schema, schemas)
                            .map_err(fail)?;
                        if routed.key.is_some() {
                            self.json_buf.clear();
                            j.key(&self.dead_key_buf, &mut self.json_buf)
                                .map_err(fail)?;
                            std::mem::swap(&mut self.dead_key_buf, &mut self.json_buf);
                        }
                        if routed.payload.is_some() {
                            self.json_buf.clear();
                            j.value(&self.dead_value_buf, &mut self.json_buf)
                                .map_err(fail)?;
                            std::mem::swap(&mut self.dead_value_buf, &mut self.json_buf);
                        }
                    }
                    self.sink
                        .send(OutRecord {
                            topic: &routed.topic,
                            key: routed.key.is_some().then_some(&self.dead_key_buf[..]),
                            value: routed.payload.is_some().then_some(&self.dead_value_buf[..]),
                            headers: &[("id", routed.id.as_bytes())],
                        })
                        .await?;
                    if outbox.deletes_after_capture() {
                        self.outbox_sent.push(routed.id);
                    }
                } else if ev.op == Op::Update {
                    // Debezium's router also takes inserts only: an event, once sent, is
                    // not changed.
                    tracing::warn!(table = %ev.table.id, "update of an outbox row: not routed (only inserts are events)");
                }
            }
            _ => {
                send_or_divert(
                    &mut self.sink,
                    self.cfg.dead_letter_topic.as_deref(),
                    table_record,
                    event,
                    (&mut self.dead_key_buf, &mut self.dead_value_buf),
                )
                .await?;
            }
        }
        if let Some(store) = &self.cfg.event_store_topic {
            self.store_key_buf.clear();
            self.store_key_buf
                .extend_from_slice(self.cfg.source.as_bytes());
            self.store_key_buf.push(KEY_SEP);
            self.store_key_buf
                .extend_from_slice(entry.table_header.as_bytes());
            self.store_key_buf.push(KEY_SEP);
            if let (true, Some(row)) = (keyed, row) {
                key_json(&entry.schema, row, &mut self.store_key_buf);
            }
            let store_record = OutRecord {
                topic: store,
                key: Some(&self.store_key_buf),
                value: Some(&self.value_buf),
                headers: if self.cfg.event_store_headers {
                    &headers
                } else {
                    &[]
                },
            };
            send_or_divert(
                &mut self.sink,
                self.cfg.dead_letter_topic.as_deref(),
                store_record,
                event,
                (&mut self.dead_key_buf, &mut self.dead_value_buf),
            )
            .await?;
        }
        if ev.op == Op::Delete && self.cfg.tombstones && keyed && entry.outbox.is_none() {
            self.sink
                .send(OutRecord {
                    topic: &entry.topic,
                    key: Some(&self.key_buf),
                    value: None,
                    headers: &[],
                })
                .await?;
        }
        Ok(())
    }
}

/// Registers a table's key (when it has one) and value schemas under `topic`'s subjects.
async fn register(
    status: &SourceStatus,
    registry: &Registry,
    topic: &str,
    codec: &TableCodec,
    stop: &mut Shutdown,
) -> Result<(Option<u32>, u32), crate::registry::RegistryError> {
    // While a registration is retried in place the pipeline waits for the registry: the
    // source shows `waiting_for_registry` (not `streaming`) until it answers, so a registry
    // that keeps failing is named in /readyz for the whole outage, not only between attempts.
    let mut on_retry = |e: &crate::registry::RegistryError| status.registry_failing(&e.to_string());
    let registered = async {
        let key_id = match codec.key_schema() {
            Some(key_schema) => Some(
                status
                    .while_waiting(registry.register_with_retry(
                        &format!("{topic}-key"),
                        key_schema,
                        stop,
                        &mut on_retry,
                    ))
                    .await?,
            ),
            None => None,
        };
        let value_id = status
            .while_waiting(registry.register_with_retry(
                &format!("{topic}-value"),
                codec.value_schema(),
                stop,
                &mut on_retry,
            ))
            .await?;
        Ok((key_id, value_id))
    }
    .await;
    status.registry_answered();
    registered
}

/// Whether the registry refused a schema itself (incompatible with earlier versions, or
/// invalid): a dead-letter topic can take the table's events. Refusals of the agent
/// (unauthorized) or an unreachable registry are not: they concern every table.
fn schema_rejected(e: &crate::registry::RegistryError) -> bool {
    use crate::registry::RegistryError;
    match e {
        RegistryError::Incompatible { .. } => true,
        RegistryError::Refused { status, .. } => matches!(status, 409 | 422),
        _ => false,
    }
}

fn table_registry_error(table: &TableId, e: crate::registry::RegistryError) -> SourceError {
    SourceError::registry_in(format!("table {table}"), e)
}

#[cfg(test)]
mod tests {
    use super::dead_letter::event_json;
    use super::*;
    use crate::event::{Column, ColumnType, PostgresSource, SourceBlock};
    use crate::registry::RegistryError;

    fn entry() -> TableEntry {
        let col = |name: &str, ty: ColumnType| Column {
            name: name.into(),
            ty,
            optional: true,
            source_type: String::new(),
            default: None,
        };
        let schema = TableSchema {
            id: TableId::new("public", "big"),
            columns: vec![
                col("id", ColumnType::Int32),
                col("payload", ColumnType::String),
            ],
            key: vec![0],
        };
        let schema = Arc::new(schema);
        TableEntry {
            codec: TableCodec::new("pg", &schema, ConnectorKind::Postgres).unwrap(),
            source_schema: schema.clone(),
            schema,
            projection: None,
            outbox: None,
            json: None,
            topic: "pg.public.big".into(),
            key_id: Some(1),
            value_id: 2,
            table_header: "public.big".into(),
            metrics: TableMetrics::detached(),
            rejected: None,
        }
    }

    fn json_of(entry: &TableEntry, row: &[Datum<'_>], rows: bool) -> serde_json::Value {
        let ev = ChangeEvent {
            table: &entry.schema,
            op: Op::Create,
            before: None,
            after: Some(row),
            source: SourceBlock::Postgres(PostgresSource {
                name: "pg",
                ts_us: 0,
                snapshot: "false",
                db: "d",
                sequence: None,
                schema: "public",
                table: "big",
                tx_id: None,
                lsn: None,
                xmin: None,
            }),
            processed_us: 0,
            transaction: None,
        };
        let meta = EventMeta {
            position: "0/16B3748",
            txid: Some("750:23803720"),
            commit_ms: 1_700_000_000_000,
        };
        let mut out = Vec::new();
        event_json("pg", entry, &ev, meta, rows, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_dead_letter_value_is_the_event_as_json_or_without_its_rows_when_truncated() {
        let e = entry();
        let row = [Datum::Int(7), Datum::Str("x\"y".into())];
        let full = json_of(&e, &row, true);
        assert_eq!(
            full,
            serde_json::json!({
                "source": "pg", "table": "public.big", "op": "c", "position": "0/16B3748",
                "txid": "750:23803720", "commit_ts_ms": 1_700_000_000_000i64,
                "key": {"id": 7}, "before": null, "after": {"id": 7, "payload": "x\"y"}
            })
        );
        let short = json_of(&e, &row, false);
        assert_eq!(short["truncated"], true);
        assert_eq!(short["key"]["id"], 7);
        assert!(short.get("after").is_none() && short.get("before").is_none());
    }

    #[test]
    fn a_record_is_measured_with_its_key_value_headers_and_kafkas_framing() {
        let rec = OutRecord {
            topic: "t",
            key: Some(b"key"),
            value: Some(&[0u8; 1000]),
            headers: &[("cdc.source", b"pg")],
        };
        assert_eq!(record_size(&rec), 3 + 1000 + 10 + 2 + RECORD_FRAMING_BYTES);
        let tombstone = OutRecord {
            topic: "t",
            key: None,
            value: None,
            headers: &[],
        };
        assert_eq!(record_size(&tombstone), RECORD_FRAMING_BYTES);
    }

    #[test]
    fn only_a_schema_the_registry_itself_refuses_can_go_to_the_dead_letter_topic() {
        let refused = |status| RegistryError::Refused {
            subject: "s".into(),
            status,
            message: String::new(),
        };
        assert!(schema_rejected(&RegistryError::Incompatible {
            subject: "s".into(),
            message: String::new(),
        }));
        assert!(schema_rejected(&refused(409)));
        assert!(schema_rejected(&refused(422)));
        // The agent's own credentials or an unreachable registry concern every table.
        assert!(!schema_rejected(&refused(401)));
        assert!(!schema_rejected(&refused(403)));
        assert!(!schema_rejected(&RegistryError::Unavailable("503".into())));
    }
}
