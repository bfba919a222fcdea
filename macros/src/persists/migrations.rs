//! The tables a crate's migrations create, read at compile time: a small
//! SQL scanner that follows `CREATE TABLE`, `ALTER TABLE ... RENAME TO` and
//! `DROP TABLE` in file order, skipping comments, strings and dollar-quoted
//! bodies.

use std::path::{Path, PathBuf};

/// Tables after every migration, and the files read.
#[derive(Debug, Default)]
pub struct Schema {
    /// Lowercase, `schema.table` when qualified (`public.` dropped).
    pub tables: Vec<String>,
    pub files: Vec<PathBuf>,
}

impl Schema {
    pub fn has(&self, table: &str) -> bool {
        let table = normalize(table);
        self.tables.contains(&table)
    }
}

/// Reads every `.sql` file of `dir` in name order (sqlx's order), skipping
/// the `.down.sql` halves of reversible migrations.
pub fn read(dir: &Path) -> Result<Schema, String> {
    let entries = std::fs::read_dir(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.ends_with(".sql") && !name.ends_with(".down.sql")
        })
        .collect();
    files.sort();
    let mut schema = Schema::default();
    for file in &files {
        let sql = std::fs::read_to_string(file)
            .map_err(|error| format!("{}: {error}", file.display()))?;
        apply(&sql, &mut schema.tables);
    }
    schema.files = files;
    Ok(schema)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An unquoted word, lowercased (keywords and names alike).
    Word(String),
    /// A `"quoted"` name, exact.
    Quoted(String),
    Punct(char),
}

impl Token {
    fn is(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(word) if word == keyword)
    }

    fn name(&self) -> Option<&str> {
        match self {
            Token::Word(word) | Token::Quoted(word) => Some(word),
            Token::Punct(_) => None,
        }
    }
}

fn tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' && chars.get(i + 1) == Some(&'\'') {
                    i += 2;
                } else if chars[i] == '\'' {
                    i += 1;
                    break;
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            let start = i + 1;
            let mut name = String::new();
            i = start;
            while i < chars.len() {
                if chars[i] == '"' && chars.get(i + 1) == Some(&'"') {
                    name.push('"');
                    i += 2;
                } else if chars[i] == '"' {
                    i += 1;
                    break;
                } else {
                    name.push(chars[i]);
                    i += 1;
                }
            }
            tokens.push(Token::Quoted(name));
        } else if c == '$' {
            // $tag$ ... $tag$: a function body, skipped whole.
            let tag_end = chars[i + 1..]
                .iter()
                .position(|&c| c == '$')
                .map(|at| i + 1 + at);
            match tag_end {
                Some(end)
                    if chars[i + 1..end]
                        .iter()
                        .all(|c| c.is_alphanumeric() || *c == '_') =>
                {
                    let tag: String = chars[i..=end].iter().collect();
                    let rest: String = chars[end + 1..].iter().collect();
                    let close = rest.find(&tag).map(|at| rest[..at].chars().count());
                    i = match close {
                        Some(length) => end + 1 + length + tag.chars().count(),
                        None => chars.len(),
                    };
                }
                _ => i += 1,
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token::Word(
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// `name` or `schema.name` starting at `at`; returns it and the next index.
fn qualified_name(tokens: &[Token], at: usize) -> Option<(String, usize)> {
    let first = tokens.get(at)?.name()?.to_owned();
    if tokens.get(at + 1) == Some(&Token::Punct('.')) {
        let second = tokens.get(at + 2)?.name()?;
        return Some((normalize(&format!("{first}.{second}")), at + 3));
    }
    Some((normalize(&first), at + 1))
}

fn normalize(table: &str) -> String {
    let table = table.to_lowercase();
    table
        .strip_prefix("public.")
        .map(str::to_owned)
        .unwrap_or(table)
}

fn skip_words(tokens: &[Token], mut at: usize, words: &[&str]) -> usize {
    while tokens
        .get(at)
        .is_some_and(|token| words.iter().any(|word| token.is(word)))
    {
        at += 1;
    }
    at
}

/// Applies one file's statements to the set of tables.
fn apply(sql: &str, tables: &mut Vec<String>) {
    let tokens = tokens(sql);
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].is("create") {
            let at = skip_words(
                &tokens,
                i + 1,
                &[
                    "or",
                    "replace",
                    "global",
                    "local",
                    "temp",
                    "temporary",
                    "unlogged",
                ],
            );
            if tokens.get(at).is_some_and(|token| token.is("table")) {
                let at = skip_words(&tokens, at + 1, &["if", "not", "exists"]);
                if let Some((name, next)) = qualified_name(&tokens, at) {
                    if !tables.contains(&name) {
                        tables.push(name);
                    }
                    i = next;
                    continue;
                }
            }
        } else if tokens[i].is("alter") && tokens.get(i + 1).is_some_and(|token| token.is("table"))
        {
            let at = skip_words(&tokens, i + 2, &["if", "exists", "only"]);
            if let Some((name, next)) = qualified_name(&tokens, at)
                && tokens.get(next).is_some_and(|token| token.is("rename"))
                && tokens.get(next + 1).is_some_and(|token| token.is("to"))
                && let Some((renamed, after)) = qualified_name(&tokens, next + 2)
            {
                let schema = name
                    .rsplit_once('.')
                    .map(|(schema, _)| format!("{schema}."));
                let renamed = match schema {
                    Some(schema) if !renamed.contains('.') => format!("{schema}{renamed}"),
                    _ => renamed,
                };
                tables.retain(|table| *table != name);
                tables.push(renamed);
                i = after;
                continue;
            }
        } else if tokens[i].is("drop") && tokens.get(i + 1).is_some_and(|token| token.is("table")) {
            let mut at = skip_words(&tokens, i + 2, &["if", "exists"]);
            while let Some((name, next)) = qualified_name(&tokens, at) {
                tables.retain(|table| *table != name);
                at = next;
                if tokens.get(at) != Some(&Token::Punct(',')) {
                    break;
                }
                at += 1;
            }
            i = at;
            continue;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::apply;

    fn tables(sql: &str) -> Vec<String> {
        let mut tables = Vec::new();
        apply(sql, &mut tables);
        tables
    }

    #[test]
    fn follows_creates_renames_and_drops() {
        let sql = r#"
            -- CREATE TABLE commented_out (id int);
            /* CREATE TABLE also_commented (id int); */
            CREATE TABLE IF NOT EXISTS Operations (id bigserial primary key, note text default 'CREATE TABLE nope');
            create unlogged table "Checkpoints" (id int);
            CREATE TABLE audit.events (id int);
            CREATE TABLE public.features_log (id int);
            CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN CREATE TABLE hidden (x int); END $body$ LANGUAGE plpgsql;
            CREATE TABLE old_name (id int);
            ALTER TABLE old_name RENAME TO new_name;
            ALTER TABLE operations RENAME COLUMN note TO notes;
            CREATE TABLE gone (id int); CREATE TABLE gone_too (id int);
            DROP TABLE IF EXISTS gone, gone_too;
        "#;
        assert_eq!(
            tables(sql),
            [
                "operations",
                "checkpoints",
                "audit.events",
                "features_log",
                "new_name"
            ]
        );
    }
}
