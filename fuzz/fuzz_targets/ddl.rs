//! Feeds arbitrary text to the DDL parser as a binlog QUERY event's statement.
//!
//! Seeds live in `fuzz/corpus/ddl/` (one statement per file); the library's unit tests replay
//! them so CI catches regressions without building this target.

#![no_main]

use cdc_codec::mysql::catalog::Catalog;
use cdc_codec::mysql::ddl::{apply, schema_targets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let mut cat = Catalog::default();
    cat.server_charset = Some("utf8mb4".into());
    for seed in [
        "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b TEXT, e ENUM('x','y'))",
        "CREATE TABLE u (k BIGINT UNSIGNED NOT NULL, v DECIMAL(10,2), PRIMARY KEY (k))",
    ] {
        apply(&mut cat, Some("db"), seed).expect("seed statements apply");
    }
    let before = cat.clone();
    match apply(&mut cat, Some("db"), &sql) {
        Ok(_) => {}
        // A failed statement leaves the catalog untouched.
        Err(_) => assert_eq!(cat, before),
    }
    let _ = apply(&mut cat, None, &sql);
    let _ = schema_targets(Some("db"), &sql);
});
