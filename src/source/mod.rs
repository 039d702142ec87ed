//! Database sources: each turns a database's change stream into [`crate::event`] events and
//! acknowledges positions back to the database once Kafka holds the events.

pub mod mysql;
pub mod postgres;
pub mod supervise;

/// A source failure, split the way an operator needs it: *definite* failures stop the source
/// and say how to fix the cause; *transient* ones are retried with backoff from the last
/// acknowledged position.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Retrying cannot help: configuration, privileges, prerequisites, incompatible schema.
    #[error("{0}")]
    Definite(String),
    /// Connection loss, server restart, broker or registry unavailable.
    #[error("{0}")]
    Transient(String),
    /// Another agent owns the source (its slot or lock is held). A standby waits; otherwise
    /// the process exits with [`crate::ops::exit::SOURCE_TAKEN`].
    #[error("{0}")]
    Taken(String),
    /// Another agent took over and fenced this one in Kafka; it must stop without writing.
    /// Exits with [`crate::ops::exit::FENCED`].
    #[error("{0}")]
    Fenced(String),
}

impl SourceError {
    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Transient(_))
    }

    /// Maps a tokio-postgres error in the context of `what`: lost connections are transient,
    /// errors the server reports (bad password, missing privilege, …) are definite.
    pub fn sql(what: &'static str) -> impl Fn(tokio_postgres::Error) -> SourceError {
        move |e| {
            let text = format!("{what}: {}", postgres_error_text(&e));
            match e.as_db_error() {
                Some(db) if is_transient_sqlstate(db.code().code()) => SourceError::Transient(text),
                Some(_) => SourceError::Definite(text),
                None => SourceError::Transient(text),
            }
        }
    }
}

/// SQLSTATEs that mean "the server is going away or busy", not "you did something wrong".
fn is_transient_sqlstate(code: &str) -> bool {
    // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
    // 53xxx insufficient resources, 08xxx connection exceptions, 40001 serialization.
    matches!(code, "57P01" | "57P02" | "57P03" | "40001")
        || code.starts_with("53")
        || code.starts_with("08")
}

fn postgres_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(h) = db.hint() {
                s.push_str("; hint: ");
                s.push_str(h);
            }
            s
        }
        None => e.to_string(),
    }
}

impl From<crate::sink::kafka::SinkError> for SourceError {
    fn from(e: crate::sink::kafka::SinkError) -> Self {
        if matches!(e, crate::sink::kafka::SinkError::Fenced(_)) {
            SourceError::Fenced(e.to_string())
        } else if e.is_transient() {
            SourceError::Transient(e.to_string())
        } else {
            SourceError::Definite(e.to_string())
        }
    }
}

impl From<crate::registry::RegistryError> for SourceError {
    fn from(e: crate::registry::RegistryError) -> Self {
        if e.is_transient() {
            SourceError::Transient(e.to_string())
        } else {
            SourceError::Definite(e.to_string())
        }
    }
}
