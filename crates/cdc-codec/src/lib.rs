//! cdc-codec: the sans-io half of cdc-agent.
//!
//! Everything here turns bytes a database sent into values, and nothing more: no sockets, no
//! runtime, no clocks, no logging. That keeps the code the daemon runs on untrusted network
//! bytes fuzzable as is (`fuzz/`), and the dependency list of this crate makes the rule
//! visible: no tokio, no database, Kafka or HTTP client (a unit test below names any that
//! creeps in).
//!
//! - [`event`]: the change events every source produces and the encoder consumes.
//! - [`postgres`]: replication frames, pgoutput messages and PostgreSQL value text.
//! - [`mysql`]: binlog events, row images, binary JSON, DDL and GTID sets of MySQL/MariaDB.
//! - [`civil`], [`lsn`], [`json`]: date math, WAL positions and JSON string escaping shared by
//!   the decoders and the agent.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod civil;
pub mod event;
pub mod json;
pub mod lsn;
pub mod mysql;
pub mod postgres;

#[cfg(test)]
mod purity {
    /// Client libraries and runtimes the codec must never depend on: each would bring I/O into
    /// code that is meant to be fed bytes only.
    const FORBIDDEN: &[&str] = &[
        "tokio",
        "rdkafka",
        "mysql_async",
        "mysql_common",
        "tokio-postgres",
        "reqwest",
    ];

    /// The forbidden dependencies `manifest` lists, under any `*dependencies` table, by name
    /// or by `package = ".."` rename.
    fn forbidden_in(manifest: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut in_deps = false;
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                // [dependencies], [dev-dependencies], [build-dependencies], [target.'..'.dependencies]
                in_deps = line.trim_end_matches(']').ends_with("dependencies");
                continue;
            }
            if !in_deps || line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name = line
                .split(['=', '.'])
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"');
            let package = line
                .split("package")
                .nth(1)
                .and_then(|rest| rest.split('"').nth(1));
            for dep in [Some(name), package].into_iter().flatten() {
                let normal = dep.replace('_', "-");
                if FORBIDDEN.iter().any(|f| f.replace('_', "-") == normal) {
                    found.push(dep.to_owned());
                }
            }
        }
        found
    }

    #[test]
    fn the_codec_depends_on_no_runtime_or_client_library() {
        let found = forbidden_in(include_str!("../Cargo.toml"));
        assert!(
            found.is_empty(),
            "crates/cdc-codec/Cargo.toml depends on {found:?}: the codec must stay free of \
             runtimes and client libraries (tokio, rdkafka, mysql_async, mysql_common, \
             tokio-postgres, reqwest)"
        );
    }

    #[test]
    fn the_purity_check_names_a_forbidden_dependency_however_it_is_written() {
        let manifest = r#"
[package]
name = "tokio"

[dependencies]
serde = "1"
tokio = { version = "1" }
pg = { version = "0.7", package = "tokio-postgres" }

[dev-dependencies]
mysql_async = "0.37"

[target.'cfg(unix)'.dependencies]
rdkafka.version = "0.39"
"#;
        assert_eq!(
            forbidden_in(manifest),
            ["tokio", "tokio-postgres", "mysql_async", "rdkafka"]
        );
    }
}
