//! Applies the DDL statements a binlog carries (QUERY events) to a [`Catalog`]. Pure: no I/O.
//!
//! Statements are tokenized and parsed with `sqlparser` (MySQL dialect). MariaDB accepts
//! syntax that parser does not (`ALTER TABLE … CONVERT TO CHARACTER SET`, `ADD COLUMN IF NOT
//! EXISTS`, `ADD (a INT, b INT)`, `ALGORITHM=…`, table options after `ALTER TABLE`, `PERSISTENT`
//! generated columns, `ZEROFILL`, the `BINARY` attribute, `WITH SYSTEM VERSIONING`, partition
//! clauses, `CREATE DATABASE … DEFAULT CHARACTER SET`). A narrow token-level pass of ours
//! handles those before and around the parser, so sqlparser still reads every column
//! definition: see `docs/decisions/0005-mysql-ddl-parsing.md`.
//!
//! The resulting [`ColumnDef`](crate::mysql::catalog::ColumnDef)s are normalized to what `information_schema.COLUMNS` says for
//! the same table on MariaDB 10.11 (`column_type` lower case with default display widths,
//! `char_max_length`, numeric precision/scale, datetime precision, the character set inherited
//! from the table, database or server).

mod alter;
mod column;
mod create;
mod objects;
mod tokens;

use alter::{alter_table, names_primary};
use create::create_table;
use objects::{database_stmt, drop_table, rename_tables, DbOp};
use tokens::{read_charset_option, read_name, split_commas};

use sqlparser::ast::ObjectName;
use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use super::catalog::Catalog;

/// What a statement did to the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DdlOutcome {
    /// Table definitions changed: `tables` hold new definitions (now in the catalog),
    /// `dropped` are gone (a rename drops the old name and adds the new one).
    Changed {
        /// `(database, table)` of every created or altered table.
        tables: Vec<(String, String)>,
        /// `(database, table)` of every dropped (or renamed-away) table.
        dropped: Vec<(String, String)>,
    },
    /// Not a statement that changes table definitions (`BEGIN`, `GRANT`, `TRUNCATE`, `CREATE
    /// INDEX`, views, routines, temporary tables, …).
    NotSchema,
}

/// A DDL statement that could not be applied. The catalog is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DdlError {
    /// A table-changing statement that cannot be parsed.
    #[error("cannot parse DDL statement `{statement}`: {reason}")]
    Parse {
        /// The statement (shortened).
        statement: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The statement changes a table the catalog does not know (for `ALTER TABLE`, `RENAME
    /// TABLE`, `CREATE TABLE … LIKE`).
    #[error("DDL statement `{statement}` changes table `{database}`.`{table}`, which the schema history does not know")]
    UnknownTable {
        /// Database.
        database: String,
        /// Table.
        table: String,
        /// The statement (shortened).
        statement: String,
    },
    /// An unqualified table name without a default database.
    #[error("DDL statement `{statement}` names table `{table}` without a database and ran without a default database")]
    NoDatabase {
        /// Table.
        table: String,
        /// The statement (shortened).
        statement: String,
    },
    /// A statement whose effect on the columns we cannot compute.
    #[error("DDL statement `{statement}` is not supported by the schema history: {what}")]
    Unsupported {
        /// The table concerned, when known.
        table: Option<(String, String)>,
        /// What is not supported.
        what: String,
        /// The statement (shortened).
        statement: String,
    },
}

impl DdlError {
    /// The `(database, table)` the failed statement concerns, when known: a source may ignore
    /// failures on tables it does not capture.
    pub fn table(&self) -> Option<(String, String)> {
        match self {
            DdlError::UnknownTable {
                database, table, ..
            } => Some((database.clone(), table.clone())),
            DdlError::Unsupported { table, .. } => table.clone(),
            DdlError::Parse { .. } | DdlError::NoDatabase { .. } => None,
        }
    }
}

/// Longest statement excerpt an error carries.
const EXCERPT: usize = 300;
/// Marker comment our token pass puts in place of `ZEROFILL` (sqlparser rejects it after
/// `UNSIGNED`), read back when building the column.
const ZEROFILL_MARK: &str = "\u{1}cdc-zerofill";

fn excerpt(sql: &str) -> String {
    let t = sql.trim();
    match t.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_owned(),
    }
}

/// Applies one statement of the binlog to `catalog`. `default_db` is the QUERY event's
/// default database (unqualified names resolve against it).
///
/// On error the catalog is unchanged.
pub fn apply(
    catalog: &mut Catalog,
    default_db: Option<&str>,
    sql: &str,
) -> Result<DdlOutcome, DdlError> {
    let ctx = Ctx {
        sql,
        default_db: default_db.filter(|d| !d.is_empty()),
    };
    let tokens = match Tokenizer::new(&MySqlDialect {}, sql).tokenize() {
        Ok(t) => t,
        Err(e) => {
            // Only a statement that looks like DDL needs to parse.
            return if looks_like_ddl(sql) {
                Err(ctx.parse_err(e.to_string()))
            } else {
                Ok(DdlOutcome::NotSchema)
            };
        }
    };
    let mut toks: Vec<Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    while matches!(toks.last(), Some(Token::SemiColon)) {
        toks.pop();
    }
    let mut work = catalog.clone();
    let out = dispatch(&mut work, &ctx, &toks)?;
    if out != DdlOutcome::NotSchema {
        *catalog = work;
    }
    Ok(out)
}

/// For `DROP INDEX [IF EXISTS] `PRIMARY` ON t [ALGORITHM…]`: where the table name starts and
/// ends.
fn drop_primary_index_on(toks: &[Token]) -> Option<(usize, usize)> {
    if !kw_at(toks, 0, "DROP") || !kw_at(toks, 1, "INDEX") {
        return None;
    }
    let mut j = 2;
    if kw_at(toks, j, "IF") && kw_at(toks, j + 1, "EXISTS") {
        j += 2;
    }
    if !names_primary(toks.get(j)) || !kw_at(toks, j + 1, "ON") {
        return None;
    }
    let (_, end) = read_name(toks, j + 2)?;
    // ALGORITHM/LOCK options after the name change nothing.
    Some((j + 2, end))
}

/// The databases a statement would change table definitions in, without a catalog: `None`
/// when it is not such a statement, `Some(vec![])` when it is one whose databases cannot be
/// told (treat as touching everything). Used to decide whether the binlog between two
/// positions changed captured tables.
pub fn schema_targets(default_db: Option<&str>, sql: &str) -> Option<Vec<String>> {
    let default_db = default_db.filter(|d| !d.is_empty());
    let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, sql).tokenize() else {
        return looks_like_ddl(sql).then(Vec::new);
    };
    let toks: Vec<Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let db_of = |i: usize| -> Option<String> {
        let (parts, _) = read_name(&toks, i)?;
        match parts.as_slice() {
            [_] => default_db.map(str::to_owned),
            [d, _] => Some(d.clone()),
            _ => None,
        }
    };
    // Names to look at, as token indexes; `None` in the list = unknown.
    let mut dbs: Vec<Option<String>> = Vec::new();
    let skip_if = |mut i: usize| {
        if kw_at(&toks, i, "IF") && kw_at(&toks, i + 1, "NOT") && kw_at(&toks, i + 2, "EXISTS") {
            i += 3;
        } else if kw_at(&toks, i, "IF") && kw_at(&toks, i + 1, "EXISTS") {
            i += 2;
        }
        i
    };
    let mut i = 1;
    if kw_at(&toks, 0, "CREATE") {
        if kw_at(&toks, i, "OR") && kw_at(&toks, i + 1, "REPLACE") {
            i += 2;
        }
        if kw_at(&toks, i, "TABLE") {
            let j = skip_if(i + 1);
            dbs.push(db_of(j));
            // CREATE TABLE … LIKE reads another table but changes only this one.
        } else if kw_at(&toks, i, "DATABASE") || kw_at(&toks, i, "SCHEMA") {
            let j = skip_if(i + 1);
            dbs.push(toks.get(j).and_then(word).map(|w| w.value.clone()));
        } else {
            return None;
        }
    } else if kw_at(&toks, 0, "ALTER") {
        while kw_at(&toks, i, "ONLINE") || kw_at(&toks, i, "IGNORE") {
            i += 1;
        }
        if kw_at(&toks, i, "TABLE") {
            let j = skip_if(i + 1);
            dbs.push(db_of(j));
            // RENAME TO another database moves the table there.
            for (k, t) in toks.iter().enumerate() {
                if is_kw(t, "RENAME") && (kw_at(&toks, k + 1, "TO") || kw_at(&toks, k + 1, "AS")) {
                    dbs.push(db_of(k + 2));
                }
            }
        } else if kw_at(&toks, i, "DATABASE") || kw_at(&toks, i, "SCHEMA") {
            dbs.push(match toks.get(i + 1).and_then(word) {
                Some(w) if read_charset_option(&toks, i + 1).is_none() => Some(w.value.clone()),
                _ => default_db.map(str::to_owned),
            });
        } else {
            return None;
        }
    } else if kw_at(&toks, 0, "DROP") {
        if kw_at(&toks, 1, "TABLE") || kw_at(&toks, 1, "TABLES") {
            let j = skip_if(2);
            for el in split_commas(&toks[j.min(toks.len())..]) {
                dbs.push(
                    read_name(el, 0).and_then(|(parts, _)| match parts.as_slice() {
                        [_] => default_db.map(str::to_owned),
                        [d, _] => Some(d.clone()),
                        _ => None,
                    }),
                );
            }
        } else if kw_at(&toks, 1, "DATABASE") || kw_at(&toks, 1, "SCHEMA") {
            let j = skip_if(2);
            dbs.push(toks.get(j).and_then(word).map(|w| w.value.clone()));
        } else if let Some((on, _)) = drop_primary_index_on(&toks) {
            dbs.push(db_of(on));
        } else {
            return None;
        }
    } else if kw_at(&toks, 0, "RENAME") && (kw_at(&toks, 1, "TABLE") || kw_at(&toks, 1, "TABLES")) {
        for el in split_commas(&toks[2..]) {
            for (k, _) in el.iter().enumerate() {
                if k == 0 || kw_at(el, k, "TO") {
                    let at = if k == 0 { 0 } else { k + 1 };
                    dbs.push(
                        read_name(el, at).and_then(|(parts, _)| match parts.as_slice() {
                            [_] => default_db.map(str::to_owned),
                            [d, _] => Some(d.clone()),
                            _ => None,
                        }),
                    );
                }
            }
        }
    } else {
        return None;
    }
    if dbs.iter().any(Option::is_none) {
        return Some(Vec::new());
    }
    let mut out: Vec<String> = dbs.into_iter().flatten().collect();
    out.sort();
    out.dedup();
    Some(out)
}

fn looks_like_ddl(sql: &str) -> bool {
    let s = sql.trim_start().to_ascii_uppercase();
    ["CREATE", "ALTER", "DROP", "RENAME"]
        .iter()
        .any(|k| s.starts_with(k))
}

struct Ctx<'a> {
    sql: &'a str,
    default_db: Option<&'a str>,
}

impl Ctx<'_> {
    fn parse_err(&self, reason: impl Into<String>) -> DdlError {
        DdlError::Parse {
            statement: excerpt(self.sql),
            reason: reason.into(),
        }
    }

    fn unsupported(&self, table: Option<(String, String)>, what: impl Into<String>) -> DdlError {
        DdlError::Unsupported {
            table,
            what: what.into(),
            statement: excerpt(self.sql),
        }
    }

    fn unknown(&self, (database, table): (String, String)) -> DdlError {
        DdlError::UnknownTable {
            database,
            table,
            statement: excerpt(self.sql),
        }
    }

    /// `(database, table)` of a possibly qualified name.
    fn qualify(&self, parts: &[String]) -> Result<(String, String), DdlError> {
        match parts {
            [t] => match self.default_db {
                Some(d) => Ok((d.to_owned(), t.clone())),
                None => Err(DdlError::NoDatabase {
                    table: t.clone(),
                    statement: excerpt(self.sql),
                }),
            },
            [d, t] => Ok((d.clone(), t.clone())),
            _ => Err(self.parse_err(format!("bad table name `{}`", parts.join(".")))),
        }
    }

    fn qualify_obj(&self, name: &ObjectName) -> Result<(String, String), DdlError> {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| {
                p.as_ident()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        self.qualify(&parts)
    }
}

fn word(t: &Token) -> Option<&Word> {
    match t {
        Token::Word(w) => Some(w),
        _ => None,
    }
}

/// An unquoted keyword, case-insensitive.
fn is_kw(t: &Token, kw: &str) -> bool {
    word(t).is_some_and(|w| w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn kw_at(toks: &[Token], i: usize, kw: &str) -> bool {
    toks.get(i).is_some_and(|t| is_kw(t, kw))
}

fn dispatch(cat: &mut Catalog, ctx: &Ctx<'_>, toks: &[Token]) -> Result<DdlOutcome, DdlError> {
    if kw_at(toks, 0, "CREATE") {
        let mut i = 1;
        if kw_at(toks, i, "OR") && kw_at(toks, i + 1, "REPLACE") {
            i += 2;
        }
        if kw_at(toks, i, "TEMPORARY") {
            return Ok(DdlOutcome::NotSchema);
        }
        if kw_at(toks, i, "TABLE") {
            return create_table(cat, ctx, toks, i + 1);
        }
        if kw_at(toks, i, "DATABASE") || kw_at(toks, i, "SCHEMA") {
            return database_stmt(cat, ctx, toks, i + 1, DbOp::Create);
        }
        return Ok(DdlOutcome::NotSchema);
    }
    if kw_at(toks, 0, "ALTER") {
        let mut i = 1;
        while kw_at(toks, i, "ONLINE") || kw_at(toks, i, "IGNORE") {
            i += 1;
        }
        if kw_at(toks, i, "TABLE") {
            return alter_table(cat, ctx, toks, i + 1);
        }
        if kw_at(toks, i, "DATABASE") || kw_at(toks, i, "SCHEMA") {
            return database_stmt(cat, ctx, toks, i + 1, DbOp::Alter);
        }
        return Ok(DdlOutcome::NotSchema);
    }
    if kw_at(toks, 0, "DROP") {
        if kw_at(toks, 1, "TEMPORARY") {
            return Ok(DdlOutcome::NotSchema);
        }
        if kw_at(toks, 1, "TABLE") || kw_at(toks, 1, "TABLES") {
            return drop_table(cat, ctx, toks);
        }
        if kw_at(toks, 1, "DATABASE") || kw_at(toks, 1, "SCHEMA") {
            return database_stmt(cat, ctx, toks, 2, DbOp::Drop);
        }
        if let Some((on, end)) = drop_primary_index_on(toks) {
            // `DROP INDEX `PRIMARY` ON t` = `ALTER TABLE t DROP PRIMARY KEY`.
            let mut alter = vec![Token::make_keyword("ALTER"), Token::make_keyword("TABLE")];
            alter.extend_from_slice(&toks[on..end]);
            alter.push(Token::make_keyword("DROP"));
            alter.push(Token::make_keyword("PRIMARY"));
            alter.push(Token::make_keyword("KEY"));
            return alter_table(cat, ctx, &alter, 2);
        }
        return Ok(DdlOutcome::NotSchema);
    }
    if kw_at(toks, 0, "RENAME") && (kw_at(toks, 1, "TABLE") || kw_at(toks, 1, "TABLES")) {
        return rename_tables(cat, ctx, toks);
    }
    Ok(DdlOutcome::NotSchema)
}

#[cfg(test)]
mod tests;
