//! Why `apply` stopped: definite (the operator repairs it) or transient (retried).

/// Why applying stopped.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApplyError {
    /// Whether starting over may succeed.
    pub transient: bool,
    /// What happened (and, when definite, the fix).
    pub message: String,
}

impl ApplyError {
    /// A failure only the operator can repair.
    pub fn definite(message: String) -> Self {
        Self {
            transient: false,
            message,
        }
    }

    /// A failure worth a retry.
    pub fn transient(message: String) -> Self {
        Self {
            transient: true,
            message,
        }
    }

    /// The same error, with where it happened in front.
    pub fn context(self, what: String) -> Self {
        Self {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }
}
