//! Delivery to Kafka and the registry: exactly-once through crash loops (both sources),
//! partial-transaction resume and takeover, SASL, registry authentication, the ledger tools and
//! Confluent's own deserializer. One binary, so `tests/common` is compiled once; its tests run
//! in parallel, so each makes its own database, slot and topics.

#[path = "../common/mod.rs"]
mod common;

mod confluent_deserializer;
mod crash_loop;
mod kafka_sasl;
mod ledger_tools;
mod postgres_partial_resume;
mod postgres_takeover;
mod registry_auth;
