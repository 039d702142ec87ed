//! Reading the table topics: which partitions, from where, and each record as a [`Change`].
//!
//! The consumer assigns partitions itself (no consumer-group rebalancing) and starts each at
//! the offset the target stored with the rows; Kafka's committed offsets are written after
//! each target commit for monitoring tools only. Records are read with
//! `isolation.level=read_committed`, so the agent's aborted transactions never arrive, and
//! values are decoded with the writer schema named by the id in their Confluent header.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::config::ApplyConfig;
use super::error::ApplyError;
use super::schema::{self, Cell, Shape};
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

/// The consumer and the decoding caches.
pub struct Reader {
    consumer: StreamConsumer,
    registry: Registry,
    topics: TopicSelection,
    placeholder: String,
    /// Parsed writer schemas by id.
    schemas: HashMap<u32, Arc<apache_avro::Schema>>,
    /// Table shapes by (value schema id, key schema id).
    tables: HashMap<(u32, u32), Arc<TableInfo>>,
    /// Partitions assigned so far.
    assigned: HashSet<(Arc<str>, i32)>,
    /// Interned topic names.
    names: HashMap<String, Arc<str>>,
}

enum TopicSelection {
    Names(Vec<String>),
    Regex(regex::Regex),
}

impl Reader {
    /// A consumer on the configured brokers (nothing assigned yet).
    pub fn new(cfg: &ApplyConfig) -> Result<Self, ApplyError> {
        let consumer: StreamConsumer = base_client_config(&cfg.kafka.client())
            .set("group.id", format!("cdc-apply-{}", cfg.apply.name))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(|e| ApplyError::definite(format!("kafka consumer: {e}")))?;
        let registry =
            Registry::new(&cfg.schema_registry).map_err(|e| ApplyError::definite(e.to_string()))?;
        let topics = match &cfg.source.topic_regex {
            Some(re) => TopicSelection::Regex(
                regex::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| ApplyError::definite(format!("source.topic_regex: {e}")))?,
            ),
            None => TopicSelection::Names(cfg.source.topics.clone()),
        };
        Ok(Self {
            consumer,
            registry,
            topics,
            placeholder: cfg.apply.unavailable_value_placeholder.clone(),
            schemas: HashMap::new(),
            tables: HashMap::new(),
            assigned: HashSet::new(),
            names: HashMap::new(),
        })
    }

    /// Assigns every selected partition not assigned yet, each at its stored offset (the
    /// beginning when the target has none). Returns how many were added.
    pub async fn assign_new(&mut self, stored: &Offsets) -> Result<usize, ApplyError> {
        let found = self.partitions().await?;
        let mut tpl = TopicPartitionList::new();
        let mut added = Vec::new();
        for (topic, partition) in found {
            let topic = self.intern(&topic);
            if self.assigned.contains(&(topic.clone(), partition)) {
                continue;
            }
            let offset = match stored.get(&(topic.to_string(), partition)) {
                Some(o) => Offset::Offset(*o),
                None => Offset::Beginning,
            };
            tpl.add_partition_offset(&topic, partition, offset)
                .map_err(|e| ApplyError::definite(format!("assign {topic}/{partition}: {e}")))?;
            tracing::info!(topic = %topic, partition, ?offset, "partition assigned");
            added.push((topic, partition));
        }
        if added.is_empty() {
            return Ok(0);
        }
        self.consumer
            .incremental_assign(&tpl)
            .map_err(|e| ApplyError::transient(format!("kafka assign: {e}")))?;
        let n = added.len();
        self.assigned.extend(added);
        Ok(n)
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
        let decoded =
            apache_avro::from_avro_datum(&writer, &mut &value[5..], None).map_err(|e| {
                ApplyError::definite(format!("avro decode (schema id {value_id}): {e}"))
            })?;
        let Some(fields) = schema::record_fields(decoded) else {
            return Err(ApplyError::definite("value is not an Avro record".into()));
        };
        let mut op = String::new();
        let (mut before, mut after, mut table) = (None, None, None);
        for (name, v) in fields {
            match name.as_str() {
                "op" => {
                    if let apache_avro::types::Value::String(s) = v {
                        op = s;
                    }
                }
                "before" => before = schema::record_fields(v),
                "after" => after = schema::record_fields(v),
                "source" => {
                    table = schema::record_fields(v).and_then(|src| {
                        src.into_iter().find_map(|(k, v)| match (k.as_str(), v) {
                            ("table", apache_avro::types::Value::String(t)) => Some(t),
                            _ => None,
                        })
                    })
                }
                _ => {}
            }
        }
        let table = table.ok_or_else(|| {
            ApplyError::definite("value has no source.table: not a cdc-agent table event".into())
        })?;
        if op == "t" {
            return Ok(Some(Change::Truncate { table }));
        }
        let Some(key) = msg.key() else {
            return Err(ApplyError::definite(format!(
                "table `{table}` has no primary key (its events carry no Kafka key), so rows \
                 cannot be matched; fix: give the source table a primary key (or REPLICA \
                 IDENTITY with a key), or leave its topic out of [source]"
            )));
        };
        let key_id = schema_id(key)?;
        let info = self.table_info(value_id, key_id, &table).await?;
        let cells = |row: Vec<(String, apache_avro::types::Value)>| -> Vec<Cell> {
            let mut out = vec![Cell::Null; info.shape.columns.len()];
            for (name, v) in row {
                if let Some(i) = info.shape.index(&name) {
                    out[i] = schema::cell(v, &info.shape.columns[i].ty, &self.placeholder);
                }
            }
            out
        };
        Ok(Some(match (op.as_str(), before, after) {
            ("c" | "r" | "u", _, Some(row)) => Change::Upsert {
                table: info.clone(),
                row: cells(row),
            },
            ("d", Some(row), _) => {
                let row = cells(row);
                Change::Delete {
                    table: info.clone(),
                    key: info.key.iter().map(|&i| row[i].clone()).collect(),
                }
            }
            (op, _, _) => {
                return Err(ApplyError::definite(format!(
                    "table `{table}`: op `{op}` without the row image it needs"
                )))
            }
        }))
    }

    async fn writer_schema(&mut self, id: u32) -> Result<Arc<apache_avro::Schema>, ApplyError> {
        if let Some(s) = self.schemas.get(&id) {
            return Ok(s.clone());
        }
        let text = self.registry_text(id).await?;
        let parsed = apache_avro::Schema::parse_str(&text)
            .map_err(|e| ApplyError::definite(format!("writer schema {id}: {e}")))?;
        let s = Arc::new(parsed);
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

    async fn table_info(
        &mut self,
        value_id: u32,
        key_id: u32,
        table: &str,
    ) -> Result<Arc<TableInfo>, ApplyError> {
        if let Some(t) = self.tables.get(&(value_id, key_id)) {
            if t.name == table {
                return Ok(t.clone());
            }
        }
        let value_text = self.registry_text(value_id).await?;
        let key_text = self.registry_text(key_id).await?;
        let shape: Shape = schema::envelope_shape(&value_text)
            .map_err(|e| ApplyError::definite(format!("table `{table}`: {e}")))?;
        let key_json: serde_json::Value = serde_json::from_str(&key_text)
            .map_err(|e| ApplyError::definite(format!("key schema {key_id}: {e}")))?;
        let key_shape = schema::record_shape(&key_json)
            .map_err(|e| ApplyError::definite(format!("key schema {key_id}: {e}")))?;
        let key = key_shape
            .columns
            .iter()
            .map(|k| {
                shape.index(&k.name).ok_or_else(|| {
                    ApplyError::definite(format!(
                        "table `{table}`: key column `{}` is not a column of the value",
                        k.name
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let info = Arc::new(TableInfo {
            name: table.to_string(),
            schema_id: value_id,
            shape,
            key,
        });
        self.tables.insert((value_id, key_id), info.clone());
        Ok(info)
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
