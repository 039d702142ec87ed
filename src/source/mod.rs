//! Database sources: each turns a database's change stream into [`crate::event`] events and
//! acknowledges positions back to the database once Kafka holds the events.

pub mod mysql;
pub mod postgres;
pub mod silence;
pub mod supervise;

use crate::error::ErrorKind;
pub use crate::error::{Dependency, SourceError};

impl From<crate::sink::kafka::SinkError> for SourceError {
    fn from(e: crate::sink::kafka::SinkError) -> Self {
        let kind = if matches!(e, crate::sink::kafka::SinkError::Fenced(_)) {
            ErrorKind::Fenced
        } else if e.is_transient() {
            ErrorKind::Transient
        } else {
            ErrorKind::Definite
        };
        SourceError::new(kind, e.to_string(), Dependency::Kafka).caused_by(e)
    }
}

impl From<crate::registry::RegistryError> for SourceError {
    fn from(e: crate::registry::RegistryError) -> Self {
        let kind = if e.is_transient() {
            ErrorKind::Transient
        } else {
            ErrorKind::Definite
        };
        SourceError::new(kind, e.to_string(), Dependency::Registry).caused_by(e)
    }
}

impl SourceError {
    /// A schema registry failure in the context of `what` (`table public.t`): transient when
    /// the registry is unavailable, definite otherwise.
    pub fn registry_in(what: impl std::fmt::Display, e: crate::registry::RegistryError) -> Self {
        let kind = if e.is_transient() {
            ErrorKind::Transient
        } else {
            ErrorKind::Definite
        };
        SourceError::new(kind, format!("{what}: {e}"), Dependency::Registry).caused_by(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_sink_error_concerns_kafka_and_keeps_its_kind_and_cause() {
        use crate::sink::kafka::SinkError;
        let e = SourceError::from(SinkError::Aborted("commit transaction: timed out".into()));
        assert_eq!(
            (e.kind(), e.dependency()),
            (ErrorKind::Transient, Dependency::Kafka)
        );
        assert_eq!(
            e.to_string(),
            "kafka transaction aborted: commit transaction: timed out"
        );
        assert!(e.source().is_some());
        let e = SourceError::from(SinkError::Fenced("txn-1".into()));
        assert_eq!(
            (e.kind(), e.dependency()),
            (ErrorKind::Fenced, Dependency::Kafka)
        );
    }

    #[test]
    fn a_registry_error_concerns_the_registry_with_or_without_context() {
        use crate::registry::RegistryError;
        let e = SourceError::from(RegistryError::Unavailable("http 503".into()));
        assert_eq!(
            (e.kind(), e.dependency()),
            (ErrorKind::Transient, Dependency::Registry)
        );
        let e = SourceError::registry_in(
            "table public.t",
            RegistryError::Unavailable("http 503".into()),
        );
        assert_eq!(
            e.to_string(),
            "table public.t: schema registry unavailable: http 503"
        );
        assert_eq!(
            (e.kind(), e.dependency()),
            (ErrorKind::Transient, Dependency::Registry)
        );
        assert!(e.source().is_some());
    }
}
