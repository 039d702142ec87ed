//! The phase a source is in, as status, `/readyz` and the metrics name it.
//!
//! Apart from [`crate::ops::status`] so that the metrics can name every state without
//! depending on the status that reports into them.

use std::fmt;

/// The phase a source is in.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceState {
    /// Not started yet.
    Starting,
    /// Connecting to the database and checking its prerequisites.
    Connecting,
    /// The database is unavailable; retrying with backoff. `why` is the last error.
    WaitingForDatabase {
        /// The last error, one line.
        why: String,
    },
    /// Kafka is unavailable or refused a transaction; retrying.
    WaitingForKafka {
        /// The last error, one line.
        why: String,
    },
    /// The schema registry is unavailable; retrying.
    WaitingForRegistry {
        /// The last error, one line.
        why: String,
    },
    /// Taking the initial snapshot; `pct` is rows read against the estimate (0–100).
    Snapshotting {
        /// Percent done.
        pct: u8,
    },
    /// Streaming changes.
    Streaming,
    /// Another agent owns the source; this one waits to take over.
    Standby,
    /// Stopped with a definite error; the process is exiting.
    Failed {
        /// What happened.
        why: String,
    },
    /// Stopped (shutdown, or `snapshot.mode = initial_only` finished).
    Stopped,
}

/// The metric label of every state, in [`SourceState::name`]'s spelling.
pub const STATE_NAMES: [&str; 10] = [
    "starting",
    "connecting",
    "waiting_for_database",
    "waiting_for_kafka",
    "waiting_for_registry",
    "snapshotting",
    "streaming",
    "standby",
    "failed",
    "stopped",
];

impl SourceState {
    /// The waiting state for a transient failure, by the dependency it concerns: the Kafka
    /// sink's and the registry's failures are theirs, every other transient failure of a
    /// source is its database's.
    pub fn waiting_for(error: &crate::error::SourceError) -> SourceState {
        use crate::error::Dependency;
        let why = error.to_string();
        match error.dependency() {
            Dependency::Registry => SourceState::WaitingForRegistry { why },
            Dependency::Kafka => SourceState::WaitingForKafka { why },
            Dependency::Database | Dependency::Configuration => {
                SourceState::WaitingForDatabase { why }
            }
        }
    }

    /// A stable, label-safe name (`cdc_agent_source_state{state=…}`, `/readyz`).
    pub fn name(&self) -> &'static str {
        match self {
            SourceState::Starting => STATE_NAMES[0],
            SourceState::Connecting => STATE_NAMES[1],
            SourceState::WaitingForDatabase { .. } => STATE_NAMES[2],
            SourceState::WaitingForKafka { .. } => STATE_NAMES[3],
            SourceState::WaitingForRegistry { .. } => STATE_NAMES[4],
            SourceState::Snapshotting { .. } => STATE_NAMES[5],
            SourceState::Streaming => STATE_NAMES[6],
            SourceState::Standby => STATE_NAMES[7],
            SourceState::Failed { .. } => STATE_NAMES[8],
            SourceState::Stopped => STATE_NAMES[9],
        }
    }

    /// Whether systemd may consider the source started (`READY=1`): it streams, snapshots, or
    /// stands by. A standby is ready by design: it is doing its job, waiting to take over.
    pub fn is_started(&self) -> bool {
        matches!(
            self,
            SourceState::Streaming | SourceState::Snapshotting { .. } | SourceState::Standby
        )
    }

    /// Whether the source's task is expected to beat (it has not ended).
    pub(crate) fn is_running(&self) -> bool {
        !matches!(self, SourceState::Failed { .. } | SourceState::Stopped)
    }
}

impl fmt::Display for SourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceState::Starting => f.write_str("starting"),
            SourceState::Connecting => f.write_str("connecting"),
            SourceState::WaitingForDatabase { .. } => f.write_str("waiting for database"),
            SourceState::WaitingForKafka { .. } => f.write_str("waiting for kafka"),
            SourceState::WaitingForRegistry { .. } => f.write_str("waiting for schema registry"),
            SourceState::Snapshotting { pct } => write!(f, "snapshotting {pct}%"),
            SourceState::Streaming => f.write_str("streaming"),
            SourceState::Standby => f.write_str("standby"),
            SourceState::Failed { .. } => f.write_str("failed"),
            SourceState::Stopped => f.write_str("stopped"),
        }
    }
}
