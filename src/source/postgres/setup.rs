//! Prerequisites, publication and slot management over a plain SQL connection.
//!
//! Every failure here is *definite* and says what to run to fix it: an operator should be able
//! to copy the SQL from the log.

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::SourceError;

/// `wal_level` of the server.
pub async fn wal_level(sql: &Client) -> Result<String, SourceError> {
    Ok(sql
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(SourceError::sql("read wal_level"))?
        .get(0))
}

/// The fix for a `wal_level` other than `logical`.
pub const WAL_LEVEL_FIX: &str = "ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL \
     (see docs/postgres-setup.md)";

/// The current user's name, whether it may replicate (REPLICATION or superuser), and whether
/// it is a superuser.
pub async fn role_attributes(sql: &Client) -> Result<(String, bool, bool), SourceError> {
    let row = sql
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper, rolsuper FROM pg_roles \
             WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(SourceError::sql("read role attributes"))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// The oldest server the agent supports, as `server_version_num`: the catalog queries read
/// `pg_attribute.attgenerated` (added in PostgreSQL 12). Every major from it up is run by
/// scripts/test-matrix (docs/compatibility.md).
pub const MIN_SERVER_VERSION_NUM: i32 = 120000;

/// The server's version: `server_version_num` (e.g. 170012) and `server_version` (e.g. "17.12").
pub async fn server_version(sql: &Client) -> Result<(i32, String), SourceError> {
    let row = sql
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .await
        .map_err(SourceError::sql("read server_version"))?;
    Ok((row.get(0), row.get(1)))
}

/// Why a server of this version cannot be a source, if it cannot.
pub fn unsupported_version(num: i32, version: &str) -> Option<String> {
    (num < MIN_SERVER_VERSION_NUM).then(|| {
        format!(
            "PostgreSQL {version} is older than 12, the oldest version cdc-agent supports (it reads \
             pg_attribute.attgenerated, new in 12); fix: upgrade the server to PostgreSQL 12 or \
             later (docs/compatibility.md lists the versions tested)"
        )
    })
}

/// Checks the server version and the server-side settings logical decoding needs.
pub async fn check_prerequisites(sql: &Client) -> Result<(), SourceError> {
    let (num, version) = server_version(sql).await?;
    if let Some(why) = unsupported_version(num, &version) {
        return Err(SourceError::definite(why));
    }
    let wal_level = wal_level(sql).await?;
    if wal_level != "logical" {
        return Err(SourceError::definite(format!(
            "wal_level is `{wal_level}`, logical replication needs `logical`; fix: {WAL_LEVEL_FIX}"
        )));
    }
    let (user, can_replicate, _) = role_attributes(sql).await?;
    if !can_replicate {
        return Err(SourceError::definite(format!(
            "role `{user}` lacks the REPLICATION attribute; fix: ALTER ROLE {user} REPLICATION;"
        )));
    }
    Ok(())
}

/// Whether the publication exists.
pub async fn publication_exists(sql: &Client, name: &str) -> Result<bool, SourceError> {
    Ok(sql
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .await
        .map_err(SourceError::sql("look up publication"))?
        .is_some())
}

/// The statement that creates the publication for `tables` (all tables when empty); with
/// `via_root`, changes of a partition are published as its partitioned root's.
pub fn create_publication_sql(name: &str, tables: &[String], via_root: bool) -> String {
    let target = if tables.is_empty() {
        "FOR ALL TABLES".to_string()
    } else {
        let list: Vec<String> = tables.iter().map(|t| quote_qualified(t)).collect();
        format!("FOR TABLE {}", list.join(", "))
    };
    let with = if via_root {
        " WITH (publish_via_partition_root = true)"
    } else {
        ""
    };
    format!("CREATE PUBLICATION {} {target}{with}", quote_ident(name))
}

/// With `publish_via_partition_root = true`: the server has the option (PostgreSQL 13+) and an
/// existing publication has it set, otherwise a definite error naming the fix. Without it the
/// partitions' changes would land on one topic per partition, not the parent's.
async fn check_via_root(sql: &Client, name: &str) -> Result<(), SourceError> {
    let (num, version) = server_version(sql).await?;
    if num < 130000 {
        return Err(SourceError::definite(format!(
            "postgres.publish_via_partition_root = true needs PostgreSQL 13 or later (the \
             publication option is new in 13) but the server is PostgreSQL {version}; fix: set \
             publish_via_partition_root = false (each partition then has a topic of its own), or \
             upgrade the server"
        )));
    }
    let via_root: Option<bool> = sql
        .query_opt(
            "SELECT pubviaroot FROM pg_publication WHERE pubname = $1",
            &[&name],
        )
        .await
        .map_err(SourceError::sql("read publish_via_partition_root"))?
        .map(|r| r.get(0));
    if via_root == Some(false) {
        return Err(SourceError::definite(format!(
            "publication `{name}` exists without publish_via_partition_root, so changes of a \
             partitioned table would come as its partitions'; fix: have its owner run: ALTER \
             PUBLICATION {} SET (publish_via_partition_root = true); or set \
             publish_via_partition_root = false",
            quote_ident(name)
        )));
    }
    Ok(())
}

/// Uses the publication if it exists, otherwise creates it for `tables` (all tables when
/// empty); `via_root` is `publish_via_partition_root` (checked on an existing publication).
pub async fn ensure_publication(
    sql: &Client,
    name: &str,
    tables: &[String],
    via_root: bool,
) -> Result<(), SourceError> {
    if via_root {
        check_via_root(sql, name).await?;
    }
    if publication_exists(sql, name).await? {
        return Ok(());
    }
    let stmt = create_publication_sql(name, tables, via_root);
    match sql.batch_execute(&stmt).await {
        Ok(()) => {
            tracing::info!(publication = name, "created publication");
            Ok(())
        }
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            // FOR ALL TABLES needs a superuser whatever else is granted; FOR TABLE needs the
            // tables' owner with CREATE on the database.
            let who = if tables.is_empty() {
                "a superuser"
            } else {
                "a superuser (or the tables' owner with CREATE on the database)"
            };
            Err(SourceError::definite(format!(
                "cannot create publication `{name}`: {}; fix: have {who} run: {stmt}; \
                 (see docs/postgres-setup.md)",
                db_message(&e)
            )))
        }
        Err(e) => Err(SourceError::sql("create publication")(e)),
    }
}

/// State of the replication slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// No slot of that name.
    Missing,
    /// The slot exists; `active_pid` is the backend streaming from it, if any.
    Present {
        /// Plugin of the slot.
        plugin: Option<String>,
        /// Database of the slot.
        database: Option<String>,
        /// Backend pid currently using the slot.
        active_pid: Option<i32>,
        /// Why the server invalidated the slot, when it did: its WAL was removed
        /// (`wal_status = 'lost'`, `max_slot_wal_keep_size`) or, on PostgreSQL 16+, a
        /// recovery conflict or another `invalidation_reason`. Such a slot can never stream
        /// again.
        invalidated: Option<String>,
    },
}

/// Looks up the slot.
///
/// `wal_status` (PostgreSQL 13+), `conflicting` (16+) and `invalidation_reason` (17+) are
/// read through `to_jsonb` so that the same statement runs on every version (a missing
/// column reads as NULL).
pub async fn slot_state(sql: &Client, slot: &str) -> Result<SlotState, SourceError> {
    let row = sql
        .query_opt(
            "SELECT plugin::text, database::text, active_pid, to_jsonb(s)->>'wal_status', \
             to_jsonb(s)->>'invalidation_reason', to_jsonb(s)->>'conflicting' \
             FROM pg_replication_slots s WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(SourceError::sql("look up replication slot"))?;
    Ok(match row {
        None => SlotState::Missing,
        Some(r) => SlotState::Present {
            plugin: r.get(0),
            database: r.get(1),
            active_pid: r.get(2),
            invalidated: invalidation(r.get(3), r.get(4), r.get(5)),
        },
    })
}

/// Why a slot is invalidated, from `wal_status`, `invalidation_reason` and `conflicting`.
fn invalidation(
    wal_status: Option<String>,
    reason: Option<String>,
    conflicting: Option<String>,
) -> Option<String> {
    match (wal_status.as_deref(), reason, conflicting.as_deref()) {
        (_, Some(reason), _) if reason == "wal_removed" => Some(WAL_REMOVED.into()),
        (_, Some(reason), _) => Some(format!("invalidation_reason = {reason}")),
        (Some("lost"), None, _) => Some(WAL_REMOVED.into()),
        (_, None, Some("true")) => Some("a recovery conflict (conflicting = true)".into()),
        _ => None,
    }
}

/// The reason of a slot whose WAL the server removed.
pub const WAL_REMOVED: &str =
    "its WAL was removed because it fell more than max_slot_wal_keep_size behind (wal_status = lost)";

/// The definite error for an invalidated slot: names the slot, the cause and both ways on.
pub fn invalidated_slot_error(slot: &str, reason: &str, file: &str) -> SourceError {
    SourceError::definite(format!(
        "replication slot `{slot}` was invalidated by the server: {reason}; the changes since \
         the agent last read it are gone from the server; fix: set on_missing_position = \
         \"snapshot\" in {file} to drop the slot and snapshot again, accepting the gap (or drop \
         it yourself: SELECT pg_drop_replication_slot('{slot}');), and raise \
         max_slot_wal_keep_size (or set it to -1) so a stopped or lagging agent keeps its WAL \
         (see docs/operations.md, \"When the position is lost\")"
    ))
}

/// Drops the slot (used when a snapshot did not finish: it restarts from a new slot).
pub async fn drop_slot(sql: &Client, slot: &str) -> Result<(), SourceError> {
    sql.execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(SourceError::sql("drop replication slot"))?;
    Ok(())
}

/// Tables of the publication, as `(schema, table)`.
pub async fn publication_tables(
    sql: &Client,
    publication: &str,
) -> Result<Vec<(String, String)>, SourceError> {
    let rows = sql
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables \
             WHERE pubname = $1 ORDER BY 1, 2",
            &[&publication],
        )
        .await
        .map_err(SourceError::sql("list publication tables"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Published tables (`schema.table`, quoted) that cannot identify their rows: no primary key
/// and replica identity DEFAULT (no key to use) or NOTHING.
pub async fn tables_without_identity(
    sql: &Client,
    publication: &str,
) -> Result<Vec<String>, SourceError> {
    let rows = sql
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), c.relreplident::text \
             FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             WHERE p.pubname = $1 \
               AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS \
                    (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) \
             ORDER BY 1",
            &[&publication],
        )
        .await
        .map_err(SourceError::sql("check replica identity"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The fix for a table without a usable replica identity.
pub fn replica_identity_fix(table: &str) -> String {
    format!(
        "add a primary key, or run ALTER TABLE {table} REPLICA IDENTITY FULL; \
         (or USING INDEX <unique index>)"
    )
}

/// Fails when a published table cannot identify its rows (see [`tables_without_identity`]).
/// PostgreSQL would reject UPDATE and DELETE on such a table for every writer, and the events
/// could carry no key.
pub async fn check_replica_identity(sql: &Client, publication: &str) -> Result<(), SourceError> {
    let tables = tables_without_identity(sql, publication).await?;
    if let Some(table) = tables.first() {
        let more = if tables.len() > 1 {
            format!(" (and {} more)", tables.len() - 1)
        } else {
            String::new()
        };
        return Err(SourceError::definite(format!(
            "table {table}{more} has no primary key and no usable replica identity, so its \
             updates and deletes cannot be captured; fix: {}",
            replica_identity_fix(table)
        )));
    }
    Ok(())
}

/// `"ident"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `schema.table` → `"schema"."table"`; a bare name stays unqualified.
pub fn quote_qualified(s: &str) -> String {
    match s.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => quote_ident(s),
    }
}

/// `'literal'` with embedded quotes doubled.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The server's message of a database error, or the client error text.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.hint() {
            Some(h) => format!("{} (hint: {h})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

/// The shape Debezium gives its signal table, for the fix of a missing one.
fn signal_table_ddl(schema: &str, table: &str) -> String {
    format!(
        "CREATE TABLE {}.{} (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data text)",
        quote_ident(schema),
        quote_ident(table)
    )
}

/// Checks that `[snapshot] signal_table` exists with a `type` and a `data` column and is in
/// the publication: its rows reach the agent only through the slot, so a signal table outside
/// the publication would take every signal without a word. `publication`: `None` when it does
/// not exist yet (`cdc-agent check` before the first start; the agent creates it with the
/// signal table in it).
pub async fn check_signal_table(
    sql: &Client,
    publication: Option<&str>,
    schema: &str,
    table: &str,
) -> Result<(), SourceError> {
    let columns: Vec<String> = sql
        .query(
            "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND \
             c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema, &table],
        )
        .await
        .map_err(SourceError::sql("look up the signal table"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let name = format!("{}.{}", quote_ident(schema), quote_ident(table));
    if columns.is_empty() {
        return Err(SourceError::definite(format!(
            "the snapshot signal table {name} ([snapshot] signal_table) does not exist or the \
             agent cannot see it; fix: {}; ALTER PUBLICATION {} ADD TABLE {name}; (and GRANT \
             SELECT ON {name} TO the agent's role), or remove signal_table",
            signal_table_ddl(schema, table),
            quote_ident(publication.unwrap_or("<publication>"))
        )));
    }
    if !["type", "data"]
        .iter()
        .all(|c| columns.iter().any(|have| have == c))
    {
        return Err(SourceError::definite(format!(
            "the snapshot signal table {name} ([snapshot] signal_table) has no `type` and \
             `data` columns; fix: give it Debezium's shape: {}",
            signal_table_ddl(schema, table)
        )));
    }
    let Some(publication) = publication else {
        return Ok(());
    };
    let published = publication_tables(sql, publication)
        .await?
        .iter()
        .any(|(s, t)| s == schema && t == table);
    if !published {
        return Err(SourceError::definite(format!(
            "the snapshot signal table {name} ([snapshot] signal_table) is not in publication \
             `{publication}`, so no signal written to it would reach the agent; fix: ALTER \
             PUBLICATION {} ADD TABLE {name};",
            quote_ident(publication)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_older_than_12_is_refused_naming_the_version_and_the_upgrade() {
        let why = unsupported_version(110022, "11.22").unwrap();
        assert!(why.contains("PostgreSQL 11.22 is older than 12"), "{why}");
        assert!(
            why.contains("fix: upgrade the server to PostgreSQL 12"),
            "{why}"
        );
        assert_eq!(unsupported_version(120000, "12.0"), None);
        assert_eq!(unsupported_version(170012, "17.12"), None);
    }

    #[test]
    fn a_slot_whose_wal_was_removed_reads_as_invalidated_naming_max_slot_wal_keep_size() {
        let lost = invalidation(Some("lost".into()), None, None).unwrap();
        assert!(lost.contains("max_slot_wal_keep_size"), "{lost}");
        let pg17 = invalidation(Some("lost".into()), Some("wal_removed".into()), None);
        assert_eq!(pg17.as_deref(), Some(lost.as_str()));
        assert!(
            invalidation(None, Some("rows_removed".into()), Some("true".into()))
                .unwrap()
                .contains("rows_removed")
        );
        for fine in ["reserved", "extended", "unreserved"] {
            assert_eq!(
                invalidation(Some(fine.into()), None, Some("false".into())),
                None
            );
        }
        assert_eq!(invalidation(None, None, None), None);
    }

    #[test]
    fn identifiers_and_literals_are_quoted_with_doubled_quotes() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_qualified("public.t"), "\"public\".\"t\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
