//! `#[enum_complete(EventType)]` on a function taking the enum: a `schema`
//! test calling it with every variant, and a compile error for a `match`
//! over the enum with a catch-all arm.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Arm, ExprMatch, FnArg, Ident, ItemFn, Pat, Path, ReturnType, Token, Type};

use crate::ctxt::Ctxt;
use crate::options::{Arg, TestOptions, unknown_option};
use crate::register::Registration;
use crate::symbol::{ALLOW_WILDCARD, IGNORE, RETRIES, TAGS, TIMEOUT};

const OPTIONS: &[&str] = &[TIMEOUT, IGNORE, TAGS, RETRIES];

/// `EventType` or `events::EventType`, then options.
struct HandlerArgs {
    enum_path: Path,
    options: Vec<Arg>,
}

impl Parse for HandlerArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let enum_path: Path = input.parse()?;
        let mut options = Vec::new();
        if input.parse::<Option<Token![,]>>()?.is_some() {
            options = Punctuated::<Arg, Token![,]>::parse_terminated(input)?
                .into_iter()
                .collect();
        }
        Ok(Self { enum_path, options })
    }
}

pub fn expand(cx: &Ctxt, args: TokenStream, mut function: ItemFn) -> Option<TokenStream> {
    if args.is_empty() {
        cx.error_spanned_by(
            &function.sig.ident,
            "on a function, #[enum_complete] names the enum it handles, as in #[enum_complete(EventType)]",
        );
        return None;
    }
    let args = match HandlerArgs::parse.parse2(args) {
        Ok(args) => args,
        Err(error) => {
            cx.syn_error(error);
            return None;
        }
    };
    let mut options = TestOptions::default();
    for arg in args.options {
        match arg {
            Arg::Value { key, value } => options.take(cx, &key, &value, OPTIONS),
            Arg::Path(path) | Arg::List { name: path, .. } => {
                cx.error_spanned_by(&path[0], unknown_option(&path[0].to_string(), OPTIONS))
            }
        }
    }
    let enum_ident = args
        .enum_path
        .segments
        .last()
        .map(|segment| segment.ident.clone())?;
    crate::test_attr::reject_generics(cx, &function);

    // Which parameter is the enum; the others are fixtures.
    let mut enum_position = None;
    let mut by_reference = false;
    let mut fixture_types = Vec::new();
    for (index, input) in function.sig.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = input else {
            cx.error_spanned_by(
                input,
                "#[enum_complete] handlers are free functions; it cannot supply `self`",
            );
            continue;
        };
        let (ty, reference) = match &*typed.ty {
            Type::Reference(reference) => (&*reference.elem, true),
            other => (other, false),
        };
        let names_enum = matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|last| last.ident == enum_ident));
        if names_enum && enum_position.is_none() {
            enum_position = Some(index);
            by_reference = reference;
        } else {
            fixture_types.push((index, (*typed.ty).clone()));
        }
    }
    let Some(enum_position) = enum_position else {
        cx.error_spanned_by(
            &function.sig,
            format!("#[enum_complete({enum_ident})] needs a parameter of type `{enum_ident}` or `&{enum_ident}` to call with every variant"),
        );
        return None;
    };

    let mut wildcards = Wildcards {
        cx,
        enum_ident: &enum_ident,
    };
    wildcards.visit_block_mut(&mut function.block);

    let ident = &function.sig.ident;
    let handler_name = ident.to_string();
    let fixture_args: Vec<Ident> = (0..fixture_types.len())
        .map(|index| format_ident!("__verily_arg{}", index))
        .collect();
    let setup = fixture_types
        .iter()
        .zip(&fixture_args)
        .map(|((_, ty), arg)| {
            quote_spanned! {ty.span()=>
                let #arg = __verily_ctx.fixture::<#ty>().await?;
            }
        });
    let mut call_args = Vec::new();
    let mut fixtures = fixture_args.iter();
    for index in 0..function.sig.inputs.len() {
        if index == enum_position {
            call_args.push(if by_reference {
                quote!(&__verily_variant)
            } else {
                quote!(__verily_variant)
            });
        } else if let Some(arg) = fixtures.next() {
            call_args.push(quote!(#arg));
        }
    }
    let call = if function.sig.asyncness.is_some() {
        quote!(#ident(#(#call_args),*).await)
    } else {
        quote!(#ident(#(#call_args),*))
    };
    let returns_result = matches!(&function.sig.output, ReturnType::Type(_, ty)
        if matches!(&**ty, Type::Path(path) if path.path.segments.last().is_some_and(|last| last.ident == "Result")));
    let outcome = if returns_result {
        quote!(#call.map(|_| ()).map_err(|error| ::std::format!("{error:?}")))
    } else {
        quote!({
            let _ = #call;
            ::core::result::Result::Ok(())
        })
    };
    let enum_path = &args.enum_path;
    // Spanned at the enum's name: an undeclared enum is reported there, once.
    let check = quote_spanned! {enum_path.span()=>
        ::verily::__private::enums::check_handler::<#enum_path, _, _>(#handler_name, |__verily_variant| {
            #(let #fixture_args = ::core::clone::Clone::clone(&#fixture_args);)*
            async move { #outcome }
        })
        .await
    };
    let body = quote! {
        #(#setup)*
        #check
    };
    let registration = Registration {
        ident,
        name: None,
        category: quote!("schema"),
        options: &options,
        body,
        extra: TokenStream::new(),
        own_runtime: true,
    }
    .expand();
    Some(quote! {
        #function
        ::verily::__private::emit! { #registration }
    })
}

/// Finds catch-all arms in matches over the enum, and removes the
/// `#[verily::allow_wildcard]` markers that excuse them.
struct Wildcards<'a> {
    cx: &'a Ctxt,
    enum_ident: &'a Ident,
}

impl VisitMut for Wildcards<'_> {
    fn visit_expr_match_mut(&mut self, node: &mut ExprMatch) {
        let over_enum = node
            .arms
            .iter()
            .any(|arm| names_enum(&arm.pat, self.enum_ident));
        for arm in &mut node.arms {
            let allowed = take_allow(arm);
            if over_enum && arm.guard.is_none() && is_catch_all(&arm.pat) && !allowed {
                self.cx.error_spanned_by(
                    &arm.pat,
                    format!(
                        "this catch-all arm hides variants of `{enum_ident}` added later: name every variant (the compiler then points at the next one), or mark a deliberate catch-all with #[verily::allow_wildcard]",
                        enum_ident = self.enum_ident
                    ),
                );
            }
        }
        syn::visit_mut::visit_expr_match_mut(self, node);
    }
}

fn take_allow(arm: &mut Arm) -> bool {
    let before = arm.attrs.len();
    arm.attrs.retain(|attr| {
        attr.path()
            .segments
            .last()
            .is_none_or(|last| last.ident != ALLOW_WILDCARD)
    });
    arm.attrs.len() != before
}

/// Whether a pattern names a variant of the enum (`EventType::X`).
fn names_enum(pat: &Pat, enum_ident: &Ident) -> bool {
    let in_path = |path: &Path| {
        path.segments
            .iter()
            .any(|segment| segment.ident == *enum_ident)
    };
    match pat {
        Pat::Path(path) => in_path(&path.path),
        Pat::TupleStruct(tuple) => in_path(&tuple.path),
        Pat::Struct(structure) => in_path(&structure.path),
        Pat::Or(or) => or.cases.iter().any(|case| names_enum(case, enum_ident)),
        Pat::Reference(reference) => names_enum(&reference.pat, enum_ident),
        Pat::Paren(paren) => names_enum(&paren.pat, enum_ident),
        Pat::Ident(binding) => binding
            .subpat
            .as_ref()
            .is_some_and(|(_, sub)| names_enum(sub, enum_ident)),
        _ => false,
    }
}

/// `_`, a binding such as `other`, or an or-pattern containing one.
fn is_catch_all(pat: &Pat) -> bool {
    match pat {
        Pat::Wild(_) => true,
        Pat::Ident(binding) => match &binding.subpat {
            Some((_, sub)) => is_catch_all(sub),
            // A lowercase name binds anything; an uppercase one is a constant or variant.
            None => binding
                .ident
                .to_string()
                .starts_with(|c: char| c.is_lowercase() || c == '_'),
        },
        Pat::Or(or) => or.cases.iter().any(is_catch_all),
        Pat::Paren(paren) => is_catch_all(&paren.pat),
        Pat::Reference(reference) => is_catch_all(&reference.pat),
        _ => false,
    }
}
