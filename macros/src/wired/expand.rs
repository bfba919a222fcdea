//! The code `#[wired]` generates: a test per factory, a `DeclaredWiring`
//! impl per declared struct.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, ItemStruct, Type};

use super::check::Factory;
use super::parse::WiredAttr;
use crate::register::Registration;

/// Fields sharing a prefix are checked once: `detector` and
/// `detector.operations_service` become one node with one child.
struct Node<'a> {
    name: &'a Ident,
    children: Vec<Node<'a>>,
}

fn tree(attr: &WiredAttr) -> Vec<Node<'_>> {
    let mut roots: Vec<Node> = Vec::new();
    for path in &attr.fields {
        let mut level = &mut roots;
        for segment in &path.segments {
            let index = match level
                .iter()
                .position(|node| node.name.unraw() == segment.unraw())
            {
                Some(index) => index,
                None => {
                    level.push(Node {
                        name: segment,
                        children: Vec::new(),
                    });
                    level.len() - 1
                }
            };
            level = &mut level[index].children;
        }
    }
    roots
}

/// Checks of `nodes` on the value `base`, recorded under `prefix`. A leaf
/// descends into its dependency when that type declares wiring of its own.
fn checks(nodes: &[Node], base: &TokenStream, prefix: &TokenStream) -> TokenStream {
    let checks = nodes.iter().map(|node| {
        let ident = node.name;
        let name = ident.unraw().to_string();
        // The user's span: a misspelt or unsupported field is reported on
        // the name they wrote.
        let access = quote_spanned!(ident.span()=> &(#base).#ident);
        let inner = if node.children.is_empty() {
            quote! {
                (&&&::verily::__private::Probe(__verily_target))
                    .verily_nested(__verily_report, __verily_path);
            }
        } else {
            checks(
                &node.children,
                &quote!(__verily_target),
                &quote!(__verily_path),
            )
        };
        quote! {
            __verily_report.field(
                #prefix,
                #name,
                #access,
                |__verily_report, __verily_path, __verily_target| { #inner },
            );
        }
    });
    quote! {
        #[allow(unused_imports)]
        use ::verily::__private::{NestedDeref as _, NestedDerefTwice as _, NestedDirect as _, NestedNone as _};
        #(#checks)*
    }
}

pub fn factory(attr: &WiredAttr, function: &ItemFn, factory: &Factory) -> TokenStream {
    let ident = &function.sig.ident;
    let display = format!("{}()", ident.unraw());
    let service = &factory.service;
    let type_name = type_name(service);
    let setup = factory.fixtures.setup();
    let call = factory.fixtures.call(&function.sig);
    let unwrap_result = factory.returns_result.then(|| {
        quote! {
            let __verily_output = ::verily::__private::factory_ok(#display, __verily_output)?;
        }
    });
    let field_checks = if attr.fields.is_empty() {
        // The returned type must declare its fields; if it does not, the
        // trait's message says how to fix it, on the return type.
        quote_spanned! {service.span()=>
            ::verily::__private::DeclaredWiring::check_declared(__verily_value, __verily_report, "");
        }
    } else {
        checks(&tree(attr), &quote!(__verily_value), &quote!(""))
    };
    let body = quote! {
        #setup
        let __verily_output = #call;
        #unwrap_result
        let __verily_value: &#service = ::core::borrow::Borrow::borrow(&__verily_output);
        let mut __verily_report_value = ::verily::__private::WiringReport::new();
        let __verily_report = &mut __verily_report_value;
        #field_checks
        __verily_report_value
            .verdict(#display, #type_name)
            .map_err(::verily::__private::Failure::new)
    };
    let registration = Registration {
        ident,
        name: None,
        category: quote!("wiring"),
        options: &attr.options,
        body,
        extra: TokenStream::new(),
        own_runtime: function.sig.asyncness.is_some() || factory.fixtures.len() > 0,
    }
    .expand();
    quote! {
        ::verily::__private::emit! { #registration }
    }
}

pub fn declaration(attr: &WiredAttr, declaration: &ItemStruct) -> TokenStream {
    let ident = &declaration.ident;
    let (impl_generics, type_generics, where_clause) = declaration.generics.split_for_impl();
    let checks = checks(&tree(attr), &quote!(self), &quote!(__verily_prefix));
    quote! {
        ::verily::__private::emit! {
            #[automatically_derived]
            #[allow(unused_qualifications, clippy::all)]
            impl #impl_generics ::verily::__private::DeclaredWiring for #ident #type_generics #where_clause {
                fn check_declared(
                    &self,
                    __verily_report: &mut ::verily::__private::WiringReport,
                    __verily_prefix: &str,
                ) {
                    #checks
                }
            }
        }
    }
}

/// `OperationsService`, `ops::Service<Repo>`: the type as written, without
/// the spaces token printing adds.
fn type_name(ty: &Type) -> String {
    quote!(#ty).to_string().replace(' ', "").replace(',', ", ")
}
