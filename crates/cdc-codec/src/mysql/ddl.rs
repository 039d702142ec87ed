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
//! The resulting [`ColumnDef`]s are normalized to what `information_schema.COLUMNS` says for
//! the same table on MariaDB 10.11 (`column_type` lower case with default display widths,
//! `char_max_length`, numeric precision/scale, datetime precision, the character set inherited
//! from the table, database or server).

use sqlparser::ast::{
    AlterTableOperation, CharacterLength, ColumnOption, DataType, EnumMember, ExactNumberInfo,
    MySQLColumnPosition, ObjectName, ObjectType, Statement, TableConstraint,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use super::catalog::{charset_of_collation, normalize_charset, Catalog, ColumnDef, TableDef};

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

// ---------------------------------------------------------------------------------------------
// Token helpers

/// Writes tokens back as SQL for sqlparser, quoting as MySQL reads it.
fn to_sql(toks: &[Token]) -> String {
    let mut s = String::new();
    for t in toks {
        if !s.is_empty() {
            s.push(' ');
        }
        match t {
            Token::SingleQuotedString(v) => {
                s.push('\'');
                for c in v.chars() {
                    match c {
                        '\'' => s.push_str("''"),
                        '\\' => s.push_str("\\\\"),
                        c => s.push(c),
                    }
                }
                s.push('\'');
            }
            Token::Word(w) if w.quote_style == Some('`') => {
                s.push('`');
                s.push_str(&w.value.replace('`', "``"));
                s.push('`');
            }
            other => s.push_str(&other.to_string()),
        }
    }
    s
}

/// Index of the token after the parenthesized group opening at `open`, or `None` when it is
/// not closed.
fn skip_parens(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < toks.len() {
        match toks[i] {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits at top-level commas.
fn split_commas(toks: &[Token]) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&toks[start..]);
    out
}

/// Reads a possibly qualified name at `i`; returns its parts and the index after it.
fn read_name(toks: &[Token], mut i: usize) -> Option<(Vec<String>, usize)> {
    let mut parts = vec![word(toks.get(i)?)?.value.clone()];
    i += 1;
    while matches!(toks.get(i), Some(Token::Period)) {
        parts.push(word(toks.get(i + 1)?)?.value.clone());
        i += 2;
    }
    Some((parts, i))
}

/// Reads `[DEFAULT] CHARACTER SET [=] x`, `CHARSET [=] x`, `[DEFAULT] COLLATE [=] y` at `i`:
/// returns (charset or collation's charset, is_charset, index after).
fn read_charset_option(toks: &[Token], i: usize) -> Option<(String, bool, usize)> {
    let mut j = i;
    if kw_at(toks, j, "DEFAULT") {
        j += 1;
    }
    let is_charset;
    if kw_at(toks, j, "CHARACTER") && kw_at(toks, j + 1, "SET") {
        j += 2;
        is_charset = true;
    } else if kw_at(toks, j, "CHARSET") {
        j += 1;
        is_charset = true;
    } else if kw_at(toks, j, "COLLATE") {
        j += 1;
        is_charset = false;
    } else {
        return None;
    }
    if matches!(toks.get(j), Some(Token::Eq)) {
        j += 1;
    }
    let v = match toks.get(j)? {
        Token::Word(w) => w.value.clone(),
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        _ => return None,
    };
    let cs = if is_charset {
        normalize_charset(&v)
    } else {
        charset_of_collation(&v)
    };
    Some((cs, is_charset, j + 1))
}

/// Table-level character set from table options (`DEFAULT CHARSET=…`, `COLLATE=…`); an
/// explicit character set wins over a collation's.
fn table_charset_from_options(toks: &[Token]) -> Option<String> {
    let mut from_collation = None;
    let mut i = 0;
    while i < toks.len() {
        if let Some((cs, is_charset, next)) = read_charset_option(toks, i) {
            if is_charset {
                return Some(cs);
            }
            from_collation.get_or_insert(cs);
            i = next;
        } else {
            i += 1;
        }
    }
    from_collation
}

/// The MariaDB spellings sqlparser does not read, rewritten inside one column definition.
fn fix_column_tokens(def: &[Token]) -> Result<Vec<Token>, String> {
    let mut out: Vec<Token> = Vec::with_capacity(def.len() + 2);
    let mut i = 0;
    let string_types = [
        "CHAR",
        "VARCHAR",
        "TEXT",
        "TINYTEXT",
        "MEDIUMTEXT",
        "LONGTEXT",
        "CHARACTER",
        "ENUM",
        "SET",
    ];
    while i < def.len() {
        let t = &def[i];
        if is_kw(t, "PERSISTENT") {
            out.push(Token::make_keyword("STORED"));
        } else if is_kw(t, "CHARSET") {
            out.push(Token::make_keyword("CHARACTER"));
            out.push(Token::make_keyword("SET"));
        } else if is_kw(t, "ZEROFILL") {
            if !out.last().is_some_and(|p| is_kw(p, "UNSIGNED")) {
                out.push(Token::make_keyword("UNSIGNED"));
            }
            out.push(Token::make_keyword("COMMENT"));
            out.push(Token::SingleQuotedString(ZEROFILL_MARK.into()));
        } else if is_kw(t, "SIGNED") {
            // `INT SIGNED` is the default; sqlparser does not read the word.
        } else if is_kw(t, "NATIONAL") {
            // NATIONAL CHAR/VARCHAR = utf8mb3: spelled NCHAR/NVARCHAR below.
            match def.get(i + 1) {
                Some(n) if is_kw(n, "VARCHAR") => out.push(Token::make_word("NVARCHAR", None)),
                Some(n) if is_kw(n, "CHAR") || is_kw(n, "CHARACTER") => {
                    if kw_at(def, i + 2, "VARYING") {
                        out.push(Token::make_word("NVARCHAR", None));
                        i += 1;
                    } else {
                        out.push(Token::make_word("NCHAR", None));
                    }
                }
                _ => return Err("NATIONAL without CHAR or VARCHAR".into()),
            }
            i += 1;
        } else if is_kw(t, "BINARY")
            && i >= 2
            && !(is_kw(&def[i - 1], "SET") && is_kw(&def[i - 2], "CHARACTER"))
            && !is_kw(&def[i - 1], "CHARSET")
            && (matches!(out.last(), Some(Token::RParen))
                || out
                    .last()
                    .is_some_and(|p| string_types.iter().any(|k| is_kw(p, k)))
                || is_kw(&def[i - 2], "SET")
                || is_kw(&def[i - 2], "CHARSET"))
        {
            // The BINARY attribute (`VARCHAR(10) BINARY`) picks the `_bin` collation of the
            // column's character set: no effect on what we track.
        } else if (is_kw(t, "WITH") || is_kw(t, "WITHOUT"))
            && kw_at(def, i + 1, "SYSTEM")
            && kw_at(def, i + 2, "VERSIONING")
        {
            i += 2;
        } else if is_kw(t, "COMPRESSED") {
            // MariaDB column compression: storage only.
            if matches!(def.get(i + 1), Some(Token::Eq)) {
                i += 2;
            }
        } else {
            out.push(t.clone());
        }
        i += 1;
    }
    Ok(out)
}

fn parse_statement(ctx: &Ctx<'_>, sql: &str) -> Result<Statement, DdlError> {
    let mut stmts =
        Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| ctx.parse_err(e.to_string()))?;
    if stmts.len() != 1 {
        return Err(ctx.parse_err(format!("{} statements", stmts.len())));
    }
    Ok(stmts.remove(0))
}

// ---------------------------------------------------------------------------------------------
// Column definitions

/// Maximum bytes per character of a character set.
fn mbmaxlen(charset: &str) -> u64 {
    match charset {
        "utf8mb4" | "utf16" | "utf16le" | "utf32" => 4,
        "utf8mb3" | "eucjpms" | "ujis" => 3,
        "big5" | "cp932" | "euckr" | "gb2312" | "gbk" | "sjis" | "ucs2" => 2,
        "gb18030" => 4,
        _ => 1,
    }
}

/// A `sqlparser` column definition turned into what `information_schema.COLUMNS` says.
fn column_def(
    ctx: &Ctx<'_>,
    name: &str,
    data_type: &DataType,
    options: &[ColumnOption],
    default_charset: Option<&str>,
) -> Result<(ColumnDef, bool), DdlError> {
    let mut nullable = true;
    let mut primary = false;
    let mut charset: Option<String> = None;
    let mut collation_charset: Option<String> = None;
    let mut zerofill = false;
    for o in options {
        match o {
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Null => nullable = true,
            ColumnOption::PrimaryKey(_) => {
                primary = true;
                nullable = false;
            }
            ColumnOption::CharacterSet(cs) => charset = Some(normalize_charset(&obj_last(cs))),
            ColumnOption::Collation(c) => {
                collation_charset = Some(charset_of_collation(&obj_last(c)))
            }
            ColumnOption::Comment(c) if c == ZEROFILL_MARK => zerofill = true,
            _ => {}
        }
    }
    let mut dt = data_type;
    while let DataType::Collate(inner, c) = dt {
        collation_charset = Some(charset_of_collation(&obj_last(c)));
        dt = inner;
    }
    if let DataType::Zerofill(inner) = dt {
        zerofill = true;
        dt = inner;
    }
    let charset = charset
        .or(collation_charset)
        .or_else(|| default_charset.map(normalize_charset));
    let mut c = ColumnDef {
        name: name.to_owned(),
        data_type: String::new(),
        column_type: String::new(),
        unsigned: false,
        nullable,
        char_max_length: None,
        numeric_precision: None,
        numeric_scale: None,
        datetime_precision: None,
        charset: None,
        enum_values: Vec::new(),
    };
    let int = |c: &mut ColumnDef, ty: &str, width: Option<u64>, unsigned: bool| {
        let (signed_w, unsigned_w, prec) = match ty {
            "tinyint" => (4, 3, 3),
            "smallint" => (6, 5, 5),
            "mediumint" => (9, 8, if unsigned { 8 } else { 7 }),
            "int" => (11, 10, 10),
            _ => (20, 20, if unsigned { 20 } else { 19 }),
        };
        let w = width.unwrap_or(if unsigned || zerofill {
            unsigned_w
        } else {
            signed_w
        });
        c.data_type = ty.into();
        c.column_type = format!("{ty}({w})");
        c.unsigned = unsigned || zerofill;
        c.numeric_precision = Some(prec);
        c.numeric_scale = Some(0);
    };
    // MariaDB reports the byte maximum of TEXT types as CHARACTER_MAXIMUM_LENGTH.
    let text = |c: &mut ColumnDef, ty: &str, max: u64, cs: &Option<String>| {
        c.data_type = ty.into();
        c.column_type = ty.into();
        c.char_max_length = Some(max);
        c.charset = Some(cs.clone().unwrap_or_else(|| "latin1".into()));
    };
    let sized_text = |c: &mut ColumnDef, chars: Option<u64>, blob: bool, cs: &Option<String>| {
        let cs = cs.clone().unwrap_or_else(|| "latin1".into());
        let bytes = chars.map(|n| {
            if blob {
                n
            } else {
                n.saturating_mul(mbmaxlen(&cs))
            }
        });
        let (ty, max) = match bytes {
            Some(b) if b < 256 => ("tiny", 255u64),
            None => ("", 65_535),
            Some(b) if b < 65_536 => ("", 65_535),
            Some(b) if b < 16_777_216 => ("medium", 16_777_215),
            Some(_) => ("long", 4_294_967_295),
        };
        let ty = format!("{ty}{}", if blob { "blob" } else { "text" });
        c.data_type = ty.clone();
        c.column_type = ty;
        c.char_max_length = Some(max);
        if !blob {
            c.charset = Some(cs);
        }
    };
    let char_len = |l: &Option<CharacterLength>| match l {
        Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
        _ => None,
    };
    let chars = |c: &mut ColumnDef, ty: &str, len: u64, cs: Option<String>| {
        c.data_type = ty.into();
        c.column_type = format!("{ty}({len})");
        c.char_max_length = Some(len);
        c.charset = Some(cs.unwrap_or_else(|| "latin1".into()));
    };
    let decimal = |c: &mut ColumnDef, info: &ExactNumberInfo, unsigned: bool| {
        let (p, s) = match info {
            ExactNumberInfo::None => (10, 0),
            ExactNumberInfo::Precision(p) => (*p, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => (*p, (*s).max(0) as u64),
        };
        c.data_type = "decimal".into();
        c.column_type = format!("decimal({p},{s})");
        c.unsigned = unsigned || zerofill;
        c.numeric_precision = Some(p as u32);
        c.numeric_scale = Some(s as u32);
    };
    let float = |c: &mut ColumnDef, info: &ExactNumberInfo, double: bool, unsigned: bool| {
        let mut double = double;
        match info {
            ExactNumberInfo::PrecisionAndScale(p, s) => {
                c.column_type = format!("{}({p},{s})", if double { "double" } else { "float" });
                c.numeric_precision = Some(*p as u32);
                c.numeric_scale = Some((*s).max(0) as u32);
            }
            ExactNumberInfo::Precision(p) if !double => {
                // FLOAT(p): single precision up to 24 bits, double above.
                double = *p > 24;
                c.column_type = if double { "double" } else { "float" }.into();
                c.numeric_precision = Some(if double { 22 } else { 12 });
            }
            _ => {
                c.column_type = if double { "double" } else { "float" }.into();
                c.numeric_precision = Some(if double { 22 } else { 12 });
            }
        }
        c.data_type = if double { "double" } else { "float" }.into();
        c.unsigned = unsigned || zerofill;
    };
    let temporal = |c: &mut ColumnDef, ty: &str, fsp: Option<u64>| {
        let f = fsp.unwrap_or(0);
        c.data_type = ty.into();
        c.column_type = if f > 0 {
            format!("{ty}({f})")
        } else {
            ty.into()
        };
        c.datetime_precision = Some(f as u32);
    };
    match dt {
        DataType::TinyInt(w) => int(&mut c, "tinyint", *w, false),
        DataType::TinyIntUnsigned(w) => int(&mut c, "tinyint", *w, true),
        DataType::Bool | DataType::Boolean => int(&mut c, "tinyint", Some(1), false),
        DataType::SmallInt(w) | DataType::Int2(w) => int(&mut c, "smallint", *w, false),
        DataType::SmallIntUnsigned(w) | DataType::Int2Unsigned(w) => {
            int(&mut c, "smallint", *w, true)
        }
        DataType::MediumInt(w) => int(&mut c, "mediumint", *w, false),
        DataType::MediumIntUnsigned(w) => int(&mut c, "mediumint", *w, true),
        DataType::Int(w) | DataType::Integer(w) | DataType::Int4(w) => {
            int(&mut c, "int", *w, false)
        }
        DataType::IntUnsigned(w) | DataType::IntegerUnsigned(w) | DataType::Int4Unsigned(w) => {
            int(&mut c, "int", *w, true)
        }
        DataType::BigInt(w) | DataType::Int8(w) => int(&mut c, "bigint", *w, false),
        DataType::BigIntUnsigned(w) | DataType::Int8Unsigned(w) => int(&mut c, "bigint", *w, true),
        DataType::Decimal(i) | DataType::Dec(i) | DataType::Numeric(i) => decimal(&mut c, i, false),
        DataType::DecimalUnsigned(i) | DataType::DecUnsigned(i) => decimal(&mut c, i, true),
        DataType::Float(i) => float(&mut c, i, false, false),
        DataType::FloatUnsigned(i) => float(&mut c, i, false, true),
        DataType::Float4 => float(&mut c, &ExactNumberInfo::None, false, false),
        DataType::Double(i) => float(&mut c, i, true, false),
        DataType::DoubleUnsigned(i) => float(&mut c, i, true, true),
        DataType::DoublePrecision | DataType::Real | DataType::Float8 => {
            float(&mut c, &ExactNumberInfo::None, true, false)
        }
        DataType::DoublePrecisionUnsigned | DataType::RealUnsigned => {
            float(&mut c, &ExactNumberInfo::None, true, true)
        }
        DataType::Bit(n) => {
            let n = n.unwrap_or(1);
            c.data_type = "bit".into();
            c.column_type = format!("bit({n})");
            c.numeric_precision = Some(n as u32);
        }
        DataType::Date => {
            c.data_type = "date".into();
            c.column_type = "date".into();
        }
        DataType::Time(fsp, _) => temporal(&mut c, "time", *fsp),
        DataType::Datetime(fsp) => temporal(&mut c, "datetime", *fsp),
        DataType::Timestamp(fsp, _) => temporal(&mut c, "timestamp", *fsp),
        DataType::Char(l) | DataType::Character(l) => {
            if charset.as_deref() == Some("binary") {
                let n = char_len(l).unwrap_or(1);
                c.data_type = "binary".into();
                c.column_type = format!("binary({n})");
                c.char_max_length = Some(n);
            } else {
                chars(&mut c, "char", char_len(l).unwrap_or(1), charset)
            }
        }
        DataType::Varchar(l) | DataType::CharVarying(l) | DataType::CharacterVarying(l) => {
            let n = char_len(l).ok_or_else(|| {
                ctx.parse_err(format!("VARCHAR without a length in column `{name}`"))
            })?;
            if charset.as_deref() == Some("binary") {
                c.data_type = "varbinary".into();
                c.column_type = format!("varbinary({n})");
                c.char_max_length = Some(n);
            } else {
                chars(&mut c, "varchar", n, charset)
            }
        }
        DataType::Nvarchar(l) => {
            let n = char_len(l).ok_or_else(|| {
                ctx.parse_err(format!("NVARCHAR without a length in column `{name}`"))
            })?;
            chars(&mut c, "varchar", n, Some("utf8mb3".into()))
        }
        DataType::Binary(n) => {
            let n = n.unwrap_or(1);
            c.data_type = "binary".into();
            c.column_type = format!("binary({n})");
            c.char_max_length = Some(n);
        }
        DataType::Varbinary(l) => {
            let n = match l {
                Some(sqlparser::ast::BinaryLength::IntegerLength { length }) => *length,
                _ => {
                    return Err(
                        ctx.parse_err(format!("VARBINARY without a length in column `{name}`"))
                    )
                }
            };
            c.data_type = "varbinary".into();
            c.column_type = format!("varbinary({n})");
            c.char_max_length = Some(n);
        }
        DataType::TinyText => text(&mut c, "tinytext", 255, &charset),
        DataType::Text => sized_text(&mut c, None, false, &charset),
        DataType::MediumText => text(&mut c, "mediumtext", 16_777_215, &charset),
        DataType::LongText => text(&mut c, "longtext", 4_294_967_295, &charset),
        DataType::TinyBlob => {
            c.data_type = "tinyblob".into();
            c.column_type = "tinyblob".into();
            c.char_max_length = Some(255);
        }
        DataType::Blob(n) => sized_text(&mut c, *n, true, &None),
        DataType::MediumBlob => {
            c.data_type = "mediumblob".into();
            c.column_type = "mediumblob".into();
            c.char_max_length = Some(16_777_215);
        }
        DataType::LongBlob => {
            c.data_type = "longblob".into();
            c.column_type = "longblob".into();
            c.char_max_length = Some(4_294_967_295);
        }
        DataType::JSON => {
            // MariaDB's JSON is an alias of LONGTEXT (utf8mb4, binary collation).
            text(&mut c, "longtext", 4_294_967_295, &Some("utf8mb4".into()))
        }
        DataType::Enum(members, _) => {
            let ls: Vec<String> = members
                .iter()
                .map(|m| match m {
                    EnumMember::Name(n) | EnumMember::NamedValue(n, _) => n.clone(),
                })
                .collect();
            set_labels(&mut c, "enum", ls, charset);
        }
        DataType::Set(members) => set_labels(&mut c, "set", members.clone(), charset),
        DataType::Uuid => {
            c.data_type = "uuid".into();
            c.column_type = "uuid".into();
        }
        DataType::Custom(n, mods) => {
            let custom_name = obj_last(n).to_ascii_lowercase();
            let arg = mods.first().map(|m| m.to_string());
            let num = arg.as_deref().and_then(|a| a.parse::<u64>().ok());
            match custom_name.as_str() {
                "serial" => {
                    int(&mut c, "bigint", None, true);
                    c.nullable = false;
                }
                "text" => sized_text(&mut c, num, false, &charset),
                "int1" => int(&mut c, "tinyint", num, false),
                "int3" | "middleint" => int(&mut c, "mediumint", num, false),
                "fixed" => decimal(&mut c, &ExactNumberInfo::None, false),
                "nchar" => chars(&mut c, "char", num.unwrap_or(1), Some("utf8mb3".into())),
                "year" => {
                    c.data_type = "year".into();
                    c.column_type = "year(4)".into();
                }
                "inet4" | "inet6" | "geometry" | "point" | "linestring" | "polygon"
                | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection" => {
                    c.data_type = custom_name.clone();
                    c.column_type = custom_name.clone();
                }
                other => {
                    return Err(ctx
                        .unsupported(None, format!("column `{name}` has unknown type `{other}`")))
                }
            }
        }
        other => {
            return Err(ctx.unsupported(
                None,
                format!("column `{name}` has unsupported type `{other}`"),
            ))
        }
    }
    if zerofill {
        c.column_type.push_str(" unsigned zerofill");
    } else if c.unsigned {
        c.column_type.push_str(" unsigned");
    }
    Ok((c, primary))
}

fn set_labels(c: &mut ColumnDef, ty: &str, labels: Vec<String>, cs: Option<String>) {
    let quoted: Vec<String> = labels
        .iter()
        .map(|l| format!("'{}'", l.replace('\'', "''")))
        .collect();
    c.data_type = ty.into();
    c.column_type = format!("{ty}({})", quoted.join(","));
    let lens = labels.iter().map(|l| l.chars().count() as u64);
    c.char_max_length = Some(if ty == "enum" {
        lens.max().unwrap_or(0)
    } else {
        lens.sum::<u64>() + labels.len().saturating_sub(1) as u64
    });
    c.charset = Some(cs.unwrap_or_else(|| "latin1".into()));
    c.enum_values = labels;
}

fn obj_last(n: &ObjectName) -> String {
    n.0.last()
        .map(|p| {
            p.as_ident()
                .map(|i| i.value.clone())
                .unwrap_or_else(|| p.to_string())
        })
        .unwrap_or_default()
}

/// Primary-key column names of a table constraint, if it is one.
fn pk_columns(c: &TableConstraint) -> Option<Vec<String>> {
    match c {
        TableConstraint::PrimaryKey(pk) => Some(
            pk.columns
                .iter()
                .map(|ic| index_column_name(&ic.column.expr))
                .collect(),
        ),
        _ => None,
    }
}

/// `col` or `col(10)` (a prefix length) → `col`.
fn index_column_name(e: &sqlparser::ast::Expr) -> String {
    use sqlparser::ast::Expr;
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::Function(f) => obj_last(&f.name),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// CREATE TABLE

fn create_table(
    cat: &mut Catalog,
    ctx: &Ctx<'_>,
    toks: &[Token],
    mut i: usize,
) -> Result<DdlOutcome, DdlError> {
    let mut if_not_exists = false;
    if kw_at(toks, i, "IF") && kw_at(toks, i + 1, "NOT") && kw_at(toks, i + 2, "EXISTS") {
        if_not_exists = true;
        i += 3;
    }
    let (name, after_name) = read_name(toks, i).ok_or_else(|| ctx.parse_err("no table name"))?;
    let key = ctx.qualify(&name)?;
    if if_not_exists && cat.get(&key.0, &key.1).is_some() {
        // Nothing happened on the server either (a warning only).
        return Ok(DdlOutcome::NotSchema);
    }
    // CREATE TABLE t LIKE s / CREATE TABLE t (LIKE s)
    let like_at = if kw_at(toks, after_name, "LIKE") {
        Some(after_name + 1)
    } else if matches!(toks.get(after_name), Some(Token::LParen))
        && kw_at(toks, after_name + 1, "LIKE")
    {
        Some(after_name + 2)
    } else {
        None
    };
    if let Some(j) = like_at {
        let (src, _) = read_name(toks, j).ok_or_else(|| ctx.parse_err("no table after LIKE"))?;
        let src = ctx.qualify(&src)?;
        let def = cat
            .get(&src.0, &src.1)
            .cloned()
            .ok_or_else(|| ctx.unknown(src.clone()))?;
        let cs = cat.table_charsets.get(&src).cloned();
        cat.put(TableDef {
            database: key.0.clone(),
            name: key.1.clone(),
            ..def
        });
        match cs {
            Some(cs) => cat.table_charsets.insert(key.clone(), cs),
            None => cat.table_charsets.remove(&key),
        };
        return Ok(DdlOutcome::Changed {
            tables: vec![key],
            dropped: Vec::new(),
        });
    }
    if !matches!(toks.get(after_name), Some(Token::LParen)) {
        return Err(ctx.unsupported(Some(key), "CREATE TABLE without a column list (… SELECT)"));
    }
    let close =
        skip_parens(toks, after_name).ok_or_else(|| ctx.parse_err("unbalanced parentheses"))?;
    let options = &toks[close..];
    if options.iter().any(|t| is_kw(t, "SELECT")) {
        return Err(ctx.unsupported(Some(key), "CREATE TABLE … SELECT (the binlog of a row-based server carries the full definition instead)"));
    }
    if options
        .windows(3)
        .any(|w| is_kw(&w[0], "WITH") && is_kw(&w[1], "SYSTEM") && is_kw(&w[2], "VERSIONING"))
    {
        return Err(ctx.unsupported(
            Some(key),
            "system-versioned tables (hidden row_start/row_end columns)",
        ));
    }
    let table_cs = table_charset_from_options(options)
        .or_else(|| cat.databases.get(&key.0).cloned())
        .or_else(|| cat.server_charset.clone());
    // Column list: our fixes per element, then sqlparser on `CREATE TABLE t (…)`.
    let mut body: Vec<Token> = Vec::new();
    for (n, el) in split_commas(&toks[after_name + 1..close - 1])
        .into_iter()
        .enumerate()
    {
        if n > 0 {
            body.push(Token::Comma);
        }
        body.extend(fix_column_tokens(el).map_err(|e| ctx.parse_err(e))?);
    }
    let sql = format!("CREATE TABLE t ({})", to_sql(&body));
    let Statement::CreateTable(ct) = parse_statement(ctx, &sql)? else {
        return Err(ctx.parse_err("not a CREATE TABLE"));
    };
    let mut columns = Vec::with_capacity(ct.columns.len());
    let mut primary_key = Vec::new();
    for cd in &ct.columns {
        let opts: Vec<ColumnOption> = cd.options.iter().map(|o| o.option.clone()).collect();
        let (c, pk) = column_def(
            ctx,
            &cd.name.value,
            &cd.data_type,
            &opts,
            table_cs.as_deref(),
        )?;
        if pk {
            primary_key.push(c.name.clone());
        }
        columns.push(c);
    }
    for tc in &ct.constraints {
        if let Some(cols) = pk_columns(tc) {
            primary_key = cols;
        }
    }
    let mut def = TableDef {
        database: key.0.clone(),
        name: key.1.clone(),
        columns,
        primary_key,
    };
    let pk = def.primary_key.clone();
    set_pk(ctx, &mut def, pk)?;
    cat.put(def);
    match table_cs {
        Some(cs) => cat.table_charsets.insert(key.clone(), cs),
        None => cat.table_charsets.remove(&key),
    };
    Ok(DdlOutcome::Changed {
        tables: vec![key],
        dropped: Vec::new(),
    })
}

/// Sets the primary key, making its columns NOT NULL as the server does.
fn set_pk(ctx: &Ctx<'_>, def: &mut TableDef, cols: Vec<String>) -> Result<(), DdlError> {
    let mut names = Vec::with_capacity(cols.len());
    for k in cols {
        let c = def
            .columns
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(&k))
            .ok_or_else(|| ctx.parse_err(format!("primary key names unknown column `{k}`")))?;
        c.nullable = false;
        names.push(c.name.clone());
    }
    def.primary_key = names;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ALTER TABLE

fn col_index(def: &TableDef, name: &str) -> Option<usize> {
    def.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

fn place(
    def: &mut TableDef,
    col: ColumnDef,
    pos: Option<&MySQLColumnPosition>,
    ctx: &Ctx<'_>,
) -> Result<(), DdlError> {
    match pos {
        None => def.columns.push(col),
        Some(MySQLColumnPosition::First) => def.columns.insert(0, col),
        Some(MySQLColumnPosition::After(a)) => {
            let i = col_index(def, &a.value).ok_or_else(|| {
                ctx.parse_err(format!("AFTER names unknown column `{}`", a.value))
            })?;
            def.columns.insert(i + 1, col);
        }
    }
    Ok(())
}

/// An ALTER TABLE specification our token pass classified.
enum Spec<'a> {
    /// Give to sqlparser, with the `IF [NOT] EXISTS` flag we removed.
    Parse(Vec<Token>, bool),
    /// `ADD (a INT, b INT)`.
    AddMany(Vec<Vec<Token>>, bool),
    ConvertCharset(String),
    DefaultCharset(String),
    Rename(&'a [Token]),
    DropPrimary,
    Ignore,
}

/// The index name `PRIMARY` (quoted or not): the primary key.
fn names_primary(t: Option<&Token>) -> bool {
    t.and_then(word)
        .is_some_and(|w| w.value.eq_ignore_ascii_case("PRIMARY"))
}

fn classify_spec<'a>(ctx: &Ctx<'_>, spec: &'a [Token]) -> Result<Spec<'a>, DdlError> {
    let k = |i: usize, w: &str| kw_at(spec, i, w);
    let first = spec
        .first()
        .ok_or_else(|| ctx.parse_err("empty ALTER TABLE specification"))?;
    let strip_if = |from: usize| -> (Vec<Token>, bool) {
        // Removes `IF [NOT] EXISTS` right after the verb (and its COLUMN keyword).
        let mut j = from;
        if kw_at(spec, j, "COLUMN") {
            j += 1;
        }
        if kw_at(spec, j, "IF") && kw_at(spec, j + 1, "NOT") && kw_at(spec, j + 2, "EXISTS") {
            let mut v = spec[..j].to_vec();
            v.extend_from_slice(&spec[j + 3..]);
            (v, true)
        } else if kw_at(spec, j, "IF") && kw_at(spec, j + 1, "EXISTS") {
            let mut v = spec[..j].to_vec();
            v.extend_from_slice(&spec[j + 2..]);
            (v, true)
        } else {
            (spec.to_vec(), false)
        }
    };
    if is_kw(first, "ADD") {
        let mut j = 1;
        if k(j, "COLUMN") {
            j += 1;
        }
        let mut iff = false;
        if k(j, "IF") && k(j + 1, "NOT") && k(j + 2, "EXISTS") {
            iff = true;
            j += 3;
        }
        if matches!(spec.get(j), Some(Token::LParen)) {
            let close =
                skip_parens(spec, j).ok_or_else(|| ctx.parse_err("unbalanced parentheses"))?;
            let inner = &spec[j + 1..close - 1];
            let mut cols = Vec::new();
            for el in split_commas(inner) {
                let mut v = vec![Token::make_keyword("ADD"), Token::make_keyword("COLUMN")];
                v.extend(fix_column_tokens(el).map_err(|e| ctx.parse_err(e))?);
                cols.push(v);
            }
            return Ok(Spec::AddMany(cols, iff));
        }
        if j == 1 {
            // ADD <constraint or index>?
            let mut c = 1;
            if k(c, "CONSTRAINT") {
                c += 1;
                if !k(c, "PRIMARY") && !k(c, "UNIQUE") && !k(c, "FOREIGN") && !k(c, "CHECK") {
                    c += 1; // the symbol
                }
            }
            if k(c, "PRIMARY") {
                let mut v = vec![Token::make_keyword("ADD")];
                v.extend_from_slice(&spec[c..]);
                return Ok(Spec::Parse(v, false));
            }
            if c > 1
                || [
                    "INDEX",
                    "KEY",
                    "UNIQUE",
                    "FULLTEXT",
                    "SPATIAL",
                    "FOREIGN",
                    "CHECK",
                    "PARTITION",
                    "PERIOD",
                    "SYSTEM",
                    "VECTOR",
                ]
                .iter()
                .any(|w| k(1, w))
            {
                if k(1, "SYSTEM") {
                    return Err(ctx.unsupported(None, "ADD SYSTEM VERSIONING"));
                }
                return Ok(Spec::Ignore);
            }
        }
        let mut v = vec![Token::make_keyword("ADD"), Token::make_keyword("COLUMN")];
        v.extend(fix_column_tokens(&spec[j..]).map_err(|e| ctx.parse_err(e))?);
        return Ok(Spec::Parse(v, iff));
    }
    if is_kw(first, "DROP") {
        if k(1, "PRIMARY") {
            return Ok(Spec::Parse(spec.to_vec(), false));
        }
        // `DROP INDEX|KEY|CONSTRAINT [IF EXISTS] `PRIMARY`` drops the primary key too.
        if k(1, "INDEX") || k(1, "KEY") || k(1, "CONSTRAINT") {
            let mut j = 2;
            if k(j, "IF") && k(j + 1, "EXISTS") {
                j += 2;
            }
            if names_primary(spec.get(j)) {
                return Ok(Spec::DropPrimary);
            }
        }
        if [
            "INDEX",
            "KEY",
            "FOREIGN",
            "CONSTRAINT",
            "CHECK",
            "PARTITION",
            "PERIOD",
        ]
        .iter()
        .any(|w| k(1, w))
        {
            return Ok(Spec::Ignore);
        }
        if k(1, "SYSTEM") {
            return Err(ctx.unsupported(None, "DROP SYSTEM VERSIONING"));
        }
        let (v, iff) = strip_if(1);
        return Ok(Spec::Parse(v, iff));
    }
    if is_kw(first, "MODIFY") || is_kw(first, "CHANGE") {
        let (v, iff) = strip_if(1);
        let fixed = fix_column_tokens(&v).map_err(|e| ctx.parse_err(e))?;
        return Ok(Spec::Parse(fixed, iff));
    }
    if is_kw(first, "RENAME") {
        if k(1, "COLUMN") {
            let (v, iff) = strip_if(1);
            return Ok(Spec::Parse(v, iff));
        }
        if k(1, "INDEX") || k(1, "KEY") {
            return Ok(Spec::Ignore);
        }
        let j = if k(1, "TO") || k(1, "AS") { 2 } else { 1 };
        return Ok(Spec::Rename(&spec[j..]));
    }
    if is_kw(first, "CONVERT") {
        if k(1, "TO") {
            if let Some((cs, _, _)) = read_charset_option(spec, 2) {
                return Ok(Spec::ConvertCharset(cs));
            }
        }
        return Err(ctx.parse_err("CONVERT without TO CHARACTER SET"));
    }
    if let Some((cs, _, _)) = read_charset_option(spec, 0) {
        return Ok(Spec::DefaultCharset(cs));
    }
    // ALTER [COLUMN] … SET/DROP DEFAULT, ALTER INDEX, ENGINE=, ALGORITHM=, LOCK=, FORCE,
    // ORDER BY, AUTO_INCREMENT=, COMMENT=, partition maintenance, ENABLE/DISABLE KEYS, …:
    // none changes the columns, their types or the key.
    Ok(Spec::Ignore)
}

fn alter_table(
    cat: &mut Catalog,
    ctx: &Ctx<'_>,
    toks: &[Token],
    mut i: usize,
) -> Result<DdlOutcome, DdlError> {
    if kw_at(toks, i, "IF") && kw_at(toks, i + 1, "EXISTS") {
        i += 2;
    }
    let (name, after) = read_name(toks, i).ok_or_else(|| ctx.parse_err("no table name"))?;
    let mut key = ctx.qualify(&name)?;
    let orig = key.clone();
    let mut def = cat
        .get(&key.0, &key.1)
        .cloned()
        .ok_or_else(|| ctx.unknown(key.clone()))?;
    let mut table_cs = cat.default_charset(&key.0, &key.1).map(str::to_owned);
    // Some specs change the table (and its default charset) and are applied in order.
    let specs = split_commas(&toks[after..]);
    let mut changed = false;
    for spec in specs {
        if spec.is_empty() {
            continue;
        }
        match classify_spec(ctx, spec).map_err(|e| with_table(e, &key))? {
            Spec::Ignore => {}
            Spec::DropPrimary => {
                def.primary_key.clear();
                changed = true;
            }
            Spec::DefaultCharset(cs) => {
                table_cs = Some(cs);
                changed = true;
            }
            Spec::ConvertCharset(cs) => {
                convert_charset(&mut def, &cs);
                table_cs = Some(cs);
                changed = true;
            }
            Spec::Rename(rest) => {
                let (n, _) =
                    read_name(rest, 0).ok_or_else(|| ctx.parse_err("RENAME without a name"))?;
                key = ctx.qualify(&n)?;
                changed = true;
            }
            Spec::AddMany(cols, iff) => {
                for v in cols {
                    apply_parsed(ctx, &mut def, &v, iff, table_cs.as_deref())?;
                }
                changed = true;
            }
            Spec::Parse(v, iff) => {
                apply_parsed(ctx, &mut def, &v, iff, table_cs.as_deref())?;
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(DdlOutcome::NotSchema);
    }
    def.database = key.0.clone();
    def.name = key.1.clone();
    let mut dropped = Vec::new();
    if key != orig {
        if cat.get(&key.0, &key.1).is_some() {
            return Err(ctx.unsupported(Some(key), "RENAME onto an existing table"));
        }
        cat.remove(&orig.0, &orig.1);
        cat.table_charsets.remove(&orig);
        dropped.push(orig);
    }
    cat.put(def);
    if let Some(cs) = table_cs {
        cat.table_charsets.insert(key.clone(), cs);
    }
    Ok(DdlOutcome::Changed {
        tables: vec![key],
        dropped,
    })
}

fn with_table(e: DdlError, key: &(String, String)) -> DdlError {
    match e {
        DdlError::Unsupported {
            table: None,
            what,
            statement,
        } => DdlError::Unsupported {
            table: Some(key.clone()),
            what,
            statement,
        },
        other => other,
    }
}

/// `CONVERT TO CHARACTER SET`: every text column takes the new character set; TEXT types grow
/// when the new set needs more bytes per character, as the server does.
fn convert_charset(def: &mut TableDef, cs: &str) {
    for c in &mut def.columns {
        let Some(old) = c.charset.clone() else {
            continue;
        };
        if old == "binary" {
            continue;
        }
        let is_text = matches!(
            c.data_type.as_str(),
            "tinytext" | "text" | "mediumtext" | "longtext"
        );
        if is_text {
            // The column keeps room for as many characters as before: the server picks the
            // smallest TEXT type that holds them in the new set, never a smaller one.
            const TYPES: [(&str, u64); 4] = [
                ("tinytext", 255),
                ("text", 65_535),
                ("mediumtext", 16_777_215),
                ("longtext", 4_294_967_295),
            ];
            let old_max = c.char_max_length.unwrap_or(0);
            let chars = old_max / mbmaxlen(&old);
            let bytes = chars.saturating_mul(mbmaxlen(cs));
            let rank_old = TYPES
                .iter()
                .position(|(t, _)| *t == c.data_type)
                .unwrap_or(0);
            let fit = TYPES.iter().position(|(_, m)| bytes <= *m).unwrap_or(3);
            let (ty, max) = TYPES[fit.max(rank_old)];
            c.data_type = ty.into();
            c.column_type = ty.into();
            c.char_max_length = Some(max);
        }
        c.charset = Some(cs.to_owned());
    }
}

/// Applies one ALTER specification parsed by sqlparser.
fn apply_parsed(
    ctx: &Ctx<'_>,
    def: &mut TableDef,
    spec: &[Token],
    if_flag: bool,
    table_cs: Option<&str>,
) -> Result<(), DdlError> {
    let sql = format!("ALTER TABLE t {}", to_sql(spec));
    let Statement::AlterTable(at) = parse_statement(ctx, &sql)? else {
        return Err(ctx.parse_err("not an ALTER TABLE"));
    };
    for op in &at.operations {
        match op {
            AlterTableOperation::AddColumn {
                column_def,
                column_position,
                if_not_exists,
                ..
            } => {
                if col_index(def, &column_def.name.value).is_some() && (if_flag || *if_not_exists) {
                    continue;
                }
                let opts: Vec<ColumnOption> = column_def
                    .options
                    .iter()
                    .map(|o| o.option.clone())
                    .collect();
                let (c, pk) = column_def_of(
                    ctx,
                    &column_def.name.value,
                    &column_def.data_type,
                    &opts,
                    table_cs,
                )?;
                place(def, c, column_position.as_ref(), ctx)?;
                if pk {
                    set_pk(ctx, def, vec![column_def.name.value.clone()])?;
                }
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for n in column_names {
                    match col_index(def, &n.value) {
                        Some(i) => {
                            let removed = def.columns.remove(i);
                            def.primary_key
                                .retain(|k| !k.eq_ignore_ascii_case(&removed.name));
                        }
                        None if *if_exists || if_flag => {}
                        None => {
                            return Err(
                                ctx.parse_err(format!("DROP of unknown column `{}`", n.value))
                            )
                        }
                    }
                }
            }
            AlterTableOperation::ModifyColumn {
                col_name,
                data_type,
                options,
                column_position,
            } => replace_column(
                ctx,
                def,
                &col_name.value,
                &col_name.value,
                data_type,
                options,
                column_position.as_ref(),
                if_flag,
                table_cs,
            )?,
            AlterTableOperation::ChangeColumn {
                old_name,
                new_name,
                data_type,
                options,
                column_position,
            } => replace_column(
                ctx,
                def,
                &old_name.value,
                &new_name.value,
                data_type,
                options,
                column_position.as_ref(),
                if_flag,
                table_cs,
            )?,
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => match col_index(def, &old_column_name.value) {
                Some(i) => {
                    let old =
                        std::mem::replace(&mut def.columns[i].name, new_column_name.value.clone());
                    for k in &mut def.primary_key {
                        if k.eq_ignore_ascii_case(&old) {
                            *k = new_column_name.value.clone();
                        }
                    }
                }
                None if if_flag => {}
                None => {
                    return Err(ctx.parse_err(format!(
                        "RENAME of unknown column `{}`",
                        old_column_name.value
                    )))
                }
            },
            AlterTableOperation::AddConstraint { constraint, .. } => {
                if let Some(cols) = pk_columns(constraint) {
                    set_pk(ctx, def, cols)?;
                }
            }
            AlterTableOperation::DropPrimaryKey { .. } => def.primary_key.clear(),
            _ => {}
        }
    }
    Ok(())
}

fn column_def_of(
    ctx: &Ctx<'_>,
    name: &str,
    dt: &DataType,
    opts: &[ColumnOption],
    table_cs: Option<&str>,
) -> Result<(ColumnDef, bool), DdlError> {
    column_def(ctx, name, dt, opts, table_cs)
}

#[allow(clippy::too_many_arguments)]
fn replace_column(
    ctx: &Ctx<'_>,
    def: &mut TableDef,
    old: &str,
    new: &str,
    dt: &DataType,
    options: &[ColumnOption],
    pos: Option<&MySQLColumnPosition>,
    if_flag: bool,
    table_cs: Option<&str>,
) -> Result<(), DdlError> {
    let Some(i) = col_index(def, old) else {
        if if_flag {
            return Ok(());
        }
        return Err(ctx.parse_err(format!("MODIFY/CHANGE of unknown column `{old}`")));
    };
    let (mut c, pk) = column_def(ctx, new, dt, options, table_cs)?;
    let old_name = def.columns[i].name.clone();
    let in_pk = def
        .primary_key
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&old_name));
    if in_pk {
        c.nullable = false;
        for k in &mut def.primary_key {
            if k.eq_ignore_ascii_case(&old_name) {
                *k = new.to_owned();
            }
        }
    }
    match pos {
        None => def.columns[i] = c,
        Some(p) => {
            def.columns.remove(i);
            place(def, c, Some(p), ctx)?;
        }
    }
    if pk {
        set_pk(ctx, def, vec![new.to_owned()])?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// DROP / RENAME TABLE, databases

fn drop_table(cat: &mut Catalog, ctx: &Ctx<'_>, toks: &[Token]) -> Result<DdlOutcome, DdlError> {
    // `DROP TABLES` is MariaDB's synonym.
    let mut v = toks.to_vec();
    v[1] = Token::make_keyword("TABLE");
    let sql = to_sql(&v);
    let Statement::Drop {
        object_type: ObjectType::Table,
        names,
        ..
    } = parse_statement(ctx, &sql)?
    else {
        return Err(ctx.parse_err("not a DROP TABLE"));
    };
    let mut dropped = Vec::new();
    for n in &names {
        let key = ctx.qualify_obj(n)?;
        // Tables we never knew (another database, IF EXISTS of a missing one) drop nothing.
        if cat.remove(&key.0, &key.1).is_some() {
            cat.table_charsets.remove(&key);
            dropped.push(key);
        }
    }
    if dropped.is_empty() {
        return Ok(DdlOutcome::NotSchema);
    }
    Ok(DdlOutcome::Changed {
        tables: Vec::new(),
        dropped,
    })
}

fn rename_tables(cat: &mut Catalog, ctx: &Ctx<'_>, toks: &[Token]) -> Result<DdlOutcome, DdlError> {
    let mut v = toks.to_vec();
    v[1] = Token::make_keyword("TABLE");
    let sql = to_sql(&v);
    let Statement::RenameTable(pairs) = parse_statement(ctx, &sql)? else {
        return Err(ctx.parse_err("not a RENAME TABLE"));
    };
    // Renames apply left to right (`RENAME TABLE a TO tmp, b TO a, tmp TO b` swaps).
    let mut touched: Vec<((String, String), bool)> = Vec::new();
    for p in &pairs {
        let from = ctx.qualify_obj(&p.old_name)?;
        let to = ctx.qualify_obj(&p.new_name)?;
        for k in [&from, &to] {
            if !touched.iter().any(|(t, _)| t == k) {
                let existed = cat.get(&k.0, &k.1).is_some();
                touched.push((k.clone(), existed));
            }
        }
        let Some(mut def) = cat.remove(&from.0, &from.1) else {
            return Err(ctx.unknown(from));
        };
        let cs = cat.table_charsets.remove(&from);
        def.database = to.0.clone();
        def.name = to.1.clone();
        cat.put(def);
        if let Some(cs) = cs {
            cat.table_charsets.insert(to.clone(), cs);
        }
    }
    let mut tables = Vec::new();
    let mut dropped = Vec::new();
    for (k, existed) in touched {
        if cat.get(&k.0, &k.1).is_some() {
            tables.push(k);
        } else if existed {
            dropped.push(k);
        }
    }
    Ok(DdlOutcome::Changed { tables, dropped })
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum DbOp {
    Create,
    Alter,
    Drop,
}

/// CREATE/ALTER/DROP DATABASE, read by our token pass (sqlparser 0.64 does not read
/// `DEFAULT CHARACTER SET` nor `ALTER DATABASE`).
fn database_stmt(
    cat: &mut Catalog,
    ctx: &Ctx<'_>,
    toks: &[Token],
    mut i: usize,
    op: DbOp,
) -> Result<DdlOutcome, DdlError> {
    if kw_at(toks, i, "IF") && kw_at(toks, i + 1, "NOT") && kw_at(toks, i + 2, "EXISTS") {
        i += 3;
    } else if kw_at(toks, i, "IF") && kw_at(toks, i + 1, "EXISTS") {
        i += 2;
    }
    // ALTER DATABASE without a name applies to the default database.
    let (name, mut j) = match toks.get(i).and_then(word) {
        Some(w) if !(op == DbOp::Alter && read_charset_option(toks, i).is_some()) => {
            (w.value.clone(), i + 1)
        }
        _ if op == DbOp::Alter => match ctx.default_db {
            Some(d) => (d.to_owned(), i),
            None => {
                return Err(ctx.parse_err("ALTER DATABASE without a name nor a default database"))
            }
        },
        _ => return Err(ctx.parse_err("no database name")),
    };
    match op {
        DbOp::Drop => {
            let gone: Vec<(String, String)> = cat
                .tables
                .keys()
                .filter(|(d, _)| *d == name)
                .cloned()
                .collect();
            for k in &gone {
                cat.remove(&k.0, &k.1);
                cat.table_charsets.remove(k);
            }
            cat.databases.remove(&name);
            Ok(DdlOutcome::Changed {
                tables: Vec::new(),
                dropped: gone,
            })
        }
        DbOp::Create | DbOp::Alter => {
            if op == DbOp::Create && kw_at(toks, 2, "NOT") && cat.databases.contains_key(&name) {
                return Ok(DdlOutcome::NotSchema);
            }
            let mut cs: Option<String> = None;
            let mut coll_cs: Option<String> = None;
            while j < toks.len() {
                if let Some((c, is_cs, next)) = read_charset_option(toks, j) {
                    if is_cs {
                        cs = Some(c);
                    } else {
                        coll_cs = Some(c);
                    }
                    j = next;
                } else {
                    j += 1;
                }
            }
            let cs = cs.or(coll_cs);
            match (op, cs) {
                (_, Some(cs)) => {
                    cat.databases.insert(name, cs);
                }
                (DbOp::Create, None) => {
                    if let Some(s) = cat.server_charset.clone() {
                        cat.databases.insert(name, s);
                    }
                }
                _ => return Ok(DdlOutcome::NotSchema),
            }
            Ok(DdlOutcome::Changed {
                tables: Vec::new(),
                dropped: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
