//! A test's (or factory's) parameters, built as fixtures by type.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Signature, Type};

use crate::ctxt::Ctxt;

/// The parameters of a function, resolved as fixtures.
pub struct Fixtures {
    types: Vec<Type>,
}

impl Fixtures {
    /// Reads the parameters, recording an error for each one that cannot be
    /// a fixture (`self`, references, `impl Trait`).
    pub fn from_signature(cx: &Ctxt, signature: &Signature, what: &str) -> Self {
        let mut types = Vec::new();
        for input in &signature.inputs {
            match input {
                FnArg::Receiver(receiver) => cx.error_spanned_by(
                    receiver,
                    format!(
                        "#[{what}] cannot call a method that takes `self`; put it on a free function (a factory outside the `impl` block)"
                    ),
                ),
                FnArg::Typed(typed) => match &*typed.ty {
                    Type::Reference(reference) => cx.error_spanned_by(
                        reference,
                        "fixtures are passed by value: take the type itself (a `PgPool` is cheap to clone)",
                    ),
                    Type::ImplTrait(bound) => cx.error_spanned_by(
                        bound,
                        format!("#[{what}] cannot build an `impl Trait` parameter: name the concrete fixture type"),
                    ),
                    ty => types.push(ty.clone()),
                },
            }
        }
        Self { types }
    }

    /// Statements that build each fixture into `__verily_arg{i}`.
    pub fn setup(&self) -> TokenStream {
        let statements = self.types.iter().enumerate().map(|(index, ty)| {
            let arg = Self::arg(index);
            quote_spanned! {ty.span()=>
                let #arg = __verily_ctx.fixture::<#ty>().await?;
            }
        });
        quote! { #(#statements)* }
    }

    /// The arguments, in order, for the call.
    pub fn args(&self) -> TokenStream {
        let args = (0..self.types.len()).map(Self::arg);
        quote! { #(#args),* }
    }

    /// `function(args)`, awaited when the function is async.
    pub fn call(&self, signature: &Signature) -> TokenStream {
        let ident = &signature.ident;
        let args = self.args();
        if signature.asyncness.is_some() {
            quote!(#ident(#args).await)
        } else {
            quote!(#ident(#args))
        }
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// The parameters' types, in order.
    pub fn types(&self) -> &[Type] {
        &self.types
    }

    /// A const expression of the test's category: `named` when the
    /// attribute says one, else the first its fixtures declare, else `default`.
    pub fn category(&self, named: Option<&str>, default: &str) -> TokenStream {
        if let Some(named) = named {
            return quote!(#named);
        }
        let types = &self.types;
        quote! {
            ::verily::__private::category_of(
                &[#(<#types as ::verily::__private::Fixture>::CATEGORY),*],
                #default,
            )
        }
    }

    fn arg(index: usize) -> Ident {
        format_ident!("__verily_arg{}", index)
    }
}
