//! MySQL/MariaDB source: row-based binlog replication. (Being built: see issue 5.)

pub mod catalog;
pub mod events;
pub mod types;
