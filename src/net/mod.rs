//! Network plumbing shared by the sources: TLS for database connections.

pub mod mysql;
pub mod tls;
