//! A configuration error: where, which key, what is wrong, how to fix it.

use std::fmt;

/// A configuration error: where it is, which key, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {}{problem}; fix: {fix}", key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (or environment variable family) the bad value came from.
    pub origin: String,
    /// Dotted key path, when the error concerns one key.
    pub key: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(
        origin: impl fmt::Display,
        key: Option<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            origin: origin.to_string(),
            key,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
