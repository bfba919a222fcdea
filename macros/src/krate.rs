//! `crate = "path"`: generated code names the facade through this path
//! instead of `::verily`, for a user who renamed the dependency
//! (`vy = { package = "verily", ... }`) or re-exports it, as serde's
//! `#[serde(crate = "...")]` and tokio's `#[tokio::main(crate = "...")]`.
//!
//! Every attribute accepts it. The expansion is written against
//! `::verily::...`; with the option, each absolute path starting
//! `::verily` in it is rewritten to the given path, so new expansions
//! need no change to support it.

use proc_macro2::{Delimiter, Group, Spacing, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::{LitStr, Path};

use crate::symbol::CRATE;

/// Runs `expand` on `args` without their `crate = "..."`, then points the
/// output at that path.
pub fn with_crate_option(
    args: TokenStream,
    expand: impl FnOnce(TokenStream) -> TokenStream,
) -> TokenStream {
    let (args, krate) = split_crate_option(args);
    match krate {
        Ok(None) => expand(args),
        Ok(Some(path)) => retarget(expand(args), &path.to_token_stream()),
        Err(error) => {
            let output = expand(args);
            let error = error.into_compile_error();
            quote!(#output #error)
        }
    }
}

/// The arguments without `crate = "..."`, and the path it named.
fn split_crate_option(args: TokenStream) -> (TokenStream, syn::Result<Option<Path>>) {
    let mut kept: Vec<Vec<TokenTree>> = Vec::new();
    let mut krate: syn::Result<Option<Path>> = Ok(None);
    for segment in split_top_level_commas(args) {
        let is_crate = matches!(segment.first(), Some(TokenTree::Ident(ident)) if ident == CRATE)
            && matches!(segment.get(1), Some(TokenTree::Punct(eq)) if eq.as_char() == '=');
        if !is_crate {
            kept.push(segment);
            continue;
        }
        let value: TokenStream = segment[2..].iter().cloned().collect();
        let parsed = syn::parse2::<LitStr>(value.clone())
            .and_then(|literal| literal.parse::<Path>())
            .map_err(|_| {
                syn::Error::new_spanned(
                    &value,
                    "`crate` takes the path to verily as a string: `crate = \"my_verily\"` or `crate = \"::my_crate::verily\"`",
                )
            });
        krate = match (krate, parsed) {
            (Ok(None), Ok(path)) => Ok(Some(path)),
            (Ok(Some(_)), _) => Err(syn::Error::new_spanned(
                segment.iter().cloned().collect::<TokenStream>(),
                "duplicate option `crate`",
            )),
            (Err(error), _) | (_, Err(error)) => Err(error),
        };
    }
    let mut rest = TokenStream::new();
    for (index, segment) in kept.into_iter().enumerate() {
        if index > 0 {
            rest.extend(quote!(,));
        }
        rest.extend(segment);
    }
    (rest, krate)
}

fn split_top_level_commas(args: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut segments = vec![Vec::new()];
    for token in args {
        match &token {
            TokenTree::Punct(comma) if comma.as_char() == ',' => segments.push(Vec::new()),
            _ => segments.last_mut().expect("never empty").push(token),
        }
    }
    segments.retain(|segment| !segment.is_empty());
    segments
}

/// Replaces every absolute `::verily` path prefix in `tokens` with `path`.
fn retarget(tokens: TokenStream, path: &TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut output = Vec::with_capacity(tokens.len());
    let mut index = 0;
    while index < tokens.len() {
        if is_verily_root(&tokens, index) {
            output.extend(path.clone());
            index += 3;
            continue;
        }
        match &tokens[index] {
            TokenTree::Group(group) => {
                let mut retargeted = Group::new(group.delimiter(), retarget(group.stream(), path));
                retargeted.set_span(group.span());
                output.push(TokenTree::Group(retargeted));
            }
            other => output.push(other.clone()),
        }
        index += 1;
    }
    output.into_iter().collect()
}

/// Keywords after which `::verily` begins a path (rather than continuing one).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "type", "unsafe", "use", "where", "while",
];

/// `:: verily` at `index`, not preceded by a path segment (`a::verily`).
fn is_verily_root(tokens: &[TokenTree], index: usize) -> bool {
    let colons = matches!(&tokens[index], TokenTree::Punct(p) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
        && matches!(tokens.get(index + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':');
    let verily =
        matches!(tokens.get(index + 2), Some(TokenTree::Ident(ident)) if ident == "verily");
    let after_segment = index > 0
        && match &tokens[index - 1] {
            // `impl ::verily::X`, `as ::verily::X`: a keyword starts a path.
            TokenTree::Ident(ident) => !KEYWORDS.iter().any(|keyword| ident == keyword),
            // `<T as Trait>::verily` continues a path; `-> ::verily::X` starts one.
            TokenTree::Punct(p) => {
                p.as_char() == '>'
                    && !(index > 1
                        && matches!(&tokens[index - 2], TokenTree::Punct(dash) if dash.as_char() == '-' && dash.spacing() == Spacing::Joint))
            }
            TokenTree::Group(group) => group.delimiter() == Delimiter::None,
            TokenTree::Literal(_) => false,
        };
    colons && verily && !after_segment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_taken_out_and_paths_follow_it() {
        let (rest, krate) = split_crate_option(quote!(repository, crate = "vy", metrics));
        assert_eq!(rest.to_string(), quote!(repository, metrics).to_string());
        let path = krate.expect("valid").expect("given").to_token_stream();
        let output = retarget(
            quote!(impl ::verily::Fixture for T { fn f() -> ::verily::R { ::verily::__private::emit!{ a::verily::x } } }),
            &path,
        );
        assert_eq!(
            output.to_string(),
            quote!(impl vy::Fixture for T { fn f() -> vy::R { vy::__private::emit!{ a::verily::x } } })
                .to_string()
        );
    }

    #[test]
    fn a_bad_or_repeated_option_is_an_error() {
        assert!(split_crate_option(quote!(crate = vy)).1.is_err());
        assert!(split_crate_option(quote!(crate = "not a path")).1.is_err());
        assert!(
            split_crate_option(quote!(crate = "a", crate = "b"))
                .1
                .is_err()
        );
    }
}
