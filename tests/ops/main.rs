//! Operations: the command line, `check`, the example configuration, systemd units, the
//! Debian package, the minimal runtime root, and the stack's own services. One binary, so
//! `tests/common` is compiled once.

#[path = "../common/mod.rs"]
mod common;

mod check;
mod cli;
mod config_example;
mod deb_package;
mod minimal_root;
mod stack_kafka;
mod stack_mariadb;
mod stack_postgres;
mod stack_registry;
mod systemd_units;
