//! Reading the table topics (or the event store): which partitions, from where, and each
//! record as a [`Change`] on its target table (after `[tables]` mapping and the
//! include/exclude selection).
//!
//! The consumer assigns partitions itself (no consumer-group rebalancing) and starts each at
//! the offset the target stored with the rows; Kafka's committed offsets are written after
//! each target commit for monitoring tools only. Records are read with
//! `isolation.level=read_committed`, so the agent's aborted transactions never arrive, and
//! values are decoded with the writer schema named by the id in their Confluent header.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::avro::{Envelope, RowMap, Writer};
use super::config::{ApplyConfig, StartAt, TableMapping};
use super::error::ApplyError;
use super::schema::{self, Shape};
use super::target::{Change, Offsets, TableInfo};
use crate::registry::Registry;
use crate::sink::kafka::base_client_config;

/// How long one metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// One consumed record: where it was, and what it asks of the target (`None`: nothing, e.g. a
/// tombstone; its offset still moves).
pub struct Event {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The change, if any.
    pub change: Option<Change>,
}

/// How the key of a record names the key columns.
#[derive(Clone, PartialEq, Eq, Hash)]
enum KeySpec {
    /// A table topic's Avro key, by schema id.
    Avro(u32),
    /// An event-store key's JSON object: its field names, in order.
    Names(Vec<String>),
}

/// A source table as the target sees it: its [`TableInfo`] (target name, target columns) and
/// where each source column goes.
struct Routed {
    info: Arc<TableInfo>,
    /// Source column name → index in `info.shape` (excluded columns are absent).
    by_source: HashMap<String, usize>,
    /// The same, per row record of the writer's direct decoder (empty without one).
    rows: Vec<RowMap>,
}

/// `[source] include_tables / exclude_tables` and `[tables]`.
pub struct Mapping {
    include: Vec<regex::Regex>,
    exclude: Vec<regex::Regex>,
    tables: BTreeMap<String, TableMapping>,
}

impl Mapping {
    /// The mapping of `cfg` (its regexes were checked when the file was loaded).
    pub fn new(cfg: &ApplyConfig) -> Result<Self, ApplyError> {
        let compile = |list: &[String], key: &str| {
            list.iter()
                .map(|re| {
                    regex::Regex::new(&format!("^(?:{re})$"))
                        .map_err(|e| ApplyError::definite(format!("source.{key}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            include: compile(&cfg.source.include_tables, "include_tables")?,
            exclude: compile(&cfg.source.exclude_tables, "exclude_tables")?,
            tables: cfg.tables.clone(),
        })
    }

    /// Whether the events of source table `qualified` (`schema.table`) are applied.
    pub fn selected(&self, qualified: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(qualified)))
            && !self.exclude.iter().any(|r| r.is_match(qualified))
    }

    /// The `[tables]` entry of a table: by its topic's name first, then by `schema.table`.
    pub fn entry(&self, topic: &str, qualified: &str) -> Option<&TableMapping> {
        self.tables
            .get(topic)
            .or_else(|| self.tables.get(qualified))
    }

    /// The target table name of source table `table` (`qualified` = `schema.table`).
    pub fn target_name(&self, topic: &str, qualified: &str, table: &str) -> String {
        self.entry(topic, qualified)
            .and_then(|m| m.target.clone())
            .unwrap_or_else(|| table.to_string())
    }
}

/// The consumer and the decoding caches.
pub struct Reader {
    consumer: StreamConsumer,
    registry: Registry,
    topics: TopicSelection,
    placeholder: Arc<str>,
    /// Parsed (and, when they can be, compiled) writer schemas by id.
    schemas: HashMap<u32, Arc<Writer>>,
    /// Table shapes by (value schema id, key, source `schema.table`, topic).
    tables: HashMap<(u32, KeySpec, String, Arc<str>), Routed>,
    mapping: Mapping,
    /// Reading the event store (keys are text, not Avro).
    event_store: bool,
    /// `--from`, for partitions of the first assignment that the target holds no offset for.
    start: StartAt,
    /// Whether the first assignment was made (later partitions start at their beginning).
    first_assigned: bool,
    /// Partitions assigned so far.
    assigned: HashSet<(Arc<str>, i32)>,
    /// Interned topic names.
    names: HashMap<String, Arc<str>>,
}

/// librdkafka consumer settings of apply's own, unless `[kafka] properties` names them.
///
/// - `queued.max.messages.kbytes`: the prefetched messages librdkafka holds. Its default,
///   64 MiB, was most of apply's peak RSS (~110 MiB); 16 MiB is still several batches ahead,
///   and the 1M-row bench (bench/RESULTS.md) was no slower with it.
/// - `fetch.queue.backoff.ms`: how long the fetcher waits to ask again once that queue (or
///   `queued.min.messages`) is full. Its default, 1 s, is longer than apply takes to drain
///   the queue: apply then sat idle for up to half a second at a time, half the bench's
///   wall time. Asking again every 20 ms keeps the queue topped up.
const CONSUMER_DEFAULTS: [(&str, &str); 2] = [
    ("queued.max.messages.kbytes", "16384"),
    ("fetch.queue.backoff.ms", "20"),
];

enum TopicSelection {
    Names(Vec<String>),
    Regex(regex::Regex),
}

impl Reader {
    /// A consumer on the configured brokers (nothing assigned yet).
    pub fn new(cfg: &ApplyConfig) -> Result<Self, ApplyError> {
        let mut client = base_client_config(&cfg.kafka.client());
        for (key, value) in CONSUMER_DEFAULTS {
            if !cfg.kafka.properties.contains_key(key) {
                client.set(key, value);
            }
        }
        let consumer: StreamConsumer = client
            .set("group.id", format!("cdc-apply-{}", cfg.apply.name))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(|e| ApplyError::definite(format!("kafka consumer: {e}")))?;
        let registry =
            Registry::new(&cfg.schema_registry).map_err(|e| ApplyError::definite(e.to_string()))?;
        let topics = match (&cfg.source.topic_regex, &cfg.source.event_store) {
            (Some(re), _) => TopicSelection::Regex(
                regex::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| ApplyError::definite(format!("source.topic_regex: {e}")))?,
            ),
            (None, Some(store)) => TopicSelection::Names(vec![store.clone()]),
            (None, None) => TopicSelection::Names(cfg.source.topics.clone()),
        };
        Ok(Self {
            consumer,
            registry,
            topics,
            placeholder: cfg.apply.unavailable_value_placeholder.as_str().into(),
            schemas: HashMap::new(),
            tables: HashMap::new(),
            assigned: HashSet::new(),
            names: HashMap::new(),
            mapping: Mapping::new(cfg)?,
            event_store: cfg.source.event_store.is_some(),
            start: cfg.start.clone(),
            first_assigned: false,
        })
    }

    /// Assigns every selected partition not assigned yet, each at its stored offset. A
    /// partition the target holds no offset for starts where `--from` says when it is part of
    /// the first assignment, at its beginning when it appears later (a topic created after
    /// apply started holds nothing older). Returns how many were added and the offsets that
    /// `--from` resolved, which the caller stores at once so a restart never resolves them
    /// again.
    pub async fn assign_new(
        &mut self,
        stored: &Offsets,
    ) -> Result<(usize, Vec<(Arc<str>, i32, i64)>), ApplyError> {
        let found = self.partitions().await?;
        let first = !self.first_assigned;
        self.first_assigned = true;
        let mut tpl = TopicPartitionList::new();
        let mut added = Vec::new();
        let mut resolved = Vec::new();
        let mut times = TopicPartitionList::new();
        for (topic, partition) in found {
            let topic = self.intern(&topic);
            if self.assigned.contains(&(topic.clone(), partition)) {
                continue;
            }
            let offset = match stored.get(&(topic.to_string(), partition)) {
                Some(o) => {
                    if first && self.start != StartAt::Earliest {
                        tracing::info!(topic = %topic, partition, stored = *o,
                            "the target holds an offset for this partition; it wins over --from");
                    }
                    Offset::Offset(*o)
                }
                None if !first => Offset::Beginning,
                None => match &self.start {
                    StartAt::Earliest => Offset::Beginning,
                    StartAt::Latest => {
                        let (_, high) = self.watermarks(&topic, partition)?;
                        resolved.push((topic.clone(), partition, high));
                        Offset::Offset(high)
                    }
                    StartAt::Time(ms) => {
                        let _ = times.add_partition_offset(&topic, partition, Offset::Offset(*ms));
                        continue; // resolved below, in one request
                    }
                    StartAt::Offsets(map) => match map.get(&(topic.to_string(), partition)) {
                        Some(o) => {
                            resolved.push((topic.clone(), partition, *o));
                            Offset::Offset(*o)
                        }
                        None => Offset::Beginning,
                    },
                },
            };
            tpl.add_partition_offset(&topic, partition, offset)
                .map_err(|e| ApplyError::definite(format!("assign {topic}/{partition}: {e}")))?;
            tracing::info!(topic = %topic, partition, ?offset, "partition assigned");
            added.push((topic, partition));
        }
        if times.count() > 0 {
            let found = tokio::task::block_in_place(|| {
                self.consumer.offsets_for_times(times, METADATA_TIMEOUT)
            })
            .map_err(|e| ApplyError::transient(format!("kafka offsets for --from time: {e}")))?;
            for el in found.elements() {
                let topic = self.intern(el.topic());
                let partition = el.partition();
                // No record at or after the time: the partition's end.
                let offset = match el.offset() {
                    Offset::Offset(o) => o,
                    _ => self.watermarks(&topic, partition)?.1,
                };
                tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))
                    .map_err(|e| {
                        ApplyError::definite(format!("assign {topic}/{partition}: {e}"))
                    })?;
                tracing::info!(topic = %topic, partition, offset, "partition assigned (--from time)");
                resolved.push((topic.clone(), partition, offset));
                added.push((topic, partition));
            }
        }
        if added.is_empty() {
            return Ok((0, resolved));
        }
        self.consumer
            .incremental_assign(&tpl)
            .map_err(|e| ApplyError::transient(format!("kafka assign: {e}")))?;
        let n = added.len();
        self.assigned.extend(added);
        Ok((n, resolved))
    }

    /// A partition's low and high watermarks, asked of the broker.
    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), ApplyError> {
        tokio::task::block_in_place(|| {
            self.consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
        })
        .map_err(|e| ApplyError::transient(format!("kafka watermarks of {topic}/{partition}: {e}")))
    }

    /// Records between `next` (the next offset to apply) and the partition's high watermark,
    /// from the consumer's cached watermarks (no request). `None` before the first fetch.
    pub fn lag(&self, topic: &str, partition: i32, next: Option<i64>) -> Option<i64> {
        let name = std::ffi::CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // rdkafka has no safe wrapper of the cached (request-free) watermarks, and asking the
        // broker on every batch would cost a round trip per partition.
        // SAFETY: the client pointer is valid while `self.consumer` lives, `name` outlives
        // the call, and the call only writes the two out-parameters.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                name.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        if err != rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0 {
            return None;
        }
        // Under read_committed the last offset of a transaction is its commit marker, which is
        // never delivered: the consumer's position, once past it, is the truer "next".
        let positions = self.consumer.position().ok();
        let position = positions
            .as_ref()
            .and_then(|tpl| tpl.find_partition(topic, partition))
            .and_then(|el| match el.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let next = next.unwrap_or(low).max(position.unwrap_or(i64::MIN));
        Some((high - next).max(0))
    }

    /// The partitions assigned so far.
    pub fn assigned(&self) -> impl Iterator<Item = &(Arc<str>, i32)> {
        self.assigned.iter()
    }

    /// The selected topics' partitions as the cluster has them now.
    async fn partitions(&self) -> Result<Vec<(String, i32)>, ApplyError> {
        // librdkafka's metadata call blocks; the runtime is multi-threaded (the CLI's).
        let consumer_md = |topic: Option<String>| async move {
            tokio::task::block_in_place(|| {
                self.consumer
                    .fetch_metadata(topic.as_deref(), METADATA_TIMEOUT)
            })
            .map_err(|e| ApplyError::transient(format!("kafka metadata: {e}")))
        };
        let mut out = Vec::new();
        match &self.topics {
            TopicSelection::Names(names) => {
                for name in names {
                    let md = consumer_md(Some(name.clone())).await?;
                    let t = md.topics().iter().find(|t| t.name() == name);
                    match t {
                        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                            out.extend(t.partitions().iter().map(|p| (name.clone(), p.id())));
                        }
                        _ => {
                            // Not created yet: the agent creates a table's topic with its
                            // first event. Picked up at the next refresh.
                            tracing::warn!(topic = %name, "topic not found yet; will look again");
                        }
                    }
                }
            }
            TopicSelection::Regex(re) => {
                let md = consumer_md(None).await?;
                for t in md.topics() {
                    if t.error().is_none() && re.is_match(t.name()) {
                        out.extend(
                            t.partitions()
                                .iter()
                                .map(|p| (t.name().to_string(), p.id())),
                        );
                    }
                }
            }
        }
        Ok(out)
    }

    fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.names.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = topic.into();
        self.names.insert(topic.to_string(), t.clone());
        t
    }

    /// The next record, undecoded. Cancel-safe: nothing is consumed unless it returns.
    pub async fn next(&mut self) -> Result<OwnedMessage, ApplyError> {
        self.consumer
            .recv()
            .await
            .map(|m| m.detach())
            .map_err(|e| ApplyError::transient(format!("kafka consume: {e}")))
    }

    /// Decodes a record from [`Reader::next`]. Not cancel-safe: a record whose decoding is
    /// interrupted would be lost, so the caller awaits it to the end.
    pub async fn decode(&mut self, msg: OwnedMessage) -> Result<Event, ApplyError> {
        let (topic, partition, offset) = (msg.topic().to_string(), msg.partition(), msg.offset());
        let change = self
            .change(&msg)
            .await
            .map_err(|e| e.context(format!("record {topic}/{partition}@{offset}")))?;
        let topic = self.intern(&topic);
        Ok(Event {
            topic,
            partition,
            offset,
            change,
        })
    }

    async fn change(&mut self, msg: &OwnedMessage) -> Result<Option<Change>, ApplyError> {
        let Some(value) = msg.payload() else {
            return Ok(None); // a tombstone: for log compaction, the delete came before it
        };
        let value_id = schema_id(value)?;
        let writer = self.writer_schema(value_id).await?;
        let mut envelope = Envelope::decode(&writer, &value[5..]).map_err(|e| {
            ApplyError::definite(format!("avro decode (schema id {value_id}): {e}"))
        })?;
        let [table, schema_name, db] = envelope.names();
        let Some(table) = table else {
            if self.event_store {
                return Ok(None); // not a table's event: nothing for a read model
            }
            return Err(ApplyError::definite(
                "value has no source.table: not a cdc-agent table event".into(),
            ));
        };
        // PostgreSQL names the schema; MySQL's database plays its part (`db`).
        let qualified = match schema_name.or(db) {
            Some(s) => format!("{s}.{table}"),
            None => table.to_string(),
        };
        if !self.mapping.selected(&qualified) {
            return Ok(None); // left out by include_tables / exclude_tables
        }
        let table = table.to_string();
        let topic: Arc<str> = self.intern(msg.topic());
        if envelope.op() == "t" {
            return Ok(Some(Change::Truncate {
                table: self.mapping.target_name(&topic, &qualified, &table),
            }));
        }
        let no_key = || {
            ApplyError::definite(format!(
                "table `{qualified}` has no primary key (its events carry no key), so rows \
                 cannot be matched; fix: give the source table a primary key (or REPLICA \
                 IDENTITY with a key), or leave it out ([source] exclude_tables)"
            ))
        };
        let key = msg.key().ok_or_else(no_key)?;
        let spec = if self.event_store {
            let names = event_store_key_columns(key)?;
            if names.is_empty() {
                return Err(no_key());
            }
            KeySpec::Names(names)
        } else {
            KeySpec::Avro(schema_id(key)?)
        };
        let placeholder = Arc::clone(&self.placeholder);
        let routed = self
            .table_info(value_id, spec, topic, &qualified, &table)
            .await?;
        let info = &routed.info;
        // Upserts need the row after the change, deletes the row before it (for its key).
        let after = match envelope.op() {
            "c" | "r" | "u" => Some(true),
            "d" => Some(false),
            _ => None,
        };
        let row = match after {
            Some(after) => envelope
                .take_row(
                    after,
                    &routed.rows,
                    &routed.by_source,
                    &info.shape.columns,
                    &placeholder,
                )
                .map_err(|e| {
                    ApplyError::definite(format!("avro decode (schema id {value_id}): {e}"))
                })?,
            None => None,
        };
        Ok(Some(match (after, row) {
            (Some(true), Some(row)) => Change::Upsert {
                table: info.clone(),
                row,
                insert: matches!(envelope.op(), "c" | "r"),
            },
            (Some(false), Some(row)) => Change::Delete {
                table: info.clone(),
                key: info.key.iter().map(|&i| row[i].clone()).collect(),
            },
            _ => {
                return Err(ApplyError::definite(format!(
                    "table `{qualified}`: op `{}` without the row image it needs",
                    envelope.op()
                )))
            }
        }))
    }

    async fn writer_schema(&mut self, id: u32) -> Result<Arc<Writer>, ApplyError> {
        if let Some(s) = self.schemas.get(&id) {
            return Ok(s.clone());
        }
        let text = self.registry_text(id).await?;
        let s = Arc::new(
            Writer::new(id, &text)
                .map_err(|e| ApplyError::definite(format!("writer schema {id}: {e}")))?,
        );
        self.schemas.insert(id, s.clone());
        Ok(s)
    }

    async fn registry_text(&self, id: u32) -> Result<Arc<str>, ApplyError> {
        self.registry.schema_by_id(id).await.map_err(|e| {
            if e.is_transient() {
                ApplyError::transient(format!("schema id {id}: {e}"))
            } else {
                ApplyError::definite(format!("schema id {id}: {e}"))
            }
        })
    }

    /// The routed shape of a source table, from the registry once per (value schema, key).
    async fn table_info(
        &mut self,
        value_id: u32,
        spec: KeySpec,
        topic: Arc<str>,
        qualified: &str,
        table: &str,
    ) -> Result<&Routed, ApplyError> {
        let cache_key = (value_id, spec, qualified.to_string(), topic);
        if !self.tables.contains_key(&cache_key) {
            let routed = self
                .route(value_id, &cache_key.1, &cache_key.3, qualified, table)
                .await?;
            self.tables.insert(cache_key.clone(), routed);
        }
        Ok(&self.tables[&cache_key])
    }

    async fn route(
        &mut self,
        value_id: u32,
        spec: &KeySpec,
        topic: &str,
        qualified: &str,
        table: &str,
    ) -> Result<Routed, ApplyError> {
        let value_text = self.registry_text(value_id).await?;
        let source_shape: Shape = schema::envelope_shape(&value_text)
            .map_err(|e| ApplyError::definite(format!("table `{qualified}`: {e}")))?;
        let key_names: Vec<String> = match spec {
            KeySpec::Avro(key_id) => {
                let key_text = self.registry_text(*key_id).await?;
                let key_json: serde_json::Value = serde_json::from_str(&key_text)
                    .map_err(|e| ApplyError::definite(format!("key schema {key_id}: {e}")))?;
                schema::record_shape(&key_json)
                    .map_err(|e| ApplyError::definite(format!("key schema {key_id}: {e}")))?
                    .columns
                    .into_iter()
                    .map(|c| c.name)
                    .collect()
            }
            KeySpec::Names(names) => names.clone(),
        };
        let mapping = self.mapping.entry(topic, qualified);
        let name = self.mapping.target_name(topic, qualified, table);
        let mut shape = Shape {
            columns: Vec::new(),
        };
        let mut by_source = HashMap::new();
        for mut c in source_shape.columns {
            let source_name = c.name.clone();
            if let Some(m) = mapping {
                if m.exclude_columns.contains(&source_name) {
                    if key_names.contains(&source_name) {
                        return Err(ApplyError::definite(format!(
                            "[tables.\"{qualified}\"] excludes key column `{source_name}`, \
                             without which rows cannot be matched; fix: remove it from \
                             exclude_columns"
                        )));
                    }
                    continue;
                }
                if let Some(to) = m.columns.get(&source_name) {
                    c.name = to.clone();
                }
            }
            by_source.insert(source_name, shape.columns.len());
            shape.columns.push(c);
        }
        let key = key_names
            .iter()
            .map(|k| {
                by_source.get(k).copied().ok_or_else(|| {
                    ApplyError::definite(format!(
                        "table `{qualified}`: key column `{k}` is not a column of the value"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = match self.schemas.get(&value_id).and_then(|w| w.plan.as_ref()) {
            Some(plan) => plan.row_maps(&by_source),
            None => Vec::new(),
        };
        tracing::debug!(source = %qualified, target = %name, columns = shape.columns.len(), "table routed");
        Ok(Routed {
            info: Arc::new(TableInfo {
                name,
                schema_id: value_id,
                shape,
                key,
            }),
            by_source,
            rows,
        })
    }

    /// Tells Kafka how far the target is (for lag monitoring only: the target's own table is
    /// what a restart reads). Failures are logged, never fatal.
    pub fn report(&self, moved: &[(Arc<str>, i32, i64)]) {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in moved {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "offset report to kafka failed (monitoring only)");
        }
    }
}

/// The key column names of an event-store key `<source>/<schema>.<table>/<key JSON>`, in the
/// key JSON's order (the source's key order; an empty JSON part: no key).
fn event_store_key_columns(key: &[u8]) -> Result<Vec<String>, ApplyError> {
    let bad = |why: &str| {
        ApplyError::definite(format!(
            "event-store key `{}` {why}; fix: point [source] event_store at the agent's \
             event-store topic (keys `<source>/<schema>.<table>/<key JSON>`)",
            String::from_utf8_lossy(&key[..key.len().min(200)])
        ))
    };
    let text = std::str::from_utf8(key).map_err(|_| bad("is not UTF-8"))?;
    let mut parts = text.splitn(3, '/');
    let (_source, _table) = (parts.next(), parts.next());
    let json = parts.next().ok_or_else(|| bad("has no key JSON part"))?;
    if json.is_empty() {
        return Ok(Vec::new());
    }
    // The object's keys in their order (serde_json's map would sort them).
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Keys, A::Error> {
                    let mut out = Vec::new();
                    while let Some(k) = m.next_key::<String>()? {
                        m.next_value::<serde::de::IgnoredAny>()?;
                        out.push(k);
                    }
                    Ok(Keys(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Keys>(json)
        .map(|k| k.0)
        .map_err(|_| bad("has no JSON object as its key part"))
}

/// The schema id of a Confluent-framed value.
fn schema_id(bytes: &[u8]) -> Result<u32, ApplyError> {
    if bytes.len() < 5 || bytes[0] != 0 {
        return Err(ApplyError::definite(
            "record is not in the Confluent wire format; fix: point [source] at the agent's \
             table topics (Avro through the registry)"
                .into(),
        ));
    }
    Ok(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_store_keys_give_their_columns_in_key_order() {
        let cols = event_store_key_columns(br#"pg/public.items/{"z":1,"a":"x"}"#).unwrap();
        assert_eq!(cols, ["z", "a"]);
        assert!(event_store_key_columns(b"pg/public.items/")
            .unwrap()
            .is_empty());
        let e = event_store_key_columns(b"not a ledger key").unwrap_err();
        assert!(e.message.contains("fix:"), "{e}");
    }

    fn mapping(include: &[&str], exclude: &[&str]) -> Mapping {
        let re = |l: &[&str]| {
            l.iter()
                .map(|r| regex::Regex::new(&format!("^(?:{r})$")).unwrap())
                .collect()
        };
        let mut tables = BTreeMap::new();
        tables.insert(
            "public.orders".to_string(),
            TableMapping {
                target: Some("orders_view".into()),
                ..Default::default()
            },
        );
        tables.insert(
            "shop.public.orders".to_string(),
            TableMapping {
                target: Some("by_topic".into()),
                ..Default::default()
            },
        );
        Mapping {
            include: re(include),
            exclude: re(exclude),
            tables,
        }
    }

    #[test]
    fn exclude_wins_over_include_and_an_empty_include_selects_every_table() {
        let m = mapping(&[], &[r"public\.audit_.*"]);
        assert!(m.selected("public.orders"));
        assert!(!m.selected("public.audit_log"));
        let m = mapping(&[r"public\..*"], &[r"public\.secret"]);
        assert!(m.selected("public.orders"));
        assert!(!m.selected("public.secret"));
        assert!(!m.selected("other.orders"));
    }

    #[test]
    fn a_topic_entry_wins_over_a_schema_table_entry_and_unmapped_tables_keep_their_name() {
        let m = mapping(&[], &[]);
        assert_eq!(
            m.target_name("shop.public.orders", "public.orders", "orders"),
            "by_topic"
        );
        assert_eq!(
            m.target_name("cdc.events", "public.orders", "orders"),
            "orders_view"
        );
        assert_eq!(
            m.target_name("cdc.events", "public.items", "items"),
            "items"
        );
    }
}
