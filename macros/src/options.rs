//! The argument grammar shared by the attributes, and the options every
//! generated test accepts (`timeout`, `ignore`, `category`, `tags`,
//! `retries`).
//!
//! ```text
//! args  := arg (',' arg)* ','?
//! arg   := name ('.' name)*            a field, a dotted path, or a flag
//!        | name '=' expr               an option
//!        | name '(' args ')'           a name with options of its own
//! ```

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprArray, ExprLit, Ident, Lit, LitStr, Token};

use crate::ctxt::Ctxt;
use crate::symbol::{CATEGORY, IGNORE, RETRIES, TAGS, TIMEOUT};
use verily_runtime::similar::did_you_mean;

/// One argument of an attribute.
pub enum Arg {
    /// `repository` or `detector.operations_service`.
    Path(Vec<Ident>),
    /// `timeout = "30s"`.
    Value { key: Ident, value: Expr },
    /// `operations(rows = 1)`.
    List { name: Vec<Ident>, args: Vec<Arg> },
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let first = Ident::parse_any(input)?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            return Ok(Arg::Value {
                key: first,
                value: input.parse()?,
            });
        }
        let mut path = vec![first];
        while input.peek(Token![.]) {
            input.parse::<Token![.]>()?;
            path.push(Ident::parse_any(input)?);
        }
        if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            let args = Punctuated::<Arg, Token![,]>::parse_terminated(&content)?;
            return Ok(Arg::List {
                name: path,
                args: args.into_iter().collect(),
            });
        }
        Ok(Arg::Path(path))
    }
}

/// `detector.operations_service`: a path of names as written.
pub fn dotted(path: &[Ident]) -> String {
    path.iter()
        .map(|segment| segment.unraw().to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// Parses an attribute's arguments; a syntax error is recorded and leaves
/// no arguments, so the attribute's other checks still run.
pub fn parse_args_or_record(cx: &Ctxt, args: TokenStream) -> Vec<Arg> {
    parse_args(args).unwrap_or_else(|error| {
        cx.syn_error(error);
        Vec::new()
    })
}

/// Parses an attribute's arguments.
fn parse_args(args: TokenStream) -> syn::Result<Vec<Arg>> {
    let parsed = Punctuated::<Arg, Token![,]>::parse_terminated.parse2(args)?;
    Ok(parsed.into_iter().collect())
}

/// Options of the test an attribute generates.
#[derive(Default)]
pub struct TestOptions {
    pub category: Option<String>,
    pub timeout_millis: Option<u64>,
    pub ignore: Option<Option<String>>,
    /// `tags = ["slow", "nightly"]`, checked names, in order.
    pub tags: Vec<String>,
    /// `retries = N`.
    pub retries: Option<u32>,
    seen: Vec<Ident>,
}

impl TestOptions {
    /// The keys this type takes; an attribute may allow others it handles itself.
    pub const KEYS: &'static [&'static str] = &[CATEGORY, TIMEOUT, IGNORE, TAGS, RETRIES];

    /// Takes `key = value` if `key` is one of `allowed`; records an error
    /// naming the valid choices otherwise.
    pub fn take(&mut self, cx: &Ctxt, key: &Ident, value: &Expr, allowed: &[&str]) {
        let name = key.unraw().to_string();
        if !allowed.contains(&name.as_str()) {
            cx.error_spanned_by(key, unknown_option(&name, allowed));
            return;
        }
        if !TestOptions::KEYS.contains(&name.as_str()) {
            return;
        }
        if self.seen.iter().any(|seen| seen.unraw() == name) {
            cx.error_spanned_by(key, format!("duplicate option `{name}`"));
            return;
        }
        self.seen.push(key.clone());
        match name.as_str() {
            TAGS => return self.tags = tag_list(cx, value),
            RETRIES => {
                let expected = "`retries` takes a whole number, as in retries = 2";
                self.retries = whole_number(cx, value, expected)
                    .map(|retries| u32::try_from(retries).unwrap_or(u32::MAX));
                return;
            }
            _ => {}
        }
        let Some(text) = string_literal(cx, &name, value) else {
            return;
        };
        match name.as_str() {
            CATEGORY => {
                if verily_runtime::category::is_valid_name(&text.value()) {
                    self.category = Some(text.value());
                } else {
                    cx.error_spanned_by(
                        &text,
                        format!(
                            "invalid category `{}`: use lowercase letters, digits, `-` and `_`, starting with a letter (built in: {})",
                            text.value(),
                            verily_runtime::category::BUILTIN.join(", ")
                        ),
                    );
                }
            }
            TIMEOUT => match verily_runtime::duration::parse_duration(&text.value()) {
                Ok(duration) => {
                    self.timeout_millis = Some(duration.as_millis().try_into().unwrap_or(u64::MAX))
                }
                Err(error) => cx.error_spanned_by(&text, error),
            },
            IGNORE => self.ignore = Some(Some(text.value())),
            _ => unreachable!("`allowed` lists only known keys"),
        }
    }

    /// The option keys given, in order.
    pub fn given(&self) -> impl Iterator<Item = &Ident> {
        self.seen.iter()
    }

    /// Takes the bare flag `ignore`.
    pub fn take_ignore_flag(&mut self, cx: &Ctxt, key: &Ident) {
        if self.seen.iter().any(|seen| seen == IGNORE) {
            cx.error_spanned_by(key, "duplicate option `ignore`");
            return;
        }
        self.seen.push(key.clone());
        self.ignore = Some(None);
    }
}

/// `["slow", "nightly"]`: string literals, each a valid name, none twice.
fn tag_list(cx: &Ctxt, value: &Expr) -> Vec<String> {
    let Expr::Array(ExprArray { elems, .. }) = value else {
        cx.error_spanned_by(
            value,
            "`tags` takes an array of string literals, as in tags = [\"slow\", \"nightly\"]",
        );
        return Vec::new();
    };
    let mut tags: Vec<String> = Vec::with_capacity(elems.len());
    for element in elems {
        let Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) = element
        else {
            cx.error_spanned_by(
                element,
                "each tag is a string literal, as in tags = [\"slow\"]",
            );
            continue;
        };
        let tag = text.value();
        if !verily_runtime::category::is_valid_name(&tag) {
            cx.error_spanned_by(
                text,
                format!(
                    "invalid tag `{tag}`: use lowercase letters, digits, `-` and `_`, starting with a letter"
                ),
            );
        } else if tags.contains(&tag) {
            cx.error_spanned_by(text, format!("duplicate tag `{tag}`"));
        } else {
            tags.push(tag);
        }
    }
    tags
}

/// "unknown option `foo`; expected one of `timeout`, `ignore`", with a
/// suggestion when the name is a near miss.
pub fn unknown_option(name: &str, allowed: &[&str]) -> String {
    let choices: Vec<String> = allowed.iter().map(|key| format!("`{key}`")).collect();
    let mut message = format!(
        "unknown option `{name}`; expected one of {}",
        choices.join(", ")
    );
    if let Some(near) = did_you_mean(name, allowed.iter().copied()) {
        message.push_str(&format!(" (did you mean `{near}`?)"));
    }
    message
}

/// A string literal, or an error naming the key that wanted one.
pub fn string_literal(cx: &Ctxt, key: &str, value: &Expr) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Some(text.clone()),
        other => {
            cx.error_spanned_by(
                other,
                format!("`{key}` takes a string literal, as in {key} = \"...\""),
            );
            None
        }
    }
}

/// A whole number literal; otherwise records `expected` (which says the
/// option's shape, as in "`rows` takes a whole number, as in rows = 1").
pub fn whole_number(cx: &Ctxt, value: &Expr, expected: &str) -> Option<u64> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(number),
            ..
        }) => match number.base10_parse::<u64>() {
            Ok(number) => Some(number),
            Err(error) => {
                cx.syn_error(error);
                None
            }
        },
        other => {
            cx.error_spanned_by(other, expected);
            None
        }
    }
}
