//! The load of a fault case: a table `t (id, v)` in a fresh database of the stack, a writer
//! that changes about [`ROWS_PER_S`] rows a second over its own direct connection (never
//! through the fault proxy: the fault is between the agent and the service), and a reader
//! that follows the table topic while the case runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apache_avro::types::Value as Avro;
use mysql_async::prelude::Queryable;
use rdkafka::consumer::Consumer;
use rdkafka::Message;

use crate::common;
use common::agent::{field, unwrap_union, AgentConfig, AvroDecoder};
use common::eos::int;
use common::kafka;
use common::mysql::{my_admin, FreshMyDb};
use common::rng::Rng;
use common::{pg_connect, FreshPgDb};

/// Row changes a second the writer aims at (the load).
pub const ROWS_PER_S: u64 = 2_000;
/// One writer transaction every this often at most.
const TICK: Duration = Duration::from_millis(50);
/// Most rows inserted (and as many updated) by one transaction, when the writer catches up.
const MAX_BATCH: u64 = 250;
/// Rows in the table before the agent starts (its snapshot reads them).
pub const INITIAL_ROWS: i64 = 2_000;

/// The database the case's agent reads.
pub enum Db {
    Postgres(FreshPgDb),
    MariaDb(FreshMyDb),
}

/// A superuser connection to the case's database (not through any proxy).
pub enum Conn {
    Postgres(tokio_postgres::Client),
    MariaDb(mysql_async::Conn),
}

impl Db {
    /// A fresh database with `t` holding [`INITIAL_ROWS`] rows of v = 0, published for
    /// PostgreSQL.
    pub async fn create(postgres: bool, what: &str) -> Db {
        let db = if postgres {
            Db::Postgres(FreshPgDb::create(what).await)
        } else {
            Db::MariaDb(FreshMyDb::create(what).await)
        };
        let t = db.table();
        let sql = match &db {
            Db::Postgres(_) => format!(
                "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL);
                 INSERT INTO {t} SELECT g, 0 FROM generate_series(1, {INITIAL_ROWS}) g;
                 CREATE PUBLICATION cdc_pub FOR TABLE {t};"
            ),
            Db::MariaDb(_) => format!(
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);
                 INSERT INTO {t} SELECT seq, 0 FROM seq_1_to_{INITIAL_ROWS};"
            ),
        };
        db.connect().await.execute(&sql).await;
        db
    }

    pub async fn connect(&self) -> Conn {
        match self {
            Db::Postgres(db) => Conn::Postgres(pg_connect(&db.url).await),
            Db::MariaDb(_) => Conn::MariaDb(my_admin().await),
        }
    }

    /// The table `t` as SQL names it on a [`Conn`].
    pub fn table(&self) -> String {
        match self {
            Db::Postgres(_) => "t".into(),
            Db::MariaDb(db) => db.table("t"),
        }
    }

    /// The agent's configuration for this database with `delivery`, and its table topic. The
    /// caller points host ports at the proxies.
    pub fn agent_config(&self, name: &str, delivery: &str) -> (AgentConfig, String) {
        match self {
            Db::Postgres(db) => {
                let mut cfg = AgentConfig::postgres(name, &db.name);
                cfg.extra_source_toml = format!(
                    "delivery = \"{delivery}\"\n[postgres]\nslot_name = \"{name}\"\n\
                     publication = \"cdc_pub\"\n"
                );
                (cfg, format!("{name}.public.t"))
            }
            Db::MariaDb(db) => {
                let mut cfg = AgentConfig::mysql(name, &db.name, &db.name, &db.password);
                cfg.extra_source_toml = format!("delivery = \"{delivery}\"\n");
                (cfg, format!("{name}.{}.t", db.name))
            }
        }
    }
}

impl Conn {
    pub async fn execute(&mut self, sql: &str) {
        match self {
            Conn::Postgres(c) => c
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Conn::MariaDb(c) => c
                .query_drop(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Every `(id, v)` of `t`: the final state every change is checked against.
    pub async fn id_v(&mut self, t: &str) -> HashMap<i64, i64> {
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

/// The writer: every [`TICK`] one transaction inserting n new ids (v = 0) and adding 1 to v of
/// n distinct existing ids, n sized so that the changes keep to [`ROWS_PER_S`] on average
/// (50 + 50 rows a tick when each transaction is quick, more when they take longer). Every change is unique, so a lost or repeated one
/// shows in the topics.
pub struct Writer {
    stop: Arc<AtomicBool>,
    /// The highest id whose insert is committed.
    committed: Arc<AtomicI64>,
    handle: tokio::task::JoinHandle<(u64, Duration)>,
}

impl Writer {
    pub async fn start(db: &Db, seed: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicI64::new(INITIAL_ROWS));
        let mut conn = db.connect().await;
        let t = db.table();
        let (stop2, committed2) = (stop.clone(), committed.clone());
        let handle = tokio::spawn(async move {
            let mut rng = Rng::from_seed(seed);
            let mut tick = tokio::time::interval(TICK);
            // Behind schedule (a busy machine), the writer goes on at its pace rather than
            // bursting to catch up: the rate it reached is reported.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let started = Instant::now();
            let mut rows = 0u64;
            let mut next = INITIAL_ROWS + 1;
            while !stop2.load(Ordering::Relaxed) {
                tick.tick().await;
                let due = (started.elapsed().as_secs_f64() * ROWS_PER_S as f64) as u64;
                if due <= rows {
                    continue;
                }
                let batch = ((due - rows) / 2).clamp(1, MAX_BATCH);
                let last = next + batch as i64 - 1;
                let mut ids = HashSet::new();
                while ids.len() < batch as usize {
                    ids.insert(1 + rng.below((next - 1) as u64) as i64);
                }
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                let insert = match conn {
                    Conn::Postgres(_) => format!(
                        "INSERT INTO {t} SELECT g, 0 FROM generate_series({next}, {last}) g"
                    ),
                    Conn::MariaDb(_) => {
                        format!("INSERT INTO {t} SELECT seq, 0 FROM seq_{next}_to_{last}")
                    }
                };
                conn.execute(&format!(
                    "BEGIN; {insert}; UPDATE {t} SET v = v + 1 WHERE id IN ({list}); COMMIT;"
                ))
                .await;
                committed2.store(last, Ordering::Relaxed);
                next = last + 1;
                rows += 2 * batch;
            }
            (rows, started.elapsed())
        });
        Writer {
            stop,
            committed,
            handle,
        }
    }

    /// The highest id whose insert is committed.
    pub fn committed(&self) -> i64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// Stops the writer; returns the row changes a second it reached.
    pub async fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let (rows, took) = self.handle.await.unwrap();
        rows as f64 / took.as_secs_f64()
    }
}

/// Follows a table topic or the event store (read_committed, from the start) on a thread of its
/// own: every change `(id, v, op)` read, and the highest id whose insert (`c`) arrived.
pub struct Tail {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(i64, i64, char)>>>,
    max_insert: Arc<AtomicI64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tail {
    /// Follows `topic` of the broker at `bootstrap` (`host:port`).
    pub fn start(topic: &str, bootstrap: &str) -> Tail {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let max_insert = Arc::new(AtomicI64::new(0));
        let (topic, bootstrap, stop2, seen2, max2) = (
            topic.to_string(),
            bootstrap.to_string(),
            stop.clone(),
            seen.clone(),
            max_insert.clone(),
        );
        let thread = std::thread::spawn(move || {
            let settings = [
                ("fetch.wait.max.ms", "10"),
                ("bootstrap.servers", bootstrap.as_str()),
            ];
            let (consumer, _) =
                kafka::from_start(&topic, "faults-tail", &settings, Duration::from_secs(30));
            let mut dec = AvroDecoder::new();
            while !stop2.load(Ordering::Relaxed) {
                let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                // A broker going away (the broker cases kill them) reaches the consumer as an
                // error event; it reconnects and fetches on from where it was by itself.
                let Ok(m) = m else { continue };
                let Some(payload) = m.payload() else { continue };
                let v = dec.decode(payload);
                let after = unwrap_union(field(&v, "after"));
                if matches!(after, Avro::Null) {
                    continue;
                }
                let op = match field(&v, "op") {
                    Avro::String(s) => s.chars().next().unwrap_or('?'),
                    _ => '?',
                };
                let (id, val) = (int(field(after, "id")), int(field(after, "v")));
                if op == 'c' {
                    max2.fetch_max(id, Ordering::Relaxed);
                }
                seen2.lock().unwrap().push((id, val, op));
            }
            let _ = consumer.unassign();
        });
        Tail {
            stop,
            seen,
            max_insert,
            thread: Some(thread),
        }
    }

    /// The highest id whose insert arrived in the topic (committed).
    pub fn max_insert(&self) -> i64 {
        self.max_insert.load(Ordering::Relaxed)
    }

    /// Waits until every key of `final_state` reached its final value in the topic (or
    /// `timeout` passes), stops following, and returns every change read.
    pub async fn finish(
        mut self,
        final_state: &HashMap<i64, i64>,
        timeout: Duration,
    ) -> Vec<(i64, i64, char)> {
        let start = Instant::now();
        let mut reached = HashSet::new();
        let mut from = 0;
        while reached.len() < final_state.len() && start.elapsed() < timeout {
            {
                let seen = self.seen.lock().unwrap();
                for (id, v, _) in &seen[from..] {
                    if final_state.get(id) == Some(v) {
                        reached.insert(*id);
                    }
                }
                from = seen.len();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
