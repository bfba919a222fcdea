//! `#[verily::test]`, for any test that is not one of the checks, and
//! `#[verily::fixture]`, which keeps fixture impls out of production.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Attribute, GenericParam, ItemFn, Meta};

use crate::ctxt::{Ctxt, item_with_errors};
use crate::fixtures::Fixtures;
use crate::options::{Arg, TestOptions, parse_args_or_record, unknown_option};
use crate::register::Registration;
use crate::symbol::{CATEGORY, IGNORE, RETRIES, TAGS, TIMEOUT};

const OPTIONS: &[&str] = &[CATEGORY, TIMEOUT, IGNORE, TAGS, RETRIES];

/// Category of a `#[verily::test]` that names none.
const DEFAULT_CATEGORY: &str = "integration";

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let mut options = TestOptions::default();
    for arg in parse_args_or_record(&cx, args) {
        match arg {
            Arg::Value { key, value } => options.take(&cx, &key, &value, OPTIONS),
            Arg::Path(path) if path.len() == 1 && path[0] == IGNORE => {
                options.take_ignore_flag(&cx, &path[0]);
            }
            Arg::Path(path) => {
                cx.error_spanned_by(&path[0], unknown_option(&path[0].to_string(), OPTIONS))
            }
            Arg::List { name, .. } => {
                cx.error_spanned_by(&name[0], unknown_option(&name[0].to_string(), OPTIONS))
            }
        }
    }
    let mut function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            cx.error_spanned_by(&item, "#[verily::test] goes on a function");
            return item_with_errors(item, cx.check().expect_err("an error was just recorded"));
        }
    };
    take_ignore_attributes(&cx, &mut function.attrs, &mut options);
    for param in &function.sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            cx.error_spanned_by(
                param,
                "a test cannot be generic: the harness cannot choose its types",
            );
        }
    }
    let fixtures = Fixtures::from_signature(&cx, &function.sig, "verily::test");
    if let Err(error) = cx.check() {
        return item_with_errors(item, error);
    }
    let ident = &function.sig.ident;
    let setup = fixtures.setup();
    let call = fixtures.call(&function.sig);
    let category = fixtures.category(options.category.as_deref(), DEFAULT_CATEGORY);
    let registration = Registration {
        ident,
        name: None,
        category,
        options: &options,
        body: quote! {
            #setup
            ::verily::__private::IntoTestResult::into_test_result(#call)
        },
        extra: TokenStream::new(),
        own_runtime: function.sig.asyncness.is_some() || fixtures.len() > 0,
    }
    .expand();
    quote! {
        ::verily::__private::emit! {
            #function
            #registration
        }
    }
}

/// A test's types must be known: the harness cannot choose them.
pub fn reject_generics(cx: &Ctxt, function: &ItemFn) {
    for param in &function.sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            cx.error_spanned_by(
                param,
                "a test cannot be generic: the harness cannot choose its types",
            );
        }
    }
}

/// libtest's `#[ignore]` and `#[ignore = "why"]` on the function mean what
/// they mean there.
fn take_ignore_attributes(cx: &Ctxt, attrs: &mut Vec<Attribute>, options: &mut TestOptions) {
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if !attr.path().is_ident(IGNORE) {
            kept.push(attr);
            continue;
        }
        let ident = attr
            .path()
            .get_ident()
            .expect("checked by is_ident")
            .clone();
        match &attr.meta {
            Meta::Path(_) => options.take_ignore_flag(cx, &ident),
            Meta::NameValue(name_value) => {
                options.take(cx, &ident, &name_value.value, OPTIONS);
            }
            Meta::List(list) => {
                cx.error_spanned_by(list, "write #[ignore] or #[ignore = \"reason\"]")
            }
        }
    }
    *attrs = kept;
}

pub fn expand_fixture(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let error = syn::Error::new_spanned(&args, "#[verily::fixture] takes no arguments");
        return item_with_errors(item, error);
    }
    let item = item.into_token_stream();
    quote! {
        ::verily::__private::emit! { #item }
    }
}
