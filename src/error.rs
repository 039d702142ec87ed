//! The error a source stops or retries with.
//!
//! It sits at the bottom of the crate's layering (it names no other module of the crate) so
//! that sources, the pipeline and ops can all use it without depending on one another. The
//! conversions from the sink's and the registry's errors live with the sources
//! ([`crate::source`]), which sit above both.

use std::error::Error as StdError;
use std::fmt;

/// The underlying error, kept for [`std::error::Error::source`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a [`SourceError`] concerns: the system the source waits for while it retries, and the
/// one an operator looks at when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// The source database (PostgreSQL, MySQL/MariaDB): its connection, privileges, slot,
    /// binlog or catalog.
    Database,
    /// The Kafka brokers: producing, transactions, topics, the offsets topic.
    Kafka,
    /// The schema registry.
    Registry,
    /// Nothing outside the agent: its configuration or its own state. Nothing to wait for.
    Configuration,
}

impl Dependency {
    /// A stable, label-safe name (`database`, `kafka`, `registry`, `configuration`).
    pub fn name(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::Kafka => "kafka",
            Dependency::Registry => "registry",
            Dependency::Configuration => "configuration",
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a [`SourceError`] is handled, without its detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`SourceError::Definite`].
    Definite,
    /// See [`SourceError::Transient`].
    Transient,
    /// See [`SourceError::Taken`].
    Taken,
    /// See [`SourceError::Fenced`].
    Fenced,
}

/// What a [`SourceError`] says and concerns. Displays as its message alone: the message is what
/// operators and tests read, and already words the cause.
#[derive(Debug)]
pub struct Detail {
    message: String,
    dependency: Dependency,
    source: Option<BoxError>,
}

impl Detail {
    /// A message about `dependency`, with no underlying error.
    pub fn new(message: impl Into<String>, dependency: Dependency) -> Self {
        Self {
            message: message.into(),
            dependency,
            source: None,
        }
    }

    /// The message, as displayed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The dependency it concerns.
    pub fn dependency(&self) -> Dependency {
        self.dependency
    }

    /// The underlying error, when there is one.
    pub fn cause(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

/// Reads as its message, as the `String` it replaced did (`why.contains(…)`).
impl std::ops::Deref for Detail {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A source failure, split the way an operator needs it: *definite* failures stop the source
/// and say how to fix the cause; *transient* ones are retried with backoff from the last
/// acknowledged position. Each carries the [`Dependency`] it concerns (status and `/readyz`
/// read it to say what a retrying source waits for) and, where there is one, the underlying
/// error as [`std::error::Error::source`].
#[derive(Debug)]
pub enum SourceError {
    /// Retrying cannot help: configuration, privileges, prerequisites, incompatible schema.
    Definite(Detail),
    /// Connection loss, server restart, broker or registry unavailable.
    Transient(Detail),
    /// Another agent owns the source (its slot or lock is held). A standby waits; otherwise
    /// the process exits with [`crate::ops::exit::SOURCE_TAKEN`].
    Taken(Detail),
    /// Another agent took over and fenced this one in Kafka; it must stop without writing.
    /// Exits with [`crate::ops::exit::FENCED`].
    Fenced(Detail),
}

impl SourceError {
    /// A definite failure of the source database (the usual default; name another dependency
    /// with [`SourceError::concerning`]).
    pub fn definite(message: String) -> Self {
        SourceError::Definite(Detail::new(message, Dependency::Database))
    }

    /// A transient failure of the source database (the usual default; name another
    /// dependency with [`SourceError::concerning`]).
    pub fn transient(message: String) -> Self {
        SourceError::Transient(Detail::new(message, Dependency::Database))
    }

    /// Another agent holds the source's slot or lock in the database.
    pub fn taken(message: String) -> Self {
        SourceError::Taken(Detail::new(message, Dependency::Database))
    }

    /// Another agent fenced this one in Kafka.
    pub fn fenced(message: String) -> Self {
        SourceError::Fenced(Detail::new(message, Dependency::Kafka))
    }

    /// An error of `kind` about `dependency`.
    pub fn new(kind: ErrorKind, message: impl Into<String>, dependency: Dependency) -> Self {
        let detail = Detail::new(message, dependency);
        match kind {
            ErrorKind::Definite => SourceError::Definite(detail),
            ErrorKind::Transient => SourceError::Transient(detail),
            ErrorKind::Taken => SourceError::Taken(detail),
            ErrorKind::Fenced => SourceError::Fenced(detail),
        }
    }

    /// The same error, about `dependency` instead.
    pub fn concerning(mut self, dependency: Dependency) -> Self {
        self.detail_mut().dependency = dependency;
        self
    }

    /// The same error, keeping `cause` as its [`std::error::Error::source`]. The message is
    /// unchanged: it is expected to word the cause already.
    pub fn caused_by(mut self, cause: impl Into<BoxError>) -> Self {
        self.detail_mut().source = Some(cause.into());
        self
    }

    /// How it is handled.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Definite(_) => ErrorKind::Definite,
            SourceError::Transient(_) => ErrorKind::Transient,
            SourceError::Taken(_) => ErrorKind::Taken,
            SourceError::Fenced(_) => ErrorKind::Fenced,
        }
    }

    /// What it says and concerns.
    pub fn detail(&self) -> &Detail {
        match self {
            SourceError::Definite(d)
            | SourceError::Transient(d)
            | SourceError::Taken(d)
            | SourceError::Fenced(d) => d,
        }
    }

    fn detail_mut(&mut self) -> &mut Detail {
        match self {
            SourceError::Definite(d)
            | SourceError::Transient(d)
            | SourceError::Taken(d)
            | SourceError::Fenced(d) => d,
        }
    }

    /// The dependency it concerns.
    pub fn dependency(&self) -> Dependency {
        self.detail().dependency
    }

    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Transient(_))
    }

    /// Maps a tokio-postgres error in the context of `what`: lost connections are transient,
    /// errors the server reports (bad password, missing privilege, …) are definite.
    pub fn sql(what: &'static str) -> impl Fn(tokio_postgres::Error) -> SourceError {
        move |e| {
            let text = format!("{what}: {}", postgres_error_text(&e));
            let kind = match e.as_db_error() {
                Some(db) if is_transient_sqlstate(db.code().code()) => ErrorKind::Transient,
                Some(_) => ErrorKind::Definite,
                None => ErrorKind::Transient,
            };
            SourceError::new(kind, text, Dependency::Database).caused_by(e)
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail().message)
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self.detail().source.as_deref() {
            Some(e) => Some(e),
            None => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_displayed_alone_and_the_cause_is_kept_as_source() {
        let io = std::io::Error::other("connection reset");
        let e = SourceError::transient("read binlog: connection reset".into()).caused_by(io);
        assert_eq!(e.to_string(), "read binlog: connection reset");
        assert_eq!(e.source().unwrap().to_string(), "connection reset");
        assert_eq!(e.kind(), ErrorKind::Transient);
    }

    #[test]
    fn the_plain_constructors_default_to_the_database_and_fencing_to_kafka() {
        assert_eq!(
            SourceError::definite("x".into()).dependency(),
            Dependency::Database
        );
        assert_eq!(
            SourceError::transient("x".into()).dependency(),
            Dependency::Database
        );
        assert_eq!(
            SourceError::taken("x".into()).dependency(),
            Dependency::Database
        );
        assert_eq!(
            SourceError::fenced("x".into()).dependency(),
            Dependency::Kafka
        );
        let e = SourceError::definite("bad file".into()).concerning(Dependency::Configuration);
        assert_eq!(
            (e.kind(), e.dependency()),
            (ErrorKind::Definite, Dependency::Configuration)
        );
    }
}
