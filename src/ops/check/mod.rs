//! `cdc-agent check`: a preflight of every source, Kafka and the schema registry, before the
//! agent is started (or after a change on the database side).
//!
//! Every check yields one row: PASS, WARN (works, but an operator should know — e.g. WAL
//! retention is unbounded) or FAIL (the agent would stop on it). Every non-PASS row carries the
//! exact SQL statement, server setting or configuration key that fixes it. Checks never change
//! anything on the servers, with two deliberate exceptions that prove a right instead of
//! guessing it from grants: a probe topic is created and deleted, and a transactional producer
//! with a probe id is initialised.

pub mod kafka;
pub mod mysql;
pub mod postgres;
pub mod registry;

use std::fmt;

use crate::config::{Config, SourceKind};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// The prerequisite is met.
    Pass,
    /// Works, but something deserves the operator's attention.
    Warn,
    /// The agent would stop on this.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked: `source demo-pg`, `kafka`, `schema registry`.
    pub target: String,
    /// The prerequisite: `wal_level`, `topic creation`, …
    pub check: String,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The SQL statement, setting or configuration key that fixes a WARN or FAIL.
    pub fix: Option<String>,
}

impl Finding {
    /// A passed check.
    pub fn pass(target: &str, check: &str, detail: impl Into<String>) -> Self {
        Self {
            target: target.to_string(),
            check: check.to_string(),
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A warning with its fix.
    pub fn warn(
        target: &str,
        check: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Self::pass(target, check, detail)
        }
    }

    /// A failure with its fix.
    pub fn fail(
        target: &str,
        check: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Self::pass(target, check, detail)
        }
    }
}

/// Runs every check of the configuration: each source, then Kafka, then the registry.
/// Targets are checked concurrently; rows keep that order.
pub async fn run(cfg: &Config) -> Vec<Finding> {
    let sources = futures_util::future::join_all(cfg.sources.iter().map(|s| async move {
        match s.kind {
            SourceKind::Postgres => postgres::check(s, &cfg.main).await,
            SourceKind::Mysql => mysql::check(s).await,
        }
    }));
    let (sources, kafka, registry) = tokio::join!(sources, kafka::check(cfg), async {
        if cfg.main.schema_registry.url.is_empty() {
            // Every source writes JSON (the configuration checked it).
            Vec::new()
        } else {
            registry::check(&cfg.main.schema_registry).await
        }
    });
    let mut out: Vec<Finding> = sources.into_iter().flatten().collect();
    out.extend(kafka);
    out.extend(registry);
    out
}

/// The worst status of the report (PASS for an empty one).
pub fn worst(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Pass)
}

/// The report as a table: one line per check, the fix indented below each non-PASS row, and a
/// summary line.
pub fn render(findings: &[Finding]) -> String {
    let tw = findings
        .iter()
        .map(|f| f.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let cw = findings
        .iter()
        .map(|f| f.check.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = format!(
        "{:<6} {:<tw$}  {:<cw$}  DETAIL\n",
        "STATUS", "TARGET", "CHECK"
    );
    for f in findings {
        s.push_str(&format!(
            "{:<6} {:<tw$}  {:<cw$}  {}\n",
            f.status.to_string(),
            f.target,
            f.check,
            f.detail
        ));
        if let Some(fix) = &f.fix {
            s.push_str(&format!("{:<6} {:<tw$}  {:<cw$}  fix: {fix}\n", "", "", ""));
        }
    }
    let count = |st| findings.iter().filter(|f| f.status == st).count();
    s.push_str(&format!(
        "{} checks: {} passed, {} warnings, {} failed\n",
        findings.len(),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_fix_under_its_row_and_the_worst_status_decides() {
        let rows = vec![
            Finding::pass("source a", "connect", "PostgreSQL 15"),
            Finding::fail(
                "source a",
                "wal_level",
                "is replica",
                "ALTER SYSTEM SET wal_level = 'logical';",
            ),
            Finding::warn("kafka", "topic deletion", "probe left", "delete it"),
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("STATUS"), "{text}");
        assert!(
            lines[2].starts_with("FAIL") && lines[2].contains("wal_level"),
            "{text}"
        );
        assert!(
            lines[3].trim_start().starts_with("fix: ALTER SYSTEM"),
            "{text}"
        );
        assert!(
            text.ends_with("3 checks: 1 passed, 1 warnings, 1 failed\n"),
            "{text}"
        );
        assert_eq!(worst(&rows), Status::Fail);
        assert_eq!(worst(&rows[..1]), Status::Pass);
    }
}
