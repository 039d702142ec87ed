//! The PostgreSQL source against the real stack: snapshot, streaming, types, schema changes,
//! bad input, TLS, crashes and large transactions. One binary, so `tests/common` is compiled
//! once; its tests run in parallel, so each makes its own database, slot and topics.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod crash;
mod delivery;
mod heartbeat;
mod incremental;
mod json_output;
mod large_transaction;
mod outbox;
mod poison;
mod position_integrity;
mod replication_client;
mod schema_change;
mod selection;
mod signal_table;
mod slot_progress;
mod snapshot;
mod snapshot_stop;
mod source;
mod tail;
mod tls;
mod topic_config;
mod topic_deleted;
mod transaction_topic;
mod types;
mod versions;
