//! A single-node Kafka (KRaft) of the suite's own, for the Kafka faults.
//!
//! A Kafka client connects where the broker's metadata tells it (the advertised listener), so a
//! proxy in front of the shared stack's broker would be bypassed after the first request; and
//! the shared broker must not be reconfigured. This broker runs from the same cached jars as the
//! stack's (`scripts/test-faults` passes the classpath in `CDC_KAFKA_CLASSPATH`, resolved by
//! scripts/stack.d/kafka.sh) with two listeners: `AGENT`, advertised as the Toxiproxy listen
//! port, which the agent uses, so every byte it exchanges with Kafka crosses the proxy; and
//! `DIRECT`, which the test's readers and the broker itself use. Killed (and its data deleted)
//! when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::common::ports::free_port;

/// How long the broker may take to answer its first metadata request.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running broker; killed when dropped.
pub struct Broker {
    child: Child,
    dir: tempfile::TempDir,
    /// `host:port` the test's own clients use (no proxy).
    pub direct: String,
}

impl Broker {
    /// Formats and starts a broker whose `AGENT` listener is advertised as
    /// `127.0.0.1:<advertised_port>` (the proxy's), listening itself on `agent_port`.
    pub fn start(agent_port: u16, advertised_port: u16) -> Broker {
        let cp = std::env::var("CDC_KAFKA_CLASSPATH").unwrap_or_else(|_| {
            panic!(
                "CDC_KAFKA_CLASSPATH is not set: the Kafka faults run a broker of their own from \
                 the stack's jars; run them with scripts/test-faults, which sets it"
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let (direct, controller) = (free_port(), free_port());
        let d = dir.path();
        std::fs::write(
            d.join("server.properties"),
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
                 controller.listener.names=CONTROLLER\n\
                 listeners=AGENT://127.0.0.1:{agent_port},DIRECT://127.0.0.1:{direct},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=AGENT://127.0.0.1:{advertised_port},DIRECT://127.0.0.1:{direct},CONTROLLER://127.0.0.1:{controller}\n\
                 listener.security.protocol.map=AGENT:PLAINTEXT,DIRECT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 inter.broker.listener.name=DIRECT\n\
                 log.dirs={data}\n\
                 num.partitions=1\ndefault.replication.factor=1\nmin.insync.replicas=1\n\
                 auto.create.topics.enable=false\n\
                 offsets.topic.replication.factor=1\noffsets.topic.num.partitions=4\n\
                 transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
                 transaction.state.log.num.partitions=4\n\
                 share.coordinator.state.topic.replication.factor=1\n\
                 share.coordinator.state.topic.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\n\
                 num.network.threads=2\nnum.io.threads=2\nbackground.threads=2\n\
                 num.recovery.threads.per.data.dir=1\nlog.cleaner.threads=1\n\
                 log.cleaner.dedupe.buffer.size=16777216\n",
                data = d.join("data").display(),
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
        let log = std::fs::File::create(d.join("kafka.log")).unwrap();
        let format = Command::new("java")
            .args(["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                d.join("log4j2.properties").display()
            ))
            .args([
                "-cp",
                &cp,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
            ])
            .args(["-t", "I3oatFXRRnyw1rba12Yhsw"])
            .arg("-c")
            .arg(d.join("server.properties"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .status()
            .expect("java runs");
        assert!(
            format.success(),
            "formatting the suite's broker failed: {}",
            std::fs::read_to_string(d.join("kafka.log")).unwrap_or_default()
        );
        let child = Command::new("java")
            .args([
                "-Xms256m",
                "-Xmx512m",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                d.join("log4j2.properties").display()
            ))
            .args(["-cp", &cp, "kafka.Kafka"])
            .arg(d.join("server.properties"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("java runs");
        let mut broker = Broker {
            child,
            dir,
            direct: format!("127.0.0.1:{direct}"),
        };
        broker.wait_ready();
        broker
    }

    /// Waits until the broker answers a metadata request on its direct listener.
    fn wait_ready(&mut self) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.direct)
            .set("group.id", "faults-broker-probe")
            .create()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the suite's broker exited ({status}); its log:\n{}",
                    self.log()
                );
            }
            if let Ok(md) = consumer.fetch_metadata(None, Duration::from_secs(2)) {
                if !md.brokers().is_empty() {
                    return;
                }
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "the suite's broker did not answer within {START_TIMEOUT:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kafka.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
