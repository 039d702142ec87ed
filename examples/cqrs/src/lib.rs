//! The pieces of the CQRS example, as a library so that its two binaries stay thin and the
//! repository's test suite can run the same code against the real stack:
//!
//! - [`query`]: the read side, an HTTP service answering from the read model that
//!   `cdc-agent apply` keeps up to date;
//! - [`notifier`]: business logic on events, a Kafka consumer of the `orders` table topic that
//!   publishes a notification when an order is shipped, exactly once;
//! - [`avro`]: decoding cdc-agent's Confluent-framed Avro by the writer schema's id.

pub mod avro;
pub mod notifier;
pub mod query;
