//! PostgreSQL source: logical replication with the pgoutput plugin.
//!
//! The protocol layers are pure and fuzzable: [`wire`] frames the streaming-replication
//! CopyData messages, [`pgoutput`] decodes the logical messages inside them.

pub mod pgoutput;
pub mod wire;
