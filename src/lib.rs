//! cdc-agent: a change-data-capture daemon.
//!
//! ```text
//!  PostgreSQL ──pgoutput──┐                                        ┌─▶ <prefix>.<schema>.<table>  (one topic per table)
//!                         ├─▶ source ─▶ event ─▶ Avro encoder ─▶ Kafka sink
//!  MySQL/MariaDB ─binlog──┘    (positions)     (schema registry)   └─▶ event-store topic (ledger)
//!        ▲                                                                │
//!        └──────────── acknowledge position only after Kafka acked ◀──────┘
//! ```
//!
//! The binary (`src/main.rs`) is a thin shell over [`cli`]; everything else is a library so
//! integration tests and benchmarks drive the same code the daemon runs.

pub mod app;
pub mod apply;
#[cfg(test)]
mod architecture_tests;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod encode;
pub mod error;
pub use cdc_codec::event;
pub mod ledger;
pub mod net;
pub mod ops;
pub mod outbox;
pub mod pipeline;
pub mod publish;
pub mod registry;
pub mod select;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod topics;
