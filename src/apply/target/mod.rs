//! The target contract: a database that holds the read model and the consumed offsets.
//!
//! # Contract
//!
//! - **One transaction per batch.** [`Target::apply`] applies every change of a [`Batch`] in
//!   order *and* moves the batch's offsets in one database transaction: after a crash at any
//!   point the target holds either all of the batch (rows and offsets) or none of it. This is
//!   what makes `apply` exactly-once: the offsets a restart resumes from are always those of
//!   the rows the target holds.
//! - **One writer per name.** [`Target::claim`] comes before the offsets are read: it makes
//!   sure that no other session can still be writing this consumer's rows — in particular that
//!   a killed predecessor's last transaction has landed (or is gone) before its offsets are
//!   read back. While another session holds the claim the attempt fails *transiently*
//!   (retried with backoff, the holder named), since a predecessor's session ends on its own.
//! - **Fenced offsets.** Each offset move names the value it expects to replace
//!   ([`OffsetMove::from`], `None` for a partition the target has no row for). When the stored
//!   value differs (another `apply` with the same name wrote meanwhile) the transaction is
//!   rolled back and `apply` fails with [`ApplyError`] naming the fix: two writers can never
//!   both apply the same events.
//! - **Changes by primary key.** `Upsert` inserts or replaces the row by its key, leaving the
//!   columns whose cell is [`Cell::Unavailable`](super::schema::Cell) as stored; `Delete`
//!   removes the row with that key (none is fine); `Truncate` empties the table.
//! - **Tables follow the events.** A missing table is created from the event's shape (key
//!   columns as its primary key); with `schema_evolution = "basic"` a new field becomes a new
//!   nullable column; a column whose type differs from the shape's is a definite error with
//!   the fix. DDL runs in the batch's transaction, so it is undone with it.
//! - **Failures.** A lost connection or a serialization failure is transient (`apply` starts
//!   over from the stored offsets); anything the operator must change is definite.

pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use super::schema::{Cell, Shape};
use crate::apply::error::ApplyError;

/// A table as the events describe it.
#[derive(Debug)]
pub struct TableInfo {
    /// Table name (the source's, `source.table`).
    pub name: String,
    /// Value schema id the shape comes from (a new id: check the target table again).
    pub schema_id: u32,
    /// Columns.
    pub shape: Shape,
    /// Indexes of the key columns in `shape`, in key order.
    pub key: Vec<usize>,
}

/// What one event asks of the target.
#[derive(Debug)]
pub enum Change {
    /// Insert or update (`c`, `r`, `u`): the whole row, in `table.shape` order.
    Upsert {
        /// The table.
        table: Arc<TableInfo>,
        /// Cells in column order.
        row: Vec<Cell>,
        /// The event is an insert or a snapshot read (`c`, `r`), not an update: the row is
        /// new to the source, so the target most likely lacks it (a target may then try a
        /// plain bulk insert first; it must still behave as an upsert).
        insert: bool,
    },
    /// Delete (`d`) by key.
    Delete {
        /// The table.
        table: Arc<TableInfo>,
        /// Key cells in `table.key` order.
        key: Vec<Cell>,
    },
    /// Truncate (`t`): every row of the table goes.
    Truncate {
        /// Table name.
        table: String,
    },
}

/// A partition's offset moving forward in the same transaction as the rows.
#[derive(Debug, Clone)]
pub struct OffsetMove {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The stored value this move replaces (`None`: the target has no row for it yet).
    pub from: Option<i64>,
    /// The next offset to read.
    pub to: i64,
}

/// One target transaction's worth of work.
#[derive(Debug, Default)]
pub struct Batch {
    /// Changes in consumed order (per partition, Kafka's order: per key, the source's).
    pub changes: Vec<Change>,
    /// The offsets the batch moves.
    pub offsets: Vec<OffsetMove>,
}

/// Stored next offsets by (topic, partition).
pub type Offsets = HashMap<(String, i32), i64>;

/// A database `apply` writes into. See the module documentation for the contract.
#[allow(async_fn_in_trait)]
pub trait Target {
    /// Creates the offsets table when it is missing.
    async fn prepare(&mut self) -> Result<(), ApplyError>;

    /// Claims consumer `name`'s rows for this connection (see the contract); transient while
    /// another session holds the claim.
    async fn claim(&mut self, name: &str) -> Result<(), ApplyError>;

    /// The offsets stored for consumer `name`.
    async fn offsets(&mut self, name: &str) -> Result<Offsets, ApplyError>;

    /// Applies `batch` for consumer `name` in one transaction (rows and offsets).
    async fn apply(&mut self, name: &str, batch: &Batch) -> Result<(), ApplyError>;
}

/// Why an existing column cannot take a shape's column, as a definite error with the fix.
pub fn type_change(
    table: &str,
    column: &str,
    existing: &str,
    wanted: &str,
    alter: &str,
) -> ApplyError {
    ApplyError::definite(format!(
        "target table `{table}` column `{column}` is `{existing}` but the source's events now \
         carry `{wanted}`; fix: change the target column (`{alter}`), or drop the target \
         table and delete this apply's rows from the offsets table to rebuild it from the \
         topics"
    ))
}
