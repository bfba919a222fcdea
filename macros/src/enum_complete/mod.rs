//! `#[enum_complete]`: on an enum, its declaration and the checks its
//! options ask for; on a function taking the enum, a test that calls it with
//! every variant, and a compile error for a wildcard arm that would hide the
//! next variant.

mod declaration;
mod handler;

use proc_macro2::TokenStream;
use syn::Item;

use crate::ctxt::{Ctxt, item_with_errors};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(error) => {
            cx.syn_error(error);
            return item_with_errors(item, cx.check().expect_err("an error was just recorded"));
        }
    };
    let expanded = match parsed {
        Item::Enum(declared) => declaration::expand(&cx, args, declared),
        Item::Fn(function) => handler::expand(&cx, args, function),
        other => {
            cx.error_spanned_by(
                crate::wired::item_keyword(&other),
                "#[enum_complete] goes on an enum (to declare it) or on a function taking the enum (a handler)",
            );
            None
        }
    };
    match (cx.check(), expanded) {
        (Ok(()), Some(tokens)) => tokens,
        // What is valid is still emitted (the declaration of the variants
        // that are fine), so one mistake does not cascade into "not declared".
        (Err(error), Some(tokens)) => {
            let errors = error.into_compile_error();
            quote::quote! { #tokens #errors }
        }
        (Err(error), None) => item_with_errors(item, error),
        (Ok(()), None) => item,
    }
}
