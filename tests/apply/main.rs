//! `cdc-agent apply` against the real stack: the agent captures a source PostgreSQL table,
//! `apply` keeps a read model in a second database (PostgreSQL, SQLite) and the tests compare
//! both sides column by column; a crash test kills `apply` with SIGKILL mid-stream and checks
//! through an audit trigger on the target that no change was applied twice or lost. One
//! binary, so `tests/common` is compiled once; each test has its own databases and topics.

#[path = "../common/mod.rs"]
mod common;

mod copy;
mod crash;
mod mapping;
mod postgres;
mod sources;
mod sqlite;
mod support;
mod workload;
