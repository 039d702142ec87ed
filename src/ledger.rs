//! Reading the event store back: `cdc-agent replay` prints ledger events as JSON lines.
//!
//! It reads with `isolation.level=read_committed`, decodes each value with the writer schema
//! fetched from the registry by the id in its Confluent header (as any Confluent deserializer
//! does), and filters on the record key (`<source>/<schema>.<table>/<key JSON>`, see
//! docs/event-store.md) so a selection never needs the value decoded first.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::Config;
use crate::registry::Registry;
use crate::sink::kafka::base_client_config;

/// What to print.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only this source.
    pub source: Option<String>,
    /// Only this table (`schema.table`).
    pub table: Option<String>,
    /// Only this key JSON (exactly as in the record key, e.g. `{"id":42}`).
    pub key: Option<String>,
    /// Keep reading new events instead of stopping at the end.
    pub follow: bool,
}

/// Prints the event store's events as JSON lines on `out` until its end (or forever with
/// `follow`, until `stop`).
pub async fn replay(
    cfg: &Config,
    filter: &ReplayFilter,
    mut stop: crate::shutdown::Shutdown,
    out: &mut (impl Write + Send),
) -> anyhow::Result<u64> {
    let topic = &cfg.main.event_store.topic;
    let registry = Registry::new(&cfg.main.schema_registry)?;
    let consumer: StreamConsumer = base_client_config(&cfg.main.kafka)
        .set(
            "group.id",
            format!("cdc-agent-replay-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()?;
    let partitions: Vec<i32> = loop {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
        let found: Vec<i32> = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if !found.is_empty() {
            break found;
        }
        if !filter.follow {
            anyhow::bail!("event-store topic `{topic}` does not exist (yet)");
        }
        // Following a ledger that the agent has not created yet: wait for it.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            _ = stop.wait() => return Ok(0),
        }
    };
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut at_end: HashMap<i32, bool> = partitions.iter().map(|p| (*p, false)).collect();
    let mut schemas: HashMap<u32, Arc<apache_avro::Schema>> = HashMap::new();
    let mut printed = 0u64;
    loop {
        let msg = tokio::select! {
            m = consumer.recv() => m,
            _ = stop.wait() => break,
        };
        let msg = match msg {
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                at_end.insert(p, true);
                if !filter.follow && at_end.values().all(|e| *e) {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
            Ok(m) => m,
        };
        at_end.insert(msg.partition(), false);
        let key = msg.key().map(String::from_utf8_lossy).unwrap_or_default();
        let mut parts = key.splitn(3, '/');
        let (source, table, key_json) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if filter.source.as_deref().is_some_and(|s| s != source)
            || filter.table.as_deref().is_some_and(|t| t != table)
            || filter.key.as_deref().is_some_and(|k| k != key_json)
        {
            continue;
        }
        let mut headers = serde_json::Map::new();
        if let Some(h) = msg.headers() {
            for hd in h.iter() {
                let v = String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned();
                headers.insert(hd.key.to_string(), serde_json::Value::String(v));
            }
        }
        let value = match msg.payload() {
            Some(p) => decode(&registry, &mut schemas, p).await?,
            None => serde_json::Value::Null,
        };
        let line = serde_json::json!({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "source": source,
            "table": table,
            "key": serde_json::from_str::<serde_json::Value>(key_json).unwrap_or(serde_json::Value::Null),
            "headers": headers,
            "value": value,
        });
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
        out.flush()?;
        printed += 1;
    }
    Ok(printed)
}

/// Decodes one Confluent-framed Avro value to JSON.
async fn decode(
    registry: &Registry,
    schemas: &mut HashMap<u32, Arc<apache_avro::Schema>>,
    bytes: &[u8],
) -> anyhow::Result<serde_json::Value> {
    if bytes.len() < 5 || bytes[0] != 0 {
        anyhow::bail!("value is not in the Confluent wire format");
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let schema = match schemas.get(&id) {
        Some(s) => s.clone(),
        None => {
            let text = registry.schema_by_id(id).await?;
            let s = Arc::new(apache_avro::Schema::parse_str(&text)?);
            schemas.insert(id, s.clone());
            s
        }
    };
    let value = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None)?;
    Ok(serde_json::Value::try_from(value)?)
}
