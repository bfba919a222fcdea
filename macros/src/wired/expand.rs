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
                (&&&::groundtruth::__private::Probe(__groundtruth_target))
                    .groundtruth_nested(__groundtruth_report, __groundtruth_path);
            }
        } else {
            checks(
                &node.children,
                &quote!(__groundtruth_target),
                &quote!(__groundtruth_path),
            )
        };
        quote! {
            __groundtruth_report.field(
                #prefix,
                #name,
                #access,
                |__groundtruth_report, __groundtruth_path, __groundtruth_target| { #inner },
            );
        }
    });
    quote! {
        #[allow(unused_imports)]
        use ::groundtruth::__private::{NestedDeref as _, NestedDerefTwice as _, NestedDirect as _, NestedNone as _};
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
            let __groundtruth_output = ::groundtruth::__private::factory_ok(#display, __groundtruth_output)?;
        }
    });
    let field_checks = if attr.fields.is_empty() {
        // The returned type must declare its fields; if it does not, the
        // trait's message says how to fix it, on the return type.
        quote_spanned! {service.span()=>
            ::groundtruth::__private::DeclaredWiring::check_declared(__groundtruth_value, __groundtruth_report, "");
        }
    } else {
        checks(&tree(attr), &quote!(__groundtruth_value), &quote!(""))
    };
    let body = quote! {
        #setup
        let __groundtruth_output = #call;
        #unwrap_result
        let __groundtruth_value: &#service = ::core::borrow::Borrow::borrow(&__groundtruth_output);
        let mut __groundtruth_report_value = ::groundtruth::__private::WiringReport::new();
        let __groundtruth_report = &mut __groundtruth_report_value;
        #field_checks
        __groundtruth_report_value
            .verdict(#display, #type_name)
            .map_err(::groundtruth::__private::Failure::new)
    };
    let registration = Registration {
        ident,
        name: None,
        category: "wiring",
        options: &attr.options,
        needs: factory.fixtures.needs(),
        body,
        extra: TokenStream::new(),
    }
    .expand();
    quote! {
        ::groundtruth::__private::emit! { #registration }
    }
}

pub fn declaration(attr: &WiredAttr, declaration: &ItemStruct) -> TokenStream {
    let ident = &declaration.ident;
    let (impl_generics, type_generics, where_clause) = declaration.generics.split_for_impl();
    let checks = checks(&tree(attr), &quote!(self), &quote!(__groundtruth_prefix));
    quote! {
        ::groundtruth::__private::emit! {
            #[automatically_derived]
            impl #impl_generics ::groundtruth::__private::DeclaredWiring for #ident #type_generics #where_clause {
                fn check_declared(
                    &self,
                    __groundtruth_report: &mut ::groundtruth::__private::WiringReport,
                    __groundtruth_prefix: &str,
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
