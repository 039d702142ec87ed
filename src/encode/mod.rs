//! Encoding of [`crate::event::ChangeEvent`]s into the bytes that go to Kafka.
//!
//! Consumers built for Debezium 3.x with Confluent's `AvroConverter` must read our topics
//! unchanged, so this module reproduces two things exactly: the Avro schemas that Connect's
//! `AvroData` derives from Debezium's Connect schemas (names, `connect.*` properties, unions,
//! defaults, field order), and the Confluent wire format (magic byte, schema id, Avro binary).
//!
//! [`TableCodec`] is built once per table (and rebuilt when the table's shape changes); it
//! holds the schema JSON to register and precomputed per-column encoders, so encoding an
//! event is a straight walk over its datums into the output buffer. See
//! `docs/decisions/0003-avro-encoding.md` for why the binary encoding is hand-written.

#![warn(missing_docs)]

pub mod avro;

#[cfg(test)]
mod tests;

pub use avro::{
    CodecOptions, ConnectorKind, EncodeError, TableCodec, DEFAULT_SOURCE_VERSION,
    DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER, MAGIC_BYTE,
};
