//! Pure parsers for the binlog events mysql_common leaves to us.
//!
//! mysql_async frames the stream and mysql_common parses the common MySQL events (format
//! description, rotate, query, XID). What it does not do, this module does, bytes in and values
//! out, without I/O, logging or panics, so that the code run on server bytes is the code the
//! `binlog` fuzz target exercises:
//!
//! * MariaDB's own events — GTID, GTID list, binlog checkpoint, annotate rows — for which
//!   `read_data()` gives `None`; and recognizing MariaDB's compressed events to reject them
//!   with the fix.
//! * MySQL 8's GTID event (`0x21`), for the fields the source block and resume need.
//! * The CRC32 checksum: mysql_common splits it off but never compares it
//!   ([`verify_raw_checksum`] here; the agent's `verify_checksum` for events mysql_common split).
//! * The table map ([`TableMapInfo::parse`]) and the rows-event header ([`RowsEventView`]).
//!   mysql_common parses both, but its per-column metadata accessor re-walks the metadata
//!   from the first column for every column (quadratic on wide tables) and it has no view of
//!   the metadata block as a whole; both formats are small, and parsing them here keeps the
//!   whole row path (table map → layout → values) in one fuzzed, bounds-checked place. See
//!   `docs/decisions/0004-mysql-binlog-decoding.md`.
//!
//! Every function takes the event *body*: the bytes after the 19-byte common header, with the
//! 4-byte checksum already removed (what `mysql_common::binlog::events::Event::data()` gives).

#![forbid(unsafe_code)]

use std::borrow::Cow;

pub use super::error::DecodeError;

/// Length of the common event header.
pub const HEADER_LEN: usize = 19;
/// Length of the CRC32 trailer when `binlog_checksum = CRC32`.
pub const CHECKSUM_LEN: usize = 4;

/// Binlog event type codes this module cares about.
pub mod event_type {
    /// `QUERY_EVENT`.
    pub const QUERY: u8 = 2;
    /// `ROTATE_EVENT`.
    pub const ROTATE: u8 = 4;
    /// `FORMAT_DESCRIPTION_EVENT`.
    pub const FORMAT_DESCRIPTION: u8 = 15;
    /// `XID_EVENT`.
    pub const XID: u8 = 16;
    /// `TABLE_MAP_EVENT`.
    pub const TABLE_MAP: u8 = 19;
    /// `WRITE_ROWS_EVENT_V1` (MariaDB's default).
    pub const WRITE_ROWS_V1: u8 = 23;
    /// `UPDATE_ROWS_EVENT_V1`.
    pub const UPDATE_ROWS_V1: u8 = 24;
    /// `DELETE_ROWS_EVENT_V1`.
    pub const DELETE_ROWS_V1: u8 = 25;
    /// `HEARTBEAT_LOG_EVENT`.
    pub const HEARTBEAT: u8 = 27;
    /// `WRITE_ROWS_EVENT` (v2, MySQL's default).
    pub const WRITE_ROWS_V2: u8 = 30;
    /// `UPDATE_ROWS_EVENT` (v2).
    pub const UPDATE_ROWS_V2: u8 = 31;
    /// `DELETE_ROWS_EVENT` (v2).
    pub const DELETE_ROWS_V2: u8 = 32;
    /// MySQL `GTID_LOG_EVENT`.
    pub const MYSQL_GTID: u8 = 33;
    /// MySQL `ANONYMOUS_GTID_LOG_EVENT`.
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    /// MySQL `PREVIOUS_GTIDS_LOG_EVENT`.
    pub const MYSQL_PREVIOUS_GTIDS: u8 = 35;
    /// MySQL `PARTIAL_UPDATE_ROWS_EVENT` (`binlog_row_value_options = PARTIAL_JSON`).
    pub const MYSQL_PARTIAL_UPDATE_ROWS: u8 = 39;
    /// MySQL `TRANSACTION_PAYLOAD_EVENT` (`binlog_transaction_compression = ON`).
    pub const MYSQL_TRANSACTION_PAYLOAD: u8 = 40;
    /// MariaDB `ANNOTATE_ROWS_EVENT`: the statement behind the following row events.
    pub const MARIADB_ANNOTATE_ROWS: u8 = 0xa0;
    /// MariaDB `BINLOG_CHECKPOINT_EVENT`.
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 0xa1;
    /// MariaDB `GTID_EVENT`: starts every event group.
    pub const MARIADB_GTID: u8 = 0xa2;
    /// MariaDB `GTID_LIST_EVENT`: the binlog state at the start of a file.
    pub const MARIADB_GTID_LIST: u8 = 0xa3;
    /// MariaDB `START_ENCRYPTION_EVENT` (binlog encryption at rest; harmless on the wire).
    pub const MARIADB_START_ENCRYPTION: u8 = 0xa4;
    /// First of MariaDB's compressed events (`QUERY_COMPRESSED_EVENT`).
    pub const MARIADB_QUERY_COMPRESSED: u8 = 0xa5;
    /// Last of MariaDB's compressed events (`DELETE_ROWS_COMPRESSED_EVENT`).
    pub const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 0xab;
}

/// Whether the event type is one of MariaDB's compressed events (`log_bin_compress = ON`).
pub fn is_mariadb_compressed(event_type: u8) -> bool {
    (event_type::MARIADB_QUERY_COMPRESSED..=event_type::MARIADB_DELETE_ROWS_COMPRESSED)
        .contains(&event_type)
}

/// Rejects event types the decoder cannot turn into complete rows, with the setting that
/// makes the server stop writing them.
pub fn check_supported(event_type: u8) -> Result<(), DecodeError> {
    if is_mariadb_compressed(event_type) {
        return Err(DecodeError::Unsupported {
            what: "compressed binlog events (log_bin_compress = ON)",
            fix:
                "SET GLOBAL log_bin_compress = OFF; then re-snapshot or resume from a binlog file \
                  written after the change",
        });
    }
    match event_type {
        event_type::MYSQL_PARTIAL_UPDATE_ROWS => Err(DecodeError::Unsupported {
            what: "partial JSON updates (binlog_row_value_options = PARTIAL_JSON)",
            fix: "SET GLOBAL binlog_row_value_options = ''",
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// checksums

/// Verifies a raw event's CRC32: `raw` is the whole event as it appears in the binlog (header,
/// body, 4-byte checksum). The checksum covers header and body; for a format description
/// event the server computes it with the `LOG_EVENT_BINLOG_IN_USE_F` flag cleared.
pub fn verify_raw_checksum(raw: &[u8]) -> Result<(), DecodeError> {
    if raw.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(DecodeError::truncated("event with checksum", raw.len()));
    }
    let (covered, stored) = raw.split_at(raw.len() - CHECKSUM_LEN);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let mut hasher = crc32fast::Hasher::new();
    if covered[4] == event_type::FORMAT_DESCRIPTION {
        // flags live at header bytes 17..19; LOG_EVENT_BINLOG_IN_USE_F = 0x1
        hasher.update(&covered[..17]);
        hasher.update(&[covered[17] & !1, covered[18]]);
        hasher.update(&covered[HEADER_LEN..]);
    } else {
        hasher.update(covered);
    }
    let computed = hasher.finalize();
    if computed == stored {
        Ok(())
    } else {
        Err(DecodeError::Checksum {
            event_type: covered[4],
            stored,
            computed,
        })
    }
}

// ---------------------------------------------------------------------------------------
// framing of binlog files

/// One event cut from a binlog file or stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent<'a> {
    /// Seconds since the epoch when the statement started.
    pub timestamp: u32,
    /// Event type code.
    pub event_type: u8,
    /// Originating server.
    pub server_id: u32,
    /// Position of the next event in the file.
    pub log_pos: u32,
    /// Event flags.
    pub flags: u16,
    /// The body: after the header, without the checksum.
    pub body: &'a [u8],
    /// The whole event, header to checksum.
    pub raw: &'a [u8],
}

/// The magic number at the start of every binlog file.
pub const BINLOG_MAGIC: &[u8; 4] = b"\xfebin";

/// Cuts a binlog file (or a captured run of events) into events. The checksum setting comes
/// from the format description event (its algorithm byte), as the server's own reader does;
/// checksums are verified. Stops at the first malformed event.
pub struct EventSplitter<'a> {
    data: &'a [u8],
    pos: usize,
    checksums: bool,
    verify: bool,
    failed: bool,
}

impl<'a> EventSplitter<'a> {
    /// Splits `data`, skipping the file magic when present; `checksums` is the assumption
    /// until a format description event says otherwise.
    pub fn new(data: &'a [u8], checksums: bool) -> Self {
        let pos = if data.starts_with(BINLOG_MAGIC) { 4 } else { 0 };
        Self {
            data,
            pos,
            checksums,
            verify: true,
            failed: false,
        }
    }

    /// Skips the CRC32 comparison (the checksum is still cut off): for fuzzing the parsers
    /// behind it, never for real input.
    pub fn without_verification(mut self) -> Self {
        self.verify = false;
        self
    }

    fn next_event(&mut self) -> Result<RawEvent<'a>, DecodeError> {
        let rest = &self.data[self.pos..];
        let mut r = Reader::new(rest);
        let timestamp = r.uint_le(4, "event header")? as u32;
        let event_type = r.u8("event header")?;
        let server_id = r.uint_le(4, "event header")? as u32;
        let size = r.uint_le(4, "event header")? as usize;
        let log_pos = r.uint_le(4, "event header")? as u32;
        let flags = r.uint_le(2, "event header")? as u16;
        if size < HEADER_LEN || size > rest.len() {
            return Err(DecodeError::malformed(
                "event header",
                "event size out of range",
            ));
        }
        let raw = &rest[..size];
        if event_type == event_type::FORMAT_DESCRIPTION {
            // binlog version (2), server version (50), timestamp (4), header length (1), then
            // post-header lengths; since 5.6.1 the last 5 bytes are the checksum algorithm and
            // the checksum.
            let body = &raw[HEADER_LEN..];
            self.checksums = body.len() >= 57 + 5 && body[body.len() - 5] == 1;
        }
        let body_end = if self.checksums {
            if self.verify {
                verify_raw_checksum(raw)?;
            }
            size - CHECKSUM_LEN
        } else {
            size
        };
        let body = raw.get(HEADER_LEN..body_end).ok_or_else(|| {
            DecodeError::malformed("event header", "event shorter than its checksum")
        })?;
        self.pos += size;
        Ok(RawEvent {
            timestamp,
            event_type,
            server_id,
            log_pos,
            flags,
            body,
            raw,
        })
    }
}

impl<'a> Iterator for EventSplitter<'a> {
    type Item = Result<RawEvent<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.next_event();
        self.failed = r.is_err();
        Some(r)
    }
}

// ---------------------------------------------------------------------------------------
// a bounds-checked reader

pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = &self.data[self.pos..];
        self.pos = self.data.len();
        r
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::truncated(what, self.pos));
        }
        let r = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(r)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(crate) fn uint_le(&mut self, n: usize, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.bytes(n, what)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// MySQL's length-encoded integer.
    pub(crate) fn lenenc(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        match self.u8(what)? {
            b @ 0..=0xfa => Ok(u64::from(b)),
            0xfc => self.uint_le(2, what),
            0xfd => self.uint_le(3, what),
            0xfe => self.uint_le(8, what),
            _ => Err(DecodeError::malformed(
                what,
                "invalid length-encoded integer",
            )),
        }
    }

    pub(crate) fn lenenc_usize(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.lenenc(what)?;
        usize::try_from(n).map_err(|_| DecodeError::malformed(what, "length out of range"))
    }

    pub(crate) fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.lenenc_usize(what)?;
        self.bytes(n, what)
    }
}

// ---------------------------------------------------------------------------------------
// MariaDB events

/// A MariaDB GTID (`domain-server-sequence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MariadbGtid {
    /// Replication domain.
    pub domain_id: u32,
    /// Server that originated the event group.
    pub server_id: u32,
    /// Sequence number within the domain.
    pub seq_no: u64,
}

impl std::fmt::Display for MariadbGtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain_id, self.server_id, self.seq_no)
    }
}

/// MariaDB `GTID_EVENT` (`0xa2`): starts an event group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariadbGtidEvent {
    /// The group's GTID (server id from the event header).
    pub gtid: MariadbGtid,
    /// `flags2` as written.
    pub flags: u8,
    /// Group-commit id, when the group was committed together with others.
    pub commit_id: Option<u64>,
}

impl MariadbGtidEvent {
    /// `FL_STANDALONE`: the group is one statement without BEGIN/COMMIT (DDL).
    pub const FL_STANDALONE: u8 = 1;
    /// `FL_GROUP_COMMIT_ID`: a commit id follows.
    pub const FL_GROUP_COMMIT_ID: u8 = 2;
    /// `FL_TRANSACTIONAL`: the group is transactional (ends with XID).
    pub const FL_TRANSACTIONAL: u8 = 4;
    /// `FL_PREPARED_XA`: an XA PREPARE group.
    pub const FL_PREPARED_XA: u8 = 64;
    /// `FL_COMPLETED_XA`: an XA COMMIT/ROLLBACK group.
    pub const FL_COMPLETED_XA: u8 = 128;

    /// Whether the group stands alone (a DDL statement, no BEGIN/COMMIT around it).
    pub fn standalone(&self) -> bool {
        self.flags & Self::FL_STANDALONE != 0
    }

    /// Parses the body; `server_id` is the event header's.
    pub fn parse(body: &[u8], server_id: u32) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let seq_no = r.uint_le(8, "MariaDB GTID sequence number")?;
        let domain_id = r.uint_le(4, "MariaDB GTID domain id")? as u32;
        let flags = r.u8("MariaDB GTID flags")?;
        let commit_id = if flags & Self::FL_GROUP_COMMIT_ID != 0 {
            Some(r.uint_le(8, "MariaDB GTID commit id")?)
        } else {
            None
        };
        Ok(Self {
            gtid: MariadbGtid {
                domain_id,
                server_id,
                seq_no,
            },
            flags,
            commit_id,
        })
    }
}

/// MariaDB `GTID_LIST_EVENT` (`0xa3`): the last GTID of every domain at the start of a binlog
/// file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariadbGtidList {
    /// The four flag bits above the 28-bit count.
    pub flags: u8,
    /// One GTID per domain (and server).
    pub gtids: Vec<MariadbGtid>,
}

impl MariadbGtidList {
    /// Parses the body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let word = r.uint_le(4, "MariaDB GTID list count")? as u32;
        let count = (word & 0x0fff_ffff) as usize;
        let flags = (word >> 28) as u8;
        if count.saturating_mul(16) > r.remaining() {
            return Err(DecodeError::truncated("MariaDB GTID list entries", r.pos()));
        }
        let mut gtids = Vec::with_capacity(count);
        for _ in 0..count {
            let domain_id = r.uint_le(4, "MariaDB GTID list domain")? as u32;
            let server_id = r.uint_le(4, "MariaDB GTID list server")? as u32;
            let seq_no = r.uint_le(8, "MariaDB GTID list sequence")?;
            gtids.push(MariadbGtid {
                domain_id,
                server_id,
                seq_no,
            });
        }
        Ok(Self { flags, gtids })
    }
}

/// MariaDB `BINLOG_CHECKPOINT_EVENT` (`0xa1`): the oldest binlog file crash recovery needs.
pub fn parse_binlog_checkpoint(body: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    let mut r = Reader::new(body);
    let len = r.uint_le(4, "binlog checkpoint file name length")? as usize;
    let name = r.bytes(len, "binlog checkpoint file name")?;
    Ok(String::from_utf8_lossy(name))
}

/// MariaDB `ANNOTATE_ROWS_EVENT` (`0xa0`): the SQL statement behind the next row events
/// (`binlog_annotate_row_events = ON`, the default). Lossy: the statement is informational.
pub fn parse_annotate_rows(body: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(body)
}

// ---------------------------------------------------------------------------------------
// MySQL GTID

/// MySQL 8 `GTID_LOG_EVENT` (`0x21`): starts a transaction with GTID `uuid:gno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MysqlGtidEvent {
    /// Flags (bit 0: the transaction may be committed in parallel… `commit_flag`).
    pub flags: u8,
    /// Source UUID.
    pub sid: [u8; 16],
    /// Transaction number.
    pub gno: u64,
    /// Logical clock: last committed sequence number, when written.
    pub last_committed: Option<i64>,
    /// Logical clock: this transaction's sequence number, when written.
    pub sequence_number: Option<i64>,
    /// Commit time on the immediate source, microseconds since the epoch (MySQL 8.0.1+).
    pub immediate_commit_us: Option<u64>,
    /// Commit time on the original source (equals the immediate one when not written).
    pub original_commit_us: Option<u64>,
}

impl MysqlGtidEvent {
    /// Parses the body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let flags = r.u8("GTID flags")?;
        let mut sid = [0u8; 16];
        sid.copy_from_slice(r.bytes(16, "GTID source uuid")?);
        let gno = r.uint_le(8, "GTID number")?;
        let mut ev = Self {
            flags,
            sid,
            gno,
            last_committed: None,
            sequence_number: None,
            immediate_commit_us: None,
            original_commit_us: None,
        };
        // logical timestamps: type code 2 followed by two int64
        if r.remaining() >= 17 && r.u8("GTID logical clock type")? == 2 {
            ev.last_committed = Some(r.uint_le(8, "GTID last committed")? as i64);
            ev.sequence_number = Some(r.uint_le(8, "GTID sequence number")? as i64);
            if r.remaining() >= 7 {
                let immediate = r.uint_le(7, "GTID immediate commit timestamp")?;
                let has_original = immediate & (1 << 55) != 0;
                let immediate = immediate & !(1 << 55);
                ev.immediate_commit_us = Some(immediate);
                ev.original_commit_us = Some(if has_original {
                    r.uint_le(7, "GTID original commit timestamp")?
                } else {
                    immediate
                });
            }
        }
        Ok(ev)
    }

    /// The GTID as MySQL writes it: `3e11fa47-71ca-11e1-9e33-c80aa9429562:23`.
    pub fn gtid(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(60);
        for (i, b) in self.sid.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            let _ = write!(s, "{b:02x}");
        }
        let _ = write!(s, ":{}", self.gno);
        s
    }
}

// ---------------------------------------------------------------------------------------
// rows events

/// What a rows event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowsKind {
    /// `WRITE_ROWS`: after images.
    Write,
    /// `UPDATE_ROWS`: before and after image pairs.
    Update,
    /// `DELETE_ROWS`: before images.
    Delete,
}

/// A rows event's header, borrowed from the event body, with the raw row images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsEventView<'a> {
    /// Insert, update or delete.
    pub kind: RowsKind,
    /// The table map this event refers to.
    pub table_id: u64,
    /// Rows-event flags (`STMT_END_F` = 1, …).
    pub flags: u16,
    /// Columns of the table.
    pub column_count: usize,
    /// Columns present in the before image (deletes, updates); empty for writes.
    pub present_before: &'a [u8],
    /// Columns present in the after image (writes, updates); empty for deletes.
    pub present_after: &'a [u8],
    /// The row images, back to back.
    pub rows: &'a [u8],
}

impl<'a> RowsEventView<'a> {
    /// `STMT_END_F`: last event of the statement.
    pub const STMT_END_F: u16 = 1;

    /// The kind and version of a rows event type, `None` for other events.
    pub fn kind_of(event_type: u8) -> Option<(RowsKind, u8)> {
        use event_type::*;
        Some(match event_type {
            WRITE_ROWS_V1 => (RowsKind::Write, 1),
            UPDATE_ROWS_V1 => (RowsKind::Update, 1),
            DELETE_ROWS_V1 => (RowsKind::Delete, 1),
            WRITE_ROWS_V2 => (RowsKind::Write, 2),
            UPDATE_ROWS_V2 => (RowsKind::Update, 2),
            DELETE_ROWS_V2 => (RowsKind::Delete, 2),
            _ => return None,
        })
    }

    /// Parses the header of a v1/v2 WRITE/UPDATE/DELETE rows event body.
    pub fn parse(event_type: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        check_supported(event_type)?;
        let Some((kind, version)) = Self::kind_of(event_type) else {
            return Err(DecodeError::malformed(
                "rows event",
                "not a rows event type",
            ));
        };
        let mut r = Reader::new(body);
        let table_id = r.uint_le(6, "rows event table id")?;
        let flags = r.uint_le(2, "rows event flags")? as u16;
        if version == 2 {
            let extra = r.uint_le(2, "rows event extra data length")? as usize;
            // the length counts its own two bytes
            let extra = extra
                .checked_sub(2)
                .ok_or_else(|| DecodeError::malformed("rows event extra data", "length below 2"))?;
            r.bytes(extra, "rows event extra data")?;
        }
        let column_count = r.lenenc_usize("rows event column count")?;
        let bitmap_len = column_count.div_ceil(8);
        let first = r.bytes(bitmap_len, "rows event columns-present bitmap")?;
        let (present_before, present_after) = match kind {
            RowsKind::Write => (&[][..], first),
            RowsKind::Delete => (first, &[][..]),
            RowsKind::Update => (
                first,
                r.bytes(bitmap_len, "rows event after-image columns bitmap")?,
            ),
        };
        Ok(Self {
            kind,
            table_id,
            flags,
            column_count,
            present_before,
            present_after,
            rows: r.rest(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// table map

/// One column of a table map: its binlog type and metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapColumn {
    /// The type code in the table map (`MYSQL_TYPE_*`).
    pub binlog_type: u8,
    /// The real type: for `MYSQL_TYPE_STRING` the one its metadata names (`STRING`, `ENUM`,
    /// `SET`), else `binlog_type`.
    pub real_type: u8,
    /// The metadata, normalized: VARCHAR/VAR_STRING max bytes; STRING/ENUM/SET max bytes or
    /// storage size; BLOB/TEXT/JSON/GEOMETRY length-prefix size; FLOAT/DOUBLE size; BIT
    /// `bytes << 8 | bits`; NEWDECIMAL `precision << 8 | scale`; TIME2/DATETIME2/TIMESTAMP2 fsp.
    pub meta: u16,
}

/// `MYSQL_TYPE_*` codes as they appear in table maps.
pub mod mysql_type {
    #![allow(missing_docs)]
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const VECTOR: u8 = 242;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// What `binlog_row_metadata = FULL` adds to a table map (each part optional: MINIMAL writes
/// only signedness and charsets on MySQL, nothing on older MariaDB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionalMetadata {
    /// Per column: `Some(true)` when UNSIGNED (numeric columns only).
    pub unsigned: Vec<Option<bool>>,
    /// Per column: collation id (character, ENUM and SET columns).
    pub collation: Vec<Option<u16>>,
    /// Column names, when written (FULL).
    pub names: Vec<String>,
    /// Per column: ENUM or SET labels (FULL), empty for other columns.
    pub labels: Vec<Vec<String>>,
    /// Per column: the GEOMETRY subtype code (FULL).
    pub geometry_type: Vec<Option<u32>>,
    /// Primary-key column indexes in key order (FULL), when the table has one.
    pub primary_key: Vec<usize>,
    /// Whether any optional metadata was present at all.
    pub present: bool,
}

/// A parsed `TABLE_MAP_EVENT`: everything needed to lay out and decode the rows that follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMapInfo {
    /// The number rows events use to refer to this map.
    pub table_id: u64,
    /// Database name.
    pub database: String,
    /// Table name.
    pub table: String,
    /// Per column: type and metadata.
    pub columns: Vec<MapColumn>,
    /// Per column: whether NULL is allowed.
    pub nullable: Vec<bool>,
    /// Optional metadata.
    pub optional: OptionalMetadata,
}

fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Which server wrote the binlog: the optional metadata of table maps differs in which columns
/// count as numeric and as character columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// MySQL (5.7, 8.x, 9.x).
    MySql,
    /// MariaDB.
    MariaDb,
}

impl Flavor {
    /// The flavor of a server version string (`10.11.6-MariaDB-log`, `8.0.36`), as the
    /// format description event and `SELECT VERSION()` give it.
    pub fn from_server_version(version: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    /// The flavor named by a format description event body (server version at bytes 2..52).
    pub fn from_format_description(body: &[u8]) -> Self {
        let version = body.get(2..52).unwrap_or_default();
        let end = version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(version.len());
        Self::from_server_version(&String::from_utf8_lossy(&version[..end]))
    }
}

/// Whether a column of this real type has a signedness bit in the optional metadata.
fn is_numeric(real: u8, flavor: Flavor) -> bool {
    use mysql_type::*;
    match real {
        TINY | SHORT | INT24 | LONG | LONGLONG | NEWDECIMAL | FLOAT | DOUBLE | DECIMAL => true,
        // MariaDB counts YEAR (an unsigned number to it); MySQL does not.
        YEAR => flavor == Flavor::MariaDb,
        _ => false,
    }
}

/// Whether a column of this real type has a character set in the optional metadata.
fn is_character(real: u8, flavor: Flavor) -> bool {
    use mysql_type::*;
    match real {
        STRING | VAR_STRING | VARCHAR | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB => true,
        // MariaDB treats GEOMETRY as the BLOB it is stored as; MySQL leaves it out.
        GEOMETRY => flavor == Flavor::MariaDb,
        _ => false,
    }
}

impl TableMapInfo {
    /// Parses a `TABLE_MAP_EVENT` body (6-byte table ids, as every v4 binlog writes them)
    /// written by a server of `flavor`.
    pub fn parse(body: &[u8], flavor: Flavor) -> Result<Self, DecodeError> {
        use mysql_type::*;
        let mut r = Reader::new(body);
        let table_id = r.uint_le(6, "table map table id")?;
        r.bytes(2, "table map flags")?;
        let db_len = usize::from(r.u8("table map database name length")?);
        let database =
            String::from_utf8_lossy(r.bytes(db_len, "table map database name")?).into_owned();
        r.bytes(1, "table map database name terminator")?;
        let t_len = usize::from(r.u8("table map table name length")?);
        let table = String::from_utf8_lossy(r.bytes(t_len, "table map table name")?).into_owned();
        r.bytes(1, "table map table name terminator")?;
        let count = r.lenenc_usize("table map column count")?;
        let types = r.bytes(count, "table map column types")?;
        let meta = r.lenenc_bytes("table map column metadata")?;
        let mut m = Reader::new(meta);
        let mut columns = Vec::with_capacity(count);
        for &t in types {
            let (real, meta) = match t {
                FLOAT | DOUBLE | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | JSON | GEOMETRY
                | VECTOR | TIMESTAMP2 | DATETIME2 | TIME2 => {
                    (t, u16::from(m.u8("column metadata")?))
                }
                VARCHAR | VAR_STRING => (t, m.uint_le(2, "column metadata")? as u16),
                BIT => {
                    let bits = m.u8("column metadata")?;
                    let bytes = m.u8("column metadata")?;
                    (t, u16::from(bytes) << 8 | u16::from(bits))
                }
                NEWDECIMAL => {
                    let precision = m.u8("column metadata")?;
                    let scale = m.u8("column metadata")?;
                    (t, u16::from(precision) << 8 | u16::from(scale))
                }
                STRING | ENUM | SET => {
                    let b0 = m.u8("column metadata")?;
                    let b1 = m.u8("column metadata")?;
                    // Lengths above 255 borrow two bits of the type byte (XORed with 0x30),
                    // as the server's Field_string writes them.
                    if b0 & 0x30 != 0x30 {
                        (
                            b0 | 0x30,
                            u16::from(b1) | (u16::from((b0 & 0x30) ^ 0x30) << 4),
                        )
                    } else {
                        (b0, u16::from(b1))
                    }
                }
                DECIMAL | TINY | SHORT | LONG | NULL | TIMESTAMP | LONGLONG | INT24 | DATE
                | TIME | DATETIME | YEAR | NEWDATE => (t, 0),
                other => return Err(DecodeError::UnknownBinlogType { code: other }),
            };
            columns.push(MapColumn {
                binlog_type: t,
                real_type: real,
                meta,
            });
        }
        let null_bitmap = r.bytes(count.div_ceil(8), "table map null bitmap")?;
        let nullable = (0..count).map(|i| bit(null_bitmap, i)).collect();
        let optional = parse_optional(r.rest(), &columns, flavor)?;
        Ok(Self {
            table_id,
            database,
            table,
            columns,
            nullable,
            optional,
        })
    }
}

fn parse_optional(
    data: &[u8],
    columns: &[MapColumn],
    flavor: Flavor,
) -> Result<OptionalMetadata, DecodeError> {
    let n = columns.len();
    let mut o = OptionalMetadata {
        present: !data.is_empty(),
        ..Default::default()
    };
    let numeric: Vec<usize> = (0..n)
        .filter(|&i| is_numeric(columns[i].real_type, flavor))
        .collect();
    let character: Vec<usize> = (0..n)
        .filter(|&i| is_character(columns[i].real_type, flavor))
        .collect();
    let of_real =
        |ty: u8| -> Vec<usize> { (0..n).filter(|&i| columns[i].real_type == ty).collect() };
    let enum_and_set: Vec<usize> = (0..n)
        .filter(|&i| matches!(columns[i].real_type, mysql_type::ENUM | mysql_type::SET))
        .collect();
    let mut r = Reader::new(data);
    while r.remaining() > 0 {
        let field = r.u8("optional metadata field type")?;
        let value = r.lenenc_bytes("optional metadata field")?;
        let mut v = Reader::new(value);
        match field {
            1 => {
                o.unsigned = vec![None; n];
                for (k, &col) in numeric.iter().enumerate() {
                    // most significant bit first
                    let byte = value.get(k / 8).copied().unwrap_or(0);
                    o.unsigned[col] = Some(byte & (0x80 >> (k % 8)) != 0);
                }
            }
            2 | 10 => {
                let targets = if field == 2 {
                    &character
                } else {
                    &enum_and_set
                };
                resize(&mut o.collation, n);
                let default = v.lenenc("default charset")? as u16;
                for &col in targets {
                    o.collation[col] = Some(default);
                }
                while v.remaining() > 0 {
                    let k = v.lenenc_usize("charset column index")?;
                    let coll = v.lenenc("charset collation")? as u16;
                    if let Some(&col) = targets.get(k) {
                        o.collation[col] = Some(coll);
                    }
                }
            }
            3 | 11 => {
                let targets = if field == 3 {
                    &character
                } else {
                    &enum_and_set
                };
                resize(&mut o.collation, n);
                for &col in targets {
                    if v.remaining() == 0 {
                        break;
                    }
                    o.collation[col] = Some(v.lenenc("column charset")? as u16);
                }
            }
            4 => {
                o.names.clear();
                while v.remaining() > 0 && o.names.len() < n {
                    let name = v.lenenc_bytes("column name")?;
                    o.names.push(String::from_utf8_lossy(name).into_owned());
                }
            }
            5 | 6 => {
                let targets = of_real(if field == 5 {
                    mysql_type::SET
                } else {
                    mysql_type::ENUM
                });
                if o.labels.len() < n {
                    o.labels.resize(n, Vec::new());
                }
                for &col in &targets {
                    if v.remaining() == 0 {
                        break;
                    }
                    let count = v.lenenc_usize("label count")?;
                    if count > v.remaining() {
                        return Err(DecodeError::truncated("ENUM/SET labels", v.pos()));
                    }
                    let mut labels = Vec::with_capacity(count);
                    for _ in 0..count {
                        labels.push(String::from_utf8_lossy(v.lenenc_bytes("label")?).into_owned());
                    }
                    o.labels[col] = labels;
                }
            }
            7 => {
                o.geometry_type = vec![None; n];
                for col in of_real(mysql_type::GEOMETRY) {
                    if v.remaining() == 0 {
                        break;
                    }
                    o.geometry_type[col] = Some(v.lenenc("geometry type")? as u32);
                }
            }
            8 => {
                o.primary_key.clear();
                while v.remaining() > 0 {
                    let idx = v.lenenc_usize("primary key column")?;
                    if idx < n {
                        o.primary_key.push(idx);
                    }
                }
            }
            9 => {
                o.primary_key.clear();
                while v.remaining() > 0 {
                    let idx = v.lenenc_usize("primary key column")?;
                    v.lenenc("primary key prefix")?;
                    if idx < n {
                        o.primary_key.push(idx);
                    }
                }
            }
            // column visibility, vector dimensions and future fields: not needed
            _ => {}
        }
    }
    Ok(o)
}

fn resize(v: &mut Vec<Option<u16>>, n: usize) {
    if v.len() < n {
        v.resize(n, None);
    }
}
