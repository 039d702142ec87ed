//! MySQL/MariaDB row binlogs: events ([`events`]), row images and values ([`types`]), the
//! table definitions they are decoded with ([`catalog`]), the DDL that changes those
//! ([`ddl`]), GTID states and sets ([`gtid`]), and the error all decoders share ([`error`]).

pub mod catalog;
pub mod ddl;
pub mod error;
pub mod events;
pub mod gtid;
pub mod types;
