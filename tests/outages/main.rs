//! Tests that stop and start a service of the shared stack (PostgreSQL, Kafka, the registry)
//! while the agent runs. Every test here is `#[serial(stack)]`: cargo runs test binaries one
//! after another, so no test of another binary runs during an outage, and within this binary
//! only one test at a time touches the stack. Each restarts its service even when it fails.

#[path = "../common/mod.rs"]
mod common;

mod ops_http;
mod ops_notify;
mod postgres_kafka;
mod postgres_registry;
