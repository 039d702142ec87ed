//! Feeds arbitrary bytes to the parsers of column values that databases send as text: every
//! PostgreSQL pgoutput text decoder (scalars, arrays, hstore, domains; the first byte picks
//! the type) and the MySQL/MariaDB snapshot parsers (integers, DATETIME, TIME, DECIMAL).
//!
//! Seeds live in `fuzz/corpus/values/` (a type byte, a flags byte, then the text); the
//! library's unit tests replay them so CI catches regressions without building this target.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cdc_codec::postgres::types::fuzz_one(data);
    cdc_codec::mysql::types::fuzz_text(data);
});
