//! `#[verily::load(...)]`: the body is one iteration, run `concurrency` at
//! a time with fixtures built once and cloned into each iteration; the
//! runtime (`verily_runtime::load`) measures and judges.

mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ItemFn;

use crate::ctxt::{Ctxt, item_with_errors};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let attr = parse::LoadAttr::parse(&cx, args);
    let mut function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            cx.error_spanned_by(
                &item,
                "#[verily::load] goes on a function: its body is one iteration of the load",
            );
            return item_with_errors(item, cx.check().expect_err("an error was just recorded"));
        }
    };
    // Each would register a test of its own for the same body; dropped
    // from the item emitted beside the error, so it adds no errors of its own.
    function.attrs.retain(|attr| {
        let last = attr
            .path()
            .segments
            .last()
            .map(|segment| segment.ident.to_string());
        match last.filter(|name| STACKED.contains(&name.as_str())) {
            Some(other) => {
                cx.error_spanned_by(
                    attr,
                    format!(
                        "#[{other}] does not stack on #[verily::load]: the load test is one test; check what must hold after the load with `after = check` (an async fn taking the same fixtures)"
                    ),
                );
                false
            }
            None => true,
        }
    });
    let fixtures = crate::fixtures::Fixtures::from_signature(&cx, &function.sig, "verily::load");
    crate::test_attr::reject_generics(&cx, &function);
    match cx.check() {
        Ok(()) => expand::test(&attr, &function, &fixtures),
        Err(error) => item_with_errors(function.into_token_stream(), error),
    }
}

/// Attributes that generate a test of their own.
const STACKED: &[&str] = &["persists", "test", "load"];
