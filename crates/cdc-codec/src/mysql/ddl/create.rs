//! CREATE TABLE (a column list or `LIKE` another table) into a new [`TableDef`], and its
//! primary key.

use sqlparser::ast::{ColumnOption, Statement};
use sqlparser::tokenizer::Token;

use crate::mysql::catalog::{Catalog, TableDef};

use super::column::{column_def, pk_columns};
use super::tokens::{
    fix_column_tokens, parse_statement, read_name, skip_parens, split_commas,
    table_charset_from_options, to_sql,
};
use super::{is_kw, kw_at, Ctx, DdlError, DdlOutcome};

pub(super) fn create_table(
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
pub(super) fn set_pk(ctx: &Ctx<'_>, def: &mut TableDef, cols: Vec<String>) -> Result<(), DdlError> {
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
