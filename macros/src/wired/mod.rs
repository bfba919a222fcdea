//! `#[wired]`: on a factory, a test that the returned service's
//! dependencies are there; on a struct, the declaration of its required
//! fields.

mod check;
mod expand;
mod parse;

pub(crate) use check::item_keyword;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Item;

use crate::ctxt::{Ctxt, item_with_errors};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let attr = parse::WiredAttr::parse(&cx, args);
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(error) => {
            cx.syn_error(error);
            return item_with_errors(item, cx.check().expect_err("an error was just recorded"));
        }
    };
    let expanded = match &parsed {
        Item::Fn(function) => {
            let factory = check::factory(&cx, &attr, function);
            factory.map(|factory| expand::factory(&attr, function, &factory))
        }
        Item::Struct(declaration) => {
            check::declaration(&cx, &attr, declaration);
            Some(expand::declaration(&attr, declaration))
        }
        other => {
            cx.error_spanned_by(
                check::item_keyword(other),
                format!(
                    "#[wired] goes on a factory function or a struct, not on {}",
                    check::item_kind(other)
                ),
            );
            None
        }
    };
    match cx.check() {
        Ok(()) => {
            let mut tokens = parsed.into_token_stream();
            tokens.extend(expanded);
            tokens
        }
        Err(error) => item_with_errors(item, error),
    }
}
