//! `ddl::apply` agrees with the server: every statement below runs on the stack's MariaDB and
//! through `apply`, and after each one the catalog `apply` built equals what
//! information_schema says about the same tables (names, order, types, lengths, precision,
//! nullability, character sets, ENUM/SET labels, primary key).

use crate::common;

use cdc_agent::source::mysql::catalog::{
    charset_of_collation, default_from_information_schema, Catalog, ColumnDef, TableDef,
};
use cdc_agent::source::mysql::ddl::{self, DdlOutcome};
use common::{stack_env, unique_name};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};

async fn connect() -> Conn {
    Conn::new(Opts::from_url(&stack_env("MYSQL_URL")).unwrap())
        .await
        .unwrap_or_else(|e| panic!("connect to MariaDB: {e}"))
}

/// The test's own information_schema reader (the source's loader lives in schema.rs).
async fn load(conn: &mut Conn, db: &str) -> Catalog {
    let mut cat = Catalog::default();
    let rows: Vec<Row> = conn
        .exec(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE, \
                    c.CHARACTER_MAXIMUM_LENGTH, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, \
                    c.DATETIME_PRECISION, c.CHARACTER_SET_NAME, c.COLUMN_DEFAULT \
             FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
               ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
             WHERE c.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE' \
             ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
            (db,),
        )
        .await
        .unwrap();
    for r in rows {
        let table: String = r.get(0).unwrap();
        let column_type: String = r.get::<String, _>(3).unwrap().to_lowercase();
        let data_type: String = r.get::<String, _>(2).unwrap().to_lowercase();
        let enum_values = if data_type == "enum" || data_type == "set" {
            labels(&column_type)
        } else {
            Vec::new()
        };
        let default = default_from_information_schema(
            &data_type,
            r.get::<Option<String>, _>(10).unwrap().as_deref(),
        );
        let col = ColumnDef {
            name: r.get(1).unwrap(),
            unsigned: column_type.contains(" unsigned"),
            data_type,
            column_type,
            nullable: r.get::<String, _>(4).unwrap() == "YES",
            char_max_length: r.get::<Option<u64>, _>(5).unwrap(),
            numeric_precision: r.get::<Option<u32>, _>(6).unwrap(),
            numeric_scale: r.get::<Option<u32>, _>(7).unwrap(),
            datetime_precision: r.get::<Option<u32>, _>(8).unwrap(),
            charset: r.get::<Option<String>, _>(9).unwrap(),
            enum_values,
            default,
        };
        let key = (db.to_owned(), table.clone());
        cat.tables
            .entry(key)
            .or_insert_with(|| TableDef {
                database: db.to_owned(),
                name: table,
                columns: Vec::new(),
                primary_key: Vec::new(),
            })
            .columns
            .push(col);
    }
    let pks: Vec<(String, String)> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_NAME, SEQ_IN_INDEX",
            (db,),
        )
        .await
        .unwrap();
    for (t, c) in pks {
        if let Some(def) = cat.tables.get_mut(&(db.to_owned(), t)) {
            def.primary_key.push(c);
        }
    }
    let colls: Vec<(String, String)> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
            (db,),
        )
        .await
        .unwrap();
    for (t, c) in colls {
        cat.table_charsets
            .insert((db.to_owned(), t), charset_of_collation(&c));
    }
    cat
}

/// `enum('a','b''c')` → `a`, `b'c`.
fn labels(column_type: &str) -> Vec<String> {
    let inner = &column_type[column_type.find('(').unwrap() + 1..column_type.rfind(')').unwrap()];
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            '\'' => {
                quoted = !quoted;
                if !quoted {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c if quoted => cur.push(c),
            _ => {}
        }
    }
    out
}

fn diff(db: &str, ours: &Catalog, theirs: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<_> = ours
        .tables
        .keys()
        .chain(theirs.tables.keys())
        .cloned()
        .collect();
    for k in keys {
        match (ours.tables.get(&k), theirs.tables.get(&k)) {
            (Some(a), Some(b)) => {
                if a.columns.len() != b.columns.len() {
                    out.push(format!(
                        "{}: columns {:?} vs server {:?}",
                        k.1,
                        a.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
                        b.columns.iter().map(|c| &c.name).collect::<Vec<_>>()
                    ));
                }
                for (x, y) in a.columns.iter().zip(&b.columns) {
                    if x != y {
                        out.push(format!(
                            "{}.{}:\n  ours   {x:?}\n  server {y:?}",
                            k.1, x.name
                        ));
                    }
                }
                if a.primary_key != b.primary_key {
                    out.push(format!(
                        "{}: pk {:?} vs server {:?}",
                        k.1, a.primary_key, b.primary_key
                    ));
                }
                let (ca, cb) = (ours.table_charsets.get(&k), theirs.table_charsets.get(&k));
                if ca != cb {
                    out.push(format!("{}: table charset {ca:?} vs server {cb:?}", k.1));
                }
            }
            (a, b) => out.push(format!(
                "{db}.{}: ours {} server {}",
                k.1,
                if a.is_some() { "has it" } else { "lacks it" },
                if b.is_some() { "has it" } else { "lacks it" }
            )),
        }
    }
    out
}

/// Statements run in order in a fresh database whose default character set is latin1 (the
/// server's is utf8mb4), so inheritance from table, database and server is exercised.
const STATEMENTS: &[&str] = &[
    "CREATE TABLE ints (a TINYINT, b TINYINT UNSIGNED, c SMALLINT, d SMALLINT(5) UNSIGNED, \
     e MEDIUMINT, f MEDIUMINT UNSIGNED, g INT, h INT(11) UNSIGNED, i INTEGER, j BIGINT, \
     k BIGINT UNSIGNED NOT NULL, l BOOL, m BOOLEAN, n TINYINT(1), o INT ZEROFILL, \
     p INT(5) UNSIGNED ZEROFILL, q INT1, r INT8, s MIDDLEINT, t SERIAL)",
    "CREATE TABLE nums (a DECIMAL, b DECIMAL(5), c DECIMAL(10,2) UNSIGNED, d NUMERIC(12,4), \
     e DEC(4,1), f FIXED, g FLOAT, h FLOAT(7,3), i FLOAT(30), j DOUBLE, k DOUBLE(10,2), \
     l DOUBLE PRECISION, m REAL, n FLOAT UNSIGNED, o BIT, p BIT(64), q FLOAT(10))",
    "CREATE TABLE times (a DATE, b TIME, c TIME(3), d DATETIME, e DATETIME(6), \
     f TIMESTAMP NULL, g TIMESTAMP(2) NOT NULL DEFAULT CURRENT_TIMESTAMP(2) ON UPDATE CURRENT_TIMESTAMP(2), \
     h YEAR, i YEAR(4))",
    "CREATE TABLE `strs` (`id` int NOT NULL AUTO_INCREMENT, a CHAR, b CHAR(10), c VARCHAR(20), \
     d VARCHAR(30) CHARACTER SET utf8mb4, e VARCHAR(5) COLLATE utf8mb4_bin, \
     f TEXT, g TINYTEXT, h MEDIUMTEXT, i LONGTEXT, j TEXT(100), k TEXT CHARACTER SET utf8mb4, \
     l BINARY, m BINARY(16), n VARBINARY(200), o BLOB, p TINYBLOB, q MEDIUMBLOB, r LONGBLOB, \
     s BLOB(300), t VARCHAR(10) BINARY, u CHAR(3) CHARSET ascii, v NATIONAL VARCHAR(10), \
     w NCHAR(2), x VARCHAR(8) CHARACTER SET binary, y JSON, z TEXT(70000) CHARACTER SET utf8mb4, \
     PRIMARY KEY (`id`)) ENGINE=InnoDB",
    "CREATE TABLE enums (id INT PRIMARY KEY, e ENUM('a','bb','c''q') NOT NULL DEFAULT 'a', \
     s SET('x','yy','zzz'), e2 ENUM('only') CHARACTER SET utf8mb4, s2 SET('a') COLLATE latin1_bin) \
     DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    "CREATE TABLE IF NOT EXISTS `other` (\n  `k1` int(11) NOT NULL, -- a comment\n  `k2` varchar(10) NOT NULL /* another */,\n  `v` geometry DEFAULT NULL,\n  `p` point, `u` uuid, `ip` inet6, `ip4` inet4, \n  CONSTRAINT `pk_other` PRIMARY KEY (`k2`, `k1`) USING BTREE,\n  KEY `iv` (`k1`),\n  CONSTRAINT `c1` CHECK (`k1` > 0)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci COMMENT='t'",
    "CREATE TABLE gen (a INT, b INT AS (a * 2) VIRTUAL, c INT GENERATED ALWAYS AS (a + 1) STORED, \
     d VARCHAR(10) AS (CONCAT('x', a)) PERSISTENT, e INT INVISIBLE)",
    "CREATE TABLE strs_copy LIKE strs",
    "CREATE TABLE IF NOT EXISTS strs_copy (x INT)",
    "ALTER TABLE ints ADD COLUMN z1 INT FIRST, ADD z2 VARCHAR(3) AFTER c, DROP COLUMN e, \
     MODIFY b VARCHAR(30) NOT NULL, CHANGE d dd DECIMAL(12,4), RENAME COLUMN f TO f2",
    "ALTER TABLE ints ADD PRIMARY KEY (z1, dd)",
    "ALTER TABLE ints DROP PRIMARY KEY, ADD CONSTRAINT pk2 PRIMARY KEY (k)",
    "ALTER TABLE ints ADD COLUMN IF NOT EXISTS z1 INT, ADD COLUMN IF NOT EXISTS z3 BIGINT, \
     DROP COLUMN IF EXISTS nope, ALGORITHM=COPY, LOCK=SHARED",
    "ALTER TABLE ints ADD (y1 INT NOT NULL, y2 CHAR(4)), ADD INDEX iy (y1), ENGINE=InnoDB",
    "ALTER TABLE ints MODIFY COLUMN y2 CHAR(8) CHARACTER SET utf8mb4 FIRST, CHANGE COLUMN y1 y1b BIGINT AFTER z2",
    "ALTER TABLE strs CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    "ALTER TABLE enums DEFAULT CHARACTER SET latin1, ADD COLUMN n VARCHAR(4)",
    "ALTER TABLE enums CHARSET = utf8mb3",
    "ALTER TABLE enums ADD m TEXT",
    "ALTER TABLE other RENAME TO other2",
    "ALTER TABLE other2 RENAME INDEX iv TO iv2, COMMENT = 'x', AUTO_INCREMENT = 5",
    "RENAME TABLE other2 TO other3, strs_copy TO strs_copy2",
    "TRUNCATE TABLE nums",
    "CREATE INDEX inum ON nums (a)",
    "ALTER TABLE nums ALTER COLUMN a SET DEFAULT 3",
    "DROP TABLE IF EXISTS times, nope /* generated by server */",
    "DROP TABLES strs_copy2",
    "ALTER TABLE gen DROP COLUMN e, ADD COLUMN f INT NOT NULL PRIMARY KEY",
    "ALTER TABLE nums MODIFY COLUMN a DECIMAL(8,3) NOT NULL COMMENT 'x' FIRST",
    "CREATE TABLE cs1 (a VARCHAR(5), b TEXT) CHARACTER SET = utf8mb4",
    "CREATE TABLE cs2 (a VARCHAR(5), b SET('p','q')) COLLATE utf8mb3_bin",
    "CREATE TABLE `we``ird` (`col``x` INT, `select` INT PRIMARY KEY, `ä` VARCHAR(2))",
    "ALTER TABLE `we``ird` CHANGE `col``x` `y` VARCHAR(3) CHARSET latin1 BINARY NOT NULL",
    "CREATE OR REPLACE TABLE cs1 (z INT UNSIGNED ZEROFILL, w TIME(6) NOT NULL)",
    "ALTER TABLE cs2 CONVERT TO CHARSET utf8mb4",
    "RENAME TABLE cs2 TO tmp, `we``ird` TO cs2, tmp TO `we``ird`",
    "ALTER TABLE strs DROP COLUMN id",
    "ALTER TABLE enums MODIFY e ENUM('a','bb','c''q','new') NOT NULL, MODIFY s SET('x') NULL",
    "ALTER IGNORE TABLE cs1 ADD COLUMN IF NOT EXISTS v VARCHAR(3) AFTER z",
    "/* leading comment */ ALTER TABLE `cs1` DROP w;",
    "ALTER TABLE gen DROP INDEX `PRIMARY`",
    "ALTER TABLE gen ADD PRIMARY KEY (f), DROP CONSTRAINT IF EXISTS nope",
    "DROP INDEX `PRIMARY` ON gen",
    "ALTER TABLE gen ADD CONSTRAINT PRIMARY KEY (a)",
    "ALTER TABLE gen DROP CONSTRAINT `PRIMARY`",
    "CREATE TABLE defs (id INT PRIMARY KEY, a INT NOT NULL DEFAULT -3, \
     b VARCHAR(10) NOT NULL DEFAULT 'it''s', c DOUBLE NOT NULL DEFAULT 1.50, \
     d TINYINT(1) NOT NULL DEFAULT TRUE, e INT NOT NULL DEFAULT '05', f VARCHAR(5) DEFAULT 5, \
     g TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, h BIGINT DEFAULT NULL, \
     i DECIMAL(5,2) NOT NULL DEFAULT 1.5, j ENUM('x','y') NOT NULL DEFAULT 'y')",
    "ALTER TABLE defs ADD COLUMN k INT NOT NULL DEFAULT 7, ALTER COLUMN a SET DEFAULT 4, \
     ALTER COLUMN b DROP DEFAULT, ALTER COLUMN f SET DEFAULT 'q'",
];

#[tokio::test]
async fn apply_builds_what_information_schema_says_after_every_statement() {
    let mut conn = connect().await;
    let db = unique_name("ddl_is");
    conn.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET latin1"))
        .await
        .unwrap();
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    let server_cs: String = conn
        .query_first("SELECT @@character_set_server")
        .await
        .unwrap()
        .unwrap();
    let mut cat = Catalog {
        server_charset: Some(server_cs),
        ..Catalog::default()
    };
    let out = ddl::apply(
        &mut cat,
        Some("demo"),
        &format!("CREATE DATABASE `{db}` CHARACTER SET latin1"),
    )
    .unwrap();
    assert_eq!(
        out,
        DdlOutcome::Changed {
            tables: vec![],
            dropped: vec![]
        }
    );
    assert_eq!(cat.databases.get(&db).map(String::as_str), Some("latin1"));

    let mut failures = Vec::new();
    for sql in STATEMENTS {
        conn.query_drop(*sql)
            .await
            .unwrap_or_else(|e| panic!("the server refuses `{sql}`: {e}"));
        if let Err(e) = ddl::apply(&mut cat, Some(&db), sql) {
            failures.push(format!("apply failed on `{sql}`: {e}"));
            continue;
        }
        let server = load(&mut conn, &db).await;
        let mut ours = cat.clone();
        ours.tables.retain(|(d, _), _| *d == db);
        ours.table_charsets.retain(|(d, _), _| *d == db);
        let d = diff(&db, &ours, &server);
        if !d.is_empty() {
            failures.push(format!("after `{sql}`:\n{}", d.join("\n")));
            // Continue from the server's truth so one mistake is reported once.
            cat.tables.retain(|(d, _), _| *d != db);
            cat.table_charsets.retain(|(d, _), _| *d != db);
            cat.tables.extend(server.tables);
            cat.table_charsets.extend(server.table_charsets);
        }
    }
    conn.query_drop(format!("DROP DATABASE `{db}`"))
        .await
        .unwrap();
    let out = ddl::apply(&mut cat, None, &format!("DROP DATABASE `{db}`")).unwrap();
    assert!(matches!(out, DdlOutcome::Changed { .. }));
    assert!(cat.tables.keys().all(|(d, _)| *d != db));
    println!(
        "{} statements compared with information_schema, {} mismatches",
        STATEMENTS.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
