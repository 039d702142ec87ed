//! `cdc-agent snapshot`: ask a running source for a snapshot of some tables (or to stop, pause
//! or resume one), and show where snapshots stand.
//!
//! Requests travel as signals through the database itself, so they reach whichever agent
//! owns the source, in order with its changes, and survive its restarts: on PostgreSQL a
//! logical decoding message (`pg_logical_emit_message`), on MySQL/MariaDB a row in the
//! source's signal table. Their shapes are Debezium's (`execute-snapshot` with
//! `data-collections` and `additional-conditions`, `stop-snapshot`, `pause-snapshot`,
//! `resume-snapshot`). The status comes from the source's newest checkpoint in Kafka.

use std::fmt::Write as _;

use serde_json::json;

use crate::checkpoint::{self, SnapshotKind};
use crate::config::{Config, SourceConfig, SourceKind};
use crate::pipeline::snapshot::SIGNAL_PREFIX;
use crate::topics;

/// What `cdc-agent snapshot` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Snapshot these tables (`schema.table`), with an optional SQL condition.
    Execute {
        /// Tables.
        tables: Vec<String>,
        /// Extra SQL condition on the rows.
        filter: Option<String>,
    },
    /// Stop the snapshots of these tables (all when empty).
    Stop(Vec<String>),
    /// Pause reading chunks.
    Pause,
    /// Resume reading chunks.
    Resume,
}

impl Request {
    /// The signal's type and data, in Debezium's shapes.
    pub fn signal(&self) -> (&'static str, serde_json::Value) {
        match self {
            Request::Execute { tables, filter } => {
                let mut data = json!({ "data-collections": tables, "type": "incremental" });
                if let Some(f) = filter {
                    data["additional-conditions"] = tables
                        .iter()
                        .map(|t| json!({ "data-collection": t, "filter": f }))
                        .collect();
                }
                ("execute-snapshot", data)
            }
            Request::Stop(tables) if tables.is_empty() => {
                ("stop-snapshot", json!({ "type": "incremental" }))
            }
            Request::Stop(tables) => (
                "stop-snapshot",
                json!({ "data-collections": tables, "type": "incremental" }),
            ),
            Request::Pause => ("pause-snapshot", serde_json::Value::Null),
            Request::Resume => ("resume-snapshot", serde_json::Value::Null),
        }
    }
}

/// The oldest PostgreSQL (`server_version_num`) that takes on-demand snapshots: pgoutput sends
/// logical decoding messages, the signals' and watermarks' carrier, since 14.
pub const ON_DEMAND_MIN_PG_VERSION_NUM: i32 = 140000;

/// Sends `req` to `source` as a signal through its database.
pub async fn send(source: &SourceConfig, cfg: &Config, req: &Request) -> anyhow::Result<()> {
    let (kind, data) = req.signal();
    match source.kind {
        SourceKind::Postgres => {
            let settings =
                crate::source::postgres::PgSourceSettings::new(source.clone(), cfg.main.clone());
            let sql = crate::source::postgres::connect_sql(&settings)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // Before 14, pgoutput does not carry logical decoding messages: the signal would
            // be written and never reach the agent, and neither could its watermarks.
            let (num, version) = crate::source::postgres::setup::server_version(&sql)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if num < ON_DEMAND_MIN_PG_VERSION_NUM {
                anyhow::bail!(
                    "source `{}`: on-demand snapshots need PostgreSQL 14 or later (pgoutput \
                     carries the signals and watermarks, logical decoding messages, since 14) \
                     but the server is PostgreSQL {version}; fix: upgrade the server, or take a \
                     new initial snapshot (a new slot_name starts the source over with one)",
                    source.name
                );
            }
            let message = json!({ "type": kind, "data": data }).to_string();
            sql.execute(
                "SELECT pg_logical_emit_message(true, $1, $2)",
                &[&SIGNAL_PREFIX, &message],
            )
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "source `{}`: cannot send the signal with pg_logical_emit_message: {}; fix: \
                     the source's role needs REPLICATION (ALTER ROLE {} REPLICATION)",
                    source.name,
                    crate::source::postgres::setup::db_message(&e),
                    source.user
                )
            })?;
        }
        SourceKind::Mysql => {
            let data = if data.is_null() {
                String::new()
            } else {
                data.to_string()
            };
            crate::source::mysql::send_signal(source, cfg, kind, &data)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(())
}

/// The snapshot status of `source` from its newest checkpoint, as text lines.
pub fn status(source: &SourceConfig, cfg: &Config) -> anyhow::Result<String> {
    let topic = topics::offsets_topic(&source.topic_prefix);
    let cp = checkpoint::load::<serde_json::Map<String, serde_json::Value>>(
        &cfg.main.kafka,
        &topic,
        &source.name,
    )
    .map_err(|e| anyhow::anyhow!("read the checkpoint of `{}`: {e}", source.name))?;
    Ok(render_status(
        &source.name,
        cp.as_ref().map(|c| (c.snapshot_done, &c.snapshot)),
    ))
}

/// Renders a status; `None` when the source has no checkpoint yet.
pub fn render_status(name: &str, cp: Option<(bool, &checkpoint::SnapshotState)>) -> String {
    let mut out = String::new();
    let Some((initial_done, state)) = cp else {
        let _ = writeln!(
            out,
            "{name}: no checkpoint yet (the source has not committed anything)"
        );
        return out;
    };
    let _ = writeln!(
        out,
        "{name}: initial snapshot {}{}",
        if initial_done { "done" } else { "in progress" },
        if state.paused {
            "; snapshots paused"
        } else {
            ""
        }
    );
    if state.tables.is_empty() {
        let _ = writeln!(out, "  no snapshot in progress");
    }
    for t in &state.tables {
        let pct = if t.done {
            100.0
        } else if t.estimate > 0 {
            (t.rows as f64 * 100.0 / t.estimate as f64).min(99.9)
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "  {:<40} {:<11} {:>12} / ~{:<12} {:>5.1}%  {}{}",
            t.table,
            match t.kind {
                SnapshotKind::Initial => "initial",
                SnapshotKind::Incremental => "incremental",
            },
            t.rows,
            t.estimate,
            pct,
            if t.done { "done" } else { "pending" },
            t.filter
                .as_deref()
                .map(|f| format!(" where {f}"))
                .unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{SnapshotState, TableProgress};

    #[test]
    fn an_execute_request_is_debeziums_execute_snapshot_signal() {
        let (kind, data) = Request::Execute {
            tables: vec!["public.a".into()],
            filter: Some("id > 5".into()),
        }
        .signal();
        assert_eq!(kind, "execute-snapshot");
        assert_eq!(
            data,
            json!({"data-collections": ["public.a"], "type": "incremental",
                   "additional-conditions": [{"data-collection": "public.a", "filter": "id > 5"}]})
        );
        assert_eq!(
            Request::Pause.signal(),
            ("pause-snapshot", serde_json::Value::Null)
        );
    }

    #[test]
    fn the_status_shows_each_table_with_rows_estimate_and_state() {
        let state = SnapshotState {
            tables: vec![TableProgress {
                rows: 500,
                estimate: 1000,
                ..TableProgress::new("public.a", SnapshotKind::Initial, None)
            }],
            paused: true,
            captured: None,
        };
        let text = render_status("pg", Some((false, &state)));
        assert!(
            text.contains("initial snapshot in progress; snapshots paused"),
            "{text}"
        );
        assert!(text.contains("public.a"), "{text}");
        assert!(text.contains("50.0%"), "{text}");
        assert_eq!(
            render_status("pg", None),
            "pg: no checkpoint yet (the source has not committed anything)\n"
        );
    }
}
