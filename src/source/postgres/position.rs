//! The PostgreSQL part of a checkpoint. The slot keeps the stream position on the server;
//! the checkpoint adds what only Kafka knows in exactly-once mode: which source transactions
//! committed Kafka transactions already hold, so a replay after a crash skips them.

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;

/// A PostgreSQL source's checkpoint.
pub type PgCheckpoint = Checkpoint<PgPosition>;

/// What a PostgreSQL checkpoint records besides the envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgPosition {
    /// The replication slot the snapshot was taken with; a different slot means the
    /// snapshot does not match the stream and must be taken again.
    #[serde(default)]
    pub slot: Option<String>,
    /// Exactly-once: commit LSN of the newest source transaction whose events are all in
    /// committed Kafka transactions. Replayed source transactions at or below it are skipped.
    #[serde(default)]
    pub last_tx_lsn: Option<u64>,
    /// Exactly-once: a source transaction larger than one Kafka transaction, partly committed.
    #[serde(default)]
    pub partial: Option<PartialTx>,
    /// The database cluster's system identifier (`IDENTIFY_SYSTEM`) the slot lives on.
    /// Compared on every start: another cluster's slot of the same name holds another
    /// history. Absent in checkpoints written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,
    /// The server's timeline (`IDENTIFY_SYSTEM`) when the checkpoint was written; a change
    /// means a promotion or a point-in-time recovery happened since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u32>,
}

/// The committed part of a source transaction that spans several Kafka transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialTx {
    /// Commit LSN of the source transaction.
    pub tx_lsn: u64,
    /// How many of its row messages (inserts, updates, deletes, truncates) are committed.
    pub messages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_written_before_positions_were_split_per_source_still_reads() {
        let old = br#"{"snapshot_done":true,"slot":"s","position":"0/16B3748","last_tx_lsn":23803720,"partial":null}"#;
        let cp: PgCheckpoint = serde_json::from_slice(old).unwrap();
        assert!(cp.snapshot_done);
        assert_eq!(cp.source.slot.as_deref(), Some("s"));
        assert_eq!(cp.source.last_tx_lsn, Some(23803720));
    }

    #[test]
    fn a_postgres_checkpoint_keeps_its_json_keys() {
        let cp = PgCheckpoint {
            snapshot_done: true,
            position: Some("0/10".into()),
            source: PgPosition {
                slot: Some("s".into()),
                last_tx_lsn: Some(16),
                partial: Some(PartialTx {
                    tx_lsn: 32,
                    messages: 5,
                }),
                system_id: None,
                timeline: None,
            },
            snapshot: Default::default(),
            transaction: None,
        };
        let v: serde_json::Value = serde_json::to_value(&cp).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"snapshot_done":true,"position":"0/10","slot":"s",
                "last_tx_lsn":16,"partial":{"tx_lsn":32,"messages":5}})
        );
        assert_eq!(serde_json::from_value::<PgCheckpoint>(v).unwrap(), cp);
    }

    #[test]
    fn a_checkpoint_records_the_servers_system_id_and_timeline_and_older_ones_have_none() {
        let old: PgCheckpoint =
            serde_json::from_slice(br#"{"snapshot_done":true,"slot":"s","last_tx_lsn":16}"#)
                .unwrap();
        assert_eq!((old.source.system_id, old.source.timeline), (None, None));
        let cp = PgCheckpoint {
            source: PgPosition {
                slot: Some("s".into()),
                system_id: Some("7446071171783503372".into()),
                timeline: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let v = serde_json::to_value(&cp).unwrap();
        assert_eq!(v["system_id"], "7446071171783503372");
        assert_eq!(v["timeline"], 2);
        assert_eq!(serde_json::from_value::<PgCheckpoint>(v).unwrap(), cp);
    }
}
