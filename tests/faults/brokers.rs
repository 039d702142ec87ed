//! The broker cases: what the agent does when Kafka itself fails, under the suite's ~2k rows/s
//! load, exactly-once, PostgreSQL source (a fresh database of the stack's PostgreSQL), against a
//! cluster of the case's own ([`crate::cluster`]; the shared single broker is never touched).
//!
//! - [`kills`]: a three-node cluster (replication factor 3, min ISR 2); the partition leader
//!   of the table topic, the transaction coordinator of the agent's first transactional id,
//!   the leader of the event store and the coordinator of its second transactional id are
//!   killed (SIGKILL) in turn, each right after a commit completed (the ring commits every
//!   ~250 ms under this load, so the kill lands in the next commit), each node restarted and
//!   caught up before the next kill. Checks, after the run: lost = 0 and dup = 0 in the table
//!   topic and the event store (read_committed); after each kill the agent carries on by
//!   itself (every row committed before the kill reaches the table topic) within
//!   [`RECOVERY_LIMIT`] without the killed node.
//! - [`disk_full`]: one node whose log directory is a 64 MiB tmpfs, filled up under load. Kafka
//!   answers a write error in its only log directory by stopping (a log-directory failure); the
//!   case checks that the agent says so (`/readyz` names Kafka, a log line), loses and repeats
//!   nothing, and resumes by itself once the broker is started again with space.
//!
//! Each case appends one JSON line to the file `CDC_BROKERS_RESULTS` names (when set), pass or
//! fail; scripts/test-brokers renders them into docs/reliability.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::case::{tail_lines, RECOVERY_LIMIT};
use crate::cluster::{Cluster, Options};
use crate::common;
use crate::load::{Db, Tail, Writer, INITIAL_ROWS};
use common::agent::{strip_ansi, Agent};
use common::eos::{tally, Tally};
use common::ops::{readiness, scrape, value};
use common::rng::test_seed;
use common::unique_name;

/// Start-up, snapshot and the final reads.
const TIMEOUT: Duration = Duration::from_secs(180);
/// How long one kill's recovery is measured before the case gives up on it.
const MEASURE_LIMIT: Duration = Duration::from_secs(120);
/// A restarted node must be back in every in-sync replica set within this.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(180);
/// The writer runs this long before the first fault and after the last one.
const STEADY: Duration = Duration::from_secs(5);
/// How often `/readyz` and the metrics are read.
const POLL: Duration = Duration::from_millis(250);
/// How long Kafka's admin tool may take to name a transaction coordinator (each asking is a
/// JVM start: seconds on a loaded machine).
const COORDINATOR_LIMIT: Duration = Duration::from_secs(120);
/// Size of the disk-full case's log directory.
const TMPFS_SIZE: &str = "64m";
/// How long the disk-full case waits for the full disk to show (the broker stops, or the
/// agent reports Kafka) after filling it.
const FULL_LIMIT: Duration = Duration::from_secs(120);

/// One kill of the run: what was killed and how the agent fared.
struct Kill {
    target: &'static str,
    node: i32,
    /// From the kill to: `/readyz` 200 and every row committed before the kill in the topic.
    recovery: Option<Duration>,
    /// The killed node's restart until every replica was in sync again.
    catch_up: Option<Duration>,
    readyz: Vec<String>,
}

/// The outcome of a case: one line of the results.
struct Outcome {
    case: &'static str,
    json: serde_json::Value,
    failures: Vec<String>,
    written: bool,
}

impl Outcome {
    fn new(case: &'static str) -> Self {
        Self {
            case,
            json: json!({}),
            failures: Vec::new(),
            written: false,
        }
    }

    /// Appends the line to `CDC_BROKERS_RESULTS` (when set), once.
    fn write(&mut self) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        self.json["case"] = json!(self.case);
        self.json["pass"] = json!(self.failures.is_empty());
        self.json["failures"] = json!(self.failures);
        let line = self.json.to_string();
        println!("result: {line}");
        if let Ok(path) = std::env::var("CDC_BROKERS_RESULTS") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("open {path}: {e}"));
            writeln!(f, "{line}").unwrap();
        }
    }

    /// Counts of the table topic and the event store into the line, and a failure for any
    /// lost, repeated or reordered change.
    fn tallies(&mut self, table: Tally, store: Tally) {
        self.json["lost"] = json!([table.lost, store.lost]);
        self.json["dup"] = json!([table.dup, store.dup]);
        self.json["events"] = json!([table.events, store.events]);
        for (where_, t) in [("table topic", table), ("event store", store)] {
            if t.lost > 0 || t.unexpected > 0 {
                self.failures.push(format!(
                    "{where_}: lost {} (keys not in the table {})",
                    t.lost, t.unexpected
                ));
            }
            if t.dup > 0 || t.out_of_order > 0 {
                self.failures.push(format!(
                    "{where_}: dup {} out of order {}",
                    t.dup, t.out_of_order
                ));
            }
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // A case that panicked before its checks still gets its (failed) line.
        if std::thread::panicking() && !self.written {
            self.failures
                .push("the case stopped before its checks (see the test's output)".into());
            self.write();
        }
    }
}

/// The agent of a case: exactly-once, PostgreSQL, topics of replication factor `rf` on
/// `bootstrap`; started, its snapshot done, the writer running and the stream in steady state.
struct Run {
    name: String,
    db: Db,
    agent: Agent,
    addr: std::net::SocketAddr,
    event_store: String,
    tail: Tail,
    writer: Writer,
    bootstrap: String,
}

impl Run {
    async fn start(what: &str, bootstrap: &str, rf: i32) -> Run {
        let db = Db::create(true, what).await;
        let name = unique_name(what);
        let (mut cfg, table_topic) = db.agent_config(&name, "exactly-once");
        cfg.kafka_bootstrap = bootstrap.to_string();
        cfg.extra_kafka_toml = format!("topic_replication_factor = {rf}\n");
        let agent = Agent::start(&cfg);
        let addr = agent.http_addr(TIMEOUT);
        tokio::task::block_in_place(|| agent.wait_streaming(TIMEOUT));
        let tail = Tail::start(&table_topic, bootstrap);
        let writer = Writer::start(&db, test_seed(what)).await;
        let run = Run {
            name,
            db,
            agent,
            addr,
            event_store: cfg.event_store_topic.clone(),
            tail,
            writer,
            bootstrap: bootstrap.to_string(),
        };
        let start = Instant::now();
        loop {
            let ready = run.ready().await;
            if ready && run.tail.max_insert() > INITIAL_ROWS && start.elapsed() >= STEADY {
                break;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "no steady state (ready {ready}, last insert in the topic {}); agent log:\n{}",
                run.tail.max_insert(),
                run.agent.log()
            );
            tokio::time::sleep(POLL).await;
        }
        run
    }

    async fn ready(&self) -> bool {
        readiness(self.addr, &self.name)
            .await
            .is_some_and(|(ok, _)| ok)
    }

    /// `/readyz`'s state of the source when not ready.
    async fn not_ready_state(&self) -> Option<String> {
        match readiness(self.addr, &self.name).await {
            Some((false, s)) => Some(s["state"].as_str().unwrap_or("?").to_string()),
            _ => None,
        }
    }

    /// Kafka transactions committed so far.
    async fn commits(&self) -> f64 {
        let s = scrape(self.addr).await;
        value(
            &s,
            "cdc_agent_kafka_transactions_total",
            &[("source", &self.name), ("outcome", "committed")],
        )
        .unwrap_or(0.0)
    }

    async fn aborts(&self) -> f64 {
        let s = scrape(self.addr).await;
        value(
            &s,
            "cdc_agent_kafka_transactions_total",
            &[("source", &self.name), ("outcome", "aborted")],
        )
        .unwrap_or(0.0)
    }

    /// Waits until every row committed up to now is in the table topic and `/readyz` is 200;
    /// the time it took, or `None` after [`MEASURE_LIMIT`] (or when the agent exited). Every
    /// non-ready state seen goes into `states`.
    async fn recover(&mut self, since: Instant, states: &mut Vec<String>) -> Option<Duration> {
        let last = self.writer.committed();
        loop {
            let r = readiness(self.addr, &self.name).await;
            match &r {
                Some((true, _)) if self.tail.max_insert() >= last => return Some(since.elapsed()),
                Some((false, s)) => {
                    let state = s["state"].as_str().unwrap_or("?").to_string();
                    if !states.contains(&state) {
                        states.push(state);
                    }
                }
                _ => {}
            }
            if self.agent.child.try_wait().unwrap().is_some() || since.elapsed() > MEASURE_LIMIT {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the writer (its rate into the line), reads both topics back read_committed and
    /// counts them into `out`.
    async fn finish(self, out: &mut Outcome) -> Agent {
        tokio::time::sleep(STEADY).await;
        let rate = self.writer.stop().await;
        out.json["rows_per_s"] = json!(rate.round());
        let mut admin = self.db.connect().await;
        let final_state = admin.id_v(&self.db.table()).await;
        let store = Tail::start(&self.event_store, &self.bootstrap);
        let table = self.tail.finish(&final_state, TIMEOUT).await;
        let store = store.finish(&final_state, TIMEOUT).await;
        let (table, store) = (tally(&table, &final_state), tally(&store, &final_state));
        println!("table topic: {table:?}; event store: {store:?}");
        out.tallies(table, store);
        self.agent
    }
}

/// `kills` kills of the partition leader / transaction coordinator under load; see the module.
pub async fn kills(kills: usize) {
    let mut out = Outcome::new("kills");
    let mut cluster = tokio::task::block_in_place(|| Cluster::start(3, Options::default()));
    let mut run = Run::start("brokers_kills", &cluster.bootstrap(), 3).await;
    let table_topic = format!("{}.public.t", run.name);
    let txn_ids = [
        format!("cdc-agent-{}", run.name),
        format!("cdc-agent-{}.1", run.name),
    ];
    // The coordinator a kill aims at is the one Kafka's own admin tool names (a FindCoordinator
    // request, `kafka-transactions.sh describe`), asked right before each such kill: Kafka's
    // answer is the authority. The partition of __transaction_state computed from the id is
    // printed beside it. (Comparing the two until they agreed, with a minute's deadline, failed
    // once in CI on a loaded machine, where the admin tool's JVM takes seconds to answer and
    // leadership of __transaction_state still moves right after the cluster starts.)
    let coordinator = |cluster: &Cluster, id: &str| -> i32 {
        let deadline = Instant::now() + COORDINATOR_LIMIT;
        loop {
            if let Some(described) = cluster.describe_coordinator(id) {
                let computed = cluster.txn_coordinator(id, TIMEOUT);
                println!(
                    "coordinator of {id}: node {described} (computed from the id: node {computed})"
                );
                return described;
            }
            assert!(
                Instant::now() < deadline,
                "kafka-transactions describe named no coordinator of {id} within {COORDINATOR_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    let aborts_before = run.aborts().await;
    let mut done = Vec::new();
    for k in 0..kills {
        let (target, node) = tokio::task::block_in_place(|| match k % 4 {
            0 => (
                "table topic leader",
                cluster.leader(&table_topic, 0, TIMEOUT),
            ),
            1 => (
                "transaction coordinator",
                coordinator(&cluster, &txn_ids[0]),
            ),
            2 => (
                "event store leader",
                cluster.leader(&run.event_store, 0, TIMEOUT),
            ),
            _ => (
                "transaction coordinator",
                coordinator(&cluster, &txn_ids[1]),
            ),
        });
        // Right after a commit completed: the next one is being filled and commits within
        // ~250 ms, i.e. while the node dies.
        let before = run.commits().await;
        let start = Instant::now();
        while run.commits().await <= before {
            assert!(
                start.elapsed() < TIMEOUT,
                "no commit within {TIMEOUT:?} before kill {}; agent log:\n{}",
                k + 1,
                tail_lines(&run.agent.log(), 60)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cluster.kill(node);
        let killed = Instant::now();
        println!("kill {}: node {node} ({target}) at {}", k + 1, chrono_now());
        let mut readyz = Vec::new();
        let recovery = run.recover(killed, &mut readyz).await;
        let restarted = tokio::task::block_in_place(|| {
            cluster.restart(node);
            cluster.wait_in_sync(CATCH_UP_LIMIT)
        });
        println!(
            "kill {}: recovered after {recovery:?}, node {node} in sync after {restarted:?} at {}",
            k + 1,
            chrono_now()
        );
        if let Err(why) = &restarted {
            out.failures.push(format!(
                "kill {}: node {node} not back in sync within {}s ({why})",
                k + 1,
                CATCH_UP_LIMIT.as_secs()
            ));
        }
        match recovery {
            None => out.failures.push(format!(
                "kill {} ({target}, node {node}): not recovered within {}s",
                k + 1,
                MEASURE_LIMIT.as_secs()
            )),
            Some(t) if t > RECOVERY_LIMIT => out.failures.push(format!(
                "kill {} ({target}, node {node}): recovered after {:.1}s (limit {}s)",
                k + 1,
                t.as_secs_f64(),
                RECOVERY_LIMIT.as_secs()
            )),
            Some(_) => {}
        }
        done.push(Kill {
            target,
            node,
            recovery,
            catch_up: restarted.ok(),
            readyz,
        });
        if !out.failures.is_empty() {
            break;
        }
    }
    let aborts = run.aborts().await - aborts_before;
    out.json["kills"] = json!(done
        .iter()
        .map(|k| json!({
            "target": k.target,
            "node": k.node,
            "recovery_s": k.recovery.map(secs),
            "catch_up_s": k.catch_up.map(secs),
            "readyz": k.readyz,
        }))
        .collect::<Vec<_>>());
    out.json["aborted_txns"] = json!(aborts);
    let exited = run.agent.child.try_wait().unwrap();
    let agent = if out.failures.is_empty() {
        run.finish(&mut out).await
    } else {
        run.agent
    };
    if let Some(status) = exited {
        out.failures.push(format!("the agent exited ({status})"));
    }
    keep_cluster_logs(&cluster, out.case);
    conclude(out, &agent);
    drop(cluster);
}

/// Disk full on the broker's log directory under load; see the module.
pub async fn disk_full() {
    let mut out = Outcome::new("disk full");
    let mount = Tmpfs::mount(TMPFS_SIZE);
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start(
            1,
            Options {
                log_dir: Some(mount.path.join("data")),
            },
        )
    });
    let mut run = Run::start("brokers_disk_full", &cluster.bootstrap(), 1).await;
    let log_len = run.agent.log().len();

    // Fill what is left of the volume (the broker's segments keep growing into it).
    let filler = mount.path.join("filler");
    let filled = fill(&filler);
    let full_at = Instant::now();
    println!("disk full: {filled} bytes of filler written");
    let mut states = Vec::new();
    let mut broker_stopped = None;
    while full_at.elapsed() < FULL_LIMIT {
        if let Some(s) = run.not_ready_state().await {
            if !states.contains(&s) {
                states.push(s);
            }
        }
        if broker_stopped.is_none() && tokio::task::block_in_place(|| cluster.exited(1)) {
            broker_stopped = Some(full_at.elapsed());
        }
        // Kafka stopped and the agent says it waits for it: the state to observe.
        if broker_stopped.is_some() && states.iter().any(|s| s == "waiting_for_kafka") {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let broker_line = first_line(&cluster.log(1), &["No space left", "log dir", "Halting"]);
    // What the agent told its operator: its first warning or error about Kafka.
    let agent_line = strip_ansi(&run.agent.log()[log_len..])
        .lines()
        .find(|l| {
            (l.contains(" WARN ") || l.contains(" ERROR "))
                && l.to_lowercase().contains("kafka")
                && !l.contains("librdkafka:")
        })
        // Without its timestamp: the level, the target and the message.
        .map(|l| {
            let l = l.trim();
            let l = l.split_once(' ').map_or(l, |(_, rest)| rest.trim_start());
            l.chars().take(300).collect::<String>()
        });
    println!(
        "disk full: broker stopped after {broker_stopped:?} ({broker_line:?}); readyz {states:?}; \
         agent said {agent_line:?}"
    );
    out.json["broker_stopped_s"] = json!(broker_stopped.map(secs));
    out.json["broker_line"] = json!(broker_line);
    out.json["agent_line"] = json!(agent_line);
    if !states.iter().any(|s| s == "waiting_for_kafka") {
        out.failures.push(format!(
            "/readyz never said waiting_for_kafka while the disk was full (saw {states:?})"
        ));
    }
    if agent_line.is_none() {
        out.failures
            .push("no agent log line about kafka while the disk was full".into());
    }

    // Space again; a broker that stopped is started again on its data.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    if broker_stopped.is_some() {
        tokio::task::block_in_place(|| cluster.restart(1));
    }
    let recovery = run.recover(freed, &mut states).await;
    println!("disk full: recovered {recovery:?} after space was freed");
    out.json["readyz"] = json!(states);
    out.json["recovery_s"] = json!(recovery.map(secs));
    let exited = run.agent.child.try_wait().unwrap();
    let agent = match recovery {
        Some(_) => run.finish(&mut out).await,
        None => {
            out.failures.push(format!(
                "not recovered {}s after space was freed",
                MEASURE_LIMIT.as_secs()
            ));
            run.agent
        }
    };
    if let Some(status) = exited {
        out.failures.push(format!("the agent exited ({status})"));
    }
    keep_cluster_logs(&cluster, out.case);
    conclude(out, &agent);
    drop(cluster);
    drop(mount);
}

/// Copies the nodes' logs next to the agent's (`CDC_FAULTS_LOGS`).
fn keep_cluster_logs(cluster: &Cluster, case: &str) {
    if let Ok(dir) = std::env::var("CDC_FAULTS_LOGS") {
        cluster.keep_logs(
            Path::new(&dir),
            &format!("brokers-{}", case.replace(' ', "_")),
        );
    }
}

/// Writes the result line, keeps the agent's log and asserts the case passed.
fn conclude(mut out: Outcome, agent: &Agent) {
    out.write();
    if let Ok(dir) = std::env::var("CDC_FAULTS_LOGS") {
        let _ = std::fs::create_dir_all(&dir);
        let file = format!("brokers-{}.log", out.case.replace(' ', "_"));
        let _ = std::fs::copy(&agent.log, Path::new(&dir).join(file));
    }
    assert!(
        out.failures.is_empty(),
        "{}: {}; end of the agent's log:\n{}",
        out.case,
        out.failures.join("; "),
        tail_lines(&agent.log(), 60)
    );
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// The first line of `log` containing any of `needles`, trimmed.
fn first_line(log: &str, needles: &[&str]) -> Option<String> {
    log.lines()
        .find(|l| needles.iter().any(|n| l.contains(n)))
        .map(|l| l.trim().chars().take(300).collect())
}

/// Writes zeros into `file` until the volume is full; the bytes written.
fn fill(file: &Path) -> u64 {
    let mut f = std::fs::File::create(file).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", file.display()),
        }
    }
    let _ = f.sync_all();
    written
}

/// A tmpfs of `size` mounted on a temporary folder; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {size} tmpfs on {} failed ({status}): the disk-full case needs root \
             (or CAP_SYS_ADMIN) to mount the broker's small log volume",
            path.display()
        );
        Tmpfs { path, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The wall-clock time, to match the test's output with the agent's and the brokers' logs.
fn chrono_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}
