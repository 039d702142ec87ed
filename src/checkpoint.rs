//! Source checkpoints in a compacted Kafka topic (`<topic_prefix>.offsets`, key = source
//! name, value = JSON).
//!
//! Checkpoints travel through the same producer as the events they follow, so when Kafka has
//! acknowledged a checkpoint it has acknowledged every event before it. Keeping them in Kafka
//! rather than on local disk lets a sidecar lose its filesystem without losing its place, and
//! lets the exactly-once mode commit events and position in one transaction.

use std::time::Duration;

use rdkafka::Message;
use serde::{Deserialize, Serialize};

use crate::config::KafkaConfig;
use crate::sink::kafka::SinkError;
use crate::sink::read::read_to_end;

/// Topic configs of the offsets topic: compacted, only the newest value per key matters.
pub const OFFSETS_TOPIC_CONFIGS: &[(&str, &str)] = &[("cleanup.policy", "compact")];
/// How long loading may wait for the broker.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The offsets topic of a source.
pub fn offsets_topic(topic_prefix: &str) -> String {
    format!("{topic_prefix}.offsets")
}

/// What a source has durably done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The initial snapshot finished and all its events are in Kafka.
    #[serde(default)]
    pub snapshot_done: bool,
    /// The replication slot the snapshot was taken with; a different slot means the
    /// snapshot does not match the stream and must be taken again.
    #[serde(default)]
    pub slot: Option<String>,
    /// Source position (PostgreSQL LSN as `X/X`), for operators reading the topic.
    #[serde(default)]
    pub position: Option<String>,
    /// Exactly-once: commit LSN of the newest source transaction whose events are all in
    /// committed Kafka transactions. Replayed source transactions at or below it are skipped.
    #[serde(default)]
    pub last_tx_lsn: Option<u64>,
    /// Exactly-once: a source transaction larger than one Kafka transaction, partly committed.
    #[serde(default)]
    pub partial: Option<PartialTx>,
}

/// The committed part of a source transaction that spans several Kafka transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialTx {
    /// Commit LSN of the source transaction.
    pub tx_lsn: u64,
    /// How many of its row messages (inserts, updates, deletes, truncates) are committed.
    pub messages: u64,
}

/// Reads the newest checkpoint of `source` from `topic` (read_committed), or `None` when the
/// topic or the key does not exist yet.
pub fn load(cfg: &KafkaConfig, topic: &str, source: &str) -> Result<Option<Checkpoint>, SinkError> {
    let mut latest: Option<Checkpoint> = None;
    read_to_end(
        cfg,
        topic,
        &format!("cdc-agent-offsets-{source}"),
        "offsets",
        LOAD_TIMEOUT,
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
