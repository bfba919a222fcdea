//! `--tags EXPR`: tag names joined with `&`, `|`, `!` and parentheses (or
//! the words `and`, `or`, `not`), as pytest's `-m` and JUnit 5's tag
//! expressions read. `!` binds tighter than `&`, `&` tighter than `|`.

use crate::errors::CliError;
use crate::similar::did_you_mean;

/// A parsed tag expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagExpr {
    Tag(String),
    Not(Box<TagExpr>),
    And(Box<TagExpr>, Box<TagExpr>),
    Or(Box<TagExpr>, Box<TagExpr>),
}

impl TagExpr {
    /// Parses `text`; every tag it names must be in `known`.
    pub fn parse(text: &str, known: &[&str]) -> Result<Self, CliError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            text,
            tokens: &tokens,
            at: 0,
        };
        let expr = parser.or()?;
        if let Some(token) = parser.tokens.get(parser.at) {
            return Err(parser.error(format!("unexpected `{}`", token.text())));
        }
        expr.check_names(known)?;
        Ok(expr)
    }

    /// Whether a test matches, given whether it has a tag.
    pub fn matches(&self, has: &impl Fn(&str) -> bool) -> bool {
        match self {
            TagExpr::Tag(name) => has(name),
            TagExpr::Not(inner) => !inner.matches(has),
            TagExpr::And(left, right) => left.matches(has) && right.matches(has),
            TagExpr::Or(left, right) => left.matches(has) || right.matches(has),
        }
    }

    fn check_names(&self, known: &[&str]) -> Result<(), CliError> {
        match self {
            TagExpr::Tag(name) if known.contains(&name.as_str()) => Ok(()),
            TagExpr::Tag(name) => Err(CliError::UnknownTag {
                name: name.clone(),
                suggestion: did_you_mean(name, known.iter().copied()).map(str::to_owned),
                known: known.iter().map(|tag| (*tag).to_owned()).collect(),
            }),
            TagExpr::Not(inner) => inner.check_names(known),
            TagExpr::And(left, right) | TagExpr::Or(left, right) => {
                left.check_names(known)?;
                right.check_names(known)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Name(name) => name,
            Token::And => "&",
            Token::Or => "|",
            Token::Not => "!",
            Token::Open => "(",
            Token::Close => ")",
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, CliError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '&' => Token::And,
            '|' => Token::Or,
            '!' => Token::Not,
            '(' => Token::Open,
            ')' => Token::Close,
            c if is_name_char(c) => {
                let mut end = start + c.len_utf8();
                while let Some(&(at, next)) = chars.peek() {
                    if !is_name_char(next) {
                        break;
                    }
                    end = at + next.len_utf8();
                    chars.next();
                }
                match &text[start..end] {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    name => Token::Name(name.to_owned()),
                }
            }
            other => {
                return Err(CliError::TagExpression {
                    expression: text.to_owned(),
                    problem: format!("unexpected `{other}`"),
                });
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_')
}

struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, problem: String) -> CliError {
        CliError::TagExpression {
            expression: self.text.to_owned(),
            problem,
        }
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.tokens.get(self.at) == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<TagExpr, CliError> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            left = TagExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<TagExpr, CliError> {
        let mut left = self.not()?;
        while self.eat(&Token::And) {
            left = TagExpr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<TagExpr, CliError> {
        if self.eat(&Token::Not) {
            return Ok(TagExpr::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<TagExpr, CliError> {
        match self.tokens.get(self.at) {
            Some(Token::Name(name)) => {
                self.at += 1;
                Ok(TagExpr::Tag(name.clone()))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if !self.eat(&Token::Close) {
                    return Err(self.error("a `(` is not closed".to_owned()));
                }
                Ok(inner)
            }
            Some(other) => {
                Err(self.error(format!("expected a tag name, found `{}`", other.text())))
            }
            None => Err(self.error("expected a tag name at the end".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["persistence", "slow", "nightly", "wiring"];

    fn select(expr: &str, tags: &[&str]) -> bool {
        TagExpr::parse(expr, KNOWN)
            .unwrap()
            .matches(&|tag| tags.contains(&tag))
    }

    #[test]
    fn operators_and_words_agree() {
        let slow_db = ["persistence", "slow"];
        let fast_db = ["persistence"];
        for expr in ["persistence & !slow", "persistence and not slow"] {
            assert!(!select(expr, &slow_db), "{expr}");
            assert!(select(expr, &fast_db), "{expr}");
        }
        assert!(select("wiring | nightly", &["nightly"]));
        assert!(!select("wiring or nightly", &["slow"]));
    }

    #[test]
    fn not_binds_tighter_than_and_tighter_than_or() {
        // wiring | (slow & nightly)
        assert!(select("wiring | slow & nightly", &["wiring"]));
        assert!(!select("wiring | slow & nightly", &["slow"]));
        // (wiring | slow) & nightly
        assert!(!select("(wiring | slow) & nightly", &["wiring"]));
        assert!(select("!(slow | nightly)", &["wiring"]));
        assert!(!select("!slow & slow", &["slow"]));
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let error = TagExpr::parse("persistance & !slow", KNOWN).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown tag `persistance` in --tags (did you mean `persistence`?); known tags: persistence, slow, nightly, wiring"
        );
        for (expr, problem) in [
            ("(slow", "a `(` is not closed"),
            ("slow &", "expected a tag name at the end"),
            ("slow nightly", "unexpected `nightly`"),
            ("slow; nightly", "unexpected `;`"),
            ("& slow", "expected a tag name, found `&`"),
        ] {
            assert_eq!(
                TagExpr::parse(expr, KNOWN).unwrap_err(),
                CliError::TagExpression {
                    expression: expr.to_owned(),
                    problem: problem.to_owned()
                },
                "{expr}"
            );
        }
    }
}
