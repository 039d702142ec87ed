//! The worked examples of `examples/` against the real stack, run from their own code (the
//! example crates are libraries with thin binaries): each test builds what the example's
//! `run` script builds, with a fresh database and unique topics, and checks what a reader
//! of the example would see.

#[path = "../common/mod.rs"]
mod common;

mod cqrs;
