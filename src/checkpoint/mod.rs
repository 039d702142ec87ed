//! Source checkpoints in a compacted Kafka topic (`<topic_prefix>.offsets`, key = source
//! name, value = JSON).
//!
//! Checkpoints travel through the same producer as the events they follow, so when Kafka has
//! acknowledged a checkpoint it has acknowledged every event before it. Keeping them in Kafka
//! rather than on local disk lets a sidecar lose its filesystem without losing its place, and
//! lets the exactly-once mode commit events and position in one transaction.

use std::time::Duration;

use rdkafka::Message;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub mod snapshot;

pub use snapshot::{KeyValue, SnapshotKind, SnapshotState, TableProgress};

use crate::config::KafkaConfig;
use crate::sink::read::read_to_end;
use crate::sink::SinkError;

/// How long loading may wait for the broker.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a source has durably done: the envelope every source's checkpoint shares, with the
/// source's own position flattened into it (`S`: [`crate::source::postgres::position`],
/// [`crate::source::mysql::position`]).
///
/// The JSON keeps the layout checkpoints had before positions were split per source, so
/// checkpoints written by earlier versions still load (unknown keys are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint<S> {
    /// The initial snapshot finished and all its events are in Kafka.
    #[serde(default)]
    pub snapshot_done: bool,
    /// The source position as text (`X/X`, `file:pos`), for operators reading the topic.
    #[serde(default)]
    pub position: Option<String>,
    /// The source's own position.
    #[serde(flatten)]
    pub source: S,
    /// Snapshots in progress (chunked, while streaming): where each table stands.
    #[serde(default, skip_serializing_if = "SnapshotState::is_empty")]
    pub snapshot: SnapshotState,
    /// The source transaction whose BEGIN is in Kafka and whose END is not yet
    /// (`provide_transaction_metadata`): a restart inside it goes on counting from here, so
    /// its END counts every event once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<OpenTransaction>,
}

/// A source transaction being published, for its END record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTransaction {
    /// Transaction id as events carry it.
    pub id: String,
    /// Its time (the BEGIN's `ts_ms`).
    pub ts_ms: i64,
    /// Events published so far per table (`schema.table`), in first-seen order.
    pub counts: Vec<(String, i64)>,
}

/// Reads the newest checkpoint of `source` from `topic` (read_committed), or `None` when the
/// topic or the key does not exist yet. Only a topic the broker says it does not know counts
/// as missing: any other metadata error is an error (see [`read_to_end`]), because a source
/// that wrongly believes it has no checkpoint starts over and leaves a gap.
pub fn load<S: DeserializeOwned>(
    cfg: &KafkaConfig,
    topic: &str,
    source: &str,
) -> Result<Option<Checkpoint<S>>, SinkError> {
    load_within(cfg, topic, source, LOAD_TIMEOUT)
}

/// [`load`] that gives up after `timeout` (a [`SinkError::Stalled`] when an open transaction
/// holds the read back).
pub fn load_within<S: DeserializeOwned>(
    cfg: &KafkaConfig,
    topic: &str,
    source: &str,
    timeout: std::time::Duration,
) -> Result<Option<Checkpoint<S>>, SinkError> {
    let mut latest: Option<Checkpoint<S>> = None;
    read_to_end(
        cfg,
        topic,
        &format!("cdc-agent-offsets-{source}"),
        "offsets",
        timeout,
        |msg| {
            if msg.key() == Some(source.as_bytes()) {
                latest = match msg.payload() {
                    Some(p) => Some(serde_json::from_slice(p).map_err(|e| {
                        SinkError::Client(format!(
                            "offsets topic `{topic}` holds an unreadable checkpoint for \
                             `{source}`: {e}; fix: delete the key (produce a tombstone) to \
                             start over"
                        ))
                    })?),
                    None => None,
                };
            }
            Ok(())
        },
    )?;
    Ok(latest)
}
