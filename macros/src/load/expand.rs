//! The test `#[verily::load]` generates: fixtures built once, the body run
//! as iterations on clones of them, the closing check, the verdict.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use super::parse::LoadAttr;
use crate::fixtures::Fixtures;
use crate::register::Registration;

fn option<T: quote::ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

pub fn test(attr: &LoadAttr, function: &ItemFn, fixtures: &Fixtures) -> TokenStream {
    let ident = &function.sig.ident;
    let setup = fixtures.setup();
    let call = fixtures.call(&function.sig);
    let args: Vec<_> = (0..fixtures.len())
        .map(|index| format_ident!("__verily_arg{}", index))
        .collect();
    // Spanned at each parameter's type: a fixture that cannot be shared is
    // reported there.
    let shared = fixtures.types().iter().zip(&args).map(|(ty, arg)| {
        quote_spanned! {ty.span()=>
            let #arg = ::verily::__private::load::shared(&#arg);
        }
    });
    let concurrency = attr.concurrency.map_or(
        quote!(::verily::__private::load::Plan::DEFAULT_CONCURRENCY),
        |n| {
            let n = n as usize;
            quote!(#n)
        },
    );
    let iterations = option(attr.iterations);
    let duration = option(
        attr.duration_millis
            .map(|millis| quote!(::verily::__private::Duration::from_millis(#millis))),
    );
    let warmup = attr.warmup.unwrap_or(0);
    let max_connections = option(attr.max_connections);
    let max_error_rate = attr.max_error_rate.unwrap_or(0.0);
    let max_memory_growth = option(attr.max_memory_growth);
    let p99 = option(
        attr.p99_micros
            .map(|micros| quote!(::verily::__private::Duration::from_micros(#micros))),
    );
    let after = match &attr.after {
        Some(check) => quote! {
            __verily_load
                .after(async move {
                    ::verily::__private::IntoTestResult::into_test_result(#check(#(#args),*).await)
                })
                .await
        },
        None => quote!(::core::result::Result::Ok(())),
    };
    let body = quote! {
        #setup
        let mut __verily_load = ::verily::__private::load::Load::start(
            __verily_ctx.opened_database(),
            ::verily::__private::load::Plan {
                concurrency: #concurrency,
                iterations: #iterations,
                duration: #duration,
                warmup: #warmup,
                max_connections: #max_connections,
                max_error_rate: #max_error_rate,
                max_memory_growth: #max_memory_growth,
                p99: #p99,
            },
        )
        .await?;
        let __verily_iteration = {
            #(#shared)*
            move || {
                #(let #args = ::core::clone::Clone::clone(&#args);)*
                async move {
                    ::verily::__private::load::IntoIterationResult::into_iteration_result(#call)
                }
            }
        };
        __verily_load.run(__verily_iteration).await;
        let __verily_after = #after;
        __verily_load.finish(__verily_ctx, __verily_after).await
    };
    let registration = Registration {
        ident,
        name: None,
        category: quote!("load"),
        options: &attr.options,
        body,
        extra: TokenStream::new(),
        own_runtime: true,
    }
    .expand();
    quote! {
        ::verily::__private::emit! {
            #function
            #registration
        }
    }
}
