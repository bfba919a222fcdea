//! The arguments of `#[wired]`: field paths, then options.

use proc_macro2::TokenStream;
use syn::Ident;
use syn::ext::IdentExt;

use crate::ctxt::Ctxt;
use crate::options::{Arg, TestOptions, dotted, parse_args_or_record, unknown_option};
use crate::symbol::{IGNORE, RETRIES, TAGS, TIMEOUT};

/// Options `#[wired]` takes besides field names.
pub const OPTIONS: &[&str] = &[TIMEOUT, IGNORE, TAGS, RETRIES];

/// A field, or a dotted path of fields, that must be wired.
pub struct FieldPath {
    pub segments: Vec<Ident>,
}

impl FieldPath {
    /// `detector.operations_service`.
    pub fn dotted(&self) -> String {
        dotted(&self.segments)
    }
}

/// A parsed `#[wired(...)]`.
#[derive(Default)]
pub struct WiredAttr {
    pub fields: Vec<FieldPath>,
    pub options: TestOptions,
}

impl WiredAttr {
    pub fn parse(cx: &Ctxt, args: TokenStream) -> Self {
        let mut attr = WiredAttr::default();
        let args = parse_args_or_record(cx, args);
        for arg in args {
            match arg {
                Arg::Path(segments) => {
                    let path = FieldPath { segments };
                    if attr.fields.iter().any(|seen| seen.dotted() == path.dotted()) {
                        let segments = &path.segments;
                        cx.error_spanned_by(
                            quote::quote!(#(#segments).*),
                            format!("duplicate field `{}` in #[wired]", path.dotted()),
                        );
                    } else {
                        attr.fields.push(path);
                    }
                }
                Arg::Value { key, value } => attr.options.take(cx, &key, &value, OPTIONS),
                Arg::List { name, .. } => cx.error_spanned_by(
                    &name[0],
                    unknown_option(&name[0].unraw().to_string(), OPTIONS)
                        + "; fields are named plainly, as in #[wired(repository, detector.operations_service)]",
                ),
            }
        }
        attr
    }
}
