//! Process exit codes. They are part of the interface: systemd units list some of them in
//! `RestartPreventExitStatus=`, so a number never changes meaning once released.

/// Clean exit: graceful shutdown finished, every acknowledged event is in Kafka.
pub const OK: u8 = 0;
/// A definite runtime failure (the log says what and how to fix it). Restarting may help
/// after the operator fixed the cause.
pub const FAILURE: u8 = 1;
/// The configuration is invalid; nothing was started. Restarting cannot help.
pub const CONFIG: u8 = 2;
/// Another agent owns the source (replication slot active, lock held) and this one is not
/// configured as a standby. Listed in `RestartPreventExitStatus=`: restarting would only
/// fight the owner.
pub const SOURCE_TAKEN: u8 = 3;
/// Kafka fenced this agent: another agent took over the source's transactional id while
/// this one was paused. Nothing more was written. Listed in `RestartPreventExitStatus=`.
pub const FENCED: u8 = 4;
