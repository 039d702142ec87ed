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
    /// `create_topics = false` and a topic the source needs does not exist. Definite.
    #[error(
        "topic `{0}` does not exist and [kafka] create_topics = false; fix: create it (see \
         docs/event-store.md for the event store's settings) or set create_topics = true"
    )]
    MissingTopic(String),
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
            | SinkError::MissingTopic(_)
            | SinkError::Auth(_)
            | SinkError::Denied(_) => false,
        }
    }
}

pub(super) fn produce_error(topic: &str, size: usize, e: KafkaError) -> SinkError {
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
