//! PostgreSQL logical replication: the walsender's frames ([`wire`]), the pgoutput messages
//! inside them ([`pgoutput`]) and the text form of column values ([`types`]).

pub mod pgoutput;
pub mod types;
pub mod wire;
