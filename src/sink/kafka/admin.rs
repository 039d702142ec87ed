//! Topic administration: the sink creates the topics it writes to (or, with
//! `create_topics = false`, checks that they exist), once per topic and process.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer as _;

use super::acks::Producer;
use super::client::{base_client_config, reach, AgentContext};
use super::error::{create_topic_error, SinkError};
use super::metadata::{topic_state, TopicState};
use crate::config::KafkaConfig;

/// Timeout of admin operations (topic creation, metadata, the first contact).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// librdkafka's default `message.max.bytes`: the largest record the producer takes.
pub(super) const PRODUCER_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// Every topic a sink of this process made sure of (created or found), by cluster (bootstrap
/// servers). A sink lives for one attempt of its source; this outlives it, so that the next
/// attempt (after the failure a deleted topic causes, which in exactly-once mode is only "the
/// transaction was aborted") tells a topic deleted under the agent from a new one.
static SEEN: LazyLock<Mutex<HashSet<(String, String)>>> = LazyLock::new(Default::default);

/// The topics a sink has made sure of, and how to make sure of more.
pub(super) struct Topics {
    admin: AdminClient<AgentContext>,
    /// Authentication/TLS failures seen by any of the sink's clients.
    context: AgentContext,
    /// Whether the brokers accepted a metadata request (credentials checked).
    reached: bool,
    known: HashSet<String>,
    /// `[kafka.partitions_by_topic]`, compiled.
    partitions_by_topic: Vec<(regex::Regex, i32)>,
    partitions: i32,
    replication: i32,
    create: bool,
    /// The producer's `message.max.bytes`.
    producer_max: usize,
    /// Each known topic's `max.message.bytes` (when the brokers told), so a record too large
    /// for it is diverted or refused before it is sent: once sent, the brokers' refusal would
    /// only surface after librdkafka's message timeout (minutes), failing its transaction.
    limits: HashMap<String, usize>,
    /// The cluster, as [`SEEN`] keys it.
    cluster: String,
}

impl Topics {
    /// Topic administration with the settings of `[kafka]`.
    pub(super) fn new(cfg: &KafkaConfig, context: &AgentContext) -> Result<Self, SinkError> {
        let admin = base_client_config(cfg)
            .create_with_context(context.clone())
            .map_err(|e| SinkError::Client(format!("admin client: {e}")))?;
        Ok(Self {
            admin,
            context: context.clone(),
            reached: false,
            known: HashSet::new(),
            partitions: cfg.topic_partitions,
            // The configuration checked every pattern when it was loaded.
            partitions_by_topic: cfg
                .partitions_by_topic
                .iter()
                .filter_map(|(p, n)| Some((regex::Regex::new(&format!("^(?:{p})$")).ok()?, *n)))
                .collect(),
            replication: cfg.topic_replication_factor,
            create: cfg.create_topics,
            producer_max: cfg
                .properties
                .get("message.max.bytes")
                .and_then(|v| v.expose().parse().ok())
                .unwrap_or(PRODUCER_MAX_MESSAGE_BYTES),
            limits: HashMap::new(),
            cluster: cfg.bootstrap_servers.clone(),
        })
    }

    /// Remembers that `topic` exists, for this sink and for the process ([`SEEN`]).
    fn remember(&mut self, topic: &str) {
        self.known.insert(topic.to_string());
        SEEN.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((self.cluster.clone(), topic.to_string()));
    }

    /// Whether a sink of this process made sure of `topic` before.
    fn seen_before(&self, topic: &str) -> bool {
        SEEN.lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(self.cluster.clone(), topic.to_string()))
    }

    /// The largest record `topic` takes: the smaller of its `max.message.bytes` (when the
    /// brokers told) and the producer's `message.max.bytes`.
    pub(super) fn record_limit(&self, topic: &str) -> Option<usize> {
        Some(
            self.limits
                .get(topic)
                .map_or(self.producer_max, |t| (*t).min(self.producer_max)),
        )
    }

    /// Asks the brokers for `topic`'s `max.message.bytes` and remembers it. Best effort: a
    /// broker that does not say (no DescribeConfigs right) leaves the producer's limit.
    async fn learn_limit(&mut self, topic: &str) {
        let opts = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
        let spec = ResourceSpecifier::Topic(topic);
        let found = match self.admin.describe_configs([&spec], &opts).await {
            Ok(results) => results.into_iter().find_map(|r| {
                r.ok()?
                    .get("max.message.bytes")?
                    .value
                    .as_deref()?
                    .parse::<usize>()
                    .ok()
            }),
            Err(e) => {
                tracing::debug!(topic, error = %e, "cannot read the topic's max.message.bytes");
                None
            }
        };
        if let Some(max) = found {
            tracing::debug!(topic, max_message_bytes = max, "topic record limit");
            self.limits.insert(topic.to_string(), max);
        }
    }

    /// Waits until the brokers answer a metadata request from `producer`, so that a refused
    /// login is a definite [`SinkError::Auth`] at start instead of requests that time out
    /// forever (librdkafka reports it only through its error callback and keeps retrying).
    async fn reach_brokers(&mut self, producer: &Producer) -> Result<(), SinkError> {
        if self.reached {
            return Ok(());
        }
        let (producer, context) = (producer.clone(), self.context.clone());
        tokio::task::spawn_blocking(move || reach(producer.client(), &context, ADMIN_TIMEOUT))
            .await
            .map_err(|e| SinkError::Client(format!("metadata task: {e}")))??;
        self.reached = true;
        Ok(())
    }

    /// Whether the brokers know `topic`. Only "unknown topic or partition" means no; any other
    /// metadata trouble is an error, never taken for a missing topic.
    pub(super) async fn exists(
        &mut self,
        producer: &Producer,
        topic: &str,
    ) -> Result<bool, SinkError> {
        if self.known.contains(topic) {
            return Ok(true);
        }
        self.reach_brokers(producer).await?;
        let (p, t) = (producer.clone(), topic.to_string());
        let state = tokio::task::spawn_blocking(move || {
            let md = p
                .client()
                .fetch_metadata(Some(&t), ADMIN_TIMEOUT)
                .map_err(|e| SinkError::Client(format!("metadata of `{t}`: {e}")))?;
            let found = md.topics().iter().find(|x| x.name() == t);
            Ok::<_, SinkError>(topic_state(
                "needed",
                &t,
                found.map(|x| (x.error(), x.partitions().len())),
            ))
        })
        .await
        .map_err(|e| SinkError::Client(format!("metadata task: {e}")))??;
        match state {
            // Once there in this process, now gone: deleted under the agent.
            TopicState::Missing if self.seen_before(topic) => {
                Err(SinkError::TopicGone(topic.to_string()))
            }
            TopicState::Missing => Ok(false),
            TopicState::Ready => Ok(true),
            TopicState::Denied(e) | TopicState::NotReady(e) => Err(e),
        }
    }

    /// Creates `topic` unless it exists, with the given topic configs.
    pub(super) async fn ensure(
        &mut self,
        producer: &Producer,
        topic: &str,
        configs: &[(&str, &str)],
    ) -> Result<(), SinkError> {
        if self.known.contains(topic) {
            return Ok(());
        }
        self.reach_brokers(producer).await?;
        // A topic an earlier attempt wrote to is not created again unseen: `exists` says
        // TopicGone when it was deleted since.
        if self.seen_before(topic) && self.exists(producer, topic).await? {
            self.remember(topic);
            self.learn_limit(topic).await;
            return Ok(());
        }
        if !self.create {
            let md = producer
                .client()
                .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
                .map_err(|e| SinkError::Client(format!("metadata of `{topic}`: {e}")))?;
            let found = md.topics().iter().find(|t| t.name() == topic);
            let invalid = found.is_some_and(|t| {
                t.error().map(RDKafkaErrorCode::from) == Some(RDKafkaErrorCode::InvalidTopic)
            });
            if invalid {
                return Err(create_topic_error(topic, RDKafkaErrorCode::InvalidTopic));
            }
            // Only a topic the broker does not know is missing; a metadata error is not.
            return match topic_state(
                "needed",
                topic,
                found.map(|t| (t.error(), t.partitions().len())),
            ) {
                TopicState::Missing => Err(SinkError::MissingTopic(topic.to_string())),
                TopicState::Ready => {
                    self.remember(topic);
                    self.learn_limit(topic).await;
                    Ok(())
                }
                TopicState::Denied(e) | TopicState::NotReady(e) => Err(e),
            };
        }
        let partitions = self
            .partitions_by_topic
            .iter()
            .find(|(re, _)| re.is_match(topic))
            .map_or(self.partitions, |(_, n)| *n);
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(self.replication));
        for (k, v) in configs {
            new = new.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        let res = self
            .admin
            .create_topics(&[new], &opts)
            .await
            .map_err(|e| SinkError::Client(format!("create topic `{topic}`: {e}")))?;
        for r in res {
            match r {
                Ok(_) => tracing::info!(topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(create_topic_error(topic, code)),
            }
        }
        self.remember(topic);
        self.learn_limit(topic).await;
        Ok(())
    }
}
