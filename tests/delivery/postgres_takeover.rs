//! One active agent per source: a second agent either exits with the documented code or
//! waits as a hot standby and takes over; a paused old agent that wakes after the takeover
//! writes nothing. Changes stay exactly-once throughout.

use crate::common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::agent::{Agent, AgentConfig};
use common::eos::{changes, check};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

/// `cdc_agent::ops::exit::SOURCE_TAKEN`.
const SOURCE_TAKEN: i32 = 3;
/// `cdc_agent::ops::exit::FENCED`.
const FENCED: i32 = 4;
const WAIT: Duration = Duration::from_secs(120);

struct Setup {
    db: FreshPgDb,
    cfg: AgentConfig,
}

async fn setup(what: &str) -> Setup {
    let db = FreshPgDb::create(what).await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name(what);
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    Setup { db, cfg }
}

/// Inserts rows with increasing ids until stopped; returns how many.
fn writer(url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let next = Arc::new(AtomicU64::new(1));
    tokio::spawn(async move {
        let c = pg_connect(&url).await;
        while !stop.load(Ordering::Relaxed) {
            let id = next.fetch_add(1, Ordering::Relaxed);
            c.execute("INSERT INTO t VALUES ($1, 0)", &[&(id as i64)])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        next.load(Ordering::Relaxed) - 1
    })
}

async fn slot_pid(db: &FreshPgDb, slot: &str) -> Option<i32> {
    pg_connect(&db.url)
        .await
        .query_opt(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .and_then(|r| r.get(0))
}

/// Waits until the standby reports that it waits for the slot; on timeout the failure shows
/// both agents' logs (a slow machine may make the active agent restart and lose the slot).
async fn wait_standing_by(standby: &Agent, active: &Agent) {
    let start = std::time::Instant::now();
    while !standby.log().contains("standing by") {
        assert!(
            start.elapsed() < WAIT,
            "the standby did not stand by within {WAIT:?}\n--- standby log:\n{}\n--- active log:\n{}",
            standby.log(),
            active.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(agent: &Agent, sig: &str) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(agent.child.id().to_string())
        .status()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_in_exit_mode_exits_with_the_documented_code() {
    let s = setup("eos_exit").await;
    let active = Agent::start(&s.cfg);
    let slot = s.cfg.source_name.clone();
    wait_until(WAIT, "the first agent to own the slot", || async {
        slot_pid(&s.db, &slot).await
    })
    .await;
    let mut second = Agent::start(&s.cfg);
    assert_eq!(
        second.wait_exit(WAIT),
        Some(SOURCE_TAKEN),
        "log:\n{}",
        second.log()
    );
    let log = second.log();
    assert!(log.contains("is active in another process"), "{log}");
    assert!(
        log.contains("standby"),
        "the message names the standby option: {log}"
    );
    drop(active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_after_the_active_agent_is_killed_with_nothing_lost_or_doubled() {
    let s = setup("eos_standby").await;
    let mut standby_cfg = AgentConfig::postgres(&s.cfg.source_name, &s.db.name);
    standby_cfg.extra_source_toml =
        format!("when_taken = \"standby\"\n{}", s.cfg.extra_source_toml);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(s.db.url.clone(), stop.clone());

    let active = Agent::start(&s.cfg);
    let slot = s.cfg.source_name.clone();
    wait_until(WAIT, "the first agent to own the slot", || async {
        slot_pid(&s.db, &slot).await
    })
    .await;
    let standby = Agent::start(&standby_cfg);
    wait_standing_by(&standby, &active).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // load keeps flowing meanwhile
    drop(active); // SIGKILL
    wait_until(WAIT, "the standby to take over", || async {
        standby.log().contains("streaming").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let n = w.await.unwrap();

    let expected: HashMap<i64, i64> = (1..=n as i64).map(|id| (id, 0)).collect();
    let topic = format!("{}.public.t", s.cfg.topic_prefix);
    let seen = changes(&topic, &expected, WAIT);
    check("table topic after takeover", &seen, &expected);
    let ledger = changes(&s.cfg.event_store_topic, &expected, WAIT);
    check("event store after takeover", &ledger, &expected);
    drop(standby);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_agent_that_wakes_after_a_takeover_writes_nothing() {
    let s = setup("eos_zombie").await;
    let mut standby_cfg = AgentConfig::postgres(&s.cfg.source_name, &s.db.name);
    standby_cfg.extra_source_toml =
        format!("when_taken = \"standby\"\n{}", s.cfg.extra_source_toml);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(s.db.url.clone(), stop.clone());

    let mut old = Agent::start(&s.cfg);
    let slot = s.cfg.source_name.clone();
    let old_walsender = wait_until(WAIT, "the first agent to own the slot", || async {
        slot_pid(&s.db, &slot).await
    })
    .await;
    let standby = Agent::start(&standby_cfg);
    wait_standing_by(&standby, &old).await;

    // Freeze the old agent mid-stream, then free its slot the way wal_sender_timeout would.
    signal(&old, "STOP");
    pg_connect(&s.db.url)
        .await
        .execute("SELECT pg_terminate_backend($1)", &[&old_walsender])
        .await
        .unwrap();
    wait_until(WAIT, "the standby to take over", || async {
        standby.log().contains("streaming").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    signal(&old, "CONT");
    let code = old.wait_exit(WAIT);
    assert!(
        matches!(code, Some(SOURCE_TAKEN) | Some(FENCED)),
        "the woken agent stops (taken or fenced), got {code:?}; log:\n{}",
        old.log()
    );
    println!("woken agent exited with {code:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let n = w.await.unwrap();

    let expected: HashMap<i64, i64> = (1..=n as i64).map(|id| (id, 0)).collect();
    let topic = format!("{}.public.t", s.cfg.topic_prefix);
    let seen = changes(&topic, &expected, WAIT);
    check("table topic with a zombie", &seen, &expected);
    drop(standby);
}
