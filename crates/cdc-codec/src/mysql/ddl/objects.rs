//! DROP TABLE, RENAME TABLE and the database statements (CREATE/ALTER/DROP DATABASE).

use sqlparser::ast::{ObjectType, Statement};
use sqlparser::tokenizer::Token;

use crate::mysql::catalog::Catalog;

use super::tokens::{parse_statement, read_charset_option, to_sql};
use super::{kw_at, word, Ctx, DdlError, DdlOutcome};

pub(super) fn drop_table(
    cat: &mut Catalog,
    ctx: &Ctx<'_>,
    toks: &[Token],
) -> Result<DdlOutcome, DdlError> {
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

pub(super) fn rename_tables(
    cat: &mut Catalog,
    ctx: &Ctx<'_>,
    toks: &[Token],
) -> Result<DdlOutcome, DdlError> {
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
pub(super) enum DbOp {
    Create,
    Alter,
    Drop,
}

/// CREATE/ALTER/DROP DATABASE, read by our token pass (sqlparser 0.64 does not read
/// `DEFAULT CHARACTER SET` nor `ALTER DATABASE`).
pub(super) fn database_stmt(
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
