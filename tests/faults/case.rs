//! One fault case: an agent whose every connection (database, registry) goes through a proxy
//! of the test's own Toxiproxy, a writer changing ~2k rows/s, one fault on one proxy, then the
//! checks the issue asks for:
//! - lost = 0 in the table topic and the event store (and dup = 0 with exactly-once);
//! - the agent recovers by itself within [`RECOVERY_LIMIT`] of the fault ending: `/readyz` is
//!   200 again and the last row committed before the fault ended is in the table topic;
//! - during a cut or a half-open connection, `/readyz` names the dependency the agent waits for.
//!
//! Every case appends one JSON line to the file `CDC_FAULTS_RESULTS` names (when set), pass or
//! fail, before it asserts; `scripts/test-faults` renders those lines into docs/reliability.md.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::broker::Broker;
use crate::common;
use crate::http_fault::HttpFault;
use crate::load::{Db, Tail, Writer, ROWS_PER_S};
use crate::toxiproxy::{Proxy, Toxiproxy};
use common::agent::Agent;
use common::eos::{tally, Tally};
use common::ops::readiness;
use common::ports::free_port;
use common::rng::test_seed;
use common::{stack_env, unique_name};

/// The bound on recovery: from the fault's end to streaming again, caught up.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(30);
/// How long recovery is measured before the case gives up (so a slow recovery still gets a
/// number in the table).
const MEASURE_LIMIT: Duration = Duration::from_secs(120);
/// The writer runs this long before the fault (the stream is in steady state) and after the
/// recovery (changes after the fault are checked too).
const STEADY: Duration = Duration::from_secs(5);
/// Start-up, snapshot and the final reads.
const TIMEOUT: Duration = Duration::from_secs(180);
/// How often `/readyz` is read during the fault and the recovery.
const POLL: Duration = Duration::from_millis(250);

/// The service the fault is put in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Postgres,
    MariaDb,
    /// The schema registry (the source is PostgreSQL).
    Registry,
    /// Kafka: a broker of the suite's own whose advertised listener is the proxy
    /// ([`crate::broker`]; the source is PostgreSQL).
    Kafka,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgresql",
            Service::MariaDb => "mariadb",
            Service::Registry => "registry",
            Service::Kafka => "kafka",
        }
    }

    /// The `/readyz` state that names this service as what the agent waits for.
    fn waiting_state(self) -> &'static str {
        match self {
            Service::Postgres | Service::MariaDb => "waiting_for_database",
            Service::Registry => "waiting_for_registry",
            Service::Kafka => "waiting_for_kafka",
        }
    }
}

/// The fault put on the service's proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 200 ms added to every packet, both directions, for [`Fault::duration`].
    Latency,
    /// 100 KB/s in each direction.
    Bandwidth,
    /// The proxy disabled for 30 s: connections closed, new ones refused.
    Cut,
    /// Every connection reset (RST) as soon as data flows, for 2 s: mid-stream resets, and the
    /// reconnections in that window reset too.
    Reset,
    /// Every byte dropped in both directions, no FIN, no RST, for 30 s (Toxiproxy's `timeout`
    /// toxic with timeout 0); removing the toxic closes those connections.
    HalfOpen,
    /// Registry only: every request answered with HTTP 500 for 30 s, by a mitmproxy of the
    /// case's own between the agent and the registry ([`crate::http_fault`]).
    Http500,
    /// Registry only: every answer 5 s late for 20 s (Toxiproxy's `latency` toxic, 5000 ms,
    /// service → agent only: the request arrives at once, the answer after 5 s).
    Slow,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Latency => "latency 200 ms",
            Fault::Bandwidth => "bandwidth 100 KB/s",
            Fault::Cut => "cut 30 s",
            Fault::Reset => "reset mid-stream",
            Fault::HalfOpen => "half-open 30 s",
            Fault::Http500 => "http 500 30 s",
            Fault::Slow => "slow answers 5 s",
        }
    }

    fn duration(self) -> Duration {
        match self {
            Fault::Latency | Fault::Bandwidth | Fault::Slow => Duration::from_secs(20),
            Fault::Cut | Fault::HalfOpen | Fault::Http500 => Duration::from_secs(30),
            Fault::Reset => Duration::from_secs(2),
        }
    }

    /// An outage: the agent cannot work, so `/readyz` must say what it waits for. A registry
    /// answering in 5 s is slow, not out: registrations succeed (within the client's 10 s).
    fn is_outage(self) -> bool {
        matches!(self, Fault::Cut | Fault::HalfOpen | Fault::Http500)
    }

    /// Puts the fault on `proxy` (or, for HTTP 500, on `http`); returns the toxics to remove
    /// at its end.
    async fn apply(self, tp: &Toxiproxy, proxy: &Proxy, http: Option<&HttpFault>) -> Vec<String> {
        let both = |kind: &'static str, attrs: serde_json::Value| async move {
            vec![
                tp.add_toxic(proxy, kind, "downstream", attrs.clone()).await,
                tp.add_toxic(proxy, kind, "upstream", attrs).await,
            ]
        };
        match self {
            Fault::Latency => both("latency", json!({ "latency": 200, "jitter": 0 })).await,
            Fault::Bandwidth => both("bandwidth", json!({ "rate": 100 })).await,
            Fault::Cut => {
                tp.set_enabled(proxy, false).await;
                Vec::new()
            }
            Fault::Reset => both("reset_peer", json!({ "timeout": 0 })).await,
            Fault::HalfOpen => both("timeout", json!({ "timeout": 0 })).await,
            Fault::Http500 => {
                http.expect("the HTTP 500 case runs a mitmproxy").fail(true);
                Vec::new()
            }
            Fault::Slow => vec![
                tp.add_toxic(
                    proxy,
                    "latency",
                    "downstream",
                    json!({ "latency": 5000, "jitter": 0 }),
                )
                .await,
            ],
        }
    }

    async fn remove(
        self,
        tp: &Toxiproxy,
        proxy: &Proxy,
        http: Option<&HttpFault>,
        toxics: &[String],
    ) {
        if self == Fault::Cut {
            tp.set_enabled(proxy, true).await;
        }
        if let (Fault::Http500, Some(http)) = (self, http) {
            http.fail(false);
        }
        for t in toxics {
            tp.remove_toxic(proxy, t).await;
        }
    }
}

/// The agent's delivery mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ExactlyOnce,
    AtLeastOnce,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::ExactlyOnce => "exactly-once",
            Mode::AtLeastOnce => "at-least-once",
        }
    }
}

/// What one case measured: one line of the results table.
struct Outcome {
    fault: Fault,
    service: Service,
    mode: Mode,
    table: Option<Tally>,
    store: Option<Tally>,
    recovery: Option<Duration>,
    /// Non-ready `/readyz` states seen from the fault's start to the recovery, in order.
    readyz: Vec<String>,
    rate: f64,
    failures: Vec<String>,
    written: bool,
}

impl Outcome {
    /// Appends the line to `CDC_FAULTS_RESULTS` (when set), once.
    fn write(&mut self) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let lost = |t: &Option<Tally>| t.map(|t| t.lost);
        let dup = |t: &Option<Tally>| t.map(|t| t.dup);
        let line = json!({
            "fault": self.fault.name(),
            "service": self.service.name(),
            "mode": self.mode.name(),
            "lost_table": lost(&self.table),
            "lost_store": lost(&self.store),
            "dup_table": dup(&self.table),
            "dup_store": dup(&self.store),
            "recovery_s": self.recovery.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
            "readyz": self.readyz,
            "rows_per_s": self.rate.round(),
            "pass": self.failures.is_empty(),
            "failures": self.failures,
        });
        println!("result: {line}");
        if let Ok(path) = std::env::var("CDC_FAULTS_RESULTS") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("open {path}: {e}"));
            writeln!(f, "{line}").unwrap();
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // A case that panicked before its checks still gets its (failed) line in the table.
        if std::thread::panicking() && !self.written {
            self.failures
                .push("the case stopped before its checks (see the test's output)".into());
            self.write();
        }
    }
}

/// Runs `fault` against `service` with `mode` and asserts the case's claims.
pub async fn run(service: Service, fault: Fault, mode: Mode) {
    let what = format!("faults_{}", service.name());
    let seed = test_seed(&what);
    let mut out = Outcome {
        fault,
        service,
        mode,
        table: None,
        store: None,
        recovery: None,
        readyz: Vec::new(),
        rate: 0.0,
        failures: Vec::new(),
        written: false,
    };

    let tp = Toxiproxy::start().await;
    let db = Db::create(service != Service::MariaDb, &what).await;
    let pg = tp
        .proxy("postgres", &format!("127.0.0.1:{}", stack_env("PG_PORT")))
        .await;
    let my = tp
        .proxy("mariadb", &format!("127.0.0.1:{}", stack_env("MYSQL_PORT")))
        .await;
    let registry_url = stack_env("SCHEMA_REGISTRY_URL");
    let registry_authority = registry_url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .expect("SCHEMA_REGISTRY_URL is http://host:port/...")
        .to_string();
    // HTTP 500: agent → Toxiproxy → mitmproxy → registry (the TCP proxy stays clean).
    let http = match fault {
        Fault::Http500 => Some(HttpFault::start(&format!("http://{registry_authority}")).await),
        _ => None,
    };
    let reg_upstream = match &http {
        Some(h) => format!("127.0.0.1:{}", h.listen_port),
        None => registry_authority.clone(),
    };
    let reg = tp.proxy("registry", &reg_upstream).await;
    // Kafka: the stack's broker directly, or one of the case's own behind a proxy.
    let broker_port = free_port();
    let kafka = tp.proxy("kafka", &format!("127.0.0.1:{broker_port}")).await;
    let broker = (service == Service::Kafka)
        .then(|| tokio::task::block_in_place(|| Broker::start(broker_port, kafka.listen_port)));
    let bootstrap = match &broker {
        Some(b) => b.direct.clone(),
        None => stack_env("KAFKA_BOOTSTRAP"),
    };

    let name = unique_name(&what);
    let (mut cfg, table_topic) = db.agent_config(&name, mode.name());
    cfg.port = match db {
        Db::Postgres(_) => pg.listen_port,
        Db::MariaDb(_) => my.listen_port,
    }
    .to_string();
    cfg.registry_url = registry_url.replacen(
        &registry_authority,
        &format!("127.0.0.1:{}", reg.listen_port),
        1,
    );
    if broker.is_some() {
        cfg.kafka_bootstrap = format!("127.0.0.1:{}", kafka.listen_port);
    }
    let faulted = match service {
        Service::Postgres => &pg,
        Service::MariaDb => &my,
        Service::Registry => &reg,
        Service::Kafka => &kafka,
    };

    let agent = Agent::start(&cfg);
    let addr = agent.http_addr(TIMEOUT);
    agent.wait_streaming(TIMEOUT);
    let tail = Tail::start(&table_topic, &bootstrap);
    let writer = Writer::start(&db, seed).await;
    let mut admin = db.connect().await;

    // Steady state: the writer's rows arrive and /readyz is 200 before the fault.
    let start = Instant::now();
    loop {
        let ready = readiness(addr, &name).await.is_some_and(|(ok, _)| ok);
        if ready && tail.max_insert() > crate::load::INITIAL_ROWS && start.elapsed() >= STEADY {
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "no steady state before the fault (ready {ready}, last insert in the topic {}); \
             agent log:\n{}",
            tail.max_insert(),
            agent.log()
        );
        tokio::time::sleep(POLL).await;
    }

    // The fault. The registry is only asked when a schema is new: a column added at the
    // fault's start makes the agent register the next row's new value schema through it.
    println!(
        "{}: {} against {} ({})",
        name,
        fault.name(),
        service.name(),
        mode.name()
    );
    let toxics = fault.apply(&tp, faulted, http.as_ref()).await;
    let fault_start = Instant::now();
    if service == Service::Registry {
        admin.execute("ALTER TABLE t ADD COLUMN c int").await;
    }
    let mut states = BTreeSet::new();
    let mut first_reason = None;
    let mut note = |ready: Option<(bool, serde_json::Value)>, out: &mut Outcome| {
        if let Some((false, s)) = ready {
            let state = s["state"].as_str().unwrap_or("?").to_string();
            if states.insert(state.clone()) {
                out.readyz.push(state);
                if first_reason.is_none() {
                    first_reason = s["reason"].as_str().map(str::to_string);
                }
            }
        }
    };
    while fault_start.elapsed() < fault.duration() {
        note(readiness(addr, &name).await, &mut out);
        tokio::time::sleep(POLL).await;
    }
    let seen_during_fault = out.readyz.clone();
    fault.remove(&tp, faulted, http.as_ref(), &toxics).await;
    let fault_end = Instant::now();
    let last_before_end = writer.committed();

    // Recovery: /readyz 200 and the last row committed before the fault ended in the topic.
    let mut agent = agent;
    let mut exited = None;
    loop {
        let ready = readiness(addr, &name).await;
        let ok = ready.as_ref().is_some_and(|(ok, _)| *ok);
        note(ready, &mut out);
        if ok && tail.max_insert() >= last_before_end {
            out.recovery = Some(fault_end.elapsed());
            break;
        }
        if let Some(status) = agent.child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        if fault_end.elapsed() > MEASURE_LIMIT {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    println!(
        "readyz during the fault: {seen_during_fault:?}, first reason: {first_reason:?}; \
         recovery: {:?}",
        out.recovery
    );

    if out.recovery.is_some() {
        // Changes after the recovery are checked too.
        tokio::time::sleep(STEADY).await;
    }
    out.rate = writer.stop().await;
    if out.rate < ROWS_PER_S as f64 * 0.8 {
        println!(
            "note: the writer reached {:.0} row changes/s of {ROWS_PER_S}",
            out.rate
        );
    }

    if let Some(status) = exited {
        out.failures.push(format!("the agent exited ({status})"));
    } else if out.recovery.is_none() {
        out.failures.push(format!(
            "not recovered {}s after the fault ended",
            MEASURE_LIMIT.as_secs()
        ));
    } else {
        let final_state = admin.id_v(&db.table()).await;
        // The event store is read from its start while the table topic's tail catches up.
        let store = Tail::start(&cfg.event_store_topic, &bootstrap);
        let table = tail.finish(&final_state, TIMEOUT).await;
        let store = store.finish(&final_state, TIMEOUT).await;
        out.table = Some(tally(&table, &final_state));
        out.store = Some(tally(&store, &final_state));
        println!("table topic: {:?}; event store: {:?}", out.table, out.store);
        for (where_, t) in [("table topic", out.table), ("event store", out.store)] {
            let t = t.unwrap();
            if t.lost > 0 || t.unexpected > 0 {
                out.failures.push(format!(
                    "{where_}: lost {} (keys not in the table {})",
                    t.lost, t.unexpected
                ));
            }
            if mode == Mode::ExactlyOnce && (t.dup > 0 || t.out_of_order > 0) {
                out.failures.push(format!(
                    "{where_}: dup {} out of order {} (exactly-once)",
                    t.dup, t.out_of_order
                ));
            }
        }
    }
    if let Some(took) = out.recovery {
        if took > RECOVERY_LIMIT {
            out.failures.push(format!(
                "recovered after {:.1}s (limit {}s)",
                took.as_secs_f64(),
                RECOVERY_LIMIT.as_secs()
            ));
        }
    }
    if fault.is_outage() {
        let expected = service.waiting_state();
        if !seen_during_fault.iter().any(|s| s == expected) {
            out.failures.push(format!(
                "/readyz never said {expected} during the fault (saw {seen_during_fault:?})"
            ));
        }
    }
    out.write();
    keep_log(&agent, service, fault, mode);
    assert!(
        out.failures.is_empty(),
        "{} against {} ({}): {}; end of the agent's log:\n{}",
        fault.name(),
        service.name(),
        mode.name(),
        out.failures.join("; "),
        tail_lines(&agent.log(), 60)
    );
    drop(agent);
    drop(broker);
    drop(http);
}

/// Copies the agent's log into the folder `CDC_FAULTS_LOGS` names (when set), as
/// `<service>-<fault>-<mode>.log`, for reading after the run (the agent's own folder goes with it).
fn keep_log(agent: &Agent, service: Service, fault: Fault, mode: Mode) {
    let Ok(dir) = std::env::var("CDC_FAULTS_LOGS") else {
        return;
    };
    let file =
        format!("{}-{}-{}.log", service.name(), fault.name(), mode.name()).replace([' ', '/'], "_");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::copy(&agent.log, std::path::Path::new(&dir).join(file));
}

/// The last `n` lines of `text`.
pub(crate) fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
