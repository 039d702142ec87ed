//! Failover on MariaDB: the agent streams from a primary under a write load, is killed
//! (inside a large source transaction when it can be caught there), the primary goes on
//! writing, a GTID replica with other binlog file names catches up, the primary dies, and the
//! agent — pointed at the replica — resumes by GTID. A read_committed consumer must find
//! every change exactly once. A server that lacks the checkpoint's GTIDs is refused with one
//! clear error.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::agent::{Agent, AgentConfig};
use common::eos::{changes, check, check_table_and_ledger, read_committed_from_start};
use common::kafka;
use common::scratch::{ScratchMariadb, ADMIN, ADMIN_PASSWORD};
use common::{unique_name, wait_until};
use mysql_async::prelude::Queryable;
use rdkafka::consumer::BaseConsumer;

const WAIT: Duration = Duration::from_secs(180);
/// Rows before the agent starts (its snapshot).
const INITIAL_ROWS: u64 = 2_000;
/// Rows of a large source transaction: many Kafka transactions of `MAX_RECORDS` records.
const LARGE_TX_ROWS: u64 = 40_000;
/// `transaction_max_records` of the agent.
const MAX_RECORDS: u64 = 500;

/// Table maps without column names (`MINIMAL`): names come from the schema history, which
/// must therefore be right on both sides of the failover.
const PRIMARY_CNF: &str =
    "gtid_strict_mode = ON\nlog_slave_updates = ON\nbinlog_row_metadata = MINIMAL\n";
/// Another server id and other binlog file names than the primary's (`mariadb-bin.*`).
const REPLICA_CNF: &str = "server_id = 2\nlog_bin = replica-bin\ngtid_strict_mode = ON\n\
     log_slave_updates = ON\nbinlog_row_metadata = MINIMAL\n";

async fn conn(server: &ScratchMariadb) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&server.url("app")).unwrap())
        .await
        .unwrap()
}

/// Makes `replica` replicate `primary` from its first GTID (its own setup is forgotten, so
/// strict mode sees one history).
fn replicate(replica: &ScratchMariadb, primary: &ScratchMariadb) {
    replica.sql(&format!(
        "RESET MASTER; SET GLOBAL gtid_slave_pos = '';
         CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = '{ADMIN}',
           MASTER_PASSWORD = '{ADMIN_PASSWORD}', MASTER_USE_GTID = slave_pos;
         START SLAVE;",
        primary.port
    ));
}

fn gtid_binlog_pos(server: &ScratchMariadb) -> String {
    server.sql("SELECT @@gtid_binlog_pos").trim().to_string()
}

/// The newest committed checkpoint of `source` as JSON, read from the offsets topic.
struct Checkpoints {
    consumer: BaseConsumer,
    source: String,
    latest: Option<serde_json::Value>,
}

impl Checkpoints {
    fn open(topic: &str, source: &str) -> Checkpoints {
        let consumer = read_committed_from_start(topic, "gtid-offsets");
        Checkpoints {
            consumer,
            source: source.to_string(),
            latest: None,
        }
    }

    /// Reads what arrived within `budget`; returns the newest checkpoint.
    fn poll(&mut self, budget: Duration) -> Option<&serde_json::Value> {
        let start = Instant::now();
        while start.elapsed() < budget {
            let Some(Ok(m)) = kafka::poll(&self.consumer, Duration::from_millis(5)) else {
                continue;
            };
            if m.key.as_deref() == Some(self.source.as_bytes()) {
                self.latest = m.value.and_then(|p| serde_json::from_slice(&p).ok());
            }
        }
        self.latest.as_ref()
    }
}

fn partial_rows(cp: Option<&serde_json::Value>) -> u64 {
    cp.and_then(|c| c["mysql"]["partial_rows"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_to_a_gtid_replica_every_change_arrives_exactly_once() {
    let primary = ScratchMariadb::start(PRIMARY_CNF);
    let replica = ScratchMariadb::start(REPLICA_CNF);
    primary.sql(&format!(
        "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);
         USE app; INSERT INTO t SELECT seq, 0 FROM seq_1_to_{INITIAL_ROWS};"
    ));
    replicate(&replica, &primary);

    let name = unique_name("mygtid");
    let mut cfg = AgentConfig::mysql(&name, "app", ADMIN, ADMIN_PASSWORD);
    cfg.port = primary.port.to_string();
    cfg.extra_kafka_toml = format!("transaction_max_records = {MAX_RECORDS}\n");
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);

    // The writer: unique changes only (inserts with v = 0, updates v = v + 1).
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(INITIAL_ROWS + 1));
    let writer = {
        let (stop, next_id) = (stop.clone(), next_id.clone());
        let mut c = conn(&primary).await;
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let upd = INITIAL_ROWS + 1 + (id * 7919) % (id - INITIAL_ROWS);
                c.query_drop(format!(
                    "BEGIN; INSERT INTO t VALUES ({id}, 0);
                     UPDATE t SET v = v + 1 WHERE id = {upd};
                     UPDATE t SET v = v + 1 WHERE id = {id}; COMMIT;"
                ))
                .await
                .unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (n, c)
        })
    };

    // Kill the agent inside a large source transaction: as soon as a committed checkpoint
    // says part of it is in Kafka. A fast agent may finish one before the test sees it; then
    // another large transaction tries again.
    let mut offsets = Checkpoints::open(&format!("{name}.offsets"), &name);
    let mut large = conn(&primary).await;
    let mut caught = None;
    for _attempt in 0..4 {
        let first = next_id.fetch_add(LARGE_TX_ROWS, Ordering::Relaxed);
        large
            .query_drop(format!(
                "INSERT INTO t SELECT seq, 0 FROM seq_{first}_to_{}",
                first + LARGE_TX_ROWS - 1
            ))
            .await
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            let rows = partial_rows(offsets.poll(Duration::from_millis(20)));
            if rows > 0 {
                let _ = agent.child.kill();
                let _ = agent.child.wait();
                caught = Some(rows);
                break;
            }
        }
        if caught.is_some() {
            break;
        }
    }
    if caught.is_none() {
        let _ = agent.child.kill();
        let _ = agent.child.wait();
    }
    let killed_at = offsets.poll(Duration::from_secs(2)).cloned();
    println!(
        "killed inside a large transaction: {} (checkpoint {killed_at:?})",
        caught.map_or("no".to_string(), |r| format!("yes, {r} rows in Kafka"))
    );

    // More writes on the primary while no agent runs, then the replica catches up.
    let more = next_id.load(Ordering::Relaxed) + 200;
    wait_until(WAIT, "200 more writes", || async {
        (next_id.load(Ordering::Relaxed) >= more).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (small_txs, _c) = writer.await.unwrap();
    let want = gtid_binlog_pos(&primary);
    wait_until(
        WAIT,
        "the replica to apply every primary transaction",
        || {
            let (replica, want) = (&replica, want.clone());
            async move {
                let have = replica.sql("SELECT @@gtid_slave_pos").trim().to_string();
                (have == want).then_some(())
            }
        },
    )
    .await;
    println!("primary at {want}; replica caught up");
    drop(large);
    drop(primary); // the primary dies (SIGKILL)

    // Promote the replica and keep writing there: new GTIDs of server 2.
    replica.sql("STOP SLAVE; RESET SLAVE ALL;");
    let mut c = conn(&replica).await;
    for i in 0..50u64 {
        if i == 25 {
            // A schema change on the new server, between rows the agent decodes with the
            // definitions from before and after it.
            c.query_drop("ALTER TABLE t ADD COLUMN w VARCHAR(10) DEFAULT 'x' AFTER id")
                .await
                .unwrap();
        }
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        c.query_drop(format!(
            "INSERT INTO t (id, v) VALUES ({id}, 0); UPDATE t SET v = v + 1 WHERE id = {};",
            INITIAL_ROWS + 1 + i
        ))
        .await
        .unwrap();
    }

    cfg.port = replica.port.to_string();
    let mut agent = Agent::start(&cfg);
    let rows: Vec<(i64, i64)> = c.query("SELECT id, v FROM t").await.unwrap();
    let final_state: HashMap<i64, i64> = rows.into_iter().collect();
    let topic = format!("{name}.app.t");
    check_table_and_ledger(
        "",
        &topic,
        &cfg.event_store_topic,
        &final_state,
        Duration::from_secs(300),
    );
    let log = agent.log();
    assert!(
        log.contains("resuming on another server by GTID")
            && log.contains("resumed by GTID; schema history continues on this server"),
        "{log}"
    );
    let skipped = log.contains("skipping rows a committed Kafka transaction already holds");
    if caught.is_some() {
        assert!(
            skipped,
            "a partial transaction was not resumed by GTID: {log}"
        );
    }
    // After the failover, checkpoints name the new server.
    let mut offsets = Checkpoints::open(&format!("{name}.offsets"), &name);
    let cp = wait_until(WAIT, "a checkpoint of the new server", || {
        let cp = offsets.poll(Duration::from_millis(500)).cloned();
        async move { cp.filter(|c| c["mysql"]["server"] == "server_id=2") }
    })
    .await;
    assert!(
        cp["mysql"]["file"]
            .as_str()
            .is_some_and(|f| f.starts_with("replica-bin.")),
        "{cp}"
    );

    // A crash on the new server: the restart resumes there by position, with the new
    // server's schema history epoch.
    agent = agent.restart();
    for _ in 0..20 {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        c.query_drop(format!("INSERT INTO t (id, w, v) VALUES ({id}, 'y', 0)"))
            .await
            .unwrap();
    }
    let rows: Vec<(i64, i64)> = c.query("SELECT id, v FROM t").await.unwrap();
    let final_state: HashMap<i64, i64> = rows.into_iter().collect();
    let seen = changes(&topic, &final_state, Duration::from_secs(300));
    check(
        "table topic after a restart on the new server",
        &seen,
        &final_state,
    );
    let log = agent.log();
    assert_eq!(
        log.matches("resuming on another server by GTID").count(),
        1,
        "the restart on the new server resumes by position: {log}"
    );
    assert!(!log.contains("source failed"), "{log}");
    println!(
        "lost=0 dup=0 small_txs={small_txs} partial_resume={skipped} rows={} events={}",
        final_state.len(),
        seen.len()
    );
}

#[tokio::test]
async fn a_server_without_the_checkpoints_gtids_is_refused_with_the_way_out() {
    let first = ScratchMariadb::start(PRIMARY_CNF);
    first.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);
         INSERT INTO app.t VALUES (1, 0);",
    );
    let name = unique_name("mygtidbad");
    let mut cfg = AgentConfig::mysql(&name, "app", ADMIN, ADMIN_PASSWORD);
    cfg.port = first.port.to_string();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    for i in 2..30 {
        first.sql(&format!("INSERT INTO app.t VALUES ({i}, 0)"));
    }
    let state = gtid_binlog_pos(&first);
    let mut offsets = Checkpoints::open(&format!("{name}.offsets"), &name);
    wait_until(WAIT, "a checkpoint at the server's newest GTID", || {
        let cp = offsets.poll(Duration::from_millis(200)).cloned();
        let state = state.clone();
        async move { cp.filter(|c| c["mysql"]["gtid_state"] == state.as_str()) }
    })
    .await;
    drop(agent);

    // Another server (id 2) whose binlog is far behind: it never saw those transactions.
    let other = ScratchMariadb::start("server_id = 2\nlog_bin = other-bin\n");
    other
        .sql("CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);");
    cfg.port = other.port.to_string();
    let mut agent = Agent::start(&cfg);
    let code = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(code, Some(1), "a definite error exits with 1; log:\n{log}");
    assert!(
        log.contains(&format!(
            "source `{name}` resumes by GTID on server `server_id=2`"
        )) && log.contains(&format!("GTID state `{state}`"))
            && log.contains("produce a tombstone")
            && log.contains("Starting over"),
        "{log}"
    );
    println!("refused: state={state}");

    // A server whose binlog numbers are past the state but never held it (another history, or
    // purged): the pre-check passes, the server refuses in strict mode (error 1236).
    other.sql("RESET MASTER; SET GLOBAL gtid_binlog_state = '0-2-1000';");
    let mut agent = Agent::start(&cfg);
    let code = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(code, Some(1), "a definite error exits with 1; log:\n{log}");
    assert!(
        log.contains(&format!("GTID state `{state}`"))
            && log.contains("error 1236")
            && log.contains("produce a tombstone"),
        "{log}"
    );
    let answer = log
        .lines()
        .find_map(|l| l.split("the server answers: ").nth(1))
        .unwrap_or_default();
    println!(
        "refused by the server: {}",
        answer.chars().take(160).collect::<String>()
    );
}
