//! `#[enum_complete(...)]` on an enum: the `DeclaredEnum` impl (one value
//! per variant, data variants from their `sample`) and a `schema` test per
//! option.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::{Attribute, Expr, Fields, ItemEnum, LitStr, Meta};

use crate::ctxt::Ctxt;
use crate::options::{Arg, TestOptions, parse_args_or_record, string_literal, unknown_option};
use crate::register::Registration;
use crate::symbol::{
    ENUM_COMPLETE, IGNORE, PG_TYPE, RETRIES, SAMPLE, SCAN, SCAN_KEY, SERDE, STRINGS, TAGS, TIMEOUT,
};

const OPTIONS: &[&str] = &[
    SERDE, STRINGS, PG_TYPE, SCAN, SCAN_KEY, TIMEOUT, IGNORE, TAGS, RETRIES,
];

#[derive(Default)]
struct Checks {
    serde: bool,
    strings: bool,
    pg_type: Option<LitStr>,
    scan: Option<LitStr>,
    scan_keys: Vec<LitStr>,
    options: TestOptions,
}

fn parse(cx: &Ctxt, args: TokenStream) -> Checks {
    let mut checks = Checks::default();
    let args = parse_args_or_record(cx, args);
    for arg in args {
        match arg {
            Arg::Path(path) if path.len() == 1 && (path[0] == SERDE || path[0] == STRINGS) => {
                let flag = if path[0] == SERDE {
                    &mut checks.serde
                } else {
                    &mut checks.strings
                };
                if *flag {
                    cx.error_spanned_by(&path[0], format!("duplicate option `{}`", path[0]));
                }
                *flag = true;
            }
            Arg::Value { key, value } if key == PG_TYPE || key == SCAN || key == SCAN_KEY => {
                let Some(text) = string_literal(cx, &key.to_string(), &value) else {
                    continue;
                };
                if key == SCAN_KEY {
                    checks.scan_keys.push(text);
                    continue;
                }
                let slot = if key == PG_TYPE {
                    &mut checks.pg_type
                } else {
                    &mut checks.scan
                };
                if slot.is_some() {
                    cx.error_spanned_by(&key, format!("duplicate option `{key}`"));
                }
                *slot = Some(text);
            }
            Arg::Value { key, value } => checks.options.take(cx, &key, &value, OPTIONS),
            Arg::Path(path) | Arg::List { name: path, .. } => {
                let name = path[0].unraw().to_string();
                cx.error_spanned_by(&path[0], unknown_option(&name, OPTIONS));
            }
        }
    }
    if let Some(pg_type) = &checks.pg_type
        && !is_type_name(&pg_type.value())
    {
        cx.error_spanned_by(
            pg_type,
            "`pg_type` names a PostgreSQL enum type: lowercase letters, digits and `_`, optionally `schema.type`",
        );
    }
    if let Some(scan) = &checks.scan
        && !checks.serde
        && !checks.strings
    {
        cx.error_spanned_by(
            scan,
            "`scan` compares the files' labels with the enum's string forms: add `serde` (labels as JSON strings) or `strings` (labels from Display)",
        );
    }
    if !checks.scan_keys.is_empty() && checks.scan.is_none() {
        cx.error_spanned_by(
            &checks.scan_keys[0],
            "`scan_key` applies to `scan`, which is not set",
        );
    }
    checks
}

fn is_type_name(name: &str) -> bool {
    let part = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|name| part(name))
}

/// `#[enum_complete(sample = ...)]` on a variant: its value, and the
/// attribute removed.
fn take_sample(cx: &Ctxt, attrs: &mut Vec<Attribute>) -> Option<Expr> {
    let mut sample = None;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        let ours = attr.path().is_ident(ENUM_COMPLETE)
            || attr
                .path()
                .segments
                .last()
                .is_some_and(|last| last.ident == ENUM_COMPLETE);
        if !ours {
            kept.push(attr);
            continue;
        }
        let Meta::List(list) = &attr.meta else {
            cx.error_spanned_by(
                &attr,
                "on a variant, write #[enum_complete(sample = <value of the variant>)]",
            );
            continue;
        };
        for arg in parse_args_or_record(cx, list.tokens.clone()) {
            match arg {
                Arg::Value { key, value } if key == SAMPLE => sample = Some(value),
                Arg::Value { key, .. } => {
                    cx.error_spanned_by(&key, unknown_option(&key.to_string(), &[SAMPLE]))
                }
                Arg::Path(path) | Arg::List { name: path, .. } => {
                    cx.error_spanned_by(&path[0], unknown_option(&path[0].to_string(), &[SAMPLE]))
                }
            }
        }
    }
    *attrs = kept;
    sample
}

pub fn expand(cx: &Ctxt, args: TokenStream, mut item: ItemEnum) -> Option<TokenStream> {
    let checks = parse(cx, args);
    let ident = item.ident.clone();
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "#[enum_complete] cannot declare a generic enum: it could not build its variants without knowing the types",
        );
    }
    let mut values = Vec::new();
    for variant in &mut item.variants {
        let sample = take_sample(cx, &mut variant.attrs);
        let name = variant.ident.to_string();
        let variant_ident = &variant.ident;
        let value = match (&variant.fields, sample) {
            (Fields::Unit, None) => quote!(#ident::#variant_ident),
            (Fields::Unit, Some(sample)) => {
                cx.error_spanned_by(
                    sample,
                    format!("`{name}` carries no data: it needs no sample"),
                );
                continue;
            }
            (_, Some(sample)) => quote!(#sample),
            (fields, None) => {
                let example = match fields {
                    Fields::Named(_) => format!("{ident}::{name} {{ .. }}"),
                    _ => format!("{ident}::{name}(..)"),
                };
                cx.error_spanned_by(
                    &variant.ident,
                    format!(
                        "variant `{name}` carries data, so verily cannot build it: give a sample value, as in #[enum_complete(sample = {example})]"
                    ),
                );
                continue;
            }
        };
        // A variant behind #[cfg] exists only where its cfg holds; so does its entry.
        let cfgs: Vec<&Attribute> = variant
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"))
            .collect();
        values.push(quote!(#(#cfgs)* __verily_variants.push((#name, #value));));
    }
    let enum_name = ident.to_string();
    let mut tests = Vec::new();
    let mut register = |check: &str, own_runtime: bool, body: TokenStream| {
        let registration = Registration {
            ident: &ident,
            name: Some(format!("{enum_name}::{check}")),
            category: quote!("schema"),
            options: &checks.options,
            body,
            extra: TokenStream::new(),
            own_runtime,
        };
        tests.push(registration.expand());
    };
    if checks.serde {
        register(
            SERDE,
            false,
            quote!(::verily::__private::enums::check_serde::<#ident>()),
        );
    }
    if checks.strings {
        register(
            STRINGS,
            false,
            quote!(::verily::__private::enums::check_strings::<#ident>()),
        );
    }
    if let Some(pg_type) = &checks.pg_type {
        register(
            PG_TYPE,
            true,
            quote! {
                let __verily_db = __verily_ctx.fixture::<::verily::__private::Db>().await?;
                ::verily::__private::enums::check_pg_type::<#ident>(&__verily_db, #pg_type).await
            },
        );
    }
    if let Some(scan) = &checks.scan {
        let labels = if checks.serde {
            quote!(::verily::__private::enums::serde_labels::<#ident>())
        } else {
            quote!(::verily::__private::enums::display_labels::<#ident>())
        };
        let keys: Vec<String> = if checks.scan_keys.is_empty() {
            vec!["type".to_owned(), snake_case(&enum_name)]
        } else {
            checks.scan_keys.iter().map(LitStr::value).collect()
        };
        register(
            SCAN,
            false,
            quote! {
                ::verily::__private::enums::check_files(
                    #enum_name,
                    ::core::env!("CARGO_MANIFEST_DIR"),
                    #scan,
                    &[#(#keys),*],
                    &#labels,
                )
            },
        );
    }
    let impl_name = format_ident!("{}", ident);
    Some(quote! {
        #item
        ::verily::__private::emit! {
            #[automatically_derived]
            #[allow(unused_qualifications, clippy::all)]
            impl ::verily::__private::DeclaredEnum for #impl_name {
                const NAME: &'static str = #enum_name;

                fn variants() -> ::std::vec::Vec<(&'static str, Self)> {
                    let mut __verily_variants = ::std::vec::Vec::new();
                    #(#values)*
                    __verily_variants
                }
            }

            #(#tests)*
        }
    })
}

/// `EventType` → `event_type`, the usual key naming the enum in files.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (index, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if index > 0 {
                snake.push('_');
            }
            snake.extend(c.to_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}
