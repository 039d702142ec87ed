//! Signals sent to a MySQL/MariaDB source from outside (`cdc-agent snapshot`): a row in the
//! source's signal table, which the binlog brings to the agent in commit order.

use mysql_async::prelude::Queryable;

use super::setup::quote_ident;
use super::{connect_sql, my_error, MySourceSettings, SourceError};
use crate::config::{Config, SourceConfig};

/// Inserts a signal row (`id`, `type`, `data`) into the source's signal table.
pub async fn send_signal(
    source: &SourceConfig,
    cfg: &Config,
    kind: &str,
    data: &str,
) -> Result<(), SourceError> {
    let settings = MySourceSettings::new(source.clone(), cfg.main.clone());
    let (db, table) = super::chunk::signal_table_name(&settings).ok_or_else(|| {
        SourceError::definite(format!(
            "{}: no signal table: set [snapshot] signal_table = \"database.table\"",
            source.file.display()
        ))
    })?;
    let mut conn = connect_sql(&settings).await?;
    let id = format!(
        "cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0)
    );
    conn.exec_drop(
        format!(
            "INSERT INTO {}.{} (id, type, data) VALUES (?, ?, ?)",
            quote_ident(&db),
            quote_ident(&table)
        ),
        (id, kind, data),
    )
    .await
    .map_err(my_error("insert the signal row"))?;
    Ok(())
}
