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
    /// MySQL/MariaDB sources: where the binlog resumes and what is already in Kafka.
    /// Absent in PostgreSQL checkpoints and in those written before the MySQL source existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysql: Option<MysqlCheckpoint>,
}

/// The MySQL/MariaDB part of a checkpoint.
///
/// The server keeps no position for us (unlike a PostgreSQL slot), so this *is* the source
/// position: a restart asks for the binlog at `file`/`pos`, which is either the end of the
/// newest source transaction whose events are all in Kafka, or the start of a source
/// transaction whose first `partial_rows` rows are (exactly-once, a source transaction larger
/// than one Kafka transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MysqlCheckpoint {
    /// Binlog file to resume from.
    pub file: String,
    /// Position in `file` to resume from (an event boundary between transactions).
    pub pos: u64,
    /// MariaDB GTID state (`domain-server-seq,…`) matching `file`/`pos`, when known.
    #[serde(default)]
    pub gtid_state: Option<String>,
    /// Rows of the source transaction starting at `file`/`pos` already in Kafka; 0 when
    /// `file`/`pos` is between transactions.
    #[serde(default)]
    pub partial_rows: u64,
    /// GTID of the source transaction `partial_rows` belongs to. A resume by GTID (after a
    /// failover, where `file`/`pos` mean nothing) recognises the transaction by it. Absent in
    /// checkpoints written before GTID resume existed, and between transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_gtid: Option<String>,
    /// Sequence number of the newest schema-history record committed with this checkpoint.
    #[serde(default)]
    pub history_seq: Option<u64>,
    /// `@@server_uuid`/`@@server_id` of the server the positions belong to: positions of
    /// another server (a failover to a replica with other file names) are not resumed blindly.
    #[serde(default)]
    pub server: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_written_before_the_mysql_part_existed_still_reads() {
        let old = br#"{"snapshot_done":true,"slot":"s","position":"0/16B3748","last_tx_lsn":23803720,"partial":null}"#;
        let cp: Checkpoint = serde_json::from_slice(old).unwrap();
        assert!(cp.snapshot_done);
        assert_eq!(cp.mysql, None);
    }

    #[test]
    fn a_mysql_checkpoint_round_trips_through_json() {
        let cp = Checkpoint {
            snapshot_done: true,
            mysql: Some(MysqlCheckpoint {
                file: "mariadb-bin.000003".into(),
                pos: 1234,
                gtid_state: Some("0-1-42".into()),
                partial_rows: 7,
                partial_gtid: Some("0-1-43".into()),
                history_seq: Some(3),
                server: Some("1".into()),
            }),
            ..Checkpoint::default()
        };
        let json = serde_json::to_vec(&cp).unwrap();
        assert_eq!(serde_json::from_slice::<Checkpoint>(&json).unwrap(), cp);
    }
}
