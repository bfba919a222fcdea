//! The test `#[persists]` generates: counts before the body, the body,
//! counts after it on a fresh connection, and the verdict.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use super::migrations::Schema;
use super::parse::PersistsAttr;
use crate::fixtures::Fixtures;
use crate::register::Registration;

pub fn test(
    attr: &PersistsAttr,
    function: &ItemFn,
    fixtures: &Fixtures,
    schema: &Schema,
) -> TokenStream {
    let ident = &function.sig.ident;
    let name = ident.to_string();
    let expectations = attr.tables.iter().map(|table| {
        let table_name = table.name();
        let rows = match table.rows {
            Some(rows) => quote!(::core::option::Option::Some(#rows)),
            None => quote!(::core::option::Option::None),
        };
        let predicate = match &table.predicate {
            Some(predicate) => quote!(::core::option::Option::Some(#predicate)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::verily::__private::persist::Expectation {
                table: #table_name,
                rows: #rows,
                predicate: #predicate,
            }
        }
    });
    let setup = fixtures.setup();
    let call = fixtures.call(&function.sig);
    let body = quote! {
        let __verily_db = __verily_ctx.fixture::<::verily::__private::Db>().await?;
        #setup
        const __VERILY_EXPECTED: &[::verily::__private::persist::Expectation] = &[#(#expectations),*];
        let __verily_before =
            ::verily::__private::persist::count(&__verily_db, __VERILY_EXPECTED).await?;
        ::verily::__private::IntoTestResult::into_test_result(#call)?;
        ::verily::__private::persist::verify(#name, &__verily_db, __VERILY_EXPECTED, __verily_before).await
    };
    // Rebuild when a migration changes: the table check depends on it.
    let tracked = schema.files.iter().map(|file| {
        let path = file.display().to_string();
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    });
    let registration = Registration {
        ident,
        name: None,
        category: fixtures.category(attr.options.category.as_deref(), "persistence"),
        options: &attr.options,
        body,
        extra: quote!(#(#tracked)*),
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
