//! The MySQL/MariaDB source against the real stack and scratch servers: snapshot (chunked,
//! while streaming), streaming,
//! types, DDL and schema history, GTID failover, bad input and TLS. One binary, so
//! `tests/common` is compiled once; its tests run in parallel, so each makes its own database,
//! server and topics.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod chunked_snapshot;
mod ddl_information_schema;
mod gtid_failover;
mod gtid_resume;
mod heartbeat;
mod json_output;
mod offsets_deleted;
mod outbox;
mod schema_history;
mod schema_history_kafka;
mod schema_history_rebuild;
mod selection;
mod source;
mod source_query;
mod tls;
mod transaction_topic;
mod types;
