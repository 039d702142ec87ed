//! Feeds arbitrary bytes to the pgoutput decoder in both stream contexts.
//!
//! Seeds live in `fuzz/corpus/pgoutput/` (one raw pgoutput message per file);
//! the library's unit tests replay them so CI catches regressions without
//! building this target.

#![no_main]

use cdc_codec::postgres::pgoutput::{decode, LogicalMessage, StreamTracker};
use libfuzzer_sys::fuzz_target;

fn exercise(msg: &LogicalMessage<'_>) {
    let tuples = match msg {
        LogicalMessage::Insert(m) => [Some(m.new), None],
        LogicalMessage::Update(m) => [m.old.map(|o| o.tuple()), Some(m.new)],
        LogicalMessage::Delete(m) => [Some(m.old.tuple()), None],
        _ => [None, None],
    };
    for tuple in tuples.into_iter().flatten() {
        // Validation at decode time promises iteration yields exactly len() columns.
        assert_eq!(tuple.iter().count(), tuple.len());
    }
    let _ = (msg.kind(), msg.xid(), format!("{msg:?}"));
}

fuzz_target!(|data: &[u8]| {
    for in_stream in [false, true] {
        if let Ok(msg) = decode(data, in_stream) {
            exercise(&msg);
        }
    }
    let mut tracker = StreamTracker::new();
    if let Ok(msg) = tracker.decode(data) {
        exercise(&msg);
    }
});
