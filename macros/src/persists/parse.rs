//! The arguments of `#[persists]`: tables with their expectations, then
//! options; table names checked against the crate's migrations.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Expr, ExprLit, Ident, Lit, LitStr};

use super::migrations::{self, Schema};
use crate::ctxt::Ctxt;
use crate::options::{
    Arg, TestOptions, dotted, parse_args_or_record, string_literal, unknown_option, whole_number,
};
use crate::symbol::{IGNORE, MIGRATIONS, RETRIES, ROWS, TAGS, TIMEOUT, WHERE};
use verily_runtime::similar::did_you_mean;

const OPTIONS: &[&str] = &[TIMEOUT, IGNORE, MIGRATIONS, TAGS, RETRIES];
const TABLE_OPTIONS: &[&str] = &[ROWS, WHERE];

/// A table the test must write to (or, with `rows = 0`, must not).
pub struct Table {
    pub path: Vec<Ident>,
    pub rows: Option<u64>,
    pub predicate: Option<LitStr>,
}

impl Table {
    pub fn name(&self) -> String {
        dotted(&self.path)
    }

    fn tokens(&self) -> TokenStream {
        let path = &self.path;
        quote!(#(#path).*)
    }
}

#[derive(Default)]
pub struct PersistsAttr {
    pub tables: Vec<Table>,
    pub options: TestOptions,
    pub migrations: Option<LitStr>,
    pub span: Option<TokenStream>,
}

impl PersistsAttr {
    pub fn parse(cx: &Ctxt, args: TokenStream) -> Self {
        let mut attr = PersistsAttr {
            span: Some(args.clone()),
            ..PersistsAttr::default()
        };
        let args = parse_args_or_record(cx, args);
        for arg in args {
            match arg {
                Arg::Path(path) => attr.add_table(cx, path, Vec::new()),
                Arg::List { name, args } => attr.add_table(cx, name, args),
                Arg::Value { key, value } if key == MIGRATIONS => {
                    if attr.migrations.is_some() {
                        cx.error_spanned_by(&key, "duplicate option `migrations`");
                    }
                    attr.migrations = string_literal(cx, MIGRATIONS, &value);
                }
                Arg::Value { key, value } => attr.options.take(cx, &key, &value, OPTIONS),
            }
        }
        attr
    }

    fn add_table(&mut self, cx: &Ctxt, path: Vec<Ident>, args: Vec<Arg>) {
        let mut table = Table {
            path,
            rows: None,
            predicate: None,
        };
        for segment in &table.path {
            let name = segment.unraw().to_string();
            if name.chars().any(|c| c.is_ascii_uppercase()) {
                cx.error_spanned_by(
                    segment,
                    format!(
                        "write `{}`: PostgreSQL folds unquoted table names to lowercase",
                        name.to_lowercase()
                    ),
                );
            }
        }
        if self.tables.iter().any(|seen| seen.name() == table.name()) {
            cx.error_spanned_by(
                table.tokens(),
                format!("duplicate table `{}` in #[persists]", table.name()),
            );
            return;
        }
        let mut seen: Vec<String> = Vec::new();
        for arg in args {
            let (key, value) = match arg {
                Arg::Value { key, value } => (key, value),
                Arg::Path(path) | Arg::List { name: path, .. } => {
                    let name = path[0].unraw().to_string();
                    cx.error_spanned_by(&path[0], unknown_option(&name, TABLE_OPTIONS));
                    continue;
                }
            };
            let name = key.unraw().to_string();
            if seen.contains(&name) {
                cx.error_spanned_by(&key, format!("duplicate option `{name}`"));
                continue;
            }
            seen.push(name.clone());
            match name.as_str() {
                ROWS => table.rows = rows(cx, &value),
                WHERE => match &value {
                    Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) if !text.value().trim().is_empty() => {
                        table.predicate = Some(text.clone());
                    }
                    other => cx.error_spanned_by(
                        other,
                        "`where` takes a string literal of SQL, as in where = \"status = 'FAILED'\"",
                    ),
                },
                _ => cx.error_spanned_by(
                    &key,
                    unknown_option(&name, TABLE_OPTIONS).replacen(
                        &format!("`{name}`;"),
                        &format!("`{name}` for table `{}`;", table.name()),
                        1,
                    ),
                ),
            }
        }
        self.tables.push(table);
    }
}

fn rows(cx: &Ctxt, value: &Expr) -> Option<u64> {
    whole_number(
        cx,
        value,
        "`rows` takes a whole number, as in rows = 1 (rows = 0: must not write)",
    )
}

/// Every named table must be created by the crate's migrations.
pub fn check_tables(cx: &Ctxt, attr: &PersistsAttr) -> Schema {
    if attr.tables.is_empty() {
        cx.error_spanned_by(
            attr.span.clone().unwrap_or_default(),
            "#[persists] names the tables the test must write, as in #[persists(operations)] or #[persists(operations(rows = 1))]",
        );
        return Schema::default();
    }
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let (dir, spanned) = match &attr.migrations {
        Some(dir) => (normalize(&root.join(dir.value())), quote!(#dir)),
        None => (root.join("migrations"), attr.tables[0].tokens()),
    };
    let schema = match migrations::read(&dir) {
        Ok(schema) => schema,
        Err(error) => {
            cx.error_spanned_by(
                spanned,
                format!(
                    "#[persists] checks table names against the crate's migrations, but cannot read them ({error}); create the folder, or name it with migrations = \"db/migrations\""
                ),
            );
            return Schema::default();
        }
    };
    for table in &attr.tables {
        if schema.has(&table.name()) {
            continue;
        }
        let mut message = format!(
            "no table `{}` in the migrations in {}",
            table.name(),
            dir.display()
        );
        match did_you_mean(&table.name(), schema.tables.iter().map(String::as_str)) {
            Some(near) => message.push_str(&format!("; did you mean `{near}`?")),
            None if schema.tables.is_empty() => message.push_str("; they create no table"),
            None => message.push_str(&format!("; they create: {}", schema.tables.join(", "))),
        }
        cx.error_spanned_by(table.tokens(), message);
    }
    schema
}

/// `a/b/../c` as `a/c`, for messages: no file system access.
fn normalize(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir if normal.file_name().is_some() => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}
