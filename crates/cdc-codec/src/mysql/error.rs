//! [`DecodeError`], the one error of every MySQL/MariaDB decoder (events, row images, values).
//! Its own module so that the event parsers and the value decoders both use it without
//! importing each other.

/// Why a binlog event or value could not be decoded. Messages are written for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The event ended before a field did.
    #[error("binlog event is truncated: {what} runs past the end of the event (at byte {at})")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Offset where reading started.
        at: usize,
    },
    /// A field has a value the format does not allow.
    #[error("binlog event is malformed: {what}: {reason}")]
    Malformed {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server writes something the decoder cannot turn into complete rows.
    #[error("the server writes {what}, which cannot be captured; fix: {fix}")]
    Unsupported {
        /// The feature.
        what: &'static str,
        /// The SQL or setting that turns it off.
        fix: &'static str,
    },
    /// A row image lacks columns: the server runs with `binlog_row_image` MINIMAL or NOBLOB.
    #[error(
        "row image of {table} has {present} of {total} columns: binlog_row_image must be FULL; \
         fix: SET GLOBAL binlog_row_image = 'FULL' (and in the server config), then restart \
         the capture"
    )]
    PartialRowImage {
        /// `db.table`.
        table: String,
        /// Columns present.
        present: usize,
        /// Columns of the table.
        total: usize,
    },
    /// The event's CRC32 does not match its bytes.
    #[error(
        "binlog event (type {event_type}) failed its CRC32 check (stored {stored:#010x}, \
         computed {computed:#010x}): the event was corrupted in transit or on disk"
    )]
    Checksum {
        /// Event type code.
        event_type: u8,
        /// Checksum in the event.
        stored: u32,
        /// Checksum of the bytes.
        computed: u32,
    },
    /// A table map names a column type this decoder does not know.
    #[error("table map has column type code {code}, which this version cannot decode")]
    UnknownBinlogType {
        /// The `MYSQL_TYPE_*` code.
        code: u8,
    },
    /// The table definition (schema history) does not fit the table map.
    #[error(
        "the known definition of {table} does not match the binlog's table map ({detail}); the \
         schema history is out of step with the binlog"
    )]
    SchemaMismatch {
        /// `db.table`.
        table: String,
        /// What differs.
        detail: String,
    },
    /// One value could not be decoded.
    #[error("column {table}.{column}: {reason}")]
    Value {
        /// `db.table`.
        table: String,
        /// Column name.
        column: String,
        /// What is wrong.
        reason: String,
    },
}

impl DecodeError {
    pub(crate) fn truncated(what: &'static str, at: usize) -> Self {
        DecodeError::Truncated { what, at }
    }

    pub(crate) fn malformed(what: &'static str, reason: &'static str) -> Self {
        DecodeError::Malformed { what, reason }
    }
}
