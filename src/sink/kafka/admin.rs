//! Topic administration: the sink creates the topics it writes to (or, with
//! `create_topics = false`, checks that they exist), once per topic and process.

use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer;

use super::client::reach;
use super::{KafkaSink, SinkError};

/// Timeout of admin operations (topic creation, metadata, the first contact).
pub(super) const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

impl<P: Unpin + Clone + Send + 'static> KafkaSink<P> {
    /// Waits until the brokers answer a metadata request, so that a refused login is a
    /// definite [`SinkError::Auth`] at start instead of requests that time out forever
    /// (librdkafka reports it only through its error callback and keeps retrying).
    pub async fn reach_brokers(&mut self) -> Result<(), SinkError> {
        if self.reached {
            return Ok(());
        }
        let (producer, context) = (self.producer.clone(), self.context.clone());
        tokio::task::spawn_blocking(move || reach(producer.client(), &context, ADMIN_TIMEOUT))
            .await
            .map_err(|e| SinkError::Client(format!("metadata task: {e}")))??;
        self.reached = true;
        Ok(())
    }

    /// Creates `topic` unless it exists, with the given topic configs.
    pub(super) async fn create_topic(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
    ) -> Result<(), SinkError> {
        if self.topics_known.contains(topic) {
            return Ok(());
        }
        self.reach_brokers().await?;
        if !self.create_topics {
            let md = self
                .producer
                .client()
                .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
                .map_err(|e| SinkError::Client(format!("metadata of `{topic}`: {e}")))?;
            let exists = md
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
            if !exists {
                return Err(SinkError::MissingTopic(topic.to_string()));
            }
            self.topics_known.insert(topic.to_string());
            return Ok(());
        }
        let mut new = NewTopic::new(
            topic,
            self.partitions,
            TopicReplication::Fixed(self.replication),
        );
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
                Err((_, code)) => {
                    return Err(SinkError::Client(format!(
                        "create topic `{topic}`: {code}; fix: create it yourself or grant \
                         CREATE on the cluster to the agent's principal"
                    )))
                }
            }
        }
        self.topics_known.insert(topic.to_string());
        Ok(())
    }
}
