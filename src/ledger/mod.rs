//! Reading the event store back.
//!
//! - `cdc-agent replay`: the selected events as JSON lines, or re-published into a topic (to
//!   rebuild a consumer's store);
//! - `cdc-agent history`: every version of one row, oldest first.
//!
//! Both read with `isolation.level=read_committed`, decode values with the writer schema
//! fetched from the registry by the id in their Confluent header (as any Confluent
//! deserializer does), and select on the record key (`<source>/<schema>.<table>/<key JSON>`,
//! see docs/event-store.md) and headers, so a record is decoded only when it is selected.
//! Records written without headers (`[event_store] headers = false`) are filtered on a start
//! time by their decoded value's `source.ts_ms` (the commit time) instead; a start position
//! needs the position header and is refused on them by name.
//! Order is the ledger's: per key, source commit order.

pub mod json;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::Config;
use crate::registry::Registry;
use crate::sink::kafka::{base_client_config, reach, AgentContext};
use cdc_codec::civil::{civil_from_days, days_from_civil};
use cdc_codec::lsn::Lsn;

/// How long the ledger tools wait for the brokers before giving up.
const REACH_TIMEOUT: Duration = Duration::from_secs(30);

/// Fails at once, naming the keys to fix, when the brokers refuse the login (otherwise the
/// tools would wait out their timeouts with a vague error). The probe is a producer because
/// its polling thread hands librdkafka's error events to our context whatever the caller does;
/// a consumer's only arrive through its own polls. Blocks for at most [`REACH_TIMEOUT`]: the
/// tools are short-lived commands, not the pipeline.
fn reach_brokers(cfg: &Config) -> anyhow::Result<()> {
    let context = AgentContext::default();
    let probe: FutureProducer<AgentContext> =
        base_client_config(&cfg.main.kafka).create_with_context(context.clone())?;
    let client = probe.client();
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(|| reach(client, &context, REACH_TIMEOUT))?;
    } else {
        reach(client, &context, REACH_TIMEOUT)?;
    }
    Ok(())
}

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// The ledger's beginning.
    Beginning,
    /// Events committed at or after this time (milliseconds since the epoch).
    Time(i64),
    /// Events at or after this source position (PostgreSQL LSN).
    Position(Lsn),
}

impl std::str::FromStr for From {
    type Err = String;

    /// `beginning`, an RFC 3339 time (`2026-11-26T15:00:00Z`), milliseconds since the epoch,
    /// or an LSN (`16/B374D848`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "beginning" {
            return Ok(From::Beginning);
        }
        if let Ok(lsn) = s.parse::<Lsn>() {
            if s.contains('/') {
                return Ok(From::Position(lsn));
            }
        }
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(From::Time(ms));
        }
        parse_rfc3339_ms(s).map(From::Time).ok_or_else(|| {
            format!(
                "`{s}` is neither `beginning`, an RFC 3339 time (2026-11-26T15:00:00Z), \
                 epoch milliseconds, nor an LSN (16/B374D848)"
            )
        })
    }
}

/// Which events to select.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Start point.
    pub from: From,
    /// Only this source.
    pub source: Option<String>,
    /// Only this table (`schema.table`).
    pub table: Option<String>,
    /// Only this key, as JSON (`{"id":42}`); compared as JSON values, so spacing is free.
    pub key: Option<serde_json::Value>,
    /// Keep reading new events instead of stopping at the end.
    pub follow: bool,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            from: From::Beginning,
            source: None,
            table: None,
            key: None,
            follow: false,
        }
    }
}

/// One selected ledger record.
#[derive(Debug, Clone)]
pub struct LedgerEvent {
    /// Partition and offset in the event store.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Source name.
    pub source: String,
    /// `schema.table`.
    pub table: String,
    /// The row key as JSON.
    pub key: serde_json::Value,
    /// The raw record key.
    pub raw_key: Vec<u8>,
    /// Headers as strings.
    pub headers: Vec<(String, String)>,
    /// The raw value (Confluent-framed Avro).
    pub raw_value: Option<Vec<u8>>,
}

impl LedgerEvent {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the event store and sends every selected event to `out` (bounded: a slow reader
/// slows the scan), until the end (or forever with `follow`, until `stop`). Returns how many
/// were selected.
pub async fn scan(
    cfg: &Config,
    sel: &Selection,
    mut stop: crate::shutdown::Shutdown,
    out: tokio::sync::mpsc::Sender<LedgerEvent>,
) -> anyhow::Result<u64> {
    let topic = crate::topics::event_store_topic(&cfg.main.event_store);
    reach_brokers(cfg)?;
    let consumer: StreamConsumer = base_client_config(&cfg.main.kafka)
        .set(
            "group.id",
            format!("cdc-agent-ledger-{}", std::process::id()),
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
        if !sel.follow {
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
    // A time start seeks with the broker's time index (record timestamps are produce times,
    // never earlier than commit times), then filters exactly on the commit-time header.
    if let From::Time(ms) = sel.from {
        let mut times = TopicPartitionList::new();
        for p in &partitions {
            times.add_partition_offset(topic, *p, Offset::Offset(ms))?;
        }
        if let Ok(found) = consumer.offsets_for_times(times, Duration::from_secs(30)) {
            for el in found.elements() {
                if let Offset::Offset(o) = el.offset() {
                    tpl.set_partition_offset(topic, el.partition(), Offset::Offset(o))?;
                }
            }
        }
    }
    consumer.assign(&tpl)?;
    let mut at_end: HashMap<i32, bool> = partitions.iter().map(|p| (*p, false)).collect();
    let mut selected = 0u64;
    // Made at the first record without headers that a start time must judge.
    let mut decoder: Option<Decoder> = None;
    loop {
        let msg = tokio::select! {
            m = consumer.recv() => m,
            _ = stop.wait() => break,
        };
        let msg = match msg {
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                at_end.insert(p, true);
                if !sel.follow && at_end.values().all(|e| *e) {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
            Ok(m) => m,
        };
        at_end.insert(msg.partition(), false);
        let verdict = select(&msg, sel)?;
        drop(msg);
        let ev = match verdict {
            Verdict::Skip => continue,
            Verdict::Take(ev) => ev,
            Verdict::TakeIfCommittedSince(ev, ms) => {
                let decoder = match &mut decoder {
                    Some(d) => d,
                    None => decoder.insert(Decoder::new(cfg)?),
                };
                let at = match &ev.raw_value {
                    Some(v) => commit_ms_of(&decoder.decode(v).await?),
                    None => None,
                };
                // A record whose commit time cannot be read is kept: a replay never drops
                // what it cannot judge.
                if at.is_some_and(|t| t < ms) {
                    continue;
                }
                ev
            }
        };
        selected += 1;
        if out.send(ev).await.is_err() {
            break; // the reader stopped
        }
    }
    Ok(selected)
}

/// The commit time of a decoded event (`source.ts_ms`), milliseconds since the epoch.
fn commit_ms_of(value: &serde_json::Value) -> Option<i64> {
    value.get("source")?.get("ts_ms")?.as_i64()
}

/// What [`select`] decided about one record.
enum Verdict {
    /// Not selected.
    Skip,
    /// Selected.
    Take(LedgerEvent),
    /// Selected by key, but the record carries no commit-time header (`[event_store] headers =
    /// false`): kept when its decoded value was committed at or after this time.
    TakeIfCommittedSince(LedgerEvent, i64),
}

fn select(msg: &BorrowedMessage<'_>, sel: &Selection) -> anyhow::Result<Verdict> {
    let raw_key = msg.key().unwrap_or_default();
    let key_text = String::from_utf8_lossy(raw_key);
    let mut parts = key_text.splitn(3, '/');
    let (source, table, key_json) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if sel.source.as_deref().is_some_and(|s| s != source)
        || sel.table.as_deref().is_some_and(|t| t != table)
    {
        return Ok(Verdict::Skip);
    }
    let key: serde_json::Value = serde_json::from_str(key_json).unwrap_or(serde_json::Value::Null);
    if sel.key.as_ref().is_some_and(|k| *k != key) {
        return Ok(Verdict::Skip);
    }
    let mut headers = Vec::new();
    if let Some(h) = msg.headers() {
        for hd in h.iter() {
            let v = String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned();
            headers.push((hd.key.to_string(), v));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut since = None;
    match sel.from {
        From::Beginning => {}
        From::Time(ms) => match header("cdc.commit_ts_ms") {
            Some(at) => {
                if at.parse::<i64>().map_or(true, |at| at < ms) {
                    return Ok(Verdict::Skip);
                }
            }
            None => since = Some(ms),
        },
        From::Position(lsn) => match header("cdc.position") {
            Some(at) => {
                if at.parse::<Lsn>().map_or(true, |at| at < lsn) {
                    return Ok(Verdict::Skip);
                }
            }
            None => anyhow::bail!(
                "cannot replay from position {lsn}: the event-store record at partition {} \
                 offset {} has no `cdc.position` header (it was written with `[event_store] \
                 headers = false`); replay from a commit time (--from 2026-11-26T15:00:00Z) or \
                 from the beginning",
                msg.partition(),
                msg.offset()
            ),
        },
    }
    let ev = LedgerEvent {
        partition: msg.partition(),
        offset: msg.offset(),
        source: source.to_string(),
        table: table.to_string(),
        key,
        raw_key: raw_key.to_vec(),
        headers,
        raw_value: msg.payload().map(<[u8]>::to_vec),
    };
    Ok(match since {
        Some(ms) => Verdict::TakeIfCommittedSince(ev, ms),
        None => Verdict::Take(ev),
    })
}

/// Decodes values through the registry, caching parsed schemas (and their named types) by id.
pub struct Decoder {
    registry: Registry,
    schemas: HashMap<u32, Arc<(apache_avro::Schema, json::Names)>>,
}

impl Decoder {
    /// A decoder on the configured registry.
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            registry: Registry::new(&cfg.main.schema_registry)?,
            schemas: HashMap::new(),
        })
    }

    /// Decodes one Confluent-framed Avro value to JSON (decimals as decimal strings, bytes
    /// as base64: see [`json`]).
    pub async fn decode(&mut self, bytes: &[u8]) -> anyhow::Result<serde_json::Value> {
        // A source with `format = "json"` mirrors Connect JSON: its payload is the event.
        if bytes.first() == Some(&b'{') {
            let mut v: serde_json::Value = serde_json::from_slice(bytes)?;
            if let Some(payload) = v.get_mut("payload").filter(|_| v_has_schema(bytes)) {
                return Ok(payload.take());
            }
            return Ok(v);
        }
        if bytes.len() < 5 || bytes[0] != 0 {
            anyhow::bail!("value is not in the Confluent wire format");
        }
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let schema = match self.schemas.get(&id) {
            Some(s) => s.clone(),
            None => {
                let text = self.registry.schema_by_id(id).await?;
                let parsed = apache_avro::Schema::parse_str(&text)?;
                let names = json::Names::of(&parsed);
                let s = Arc::new((parsed, names));
                self.schemas.insert(id, s.clone());
                s
            }
        };
        let (schema, names) = &*schema;
        let value = apache_avro::from_avro_datum(schema, &mut &bytes[5..], None)?;
        Ok(json::to_json(value, schema, names)?)
    }
}

/// Whether a JSON record is a `{"schema":…,"payload":…}` envelope (JsonConverter with
/// schemas), told by its first key.
fn v_has_schema(bytes: &[u8]) -> bool {
    bytes.starts_with(b"{\"schema\":")
}

/// `cdc-agent replay`: the selection as JSON lines on `out`.
pub async fn replay_json(
    cfg: &Config,
    sel: &Selection,
    stop: crate::shutdown::Shutdown,
    out: &mut (impl Write + Send),
) -> anyhow::Result<u64> {
    let mut decoder = Decoder::new(cfg)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<LedgerEvent>(1024);
    let scanning = scan(cfg, sel, stop, tx);
    let printing = async {
        while let Some(ev) = rx.recv().await {
            let value = match &ev.raw_value {
                Some(v) => decoder.decode(v).await?,
                None => serde_json::Value::Null,
            };
            let headers: serde_json::Map<String, serde_json::Value> = ev
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let line = serde_json::json!({
                "partition": ev.partition,
                "offset": ev.offset,
                "source": ev.source,
                "table": ev.table,
                "key": ev.key,
                "headers": headers,
                "value": value,
            });
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
        anyhow::Ok(())
    };
    let (scanned, printed) = tokio::join!(scanning, printing);
    printed?;
    scanned
}

/// `cdc-agent replay --to-topic`: re-publishes the selection into `topic` (created when
/// missing) with the ledger's keys, values and headers, in one Kafka transaction so a
/// read_committed consumer sees all of it or nothing.
pub async fn replay_to_topic(
    cfg: &Config,
    sel: &Selection,
    stop: crate::shutdown::Shutdown,
    topic: &str,
) -> anyhow::Result<u64> {
    reach_brokers(cfg)?;
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        base_client_config(&cfg.main.kafka).create()?;
    let new = rdkafka::admin::NewTopic::new(
        topic,
        cfg.main.kafka.topic_partitions,
        rdkafka::admin::TopicReplication::Fixed(cfg.main.kafka.topic_replication_factor),
    );
    let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics(&[new], &opts).await? {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => anyhow::bail!("create topic `{topic}`: {code}"),
        }
    }
    let producer: FutureProducer = base_client_config(&cfg.main.kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set(
            "transactional.id",
            format!("cdc-agent-replay-{topic}-{}", std::process::id()),
        )
        .create()?;
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.init_transactions(Duration::from_secs(60))).await??;
    producer.begin_transaction()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<LedgerEvent>(1024);
    let scanning = scan(cfg, sel, stop, tx);
    let producing = async {
        let mut pending = futures_util::stream::FuturesOrdered::new();
        while let Some(ev) = rx.recv().await {
            let mut headers = OwnedHeaders::new_with_capacity(ev.headers.len());
            for (k, v) in &ev.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                .key(&ev.raw_key[..])
                .headers(headers);
            if let Some(v) = &ev.raw_value {
                rec = rec.payload(&v[..]);
            }
            let fut = producer
                .send_result(rec)
                .map_err(|(e, _)| anyhow::anyhow!("produce to `{topic}`: {e}"))?;
            pending.push_back(fut);
            while pending.len() > 10_000 {
                if let Some(r) = futures_util::StreamExt::next(&mut pending).await {
                    r?.map_err(|(e, _)| anyhow::anyhow!("produce to `{topic}`: {e}"))?;
                }
            }
        }
        while let Some(r) = futures_util::StreamExt::next(&mut pending).await {
            r?.map_err(|(e, _)| anyhow::anyhow!("produce to `{topic}`: {e}"))?;
        }
        anyhow::Ok(())
    };
    let (scanned, produced) = tokio::join!(scanning, producing);
    let count = scanned?;
    produced?;
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.commit_transaction(Duration::from_secs(60))).await??;
    Ok(count)
}

/// `cdc-agent history`: every version of one row as lines of
/// `<commit time>  <op>  txid=<id>  position=<pos>  <row JSON>`, oldest first.
pub async fn history(
    cfg: &Config,
    sel: &Selection,
    stop: crate::shutdown::Shutdown,
    out: &mut (impl Write + Send),
) -> anyhow::Result<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<LedgerEvent>(1024);
    let collect = async {
        let mut events = Vec::new();
        while let Some(ev) = rx.recv().await {
            events.push(ev);
        }
        events
    };
    let (scanned, events) = tokio::join!(scan(cfg, sel, stop, tx), collect);
    scanned?;
    let mut decoder = Decoder::new(cfg)?;
    for ev in &events {
        let value = match &ev.raw_value {
            Some(v) => decoder.decode(v).await?,
            None => serde_json::Value::Null,
        };
        let row = match value.get("after") {
            Some(serde_json::Value::Null) | None => value.get("before").cloned(),
            Some(a) => Some(a.clone()),
        }
        .unwrap_or(serde_json::Value::Null);
        // Records without headers (`[event_store] headers = false`): the same facts from the
        // value, except the commit position, which only the header carries.
        let when = ev
            .header("cdc.commit_ts_ms")
            .and_then(|t| t.parse::<i64>().ok())
            .or_else(|| commit_ms_of(&value))
            .map(format_rfc3339_ms)
            .unwrap_or_else(|| "-".into());
        let txid = match ev.header("cdc.txid") {
            Some(t) => t.to_owned(),
            None => txid_of(&value).unwrap_or_default(),
        };
        writeln!(
            out,
            "{when}  {op}  txid={txid}  position={pos}  {row}",
            op = ev
                .header("cdc.op")
                .or_else(|| value.get("op").and_then(|o| o.as_str()))
                .unwrap_or("?"),
            txid = if txid.is_empty() { "-" } else { &txid },
            pos = ev.header("cdc.position").unwrap_or("-"),
        )?;
    }
    Ok(events.len() as u64)
}

/// The source transaction of a decoded event: the transaction block's id when the source
/// provides transaction metadata, else PostgreSQL's `source.txId` or MySQL's `source.gtid`.
fn txid_of(value: &serde_json::Value) -> Option<String> {
    if let Some(id) = value
        .get("transaction")
        .and_then(|t| t.get("id"))
        .and_then(|i| i.as_str())
    {
        return Some(id.to_owned());
    }
    let source = value.get("source")?;
    match (source.get("txId"), source.get("gtid")) {
        (Some(serde_json::Value::Number(n)), _) => Some(n.to_string()),
        (_, Some(serde_json::Value::String(g))) => Some(g.clone()),
        _ => None,
    }
}

/// `2026-11-26T15:00:00Z` or `2026-11-26T15:00:00.123Z` (UTC only) → epoch milliseconds.
pub(crate) fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':');
    let (h, mi, sec): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    // Operator input: out-of-range parts or a non-digit fraction are refused, never sliced or
    // multiplied past i64.
    if !(0..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=60).contains(&sec)
        || frac.is_empty()
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    Some(((days_from_civil(y, m, day) * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_start_points_parse_from_times_positions_and_beginning() {
        assert_eq!("beginning".parse::<From>().unwrap(), From::Beginning);
        assert_eq!(
            "2026-11-26T15:00:00Z".parse::<From>().unwrap(),
            From::Time(1_795_705_200_000)
        );
        assert_eq!(
            "1795705200123".parse::<From>().unwrap(),
            From::Time(1_795_705_200_123)
        );
        assert_eq!(
            "16/B374D848".parse::<From>().unwrap(),
            From::Position(Lsn(0x16_B374_D848))
        );
        assert!("yesterday".parse::<From>().is_err());
    }

    #[test]
    fn commit_times_print_as_utc_rfc3339() {
        assert_eq!(
            format_rfc3339_ms(1_795_705_200_123),
            "2026-11-26T15:00:00.123Z"
        );
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.5Z"), Some(500));
    }

    #[test]
    fn a_malformed_time_is_refused_without_panicking() {
        for bad in [
            "2026-11-26T15:00:00.ééZ",
            "2026-11-26T15:00:00.Z",
            "2026-11-26T15:00:00.-1Z",
            "99999999999999-01-01T00:00:00Z",
            "-99999999999999-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T15:99999999999999:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(
            parse_rfc3339_ms("2026-11-26T15:00:00.123456Z"),
            Some(1_795_705_200_123)
        );
    }
}
