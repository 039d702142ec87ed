//! Exactly-once under a crash loop, on each source: the agent is killed with SIGKILL at random
//! moments while a writer produces unique changes — some inside source transactions larger
//! than one Kafka transaction — and restarted each time. A read_committed consumer must then
//! find every change exactly once, in order per key, in the table topic and in the event store.
//!
//! One body, one table row per source (how to make the table, what the writer sends, how the
//! agent is configured). The two are `#[serial(crash_loop)]`: each keeps both cores busy with
//! restarts, and side by side they would measure the machine rather than the agent.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use serial_test::serial;

use common::agent::{Agent, AgentConfig};
use common::eos::check_table_and_ledger;
use common::mysql::{my_admin, FreshMyDb};
use common::rng::{test_seed, Rng};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

/// Kills of the agent; the issue asks for at least 50.
const KILLS: usize = 50;
/// Kills while the snapshot runs (the issue asks for at least 3).
const SNAPSHOT_KILLS: usize = 3;
/// Rows in the table before the agent first starts (the first kills may hit the snapshot).
const INITIAL_ROWS: i64 = 20_000;
/// Rows of each large source transaction: more records than one Kafka transaction holds
/// (the test sets `transaction_max_records = 5000`; each row is 2 records).
const LARGE_TX_ROWS: i64 = 12_000;

#[derive(Clone, Copy)]
enum Kind {
    Postgres,
    MariaDb,
}

/// What differs between the sources; the loop and its assertions are the same.
struct Source {
    kind: Kind,
    /// Prefix of the database and agent names.
    what: &'static str,
    /// Two log lines counted in the summary, with their labels: partial-transaction replays
    /// skipped, and snapshots (re)started.
    counted: [(&'static str, &'static str); 2],
}

const POSTGRES: Source = Source {
    kind: Kind::Postgres,
    what: "eos",
    counted: [
        (
            "replays_skipped",
            "skipping what a committed Kafka transaction already holds",
        ),
        (
            "snapshots_restarted",
            "recreating the slot and snapshotting again",
        ),
    ],
};

const MARIADB: Source = Source {
    kind: Kind::MariaDb,
    what: "myeos",
    counted: [
        (
            "partial_resumes",
            "skipping rows a committed Kafka transaction already holds",
        ),
        ("snapshots", "snapshot starting"),
    ],
};

/// The test's database, made for it and dropped with it.
enum Db {
    Postgres(FreshPgDb),
    MariaDb(FreshMyDb),
}

/// A superuser connection to the test's database.
enum Conn {
    Postgres(tokio_postgres::Client),
    MariaDb(mysql_async::Conn),
}

impl Db {
    async fn create(source: &Source) -> Self {
        match source.kind {
            Kind::Postgres => Db::Postgres(FreshPgDb::create(source.what).await),
            Kind::MariaDb => Db::MariaDb(FreshMyDb::create(source.what).await),
        }
    }

    async fn connect(&self) -> Conn {
        match self {
            Db::Postgres(db) => Conn::Postgres(pg_connect(&db.url).await),
            Db::MariaDb(_) => Conn::MariaDb(my_admin().await),
        }
    }

    /// The table `t` as SQL names it on this connection.
    fn table(&self) -> String {
        match self {
            Db::Postgres(_) => "t".into(),
            Db::MariaDb(db) => db.table("t"),
        }
    }

    /// The agent's configuration (the caller adds the Kafka keys) and its table topic.
    fn agent_config(&self, name: &str) -> (AgentConfig, String) {
        match self {
            Db::Postgres(db) => {
                let mut cfg = AgentConfig::postgres(name, &db.name);
                cfg.extra_source_toml =
                    format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
                (cfg, format!("{name}.public.t"))
            }
            Db::MariaDb(db) => (
                AgentConfig::mysql(name, &db.name, &db.name, &db.password),
                format!("{name}.{}.t", db.name),
            ),
        }
    }

    /// `t (id, v)` with `INITIAL_ROWS` rows of v = 0, published where the source needs it.
    fn setup_sql(&self) -> String {
        let t = self.table();
        match self {
            Db::Postgres(_) => format!(
                "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL);
                 INSERT INTO {t} SELECT g, 0 FROM generate_series(1, {INITIAL_ROWS}) g;
                 CREATE PUBLICATION cdc_pub FOR TABLE {t};"
            ),
            Db::MariaDb(_) => format!(
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);
                 INSERT INTO {t} SELECT seq, 0 FROM seq_1_to_{INITIAL_ROWS};"
            ),
        }
    }
}

impl Conn {
    async fn execute(&mut self, sql: String) {
        match self {
            Conn::Postgres(c) => c.batch_execute(&sql).await.unwrap(),
            Conn::MariaDb(c) => c.query_drop(sql).await.unwrap(),
        }
    }

    /// One statement inserting rows `first..=last` with v = 0 into `t`.
    fn insert_range(&self, t: &str, first: u64, last: u64) -> String {
        match self {
            Conn::Postgres(_) => {
                format!("INSERT INTO {t} SELECT g, 0 FROM generate_series({first}, {last}) g")
            }
            Conn::MariaDb(_) => format!("INSERT INTO {t} SELECT seq, 0 FROM seq_{first}_to_{last}"),
        }
    }

    /// Every `(id, v)` of `t`.
    async fn id_v(&mut self, t: &str) -> HashMap<i64, i64> {
        let sql = format!("SELECT id, v FROM {t}");
        match self {
            Conn::Postgres(c) => {
                let rows = c.query(&sql, &[]).await.unwrap();
                rows.iter().map(|r| (r.get(0), r.get(1))).collect()
            }
            Conn::MariaDb(c) => {
                let rows: Vec<(i64, i64)> = c.query(sql).await.unwrap();
                rows.into_iter().collect()
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial(crash_loop)]
async fn every_postgresql_change_arrives_exactly_once_through_fifty_kills() {
    crash_loop(&POSTGRES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial(crash_loop)]
async fn every_mariadb_change_arrives_exactly_once_through_fifty_kills() {
    crash_loop(&MARIADB).await;
}

async fn crash_loop(source: &Source) {
    let seed = test_seed(source.what);
    let mut rng = Rng::from_seed(seed);

    let db = Db::create(source).await;
    let mut admin = db.connect().await;
    admin.execute(db.setup_sql()).await;
    let name = unique_name(source.what);
    let (mut cfg, table_topic) = db.agent_config(&name);
    cfg.extra_kafka_toml = "transaction_max_records = 5000\n".into();
    let mut agent = Agent::start(&cfg);

    // The writer: unique changes only. Inserts of new ids with v = 0 and updates v = v + 1,
    // in small transactions, with a large one now and then.
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(INITIAL_ROWS as u64 + 1));
    let writer = {
        let (stop, next_id, t) = (stop.clone(), next_id.clone(), db.table());
        let mut c = db.connect().await;
        let mut wrng = Rng::from_seed(seed ^ 0x9e37_79b9_7f4a_7c15);
        tokio::spawn(async move {
            let mut large = 0;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                if round % 40 == 0 && large < 4 {
                    large += 1;
                    let first = next_id.fetch_add(LARGE_TX_ROWS as u64, Ordering::Relaxed);
                    let sql = c.insert_range(&t, first, first + LARGE_TX_ROWS as u64 - 1);
                    c.execute(sql).await;
                    continue;
                }
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                // Only rows the writer inserted are updated: initial rows keep v = 0, so the
                // snapshot's value of each is known and its loss would show.
                let upd = INITIAL_ROWS as u64 + 1 + wrng.below(id - INITIAL_ROWS as u64);
                c.execute(format!(
                    "BEGIN; INSERT INTO {t} VALUES ({id}, 0);
                     UPDATE {t} SET v = v + 1 WHERE id = {upd};
                     UPDATE {t} SET v = v + 1 WHERE id = {id}; COMMIT;"
                ))
                .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            large
        })
    };

    for kill in 0..KILLS {
        if kill == SNAPSHOT_KILLS {
            // The first kills hit the snapshot (PostgreSQL restarts it on a new slot, MariaDB
            // starts it over: nothing of an unfinished snapshot is committed); the rest need a
            // snapshot that finished, so the stream runs between them.
            wait_until(Duration::from_secs(120), "a complete snapshot", || async {
                agent.log().contains("snapshot complete").then_some(())
            })
            .await;
        }
        let wait = 100 + rng.below(1_500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert!(
            agent.child.try_wait().unwrap().is_none(),
            "agent exited on its own before kill {kill}; log:\n{}",
            agent.log()
        );
        agent = agent.restart(); // SIGKILL, then start again on the same config
    }
    stop.store(true, Ordering::Relaxed);
    let large = writer.await.unwrap();
    assert!(large >= 3, "the writer made {large} large transactions");

    // The table's final state defines every version: each update added 1 to v.
    let final_state = admin.id_v(&db.table()).await;
    check_table_and_ledger(
        "",
        &table_topic,
        &cfg.event_store_topic,
        &final_state,
        Duration::from_secs(300),
    );
    let log = agent.log();
    let [(a, a_line), (b, b_line)] = source.counted;
    println!(
        "lost=0 dup=0 kills={KILLS} {a}={} {b}={}",
        log.matches(a_line).count(),
        log.matches(b_line).count()
    );
    drop(agent);
}
