//! The registration every generated test shares: a run function and a
//! static `TestDescriptor` submitted to the registry.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Ident;

use crate::options::TestOptions;

/// What a generated test is, apart from its body.
pub struct Registration<'a> {
    /// The annotated item; its name (unless `name` says otherwise) and span
    /// become the test's.
    pub ident: &'a Ident,
    /// The last part of the test's name, when it is not the item's.
    pub name: Option<String>,
    /// Const expression of type `&'static str`.
    pub category: TokenStream,
    pub options: &'a TestOptions,
    /// Statements of the async body, with `__verily_ctx` in scope,
    /// ending in an expression of type `TestResult`.
    pub body: TokenStream,
    /// Items placed beside the registration (files to track, say).
    pub extra: TokenStream,
    /// Whether it runs on a runtime of its own (an async body or
    /// fixtures: it may spawn tasks, which end with it); a sync body with no
    /// fixtures runs on the run's runtime, at a fraction of the cost.
    pub own_runtime: bool,
}

impl Registration<'_> {
    /// `const _: () = { fn run ...; register!{...} };`
    pub fn expand(&self) -> TokenStream {
        let ident = self.ident;
        let name = self.name.clone().unwrap_or_else(|| ident.to_string());
        let category = &self.category;
        let ignored = self.options.ignore.is_some();
        let ignore_reason = match self.options.ignore.as_ref().and_then(Option::as_ref) {
            Some(reason) => quote!(::core::option::Option::Some(#reason)),
            None => quote!(::core::option::Option::None),
        };
        let timeout = match self.options.timeout_millis {
            Some(millis) => {
                quote!(::core::option::Option::Some(::verily::__private::Duration::from_millis(#millis)))
            }
            None => quote!(::core::option::Option::None),
        };
        let tags = &self.options.tags;
        let retries = match self.options.retries {
            Some(retries) => quote!(::core::option::Option::Some(#retries)),
            None => quote!(::core::option::Option::None),
        };
        let body = &self.body;
        let extra = &self.extra;
        let own_runtime = self.own_runtime;
        // Spanned at the function's name, so file!() and line!() point at it.
        let file = quote_spanned!(ident.span()=> ::core::file!());
        let line = quote_spanned!(ident.span()=> ::core::line!());
        quote! {
            // Generated code: lints a user's `#![deny(...)]` turns on must
            // not fail the build over paths written in full on purpose.
            #[allow(unused_qualifications, non_snake_case, unreachable_pub, missing_docs, clippy::all)]
            const _: () = {
                #extra

                fn __verily_run(
                    __verily_ctx: &mut ::verily::__private::TestContext,
                ) -> ::verily::__private::TestFuture<'_> {
                    ::std::boxed::Box::pin(async move {
                        #body
                    })
                }

                ::verily::__private::register! {
                    ::verily::__private::TestDescriptor {
                        name: ::core::concat!(::core::module_path!(), "::", #name),
                        category: #category,
                        file: #file,
                        line: #line,
                        ignored: #ignored,
                        ignore_reason: #ignore_reason,
                        timeout: #timeout,
                        tags: &[#(#tags),*],
                        retries: #retries,
                        own_runtime: #own_runtime,
                        run: __verily_run,
                    }
                }
            };
        }
    }
}
