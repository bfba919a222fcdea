//! What `#[wired]` rejects before generating anything: callable factories
//! only, and declared fields that exist.

use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{
    Fields, GenericArgument, GenericParam, Item, ItemFn, ItemStruct, PathArguments, ReturnType,
    Type,
};

use super::parse::WiredAttr;
use crate::ctxt::Ctxt;
use crate::fixtures::Fixtures;
use verily_runtime::similar::did_you_mean;

/// A factory `#[wired]` can call, and what it returns.
pub struct Factory {
    pub fixtures: Fixtures,
    /// Whether it returns `Result<_, _>`, whose `Err` fails the test.
    pub returns_result: bool,
    /// The service whose fields are checked (inside `Result`, `Arc`, `Box`, `Rc`, `&`).
    pub service: Type,
}

pub fn factory(cx: &Ctxt, _attr: &WiredAttr, function: &ItemFn) -> Option<Factory> {
    let signature = &function.sig;
    for param in &signature.generics.params {
        match param {
            GenericParam::Type(param) => cx.error_spanned_by(
                param,
                format!(
                    "#[wired] cannot call a generic factory: it cannot choose a type for `{}`; put #[wired] on a non-generic factory that picks one",
                    param.ident
                ),
            ),
            GenericParam::Const(param) => cx.error_spanned_by(
                param,
                format!(
                    "#[wired] cannot call a generic factory: it cannot choose a value for `{}`; put #[wired] on a non-generic factory that picks one",
                    param.ident
                ),
            ),
            GenericParam::Lifetime(_) => {}
        }
    }
    if let Some(unsafety) = &signature.unsafety {
        cx.error_spanned_by(
            unsafety,
            "#[wired] does not call `unsafe` factories; wrap it in a safe one",
        );
    }
    let fixtures = Fixtures::from_signature(cx, signature, "wired");
    let output = match &signature.output {
        ReturnType::Default => {
            cx.error_spanned_by(
                &signature.ident,
                "a #[wired] factory must return the service it builds, as in `-> OperationsService`",
            );
            return None;
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    if let Type::ImplTrait(bound) = output {
        cx.error_spanned_by(
            bound,
            "#[wired] cannot see the fields of an `impl Trait`; return the concrete service type",
        );
        return None;
    }
    if is_self(output) {
        cx.error_spanned_by(
            output,
            "#[wired] cannot go on an associated function (it returns `Self`); put it on a free factory function",
        );
        return None;
    }
    let (returns_result, inner) = match single_argument(output, &["Result"]) {
        Some(inner) => (true, inner),
        None => (false, output),
    };
    let service = match inner {
        Type::Reference(reference) => (*reference.elem).clone(),
        other => single_argument(other, &["Arc", "Box", "Rc"])
            .unwrap_or(other)
            .clone(),
    };
    Some(Factory {
        fixtures,
        returns_result,
        service,
    })
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// The first type argument of `ty` if its last path segment is one of `names`.
fn single_argument<'a>(ty: &'a Type, names: &[&str]) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if !names.iter().any(|name| last.ident == name) {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    arguments.args.iter().find_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// A struct declaration names at least one field, and only fields it has.
pub fn declaration(cx: &Ctxt, attr: &WiredAttr, declaration: &ItemStruct) {
    let Fields::Named(fields) = &declaration.fields else {
        cx.error_spanned_by(
            &declaration.ident,
            "#[wired] on a struct needs named fields to declare, as in `struct Service { repository: Option<Repo> }`",
        );
        return;
    };
    if attr.fields.is_empty() {
        cx.error_spanned_by(
            &declaration.ident,
            format!(
                "#[wired] on a struct declares its required fields: name them, as in #[wired({})]",
                fields
                    .named
                    .iter()
                    .filter_map(|field| field.ident.as_ref().map(|ident| ident.unraw().to_string()))
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    for option in attr.options.given() {
        cx.error_spanned_by(
            option,
            format!("`{option}` applies to the test of a factory; on a struct, #[wired] only names fields"),
        );
    }
    let names: Vec<String> = fields
        .named
        .iter()
        .filter_map(|field| field.ident.as_ref().map(|ident| ident.unraw().to_string()))
        .collect();
    for path in &attr.fields {
        let first = &path.segments[0];
        let name = first.unraw().to_string();
        if names.contains(&name) {
            continue;
        }
        let mut message = format!("no field `{name}` on `{}`", declaration.ident);
        match did_you_mean(&name, names.iter().map(String::as_str)) {
            Some(near) => message.push_str(&format!("; did you mean `{near}`?")),
            None => message.push_str(&format!("; its fields are: {}", names.join(", "))),
        }
        cx.error_spanned_by(first, message);
    }
}

/// The token to point at when `#[wired]` is on the wrong kind of item.
pub fn item_keyword(item: &Item) -> proc_macro2::TokenStream {
    match item {
        Item::Enum(item) => item.enum_token.into_token_stream(),
        Item::Const(item) => item.const_token.into_token_stream(),
        Item::Static(item) => item.static_token.into_token_stream(),
        Item::Trait(item) => item.trait_token.into_token_stream(),
        Item::Impl(item) => item.impl_token.into_token_stream(),
        Item::Mod(item) => item.mod_token.into_token_stream(),
        Item::Type(item) => item.type_token.into_token_stream(),
        Item::Union(item) => item.union_token.into_token_stream(),
        Item::Use(item) => item.use_token.into_token_stream(),
        other => quote!(#other)
            .into_iter()
            .next()
            .map(Into::into)
            .unwrap_or_else(|| quote!(#other)),
    }
}

/// "an enum", "a trait", ... for the message.
pub fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::Enum(_) => "an enum",
        Item::Const(_) => "a const",
        Item::Static(_) => "a static",
        Item::Trait(_) => "a trait",
        Item::Impl(_) => "an impl block (put it on a free factory function)",
        Item::Mod(_) => "a module",
        Item::Type(_) => "a type alias",
        Item::Union(_) => "a union",
        Item::Use(_) => "a use declaration",
        _ => "this item",
    }
}
