//! `#[persists(table, ...)]`: a test that the body's writes really reached
//! the database, counted on separate connections before and after.

mod expand;
mod migrations;
mod parse;

use proc_macro2::TokenStream;
use syn::ItemFn;

use crate::ctxt::{Ctxt, item_with_errors};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let attr = parse::PersistsAttr::parse(&cx, args);
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            cx.error_spanned_by(&item, "#[persists] goes on a test function: the body does the write, the attribute checks it");
            return item_with_errors(item, cx.check().expect_err("an error was just recorded"));
        }
    };
    let schema = parse::check_tables(&cx, &attr);
    let fixtures = crate::fixtures::Fixtures::from_signature(&cx, &function.sig, "persists");
    crate::test_attr::reject_generics(&cx, &function);
    match cx.check() {
        Ok(()) => expand::test(&attr, &function, &fixtures, &schema),
        Err(error) => item_with_errors(item, error),
    }
}
