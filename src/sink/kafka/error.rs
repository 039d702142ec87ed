//! Error classification of the Kafka sink: which failures a restart can fix (transient) and
//! which need the operator (definite), with the fix in the message.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A sink failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A record is larger than the producer or broker allows. Definite.
    #[error(
        "record for topic `{topic}` is too large ({size} bytes): {source}; fix: raise \
         `message.max.bytes` in [kafka.properties] and the topic's `max.message.bytes`"
    )]
    TooLarge {
        /// Topic.
        topic: String,
        /// Key plus value size.
        size: usize,
        /// Kafka's error.
        source: KafkaError,
    },
    /// Kafka refused or could not take a record.
    #[error("kafka produce to `{topic}` failed: {source}")]
    Produce {
        /// Topic.
        topic: String,
        /// Kafka's error.
        source: KafkaError,
    },
    /// Client creation or an admin operation failed.
    #[error("kafka: {0}")]
    Client(String),
    /// A topic the agent wrote to was deleted while it ran (the brokers say it no longer
    /// exists). Definite: the records already in it are gone for its readers, so recreating it
    /// behind their backs would hide that; and when it is the offsets topic, the source's
    /// checkpoint went with it (the next start stops until `on_missing_position` decides).
    #[error(
        "kafka topic `{0}` no longer exists: it was deleted while the agent wrote to it, and \
         the records already in it are gone for its readers (if it is the offsets topic, the \
         source's checkpoint went with it); the agent stops rather than recreate it unseen; \
         fix: find out who deleted it, then restart the agent: a table topic is created again \
         and filled from the checkpoint on (snapshot the table again to refill it), a missing \
         offsets topic stops the start until on_missing_position decides (docs/operations.md, \
         \"Deleted topics\")"
    )]
    TopicGone(String),
    /// `create_topics = false` and a topic the source needs does not exist. Definite.
    #[error(
        "topic `{0}` does not exist and [kafka] create_topics = false; fix: create it (see \
         docs/event-store.md for the event store's settings) or set create_topics = true"
    )]
    MissingTopic(String),
    /// The brokers refused to create a topic for a reason retrying cannot change (an
    /// invalid name, a missing right, settings the cluster refuses). Definite.
    #[error("kafka refused to create topic `{topic}`: {code}; fix: {fix}")]
    TopicRefused {
        /// Topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
        /// What the operator changes.
        fix: &'static str,
    },
    /// Another producer with the same `transactional.id` took over: this agent is a zombie
    /// and must stop without writing anything more. Definite.
    #[error(
        "fenced: another cdc-agent took over this source's transactional id ({0}); this \
         process stops without writing"
    )]
    Fenced(String),
    /// The brokers refused our credentials or our TLS handshake (wrong SASL password or
    /// mechanism, untrusted broker certificate). Definite: retrying cannot fix it.
    #[error(
        "kafka refused the connection: {0}; fix: check [kafka] security_protocol, \
         sasl_mechanism, sasl_username and sasl_password (or sasl_password_file) and, with \
         TLS, ssl_ca_location"
    )]
    Auth(String),
    /// Kafka refuses the agent an operation on one topic (an ACL is missing); the message
    /// names the grant. Definite.
    #[error("{0}")]
    Denied(String),
    /// Reading one of the agent's own topics did not reach its end in time (e.g. an open
    /// transaction of a dead producer holds read_committed readers back). Transient.
    #[error("kafka: {0}")]
    Stalled(String),
    /// A Kafka transaction failed and was aborted; nothing of it is visible to
    /// read_committed consumers. Transient: the source resumes from the last committed offset.
    #[error("kafka transaction aborted: {0}")]
    Aborted(String),
}

impl SinkError {
    /// Whether restarting the pipeline may succeed without operator action.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::TooLarge { .. } => false,
            SinkError::Produce { source, .. } => !matches!(
                source.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed
                        | RDKafkaErrorCode::MessageSizeTooLarge
                        | RDKafkaErrorCode::InvalidRecord
                )
            ),
            SinkError::Client(_) | SinkError::Aborted(_) | SinkError::Stalled(_) => true,
            SinkError::Fenced(_)
            | SinkError::TopicGone(_)
            | SinkError::MissingTopic(_)
            | SinkError::Auth(_)
            | SinkError::Denied(_)
            | SinkError::TopicRefused { .. } => false,
        }
    }
}

pub(super) fn produce_error(topic: &str, size: usize, e: KafkaError) -> SinkError {
    // librdkafka fails a record with these once the brokers' metadata no longer lists its
    // topic (after `topic.metadata.propagation.max.ms` for a topic it never saw): every topic
    // the sink writes to was created or checked first, so the topic was deleted since.
    if matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopicId
        )
    ) {
        return SinkError::TopicGone(topic.to_string());
    }
    if matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
    ) {
        SinkError::TooLarge {
            topic: topic.to_string(),
            size,
            source: e,
        }
    } else {
        SinkError::Produce {
            topic: topic.to_string(),
            source: e,
        }
    }
}

/// What fixes a topic-creation refusal that retrying cannot fix; `None` for the codes a later
/// attempt may not see (a controller moving, a broker starting, a timeout).
fn topic_refusal_fix(code: RDKafkaErrorCode) -> Option<&'static str> {
    match code {
        RDKafkaErrorCode::InvalidTopic => Some(
            "Kafka topic names are at most 249 characters of [A-Za-z0-9._-] (table names are \
             sanitised to that, see docs/architecture.md \"Topic names\"); correct \
             topic_prefix, the table's topic_routes entry or the configured topic name",
        ),
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed => Some(
            "create the topic yourself or grant CREATE on the cluster (or the topic) to the \
                 agent's principal (docs/security.md)",
        ),
        RDKafkaErrorCode::InvalidPartitions
        | RDKafkaErrorCode::InvalidReplicationFactor
        | RDKafkaErrorCode::InvalidReplicaAssignment => Some(
            "set [kafka] topic_partitions and topic_replication_factor to what the cluster \
             allows (replication factor at most the number of brokers), or create the topic \
             yourself",
        ),
        RDKafkaErrorCode::InvalidConfig | RDKafkaErrorCode::PolicyViolation => Some(
            "the cluster's create-topic policy refuses these settings; create the topic \
             yourself with settings it accepts (docs/event-store.md lists the agent's)",
        ),
        _ => None,
    }
}

/// Maps a refused topic creation: definite with its fix when retrying cannot help, else a
/// transient client error.
pub(super) fn create_topic_error(topic: &str, code: RDKafkaErrorCode) -> SinkError {
    match topic_refusal_fix(code) {
        Some(fix) => SinkError::TopicRefused {
            topic: topic.to_string(),
            code,
            fix,
        },
        None => SinkError::Client(format!("create topic `{topic}`: {code}")),
    }
}

/// Maps a transactional API error: fencing is definite, everything else aborts the
/// transaction and is retried from the last committed offset.
pub(super) fn txn_error(what: &str, e: KafkaError) -> SinkError {
    let fenced = match &e {
        KafkaError::Transaction(r) => {
            r.is_fatal()
                || matches!(
                    r.code(),
                    RDKafkaErrorCode::Fenced
                        | RDKafkaErrorCode::ProducerFenced
                        | RDKafkaErrorCode::InvalidProducerEpoch
                )
        }
        _ => matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced)
        ),
    };
    if fenced {
        SinkError::Fenced(format!("{what}: {e}"))
    } else {
        SinkError::Aborted(format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_whose_topic_no_longer_exists_is_definite_and_names_the_topic() {
        for code in [
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::UnknownPartition,
        ] {
            let e = produce_error("pg.public.t", 10, KafkaError::MessageProduction(code));
            assert!(matches!(e, SinkError::TopicGone(_)), "{code:?}: {e:?}");
            assert!(!e.is_transient(), "{code:?}");
            let text = e.to_string();
            assert!(text.contains("`pg.public.t` no longer exists"), "{text}");
            assert!(text.contains("on_missing_position"), "{text}");
        }
        let busy = produce_error(
            "pg.public.t",
            10,
            KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas),
        );
        assert!(busy.is_transient(), "{busy}");
    }

    #[test]
    fn an_invalid_topic_name_is_definite_and_its_fix_is_the_name_not_a_grant() {
        let e = create_topic_error("pg.public.bad name", RDKafkaErrorCode::InvalidTopic);
        assert!(!e.is_transient());
        let text = e.to_string();
        assert!(text.contains("`pg.public.bad name`"), "{text}");
        assert!(text.contains("topic_routes"), "{text}");
        assert!(!text.contains("grant"), "{text}");
    }

    #[test]
    fn a_missing_right_or_refused_settings_are_definite_and_a_busy_cluster_is_transient() {
        let e = create_topic_error("t", RDKafkaErrorCode::TopicAuthorizationFailed);
        assert!(!e.is_transient());
        assert!(e.to_string().contains("grant CREATE"), "{e}");
        let e = create_topic_error("t", RDKafkaErrorCode::InvalidReplicationFactor);
        assert!(!e.is_transient());
        assert!(e.to_string().contains("topic_replication_factor"), "{e}");
        let e = create_topic_error("t", RDKafkaErrorCode::PolicyViolation);
        assert!(!e.is_transient());
        for code in [
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::NotController,
            RDKafkaErrorCode::BrokerNotAvailable,
        ] {
            assert!(create_topic_error("t", code).is_transient(), "{code:?}");
        }
    }
}
