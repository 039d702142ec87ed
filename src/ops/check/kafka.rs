//! Preflight of Kafka: the brokers answer (address, TLS and SASL settings), the agent may
//! create topics (a probe topic is created and deleted) and may use transactions (a
//! transactional producer with a probe id is initialised) when a source is exactly-once.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use super::Finding;
use crate::config::{Config, Delivery};
use crate::sink::kafka::base_client_config;

const TARGET: &str = "kafka";
/// How long each probe waits for the brokers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks the Kafka cluster of the configuration.
pub async fn check(cfg: &Config) -> Vec<Finding> {
    let kafka = &cfg.main.kafka;
    let mut out = Vec::new();
    let base = base_client_config(kafka);

    let probe = base.clone();
    let metadata = tokio::task::spawn_blocking(move || -> Result<(usize, usize), KafkaError> {
        let producer: BaseProducer = probe.create()?;
        let md = producer.client().fetch_metadata(None, PROBE_TIMEOUT)?;
        Ok((md.brokers().len(), md.topics().len()))
    })
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
        Ok(Err(e)) => {
            out.push(Finding::fail(
                TARGET,
                "connect",
                format!("cannot reach {}: {e}", kafka.bootstrap_servers),
                "check kafka.bootstrap_servers and the network; for a TLS or SASL listener set \
                 security.protocol, sasl.mechanism, sasl.username, sasl.password in \
                 [kafka.properties]",
            ));
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
    } else if cfg.main.event_store.enabled {
        out.push(topic_exists(&base, &cfg.main.event_store.topic).await);
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
