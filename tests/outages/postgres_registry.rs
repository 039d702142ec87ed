//! The schema registry goes away in the middle of a write load — while new tables (and a
//! new column) need new schemas — and comes back: the agent waits instead of dropping or
//! failing, and every row ends up in its topic.
//!
//! This test stops and starts the shared registry of the local stack. It must not run while
//! another test binary uses the stack (cargo runs test binaries one after another; within
//! this binary it is `#[serial(stack)]`), and it restarts the registry even when it fails.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::agent::{Agent, AgentConfig, AvroDecoder};
use common::cdc::{assert_alive, decode_table_change, wait_log, StackCleanup, TopicTail};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/stack <cmd> registry`; true when it succeeded.
fn stack_registry(cmd: &str) -> bool {
    Command::new(repo_root().join("scripts/stack"))
        .args([cmd, "registry"])
        .current_dir(repo_root())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts the registry again when dropped, whatever happened to the test.
struct RegistryBack;

impl Drop for RegistryBack {
    fn drop(&mut self) {
        if !stack_registry("start") {
            eprintln!("pg_registry_outage: could not restart the registry; run `scripts/stack start registry`");
        }
    }
}

/// Inserts transactions of 20 rows into `a` until `stop`; `last` is the newest id committed.
async fn write_a(url: String, first: i64, stop: Arc<AtomicBool>, last: Arc<AtomicI64>) {
    let client = pg_connect(&url).await;
    let mut next = first;
    while !stop.load(Ordering::Relaxed) {
        client
            .batch_execute(&format!(
                "INSERT INTO a (id, v) SELECT g, g FROM generate_series({next}, {}) g",
                next + 19
            ))
            .await
            .unwrap();
        next += 20;
        last.store(next - 1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial_test::serial(stack)]
async fn a_registry_outage_during_writes_and_new_tables_loses_nothing() {
    let t0 = Instant::now();
    let db = FreshPgDb::create("regout").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE a (id int PRIMARY KEY, v int);
             INSERT INTO a SELECT g, g FROM generate_series(1, 100) g;
             CREATE PUBLICATION cdc_pub FOR ALL TABLES;",
        )
        .await
        .unwrap();
    let name = unique_name("regout");
    // Dropped last (after the registry is back), so the subjects can be deleted.
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| wait_log(&mut agent, "streaming", Duration::from_secs(60)));

    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicI64::new(100));
    let writer = tokio::spawn(write_a(db.url.clone(), 101, stop.clone(), last.clone()));
    wait_until(Duration::from_secs(30), "writes before the outage", || {
        let n = last.load(Ordering::Relaxed);
        async move { (n >= 600).then_some(()) }
    })
    .await;

    // Outage: new tables and a new column need schemas the registry cannot give.
    let _registry_back = RegistryBack;
    let outage = Instant::now();
    assert!(stack_registry("stop"), "scripts/stack stop registry failed");
    admin
        .batch_execute(
            "CREATE TABLE b (id int PRIMARY KEY, s text);
             CREATE TABLE c (id bigint PRIMARY KEY, w int);
             INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 200) g;
             INSERT INTO c SELECT g, g FROM generate_series(1, 200) g;
             ALTER TABLE a ADD COLUMN note text;",
        )
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        wait_log(
            &mut agent,
            "schema registry unavailable, retrying",
            Duration::from_secs(60),
        )
    });
    let during = last.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(60), "writes during the outage", || {
        let n = last.load(Ordering::Relaxed);
        async move { (n >= during + 2000).then_some(()) }
    })
    .await;
    tokio::task::block_in_place(|| assert_alive(&mut agent));
    admin
        .batch_execute(
            "INSERT INTO b SELECT g, 'b' || g FROM generate_series(201, 300) g;
             INSERT INTO c SELECT g, g FROM generate_series(201, 300) g;",
        )
        .await
        .unwrap();
    assert!(
        stack_registry("start"),
        "scripts/stack start registry failed"
    );
    let outage_s = outage.elapsed().as_secs_f64();
    tokio::task::block_in_place(|| assert_alive(&mut agent));

    // Writes go on after the registry is back, then stop.
    let after = last.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(60), "writes after the outage", || {
        let n = last.load(Ordering::Relaxed);
        async move { (n >= after + 600).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let mut lost_total = 0;
    let mut dup_total = 0;
    for table in ["a", "b", "c"] {
        let expected: BTreeSet<i64> = admin
            .query(&format!("SELECT id::bigint FROM {table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let topic = format!("{name}.public.{table}");
        let (seen, dup) = tokio::task::block_in_place(|| {
            let mut tail = TopicTail::open(&topic, Duration::from_secs(120));
            let mut dec = AvroDecoder::new();
            let mut seen: HashMap<i64, u32> = HashMap::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while expected.iter().any(|id| !seen.contains_key(id)) && Instant::now() < deadline {
                for rec in tail.poll(Duration::from_secs(2)) {
                    let c = decode_table_change(&mut dec, &rec, "id");
                    assert!(matches!(c.op.as_deref(), Some("r" | "c")), "{table}: {c:?}");
                    *seen.entry(c.id).or_default() += 1;
                }
            }
            let dup: u32 = seen.values().map(|n| n - 1).sum();
            (seen, dup)
        });
        let lost: Vec<_> = expected
            .iter()
            .filter(|id| !seen.contains_key(id))
            .collect();
        println!(
            "pg_registry_outage: table {table}: rows={} lost={} dup={dup}",
            expected.len(),
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "{table}: {} rows lost (first: {:?}); agent log:\n{}",
            lost.len(),
            &lost[..lost.len().min(10)],
            agent.log()
        );
        lost_total += lost.len();
        dup_total += dup;
    }
    tokio::task::block_in_place(|| assert_alive(&mut agent));
    println!(
        "pg_registry_outage: lost={lost_total} dup={dup_total} outage_s={outage_s:.1} total_s={:.1}",
        t0.elapsed().as_secs_f64()
    );
    drop(agent);
}
