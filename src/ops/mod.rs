//! Operating the daemon: logging, exit codes, and (later) health, metrics and systemd.

pub mod check;
pub mod exit;
pub mod logging;
