//! Process exit codes. They are part of the interface: systemd units list some of them in
//! `RestartPreventExitStatus=`, so a number never changes meaning once released.

/// Clean exit: graceful shutdown finished, every acknowledged event is in Kafka.
pub const OK: u8 = 0;
/// A definite runtime failure (the log says what and how to fix it). Restarting may help
/// after the operator fixed the cause.
pub const FAILURE: u8 = 1;
/// The configuration is invalid; nothing was started. Restarting cannot help.
pub const CONFIG: u8 = 2;
