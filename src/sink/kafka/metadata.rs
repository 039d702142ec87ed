//! What a broker's metadata answer says about one topic: only "unknown topic or partition"
//! means the topic is missing. Shared by the reads of the agent's own topics
//! ([`crate::sink::read`]) and the topic checks of `create_topics = false`.

use rdkafka::types::RDKafkaRespErr;

use super::error::SinkError;

/// What one topic's metadata says about reading it.
#[derive(Debug)]
pub(crate) enum TopicState {
    /// The broker does not know the topic.
    Missing,
    /// The topic exists with partitions.
    Ready,
    /// The broker refuses to describe the topic to us: only an operator can fix it.
    Denied(SinkError),
    /// Any other answer: the broker may answer differently later.
    NotReady(SinkError),
}

/// Classifies the metadata of `topic` (`found`: its error and partition count, `None` when
/// the answer does not list it). Only "unknown topic or partition" means the topic is
/// missing; everything else that is not a readable topic is an error, so a broker in trouble
/// is never mistaken for a source without checkpoint or schema history.
pub(crate) fn topic_state(
    what: &str,
    topic: &str,
    found: Option<(Option<RDKafkaRespErr>, usize)>,
) -> TopicState {
    use RDKafkaRespErr::*;
    match found {
        Some((
            Some(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART | RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC),
            _,
        )) => TopicState::Missing,
        Some((None, n)) if n > 0 => TopicState::Ready,
        Some((Some(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED), _)) => {
            TopicState::Denied(SinkError::Denied(format!(
                "kafka denies the agent's principal Describe on the {what} topic `{topic}` (it \
                 is not taken as missing); fix: grant Describe and Read on topic `{topic}` (see \
                 docs/security.md)"
            )))
        }
        Some((Some(e), _)) => TopicState::NotReady(SinkError::Client(format!(
            "{what} topic `{topic}` metadata: {}; it is not taken as missing",
            rdkafka::error::RDKafkaErrorCode::from(e)
        ))),
        Some((None, _)) => TopicState::NotReady(SinkError::Client(format!(
            "{what} topic `{topic}` has no partitions yet"
        ))),
        None => TopicState::NotReady(SinkError::Client(format!(
            "{what} topic `{topic}` is not in the broker's metadata answer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaRespErr::*;

    fn state(found: Option<(Option<RDKafkaRespErr>, usize)>) -> TopicState {
        topic_state("offsets", "p.offsets", found)
    }

    #[test]
    fn only_an_unknown_topic_reads_as_missing() {
        assert!(matches!(
            state(Some((Some(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), 0))),
            TopicState::Missing
        ));
        assert!(matches!(
            state(Some((Some(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC), 0))),
            TopicState::Missing
        ));
        assert!(matches!(state(Some((None, 1))), TopicState::Ready));
    }

    #[test]
    fn a_metadata_error_of_the_offsets_topic_is_a_transient_error_not_a_missing_topic() {
        for err in [
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
        ] {
            match state(Some((Some(err), 0))) {
                TopicState::NotReady(e) => {
                    assert!(e.is_transient(), "{e}");
                    assert!(e.to_string().contains("p.offsets"), "{e}");
                }
                other => panic!("{err:?}: {other:?}"),
            }
        }
        assert!(matches!(state(Some((None, 0))), TopicState::NotReady(e) if e.is_transient()));
        assert!(matches!(state(None), TopicState::NotReady(e) if e.is_transient()));
    }

    #[test]
    fn an_offsets_topic_the_agent_may_not_describe_stops_it_naming_the_grant() {
        match state(Some((
            Some(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            0,
        ))) {
            TopicState::Denied(e) => {
                assert!(!e.is_transient());
                assert!(
                    e.to_string()
                        .contains("grant Describe and Read on topic `p.offsets`"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
