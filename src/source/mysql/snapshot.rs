//! Where a new source starts: a binlog position, the GTID state there, and a transaction
//! whose consistent snapshot is exactly that position, in which the catalog and the greatest
//! key of every captured table are read. The rows themselves are read later, in chunks while
//! the stream runs (`chunk.rs`, `crate::pipeline::snapshot`), up to those keys: a row inserted
//! after the position comes through the stream alone.
//!
//! MariaDB: the connection runs `START TRANSACTION WITH CONSISTENT SNAPSHOT` and then reads
//! `binlog_snapshot_file` / `binlog_snapshot_position`, the binlog position its snapshot
//! corresponds to — no lock at all. The GTID state of the position comes from
//! `BINLOG_GTID_POS(file, pos)`.
//!
//! MySQL 8 has no such status values: the connection takes `FLUSH TABLES WITH READ LOCK`
//! (RELOAD privilege), starts its consistent snapshot, reads the position and
//! `@@gtid_executed`, and releases the lock — held only for those few statements.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::catalog::{BinlogPosition, Catalog};
use super::chunk::{self, SignalTable};
use super::{connect_sql, my_error, MySourceSettings, SourceError};
use crate::checkpoint::KeyValue;

/// Reader connections of the one-shot snapshot of earlier versions; snapshots now read one
/// chunk at a time, and `[mysql] snapshot_parallelism` is accepted but unused.
pub const DEFAULT_PARALLELISM: usize = 2;

/// Where a new source starts (see the module docs).
#[derive(Debug, Clone)]
pub struct Start {
    /// Binlog position the stream starts from.
    pub position: BinlogPosition,
    /// GTID state at that position (MariaDB `BINLOG_GTID_POS`, MySQL `gtid_executed`).
    pub gtid_state: Option<String>,
    /// The table definitions at that position.
    pub catalog: Catalog,
    /// Captured tables (`db.table`, the signal table left out) and their greatest key at
    /// that position: `Some(None)` for an empty table (nothing to read), no entry for a
    /// table without a primary key (its snapshot stops naming the fix).
    pub bounds: BTreeMap<String, Option<Vec<KeyValue>>>,
}

/// Takes the start point of a new source: position, GTID state, catalog and greatest keys,
/// all as of one consistent snapshot.
pub async fn start(
    settings: &MySourceSettings,
    mariadb: bool,
    signal: Option<&SignalTable>,
) -> Result<Start, SourceError> {
    let mut conn = connect_sql(settings).await?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(my_error("snapshot isolation level"))?;
    let (position, gtid_state) = if mariadb {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(my_error("START TRANSACTION WITH CONSISTENT SNAPSHOT"))?;
        let pos = snapshot_position(&mut conn).await?;
        let gtid: Option<Option<String>> = conn
            .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&pos.file, pos.pos))
            .await
            .map_err(my_error("BINLOG_GTID_POS"))?;
        (pos, gtid.flatten().filter(|g| !g.is_empty()))
    } else {
        mysql8_start(&mut conn).await?
    };
    let catalog = super::schema::load_catalog(&mut conn, settings).await?;
    let mut bounds = BTreeMap::new();
    for name in super::captured_tables(&catalog, settings, signal) {
        let Some(def) = chunk::split_table(&name)
            .ok()
            .and_then(|(d, t)| catalog.get(d, t))
        else {
            continue;
        };
        if def.primary_key.is_empty() {
            continue;
        }
        let max = chunk::max_key(&mut conn, def).await?;
        bounds.insert(name, max);
    }
    let _ = conn.query_drop("COMMIT").await;
    let _ = conn.disconnect().await;
    Ok(Start {
        position,
        gtid_state,
        catalog,
        bounds,
    })
}

async fn snapshot_position(c: &mut Conn) -> Result<BinlogPosition, SourceError> {
    let rows: Vec<(String, String)> = c
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(my_error("SHOW STATUS LIKE 'binlog_snapshot_%'"))?;
    let mut file = None;
    let mut pos = None;
    for (k, v) in rows {
        match k.to_ascii_lowercase().as_str() {
            "binlog_snapshot_file" => file = Some(v),
            "binlog_snapshot_position" => pos = v.parse().ok(),
            _ => {}
        }
    }
    match (file, pos) {
        (Some(file), Some(pos)) if !file.is_empty() => Ok(BinlogPosition { file, pos }),
        _ => Err(SourceError::definite(
            "the server reports no binlog_snapshot_file/position: is log_bin on?".into(),
        )),
    }
}

/// MySQL 8: a brief global read lock pairs the snapshot with one position.
async fn mysql8_start(conn: &mut Conn) -> Result<(BinlogPosition, Option<String>), SourceError> {
    conn.query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .map_err(|e| {
            let base = my_error("FLUSH TABLES WITH READ LOCK")(e);
            match base {
                SourceError::Definite(t) => SourceError::definite(format!(
                    "{t}; fix: GRANT RELOAD ON *.* TO the agent's user (the MySQL snapshot \
                     holds a global read lock for a moment)"
                )),
                other => other,
            }
        })?;
    let result = async {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(my_error("START TRANSACTION WITH CONSISTENT SNAPSHOT"))?;
        let pos = super::setup::current_position(conn).await?;
        let gtid: Option<Option<String>> =
            conn.query_first("SELECT @@GLOBAL.gtid_executed").await.ok();
        Ok::<_, SourceError>((pos, gtid.flatten().filter(|g| !g.is_empty())))
    }
    .await;
    let _ = conn.query_drop("UNLOCK TABLES").await;
    result
}
