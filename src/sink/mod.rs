//! Where events go. Kafka is the only sink: table topics plus the event-store mirror.

pub mod kafka;
pub mod read;
