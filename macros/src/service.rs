//! `#[verily::service]` on `impl verily::Service for T`: the impl as
//! written, plus the registration that lets one instance of `T` serve
//! every process of a nextest run (the keeper finds `T` by its `NAME`).

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = match syn::parse2::<ItemImpl>(item.clone()) {
        Ok(parsed) => parsed,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                "#[verily::service] goes on an `impl verily::Service for YourService { ... }` block",
            )
            .into_compile_error();
            return quote!(#item #error);
        }
    };
    match check(&args, &parsed) {
        Ok(()) => {}
        Err(error) => {
            let error = error.into_compile_error();
            return quote!(#item #error);
        }
    }
    let ty = &parsed.self_ty;
    let item = parsed.to_token_stream();
    quote! {
        #item
        ::verily::__private::emit! {
            const _: () = {
                ::verily::__private::register_service! {
                    ::verily::__private::HostedService::of::<#ty>()
                }
            };
        }
    }
}

/// What the registration needs: no arguments, the `Service` trait, a
/// concrete type, and the two methods sharing uses.
fn check(args: &TokenStream, item: &ItemImpl) -> syn::Result<()> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "#[verily::service] takes no arguments (but `crate = \"...\"`)",
        ));
    }
    let Some((_, trait_path, _)) = &item.trait_ else {
        return Err(syn::Error::new(
            item.self_ty.span(),
            "#[verily::service] goes on `impl verily::Service for YourService`, not an inherent impl",
        ));
    };
    if trait_path.segments.last().map(|s| s.ident.to_string()) != Some("Service".to_owned()) {
        return Err(syn::Error::new_spanned(
            trait_path,
            "#[verily::service] goes on an impl of `verily::Service`",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "#[verily::service] registers one concrete type: a generic impl cannot be shared; put it on `impl Service for YourService<Concrete>`",
        ));
    }
    let defines = |name: &str| {
        item.items
            .iter()
            .any(|member| matches!(member, ImplItem::Fn(f) if f.sig.ident == name))
    };
    let missing: Vec<&str> = ["endpoint", "attach"]
        .into_iter()
        .filter(|name| !defines(name))
        .collect();
    if !missing.is_empty() {
        return Err(syn::Error::new(
            item.self_ty.span(),
            format!(
                "a service shared by the processes of a run needs `fn endpoint(&self) -> String` (what the keeper publishes) and `async fn attach(endpoint: &str, config: &verily::Config) -> Result<Self, verily::InfraError>` (a handle on it in another process); missing: {}",
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}
