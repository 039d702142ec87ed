//! The Kafka ceiling of this machine: how many rows a second librdkafka alone moves into the
//! stack's broker, with the agent's producer settings and record shapes and nothing else (no
//! database, no decoding, no encoding, records built ahead of time).
//!
//! A drain of the agent (bench/pg-e2e, bench/my-e2e) cannot beat this figure on the same
//! machine: each row is the same two records (table topic, and the event-store copy with its
//! key and six headers), through the same library, settings and broker, and the agent does its
//! own work on the same cores besides. So this run says how much of a drain's gap to a native
//! reader is the agent's and how much is Kafka's on this machine.
//!
//! ```sh
//! eval "$(scripts/stack env)"
//! cd bench/kafka-ceiling && cargo build --release --locked
//! ./target/release/kafka-ceiling [--rows 1500000] [--rounds 2] [--modes alo,eos] \
//!     [--in-flight 10000] [--txn-records 50000] [--txn-ms 250] [--no-headers] [--reference 'mariadb-binlog -v=979000'] [--label TEXT] [--no-results]
//! ```
//!
//! Modes: `alo` = the agent's at-least-once producer (idempotent, acks=all, linger 5 ms);
//! `eos` = its exactly-once producer (transactional, linger 1 ms, a commit every 50,000
//! records or 250 ms, the agent's default bounds). Each mode runs with the event-store copy
//! (two records a row, the agent's default) and without it (one record a row).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use e2e_common::{
    append_results, broker_pid, cpu_model, delete_topics, kafka_version, load_1m, load_average,
    proc_cpu_secs, ram_gib, run_id, var, Delivery, Result,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

/// The agent's allocator and settings (src/main.rs): librdkafka's per-record allocations,
/// headers above all, cost differently under glibc's malloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, as the agent's.
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static malloc_conf: &[u8; 47] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// The agent's bound on unacknowledged records (`sink::kafka::DEFAULT_MAX_IN_FLIGHT`).
const AGENT_MAX_IN_FLIGHT: u64 = 10_000;
/// The agent's default exactly-once transaction bounds (`transaction_max_records`, `_ms`).
const TXN_MAX_RECORDS: u64 = 50_000;
const TXN_MAX: Duration = Duration::from_millis(250);
/// Distinct rows built ahead of time; the run cycles through them with new ids.
const TEMPLATES: usize = 4096;

struct Args {
    rows: u64,
    rounds: u32,
    modes: Vec<Delivery>,
    in_flight: u64,
    txn_records: u64,
    txn_ms: u64,
    headers: bool,
    references: Vec<(String, f64)>,
    label: String,
    results: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        rows: 1_500_000,
        rounds: 2,
        modes: vec![Delivery::AtLeastOnce, Delivery::ExactlyOnce],
        in_flight: AGENT_MAX_IN_FLIGHT,
        txn_records: TXN_MAX_RECORDS,
        txn_ms: TXN_MAX.as_millis() as u64,
        headers: true,
        references: Vec::new(),
        label: String::new(),
        results: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = val()?.parse()?,
            "--rounds" => a.rounds = val()?.parse()?,
            "--modes" => a.modes = Delivery::parse_list(&val()?)?,
            "--in-flight" => a.in_flight = val()?.parse()?,
            "--txn-records" => a.txn_records = val()?.parse()?,
            "--txn-ms" => a.txn_ms = val()?.parse()?,
            "--no-headers" => a.headers = false,
            "--reference" => {
                let v = val()?;
                let (name, rate) = v
                    .rsplit_once('=')
                    .ok_or("--reference takes NAME=ROWS_PER_SECOND")?;
                a.references.push((name.to_owned(), rate.parse()?));
            }
            "--label" => a.label = val()?,
            "--no-results" => a.results = false,
            other => {
                return Err(
                    format!("unknown flag {other} (see the doc comment of src/main.rs)").into(),
                )
            }
        }
    }
    Ok(a)
}

/// Counts deliveries on librdkafka's polling thread and wakes the sender waiting for room.
#[derive(Default)]
struct Counter {
    /// Records handed to librdkafka (only the sending thread adds to it).
    sent: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
}

impl ClientContext for Counter {}

impl ProducerContext for Counter {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if r.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.delivered.fetch_add(1, Ordering::Release);
        self.cv.notify_one();
    }
}

impl Counter {
    /// Records sent and not acknowledged yet.
    fn owed(&self) -> u64 {
        self.sent.load(Ordering::Relaxed) - self.delivered.load(Ordering::Acquire)
    }

    /// Waits until at most `max` records are unacknowledged.
    fn wait_below(&self, max: u64) {
        if self.owed() <= max {
            return;
        }
        let mut g = self.lock.lock().unwrap();
        while self.owed() > max {
            g = self.cv.wait_timeout(g, Duration::from_millis(5)).unwrap().0;
        }
    }
}

/// The agent's producer settings (src/sink/kafka/client.rs, `producer_config`).
fn producer(kafka: &str, mode: Delivery, txn_id: &str) -> Result<ThreadedProducer<Counter>> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("batch.size", "1000000")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.kbytes", "65536")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "120000");
    match mode {
        Delivery::AtLeastOnce => {
            c.set("linger.ms", "5");
        }
        Delivery::ExactlyOnce => {
            c.set("linger.ms", "1")
                .set("transactional.id", txn_id)
                .set("transaction.timeout.ms", "900000");
        }
    }
    Ok(c.create_with_context(Counter::default())?)
}

/// Appends a zigzag varint (Avro `long`).
fn long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends an Avro string.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    long(out, s.len() as i64);
    out.extend_from_slice(s);
}

/// 32 hex digits standing in for the bench table's `md5(i::text)` columns.
fn hex32(seed: u64) -> [u8; 32] {
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(16) {
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = b"0123456789abcdef"[((x >> (i * 4)) & 15) as usize];
        }
    }
    out
}

/// A table-topic value shaped like the agent's for the drain benchmarks' table: Confluent
/// framing, `before` null, `after` (id, 32-char payload, note, 128-char blob), the source
/// block, `op`, `ts_ms`; about 360 bytes, as in the agent's topics.
fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0, 2, 0, 2];
    long(&mut v, i as i64);
    string(&mut v, &hex32(i));
    string(&mut v, format!("note {i}").as_bytes());
    let h = hex32(!i);
    let mut blob = Vec::with_capacity(128);
    for _ in 0..4 {
        blob.extend_from_slice(&h);
    }
    string(&mut v, &blob);
    for s in [
        &b"cdc-agent-0.1.0"[..],
        b"postgresql",
        b"kafkaceiling",
        b"true",
    ] {
        string(&mut v, s);
    }
    long(&mut v, 1_796_602_790_049 + (i as i64 / 100));
    for s in [
        &b"kafkaceiling"[..],
        b"[\"24488152\",\"24488200\"]",
        b"public",
        b"t",
    ] {
        string(&mut v, s);
    }
    long(&mut v, (i / 100) as i64 + 1000);
    long(&mut v, (i * 96) as i64 + 24_488_200);
    string(&mut v, b"c");
    long(&mut v, 1_796_602_790_051 + (i as i64 / 100));
    v.push(0);
    v
}

struct Run {
    mode: Delivery,
    mirror: bool,
    round: u32,
    rows: u64,
    records: u64,
    secs: f64,
    cpu: f64,
    broker_cpu: Option<f64>,
    failed: u64,
    load: String,
}

/// What one run needs from the arguments.
#[derive(Clone, Copy)]
struct Shape {
    rows: u64,
    in_flight: u64,
    txn_records: u64,
    txn_max: Duration,
    headers: bool,
}

fn run(
    kafka: &str,
    prefix: &str,
    shape: Shape,
    mode: Delivery,
    mirror: bool,
    round: u32,
) -> Result<Run> {
    let table = format!("{prefix}.public.t");
    let store = format!("{prefix}.events");
    // Exactly-once: the agent's ring of two transactional producers (src/sink/kafka/ring.rs):
    // one commits on another thread while the next transaction fills on the other; a commit
    // starts only after the previous one ended.
    let ring = if mode == Delivery::ExactlyOnce { 2 } else { 1 };
    let producers: Vec<Arc<ThreadedProducer<Counter>>> = (0..ring)
        .map(|n| {
            let id = format!("{prefix}-{}-{mirror}-{round}.{n}", mode.short());
            let p = producer(kafka, mode, &id)?;
            if mode == Delivery::ExactlyOnce {
                p.init_transactions(Duration::from_secs(30))?;
            }
            Ok(Arc::new(p))
        })
        .collect::<Result<_>>()?;
    let values: Vec<Vec<u8>> = (0..TEMPLATES as u64).map(value).collect();
    let mut key = Vec::with_capacity(16);
    let mut store_key = String::with_capacity(64);
    let mut position = String::with_capacity(24);
    let mut txid = String::with_capacity(12);

    let broker = broker_pid();
    let broker_before = broker.map(proc_cpu_secs);
    let me = std::process::id();
    let cpu_before = proc_cpu_secs(me);
    let start = Instant::now();
    let mut cur = 0usize;
    let mut committing: Option<std::thread::JoinHandle<Result<(), KafkaError>>> = None;
    let mut in_txn = 0u64;
    let mut txn_start = Instant::now();
    if mode == Delivery::ExactlyOnce {
        producers[cur].begin_transaction()?;
    }
    for i in 0..shape.rows {
        let v = &values[(i % TEMPLATES as u64) as usize];
        key.clear();
        key.extend_from_slice(&[0, 0, 0, 0, 1]);
        long(&mut key, i as i64);
        let p = &producers[cur];
        let counter = p.context();
        let send = |topic: &str, k: &[u8], headers: Option<OwnedHeaders>| -> Result<()> {
            counter.wait_below(shape.in_flight - 1);
            let mut rec: BaseRecord<'_, [u8], [u8], ()> =
                BaseRecord::to(topic).key(k).payload(&v[..]);
            if let Some(h) = headers {
                rec = rec.headers(h);
            }
            loop {
                match p.send(rec) {
                    Ok(()) => break,
                    Err((e, back))
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        rec = back;
                        let owed = counter.owed();
                        counter.wait_below(owed.saturating_sub(1000));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
            counter.sent.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        send(&table, &key, None)?;
        in_txn += 1;
        if mirror {
            store_key.clear();
            let _ = write!(store_key, "kafkaceiling/public.t/{{\"id\":{i}}}");
            let headers = shape.headers.then(|| {
                position.clear();
                let _ = write!(position, "0/{:X}", 24_488_200 + i * 96);
                txid.clear();
                let _ = write!(txid, "{}", i / 100 + 1000);
                OwnedHeaders::new_with_capacity(6)
                    .insert(Header {
                        key: "cdc.source",
                        value: Some("kafkaceiling"),
                    })
                    .insert(Header {
                        key: "cdc.table",
                        value: Some("public.t"),
                    })
                    .insert(Header {
                        key: "cdc.op",
                        value: Some("c"),
                    })
                    .insert(Header {
                        key: "cdc.position",
                        value: Some(position.as_str()),
                    })
                    .insert(Header {
                        key: "cdc.txid",
                        value: Some(txid.as_str()),
                    })
                    .insert(Header {
                        key: "cdc.commit_ts_ms",
                        value: Some("1796602790049"),
                    })
            });
            send(&store, store_key.as_bytes(), headers)?;
            in_txn += 1;
        }
        if mode == Delivery::ExactlyOnce
            && (in_txn >= shape.txn_records || txn_start.elapsed() >= shape.txn_max)
        {
            if let Some(c) = committing.take() {
                c.join().map_err(|_| "commit thread panicked")??;
            }
            let p = producers[cur].clone();
            committing = Some(std::thread::spawn(move || {
                p.commit_transaction(Duration::from_secs(60))
            }));
            cur = (cur + 1) % ring;
            producers[cur].begin_transaction()?;
            in_txn = 0;
            txn_start = Instant::now();
        }
    }
    if let Some(c) = committing.take() {
        c.join().map_err(|_| "commit thread panicked")??;
    }
    match mode {
        Delivery::ExactlyOnce => producers[cur].commit_transaction(Duration::from_secs(60))?,
        Delivery::AtLeastOnce => producers[cur].flush(Duration::from_secs(60))?,
    }
    for p in &producers {
        p.context().wait_below(0);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = proc_cpu_secs(me) - cpu_before;
    let broker_cpu = broker
        .zip(broker_before)
        .map(|(pid, b)| proc_cpu_secs(pid) - b);
    let failed = producers
        .iter()
        .map(|p| p.context().failed.load(Ordering::Relaxed))
        .sum();
    let records = producers
        .iter()
        .map(|p| p.context().sent.load(Ordering::Relaxed))
        .sum();
    drop(producers);
    Ok(Run {
        mode,
        mirror,
        round,
        rows: shape.rows,
        records,
        secs,
        cpu,
        broker_cpu,
        failed,
        load: load_1m(),
    })
}

async fn create_topics(kafka: &str, prefix: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .create()?;
    let names = [format!("{prefix}.public.t"), format!("{prefix}.events")];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    for r in admin.create_topics(&topics, &AdminOptions::new()).await? {
        r.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let kafka = var("KAFKA_BOOTSTRAP")?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let load_start = load_average();
    let started = e2e_common::shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        for &mode in &args.modes {
            for mirror in [true, false] {
                // Fresh topics a run: the same empty partitions the agent's drains start from.
                let prefix = format!(
                    "kafkaceiling{}-{}-{}-{round}",
                    run_id(),
                    mode.short(),
                    mirror as u8
                );
                create_topics(&kafka, &prefix).await?;
                let kafka2 = kafka.clone();
                let shape = Shape {
                    rows: args.rows,
                    in_flight: args.in_flight,
                    txn_records: args.txn_records,
                    txn_max: Duration::from_millis(args.txn_ms),
                    headers: args.headers,
                };
                let p2 = prefix.clone();
                let r = tokio::task::spawn_blocking(move || {
                    run(&kafka2, &p2, shape, mode, mirror, round)
                })
                .await??;
                eprintln!(
                    "{} mirror={} round {}: {:.0} rows/s, {:.0} records/s, {:.2} s, {:.1} CPU-µs/row",
                    mode.toml(),
                    mirror,
                    round,
                    r.rows as f64 / r.secs,
                    r.records as f64 / r.secs,
                    r.secs,
                    r.cpu * 1e6 / r.rows as f64
                );
                delete_topics(&kafka, &prefix).await;
                runs.push(r);
            }
        }
    }
    let mut o = String::new();
    let label = if args.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", args.label)
    };
    let (maj, ver) = rdkafka::util::get_rdkafka_version();
    let _ = writeln!(o, "## {started} — kafka-ceiling{label}\n");
    let _ = writeln!(
        o,
        "- machine: `{}`, {}, {} cores, {:.1} GiB RAM; Kafka {} (KRaft, one broker) on loopback; librdkafka {ver} ({maj:#x}), the agent's",
        std::env::consts::ARCH,
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ram_gib(),
        kafka_version(&repo)
    );
    let _ = writeln!(
        o,
        "- load average (1/5/15 min): {load_start} at the start, {} at the end",
        load_average()
    );
    let _ = writeln!(
        o,
        "- no agent and no database: one thread sends prebuilt rows through librdkafka with the agent's producer settings \
         (idempotent, acks=all, lz4, batch.size 1000000, linger 5 ms at-least-once / 1 ms exactly-once, queue caps, \
         {} records in flight) to two fresh one-partition topics; a row is the agent's two records: the table record \
         (key 6 B, value {} B, shaped like the drain benchmarks' rows) and, with the event store, its copy (key \
         `<source>/<schema.table>/<key JSON>`, same value, {}); exactly-once commits every {} records \
         or {} ms; wall = first send to the last acknowledgement (last commit)",
        args.in_flight,
        value(123_456).len(),
        if args.headers {
            "the six `cdc.*` headers"
        } else {
            "**no headers** (`--no-headers`)"
        },
        args.txn_records,
        args.txn_ms
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| mode | event store | round | rows | records | wall s | rows/s | records/s | producer CPU s | producer CPU µs/row | broker CPU s | failed | load 1m |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &runs {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
            r.mode.toml(),
            if r.mirror { "on" } else { "off" },
            r.round,
            r.rows,
            r.records,
            r.secs,
            r.rows as f64 / r.secs,
            r.records as f64 / r.secs,
            r.cpu,
            r.cpu * 1e6 / r.rows as f64,
            r.broker_cpu.map_or("-".into(), |c| format!("{c:.1}")),
            r.failed,
            r.load
        );
    }
    if !args.references.is_empty() {
        let _ = writeln!(o, "\nThe ceiling (best round, event store on) against native readers of the same machine:\n");
        let _ = writeln!(
            o,
            "| mode | reader | reader rows/s | ceiling rows/s | ceiling / reader |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for &mode in &args.modes {
            let best = runs
                .iter()
                .filter(|r| r.mode == mode && r.mirror)
                .map(|r| r.rows as f64 / r.secs)
                .fold(0.0, f64::max);
            for (name, rate) in &args.references {
                let _ = writeln!(
                    o,
                    "| {} | {name} | {rate:.0} | {best:.0} | {:.2} |",
                    mode.toml(),
                    best / rate
                );
            }
        }
    }
    print!("{o}");
    if args.results {
        append_results(&repo.join("bench/RESULTS.md"), &o)?;
    }
    Ok(())
}
