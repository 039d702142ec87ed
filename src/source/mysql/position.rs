//! The MySQL/MariaDB part of a checkpoint. The server keeps no position for a binlog reader
//! (unlike a PostgreSQL slot), so this *is* the source position.

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;

/// A MySQL/MariaDB source's checkpoint.
pub type MyCheckpoint = Checkpoint<MyPosition>;

/// What a MySQL/MariaDB checkpoint records besides the envelope: the binlog position under
/// the key `mysql`, as checkpoints have always had it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyPosition {
    /// Where the binlog resumes and what is already in Kafka.
    #[serde(default, rename = "mysql", skip_serializing_if = "Option::is_none")]
    pub binlog: Option<MysqlCheckpoint>,
}

impl MyCheckpoint {
    /// The checkpoint of a finished snapshot (or of a stream) at `cp`.
    pub fn at(cp: &MysqlCheckpoint) -> Self {
        Checkpoint {
            snapshot_done: true,
            position: Some(format!("{}:{}", cp.file, cp.pos)),
            source: MyPosition {
                binlog: Some(cp.clone()),
            },
            snapshot: Default::default(),
            transaction: None,
        }
    }
}

/// Where a MySQL/MariaDB source resumes.
///
/// A restart asks for the binlog at `file`/`pos`, which is either the end of the newest
/// source transaction whose events are all in Kafka, or the start of a source transaction
/// whose first `partial_rows` rows are (exactly-once, a source transaction larger than one
/// Kafka transaction).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mysql_checkpoint_round_trips_through_json() {
        let cp = MyCheckpoint::at(&MysqlCheckpoint {
            file: "mariadb-bin.000003".into(),
            pos: 1234,
            gtid_state: Some("0-1-42".into()),
            partial_rows: 7,
            partial_gtid: Some("0-1-43".into()),
            history_seq: Some(3),
            server: Some("1".into()),
        });
        let json = serde_json::to_vec(&cp).unwrap();
        assert_eq!(serde_json::from_slice::<MyCheckpoint>(&json).unwrap(), cp);
    }

    #[test]
    fn a_mysql_checkpoint_written_before_positions_were_split_per_source_still_reads() {
        let old = br#"{"snapshot_done":true,"slot":null,"position":"b.000001:4","last_tx_lsn":null,"partial":null,"mysql":{"file":"b.000001","pos":4,"gtid_state":null,"partial_rows":0,"history_seq":1,"server":"1"}}"#;
        let cp: MyCheckpoint = serde_json::from_slice(old).unwrap();
        assert!(cp.snapshot_done);
        assert_eq!(cp.source.binlog.unwrap().pos, 4);
    }
}
