//! MySQL/MariaDB source: row-based binlog replication. (Being built: see issue 5.)

pub mod catalog;
pub mod ddl;
pub mod history;
