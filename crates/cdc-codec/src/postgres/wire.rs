//! Streaming-replication framing for the PostgreSQL walsender protocol.
//!
//! Once `START_REPLICATION` succeeds, the server and client exchange
//! `CopyData` messages whose payloads are tiny tagged frames: the server sends
//! `XLogData` (`'w'`, carrying one pgoutput message) and primary keepalives
//! (`'k'`), and the client answers with standby status updates (`'r'`) that
//! report how far it has durably processed the stream. This module turns those
//! payloads into values and back.
//!
//! It also owns the vocabulary shared with [`super::pgoutput`]: PostgreSQL-epoch
//! timestamp conversion and [`DecodeError`]; the [`Lsn`] newtype (re-exported here) lives in
//! [`crate::lsn`] because checkpoints and the ledger use it too.
//!
//! Everything here is pure — bytes in, values out, no I/O, no clocks, no
//! logging — so that the exact code the daemon runs on untrusted network
//! bytes can be fuzzed directly and can never panic: every read is a checked
//! slice access and every length computation is checked.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Why a replication frame or pgoutput message could not be decoded.
///
/// Offsets are byte positions within the buffer handed to the decoder, so a
/// failure can be matched against a hex dump of the offending payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ended before `what` was complete.
    #[error("truncated {what} at offset {offset}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where that field started.
        offset: usize,
    },
    /// A tag byte (message type, tuple column kind, ...) has no known meaning.
    #[error("unknown {what} tag 0x{tag:02x} at offset {offset}")]
    UnknownTag {
        /// Which kind of tag was being read.
        what: &'static str,
        /// The unrecognised byte.
        tag: u8,
        /// Where the tag byte sits.
        offset: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("invalid utf-8 in {what} at offset {offset}")]
    BadUtf8 {
        /// The string field.
        what: &'static str,
        /// Where the string started.
        offset: usize,
    },
    /// A field holds a value the protocol never produces (e.g. a negative length).
    #[error("invalid {what} at offset {offset}")]
    Invalid {
        /// The offending field.
        what: &'static str,
        /// Where that field started.
        offset: usize,
    },
    /// The message decoded completely but bytes were left over, which usually
    /// means the decoder was given the wrong context (e.g. stream state).
    #[error("{count} trailing bytes after {what} at offset {offset}")]
    TrailingBytes {
        /// The message that was decoded.
        what: &'static str,
        /// Where the unexpected bytes begin.
        offset: usize,
        /// How many bytes were left over.
        count: usize,
    },
    /// A well-formed message arrived where the protocol does not allow it.
    #[error("out-of-sequence message: {what}")]
    OutOfSequence {
        /// What was out of place.
        what: &'static str,
    },
}

impl DecodeError {
    /// The byte offset the error refers to, if it refers to one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            Self::Truncated { offset, .. }
            | Self::UnknownTag { offset, .. }
            | Self::BadUtf8 { offset, .. }
            | Self::Invalid { offset, .. }
            | Self::TrailingBytes { offset, .. } => Some(offset),
            Self::OutOfSequence { .. } => None,
        }
    }
}

pub use crate::lsn::{Lsn, ParseLsnError};

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 UTC).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Converts a PostgreSQL timestamp (µs since 2000-01-01 UTC) to µs since the
/// Unix epoch.
///
/// Returns `None` when the result does not fit in an `i64`, which is the case
/// for PostgreSQL's `infinity` sentinel (`i64::MAX`).
pub const fn pg_us_to_unix_us(pg_us: i64) -> Option<i64> {
    pg_us.checked_add(PG_EPOCH_OFFSET_US)
}

/// Converts µs since the Unix epoch to a PostgreSQL timestamp (µs since
/// 2000-01-01 UTC), or `None` if the result does not fit in an `i64`.
pub const fn unix_us_to_pg_us(unix_us: i64) -> Option<i64> {
    unix_us.checked_sub(PG_EPOCH_OFFSET_US)
}

/// WAL data sent by the server (`'w'`); `data` is one pgoutput message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XLogData<'a> {
    /// WAL position at which `data` starts.
    pub wal_start: Lsn,
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// Server clock at transmission, µs since 2000-01-01.
    pub server_time: i64,
    /// The payload, borrowed from the frame.
    pub data: &'a [u8],
}

/// Primary keepalive (`'k'`), sent when the server has nothing else to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryKeepalive {
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// Server clock at transmission, µs since 2000-01-01.
    pub server_time: i64,
    /// The server wants a standby status update immediately, typically
    /// because it is about to time the connection out.
    pub reply_requested: bool,
}

/// A server-to-client `CopyData` payload on a replication connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationFrame<'a> {
    /// `'w'`: WAL data.
    XLogData(XLogData<'a>),
    /// `'k'`: keepalive.
    PrimaryKeepalive(PrimaryKeepalive),
}

const XLOG_DATA_HEADER_LEN: usize = 1 + 8 + 8 + 8;
const KEEPALIVE_LEN: usize = 1 + 8 + 8 + 1;

/// Length in bytes of a standby status update produced by [`encode_standby_status`].
pub const STANDBY_STATUS_LEN: usize = 1 + 8 + 8 + 8 + 8 + 1;

fn be_u64(buf: &[u8], offset: usize, what: &'static str) -> Result<u64, DecodeError> {
    offset
        .checked_add(8)
        .and_then(|end| buf.get(offset..end))
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_be_bytes)
        .ok_or(DecodeError::Truncated { what, offset })
}

fn be_i64(buf: &[u8], offset: usize, what: &'static str) -> Result<i64, DecodeError> {
    be_u64(buf, offset, what).map(|v| i64::from_be_bytes(v.to_be_bytes()))
}

/// Decodes the payload of one server-sent `CopyData` message.
///
/// `XLogData` borrows its payload from `buf`; nothing is copied.
pub fn decode_frame(buf: &[u8]) -> Result<ReplicationFrame<'_>, DecodeError> {
    let Some(&tag) = buf.first() else {
        return Err(DecodeError::Truncated {
            what: "frame tag",
            offset: 0,
        });
    };
    match tag {
        b'w' => {
            let wal_start = Lsn(be_u64(buf, 1, "xlogdata wal start")?);
            let wal_end = Lsn(be_u64(buf, 9, "xlogdata wal end")?);
            let server_time = be_i64(buf, 17, "xlogdata server time")?;
            let data = buf
                .get(XLOG_DATA_HEADER_LEN..)
                .ok_or(DecodeError::Truncated {
                    what: "xlogdata payload",
                    offset: XLOG_DATA_HEADER_LEN,
                })?;
            Ok(ReplicationFrame::XLogData(XLogData {
                wal_start,
                wal_end,
                server_time,
                data,
            }))
        }
        b'k' => {
            let wal_end = Lsn(be_u64(buf, 1, "keepalive wal end")?);
            let server_time = be_i64(buf, 9, "keepalive server time")?;
            let reply = *buf.get(17).ok_or(DecodeError::Truncated {
                what: "keepalive reply flag",
                offset: 17,
            })?;
            if buf.len() > KEEPALIVE_LEN {
                return Err(DecodeError::TrailingBytes {
                    what: "keepalive",
                    offset: KEEPALIVE_LEN,
                    count: buf.len().saturating_sub(KEEPALIVE_LEN),
                });
            }
            Ok(ReplicationFrame::PrimaryKeepalive(PrimaryKeepalive {
                wal_end,
                server_time,
                // The server only ever sends 0 or 1; treating any non-zero as
                // "reply" errs on the side of keeping the connection alive.
                reply_requested: reply != 0,
            }))
        }
        other => Err(DecodeError::UnknownTag {
            what: "replication frame",
            tag: other,
            offset: 0,
        }),
    }
}

/// Appends a standby status update (`'r'`, [`STANDBY_STATUS_LEN`] bytes) to
/// `out`, ready to be wrapped in a `CopyData` message.
///
/// `flush_lsn` is what lets the server recycle WAL and advance the slot's
/// `confirmed_flush_lsn`, so it must only cover changes that are durably
/// delivered downstream. `client_time_pg_us` is µs since 2000-01-01 (see
/// [`unix_us_to_pg_us`]); the caller supplies it so this stays clock-free.
/// Setting `reply_requested` asks the server to answer with a keepalive.
pub fn encode_standby_status(
    write_lsn: Lsn,
    flush_lsn: Lsn,
    apply_lsn: Lsn,
    client_time_pg_us: i64,
    reply_requested: bool,
    out: &mut Vec<u8>,
) {
    out.reserve(STANDBY_STATUS_LEN);
    out.push(b'r');
    out.extend_from_slice(&write_lsn.0.to_be_bytes());
    out.extend_from_slice(&flush_lsn.0.to_be_bytes());
    out.extend_from_slice(&apply_lsn.0.to_be_bytes());
    out.extend_from_slice(&client_time_pg_us.to_be_bytes());
    out.push(u8::from(reply_requested));
}

#[cfg(test)]
mod tests {
    use super::super::pgoutput;
    use super::*;

    fn xlogdata(start: u64, end: u64, time: i64, data: &[u8]) -> Vec<u8> {
        let mut v = vec![b'w'];
        v.extend_from_slice(&start.to_be_bytes());
        v.extend_from_slice(&end.to_be_bytes());
        v.extend_from_slice(&time.to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn keepalive(end: u64, time: i64, reply: u8) -> Vec<u8> {
        let mut v = vec![b'k'];
        v.extend_from_slice(&end.to_be_bytes());
        v.extend_from_slice(&time.to_be_bytes());
        v.push(reply);
        v
    }

    #[test]
    fn xlogdata_exposes_header_fields_and_borrowed_payload() {
        let frame = xlogdata(0x16_B374_D848, 0x17_0000_0000, -5, b"E");
        let ReplicationFrame::XLogData(x) = decode_frame(&frame).unwrap() else {
            panic!("expected xlogdata");
        };
        assert_eq!(x.wal_start, Lsn(0x16_B374_D848));
        assert_eq!(x.wal_end, Lsn(0x17_0000_0000));
        assert_eq!(x.server_time, -5);
        assert_eq!(x.data, b"E");
        assert!(std::ptr::eq(x.data.as_ptr(), frame[25..].as_ptr()));
    }

    #[test]
    fn xlogdata_with_empty_payload_is_accepted() {
        let frame = xlogdata(1, 2, 3, b"");
        let ReplicationFrame::XLogData(x) = decode_frame(&frame).unwrap() else {
            panic!("expected xlogdata");
        };
        assert!(x.data.is_empty());
    }

    #[test]
    fn keepalive_decodes_reply_requested_flag() {
        let frame = keepalive(0xAB, 42, 1);
        assert_eq!(
            decode_frame(&frame).unwrap(),
            ReplicationFrame::PrimaryKeepalive(PrimaryKeepalive {
                wal_end: Lsn(0xAB),
                server_time: 42,
                reply_requested: true,
            })
        );
        let quiet = keepalive(0xAB, 42, 0);
        let ReplicationFrame::PrimaryKeepalive(k) = decode_frame(&quiet).unwrap() else {
            panic!("expected keepalive");
        };
        assert!(!k.reply_requested);
    }

    #[test]
    fn keepalive_with_trailing_bytes_is_rejected() {
        let mut frame = keepalive(1, 2, 0);
        frame.push(0);
        assert_eq!(
            decode_frame(&frame),
            Err(DecodeError::TrailingBytes {
                what: "keepalive",
                offset: 18,
                count: 1
            })
        );
    }

    #[test]
    fn unknown_and_empty_frames_are_rejected() {
        assert_eq!(
            decode_frame(b"r"),
            Err(DecodeError::UnknownTag {
                what: "replication frame",
                tag: b'r',
                offset: 0
            })
        );
        assert!(matches!(
            decode_frame(b""),
            Err(DecodeError::Truncated { offset: 0, .. })
        ));
    }

    #[test]
    fn every_truncated_prefix_of_a_frame_is_an_error() {
        for frame in [xlogdata(1, 2, 3, b""), keepalive(1, 2, 1)] {
            for len in 0..frame.len() {
                assert!(
                    decode_frame(&frame[..len]).is_err(),
                    "prefix {len} of {frame:?}"
                );
            }
        }
    }

    #[test]
    fn standby_status_update_is_34_big_endian_bytes() {
        let mut out = Vec::new();
        encode_standby_status(Lsn(0x0102), Lsn(0x0304), Lsn(0x0506), -1, true, &mut out);
        assert_eq!(out.len(), STANDBY_STATUS_LEN);
        assert_eq!(out.len(), 34);
        assert_eq!(out[0], b'r');
        assert_eq!(&out[1..9], &0x0102u64.to_be_bytes());
        assert_eq!(&out[9..17], &0x0304u64.to_be_bytes());
        assert_eq!(&out[17..25], &0x0506u64.to_be_bytes());
        assert_eq!(&out[25..33], &[0xFF; 8]);
        assert_eq!(out[33], 1);
    }

    #[test]
    fn standby_status_update_appends_to_existing_buffer() {
        let mut out = vec![0xAA];
        encode_standby_status(Lsn(1), Lsn(1), Lsn(1), 0, false, &mut out);
        assert_eq!(out.len(), 1 + STANDBY_STATUS_LEN);
        assert_eq!(out[0], 0xAA);
        assert_eq!(out[34], 0);
    }

    #[test]
    fn pg_timestamps_convert_to_and_from_unix_microseconds() {
        assert_eq!(pg_us_to_unix_us(0), Some(946_684_800_000_000));
        assert_eq!(unix_us_to_pg_us(946_684_800_000_000), Some(0));
        // 2024-01-01T00:00:00Z
        assert_eq!(
            pg_us_to_unix_us(757_382_400_000_000),
            Some(1_704_067_200_000_000)
        );
        assert_eq!(pg_us_to_unix_us(i64::MAX), None);
        assert_eq!(unix_us_to_pg_us(i64::MIN), None);
    }

    #[test]
    fn decode_error_messages_are_lowercase_and_carry_offsets() {
        let err = decode_frame(b"k\0").unwrap_err();
        assert_eq!(err.to_string(), "truncated keepalive wal end at offset 1");
        assert_eq!(err.offset(), Some(1));
        assert_eq!(
            DecodeError::OutOfSequence { what: "x" }.to_string(),
            "out-of-sequence message: x"
        );
        assert!("x"
            .parse::<Lsn>()
            .unwrap_err()
            .to_string()
            .starts_with("invalid lsn"));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let len = (next() % 48) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Bias towards real tags so the field decoders are reached.
            if let Some(first) = buf.first_mut() {
                *first = [b'w', b'k', *first][(next() % 3) as usize];
            }
            let _ = decode_frame(&buf);
            if let Ok(s) = std::str::from_utf8(&buf) {
                let _ = s.parse::<Lsn>();
            }
        }
    }

    fn corpus_files(dir: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {dir}: {e}")) {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
        assert!(!files.is_empty(), "corpus {dir} is empty");
        files
    }

    #[test]
    fn every_wire_corpus_file_decodes_without_panicking() {
        for (path, bytes) in corpus_files(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/wire"
        )) {
            let result = std::panic::catch_unwind(|| {
                if let Ok(ReplicationFrame::XLogData(x)) = decode_frame(&bytes) {
                    for in_stream in [false, true] {
                        if let Ok(msg) = pgoutput::decode(x.data, in_stream) {
                            let _ = format!("{msg:?}");
                        }
                    }
                }
            });
            assert!(result.is_ok(), "decoder panicked on {}", path.display());
        }
    }
}
