//! One PostgreSQL transaction of 5,000,000 rows, in the default exactly-once mode: every row
//! reaches the table topic exactly once (read_committed), and the agent's peak resident memory
//! stays bounded — the source transaction spans many Kafka transactions and nothing of it is
//! buffered whole (see docs/delivery.md and the backpressure note in src/sink/kafka.rs).
//!
//! The test never asserts a duration: the timeouts below only stop a hung run.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::agent::{Agent, AgentConfig};
use common::cdc::{assert_alive, wait_log, StackCleanup};
use common::kafka;
use common::{pg_connect, unique_name, FreshPgDb};
use rdkafka::error::KafkaError;

/// Rows in the one source transaction.
const ROWS: u64 = 5_000_000;
/// Peak RSS (VmHWM) the agent may reach, in KiB.
const MAX_RSS_KIB: u64 = 150 * 1024;
/// Upper bound of a hung run (a debug build on a busy 2-core machine takes minutes).
const HANG: Duration = Duration::from_secs(45 * 60);

/// One `Vm…:` line of /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The id of a table-topic key: Confluent framing (magic byte, 4-byte schema id), then the
/// Avro key record `{id: long}`, i.e. one zigzag varint. Decoding it by hand keeps counting
/// 5M records cheap in a debug build.
fn key_id(key: &[u8]) -> i64 {
    assert!(
        key.len() > 5 && key[0] == 0,
        "Confluent-framed key: {key:?}"
    );
    let (mut n, mut shift) = (0u64, 0u32);
    for (i, &b) in key[5..].iter().enumerate() {
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            assert_eq!(i + 6, key.len(), "key record has one long field: {key:?}");
            return ((n >> 1) as i64) ^ -((n & 1) as i64);
        }
        shift += 7;
    }
    panic!("truncated key varint: {key:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_million_row_transaction_arrives_whole_in_bounded_memory() {
    let db = FreshPgDb::create("pglarge").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE big (id bigint PRIMARY KEY, v int, t text);
             CREATE PUBLICATION cdc_pub FOR TABLE big;",
        )
        .await
        .unwrap();
    let name = unique_name("pglarge");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let mut agent = Agent::start(&cfg);
    let pid = agent.child.id();
    // The (empty) snapshot is done and the slot streams: the big transaction is all WAL.
    wait_log(&mut agent, "streaming", Duration::from_secs(120));

    // Resident memory, sampled every 100 ms (a timeline for the failure message; the bound
    // itself is checked on the kernel's exact peak, VmHWM).
    let sampling = Arc::new(AtomicBool::new(true));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (sampling, max_rss) = (sampling.clone(), max_rss.clone());
        std::thread::spawn(move || {
            let mut timeline = Vec::new();
            let start = Instant::now();
            while sampling.load(Ordering::Relaxed) {
                if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
                    max_rss.fetch_max(kib, Ordering::Relaxed);
                    if timeline.len() < (start.elapsed().as_secs() / 10) as usize + 1 {
                        timeline.push((start.elapsed().as_secs(), kib / 1024));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            timeline
        })
    };

    let inserted = Instant::now();
    admin
        .batch_execute(&format!(
            "INSERT INTO big SELECT g, (g % 1000)::int, lpad(g::text, 20, 'x')
             FROM generate_series(1, {ROWS}) g"
        ))
        .await
        .unwrap();
    eprintln!(
        "inserted {ROWS} rows in one transaction in {:?}",
        inserted.elapsed()
    );

    // Count the table topic read_committed until every id arrived, then on to the end of the
    // log: exactly ROWS records, each id once.
    let topic = format!("{name}.public.big");
    let settings = [
        ("enable.partition.eof", "true"),
        ("fetch.max.bytes", "52428800"),
    ];
    let (consumer, partitions) = kafka::from_start(
        &topic,
        "large-tx-reader",
        &settings,
        Duration::from_secs(30),
    );

    let mut seen = vec![false; ROWS as usize + 1];
    let (mut records, mut distinct, mut duplicates, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    let mut at_eof = std::collections::HashSet::new();
    let mut last_report = Instant::now();
    let counting = Instant::now();
    while !(distinct == ROWS && at_eof.len() == partitions.len()) {
        assert!(
            counting.elapsed() < HANG,
            "only {distinct} of {ROWS} ids after {HANG:?}; agent log tail:\n{}",
            tail(&agent.log())
        );
        if last_report.elapsed() > Duration::from_secs(30) {
            assert_alive(&mut agent);
            eprintln!(
                "{:>4}s: {distinct} ids, agent RSS peak so far {} MiB",
                counting.elapsed().as_secs(),
                proc_status_kib(pid, "VmHWM:").unwrap_or(0) / 1024
            );
            last_report = Instant::now();
        }
        match kafka::poll(&consumer, Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_eof.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            Some(Ok(m)) => {
                at_eof.remove(&m.partition);
                records += 1;
                let id = key_id(m.key.as_deref().expect("every record is keyed"));
                match usize::try_from(id)
                    .ok()
                    .filter(|&i| (1..=ROWS as usize).contains(&i))
                {
                    Some(i) if seen[i] => duplicates += 1,
                    Some(i) => {
                        seen[i] = true;
                        distinct += 1;
                    }
                    None => foreign += 1,
                }
            }
        }
    }
    eprintln!(
        "read {records} records in {:?} after the insert committed",
        counting.elapsed()
    );

    // Peak RSS of the agent, from the kernel, while the agent is still running.
    assert_alive(&mut agent);
    let hwm = proc_status_kib(pid, "VmHWM:").expect("agent's /proc status");
    sampling.store(false, Ordering::Relaxed);
    let timeline = sampler.join().unwrap();
    eprintln!(
        "agent peak RSS (VmHWM) {} MiB, max sampled VmRSS {} MiB; RSS every 10 s (s, MiB): {timeline:?}",
        hwm / 1024,
        max_rss.load(Ordering::Relaxed) / 1024
    );

    assert_eq!(duplicates, 0, "duplicated records in exactly-once mode");
    assert_eq!(foreign, 0, "records with ids outside 1..={ROWS}");
    assert_eq!(records, ROWS, "records in {topic}");
    assert!(
        hwm <= MAX_RSS_KIB,
        "agent peak RSS {} MiB exceeds {} MiB; RSS every 10 s (s, MiB): {timeline:?}",
        hwm / 1024,
        MAX_RSS_KIB / 1024
    );
    drop(agent);
}

/// The last lines of a (possibly long) log.
fn tail(log: &str) -> &str {
    let cut = log.len().saturating_sub(8000);
    let cut = (cut..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(0);
    &log[cut..]
}
