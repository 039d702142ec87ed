//! Runs the built `cdc-agent` binary on a configuration written for one test, and reads back
//! what it published, decoded through the real registry with a standard Avro reader.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use apache_avro::types::Value as Avro;
use rdkafka::Offset;

use super::kafka;
use super::stack_env;

/// A running agent; killed (SIGKILL) when dropped, its log kept for failure messages.
pub struct Agent {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    /// Extra environment of the process (kept across restarts).
    pub env: Vec<(String, String)>,
}

/// Main and source configuration of one test's agent.
pub struct AgentConfig {
    /// `postgres` or `mysql`.
    pub kind: String,
    /// Database port (on 127.0.0.1).
    pub port: String,
    /// `kafka.bootstrap_servers`: the stack's broker unless a test routes it elsewhere.
    pub kafka_bootstrap: String,
    /// `schema_registry.url`: the stack's registry unless a test routes it elsewhere (a fault
    /// proxy, tests/faults).
    pub registry_url: String,
    pub source_name: String,
    pub topic_prefix: String,
    pub event_store_topic: String,
    pub database: String,
    pub user: String,
    pub password: String,
    pub extra_source_toml: String,
    /// Appended to the main file's `[kafka]` section.
    pub extra_kafka_toml: String,
    /// Appended to the main file's `[http]` section (whose `listen` is a free port: see
    /// [`Agent::http_addr`]).
    pub extra_http_toml: String,
    /// Extra environment variables of the agent process (e.g. `NOTIFY_SOCKET`).
    pub env: Vec<(String, String)>,
}

impl AgentConfig {
    /// A PostgreSQL source on `database` as the agent role, with unique names.
    pub fn postgres(name: &str, database: &str) -> Self {
        Self {
            kind: "postgres".into(),
            port: stack_env("PG_PORT"),
            kafka_bootstrap: stack_env("KAFKA_BOOTSTRAP"),
            registry_url: stack_env("SCHEMA_REGISTRY_URL"),
            source_name: name.to_string(),
            topic_prefix: name.to_string(),
            event_store_topic: format!("{name}.events"),
            database: database.to_string(),
            user: "cdc_agent".into(),
            password: "cdc_agent".into(),
            extra_source_toml: String::new(),
            extra_kafka_toml: String::new(),
            extra_http_toml: String::new(),
            env: Vec::new(),
        }
    }

    /// A MySQL/MariaDB source on `database` of the stack's MariaDB as `user`.
    pub fn mysql(name: &str, database: &str, user: &str, password: &str) -> Self {
        Self {
            kind: "mysql".into(),
            port: stack_env("MYSQL_PORT"),
            user: user.into(),
            password: password.into(),
            ..Self::postgres(name, database)
        }
    }
}

impl Agent {
    /// Writes the configuration and starts `cdc-agent run`.
    pub fn start(cfg: &AgentConfig) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("connectors")).unwrap();
        std::fs::write(
            dir.path().join("cdc-agent.toml"),
            format!(
                "[agent]\nstate_dir = \"{state}\"\n[kafka]\nbootstrap_servers = \"{kafka}\"\n\
                 {kafka_extra}\n[schema_registry]\nurl = \"{registry}\"\n[event_store]\n\
                 topic = \"{store}\"\n[http]\nlisten = \"127.0.0.1:0\"\n{http_extra}\n",
                state = dir.path().join("state").display(),
                kafka = cfg.kafka_bootstrap,
                registry = cfg.registry_url,
                store = cfg.event_store_topic,
                kafka_extra = cfg.extra_kafka_toml,
                http_extra = cfg.extra_http_toml,
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("connectors").join("source.toml"),
            format!(
                "name = \"{name}\"\nkind = \"{kind}\"\ntopic_prefix = \"{prefix}\"\n\
                 host = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\npassword = \"{pw}\"\n\
                 database = \"{db}\"\n{extra}\n",
                name = cfg.source_name,
                kind = cfg.kind,
                prefix = cfg.topic_prefix,
                port = cfg.port,
                user = cfg.user,
                pw = cfg.password,
                db = cfg.database,
                extra = cfg.extra_source_toml,
            ),
        )
        .unwrap();
        Self::spawn(dir, cfg.env.clone())
    }

    /// Starts `cdc-agent run` on a main file and one source file written by the test itself
    /// (for settings [`AgentConfig`] does not cover: host, TLS, SASL). The main file gets an
    /// `[agent]` section with a state folder of its own prepended.
    pub fn start_files(main_toml: &str, source_toml: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("connectors")).unwrap();
        // A free port unless the test chose one: agents of one test binary run side by side.
        let http = if main_toml.contains("[http]") {
            ""
        } else {
            "\n[http]\nlisten = \"127.0.0.1:0\"\n"
        };
        let main = format!(
            "[agent]\nstate_dir = \"{}\"\n{main_toml}{http}",
            dir.path().join("state").display()
        );
        std::fs::write(dir.path().join("cdc-agent.toml"), main).unwrap();
        std::fs::write(
            dir.path().join("connectors").join("source.toml"),
            source_toml,
        )
        .unwrap();
        Self::spawn(dir, Vec::new())
    }

    fn spawn(dir: tempfile::TempDir, env: Vec<(String, String)>) -> Agent {
        let log = dir.path().join("agent.log");
        // Appended across restarts, so a test can read what every incarnation did.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
            .args(["run", "--config"])
            .arg(dir.path().join("cdc-agent.toml"))
            .env(
                "RUST_LOG",
                "info,cdc_agent=debug,librdkafka=warn,rdkafka=warn",
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        Agent {
            child,
            dir,
            log,
            env,
        }
    }

    /// Starts the same configuration again (after a crash or stop).
    pub fn restart(self) -> Agent {
        let mut me = self;
        let _ = me.child.kill();
        let _ = me.child.wait();
        let dir = std::mem::replace(&mut me.dir, tempfile::tempdir().unwrap());
        let env = std::mem::take(&mut me.env);
        drop(me);
        Self::spawn(dir, env)
    }

    /// The address of the HTTP endpoint of the current incarnation, from its start-up log line
    /// (the test configuration listens on a free port). Waits for it up to `timeout`.
    pub fn http_addr(&self, timeout: Duration) -> std::net::SocketAddr {
        const LINE: &str = "http endpoint listening";
        let start = std::time::Instant::now();
        loop {
            let log = strip_ansi(&self.log());
            if let Some(addr) = log
                .lines()
                .rev()
                .find(|l| l.contains(LINE))
                .and_then(|l| l.split("addr=").nth(1))
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.parse().ok())
            {
                return addr;
            }
            assert!(
                start.elapsed() < timeout,
                "no `{LINE}` line after {timeout:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the agent logged that it streams (snapshot, if any, done), so changes made
    /// afterwards arrive as change events rather than in the snapshot.
    ///
    /// Snapshots run in chunks while the stream flows: the tables a start queued or resumed
    /// are logged before "streaming", and when there are any this waits for "snapshot
    /// complete" too (a row changed before its chunk is read would also be read).
    pub fn wait_streaming(&self, timeout: Duration) {
        let start = std::time::Instant::now();
        loop {
            let log = self.log();
            if let Some(at) = log.find("streaming") {
                let planned = &log[..at];
                let snapshotting = planned.contains("snapshot of table queued")
                    || planned.contains("snapshot resuming");
                if !snapshotting || log[at..].contains("snapshot complete") {
                    return;
                }
            }
            assert!(
                start.elapsed() < timeout,
                "agent not streaming (or its snapshot not complete) after {timeout:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        unsafe_kill(self.child.id(), "TERM");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text without terminal colour sequences (`ESC [ … m`), which the log may carry around
/// field names.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unsafe_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// One record read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// Reads `topic` from the beginning (read_committed) until `done` says the records suffice
/// or `timeout` passes; returns what was read.
pub fn read_topic(
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    let consumer = kafka::consumer("test-reader", &[]);
    // The topic may not exist yet: wait for its metadata.
    let Some(partitions) = kafka::partitions(&consumer, topic, timeout) else {
        return out;
    };
    kafka::assign(&consumer, topic, &partitions, Offset::Beginning);
    while !done(&out) && start.elapsed() < timeout {
        if let Some(Ok(record)) = kafka::poll(&consumer, Duration::from_millis(200)) {
            out.push(record);
        }
    }
    out
}

/// Decodes Confluent-framed Avro with the writer schema fetched from the registry by id,
/// as a Confluent deserializer does.
pub struct AvroDecoder {
    schemas: HashMap<u32, apache_avro::Schema>,
}

impl AvroDecoder {
    pub fn new() -> Self {
        Self {
            schemas: HashMap::new(),
        }
    }

    pub fn decode(&mut self, bytes: &[u8]) -> Avro {
        assert!(bytes.len() >= 5 && bytes[0] == 0, "Confluent framing");
        let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
        let schema = self.schemas.entry(id).or_insert_with(|| {
            let url = format!("{}/schemas/ids/{id}", stack_env("SCHEMA_REGISTRY_URL"));
            let body: serde_json::Value = reqwest::blocking_get(&url);
            apache_avro::Schema::parse_str(body["schema"].as_str().unwrap()).unwrap()
        });
        apache_avro::from_avro_datum(schema, &mut &bytes[5..], None).unwrap()
    }
}

mod reqwest {
    /// A GET from a test thread that may or may not be inside a runtime.
    pub fn blocking_get(url: &str) -> serde_json::Value {
        let url = url.to_string();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { ::reqwest::get(&url).await.unwrap().json().await.unwrap() })
        })
        .join()
        .unwrap()
    }
}

/// A record field by name.
pub fn field<'a>(v: &'a Avro, name: &str) -> &'a Avro {
    match v {
        Avro::Record(fields) => {
            &fields
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no field {name} in {v:?}"))
                .1
        }
        Avro::Union(_, inner) => field(inner, name),
        other => panic!("not a record: {other:?}"),
    }
}

/// Strips a union wrapper.
pub fn unwrap_union(v: &Avro) -> &Avro {
    match v {
        Avro::Union(_, inner) => inner,
        other => other,
    }
}
