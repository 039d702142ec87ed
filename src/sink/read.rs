//! Reading one of the agent's own small topics from start to end, as a read_committed
//! consumer sees it: the offsets topic (newest checkpoint per source) and the MySQL schema
//! history (every record of a source) are both loaded this way at start.
//!
//! Only committed records are returned: an aborted Kafka transaction of a crashed agent leaves
//! no checkpoint and no schema-history record behind.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::sink::kafka::metadata::{topic_state, TopicState};
use crate::sink::kafka::{base_client_config, SinkError};

/// What [`read_to_end`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRead {
    /// The broker says the topic does not exist (unknown topic or partition). Any other
    /// metadata error is an error, never taken for a missing topic: a missing offsets topic
    /// means "no checkpoint", and a source that wrongly believes it has none starts over.
    Missing,
    /// The topic exists; every committed record up to its end was handed to the callback
    /// (none when it is empty or its records were deleted by retention).
    Read,
}

/// Reads every committed record of `topic`, all partitions, from the earliest retained offset
/// to the end the topic had when reading started, handing each to `on_record` in partition
/// order. Blocking: call it from `spawn_blocking` in async code.
///
/// `what` names the topic's role in error messages ("offsets", "schema history").
pub fn read_to_end(
    cfg: &KafkaConfig,
    topic: &str,
    group_id: &str,
    what: &str,
    timeout: Duration,
    mut on_record: impl FnMut(&BorrowedMessage<'_>) -> Result<(), SinkError>,
) -> Result<TopicRead, SinkError> {
    let consumer: BaseConsumer = base_client_config(cfg)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| SinkError::Client(format!("{what} consumer: {e}")))?;
    let deadline = Instant::now() + timeout;
    let partitions: Vec<i32> = loop {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| SinkError::Client(format!("{what} topic metadata: {e}")))?;
        let found = md.topics().iter().find(|t| t.name() == topic);
        match topic_state(
            what,
            topic,
            found.map(|t| (t.error(), t.partitions().len())),
        ) {
            TopicState::Missing => return Ok(TopicRead::Missing),
            TopicState::Ready => {
                break found
                    .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                    .unwrap_or_default()
            }
            TopicState::Denied(e) => return Err(e),
            // A topic being created or a broker catching up: ask again until the deadline,
            // then let the supervisor retry with backoff.
            TopicState::NotReady(e) if Instant::now() > deadline => return Err(e),
            TopicState::NotReady(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(|e| SinkError::Client(format!("{what} watermarks: {e}")))?;
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Offset(low))
                .map_err(|e| SinkError::Client(e.to_string()))?;
            ends.push((p, high));
        }
    }
    if ends.is_empty() {
        return Ok(TopicRead::Read);
    }
    consumer
        .assign(&tpl)
        .map_err(|e| SinkError::Client(format!("{what} assign: {e}")))?;
    let deadline = Instant::now() + timeout;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(SinkError::Stalled(format!(
                "reading {what} topic `{topic}` timed out before its end (an open transaction \
                 of another producer holds read_committed readers back until it ends)"
            )));
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            // read_committed stops at the last stable offset, which may be below the high
            // watermark (transaction markers): check where we stand.
            for (pid, end) in ends.iter_mut() {
                if let Ok(pos) = consumer.position() {
                    if let Some(el) = pos.find_partition(topic, *pid) {
                        if let Offset::Offset(o) = el.offset() {
                            if o >= *end {
                                *end = -1;
                            }
                        }
                    }
                }
            }
            ends.retain(|(_, e)| *e >= 0);
            continue;
        };
        let msg = msg.map_err(|e| SinkError::Client(format!("{what} read: {e}")))?;
        on_record(&msg)?;
        if let Some(pos) = ends
            .iter()
            .position(|(pid, end)| *pid == msg.partition() && msg.offset() + 1 >= *end)
        {
            ends.remove(pos);
        }
    }
    Ok(TopicRead::Read)
}
