//! Attribute macros of verily. Each entry point only parses and
//! dispatches; one module per attribute does parse → check → expand.
//!
//! Use them through the `verily` crate, never directly. Every attribute
//! takes `crate = "path"` for a renamed or re-exported `verily` (krate.rs).

mod ctxt;
mod enum_complete;
mod fixtures;
mod krate;
mod load;
mod options;
mod persists;
mod register;
mod service;
mod symbol;
mod test_attr;
mod wired;

use proc_macro::TokenStream;

/// Checks that a factory's (or a struct's) dependencies are really there.
///
/// On a factory: `#[wired(repository, metrics)]` generates a test in
/// category `wiring` that calls the factory and fails if a named field is
/// not wired. On a struct: declares the fields once; factories returning it
/// then carry a bare `#[wired]`, and other declared types holding it are
/// checked through it.
#[proc_macro_attribute]
pub fn wired(args: TokenStream, item: TokenStream) -> TokenStream {
    krate::with_crate_option(args.into(), |args| wired::expand(args, item.into())).into()
}

/// Proves the body's writes reached the database: rows of the named tables
/// are counted on a separate connection before the body and on a fresh one
/// after it. `#[persists(operations)]`, `#[persists(operations(rows = 1))]`,
/// `#[persists(operations(where = "status = 'FAILED'"))]`, `rows = 0` for
/// "must not write". Table names are checked against `migrations/`.
#[proc_macro_attribute]
pub fn persists(args: TokenStream, item: TokenStream) -> TokenStream {
    krate::with_crate_option(args.into(), |args| persists::expand(args, item.into())).into()
}

/// On an enum, declares it (options ask for checks, each a test in
/// category `schema`): `serde` (JSON round trip, no collisions), `strings`
/// (`Display`/`FromStr` round trip), `pg_type = "event_type"` (the database
/// enum has exactly the variants' labels), `scan = "config/*.toml"` (labels
/// named in those files exist). On a function taking the enum,
/// `#[enum_complete(EventType)]` calls it with every variant, and a
/// wildcard arm in a `match` over the enum is a compile error.
#[proc_macro_attribute]
pub fn enum_complete(args: TokenStream, item: TokenStream) -> TokenStream {
    krate::with_crate_option(args.into(), |args| enum_complete::expand(args, item.into())).into()
}

/// A load test: the body is one iteration, run `concurrency` at a time for
/// `iterations` (or a `duration`) after an optional `warmup`, with the
/// fixtures built once and a clone given to each iteration. Category
/// `load`; it runs alone. Fails on any error (or past `max_error_rate`),
/// on a deadlock in the test's database, past `max_connections`,
/// `max_memory_growth` or a `p99` budget, and when `after = check` fails.
#[proc_macro_attribute]
pub fn load(args: TokenStream, item: TokenStream) -> TokenStream {
    krate::with_crate_option(args.into(), |args| load::expand(args, item.into())).into()
}

/// Any other integration test: `#[verily::test(category = "e2e", timeout = "30s")]`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    krate::with_crate_option(args.into(), |args| test_attr::expand(args, item.into())).into()
}

/// Put on `impl verily::Service for T`: one instance of `T` serves every
/// process of a nextest run (started by a keeper process, stopped after the
/// run), instead of one per process. The impl must define `endpoint` and
/// `attach`; see `verily::Service`.
#[proc_macro_attribute]
pub fn service(args: TokenStream, item: TokenStream) -> TokenStream {
    krate::with_crate_option(args.into(), |args| service::expand(args, item.into())).into()
}

/// Marks an `impl Fixture for T` block (or any item) as test-only: it is
/// compiled only when verily's `testing` feature is on.
#[proc_macro_attribute]
pub fn fixture(args: TokenStream, item: TokenStream) -> TokenStream {
    krate::with_crate_option(args.into(), |args| {
        test_attr::expand_fixture(args, item.into())
    })
    .into()
}
