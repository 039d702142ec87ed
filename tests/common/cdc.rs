//! Helpers of the load, crash and fault tests (postgres::snapshot, postgres::schema_change,
//! postgres::crash, outages::postgres_registry): an incremental topic reader, decoding of int-keyed
//! change events, registry look-ups, and clean-up of a test's topics and subjects.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use apache_avro::types::Value as Avro;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::agent::{field, unwrap_union, Agent, AvroDecoder, Record};
use super::kafka;
use super::stack_env;

/// Reads one topic from the beginning, incrementally (read_committed): each call returns
/// only records not returned before, so a test can follow a topic of millions of records.
pub struct TopicTail {
    consumer: BaseConsumer,
    topic: String,
    partitions: Vec<i32>,
    /// Records returned so far.
    pub seen: usize,
}

impl TopicTail {
    /// Waits (up to `timeout`) for the topic to exist, then reads it from the beginning.
    pub fn open(topic: &str, timeout: Duration) -> TopicTail {
        let (consumer, partitions) = kafka::from_start(
            topic,
            "test-tail",
            &[("fetch.max.bytes", "52428800")],
            timeout,
        );
        TopicTail {
            consumer,
            topic: topic.to_string(),
            partitions,
            seen: 0,
        }
    }

    /// The records that arrive within `budget` (returns early once the topic is caught up
    /// and nothing came for a moment, or after 100k records).
    pub fn poll(&mut self, budget: Duration) -> Vec<Record> {
        let start = Instant::now();
        let mut out = Vec::new();
        while start.elapsed() < budget && out.len() < 100_000 {
            match kafka::poll(&self.consumer, Duration::from_millis(100)) {
                Some(Ok(record)) => out.push(record),
                Some(Err(e)) => panic!("reading {}: {e}", self.topic),
                None if !out.is_empty() => break,
                None => {}
            }
        }
        self.seen += out.len();
        out
    }

    /// Whether every record the topic holds now was read: the consumer's position is at each
    /// partition's high watermark. Unlike comparing [`TopicTail::end`] with `seen`, this holds
    /// with transaction markers, which take offsets but are never returned.
    pub fn caught_up(&self) -> bool {
        let Ok(positions) = self.consumer.position() else {
            return false;
        };
        self.partitions.iter().all(|p| {
            let high = self
                .consumer
                .fetch_watermarks(&self.topic, *p, Duration::from_secs(10))
                .map(|(_, high)| high)
                .unwrap_or(i64::MAX);
            let at = positions
                .find_partition(&self.topic, *p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(0);
            at >= high
        })
    }

    /// Sum of the partitions' high watermarks: how many records the topic holds (cheap; no
    /// reading; transaction markers included).
    pub fn end(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| {
                self.consumer
                    .fetch_watermarks(&self.topic, *p, Duration::from_secs(10))
                    .map(|(_, high)| high)
                    .unwrap_or(0)
            })
            .sum()
    }
}

/// One change of a table keyed by an integer column, decoded with the standard reader.
#[derive(Debug, Clone)]
pub struct Change {
    /// The key column's value.
    pub id: i64,
    /// `op` of the envelope; `None` for a tombstone.
    pub op: Option<String>,
    /// The `after` row (a record), when there is one.
    pub after: Option<Avro>,
}

/// An int/long as i64.
pub fn as_i64(v: &Avro) -> i64 {
    match unwrap_union(v) {
        Avro::Int(i) => i64::from(*i),
        Avro::Long(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// A string field value, `None` for null.
pub fn as_opt_string(v: &Avro) -> Option<String> {
    match unwrap_union(v) {
        Avro::Null => None,
        Avro::String(s) => Some(s.clone()),
        other => panic!("not a string: {other:?}"),
    }
}

/// Whether a record has a field.
pub fn has_field(v: &Avro, name: &str) -> bool {
    match unwrap_union(v) {
        Avro::Record(fields) => fields.iter().any(|(n, _)| n == name),
        _ => false,
    }
}

fn envelope(dec: &mut AvroDecoder, value: Option<&[u8]>) -> (Option<String>, Option<Avro>) {
    match value {
        None => (None, None),
        Some(v) => {
            let v = dec.decode(v);
            let op = match field(&v, "op") {
                Avro::String(s) => s.clone(),
                other => panic!("op: {other:?}"),
            };
            let after = match unwrap_union(field(&v, "after")) {
                Avro::Null => None,
                a => Some(a.clone()),
            };
            (Some(op), after)
        }
    }
}

/// Decodes a table-topic record whose key is the single integer column `key_col`.
pub fn decode_table_change(dec: &mut AvroDecoder, r: &Record, key_col: &str) -> Change {
    let key = dec.decode(r.key.as_ref().expect("table record without key"));
    let id = as_i64(field(&key, key_col));
    let (op, after) = envelope(dec, r.value.as_deref());
    Change { id, op, after }
}

/// Decodes an event-store record (`<source>/<schema>.<table>/{"<key_col>":N}`).
pub fn decode_ledger_change(dec: &mut AvroDecoder, r: &Record, key_col: &str) -> Change {
    let key = String::from_utf8(r.key.clone().expect("ledger record without key")).unwrap();
    let json = key.splitn(3, '/').nth(2).expect("ledger key has 3 parts");
    let j: serde_json::Value = serde_json::from_str(json).unwrap();
    let id = j[key_col]
        .as_i64()
        .unwrap_or_else(|| panic!("ledger key {key}"));
    let (op, after) = envelope(dec, r.value.as_deref());
    Change { id, op, after }
}

/// Blocking HTTP from a test thread that may or may not be inside a runtime.
fn http(method: &str, url: &str) -> (u16, serde_json::Value) {
    let (method, url) = (method.to_string(), url.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = reqwest::Client::new();
            let req = match method.as_str() {
                "DELETE" => client.delete(&url),
                _ => client.get(&url),
            };
            match req.timeout(Duration::from_secs(10)).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
                    (status, body)
                }
                Err(_) => (0, serde_json::Value::Null),
            }
        })
    })
    .join()
    .unwrap()
}

/// Versions registered under `subject` (`GET /subjects/<subject>/versions`); empty when
/// the subject does not exist.
pub fn subject_versions(subject: &str) -> Vec<i64> {
    let url = format!(
        "{}/subjects/{subject}/versions",
        stack_env("SCHEMA_REGISTRY_URL")
    );
    match http("GET", &url) {
        (200, serde_json::Value::Array(v)) => v.iter().filter_map(|x| x.as_i64()).collect(),
        _ => Vec::new(),
    }
}

/// The schema text of the latest version under `subject`; empty when there is none.
pub fn latest_schema(subject: &str) -> String {
    let url = format!(
        "{}/subjects/{subject}/versions/latest",
        stack_env("SCHEMA_REGISTRY_URL")
    );
    match http("GET", &url) {
        (200, v) => v["schema"].as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// Waits for `needle` in the agent's log; panics with the log after `timeout`, or at once
/// when the agent exited.
pub fn wait_log(agent: &mut Agent, needle: &str, timeout: Duration) {
    wait_log_after(agent, 0, needle, timeout)
}

/// The log is appended across restarts: the length now marks where the next run starts.
pub fn log_mark(agent: &Agent) -> usize {
    agent.log().len()
}

/// The log written after `mark` (see [`log_mark`]).
pub fn log_after(agent: &Agent, mark: usize) -> String {
    agent.log().get(mark..).unwrap_or_default().to_string()
}

/// [`wait_log`] looking only at what was logged after `mark`.
pub fn wait_log_after(agent: &mut Agent, mark: usize, needle: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        if log_after(agent, mark).contains(needle) {
            return;
        }
        if let Ok(Some(status)) = agent.child.try_wait() {
            panic!(
                "agent exited ({status}) while waiting for `{needle}`; log:\n{}",
                agent.log()
            );
        }
        assert!(
            start.elapsed() < timeout,
            "no `{needle}` in the agent log after {timeout:?}; log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Panics with the log when the agent process has exited.
pub fn assert_alive(agent: &mut Agent) {
    if let Ok(Some(status)) = agent.child.try_wait() {
        panic!("agent exited ({status}); log:\n{}", agent.log());
    }
}

/// Deletes, when dropped, every Kafka topic and registry subject whose name starts with
/// `<prefix>.` (a test's topic prefix, event store `<prefix>.events` and offsets topic).
/// Declare it before the agent so it runs after the agent is gone.
pub struct StackCleanup {
    pub prefix: String,
}

impl Drop for StackCleanup {
    fn drop(&mut self) {
        let prefix = format!("{}.", self.prefix);
        let registry = stack_env("SCHEMA_REGISTRY_URL");
        if let (200, serde_json::Value::Array(subjects)) =
            http("GET", &format!("{registry}/subjects"))
        {
            for s in subjects.iter().filter_map(|s| s.as_str()) {
                if s.starts_with(&prefix) {
                    let _ = http("DELETE", &format!("{registry}/subjects/{s}"));
                    let _ = http("DELETE", &format!("{registry}/subjects/{s}?permanent=true"));
                }
            }
        }
        let bootstrap = stack_env("KAFKA_BOOTSTRAP");
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok(admin) = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .create::<AdminClient<DefaultClientContext>>()
                else {
                    return;
                };
                let Ok(md) = admin.inner().fetch_metadata(None, Duration::from_secs(10)) else {
                    return;
                };
                let topics: Vec<String> = md
                    .topics()
                    .iter()
                    .map(|t| t.name().to_string())
                    .filter(|n| n.starts_with(&prefix))
                    .collect();
                if !topics.is_empty() {
                    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                    let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
                }
            });
        })
        .join();
    }
}

/// A compiled Avro schema, enough to walk a datum (logical types read as their base type).
#[derive(Debug, Clone)]
enum Shape {
    Null,
    Bool,
    Int,
    Float,
    Double,
    Bytes,
    Fixed(usize),
    Enum,
    Array(Box<Shape>),
    Map(Box<Shape>),
    Union(Vec<Shape>),
    Record(Vec<(String, Shape)>),
}

fn compile(j: &serde_json::Value, ns: &str, named: &mut HashMap<String, Shape>) -> Shape {
    use serde_json::Value as J;
    let primitive = |t: &str| match t {
        "null" => Some(Shape::Null),
        "boolean" => Some(Shape::Bool),
        // int and long share the zigzag varint encoding
        "int" | "long" => Some(Shape::Int),
        "float" => Some(Shape::Float),
        "double" => Some(Shape::Double),
        "bytes" | "string" => Some(Shape::Bytes),
        _ => None,
    };
    match j {
        J::String(t) => primitive(t).unwrap_or_else(|| {
            named
                .get(t.as_str())
                .or_else(|| named.get(&format!("{ns}.{t}")))
                .cloned()
                .unwrap_or_else(|| panic!("unknown Avro type {t}"))
        }),
        J::Array(branches) => {
            Shape::Union(branches.iter().map(|b| compile(b, ns, named)).collect())
        }
        J::Object(o) => {
            let t = o["type"].as_str().map(str::to_string);
            let ns = o
                .get("namespace")
                .and_then(|n| n.as_str())
                .unwrap_or(ns)
                .to_string();
            let full = |name: &str| {
                if name.contains('.') || ns.is_empty() {
                    name.to_string()
                } else {
                    format!("{ns}.{name}")
                }
            };
            let shape = match t.as_deref() {
                Some("record") | Some("error") => {
                    let name = o["name"].as_str().unwrap();
                    let fields = o["fields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| {
                            (
                                f["name"].as_str().unwrap().to_string(),
                                compile(&f["type"], &ns, named),
                            )
                        })
                        .collect();
                    let s = Shape::Record(fields);
                    named.insert(full(name), s.clone());
                    named.insert(name.rsplit('.').next().unwrap().to_string(), s.clone());
                    return s;
                }
                Some("enum") => Shape::Enum,
                Some("fixed") => Shape::Fixed(o["size"].as_u64().unwrap() as usize),
                Some("array") => Shape::Array(Box::new(compile(&o["items"], &ns, named))),
                Some("map") => Shape::Map(Box::new(compile(&o["values"], &ns, named))),
                Some(p) => primitive(p).unwrap_or_else(|| compile(&o["type"], &ns, named)),
                None => compile(&o["type"], &ns, named),
            };
            if let Some(name) = o.get("name").and_then(|n| n.as_str()) {
                named.insert(full(name), shape.clone());
                named.insert(name.rsplit('.').next().unwrap().to_string(), shape.clone());
            }
            shape
        }
        other => panic!("bad Avro schema node {other}"),
    }
}

fn varint(buf: &mut &[u8]) -> i64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = buf[0];
        *buf = &buf[1..];
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = buf.split_at(n);
    *buf = b;
    a
}

fn skip(s: &Shape, buf: &mut &[u8]) {
    match s {
        Shape::Null => {}
        Shape::Bool => {
            take(buf, 1);
        }
        Shape::Int | Shape::Enum => {
            varint(buf);
        }
        Shape::Float => {
            take(buf, 4);
        }
        Shape::Double => {
            take(buf, 8);
        }
        Shape::Bytes => {
            let n = varint(buf) as usize;
            take(buf, n);
        }
        Shape::Fixed(n) => {
            take(buf, *n);
        }
        Shape::Array(item) | Shape::Map(item) => loop {
            let mut n = varint(buf);
            if n == 0 {
                break;
            }
            if n < 0 {
                n = -n;
                varint(buf); // block size in bytes
            }
            for _ in 0..n {
                if matches!(s, Shape::Map(_)) {
                    skip(&Shape::Bytes, buf);
                }
                skip(item, buf);
            }
        },
        Shape::Union(branches) => {
            let i = varint(buf) as usize;
            skip(&branches[i], buf);
        }
        Shape::Record(fields) => {
            for (_, f) in fields {
                skip(f, buf);
            }
        }
    }
}

/// Reads a field's value as a scalar (through unions): `None` for null.
enum Scalar {
    Null,
    Int(i64),
    Str(String),
}

fn read_scalar(s: &Shape, buf: &mut &[u8]) -> Scalar {
    match s {
        Shape::Null => Scalar::Null,
        Shape::Int => Scalar::Int(varint(buf)),
        Shape::Bytes => {
            let n = varint(buf) as usize;
            Scalar::Str(String::from_utf8_lossy(take(buf, n)).into_owned())
        }
        Shape::Union(b) => {
            let i = varint(buf) as usize;
            read_scalar(&b[i], buf)
        }
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Reads field `want` of a record (`None` when the record lacks it).
fn record_field(s: &Shape, buf: &mut &[u8], want: &str) -> Option<Scalar> {
    let Shape::Record(fields) = s else {
        panic!("not a record: {s:?}")
    };
    let mut out = None;
    for (name, f) in fields {
        if name == want {
            out = Some(read_scalar(f, buf));
        } else {
            skip(f, buf);
        }
    }
    out
}

/// Decodes Debezium envelopes of a table keyed by one integer column, with each record's
/// writer schema from the registry (by id, like a Confluent deserializer) — fast enough for
/// topics of a million records in a debug build. Every `check_every`-th record is also
/// decoded by the standard reader ([`AvroDecoder`]) and the results compared.
pub struct FastDecoder {
    shapes: HashMap<u32, std::sync::Arc<Shape>>,
    standard: AvroDecoder,
    check_every: usize,
    n: usize,
    /// Records cross-checked against the standard reader.
    pub checked: usize,
}

/// What [`FastDecoder`] extracts from one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slim {
    /// The key column.
    pub id: i64,
    /// `op`; `None` for a tombstone.
    pub op: Option<String>,
    /// The chosen column of `after` (`None` without `after` or when null).
    pub col: Option<i64>,
}

impl FastDecoder {
    pub fn new(check_every: usize) -> Self {
        FastDecoder {
            shapes: HashMap::new(),
            standard: AvroDecoder::new(),
            check_every: check_every.max(1),
            n: 0,
            checked: 0,
        }
    }

    fn shape(&mut self, bytes: &[u8]) -> std::sync::Arc<Shape> {
        assert!(bytes.len() >= 5 && bytes[0] == 0, "Confluent framing");
        let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
        let shape = self.shapes.entry(id).or_insert_with(|| {
            let url = format!("{}/schemas/ids/{id}", stack_env("SCHEMA_REGISTRY_URL"));
            let (status, body) = http("GET", &url);
            assert_eq!(status, 200, "schema {id}: {body}");
            let j: serde_json::Value =
                serde_json::from_str(body["schema"].as_str().unwrap()).unwrap();
            std::sync::Arc::new(compile(&j, "", &mut HashMap::new()))
        });
        shape.clone()
    }

    fn envelope(&mut self, value: Option<&[u8]>, col: &str) -> (Option<String>, Option<i64>) {
        let Some(v) = value else { return (None, None) };
        let shape = self.shape(v);
        let Shape::Record(fields) = &*shape else {
            panic!("envelope is not a record")
        };
        let mut buf = &v[5..];
        let (mut op, mut out) = (None, None);
        for (name, f) in fields {
            match name.as_str() {
                "op" => {
                    if let Scalar::Str(s) = read_scalar(f, &mut buf) {
                        op = Some(s);
                    }
                }
                "after" => {
                    let Shape::Union(b) = f else {
                        panic!("after is not a union")
                    };
                    let i = varint(&mut buf) as usize;
                    if let Shape::Record(_) = &b[i] {
                        if let Some(Scalar::Int(x)) = record_field(&b[i], &mut buf, col) {
                            out = Some(x);
                        }
                    }
                }
                _ => skip(f, &mut buf),
            }
        }
        assert!(
            buf.is_empty(),
            "{} bytes left after the envelope",
            buf.len()
        );
        (op, out)
    }

    fn cross_check(&mut self, r: &Record, key_col: &str, col: &str, slim: &Slim, ledger: bool) {
        self.n += 1;
        if self.n % self.check_every != 0 {
            return;
        }
        let c = if ledger {
            decode_ledger_change(&mut self.standard, r, key_col)
        } else {
            decode_table_change(&mut self.standard, r, key_col)
        };
        let std_col = c
            .after
            .as_ref()
            .and_then(|a| match unwrap_union(field(a, col)) {
                Avro::Null => None,
                other => Some(as_i64(other)),
            });
        let std = Slim {
            id: c.id,
            op: c.op,
            col: std_col,
        };
        assert_eq!(&std, slim, "fast and standard Avro readers disagree");
        self.checked += 1;
    }

    /// A table-topic record: key `{key_col}` (int/long), `after.{col}`.
    pub fn table(&mut self, r: &Record, key_col: &str, col: &str) -> Slim {
        let key = r.key.as_deref().expect("table record without key");
        let kshape = self.shape(key);
        let mut buf = &key[5..];
        let id = match record_field(&kshape, &mut buf, key_col) {
            Some(Scalar::Int(i)) => i,
            _ => panic!("key without integer {key_col}"),
        };
        let (op, c) = self.envelope(r.value.as_deref(), col);
        let slim = Slim { id, op, col: c };
        self.cross_check(r, key_col, col, &slim, false);
        slim
    }

    /// An event-store record: key `<source>/<schema>.<table>/{"<key_col>":N}`, `after.{col}`.
    pub fn ledger(&mut self, r: &Record, key_col: &str, col: &str) -> Slim {
        let key =
            std::str::from_utf8(r.key.as_deref().expect("ledger record without key")).unwrap();
        let json = key.splitn(3, '/').nth(2).expect("ledger key has 3 parts");
        let j: serde_json::Value = serde_json::from_str(json).unwrap();
        let id = j[key_col]
            .as_i64()
            .unwrap_or_else(|| panic!("ledger key {key}"));
        let (op, c) = self.envelope(r.value.as_deref(), col);
        let slim = Slim { id, op, col: c };
        self.cross_check(r, key_col, col, &slim, true);
        slim
    }
}

/// Snapshot reads (`op = r`) in `topic` (keyed by an integer `id`): read until at least
/// `expect_at_least` came and the topic is caught up (so that extra reads would show), or a
/// minute passed.
pub fn reads_in(topic: &str, expect_at_least: usize) -> usize {
    let mut tail = TopicTail::open(topic, Duration::from_secs(60));
    let mut dec = AvroDecoder::new();
    let mut reads = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for rec in tail.poll(Duration::from_secs(1)) {
            let c = decode_table_change(&mut dec, &rec, "id");
            reads += usize::from(c.op.as_deref() == Some("r"));
        }
        if (reads >= expect_at_least && tail.caught_up()) || Instant::now() > deadline {
            return reads;
        }
    }
}

/// Every schema text registered under subjects whose names start with `prefix`, every
/// version.
pub fn schemas_under(prefix: &str) -> Vec<(String, String)> {
    let registry = stack_env("SCHEMA_REGISTRY_URL");
    let (_, subjects) = http("GET", &format!("{registry}/subjects"));
    let mut out = Vec::new();
    for s in subjects.as_array().into_iter().flatten() {
        let Some(s) = s.as_str().filter(|s| s.starts_with(prefix)) else {
            continue;
        };
        for v in subject_versions(s) {
            let (_, body) = http("GET", &format!("{registry}/subjects/{s}/versions/{v}"));
            out.push((
                s.to_string(),
                body["schema"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// Asserts that none of `secrets` appears, as UTF-8 bytes, in any record under topics
/// starting with `prefix` (table topics, event store, offsets, schema history, aborted
/// records included) or in any schema registered under subjects starting with it.
pub fn assert_never_in_clear(prefix: &str, secrets: &[&str]) {
    let records = super::kafka::every_record_under(prefix);
    assert!(!records.is_empty(), "no record under {prefix}");
    for (topic, bytes) in &records {
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "`{s}` in clear in a record of {topic}"
            );
        }
    }
    for (subject, schema) in schemas_under(prefix) {
        for s in secrets {
            assert!(!schema.contains(s), "`{s}` in the schema of {subject}");
        }
    }
}
