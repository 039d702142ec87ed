//! Feeds arbitrary bytes to the MySQL/MariaDB binlog decoding layer: the event splitter and
//! checksum check, the MariaDB and MySQL GTID parsers, the table-map parser (both flavors), the
//! row-image decoder of every column type and the binary-JSON reader.
//!
//! Seeds live in `fuzz/corpus/binlog/` (binlog files or runs of events, e.g. a captured MariaDB
//! binlog with every column type); the library's unit tests replay them so CI catches
//! regressions without building this target.

#![no_main]

use cdc_codec::mysql::types::fuzz_one;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_one(data);
});
