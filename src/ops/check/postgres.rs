//! Preflight of a PostgreSQL source: connection, `wal_level`, the REPLICATION attribute,
//! free slots and WAL senders, WAL retention of slots, the publication, replica identities
//! and SELECT on the captured tables. The prerequisite queries the agent runs at start are
//! reused from [`crate::source::postgres::setup`].

use tokio_postgres::Client;

use super::Finding;
use crate::config::{MainConfig, SnapshotMode, SourceConfig};
use crate::source::postgres::replication::ReplicationClient;
use crate::source::postgres::setup;
use crate::source::postgres::{connect_sql, PgSourceSettings};

/// Tables named in one row before "and N more".
const LIST_LIMIT: usize = 10;

/// Checks one PostgreSQL source.
pub async fn check(src: &SourceConfig, main: &MainConfig) -> Vec<Finding> {
    let settings = PgSourceSettings::new(src.clone(), main.clone());
    let target = format!("source {}", src.name);
    let mut out = Vec::new();
    let sql = match connect_sql(&settings).await {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding::fail(
                &target,
                "connect",
                format!("{}:{} as {}: {e}", src.host, src.port(), src.user),
                format!(
                    "check host, port, user, password and database in {}; pg_hba.conf must \
                     allow `host {} {} <agent address>/32 scram-sha-256` and the same line \
                     for `replication` (docs/postgres-setup.md)",
                    src.file.display(),
                    src.database.as_deref().unwrap_or("postgres"),
                    src.user
                ),
            ));
            return out;
        }
    };
    if let Err(e) = checks(&sql, &settings, &target, &mut out).await {
        out.push(Finding::fail(
            &target,
            "catalog query",
            e.to_string(),
            "the role needs to read pg_catalog (any role can, unless revoked)",
        ));
    }
    out
}

async fn checks(
    sql: &Client,
    settings: &PgSourceSettings,
    target: &str,
    out: &mut Vec<Finding>,
) -> Result<(), crate::source::SourceError> {
    let src = &settings.source;
    let (version_num, version) = setup::server_version(sql).await?;
    out.push(Finding::pass(
        target,
        "connect",
        format!(
            "PostgreSQL {version} at {}:{} as {}",
            src.host,
            src.port(),
            src.user
        ),
    ));
    if let Some(why) = setup::unsupported_version(version_num, &version) {
        out.push(Finding::fail(
            target,
            "server version",
            why,
            "upgrade the server to PostgreSQL 12 or later",
        ));
    }
    if src.postgres.as_ref().is_some_and(|p| p.failover_slot) && version_num < 170000 {
        out.push(Finding::fail(
            target,
            "failover_slot",
            format!("failover slots are new in PostgreSQL 17; the server is {version}"),
            "set postgres.failover_slot = false, or upgrade the server to PostgreSQL 17",
        ));
    }

    let wal_level = setup::wal_level(sql).await?;
    out.push(if wal_level == "logical" {
        Finding::pass(target, "wal_level", "logical")
    } else {
        Finding::fail(
            target,
            "wal_level",
            format!("is `{wal_level}`, logical decoding needs `logical`"),
            setup::WAL_LEVEL_FIX,
        )
    });

    let (user, can_replicate, superuser) = setup::role_attributes(sql).await?;
    out.push(if can_replicate {
        Finding::pass(
            target,
            "REPLICATION attribute",
            format!(
                "role {user} may replicate{}",
                if superuser { " (superuser)" } else { "" }
            ),
        )
    } else {
        Finding::fail(
            target,
            "REPLICATION attribute",
            format!("role {user} lacks REPLICATION"),
            format!("ALTER ROLE {} REPLICATION;", setup::quote_ident(&user)),
        )
    });

    slots_and_senders(sql, settings, target, out).await?;
    if can_replicate {
        out.push(replication_connection(settings, &user, target).await);
    }
    wal_retention(sql, target, out).await?;

    let tables = src
        .postgres
        .as_ref()
        .map(|p| p.tables.clone())
        .unwrap_or_default();
    let publication = &settings.publication;
    let exists = setup::publication_exists(sql, publication).await?;
    let candidates: Vec<(String, String)> = if exists {
        setup::publication_tables(sql, publication).await?
    } else {
        would_be_published(sql, &tables).await?
    };
    if exists {
        out.push(if candidates.is_empty() {
            Finding::warn(
                target,
                "publication",
                format!("`{publication}` exists but publishes no table"),
                format!(
                    "ALTER PUBLICATION {} ADD TABLE <schema.table>;",
                    setup::quote_ident(publication)
                ),
            )
        } else {
            Finding::pass(
                target,
                "publication",
                format!("`{publication}` publishes {} table(s)", candidates.len()),
            )
        });
    } else {
        let via_root = src
            .postgres
            .as_ref()
            .is_some_and(|p| p.publish_via_partition_root);
        let stmt = setup::create_publication_sql(publication, &tables, via_root);
        let can_create = superuser || (!tables.is_empty() && owns_all(sql, &candidates).await?);
        out.push(if can_create {
            Finding::pass(
                target,
                "publication",
                format!("`{publication}` is missing; the agent creates it at start: {stmt}"),
            )
        } else {
            let who = if tables.is_empty() {
                "a superuser (FOR ALL TABLES needs one)"
            } else {
                "a superuser or the tables' owner"
            };
            Finding::fail(
                target,
                "publication",
                format!("`{publication}` is missing and role {user} cannot create it"),
                format!("have {who} run: {stmt};"),
            )
        });
    }

    // Tables that cannot identify their rows: the agent refuses to start on them.
    let no_identity = if exists {
        setup::tables_without_identity(sql, publication).await?
    } else {
        filter_tables(sql, &candidates, NO_IDENTITY_PREDICATE).await?
    };
    out.push(match no_identity.first() {
        None => Finding::pass(
            target,
            "replica identity",
            "every captured table has a key or replica identity",
        ),
        Some(first) => Finding::fail(
            target,
            "replica identity",
            format!(
                "no primary key and no usable replica identity: {}",
                list(&no_identity)
            ),
            if no_identity.len() == 1 {
                setup::replica_identity_fix(first)
            } else {
                format!(
                    "for each table: {}",
                    no_identity
                        .iter()
                        .take(LIST_LIMIT)
                        .map(|t| format!("ALTER TABLE {t} REPLICA IDENTITY FULL;"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            },
        ),
    });

    // Unchanged TOASTed values are not sent under REPLICA IDENTITY DEFAULT.
    let toast = filter_tables(sql, &candidates, TOAST_PREDICATE).await?;
    out.push(if toast.is_empty() {
        Finding::pass(
            target,
            "TOAST columns",
            "no captured table can lose unchanged TOASTed values",
        )
    } else {
        Finding::warn(
            target,
            "TOAST columns",
            format!(
                "unchanged large values arrive as `{}` (REPLICA IDENTITY DEFAULT): {}",
                src.unavailable_value_placeholder,
                list(&toast)
            ),
            format!(
                "if consumers need every value: {}",
                toast
                    .iter()
                    .take(LIST_LIMIT)
                    .map(|t| format!("ALTER TABLE {t} REPLICA IDENTITY FULL;"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
    });

    if let Some((schema, table)) = &settings.signal_table {
        let publication = setup::publication_exists(sql, &settings.publication)
            .await?
            .then_some(settings.publication.as_str());
        out.push(
            match setup::check_signal_table(sql, publication, schema, table).await {
                Ok(()) => Finding::pass(
                    target,
                    "signal table",
                    format!("{schema}.{table} has Debezium's shape and reaches the agent"),
                ),
                Err(e) if !e.is_transient() => {
                    let text = e.to_string();
                    let (what, fix) = text.split_once("; fix: ").unwrap_or((&text, ""));
                    Finding::fail(target, "signal table", what, fix.to_string())
                }
                Err(e) => return Err(e),
            },
        );
    }

    let no_select = filter_tables(sql, &candidates, NO_SELECT_PREDICATE).await?;
    out.push(if no_select.is_empty() {
        Finding::pass(
            target,
            "SELECT privilege",
            format!("role {user} can read every captured table"),
        )
    } else {
        let grant = format!(
            "GRANT SELECT ON {} TO {};",
            no_select.join(", "),
            setup::quote_ident(&user)
        );
        if src.snapshot.mode == SnapshotMode::Never {
            Finding::warn(
                target,
                "SELECT privilege",
                format!(
                    "role {user} cannot read {} (not needed without a snapshot)",
                    list(&no_select)
                ),
                grant,
            )
        } else {
            Finding::fail(
                target,
                "SELECT privilege",
                format!(
                    "role {user} cannot read {} for the snapshot",
                    list(&no_select)
                ),
                grant,
            )
        }
    });
    Ok(())
}

async fn slots_and_senders(
    sql: &Client,
    settings: &PgSourceSettings,
    target: &str,
    out: &mut Vec<Finding>,
) -> Result<(), crate::source::SourceError> {
    let row = sql
        .query_one(
            "SELECT current_setting('max_replication_slots')::int, \
                    (SELECT count(*) FROM pg_replication_slots)::int, \
                    current_setting('max_wal_senders')::int, \
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int",
            &[],
        )
        .await
        .map_err(crate::source::SourceError::sql(
            "count slots and WAL senders",
        ))?;
    let (max_slots, used_slots, max_senders, used_senders): (i32, i32, i32, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let slot = &settings.slot;
    let state = setup::slot_state(sql, slot).await?;
    match &state {
        setup::SlotState::Present {
            active_pid: Some(pid),
            ..
        } => out.push(Finding::warn(
            target,
            "replication slot",
            format!(
                "`{slot}` exists and is in use by backend {pid}: another agent streams this source"
            ),
            format!(
                "stop the other agent, or set when_taken = \"standby\" in {} to wait for it",
                settings.source.file.display()
            ),
        )),
        setup::SlotState::Present {
            invalidated: Some(reason),
            ..
        } => out.push(Finding::fail(
            target,
            "replication slot",
            format!("`{slot}` was invalidated by the server: {reason}"),
            format!(
                "set on_missing_position = \"snapshot\" in {} to drop it and snapshot again \
                 (accepting the gap), and raise max_slot_wal_keep_size",
                settings.source.file.display()
            ),
        )),
        setup::SlotState::Present { .. } => out.push(Finding::pass(
            target,
            "replication slot",
            format!("`{slot}` exists (the agent resumes from it)"),
        )),
        setup::SlotState::Missing if used_slots >= max_slots => out.push(Finding::fail(
            target,
            "replication slot",
            format!("`{slot}` is missing and all {max_slots} slots are used"),
            format!(
                "drop an unused slot (SELECT pg_drop_replication_slot('<name>');) or \
                 ALTER SYSTEM SET max_replication_slots = {}; then restart PostgreSQL",
                max_slots + 1
            ),
        )),
        setup::SlotState::Missing => out.push(Finding::pass(
            target,
            "replication slot",
            format!("`{slot}` will be created ({used_slots} of {max_slots} slots used)"),
        )),
    }
    let ours_active = matches!(
        state,
        setup::SlotState::Present {
            active_pid: Some(_),
            ..
        }
    );
    out.push(if used_senders >= max_senders && !ours_active {
        Finding::fail(
            target,
            "WAL senders",
            format!("all {max_senders} WAL senders are busy"),
            format!(
                "ALTER SYSTEM SET max_wal_senders = {}; then restart PostgreSQL",
                max_senders + 1
            ),
        )
    } else {
        Finding::pass(
            target,
            "WAL senders",
            format!("{used_senders} of {max_senders} in use"),
        )
    });
    Ok(())
}

/// Opens a replication connection as the agent does: pg_hba.conf needs a `replication` line
/// of its own, which a working SQL connection does not prove.
async fn replication_connection(settings: &PgSourceSettings, user: &str, target: &str) -> Finding {
    let config = settings.replication_config();
    let result = match ReplicationClient::connect(&config).await {
        Ok(mut client) => client.identify_system().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Finding::pass(target, "replication connection", "IDENTIFY_SYSTEM answered"),
        Err(e) => Finding::fail(
            target,
            "replication connection",
            e.to_string(),
            format!(
                "pg_hba.conf needs `host replication {user} <agent address>/32 scram-sha-256` \
                 (a line for the database does not cover replication), then SELECT pg_reload_conf();"
            ),
        ),
    }
}

async fn wal_retention(
    sql: &Client,
    target: &str,
    out: &mut Vec<Finding>,
) -> Result<(), crate::source::SourceError> {
    let row = sql
        .query_opt(
            "SELECT setting, unit FROM pg_settings WHERE name = 'max_slot_wal_keep_size'",
            &[],
        )
        .await
        .map_err(crate::source::SourceError::sql(
            "read max_slot_wal_keep_size",
        ))?;
    let Some(row) = row else {
        out.push(Finding::warn(
            target,
            "max_slot_wal_keep_size",
            "not available before PostgreSQL 13: a stopped agent's slot keeps WAL without bound",
            "watch pg_replication_slots and disk space, or upgrade PostgreSQL",
        ));
        return Ok(());
    };
    let (setting, unit): (String, Option<String>) = (row.get(0), row.get(1));
    // -1 (the default) keeps WAL for a stopped agent until the disk is full: the database,
    // not only CDC, then stops. A bound trades that for a re-snapshot when the agent was away
    // too long, which the operator should choose knowingly.
    out.push(if setting == "-1" {
        Finding::warn(
            target,
            "max_slot_wal_keep_size",
            "-1: while the agent is stopped its slot keeps WAL until the disk is full",
            "ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf(); \
             (size it for the longest agent outage to bridge; a slot that falls further \
             behind is invalidated and the source must snapshot again)",
        )
    } else {
        Finding::pass(
            target,
            "max_slot_wal_keep_size",
            format!(
                "{setting}{} of WAL kept for a lagging slot",
                unit.unwrap_or_default()
            ),
        )
    });
    Ok(())
}

/// Per-table predicates over `pg_class c` for [`filter_tables`].
const NO_IDENTITY_PREDICATE: &str = "c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS \
     (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))";
const TOAST_PREDICATE: &str = "c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_attribute a \
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attstorage <> 'p')";
const NO_SELECT_PREDICATE: &str = "NOT has_table_privilege(c.oid, 'SELECT')";

/// The quoted names of `tables` for which `predicate` (over `pg_class c`) holds.
async fn filter_tables(
    sql: &Client,
    tables: &[(String, String)],
    predicate: &str,
) -> Result<Vec<String>, crate::source::SourceError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let (schemas, names): (Vec<&str>, Vec<&str>) =
        tables.iter().map(|(s, t)| (s.as_str(), t.as_str())).unzip();
    let rows = sql
        .query(
            &format!(
                "SELECT format('%I.%I', n.nspname, c.relname) \
                 FROM unnest($1::text[], $2::text[]) AS t(s, r) \
                 JOIN pg_namespace n ON n.nspname = t.s \
                 JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.r \
                 WHERE {predicate} ORDER BY 1"
            ),
            &[&schemas, &names],
        )
        .await
        .map_err(crate::source::SourceError::sql("inspect captured tables"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Tables a publication the agent creates would hold: the configured ones, or every ordinary
/// table outside the system schemas.
async fn would_be_published(
    sql: &Client,
    tables: &[String],
) -> Result<Vec<(String, String)>, crate::source::SourceError> {
    if !tables.is_empty() {
        return Ok(tables
            .iter()
            .map(|t| match t.split_once('.') {
                Some((s, n)) => (s.to_string(), n.to_string()),
                None => ("public".to_string(), t.clone()),
            })
            .collect());
    }
    let rows = sql
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(crate::source::SourceError::sql("list tables"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Whether the current role owns every table (and may create in the database), as
/// `CREATE PUBLICATION … FOR TABLE` requires of a non-superuser.
async fn owns_all(
    sql: &Client,
    tables: &[(String, String)],
) -> Result<bool, crate::source::SourceError> {
    let not_owned = filter_tables(sql, tables, "NOT pg_has_role(c.relowner, 'USAGE')").await?;
    let create: bool = sql
        .query_one(
            "SELECT has_database_privilege(current_database(), 'CREATE')",
            &[],
        )
        .await
        .map_err(crate::source::SourceError::sql("read database privileges"))?
        .get(0);
    Ok(not_owned.is_empty() && create)
}

fn list(tables: &[String]) -> String {
    let mut s = tables
        .iter()
        .take(LIST_LIMIT)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if tables.len() > LIST_LIMIT {
        s.push_str(&format!(" and {} more", tables.len() - LIST_LIMIT));
    }
    s
}
