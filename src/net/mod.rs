//! Network plumbing shared by the sources: TLS for database connections, and what is done
//! once per connection target.

pub mod mysql;
pub mod once;
pub mod tls;
