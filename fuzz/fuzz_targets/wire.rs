//! Feeds arbitrary bytes to the replication frame decoder, the pgoutput
//! decoder behind it, and the LSN parser.
//!
//! Seeds live in `fuzz/corpus/wire/` (one `CopyData` payload per file); the
//! library's unit tests replay them so CI catches regressions without building
//! this target.

#![no_main]

use cdc_codec::postgres::pgoutput;
use cdc_codec::postgres::wire::{
    decode_frame, encode_standby_status, Lsn, ReplicationFrame, STANDBY_STATUS_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_frame(data) {
        Ok(ReplicationFrame::XLogData(x)) => {
            for in_stream in [false, true] {
                if let Ok(msg) = pgoutput::decode(x.data, in_stream) {
                    let _ = format!("{msg:?}");
                }
            }
        }
        Ok(ReplicationFrame::PrimaryKeepalive(k)) => {
            let mut out = Vec::new();
            encode_standby_status(
                k.wal_end,
                k.wal_end,
                k.wal_end,
                k.server_time,
                k.reply_requested,
                &mut out,
            );
            assert_eq!(out.len(), STANDBY_STATUS_LEN);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(lsn) = text.parse::<Lsn>() {
            assert_eq!(lsn.to_string().parse::<Lsn>(), Ok(lsn));
        }
    }
});
