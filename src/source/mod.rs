//! Database sources: each turns a database's change stream into [`crate`] events and
//! acknowledges positions back to the database once Kafka holds the events.

pub mod postgres;
