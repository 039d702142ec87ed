//! What the end-to-end benchmarks (`bench/pg-e2e`, `bench/my-e2e`) share: the agent process
//! and its configuration, /proc readers (RSS, CPU, load, the broker's pid), the latency
//! consumer and the live phase around a source's own writer, percentiles, and the facts the
//! RESULTS.md reports print about the machine.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Any error, as the benchmarks report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A benchmark result.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// A variable of `scripts/stack env`, or an error saying how to set them.
pub fn var(name: &str) -> Result<String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set: run `eval \"$(scripts/stack env)\"` first").into())
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub fn run_id() -> u32 {
    std::process::id()
}

/// One `Vm…:` line of /proc/<pid>/status, in KiB.
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// user + system CPU seconds of a process (clock ticks at 100 Hz).
pub fn proc_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

pub fn load_1m() -> String {
    load_average()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// The pid of the stack's Kafka broker (`java … kafka.Kafka $CDC_STACK_DIR/kafka/…`; other
/// stacks may run on the same machine), for its CPU time.
pub fn broker_pid() -> Option<u32> {
    let stack = std::env::var("CDC_STACK_DIR").unwrap_or_default();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let mut args = cmd.split(|&b| b == 0);
        if !args.next().is_some_and(|a| a.ends_with(b"java")) {
            return None;
        }
        args.position(|a| a == b"kafka.Kafka")?;
        let props = args.next().unwrap_or_default();
        props.starts_with(stack.as_bytes()).then_some(pid)
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Delivery {
    ExactlyOnce,
    AtLeastOnce,
}

impl Delivery {
    pub fn toml(self) -> &'static str {
        match self {
            Delivery::ExactlyOnce => "exactly-once",
            Delivery::AtLeastOnce => "at-least-once",
        }
    }
    /// `--modes`: a comma-separated list of `eos`/`exactly-once` and `alo`/`at-least-once`.
    pub fn parse_list(modes: &str) -> Result<Vec<Delivery>> {
        modes
            .split(',')
            .map(|m| match m {
                "eos" | "exactly-once" => Ok(Delivery::ExactlyOnce),
                "alo" | "at-least-once" => Ok(Delivery::AtLeastOnce),
                other => Err(format!("unknown mode {other}").into()),
            })
            .collect()
    }

    pub fn short(self) -> &'static str {
        match self {
            Delivery::ExactlyOnce => "eos",
            Delivery::AtLeastOnce => "alo",
        }
    }
}

/// `KEY=VALUE` of a `flag` that needs one.
pub fn key_value(flag: &str, kv: &str) -> Result<(String, String)> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("{flag} needs KEY=VALUE"))?;
    Ok((k.to_owned(), v.to_owned()))
}

/// The last `n` lines of an agent log, without the terminal colours it always writes.
pub fn tail(log: &str, n: usize) -> String {
    let mut plain = String::with_capacity(log.len());
    let mut rest = log;
    while let Some(i) = rest.find('\u{1b}') {
        plain.push_str(&rest[..i]);
        rest = &rest[i..];
        rest = rest.find('m').map_or("", |m| &rest[m + 1..]);
    }
    plain.push_str(rest);
    let lines: Vec<&str> = plain.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How every agent of a run is configured: the Kafka and registry it writes to, the
/// `--kafka-*` options, and where logs are kept.
pub struct AgentSpec<'a> {
    /// The `cdc-agent` binary.
    pub binary: &'a Path,
    /// Prefix of the agent's temporary directory.
    pub tmp_prefix: &'a str,
    /// `bootstrap_servers`.
    pub kafka: &'a str,
    /// The schema registry's URL.
    pub registry: &'a str,
    /// `[kafka]` keys (values as TOML).
    pub kafka_main: &'a [(String, String)],
    /// `[kafka.properties]` (librdkafka settings).
    pub kafka_props: &'a [(String, String)],
    /// Where agent logs are copied when an agent ends.
    pub keep_logs: Option<&'a Path>,
    /// Whether the agent serves HTTP (`/metrics`) on an ephemeral port.
    pub http: bool,
}

/// A running `cdc-agent`, killed (and its log kept, when asked) on drop.
pub struct Agent {
    /// Names the kept log file.
    pub name: String,
    keep_logs: Option<PathBuf>,
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    /// When the process was started.
    pub started: Instant,
}

impl Agent {
    /// Writes the main configuration and `source_toml` as the only connector file and starts
    /// `cdc-agent run`; `log_name` names the log kept under `--keep-logs`.
    pub fn start(
        spec: &AgentSpec,
        name: &str,
        log_name: String,
        source_toml: &str,
    ) -> Result<Agent> {
        let dir = tempfile::Builder::new().prefix(spec.tmp_prefix).tempdir()?;
        std::fs::create_dir(dir.path().join("connectors"))?;
        std::fs::write(
            dir.path().join("cdc-agent.toml"),
            format!(
                "[agent]\nstate_dir = \"{state}\"\n[kafka]\nbootstrap_servers = \"{kafka}\"\n{main}\
                 [schema_registry]\nurl = \"{registry}\"\n[event_store]\ntopic = \"{name}.events\"\n\
                 {http}[kafka.properties]\n{props}",
                state = dir.path().join("state").display(),
                main = spec
                    .kafka_main
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}\n"))
                    .collect::<String>(),
                props = spec
                    .kafka_props
                    .iter()
                    .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
                    .collect::<String>(),
                kafka = spec.kafka,
                registry = spec.registry,
                http = if spec.http { "[http]\nlisten = \"127.0.0.1:0\"\n" } else { "" },
            ),
        )?;
        std::fs::write(
            dir.path().join("connectors").join("source.toml"),
            source_toml,
        )?;
        let log = dir.path().join("agent.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(spec.binary)
            .args(["run", "--config"])
            .arg(dir.path().join("cdc-agent.toml"))
            .env(
                "RUST_LOG",
                std::env::var("E2E_AGENT_LOG")
                    .unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()?;
        Ok(Agent {
            name: log_name,
            keep_logs: spec.keep_logs.map(Path::to_path_buf),
            child,
            _dir: dir,
            log,
            started: Instant::now(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log_text(), 30)
    }

    pub fn alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!(
                "agent {} exited ({status}); log tail:\n{}",
                self.name,
                self.log_tail()
            )
            .into()),
        }
    }

    pub async fn wait_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.log_text().contains(needle) {
            self.alive()?;
            if start.elapsed() > timeout {
                return Err(format!(
                    "no `{needle}` in the log of agent {} after {timeout:?}; log tail:\n{}",
                    self.name,
                    self.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// SIGTERM, then waits for the drain; SIGKILL after a minute. Returns the exit code and
    /// the log.
    pub fn stop(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(s)) = self.child.try_wait() {
                return (s.code(), self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (None, self.log_text())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(dir) = &self.keep_logs {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::copy(&self.log, dir.join(format!("{}.log", self.name)));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Kafka

/// A read_committed consumer of `kafka` tuned for latency; `group` prefixes its group id.
pub fn consumer(kafka: &str, group: &str) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", format!("{group}-{}", run_id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.max.bytes", "52428800")
        // The consumer's own fetch cadence should not show in the latency: a fetch that finds
        // nothing returns after 10 ms instead of librdkafka's 500.
        .set("fetch.wait.max.ms", "10")
        .create()?)
}

/// Waits for `topic` (the agent creates it at the table's first change) and assigns every
/// partition from the beginning.
pub fn assign_when_present(
    c: &BaseConsumer,
    topic: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if t.error().is_none() && !t.partitions().is_empty() {
                    let mut tpl = TopicPartitionList::new();
                    for p in t.partitions() {
                        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
                    }
                    c.assign(&tpl)?;
                    return Ok(());
                }
            }
        }
        if start.elapsed() > timeout || stop.load(Ordering::Relaxed) {
            return Err(format!("topic {topic} did not appear within {timeout:?}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Consumer errors that do not heal by themselves.
pub fn consumer_error_is_fatal(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    !matches!(
        e.rdkafka_error_code(),
        Some(
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::PartitionEOF
                | C::RequestTimedOut
                | C::OperationTimedOut
        )
    )
}

/// Deletes every topic whose name starts with `prefix` (this run's).
pub async fn delete_topics(kafka: &str, prefix: &str) {
    let Ok(admin) = ClientConfig::new()
        .set("bootstrap.servers", kafka)
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
        .map(|t| t.name().to_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    if !topics.is_empty() {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
    }
}

/// One zigzag varint at `*pos`.
pub fn varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let (mut n, mut shift) = (0u64, 0u32);
    loop {
        let byte = *b.get(*pos)?;
        *pos += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((n >> 1) as i64) ^ -((n & 1) as i64));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// `(id, ts_us)` of a live-table insert event without a schema round trip: Confluent framing
/// (5 bytes), `before` = null (union branch 0), `after` = record (branch 1) whose first
/// columns are `id BIGINT` and `ts_us BIGINT`, both NOT NULL (no union). Cross-checked
/// against the key, so a layout change fails loudly instead of measuring garbage.
pub fn live_row(key: &[u8], value: &[u8]) -> Result<(i64, i64)> {
    let mut k = 5;
    let key_id = varint(key, &mut k).ok_or("short key")?;
    let mut p = 5;
    let (before, after) = (varint(value, &mut p), varint(value, &mut p));
    let (id, ts) = (varint(value, &mut p), varint(value, &mut p));
    match (before, after, id, ts) {
        (Some(0), Some(1), Some(id), Some(ts)) if id == key_id => Ok((id, ts)),
        _ => Err(format!(
            "unexpected event layout (key id {key_id}): {:?}",
            &value[..value.len().min(32)]
        )
        .into()),
    }
}

// ---------------------------------------------------------------------------------------
// live

#[derive(Debug, Clone)]
pub struct Live {
    pub delivery: Delivery,
    pub target_rate: u64,
    pub achieved_rate: f64,
    pub rows: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub rss_p50_mib: f64,
    pub rss_max_mib: f64,
    pub peak_rss_mib: f64,
    pub commit_p50_ms: f64,
    pub commit_p99_ms: f64,
    pub cpu_per_s: f64,
    pub load: String,
}

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The live phase's knobs, from the command line.
pub struct LiveArgs<'a> {
    /// Rows per second the writer aims at.
    pub rate: u64,
    /// Rows per source transaction.
    pub batch: u64,
    /// Length of the counted window.
    pub secs: u64,
    /// Seconds written before the window opens.
    pub warmup: u64,
    /// Where to write every row's timings (`<prefix>-<mode>.csv`).
    pub dump_latency: Option<&'a Path>,
    /// The Kafka to read from, and a prefix of the consumer's group id.
    pub kafka: &'a str,
    pub group: &'a str,
}

/// One source's writer of the live table: inserts one transaction of `batch` rows whose
/// `ts_us` is each row's insert time, and says how many rows it wrote.
#[allow(async_fn_in_trait)]
pub trait LiveWriter {
    async fn insert_batch(&mut self) -> Result<u64>;
}

/// The live phase: `writer` inserts at a paced rate while a read_committed consumer of
/// `topic` records when each row becomes visible; latency is counted over a window after a
/// warm-up, beside the agent's RSS and CPU and the writer's commit times.
pub async fn live_run(
    live: &LiveArgs<'_>,
    delivery: Delivery,
    mut agent: Agent,
    topic: String,
    mut writer: impl LiveWriter,
) -> Result<Live> {
    agent
        .wait_log("streaming", Duration::from_secs(120))
        .await?;
    let pid = agent.pid();

    let t0 = now_us();
    let window = (
        t0 + live.warmup as i64 * 1_000_000,
        t0 + (live.warmup + live.secs) as i64 * 1_000_000,
    );
    let written = Arc::new(AtomicU64::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));

    // Consumer: every row's (insert time, producer timestamp, receive time).
    let reader = {
        let (kafka, group) = (live.kafka.to_owned(), live.group.to_owned());
        let (written, writing, stop) = (written.clone(), writing.clone(), stop.clone());
        std::thread::spawn(move || -> Result<Vec<(i64, i64, i64)>> {
            let c = consumer(&kafka, &group)?;
            assign_when_present(&c, &topic, Duration::from_secs(120), &stop)?;
            let mut rows = Vec::with_capacity(1 << 20);
            loop {
                if stop.load(Ordering::Relaxed)
                    || (!writing.load(Ordering::Relaxed)
                        && rows.len() as u64 >= written.load(Ordering::Relaxed))
                {
                    return Ok(rows);
                }
                match c.poll(Duration::from_millis(50)) {
                    None => {}
                    Some(Err(e)) if !consumer_error_is_fatal(&e) => {
                        eprintln!("(reading {topic}: {e}; continuing)");
                    }
                    Some(Err(e)) => return Err(format!("reading {topic}: {e}").into()),
                    Some(Ok(m)) => {
                        let seen = now_us();
                        let (Some(k), Some(v)) = (m.key(), m.payload()) else {
                            continue;
                        };
                        let (_, ts) = live_row(k, v)?;
                        let produced_ms = m.timestamp().to_millis().unwrap_or(0);
                        rows.push((ts, produced_ms, seen));
                    }
                }
            }
        })
    };

    // Agent memory over the counted window.
    let rss = {
        let writing = writing.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while writing.load(Ordering::Relaxed) {
                tick.tick().await;
                let now = now_us();
                if now >= window.0 && now < window.1 {
                    if let Some(k) = proc_kib(pid, "VmRSS:") {
                        samples.push(k as f64 / 1024.0);
                    }
                }
            }
            samples
        })
    };

    // Paced writer: `batch` rows per transaction, `rate` rows per second.
    let period = Duration::from_secs_f64(live.batch as f64 / live.rate as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut commit_ms = Vec::new();
    let mut in_window = 0u64;
    let mut cpu_window = (None, None);
    let mut next_check = Instant::now();
    let outcome: Result<()> = async {
        loop {
            tick.tick().await;
            let now = now_us();
            if now >= window.1 {
                break;
            }
            if now >= window.0 && cpu_window.0.is_none() {
                cpu_window.0 = Some((proc_cpu_secs(pid), Instant::now()));
            }
            let s = Instant::now();
            let n = writer.insert_batch().await?;
            let took = s.elapsed().as_secs_f64() * 1000.0;
            written.fetch_add(n, Ordering::Relaxed);
            if now >= window.0 {
                in_window += n;
                commit_ms.push(took);
            }
            if next_check <= Instant::now() {
                agent.alive()?;
                next_check = Instant::now() + Duration::from_secs(1);
            }
        }
        Ok(())
    }
    .await;
    cpu_window.1 = Some((proc_cpu_secs(pid), Instant::now()));
    writing.store(false, Ordering::Relaxed);
    let rss = rss.await?;
    if let Err(e) = outcome {
        stop.store(true, Ordering::Relaxed);
        let _ = reader.join();
        return Err(e);
    }

    // Let the consumer catch up with the last rows (bounded).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reader.is_finished() {
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
        }
        if let Err(e) = agent.alive() {
            stop.store(true, Ordering::Relaxed);
            let _ = reader.join();
            return Err(e);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = reader.join().map_err(|_| "reader panicked")??;
    let peak = proc_kib(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    let load = load_1m();
    agent.stop();

    if let Some(prefix) = live.dump_latency {
        let path = format!("{}-{}.csv", prefix.display(), delivery.short());
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(f, "insert_us,produced_ms,visible_us")?;
        for (ts, produced, seen) in &rows {
            writeln!(f, "{ts},{produced},{seen}")?;
        }
        eprintln!("wrote {path}");
    }
    let mut lat: Vec<f64> = rows
        .iter()
        .filter(|(ts, _, _)| *ts >= window.0 && *ts < window.1)
        .map(|(ts, _, seen)| (seen - ts) as f64 / 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let mut rss_sorted = rss.clone();
    rss_sorted.sort_by(f64::total_cmp);
    commit_ms.sort_by(f64::total_cmp);
    let cpu_per_s = match cpu_window {
        (Some((c0, t0)), Some((c1, t1))) => (c1 - c0) / (t1 - t0).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok(Live {
        delivery,
        target_rate: live.rate,
        achieved_rate: in_window as f64 / live.secs as f64,
        rows: lat.len(),
        p50_ms: pct(&lat, 0.50),
        p99_ms: pct(&lat, 0.99),
        p999_ms: pct(&lat, 0.999),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        rss_p50_mib: pct(&rss_sorted, 0.5),
        rss_max_mib: rss_sorted.last().copied().unwrap_or(f64::NAN),
        peak_rss_mib: peak,
        commit_p50_ms: pct(&commit_ms, 0.5),
        commit_p99_ms: pct(&commit_ms, 0.99),
        cpu_per_s,
        load,
    })
}

/// Agent CPU time per row in microseconds (issue 16's budget: ≤ 5 µs): CPU seconds over rows,
/// or CPU cores over rows per second.
pub fn cpu_us_per_row(cpu: f64, rows: f64) -> f64 {
    if rows > 0.0 {
        cpu / rows * 1e6
    } else {
        f64::NAN
    }
}

/// The live results as a RESULTS.md table, one row per mode.
pub fn live_table(o: &mut String, lives: &[Live]) {
    let _ = writeln!(o, "| mode | target rows/s | achieved rows/s | rows | p50 ms | p99 ms | p99.9 ms | max ms | steady RSS p50 / max MiB | peak RSS MiB | agent CPU (cores) | agent CPU µs/row | writer commit p50/p99 ms | load 1m |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for l in lives {
        let _ = writeln!(
            o,
            "| {} | {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} | {:.2} | {:.1} | {:.1} / {:.1} | {} |",
            l.delivery.toml(),
            l.target_rate,
            l.achieved_rate,
            l.rows,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            l.rss_p50_mib,
            l.rss_max_mib,
            l.peak_rss_mib,
            l.cpu_per_s,
            cpu_us_per_row(l.cpu_per_s, l.achieved_rate),
            l.commit_p50_ms,
            l.commit_p99_ms,
            l.load,
        );
    }
}

/// One row of a report's goals table: the goal, its target, what was measured, and whether
/// the target was met.
pub type Goal<'a> = (&'a str, String, String, bool);

/// The live goals (p99 latency per mode, steady RSS) for `lives`.
pub fn live_goals(lives: &[Live], goals: &mut Vec<Goal>) {
    for l in lives {
        let (bound, what) = match l.delivery {
            Delivery::AtLeastOnce => (25.0, "p99 commit→visible, at-least-once"),
            Delivery::ExactlyOnce => (50.0, "p99 commit→visible, exactly-once"),
        };
        goals.push((
            what,
            format!("≤ {bound:.0} ms"),
            format!("{:.1} ms", l.p99_ms),
            l.p99_ms <= bound,
        ));
        let what = match l.delivery {
            Delivery::AtLeastOnce => "steady RSS (max over window), at-least-once",
            Delivery::ExactlyOnce => "steady RSS (max over window), exactly-once",
        };
        goals.push((
            what,
            "≤ 64 MiB".to_string(),
            format!("{:.1} MiB", l.rss_max_mib),
            l.rss_max_mib <= 64.0,
        ));
    }
}

/// Issue 16's CPU budget: agent CPU per row of a drain ≤ 5 µs, per delivery mode. `runs` holds
/// (reader, CPU seconds, rows) of every agent drain; the best round counts (outside load only
/// adds CPU time: contention, cache), every round is listed.
pub fn cpu_goals<'a>(runs: impl Iterator<Item = (&'a str, f64, u64)> + Clone, goals: &mut Vec<Goal>) {
    for (reader, what) in [
        ("cdc-agent at-least-once", "agent CPU per row of the drain, at-least-once (best round; all rounds)"),
        ("cdc-agent exactly-once", "agent CPU per row of the drain, exactly-once (best round; all rounds)"),
    ] {
        let per_row: Vec<f64> = runs
            .clone()
            .filter(|(r, _, _)| *r == reader)
            .map(|(_, cpu, rows)| cpu_us_per_row(cpu, rows as f64))
            .collect();
        if let Some(best) = per_row.iter().copied().reduce(f64::min) {
            let all = per_row.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ");
            goals.push((what, "≤ 5.0 µs".into(), format!("{best:.1} µs ({all})"), best <= 5.0));
        }
    }
}

/// The goals table under `title`, when there are goals.
pub fn goals_table(o: &mut String, title: &str, goals: Vec<Goal>) {
    if !goals.is_empty() {
        let _ = writeln!(
            o,
            "{title}\n\n| goal | target | measured | |\n|---|---|---|---|"
        );
        for (g, t, m, ok) in goals {
            let _ = writeln!(o, "| {g} | {t} | {m} | {} |", verdict(ok));
        }
        let _ = writeln!(o);
    }
}

/// Appends a report to RESULTS.md at `path` (never overwrites; several programs append there).
pub fn append_results(path: &Path, text: &str) -> Result<()> {
    let fresh = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if fresh {
        writeln!(
            f,
            "# Benchmark results\n\nAppended by the programs under `bench/`; newest last.\n"
        )?;
    }
    write!(f, "\n{text}")?;
    eprintln!("appended to {}", path.display());
    Ok(())
}

pub fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

pub fn ram_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1048576.0)
}

pub fn kafka_version(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("scripts/stack.d/maven/kafka-pom.xml"))
        .ok()
        .and_then(|p| {
            let s = p.split_once("<kafka.version>")?.1;
            Some(s.split_once('<')?.0.to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// The agent binary's repository commit, when it is in a git checkout.
pub fn agent_commit(agent: &Path) -> Option<String> {
    let dir = agent.parent()?.parent()?.parent()?;
    let dir_s = dir.display().to_string();
    let c = shell(
        "git",
        &[
            "-C",
            &dir_s,
            "log",
            "-1",
            "--format=%h (%cd)",
            "--date=format:%Y-%m-%d %H:%M",
        ],
    );
    (!c.is_empty()).then_some(c)
}
