//! Things done once per process and connection target (a warning, a login probe): the
//! supervisor reconnects after every failure, and what was said or learnt about a target on
//! the first connection holds for the next ones.

use std::sync::Mutex;

/// The targets a once-per-target action was done for. A short list: one entry per distinct
/// server/database/role of the configuration.
pub struct Once {
    done: Mutex<Vec<String>>,
}

impl Once {
    /// An empty set, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            done: Mutex::new(Vec::new()),
        }
    }

    /// Whether the action was done for `key`.
    pub fn done(&self, key: &str) -> bool {
        self.lock().iter().any(|k| k == key)
    }

    /// Records that the action was done for `key`; `false` when it already was.
    pub fn mark(&self, key: &str) -> bool {
        let mut done = self.lock();
        if done.iter().any(|k| k == key) {
            return false;
        }
        done.push(key.to_string());
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A panic while holding the lock leaves a valid list behind.
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Once {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_marked_once_and_stays_done() {
        let once = Once::new();
        assert!(!once.done("a"));
        assert!(once.mark("a"));
        assert!(!once.mark("a"));
        assert!(once.done("a"));
        assert!(!once.done("b"));
    }
}
