//! Token helpers: the token-level pass that rewrites MariaDB syntax sqlparser does not read
//! (charset options, ZEROFILL, parenthesised lists) before a statement reaches the parser.

use sqlparser::ast::Statement;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::mysql::catalog::{charset_of_collation, normalize_charset};

use super::{is_kw, kw_at, word, Ctx, DdlError, ZEROFILL_MARK};

/// Writes tokens back as SQL for sqlparser, quoting as MySQL reads it.
pub(super) fn to_sql(toks: &[Token]) -> String {
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
pub(super) fn skip_parens(toks: &[Token], open: usize) -> Option<usize> {
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
pub(super) fn split_commas(toks: &[Token]) -> Vec<&[Token]> {
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
pub(super) fn read_name(toks: &[Token], mut i: usize) -> Option<(Vec<String>, usize)> {
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
pub(super) fn read_charset_option(toks: &[Token], i: usize) -> Option<(String, bool, usize)> {
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
pub(super) fn table_charset_from_options(toks: &[Token]) -> Option<String> {
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
pub(super) fn fix_column_tokens(def: &[Token]) -> Result<Vec<Token>, String> {
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

pub(super) fn parse_statement(ctx: &Ctx<'_>, sql: &str) -> Result<Statement, DdlError> {
    let mut stmts =
        Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| ctx.parse_err(e.to_string()))?;
    if stmts.len() != 1 {
        return Err(ctx.parse_err(format!("{} statements", stmts.len())));
    }
    Ok(stmts.remove(0))
}
