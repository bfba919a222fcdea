//! The options of `#[verily::load(...)]`, checked where they are written.

use proc_macro2::TokenStream;
use syn::{Expr, ExprLit, ExprPath, Ident, Lit};

use crate::ctxt::Ctxt;
use crate::options::{
    Arg, TestOptions, parse_args_or_record, string_literal, unknown_option, whole_number,
};
use crate::symbol::{
    AFTER, CONCURRENCY, DURATION, IGNORE, ITERATIONS, MAX_CONNECTIONS, MAX_ERROR_RATE,
    MAX_MEMORY_GROWTH, P99, RETRIES, TAGS, TIMEOUT, WARMUP,
};

const OPTIONS: &[&str] = &[
    CONCURRENCY,
    ITERATIONS,
    DURATION,
    WARMUP,
    MAX_CONNECTIONS,
    MAX_ERROR_RATE,
    MAX_MEMORY_GROWTH,
    P99,
    AFTER,
    TIMEOUT,
    IGNORE,
    TAGS,
    RETRIES,
];

/// `#[verily::load(...)]` as written.
#[derive(Default)]
pub struct LoadAttr {
    pub options: TestOptions,
    pub concurrency: Option<u64>,
    pub iterations: Option<u64>,
    pub duration_millis: Option<u64>,
    pub warmup: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_error_rate: Option<f64>,
    pub max_memory_growth: Option<u64>,
    pub p99_micros: Option<u64>,
    /// `after = check`: an async fn taking the same fixtures, run once the
    /// iterations are done.
    pub after: Option<ExprPath>,
    seen: Vec<Ident>,
}

impl LoadAttr {
    pub fn parse(cx: &Ctxt, args: TokenStream) -> Self {
        let mut attr = LoadAttr::default();
        for arg in parse_args_or_record(cx, args) {
            match arg {
                Arg::Value { key, value } => attr.take(cx, &key, &value),
                Arg::Path(path) if path.len() == 1 && path[0] == IGNORE => {
                    attr.options.take_ignore_flag(cx, &path[0]);
                }
                Arg::Path(path) => {
                    cx.error_spanned_by(&path[0], unknown_option(&path[0].to_string(), OPTIONS))
                }
                Arg::List { name, .. } => {
                    cx.error_spanned_by(&name[0], unknown_option(&name[0].to_string(), OPTIONS))
                }
            }
        }
        if let (Some(_), Some(_)) = (attr.iterations, attr.duration_millis) {
            let duration = attr
                .seen
                .iter()
                .find(|key| *key == DURATION)
                .expect("a duration was taken");
            cx.error_spanned_by(
                duration,
                "`iterations` and `duration` both say when the load stops: keep one",
            );
        }
        attr
    }

    fn take(&mut self, cx: &Ctxt, key: &Ident, value: &Expr) {
        let name = key.to_string();
        if TestOptions::KEYS.contains(&name.as_str()) || !OPTIONS.contains(&name.as_str()) {
            self.options.take(cx, key, value, OPTIONS);
            return;
        }
        if self.seen.iter().any(|seen| *seen == name) {
            cx.error_spanned_by(key, format!("duplicate option `{name}`"));
            return;
        }
        self.seen.push(key.clone());
        match name.as_str() {
            CONCURRENCY => self.concurrency = positive(cx, &name, value),
            ITERATIONS => self.iterations = positive(cx, &name, value),
            WARMUP => self.warmup = whole(cx, &name, value),
            MAX_CONNECTIONS => self.max_connections = positive(cx, &name, value),
            MAX_ERROR_RATE => self.max_error_rate = rate(cx, value),
            DURATION | P99 => {
                let Some(text) = string_literal(cx, &name, value) else {
                    return;
                };
                match verily_runtime::duration::parse_duration(&text.value()) {
                    Ok(duration) if duration.is_zero() => {
                        cx.error_spanned_by(&text, format!("`{name}` must be more than zero"))
                    }
                    Ok(duration) if name == DURATION => {
                        self.duration_millis = Some(duration.as_millis().try_into().unwrap_or(u64::MAX))
                    }
                    Ok(duration) => {
                        self.p99_micros = Some(duration.as_micros().try_into().unwrap_or(u64::MAX))
                    }
                    Err(error) => cx.error_spanned_by(&text, error),
                }
            }
            MAX_MEMORY_GROWTH => {
                let Some(text) = string_literal(cx, &name, value) else {
                    return;
                };
                match verily_runtime::size::parse_size(&text.value()) {
                    Ok(bytes) => self.max_memory_growth = Some(bytes),
                    Err(error) => cx.error_spanned_by(&text, error),
                }
            }
            AFTER => match value {
                Expr::Path(path) => self.after = Some(path.clone()),
                other => cx.error_spanned_by(
                    other,
                    "`after` names an async fn taking the test's fixtures, as in after = balances_add_up",
                ),
            },
            _ => unreachable!("OPTIONS lists only known keys"),
        }
    }
}

/// A whole number literal, or an error naming the key that wanted one.
fn whole(cx: &Ctxt, key: &str, value: &Expr) -> Option<u64> {
    whole_number(
        cx,
        value,
        &format!("`{key}` takes a whole number, as in {key} = 50"),
    )
}

/// A whole number of at least one.
fn positive(cx: &Ctxt, key: &str, value: &Expr) -> Option<u64> {
    let number = whole(cx, key, value)?;
    if number == 0 {
        cx.error_spanned_by(value, format!("`{key}` must be at least 1"));
        return None;
    }
    Some(number)
}

/// A fraction from 0 to 1.
fn rate(cx: &Ctxt, value: &Expr) -> Option<f64> {
    let parsed = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Float(number),
            ..
        }) => number.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(number),
            ..
        }) => number.base10_parse::<u32>().ok().map(f64::from),
        _ => None,
    };
    match parsed {
        Some(rate) if (0.0..=1.0).contains(&rate) => Some(rate),
        _ => {
            cx.error_spanned_by(
                value,
                "`max_error_rate` takes a fraction from 0 to 1, as in max_error_rate = 0.01 (1%)",
            );
            None
        }
    }
}
