//! Preflight of Kafka: the brokers answer (address, TLS and SASL settings), the agent may
//! create topics (a probe topic is created and deleted) and may use transactions (a
//! transactional producer with a probe id is initialised) when a source is exactly-once.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientConfig;

use super::Finding;
use crate::config::{Config, Delivery};
use crate::sink::kafka::base_client_config;

const TARGET: &str = "kafka";
/// How long each probe waits for the brokers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps what librdkafka reported about the connection ("SASL authentication error: …"):
/// the metadata call itself only says the transport failed. Its log lines are kept here
/// instead of going to stderr, so the report stays one table.
#[derive(Default)]
struct ProbeContext {
    errors: std::sync::Mutex<Vec<String>>,
}

/// Broker errors kept per probe.
const MAX_ERRORS: usize = 20;

impl ProbeContext {
    fn record(&self, text: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < MAX_ERRORS {
            errors.push(text);
        }
    }

    /// The most telling error: authentication, then TLS, then anything but the summary
    /// "all brokers are down".
    fn last_error(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let find = |pred: &dyn Fn(&str) -> bool| errors.iter().find(|e| pred(e)).cloned();
        find(&|e| e.contains("SASL") || e.contains("uthentication"))
            .or_else(|| find(&|e| e.contains("SSL") || e.contains("certificate")))
            .or_else(|| find(&|e| !e.contains("AllBrokersDown") && !e.contains("brokers are down")))
            .or_else(|| errors.last().cloned())
    }
}

impl ClientContext for ProbeContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if matches!(
            level,
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning
        ) {
            self.record(format!("{fac} {message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.record(format!("{error}: {reason}"));
    }
}

impl ProducerContext for ProbeContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Checks the Kafka cluster of the configuration.
pub async fn check(cfg: &Config) -> Vec<Finding> {
    let kafka = &cfg.main.kafka;
    let mut out = Vec::new();
    let base = base_client_config(kafka);

    let probe = base.clone();
    let metadata = tokio::task::spawn_blocking(
        move || -> Result<(usize, usize), (KafkaError, Option<String>)> {
            let producer: ThreadedProducer<ProbeContext> = probe
                .create_with_context(ProbeContext::default())
                .map_err(|e| (e, None))?;
            let md = producer
                .client()
                .fetch_metadata(None, PROBE_TIMEOUT)
                .map_err(|e| (e, producer.context().last_error()))?;
            Ok((md.brokers().len(), md.topics().len()))
        },
    )
    .await;
    match metadata {
        Ok(Ok((brokers, topics))) => out.push(Finding::pass(
            TARGET,
            "connect",
            format!(
                "{}: {brokers} broker(s), {topics} topic(s) visible",
                kafka.bootstrap_servers
            ),
        )),
        Ok(Err((e, broker_error))) => {
            let (check, fix) = match broker_error.as_deref() {
                Some(b) if b.contains("SASL") || b.contains("uthentication") => (
                    "authentication",
                    "the brokers refused the credentials: check [kafka] sasl_mechanism, \
                     sasl_username and sasl_password (or sasl_password_file) — or sasl.mechanism, \
                     sasl.username and sasl.password in [kafka.properties] — against the \
                     broker's users",
                ),
                Some(b) if b.contains("SSL") || b.contains("certificate") => (
                    "TLS",
                    "check [kafka] security_protocol and ssl_ca_location (the CA that signed \
                     the brokers' certificates; or security.protocol and ssl.ca.location in \
                     [kafka.properties])",
                ),
                _ => (
                    "connect",
                    "check kafka.bootstrap_servers and the network; for a TLS or SASL listener \
                     set [kafka] security_protocol, sasl_mechanism, sasl_username, \
                     sasl_password and ssl_ca_location",
                ),
            };
            let detail = match broker_error {
                Some(b) => format!(
                    "no metadata from {}: {e}; librdkafka: {b}",
                    kafka.bootstrap_servers
                ),
                None => format!("cannot reach {}: {e}", kafka.bootstrap_servers),
            };
            out.push(Finding::fail(TARGET, check, detail, fix));
            return out;
        }
        Err(e) => {
            out.push(Finding::fail(
                TARGET,
                "connect",
                format!("probe task failed: {e}"),
                "retry",
            ));
            return out;
        }
    }

    if kafka.create_topics {
        out.extend(topic_rights(&base, kafka.topic_replication_factor).await);
    } else if let Some(topic) = crate::topics::event_store_mirror(&cfg.main.event_store) {
        out.push(topic_exists(&base, topic).await);
    }

    if cfg
        .sources
        .iter()
        .any(|s| s.delivery == Delivery::ExactlyOnce)
    {
        out.push(transactions(&base).await);
    }
    out
}

async fn topic_rights(base: &ClientConfig, replication: i32) -> Vec<Finding> {
    let admin: AdminClient<DefaultClientContext> = match base.create() {
        Ok(a) => a,
        Err(e) => {
            return vec![Finding::fail(
                TARGET,
                "topic creation",
                e.to_string(),
                "check [kafka.properties]",
            )]
        }
    };
    let probe = format!(
        "cdc-agent-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let opts = AdminOptions::new()
        .operation_timeout(Some(PROBE_TIMEOUT))
        .request_timeout(Some(PROBE_TIMEOUT));
    let topic = NewTopic::new(&probe, 1, TopicReplication::Fixed(replication));
    let created = match admin.create_topics(&[topic], &opts).await {
        Ok(mut r) => r.pop().map(|r| r.map(|_| ()).map_err(|(_, code)| code)),
        Err(e) => Some(Err(e
            .rdkafka_error_code()
            .unwrap_or(RDKafkaErrorCode::Unknown))),
    };
    let mut out = Vec::new();
    match created {
        Some(Ok(())) => out.push(Finding::pass(
            TARGET,
            "topic creation",
            format!("created probe topic {probe}"),
        )),
        Some(Err(code)) => {
            let fix = match code {
                RDKafkaErrorCode::InvalidReplicationFactor => format!(
                    "kafka.topic_replication_factor = {replication} exceeds the brokers: lower it"
                ),
                _ => "grant CREATE on the cluster to the agent's principal (kafka-acls.sh --add \
                      --allow-principal User:<agent> --operation Create --cluster), or set \
                      kafka.create_topics = false and create every topic yourself"
                    .to_string(),
            };
            out.push(Finding::fail(
                TARGET,
                "topic creation",
                format!("creating a probe topic failed: {code}"),
                fix,
            ));
            return out;
        }
        None => out.push(Finding::fail(
            TARGET,
            "topic creation",
            "no answer to CreateTopics",
            "retry",
        )),
    }
    let deleted = admin.delete_topics(&[&probe], &opts).await;
    let ok = matches!(&deleted, Ok(r) if r.iter().all(|x| x.is_ok()));
    if !ok {
        out.push(Finding::warn(
            TARGET,
            "probe topic deletion",
            format!("could not delete the probe topic {probe}"),
            format!(
                "kafka-topics.sh --delete --topic {probe} (the agent never deletes topics itself)"
            ),
        ));
    }
    out
}

async fn topic_exists(base: &ClientConfig, topic: &str) -> Finding {
    let cfg = base.clone();
    let name = topic.to_string();
    let res = tokio::task::spawn_blocking(move || -> Result<bool, KafkaError> {
        let producer: BaseProducer = cfg.create()?;
        let md = producer
            .client()
            .fetch_metadata(Some(&name), PROBE_TIMEOUT)?;
        Ok(md
            .topics()
            .iter()
            .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty()))
    })
    .await;
    match res {
        Ok(Ok(true)) => Finding::pass(TARGET, "event store topic", format!("{topic} exists")),
        Ok(Ok(false)) => Finding::fail(
            TARGET,
            "event store topic",
            format!("{topic} is missing and kafka.create_topics = false"),
            format!("kafka-topics.sh --create --topic {topic} --config retention.ms=-1, or set kafka.create_topics = true"),
        ),
        Ok(Err(e)) => Finding::fail(TARGET, "event store topic", e.to_string(), "check [kafka.properties]"),
        Err(e) => Finding::fail(TARGET, "event store topic", e.to_string(), "retry"),
    }
}

async fn transactions(base: &ClientConfig) -> Finding {
    let mut cfg = base.clone();
    // The agent's ids are `cdc-agent-<source>`: a prefixed ACL on `cdc-agent-` covers the probe.
    let id = format!("cdc-agent-check-{}", std::process::id());
    cfg.set("transactional.id", &id);
    let res = tokio::task::spawn_blocking(move || -> Result<(), KafkaError> {
        let producer: BaseProducer = cfg.create()?;
        producer.init_transactions(PROBE_TIMEOUT)
    })
    .await;
    match res {
        Ok(Ok(())) => Finding::pass(
            TARGET,
            "transactions",
            format!("initialised transactional id {id}"),
        ),
        Ok(Err(e)) => Finding::fail(
            TARGET,
            "transactions",
            format!("initialising transactional id {id} failed: {e}"),
            "allow WRITE and DESCRIBE on transactional ids with prefix cdc-agent- \
             (kafka-acls.sh --add --allow-principal User:<agent> --operation Write --operation \
             Describe --transactional-id cdc-agent- --resource-pattern-type prefixed); the \
             brokers need transaction.state.log.replication.factor and .min.isr ≤ live brokers; \
             or set delivery = \"at-least-once\"",
        ),
        Err(e) => Finding::fail(TARGET, "transactions", e.to_string(), "retry"),
    }
}
