//! Ownership of a source: a named server lock, `GET_LOCK('cdc-agent:<source>', 0)`, on a
//! dedicated connection held while the agent runs.
//!
//! The server releases the lock when that connection ends (a crashed agent's socket closes),
//! so a standby takes over without anyone cleaning up. The binlog itself has no owner (any
//! number of readers may dump it), which is why a lock is needed at all: two agents streaming
//! the same source would publish everything twice.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{connect_sql, my_error, MySourceSettings, SourceError};

/// Longest lock name the server accepts.
const MAX_LOCK_NAME: usize = 64;

/// The held lock; released when dropped (its connection closes).
pub struct SourceLock {
    conn: Conn,
    name: String,
}

/// The lock name of a source (shortened with a hash when the source name is long).
pub fn lock_name(source: &str) -> String {
    let name = format!("cdc-agent:{source}");
    if name.len() <= MAX_LOCK_NAME {
        return name;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut cut = MAX_LOCK_NAME - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{h:016x}", &name[..cut])
}

impl SourceLock {
    /// Takes the lock without waiting; [`SourceError::Taken`] when another session holds it.
    pub async fn acquire(settings: &MySourceSettings) -> Result<SourceLock, SourceError> {
        let mut conn = connect_sql(settings).await?;
        let name = lock_name(&settings.source.name);
        let got: Option<Option<i64>> = conn
            .exec_first("SELECT GET_LOCK(?, 0)", (&name,))
            .await
            .map_err(my_error("take the source lock"))?;
        match got.flatten() {
            Some(1) => {
                tracing::info!(source = %settings.source.name, lock = %name, "source lock taken");
                Ok(SourceLock { conn, name })
            }
            _ => {
                let holder: Option<Option<u64>> = conn
                    .exec_first("SELECT IS_USED_LOCK(?)", (&name,))
                    .await
                    .ok();
                let who = holder
                    .flatten()
                    .map(|id| format!(" (connection {id})"))
                    .unwrap_or_default();
                let kill = holder
                    .flatten()
                    .map(|id| format!(", or end that connection with KILL {id};"))
                    .unwrap_or_default();
                Err(SourceError::taken(format!(
                    "the lock `{name}` is held by another session{who}; another agent owns this \
                     source; fix: stop the other agent{kill} or set when_taken = \"standby\" to \
                     wait and take over"
                )))
            }
        }
    }

    /// Whether this session still holds the lock (the connection may have been killed).
    pub async fn check(&mut self) -> Result<(), SourceError> {
        let held: Option<Option<i64>> = self
            .conn
            .exec_first("SELECT IS_USED_LOCK(?) = CONNECTION_ID()", (&self.name,))
            .await
            .map_err(|e| {
                SourceError::transient(format!(
                    "the connection holding the source lock failed ({e}); reconnecting"
                ))
            })?;
        match held.flatten() {
            Some(1) => Ok(()),
            _ => Err(SourceError::transient(format!(
                "the source lock `{}` is no longer held by this agent; starting over",
                self.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_source_names_give_distinct_lock_names_within_the_server_limit() {
        let a = lock_name(&"a".repeat(100));
        let b = lock_name(&format!("{}b", "a".repeat(99)));
        assert!(a.len() <= MAX_LOCK_NAME && b.len() <= MAX_LOCK_NAME);
        assert_ne!(a, b);
        assert_eq!(lock_name("orders"), "cdc-agent:orders");
    }
}
