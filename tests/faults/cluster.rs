//! A Kafka cluster of the suite's own: `n` KRaft nodes from the stack's cached jars, for the
//! broker kills (three nodes) and the disk-full case (one node on a small tmpfs).
//!
//! Each node is a combined broker and controller (`process.roles=broker,controller`) of a
//! static quorum (`controller.quorum.voters`). Combined rather than separate controllers: three
//! more JVMs would not fit beside the shared stack on the suite's machine (two cores), and a
//! killed combined node takes a quorum member with it, which is the harder case: the quorum
//! (two of three) and the partition leadership move at the same time. Replication as a
//! production cluster of three: topics replication factor 3 (the agent is told
//! `topic_replication_factor = 3`), `min.insync.replicas = 2`, the transaction state log and
//! the offsets topic replication factor 3 with min ISR 2. Unclean leader election stays off
//! (Kafka's default), so a kill never loses an acknowledged record.
//!
//! The jars come from `CDC_KAFKA_CLASSPATH` (the classpath scripts/stack.d/kafka.sh resolves
//! once into the local Maven repository); every node listens on free loopback ports of its
//! own, so the shared single broker is never touched. Every node is killed when the cluster is
//! dropped (the data goes with its temporary folder).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::common::ports::free_port;

/// How long a node may take to answer a metadata request after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Partitions of the transaction state log (Kafka's default is 50; a few are enough here and
/// keep the restarts' log recovery short). [`Cluster::txn_coordinator`] maps a transactional
/// id onto them as Kafka does.
const TXN_STATE_PARTITIONS: i32 = 4;
/// Cluster id of every cluster the suite formats (each lives in its own folder).
const CLUSTER_ID: &str = "b7kQbYyPTzq0nq3wS2T1xQ";

/// One node: its folder, ports and, while it runs, its process.
struct Node {
    id: i32,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// A running cluster; every node is killed when dropped.
pub struct Cluster {
    nodes: Vec<Node>,
    classpath: String,
    _dir: tempfile::TempDir,
}

/// What a node's configuration may change from the defaults above.
#[derive(Default)]
pub struct Options {
    /// `log.dirs` (and the KRaft metadata log) of node 1, e.g. a mounted tmpfs; default: a
    /// folder in the cluster's temporary folder.
    pub log_dir: Option<PathBuf>,
}

impl Cluster {
    /// Formats and starts `n` nodes and waits until every one answers and is registered.
    pub fn start(n: i32, options: Options) -> Cluster {
        let classpath = std::env::var("CDC_KAFKA_CLASSPATH").unwrap_or_else(|_| {
            panic!(
                "CDC_KAFKA_CLASSPATH is not set: the broker cases run a cluster of their own \
                 from the stack's jars; run them with scripts/test-brokers, which sets it"
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let rf = n.min(3);
        let min_isr = (rf - 1).max(1);
        let mut nodes = Vec::new();
        for (i, (port, controller)) in ports.iter().enumerate() {
            let id = i as i32 + 1;
            let d = dir.path().join(format!("node{id}"));
            std::fs::create_dir_all(&d).unwrap();
            let data = match (&options.log_dir, id) {
                (Some(l), 1) => l.clone(),
                _ => d.join("data"),
            };
            std::fs::write(
                d.join("server.properties"),
                format!(
                    "process.roles=broker,controller\nnode.id={id}\n\
                     controller.quorum.voters={voters}\n\
                     controller.listener.names=CONTROLLER\n\
                     listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                     listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                     inter.broker.listener.name=PLAINTEXT\n\
                     log.dirs={data}\n\
                     num.partitions=1\ndefault.replication.factor={rf}\n\
                     min.insync.replicas={min_isr}\n\
                     auto.create.topics.enable=false\n\
                     offsets.topic.replication.factor={rf}\noffsets.topic.num.partitions=4\n\
                     transaction.state.log.replication.factor={rf}\n\
                     transaction.state.log.min.isr={min_isr}\n\
                     transaction.state.log.num.partitions={TXN_STATE_PARTITIONS}\n\
                     share.coordinator.state.topic.replication.factor={rf}\n\
                     share.coordinator.state.topic.min.isr={min_isr}\n\
                     group.initial.rebalance.delay.ms=0\n\
                     num.network.threads=2\nnum.io.threads=2\nbackground.threads=2\n\
                     num.replica.fetchers=1\n\
                     num.recovery.threads.per.data.dir=1\nlog.cleaner.threads=1\n\
                     log.cleaner.dedupe.buffer.size=16777216\n",
                    data = data.display(),
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("log4j2.properties"),
                "status = warn\nappender.out.type = Console\nappender.out.name = STDOUT\n\
                 appender.out.layout.type = PatternLayout\n\
                 appender.out.layout.pattern = [%d] %p %m (%c)%n\nrootLogger.level = WARN\n\
                 rootLogger.appenderRef.out.ref = STDOUT\n",
            )
            .unwrap();
            let format = Command::new("java")
                .args(["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
                .arg(log4j(&d))
                .args(["-cp", &classpath, "kafka.tools.StorageTool", "format"])
                .args(["-t", CLUSTER_ID, "-c"])
                .arg(d.join("server.properties"))
                .stdout(Stdio::from(log_file(&d)))
                .stderr(Stdio::from(log_file(&d)))
                .status()
                .expect("java runs");
            assert!(
                format.success(),
                "formatting node {id} failed: {}",
                std::fs::read_to_string(d.join("kafka.log")).unwrap_or_default()
            );
            nodes.push(Node {
                id,
                dir: d,
                port: *port,
                child: None,
            });
        }
        let mut cluster = Cluster {
            nodes,
            classpath,
            _dir: dir,
        };
        // All at once: a quorum of static voters elects its leader once a majority is up.
        for id in 1..=n {
            cluster.spawn(id);
        }
        cluster.wait_registered(n as usize);
        cluster
    }

    /// `host:port` of every node, comma-separated: the agent's and the readers' bootstrap.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn node(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn spawn(&mut self, id: i32) {
        let classpath = self.classpath.clone();
        let node = self.node(id);
        let child = Command::new("java")
            .args([
                "-Xms128m",
                "-Xmx384m",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ])
            .arg(log4j(&node.dir))
            .args(["-cp", &classpath, "kafka.Kafka"])
            .arg(node.dir.join("server.properties"))
            .stdout(Stdio::from(log_file(&node.dir)))
            .stderr(Stdio::from(log_file(&node.dir)))
            .spawn()
            .expect("java runs");
        node.child = Some(child);
    }

    /// Kills node `id` with SIGKILL (no clean shutdown: no leadership hand-over, no flush).
    pub fn kill(&mut self, id: i32) {
        let node = self.node(id);
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether node `id`'s process has exited (a disk-full broker stops itself).
    pub fn exited(&mut self, id: i32) -> bool {
        let node = self.node(id);
        match &mut node.child {
            None => true,
            Some(c) => c.try_wait().unwrap().is_some(),
        }
    }

    /// Starts node `id` again on its data (after [`Cluster::kill`] or an exit) and waits until
    /// it is registered with the controllers again.
    pub fn restart(&mut self, id: i32) {
        self.kill(id);
        self.spawn(id);
        let start = Instant::now();
        loop {
            let md = self.metadata(None);
            if md.as_ref().is_some_and(|m| m.brokers.contains(&id)) {
                return;
            }
            self.check_running(id);
            assert!(
                start.elapsed() < START_TIMEOUT,
                "node {id} did not come back within {START_TIMEOUT:?}; its log:\n{}",
                self.log(id)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Panics with the node's log if its process exited.
    fn check_running(&mut self, id: i32) {
        if self.exited(id) {
            panic!("node {id} exited; its log:\n{}", self.log(id));
        }
    }

    fn wait_registered(&mut self, n: usize) {
        let start = Instant::now();
        loop {
            if self.metadata(None).is_some_and(|m| m.brokers.len() == n) {
                return;
            }
            for id in 1..=n as i32 {
                self.check_running(id);
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "the cluster did not form within {START_TIMEOUT:?}; node 1's log:\n{}",
                self.log(1)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The cluster's metadata (every topic, internal ones included, or only `topic`), from
    /// whichever node answers; `None` when none does.
    pub fn metadata(&self, topic: Option<&str>) -> Option<Metadata> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "brokers-metadata")
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(topic, Duration::from_secs(5))
            .ok()?;
        let mut partitions = HashMap::new();
        for t in md.topics() {
            if t.error().is_some() {
                continue;
            }
            for p in t.partitions() {
                partitions.insert(
                    (t.name().to_string(), p.id()),
                    (p.leader(), p.isr().to_vec()),
                );
            }
        }
        Some(Metadata {
            brokers: md.brokers().iter().map(|b| b.id()).collect(),
            partitions,
        })
    }

    /// The leader of `topic`'s partition `partition`, once one is known.
    pub fn leader(&self, topic: &str, partition: i32, timeout: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(md) = self.metadata(Some(topic)) {
                if let Some((leader, _)) = md.partitions.get(&(topic.to_string(), partition)) {
                    if *leader >= 1 {
                        return *leader;
                    }
                }
            }
            assert!(
                start.elapsed() < timeout,
                "no leader of {topic}-{partition} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The transaction coordinator of `transactional_id`: the leader of its partition of
    /// `__transaction_state`, which Kafka picks as `abs(id.hashCode()) % partitions`
    /// (`TransactionStateManager.partitionFor`, Java's `String.hashCode`).
    pub fn txn_coordinator(&self, transactional_id: &str, timeout: Duration) -> i32 {
        let hash = transactional_id
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        // Kafka's Utils.abs: `n & 0x7fffffff`, not Math.abs.
        let partition = (hash & 0x7fff_ffff) % TXN_STATE_PARTITIONS;
        self.leader("__transaction_state", partition, timeout)
    }

    /// The transaction coordinator of `transactional_id` as Kafka's own admin tool reports it
    /// (`kafka-transactions.sh describe`, a FindCoordinator request); `None` when the tool
    /// fails (e.g. the id is unknown). Slow (a JVM start): the authority the kills aim by,
    /// [`Cluster::txn_coordinator`] printed beside it.
    pub fn describe_coordinator(&self, transactional_id: &str) -> Option<i32> {
        let out = Command::new("java")
            .args(["-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
            .arg(log4j(&self.nodes[0].dir))
            .args(["-cp", &self.classpath])
            .args([
                "org.apache.kafka.tools.TransactionsCommand",
                "--bootstrap-server",
            ])
            .arg(self.bootstrap())
            .args(["describe", "--transactional-id", transactional_id])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        // A header line (CoordinatorId, TransactionalId, ...) and one row, tab-separated.
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next()?.split_whitespace().collect();
        let row: Vec<&str> = lines.next()?.split_whitespace().collect();
        let col = header.iter().position(|h| *h == "CoordinatorId")?;
        row.get(col)?.parse().ok()
    }

    /// Waits until every node is registered and every partition of every topic (the internal
    /// ones too) has all its replicas in sync: a killed node has caught up, so the next kill
    /// leaves two in-sync replicas of everything.
    pub fn wait_in_sync(&mut self, timeout: Duration) -> Result<Duration, String> {
        let n = self.nodes.len();
        let start = Instant::now();
        loop {
            let mut behind = None;
            if let Some(md) = self.metadata(None) {
                if md.brokers.len() < n {
                    behind = Some(format!("{} of {n} brokers registered", md.brokers.len()));
                } else if let Some(((t, p), (_, isr))) = md
                    .partitions
                    .iter()
                    .find(|(_, (_, isr))| isr.len() < n.min(3))
                {
                    behind = Some(format!("{t}-{p} has in-sync replicas {isr:?}"));
                }
            } else {
                behind = Some("no node answers".into());
            }
            let Some(why) = behind else {
                return Ok(start.elapsed());
            };
            if start.elapsed() > timeout {
                return Err(why);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Copies every node's log into `dir` as `<prefix>-node<id>.log`.
    pub fn keep_logs(&self, dir: &Path, prefix: &str) {
        let _ = std::fs::create_dir_all(dir);
        for n in &self.nodes {
            let _ = std::fs::copy(
                n.dir.join("kafka.log"),
                dir.join(format!("{prefix}-node{}.log", n.id)),
            );
        }
    }

    /// Node `id`'s log so far (every incarnation).
    pub fn log(&self, id: i32) -> String {
        let node = self.nodes.iter().find(|n| n.id == id).expect("node");
        std::fs::read_to_string(node.dir.join("kafka.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut c) = node.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// What [`Cluster::metadata`] returns: the registered brokers, and each partition's leader
/// and in-sync replicas.
pub struct Metadata {
    pub brokers: Vec<i32>,
    pub partitions: HashMap<(String, i32), (i32, Vec<i32>)>,
}

fn log4j(dir: &Path) -> String {
    format!(
        "-Dlog4j2.configurationFile={}",
        dir.join("log4j2.properties").display()
    )
}

/// The node's log, appended to by the format and by every incarnation.
fn log_file(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kafka.log"))
        .unwrap()
}
